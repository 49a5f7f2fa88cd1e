/* dial.c - the asynchronous dialer; see dial.h.
 *
 *   STARTING ─► RESOLVING ─► CONNECTING ─► HANDSHAKE ─► IDLE (done called)
 *       └───────────┴─(literal, cached)─┘      └─(not hvsock)─┘
 *
 * Every way out goes through finish(), which releases everything the dial
 * holds before it calls done, so that done may free or restart the dial. */
#include "net/dial.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "net/resolve.h"
#include "net/transport.h"

#define DIAL_HVSOCK_LINE_MAX 64 /* the device's "OK <port>\n" line, with room */

/* The resolver answers to a ticket, not to the dial: a dial cancelled
 * meanwhile withdraws the ticket, or, when the answer is already posted,
 * detaches itself (d = NULL); either way it may be freed at once, and the
 * ticket is freed when the answer comes. */
struct dial_lookup {
    struct dial *d;
    struct resolve_waiter *waiter;
};

static const char *const result_names[] = {
    [DIAL_OK] = "connected",
    [DIAL_RESOLVE_FAILED] = "name did not resolve",
    [DIAL_ADMIT_REFUSED] = "address not admitted",
    [DIAL_CONNECT_FAILED] = "connect failed",
    [DIAL_HANDSHAKE_FAILED] = "refused by the hvsock device",
    [DIAL_TIMEOUT] = "connect timed out",
};

const char *
dial_result_name(enum dial_result why)
{
    return result_names[why];
}

/* Lets go of the timer, the first step, the resolver and the socket's
 * watcher; returns the socket (not closed), or -1. The dial is idle after. */
static int
dial_release(struct dial *d)
{
    int fd = -1;

    if (d->state == DIAL_ST_CONNECTING || d->state == DIAL_ST_HANDSHAKE) {
        io_stop(d->loop, &d->io);
        fd = d->io.fd;
        d->io.fd = -1;
    }
    if (d->lookup != NULL) {
        if (resolve_cancel(d->lookup->waiter))
            free(d->lookup);
        else
            d->lookup->d = NULL;
        d->lookup = NULL;
    }
    loop_cancel(d->loop, &d->task);
    timer_stop(d->loop, &d->timer);
    d->state = DIAL_ST_IDLE;
    return fd;
}

void
dial_cancel(struct dial *d)
{
    if (d->state == DIAL_ST_IDLE)
        return;
    int fd = dial_release(d);
    if (fd >= 0)
        close(fd);
}

/* The one way a dial ends: rc is the connected fd (why DIAL_OK) or -errno. */
static void
finish(struct dial *d, int rc, enum dial_result why)
{
    int fd = dial_release(d);

    if (fd >= 0 && fd != rc)
        close(fd);
    d->done(d->arg, rc, why);
}

/* hvsock: the device answers "OK <port>\n" once the port behind it took the
 * connection. The line is peeked and then consumed exactly, so that what
 * the peer sends after it stays in the socket for the caller. hup: the peer
 * shut down its side, so a partial line will never be completed. */
static void
read_ok(struct dial *d, bool hup)
{
    char buf[DIAL_HVSOCK_LINE_MAX];
    ssize_t n;

    do
        n = recv(d->io.fd, buf, sizeof(buf), MSG_PEEK);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n <= 0) {
        finish(d, n == 0 ? -ECONNRESET : -errno, DIAL_HANDSHAKE_FAILED);
        return;
    }
    char *nl = memchr(buf, '\n', (size_t)n);
    if (nl == NULL && (size_t)n < sizeof(buf) && !hup)
        return; /* the rest of the line comes with the next edge */
    if (nl == NULL || n < 3 || memcmp(buf, "OK ", 3) != 0) {
        finish(d, nl == NULL && hup ? -ECONNRESET : -ECONNREFUSED, DIAL_HANDSHAKE_FAILED);
        return;
    }
    ssize_t len = nl - buf + 1;
    if (recv(d->io.fd, buf, (size_t)len, 0) != len) {
        finish(d, -EIO, DIAL_HANDSHAKE_FAILED);
        return;
    }
    finish(d, d->io.fd, DIAL_OK);
}

