/* vmpeer - both peers of one proxied TCP connection, for the vsock VM test.
 *
 *   vmpeer CASE ENTRY_PORT EXIT_PORT [BYTES]
 *
 * Listens on 127.0.0.1:EXIT_PORT (where the relay chain ends), connects to
 * 127.0.0.1:ENTRY_PORT (where it starts) and accepts the connection the chain
 * makes, so the "client" and the "server" of the connection are this one
 * process and every check is made on both ends at once. Cases:
 *
 *   ping        one byte each way, then close (readiness probe, 3 s deadline)
 *   xfer BYTES  BYTES of pseudo-random data each way at the same time, checked
 *               byte by byte; then both ends shut down their write side and
 *               must read EOF
 *   halfclose   client sends 64 KiB and shuts down its write side; the server
 *               reads to EOF, waits 1 s, then replies 1 MiB and closes;
 *               the client must get the whole reply, then EOF
 *   rst-client  after a round trip, the client aborts (SO_LINGER 0 close ->
 *               RST); the server must see EOF or ECONNRESET within 5 s
 *   rst-server  the same with the roles swapped
 *   udp N       N datagrams of 1 to 1400 bytes sent to udp 127.0.0.1:ENTRY_PORT
 *               (a datagram relay), received on udp EXIT_PORT and echoed back
 *               to their source; each echo must come back to the sender intact
 *
 * Prints one line about what happened; exits 0 if the case held, 1 if not,
 * 2 on usage or local setup errors. Static build:
 *   cc -std=c17 -O2 -static -o vmpeer tests/vm/vmpeer.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void
fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    exit(1);
}

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Deterministic data: the 8-byte word at index k of stream `seed` is
 * splitmix64(seed * 2^32 + k), so any offset can be generated or checked. */
static uint64_t
mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void
gen(uint64_t seed, uint64_t off, unsigned char *buf, size_t len)
{
    for (size_t i = 0; i < len;) {
        uint64_t pos = off + i, w = mix((seed << 32) + pos / 8);
        unsigned skip = (unsigned)(pos % 8);
        size_t n = 8 - skip < len - i ? 8 - skip : len - i;
        for (size_t j = 0; j < n; j++)
            buf[i + j] = (unsigned char)(w >> (8 * (skip + j)));
        i += n;
    }
}

/* One end of the connection: what it sends and what it expects to read. */
struct end {
    const char *name;
    int fd;
    uint64_t tx_seed, tx_len, tx_done;
    int tx_shut; /* shutdown(SHUT_WR) once everything is sent */
    uint64_t rx_seed, rx_want, rx_done;
    int rx_to_eof; /* the phase ends at EOF (else after rx_want bytes) */
    int eof, err;  /* saw EOF; errno of a failed read/write */
    int reset_ok;  /* ECONNRESET counts as an end, not a failure */
};

static int
end_idle(const struct end *e)
{
    int tx_ok = e->tx_done == e->tx_len;
    int rx_ok = e->eof || e->err || (!e->rx_to_eof && e->rx_done >= e->rx_want);
    return (tx_ok && rx_ok) || e->err;
}

static void
do_read(struct end *e)
{
    unsigned char buf[CHUNK], want[CHUNK];
    ssize_t n = read(e->fd, buf, sizeof buf);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            e->err = errno;
        return;
    }
    if (n == 0) {
        e->eof = 1;
        return;
    }
    if (e->rx_done + (uint64_t)n > e->rx_want)
        fail("%s received %llu bytes, more than the %llu sent to it", e->name,
             (unsigned long long)(e->rx_done + (uint64_t)n), (unsigned long long)e->rx_want);
    gen(e->rx_seed, e->rx_done, want, (size_t)n);
    if (memcmp(buf, want, (size_t)n) != 0) {
        size_t i = 0;
        while (buf[i] == want[i])
            i++;
        fail("%s: data corrupted at byte %llu", e->name, (unsigned long long)(e->rx_done + i));
    }
    e->rx_done += (uint64_t)n;
}

static void
do_write(struct end *e)
{
    unsigned char buf[CHUNK];
    uint64_t left = e->tx_len - e->tx_done;
    size_t len = left < CHUNK ? (size_t)left : CHUNK;
    gen(e->tx_seed, e->tx_done, buf, len);
    ssize_t n = send(e->fd, buf, len, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            e->err = errno;
        return;
    }
    e->tx_done += (uint64_t)n;
    if (e->tx_done == e->tx_len && e->tx_shut && shutdown(e->fd, SHUT_WR) < 0)
        e->err = errno;
}

