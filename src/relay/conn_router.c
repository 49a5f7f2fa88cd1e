/* conn_router.c - the router variant of a connection (routers:): the
 * ClientHello picks the target.
 *
 * After the preamble the connection reads the TLS ClientHello (PEEK): what
 * it reads is kept and goes to the upstream first, unchanged, and the
 * server name picks the route. A directory route then
 * waits in ASSIGNING for the directory to name the user's instance, reading
 * nothing; the connection holds that reservation until it closes or the
 * instance closes its side, or, before the login, a newcomer from an
 * address holding fewer of its places takes this one's (dir.h). Refusals
 * (no route, no instance) are one log line and a close. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "dir/dir.h"
#include "net/transport.h"
#include "proto/tls_hello.h"
#include "relay/conn_int.h"

_Static_assert(2 * ROUTER_HELLO_MAX <= PUMP_CHUNK, "the hello's records fit the scratch buffer");

/* A router connection while its ClientHello comes in: the parser and the
 * buffer it joins fragments in (router.max_hello bytes follow), and the
 * bytes read from the client, for the upstream. */
struct peek {
    struct tls_hello hello;
    uint8_t *wire; /* what the client sent so far, as it sent it */
    size_t len;    /* bytes in wire */
    size_t cap;    /* its size: grows to twice max_hello at most */
    uint8_t buf[];
};

/* Frees what c holds while its ClientHello comes in. Idempotent. */
static void
peek_free(struct conn *c)
{
    if (c->peek != NULL)
        free(c->peek->wire);
    free(c->peek);
    c->peek = NULL;
}

/* Answers a ClientHello nothing is routed for with a fatal
 * unrecognized_name alert (RFC 6066 3), so the client learns why, then
 * closes, lingering (conn_close()). Best effort: the client's socket is
 * fresh, so 7 bytes fit. */
static void
refuse_no_route(struct conn *c)
{
    static const uint8_t alert[] = {21, 3, 3, 0, 2, 2, 112};

    c->linger = true;
    if (write(c->client.io.fd, alert, sizeof(alert)) != (ssize_t)sizeof(alert))
        log_debug("relay=%s conn=%llu: alert not sent", c->relay->conf.name,
                  (unsigned long long)c->id);
    conn_close(c, END_NO_ROUTE);
}

/* Connects to the chosen target: what followed the hello may be queued
 * and no new edge will announce it (the client waits for the server's
 * answer). */
static void
router_go(struct conn *c)
{
    c->client.readable = 1;
    conn_connect(c);
}

_Static_assert(TRANSPORT_CLIENT_MAX <= DIR_CLIENT_MAX, "a client key must fit the directory's");

/* Why the directory found no instance, for the router's log line. */
static const char *
refusal_reason(int err)
{
    switch (err) {
    case -EAGAIN:
        return "no_free_instance";
    case -EDQUOT:
        return "client_limit"; /* this address has its share of handshakes in flight */
    case -EBUSY:
        return "pending_limit"; /* the pool's share for handshakes in flight is taken */
    case -EINPROGRESS:
        return "storing"; /* the user's last session is still being stored back */
    case -ENOENT:
        return "no_such_pool";
    case -ENOTCONN:
        return "directory_unavailable"; /* its redis was away all through assign_wait */
    default:
        return strerror(-err);
    }
}

/* The directory's answer (on c's worker loop). */
static void
assigned(void *arg, int err, const char *instance, const struct endpoint *ep)
{
    static struct log_rate refusals; /* every worker's: a peer can cause them at will */
    struct conn *c = arg;
    unsigned long quiet;

    if (err == 0 && (c->assigned = malloc(sizeof(*c->assigned))) == NULL)
        err = -ENOMEM;
    if (err != 0) {
        if (log_rate_ok(&refusals, loop_now(c->worker->loop), 1000, &quiet))
            log_info("router refused relay=%s conn=%llu sni=%s reason=%s quiet_before=%lu",
                     c->relay->conf.name, (unsigned long long)c->id, c->sni, refusal_reason(err),
                     quiet);
        c->linger = true; /* the hello: a FIN, not a reset, ends it */
        conn_close(c, END_NO_INSTANCE);
        return;
    }
    *c->assigned = *ep;
    c->assigned->nofollow = true; /* the instance owns the directory its socket is in */
    c->route = c->assigned;
    log_info("router assigned relay=%s conn=%llu sni=%s instance=%s", c->relay->conf.name,
             (unsigned long long)c->id, c->sni, instance);
    router_go(c);
}

/* The directory gave c's place among the holders of its reservation to a
 * newcomer (on c's worker loop): c came from the address that held the
 * most of them, and nobody logged in yet. */
static void
evicted(void *arg)
{
    conn_close(arg, END_EVICTED);
}

/* Picks the target for the complete ClientHello: connects, asks the
 * directory, or refuses. */
