/* logfwd.c - the log forwarder; see logfwd.h.
 *
 *   BACKOFF --timer--> DIALING (net/dial: resolve, connect, hvsock) --> CONNECTED
 *      ^                   |                                                |
 *      +---- failed, timed out, refused ------------------- broken ---------+
 *
 * The stream only ever carries whole lines: logring hands out bytes from
 * line starts, and after a break logring_rewind() sends the partly written
 * line again from its start (the sink marks the fragment it got). */
#include "relay/logfwd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/backoff.h"
#include "core/log.h"
#include "core/logring.h"
#include "net/acceptor.h"
#include "net/dial.h"
#include "net/transport.h"
#include "proto/lines.h"
#include "relay/streams.h"

#define FWD_CONNECT_TIMEOUT_MS 5000
#define FWD_BACKOFF_MIN_MS 100
#define FWD_BACKOFF_MAX_MS 2000
#define FWD_STABLE_MS 1000             /* a stream up this long resets the backoff */
#define FWD_READ_BUDGET (256 * 1024)   /* per source and wakeup */
#define FWD_WRITE_BUDGET (1024 * 1024) /* per wakeup */
#define FWD_SCRATCH (64 * 1024)
#define FWD_TAG_MAX 48

static const char airlock_tag[] = "airlock: ";

enum fwd_state {
    FWD_ST_BACKOFF,   /* waiting to (re)connect */
    FWD_ST_DIALING,   /* the dialer resolves, connects, greets an hvsock device */
    FWD_ST_CONNECTED, /* sending lines */
};

enum src_state { SRC_ST_OPEN, SRC_ST_CLOSED };

/* One app connected to the listen endpoint. */
struct logsrc {
    struct stream_slot slot; /* in f->set */
    struct logfwd *f;
    enum src_state state;
    struct io io;
    struct task more; /* reading continued after its budget */
    struct task reap;
    struct line_split ls;
    uint8_t *buf; /* line_max bytes: the partial line */
    char tag[FWD_TAG_MAX];
    size_t tag_len;
};

struct logfwd {
    struct loop *loop;
    struct log_conf conf;
    struct logring ring;
    enum fwd_state state;
    struct io out;      /* the forward stream; fd -1 when none */
    struct dial dial;   /* DIALING */
    struct timer timer; /* BACKOFF */
    struct backoff backoff;
    unsigned failures; /* failures since a stream last stayed up FWD_STABLE_MS */
    uint64_t up_since; /* CONNECTED: when (loop ms) */
    bool said_up;      /* the connect since failures was 0 was logged */
    bool said_port;    /* the warning that the stream is not from a reserved port */
    uint64_t errors;   /* connect failures and broken streams, for metrics */
    uint64_t connects; /* streams established */
    int wakefd;        /* eventfd: the tee says "lines arrived" from any thread */
    struct io wake_io;
    struct task flush;
    struct task reap;
    bool tee;
    int listen_fd;
    struct acceptor acceptor;
    struct endpoint listening; /* valid while listen_fd >= 0 */
    struct streams set;        /* the apps: admission, eviction, idle timeout */
    uint64_t next_src;
    uint8_t scratch[FWD_SCRATCH];
    uint8_t *escaped; /* line_max bytes: an app's line with its controls escaped */
};

static void fwd_connect(struct logfwd *f);

static void
describe_forward(const struct logfwd *f, char *buf, size_t len)
{
    endpoint_format(&f->conf.forward, buf, len);
}

/* ---- the forward stream */

static void
stream_close(struct logfwd *f)
{
    if (f->out.fd < 0)
        return;
    io_stop(f->loop, &f->out);
    close(f->out.fd);
    f->out.fd = -1;
    logring_rewind(&f->ring);
}

static void
backoff_fired(struct timer *t)
{
    fwd_connect(t->data);
}

/* The stream failed to come up (connected false) or broke: close it and
 * try again after the backoff. A stream that stayed up FWD_STABLE_MS
 * starts the backoff and the count of failures again; one that broke
 * sooner (a sink that accepts and closes at once) does not, so that it is
 * dialled ever less often, not every FWD_BACKOFF_MIN_MS. Only the first
 * failure in a row is logged, so that a sink that is down or flapping for
 * hours does not fill the buffer with our own complaints. */
