/* proxy_int.h - what the files of the HTTP proxy role share (not for
 * other modules; the role's interface is proxy.h):
 *
 *   proxy.c     the workers (env), a proxy's lifecycle (start, reload,
 *               stop), its listener and the hand-off of accepted clients
 *   session.c   a client's session: reading and checking requests, the
 *               proxy's own answers, writing responses, timeouts, closing
 *   upstream.c  the backend side: dialling, the worker's idle connections,
 *               sending a request and reading its response whole
 *   rules.c     a route's rules and keysets, applied to bodies (src/field/)
 *   stats.c     counters and the Prometheus text
 *   outbound.c  mode outbound: the egress allowlist, the TLS airlock
 *               originates to upstreams and verifies (field builds only) */
#ifndef AIRLOCK_HTTP_PROXY_INT_H
#define AIRLOCK_HTTP_PROXY_INT_H

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/types.h>
#include <time.h>

#include "core/file.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/strbuf.h"
#include "http/proxy.h"
#include "net/acceptor.h"
#include "net/dial.h"
#include "net/egress.h"
#include "net/unproven.h"
#include "proto/http_msg.h"

#define READ_CHUNK (64 * 1024)
#define STEP_BUDGET 64 /* steps per wakeup before other sessions get a turn */
#define ROUTE_SLOTS (2 * HTTP_ROUTES_MAX + 1) /* route names seen across reloads, and "-" */
#define LAT_N 15    /* buckets of the latency histogram (stats.c lat_bounds) */
#define IDLE_MAX 32 /* idle backend connections a worker keeps, all proxies together */

/* Why a request failed; one counter each (airlock_http_failures_total). */
enum http_fail {
    FAIL_BAD_REQUEST,         /* malformed HTTP */
    FAIL_HEADER_LARGE,        /* head over max_header or max_headers */
    FAIL_BODY_LARGE,          /* body over max_body */
    FAIL_HEADER_TIMEOUT,      /* no whole head within header_timeout */
    FAIL_BODY_TIMEOUT,        /* no whole body within body_timeout */
    FAIL_METHOD,              /* CONNECT, upgrades */
    FAIL_CONTENT_TYPE,        /* a body a route's rules cannot read */
    FAIL_MALFORMED,           /* field: the body is not JSON */
    FAIL_NOT_SCALAR,          /* field: a path matched an object or array */
    FAIL_VALUE_LARGE,         /* field: a value over the limit */
    FAIL_BAD_TOKEN,           /* field: a token in a request or response that does not open */
    FAIL_INTERNAL,            /* field: crypto or memory */
    FAIL_BACKEND_DOWN,        /* the backend refused or was unreachable: 502 */
    FAIL_BACKEND_TIMEOUT,     /* connect or response over its timeout: 504 */
    FAIL_BACKEND_CLOSED,      /* the backend closed or reset inside the response: 502 */
    FAIL_BAD_RESPONSE,        /* malformed or over max_response: 502 */
    FAIL_NO_ROUTE,            /* outbound: no route names a destination for the path: 404 */
    FAIL_DEST_DENIED,         /* outbound: the destination is not in egress_allow: 403 */
    FAIL_UPSTREAM_UNVERIFIED, /* outbound: the upstream's certificate did not verify: 502 */
    FAIL_UPSTREAM_TLS,        /* outbound: another TLS failure with the upstream: 502 */
    FAIL_URI_TOO_LONG,        /* the request's path is over HTTP_REQ_PATH_MAX: 414 */
    FAIL_AMBIGUOUS_NAME, /* field: a member name a rule's name differs from only in case: 422 */
    FAIL_SHAPE_MISMATCH, /* field: an array where a rule expects an object, a scalar where
                            it expects an array: 422 */
    FAIL_COUNT,
};

/* Counters of a proxy, handed on to its successor at a reload. Per-route
 * counters are kept by route name, so a route keeps its series. */
