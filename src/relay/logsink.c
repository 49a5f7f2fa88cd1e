/* logsink.c - log streams into a file; see logsink.h. */
#include "relay/logsink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/file.h"
#include "core/log.h"
#include "core/logring.h"
#include "net/acceptor.h"
#include "net/transport.h"
#include "proto/lines.h"
#include "relay/streams.h"

#define SINK_HELLO_MAX 64
#define SINK_HELLO_TIMEOUT_MS 5000
#define SINK_READ_BUDGET (1024 * 1024) /* per stream and wakeup */
#define SINK_IN (64 * 1024)
#define SINK_OUT (128 * 1024)

enum stream_state {
    STREAM_ST_HELLO,  /* hvsock listener: waiting for "CONNECT <port>\n" */
    STREAM_ST_LINES,  /* reading lines */
    STREAM_ST_CLOSED, /* waiting for its deferred free */
};

struct sink_stream {
    struct stream_slot slot; /* in s->set */
    struct logsink *s;
    enum stream_state state;
    struct io io;
    struct timer timer; /* hello timeout */
    struct task more;   /* reading continued after its budget */
    struct task reap;
    struct line_split ls;
    uint8_t *buf; /* line_max bytes: the partial line */
    uint8_t hello[SINK_HELLO_MAX];
    size_t hello_len;
    char prefix[sizeof(LOGSINK_UNVERIFIED) + TRANSPORT_DESC_MAX + 4]; /* "" when verified */
    size_t prefix_len;
};

struct logsink {
    struct loop *loop;
    struct log_sink_conf conf;
    char what[CONF_NAME_MAX + 16]; /* "log_sink=NAME" */
    int file_fd;
    int listen_fd;
    struct acceptor acceptor;
    struct streams set; /* the streams: admission, eviction, idle timeout */
    uint64_t lines, cut, ended_mid_line, streams_total, write_errors, unverified;
    int write_failing; /* log write errors once per run of failures */
    struct task reap;
    size_t out_len;
    uint8_t *escaped; /* line_max bytes: a marked line with its controls escaped */
    uint8_t in[SINK_IN];
    uint8_t out[SINK_OUT];
};

/* A regular file only: a FIFO without a reader would block the open (at
 * start, and at each SIGHUP on the main loop). */
static int
open_file(const char *path)
{
    struct stat st;

    return file_open_regular(path, O_WRONLY | O_APPEND | O_CREAT, 0640, &st);
}

/* ---- the file: whole lines only */

static void
write_all(struct logsink *s, const struct iovec *iov, int n)
{
    struct iovec v[4];
    size_t total = 0;

    memcpy(v, iov, (size_t)n * sizeof(*iov));
    for (int i = 0; i < n; i++)
        total += v[i].iov_len;
    while (total > 0) {
        ssize_t w = writev(s->file_fd, v, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            s->write_errors++;
            if (!s->write_failing)
                log_warnx("log_sink=%s: write to %s: %s", s->conf.name, s->conf.file,
                          strerror(w < 0 ? errno : EIO));
            s->write_failing = 1;
            return;
        }
        total -= (size_t)w;
        for (int i = 0; i < n && w > 0; i++) {
            size_t k = (size_t)w < v[i].iov_len ? (size_t)w : v[i].iov_len;
            v[i].iov_base = (uint8_t *)v[i].iov_base + k;
            v[i].iov_len -= k;
            w -= (ssize_t)k;
        }
    }
    s->write_failing = 0;
}

static void
flush_out(struct logsink *s)
{
    struct iovec v = {.iov_base = s->out, .iov_len = s->out_len};

    if (s->out_len > 0)
        write_all(s, &v, 1);
    s->out_len = 0;
}

/* Queues one line of st for the file: after its prefix (with its controls
 * escaped then: the line of a process that could be anyone's never shows
 * as two, or without its prefix, where the file is read), marked cut, or
 * with end (LOGSINK_END_MARK), and '\n'. */
