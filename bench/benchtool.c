/*
 * benchtool.c - small load generators and servers for bench/relay.sh.
 * Loopback TCP only (every address is 127.0.0.1); no vsock.
 *
 * Build: cc -std=c17 -O2 -Wall -Wextra -o benchtool benchtool.c
 *
 *   benchtool echo PORT
 *       epoll echo server on 127.0.0.1:PORT, one thread, until killed.
 *       Also the sink of the idle-connection test (it just holds them).
 *   benchtool pingpong PORT SIZE SECONDS
 *       one connection, SIZE-byte request echoed back, for SECONDS after a
 *       warm-up; prints "rtt_p50_us=.. rtt_p99_us=.. rtt_mean_us=.. n=.."
 *   benchtool churn PORT SECONDS PARALLEL
 *       PARALLEL connections in flight: connect, send a 16-byte request, read
 *       the 16-byte reply, close, start the next; prints
 *       "conn_per_s=.. p50_us=.. p99_us=.. errors=.."
 *   benchtool load PORT CONNS SECONDS SIZE
 *       CONNS connections, each a ping-pong of SIZE bytes each way, all in one
 *       epoll loop; prints "req_per_s=.. mbyte_per_s=.. conns=.. errors=.."
 *   benchtool idle PORT N READYFILE
 *       open N connections, exchange one byte on each (so each is established
 *       end to end through a proxy), write "established=K" to READYFILE and
 *       then hold them until killed.
 *   benchtool hold PORT N ACTIVE SECONDS SIZE READYFILE GOFILE
 *       like idle, then once GOFILE exists a ping-pong of SIZE bytes on ACTIVE
 *       of the N connections for SECONDS while the rest stay idle; writes
 *       "established=.. req_per_s=.. rtt_p50_us=.. rtt_p99_us=.. active_failed=..
 *       still_open=.." (connections not closed by the proxy) to READYFILE.done
 *       and holds them until killed.
 *   benchtool httprate PORT RATE SECONDS CONNS REQFILE
 *       constant-rate HTTP/1.1 load, wrk2's way: the request in REQFILE (a
 *       whole keep-alive request, head and body) is due every 1/RATE s, sent
 *       on whichever of CONNS kept-alive connections is free; latency runs from
 *       when it was due, so a stall counts for every request it delayed (no
 *       coordinated omission). Responses need a Content-Length. Prints
 *       "sent=.. rate=.. p50_us=.. p99_us=.. p999_us=.. max_us=.. errors=.."
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
die(const char *what)
{
    fprintf(stderr, "benchtool: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void
raise_nofile(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

static int
max_fds(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY)
        return 1 << 20;
    return (int)r.rlim_cur;
}

static struct sockaddr_in
loopback(unsigned port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static void
nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* non-blocking connect; returns fd (connect in progress or done) or -1 */
static int
nb_connect(unsigned port)
{
    struct sockaddr_in a = loopback(port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    nodelay(fd);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static int
sock_error(int fd)
{
    int e = 0;
    socklen_t l = sizeof e;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0)
        return errno;
    return e;
}

static int
cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* growable array of samples */
struct samples {
    double *v;
    size_t n, cap;
};

static void
push(struct samples *s, double x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v)
            die("realloc");
    }
    s->v[s->n++] = x;
}

static double
pct(struct samples *s, double p)
{
    if (!s->n)
        return 0;
    size_t i = (size_t)(p * (double)(s->n - 1) + 0.5);
    return s->v[i];
}

/* ------------------------------------------------------------------ echo */

struct pend {
    char *buf;
    size_t off, len;
};

