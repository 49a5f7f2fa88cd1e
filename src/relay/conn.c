/* conn.c - the life of one relayed connection, and the workers that run them.
 *
 *   PREAMBLE -> PEEK -> ASSIGNING -> CONNECTING -> RELAYING -> CLOSED
 *
 * PREAMBLE reads what the client sends before its payload (an hvsock
 * "CONNECT port" line, a PROXY v2 header, an egress relay's destination);
 * PEEK and ASSIGNING are a router's (conn_router.c); CONNECTING is the
 * dial (net/dial.c: the target's name, the connect, an hvsock target's
 * "OK" line), which lives in a struct dial allocated only meanwhile. Each
 * state that is skipped is passed through at once. In RELAYING, two pumps
 * (pump.c) move bytes, one per direction. A connection refused with an
 * answer (an HTTP status, a TLS alert) goes through LINGER to CLOSED: its
 * client's further bytes are dropped until it closes (conn_close()).
 *
 * What a variant does differently - an egress relay (conn_egress.c), a
 * router (conn_router.c) - it does through the hooks of its struct
 * conn_ops (conn_int.h), chosen at accept; a plain relay has none but
 * start. This file keeps the lifecycle, the preamble, the dispatcher and
 * the workers. */
#include "relay/conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/log.h"
#include "dir/dir.h"
#include "net/allow.h"
#include "net/transport.h"
#include "relay/conn_int.h"
#include "relay/health.h"

/* From <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>,
 * which clash with the libc socket headers. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

#define CONN_BUDGET (1024 * 1024) /* bytes moved per wakeup before others get a turn */
#define HVSOCK_LINE_MAX 64

/* A plain relay: straight to its target. */
static const struct conn_ops conn_plain_ops = {
    .start = conn_connect,
};

static atomic_uint_fast64_t next_conn_id = 1;

static const char *const end_names[END_COUNT] = {
    [END_EOF] = "eof",
    [END_RESET] = "reset",
    [END_IDLE] = "idle_timeout",
    [END_CONNECT_FAIL] = "connect_failed",
    [END_CONNECT_TIMEOUT] = "connect_timeout",
    [END_BAD_PREAMBLE] = "bad_preamble",
    [END_PREAMBLE_TIMEOUT] = "preamble_timeout",
    [END_ERROR] = "error",
    [END_SHUTDOWN] = "shutdown",
    [END_DENIED] = "denied",
    [END_BAD_FRAME] = "bad_frame",
    [END_BAD_HELLO] = "bad_hello",
    [END_PEEK_TIMEOUT] = "peek_timeout",
    [END_NO_ROUTE] = "no_route",
    [END_NO_INSTANCE] = "no_instance",
    [END_TLS_FAILED] = "tls_failed",
    [END_HANDSHAKE_TIMEOUT] = "handshake_timeout",
    [END_ATTEST_REFUSED] = "attest_refused",
    [END_EVICTED] = "evicted",
};

const char *
conn_end_name(enum conn_end e)
{
    return end_names[e];
}

uint64_t
conn_next_id(void)
{
    return atomic_fetch_add(&next_conn_id, 1);
}

static void conn_step(struct conn *c);

/* The endpoint this connection connects to: the relay's target, or the one
 * its variant chose (a route, an instance, an egress destination). */
static const struct endpoint *
conn_target(const struct conn *c)
{
    if (c->route != NULL)
        return c->route;
    return c->pick != NULL ? &c->pick->ep : &c->relay->conf.target;
}

/* ---- closing */

