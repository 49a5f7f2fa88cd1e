/* metrics.c - the HTTP face of the counters; see metrics.h. */
#include "cli/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/list.h"
#include "core/log.h"
#include "net/acceptor.h"
#include "net/transport.h"

#define REQUEST_MAX 4096
#define REQUEST_TIMEOUT_MS 5000
/* requests open at once: a scrape takes milliseconds, so the oldest makes
 * room, and clients that connect and say nothing push out only each other
 * (not airlock's file descriptors) */
#define REQUESTS_MAX 64
/* requests one client (transport_client_key()) holds at once, read or
 * being answered: one whose answer it never reads holds its place for
 * REQUEST_TIMEOUT_MS, and 64 such shut out every probe. Its newcomer takes
 * the place of its own oldest still reading; when all are being answered,
 * it is closed */
#define CLIENT_REQUESTS_MAX 16

struct request {
    struct list link; /* in m->requests until closed */
    struct metrics *m;
    struct io io;
    struct timer timer;
    struct task reap;
    char in[REQUEST_MAX];
    size_t in_len;
    struct strbuf out;
    size_t out_off;
    size_t lingered; /* bytes dropped after the answer */
    int lingering;   /* answer sent, write side shut */
    int greeted;     /* hvsock listener: the device's CONNECT line answered */
    int closed;
    char client[TRANSPORT_CLIENT_MAX]; /* transport_client_key() */
};

struct metrics {
    struct loop *loop;
    struct endpoint ep;
    struct acceptor acceptor;
    metrics_render_cb render;
    void *arg;
    metrics_ready_cb ready; /* /readyz; NULL: ready while it runs */
    void *ready_arg;
    struct list requests; /* newest first */
    unsigned n_requests;
};

static void
request_reap(struct task *t)
{
    struct request *rq = t->data;

    strbuf_free(&rq->out);
    free(rq);
}

static void
request_close(struct request *rq)
{
    if (rq->closed)
        return;
    rq->closed = 1;
    io_stop(rq->m->loop, &rq->io);
    close(rq->io.fd);
    rq->io.fd = -1;
    timer_stop(rq->m->loop, &rq->timer);
    list_del(&rq->link);
    rq->m->n_requests--;
    loop_defer(rq->m->loop, &rq->reap, request_reap, rq);
}

static void
request_timeout(struct timer *t)
{
    request_close(t->data);
}

static void
respond(struct request *rq, const char *status, const char *type, const char *body, size_t body_len)
{
    strbuf_printf(&rq->out,
                  "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                  "Connection: close\r\n\r\n%.*s",
                  status, type, body_len, (int)body_len, body);
}

/* Whether the request is a GET of path (a query string is ignored). */
static int
is_get(const struct request *rq, const char *path)
{
    size_t n = strlen(path);

    return strncmp(rq->in, "GET ", 4) == 0 && strncmp(rq->in + 4, path, n) == 0 &&
           (rq->in[4 + n] == ' ' || rq->in[4 + n] == '?');
}

static void
request_answer(struct request *rq)
{
    static const char text_type[] = "text/plain; version=0.0.4; charset=utf-8";

    if (memchr(rq->in, '\0', rq->in_len) != NULL) {
        respond(rq, "400 Bad Request", "text/plain", "a NUL byte in the request\n", 26);
    } else if (is_get(rq, "/healthz")) {
        /* answered by the loop that owns the listeners and the signals: an
         * answer is the proof that it turns */
        respond(rq, "200 OK", "text/plain", "ok\n", 3);
    } else if (is_get(rq, "/readyz")) {
        char why[METRICS_WHY_MAX];
        size_t n;
        why[0] = '\0';
        if (rq->m->ready == NULL || rq->m->ready(why, sizeof(why) - 1, rq->m->ready_arg)) {
            respond(rq, "200 OK", "text/plain", "ready\n", 6);
        } else {
            n = strlen(why);
            why[n++] = '\n';
            respond(rq, "503 Service Unavailable", "text/plain", why, n);
        }
    } else if (is_get(rq, "/metrics")) {
        struct strbuf body = {0};
        rq->m->render(&body, rq->m->arg);
        if (body.failed)
            respond(rq, "500 Internal Server Error", "text/plain", "out of memory\n", 14);
        else
            respond(rq, "200 OK", text_type, body.data ? body.data : "", body.len);
        strbuf_free(&body);
    } else if (strncmp(rq->in, "GET ", 4) == 0) {
        respond(rq, "404 Not Found", "text/plain", "try /metrics, /healthz or /readyz\n", 34);
    } else {
        respond(rq, "405 Method Not Allowed", "text/plain", "GET only\n", 9);
    }
}

