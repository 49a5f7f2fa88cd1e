/* relay.h - one configured relay: its listener, counters and accept path.
 *
 * A relay is shared by its listener (on the accepting loop) and by each of
 * its connections (on any loop): it is reference counted, and a relay that a
 * reload replaced lives on until its last connection ends. Counters live in
 * struct relay_stats, which a changed relay hands on to its successor so
 * that Prometheus counters never go backwards across a reload. */
#ifndef AIRLOCK_RELAY_RELAY_H
#define AIRLOCK_RELAY_RELAY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/log.h"
#include "core/loop.h"
#include "net/acceptor.h"
#include "net/dial.h"
#include "net/unproven.h"
#include "relay/conf.h"

struct worker;
struct dgram;
struct dir;
struct relay_tls;
struct relay_target;
struct health_check;

/* Why a connection ended; one counter each. */
enum conn_end {
    END_EOF,          /* both directions finished normally */
    END_RESET,        /* a peer reset; the reset was passed on */
    END_IDLE,         /* idle_timeout */
    END_CONNECT_FAIL, /* the target refused or was unreachable */
    END_CONNECT_TIMEOUT,
    END_BAD_PREAMBLE, /* malformed PROXY header or hvsock CONNECT line */
    END_PREAMBLE_TIMEOUT,
    END_ERROR,             /* any other I/O error */
    END_SHUTDOWN,          /* closed by a drain deadline or process stop */
    END_DENIED,            /* egress: the destination is not allowed; with accept_proxy:
                              the client its header names is at max_unproven_per_client */
    END_BAD_FRAME,         /* datagram relays: a malformed frame on the stream */
    END_BAD_HELLO,         /* routers: not a valid TLS ClientHello (or closed inside it) */
    END_PEEK_TIMEOUT,      /* routers: no whole ClientHello within peek_timeout */
    END_NO_ROUTE,          /* routers: no route for the server name and no default */
    END_NO_INSTANCE,       /* routers: the directory had no instance for the key (or failed) */
    END_TLS_FAILED,        /* tls:/verify: the TLS handshake or a TLS record failed */
    END_HANDSHAKE_TIMEOUT, /* tls:/verify: no whole handshake within handshake_timeout */
    END_ATTEST_REFUSED,    /* verify: the server's evidence does not meet the policy */
    END_EVICTED,           /* unproven, its place taken by a newcomer (net/unproven.h);
                              routers: its place among the holders of a reservation (dir.h) */
    END_COUNT,
};

/* Why a datagram relay dropped a datagram; one counter each. */
enum dgram_drop {
    DROP_OVERSIZE, /* larger than max_datagram */
    DROP_BACKLOG,  /* the stream was backed up, or lost with it queued */
    DROP_DENIED,   /* allow (udp listener) or dns_allow refused it */
    DROP_NO_FLOW,  /* a reply for a flow that expired or was never there */
    DROP_ERROR,    /* a socket error, an unresolved target, no memory */
    DROP_COUNT,
};

/* A resource of this process or host that ran out; one counter each, apart
 * from connect errors, so that an alert on those blames the target only. */
enum local_error {
    LOCAL_FD_LIMIT,        /* EMFILE: the process's open files limit (RLIMIT_NOFILE) */
    LOCAL_SYSTEM_FD_LIMIT, /* ENFILE: the system's file table */
    LOCAL_MEMORY,          /* ENOMEM, ENOBUFS: kernel or process memory */
    LOCAL_RESOLVER_BUSY,   /* EBUSY from resolve_start(): the lookup queue is full */
    LOCAL_COUNT,
};

/* Renewals of a tls: listener's certificate; one counter each. */
enum tls_renew { TLS_RENEW_OK, TLS_RENEW_FAILED, TLS_RENEW_COUNT };

/* ClientHellos of a tls: listener that asked for fresh evidence. */
enum tls_fresh {
    TLS_FRESH_SERVED,  /* within fresh_evidence_rate: the provider was asked */
    TLS_FRESH_REFUSED, /* over it: handshake_failure alert */
    TLS_FRESH_COUNT,
};

/* Returns the metrics label of e ("fd_limit", "memory", ...). */
const char *local_error_name(enum local_error e);

/* Returns the log/metrics label of d ("oversize", "backlog", ...). */
const char *dgram_drop_name(enum dgram_drop d);

/* Returns the log/metrics label of e ("eof", "reset", ...). */
const char *conn_end_name(enum conn_end e);

/* The upper bounds of the duration histograms' buckets, in ns; the last,
 * UINT64_MAX, is +Inf. Fixed, so that dashboards can sum across processes. */
#define HIST_BUCKETS 18
extern const uint64_t relay_hist_bounds[HIST_BUCKETS];

/* A duration histogram: per bucket (not cumulative: one atomic add per
 * observation), and the sum in ns; the count is the buckets' total. */
struct relay_hist {
    atomic_uint_fast64_t bucket[HIST_BUCKETS];
    atomic_uint_fast64_t sum_ns;
};

/* Counts a duration of ns in h. Any thread, lock-free, no syscall. */
void relay_hist_observe(struct relay_hist *h, uint64_t ns);

