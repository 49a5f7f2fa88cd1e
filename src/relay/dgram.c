/* dgram.c - datagram relays; see dgram.h.
 *
 *   udp -> stream (enclave side)
 *     client ──udp──► listen socket ──flow table: address -> id──► queue ──frames──► stream
 *     client ◄─sendto(address of id)─────────────────────────────────────frames─── stream
 *
 *   stream -> udp (host side)
 *     stream ──frames──► [dns_allow] ──flow table: id -> connected socket──udp──► target
 *     stream ◄─frames── queue ◄── recv on the flow's socket ◄───────────────udp── target
 *
 * A stream (struct dstream) goes DIALING (net/dial) -> UP -> CLOSED on the
 * udp side (the one stream it keeps; a new one replaces it after a backoff)
 * and GREETING -> UP -> CLOSED on the stream side. Frames
 * to send wait in a bounded queue; a datagram that does not fit is dropped.
 *
 * Objects that own an io watcher are freed only after the loop turn in
 * which they were closed (events for them may still sit in the batch), and
 * only once no deferred task of theirs is queued: closing puts them on a
 * dead list that reap() empties. */
#include "relay/dgram.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/backoff.h"
#include "core/list.h"
#include "core/log.h"
#include "net/allow.h"
#include "net/resolve.h"
#include "net/transport.h"
#include "proto/dns.h"
#include "proto/frame.h"
#include "relay/conn.h"
#include "relay/streams.h"

#define FLOW_BUCKETS 1024          /* hash chains per flow table (a power of 2) */
#define UDP_FLOWS_MAX 16384        /* flows of a udp listener: memory only */
#define FDS_DEFAULT 4096           /* max_fds 0: at most this many */
#define FDS_SHARE 8                /* max_fds 0: this fraction of RLIMIT_NOFILE */
#define FDS_MIN 2                  /* one stream and one flow socket */
#define TXQ_MAX (256 * 1024)       /* bytes queued for a stream before datagrams are dropped */
#define UDP_BUDGET 64              /* datagrams read per wakeup from one socket */
#define STREAM_BUDGET (256 * 1024) /* bytes read per wakeup from one stream */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define STABLE_MS 1000 /* a stream up this long resets the backoff */
#define GREETING_TIMEOUT_MS 10000
#define HVSOCK_LINE_MAX 64
#define SWEEP_MIN_MS 50
#define SWEEP_MAX_MS 1000
#define DROP_LOG_MS 1000 /* at most one drop line per reason per second */
#define DNS_REPLY_MAX (DNS_HDR_LEN + 256 + 4)

enum ds_state {
    DS_ST_DIALING,  /* udp side: d->dial resolves, connects, greets an hvsock device */
    DS_ST_GREETING, /* stream side, hvsock listener: waiting for "CONNECT port" */
    DS_ST_UP,
    DS_ST_LINGER, /* stream side, refused: closed but for its socket (ds_linger()) */
    DS_ST_CLOSED,
};

/* Frames waiting for a stream: buf[head..tail) is unwritten; frame is where
 * the first frame not yet wholly written starts (<= head). */
struct txq {
    uint8_t *buf;
    size_t head, tail, frame;
};

struct flow {
    struct flow *id_next, *addr_next; /* hash chains */
    struct list age;                  /* in the table's answered or waiting list */
    struct flow *dead_next;
    uint32_t id;
    uint32_t pending; /* datagrams sent towards the target not yet answered */
    uint64_t active;
    struct sockaddr_storage addr; /* udp side: the client */
    socklen_t addr_len;
    struct dstream *stream; /* stream side: the owner */
    struct io io;           /* stream side: socket connected to the target */
    struct task more;       /* stream side: reading continued after the budget */
};

struct flow_table {
    struct flow *by_id[FLOW_BUCKETS];
    struct flow *by_addr[FLOW_BUCKETS]; /* udp side only */
    /* least recently used first, each: flows with as many answers as
     * datagrams sent, and flows still waiting for some */
    struct list answered, waiting;
    size_t n;
};

struct dstream {
    struct list link; /* stream side: in d->streams (LINGER: d->lingering) */
    struct dstream *dead_next;
    struct dgram *d;
    uint64_t id;
    enum ds_state state;
    struct io io; /* io.fd -1 once closed */
    int readable, writable;
    uint8_t *rx; /* FRAME_MAX_LEN bytes; rx_len of them hold a partial frame */
    size_t rx_len;
    bool eof; /* stream side: its peer sent its last frame (a half-close): the
                 stream stays for the replies still awaited (ds_done()) */
    struct txq tx;
    struct flow_table *flows; /* stream side */
    struct timer timer;       /* greeting deadline; stream side: idle_timeout */
    struct task work;         /* continue after the budget; flush queued frames */
    struct sockaddr_storage peer;
    socklen_t peer_len;
    uint64_t started, up_since;
    uint64_t started_ns; /* loop_clock_ns() at accept (udp side: at the dial) */
    uint64_t active;     /* a frame in or out last (stream side: idle_timeout) */
    uint64_t frames_in, frames_out;
    size_t lingered;         /* LINGER: the peer's bytes dropped (transport_linger()) */
    struct stream_slot slot; /* stream side: in d->set */
};

struct dgram {
    struct relay *r; /* a reference: released by the last reap */
    struct loop *loop;
    int stopped;
    int resolving;                 /* a lookup will call back: keep d allocated */
    struct resolve_waiter *waiter; /* while resolving */
    int udp_side;                  /* listens on udp (enclave side) */
    /* udp side */
    struct io udp_io;
    int udp_readable;
    struct task udp_more;
    struct flow_table *flows;
    uint32_t next_flow;
    struct dstream *out;
    struct dial dial; /* out, while DIALING */
    struct timer retry;
    struct backoff backoff;
    /* stream side */
    struct list streams;
    struct list lingering; /* refused streams waiting for their peers' close */
    /* who holds the streams: at half of fd_budget a newcomer takes the
     * place of a stream of the peer holding the most, a silent one first
     * (relay/streams.h; idle_timeout stays this file's: it counts frames
     * both ways) */
    struct streams set;
    char what[CONF_NAME_MAX + 8]; /* "relay=NAME", for the set's log lines */
    unsigned fd_budget;           /* dgram_fd_budget() at the start: half for streams, */
    unsigned n_streams, n_socks;  /* half for flow sockets */
    /* both */
    struct timer sweep;
    struct task reap;
    struct flow *dead_flows;
    struct dstream *dead_streams;
    uint64_t drop_logged[DROP_COUNT], drop_quiet[DROP_COUNT];
};

