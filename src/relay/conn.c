/* conn.c - the life of one relayed connection, and the workers that run them.
 *
 *   PREAMBLE -> PEEK -> ASSIGNING -> RESOLVING -> CONNECTING -> HANDSHAKE
 *            -> RELAYING -> CLOSED
 *
 * PREAMBLE reads what the client sends before its payload (an hvsock
 * "CONNECT port" line, a PROXY v2 header); PEEK (routers only) reads the
 * TLS ClientHello with MSG_PEEK, so that it stays in the socket and goes to
 * the upstream unchanged, and picks the target by its server name;
 * ASSIGNING (directory routes) waits for the directory to name the user's
 * instance, reading nothing;
 * RESOLVING waits for the target's
 * name; HANDSHAKE waits for an hvsock target's "OK" line. Each state that
 * is skipped is passed through at once. In RELAYING, two pumps move bytes,
 * one per direction, through a pipe with splice() or through a buffer.
 *
 * An egress relay (target: egress) chooses the target per connection: its
 * PREAMBLE step reads either a PROXY v2 header (the enclave-side relay's
 * destination) or an HTTP CONNECT request, tells which by the first byte,
 * and checks the destination against egress_allow - the name before it is
 * resolved, the address after. From then on the connection runs like any
 * other, towards c->egress->ep instead of the relay's target. */
#include "relay/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/log.h"
#include "dir/dir.h"
#include "net/egress.h"
#include "net/resolve.h"
#include "net/transport.h"
#include "proto/http_connect.h"
#include "proto/proxy_v2.h"
#include "proto/tls_hello.h"

/* From <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>,
 * which clash with the libc socket headers. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

#define PREAMBLE_MAX 4096         /* largest PROXY header or hvsock line we read */
#define PREAMBLE_TIMEOUT_MS 10000 /* a client that sends no header in time is closed */
#define SPLICE_LEN (256 * 1024)   /* pipe capacity: bytes per splice() */
#define PUMP_CHUNK WORKER_SCRATCH /* one read() through the scratch buffer */
#define CONN_BUDGET (1024 * 1024) /* bytes moved per wakeup before others get a turn */
#define HVSOCK_LINE_MAX 64

enum conn_state {
    CONN_ST_PREAMBLE,
    CONN_ST_PEEK,
    CONN_ST_ASSIGNING,
    CONN_ST_RESOLVING,
    CONN_ST_CONNECTING,
    CONN_ST_HANDSHAKE,
    CONN_ST_RELAYING,
    CONN_ST_CLOSED,
};

/* How an egress connection named its destination. */
enum egress_via {
    EGRESS_VIA_PROXY,   /* a PROXY v2 header: refusals are a plain close */
    EGRESS_VIA_CONNECT, /* an HTTP CONNECT request: refusals get an HTTP status */
};

/* The per-connection target of an egress relay. */
struct egress_dest {
    enum egress_via via;
    struct endpoint ep; /* tcp: a host name or an address literal, and a port */
    int is_name;        /* ep.host is a name: its resolved address is checked too */
    int replied;        /* CONNECT: the HTTP status line was sent */
};

/* A router connection while its ClientHello comes in: the parser and the
 * buffer it joins fragments in (router.max_hello bytes follow). */
struct peek {
    struct tls_hello hello;
    size_t fed; /* bytes of the socket's queue given to the parser so far */
    uint8_t buf[];
};

struct side {
    struct io io; /* io.fd is the socket; -1 once closed */
    int readable; /* edge-triggered readiness, cleared on EAGAIN or a short read */
    int writable;
    int hup; /* the peer shut down (EPOLLRDHUP): read until EOF */
};

/* One direction of the relay. Small messages are read into the worker's
 * scratch buffer and written on at once; only what the destination does not
 * take waits in buf[off..len). A read that fills the whole chunk means bulk
 * traffic: the pump then moves bytes with splice() through a pipe. */
struct pump {
    struct side *from, *to;
    int pipe[2];
    size_t in_pipe;
    char *buf;
    size_t off, len;
    int splice_ok; /* the relay allows splice and the kernel has not refused it */
    int splice;    /* bulk seen: splicing now */
    int eof;       /* from has no more to give */
    int shut;      /* EOF was passed on with shutdown(SHUT_WR) */
    atomic_uint_fast64_t *counter;
    uint64_t bytes;
};