static void
stream_failed(struct logfwd *f, const char *what, int err)
{
    char ep[EP_HOST_MAX + EP_PATH_MAX + 32];

    if (f->state == FWD_ST_CONNECTED && loop_now(f->loop) - f->up_since >= FWD_STABLE_MS) {
        f->failures = 0;
        f->said_up = false;
        backoff_reset(&f->backoff);
    }
    describe_forward(f, ep, sizeof(ep));
    stream_close(f);
    f->errors++;
    if (f->failures == 0) {
        struct logring_stats st;
        logring_stats(&f->ring, &st);
        log_warnx("log forward to %s %s: %s; buffering (%zu of %zu bytes used), retrying", ep, what,
                  err ? strerror(err) : "closed", st.buffered, f->conf.buffer);
    }
    f->failures++;
    f->state = FWD_ST_BACKOFF;
    timer_start(f->loop, &f->timer, backoff_next(&f->backoff), backoff_fired, f);
}

/* Sends what the ring holds, FWD_WRITE_BUDGET bytes at most; what is left
 * waits for EPOLLOUT (the stream is full) or the deferred flush (the budget
 * ran out). */
static void
fwd_flush_task(struct task *t)
{
    struct logfwd *f = t->data;
    size_t budget = FWD_WRITE_BUDGET;
    struct iovec iov[2];

    if (f->state != FWD_ST_CONNECTED)
        return;
    while (budget > 0) {
        int n = logring_peek(&f->ring, iov);
        if (n == 0)
            return;
        if (iov[0].iov_len >= budget) {
            iov[0].iov_len = budget;
            n = 1;
        } else if (n == 2 && iov[0].iov_len + iov[1].iov_len > budget) {
            iov[1].iov_len = budget - iov[0].iov_len;
        }
        ssize_t w = writev(f->out.fd, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return; /* EPOLLOUT brings us back */
        if (w <= 0) {
            stream_failed(f, "lost", w < 0 ? errno : EPIPE);
            return;
        }
        logring_sent(&f->ring, (size_t)w);
        budget -= (size_t)w;
    }
    loop_defer(f->loop, &f->flush, fwd_flush_task, f); /* let others run first */
}

static void
kick(struct logfwd *f)
{
    if (f->state == FWD_ST_CONNECTED)
        loop_defer(f->loop, &f->flush, fwd_flush_task, f);
}

static void
stream_up(struct logfwd *f)
{
    char ep[EP_HOST_MAX + EP_PATH_MAX + 32];

    f->state = FWD_ST_CONNECTED;
    f->connects++;
    describe_forward(f, ep, sizeof(ep));
    if (!f->said_up && f->failures > 1) /* once, until a stream stays up */
        log_info("log forward to %s connected after %u attempts", ep, f->failures);
    else if (!f->said_up)
        log_info("log forward to %s connected", ep);
    f->said_up = true;
    f->up_since = loop_now(f->loop);
    kick(f);
}

/* CONNECTED: the sink never talks; EOF or an error means it went away,
 * and a byte means it is not a log sink (read on, a peer that keeps
 * sending would hold the loop): the stream is dropped and dialled again. */
static void
drain_input(struct logfwd *f)
{
    uint8_t sink[256];
    ssize_t n;

    do
        n = read(f->out.fd, sink, sizeof(sink));
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n > 0)
        stream_failed(f, "talked back (a log sink never does)", EPROTO);
    else
        stream_failed(f, "lost", n < 0 ? errno : 0);
}

static void
out_event(struct io *io, uint32_t events)
{
    struct logfwd *f = io->data;

    if (f->state != FWD_ST_CONNECTED)
        return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        drain_input(f);
        if (f->state != FWD_ST_CONNECTED)
            return;
    }
    if (events & EPOLLOUT)
        fwd_flush_task(&f->flush);
}

/* A sink marks the lines of a tcp or vsock stream from an unreserved port
 * as unverified (any process of this host could have sent them): say so
 * when airlock could not bind a reserved one, once until it can again. */
static void
check_source_port(struct logfwd *f, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    uint32_t port;

    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
        (port = transport_port((struct sockaddr *)&ss)) == 0)
        return;
    if (port <= TRANSPORT_RESERVED_HI) {
        f->said_port = false;
        return;
    }
    if (!f->said_port)
        log_warnx("log forward: connected from port %u, not a reserved one (airlock may not "
                  "bind ports below 1024 without CAP_NET_BIND_SERVICE, or all of %d-%d are "
                  "taken); the sink marks its lines unverified",
                  port, TRANSPORT_RESERVED_LO, TRANSPORT_RESERVED_HI);
    f->said_port = true;
}