static int
cmd_echo(unsigned port)
{
    static char rbuf[256 * 1024];
    int one = 1, nfds = max_fds();
    struct sockaddr_in a = loopback(port);
    struct pend *pend = calloc((size_t)nfds, sizeof *pend);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (!pend || l < 0)
        die("echo setup");
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, (struct sockaddr *)&a, sizeof a) < 0)
        die("bind");
    if (listen(l, 4096) < 0)
        die("listen");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l}, evs[512];
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    for (;;) {
        int n = epoll_wait(ep, evs, 512, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == l) {
                for (;;) {
                    int c = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0)
                        break;
                    if (c >= nfds) {
                        close(c);
                        continue;
                    }
                    nodelay(c);
                    struct epoll_event ce = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            struct pend *p = &pend[fd];
            int closeit = 0;
            if (p->len) { /* flush what is pending */
                ssize_t w = write(fd, p->buf + p->off, p->len - p->off);
                if (w < 0 && errno != EAGAIN)
                    closeit = 1;
                if (w > 0)
                    p->off += (size_t)w;
                if (p->off == p->len) {
                    free(p->buf);
                    *p = (struct pend){0};
                    struct epoll_event ce = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};
                    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ce);
                }
            } else if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                ssize_t r = read(fd, rbuf, sizeof rbuf);
                if (r == 0 || (r < 0 && errno != EAGAIN)) {
                    closeit = 1;
                } else if (r > 0) {
                    ssize_t w = write(fd, rbuf, (size_t)r);
                    if (w < 0 && errno != EAGAIN) {
                        closeit = 1;
                    } else {
                        if (w < 0)
                            w = 0;
                        if (w < r) {
                            p->buf = malloc((size_t)(r - w));
                            memcpy(p->buf, rbuf + w, (size_t)(r - w));
                            p->off = 0;
                            p->len = (size_t)(r - w);
                            struct epoll_event ce = {.events = EPOLLOUT, .data.fd = fd};
                            epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ce);
                        }
                    }
                }
            }
            if (closeit) {
                free(p->buf);
                *p = (struct pend){0};
                close(fd);
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------ pingpong */

static int
readn(int fd, char *b, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static int
writen(int fd, const char *b, size_t n)
{
    size_t put = 0;
    while (put < n) {
        ssize_t w = write(fd, b + put, n - put);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        put += (size_t)w;
    }
    return 0;
}

static int
cmd_pingpong(unsigned port, size_t size, double secs)
{
    struct sockaddr_in a = loopback(port);
    char *buf = calloc(1, size);
    struct samples s = {0};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || !buf)
        die("pingpong setup");
    nodelay(fd);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect");
    for (int i = 0; i < 500; i++) /* warm-up */
        if (writen(fd, buf, size) || readn(fd, buf, size))
            die("pingpong warm-up");
    double t0 = now(), end = t0 + secs, t = t0;
    while (t < end) {
        if (writen(fd, buf, size) || readn(fd, buf, size))
            die("pingpong");
        double t1 = now();
        push(&s, (t1 - t) * 1e6);
        t = t1;
    }
    double mean = (t - t0) * 1e6 / (double)s.n;
    qsort(s.v, s.n, sizeof *s.v, cmp_d);
    printf("rtt_p50_us=%.2f rtt_p99_us=%.2f rtt_mean_us=%.2f n=%zu\n", pct(&s, 0.5), pct(&s, 0.99),
           mean, s.n);
    return 0;
}

/* --------------------------------------------------------------- churn */

struct cslot {
    int fd, state; /* 0 connecting, 1 reading */
    size_t got;
    double t0;
};

static int
cmd_churn(unsigned port, double secs, int par)
{
    static const char req[16] = "GET /churn 0001\n";
    char buf[64];
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int nfds = max_fds();
    struct cslot *slot = calloc((size_t)nfds, sizeof *slot);
    struct samples lat = {0};
    long done = 0, errors = 0;
    if (!slot || ep < 0)
        die("churn setup");
    int active = 0;
    double t0 = now(), end = t0 + secs;

#define START_ONE()                                                                                \
    do {                                                                                           \
        int fd_ = nb_connect(port);                                                                \
        if (fd_ < 0) {                                                                             \
            errors++;                                                                              \
            break;                                                                                 \
        }                                                                                          \
        slot[fd_] = (struct cslot){.fd = fd_, .state = 0, .got = 0, .t0 = now()};                  \
        struct epoll_event e_ = {.events = EPOLLOUT, .data.fd = fd_};                              \
        epoll_ctl(ep, EPOLL_CTL_ADD, fd_, &e_);                                                    \
        active++;                                                                                  \
    } while (0)

    for (int i = 0; i < par; i++)
        START_ONE();
    struct epoll_event evs[512];
    while (active > 0) {
        int n = epoll_wait(ep, evs, 512, 200);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        double t = now();
        int stop = t >= end;
        if (errors > 100000)
            break;
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            struct cslot *c = &slot[fd];
            int finished = 0, failed = 0;
            if (c->state == 0) {
                if (sock_error(fd) != 0 || write(fd, req, sizeof req) != (ssize_t)sizeof req) {
                    failed = 1;
                } else {
                    c->state = 1;
                    struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
                    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
                }
            } else {
                ssize_t r = read(fd, buf, sizeof buf);
                if (r > 0) {
                    c->got += (size_t)r;
                    if (c->got >= sizeof req)
                        finished = 1;
                } else if (r == 0 || errno != EAGAIN) {
                    failed = 1;
                }
            }
            if (finished || failed) {
                close(fd);
                active--;
                if (finished) {
                    done++;
                    push(&lat, (now() - c->t0) * 1e6);
                } else {
                    errors++;
                }
                if (!stop)
                    START_ONE();
            }
        }
        if (stop && n == 0)
            break; /* stragglers after the end */
    }
    double dt = now() - t0;
    if (dt > secs)
        dt = secs + (dt - secs > 0.2 ? 0.2 : dt - secs);
    qsort(lat.v, lat.n, sizeof *lat.v, cmp_d);
    printf("conn_per_s=%.1f p50_us=%.1f p99_us=%.1f errors=%ld\n", (double)done / dt,
           pct(&lat, 0.5), pct(&lat, 0.99), errors);
    return 0;
}

