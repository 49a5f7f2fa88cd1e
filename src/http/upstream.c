/* upstream.c - the backend side of an HTTP proxy session: dialling
 * (net/dial.c), the worker's pool of idle kept-alive connections, sending
 * the request, reading the response whole (within max_response), the one
 * retry of an idempotent request, and the response's head for the client
 * (after rules.c opened its tokens on decrypt routes). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "field/field.h"
#include "http/proxy_int.h"
#include "net/transport.h"

/* ---- idle backend connections, per worker */

void
idle_close(struct idle_conn *ic)
{
    io_stop(ic->w->loop, &ic->io);
    if (ic->io.fd >= 0)
        close(ic->io.fd);
    timer_stop(ic->w->loop, &ic->timer);
    list_del(&ic->link);
    ic->w->n_idle--;
    http_proxy_unref(ic->p);
    free(ic);
}

static void
idle_event(struct io *io, uint32_t events)
{
    (void)events;
    idle_close(io->data);
}

static void
idle_timeout(struct timer *t)
{
    idle_close(t->data);
}

/* Keeps s's backend connection (idle, whole responses only) for the next
 * session of the same proxy on this worker; the oldest goes when full.
 * Returns false when it could not be kept (the caller closes it). */
bool
idle_put(struct sess *s)
{
    struct http_worker *w = s->w;
    struct idle_conn *ic;

    if (s->ssl != NULL) /* a TLS connection to one route's upstream: not pooled */
        return false;
    if ((ic = calloc(1, sizeof(*ic))) == NULL)
        return false;
    io_stop(w->loop, &s->bio);
    if (io_start(w->loop, &ic->io, s->bio.fd, EPOLLIN | EPOLLRDHUP, idle_event, ic) != 0) {
        free(ic);
        return false;
    }
    if (w->n_idle == IDLE_MAX)
        idle_close(list_entry(w->idle.next, struct idle_conn, link));
    ic->w = w;
    ic->p = s->p;
    proxy_ref(s->p);
    list_add_tail(&w->idle, &ic->link);
    w->n_idle++;
    timer_start(w->loop, &ic->timer, s->p->conf.idle_timeout_ms, idle_timeout, ic);
    s->bio.fd = -1;
    return true;
}

/* The newest idle connection of s's proxy on this worker, as a socket
 * for s (-1: none). */
static int
idle_take(struct sess *s)
{
    for (struct list *pos = s->w->idle.prev; pos != &s->w->idle; pos = pos->prev) {
        struct idle_conn *ic = list_entry(pos, struct idle_conn, link);
        if (ic->p != s->p)
            continue;
        int fd = ic->io.fd;
        io_stop(s->w->loop, &ic->io);
        ic->io.fd = -1; /* now s's */
        idle_close(ic);
        return fd;
    }
    return -1;
}

/* ---- the backend */

void
backend_close(struct sess *s)
{
    if (s->dialing) {
        dial_cancel(&s->dial);
        timer_stop(s->w->loop, &s->redial);
        s->dialing = false;
    }
    outbound_close(s);
    s->via_hs = false;
    s->b_private = false;
    sock_close(s, &s->bio);
    s->br = (struct ready){0};
}

/* Whether m authenticates the connection it comes on rather than the
 * request: NTLM and Negotiate (Kerberos, SPNEGO) do, so a backend such a
 * handshake is made on serves that client alone. Pooled, its next session
 * would be another client, served as the one that authenticated. */
static bool
connection_auth(const struct http_msg *m, const char *header)
{
    return http_msg_auth_scheme(m, header, "NTLM") || http_msg_auth_scheme(m, header, "Negotiate");
}

static bool
outbound(const struct sess *s)
{
    return s->p->conf.mode == HTTP_OUTBOUND;
}

/* Where s's request goes: the proxy's backend, or its route's upstream. */
static const struct endpoint *
target(const struct sess *s)
{
    if (!outbound(s))
        return &s->p->conf.backend;
    return http_proxy_has_via(&s->p->conf) ? &s->p->conf.via
                                           : &s->p->conf.routes[s->b_route].upstream;
}

static void
backend_event(struct io *io, uint32_t events)
{
    struct sess *s = io->data;

    ready_update(&s->br, events);
    sess_step(s);
}