static void
dialed(void *arg, int fd, enum dial_result why)
{
    struct logfwd *f = arg;

    if (fd < 0) {
        stream_failed(f, dial_result_name(why), -fd);
        return;
    }
    int rc = io_start(f->loop, &f->out, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, out_event, f);
    if (rc != 0) {
        close(fd);
        f->out.fd = -1;
        stream_failed(f, dial_result_name(DIAL_CONNECT_FAILED), -rc);
        return;
    }
    check_source_port(f, fd);
    stream_up(f);
}

/* Dials the forward endpoint (a name is resolved at each attempt, so a
 * moved log host is followed). */
static void
fwd_connect(struct logfwd *f)
{
    stream_close(f);
    timer_stop(f->loop, &f->timer);
    f->state = FWD_ST_DIALING;
    dial_start(&f->dial, f->loop, &f->conf.forward, FWD_CONNECT_TIMEOUT_MS, NULL, dialed, f);
}

/* ---- lines in */

/* Puts one line into the buffer and wakes the sender if it was idle. */
static void
put_line(struct logfwd *f, enum log_source src, const char *tag, size_t tag_len,
         const uint8_t *line, size_t len, bool cut)
{
    if (logring_put(&f->ring, src, tag, tag_len, line, len, cut) == 1)
        kick(f);
}

/* An app's line goes on with its controls escaped (line_escape()), so that
 * no line an app wrote shows as two, or as airlock's, where the file is
 * read; at most line_max bytes, cut (and marked) beyond. */
static void
put_app_line(struct logfwd *f, const struct logsrc *s, const struct line *l)
{
    struct line e = line_escape(l, f->escaped, f->conf.line_max);

    put_line(f, LOG_SRC_APP, s->tag, s->tag_len, e.data, e.len, e.cut);
}

/* log.c's tee: any thread, under log.c's lock; must not log or block. */
static void
tee_line(const char *line, size_t len, void *arg)
{
    struct logfwd *f = arg;
    bool cut = false;

    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (len > f->conf.line_max) {
        len = f->conf.line_max;
        cut = true;
    }
    if (logring_put(&f->ring, LOG_SRC_AIRLOCK, airlock_tag, sizeof(airlock_tag) - 1, line, len,
                    cut) == 1) {
        uint64_t one = 1;
        ssize_t w = write(f->wakefd, &one, sizeof(one));
        (void)w; /* EAGAIN: the counter is full, so a wake-up is pending */
    }
}

static void
wake_event(struct io *io, uint32_t events)
{
    struct logfwd *f = io->data;
    uint64_t n;
    (void)events;

    while (read(f->wakefd, &n, sizeof(n)) > 0)
        ;
    kick(f);
}

static void
src_reap(struct task *t)
{
    struct logsrc *s = t->data;

    free(s->buf);
    free(s);
}

static void
src_close(struct logsrc *s)
{
    struct logfwd *f = s->f;
    struct line l;

    if (s->state == SRC_ST_CLOSED)
        return;
    /* the app's last line, even without its newline */
    if (line_flush(&s->ls, &l) == PARSE_OK)
        put_app_line(f, s, &l);
    s->state = SRC_ST_CLOSED;
    io_stop(f->loop, &s->io);
    close(s->io.fd);
    s->io.fd = -1;
    streams_remove(&s->slot);
    loop_defer(f->loop, &s->reap, src_reap, s);
}

/* The set ends an app's stream: evicted for a newcomer, or idle too long. */
static void src_read(struct logsrc *s);

/* The set ends a source: evicted for a newcomer, or idle too long. What it
 * wrote before is taken first. */
static void
src_end(struct stream_slot *slot, enum streams_end why)
{
    (void)why; /* counted and logged by the set */
    src_read(slot->data);
    src_close(slot->data);
}

static void src_more(struct task *t);

