/* test_pump.c - the byte pump (relay/pump.c) over real sockets and pipes.
 *
 * A rig is what a connection gives its pumps: a client socket and a target
 * socket, each the pump's end of a pair whose other end the test plays
 * (cpeer: the client, tpeer: the server). The test stands in for the event
 * loop: before each run it sets the sides' readiness from the events of an
 * edge-triggered epoll, as conn.c does, so a pump that clears a flag while
 * bytes (or an EOF) wait behind it stalls here as it would there. Every
 * case runs over unix socketpairs and over tcp on loopback, copying and
 * splicing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "relay/pump.h"

#define WAIT_MS 10000 /* no progress for this long fails the test */

enum kind { KIND_UNIX, KIND_TCP };

struct rig {
    int ep;           /* edge-triggered: the loop's view of the pump's sockets */
    int cpeer, tpeer; /* the test's ends: the client, the server */
    struct side client, target;
    struct pump up, down;
    atomic_uint_fast64_t in, out;
    struct pump_cache *cache;
    unsigned pipe_errs; /* summed over the turns */
    int pipe_err;
};

static void
nonblock(int fd)
{
    assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

/* A connected pair of non-blocking sockets. */
static void
pair(enum kind kind, int fds[2])
{
    if (kind == KIND_UNIX) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
        return;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int l = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(l >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fds[0] >= 0);
    assert_int_equal(connect(fds[0], (struct sockaddr *)&sa, sizeof(sa)), 0);
    fds[1] = accept(l, NULL, NULL);
    assert_true(fds[1] >= 0);
    close(l);
    nonblock(fds[0]);
    nonblock(fds[1]);
}

static struct rig *
rig_open(enum kind kind, int splice)
{
    struct rig *r = calloc(1, sizeof(*r));
    int c[2], t[2];

    assert_non_null(r);
    assert_non_null(r->cache = calloc(1, sizeof(*r->cache)));
    pair(kind, c);
    pair(kind, t);
    r->cpeer = c[0];
    r->client.io.fd = c[1];
    r->target.io.fd = t[0];
    r->tpeer = t[1];
    pump_init(&r->up, &r->client, &r->target, splice, &r->in);
    pump_init(&r->down, &r->target, &r->client, splice, &r->out);
    assert_true((r->ep = epoll_create1(EPOLL_CLOEXEC)) >= 0);
    for (int i = 0; i < 2; i++) {
        struct side *s = i == 0 ? &r->client : &r->target;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.ptr = s};
        assert_int_equal(epoll_ctl(r->ep, EPOLL_CTL_ADD, s->io.fd, &ev), 0);
    }
    return r;
}

static void
rig_close(struct rig *r)
{
    pump_release(&r->up, r->cache);
    pump_release(&r->down, r->cache);
    pump_cache_clear(r->cache);
    close(r->cpeer);
    close(r->tpeer);
    close(r->client.io.fd);
    close(r->target.io.fd);
    close(r->ep);
    free(r->cache);
    free(r);
}

/* Sets the sides' readiness from the edges that came, as conn.c's
 * side_event() does: flags are only ever set here, the pump clears them. */