static void dial_done(void *arg, int fd, enum dial_result why);
static void redial(struct timer *t);

static void
backend_dial(struct sess *s)
{
    s->dialing = true;
    s->b_route = s->route;
    dial_start(&s->dial, s->w->loop, target(s), s->p->conf.connect_timeout_ms,
               outbound(s) && !http_proxy_has_via(&s->p->conf) ? outbound_admit : NULL, dial_done,
               s);
}

static void
redial(struct timer *t)
{
    backend_dial(t->data);
}

static void
dial_done(void *arg, int fd, enum dial_result why)
{
    struct sess *s = arg;
    int rc;

    s->dialing = false;
    uint64_t now = loop_now(s->w->loop);
    if ((fd == -EMFILE || fd == -ENFILE) && s->redial_until == 0)
        s->redial_until = now + s->p->conf.connect_timeout_ms;
    if ((fd == -EMFILE || fd == -ENFILE) && now < s->redial_until && unproven_evict_any()) {
        /* out of descriptors: an unproven connection (of any listener, on
         * any worker) gives its own up, and the dial is tried again soon;
         * the acceptor may take that one first, so again while unproven
         * connections are left, within connect_timeout of the first */
        s->dialing = true; /* what backend_close() cancels */
        timer_start(s->w->loop, &s->redial, ACCEPTOR_RETRY_MS, redial, s);
        return;
    }
    if (fd < 0) {
        char t[ENDPOINT_TEXT_MAX];
        endpoint_format(target(s), t, sizeof(t));
        log_warnx("http proxy=%s conn=%llu backend %s: %s (%s)", s->p->conf.name,
                  (unsigned long long)s->id, t, dial_result_name(why), strerror(-fd));
        if (why == DIAL_ADMIT_REFUSED)
            reply_error(s, 403, FAIL_DEST_DENIED,
                        "the destination's address is not in egress_allow: nothing was sent");
        else if (why == DIAL_TIMEOUT)
            reply_error(s, 504, FAIL_BACKEND_TIMEOUT, "the backend did not accept in time");
        else
            reply_error(s, 502, FAIL_BACKEND_DOWN, "the backend is unreachable");
        sess_step(s);
        return;
    }
    transport_tune(fd, target(s)->kind, true);
    if ((rc = io_start(s->w->loop, &s->bio, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, backend_event,
                       s)) != 0) {
        close(fd);
        reply_error(s, 502, FAIL_BACKEND_DOWN, "cannot watch the backend socket");
    } else if (outbound(s) && (s->ssl = outbound_ssl(s->p, (size_t)s->b_route, fd)) == NULL) {
        reply_error(s, 500, FAIL_INTERNAL, "out of memory");
    } else {
        s->tls_hs = s->ssl != NULL;
        s->via_hs = s->ssl != NULL && http_proxy_has_via(&s->p->conf);
        s->via_sent = false;
        s->via_off = 0;
        s->br.writable = true;
    }
    sess_step(s);
}

/* Starts s->resp on the backend's next response. One that no rule
 * rewrites has no bound of its own: past max_response it is streamed. */
static void
resp_init(struct sess *s)
{
    const struct http_proxy_conf *pc = &s->p->conf;

    http_msg_init(&s->resp, true, pc->max_header, HTTP_MSG_HEADERS_MAX,
                  s->stream_ok ? SIZE_MAX : pc->max_response);
    s->resp.skip_body = s->is_head;
}

/* Sends the request on the kept backend connection, or dials one. */
void
backend_start(struct sess *s)
{
    hbuf_drop(&s->rin, s->rin.len);
    s->stream_ok = !(s->route >= 0 && !outbound(s) && s->p->conf.routes[s->route].decrypt);
    s->stream = STREAM_OFF;
    s->chunk_sent = s->stream_end = false;
    resp_init(s);
    s->b_idle = false;
    if (s->bio.fd >= 0 && (s->br.hup || s->br.readable))
        backend_close(s); /* it closed, or spoke out of turn, while idle */
    if (s->bio.fd >= 0 && outbound(s) && s->b_route != s->route)
        backend_close(s); /* another route's upstream */
    if (s->bio.fd < 0 && !s->retried && !outbound(s)) {
        int fd = idle_take(s);
        if (fd >= 0 && io_start(s->w->loop, &s->bio, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP,
                                backend_event, s) == 0)
            s->br = (struct ready){.writable = true};
        else if (fd >= 0)
            close(fd);
    }
    s->reused = s->bio.fd >= 0;
    if (connection_auth(&s->req, "authorization"))
        s->b_private = true;
    if (!s->reused)
        backend_dial(s);
}