/* ---------------------------------------------------------------- load */

struct lconn {
    int state; /* 0 connecting, 1 writing, 2 reading */
    size_t off;
};

static int
cmd_load(unsigned port, int conns, double secs, size_t size)
{
    int ep = epoll_create1(EPOLL_CLOEXEC), nfds = max_fds();
    struct lconn *lc = calloc((size_t)nfds, sizeof *lc);
    char *wbuf = calloc(1, size), *rbuf = malloc(size + 65536);
    long reqs = 0, errors = 0;
    int open_ = 0, connected = 0, started = 0;
    if (!lc || !wbuf || !rbuf || ep < 0)
        die("load setup");
    double t_start = 0, t_end = 0, t_limit = now() + 30; /* all connected within 30 s */
    int counting = 0;
    struct epoll_event evs[512];
    const int inflight_max = 256;
    int connecting = 0;
    for (;;) {
        while (started < conns && connecting < inflight_max) {
            int fd = nb_connect(port);
            started++;
            if (fd < 0) {
                errors++;
                continue;
            }
            lc[fd] = (struct lconn){0};
            struct epoll_event e = {.events = EPOLLOUT, .data.fd = fd};
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
            connecting++;
            open_++;
        }
        double t = now();
        if (!t_start && (connected + errors >= conns || t > t_limit)) {
            t_start = t + 0.5; /* warm-up once everything is connected */
            t_end = t_start + secs;
        }
        if (!counting && t_start && t >= t_start) {
            counting = 1;
            reqs = 0;
        }
        if (t_end && t >= t_end)
            break;
        int n = epoll_wait(ep, evs, 512, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            struct lconn *c = &lc[fd];
            int failed = 0;
            if (c->state == 0) {
                connecting--;
                if (sock_error(fd))
                    failed = 1;
                else {
                    connected++;
                    c->state = 1;
                    c->off = 0;
                }
            }
            if (!failed && c->state == 1) {
                ssize_t w = write(fd, wbuf + c->off, size - c->off);
                if (w < 0 && errno != EAGAIN)
                    failed = 1;
                else if (w > 0)
                    c->off += (size_t)w;
                if (!failed && c->off == size) {
                    c->state = 2;
                    c->off = 0;
                    struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
                    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
                } else if (!failed) {
                    struct epoll_event e = {.events = EPOLLOUT, .data.fd = fd};
                    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
                }
            } else if (!failed && c->state == 2) {
                ssize_t r = read(fd, rbuf, size + 65536);
                if (r == 0 || (r < 0 && errno != EAGAIN))
                    failed = 1;
                else if (r > 0) {
                    c->off += (size_t)r;
                    if (c->off >= size) { /* reply complete: next request */
                        reqs++;
                        c->state = 1;
                        c->off = 0;
                        ssize_t w = write(fd, wbuf, size);
                        if (w < 0 && errno != EAGAIN)
                            failed = 1;
                        else {
                            if (w > 0)
                                c->off = (size_t)w;
                            if (c->off == size) {
                                c->state = 2;
                                c->off = 0;
                            } else {
                                struct epoll_event e = {.events = EPOLLOUT, .data.fd = fd};
                                epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
                            }
                        }
                    }
                }
            }
            if (failed) {
                errors++;
                open_--;
                close(fd);
            }
        }
    }
    printf("req_per_s=%.1f mbyte_per_s=%.2f conns=%d errors=%ld\n", (double)reqs / secs,
           (double)reqs * (double)size / secs / 1e6, open_, errors);
    return 0;
}