/* One datagram in flight; every dgram relay runs on the main loop only. */
static uint8_t dgram_buf[65536];

static const char *const drop_names[DROP_COUNT] = {
    [DROP_OVERSIZE] = "oversize", [DROP_BACKLOG] = "backlog", [DROP_DENIED] = "denied",
    [DROP_NO_FLOW] = "no_flow",   [DROP_ERROR] = "error",
};

const char *
dgram_drop_name(enum dgram_drop d)
{
    return drop_names[d];
}

static void ds_step(struct dstream *s);
static void ds_timeout(struct timer *t);
static void out_connect(struct dgram *d);

static void
add(atomic_uint_fast64_t *counter, uint64_t n)
{
    atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

static const char *
relay_name(const struct dgram *d)
{
    return d->r->conf.name;
}

/* Whether a line about a datagram dropped for why is due: at most one per
 * reason and second. Returns true with *quiet the drops not logged since
 * the last line; else counts this one among them. */
static bool
drop_log_due(struct dgram *d, enum dgram_drop why, unsigned long long *quiet)
{
    uint64_t now = loop_now(d->loop);

    if (d->drop_logged[why] != 0 && now - d->drop_logged[why] < DROP_LOG_MS) {
        d->drop_quiet[why]++;
        return false;
    }
    *quiet = d->drop_quiet[why];
    d->drop_logged[why] = now;
    d->drop_quiet[why] = 0;
    return true;
}

/* Counts a dropped datagram and logs it (drop_log_due()). */
static void
drop(struct dgram *d, enum dgram_drop why, uint32_t flow, size_t len)
{
    unsigned long long quiet;

    add(&d->r->stats->dropped[why], 1);
    if (drop_log_due(d, why, &quiet))
        log_info("drop relay=%s reason=%s flow=%u size=%zu quiet_before=%llu", relay_name(d),
                 drop_names[why], flow, len, quiet);
}

/* ---- the send queue */

/* Appends a frame for flow. Returns 0, or -ENOBUFS when it does not fit
 * (the datagram is to be dropped) or -ENOMEM. */
static int
txq_put(struct txq *q, uint32_t flow, const uint8_t *payload, size_t len)
{
    size_t need = FRAME_HDR_LEN + len;

    if (q->buf == NULL && (q->buf = malloc(TXQ_MAX)) == NULL)
        return -ENOMEM;
    if (q->tail + need > TXQ_MAX && q->frame > 0) {
        memmove(q->buf, q->buf + q->frame, q->tail - q->frame);
        q->head -= q->frame;
        q->tail -= q->frame;
        q->frame = 0;
    }
    if (q->tail + need > TXQ_MAX)
        return -ENOBUFS;
    q->tail += frame_encode(q->buf + q->tail, TXQ_MAX - q->tail, flow, payload, len);
    return 0;
}

/* Moves q->frame past the frames now wholly written; adds their number and
 * payload bytes to *frames and *bytes. */
static void
txq_advance(struct txq *q, uint64_t *frames, uint64_t *bytes)
{
    while (q->frame < q->head) {
        struct frame f;
        size_t flen;
        if (frame_parse(q->buf + q->frame, q->tail - q->frame, &f, &flen, NULL) != PARSE_OK ||
            q->frame + flen > q->head)
            break;
        q->frame += flen;
        (*frames)++;
        *bytes += f.len;
    }
    if (q->head == q->tail)
        q->head = q->tail = q->frame = 0;
}

/* Empties q; returns how many frames were not wholly written. */
static uint64_t
txq_clear(struct txq *q)
{
    uint64_t n = 0, bytes = 0;

    if (q->buf != NULL) {
        q->head = q->tail;
        txq_advance(q, &n, &bytes);
    }
    free(q->buf);
    memset(q, 0, sizeof(*q));
    return n;
}

/* ---- flow tables: by id, by client address (udp side), and by age
 *
 * A full table gives up a flow that has had its answers first (its client
 * is most likely done), the least recently used of them; only when every
 * flow waits for an answer, the least recently used of those (its answer
 * is lost). So a client opening flows faster than they expire, each
 * answered, recycles its own flows, not another client's in flight; one
 * whose datagrams stay unanswered still recycles the oldest flows in
 * flight (the stream side cannot tell the enclave's clients apart). */

static size_t
id_bucket(uint32_t id)
{
    return (uint32_t)(id * 2654435761u) % FLOW_BUCKETS;
}

static size_t
addr_bucket(const struct sockaddr_storage *a, socklen_t len)
{
    const uint8_t *p = (const uint8_t *)a;
    uint32_t h = 2166136261u;

    for (socklen_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h % FLOW_BUCKETS;
}

static struct flow *
ft_by_id(struct flow_table *t, uint32_t id)
{
    struct flow *f = t->by_id[id_bucket(id)];

    while (f != NULL && f->id != id)
        f = f->id_next;
    return f;
}

static struct flow *
ft_by_addr(struct flow_table *t, const struct sockaddr_storage *a, socklen_t len)
{
    struct flow *f = t->by_addr[addr_bucket(a, len)];

    while (f != NULL && (f->addr_len != len || memcmp(&f->addr, a, len) != 0))
        f = f->addr_next;
    return f;
}

/* Returns a new empty table, or NULL. */
static struct flow_table *
ft_new(void)
{
    struct flow_table *t = calloc(1, sizeof(*t));

    if (t != NULL) {
        list_init(&t->answered);
        list_init(&t->waiting);
    }
    return t;
}

/* Returns the least recently used flow of list l, NULL when it is empty. */
static struct flow *
ft_first(const struct list *l)
{
    struct list *first = list_first(l);

    return first != NULL ? list_entry(first, struct flow, age) : NULL;
}

/* Returns the flow t gives up first (see above), NULL when t is empty. */
static struct flow *
ft_victim(const struct flow_table *t)
{
    struct flow *f = ft_first(&t->answered);

    return f != NULL ? f : ft_first(&t->waiting);
}

static void
ft_insert(struct flow_table *t, struct flow *f, int by_addr)
{
    size_t b = id_bucket(f->id);

    f->id_next = t->by_id[b];
    t->by_id[b] = f;
    if (by_addr) {
        b = addr_bucket(&f->addr, f->addr_len);
        f->addr_next = t->by_addr[b];
        t->by_addr[b] = f;
    }
    list_add_tail(&t->answered, &f->age);
    t->n++;
}

static void
ft_remove(struct flow_table *t, struct flow *f, int by_addr)
{
    struct flow **pp = &t->by_id[id_bucket(f->id)];

    while (*pp != f)
        pp = &(*pp)->id_next;
    *pp = f->id_next;
    if (by_addr) {
        pp = &t->by_addr[addr_bucket(&f->addr, f->addr_len)];
        while (*pp != f)
            pp = &(*pp)->addr_next;
        *pp = f->addr_next;
    }
    list_del(&f->age);
    t->n--;
}

/* Marks f used now: to the end of its list. */
static void
ft_touch(struct flow_table *t, struct flow *f, uint64_t now)
{
    f->active = now;
    list_del(&f->age);
    list_add_tail(f->pending > 0 ? &t->waiting : &t->answered, &f->age);
}

/* A datagram of f went towards the target: f waits for its answer. */
static void
ft_sent(struct flow_table *t, struct flow *f, uint64_t now)
{
    if (f->pending < UINT32_MAX)
        f->pending++;
    ft_touch(t, f, now);
}

/* A datagram for f came from the target: an answer (a target that answers
 * one datagram with several leaves f answered). */
static void
ft_answered(struct flow_table *t, struct flow *f, uint64_t now)
{
    if (f->pending > 0)
        f->pending--;
    ft_touch(t, f, now);
}

/* ---- freeing after the loop turn */

static void
reap(struct task *t)
{
    struct dgram *d = t->data;

    for (struct dstream *s = d->dead_streams; s != NULL; s = s->dead_next)
        if (task_queued(&s->work))
            goto later;
    for (struct flow *f = d->dead_flows; f != NULL; f = f->dead_next)
        if (task_queued(&f->more))
            goto later;
    while (d->dead_flows != NULL) {
        struct flow *f = d->dead_flows;
        d->dead_flows = f->dead_next;
        free(f);
    }
    while (d->dead_streams != NULL) {
        struct dstream *s = d->dead_streams;
        d->dead_streams = s->dead_next;
        free(s);
    }
    if (!d->stopped)
        return;
    if (task_queued(&d->udp_more))
        goto later;
    if (d->resolving && !resolve_cancel(d->waiter))
        return; /* the answer is posted: resolved() reaps again */
    free(d->flows);
    relay_unref(d->r);
    free(d);
    return;

later:
    loop_defer(d->loop, &d->reap, reap, d);
}

static void
schedule_reap(struct dgram *d)
{
    loop_defer(d->loop, &d->reap, reap, d);
}

/* Removes f from t and closes its socket; the memory goes at reap(). */
static void
flow_release(struct dgram *d, struct flow_table *t, struct flow *f)
{
    ft_remove(t, f, d->udp_side);
    atomic_fetch_sub_explicit(&d->r->stats->flows, 1, memory_order_relaxed);
    if (f->io.fd >= 0) {
        io_stop(d->loop, &f->io);
        transport_udp_release(f->io.fd);
        f->io.fd = -1;
        d->n_socks--;
    }
    f->dead_next = d->dead_flows;
    d->dead_flows = f;
    schedule_reap(d);
}

/* Makes room in t for a new flow: ft_victim() goes before its idle
 * timeout, counted; counted apart too when it still waited for an answer
 * (lost with it). */
static void
flow_evict(struct dgram *d, struct flow_table *t)
{
    struct flow *f = ft_victim(t);

    add(&d->r->stats->flows_evicted, 1);
    if (f->pending > 0)
        add(&d->r->stats->flows_evicted_waiting, 1);
    flow_release(d, t, f);
}

/* ---- the udp target's address (stream side) */

/* The next new flow finds the answer (or the failure) in the cache. */
static void
resolved(void *arg, int err)
{
    struct dgram *d = arg;

    (void)err;
    d->resolving = 0;
    if (d->stopped)
        schedule_reap(d);
}

/* Fills *ss with the target's address. Returns 0, -EAGAIN while a lookup
 * runs (resolved() is called), or -errno. */
static int
target_addr(struct dgram *d, struct sockaddr_storage *ss, socklen_t *len)
{
    const struct endpoint *ep = &d->r->conf.target;
    int rc = transport_addr(ep, ss, len);

    if (rc == -EAGAIN)
        rc = resolve_cached(ep->host, (uint16_t)ep->port, ss, len);
    if (rc != -EAGAIN || d->resolving)
        return rc;
    rc = resolve_start(d->loop, ep->host, NULL, resolved, d, &d->waiter);
    if (rc != 0)
        return rc;
    d->resolving = 1;
    return -EAGAIN;
}

/* ---- streams */

static void ds_kick(struct dstream *s);

static struct dstream *
ds_new(struct dgram *d, int fd)
{
    struct dstream *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->d = d;
    s->id = conn_next_id();
    s->io.fd = fd;
    s->started = loop_now(d->loop);
    s->started_ns = loop_clock_ns();
    return s;
}

static void
ds_describe(const struct dstream *s, char *buf, size_t len)
{
    if (s->d->udp_side)
        endpoint_format(&s->d->r->conf.target, buf, len);
    else
        transport_describe((const struct sockaddr *)&s->peer, s->peer_len, buf, len);
}

static void
retry_event(struct timer *t)
{
    out_connect(t->data);
}

/* The last of s: its socket closes, it leaves the streams (stream side)
 * and is freed after the loop turn. */
static void
ds_finish(struct dstream *s, bool reset)
{
    struct dgram *d = s->d;

    s->state = DS_ST_CLOSED;
    if (s->io.fd >= 0) {
        if (reset) {
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt(s->io.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        io_stop(d->loop, &s->io);
        close(s->io.fd);
        s->io.fd = -1;
    }
    timer_stop(d->loop, &s->timer);
    if (!d->udp_side) {
        list_del(&s->link);
        d->n_streams--;
        streams_remove(&s->slot);
    }
    s->dead_next = d->dead_streams;
    d->dead_streams = s;
    schedule_reap(d);
}

/* Stream side, refused (a bad CONNECT line, a bad frame): its peer may
 * have sent more, and a close with that unread would be a reset, which
 * may also drop what was written to it before (an hvsock device's
 * handshake, replies). So the write side is shut and what still comes is
 * dropped until the peer closes, as the stream relays do (conn.c, LINGER):
 * for TRANSPORT_LINGER_MS at most, its place kept (the streams stay
 * bounded) but the first a newcomer takes. Returns false when the socket
 * may be closed at once: no refusal, the peer closed already, sent too
 * much, or the socket failed. */
static bool
ds_linger(struct dstream *s, enum conn_end end)
{
    struct dgram *d = s->d;

    if (d->udp_side || (end != END_BAD_PREAMBLE && end != END_BAD_FRAME) || s->io.fd < 0 ||
        shutdown(s->io.fd, SHUT_WR) != 0 || transport_linger(s->io.fd, &s->lingered) != 0 ||
        io_update(d->loop, &s->io, EPOLLIN | EPOLLRDHUP) != 0)
        return false;
    s->state = DS_ST_LINGER;
    s->readable = 0; /* read to EAGAIN: the next edge says more came */
    list_del(&s->link);
    list_add(&d->lingering, &s->link);
    streams_retire(&s->slot);
    timer_start(d->loop, &s->timer, TRANSPORT_LINGER_MS, ds_timeout, s);
    return true;
}

/* The one way a stream ends: idempotent. The udp side schedules the next
 * stream; its flows stay. A lingering stream (its end logged already) is
 * finished: taken its place, its time is up, or the relay stops. */
static void
ds_close(struct dstream *s, enum conn_end end)
{
    struct dgram *d = s->d;
    struct relay_stats *st = d->r->stats;
    enum ds_state was = s->state;
    uint64_t now = loop_now(d->loop);
    char peer[TRANSPORT_DESC_MAX];

    if (s->state == DS_ST_LINGER)
        ds_finish(s, false);
    if (s->state == DS_ST_CLOSED)
        return;
    s->state = DS_ST_CLOSED;
    if (was == DS_ST_DIALING)
        dial_cancel(&d->dial);
    timer_stop(d->loop, &s->timer);
    uint64_t lost = txq_clear(&s->tx);
    add(&st->dropped[DROP_BACKLOG], lost);
    free(s->rx);
    s->rx = NULL;
    if (s->flows != NULL) {
        for (struct flow *f; (f = ft_victim(s->flows)) != NULL;)
            flow_release(d, s->flows, f);
        free(s->flows);
        s->flows = NULL;
    }

    ds_describe(s, peer, sizeof(peer));
    int counted = !d->udp_side || was == DS_ST_UP;
    if (counted) {
        atomic_fetch_sub_explicit(&st->open, 1, memory_order_relaxed);
        add(&st->ended[end], 1);
        relay_hist_observe(&st->conn_time, loop_clock_ns() - s->started_ns);
        log_info("close relay=%s conn=%llu %s=%s duration_ms=%llu frames_in=%llu frames_out=%llu "
                 "queued_dropped=%llu end=%s",
                 relay_name(d), (unsigned long long)s->id, d->udp_side ? "target" : "client", peer,
                 (unsigned long long)(now - s->started), (unsigned long long)s->frames_in,
                 (unsigned long long)s->frames_out, (unsigned long long)lost, conn_end_name(end));
    }
    if (d->udp_side) {
        if (d->out == s)
            d->out = NULL;
        if (!d->stopped) {
            if (was == DS_ST_UP && now - s->up_since >= STABLE_MS)
                backoff_reset(&d->backoff);
            unsigned delay = backoff_next(&d->backoff);
            log_info("relay=%s stream to %s %s; next attempt in %u ms", relay_name(d), peer,
                     was == DS_ST_UP ? "lost" : "not established", delay);
            timer_start(d->loop, &d->retry, delay, retry_event, d);
        }
    }
    if (!ds_linger(s, end))
        ds_finish(s, end == END_RESET);
}

static void
ds_timeout(struct timer *t)
{
    struct dstream *s = t->data;
    uint64_t now = loop_now(s->d->loop);
    unsigned idle = s->d->r->conf.idle_timeout_ms;

    switch (s->state) {
    case DS_ST_GREETING:
        ds_close(s, END_PREAMBLE_TIMEOUT);
        break;
    case DS_ST_UP: /* stream side: frames only stamp s->active; checked lazily here */
        if (now - s->active >= idle)
            ds_close(s, END_IDLE);
        else
            timer_start(s->d->loop, &s->timer, idle - (now - s->active), ds_timeout, s);
        break;
    case DS_ST_LINGER: /* its peer did not close in time */
        ds_finish(s, false);
        break;
    case DS_ST_DIALING: /* the dial has its own timeout */
    case DS_ST_CLOSED:
        break;
    }
}

/* Stream side, once up: a stream that carries no frame either way for
 * idle_timeout is closed, so that silent peers cannot hold streams. */
static void
ds_idle_start(struct dstream *s)
{
    unsigned idle = s->d->r->conf.idle_timeout_ms;

    s->active = loop_now(s->d->loop);
    if (!s->d->udp_side && idle > 0)
        timer_start(s->d->loop, &s->timer, idle, ds_timeout, s);
}

static void
ds_up(struct dstream *s)
{
    struct dgram *d = s->d;
    struct relay_stats *st = d->r->stats;

    s->state = DS_ST_UP;
    s->up_since = loop_now(d->loop);
    timer_stop(d->loop, &s->timer);
    ds_idle_start(s);
    if (d->udp_side) {
        char target[TRANSPORT_DESC_MAX];
        relay_hist_observe(&st->connect_time, loop_clock_ns() - s->started_ns);
        add(&st->open, 1);
        add(&st->total, 1);
        endpoint_format(&d->r->conf.target, target, sizeof(target));
        log_info("relay=%s conn=%llu stream to %s up", relay_name(d), (unsigned long long)s->id,
                 target);
    }
    ds_kick(s);
}

/* Handles one datagram that came over the stream. */
static void udp_reply(struct dgram *d, const struct frame *fr);
static void target_datagram(struct dstream *s, const struct frame *fr);

/* Handles every whole frame in rx. Returns 0, or -1 when the stream was
 * closed (a malformed frame). */
static int
ds_frames(struct dstream *s)
{
    size_t off = 0;

    for (;;) {
        struct frame fr;
        size_t flen;
        const char *err = NULL;
        enum parse_result pr = frame_parse(s->rx + off, s->rx_len - off, &fr, &flen, &err);
        if (pr == PARSE_AGAIN)
            break;
        if (pr == PARSE_INVALID) {
            char peer[TRANSPORT_DESC_MAX];
            ds_describe(s, peer, sizeof(peer));
            log_warnx("relay=%s conn=%llu peer=%s bad frame after %llu frames: %s",
                      relay_name(s->d), (unsigned long long)s->id, peer,
                      (unsigned long long)s->frames_in, err);
            ds_close(s, END_BAD_FRAME);
            return -1;
        }
        s->frames_in++;
        s->active = loop_now(s->d->loop);
        streams_touch(&s->slot);
        if (s->d->udp_side)
            udp_reply(s->d, &fr);
        else
            target_datagram(s, &fr);
        off += flen;
    }
    memmove(s->rx, s->rx + off, s->rx_len - off);
    s->rx_len -= off;
    return 0;
}

/* The peer of s shut down its side: a frame begun is refused; on the
 * stream side, what it sent still gets its replies (ds_done()). Returns -1
 * when s was closed. */
static int
ds_eof(struct dstream *s)
{
    if (s->state != DS_ST_UP) { /* greeting */
        ds_close(s, END_EOF);
        return -1;
    }
    if (s->rx_len > 0) {
        char peer[TRANSPORT_DESC_MAX];
        ds_describe(s, peer, sizeof(peer));
        log_warnx("relay=%s conn=%llu peer=%s bad frame after %llu frames: the stream ended "
                  "inside one (%zu bytes of it)",
                  relay_name(s->d), (unsigned long long)s->id, peer,
                  (unsigned long long)s->frames_in, s->rx_len);
        ds_close(s, END_BAD_FRAME);
        return -1;
    }
    if (s->d->udp_side) {
        ds_close(s, END_EOF);
        return -1;
    }
    s->eof = true;
    s->readable = 0;
    return 0;
}

/* Stream side, half-closed: whether nothing is left to send, nor awaited
 * from the target (a flow that still waits is forgotten at
 * flow_idle_timeout, and sweep() looks again). */
static bool
ds_done(const struct dstream *s)
{
    return s->eof && s->tx.head == s->tx.tail && list_empty(&s->flows->waiting);
}

/* Reads what the stream has into rx, up to *budget bytes. Returns the
 * count, 0 when nothing was there, or -1 when the stream was closed. */
static ssize_t
ds_fill(struct dstream *s)
{
    if (s->rx == NULL && (s->rx = malloc(FRAME_MAX_LEN)) == NULL) {
        ds_close(s, END_ERROR);
        return -1;
    }
    for (;;) {
        ssize_t n = read(s->io.fd, s->rx + s->rx_len, FRAME_MAX_LEN - s->rx_len);
        if (n > 0) {
            s->rx_len += (size_t)n;
            return n;
        }
        if (n == 0)
            return ds_eof(s);
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) {
            s->readable = 0;
            return 0;
        }
        ds_close(s, errno == ECONNRESET || errno == EPIPE ? END_RESET : END_ERROR);
        return -1;
    }
}

/* Writes out queued frames. Returns 0, or -1 when the stream was closed. */
static int
ds_flush(struct dstream *s)
{
    struct dgram *d = s->d;
    struct relay_stats *st = d->r->stats;
    struct txq *q = &s->tx;

    while (q->head < q->tail && s->writable) {
        ssize_t n = write(s->io.fd, q->buf + q->head, q->tail - q->head);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                s->writable = 0;
                break;
            }
            ds_close(s, errno == ECONNRESET || errno == EPIPE ? END_RESET : END_ERROR);
            return -1;
        }
        uint64_t frames = 0, bytes = 0;
        q->head += (size_t)n;
        txq_advance(q, &frames, &bytes);
        s->frames_out += frames;
        if (frames > 0) {
            s->active = loop_now(d->loop);
            streams_touch(&s->slot);
        }
        /* the udp side sends clients' datagrams; the stream side replies */
        add(d->udp_side ? &st->datagrams_in : &st->datagrams_out, frames);
        add(d->udp_side ? &st->bytes_in : &st->bytes_out, bytes);
    }
    return 0;
}

/* Reads one "WORD port\n" line of the hvsock handshake into rx. Returns
 * PARSE_OK with the line NUL-terminated in line (the bytes after it stay in
 * rx), PARSE_AGAIN, or PARSE_INVALID (the stream is not closed here). */
static enum parse_result
ds_line(struct dstream *s, char *line)
{
    ssize_t n = ds_fill(s);

    if (n < 0)
        return PARSE_AGAIN; /* closed */
    uint8_t *nl = memchr(s->rx, '\n', s->rx_len < HVSOCK_LINE_MAX ? s->rx_len : HVSOCK_LINE_MAX);
    if (nl == NULL)
        return s->rx_len >= HVSOCK_LINE_MAX ? PARSE_INVALID : PARSE_AGAIN;
    size_t len = (size_t)(nl - s->rx);
    memcpy(line, s->rx, len);
    line[len] = '\0';
    memmove(s->rx, nl + 1, s->rx_len - len - 1);
    s->rx_len -= len + 1;
    return PARSE_OK;
}

static void
ds_greeting(struct dstream *s)
{
    char line[HVSOCK_LINE_MAX + 1];
    enum parse_result pr = ds_line(s, line);

    if (s->state == DS_ST_CLOSED || pr == PARSE_AGAIN)
        return;
    if (pr == PARSE_INVALID ||
        transport_hvsock_answer(s->io.fd, line, s->d->r->conf.listen.port) != 0) {
        log_warnx("relay=%s conn=%llu bad hvsock CONNECT line", relay_name(s->d),
                  (unsigned long long)s->id);
        ds_close(s, END_BAD_PREAMBLE);
        return;
    }
    ds_up(s);
}

/* The dispatcher: runs the stream's state as far as it goes. */
static void
ds_step(struct dstream *s)
{
    switch (s->state) {
    case DS_ST_DIALING:
        break;
    case DS_ST_GREETING:
        if (s->readable)
            ds_greeting(s);
        break;
    case DS_ST_UP: {
        size_t budget = STREAM_BUDGET;
        /* frames read with a handshake line are handled first */
        if (s->rx_len > 0 && ds_frames(s) != 0)
            return;
        while (s->readable && budget > 0) {
            ssize_t n = ds_fill(s);
            if (n < 0 || ds_frames(s) != 0)
                return;
            budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
        }
        if (ds_flush(s) != 0)
            return;
        if (ds_done(s))
            ds_close(s, END_EOF);
        else if (s->readable) /* over budget: continue after others had a turn */
            ds_kick(s);
        break;
    }
    case DS_ST_LINGER:
        if (s->readable && transport_linger(s->io.fd, &s->lingered)) {
            ds_finish(s, false);
            break;
        }
        s->readable = 0;
        break;
    case DS_ST_CLOSED:
        break;
    }
}

static void
ds_work(struct task *t)
{
    ds_step(t->data);
}

/* Runs s after the current batch: queued frames get written, reading goes
 * on. Never re-enters the caller. */
static void
ds_kick(struct dstream *s)
{
    if (s->state != DS_ST_CLOSED)
        loop_defer(s->d->loop, &s->work, ds_work, s);
}

static void
ds_event(struct io *io, uint32_t events)
{
    struct dstream *s = io->data;

    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        s->readable = 1;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        s->writable = 1;
    ds_step(s);
}

/* ---- udp side: the listener and its one stream */

static void
out_dialed(void *arg, int fd, enum dial_result why)
{
    struct dstream *s = arg;
    struct dgram *d = s->d;
    const struct relay_conf *rc = &d->r->conf;
    int err = fd;

    if (fd >= 0 &&
        (err = io_start(d->loop, &s->io, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, ds_event, s)) != 0) {
        close(fd);
        s->io.fd = -1;
        why = DIAL_CONNECT_FAILED;
    }
    if (err < 0) {
        ds_close(s, relay_dial_failed(d->r, s->id, &rc->target, err, why));
        return;
    }
    transport_tune(fd, rc->target.kind, rc->keepalive);
    s->writable = 1; /* a fresh connection: the queued frames go at once */
    ds_up(s);
}

/* Starts the next stream towards the target (d->out). */
static void
out_connect(struct dgram *d)
{
    if (d->stopped || d->out != NULL)
        return;
    struct dstream *s = ds_new(d, -1);
    if (s == NULL) {
        log_warnx("relay=%s: out of memory for the stream", relay_name(d));
        timer_start(d->loop, &d->retry, BACKOFF_MAX_MS, retry_event, d);
        return;
    }
    d->out = s;
    s->state = DS_ST_DIALING;
    dial_start(&d->dial, d->loop, &d->r->conf.target, d->r->conf.connect_timeout_ms, NULL,
               out_dialed, s);
}

static struct flow *
udp_flow_new(struct dgram *d, const struct sockaddr_storage *from, socklen_t len)
{
    if (d->flows->n >= UDP_FLOWS_MAX)
        flow_evict(d, d->flows);
    struct flow *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    do
        f->id = d->next_flow++;
    while (f->id == 0 || ft_by_id(d->flows, f->id) != NULL);
    memcpy(&f->addr, from, len);
    f->addr_len = len;
    f->io.fd = -1;
    ft_insert(d->flows, f, 1);
    add(&d->r->stats->flows, 1);
    return f;
}

static void
udp_datagram(struct dgram *d, const struct sockaddr_storage *from, socklen_t from_len, size_t len)
{
    const struct relay_conf *rc = &d->r->conf;

    if (rc->n_allow > 0 && !allow_match(rc->allow, rc->n_allow, (const struct sockaddr *)from)) {
        drop(d, DROP_DENIED, 0, len);
        return;
    }
    struct flow *f = ft_by_addr(d->flows, from, from_len);
    if (f == NULL && (f = udp_flow_new(d, from, from_len)) == NULL) {
        drop(d, DROP_ERROR, 0, len);
        return;
    }
    ft_touch(d->flows, f, loop_now(d->loop));
    if (len > rc->max_datagram) {
        drop(d, DROP_OVERSIZE, f->id, len);
        return;
    }
    struct dstream *s = d->out;
    if (s == NULL || txq_put(&s->tx, f->id, dgram_buf, len) != 0) {
        drop(d, DROP_BACKLOG, f->id, len);
        return;
    }
    ft_sent(d->flows, f, loop_now(d->loop));
    if (s->state == DS_ST_UP)
        ds_kick(s);
}

static void udp_read(struct dgram *d);

static void
udp_more(struct task *t)
{
    struct dgram *d = t->data;

    if (!d->stopped) /* the socket may have a new owner */
        udp_read(d);
}

static void
udp_read(struct dgram *d)
{
    for (int i = 0; i < UDP_BUDGET; i++) {
        struct sockaddr_storage from;
        socklen_t from_len = sizeof(from);

        memset(&from, 0, sizeof(from));
        ssize_t n = recvfrom(d->r->listen_fd, dgram_buf, sizeof(dgram_buf), MSG_TRUNC,
                             (struct sockaddr *)&from, &from_len);
        if (n < 0) {
            if (errno == EAGAIN) {
                d->udp_readable = 0;
                return;
            }
            continue; /* EINTR, or an error that concerns one client */
        }
        udp_datagram(d, &from, from_len, (size_t)n);
    }
    loop_defer(d->loop, &d->udp_more, udp_more, d);
}

static void
udp_event(struct io *io, uint32_t events)
{
    struct dgram *d = io->data;

    (void)events;
    d->udp_readable = 1;
    udp_read(d);
}

/* A reply from the target for flow fr->flow: back to that client. */
static void
udp_reply(struct dgram *d, const struct frame *fr)
{
    struct flow *f = ft_by_id(d->flows, fr->flow);

    if (f == NULL) {
        drop(d, DROP_NO_FLOW, fr->flow, fr->len);
        return;
    }
    ft_answered(d->flows, f, loop_now(d->loop));
    if (fr->len > d->r->conf.max_datagram) {
        drop(d, DROP_OVERSIZE, fr->flow, fr->len);
        return;
    }
    ssize_t n =
        sendto(d->r->listen_fd, fr->payload, fr->len, 0, (struct sockaddr *)&f->addr, f->addr_len);
    if (n < 0) {
        drop(d, errno == EAGAIN || errno == ENOBUFS ? DROP_BACKLOG : DROP_ERROR, fr->flow, fr->len);
        return;
    }
    add(&d->r->stats->datagrams_out, 1);
    add(&d->r->stats->bytes_out, fr->len);
}

/* ---- stream side: accepted streams, a socket per flow towards the target */

static void flow_read(struct flow *f);

static void
flow_more(struct task *t)
{
    struct flow *f = t->data;

    if (f->io.fd >= 0) /* not released meanwhile */
        flow_read(f);
}

/* Reads the target's replies for f and queues them on its stream. */
static void
flow_read(struct flow *f)
{
    struct dstream *s = f->stream;
    struct dgram *d = s->d;

    for (int i = 0; i < UDP_BUDGET; i++) {
        ssize_t n = recv(f->io.fd, dgram_buf, sizeof(dgram_buf), MSG_TRUNC);
        if (n < 0) {
            if (errno == EAGAIN) {
                ds_kick(s);
                return;
            }
            /* EINTR; ECONNREFUSED: an earlier datagram met a closed port */
            continue;
        }
        ft_answered(s->flows, f, loop_now(d->loop));
        if ((size_t)n > d->r->conf.max_datagram) {
            drop(d, DROP_OVERSIZE, f->id, (size_t)n);
            continue;
        }
        if (txq_put(&s->tx, f->id, dgram_buf, (size_t)n) != 0)
            drop(d, DROP_BACKLOG, f->id, (size_t)n);
    }
    ds_kick(s);
    loop_defer(d->loop, &f->more, flow_more, f);
}

static void
flow_event(struct io *io, uint32_t events)
{
    (void)events;
    flow_read(io->data);
}

/* Makes room for a new flow socket of stream s. A stream holds at most
 * max_flows; below that it takes a free socket while the relay has one (its
 * flow sockets are half of its fd budget). When all are in use they are
 * shared fairly among the streams that hold some (a stream that holds none,
 * a silent one, takes no share from the others): a stream at its share
 * gives up its own least recently used flow; one below it takes one from
 * the stream that holds the most (which is then above its share). So no
 * peer holds more than the budget, nor keeps another stream from its share
 * for long, nor shrinks the others' shares by connections that send
 * nothing. */
static void
flow_room(struct dstream *s)
{
    struct dgram *d = s->d;
    unsigned socks = d->fd_budget - d->fd_budget / 2;
    unsigned holders = s->flows->n == 0; /* s, about to hold one */
    struct dstream *most = s;
    struct list *pos, *tmp;

    if (s->flows->n >= d->r->conf.max_flows) {
        while (s->flows->n >= d->r->conf.max_flows)
            flow_evict(d, s->flows);
        return;
    }
    if (d->n_socks < socks)
        return;
    list_for_each_safe(pos, tmp, &d->streams) {
        struct dstream *o = list_entry(pos, struct dstream, link);
        holders += o->flows->n > 0;
        if (o->flows->n > most->flows->n)
            most = o;
    }
    flow_evict(d, s->flows->n >= socks / holders ? s->flows : most->flows);
}

/* A new flow of stream s: a socket connected to the target. Returns NULL
 * (the datagram is dropped and counted here) when there is none. */
static struct flow *
target_flow_new(struct dstream *s, uint32_t id, size_t len)
{
    struct dgram *d = s->d;
    struct sockaddr_storage ss;
    socklen_t sslen;

    int rc = target_addr(d, &ss, &sslen);
    if (rc != 0) {
        if (rc != -EAGAIN && !relay_local_error(d->r->stats, rc)) /* resolver busy, no memory */
            log_debug("relay=%s: target unresolved: %s", relay_name(d), strerror(-rc));
        drop(d, DROP_ERROR, id, len);
        return NULL;
    }
    flow_room(s);
    struct flow *f = calloc(1, sizeof(*f));
    int fd = f != NULL ? transport_udp_connect((struct sockaddr *)&ss, sslen) : -ENOMEM;
    if (fd >= 0 && (rc = io_start(d->loop, &f->io, fd, EPOLLIN, flow_event, f)) != 0) {
        close(fd);
        fd = rc;
    }
    if (fd < 0) { /* the drop line says it, at most once a second */
        relay_local_error(d->r->stats, fd);
        log_debug("relay=%s conn=%llu flow=%u: no socket to the target: %s", relay_name(d),
                  (unsigned long long)s->id, id, strerror(-fd));
        free(f);
        drop(d, DROP_ERROR, id, len);
        return NULL;
    }
    d->n_socks++;
    f->id = id;
    f->stream = s;
    ft_insert(s->flows, f, 0);
    add(&d->r->stats->flows, 1);
    return f;
}

/* Applies dns_allow to a query. Returns 1 when it may pass; otherwise
 * answers REFUSED on the stream, counts and logs, and returns 0. */
static int
dns_check(struct dstream *s, const struct frame *fr)
{
    struct dgram *d = s->d;
    const struct relay_conf *rc = &d->r->conf;
    struct dns_question q;
    const char *why = NULL;
    uint8_t reply[DNS_REPLY_MAX];

    unsigned long long quiet;
    enum parse_result pr = dns_parse_query(fr->payload, fr->len, &q, &why);
    if (pr == PARSE_OK) {
        for (size_t i = 0; i < rc->n_dns_allow; i++)
            if (dns_name_match(rc->dns_allow[i], q.name))
                return 1;
    }
    /* a peer may send denied queries as fast as it likes: lines as drops */
    if (pr == PARSE_OK && drop_log_due(d, DROP_DENIED, &quiet))
        log_info("dns_denied relay=%s conn=%llu flow=%u name=%s type=%u quiet_before=%llu",
                 rc->name, (unsigned long long)s->id, fr->flow, q.name[0] ? q.name : ".", q.qtype,
                 quiet);
    else if (pr != PARSE_OK && drop_log_due(d, DROP_DENIED, &quiet))
        log_info("dns_denied relay=%s conn=%llu flow=%u reason=\"%s\" quiet_before=%llu", rc->name,
                 (unsigned long long)s->id, fr->flow, pr == PARSE_AGAIN ? "truncated query" : why,
                 quiet);
    add(&d->r->stats->dropped[DROP_DENIED], 1);
    size_t n = dns_error_reply(fr->payload, fr->len, pr == PARSE_OK ? &q : NULL, DNS_RCODE_REFUSED,
                               reply, sizeof(reply));
    if (n > 0 && txq_put(&s->tx, fr->flow, reply, n) != 0)
        drop(d, DROP_BACKLOG, fr->flow, n);
    return 0;
}

/* A datagram from the enclave for the target. */
static void
target_datagram(struct dstream *s, const struct frame *fr)
{
    struct dgram *d = s->d;

    if (fr->len > d->r->conf.max_datagram) {
        drop(d, DROP_OVERSIZE, fr->flow, fr->len);
        return;
    }
    if (d->r->conf.n_dns_allow > 0 && !dns_check(s, fr))
        return;
    struct flow *f = ft_by_id(s->flows, fr->flow);
    if (f == NULL && (f = target_flow_new(s, fr->flow, fr->len)) == NULL)
        return;
    ft_touch(s->flows, f, loop_now(d->loop));
    ssize_t n = send(f->io.fd, fr->payload, fr->len, 0);
    if (n < 0 && errno == ECONNREFUSED) /* that was an earlier datagram's ICMP */
        n = send(f->io.fd, fr->payload, fr->len, 0);
    if (n < 0) {
        drop(d, errno == EAGAIN || errno == ENOBUFS ? DROP_BACKLOG : DROP_ERROR, fr->flow, fr->len);
        return;
    }
    ft_sent(s->flows, f, loop_now(d->loop));
    add(&d->r->stats->datagrams_in, 1);
    add(&d->r->stats->bytes_in, fr->len);
}

/* The set ends a stream: a newcomer takes its place (idle_timeout is
 * this file's, the set's is 0). */
static void
ds_evicted(struct stream_slot *slot, enum streams_end why)
{
    (void)why;
    ds_close(slot->data, END_EVICTED);
}

int
dgram_accept(struct relay *r, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
    struct dgram *d = r->dgram;
    struct dstream *s;

    if (d == NULL)
        return -ESHUTDOWN;
    int rc = -ENOMEM;
    if ((s = ds_new(d, fd)) != NULL)
        s->slot.data = s;
    if (s == NULL || (s->flows = ft_new()) == NULL ||
        (rc = streams_admit(&d->set, &s->slot, fd, true)) != 0 ||
        (rc = io_start(d->loop, &s->io, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, ds_event, s)) != 0) {
        if (s != NULL) {
            streams_remove(&s->slot);
            free(s->flows);
        }
        free(s);
        return rc;
    }
    memcpy(&s->peer, peer, peer_len);
    s->peer_len = peer_len;
    transport_tune(fd, r->conf.listen.kind, r->conf.keepalive);
    list_add(&d->streams, &s->link);
    d->n_streams++;
    add(&r->stats->open, 1);
    add(&r->stats->total, 1);
    if (r->conf.listen.kind == EP_HVSOCK) {
        s->state = DS_ST_GREETING;
        timer_start(d->loop, &s->timer, GREETING_TIMEOUT_MS, ds_timeout, s);
    } else {
        s->state = DS_ST_UP;
        s->up_since = s->started;
        ds_idle_start(s);
    }
    return 0;
}

/* ---- idle flows */

static void
sweep_list(struct dgram *d, struct flow_table *t, const struct list *l, uint64_t now)
{
    unsigned idle = d->r->conf.flow_idle_timeout_ms;
    struct flow *f;

    while ((f = ft_first(l)) != NULL && now - f->active >= idle)
        flow_release(d, t, f);
}

static void
sweep_table(struct dgram *d, struct flow_table *t, uint64_t now)
{
    sweep_list(d, t, &t->answered, now);
    sweep_list(d, t, &t->waiting, now);
}

static unsigned
sweep_period(const struct dgram *d)
{
    unsigned p = d->r->conf.flow_idle_timeout_ms / 2;

    return p < SWEEP_MIN_MS ? SWEEP_MIN_MS : p > SWEEP_MAX_MS ? SWEEP_MAX_MS : p;
}

static void
sweep(struct timer *t)
{
    struct dgram *d = t->data;
    uint64_t now = loop_now(d->loop);
    struct list *pos, *tmp;

    if (d->flows != NULL)
        sweep_table(d, d->flows, now);
    list_for_each_safe(pos, tmp, &d->streams) {
        struct dstream *s = list_entry(pos, struct dstream, link);
        sweep_table(d, s->flows, now);
        if (s->eof) /* closes once nothing is awaited any more */
            ds_kick(s);
    }
    timer_start(d->loop, &d->sweep, sweep_period(d), sweep, d);
}

/* ---- start and stop */

unsigned
dgram_fd_budget(const struct relay_conf *rc)
{
    struct rlimit rl;

    if (rc->max_fds > 0)
        return rc->max_fds;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur / FDS_SHARE >= FDS_DEFAULT)
        return FDS_DEFAULT;
    return rl.rlim_cur / FDS_SHARE > FDS_MIN ? (unsigned)(rl.rlim_cur / FDS_SHARE) : FDS_MIN;
}