struct relay_stats {
    char name[CONF_NAME_MAX];
    atomic_int refs;
    atomic_uint_fast64_t open, total, refused, connect_errors;
    atomic_uint_fast64_t bytes_in;  /* client -> target */
    atomic_uint_fast64_t bytes_out; /* target -> client */
    atomic_uint_fast64_t ended[END_COUNT];
    atomic_uint_fast64_t egress_denied[EGRESS_VERDICT_COUNT]; /* by reason; [EGRESS_OK] unused */
    /* datagram relays; in: client -> target, out: target -> client */
    atomic_uint_fast64_t datagrams_in, datagrams_out;
    atomic_uint_fast64_t dropped[DROP_COUNT];
    atomic_uint_fast64_t flows;                 /* datagram relays: flows open now (gauge) */
    atomic_uint_fast64_t flows_evicted;         /* closed before their idle timeout to make room */
    atomic_uint_fast64_t flows_evicted_waiting; /* of those, still waiting for an answer */
    atomic_uint_fast64_t local_errors[LOCAL_COUNT];
    atomic_uint_fast64_t tls_renewals[TLS_RENEW_COUNT]; /* tls: certificates renewed */
    atomic_uint_fast64_t tls_fresh[TLS_FRESH_COUNT];    /* tls: fresh evidence asked */
    struct relay_hist connect_time;                     /* dial start to the target connected */
    struct relay_hist conn_time; /* accept to close, of each connection counted in ended */
    struct log_rate refusal_log; /* refused lines: a client causes them at will */
    /* the unproven connections of every generation of the relay, per
     * worker: made with its first generation (relay_new) */
    struct unproven_group unproven;
};

struct relay {
    struct relay_conf conf;
    struct relay_stats *stats;
    atomic_int refs;
    int listen_fd;
    struct acceptor acceptor; /* listen_fd's, while accepting */
    struct loop *loop;        /* the accepting loop */
    struct worker **workers;
    size_t n_workers;
    unsigned next_worker;
    struct dgram *dgram;   /* datagram relays: everything on the udp side (dgram.h) */
    struct dir *dir;       /* routers with a directory route: the runtime's directory */
    struct relay_tls *tls; /* tls: its certificate and context (relay/tls.h), else NULL */

    /* targets: conf.n_targets of them (health.h), else NULL; and their
     * active checks on loop, once started */
    struct relay_target **targets;
    struct health_check *checks;

    /* replaced or removed at a reload (relay_retire): the relay that
     * replaced it (a reference), NULL when removed; written before retired
     * is set */
    struct relay *successor;
    atomic_bool retired;
};

/* Returns a new counter set named name with one reference, or NULL. */
struct relay_stats *relay_stats_new(const char *name);
void relay_stats_ref(struct relay_stats *s);
void relay_stats_unref(struct relay_stats *s);

/* Counts err (-errno of accept, socket, pipe, a lookup start...) in s's
 * local_errors when it is a shortage of this process or host (see enum
 * local_error). Returns true then; false (nothing counted) for any other
 * error, which concerns the peer. Any thread. */
bool relay_local_error(struct relay_stats *s, int err);

/* A dial (net/dial.h) of r's connection id towards target ended with err
 * and why: logs it (a refused hvsock port, a shortage of this process, a
 * failed connect; not a timeout), counts it (connect_errors, or
 * local_errors) and returns how the connection ends: END_CONNECT_TIMEOUT,
 * END_ERROR (a shortage of this process) or END_CONNECT_FAIL. Any thread. */
/* Closes a connection refused at accept or at its start: counted always,
 * logged once a second at most per relay (a flood of refused clients must
 * not flood the log), with how many went unlogged before. Any thread. */
void relay_refuse(struct relay *r, int fd, const char *peer, const char *why);

/* The same for a connection begun, which its caller closes (end=denied). */
void relay_refused(struct relay *r, const char *peer, const char *why);

enum conn_end relay_dial_failed(struct relay *r, uint64_t id, const struct endpoint *target,
                                int err, enum dial_result why);

/* Creates a relay for conf using stats (a reference is taken). Its
 * connections are spread over workers[0..n) (the same for every relay and
 * generation: stats' unproven group is made for them once). Returns NULL on
 * ENOMEM. The caller holds the one reference. */
struct relay *relay_new(const struct relay_conf *conf, struct relay_stats *stats,
                        struct worker **workers, size_t n_workers);
void relay_ref(struct relay *r);
void relay_unref(struct relay *r);

/* Marks r replaced by next (a reference is taken), or removed (next NULL),
 * at a reload: its connections that have not chosen their destination yet
 * choose it by the rules of the relay that replaced it (relay_current).
 * Main loop, once per relay. */
void relay_retire(struct relay *r, struct relay *next);

/* The generation of r whose rules decide now: r, the relay that replaced
 * it at a reload (or the one that replaced that, ...), or NULL when one of
 * them was removed. Valid as long as r is. Any thread. */
const struct relay *relay_current(const struct relay *r);

/* Opens r's listener, unless prev listens on the same endpoint: r is then
 * to take prev's socket (relay_take_listener()) once the whole reload is
 * built, and nothing of prev is touched here. Returns 0 or -errno; does
 * not accept yet. */
int relay_listen(struct relay *r, const struct relay *prev);

/* Whether r is to take prev's socket (relay_listen() left it to); false
 * when prev is NULL. */
bool relay_takes_listener(const struct relay *r, const struct relay *prev);

/* Gives the socket fd, a listener on r's endpoint that was set up for was,
 * r's settings: its socket file's owner and mode, the listener's options.
 * Called back with r and was swapped, it undoes that. Returns 0 or -errno. */
int relay_listener_settings(const struct relay *r, int fd, const struct relay *was);

/* r takes prev's socket (relay_takes_listener()): prev stops accepting and
 * no longer owns it. */
void relay_take_listener(struct relay *r, struct relay *prev);

/* Starts accepting on loop; a datagram relay (udp on one side) also starts
 * its datagram side there (dgram.h), a relay with targets: their health
 * checks (health.h). Returns 0 or -errno. */
int relay_start(struct relay *r, struct loop *loop);

/* Stops accepting and closes the listener (removing a unix socket file when
 * unlink is set); a datagram relay also closes its streams and flows at
 * once; health checks stop. Idempotent. */
void relay_stop(struct relay *r, int unlink);

#endif