static void
side_close(struct conn *c, struct side *s, int reset)
{
    if (s->io.fd < 0)
        return;
    if (reset) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(s->io.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    io_stop(c->worker->loop, &s->io);
    close(s->io.fd);
    s->io.fd = -1;
}

static void
conn_reap(struct task *t)
{
    struct conn *c = t->data;

    /* wait for a queued continuation */
    if (task_queued(&c->work)) {
        loop_defer(c->worker->loop, &c->reap, conn_reap, c);
        return;
    }
    relay_unref(c->relay);
    free(c->proxy_hdr);
    free(c->egress);
    free(c->sni);
    free(c->assigned);
    free(c->tls);
    free(c);
}

/* c's client for a log line: the source its PROXY header named, else its
 * peer. */
static void
client_describe(const struct conn *c, char *desc, size_t len)
{
    if (c->vouched)
        transport_describe((const struct sockaddr *)&c->source, sizeof(c->source), desc, len);
    else
        transport_describe((const struct sockaddr *)&c->peer, c->peer_len, desc, len);
}

/* The last of c: its client socket closes, and it goes from the worker's
 * connections and the counts (it held its place till now). */
static void
conn_finish(struct conn *c)
{
    struct worker *w = c->worker;

    side_close(c, &c->client, c->end == END_RESET);
    unproven_del(c->share, &c->unproven_link); /* a lingering one is on the list */
    timer_stop(w->loop, &c->timer);
    c->state = CONN_ST_CLOSED;
    list_del(&c->link);
    atomic_fetch_sub(&w->n_conns, 1);
    atomic_fetch_sub_explicit(&c->relay->stats->open, 1, memory_order_relaxed);
    loop_defer(w->loop, &c->reap, conn_reap, c);
}

/* c answered its client and ended: lingers (conn_close()). Returns false
 * when the client socket may be closed at once: its client closed
 * already, sent too much, or the socket failed. */
static bool
conn_linger(struct conn *c)
{
    int fd = c->client.io.fd;

    if (fd < 0 || shutdown(fd, SHUT_WR) != 0 || transport_linger(fd, &c->lingered) != 0 ||
        io_update(c->worker->loop, &c->client.io, EPOLLIN | EPOLLRDHUP) != 0)
        return false;
    c->state = CONN_ST_LINGER;
    unproven_add(c->share, &c->unproven_link);
    timer_start(c->worker->loop, &c->timer, TRANSPORT_LINGER_MS, conn_timeout, c);
    return true;
}

void
conn_close(struct conn *c, enum conn_end end)
{
    struct worker *w = c->worker;
    struct relay_stats *st = c->relay->stats;
    char client[TRANSPORT_DESC_MAX] = "-", tag[EP_HOST_MAX + ENDPOINT_TEXT_MAX + 32] = "";

    /* the close line is formatted only when the log level keeps it */
    bool logged = LOG_LVL_INFO <= log_threshold;

    if (c->state == CONN_ST_LINGER) /* taken its place, or the process ends */
        conn_finish(c);
    if (c->state == CONN_ST_CLOSED)
        return;
    if (c->ops->closing != NULL)
        c->ops->closing(c, end, tag, logged ? sizeof(tag) : 0);
    else if (logged && c->relay->conf.n_targets > 0) /* which of them it went to */
        snprintf(tag, sizeof(tag), " target=%s", c->pick != NULL ? c->pick->text : "-");
    c->state = CONN_ST_CLOSED;
    c->end = end;
    if (c->dial != NULL) { /* a lookup still to answer is withdrawn too */
        dial_cancel(c->dial);
        free(c->dial);
        c->dial = NULL;
    }
    side_close(c, &c->target, end == END_RESET);
    if (c->pick != NULL) {
        relay_target_release(c->pick);
        c->pick = NULL;
    }
    pump_release(&c->up, &w->pumps);
    pump_release(&c->down, &w->pumps);
    timer_stop(w->loop, &c->timer);
    conn_proven(c);
    if (c->place) { /* refused waiting for its PROXY header (conn_begin()) */
        unproven_unplace(c->share);
        c->place = false;
    }
    atomic_fetch_add_explicit(&st->ended[end], 1, memory_order_relaxed);
    relay_hist_observe(&st->conn_time, loop_clock_ns() - c->accepted_ns);

    if (logged)
        client_describe(c, client, sizeof(client));
    log_info("close relay=%s conn=%llu client=%s%s duration_ms=%llu bytes_in=%llu bytes_out=%llu "
             "end=%s",
             c->relay->conf.name, (unsigned long long)c->id, client, tag,
             (unsigned long long)(loop_now(w->loop) - c->started), (unsigned long long)c->up.bytes,
             (unsigned long long)c->down.bytes, end_names[end]);
    if (!c->linger || end == END_RESET || end == END_SHUTDOWN || !conn_linger(c))
        conn_finish(c);
}

/* ---- unproven connections (net/unproven.h) */

void
conn_proven(struct conn *c)
{
    unproven_del(c->share, &c->unproven_link);
    unproven_client_give(&c->relay->stats->unproven, &c->counted);
}

bool
conn_evict_oldest(struct unproven_share *share)
{
    struct list *oldest = unproven_oldest(share);

    if (oldest == NULL)
        return false;
    conn_close(list_entry(oldest, struct conn, unproven_link), END_EVICTED);
    return true;
}

/* ---- timers */

void
conn_timeout(struct timer *t)
{
    struct conn *c = t->data;
    uint64_t now = loop_now(c->worker->loop);
    unsigned idle = c->relay->conf.idle_timeout_ms;

    switch (c->state) {
    case CONN_ST_PREAMBLE:
        conn_close(c, END_PREAMBLE_TIMEOUT);
        break;
    case CONN_ST_PEEK:
        log_warnx("relay=%s conn=%llu no whole ClientHello within peek_timeout",
                  c->relay->conf.name, (unsigned long long)c->id);
        conn_close(c, END_PEEK_TIMEOUT);
        break;
    case CONN_ST_ASSIGNING: /* no timer: the directory answers within assign_wait */
        break;
    case CONN_ST_CONNECTING: /* the dial has its own timeout: this is a dial out of
                                descriptors, retried once one was freed */
        conn_connect(c);
        break;
    case CONN_ST_HANDSHAKE:
        conn_close(c, END_HANDSHAKE_TIMEOUT);
        break;
    case CONN_ST_RELAYING:
    case CONN_ST_TLS:
        /* activity only stamps c->active; the timer checks it lazily, so the
         * data path never touches the timer heap */
        if (now - c->active >= idle)
            conn_close(c, END_IDLE);
        else
            timer_start(c->worker->loop, &c->timer, idle - (now - c->active), conn_timeout, c);
        break;
    case CONN_ST_LINGER:
        conn_finish(c);
        break;
    case CONN_ST_CLOSED:
        break;
    }
}

/* ---- relaying */

static void
conn_work(struct task *t)
{
    conn_step(t->data);
}

/* Watches s for reading only while its pump (from s) can pass bytes on:
 * while the destination is full, each arrival on s would be a wakeup that
 * moves nothing (a bulk download wakes for every segment from the server
 * while the client is slow). The readable flag stays as it was; when
 * reading is watched again, data already there is reported at once. */
static int
side_watch(struct conn *c, struct side *s, const struct pump *p)
{
    return io_update(c->worker->loop, &s->io,
                     EPOLLOUT | EPOLLRDHUP | (pump_blocked(p) ? 0 : EPOLLIN));
}

static void
conn_relay(struct conn *c)
{
    struct pump_turn turn = {.cache = &c->worker->pumps, .budget = CONN_BUDGET};
    uint64_t written = c->up.bytes + c->down.bytes;
    int rc;

    if ((rc = pump_run(&c->up, &turn)) == 0)
        rc = pump_run(&c->down, &turn);
    /* anything read or written is activity, for the idle timeout */
    if (turn.budget != CONN_BUDGET || c->up.bytes + c->down.bytes != written)
        c->active = loop_now(c->worker->loop);
    for (; turn.pipe_errs > 0; turn.pipe_errs--)
        relay_local_error(c->relay->stats, turn.pipe_err);
    if (rc != 0) {
        if (rc != -ECONNRESET && rc != -EPIPE)
            log_debug("relay=%s conn=%llu: %s", c->relay->conf.name, (unsigned long long)c->id,
                      strerror(-rc));
        conn_close(c, rc == -ECONNRESET || rc == -EPIPE ? END_RESET : END_ERROR);
        return;
    }
    if (c->down.eof && c->assign != NULL) {
        /* the instance closed its side: no login can come through this
         * connection any more, so it no longer holds the reservation (a
         * silent client does not keep it until reserve_timeout) */
        dir_release(c->assign);
        c->assign = NULL;
    }
    if (c->up.shut && c->down.shut) {
        conn_close(c, END_EOF);
        return;
    }
    if (side_watch(c, &c->client, &c->up) != 0 || side_watch(c, &c->target, &c->down) != 0) {
        conn_close(c, END_ERROR);
        return;
    }
    if (turn.budget == 0) /* more may be waiting: continue after others had a turn */
        loop_defer(c->worker->loop, &c->work, conn_work, c);
}

void
conn_idle_start(struct conn *c)
{
    const struct relay_conf *rc = &c->relay->conf;

    c->active = loop_now(c->worker->loop);
    timer_stop(c->worker->loop, &c->timer);
    if (rc->idle_timeout_ms > 0)
        timer_start(c->worker->loop, &c->timer, rc->idle_timeout_ms, conn_timeout, c);
}

static void
conn_start_relaying(struct conn *c)
{
    c->state = CONN_ST_RELAYING;
    conn_idle_start(c);
    conn_relay(c);
}

/* ---- preamble: hvsock CONNECT line, PROXY v2 header */

ssize_t
side_peek(struct side *s, uint8_t *buf, size_t len)
{
    ssize_t n = recv(s->io.fd, buf, len, MSG_PEEK);

    if (n < 0 && errno == EAGAIN)
        s->readable = 0;
    return n < 0 ? -errno : n;
}

int
side_consume(struct side *s, size_t n)
{
    uint8_t sink[PREAMBLE_MAX];

    return recv(s->io.fd, sink, n, 0) == (ssize_t)n ? 0 : -EIO;
}

/* Returns PARSE_OK when the CONNECT line was read and answered. */
static enum parse_result
read_hvsock_connect(struct conn *c)
{
    uint8_t buf[HVSOCK_LINE_MAX + 1];
    ssize_t n = side_peek(&c->client, buf, HVSOCK_LINE_MAX);

    if (n == -EAGAIN)
        return PARSE_AGAIN;
    if (n <= 0)
        return PARSE_INVALID;
    uint8_t *nl = memchr(buf, '\n', (size_t)n);
    if (nl == NULL) /* a line that cannot complete is refused at once */
        return n == HVSOCK_LINE_MAX || c->client.hup ? PARSE_INVALID : PARSE_AGAIN;
    *nl = '\0';
    if (transport_hvsock_answer(c->client.io.fd, (char *)buf, c->relay->conf.listen.port) != 0)
        return PARSE_INVALID;
    if (side_consume(&c->client, (size_t)(nl - buf) + 1) != 0)
        return PARSE_INVALID;
    return PARSE_OK;
}

/* A header that cannot complete (the client shut down, or PREAMBLE_MAX is
 * reached) is invalid at once, not at the timeout. A bad one is logged with
 * its peer and the reason, and c is set to linger: what the client sent is
 * unread, and closing it so would answer with a reset. */
enum parse_result
conn_take_proxy_header(struct conn *c, const uint8_t *buf, size_t n, struct proxy_info *info,
                       size_t *hdr_len)
{
    const char *err = NULL;
    enum parse_result pr = proxy_v2_parse(buf, n, info, hdr_len, &err);

    /* the fixed part says how long the whole is */
    bool too_long = n >= PROXY_V2_FIXED_LEN &&
                    PROXY_V2_FIXED_LEN + ((size_t)buf[14] << 8 | buf[15]) > PREAMBLE_MAX;

    if (pr == PARSE_AGAIN) {
        if (n < PREAMBLE_MAX && !too_long && !c->client.hup)
            return PARSE_AGAIN;
        err = n < PREAMBLE_MAX && !too_long ? "connection closed inside the header"
                                            : "header larger than 4096 bytes";
        pr = PARSE_INVALID;
    } else if (pr == PARSE_OK && side_consume(&c->client, *hdr_len) != 0) {
        err = "cannot read the header";
        pr = PARSE_INVALID;
    }
    if (pr == PARSE_INVALID) {
        char peer[TRANSPORT_DESC_MAX];
        client_describe(c, peer, sizeof(peer));
        log_warnx("relay=%s conn=%llu client=%s bad PROXY v2 header: %s", c->relay->conf.name,
                  (unsigned long long)c->id, peer, err);
        c->linger = true;
    }
    return pr;
}

static enum parse_result
read_proxy_header(struct conn *c)
{
    uint8_t buf[PREAMBLE_MAX];
    struct proxy_info info;
    size_t hdr_len;
    ssize_t n = side_peek(&c->client, buf, sizeof(buf));

    if (n == -EAGAIN)
        return PARSE_AGAIN;
    if (n <= 0) {
        char peer[TRANSPORT_DESC_MAX];
        client_describe(c, peer, sizeof(peer));
        log_warnx("relay=%s conn=%llu client=%s bad PROXY v2 header: connection closed before it",
                  c->relay->conf.name, (unsigned long long)c->id, peer);
        return PARSE_INVALID;
    }
    enum parse_result pr = conn_take_proxy_header(c, buf, (size_t)n, &info, &hdr_len);
    if (pr != PARSE_OK)
        return pr;
    if ((c->proxy_hdr = malloc(hdr_len)) == NULL)
        return PARSE_INVALID;
    memcpy(c->proxy_hdr, buf, hdr_len);
    c->proxy_len = hdr_len;
    if (info.cmd == PROXY_CMD_PROXY && info.family != AF_UNSPEC) {
        c->source = info.src; /* the front relay vouches for it (accept_proxy) */
        c->vouched = true;
        char from[TRANSPORT_DESC_MAX], orig[TRANSPORT_DESC_MAX];
        transport_describe((struct sockaddr *)&c->peer, c->peer_len, from, sizeof(from));
        transport_describe((struct sockaddr *)&info.src, sizeof(info.src), orig, sizeof(orig));
        log_debug("relay=%s conn=%llu proxy header from=%s client=%s", c->relay->conf.name,
                  (unsigned long long)c->id, from, orig);
    }
    return PARSE_OK;
}

/* With accept_proxy, the client is the source its PROXY header names (the
 * front's own address would make every client one; a LOCAL header, the
 * front's own check, is judged by the front's address): allow judges it,
 * and it counts against max_unproven_per_client, from the header on.
 * Returns false when it is not allowed, or holds its bound already: c is
 * refused and closed (end=denied). */
static bool
judge_vouched(struct conn *c)
{
    struct relay *r = c->relay;
    unsigned max = relay_conf_per_client(&r->conf);
    char key[TRANSPORT_CLIENT_MAX], desc[TRANSPORT_DESC_MAX];
    int err;

    if (r->conf.n_allow > 0 &&
        !allow_match(r->conf.allow, r->conf.n_allow,
                     (const struct sockaddr *)(c->vouched ? &c->source : &c->peer))) {
        client_describe(c, desc, sizeof(desc));
        relay_refused(r, desc, "not_allowed");
        conn_close(c, END_DENIED);
        return false;
    }
    if (max == 0 || !c->vouched)
        return true;
    transport_client_key(-1, (struct sockaddr *)&c->source, key, sizeof(key));
    if ((err = unproven_client_take(&r->stats->unproven, key, max, &c->counted)) == 0)
        return true;
    transport_describe((struct sockaddr *)&c->source, sizeof(c->source), desc, sizeof(desc));
    relay_refused(r, desc, err == -EBUSY ? "max_unproven_per_client" : "out_of_memory");
    conn_close(c, END_DENIED);
    return false;
}

/* c was accepted at max_connections on a claim of c->share: it takes the
 * place of the oldest unproven connection there (not its own: off the list
 * meanwhile, the caller puts it back), or when none is left there (it
 * proved itself meanwhile, or the claim was made while another worker's
 * counts were changing) of one on another worker, and gives the claim
 * back. False when there was none anywhere and the relay is still over
 * its bound: c is to be refused. */
static bool
take_place(struct conn *c)
{
    struct relay *r = c->relay;
    bool placed = list_linked(&c->unproven_link); /* waited for its PROXY header */

    unproven_del(c->share, &c->unproven_link);
    bool took = conn_evict_oldest(c->share) || unproven_evict_elsewhere(&r->stats->unproven);

    if (placed)
        unproven_unplace(c->share);
    else
        unproven_unclaim(c->share);
    c->place = false;
    return took || atomic_load(&r->stats->open) <= r->conf.max_connections;
}

static void
conn_preamble(struct conn *c)
{
    const struct relay_conf *rc = &c->relay->conf;
    enum parse_result pr = PARSE_OK;

    if (rc->listen.kind == EP_HVSOCK && !c->hvsock_greeted) {
        pr = read_hvsock_connect(c);
        if (pr == PARSE_INVALID) {
            log_warnx("relay=%s conn=%llu bad hvsock CONNECT line", rc->name,
                      (unsigned long long)c->id);
            c->linger = true; /* the line is unread: a FIN, not a reset, ends it */
        }
        c->hvsock_greeted = pr == PARSE_OK;
    }
    if (pr == PARSE_OK && rc->accept_proxy == PROXY_V2 && (pr = read_proxy_header(c)) == PARSE_OK) {
        if (!judge_vouched(c))
            return;
        if (c->place && !take_place(c)) {
            char desc[TRANSPORT_DESC_MAX];
            client_describe(c, desc, sizeof(desc));
            relay_refused(c->relay, desc, "max_connections");
            conn_close(c, END_DENIED);
            return;
        }
        unproven_add(c->share, &c->unproven_link); /* back on the list: it took its place */
    }
    if (pr == PARSE_OK && c->ops->preamble != NULL) {
        c->ops->preamble(c); /* connects, refuses, or waits for more */
        return;
    }
    if (pr == PARSE_INVALID)
        conn_close(c, END_BAD_PREAMBLE);
    else if (pr == PARSE_OK)
        c->ops->start(c);
}

/* ---- connecting */

/* Sends data[0..len) to the target ahead of the client's bytes: in the
 * pump, or the variant's way (tls:: its plaintext buffer). */
static int
prepend(struct conn *c, const void *data, size_t len)
{
    return c->ops->prepend != NULL ? c->ops->prepend(c, data, len)
                                   : pump_prepend(&c->up, data, len);
}

static int
send_proxy_header(struct conn *c)
{
    uint8_t hdr[PREAMBLE_MAX];
    struct sockaddr_storage local;
    socklen_t len = sizeof(local);
    size_t n;

    if (c->proxy_hdr != NULL) /* pass on what the front load balancer said */
        return prepend(c, c->proxy_hdr, c->proxy_len);
    if (getsockname(c->client.io.fd, (struct sockaddr *)&local, &len) != 0)
        return -errno;
    if (c->relay->conf.original_dst) {
        /* where the client meant to go before iptables REDIRECT (conntrack) */
        int rc = local.ss_family == AF_INET6
                     ? getsockopt(c->client.io.fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &local, &len)
                     : getsockopt(c->client.io.fd, SOL_IP, SO_ORIGINAL_DST, &local, &len);
        char dst[TRANSPORT_DESC_MAX];
        if (rc != 0) {
            rc = -errno;
            log_warnx("relay=%s conn=%llu no original destination: %s", c->relay->conf.name,
                      (unsigned long long)c->id, strerror(-rc));
            return rc;
        }
        transport_describe((struct sockaddr *)&local, len, dst, sizeof(dst));
        log_debug("relay=%s conn=%llu original destination=%s", c->relay->conf.name,
                  (unsigned long long)c->id, dst);
    }
    n = proxy_v2_encode(hdr, sizeof(hdr), (struct sockaddr *)&c->peer, (struct sockaddr *)&local,
                        NULL, 0);
    return n == 0 ? -EINVAL : prepend(c, hdr, n);
}

static void
conn_target_ready(struct conn *c)
{
    if (c->relay->conf.send_proxy == PROXY_V2 && send_proxy_header(c) != 0) {
        conn_close(c, END_ERROR);
        return;
    }
    if (c->ops->answer != NULL)
        c->ops->answer(c, 200);
    if (c->ops->ready != NULL)
        c->ops->ready(c);
    else
        conn_start_relaying(c);
}

/* The connect to c's target (of targets:) failed, which counts as a failed
 * check of it; c tries the next healthy target, once. Returns true when it
 * does. */
static bool
conn_failover(struct conn *c, int err, enum dial_result why)
{
    struct relay *r = c->relay;

    relay_target_failed(r, c->pick, err, why);
    if (c->failed_over)
        return false;
    struct relay_target *next = relay_target_pick(r, c->pick);
    if (next == NULL)
        return false;
    log_info("relay=%s conn=%llu target=%s failed, trying target=%s", r->conf.name,
             (unsigned long long)c->id, c->pick->text, next->text);
    relay_target_release(c->pick);
    c->pick = next;
    c->failed_over = true;
    conn_connect(c);
    return true;
}

/* The dial ended without a connection. A shortage of this process (no fd
 * for the socket, no memory, the resolver's queue full) is not the
 * target's fault: end=error, and a CONNECT client gets 503; a timeout 504,
 * anything else 502 (the closing hook answers those). A name that did not
 * resolve, or an address admit refused, is the variant's to refuse. */
static void
conn_dial_failed(struct conn *c, int err, enum dial_result why)
{
    if ((why == DIAL_RESOLVE_FAILED || why == DIAL_ADMIT_REFUSED) && c->ops->refuse != NULL) {
        c->ops->refuse(c, err, why);
        return;
    }
    if ((err == -EMFILE || err == -ENFILE) &&
        loop_now(c->worker->loop) - c->started < c->relay->conf.connect_timeout_ms &&
        unproven_evict_any()) {
        /* out of descriptors: an unproven connection (of any listener, on
         * any worker) gives its own up, and the dial is tried again soon;
         * the acceptor may take that one first, so again while unproven
         * connections are left, within connect_timeout of the start */
        relay_local_error(c->relay->stats, err);
        timer_start(c->worker->loop, &c->timer, ACCEPTOR_RETRY_MS, conn_timeout, c);
        return;
    }
    enum conn_end end = relay_dial_failed(c->relay, c->id, conn_target(c), err, why);
    if (end != END_ERROR && c->pick != NULL && conn_failover(c, err, why))
        return;
    if (end == END_ERROR && c->ops->answer != NULL)
        c->ops->answer(c, 503);
    conn_close(c, end);
}

static void
side_event(struct io *io, uint32_t events)
{
    struct conn *c = io->data;
    struct side *s = io == &c->client.io ? &c->client : &c->target;

    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        s->readable = 1;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        s->hup = 1;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        s->writable = 1;
    /* a reset (or another error) of either side ends c at once: the pump
     * that reads s learns it only once its destination took what it holds,
     * which a peer that does not read may never do, and until then the
     * other peer would not learn it either */
    int err = events & EPOLLERR && (c->state == CONN_ST_RELAYING || c->state == CONN_ST_TLS)
                  ? transport_sock_error(s->io.fd)
                  : 0;
    if (err != 0) {
        conn_close(c, err == -ECONNRESET || err == -EPIPE ? END_RESET : END_ERROR);
        return;
    }
    conn_step(c);
}

static void
conn_dialed(void *arg, int fd, enum dial_result why)
{
    struct conn *c = arg;
    int rc = fd;

    free(c->dial); /* idle: the dialer is done with it */
    c->dial = NULL;
    if (fd >= 0 && (rc = io_start(c->worker->loop, &c->target.io, fd,
                                  EPOLLIN | EPOLLOUT | EPOLLRDHUP, side_event, c)) != 0) {
        close(fd);
        c->target.io.fd = -1;
        why = DIAL_CONNECT_FAILED;
    }
    if (rc < 0) {
        conn_dial_failed(c, rc, why);
        return;
    }
    relay_hist_observe(&c->relay->stats->connect_time, loop_clock_ns() - c->dial_ns);
    transport_tune(fd, conn_target(c)->kind, c->relay->conf.keepalive);
    c->target.writable = 1; /* a fresh connection takes what the client sent at once */
    conn_target_ready(c);
}

/* The dialer calls the variant's admit hook with each address. */
static int
conn_admit(void *arg, const struct sockaddr *sa, socklen_t len)
{
    struct conn *c = arg;

    (void)len;
    return c->ops->admit(c, sa);
}

void
conn_connect(struct conn *c)
{
    struct relay *r = c->relay;

    conn_proven(c);
    timer_stop(c->worker->loop, &c->timer); /* the dial has its own timeout */
    if (c->route == NULL && r->conf.n_targets > 0 && c->pick == NULL &&
        (c->pick = relay_target_pick(r, NULL)) == NULL) {
        atomic_fetch_add_explicit(&r->stats->connect_errors, 1, memory_order_relaxed);
        log_warnx("relay=%s conn=%llu no healthy target: all %zu are down", r->conf.name,
                  (unsigned long long)c->id, r->conf.n_targets);
        conn_close(c, END_CONNECT_FAIL);
        return;
    }
    if ((c->dial = calloc(1, sizeof(*c->dial))) == NULL) {
        conn_dial_failed(c, -ENOMEM, DIAL_CONNECT_FAILED);
        return;
    }
    c->state = CONN_ST_CONNECTING;
    c->dial_ns = loop_clock_ns();
    /* egress admits each address after resolution, so a permitted name
     * cannot lead to a private address (DNS rebinding) */
    dial_start(c->dial, c->worker->loop, conn_target(c), c->relay->conf.connect_timeout_ms,
               c->ops->admit != NULL ? conn_admit : NULL, conn_dialed, c);
    /* its lookups take the client's share of the resolver (the one its
     * PROXY header named, with accept_proxy) */
    c->dial->client = (const struct sockaddr *)(c->vouched ? &c->source : &c->peer);
}

/* Whether s has bytes not read yet (a client that half-closed after them
 * still wants them relayed). */
static bool
side_unread(const struct side *s)
{
    int n = 0;

    return ioctl(s->io.fd, FIONREAD, &n) != 0 || n > 0;
}

/* The dispatcher: runs the current state as far as it can go. */
static void
conn_step(struct conn *c)
{
    switch (c->state) {
    case CONN_ST_PREAMBLE:
        if (c->client.readable)
            conn_preamble(c);
        break;
    case CONN_ST_PEEK:
    case CONN_ST_ASSIGNING:
    case CONN_ST_HANDSHAKE:
    case CONN_ST_TLS:
        c->ops->step(c); /* the router's, the TLS variant's */
        break;
    case CONN_ST_CONNECTING: /* the dial calls back */
        if (c->relay->conf.egress && c->client.hup && !side_unread(&c->client))
            conn_close(c, END_EOF); /* its client left, nothing to send: its lookup goes too */
        break;
    case CONN_ST_RELAYING:
        conn_relay(c);
        break;
    case CONN_ST_LINGER:
        if (transport_linger(c->client.io.fd, &c->lingered))
            conn_finish(c);
        break;
    case CONN_ST_CLOSED:
        break;
    }
}

/* ---- creation and hand-off */

struct conn *
conn_new(struct relay *r, int fd, const struct sockaddr *peer, socklen_t peer_len,
         struct unproven_client *counted)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->relay = r;
    relay_ref(r);
    c->id = conn_next_id();
    c->accepted_ns = loop_clock_ns();
    c->ops = r->conf.egress           ? &conn_egress_ops
             : r->conf.router.enabled ? &conn_router_ops
                                      : &conn_plain_ops;
#ifdef AIRLOCK_WITH_ATTEST
    if (r->tls != NULL)
        c->ops = r->conf.tls.enabled ? &conn_tls_server_ops : &conn_tls_client_ops;
#endif
    c->client.io.fd = fd;
    c->counted = counted;
    c->target.io.fd = -1;
    memcpy(&c->peer, peer, peer_len);
    c->peer_len = peer_len;
    memcpy(&c->source, peer, peer_len);
    pump_init(&c->up, &c->client, &c->target, r->conf.splice, &r->stats->bytes_in);
    pump_init(&c->down, &c->target, &c->client, r->conf.splice, &r->stats->bytes_out);
    return c;
}