/* An hvsock listener is the device face of vsock: a host-side client (a
 * relay with an hvsock target) first sends "CONNECT <port>\n" and waits for
 * "OK <port>\n", like the Firecracker / Cloud Hypervisor device answers.
 * Returns 1 once answered (the line is removed from rq->in), 0 while the
 * line is incomplete, -1 for anything else. */
static int
hvsock_greet(struct request *rq)
{
    char *nl = memchr(rq->in, '\n', rq->in_len);

    if (nl == NULL)
        return rq->in_len < 64 ? 0 : -1;
    *nl = '\0';
    if (transport_hvsock_answer(rq->io.fd, rq->in, rq->m->ep.port) != 0)
        return -1;
    size_t used = (size_t)(nl - rq->in) + 1;
    memmove(rq->in, rq->in + used, rq->in_len - used);
    rq->in_len -= used;
    rq->in[rq->in_len] = '\0';
    rq->greeted = 1;
    return 1;
}

static void
request_event(struct io *io, uint32_t events)
{
    struct request *rq = io->data;
    (void)events;

    if (rq->lingering) {
        if (transport_linger(io->fd, &rq->lingered))
            request_close(rq);
        return;
    }
    while (rq->out.len == 0) {
        ssize_t n = read(io->fd, rq->in + rq->in_len, sizeof(rq->in) - 1 - rq->in_len);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            request_close(rq);
            return;
        }
        rq->in_len += (size_t)n;
        rq->in[rq->in_len] = '\0';
        if (rq->m->ep.kind == EP_HVSOCK && !rq->greeted) {
            int g = hvsock_greet(rq);
            if (g < 0) {
                request_close(rq);
                return;
            }
            if (g == 0)
                continue;
        }
        /* the end of the head, after a NUL byte too (answered 400) */
        if (memmem(rq->in, rq->in_len, "\r\n\r\n", 4) != NULL ||
            memmem(rq->in, rq->in_len, "\n\n", 2) != NULL)
            request_answer(rq);
        else if (rq->in_len == sizeof(rq->in) - 1)
            respond(rq, "431 Request Header Fields Too Large", "text/plain",
                    "a request head of at most 4095 bytes\n", 37);
        if (rq->out.failed) {
            request_close(rq);
            return;
        }
    }
    while (rq->out_off < rq->out.len) {
        ssize_t n = write(io->fd, rq->out.data + rq->out_off, rq->out.len - rq->out_off);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0)
            break;
        rq->out_off += (size_t)n;
    }
    /* what the client sent beyond the head would make the close a reset,
     * and a reset drops the answer before it is read */
    if (rq->out_off == rq->out.len && shutdown(io->fd, SHUT_WR) == 0) {
        rq->lingering = 1;
        if (!transport_linger(io->fd, &rq->lingered))
            return;
    }
    request_close(rq);
}

/* How many requests client holds: still reading only, or all. */
static unsigned
held(const struct metrics *m, const char *client, bool only_reading)
{
    unsigned n = 0;

    for (struct list *p = m->requests.next; p != &m->requests; p = p->next) {
        const struct request *rq = list_entry(p, struct request, link);
        n += (!only_reading || rq->out.len == 0) && strcmp(rq->client, client) == 0;
    }
    return n;
}