/* ---------------------------------------------------------------- idle */

/* Opens n connections, exchanging one byte each way on each (so that each
 * is established end to end through a proxy); their fds go to fds[0..k).
 * Returns k; *errors counts those that failed. */
static int
establish(unsigned port, int n, int *fds, int *errors)
{
    int ep = epoll_create1(EPOLL_CLOEXEC), nfds = max_fds();
    char *st = calloc((size_t)nfds, 1); /* 0 none, 1 connecting, 2 waiting echo, 3 done */
    int started = 0, pending = 0, est = 0;
    const int inflight_max = 200;
    double limit = now() + 120;
    struct epoll_event evs[512];
    if (!st || ep < 0)
        die("idle setup");
    *errors = 0;
    while ((est + *errors < n) && now() < limit) {
        while (started < n && pending < inflight_max) {
            int fd = nb_connect(port);
            started++;
            if (fd < 0) {
                (*errors)++;
                continue;
            }
            st[fd] = 1;
            struct epoll_event e = {.events = EPOLLOUT, .data.fd = fd};
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
            pending++;
        }
        int k = epoll_wait(ep, evs, 512, 200);
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            char b = 'x';
            int failed = 0;
            if (st[fd] == 1) {
                if (sock_error(fd) || write(fd, &b, 1) != 1)
                    failed = 1;
                else {
                    st[fd] = 2;
                    struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
                    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
                }
            } else if (st[fd] == 2) {
                ssize_t r = read(fd, &b, 1);
                if (r == 1) {
                    st[fd] = 3;
                    fds[est++] = fd;
                    pending--;
                    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                } else if (r == 0 || errno != EAGAIN)
                    failed = 1;
            }
            if (failed) {
                (*errors)++;
                pending--;
                st[fd] = 0;
                close(fd);
            }
        }
    }
    close(ep);
    free(st);
    return est;
}

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        die(path);
}

static int
cmd_idle(unsigned port, int n, const char *readyfile)
{
    int *fds = calloc((size_t)n, sizeof *fds), errors;
    char line[128];
    if (!fds)
        die("idle setup");
    int est = establish(port, n, fds, &errors);
    snprintf(line, sizeof line, "established=%d errors=%d\n", est, errors);
    write_file(readyfile, line);
    for (;;)
        pause();
    return 0;
}

/* ------------------------------------------------------------------ hold */

/* hold: n established connections, then ping-pong on `active` of them for
 * secs while the rest stay idle; then checks that every one is still open. */
