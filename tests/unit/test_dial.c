/* test_dial.c - the dialer (net/dial.c) on a real loop against real
 * loopback and unix-socket listeners: success, refusal, timeout, cancel
 * while connecting and while the name is resolved, a host name, the admit
 * hook, and the hvsock CONNECT/OK exchange (answered, refused, silent,
 * hung up). Every test checks that the process holds the fds it held
 * before; the test build has ASan, so a dial touched after its cancel (it
 * is freed at once), a leaked resolver ticket or an answer posted to a
 * freed loop fails the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/loop.h"
#include "net/dial.h"
#include "net/resolve.h"

#define GUARD_MS 10000 /* a test whose dial never ends fails after this */
#define SHORT_MS 200   /* the timeout of dials meant to time out */

static struct loop *loop;

/* ---- what a dial ended with */

struct outcome {
    int calls;
    int fd;
    enum dial_result why;
    struct dial *d;
};

static void
record(void *arg, int fd, enum dial_result why)
{
    struct outcome *o = arg;

    o->calls++;
    o->fd = fd;
    o->why = why;
    dial_cancel(o->d); /* harmless from the callback: the dial is idle */
    loop_stop(loop);
}

static void
never(void *arg, int fd, enum dial_result why)
{
    (void)arg;
    (void)why;
    if (fd >= 0)
        close(fd);
    fail_msg("a cancelled dial called back");
}

static int guard_fired;

static void
guard(struct timer *t)
{
    (void)t;
    guard_fired = 1;
    loop_stop(loop);
}

/* Runs the loop until a callback stops it, GUARD_MS at most. */
static void
run(void)
{
    struct timer t = {0};

    guard_fired = 0;
    timer_start(loop, &t, GUARD_MS, guard, NULL);
    assert_int_equal(loop_run(loop), 0);
    timer_stop(loop, &t);
    assert_false(guard_fired);
}

/* One turn of the loop. */
static void
turn(void)
{
    loop_stop(loop);
    assert_int_equal(loop_run(loop), 0);
}

/* Dials ep and runs until the dial ends; d is freed after. */
static struct outcome
dial_wait(const struct endpoint *ep, unsigned timeout_ms, dial_admit_cb admit)
{
    struct outcome o = {.fd = -1};
    struct dial *d = calloc(1, sizeof(*d));

    assert_non_null(d);
    o.d = d;
    dial_start(d, loop, ep, timeout_ms, admit, record, &o);
    assert_int_equal(o.calls, 0); /* never inside dial_start() */
    run();
    assert_int_equal(o.calls, 1);
    assert_int_equal(d->state, DIAL_ST_IDLE);
    free(d);
    return o;
}

/* ---- fds and listeners */

static int
count_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    int n = 0;

    assert_non_null(dir);
    while (readdir(dir) != NULL)
        n++;
    closedir(dir);
    return n;
}

/* A tcp socket bound to 127.0.0.1 on a free port; listening with backlog
 * unless backlog < 0. */