static void
emit(struct sink_stream *st, const struct line *l, const char *end)
{
    struct logsink *s = st->s;
    struct line e = st->prefix_len > 0 ? line_escape(l, s->escaped, s->conf.line_max) : *l;
    const char *mark = end != NULL ? end : e.cut ? LOGRING_CUT_MARK : NULL;
    const uint8_t *data = e.data;
    size_t plen = st->prefix_len, len = e.len, mlen = mark != NULL ? strlen(mark) : 0;
    size_t need = plen + len + mlen + 1;

    s->lines++;
    s->cut += e.cut;
    if (s->out_len + need > sizeof(s->out))
        flush_out(s);
    if (need > sizeof(s->out)) {
        struct iovec v[4] = {{.iov_base = st->prefix, .iov_len = plen},
                             {.iov_base = (void *)data, .iov_len = len},
                             {.iov_base = (void *)mark, .iov_len = mlen},
                             {.iov_base = "\n", .iov_len = 1}};
        write_all(s, v, 4);
        return;
    }
    uint8_t *o = s->out + s->out_len;
    memcpy(o, st->prefix, plen);
    if (len > 0)
        memcpy(o + plen, data, len);
    if (mlen > 0)
        memcpy(o + plen + len, mark, mlen);
    o[plen + len + mlen] = '\n';
    s->out_len += need;
}

/* ---- streams */

static void
stream_reap(struct task *t)
{
    struct sink_stream *st = t->data;

    free(st->buf);
    free(st);
}

static void
stream_close(struct sink_stream *st)
{
    struct logsink *s = st->s;
    struct line l;

    if (st->state == STREAM_ST_CLOSED)
        return;
    if (line_flush(&st->ls, &l) == PARSE_OK) {
        s->ended_mid_line++;
        emit(st, &l, LOGSINK_END_MARK);
        flush_out(s);
    }
    st->state = STREAM_ST_CLOSED;
    io_stop(s->loop, &st->io);
    close(st->io.fd);
    st->io.fd = -1;
    timer_stop(s->loop, &st->timer);
    streams_remove(&st->slot);
    loop_defer(s->loop, &st->reap, stream_reap, st);
}

static void stream_read(struct sink_stream *st);

/* The set ends a stream: evicted for a newcomer, or idle too long. What it
 * sent before is taken first (the forwarder released those lines). */
static void
stream_end(struct stream_slot *slot, enum streams_end why)
{
    (void)why; /* counted and logged by the set */
    stream_read(slot->data);
    stream_close(slot->data);
}

static void
take_lines(struct sink_stream *st, const uint8_t *p, size_t n)
{
    size_t off = 0;

    while (off < n) {
        struct line l;
        size_t used;
        if (line_next(&st->ls, p + off, n - off, &used, &l) != PARSE_OK)
            break;
        off += used;
        emit(st, &l, NULL);
        /* active when a whole line comes: bytes without one (a peer that
         * keeps its streams warm) do not keep a stream's place */
        streams_touch(&st->slot);
    }
}

/* hvsock listener: "CONNECT <our port>\n" gets "OK <port>\n"; anything
 * else closes the stream. Bytes after the line are log lines. */
static void
take_hello(struct sink_stream *st, const uint8_t *p, size_t n)
{
    struct logsink *s = st->s;
    size_t room = sizeof(st->hello) - 1 - st->hello_len;
    size_t k = n < room ? n : room;

    memcpy(st->hello + st->hello_len, p, k);
    uint8_t *nl = memchr(st->hello + st->hello_len, '\n', k);
    st->hello_len += k;
    if (nl == NULL) {
        if (st->hello_len == sizeof(st->hello) - 1)
            goto bad;
        return;
    }
    size_t line_len = (size_t)(nl - st->hello);
    st->hello[line_len] = '\0';
    if (transport_hvsock_answer(st->io.fd, (char *)st->hello, s->conf.listen.port) != 0)
        goto bad;
    timer_stop(s->loop, &st->timer);
    st->state = STREAM_ST_LINES;
    /* what came after the line in this read */
    size_t rest_at = (line_len + 1) - (st->hello_len - k);
    take_lines(st, p + rest_at, n - rest_at);
    return;

bad:
    log_warnx("log_sink=%s: bad hvsock CONNECT line; closing the stream", s->conf.name);
    stream_close(st);
}

static void stream_more(struct task *t);

static void
stream_read(struct sink_stream *st)
{
    struct logsink *s = st->s;
    size_t budget = SINK_READ_BUDGET;

    while (budget > 0 && st->state != STREAM_ST_CLOSED) {
        ssize_t n = read(st->io.fd, s->in, sizeof(s->in));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            flush_out(s);
            return;
        }
        if (n <= 0) {
            flush_out(s);
            stream_close(st);
            return;
        }
        if (st->state == STREAM_ST_HELLO)
            take_hello(st, s->in, (size_t)n);
        else
            take_lines(st, s->in, (size_t)n);
        budget -= (size_t)n < budget ? (size_t)n : budget;
    }
    flush_out(s);
    if (st->state != STREAM_ST_CLOSED)
        loop_defer(s->loop, &st->more, stream_more, st);
}