/* The oldest request of client still reading, or NULL. */
static struct request *
oldest_reading(const struct metrics *m, const char *client)
{
    for (struct list *p = m->requests.prev; p != &m->requests; p = p->prev) {
        struct request *rq = list_entry(p, struct request, link);
        if (rq->out.len == 0 && strcmp(rq->client, client) == 0)
            return rq;
    }
    return NULL;
}

/* At REQUESTS_MAX, the request a newcomer from client takes the place of:
 * the oldest still reading of the client with the most still reading (the
 * newcomer's own when it has as many). One whose whole request came is
 * being answered and keeps its place, and so does a scraper's or a probe's
 * among a flood of connects from elsewhere. NULL: every one is answered. */
static struct request *
evictable(const struct metrics *m, const char *client)
{
    struct request *old = NULL;
    unsigned most = 0, mine = held(m, client, true);

    for (struct list *p = m->requests.prev; p != &m->requests; p = p->prev) {
        struct request *rq = list_entry(p, struct request, link);
        if (rq->out.len != 0)
            continue;
        unsigned n = strcmp(rq->client, client) == 0 ? mine : held(m, rq->client, true);
        if (n > most || (n == most && n == mine && strcmp(rq->client, client) == 0 &&
                         (old == NULL || strcmp(old->client, client) != 0))) {
            old = rq;
            most = n;
        }
    }
    return old;
}

static void
metrics_admit(struct acceptor *a, int fd, const struct sockaddr *peer, socklen_t len)
{
    struct metrics *m = a->data;
    (void)len;

    char client[TRANSPORT_CLIENT_MAX];
    transport_client_key(fd, peer, client, sizeof(client));
    if (held(m, client, false) >= CLIENT_REQUESTS_MAX) {
        struct request *own = oldest_reading(m, client);
        if (own == NULL) { /* all of them being answered */
            close(fd);
            return;
        }
        request_close(own);
    }
    if (m->n_requests >= REQUESTS_MAX) {
        struct request *old = evictable(m, client);
        if (old == NULL) {
            close(fd);
            return;
        }
        request_close(old);
    }
    struct request *rq = calloc(1, sizeof(*rq));
    if (rq == NULL ||
        io_start(m->loop, &rq->io, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, request_event, rq)) {
        free(rq);
        close(fd);
        return;
    }
    rq->m = m;
    memcpy(rq->client, client, sizeof(client));
    list_add(&m->requests, &rq->link);
    m->n_requests++;
    timer_start(m->loop, &rq->timer, REQUEST_TIMEOUT_MS, request_timeout, rq);
}

struct metrics *
metrics_start(struct loop *loop, const struct endpoint *ep, metrics_render_cb render, void *arg,
              int *err)
{
    struct metrics *m = calloc(1, sizeof(*m));

    if (m == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    m->loop = loop;
    list_init(&m->requests);
    m->ep = *ep;
    m->render = render;
    m->arg = arg;
    int fd = transport_listen(ep);
    if (fd < 0) {
        *err = fd;
        free(m);
        return NULL;
    }
    if ((*err = acceptor_start(&m->acceptor, loop, fd, "metrics", metrics_admit, NULL, m)) != 0) {
        close(fd);
        transport_unlisten(ep);
        free(m);
        return NULL;
    }
    return m;
}

void
metrics_set_ready(struct metrics *m, metrics_ready_cb ready, void *arg)
{
    m->ready = ready;
    m->ready_arg = arg;
}

void
metrics_stop(struct metrics *m)
{
    if (m == NULL)
        return;
    while (!list_empty(&m->requests))
        request_close(list_entry(m->requests.next, struct request, link));
    acceptor_stop(&m->acceptor);
    close(m->acceptor.fd);
    transport_unlisten(&m->ep);
    free(m);
}
