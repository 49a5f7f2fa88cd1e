/* conn_int.h - inside a stream connection: struct conn, the hooks of its
 * variants, and the helpers conn.c lends them. Private to conn.c,
 * conn_egress.c and conn_router.c.
 *
 * conn.c runs every connection through the same states and dispatcher; what
 * an egress relay or a router does differently sits behind struct conn_ops,
 * one static const table per variant, chosen once at accept (conn_new).
 * No hook runs on the data path (RELAYING). */
#ifndef AIRLOCK_RELAY_CONN_INT_H
#define AIRLOCK_RELAY_CONN_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/loop.h"
#include "net/dial.h"
#include "proto/parse.h"
#include "proto/proxy_v2.h"
#include "relay/conn.h"
#include "relay/pump.h"

#define PREAMBLE_MAX 4096 /* largest PROXY header, hvsock line or CONNECT request we read */

enum conn_state {
    CONN_ST_PREAMBLE,
    CONN_ST_PEEK,
    CONN_ST_ASSIGNING,
    CONN_ST_CONNECTING, /* the dial: name, connect, hvsock handshake */
    CONN_ST_HANDSHAKE,  /* tls:/verify: the TLS handshake (and verification) */
    CONN_ST_RELAYING,
    CONN_ST_TLS,    /* tls:/verify: relaying through TLS, by the variant's step */
    CONN_ST_LINGER, /* ended after an answer: its client socket lingers (conn_close()) */
    CONN_ST_CLOSED,
};

struct egress_dest; /* conn_egress.c */
struct peek;        /* conn_router.c */
struct tls_conn;    /* conn_tls.c */

struct conn {
    struct list link;                /* in the worker's conns */
    struct list unproven_link;       /* on share's list while it is unproven */
    struct unproven_share *share;    /* its relay's on its worker (net/unproven.h) */
    struct unproven_client *counted; /* its client's count of unproven ones, or NULL */
    bool vouched;                    /* its PROXY header named its client (source) */
    bool place;                      /* accepted at max_connections: takes the place of
                                        share's oldest unproven connection */
    struct worker *worker;
    struct relay *relay;
    const struct conn_ops *ops; /* the variant: plain, egress, router */
    uint64_t id;
    enum conn_state state;
    enum conn_end end;
    bool linger;     /* its client was answered (or refused): the close lingers */
    size_t lingered; /* LINGER: bytes of the client's dropped (transport_linger()) */
    struct side client, target;
    struct pump up;   /* client -> target */
    struct pump down; /* target -> client */
    struct timer timer;
    struct task work;  /* pumping continued after the budget */
    struct task reap;  /* deferred free */
    struct dial *dial; /* CONNECTING: allocated only while the dial runs */
    uint64_t started, active;
    uint64_t accepted_ns, dial_ns; /* loop_clock_ns() at accept, at the dial's start */
    struct sockaddr_storage peer;
    socklen_t peer_len;
    int hvsock_greeted;             /* hvsock listener: CONNECT line answered */
    struct sockaddr_storage source; /* the client: the PROXY header's source, else peer */
    uint8_t *proxy_hdr;             /* received PROXY header, passed on verbatim */
    size_t proxy_len;
    struct egress_dest *egress;   /* egress relays, once the preamble began; else NULL */
    struct peek *peek;            /* routers, in PEEK only */
    const struct endpoint *route; /* the chosen target (a route, an instance, an egress
                                     destination); NULL: the relay's target */
    struct relay_target *pick;    /* targets: the one chosen (health.h); NULL: none yet */
    bool failed_over;             /* targets: the dial moved to another target once */
    char *sni;                    /* routers: the server name, for the close line */
    struct dir_assign *assign;    /* directory routes: the request, and then the
                                     reservation this connection holds (dir_release()) */
    struct endpoint *assigned;    /* directory routes: the instance's endpoint */
    struct tls_conn *tls;         /* tls:/verify: the TLS side and its buffers */
};