static void
stream_more(struct task *t)
{
    struct sink_stream *st = t->data;

    if (st->state != STREAM_ST_CLOSED)
        stream_read(st);
}

static void
stream_event(struct io *io, uint32_t events)
{
    (void)events;
    stream_read(io->data);
}

static void
hello_timeout(struct timer *t)
{
    struct sink_stream *st = t->data;

    log_warnx("log_sink=%s: no hvsock CONNECT line in time; closing the stream", st->s->conf.name);
    stream_close(st);
}

/* A stream of a tcp or vsock listener from a port any process may bind:
 * not airlock's forwarder (relay/logfwd.c binds a reserved one). Its lines
 * are marked with where they came from, and it never takes a verified
 * stream's place (streams.h). */
static bool
unverified(const struct logsink *s, const struct sockaddr *peer)
{
    enum ep_kind kind = s->conf.listen.kind;

    return s->conf.mark_unverified && (kind == EP_TCP || kind == EP_VSOCK) &&
           transport_port(peer) > TRANSPORT_RESERVED_HI;
}

/* Marks st's lines when it is unverified(). */
static void
mark_if_unverified(struct sink_stream *st, const struct sockaddr *peer, socklen_t len)
{
    struct logsink *s = st->s;
    char desc[TRANSPORT_DESC_MAX];

    if (!unverified(s, peer))
        return;
    transport_describe(peer, len, desc, sizeof(desc));
    snprintf(st->prefix, sizeof(st->prefix), LOGSINK_UNVERIFIED "[%s]: ", desc);
    st->prefix_len = strlen(st->prefix); /* fits: see its size */
    s->unverified++;
}

static void
sink_admit(struct acceptor *a, int fd, const struct sockaddr *peer, socklen_t len)
{
    struct logsink *s = a->data;

    struct sink_stream *st = calloc(1, sizeof(*st));
    uint8_t *buf = malloc(s->conf.line_max);
    if (st != NULL)
        st->slot.data = st;
    /* admitted (perhaps in place of another stream) before it is watched */
    if (st == NULL || buf == NULL ||
        streams_admit(&s->set, &st->slot, fd, !unverified(s, peer)) != 0 ||
        io_start(s->loop, &st->io, fd, EPOLLIN | EPOLLRDHUP, stream_event, st) != 0) {
        if (st != NULL)
            streams_remove(&st->slot);
        free(st);
        free(buf);
        close(fd);
        return;
    }
    st->s = s;
    st->buf = buf;
    mark_if_unverified(st, peer, len);
    line_split_init(&st->ls, buf, s->conf.line_max);
    st->state = s->conf.listen.kind == EP_HVSOCK ? STREAM_ST_HELLO : STREAM_ST_LINES;
    if (st->state == STREAM_ST_HELLO)
        timer_start(s->loop, &st->timer, SINK_HELLO_TIMEOUT_MS, hello_timeout, st);
    s->streams_total++;
    stream_read(st);
}

/* ---- public */

struct logsink *
logsink_new(struct loop *loop, const struct log_sink_conf *conf, int *err)
{
    struct logsink *s = calloc(1, sizeof(*s));
    char ep[EP_HOST_MAX + EP_PATH_MAX + 32];
    int rc;

    if (s == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    s->loop = loop;
    s->conf = *conf;
    snprintf(s->what, sizeof(s->what), "log_sink=%s", conf->name);
    streams_init(&s->set, loop, s->what, &conf->limits, stream_end);
    s->listen_fd = -1;
    if ((s->escaped = malloc(conf->line_max)) == NULL) {
        free(s);
        *err = -ENOMEM;
        return NULL;
    }
    s->file_fd = open_file(conf->file);
    if (s->file_fd < 0) {
        rc = s->file_fd;
        log_warnx("log_sink=%s: cannot open %s: %s", conf->name, conf->file, file_strerror(rc));
        goto fail;
    }
    s->listen_fd = transport_listen(&conf->listen);
    if (s->listen_fd < 0) {
        rc = s->listen_fd;
        endpoint_format(&conf->listen, ep, sizeof(ep));
        log_warnx("log_sink=%s: cannot listen on %s: %s", conf->name, ep, strerror(-rc));
        goto fail;
    }
    if ((rc = acceptor_start(&s->acceptor, loop, s->listen_fd, s->what, sink_admit, NULL, s)) !=
        0) {
        transport_unlisten(&conf->listen);
        goto fail;
    }
    return s;

fail:
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->file_fd >= 0)
        close(s->file_fd);
    free(s->escaped);
    free(s);
    *err = rc;
    return NULL;
}