static void
src_read(struct logsrc *s)
{
    struct logfwd *f = s->f;
    size_t budget = FWD_READ_BUDGET;

    while (budget > 0) {
        ssize_t n = read(s->io.fd, f->scratch, sizeof(f->scratch));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            src_close(s);
            return;
        }
        size_t off = 0;
        while (off < (size_t)n) {
            struct line l;
            size_t used;
            if (line_next(&s->ls, f->scratch + off, (size_t)n - off, &used, &l) != PARSE_OK)
                break;
            off += used;
            put_app_line(f, s, &l);
            streams_touch(&s->slot); /* active when a whole line comes */
        }
        /* Send between reads, not once after every source had its turn:
         * several sources at once would fill the buffer (and drop lines)
         * while the stream still had room. */
        fwd_flush_task(&f->flush);
        budget -= (size_t)n < budget ? (size_t)n : budget;
    }
    loop_defer(f->loop, &s->more, src_more, s);
}

static void
src_more(struct task *t)
{
    struct logsrc *s = t->data;

    if (s->state == SRC_ST_OPEN)
        src_read(s);
}

static void
src_event(struct io *io, uint32_t events)
{
    (void)events;
    src_read(io->data);
}

static void
src_admit(struct acceptor *a, int fd, const struct sockaddr *peer, socklen_t len)
{
    struct logfwd *f = a->data;
    (void)peer, (void)len;

    struct logsrc *s = calloc(1, sizeof(*s));
    uint8_t *buf = malloc(f->conf.line_max);
    if (s != NULL)
        s->slot.data = s;
    /* admitted (perhaps in place of another app) before it is watched */
    if (s == NULL || buf == NULL || streams_admit(&f->set, &s->slot, fd, true) != 0 ||
        io_start(f->loop, &s->io, fd, EPOLLIN | EPOLLRDHUP, src_event, s) != 0) {
        if (s != NULL)
            streams_remove(&s->slot);
        free(s);
        free(buf);
        close(fd);
        return;
    }
    s->f = f;
    s->buf = buf;
    s->state = SRC_ST_OPEN;
    line_split_init(&s->ls, buf, f->conf.line_max);
    uint64_t id = ++f->next_src;
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    int k;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0 && cred.pid > 0)
        k = snprintf(s->tag, sizeof(s->tag), "app[%d]#%llu: ", (int)cred.pid,
                     (unsigned long long)id);
    else
        k = snprintf(s->tag, sizeof(s->tag), "app#%llu: ", (unsigned long long)id);
    s->tag_len = k > 0 && (size_t)k < sizeof(s->tag) ? (size_t)k : strlen(s->tag);
    src_read(s);
}

static void
listen_close(struct logfwd *f)
{
    if (f->listen_fd < 0)
        return;
    acceptor_stop(&f->acceptor);
    close(f->listen_fd);
    f->listen_fd = -1;
    transport_unlisten(&f->listening);
}

/* Makes fd, listening on ep, f's listener. Returns 0 or -errno (fd and
 * ep's socket file are gone then). */
static int
listen_adopt(struct logfwd *f, int fd, const struct endpoint *ep)
{
    int rc = acceptor_start(&f->acceptor, f->loop, fd, "logs.listen", src_admit, NULL, f);
    if (rc != 0) {
        close(fd);
        transport_unlisten(ep);
        return rc;
    }
    f->listen_fd = fd;
    f->listening = *ep;
    return 0;
}

static int
listen_open(struct logfwd *f, const struct endpoint *ep)
{
    int fd = transport_listen(ep);

    return fd < 0 ? fd : listen_adopt(f, fd, ep);
}

/* Moves f's listener to ep (none when NULL): the new one is opened before
 * the old one closes, so that a new endpoint that cannot be had keeps the
 * old one; one the old listener holds (the same port on another address)
 * is taken after it, and should that fail too, the old one is opened
 * again. Returns 0 or -errno (the new endpoint's). */
static int
listen_move(struct logfwd *f, const struct endpoint *ep)
{
    struct endpoint old = f->listening;
    bool had = f->listen_fd >= 0;
    int fd = ep != NULL ? transport_listen(ep) : -1;

    if (ep != NULL && fd == -EADDRINUSE && had) {
        listen_close(f);
        if ((fd = transport_listen(ep)) < 0 && listen_open(f, &old) != 0)
            log_warnx("logs: the old listener could not be opened again either");
        had = false;
    }
    if (ep != NULL && fd < 0)
        return fd;
    if (had)
        listen_close(f);
    return fd >= 0 ? listen_adopt(f, fd, ep) : 0;
}