static void
router_route(struct conn *c)
{
    const struct tls_hello *h = &c->peek->hello;
    /* the routes of now: a reload since the accept may have changed them
     * (none when it removed the router) */
    const struct relay *now = relay_current(c->relay);
    const struct route_table *table = now != NULL ? &now->conf.router.table : NULL;
    char key[DIR_KEY_MAX];
    enum route_kind kind = ROUTE_NONE;

    conn_proven(c); /* a whole ClientHello */
    if (h->has_sni && (c->sni = strdup(h->host)) == NULL) {
        conn_close(c, END_ERROR);
        return;
    }
    if (table != NULL)
        kind = route_pick(table, c->sni, &c->route, key);
    /* what the client sent goes first, after a PROXY v2 header (prepended
     * in front of it once the target is connected) */
    if (kind != ROUTE_NONE && pump_prepend(&c->up, c->peek->wire, c->peek->len) != 0) {
        conn_close(c, END_ERROR);
        return;
    }
    peek_free(c);
    timer_stop(c->worker->loop, &c->timer);
    if (kind == ROUTE_NONE) {
        log_info("router refused relay=%s conn=%llu sni=%s reason=no_route", c->relay->conf.name,
                 (unsigned long long)c->id, c->sni != NULL ? c->sni : "-");
        refuse_no_route(c);
    } else if (kind == ROUTE_TARGET) {
        router_go(c);
    } else {
        char client[TRANSPORT_CLIENT_MAX];
        transport_client_key(c->client.io.fd, (struct sockaddr *)&c->source, client,
                             sizeof(client));
        c->state = CONN_ST_ASSIGNING;
        c->assign = dir_assign_held(c->relay->dir, table->directory, key, client, c->worker->loop,
                                    assigned, evicted, c);
        if (c->assign == NULL)
            assigned(c, -errno, NULL, NULL);
    }
}

/* Appends data[0..len) to what p read, growing it geometrically (a client
 * may send a byte at a time). Returns 0 or -ENOMEM. */
static int
peek_keep(struct peek *p, const uint8_t *data, size_t len)
{
    if (p->len + len > p->cap) {
        size_t cap = p->cap != 0 ? p->cap : 1024;
        while (cap < p->len + len)
            cap *= 2;
        uint8_t *w = realloc(p->wire, cap);
        if (w == NULL)
            return -ENOMEM;
        p->wire = w;
        p->cap = cap;
    }
    memcpy(p->wire + p->len, data, len);
    p->len += len;
    return 0;
}

/* Reads what the client sent, keeps it for the upstream and feeds it to the
 * parser, until the ClientHello is whole or the socket is empty. Read, not
 * peeked at: peeking again at every edge at a queue that grows a byte per
 * segment costs the kernel the square of its segments per peek (it walks
 * the queue from its head for each one), seconds of the worker's for a
 * 30 KiB ClientHello while its other connections wait. */
static void
router_peek(struct conn *c)
{
    struct peek *p = c->peek;
    uint8_t *buf = (uint8_t *)c->worker->pumps.scratch;
    size_t cap = 2 * c->relay->conf.router.max_hello; /* the parser's limit on the wire */
    enum parse_result pr = PARSE_AGAIN;
    ssize_t n;
    int err = 0;

    /* while AGAIN the parser took less than cap: there is room to read */
    while ((n = recv(c->client.io.fd, buf, cap - p->len, 0)) > 0) {
        if (peek_keep(p, buf, (size_t)n) != 0) {
            conn_close(c, END_ERROR);
            return;
        }
        if ((pr = tls_hello_feed(&p->hello, buf, (size_t)n, NULL)) != PARSE_AGAIN)
            break;
    }
    if (n < 0)
        err = errno;
    if (pr == PARSE_OK) {
        router_route(c);
        return;
    }
    if (pr == PARSE_AGAIN && err == EAGAIN) {
        c->client.readable = 0; /* all of it was read: wait for the next edge */
        return;
    }
    log_warnx("relay=%s conn=%llu bad ClientHello: %s", c->relay->conf.name,
              (unsigned long long)c->id,
              pr == PARSE_INVALID ? p->hello.err
              : n < 0             ? strerror(err)
                                  : "connection closed inside it");
    c->linger = true; /* what it sent: a FIN, not a reset, ends it */
    conn_close(c, END_BAD_HELLO);
}

/* The start hook: after the preamble (if any), peek at the ClientHello. */
static void
router_start(struct conn *c)
{
    const struct router_conf *ro = &c->relay->conf.router;

    if ((c->peek = calloc(1, sizeof(*c->peek) + ro->max_hello)) == NULL) {
        conn_close(c, END_ERROR);
        return;
    }
    tls_hello_init(&c->peek->hello, c->peek->buf, ro->max_hello);
    c->state = CONN_ST_PEEK;
    timer_start(c->worker->loop, &c->timer, ro->peek_timeout_ms, conn_timeout, c);
    /* the hello is most likely queued already (a tcp listener accepts once
     * it arrived; a preamble comes with what follows it): read at once
     * instead of waiting for an edge. Nothing there costs one recv. */
    c->client.readable = 1;
    router_peek(c);
}

/* The step hook: the states of routers. */
static void
router_step(struct conn *c)
{
    if (c->state == CONN_ST_PEEK) {
        if (c->client.readable)
            router_peek(c);
        return;
    }
    /* ASSIGNING: nothing is read while the directory is asked; a client
     * that leaves cancels the request. A FIN counts as leaving: a half-close
     * cannot be told from a close here, and a TLS client that sent its FIN
     * after its ClientHello can no longer finish a handshake (it owes the
     * server its Finished), so nothing it sent could have been served; a
     * flood of hellos and FINs holds no reservation */
    if (c->client.hup)
        conn_close(c, END_EOF);
}

/* The closing hook: a client that leaves while the directory is asked
 * cancels; one that leaves before its instance saw the login gives its
 * reservation back. The close line names the server name and the target
 * it was routed to ("-" before a route). */
static void
router_closing(struct conn *c, enum conn_end end, char *tag, size_t len)
{
    char target[ENDPOINT_TEXT_MAX] = "-";

    (void)end;
    peek_free(c);
    dir_release(c->assign);
    c->assign = NULL;
    if (len == 0) /* the close line is not logged */
        return;
    if (c->route != NULL)
        endpoint_format(c->route, target, sizeof(target));
    snprintf(tag, len, " sni=%s target=%s", c->sni != NULL ? c->sni : "-", target);
}

const struct conn_ops conn_router_ops = {
    .start = router_start,
    .step = router_step,
    .closing = router_closing,
};