/* Gives back what a connection that never began holds (its fd is the
 * caller's to close or refuse). */
static void
conn_unbegun(struct conn *c)
{
    unproven_client_give(&c->relay->stats->unproven, &c->counted);
    atomic_fetch_sub(&c->worker->n_conns, 1);
    atomic_fetch_sub(&c->relay->stats->open, 1);
    relay_unref(c->relay);
    free(c);
}

static void
conn_begin(void *arg)
{
    struct conn *c = arg;
    struct worker *w = c->worker;
    const struct relay_conf *rc = &c->relay->conf;
    int fd = c->client.io.fd;

    /* with accept_proxy, only once its header named a client within its
     * bound (conn_preamble()): a client beyond never takes another's place.
     * Meanwhile it is unproven like the others: newcomers may take its */
    if (c->place && rc->accept_proxy != PROXY_V2 && !take_place(c)) {
        char desc[TRANSPORT_DESC_MAX];
        client_describe(c, desc, sizeof(desc));
        relay_refuse(c->relay, fd, desc, "max_connections");
        conn_unbegun(c);
        return;
    }
    list_add(&w->conns, &c->link);
    unproven_add(c->share, &c->unproven_link);
    if (c->place) /* with accept_proxy: evicts once its header is whole */
        unproven_placed(c->share);
    c->started = loop_now(w->loop);
    /* the client socket has its options from the listener (relay.c) */
    int err = io_start(w->loop, &c->client.io, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, side_event, c);
    if (err != 0) {
        relay_local_error(c->relay->stats, err);
        conn_close(c, END_ERROR);
        return;
    }
    if (rc->listen.kind == EP_HVSOCK || rc->accept_proxy == PROXY_V2 || c->ops->preamble != NULL) {
        c->state = CONN_ST_PREAMBLE;
        timer_start(w->loop, &c->timer, rc->preamble_timeout_ms, conn_timeout, c);
        return; /* wait for the client's first bytes */
    }
    c->ops->start(c);
}