static void
connected(struct dial *d)
{
    if (d->target->kind != EP_HVSOCK) {
        finish(d, d->io.fd, DIAL_OK);
        return;
    }
    if (transport_hvsock_hello(d->io.fd, d->target->port) != 0) {
        finish(d, -EIO, DIAL_HANDSHAKE_FAILED);
        return;
    }
    d->state = DIAL_ST_HANDSHAKE;
    read_ok(d, false);
}

static void
dial_event(struct io *io, uint32_t events)
{
    struct dial *d = io->data;

    if (d->state == DIAL_ST_HANDSHAKE) {
        read_ok(d, events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR));
        return;
    }
    if (!(events & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
        return;
    /* a socket is writable only once connected, and a failed connect
     * reports EPOLLERR: SO_ERROR is read only then (one syscall less per
     * connection) */
    int rc = events & (EPOLLHUP | EPOLLERR) ? transport_sock_error(d->io.fd) : 0;
    if (rc != 0)
        finish(d, rc, DIAL_CONNECT_FAILED);
    else
        connected(d);
}

static void
dial_timeout(struct timer *t)
{
    finish(t->data, -ETIMEDOUT, DIAL_TIMEOUT);
}

static void dial_connect(struct dial *d);

static void
lookup_done(void *arg, int err)
{
    struct dial_lookup *l = arg;
    struct dial *d = l->d;

    free(l);
    if (d == NULL)
        return; /* cancelled meanwhile */
    d->lookup = NULL;
    if (err != 0)
        finish(d, err, DIAL_RESOLVE_FAILED);
    else
        dial_connect(d); /* from the cache now (expired already: looked up again) */
}

/* The name is not in the cache: ask a resolver thread. Its queue full
 * (-EBUSY) or no memory is a shortage of this process, not a failed name. */
static void
lookup_start(struct dial *d)
{
    struct dial_lookup *l = malloc(sizeof(*l));
    int rc = l != NULL ? 0 : -ENOMEM;

    if (l != NULL) {
        char client[TRANSPORT_CLIENT_MAX];
        if (d->client != NULL)
            transport_client_key(-1, d->client, client, sizeof(client));
        l->d = d;
        rc = resolve_start(d->loop, d->target->host, d->client != NULL ? client : NULL, lookup_done,
                           l, &l->waiter);
    }
    if (rc != 0) {
        free(l);
        finish(d, rc, DIAL_CONNECT_FAILED);
        return;
    }
    d->lookup = l;
    d->state = DIAL_ST_RESOLVING;
}

/* Opens the socket file of a nofollow target without following a symbolic
 * link anywhere on its path, and points *ss at that inode (through
 * /proc/self/fd), so that what connect() reaches is the file checked here
 * and not whatever a link planted meanwhile names. Returns the O_PATH fd to
 * close after the connect, or -ELOOP (a link on the path), -ENOTSOCK, or
 * another -errno. */
static int
pin_socket_path(const struct endpoint *ep, struct sockaddr_storage *ss, socklen_t *len)
{
    struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS};
    struct sockaddr_un *sun = (struct sockaddr_un *)ss;
    struct stat st;
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, ep->path, &how, sizeof(how));

    if (fd < 0)
        return -errno;
    int rc = fstat(fd, &st) != 0 ? -errno : !S_ISSOCK(st.st_mode) ? -ENOTSOCK : 0;
    if (rc != 0) {
        close(fd);
        return rc;
    }
    memset(ss, 0, sizeof(*ss));
    sun->sun_family = AF_UNIX;
    int n = snprintf(sun->sun_path, sizeof(sun->sun_path), "/proc/self/fd/%d", fd);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
    return fd;
}

