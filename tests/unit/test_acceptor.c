/* test_acceptor.c - unit tests for net/acceptor: out of file descriptors, a
 * client already queued is accepted once descriptors are free, without a
 * new client or its bytes to wake the listener (the loop is
 * edge-triggered); at most ACCEPTOR_BUDGET clients per turn, the rest in
 * the next; an acceptor stopped by its own callback accepts no more. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loop.h"
#include "net/acceptor.h"

#define MAX_CLIENTS 100

static struct loop *test_loop;
static int admitted[MAX_CLIENTS];
static size_t n_admitted;
static size_t stop_at; /* stop the loop (or the acceptor) once this many came */
static bool stop_acceptor;

static void
admit(struct acceptor *a, int fd, const struct sockaddr *peer, socklen_t len)
{
    assert_int_equal(peer->sa_family, AF_INET);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    assert_true(n_admitted < MAX_CLIENTS);
    admitted[n_admitted++] = fd;
    if (n_admitted == stop_at) {
        if (stop_acceptor)
            acceptor_stop(a);
        loop_stop(test_loop);
    }
}

static void
stop_loop(struct timer *t)
{
    loop_stop(t->data);
}

/* Runs the loop until admit() stops it or ms pass. */
static void
run_for(uint64_t ms)
{
    struct timer t = {0};

    timer_start(test_loop, &t, ms, stop_loop, test_loop);
    assert_int_equal(loop_run(test_loop), 0);
    timer_stop(test_loop, &t);
}

/* A listening tcp socket on 127.0.0.1, its address in sin. */
static int
listener(struct sockaddr_in *sin)
{
    socklen_t len = sizeof(*sin);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    *sin = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)sin, sizeof(*sin)), 0);
    assert_int_equal(listen(fd, MAX_CLIENTS + 10), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)sin, &len), 0);
    return fd;
}

/* A client connected to sin (queued in the listener's backlog). */
static int
client(const struct sockaddr_in *sin)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (const struct sockaddr *)sin, sizeof(*sin)), 0);
    return fd;
}

static int
setup(void **state)
{
    (void)state;
    test_loop = loop_new();
    assert_non_null(test_loop);
    n_admitted = 0;
    stop_at = 0;
    stop_acceptor = false;
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < n_admitted; i++)
        close(admitted[i]);
    loop_free(test_loop);
    return 0;
}

static void
test_resumes_after_fd_limit(void **state)
{
    struct sockaddr_in sin;
    struct acceptor a = {0};
    struct rlimit old, low;
    int fill[512], n_fill = 0;
    (void)state;

    int lfd = listener(&sin);
    int c = client(&sin);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = (struct rlimit){.rlim_cur = 256, .rlim_max = old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    /* every descriptor taken: the queued client cannot be accepted */
    int fd;
    while ((fd = dup(lfd)) >= 0) {
        assert_true(n_fill < (int)(sizeof(fill) / sizeof(fill[0])));
        fill[n_fill++] = fd;
    }
    assert_int_equal(errno, EMFILE);
    stop_at = 1;
    assert_int_equal(acceptor_start(&a, test_loop, lfd, "test", admit, NULL, NULL), 0);
    run_for(300);
    assert_int_equal(n_admitted, 0);
    assert_true(a.paused);
    /* descriptors free again, and nothing new arrives on the listener */
    while (n_fill > 0)
        close(fill[--n_fill]);
    run_for(2000);
    assert_int_equal(n_admitted, 1);
    assert_false(a.paused);
    acceptor_stop(&a);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    close(c);
    close(lfd);
}

static void
test_budget_per_turn(void **state)
{
    struct sockaddr_in sin;
    struct acceptor a = {0};
    int c[MAX_CLIENTS];
    (void)state;

    int lfd = listener(&sin);
    for (int i = 0; i < MAX_CLIENTS; i++)
        c[i] = client(&sin);
    stop_at = MAX_CLIENTS;
    /* the start accepts what is queued, a budget's worth */
    assert_int_equal(acceptor_start(&a, test_loop, lfd, "test", admit, NULL, NULL), 0);
    assert_int_equal(n_admitted, ACCEPTOR_BUDGET);
    run_for(2000); /* the rest in the next turn */
    assert_int_equal(n_admitted, MAX_CLIENTS);
    acceptor_stop(&a);
    acceptor_stop(&a); /* idempotent */
    for (int i = 0; i < MAX_CLIENTS; i++)
        close(c[i]);
    close(lfd);
}

static void
test_stopped_by_its_callback(void **state)
{
    struct sockaddr_in sin;
    struct acceptor a = {0};
    int c[3];
    (void)state;

    int lfd = listener(&sin);
    for (int i = 0; i < 3; i++)
        c[i] = client(&sin);
    stop_at = 1;
    stop_acceptor = true;
    assert_int_equal(acceptor_start(&a, test_loop, lfd, "test", admit, NULL, NULL), 0);
    assert_int_equal(n_admitted, 1);
    run_for(200);
    assert_int_equal(n_admitted, 1);
    for (int i = 0; i < 3; i++)
        close(c[i]);
    close(lfd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resumes_after_fd_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_per_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stopped_by_its_callback, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