void
conn_dispatch(struct conn *c, struct worker *w, struct unproven_share *share, bool place,
              struct loop *here)
{
    c->share = share;
    c->place = place;
    c->worker = w;
    atomic_fetch_add(&w->n_conns, 1);
    if (w->loop == here) {
        conn_begin(c);
        return;
    }
    if (loop_post(w->loop, conn_begin, c) != 0) {
        if (place)
            unproven_unclaim(share);
        close(c->client.io.fd);
        conn_unbegun(c);
    }
}

/* ---- workers */

struct worker *
worker_new(void)
{
    struct worker *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    list_init(&w->conns);
    w->loop = loop_new();
    if (w->loop == NULL) {
        free(w);
        return NULL;
    }
    return w;
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    int rc = loop_run(w->loop);

    if (rc != 0)
        log_warnx("worker loop failed: %s", strerror(-rc));
    return NULL;
}

int
worker_spawn(struct worker *w)
{
    int rc = pthread_create(&w->thread, NULL, worker_main, w);

    if (rc != 0)
        return -rc;
    w->has_thread = 1;
    return 0;
}

void
worker_close_all(struct worker *w)
{
    struct list *first;

    /* conn_close() unlinks each one it closes */
    while ((first = list_first(&w->conns)) != NULL)
        conn_close(list_entry(first, struct conn, link), END_SHUTDOWN);
}