static int
tcp_socket(int backlog, uint16_t *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    if (backlog >= 0)
        assert_int_equal(listen(fd, backlog), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

static struct endpoint
endpoint_of(const char *fmt, ...)
{
    struct endpoint ep;
    char text[ENDPOINT_TEXT_MAX];
    const char *err = NULL;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    assert_int_equal(endpoint_parse(text, &ep, &err), PARSE_OK);
    return ep;
}

/* The connection the dial made reaches the listener: a byte goes through. */
static void
assert_linked(int fd, int lfd)
{
    int afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    char c = 0;

    assert_true(afd >= 0);
    assert_int_equal(write(fd, "x", 1), 1);
    assert_int_equal(read(afd, &c, 1), 1);
    assert_int_equal(c, 'x');
    close(afd);
}

/* A listener with backlog 0 whose accept queue is full: one connection
 * waits in it, so the kernel drops further SYNs and their connects stay
 * pending. Waits until the filler is in the queue (TCP_INFO of a listener
 * counts it in tcpi_unacked), so that the next SYN is surely dropped. */
static int
full_listener(uint16_t *port, int *filler)
{
    int lfd = tcp_socket(0, port);
    struct sockaddr_in sin = {
        .sin_family = AF_INET, .sin_port = htons(*port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct tcp_info ti;
    socklen_t len;

    *filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(*filler >= 0);
    assert_int_equal(connect(*filler, (struct sockaddr *)&sin, sizeof(sin)), 0);
    for (int i = 0; i < GUARD_MS; i++) {
        len = sizeof(ti);
        assert_int_equal(getsockopt(lfd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
        if (ti.tcpi_unacked >= 1)
            return lfd;
        poll(NULL, 0, 1);
    }
    fail_msg("the filler never reached the accept queue");
    return -1;
}

/* ---- tcp */

static void
test_tcp_ok(void **state)
{
    (void)state;
    int fds = count_fds();
    uint16_t port;
    int lfd = tcp_socket(16, &port);
    struct endpoint ep = endpoint_of("tcp:127.0.0.1:%u", port);

    struct outcome o = dial_wait(&ep, 5000, NULL);
    assert_int_equal(o.why, DIAL_OK);
    assert_true(o.fd >= 0);
    assert_true(fcntl(o.fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(o.fd, F_GETFD) & FD_CLOEXEC);
    assert_linked(o.fd, lfd);
    close(o.fd);
    close(lfd);
    assert_int_equal(count_fds(), fds);
}

static void
test_tcp_refused(void **state)
{
    (void)state;
    int fds = count_fds();
    uint16_t port;
    int held = tcp_socket(-1, &port); /* bound, not listening: connects are refused */
    struct endpoint ep = endpoint_of("tcp:127.0.0.1:%u", port);

    struct outcome o = dial_wait(&ep, 5000, NULL);
    assert_int_equal(o.why, DIAL_CONNECT_FAILED);
    assert_int_equal(o.fd, -ECONNREFUSED);
    assert_string_equal(dial_result_name(o.why), "connect failed");
    close(held);
    assert_int_equal(count_fds(), fds);
}

static void
test_tcp_timeout(void **state)
{
    (void)state;
    int fds = count_fds(), filler;
    uint16_t port;
    int lfd = full_listener(&port, &filler);
    struct endpoint ep = endpoint_of("tcp:127.0.0.1:%u", port);

    struct outcome o = dial_wait(&ep, SHORT_MS, NULL);
    assert_int_equal(o.why, DIAL_TIMEOUT);
    assert_int_equal(o.fd, -ETIMEDOUT);
    close(filler);
    close(lfd);
    assert_int_equal(count_fds(), fds);
}

/* Cancelled while the connect is pending: the socket is closed, done never
 * runs, and the dial can be freed at once. */
static void
test_cancel_connecting(void **state)
{
    (void)state;
    int fds = count_fds(), filler;
    uint16_t port;
    int lfd = full_listener(&port, &filler);
    struct endpoint ep = endpoint_of("tcp:127.0.0.1:%u", port);
    struct dial *d = calloc(1, sizeof(*d));

    assert_non_null(d);
    dial_start(d, loop, &ep, SHORT_MS, NULL, never, NULL);
    turn();
    assert_int_equal(d->state, DIAL_ST_CONNECTING);
    assert_int_equal(count_fds(), fds + 3); /* listener, filler, the dial's socket */
    dial_cancel(d);
    dial_cancel(d); /* idempotent */
    assert_int_equal(d->state, DIAL_ST_IDLE);
    free(d);
    assert_int_equal(count_fds(), fds + 2);

    /* the timeout it had is gone with it: a later dial's own timeout
     * fires, not the cancelled one's */
    struct outcome o = dial_wait(&ep, 2 * SHORT_MS, NULL);
    assert_int_equal(o.why, DIAL_TIMEOUT);
    close(filler);
    close(lfd);
    assert_int_equal(count_fds(), fds);
}

/* Cancelled before its first step ran: nothing was opened. */
static void
test_cancel_starting(void **state)
{
    (void)state;
    int fds = count_fds();
    struct endpoint ep = endpoint_of("tcp:127.0.0.1:9");
    struct dial *d = calloc(1, sizeof(*d));

    assert_non_null(d);
    dial_start(d, loop, &ep, SHORT_MS, NULL, never, NULL);
    dial_cancel(d);
    free(d);
    /* the loop has nothing of the dial left: a fresh one runs alone */
    uint16_t port;
    int lfd = tcp_socket(16, &port);
    struct endpoint ok = endpoint_of("tcp:127.0.0.1:%u", port);
    struct outcome o = dial_wait(&ok, 5000, NULL);
    assert_int_equal(o.why, DIAL_OK);
    close(o.fd);
    close(lfd);
    assert_int_equal(count_fds(), fds);
}

/* ---- names */

static int barrier_left;

static void
barrier_step(void *arg, int err)
{
    (void)arg;
    assert_int_equal(err, 0);
    /* the first answer may share its lookup with the cancelled dial's (and
     * come first); the second is a lookup of its own on the one resolver
     * thread, queued after that one had posted every answer */
    if (--barrier_left > 0)
        assert_int_equal(resolve_start(loop, "localhost", NULL, barrier_step, NULL, NULL), 0);
    else
        loop_stop(loop);
}

/* Waits until every answer of lookups of "localhost" started so far has
 * been delivered on the loop (with one resolver thread). */
static void
resolver_barrier(void)
{
    barrier_left = 2;
    assert_int_equal(resolve_start(loop, "localhost", NULL, barrier_step, NULL, NULL), 0);
    run();
}

/* Two dials of "localhost" (in /etc/hosts everywhere, so no DNS query
 * leaves the machine): the first is cancelled while the name is being
 * resolved and freed at once, the second connects through the answer. Runs
 * before any other test resolves "localhost", so the name is not cached. */
static void
test_name_and_cancel_resolving(void **state)
{
    (void)state;
    int fds = count_fds();
    uint16_t port;
    int lfd = tcp_socket(16, &port);
    struct endpoint ep = endpoint_of("tcp:localhost:%u", port);
    struct dial *first = calloc(1, sizeof(*first)), *second = calloc(1, sizeof(*second));
    struct outcome o = {.fd = -1, .d = second};

    assert_non_null(first);
    assert_non_null(second);
    resolve_configure(1, 0);
    dial_start(first, loop, &ep, 5000, NULL, never, NULL);
    turn();
    assert_int_equal(first->state, DIAL_ST_RESOLVING);
    dial_start(second, loop, &ep, 5000, NULL, record, &o);
    dial_cancel(first);
    free(first);
    run();
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.why, DIAL_OK);
    assert_linked(o.fd, lfd);
    close(o.fd);
    free(second);
    resolver_barrier(); /* the cancelled dial's ticket is freed by now */
    resolve_configure(0, 0);
    close(lfd);
    assert_int_equal(count_fds(), fds);
}

static void
count_answer(void *arg, int err)
{
    assert_int_equal(err, 0);
    (*(int *)arg)++;
}

/* A loop that goes away withdraws its waiters first (resolve_cancel()):
 * withdrawn, a waiter is never answered; not withdrawn (its answer was
 * posted already), it is answered on its loop's next turn. Either way no
 * answer reaches the loop once freed (ASan: a use after free) and nothing
 * leaks. Many rounds, so that both happen. */
static void
test_resolve_cancel(void **state)
{
    (void)state;
    int withdrawn = 0, answered = 0;

    resolve_configure(1, 0);
    for (int i = 0; i < 50; i++) {
        struct loop *own = loop_new();
        struct resolve_waiter *w;
        int calls = 0;

        assert_non_null(own);
        assert_int_equal(resolve_start(own, "localhost", NULL, count_answer, &calls, &w), 0);
        if (i % 2 == 1)
            usleep(5000); /* the lookup (/etc/hosts) most likely ends meanwhile */
        bool cancelled = resolve_cancel(w);
        loop_stop(own);
        assert_int_equal(loop_run(own), 0); /* an answer already posted is delivered */
        loop_free(own);
        assert_int_equal(calls, cancelled ? 0 : 1);
        withdrawn += cancelled;
        answered += calls;
    }
    resolver_barrier(); /* every lookup has ended: none answered a freed loop */
    resolve_configure(0, 0);
    print_message("withdrawn %d, answered %d\n", withdrawn, answered);
}

/* A name from the cache: no lookup, the next address of the entry. */
static void
test_name_cached(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len;
    uint16_t port;
    int lfd = tcp_socket(16, &port);
    struct endpoint ep = endpoint_of("tcp:localhost:%u", port);

    assert_int_equal(resolve_cached("localhost", port, &ss, &len), 0);
    struct outcome o = dial_wait(&ep, 5000, NULL);
    assert_int_equal(o.why, DIAL_OK);
    assert_linked(o.fd, lfd);
    close(o.fd);
    close(lfd);
}

/* ---- the admit hook */

struct admit_seen {
    int calls;
    struct sockaddr_in sin;
    int answer;
};

static struct admit_seen *admit_seen;

static int
admit(void *arg, const struct sockaddr *sa, socklen_t len)
{
    (void)arg; /* the done callback's arg: the outcome */
    admit_seen->calls++;
    assert_int_equal(sa->sa_family, AF_INET);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    memcpy(&admit_seen->sin, sa, sizeof(admit_seen->sin));
    return admit_seen->answer;
}

static void
test_admit(void **state)
{
    (void)state;
    int fds = count_fds();
    uint16_t port;
    int lfd = tcp_socket(16, &port);
    struct endpoint ep = endpoint_of("tcp:localhost:%u", port);
    struct admit_seen seen = {.answer = -EACCES};

    admit_seen = &seen;
    struct outcome o = dial_wait(&ep, 5000, admit);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(ntohs(seen.sin.sin_port), port);
    assert_int_equal(ntohl(seen.sin.sin_addr.s_addr), INADDR_LOOPBACK);
    assert_int_equal(o.why, DIAL_ADMIT_REFUSED);
    assert_int_equal(o.fd, -EACCES);
    /* refused before any connect: the listener saw nothing */
    struct pollfd pfd = {.fd = lfd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 0), 0);

    seen.answer = 0;
    o = dial_wait(&ep, 5000, admit);
    assert_int_equal(seen.calls, 2);
    assert_int_equal(o.why, DIAL_OK);
    assert_linked(o.fd, lfd);
    close(o.fd);
    close(lfd);
    assert_int_equal(count_fds(), fds);
}

/* ---- unix and hvsock */

enum answer { ANSWER_OK, ANSWER_GARBAGE, ANSWER_SILENT, ANSWER_HANGUP };

/* The device end of an hvsock socket, on the test's loop: takes one
 * connection, reads its line and answers as told. */
struct device {
    enum answer answer;
    struct io lio, cio;
    char line[64];
    size_t len;
    char path[108];
};

static void
device_read(struct io *io, uint32_t events)
{
    struct device *dv = io->data;
    static const char ok[] = "OK 1234\npayload";
    ssize_t n;
    (void)events;

    while ((n = read(io->fd, dv->line + dv->len, sizeof(dv->line) - 1 - dv->len)) > 0)
        dv->len += (size_t)n;
    dv->line[dv->len] = '\0';
    if (strchr(dv->line, '\n') == NULL)
        return;
    if (dv->answer == ANSWER_OK) /* the payload after the line must stay for the caller */
        assert_int_equal(write(io->fd, ok, sizeof(ok) - 1), sizeof(ok) - 1);
    else if (dv->answer == ANSWER_GARBAGE)
        assert_int_equal(write(io->fd, "ERR no\n", 7), 7);
    else if (dv->answer == ANSWER_HANGUP)
        shutdown(io->fd, SHUT_RDWR);
}

static void
device_accept(struct io *io, uint32_t events)
{
    struct device *dv = io->data;
    (void)events;

    int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0)
        assert_int_equal(io_start(loop, &dv->cio, fd, EPOLLIN, device_read, dv), 0);
}

static void
device_open(struct device *dv, enum answer answer)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    memset(dv, 0, sizeof(*dv));
    dv->answer = answer;
    dv->cio.fd = -1;
    snprintf(dv->path, sizeof(dv->path), "/tmp/test_dial.%d.sock", (int)getpid());
    unlink(dv->path);
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", dv->path);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(io_start(loop, &dv->lio, fd, EPOLLIN, device_accept, dv), 0);
}

static void
device_close(struct device *dv)
{
    if (dv->cio.fd >= 0) {
        io_stop(loop, &dv->cio);
        close(dv->cio.fd);
    }
    io_stop(loop, &dv->lio);
    close(dv->lio.fd);
    unlink(dv->path);
}

static struct outcome
dial_device(struct device *dv, unsigned timeout_ms)
{
    struct endpoint ep = endpoint_of("hvsock:%s:5000", dv->path);

    return dial_wait(&ep, timeout_ms, NULL);
}

static void
test_unix_ok(void **state)
{
    (void)state;
    int fds = count_fds();
    struct device dv;

    device_open(&dv, ANSWER_SILENT);
    struct endpoint ep = endpoint_of("unix:%s", dv.path);
    struct outcome o = dial_wait(&ep, 5000, NULL);
    assert_int_equal(o.why, DIAL_OK);
    close(o.fd);
    device_close(&dv);
    assert_int_equal(count_fds(), fds);
}

static void
test_hvsock_ok(void **state)
{
    (void)state;
    int fds = count_fds();
    struct device dv;
    char buf[32];

    device_open(&dv, ANSWER_OK);
    struct outcome o = dial_device(&dv, 5000);
    assert_int_equal(o.why, DIAL_OK);
    assert_string_equal(dv.line, "CONNECT 5000\n");
    /* the OK line was consumed, the payload after it was not */
    ssize_t n = read(o.fd, buf, sizeof(buf));
    assert_int_equal(n, 7);
    assert_memory_equal(buf, "payload", 7);
    close(o.fd);
    device_close(&dv);
    assert_int_equal(count_fds(), fds);
}

static void
test_hvsock_garbage(void **state)
{
    (void)state;
    int fds = count_fds();
    struct device dv;

    device_open(&dv, ANSWER_GARBAGE);
    struct outcome o = dial_device(&dv, 5000);
    assert_int_equal(o.why, DIAL_HANDSHAKE_FAILED);
    assert_int_equal(o.fd, -ECONNREFUSED);
    device_close(&dv);
    assert_int_equal(count_fds(), fds);
}

static void
test_hvsock_silent(void **state)
{
    (void)state;
    int fds = count_fds();
    struct device dv;

    device_open(&dv, ANSWER_SILENT);
    struct outcome o = dial_device(&dv, SHORT_MS);
    assert_int_equal(o.why, DIAL_TIMEOUT);
    assert_int_equal(o.fd, -ETIMEDOUT);
    assert_string_equal(dv.line, "CONNECT 5000\n");
    device_close(&dv);
    assert_int_equal(count_fds(), fds);
}

static void
test_hvsock_hangup(void **state)
{
    (void)state;
    int fds = count_fds();
    struct device dv;

    device_open(&dv, ANSWER_HANGUP);
    struct outcome o = dial_device(&dv, 5000);
    assert_int_equal(o.why, DIAL_HANDSHAKE_FAILED);
    assert_int_equal(o.fd, -ECONNRESET);
    device_close(&dv);
    assert_int_equal(count_fds(), fds);
}

/* No listener on the path: a unix connect fails at once. */
static void
test_hvsock_no_device(void **state)
{
    (void)state;
    int fds = count_fds();
    struct endpoint ep = endpoint_of("hvsock:/tmp/test_dial.%d.none:5000", (int)getpid());

    struct outcome o = dial_wait(&ep, 5000, NULL);
    assert_int_equal(o.why, DIAL_CONNECT_FAILED);
    assert_int_equal(o.fd, -ENOENT);
    assert_int_equal(count_fds(), fds);
}

static int
setup(void **state)
{
    (void)state;
    loop = loop_new();
    return loop == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
    (void)state;
    loop_free(loop);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        /* first: "localhost" must not be cached yet */
        cmocka_unit_test(test_name_and_cancel_resolving),
        cmocka_unit_test(test_name_cached),
        cmocka_unit_test(test_resolve_cancel),
        cmocka_unit_test(test_tcp_ok),
        cmocka_unit_test(test_tcp_refused),
        cmocka_unit_test(test_tcp_timeout),
        cmocka_unit_test(test_cancel_connecting),
        cmocka_unit_test(test_cancel_starting),
        cmocka_unit_test(test_admit),
        cmocka_unit_test(test_unix_ok),
        cmocka_unit_test(test_hvsock_ok),
        cmocka_unit_test(test_hvsock_garbage),
        cmocka_unit_test(test_hvsock_silent),
        cmocka_unit_test(test_hvsock_hangup),
        cmocka_unit_test(test_hvsock_no_device),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