/* Whether a request may be sent twice (RFC 9110 9.2.2). */
static bool
idempotent(unsigned method)
{
    return method == HTTP_GET || method == HTTP_HEAD || method == HTTP_PUT ||
           method == HTTP_DELETE || method == HTTP_OPTIONS;
}

/* The backend failed before its response was whole: an idempotent request
 * on a kept connection that the backend had closed meanwhile (no byte of
 * the response came) is retried once on a new one; otherwise 502, and the
 * client's connection closes. A POST is never sent twice. */
static void
backend_failed(struct sess *s, const char *what)
{
    backend_close(s);
    if (s->reused && !s->retried && s->rin.len == 0 && idempotent(s->req.parser.method)) {
        s->retried = true;
        s->osent = 0;
        backend_start(s);
        return;
    }
    log_warnx("http proxy=%s conn=%llu backend %s inside the response", s->p->conf.name,
              (unsigned long long)s->id, what);
    s->close_after = true;
    reply_error(s, 502, FAIL_BACKEND_CLOSED, "the backend closed inside its response");
}

/* Writes head + body from osent on to fd, through s->ssl when tls;
 * returns 0, -EAGAIN or -errno. */
int
sess_write_out(struct sess *s, int fd, bool tls)
{
    while (s->osent < s->olen) {
        struct iovec iov[2];
        int n = 0;
        if (s->osent < s->head.len)
            iov[n++] = (struct iovec){s->head.data + s->osent, s->head.len - s->osent};
        size_t boff = s->osent > s->head.len ? s->osent - s->head.len : 0;
        if (s->olen - s->head.len > boff)
            iov[n++] = (struct iovec){(void *)(s->obody + boff), s->olen - s->head.len - boff};
        ssize_t w =
            tls ? outbound_io(s, iov[0].iov_base, iov[0].iov_len, true) : writev(fd, iov, n);
        if (tls && w < 0)
            return (int)w;
        if (w < 0)
            return errno == EINTR ? 0 : -errno;
        s->osent += (size_t)w;
    }
    return 0;
}

bool
client_flush(struct sess *s)
{
    if (!s->cr.writable)
        return false;
    int rc = sess_write_out(s, s->cio.fd, false);
    if (rc == -EAGAIN) {
        s->cr.writable = false;
        return false;
    }
    if (rc != 0) {
        sess_close(s);
        return false;
    }
    return true;
}

static void on_response(struct sess *s);
static void response_head(struct sess *s, const char *framing);

/* Reads what the backend sent into rin: the count, 0 at its end, -EAGAIN
 * (the readiness cleared), -ENOSPC when rin is at its bound (max_header +
 * max_response and a read's worth), -ENOMEM or -errno. */
static ssize_t
backend_read(struct sess *s)
{
    const struct http_proxy_conf *pc = &s->p->conf;
    ssize_t room = hbuf_room(&s->rin, READ_CHUNK, pc->max_header + pc->max_response + READ_CHUNK);
    ssize_t n;

    if (room <= 0)
        return room < 0 ? -ENOMEM : -ENOSPC;
    n = s->ssl != NULL ? outbound_io(s, s->rin.data + s->rin.len, (size_t)room, false)
                       : read(s->bio.fd, s->rin.data + s->rin.len, (size_t)room);
    if (n < 0 && s->ssl == NULL)
        n = -errno;
    if (n > 0) {
        /* drained, as for the client; TLS may hold more than a short read gave */
        if ((size_t)n < (size_t)room && !s->br.hup && s->ssl == NULL)
            s->br.readable = false;
        s->rin.len += (size_t)n;
    } else if (n == -EAGAIN && s->ssl == NULL) { /* TLS cleared what it waits for */
        s->br.readable = false;
    }
    return n;
}

/* The response outgrew max_response (or says it will) on a route no rule
 * rewrites it on: its head goes to the client now, framed by the backend's
 * length, else chunked (HTTP/1.0 clients: by closing), and its body
 * follows as it comes (stream_step). */