size_t
worker_conns(struct worker *w, struct conn_info *out, size_t max)
{
    size_t n = 0;
    uint64_t now = loop_clock_ns();

    for (struct list *it = w->conns.next; it != &w->conns; it = it->next) {
        const struct conn *c = list_entry(it, struct conn, link);
        const struct relay_conf *rc = &c->relay->conf;
        if (n >= max) {
            n++;
            continue;
        }
        struct conn_info *ci = &out[n++];
        snprintf(ci->relay, sizeof(ci->relay), "%s", rc->name);
        /* a source from a PROXY header has no length of its own: its family's */
        transport_describe((const struct sockaddr *)&c->source,
                           c->proxy_hdr != NULL ? sizeof(c->source) : c->peer_len, ci->client,
                           sizeof(ci->client));
        if (c->route != NULL)
            endpoint_format(c->route, ci->target, sizeof(ci->target));
        else if (rc->router.enabled || rc->egress)
            snprintf(ci->target, sizeof(ci->target), "-");
        else
            endpoint_format(&rc->target, ci->target, sizeof(ci->target));
        ci->age_ms = (now - c->accepted_ns) / 1000000;
        ci->bytes_in = c->up.bytes;
        ci->bytes_out = c->down.bytes;
    }
    return n;
}

void
worker_free(struct worker *w)
{
    if (w == NULL)
        return;
    if (w->has_thread) {
        loop_stop(w->loop);
        pthread_join(w->thread, NULL);
    }
    pump_cache_clear(&w->pumps);
    loop_free(w->loop);
    free(w);
}