struct conn {
    struct conn *prev, *next; /* the worker's list */
    struct worker *worker;
    struct relay *relay;
    uint64_t id;
    enum conn_state state;
    enum conn_end end;
    struct side client, target;
    struct pump up;   /* client -> target */
    struct pump down; /* target -> client */
    struct timer timer;
    struct task work; /* pumping continued after the budget */
    struct task reap; /* deferred free */
    int resolving;    /* a lookup will call back: keep c allocated */
    uint64_t started, active;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    struct sockaddr_storage source; /* the client: the PROXY header's source, else peer */
    uint8_t *proxy_hdr;             /* received PROXY header, passed on verbatim */
    size_t proxy_len;
    int hvsock_greeted;           /* hvsock listener: CONNECT line answered */
    struct egress_dest *egress;   /* egress relays only; NULL otherwise */
    struct peek *peek;            /* routers, in PEEK only */
    const struct endpoint *route; /* routers: the chosen target (relay conf or assigned) */
    char *sni;                    /* routers: the server name, for the close line */
    struct dir_assign *assign;    /* directory routes: the request, and then the
                                     reservation this connection holds (dir_release()) */
    struct endpoint *assigned;    /* directory routes: the instance's endpoint */
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
static void conn_connect(struct conn *c);
static void conn_after_preamble(struct conn *c);
static void egress_closing(struct conn *c, enum conn_end end);

/* The endpoint this connection connects to: the relay's target, or the
 * destination an egress connection asked for. */
static const struct endpoint *
conn_target(const struct conn *c)
{
    if (c->route != NULL)
        return c->route;
    return c->egress != NULL ? &c->egress->ep : &c->relay->conf.target;
}

/* ---- pipes: taken from the worker's spare list while data is in flight */

static int
pipe_get(struct worker *w, int p[2])
{
    if (w->n_spare > 0) {
        w->n_spare--;
        p[0] = w->spare[w->n_spare][0];
        p[1] = w->spare[w->n_spare][1];
        return 0;
    }
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
        return -errno;
    /* larger pipes halve the syscalls per byte of bulk traffic (measured:
     * docs/benchmarks.md); where the per-user pipe quota says no, the
     * default 64 KiB is fine */
    fcntl(p[0], F_SETPIPE_SZ, SPLICE_LEN);
    return 0;
}

/* Only an empty pipe goes back to the spare list. */
static void
pipe_put(struct worker *w, int p[2])
{
    if (p[0] < 0)
        return;
    if (w->n_spare < WORKER_SPARE_PIPES) {
        w->spare[w->n_spare][0] = p[0];
        w->spare[w->n_spare][1] = p[1];
        w->n_spare++;
    } else {
        close(p[0]);
        close(p[1]);
    }
    p[0] = p[1] = -1;
}

static void
pump_init(struct pump *p, struct side *from, struct side *to, int splice,
          atomic_uint_fast64_t *counter)
{
    p->from = from;
    p->to = to;
    p->pipe[0] = p->pipe[1] = -1;
    p->splice_ok = splice;
    p->counter = counter;
}

/* Releases what the pump holds. A pipe with bytes still in it is closed,
 * never reused. */
static void
pump_release(struct worker *w, struct pump *p)
{
    if (p->pipe[0] >= 0 && p->in_pipe > 0) {
        close(p->pipe[0]);
        close(p->pipe[1]);
        p->pipe[0] = p->pipe[1] = -1;
    }
    pipe_put(w, p->pipe);
    free(p->buf);
    p->buf = NULL;
    p->off = p->len = 0;
}

/* Queues bytes to be written by the pump before anything else. */
static int
pump_prepend(struct pump *p, const void *data, size_t len)
{
    char *nb = realloc(p->buf, p->len + len > PUMP_CHUNK ? p->len + len : PUMP_CHUNK);

    if (nb == NULL)
        return -ENOMEM;
    memmove(nb + len, nb + p->off, p->len - p->off);
    memcpy(nb, data, len);
    p->buf = nb;
    p->len = p->len - p->off + len;
    p->off = 0;
    return 0;
}

static void
pump_account(struct conn *c, struct pump *p, size_t n)
{
    p->bytes += n;
    atomic_fetch_add_explicit(p->counter, n, memory_order_relaxed);
    c->active = loop_now(c->worker->loop);
}

/* Writes out what the pump holds. Returns 1 when all is written, 0 when the
 * destination is full, or -errno. */
static int
pump_flush(struct conn *c, struct pump *p)
{
    while (p->off < p->len || p->in_pipe > 0) {
        ssize_t n;
        if (!p->to->writable)
            return 0;
        if (p->off < p->len)
            n = write(p->to->io.fd, p->buf + p->off, p->len - p->off);
        else
            n = splice(p->pipe[0], NULL, p->to->io.fd, NULL, p->in_pipe,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0) {
            if (errno == EAGAIN) {
                p->to->writable = 0;
                return 0;
            }
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (p->off < p->len) {
            p->off += (size_t)n;
        } else {
            p->in_pipe -= (size_t)n;
        }
        pump_account(c, p, (size_t)n);
    }
    return 1;
}

/* Keeps what the destination did not take of a scratch read. */
static int
pump_keep(struct pump *p, const char *data, size_t len)
{
    if ((p->buf = malloc(len)) == NULL)
        return -ENOMEM;
    memcpy(p->buf, data, len);
    p->off = 0;
    p->len = len;
    return 0;
}

/* Reads one chunk from the source and passes it on: into the pipe (splice),
 * or through the worker's scratch buffer straight to the destination, so
 * that a connection holds memory only while its destination is slow.
 * Returns the count read (0 at EOF), -EAGAIN when nothing is there, or
 * -errno. */
static ssize_t
pump_fill(struct conn *c, struct pump *p)
{
    char *scratch = c->worker->scratch;
    ssize_t n, w = 0;
    int rc;

    if (p->splice && p->pipe[0] < 0 && (rc = pipe_get(c->worker, p->pipe)) != 0) {
        /* no fd (or memory) for a pipe: copy this chunk, try splice again
         * at the next full one */
        relay_local_error(c->relay->stats, rc);
        p->splice = 0;
    }
    if (p->splice) {
        n = splice(p->from->io.fd, NULL, p->pipe[1], NULL, SPLICE_LEN,
                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0 && errno == EINVAL) {
            /* this pair of sockets cannot splice: copy from now on */
            p->splice = p->splice_ok = 0;
            pipe_put(c->worker, p->pipe);
            return pump_fill(c, p);
        }
        if (n > 0)
            p->in_pipe = (size_t)n;
        return n < 0 ? -errno : n;
    }
    n = read(p->from->io.fd, scratch, PUMP_CHUNK);
    if (n <= 0)
        return n < 0 ? -errno : 0;
    if (p->to->writable) {
        w = write(p->to->io.fd, scratch, (size_t)n);
        if (w < 0) {
            if (errno != EAGAIN && errno != EINTR)
                return -errno;
            if (errno == EAGAIN)
                p->to->writable = 0;
            w = 0;
        }
        pump_account(c, p, (size_t)w);
    }
    if (w < n && (rc = pump_keep(p, scratch + w, (size_t)(n - w))) != 0)
        return rc;
    /* a full chunk: more is likely queued behind it, zero-copy pays off */
    if (n == PUMP_CHUNK && p->splice_ok)
        p->splice = 1;
    return n;
}

/* Moves bytes until the source is dry, the destination is full, or the
 * budget is spent. Returns 0 or -errno (the connection must be reset). */
static int
pump_run(struct conn *c, struct pump *p, size_t *budget)
{
    for (;;) {
        int rc = pump_flush(c, p);
        if (rc <= 0)
            return rc;
        /* empty: give the pipe and buffer back while idle */
        pipe_put(c->worker, p->pipe);
        free(p->buf);
        p->buf = NULL;
        p->off = p->len = 0;
        if (p->eof) {
            if (!p->shut) {
                shutdown(p->to->io.fd, SHUT_WR);
                p->shut = 1;
            }
            return 0;
        }
        if (!p->from->readable || *budget == 0)
            return 0;
        ssize_t n = pump_fill(c, p);
        if (n == 0) {
            p->eof = 1;
        } else if (n == -EAGAIN) {
            p->from->readable = 0;
            return 0;
        } else if (n == -EINTR) {
            continue;
        } else if (n < 0) {
            return (int)n;
        } else {
            *budget = (size_t)n >= *budget ? 0 : *budget - (size_t)n;
            /* a short read() drained the socket (nginx does the same); new
             * data brings a new edge. Not after splice(), which also stops
             * short when the pipe runs out of slots; not after a FIN was
             * seen, whose edge has been consumed already. */
            if ((size_t)n < PUMP_CHUNK && !p->splice && !p->from->hup)
                p->from->readable = 0;
        }
    }
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

    /* wait for a queued continuation and for a running lookup */
    if (task_queued(&c->work) || c->resolving) {
        if (!c->resolving)
            loop_defer(c->worker->loop, &c->reap, conn_reap, c);
        return;
    }
    relay_unref(c->relay);
    free(c->proxy_hdr);
    free(c->egress);
    free(c->peek);
    free(c->sni);
    free(c->assigned);
    free(c);
}

/* The one way a connection ends: idempotent. */
static void
conn_close(struct conn *c, enum conn_end end)
{
    struct worker *w = c->worker;
    struct relay_stats *st = c->relay->stats;
    char client[TRANSPORT_DESC_MAX], dest[EP_HOST_MAX + 16] = "";

    if (c->state == CONN_ST_CLOSED)
        return;
    /* a client that leaves while the directory is asked cancels; one that
     * leaves before its instance saw the login gives its reservation back */
    dir_release(c->assign);
    c->assign = NULL;
    egress_closing(c, end);
    c->state = CONN_ST_CLOSED;
    c->end = end;
    side_close(c, &c->client, end == END_RESET);
    side_close(c, &c->target, end == END_RESET);
    pump_release(w, &c->up);
    pump_release(w, &c->down);
    timer_stop(w->loop, &c->timer);

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    atomic_fetch_sub(&w->n_conns, 1);
    atomic_fetch_sub_explicit(&st->open, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->ended[end], 1, memory_order_relaxed);

    transport_describe((struct sockaddr *)&c->peer, c->peer_len, client, sizeof(client));
    if (c->egress != NULL && c->egress->ep.port != 0) {
        const struct endpoint *ep = &c->egress->ep;
        snprintf(dest, sizeof(dest), strchr(ep->host, ':') ? " dest=[%s]:%u" : " dest=%s:%u",
                 ep->host, ep->port);
    }
    if (c->relay->conf.router.enabled)
        snprintf(dest, sizeof(dest), " sni=%s", c->sni != NULL ? c->sni : "-");
    log_info("close relay=%s conn=%llu client=%s%s duration_ms=%llu bytes_in=%llu bytes_out=%llu "
             "end=%s",
             c->relay->conf.name, (unsigned long long)c->id, client, dest,
             (unsigned long long)(loop_now(w->loop) - c->started), (unsigned long long)c->up.bytes,
             (unsigned long long)c->down.bytes, end_names[end]);
    loop_defer(w->loop, &c->reap, conn_reap, c);
}

/* ---- timers */

static void
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
    case CONN_ST_RESOLVING:
    case CONN_ST_CONNECTING:
    case CONN_ST_HANDSHAKE:
        atomic_fetch_add_explicit(&c->relay->stats->connect_errors, 1, memory_order_relaxed);
        conn_close(c, END_CONNECT_TIMEOUT);
        break;
    case CONN_ST_RELAYING:
        /* activity only stamps c->active; the timer checks it lazily, so the
         * data path never touches the timer heap */
        if (now - c->active >= idle)
            conn_close(c, END_IDLE);
        else
            timer_start(c->worker->loop, &c->timer, idle - (now - c->active), conn_timeout, c);
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

static void
conn_relay(struct conn *c)
{
    size_t budget = CONN_BUDGET;
    int rc;

    if ((rc = pump_run(c, &c->up, &budget)) == 0)
        rc = pump_run(c, &c->down, &budget);
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
    if (budget == 0) /* more may be waiting: continue after others had a turn */
        loop_defer(c->worker->loop, &c->work, conn_work, c);
}

static void
conn_start_relaying(struct conn *c)
{
    const struct relay_conf *rc = &c->relay->conf;

    c->state = CONN_ST_RELAYING;
    c->active = loop_now(c->worker->loop);
    timer_stop(c->worker->loop, &c->timer);
    if (rc->idle_timeout_ms > 0)
        timer_start(c->worker->loop, &c->timer, rc->idle_timeout_ms, conn_timeout, c);
    conn_relay(c);
}

/* ---- preamble: hvsock CONNECT line, PROXY v2 header */

/* Peeks at what the client sent so far. Returns the count, 0 at EOF, or
 * -errno (-EAGAIN: nothing yet). */
static ssize_t
peek(struct side *s, uint8_t *buf, size_t len)
{
    ssize_t n = recv(s->io.fd, buf, len, MSG_PEEK);

    if (n < 0 && errno == EAGAIN)
        s->readable = 0;
    return n < 0 ? -errno : n;
}

/* Consumes n bytes already seen by peek(). */
static int
consume(struct side *s, size_t n)
{
    uint8_t sink[PREAMBLE_MAX];

    return recv(s->io.fd, sink, n, 0) == (ssize_t)n ? 0 : -EIO;
}

/* Returns PARSE_OK when the CONNECT line was read and answered. */
static enum parse_result
read_hvsock_connect(struct conn *c)
{
    uint8_t buf[HVSOCK_LINE_MAX + 1];
    ssize_t n = peek(&c->client, buf, HVSOCK_LINE_MAX);

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
    if (consume(&c->client, (size_t)(nl - buf) + 1) != 0)
        return PARSE_INVALID;
    return PARSE_OK;
}

/* Parses and consumes the PROXY v2 header at the start of the peeked
 * buf[0..n). PARSE_AGAIN: wait for more bytes. PARSE_INVALID: logged, the
 * caller closes. A header that cannot complete (the client shut down, or
 * PREAMBLE_MAX is reached) is invalid at once, not at the timeout. */
static enum parse_result
take_proxy_header(struct conn *c, const uint8_t *buf, size_t n, struct proxy_info *info,
                  size_t *hdr_len)
{
    const char *err = NULL;
    enum parse_result pr = proxy_v2_parse(buf, n, info, hdr_len, &err);

    if (pr == PARSE_AGAIN) {
        if (n < PREAMBLE_MAX && !c->client.hup)
            return PARSE_AGAIN;
        err = n < PREAMBLE_MAX ? "connection closed inside the header"
                               : "header larger than 4096 bytes";
        pr = PARSE_INVALID;
    } else if (pr == PARSE_OK && consume(&c->client, *hdr_len) != 0) {
        err = "cannot read the header";
        pr = PARSE_INVALID;
    }
    if (pr == PARSE_INVALID)
        log_warnx("relay=%s conn=%llu bad PROXY v2 header: %s", c->relay->conf.name,
                  (unsigned long long)c->id, err);
    return pr;
}

static enum parse_result
read_proxy_header(struct conn *c)
{
    uint8_t buf[PREAMBLE_MAX];
    struct proxy_info info;
    size_t hdr_len;
    ssize_t n = peek(&c->client, buf, sizeof(buf));

    if (n == -EAGAIN)
        return PARSE_AGAIN;
    if (n <= 0) {
        log_warnx("relay=%s conn=%llu bad PROXY v2 header: connection closed before it",
                  c->relay->conf.name, (unsigned long long)c->id);
        return PARSE_INVALID;
    }
    enum parse_result pr = take_proxy_header(c, buf, (size_t)n, &info, &hdr_len);
    if (pr != PARSE_OK)
        return pr;
    if ((c->proxy_hdr = malloc(hdr_len)) == NULL)
        return PARSE_INVALID;
    memcpy(c->proxy_hdr, buf, hdr_len);
    c->proxy_len = hdr_len;
    if (info.cmd == PROXY_CMD_PROXY && info.family != AF_UNSPEC) {
        c->source = info.src; /* the front relay vouches for it (accept_proxy) */
        char from[TRANSPORT_DESC_MAX], orig[TRANSPORT_DESC_MAX];
        transport_describe((struct sockaddr *)&c->peer, c->peer_len, from, sizeof(from));
        transport_describe((struct sockaddr *)&info.src, sizeof(info.src), orig, sizeof(orig));
        log_debug("relay=%s conn=%llu proxy header from=%s client=%s", c->relay->conf.name,
                  (unsigned long long)c->id, from, orig);
    }
    return PARSE_OK;
}

/* ---- egress: the destination comes with the connection */

/* Writes an HTTP response with a one-line text body to a CONNECT client.
 * Best effort: the client socket is fresh, so a short reply fits. */
static void
egress_reply(struct conn *c, int status, const char *reason, const char *body)
{
    char buf[512];
    int len;

    if (c->egress == NULL || c->egress->via != EGRESS_VIA_CONNECT || c->egress->replied ||
        c->client.io.fd < 0)
        return;
    c->egress->replied = 1;
    if (status == 200)
        len = snprintf(buf, sizeof(buf), "HTTP/1.1 200 Connection established\r\n\r\n");
    else
        len = snprintf(buf, sizeof(buf),
                       "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\n\r\n%s\n",
                       status, reason, strlen(body) + 1, body);
    if (len > 0 && (size_t)len < sizeof(buf) && write(c->client.io.fd, buf, (size_t)len) != len)
        log_debug("relay=%s conn=%llu: short HTTP reply", c->relay->conf.name,
                  (unsigned long long)c->id);
}

/* Reads and drops what the client sent so far (up to 64 KiB, so a client
 * that keeps sending cannot hold the loop), so that closing the socket sends
 * a FIN after our reply rather than a reset that could discard it. */
static void
drain(struct side *s)
{
    uint8_t sink[PREAMBLE_MAX];

    for (int i = 0; i < 16 && recv(s->io.fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
        ;
}

/* conn_close() calls this first: a CONNECT client whose connect failed or
 * timed out learns it from the status line. */
static void
egress_closing(struct conn *c, enum conn_end end)
{
    if (end == END_CONNECT_FAIL)
        egress_reply(c, 502, "Bad Gateway", "egress: connect failed");
    else if (end == END_CONNECT_TIMEOUT)
        egress_reply(c, 504, "Gateway Timeout", "egress: connect timed out");
}

static void
egress_dest_text(const struct conn *c, char *buf, size_t len)
{
    const struct endpoint *ep = &c->egress->ep;

    snprintf(buf, len, strchr(ep->host, ':') ? "[%s]:%u" : "%s:%u", ep->host, ep->port);
}

/* Refuses the destination: one log line, one count, an HTTP status for a
 * CONNECT client (a plain close for PROXY), then the close. sa is the
 * address that was checked, or NULL. */
static void
egress_deny(struct conn *c, enum egress_verdict v, const struct sockaddr *sa, const char *range)
{
    char dest[EP_HOST_MAX + 16], addr[TRANSPORT_DESC_MAX] = "-", body[128];

    atomic_fetch_add_explicit(&c->relay->stats->egress_denied[v], 1, memory_order_relaxed);
    egress_dest_text(c, dest, sizeof(dest));
    if (sa != NULL)
        transport_describe(sa, sizeof(struct sockaddr_storage), addr, sizeof(addr));
    log_info("egress denied relay=%s conn=%llu via=%s dest=%s addr=%s range=%s reason=%s",
             c->relay->conf.name, (unsigned long long)c->id,
             c->egress->via == EGRESS_VIA_CONNECT ? "connect" : "proxy", dest, addr,
             range != NULL ? range : "-", egress_verdict_name(v));
    snprintf(body, sizeof(body), "egress denied: %s", egress_verdict_name(v));
    drain(&c->client);
    if (v == EGRESS_RESOLVE_FAILED) {
        egress_reply(c, 502, "Bad Gateway", body);
        atomic_fetch_add_explicit(&c->relay->stats->connect_errors, 1, memory_order_relaxed);
        conn_close(c, END_CONNECT_FAIL);
        return;
    }
    if (v == EGRESS_BAD_DESTINATION)
        egress_reply(c, 400, "Bad Request", body);
    else
        egress_reply(c, 403, "Forbidden", body);
    conn_close(c, END_DENIED);
}

/* Sets the destination from host[0..len) (a name or an address literal)
 * and port, checks a name against the rules, and connects (which checks
 * the address). */
static void
egress_go(struct conn *c, const char *host, size_t len, uint16_t port)
{
    const struct relay_conf *rc = &c->relay->conf;
    struct endpoint *ep = &c->egress->ep;
    uint8_t raw[16];
    const char *why = NULL;

    ep->kind = EP_TCP;
    ep->port = port;
    if (len < sizeof(ep->host)) {
        memcpy(ep->host, host, len);
        ep->host[len] = '\0';
    }
    if (len < sizeof(ep->host) &&
        (inet_pton(AF_INET, ep->host, raw) == 1 || inet_pton(AF_INET6, ep->host, raw) == 1)) {
        c->egress->is_name = 0; /* checked as an address by conn_connect() */
    } else {
        c->egress->is_name = 1;
        if (egress_name_normalize(host, len, ep->host, &why) != PARSE_OK) {
            snprintf(ep->host, sizeof(ep->host), "-");
            log_warnx("relay=%s conn=%llu bad destination name: %s", rc->name,
                      (unsigned long long)c->id, why);
            egress_deny(c, EGRESS_BAD_DESTINATION, NULL, NULL);
            return;
        }
        enum egress_verdict v =
            egress_check_name(rc->egress_allow, rc->n_egress_allow, ep->host, port);
        if (v != EGRESS_OK) {
            egress_deny(c, v, NULL, NULL);
            return;
        }
    }
    conn_connect(c);
}

static void
egress_from_proxy(struct conn *c, const uint8_t *buf, size_t n)
{
    struct proxy_info info;
    size_t hdr_len;
    enum parse_result pr = take_proxy_header(c, buf, n, &info, &hdr_len);

    if (pr == PARSE_AGAIN)
        return;
    if (pr == PARSE_INVALID) {
        conn_close(c, END_BAD_PREAMBLE);
        return;
    }
    c->egress->via = EGRESS_VIA_PROXY;

    /* the destination: the authority TLV's name if there is one, else the
     * header's destination address; the port is always the header's */
    char host[INET6_ADDRSTRLEN] = "";
    const char *name = NULL;
    size_t name_len = 0;
    uint16_t port = 0;
    if (info.cmd == PROXY_CMD_PROXY && info.family == AF_INET) {
        const struct sockaddr_in *d = (const struct sockaddr_in *)&info.dst;
        inet_ntop(AF_INET, &d->sin_addr, host, sizeof(host));
        port = ntohs(d->sin_port);
    } else if (info.cmd == PROXY_CMD_PROXY && info.family == AF_INET6) {
        const struct sockaddr_in6 *d = (const struct sockaddr_in6 *)&info.dst;
        inet_ntop(AF_INET6, &d->sin6_addr, host, sizeof(host));
        port = ntohs(d->sin6_port);
    }
    const uint8_t *p = info.tlv, *end = info.tlv + info.tlv_len, *val;
    uint8_t type;
    uint16_t vlen;
    while (proxy_v2_tlv_next(&p, end, &type, &val, &vlen) == PARSE_OK) {
        if (type == PP2_TYPE_AUTHORITY) {
            name = (const char *)val;
            name_len = vlen;
        }
    }
    if (port == 0) {
        snprintf(c->egress->ep.host, sizeof(c->egress->ep.host), "-");
        log_warnx("relay=%s conn=%llu PROXY v2 header without a tcp destination",
                  c->relay->conf.name, (unsigned long long)c->id);
        egress_deny(c, EGRESS_BAD_DESTINATION, NULL, NULL);
        return;
    }
    if (name != NULL)
        egress_go(c, name, name_len, port);
    else
        egress_go(c, host, strlen(host), port);
}

static void
egress_from_connect(struct conn *c, const uint8_t *buf, size_t n)
{
    struct http_connect req;
    size_t head_len;
    const char *err = NULL;
    enum parse_result pr = http_connect_parse(buf, n, PREAMBLE_MAX, &req, &head_len, &err);

    if (pr == PARSE_AGAIN && !c->client.hup)
        return;
    c->egress->via = EGRESS_VIA_CONNECT;
    if (pr == PARSE_AGAIN)
        err = "connection closed inside the request";
    if (pr != PARSE_OK || !req.is_connect) {
        if (pr != PARSE_OK)
            log_warnx("relay=%s conn=%llu bad HTTP request: %s", c->relay->conf.name,
                      (unsigned long long)c->id, err);
        else
            log_warnx("relay=%s conn=%llu HTTP %s request: only CONNECT is served",
                      c->relay->conf.name, (unsigned long long)c->id, req.method);
        drain(&c->client);
        if (pr != PARSE_OK)
            egress_reply(c, 400, "Bad Request", "egress: expected CONNECT host:port HTTP/1.1");
        else
            egress_reply(c, 405, "Method Not Allowed", "egress: only CONNECT is served");
        conn_close(c, END_BAD_PREAMBLE);
        return;
    }
    /* req.host points into buf, a copy: the socket may be consumed first */
    if (consume(&c->client, head_len) != 0) {
        conn_close(c, END_ERROR);
        return;
    }
    egress_go(c, req.host, req.host_len, req.port);
}

/* The first bytes tell the two ways apart: a PROXY v2 header starts with
 * "\r\n\r\n\0\r\nQUIT\n", an HTTP request with a method name. */
static void
egress_preamble(struct conn *c)
{
    uint8_t buf[PREAMBLE_MAX];
    ssize_t n = peek(&c->client, buf, sizeof(buf));

    if (n == -EAGAIN)
        return;
    if (n <= 0) {
        log_warnx("relay=%s conn=%llu closed before naming a destination", c->relay->conf.name,
                  (unsigned long long)c->id);
        conn_close(c, END_BAD_PREAMBLE);
        return;
    }
    if (proxy_v2_signature_prefix(buf, (size_t)n))
        egress_from_proxy(c, buf, (size_t)n);
    else
        egress_from_connect(c, buf, (size_t)n);
}

/* Checks the address a destination resolved to (or was given as). Returns
 * 1 to go on, or 0 after refusing the connection. */
static int
egress_admit_addr(struct conn *c, const struct sockaddr *sa)
{
    const struct relay_conf *rc = &c->relay->conf;
    const char *range = NULL;
    enum egress_verdict v =
        egress_check_addr(rc->egress_allow, rc->n_egress_allow, sa, c->egress->is_name, &range);

    if (v == EGRESS_OK)
        return 1;
    egress_deny(c, v, sa, range);
    return 0;
}

static void
conn_preamble(struct conn *c)
{
    const struct relay_conf *rc = &c->relay->conf;
    enum parse_result pr = PARSE_OK;

    if (rc->listen.kind == EP_HVSOCK && !c->hvsock_greeted) {
        pr = read_hvsock_connect(c);
        if (pr == PARSE_INVALID)
            log_warnx("relay=%s conn=%llu bad hvsock CONNECT line", rc->name,
                      (unsigned long long)c->id);
        c->hvsock_greeted = pr == PARSE_OK;
    }
    if (pr == PARSE_OK && rc->accept_proxy == PROXY_V2)
        pr = read_proxy_header(c);
    if (pr == PARSE_OK && c->egress != NULL) {
        egress_preamble(c); /* connects, refuses, or waits for more */
        return;
    }
    if (pr == PARSE_INVALID)
        conn_close(c, END_BAD_PREAMBLE);
    else if (pr == PARSE_OK)
        conn_after_preamble(c);
}

/* ---- routers: the ClientHello picks the target */

/* Answers a ClientHello nothing is routed for with a fatal
 * unrecognized_name alert (RFC 6066 3), so the client learns why, then
 * closes. Best effort: the client's socket is fresh, so 7 bytes fit. */
static void
refuse_no_route(struct conn *c)
{
    static const uint8_t alert[] = {21, 3, 3, 0, 2, 2, 112};

    drain(&c->client);
    if (write(c->client.io.fd, alert, sizeof(alert)) != (ssize_t)sizeof(alert))
        log_debug("relay=%s conn=%llu: alert not sent", c->relay->conf.name,
                  (unsigned long long)c->id);
    conn_close(c, END_NO_ROUTE);
}

/* Connects to the chosen target: the hello is still queued and no new
 * edge will announce it (the client waits for the server's answer). */
static void
conn_routed(struct conn *c)
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
    case -ENOENT:
        return "no_such_pool";
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
        drain(&c->client); /* the hello: a FIN, not a reset, ends it */
        conn_close(c, END_NO_INSTANCE);
        return;
    }
    *c->assigned = *ep;
    c->route = c->assigned;
    log_info("router assigned relay=%s conn=%llu sni=%s instance=%s", c->relay->conf.name,
             (unsigned long long)c->id, c->sni, instance);
    conn_routed(c);
}

/* Picks the target for the complete ClientHello: connects, asks the
 * directory, or refuses. */
static void
conn_route(struct conn *c)
{
    const struct tls_hello *h = &c->peek->hello;
    const struct router_conf *ro = &c->relay->conf.router;
    char key[DIR_KEY_MAX];
    enum route_kind kind;

    if (h->has_sni && (c->sni = strdup(h->host)) == NULL) {
        conn_close(c, END_ERROR);
        return;
    }
    kind = route_pick(&ro->table, c->sni, &c->route, key);
    free(c->peek);
    c->peek = NULL;
    timer_stop(c->worker->loop, &c->timer);
    if (kind == ROUTE_NONE) {
        log_info("router refused relay=%s conn=%llu sni=%s reason=no_route", c->relay->conf.name,
                 (unsigned long long)c->id, c->sni != NULL ? c->sni : "-");
        refuse_no_route(c);
    } else if (kind == ROUTE_TARGET) {
        conn_routed(c);
    } else {
        char client[TRANSPORT_CLIENT_MAX];
        transport_client_key((struct sockaddr *)&c->source, client, sizeof(client));
        c->state = CONN_ST_ASSIGNING;
        c->assign = dir_assign_held(c->relay->dir, ro->table.directory, key, client,
                                    c->worker->loop, assigned, c);
        if (c->assign == NULL)
            assigned(c, -errno, NULL, NULL);
    }
}

/* Peeks at the client's queue and feeds the bytes not seen yet to the
 * parser. The queue is read, never consumed: it is relayed as it is. */
static void
conn_peek(struct conn *c)
{
    struct peek *p = c->peek;
    uint8_t *buf = (uint8_t *)c->worker->scratch;
    size_t cap = 2 * c->relay->conf.router.max_hello; /* the parser's limit on the wire */
    ssize_t n = peek(&c->client, buf, cap < WORKER_SCRATCH ? cap : WORKER_SCRATCH);
    enum parse_result pr = PARSE_AGAIN;

    if (n == -EAGAIN)
        return;
    if (n > 0 && (size_t)n > p->fed) {
        pr = tls_hello_feed(&p->hello, buf + p->fed, (size_t)n - p->fed, NULL);
        p->fed = (size_t)n;
    }
    if (pr == PARSE_OK) {
        conn_route(c);
        return;
    }
    if (pr == PARSE_AGAIN && n > 0 && !c->client.hup) {
        c->client.readable = 0; /* all of it was seen: wait for the next edge */
        return;
    }
    log_warnx("relay=%s conn=%llu bad ClientHello: %s", c->relay->conf.name,
              (unsigned long long)c->id,
              pr == PARSE_INVALID ? p->hello.err
              : n < 0             ? strerror((int)-n)
                                  : "connection closed inside it");
    conn_close(c, END_BAD_HELLO);
}

/* After the preamble (if any): a router peeks at the ClientHello, any other
 * relay connects. */
static void
conn_after_preamble(struct conn *c)
{
    const struct router_conf *ro = &c->relay->conf.router;

    if (!ro->enabled) {
        conn_connect(c);
        return;
    }
    if ((c->peek = malloc(sizeof(*c->peek) + ro->max_hello)) == NULL) {
        conn_close(c, END_ERROR);
        return;
    }
    tls_hello_init(&c->peek->hello, c->peek->buf, ro->max_hello);
    c->peek->fed = 0;
    c->state = CONN_ST_PEEK;
    timer_start(c->worker->loop, &c->timer, ro->peek_timeout_ms, conn_timeout, c);
    if (c->client.readable)
        conn_peek(c);
}

/* ---- connecting */

static int
send_proxy_header(struct conn *c)
{
    uint8_t hdr[PREAMBLE_MAX];
    struct sockaddr_storage local;
    socklen_t len = sizeof(local);
    size_t n;

    if (c->proxy_hdr != NULL) /* pass on what the front load balancer said */
        return pump_prepend(&c->up, c->proxy_hdr, c->proxy_len);
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
    return n == 0 ? -EINVAL : pump_prepend(&c->up, hdr, n);
}

static void
conn_target_ready(struct conn *c)
{
    if (c->relay->conf.send_proxy == PROXY_V2 && send_proxy_header(c) != 0) {
        conn_close(c, END_ERROR);
        return;
    }
    egress_reply(c, 200, NULL, NULL); /* CONNECT clients only */
    conn_start_relaying(c);
}

/* hvsock target: read the device's "OK <port>\n" without taking payload. */
static void
conn_handshake(struct conn *c)
{
    uint8_t buf[HVSOCK_LINE_MAX];
    ssize_t n = peek(&c->target, buf, sizeof(buf));

    if (n == -EAGAIN)
        return;
    uint8_t *nl = n > 0 ? memchr(buf, '\n', (size_t)n) : NULL;
    if (nl == NULL && n > 0 && n < (ssize_t)sizeof(buf))
        return;
    if (nl == NULL || n < 3 || memcmp(buf, "OK ", 3) != 0 ||
        consume(&c->target, (size_t)(nl - buf) + 1) != 0) {
        log_warnx("relay=%s conn=%llu hvsock target refused port %u", c->relay->conf.name,
                  (unsigned long long)c->id, conn_target(c)->port);
        atomic_fetch_add_explicit(&c->relay->stats->connect_errors, 1, memory_order_relaxed);
        conn_close(c, END_CONNECT_FAIL);
        return;
    }
    conn_target_ready(c);
}

static void
conn_connected(struct conn *c)
{
    const struct relay_conf *rc = &c->relay->conf;
    const struct endpoint *ep = conn_target(c);

    transport_tune(c->target.io.fd, ep->kind, rc->keepalive);
    if (ep->kind == EP_HVSOCK) {
        if (transport_hvsock_hello(c->target.io.fd, ep->port) != 0) {
            conn_close(c, END_CONNECT_FAIL);
            return;
        }
        c->state = CONN_ST_HANDSHAKE;
        conn_handshake(c);
        return;
    }
    conn_target_ready(c);
}

/* A connect that could not start or failed. A shortage of this process
 * (no fd for the socket, no memory, the resolver's queue full) is not the
 * target's fault: it is counted as a local error, ends the connection with
 * end=error and answers a CONNECT client 503; anything else is a connect
 * error (502). */
static void
connect_failed(struct conn *c, int err)
{
    char target[TRANSPORT_DESC_MAX];

    endpoint_format(conn_target(c), target, sizeof(target));
    if (relay_local_error(c->relay->stats, err)) {
        log_warnx("relay=%s conn=%llu cannot connect to %s: %s (a limit of this process or host)",
                  c->relay->conf.name, (unsigned long long)c->id, target,
                  err == -EBUSY ? "resolver queue full" : strerror(-err));
        egress_reply(c, 503, "Service Unavailable", "egress: relay out of resources");
        conn_close(c, END_ERROR);
        return;
    }
    log_warnx("relay=%s conn=%llu connect to %s failed: %s", c->relay->conf.name,
              (unsigned long long)c->id, target, strerror(-err));
    atomic_fetch_add_explicit(&c->relay->stats->connect_errors, 1, memory_order_relaxed);
    conn_close(c, END_CONNECT_FAIL);
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
    conn_step(c);
}

static void
conn_connect_addr(struct conn *c, const struct sockaddr *sa, socklen_t len)
{
    bool pending;
    int fd = transport_connect(sa, len, &pending);

    if (fd < 0) {
        connect_failed(c, fd);
        return;
    }
    int rc = io_start(c->worker->loop, &c->target.io, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP,
                      side_event, c);
    if (rc != 0) {
        close(fd);
        connect_failed(c, rc);
        return;
    }
    c->state = CONN_ST_CONNECTING;
    if (!pending) {
        c->target.writable = 1;
        conn_step(c);
    }
}

/* A name that did not resolve: an egress destination is refused with that
 * reason, any other target is a failed connect. */
static void
resolve_failed(struct conn *c, int err)
{
    if (c->egress != NULL)
        egress_deny(c, EGRESS_RESOLVE_FAILED, NULL, NULL);
    else
        connect_failed(c, err);
}

static void
resolved(void *arg, int err)
{
    struct conn *c = arg;

    c->resolving = 0;
    if (c->state == CONN_ST_CLOSED) {
        loop_defer(c->worker->loop, &c->reap, conn_reap, c);
        return;
    }
    if (err != 0) {
        resolve_failed(c, err);
        return;
    }
    conn_connect(c);
}

static void
conn_connect(struct conn *c)
{
    const struct endpoint *ep = conn_target(c);
    struct sockaddr_storage ss;
    socklen_t len;
    int rc;

    timer_start(c->worker->loop, &c->timer, c->relay->conf.connect_timeout_ms, conn_timeout, c);
    rc = transport_addr(ep, &ss, &len);
    if (rc == -EAGAIN) {
        rc = resolve_cached(ep->host, (uint16_t)ep->port, &ss, &len);
        if (rc == -EAGAIN) {
            c->state = CONN_ST_RESOLVING;
            rc = resolve_start(c->worker->loop, ep->host, resolved, c);
            c->resolving = rc == 0;
            if (rc != 0)
                connect_failed(c, rc);
            return;
        }
        if (rc != 0) { /* a cached failure */
            resolve_failed(c, rc);
            return;
        }
    }
    if (rc != 0) {
        connect_failed(c, rc);
        return;
    }
    /* egress: after resolution, so a permitted name cannot lead to a
     * private address (DNS rebinding) */
    if (c->egress != NULL && !egress_admit_addr(c, (struct sockaddr *)&ss))
        return;
    conn_connect_addr(c, (struct sockaddr *)&ss, len);
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
        if (c->client.readable)
            conn_peek(c);
        break;
    case CONN_ST_ASSIGNING:
        /* nothing is read while the directory is asked; a client that
         * leaves cancels the request */
        if (c->client.hup)
            conn_close(c, END_EOF);
        break;
    case CONN_ST_RESOLVING:
        break;
    case CONN_ST_CONNECTING:
        if (!c->target.writable)
            break;
        int rc = transport_connect_result(c->target.io.fd);
        if (rc != 0) {
            side_close(c, &c->target, 0);
            connect_failed(c, rc);
            break;
        }
        conn_connected(c);
        break;
    case CONN_ST_HANDSHAKE:
        if (c->target.readable)
            conn_handshake(c);
        break;
    case CONN_ST_RELAYING:
        conn_relay(c);
        break;
    case CONN_ST_CLOSED:
        break;
    }
}

/* ---- creation and hand-off */

struct conn *
conn_new(struct relay *r, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->relay = r;
    relay_ref(r);
    c->id = conn_next_id();
    c->client.io.fd = fd;
    c->target.io.fd = -1;
    memcpy(&c->peer, peer, peer_len);
    c->peer_len = peer_len;
    memcpy(&c->source, peer, peer_len);
    pump_init(&c->up, &c->client, &c->target, r->conf.splice, &r->stats->bytes_in);
    pump_init(&c->down, &c->target, &c->client, r->conf.splice, &r->stats->bytes_out);
    return c;
}

static void
conn_begin(void *arg)
{
    struct conn *c = arg;
    struct worker *w = c->worker;
    const struct relay_conf *rc = &c->relay->conf;
    int fd = c->client.io.fd;

    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    c->started = loop_now(w->loop);
    transport_tune(fd, rc->listen.kind, rc->keepalive);
    int err = io_start(w->loop, &c->client.io, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, side_event, c);
    if (err != 0) {
        relay_local_error(c->relay->stats, err);
        conn_close(c, END_ERROR);
        return;
    }
    if (rc->egress && (c->egress = calloc(1, sizeof(*c->egress))) == NULL) {
        conn_close(c, END_ERROR);
        return;
    }
    if (rc->listen.kind == EP_HVSOCK || rc->accept_proxy == PROXY_V2 || rc->egress) {
        c->state = CONN_ST_PREAMBLE;
        timer_start(w->loop, &c->timer, PREAMBLE_TIMEOUT_MS, conn_timeout, c);
        return; /* wait for the client's first bytes */
    }
    conn_after_preamble(c);
}

void
conn_dispatch(struct conn *c, struct worker *w)
{
    c->worker = w;
    atomic_fetch_add(&w->n_conns, 1);
    if (loop_post(w->loop, conn_begin, c) != 0) {
        atomic_fetch_sub(&w->n_conns, 1);
        atomic_fetch_sub(&c->relay->stats->open, 1);
        close(c->client.io.fd);
        relay_unref(c->relay);
        free(c);
    }
}

/* ---- workers */

struct worker *
worker_new(void)
{
    struct worker *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
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
    while (w->conns != NULL)
        conn_close(w->conns, END_SHUTDOWN);
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
    for (size_t i = 0; i < w->n_spare; i++) {
        close(w->spare[i][0]);
        close(w->spare[i][1]);
    }
    loop_free(w->loop);
    free(w);
}