struct http_stats {
    char name[CONF_NAME_MAX];
    atomic_int refs;
    atomic_uint_fast64_t open, total, refused;
    atomic_uint_fast64_t evicted;           /* unproven, closed for a newcomer (net/unproven.h) */
    struct log_rate refusal_log;            /* refusals a client can cause: one line a second */
    char route[ROUTE_SLOTS][CONF_NAME_MAX]; /* slot 0: "-", no route */
    size_t n_routes;
    atomic_uint_fast64_t requests[ROUTE_SLOTS][6]; /* by status class: [1..5], [0] other */
    atomic_uint_fast64_t encrypted[ROUTE_SLOTS], decrypted[ROUTE_SLOTS];
    atomic_uint_fast64_t failures[FAIL_COUNT];
    atomic_uint_fast64_t lat[LAT_N + 1], lat_sum_us, lat_count;
    /* the unproven sessions of every generation of the proxy, per worker:
     * made with its first generation (http_proxy_new) */
    struct unproven_group unproven;
};

struct http_worker {
    struct loop *loop;
    struct list sessions;
    atomic_size_t n;
    size_t index;
    struct list idle; /* struct idle_conn, oldest first */
    size_t n_idle;
};

/* A kept-alive backend connection between two sessions: any event on it
 * (the backend closed it, or spoke out of turn) or its timer ends it. */
struct idle_conn {
    struct list link;
    struct http_worker *w;
    struct http_proxy *p; /* a reference: only its sessions take the connection */
    struct io io;
    struct timer timer;
};

struct http_env {
    struct http_worker *w;
    size_t n;
    atomic_bool draining;
};

/* A route ready to serve: compiled rules, one keyset per worker. */
struct route_rt {
    struct field_rules *rules;
    struct field_keyset **ks;   /* env->n of them, or NULL without keys */
    struct file_stamp ks_stamp; /* the keyset file's, of the bytes read */
    size_t slot;                /* in stats */
    /* outbound: the upstream's host as the allowlist sees it */
    char up_name[EGRESS_NAME_MAX]; /* normalized name, or the address literal */
    bool up_is_name;               /* else an address: checked against CIDR rules only */
};

struct ssl_ctx_st;
struct ssl_st;

struct http_proxy {
    struct http_proxy_conf conf;
    struct http_env *env;
    struct http_stats *stats;
    struct route_rt *routes;
    struct ssl_ctx_st *tls;     /* outbound: the client context upstreams are verified with */
    struct file_stamp ca_stamp; /* outbound: ca_file's, taken before it was read */
    atomic_int refs;
    atomic_bool retired; /* replaced or removed: its sessions take no new request on it */
    /* retired: the proxy that replaced it (a reference), NULL when removed;
     * written before retired is set */
    struct http_proxy *successor;
    int listen_fd;
    struct acceptor acceptor; /* listen_fd's, while accepting */
    unsigned next;
};

enum sess_state {
    S_IDLE, /* waiting for a request */
    S_HEAD,
    S_BODY,
    S_BACKEND, /* connecting, sending, reading the response */
    S_WRITE,   /* the response (or an error) to the client */
    S_LINGER,  /* answered, write side shut: the client's rest dropped till it closes */
    S_CLOSED,
};

/* How a streamed response is framed for the client. */
enum stream_mode {
    STREAM_OFF,     /* read whole, then sent (Content-Length) */
    STREAM_LENGTH,  /* the backend's Content-Length */
    STREAM_CHUNKED, /* chunked (an HTTP/1.1 client) */
    STREAM_EOF,     /* ended by closing (an HTTP/1.0 client) */
};

struct hbuf {
    char *data;
    size_t len, cap;
};

/* What a socket's edges said: data (or EOF) to read, room to write, and a
 * FIN seen (then a short read does not mean drained: read until EOF). */
struct ready {
    bool readable, writable, hup;
};

/* Where in a request's target (its url) its parts are: the origin form
 * (path and query) that is sent on, and an absolute form's authority. */
struct req_target {
    size_t off, len;
    size_t authority_off, authority_len; /* 0: origin form */
};