/* What a variant does differently. NULL hooks are skipped. */
struct conn_ops {
    /* The last part of the preamble, after the hvsock line and the PROXY
     * header: reads what the client says and connects, refuses, or waits for
     * more (egress: the destination). NULL: there is none. */
    void (*preamble)(struct conn *c);
    /* The preamble is done: connects (conn_connect) or reads on first
     * (router: the ClientHello). Required. */
    void (*start)(struct conn *c);
    /* One step in a state of the variant's own (router: PEEK, ASSIGNING;
     * TLS: HANDSHAKE, TLS). */
    void (*step)(struct conn *c);
    /* The address the target resolved to (or was given as), from the
     * dialer: returns 0 to connect, or -EACCES to refuse it, remembering why
     * for refuse; never closes c (egress allowlist). */
    int (*admit)(struct conn *c, const struct sockaddr *sa);
    /* The dial ended before any connect: the target's name did not resolve
     * (DIAL_RESOLVE_FAILED, err) or admit refused the address
     * (DIAL_ADMIT_REFUSED). Closes c the variant's way; NULL: a failed
     * connect. */
    void (*refuse)(struct conn *c, int err, enum dial_result why);
    /* Tells the client how its connect went, as an HTTP status: 200 ready,
     * 502 failed, 503 out of local resources, 504 timed out. */
    void (*answer)(struct conn *c, int status);
    /* data[0..len) (at most PREAMBLE_MAX: a PROXY header) goes to the
     * target before the client's bytes; 0 or -errno. NULL: the pump's
     * (pump_prepend()); tls: its own buffer of plaintext. */
    int (*prepend)(struct conn *c, const void *data, size_t len);
    /* The target is connected (and told of the PROXY header, answered):
     * the variant goes on in a state of its own (TLS: the handshake with
     * the target, or relaying through TLS). NULL: the two pumps relay. */
    void (*ready)(struct conn *c);
    /* The first thing conn_close(c, end) does: gives back what the variant
     * holds and writes its words for the close line (" sni=x") into
     * tag[0..len), which is "" otherwise (len 0: the line is not logged). */
    void (*closing)(struct conn *c, enum conn_end end, char *tag, size_t len);
};

extern const struct conn_ops conn_egress_ops;     /* conn_egress.c */
extern const struct conn_ops conn_router_ops;     /* conn_router.c */
extern const struct conn_ops conn_tls_server_ops; /* conn_tls.c: tls: */
extern const struct conn_ops conn_tls_client_ops; /* conn_tls.c: verify: */

/* ---- lent by conn.c */

/* Ends c: the one way a connection ends; idempotent. c is freed later.
 * When c->linger is set (its client was answered: a status line, an
 * alert; or refused), the client socket's write side is shut and what the
 * client still sends is read and dropped (transport_linger()) until it
 * closes, for at most TRANSPORT_LINGER_MS: closing it with input unread would
 * send a reset, which can discard the answer before the client reads it.
 * Meanwhile c holds its place of max_connections as an unproven
 * connection, which a newcomer may take; closing it again ends that. */
void conn_close(struct conn *c, enum conn_end end);

/* Dials c's target (c->route, else one of the relay's targets: picked by
 * its balance among the healthy, else its target): net/dial.h resolves,
 * connects and greets an hvsock device; then relays. c is proven from
 * then on. */
void conn_connect(struct conn *c);

/* c showed what it is for (its preamble, its whole ClientHello, its TLS
 * handshake: the variant says when): no newcomer takes its place any more
 * (net/unproven.h). Idempotent. */
void conn_proven(struct conn *c);

/* c's timer callback, per state (preamble, peek, handshake, idle). */
void conn_timeout(struct timer *t);

/* c moved bytes: arms its idle timer (idle_timeout) from now. */
void conn_idle_start(struct conn *c);

/* Peeks at what s's peer sent so far. Returns the count, 0 at EOF, or
 * -errno (-EAGAIN: nothing yet; s->readable is cleared). */
ssize_t side_peek(struct side *s, uint8_t *buf, size_t len);

/* Consumes n (at most PREAMBLE_MAX) bytes already seen by side_peek().
 * Returns 0 or -EIO. */
int side_consume(struct side *s, size_t n);

/* Parses and consumes the PROXY v2 header at the start of c's client bytes
 * buf[0..n) (peeked). PARSE_AGAIN: wait for more. PARSE_INVALID: logged and
 * c->linger set, the caller closes. */
enum parse_result conn_take_proxy_header(struct conn *c, const uint8_t *buf, size_t n,
                                         struct proxy_info *info, size_t *hdr_len);

#endif