static int
cmd_hold(unsigned port, int n, int active, double secs, size_t size, const char *readyfile,
         const char *gofile)
{
    int *fds = calloc((size_t)n, sizeof *fds), errors, nfds = max_fds();
    double *sent = calloc((size_t)nfds, sizeof *sent);
    size_t *got = calloc((size_t)nfds, sizeof *got);
    char *wbuf = calloc(1, size), *rbuf = malloc(size + 65536), line[512];
    struct samples rtt = {0};
    long failed = 0;
    if (!fds || !sent || !got || !wbuf || !rbuf)
        die("hold setup");
    int est = establish(port, n, fds, &errors);
    snprintf(line, sizeof line, "established=%d errors=%d\n", est, errors);
    write_file(readyfile, line);
    while (access(gofile, F_OK) != 0)
        usleep(20000);

    if (active > est)
        active = est;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event evs[512];
    if (ep < 0)
        die("epoll");
    for (int i = 0; i < active; i++) {
        struct epoll_event e = {.events = EPOLLIN, .data.fd = fds[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e);
        sent[fds[i]] = now();
        if (write(fds[i], wbuf, size) != (ssize_t)size)
            failed++;
    }
    double t_end = now() + secs;
    while (now() < t_end) {
        int k = epoll_wait(ep, evs, 512, 100);
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            ssize_t r = read(fd, rbuf, size + 65536);
            if (r == 0 || (r < 0 && errno != EAGAIN)) {
                failed++;
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                continue;
            }
            if (r < 0)
                continue;
            got[fd] += (size_t)r;
            if (got[fd] < size)
                continue;
            double t = now();
            push(&rtt, (t - sent[fd]) * 1e6);
            got[fd] = 0;
            sent[fd] = t;
            if (write(fd, wbuf, size) != (ssize_t)size)
                failed++;
        }
    }
    qsort(rtt.v, rtt.n, sizeof *rtt.v, cmp_d);
    int still = 0;
    for (int i = 0; i < est; i++) {
        char b;
        ssize_t r = recv(fds[i], &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r > 0 || (r < 0 && errno == EAGAIN))
            still++;
    }
    snprintf(line, sizeof line,
             "established=%d errors=%d req_per_s=%.0f rtt_p50_us=%.0f rtt_p99_us=%.0f "
             "active_failed=%ld still_open=%d\n",
             est, errors, (double)rtt.n / secs, pct(&rtt, 0.5), pct(&rtt, 0.99), failed, still);
    char done[4096];
    snprintf(done, sizeof done, "%s.done", readyfile);
    write_file(done, line);
    for (;;)
        pause();
    return 0;
}

/* -------------------------------------------------------------- httprate */

struct hconn {
    int fd;
    double due; /* the request in flight: when it was due; 0 when free */
    char in[65536];
    size_t have;
};

/* The length of the first whole response in b[0..n), or 0 (not yet), or -1. */
static long
http_whole(const char *b, size_t n)
{
    const char *end = memmem(b, n, "\r\n\r\n", 4);
    if (!end)
        return 0;
    const char *cl = memmem(b, (size_t)(end - b), "Content-Length:", 15);
    if (!cl)
        cl = memmem(b, (size_t)(end - b), "content-length:", 15);
    if (!cl)
        return -1;
    long len = atol(cl + 15), head = end + 4 - b;
    return (size_t)(head + len) <= n ? head + len : 0;
}