static void
tee_set(struct logfwd *f, bool on)
{
    if (on == f->tee)
        return;
    log_set_tee(on ? tee_line : NULL, on ? f : NULL);
    f->tee = on;
}

/* ---- public */

struct logfwd *
logfwd_new(struct loop *loop, const struct log_conf *conf, int *err)
{
    struct logfwd *f = calloc(1, sizeof(*f));
    int rc;

    if (f == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    f->loop = loop;
    f->conf = *conf;
    f->conf.forward.reserved_port = true; /* the sink trusts it then */
    streams_init(&f->set, loop, "logs listen", &conf->limits, src_end);
    f->out.fd = -1;
    f->listen_fd = -1;
    f->backoff = (struct backoff)BACKOFF_INIT(FWD_BACKOFF_MIN_MS, FWD_BACKOFF_MAX_MS);
    f->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (f->wakefd < 0) {
        rc = -errno;
        free(f);
        *err = rc;
        return NULL;
    }
    if ((f->escaped = malloc(conf->line_max)) == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = logring_init(&f->ring, conf->buffer)) != 0 ||
        (rc = io_start(loop, &f->wake_io, f->wakefd, EPOLLIN, wake_event, f)) != 0)
        goto fail;
    if (conf->has_listen && (rc = listen_open(f, &conf->listen)) != 0)
        goto fail;
    tee_set(f, conf->capture_stderr);
    fwd_connect(f);
    return f;

fail:
    io_stop(loop, &f->wake_io);
    close(f->wakefd);
    logring_free(&f->ring);
    free(f->escaped);
    free(f);
    *err = rc;
    return NULL;
}

const struct log_conf *
logfwd_conf(const struct logfwd *f)
{
    return &f->conf;
}

int
logfwd_reconfigure(struct logfwd *f, const struct log_conf *conf)
{
    bool listen_same = conf->has_listen == (f->listen_fd >= 0) &&
                       (!conf->has_listen || endpoint_equal(&conf->listen, &f->listening));
    int rc = 0;

    if (!listen_same && (rc = listen_move(f, conf->has_listen ? &conf->listen : NULL)) != 0) {
        char ep[EP_HOST_MAX + EP_PATH_MAX + 32];
        endpoint_format(&conf->listen, ep, sizeof(ep));
        log_warnx("logs: cannot listen on %s: %s%s", ep, strerror(-rc),
                  f->listen_fd >= 0 ? "; the old listener is kept" : "");
    } else if (listen_same && conf->has_listen) {
        if ((rc = transport_chperm(&conf->listen, &f->listening)) == 0)
            f->listening.perm = conf->listen.perm;
        else
            log_warnx("logs: cannot change the mode of %s: %s", conf->listen.path, strerror(-rc));
    }
    if (conf->buffer != f->conf.buffer || conf->line_max != f->conf.line_max)
        log_warnx("logs: buffer and line_max changes take effect at the next start");
    f->conf.limits = conf->limits;
    streams_set_limits(&f->set, &conf->limits);
    tee_set(f, conf->capture_stderr);
    f->conf.capture_stderr = conf->capture_stderr;
    f->conf.has_listen = f->listen_fd >= 0;
    if (f->conf.has_listen)
        f->conf.listen = f->listening;
    if (!endpoint_equal(&conf->forward, &f->conf.forward)) {
        dial_cancel(&f->dial); /* it reads f->conf.forward */
        f->conf.forward = conf->forward;
        f->conf.forward.reserved_port = true;
        f->failures = 0;
        f->said_up = false;
        backoff_reset(&f->backoff);
        fwd_connect(f);
    }
    return rc;
}

size_t
logfwd_pending(struct logfwd *f)
{
    struct logring_stats st;

    logring_stats(&f->ring, &st);
    return st.buffered;
}