static void
stream_start(struct sess *s)
{
    const struct http_msg *m = &s->resp;
    char framing[64] = "";

    if (!m->chunked && m->parser.content_length != ULLONG_MAX) {
        s->stream = STREAM_LENGTH;
        snprintf(framing, sizeof(framing), "Content-Length: %llu\r\n",
                 (unsigned long long)m->parser.content_length + m->body.len);
    } else if (s->req.parser.http_major == 1 && s->req.parser.http_minor >= 1) {
        s->stream = STREAM_CHUNKED;
        snprintf(framing, sizeof(framing), "Transfer-Encoding: chunked\r\n");
    } else {
        s->stream = STREAM_EOF;
        s->close_after = true;
    }
    response_head(s, framing);
    if (s->head.failed) {
        s->stream = STREAM_OFF;
        reply_error(s, 500, FAIL_INTERNAL, "out of memory");
        return;
    }
    log_debug("http proxy=%s conn=%llu response streamed (over max_response)", s->p->conf.name,
              (unsigned long long)s->id);
    stats_observe(s, m->parser.status_code);
    s->obody = NULL;
    s->olen = s->head.len;
    s->osent = 0;
}

/* The streamed response went out whole. */
static void
stream_done(struct sess *s)
{
    if (!s->resp.keep_alive || s->rin.len > s->resp.fed)
        backend_close(s); /* bytes after the response: not a connection to reuse */
    s->stream = STREAM_OFF;
    exchange_done(s);
}

/* One step of a streamed response: what is queued goes to the client
 * before anything more is read (rin does not move under it), then the
 * body read so far, then a read. True on progress. */
static bool
stream_step(struct sess *s)
{
    struct http_msg *m = &s->resp;

    if (s->osent < s->olen) {
        if (!client_flush(s))
            return false;
        if (s->olen > s->head.len)
            http_msg_consume(m, s->rin.data, &s->rin.len, s->olen - s->head.len);
        s->olen = s->osent = 0;
        strbuf_truncate(&s->head, 0);
        sess_arm(s, s->p->conf.response_timeout_ms); /* a bound on silence, not on the whole */
        if (s->stream_end)
            stream_done(s);
        return true;
    }
    if (m->body.len > 0) {
        if (s->stream == STREAM_CHUNKED) {
            strbuf_printf(&s->head, "%s%zx\r\n", s->chunk_sent ? "\r\n" : "", m->body.len);
            s->chunk_sent = true;
        }
        if (s->head.failed) {
            reply_error(s, 500, FAIL_INTERNAL, "out of memory");
            return true;
        }
        s->obody = s->rin.data + m->body.off;
        s->olen = s->head.len + m->body.len;
        return true;
    }
    if (m->done) {
        if (s->stream == STREAM_CHUNKED)
            strbuf_printf(&s->head, "%s0\r\n\r\n", s->chunk_sent ? "\r\n" : "");
        s->stream_end = true;
        s->obody = NULL;
        s->olen = s->head.len;
        if (s->olen == 0)
            stream_done(s);
        return true;
    }
    if (s->rin.len > m->fed) {
        switch (http_msg_feed(m, s->rin.data, s->rin.len)) {
        case HTTP_MSG_AGAIN:
            http_msg_squeeze(m, s->rin.data, &s->rin.len);
            break;
        case HTTP_MSG_INVALID:
            backend_close(s);
            reply_error(s, 502, FAIL_BAD_RESPONSE, "the backend's response is malformed");
            break;
        default: /* DONE; HEAD came before the stream began */
            break;
        }
        return true;
    }
    if (!s->br.readable)
        return false;
    ssize_t n = backend_read(s);
    if (n > 0) {
        sess_arm(s, s->p->conf.response_timeout_ms);
        return true;
    }
    if (n == -EAGAIN)
        return false;
    if (n == 0 && http_msg_eof(m, s->rin.data, s->rin.len) == HTTP_MSG_DONE) {
        backend_close(s); /* a response that ends with the connection */
        return true;
    }
    log_warnx("http proxy=%s conn=%llu backend %s inside a streamed response", s->p->conf.name,
              (unsigned long long)s->id, n == 0 ? "closed" : strerror((int)-n));
    reply_error(s, 502, FAIL_BACKEND_CLOSED, "the backend closed inside its response");
    return true;
}

