/* netpeer.c - a scriptable peer for the integration tests: what socat cannot
 * do (an RST close, a reply sent only after EOF, ECONNRESET reported as
 * such, a connection queue that never answers, storms of aborts). See
 * usage() for the commands. Addresses: tcp:A.B.C.D:PORT or unix:/path. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
#define EXIT_RESET 3 /* the connection was reset (ECONNRESET or EPIPE) */
#define STORM_HOLD_MAX 1024
#define STORM_REPLY_MS 2000
#define STORM_KINDS 6

static const char usage_text[] =
    "usage: netpeer connect ADDR [--rst] [--no-shut] [--after-eof] [--wait N]\n"
    "       netpeer listen ADDR [same options]\n"
    "       netpeer blackhole ADDR\n"
    "       netpeer storm N [--hold-every K] [--hold-ms MS] ADDR...\n"
    "       netpeer hold N [--from A.B.C.D] [--line TEXT] ADDR\n"
    "\n"
    "connect, listen (one connection): copy stdin to the socket and the socket to\n"
    "  stdout at once. When stdin is done, shut down the write side, then exit at\n"
    "  the socket's EOF.\n"
    "  --rst        abort with an RST (SO_LINGER 0) instead, and exit at once\n"
    "  --no-shut    leave the write side open; just wait for the socket's EOF\n"
    "  --after-eof  send stdin only after the socket reached EOF\n"
    "  --wait N     end sending only once N bytes were received\n"
    "blackhole: listen with backlog 0 and fill the accept queue, never accept:\n"
    "  further connects hang unanswered. Prints \"ready\" and sleeps.\n"
    "storm: N connections over the ADDRs in turn, ended in turn by: close,\n"
    "  RST, half a redis request then close, the same then RST, a PING and its\n"
    "  reply (or EOF) then close, \"GET big\" and RST after the first bytes of\n"
    "  the reply (a big value there leaves the rest in flight). Every K-th\n"
    "  connection is held open instead, until MS milliseconds after the last.\n"
    "  Prints a summary.\n"
    "hold: N connections (at most 1024) from address --from (tcp), each sending\n"
    "  the line TEXT once if given, then silent. Prints \"open K\" when all are\n"
    "  up and whenever the peer closes some; exits once all are closed.\n"
    "ADDR: tcp:A.B.C.D:PORT or unix:/path\n"
    "exit: 0 done, 1 error, 2 usage, 3 connection reset\n";

static void
usage(void)
{
    fputs(usage_text, stderr);
    exit(2);
}

static void
die(int status, const char *what)
{
    fprintf(stderr, "netpeer: %s: %s\n", what, strerror(errno));
    exit(status);
}

/* An I/O error on the connection: a reset exits with EXIT_RESET. */
static void
sock_fail(const char *what)
{
    die(errno == ECONNRESET || errno == EPIPE ? EXIT_RESET : 1, what);
}

static void
parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    if (strncmp(s, "unix:", 5) == 0) {
        struct sockaddr_un *sun = (struct sockaddr_un *)ss;
        size_t n = strlen(s + 5);
        if (n == 0 || n >= sizeof(sun->sun_path))
            usage();
        sun->sun_family = AF_UNIX;
        memcpy(sun->sun_path, s + 5, n);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
        return;
    }
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    const char *colon = strrchr(s, ':');
    char host[INET_ADDRSTRLEN];
    size_t hlen = colon != NULL ? (size_t)(colon - s) - 4 : 0;
    if (strncmp(s, "tcp:", 4) != 0 || colon < s + 4 || hlen >= sizeof(host))
        usage();
    memcpy(host, s + 4, hlen);
    host[hlen] = '\0';
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
        usage();
    *len = sizeof(*sin);
}