/* Move data on both ends until both are idle or `secs` have passed. */
static void
pump(struct end *a, struct end *b, double secs, const char *phase)
{
    struct end *ends[2] = {a, b};
    double deadline = now() + secs;
    for (int k = 0; k < 2; k++)
        if (ends[k]->tx_len == 0 && ends[k]->tx_shut && shutdown(ends[k]->fd, SHUT_WR) < 0)
            ends[k]->err = errno;
    while (!(end_idle(a) && end_idle(b))) {
        struct pollfd p[2];
        for (int k = 0; k < 2; k++) {
            struct end *e = ends[k];
            /* nothing left to do on it: skip it (a hung-up fd would spin) */
            p[k].fd = e->err || (e->eof && e->tx_done == e->tx_len) ? -1 : e->fd;
            p[k].events = (e->eof ? 0 : POLLIN) | (e->tx_done < e->tx_len ? POLLOUT : 0);
            p[k].revents = 0;
        }
        double left = deadline - now();
        if (left <= 0)
            fail("%s: stuck after %.0f s (client sent %llu/%llu got %llu/%llu eof=%d; "
                 "server sent %llu/%llu got %llu/%llu eof=%d)",
                 phase, secs, (unsigned long long)a->tx_done, (unsigned long long)a->tx_len,
                 (unsigned long long)a->rx_done, (unsigned long long)a->rx_want, a->eof,
                 (unsigned long long)b->tx_done, (unsigned long long)b->tx_len,
                 (unsigned long long)b->rx_done, (unsigned long long)b->rx_want, b->eof);
        if (poll(p, 2, (int)(left * 1000) + 1) < 0 && errno != EINTR)
            fail("poll: %s", strerror(errno));
        for (int k = 0; k < 2; k++) {
            if (p[k].revents & (POLLIN | POLLHUP | POLLERR))
                do_read(ends[k]);
            if ((p[k].revents & (POLLOUT | POLLERR)) && !ends[k]->err &&
                ends[k]->tx_done < ends[k]->tx_len)
                do_write(ends[k]);
        }
    }
    for (int k = 0; k < 2; k++)
        if (ends[k]->err && !(ends[k]->reset_ok && ends[k]->err == ECONNRESET))
            fail("%s: %s got %s (sent %llu/%llu, received %llu/%llu)", phase, ends[k]->name,
                 strerror(ends[k]->err), (unsigned long long)ends[k]->tx_done,
                 (unsigned long long)ends[k]->tx_len, (unsigned long long)ends[k]->rx_done,
                 (unsigned long long)ends[k]->rx_want);
}

static void
expect_all(const struct end *e, const char *phase)
{
    if (e->rx_done != e->rx_want)
        fail("%s: %s got %llu of %llu bytes before EOF", phase, e->name,
             (unsigned long long)e->rx_done, (unsigned long long)e->rx_want);
}

/* Set up the next phase of an end: send `tx` more bytes, expect `rx` more. */
static void
plan(struct end *e, uint64_t tx, int shut, uint64_t rx, int to_eof)
{
    e->tx_len += tx;
    e->tx_shut = shut;
    e->rx_want += rx;
    e->rx_to_eof = to_eof;
}

static int
tcp_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        printf("socket: %s\n", strerror(errno));
        exit(2);
    }
    return fd;
}

static struct sockaddr_in
loopback(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

/* Both ends of one connection through the chain: connect to the entry and
 * accept what arrives at the exit within `secs`. */
static void
open_pair(int entry, int exit_port, double secs, struct end *cli, struct end *srv)
{
    int one = 1, ls = tcp_socket(), c = tcp_socket(), s;
    struct sockaddr_in sa = loopback(exit_port);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 8) < 0) {
        printf("listen on 127.0.0.1:%d: %s\n", exit_port, strerror(errno));
        exit(2);
    }
    sa = loopback(entry);
    if (connect(c, (struct sockaddr *)&sa, sizeof sa) < 0)
        fail("connect to 127.0.0.1:%d: %s", entry, strerror(errno));
    struct pollfd p = {.fd = ls, .events = POLLIN};
    if (poll(&p, 1, (int)(secs * 1000)) <= 0)
        fail("no connection reached 127.0.0.1:%d within %.0f s", exit_port, secs);
    if ((s = accept4(ls, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) < 0)
        fail("accept: %s", strerror(errno));
    close(ls);
    if (fcntl(c, F_SETFL, O_NONBLOCK) < 0)
        fail("fcntl: %s", strerror(errno));
    *cli = (struct end){.name = "client", .fd = c, .tx_seed = 1, .rx_seed = 2};
    *srv = (struct end){.name = "server", .fd = s, .tx_seed = 2, .rx_seed = 1};
}

/* Abort `a` with RST; `b` must see the end of the connection within `secs`. */
static void
check_reset(struct end *a, struct end *b, double secs)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    if (setsockopt(a->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) < 0)
        fail("SO_LINGER: %s", strerror(errno));
    double t0 = now();
    close(a->fd);
    plan(b, 0, 0, 0, 1);
    b->reset_ok = 1;
    struct end dead = {.name = a->name, .fd = -1, .eof = 1};
    pump(&dead, b, secs, "after the reset");
    printf("%s saw %s %.0f ms after the %s's RST\n", b->name, b->err ? strerror(b->err) : "EOF",
           (now() - t0) * 1000, a->name);
}