/* The response's head is whole: what the proxy cannot pass on as it is.
 * A 101 (the proxy never asks for an upgrade); a transfer coding other than
 * chunked once (the body is de-chunked and sent with a length: another
 * coding would reach the client unannounced); on a decrypt route, a second
 * Content-Type (the proxy and the client could each read another). */
static bool
response_head_ok(struct sess *s)
{
    const struct http_msg *m = &s->resp;
    size_t other;

    if (m->parser.status_code == 101)
        return false;
    if (http_msg_count(m, "transfer-encoding") > 0 &&
        (http_msg_list(m, "transfer-encoding", "chunked", &other) != 1 || other != 0))
        return false;
    return s->stream_ok || http_msg_count(m, "content-type") <= 1;
}

bool
backend_step(struct sess *s)
{
    const struct http_proxy_conf *pc = &s->p->conf;

    /* the request is out: o* are the client's (the backend may be closed) */
    if (s->stream != STREAM_OFF)
        return stream_step(s);
    if (s->dialing || s->bio.fd < 0)
        return false;
    if (s->via_hs)
        return outbound_via_step(s);
    if (s->tls_hs)
        return outbound_handshake(s);
    if (s->osent < s->olen) {
        if (!s->br.writable)
            return false;
        int rc = sess_write_out(s, s->bio.fd, s->ssl != NULL);
        if (rc == -EAGAIN) {
            if (s->ssl == NULL) /* TLS cleared what it waits for */
                s->br.writable = false;
            return false;
        }
        if (rc != 0)
            backend_failed(s, strerror(-rc));
        return true;
    }
    if (s->rin.len > s->resp.fed) {
        switch (http_msg_feed(&s->resp, s->rin.data, s->rin.len)) {
        case HTTP_MSG_AGAIN:
            http_msg_squeeze(&s->resp, s->rin.data, &s->rin.len);
            break;
        case HTTP_MSG_HEAD:
            if (!response_head_ok(s)) {
                backend_close(s);
                s->close_after = true;
                reply_error(s, 502, FAIL_BAD_RESPONSE, "the backend's response is malformed");
                break;
            }
            if (connection_auth(&s->resp, "www-authenticate"))
                s->b_private = true;
            /* a length over max_response is not waited for; a response without a
             * body (to HEAD; 1xx, 204, 304) has nothing to stream, whatever its length */
            if (s->stream_ok && !s->resp.skip_body && !s->resp.chunked &&
                s->resp.parser.content_length != ULLONG_MAX &&
                s->resp.parser.content_length > pc->max_response)
                stream_start(s);
            break;
        case HTTP_MSG_DONE:
            on_response(s);
            break;
        case HTTP_MSG_INVALID:
            backend_close(s);
            s->close_after = true;
            reply_error(s, 502, FAIL_BAD_RESPONSE,
                        s->resp.fault == HTTP_FAULT_BODY_LARGE
                            ? "the backend's response is too large"
                            : "the backend's response is malformed");
            break;
        }
        return true;
    }
    if (!s->br.readable)
        return false;
    ssize_t n = backend_read(s);
    if (n == -ENOSPC && s->stream_ok && s->resp.head_done && !s->resp.skip_body) {
        stream_start(s); /* over max_response: sent on from here */
        return true;
    }
    if (n == -ENOMEM) {
        backend_failed(s, "out of memory");
        return true;
    }
    if (n == -ENOSPC) {
        s->close_after = true;
        reply_error(s, 502, FAIL_BAD_RESPONSE, "the backend's response is too large");
        return true;
    }
    if (n > 0)
        return true;
    if (n == -EAGAIN)
        return false;
    if (n == 0 && http_msg_eof(&s->resp, s->rin.data, s->rin.len) == HTTP_MSG_DONE) {
        backend_close(s); /* a response that ends with the connection */
        on_response(s);
        return true;
    }
    backend_failed(s, n == 0 ? "closed" : strerror((int)-n));
    return true;
}

static bool
skip_response_header(const struct http_msg *m, const char *name, size_t len, bool is_head)
{
    if (!is_head && len == 14 && strncasecmp(name, "content-length", len) == 0)
        return true;
    return http_msg_hop(m, name, len);
}