static void
refresh(struct rig *r)
{
    struct epoll_event ev[2];
    int n = epoll_wait(r->ep, ev, 2, 0);

    assert_true(n >= 0);
    for (int i = 0; i < n; i++) {
        struct side *s = ev[i].data.ptr;
        if (ev[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            s->readable = 1;
        if (ev[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            s->hup = 1;
        if (ev[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            s->writable = 1;
    }
}

/* One wakeup of p with budget bytes. Returns what pump_run returned. */
static int
run_budget(struct rig *r, struct pump *p, size_t budget)
{
    struct pump_turn t = {.cache = r->cache, .budget = budget};
    int rc;

    refresh(r);
    rc = pump_run(p, &t);
    r->pipe_errs += t.pipe_errs;
    if (t.pipe_errs > 0)
        r->pipe_err = t.pipe_err;
    return rc;
}

static int
run(struct rig *r, struct pump *p)
{
    return run_budget(r, p, 1024 * 1024);
}

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits (at most WAIT_MS) until fd has events, or fails. */
static void
wait_fd(int fd, short events)
{
    struct pollfd pf = {.fd = fd, .events = events};

    assert_int_equal(poll(&pf, 1, WAIT_MS), 1);
}

/* Bytes queued in fd's receive buffer, not read yet. */
static int
queued(int fd)
{
    int n = 0;

    assert_int_equal(ioctl(fd, FIONREAD, &n), 0);
    return n;
}

static uint8_t
pattern(size_t i)
{
    return (uint8_t)(i % 251); /* a prime: no period of a power of two */
}

static void
send_all(int fd, const void *data, size_t len)
{
    assert_int_equal(write(fd, data, len), (ssize_t)len);
}

/* Runs p and reads from fd until len bytes came, or EOF. Returns the count
 * read. */
static size_t
pump_read(struct rig *r, struct pump *p, int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;
    uint64_t since = now_ms();

    while (got < len) {
        assert_int_equal(run(r, p), 0);
        ssize_t n = read(fd, buf + got, len - got);
        if (n == 0)
            break;
        if (n > 0) {
            got += (size_t)n;
            since = now_ms();
            continue;
        }
        assert_int_equal(errno, EAGAIN);
        assert_true(now_ms() - since < WAIT_MS);
        struct pollfd pf[2] = {{.fd = fd, .events = POLLIN},
                               {.fd = p->from->io.fd, .events = POLLIN}};
        poll(pf, 2, 50);
    }
    return got;
}

/* Runs p until fd (the peer of p's destination) reads EOF; nothing else may
 * come. */
static void
expect_eof(struct rig *r, struct pump *p, int fd)
{
    uint8_t b;

    assert_int_equal(pump_read(r, p, fd, &b, 1), 0);
    assert_true(p->eof);
    assert_true(p->shut);
}

/* Sends len pattern bytes into src, pumps them with p and reads them from
 * dst at most slice bytes per round, checking every byte. Whenever the
 * destination is full, checks back-pressure: the pump holds at most one
 * read's worth, and running it again reads nothing more from its source.
 * Returns how many times the destination was found full. */
static unsigned
transfer(struct rig *r, struct pump *p, int src, int dst, size_t len, size_t slice)
{
    uint8_t *out = malloc(len), *in = malloc(slice);
    size_t sent = 0, got = 0;
    unsigned full = 0;
    uint64_t since = now_ms();

    assert_non_null(out);
    assert_non_null(in);
    for (size_t i = 0; i < len; i++)
        out[i] = pattern(i);
    while (got < len) {
        size_t before = sent + got;
        if (sent < len) {
            ssize_t n = write(src, out + sent, len - sent);
            if (n > 0)
                sent += (size_t)n;
            else
                assert_int_equal(errno, EAGAIN);
        }
        assert_int_equal(run(r, p), 0);
        if (!p->to->writable) {
            int q = queued(p->from->io.fd);
            full++;
            assert_true(p->len - p->off <= PUMP_CHUNK);
            assert_true(p->in_pipe <= PUMP_SPLICE_LEN);
            /* told the source has more: it must still not read (the
             * kernel may still move bytes the sender queued into the
             * source's buffer meanwhile: it may grow, never shrink) */
            size_t held = p->len - p->off, piped = p->in_pipe;
            p->from->readable = 1;
            struct pump_turn t = {.cache = r->cache, .budget = 1024 * 1024};
            assert_int_equal(pump_run(p, &t), 0);
            assert_true(queued(p->from->io.fd) >= q);
            assert_int_equal(p->len - p->off, held);
            assert_int_equal(p->in_pipe, piped);
        }
        ssize_t n = read(dst, in, slice);
        if (n > 0) {
            for (ssize_t i = 0; i < n; i++)
                assert_int_equal(in[i], pattern(got + (size_t)i));
            got += (size_t)n;
        } else {
            assert_true(n < 0 && errno == EAGAIN);
        }
        if (sent + got != before) {
            since = now_ms();
            continue;
        }
        assert_true(now_ms() - since < WAIT_MS);
        struct pollfd pf[2] = {{.fd = dst, .events = POLLIN},
                               {.fd = p->from->io.fd, .events = POLLIN}};
        poll(pf, 2, 50);
    }
    free(out);
    free(in);
    return full;
}

/* What every case runs over: both socket kinds, copying and splicing. */
static const struct variant {
    enum kind kind;
    int splice;
} variants[] = {
    {KIND_UNIX, 0},
    {KIND_UNIX, 1},
    {KIND_TCP, 0},
    {KIND_TCP, 1},
};
#define N_VARIANTS (sizeof(variants) / sizeof(variants[0]))

/* A small message is copied straight through, counted, and leaves the pump
 * holding nothing (no buffer, no pipe). */
static void
test_small_copy(void **state)
{
    (void)state;
    for (size_t v = 0; v < N_VARIANTS; v++) {
        struct rig *r = rig_open(variants[v].kind, variants[v].splice);
        uint8_t buf[16];

        send_all(r->cpeer, "hello", 5);
        assert_int_equal(pump_read(r, &r->up, r->tpeer, buf, 5), 5);
        assert_memory_equal(buf, "hello", 5);
        assert_int_equal(r->up.bytes, 5);
        assert_int_equal(atomic_load(&r->in), 5);
        assert_null(r->up.buf);
        assert_int_equal(r->up.pipe[0], -1);
        assert_false(r->up.splice);
        assert_int_equal(r->cache->n_spare, 0);
        /* and back */
        send_all(r->tpeer, "world!", 6);
        assert_int_equal(pump_read(r, &r->down, r->cpeer, buf, 6), 6);
        assert_memory_equal(buf, "world!", 6);
        assert_int_equal(atomic_load(&r->out), 6);
        rig_close(r);
    }
}

/* Bulk traffic: a full read turns splice on (when allowed), every byte
 * arrives in order, and when the data has passed the pump holds no buffer
 * and no pipe. */
static void
test_bulk(void **state)
{
    (void)state;
    for (size_t v = 0; v < N_VARIANTS; v++) {
        struct rig *r = rig_open(variants[v].kind, variants[v].splice);
        size_t len = 4 * 1024 * 1024;

        transfer(r, &r->up, r->cpeer, r->tpeer, len, 256 * 1024);
        assert_int_equal(r->up.bytes, len);
        assert_int_equal(atomic_load(&r->in), len);
        assert_int_equal(r->up.splice, variants[v].splice);
        /* one pipe was used, and the pump gave it back once the source
         * ran dry: an idle connection holds no pipe */
        assert_int_equal(r->up.pipe[0], -1);
        assert_int_equal(r->cache->n_spare, variants[v].splice ? 1 : 0);
        assert_int_equal(r->up.in_pipe, 0);
        assert_null(r->up.buf);
        assert_int_equal(r->pipe_errs, 0);
        rig_close(r);
    }
}

/* A slow reader: the destination fills, the pump stops reading its source
 * (the sender is held back by the socket buffers, not by memory of ours),
 * and resumes as the reader takes bytes; nothing is lost or reordered. */
static void
test_backpressure(void **state)
{
    (void)state;
    for (size_t v = 0; v < N_VARIANTS; v++) {
        struct rig *r = rig_open(variants[v].kind, variants[v].splice);
        size_t len = 8 * 1024 * 1024;

        assert_true(transfer(r, &r->up, r->cpeer, r->tpeer, len, 4096) > 0);
        assert_int_equal(r->up.bytes, len);
        /* the other way too */
        assert_true(transfer(r, &r->down, r->tpeer, r->cpeer, len, 4096) > 0);
        assert_int_equal(r->down.bytes, len);
        rig_close(r);
    }
}

/* One side finishes (EOF) while the other keeps going: the EOF is passed
 * on as a shutdown of writing only, after every byte before it; the other
 * direction still flows, then ends the same way. Both orders, small and
 * bulk (spliced) payloads. */
static void
half_close(const struct variant *va, int server_first, size_t len)
{
    struct rig *r = rig_open(va->kind, va->splice);
    struct pump *first = server_first ? &r->down : &r->up;
    struct pump *second = server_first ? &r->up : &r->down;
    int first_src = server_first ? r->tpeer : r->cpeer,
        first_dst = server_first ? r->cpeer : r->tpeer;
    uint8_t buf[32];

    transfer(r, first, first_src, first_dst, len, 64 * 1024);
    assert_int_equal(shutdown(first_src, SHUT_WR), 0);
    expect_eof(r, first, first_dst);
    /* the side that got the EOF answers after it */
    send_all(first_dst, "answer after eof", 16);
    assert_int_equal(pump_read(r, second, first_src, buf, 16), 16);
    assert_memory_equal(buf, "answer after eof", 16);
    transfer(r, second, first_dst, first_src, len, 64 * 1024);
    assert_false(second->eof);
    assert_int_equal(shutdown(first_dst, SHUT_WR), 0);
    expect_eof(r, second, first_src);
    rig_close(r);
}

/* Bytes and the FIN come in one edge: after the short read of the bytes,
 * the pump must still read on to the EOF (no new edge will come). */
static void
data_then_fin(const struct variant *va)
{
    struct rig *r = rig_open(va->kind, va->splice);
    uint8_t buf[8];

    send_all(r->cpeer, "last", 4);
    assert_int_equal(shutdown(r->cpeer, SHUT_WR), 0);
    wait_fd(r->client.io.fd, POLLRDHUP);
    assert_int_equal(pump_read(r, &r->up, r->tpeer, buf, 4), 4);
    assert_memory_equal(buf, "last", 4);
    expect_eof(r, &r->up, r->tpeer);
    rig_close(r);
}

static void
test_half_close(void **state)
{
    (void)state;
    for (size_t v = 0; v < N_VARIANTS; v++) {
        data_then_fin(&variants[v]);
        for (int server_first = 0; server_first < 2; server_first++) {
            half_close(&variants[v], server_first, 7);
            half_close(&variants[v], server_first, 1024 * 1024);
        }
    }
}

/* Bytes queued with pump_prepend() (a PROXY header) go out before the
 * source's, also when the destination cannot take them at first, and are
 * counted. */
static void
test_prepend(void **state)
{
    (void)state;
    for (size_t v = 0; v < N_VARIANTS; v++) {
        struct rig *r = rig_open(variants[v].kind, variants[v].splice);
        static const char hdr[] = "PREAMBLE|";
        uint8_t buf[64];

        send_all(r->cpeer, "payload", 7);
        wait_fd(r->client.io.fd, POLLIN);
        assert_int_equal(pump_prepend(&r->up, hdr + 4, 5), 0);
        assert_int_equal(pump_prepend(&r->up, hdr, 4), 0); /* before the first */
        /* not writable yet: nothing may be read past the preamble */
        struct pump_turn t = {.cache = r->cache, .budget = 1024 * 1024};
        r->client.readable = 1;
        assert_int_equal(pump_run(&r->up, &t), 0);
        assert_int_equal(queued(r->client.io.fd), 7);
        assert_int_equal(pump_read(r, &r->up, r->tpeer, buf, 16), 16);
        assert_memory_equal(buf, "PREAMBLE|payload", 16);
        assert_int_equal(r->up.bytes, 16);
        rig_close(r);
    }
}

/* A peer's reset ends the pump with -ECONNRESET (or -EPIPE), reading or
 * writing, so the connection can pass the reset on. */
static void
test_reset(void **state)
{
    (void)state;
    for (size_t v = 0; v < N_VARIANTS; v++) {
        struct rig *r = rig_open(variants[v].kind, variants[v].splice);
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        int rc = 0;

        /* the server resets: writing to it fails */
        assert_int_equal(setsockopt(r->tpeer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
        close(r->tpeer);
        r->tpeer = -1;
        wait_fd(r->target.io.fd, POLLIN);
        for (int i = 0; i < 100 && rc == 0; i++) {
            send_all(r->cpeer, "x", 1);
            wait_fd(r->client.io.fd, POLLIN);
            rc = run(r, &r->up);
        }
        assert_true(rc == -ECONNRESET || rc == -EPIPE);
        rig_close(r);

        if (variants[v].kind != KIND_TCP)
            continue; /* a unix peer that goes away is an EOF, not a reset */
        /* the client resets: reading from it fails */
        r = rig_open(variants[v].kind, variants[v].splice);
        assert_int_equal(setsockopt(r->cpeer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
        close(r->cpeer);
        r->cpeer = -1;
        wait_fd(r->client.io.fd, POLLIN);
        rc = run(r, &r->up);
        assert_true(rc == -ECONNRESET || rc == -EPIPE);
        rig_close(r);
    }
}

/* The budget bounds one turn: the pump returns with the budget spent and the
 * source still readable, and goes on at the next turn. Unix sockets only:
 * the whole write is queued at once there. */
static void
test_budget(void **state)
{
    (void)state;
    for (size_t v = 0; v < N_VARIANTS; v++) {
        if (variants[v].kind != KIND_UNIX)
            continue;
        struct rig *r = rig_open(variants[v].kind, variants[v].splice);
        size_t len = 2 * PUMP_CHUNK + 100;
        uint8_t *buf = calloc(1, len);
        struct pump_turn t = {.cache = r->cache, .budget = 1};

        assert_non_null(buf);
        send_all(r->cpeer, buf, len);
        assert_int_equal(queued(r->client.io.fd), len);
        refresh(r);
        assert_int_equal(pump_run(&r->up, &t), 0);
        assert_int_equal(t.budget, 0);
        assert_int_equal(r->up.bytes, PUMP_CHUNK); /* one read */
        assert_int_equal(queued(r->client.io.fd), len - PUMP_CHUNK);
        assert_true(r->client.readable);
        assert_int_equal(pump_read(r, &r->up, r->tpeer, buf, len), len);
        free(buf);
        rig_close(r);
    }
}

/* No fd for a pipe (RLIMIT_NOFILE): the bulk is copied instead, every byte
 * arrives, and the shortage is reported to the owner (-EMFILE). */
static void
test_no_pipe(void **state)
{
    (void)state;
    for (size_t v = 0; v < N_VARIANTS; v++) {
        if (!variants[v].splice)
            continue;
        struct rig *r = rig_open(variants[v].kind, 1);
        struct rlimit old, low;
        int probe = dup(0);

        assert_true(probe >= 0);
        close(probe);
        assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
        low = old;
        low.rlim_cur = (rlim_t)probe; /* the lowest free fd and above: none */
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
        transfer(r, &r->up, r->cpeer, r->tpeer, 1024 * 1024, 256 * 1024);
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
        assert_true(r->pipe_errs > 0);
        assert_int_equal(r->pipe_err, -EMFILE);
        assert_int_equal(r->up.bytes, 1024 * 1024);
        assert_int_equal(r->cache->n_spare, 0);
        rig_close(r);
    }
}

/* Release: a pipe with bytes still in it is closed, never cached (its bytes
 * would go to the next connection); an empty one is kept; twice is
 * harmless. */
static void
test_release(void **state)
{
    (void)state;
    for (size_t v = 0; v < N_VARIANTS; v++) {
        if (!variants[v].splice)
            continue;
        struct rig *r = rig_open(variants[v].kind, 1);

        /* bulk, so that it splices; then fill the destination, so that
         * bytes stay in the pipe */
        transfer(r, &r->up, r->cpeer, r->tpeer, 1024 * 1024, 256 * 1024);
        assert_true(r->up.splice);
        uint8_t *junk = calloc(1, 1024 * 1024);
        assert_non_null(junk);
        uint64_t since = now_ms();
        while (r->up.in_pipe == 0) {
            ssize_t n = write(r->cpeer, junk, 1024 * 1024);
            assert_true(n > 0 || errno == EAGAIN);
            assert_int_equal(run(r, &r->up), 0);
            assert_true(now_ms() - since < WAIT_MS);
        }
        free(junk);
        int p0 = r->up.pipe[0];
        assert_true(p0 >= 0);
        size_t spare = r->cache->n_spare;
        pump_release(&r->up, r->cache);
        assert_int_equal(r->cache->n_spare, spare);
        assert_int_equal(r->up.pipe[0], -1);
        assert_int_equal(fcntl(p0, F_GETFD), -1); /* closed */
        assert_null(r->up.buf);
        pump_release(&r->up, r->cache);
        assert_int_equal(r->cache->n_spare, spare);
        /* an empty pipe is kept */
        pump_init(&r->up, &r->client, &r->target, 1, &r->in);
        assert_int_equal(pipe2(r->up.pipe, O_NONBLOCK), 0);
        pump_release(&r->up, r->cache);
        assert_int_equal(r->cache->n_spare, spare + 1);
        rig_close(r);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_copy),   cmocka_unit_test(test_bulk),
        cmocka_unit_test(test_backpressure), cmocka_unit_test(test_half_close),
        cmocka_unit_test(test_prepend),      cmocka_unit_test(test_reset),
        cmocka_unit_test(test_budget),       cmocka_unit_test(test_no_pipe),
        cmocka_unit_test(test_release),
    };

    signal(SIGPIPE, SIG_IGN); /* a write to a closed peer is an EPIPE, as in airlock */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