/* Connects to addr, from the IPv4 address from when not NULL (tcp). */
static int
connect_from(const char *addr, const char *from)
{
    struct sockaddr_storage ss;
    struct sockaddr_in src = {.sin_family = AF_INET};
    socklen_t len;

    parse_addr(addr, &ss, &len);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die(1, "socket");
    if (from != NULL && (inet_pton(AF_INET, from, &src.sin_addr) != 1 ||
                         bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0))
        die(1, from);
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int
connect_to(const char *addr)
{
    return connect_from(addr, NULL);
}

static int
listen_on(const char *addr, int backlog)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1;

    parse_addr(addr, &ss, &len);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die(1, "socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, backlog) != 0)
        die(1, addr);
    return fd;
}

/* Closes fd with an RST. */
static void
abort_conn(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

static void
write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die(1, "write stdout");
        p += n;
        len -= (size_t)n;
    }
}

struct cat_opts {
    int rst, no_shut, after_eof;
    unsigned long long wait;
};

/* The copy loop of connect and listen; see usage_text. */
static int
run_cat(int fd, const struct cat_opts *o)
{
    static char in[CHUNK], out[CHUNK];
    size_t off = 0, len = 0;
    unsigned long long received = 0;
    int in_open = 1, sock_open = 1, sending = 1;

    for (;;) {
        if (sending && !in_open && off == len && received >= o->wait) {
            if (o->rst) {
                abort_conn(fd);
                return 0;
            }
            if (!o->no_shut && shutdown(fd, SHUT_WR) != 0)
                sock_fail("shutdown");
            sending = 0;
        }
        if (!sending && !sock_open)
            return 0;
        if (sending && !sock_open && !in_open && off == len) {
            fprintf(stderr, "netpeer: EOF after %llu of the %llu bytes awaited\n", received,
                    o->wait);
            return 1;
        }
        int may_send = sending && (!o->after_eof || !sock_open);
        struct pollfd p[2] = {
            {.fd = may_send && in_open && off == len ? 0 : -1, .events = POLLIN},
            {.fd = fd, .events = (sock_open ? POLLIN : 0) | (off < len ? POLLOUT : 0)},
        };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            die(1, "poll");
        }
        if (p[0].revents != 0) {
            ssize_t n = read(0, in, sizeof(in));
            if (n < 0 && errno != EINTR)
                die(1, "read stdin");
            in_open = n != 0;
            off = 0;
            len = n > 0 ? (size_t)n : 0;
        }
        if (off < len && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = send(fd, in + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                sock_fail("send");
            off += n > 0 ? (size_t)n : 0;
        }
        if (sock_open && (p[1].revents & (POLLIN | POLLERR | POLLHUP))) {
            ssize_t n = recv(fd, out, sizeof(out), MSG_DONTWAIT);
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                sock_fail("recv");
            if (n == 0)
                sock_open = 0;
            if (n > 0) {
                write_all(1, out, (size_t)n);
                received += (unsigned long long)n;
            }
        }
    }
}

static int
run_blackhole(const char *addr)
{
    int fd = listen_on(addr, 0);

    /* backlog 0 queues one connection; SYNs beyond it are dropped */
    if (connect_to(addr) < 0)
        die(1, "fill the accept queue");
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
    return fd;
}

/* Ends fd the way number kind says (see usage_text). */
static void
storm_end(int fd, int kind)
{
    static const char half[] = "*1\r\n$4\r\nPI", ping[] = "PING\r\n", get[] = "GET big\r\n";
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char buf[256];

    switch (kind) {
    case 0:
        close(fd);
        break;
    case 1:
        abort_conn(fd);
        break;
    case 2:
    case 3:
        send(fd, half, sizeof(half) - 1, MSG_NOSIGNAL);
        if (kind == 2)
            close(fd);
        else
            abort_conn(fd);
        break;
    case 4:
        send(fd, ping, sizeof(ping) - 1, MSG_NOSIGNAL);
        /* a reply, EOF or a reset (refused, bad preamble): all are fine */
        if (poll(&p, 1, STORM_REPLY_MS) > 0)
            (void)!recv(fd, buf, sizeof(buf), 0);
        close(fd);
        break;
    default:
        send(fd, get, sizeof(get) - 1, MSG_NOSIGNAL);
        if (poll(&p, 1, STORM_REPLY_MS) > 0)
            (void)!recv(fd, buf, sizeof(buf), 0);
        abort_conn(fd);
    }
}