/* The client's head of the backend's response into s->head: its status,
 * its headers but the framing, then framing (a header line or ""), the
 * connection's. */
static void
response_head(struct sess *s, const char *framing)
{
    const struct http_msg *m = &s->resp;
    int status = m->parser.status_code;

    strbuf_free(&s->head);
    strbuf_printf(&s->head, "HTTP/1.1 %d %s\r\n", status,
                  http_status_str((enum http_status)status));
    for (size_t i = 0; i < m->n_hdr; i++) {
        const struct http_hdr *h = &m->hdr[i];
        if (!skip_response_header(m, s->rin.data + h->name.off, h->name.len, s->is_head))
            strbuf_printf(&s->head, "%.*s: %.*s\r\n", (int)h->name.len, s->rin.data + h->name.off,
                          (int)h->value.len, s->rin.data + h->value.off);
    }
    strbuf_printf(&s->head, "%s", framing);
    if (s->close_after)
        strbuf_printf(&s->head, "Connection: close\r\n");
    else if (s->req.parser.http_minor == 0)
        strbuf_printf(&s->head, "Connection: keep-alive\r\n");
    strbuf_printf(&s->head, "\r\n");
}

/* What keeps the JSON body of m, a response to decrypt, from being read as
 * the JSON document (NULL: nothing): a content coding (gzip, or one the
 * proxy does not know: opened as they came, a body labelled gzip that is
 * plain JSON went to the client opened under its gzip label), a part of it
 * (206: a range that is a token alone opened, its Content-Range no longer
 * the bytes'), or a charset but UTF-8 (utf8 false: a client that decodes
 * the body so reads other text than the proxy). The proxy asks for neither
 * of the first two (skip_request_header()). */
static const char *
response_unreadable(const struct http_msg *m, bool utf8)
{
    if (http_msg_coded(m))
        return "the body has a content coding";
    if (m->parser.status_code == 206)
        return "the body is a part (206)";
    if (!utf8)
        return "the body's charset is not UTF-8";
    return NULL;
}

/* The backend's response is whole: decrypt, then the client's head. */
static void
on_response(struct sess *s)
{
    struct http_msg *m = &s->resp;
    int status = m->parser.status_code;
    const char *body = s->rin.data + m->body.off;
    size_t blen = m->body.len, vlen;

    if (status >= 100 && status < 200) { /* interim (103): not passed on */
        hbuf_drop(&s->rin, m->end);
        resp_init(s);
        return;
    }
    if (!m->keep_alive || s->rin.len > m->end)
        backend_close(s); /* bytes after the response: not a connection to reuse */
    strbuf_free(&s->body);
    /* JSON by any of its names: one passed on unopened would take its
     * tokens, a tampered one too, to the client */
    const char *ct = http_msg_header(m, "content-type", &vlen);
    bool utf8 = true;
    if (!s->stream_ok && blen > 0 && ct != NULL &&
        http_media_json(ct, vlen, s->p->conf.routes[s->route].content_type, &utf8)) {
        char err[FIELD_ERR_MAX];
        enum http_fail why;
        const char *unread = response_unreadable(m, utf8);
        if (unread != NULL) {
            log_warnx("http proxy=%s conn=%llu response refused: %s", s->p->conf.name,
                      (unsigned long long)s->id, unread);
            reply_error(s, 502, FAIL_BAD_RESPONSE, "the backend's response cannot be decrypted");
            return;
        }
        if (route_rewrite(s, false, body, blen, &why, err) != 200) {
            log_warnx("http proxy=%s conn=%llu response refused: %s", s->p->conf.name,
                      (unsigned long long)s->id, err);
            reply_error(s, 502, why == FAIL_BAD_TOKEN ? FAIL_BAD_TOKEN : FAIL_BAD_RESPONSE,
                        "the backend's response could not be decrypted");
            return;
        }
        body = s->body.data;
        blen = s->body.len;
    }
    char cl[48] = "";
    if (!s->is_head && status != 204 && status != 304)
        snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", blen);
    response_head(s, cl);
    if (s->head.failed || s->body.failed) {
        reply_error(s, 500, FAIL_INTERNAL, "out of memory");
        return;
    }
    stats_observe(s, status);
    send_client(s, body, s->is_head || status == 204 || status == 304 ? 0 : blen);
}