void
logfwd_render(struct logfwd *f, struct strbuf *out)
{
    static const char *const src_names[LOG_SRC_COUNT] = {"airlock", "app"};
    struct logring_stats st;

    logring_stats(&f->ring, &st);
    strbuf_printf(out, "# HELP airlock_log_lines_total Log lines accepted into the forward "
                       "buffer.\n# TYPE airlock_log_lines_total counter\n");
    for (int i = 0; i < LOG_SRC_COUNT; i++)
        strbuf_printf(out, "airlock_log_lines_total{source=\"%s\"} %llu\n", src_names[i],
                      (unsigned long long)st.lines[i]);
    strbuf_printf(out, "# HELP airlock_log_dropped_total Log lines dropped because the forward "
                       "buffer was full.\n# TYPE airlock_log_dropped_total counter\n");
    for (int i = 0; i < LOG_SRC_COUNT; i++)
        strbuf_printf(out, "airlock_log_dropped_total{source=\"%s\"} %llu\n", src_names[i],
                      (unsigned long long)st.dropped[i]);
    strbuf_printf(out, "# HELP airlock_log_cut_total Log lines cut at line_max.\n"
                       "# TYPE airlock_log_cut_total counter\n");
    for (int i = 0; i < LOG_SRC_COUNT; i++)
        strbuf_printf(out, "airlock_log_cut_total{source=\"%s\"} %llu\n", src_names[i],
                      (unsigned long long)st.cut[i]);
    strbuf_printf(out,
                  "# HELP airlock_log_sent_bytes_total Bytes of whole log lines written to the "
                  "forward stream.\n# TYPE airlock_log_sent_bytes_total counter\n"
                  "airlock_log_sent_bytes_total %llu\n"
                  "# HELP airlock_log_buffer_bytes Bytes waiting in the forward buffer.\n"
                  "# TYPE airlock_log_buffer_bytes gauge\nairlock_log_buffer_bytes %zu\n"
                  "# HELP airlock_log_buffer_capacity_bytes Size of the forward buffer.\n"
                  "# TYPE airlock_log_buffer_capacity_bytes gauge\n"
                  "airlock_log_buffer_capacity_bytes %zu\n"
                  "# HELP airlock_log_forward_connected 1 while the forward stream is up.\n"
                  "# TYPE airlock_log_forward_connected gauge\n"
                  "airlock_log_forward_connected %d\n"
                  "# HELP airlock_log_forward_errors_total Failed connects and broken forward "
                  "streams.\n# TYPE airlock_log_forward_errors_total counter\n"
                  "airlock_log_forward_errors_total %llu\n"
                  "# HELP airlock_log_sources_open Apps connected to the log listen endpoint.\n"
                  "# TYPE airlock_log_sources_open gauge\nairlock_log_sources_open %zu\n"
                  "# HELP airlock_log_sources_refused_total App connections refused: not in "
                  "allow.\n# TYPE airlock_log_sources_refused_total counter\n"
                  "airlock_log_sources_refused_total %llu\n"
                  "# HELP airlock_log_sources_evicted_total App connections closed at "
                  "max_streams for a new one.\n# TYPE airlock_log_sources_evicted_total counter\n"
                  "airlock_log_sources_evicted_total %llu\n"
                  "# HELP airlock_log_sources_idle_closed_total App connections closed after "
                  "idle_timeout.\n# TYPE airlock_log_sources_idle_closed_total counter\n"
                  "airlock_log_sources_idle_closed_total %llu\n",
                  (unsigned long long)st.sent_bytes, st.buffered, f->conf.buffer,
                  f->state == FWD_ST_CONNECTED, (unsigned long long)f->errors, f->set.n,
                  (unsigned long long)f->set.refused, (unsigned long long)f->set.evicted,
                  (unsigned long long)f->set.idle_closed);
}

static void
fwd_reap(struct task *t)
{
    struct logfwd *f = t->data;

    free(f->escaped);
    free(f);
}

void
logfwd_free(struct logfwd *f)
{
    if (f == NULL)
        return;
    tee_set(f, false);
    for (struct stream_slot *slot; (slot = streams_oldest(&f->set)) != NULL;)
        src_close(slot->data);
    streams_fini(&f->set);
    listen_close(f);
    dial_cancel(&f->dial);
    stream_close(f);
    timer_stop(f->loop, &f->timer);
    io_stop(f->loop, &f->wake_io);
    close(f->wakefd);
    f->wakefd = -1;
    logring_free(&f->ring);
    /* f->flush and events of f's fds may still be queued in this loop turn:
     * free f after them (a queued flush sees a stream that is not up) */
    f->state = FWD_ST_BACKOFF;
    loop_defer(f->loop, &f->reap, fwd_reap, f);
}