/* The udp case: the relay chain must carry each datagram whole, and the
 * echo back to the address it came from. */
static void
udp_case(int entry, int exit_port, int n)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in from;
    socklen_t flen;
    char out[1400], back[2048], got[2048];
    struct timeval tv = {.tv_sec = 5};
    int srv = socket(AF_INET, SOCK_DGRAM, 0), cli = socket(AF_INET, SOCK_DGRAM, 0);

    to.sin_port = htons((uint16_t)exit_port);
    if (srv < 0 || cli < 0 || bind(srv, (struct sockaddr *)&to, sizeof(to)) != 0)
        fail("udp setup: %s", strerror(errno));
    setsockopt(srv, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(cli, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    to.sin_port = htons((uint16_t)entry);
    for (int i = 0; i < n; i++) {
        size_t len = 1 + (size_t)(i * 37) % sizeof(out);
        for (size_t k = 0; k < len; k++)
            out[k] = (char)(i * 131 + (int)k * 7);
        if (sendto(cli, out, len, 0, (struct sockaddr *)&to, sizeof(to)) != (ssize_t)len)
            fail("udp send %d: %s", i, strerror(errno));
        flen = sizeof(from);
        ssize_t m = recvfrom(srv, back, sizeof(back), 0, (struct sockaddr *)&from, &flen);
        if (m != (ssize_t)len || memcmp(back, out, len) != 0)
            fail("datagram %d (%zu bytes) reached the server as %zd bytes", i, len, m);
        if (sendto(srv, back, (size_t)m, 0, (struct sockaddr *)&from, flen) != m)
            fail("udp echo %d: %s", i, strerror(errno));
        m = recv(cli, got, sizeof(got), 0);
        if (m != (ssize_t)len || memcmp(got, out, len) != 0)
            fail("the echo of datagram %d came back as %zd bytes", i, m);
    }
    printf("%d datagrams there and back, each intact\n", n);
}

int
main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: vmpeer ping|xfer|halfclose|rst-client|rst-server|udp "
                        "ENTRY_PORT EXIT_PORT [BYTES|N]\n");
        return 2;
    }
    const char *cas = argv[1];
    int entry = atoi(argv[2]), exit_port = atoi(argv[3]);
    struct end c, s;
    double t0 = now();

    if (strcmp(cas, "ping") == 0) {
        open_pair(entry, exit_port, 3, &c, &s);
        plan(&c, 1, 0, 1, 0);
        plan(&s, 1, 0, 1, 0);
        pump(&c, &s, 3, "ping");
        printf("round trip in %.0f ms\n", (now() - t0) * 1000);
    } else if (strcmp(cas, "xfer") == 0 && argc == 5) {
        uint64_t n = strtoull(argv[4], NULL, 0);
        open_pair(entry, exit_port, 10, &c, &s);
        plan(&c, n, 1, n, 1);
        plan(&s, n, 1, n, 1);
        pump(&c, &s, 60, "xfer");
        expect_all(&c, "xfer");
        expect_all(&s, "xfer");
        double dt = now() - t0;
        printf(
            "%llu bytes each way, checked, then EOF both ways, in %.1f s (%.1f MiB/s each way)\n",
            (unsigned long long)n, dt, (double)n / dt / 1048576);
    } else if (strcmp(cas, "halfclose") == 0) {
        open_pair(entry, exit_port, 10, &c, &s);
        plan(&c, 65536, 1, 0, 0); /* request, then SHUT_WR */
        plan(&s, 0, 0, 65536, 1); /* server reads it up to EOF */
        pump(&c, &s, 30, "request");
        expect_all(&s, "request");
        usleep(1000000);
        if (c.eof)
            fail("client saw EOF right after its own half-close, before any reply");
        plan(&s, 1048576, 1, 0, 0); /* reply 1 MiB, then close */
        plan(&c, 0, 0, 1048576, 1);
        pump(&c, &s, 30, "reply");
        expect_all(&c, "reply");
        printf("64 KiB request, half-close, 1 MiB reply 1 s later: all of it arrived\n");
    } else if (strcmp(cas, "rst-client") == 0 || strcmp(cas, "rst-server") == 0) {
        open_pair(entry, exit_port, 10, &c, &s);
        plan(&c, 16, 0, 16, 0);
        plan(&s, 16, 0, 16, 0);
        pump(&c, &s, 10, "round trip");
        if (strcmp(cas, "rst-client") == 0)
            check_reset(&c, &s, 5);
        else
            check_reset(&s, &c, 5);
    } else if (strcmp(cas, "udp") == 0 && argc == 5) {
        udp_case(entry, exit_port, atoi(argv[4]));
    } else {
        fprintf(stderr, "vmpeer: unknown case or missing BYTES: %s\n", cas);
        return 2;
    }
    return 0;
}