int
dgram_start(struct relay *r)
{
    struct dgram *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return -ENOMEM;
    d->r = r;
    d->loop = r->loop;
    list_init(&d->streams);
    list_init(&d->lingering);
    d->udp_side = r->conf.listen.kind == EP_UDP;
    d->backoff = (struct backoff)BACKOFF_INIT(BACKOFF_MIN_MS, BACKOFF_MAX_MS);
    d->next_flow = 1;
    d->fd_budget = dgram_fd_budget(&r->conf);
    if (!d->udp_side) {
        struct stream_limits lim = {.max_streams = d->fd_budget / 2};
        snprintf(d->what, sizeof(d->what), "relay=%s", r->conf.name);
        streams_init(&d->set, d->loop, d->what, &lim, ds_evicted);
    }
    if (d->udp_side) {
        if ((d->flows = ft_new()) == NULL) {
            free(d);
            return -ENOMEM;
        }
        int rc = io_start(d->loop, &d->udp_io, r->listen_fd, EPOLLIN, udp_event, d);
        if (rc != 0) {
            free(d->flows);
            free(d);
            return rc;
        }
    }
    relay_ref(r);
    r->dgram = d;
    timer_start(d->loop, &d->sweep, sweep_period(d), sweep, d);
    if (d->udp_side) {
        out_connect(d);
        /* an adopted socket may already hold datagrams */
        loop_defer(d->loop, &d->udp_more, udp_more, d);
    }
    return 0;
}

void
dgram_stop(struct relay *r)
{
    struct dgram *d = r->dgram;

    if (d == NULL)
        return;
    r->dgram = NULL;
    d->stopped = 1;
    io_stop(d->loop, &d->udp_io);
    timer_stop(d->loop, &d->retry);
    timer_stop(d->loop, &d->sweep);
    if (d->out != NULL)
        ds_close(d->out, END_SHUTDOWN);
    while (!list_empty(&d->streams))
        ds_close(list_entry(d->streams.next, struct dstream, link), END_SHUTDOWN);
    while (!list_empty(&d->lingering))
        ds_close(list_entry(d->lingering.next, struct dstream, link), END_SHUTDOWN);
    for (struct flow *f; d->flows != NULL && (f = ft_victim(d->flows)) != NULL;)
        flow_release(d, d->flows, f);
    schedule_reap(d);
}