struct sess {
    struct list link;
    struct list unproven_link;       /* on share's list while unproven: before a whole
                                        request head, and between two requests */
    struct unproven_share *share;    /* its proxy's on its worker (net/unproven.h) */
    bool place;                      /* accepted at max_connections: takes the place of
                                        share's oldest unproven session */
    struct unproven_client *counted; /* its client's count of unproven connections, until
                                        its first whole request (max_unproven_per_client) */
    bool preamble;                   /* accept_proxy: its PROXY header is still to come */
    struct http_worker *w;
    struct http_proxy *p;
    uint64_t id;
    enum sess_state st;
    struct io cio, bio;  /* client, backend; fd -1 when closed */
    struct ready cr, br; /* client, backend */
    struct timer timer;
    struct timer redial;   /* that dial, tried again while redial_until allows */
    uint64_t redial_until; /* loop_now() by which a dial short of descriptors
                              gives up (0: none was) */
    struct task work, reap;
    struct dial dial;
    bool dialing;
    struct hbuf in, rin; /* client bytes, backend bytes */
    struct http_msg req, resp;
    struct strbuf head; /* the head being sent (and an error's body) */
    struct strbuf body; /* a rewritten body */
    const char *obody;  /* the body sent after head */
    size_t olen, osent; /* head.len + body length; sent so far */
    int route;          /* index in p->routes, -1 none */
    struct req_target target;
    bool close_after, is_head, reused, retried, strip_encoding;
    size_t lingered;    /* S_LINGER: bytes of the client's dropped (transport_linger()) */
    bool b_idle;        /* the backend connection is between two exchanges */
    bool b_private;     /* ... and authenticated for this client alone: never pooled */
    int b_route;        /* outbound: the route whose upstream bio is connected to */
    struct ssl_st *ssl; /* outbound: TLS on bio; NULL for plain backends */
    bool tls_hs;        /* outbound: the handshake is not done */
    bool via_hs;        /* outbound: the CONNECT exchange with via is not done */
    bool via_sent;      /* outbound: the CONNECT request is out */
    size_t via_off;     /* outbound: bytes of the CONNECT request sent */
    /* a response no rule rewrites that outgrew max_response is streamed:
     * each read is sent on (and dropped from rin) before the next */
    bool stream_ok; /* no rule rewrites this response */
    enum stream_mode stream;
    bool chunk_sent; /* STREAM_CHUNKED: a chunk went out (its CRLF is owed) */
    bool stream_end; /* the last piece is queued */
    uint64_t t_req;  /* us, when the request was whole */
    char client_ip[INET6_ADDRSTRLEN];
    uint64_t t_admit; /* us, when it was accepted (airlock ctl conns) */
};

/* Between two requests (S_IDLE): when s's proxy was retired, s goes on with
 * the proxy that replaced it (its backend connection closed: the old
 * settings'), or is closed when it was removed. Returns false when s was
 * closed. (On s's worker.) */
bool sess_follow(struct sess *s);

/* A client refused (counted, and logged at most once a second): client
 * as transport_describe() writes it, why its reason. */
void http_refused(struct http_proxy *p, const char *client, const char *why);

/* sa is s's client (its peer, or the source its PROXY header names): for
 * X-Forwarded-For, and counted against that client's bound of unproven
 * connections. False when it holds its bound already: s is refused (the
 * caller closes it). */
bool sess_client(struct sess *s, const struct sockaddr *sa, socklen_t len);

/* The names of enum http_fail, for metrics and log lines. */
extern const char *const fail_names[FAIL_COUNT];