static int
cmd_httprate(unsigned port, double rate, double secs, int nconn, const char *reqfile)
{
    FILE *f = fopen(reqfile, "rb");
    static char req[65536];
    size_t rlen = f ? fread(req, 1, sizeof req, f) : 0;
    if (!f || rlen == 0)
        die(reqfile);
    fclose(f);
    struct hconn *c = calloc((size_t)nconn, sizeof *c);
    int ep = epoll_create1(EPOLL_CLOEXEC), errors = 0;
    struct samples lat = {0};
    if (!c || ep < 0)
        die("setup");
    for (int i = 0; i < nconn; i++) {
        struct sockaddr_in a = loopback(port);
        c[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c[i].fd < 0 || connect(c[i].fd, (struct sockaddr *)&a, sizeof a) < 0)
            die("connect");
        nodelay(c[i].fd);
        fcntl(c[i].fd, F_SETFL, O_NONBLOCK);
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &e);
    }
    /* requests due and not yet sent wait in a ring of due times */
    size_t qcap = (size_t)(rate * secs) + 16, qh = 0, qt = 0;
    double *q = malloc(qcap * sizeof *q), start = now() + 0.2, interval = 1.0 / rate;
    long due_n = 0, sent = 0, done = 0, total = (long)(rate * secs);
    if (!q)
        die("malloc");
    while (done + errors < total) {
        double t = now();
        while (due_n < total && start + (double)due_n * interval <= t)
            q[qt++ % qcap] = start + (double)due_n++ * interval;
        for (int i = 0; i < nconn && qh != qt; i++) {
            if (c[i].due != 0 || c[i].fd < 0)
                continue;
            c[i].due = q[qh++ % qcap];
            if (writen(c[i].fd, req, rlen) != 0) { /* the connection broke: count, drop it */
                errors++;
                close(c[i].fd);
                c[i].fd = -1;
                continue;
            }
            sent++;
        }
        /* sleep until the next request is due, to the microsecond (a
         * millisecond timeout would send late and count it as latency) */
        double next = due_n < total ? start + (double)due_n * interval : t + 0.1;
        double wait = next > t ? (next - t > 0.1 ? 0.1 : next - t) : 0;
        struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        struct epoll_event ev[64];
        int n = epoll_pwait2(ep, ev, 64, &ts, NULL);
        for (int k = 0; k < n; k++) {
            struct hconn *h = &c[ev[k].data.u32];
            ssize_t r;
            while ((r = read(h->fd, h->in + h->have, sizeof h->in - h->have)) > 0)
                h->have += (size_t)r;
            long w;
            while (h->due != 0 && (w = http_whole(h->in, h->have)) != 0) {
                if (w < 0 || strncmp(h->in, "HTTP/1.1 200", 12) != 0)
                    errors++;
                else {
                    push(&lat, (now() - h->due) * 1e6);
                    done++;
                }
                memmove(h->in, h->in + (w > 0 ? w : (long)h->have),
                        h->have - (size_t)(w > 0 ? w : (long)h->have));
                h->have -= (size_t)(w > 0 ? w : (long)h->have);
                h->due = 0;
            }
            if (r == 0 && h->fd >= 0) {
                if (h->due != 0)
                    errors++;
                epoll_ctl(ep, EPOLL_CTL_DEL, h->fd, NULL);
                close(h->fd);
                h->fd = -1;
                h->due = 0;
            }
        }
        if (now() > start + secs + 10)
            break; /* responses that never come */
    }
    qsort(lat.v, lat.n, sizeof *lat.v, cmp_d);
    printf("sent=%ld rate=%.0f p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f errors=%d\n", sent,
           (double)done / secs, pct(&lat, 0.5), pct(&lat, 0.99), pct(&lat, 0.999),
           lat.n ? lat.v[lat.n - 1] : 0.0, errors + (int)(total - done - errors));
    return 0;
}

int
main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *c = argc > 1 ? argv[1] : "";
    if (!strcmp(c, "echo") && argc == 3)
        return cmd_echo((unsigned)atoi(argv[2]));
    if (!strcmp(c, "pingpong") && argc == 5)
        return cmd_pingpong((unsigned)atoi(argv[2]), (size_t)atol(argv[3]), atof(argv[4]));
    if (!strcmp(c, "churn") && argc == 5)
        return cmd_churn((unsigned)atoi(argv[2]), atof(argv[3]), atoi(argv[4]));
    if (!strcmp(c, "load") && argc == 6)
        return cmd_load((unsigned)atoi(argv[2]), atoi(argv[3]), atof(argv[4]),
                        (size_t)atol(argv[5]));
    if (!strcmp(c, "idle") && argc == 5)
        return cmd_idle((unsigned)atoi(argv[2]), atoi(argv[3]), argv[4]);
    if (!strcmp(c, "hold") && argc == 9)
        return cmd_hold((unsigned)atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atof(argv[5]),
                        (size_t)atol(argv[6]), argv[7], argv[8]);
    if (!strcmp(c, "httprate") && argc == 7)
        return cmd_httprate((unsigned)atoi(argv[2]), atof(argv[3]), atof(argv[4]), atoi(argv[5]),
                            argv[6]);
    fprintf(stderr, "usage: see the header of bench/benchtool.c\n");
    return 2;
}