static int
run_storm(long n, int hold_every, int hold_ms, char **addrs, int n_addrs)
{
    static int held[STORM_HOLD_MAX];
    int n_held = 0, failed = 0;

    for (long i = 0; i < n; i++) {
        int fd = connect_to(addrs[i % n_addrs]);
        if (fd < 0) {
            failed++;
            continue;
        }
        if (hold_every > 0 && i % hold_every == hold_every - 1 && n_held < STORM_HOLD_MAX)
            held[n_held++] = fd;
        else
            storm_end(fd, (int)((i / n_addrs) % STORM_KINDS));
    }
    if (n_held > 0)
        usleep((useconds_t)hold_ms * 1000);
    for (int i = 0; i < n_held; i++)
        close(held[i]);
    printf("storm: %ld connections, %d failed to connect, %d held\n", n, failed, n_held);
    return failed > 0;
}

static int
run_hold(long n, const char *from, const char *line, const char *addr)
{
    static struct pollfd p[STORM_HOLD_MAX];
    char buf[4096];
    long open = 0;

    if (n < 1 || n > STORM_HOLD_MAX)
        usage();
    for (long i = 0; i < n; i++) {
        if ((p[i].fd = connect_from(addr, from)) < 0)
            die(1, addr);
        p[i].events = POLLIN;
        if (line != NULL && (dprintf(p[i].fd, "%s\n", line) < 0))
            die(1, "send");
    }
    for (open = n;;) {
        printf("open %ld\n", open);
        fflush(stdout);
        if (open == 0)
            return 0;
        long was = open;
        while (open == was) {
            if (poll(p, (nfds_t)n, -1) < 0)
                die(1, "poll");
            for (long i = 0; i < n; i++) {
                if (p[i].fd < 0 || p[i].revents == 0)
                    continue;
                if (recv(p[i].fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
                    continue; /* an answer (OK <port>): not an end */
                close(p[i].fd);
                p[i].fd = -1; /* poll() skips it */
                open--;
            }
        }
    }
}

int
main(int argc, char **argv)
{
    struct cat_opts o = {0};
    int hold_every = 0, hold_ms = 0, i;
    const char *from = NULL, *line = NULL;

    if (argc < 3)
        usage();
    const char *cmd = argv[1];
    for (i = 3; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--rst") == 0)
            o.rst = 1;
        else if (strcmp(a, "--no-shut") == 0)
            o.no_shut = 1;
        else if (strcmp(a, "--after-eof") == 0)
            o.after_eof = 1;
        else if (strcmp(a, "--wait") == 0 && v != NULL && ++i)
            o.wait = strtoull(v, NULL, 10);
        else if (strcmp(a, "--hold-every") == 0 && v != NULL && ++i)
            hold_every = atoi(v);
        else if (strcmp(a, "--hold-ms") == 0 && v != NULL && ++i)
            hold_ms = atoi(v);
        else if (strcmp(a, "--from") == 0 && v != NULL && ++i)
            from = v;
        else if (strcmp(a, "--line") == 0 && v != NULL && ++i)
            line = v;
        else
            usage();
    }
    if (strcmp(cmd, "hold") == 0) {
        if (i != argc - 1)
            usage();
        return run_hold(atol(argv[2]), from, line, argv[i]);
    }
    if (strcmp(cmd, "storm") == 0) {
        if (i == argc)
            usage();
        return run_storm(atol(argv[2]), hold_every, hold_ms, argv + i, argc - i);
    }
    if (i != argc)
        usage();
    if (strcmp(cmd, "blackhole") == 0)
        return run_blackhole(argv[2]);
    if (strcmp(cmd, "connect") == 0) {
        int fd = connect_to(argv[2]);
        if (fd < 0)
            die(1, argv[2]);
        return run_cat(fd, &o);
    }
    if (strcmp(cmd, "listen") == 0) {
        int lfd = listen_on(argv[2], 1);
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            die(1, "accept");
        close(lfd);
        return run_cat(fd, &o);
    }
    usage();
    return 2;
}