static inline void
count(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline uint64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static inline void
ready_update(struct ready *r, uint32_t events)
{
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        r->readable = true;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        r->hup = true;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        r->writable = true;
}

/* ---- proxy.c */

void proxy_ref(struct http_proxy *p);

/* ---- session.c */

/* Starts the session arg (a struct sess) on its worker's loop: posted by
 * the accepting loop. */
void sess_begin(void *arg);

/* Undoes s, accepted but never begun on a loop: closes its fd, gives back
 * its counts and its reference to the proxy, and frees it. */
void sess_unbegun(struct sess *s);

/* Runs s's state machine until it waits (bounded per wakeup). */
void sess_step(struct sess *s);

/* Closes s (idempotent); it is freed later, off its callbacks. */
void sess_close(struct sess *s);

/* The proxies' evict_oldest (net/unproven.h): closes share's oldest
 * unproven session (counted). Returns false when there is none. Runs on
 * share's worker. */
bool sess_evict_oldest(struct unproven_share *share);

/* Starts s's timer for ms (0: stops it). */
void sess_arm(struct sess *s, unsigned ms);

/* The response is sent: the next request, or the end. */
void exchange_done(struct sess *s);

/* Queues s->head and body[0..len) for the client (state WRITE). */
void send_client(struct sess *s, const char *body, size_t len);

/* The proxy's own answer status for why, with a JSON body saying text. */
void reply_error(struct sess *s, int status, enum http_fail why, const char *text);

/* Closes the socket of io (one of s's); idempotent. */
void sock_close(struct sess *s, struct io *io);

/* Whether the media type in value[0..len) is type, with no charset but
 * UTF-8 (JSON has no other, RFC 8259: a backend that decodes the body as a
 * declared utf-7 or utf-16 reads names the proxy never saw). Other
 * parameters are ignored. */
bool http_media_is(const char *value, size_t len, const char *type);

/* Whether the media type in value[0..len) is JSON: type (a route's
 * content_type; "" none), application/json, or one with the suffix +json
 * (RFC 6839: application/problem+json, application/vnd.api+json), whatever
 * its charset; *utf8 gets whether it names no charset but UTF-8. */
bool http_media_json(const char *value, size_t len, const char *type, bool *utf8);

/* Makes room for at least want more bytes in b, at most max in all.
 * Returns the room (0 when at max), or -ENOMEM. */
ssize_t hbuf_room(struct hbuf *b, size_t want, size_t max);

/* Drops the first n bytes of b, wiped (b->len: empties it for reuse). */
void hbuf_drop(struct hbuf *b, size_t n);

/* Frees b's data, wiped; idempotent. */
void hbuf_free(struct hbuf *b);

/* ---- upstream.c */

/* Sends s's request on its kept backend connection, or dials one. */
void backend_start(struct sess *s);

/* One step of the exchange with the backend; true on progress. */
bool backend_step(struct sess *s);

/* Writes s->head and s->obody from s->osent on to fd (through s->ssl when
 * tls): 0, -EAGAIN, -errno. */
int sess_write_out(struct sess *s, int fd, bool tls);

/* sess_write_out() to the client: true once all of it is out; false while
 * the client takes no more, or after closing s on an error. */
bool client_flush(struct sess *s);

/* Closes s's backend connection or dial; idempotent. */
void backend_close(struct sess *s);

/* Keeps s's idle backend connection for the worker's next session of the
 * same proxy. Returns false when it cannot (the caller closes it). */
bool idle_put(struct sess *s);

/* Closes an idle connection and frees it. */
void idle_close(struct idle_conn *ic);

/* ---- rules.c */

/* Compiles route i's rules and loads its keyset (one per worker, the
 * routes after it that name the same file from the same read of it): 0,
 * or -errno with msg (HTTP_MSG_MAX) saying why. Called for each route in
 * order. */
int route_load(struct http_proxy *p, size_t i, char *msg);

void route_free(struct http_proxy *p, struct route_rt *r);

/* The members named name of the JSON object in[0..len), the body of s's
 * route (which has rules), at its top level: their values appended to
 * values, each a string's decoded characters (nothing for another kind,
 * or a string with U+0000) and a NUL (field_json_member()). Returns 0, or
 * -EINVAL when the body is not JSON. */
int route_members(struct sess *s, const char *in, size_t len, const char *name,
                  struct strbuf *values);

/* Rewrites the body in[0..len) of s's route into s->body: its fields
 * encrypted (a request) or its tokens opened (a response). Returns 200, or
 * the status of the refusal with *why and err (FIELD_ERR_MAX). */
int route_rewrite(struct sess *s, bool encrypt, const char *in, size_t len, enum http_fail *why,
                  char *err);

/* ---- outbound.c */

#ifdef AIRLOCK_WITH_FIELD
/* Mode outbound: p's TLS client context (ca_file or the system's store,
 * TLS 1.2 at least, peers verified) and its routes' upstream names. 0, or
 * -errno with msg (HTTP_MSG_MAX). Does nothing in mode inbound. */
int outbound_open(struct http_proxy *p, char *msg);

void outbound_free(struct http_proxy *p);

/* Whether route i's upstream passes egress_allow: by name (the address it
 * resolves to is checked once dialled, by outbound_admit()), or the
 * address it is given as. EGRESS_OK or why not. */
enum egress_verdict outbound_allowed(const struct http_proxy *p, size_t i);

/* One step of the CONNECT exchange with the proxy's via (an egress relay),
 * before TLS; true on progress. A refusal answers s (403, 502). */
bool outbound_via_step(struct sess *s);

/* The dial's admit hook (arg: the session): the address the upstream
 * resolved to, or was given as, against egress_allow. 0 or -EACCES. */
int outbound_admit(void *arg, const struct sockaddr *sa, socklen_t len);

/* A client SSL on the connected socket fd for route i's upstream: SNI and
 * the name (or address) its certificate must carry. NULL on ENOMEM. */
struct ssl_st *outbound_ssl(struct http_proxy *p, size_t i, int fd);

/* One step of s's handshake with its upstream; true on progress. On a
 * failure s gets a 502 (nothing was sent). */
bool outbound_handshake(struct sess *s);

/* Reads into buf (len) or writes from it through s->ssl: the count, 0 at
 * the upstream's close_notify (reads), -EAGAIN (s->br updated) or -errno. */
ssize_t outbound_io(struct sess *s, void *buf, size_t len, bool out);

/* Frees s->ssl; idempotent. */
void outbound_close(struct sess *s);
#else
/* mode outbound is refused by the config check without field encryption */
static inline int
outbound_open(struct http_proxy *p, char *msg)
{
    (void)p, (void)msg;
    return 0;
}
static inline void
outbound_free(struct http_proxy *p)
{
    (void)p;
}
static inline enum egress_verdict
outbound_allowed(const struct http_proxy *p, size_t i)
{
    (void)p, (void)i;
    return EGRESS_BAD_DESTINATION;
}
static inline bool
outbound_via_step(struct sess *s)
{
    (void)s;
    return false;
}
static inline int
outbound_admit(void *arg, const struct sockaddr *sa, socklen_t len)
{
    (void)arg, (void)sa, (void)len;
    return -EACCES;
}
static inline struct ssl_st *
outbound_ssl(struct http_proxy *p, size_t i, int fd)
{
    (void)p, (void)i, (void)fd;
    return NULL;
}
static inline bool
outbound_handshake(struct sess *s)
{
    (void)s;
    return false;
}
static inline ssize_t
outbound_io(struct sess *s, void *buf, size_t len, bool out)
{
    (void)s, (void)buf, (void)len, (void)out;
    return -ENOTSUP;
}
static inline void
outbound_close(struct sess *s)
{
    (void)s;
}
#endif

/* ---- stats.c */

struct http_stats *stats_new(const char *name);
void stats_unref(struct http_stats *st);

/* Makes st's unproven group for env's workers (the same for every proxy
 * and generation), unless it has one. Returns 0 or -ENOMEM. */
int stats_unproven(struct http_stats *st, const struct http_env *env);

/* The slot of route name in st, added when new. Main loop only. */
size_t stats_slot(struct http_stats *st, const char *name);

/* Counts s's answer status and the request's latency. */
void stats_observe(struct sess *s, int status);

#endif