/* Finds the target's address (literal, cached, or looked up first), lets
 * admit see it, and connects. */
static void
dial_connect(struct dial *d)
{
    const struct endpoint *ep = d->target;
    struct sockaddr_storage ss;
    socklen_t len;
    bool pending;
    int rc = transport_addr(ep, &ss, &len);

    if (rc == -EAGAIN) {
        rc = resolve_cached(ep->host, (uint16_t)ep->port, &ss, &len);
        if (rc == -EAGAIN) {
            lookup_start(d);
            return;
        }
        if (rc != 0) { /* a failure, cached for RESOLVE_NEG_TTL */
            finish(d, rc, DIAL_RESOLVE_FAILED);
            return;
        }
    }
    if (rc != 0) {
        finish(d, rc, DIAL_CONNECT_FAILED);
        return;
    }
    if (d->admit != NULL && (rc = d->admit(d->arg, (struct sockaddr *)&ss, len)) != 0) {
        finish(d, rc, DIAL_ADMIT_REFUSED);
        return;
    }
    int pin = -1;
    if (ep->nofollow && (ep->kind == EP_UNIX || ep->kind == EP_HVSOCK) && ep->path[0] != '@' &&
        (pin = pin_socket_path(ep, &ss, &len)) < 0) {
        finish(d, pin, DIAL_CONNECT_FAILED);
        return;
    }
    int fd = transport_connect((struct sockaddr *)&ss, len, ep->reserved_port, &pending);
    if (pin >= 0)
        close(pin); /* a unix connect looks its path up at once */
    if (fd < 0) {
        finish(d, fd, DIAL_CONNECT_FAILED);
        return;
    }
    if (!pending && ep->kind != EP_HVSOCK) {
        finish(d, fd, DIAL_OK); /* a unix socket connects at once: no watcher needed */
        return;
    }
    if ((rc = io_start(d->loop, &d->io, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, dial_event, d)) != 0) {
        close(fd);
        finish(d, rc, DIAL_CONNECT_FAILED);
        return;
    }
    d->state = DIAL_ST_CONNECTING;
    if (!pending)
        connected(d);
}

static void
dial_begin(struct task *t)
{
    dial_connect(t->data);
}

void
dial_start(struct dial *d, struct loop *loop, const struct endpoint *target, unsigned timeout_ms,
           dial_admit_cb admit, dial_done_cb done, void *arg)
{
    dial_cancel(d);
    d->loop = loop;
    d->target = target;
    d->admit = admit;
    d->done = done;
    d->arg = arg;
    d->io.fd = -1;
    d->state = DIAL_ST_STARTING;
    if (timeout_ms > 0)
        timer_start(loop, &d->timer, timeout_ms, dial_timeout, d);
    /* the first step runs after the caller's, so that done never runs
     * inside dial_start() (the caller may not be ready for it there) */
    loop_defer(loop, &d->task, dial_begin, d);
}

/* How dial_sync()'s dial ended. */
struct sync_dial {
    struct loop *loop;
    int fd;
    enum dial_result why;
};

static void
sync_dialed(void *arg, int fd, enum dial_result why)
{
    struct sync_dial *sd = arg;

    sd->fd = fd;
    sd->why = why;
    loop_stop(sd->loop);
}

int
dial_sync(const struct endpoint *target, unsigned timeout_ms, enum dial_result *why)
{
    struct dial d = {0};
    struct sync_dial sd = {.loop = loop_new(), .fd = -ENOMEM, .why = DIAL_CONNECT_FAILED};
    int rc;

    if (sd.loop != NULL) {
        dial_start(&d, sd.loop, target, timeout_ms, NULL, sync_dialed, &sd);
        if ((rc = loop_run(sd.loop)) != 0) {
            dial_cancel(&d);
            sd.fd = rc;
        }
        loop_free(sd.loop);
    }
    *why = sd.why;
    return sd.fd;
}