const struct log_sink_conf *
logsink_conf(const struct logsink *s)
{
    return &s->conf;
}

int
logsink_reopen(struct logsink *s)
{
    int fd = open_file(s->conf.file);

    if (fd < 0) {
        log_warnx("log_sink=%s: cannot reopen %s: %s; still writing to the old file", s->conf.name,
                  s->conf.file, file_strerror(fd));
        return fd;
    }
    flush_out(s);
    close(s->file_fd);
    s->file_fd = fd;
    s->write_failing = 0;
    return 0;
}

void
logsink_render(struct logsink *const *sinks, size_t n, struct strbuf *out)
{
    static const struct {
        const char *name, *type, *help;
        size_t offset;
    } fams[] = {
        {"airlock_log_sink_lines_total", "counter", "Lines written to the sink's file.",
         offsetof(struct logsink, lines)},
        {"airlock_log_sink_cut_total", "counter", "Lines cut at the sink's line_max.",
         offsetof(struct logsink, cut)},
        {"airlock_log_sink_ended_mid_line_total", "counter",
         "Streams that ended inside a line (completed with a marker).",
         offsetof(struct logsink, ended_mid_line)},
        {"airlock_log_sink_streams_total", "counter", "Streams accepted.",
         offsetof(struct logsink, streams_total)},
        {"airlock_log_sink_streams_unverified_total", "counter",
         "Streams from a port any process may bind (1024 and above), their lines marked.",
         offsetof(struct logsink, unverified)},
        {"airlock_log_sink_write_errors_total", "counter", "Failed writes to the file.",
         offsetof(struct logsink, write_errors)},
        {"airlock_log_sink_streams_refused_total", "counter",
         "Streams refused: their peer is not in allow.", offsetof(struct logsink, set.refused)},
        {"airlock_log_sink_streams_evicted_total", "counter",
         "Streams closed at max_streams for a new one (the least recently active of the peer "
         "with the most).",
         offsetof(struct logsink, set.evicted)},
        {"airlock_log_sink_streams_idle_closed_total", "counter",
         "Streams closed after idle_timeout without a byte.",
         offsetof(struct logsink, set.idle_closed)},
    };

    if (n == 0)
        return;
    for (size_t k = 0; k < sizeof(fams) / sizeof(fams[0]); k++) {
        strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", fams[k].name, fams[k].help, fams[k].name,
                      fams[k].type);
        for (size_t i = 0; i < n; i++) {
            const uint64_t *v = (const uint64_t *)((const char *)sinks[i] + fams[k].offset);
            strbuf_printf(out, "%s{sink=\"%s\"} %llu\n", fams[k].name, sinks[i]->conf.name,
                          (unsigned long long)*v);
        }
    }
    strbuf_printf(out, "# HELP airlock_log_sink_streams_open Streams connected now.\n"
                       "# TYPE airlock_log_sink_streams_open gauge\n");
    for (size_t i = 0; i < n; i++)
        strbuf_printf(out, "airlock_log_sink_streams_open{sink=\"%s\"} %zu\n", sinks[i]->conf.name,
                      sinks[i]->set.n);
}

static void
sink_reap(struct task *t)
{
    struct logsink *s = t->data;

    free(s->escaped);
    free(s);
}

void
logsink_free(struct logsink *s)
{
    if (s == NULL)
        return;
    /* take what the streams already sent before cutting them off */
    for (struct stream_slot *slot; (slot = streams_oldest(&s->set)) != NULL;) {
        struct sink_stream *st = slot->data;
        stream_read(st);
        stream_close(st);
    }
    streams_fini(&s->set);
    flush_out(s);
    acceptor_stop(&s->acceptor);
    close(s->listen_fd);
    s->listen_fd = -1;
    transport_unlisten(&s->conf.listen);
    close(s->file_fd);
    s->file_fd = -1;
    /* events of its fds may still sit in this loop turn */
    loop_defer(s->loop, &s->reap, sink_reap, s);
}
