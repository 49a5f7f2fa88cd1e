/* load.c - smartgrid-load: many simulated smartgrid users in one process,
 * one epoll loop (src/core/loop.c), non-blocking OpenSSL.
 *
 * Each user runs sessions one after another: meter mode is LOGIN,
 * LONG_WRITE of --hours of 15-second samples, LOGOUT; customer mode is
 * LOGIN, then every --frequency seconds a WRITE (probability --write-ratio)
 * or a QUERY_AVG until --duration has passed, then LOGOUT. An operation's
 * latency runs from its start to its response, a connect and TLS handshake
 * included when the connection had to be (re)opened: the server exits after
 * LOGOUT and a connection may go at any time. A failed operation (connect,
 * TLS, closed, timeout, bad response, HTTP status other than 200) is counted
 * by kind and ends that session.
 *
 * With --attest-sim-root or --attest-pcr, every connection asks for fresh
 * RA-TLS evidence (a random nonce in its ClientHello, attest/ratls.h) and
 * verifies it, bound to the server's certificate, under that policy right
 * after the handshake: the request (LOGIN carries the user's database key)
 * is sent only then. A refusal is counted as attest_fail. */
#include <cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "attest/policy.h"
#include "attest/ratls.h"
#include "attest/trust.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/strbuf.h"
#include "core/units.h"
#include "http.h"
#include "net/endpoint.h"
#include "net/transport.h"
#include "tlsio.h"

#define RESP_MAX (1 << 20)
#define SAMPLE_S 15

enum op { OP_LOGIN, OP_WRITE, OP_LONG_WRITE, OP_QUERY_AVG, OP_LOGOUT, OP_N };
static const char *const op_names[OP_N] = {"LOGIN", "WRITE", "LONG_WRITE", "QUERY_AVG", "LOGOUT"};

enum mode { MODE_METER, MODE_CUSTOMER };

enum user_state {
    U_PENDING,    /* not started yet */
    U_CONNECTING, /* TCP/unix connect in progress */
    U_HANDSHAKE,  /* TLS handshake in progress */
    U_REQUEST,    /* request sent (or sending), waiting for the response */
    U_THINK,      /* between operations */
    U_DONE,       /* every session finished */
};

struct user {
    char name[65], key[65], token[65];
    enum user_state state;
    struct sg_tls t;
    struct io io;
    struct timer timer;   /* ramp-up and think time */
    struct timer timeout; /* the current operation's deadline */
    struct task more;     /* continue a step that hit its read budget */
    enum op op;
    struct timespec op_start;
    uint64_t session_end;
    unsigned sessions_left;
    struct strbuf req;
};

struct opts {
    struct endpoint connect;
    const char *certs, *keys, *domain, *csv, *users_arg;
    enum mode mode;
    unsigned concurrency, sessions, hours, duration_ms, frequency_ms, ramp_ms, timeout_ms;
    unsigned query_window_s;
    double write_ratio;
    uint64_t seed;
    const char *attest_sim_root;  /* trust sim evidence of this root */
    struct attest_policy *attest; /* NULL: no attestation */
};

struct samples {
    double *v;
    size_t n, cap;
    unsigned errors;
};

#define ERR_KINDS 8
static struct {
    struct opts o;
    struct loop *loop;
    SSL_CTX *ctx;
    struct sockaddr_storage sa;
    socklen_t salen;
    struct user *users;
    size_t n_users, next_user, active;
    struct samples ops[OP_N];
    char err_kind[ERR_KINDS][16];
    unsigned err_count[ERR_KINDS];
    FILE *csv;
    uint64_t rng;
} g;

static void user_step(struct user *u);
static void op_start(struct user *u, enum op op);

static double
rnd(void)
{
    g.rng ^= g.rng >> 12;
    g.rng ^= g.rng << 25;
    g.rng ^= g.rng >> 27;
    return (double)((g.rng * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static void
sample_add(struct samples *s, double ms)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 1024;
        double *v = realloc(s->v, cap * sizeof(*v));
        if (v == NULL)
            return; /* the sample is lost, not the run */
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = ms;
}

static void
count_error(const char *kind)
{
    int i;
    for (i = 0; i < ERR_KINDS && g.err_kind[i][0] != '\0'; i++)
        if (strcmp(g.err_kind[i], kind) == 0)
            break;
    if (i == ERR_KINDS)
        i = ERR_KINDS - 1; /* more kinds than slots: the last one collects */
    if (g.err_kind[i][0] == '\0')
        snprintf(g.err_kind[i], sizeof(g.err_kind[i]), "%s", kind);
    g.err_count[i]++;
}

/* Records the end of u's operation: status is "200", "http_503", "timeout"... */
static void
record(struct user *u, const char *status, int ok)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double ms = (double)(now.tv_sec - u->op_start.tv_sec) * 1e3 +
                (double)(now.tv_nsec - u->op_start.tv_nsec) / 1e6;
    if (ok)
        sample_add(&g.ops[u->op], ms);
    else {
        g.ops[u->op].errors++;
        count_error(status);
    }
    if (g.csv != NULL) {
        struct timespec wall;
        clock_gettime(CLOCK_REALTIME, &wall);
        double start = (double)wall.tv_sec + (double)wall.tv_nsec / 1e9 - ms / 1e3;
        fprintf(g.csv, "%s,%s,%.3f,%.3f,%s\n", u->name, op_names[u->op], start, ms, status);
    }
}

static void
conn_close(struct user *u)
{
    if (u->t.state != SG_TLS_CLOSED) {
        io_stop(g.loop, &u->io);
        sg_tls_close(&u->t);
    }
}

static void launch_next(void);

static void
on_think(struct timer *t)
{
    struct user *u = t->data;
    if (u->state == U_PENDING) {
        u->session_end = loop_now(g.loop) + g.o.duration_ms;
        op_start(u, OP_LOGIN);
        return;
    }
    if (loop_now(g.loop) >= u->session_end)
        op_start(u, OP_LOGOUT);
    else
        op_start(u, rnd() < g.o.write_ratio ? OP_WRITE : OP_QUERY_AVG);
}

/* The session is over (LOGOUT answered, or an operation failed). */
static void
session_end(struct user *u)
{
    conn_close(u);
    timer_stop(g.loop, &u->timeout);
    u->token[0] = '\0';
    if (--u->sessions_left > 0) {
        u->session_end = loop_now(g.loop) + g.o.duration_ms;
        op_start(u, OP_LOGIN);
        return;
    }
    u->state = U_DONE;
    timer_stop(g.loop, &u->timer);
    strbuf_free(&u->req);
    g.active--;
    launch_next();
}

static void
op_fail(struct user *u, const char *kind)
{
    record(u, kind, 0);
    session_end(u);
}

static void
on_timeout(struct timer *t)
{
    op_fail(t->data, "timeout");
}

static void
on_more(struct task *t)
{
    user_step(t->data);
}

static void
on_io(struct io *io, uint32_t events)
{
    (void)events;
    user_step(io->data);
}

/* ---- requests */

static void
build_request(struct user *u)
{
    struct strbuf body = {0};
    const char *method = "POST", *path = "/";
    char target[160];
    long long now = (long long)time(NULL);

    strbuf_free(&u->req);
    switch (u->op) {
    case OP_LOGIN:
        path = "/login";
        strbuf_printf(&body, "{\"key\":\"%s\"}", u->key);
        break;
    case OP_LOGOUT:
        path = "/logout";
        break;
    case OP_WRITE:
        path = "/write";
        strbuf_printf(&body, "{\"alarms\":[");
        for (int i = 0; i < 3; i++)
            strbuf_printf(&body, "%s{\"metric\":\"%s\",\"threshold\":%.3f}", i ? "," : "",
                          i == 0   ? "power"
                          : i == 1 ? "impedance"
                                   : "tension",
                          1 + rnd() * 240);
        strbuf_printf(&body, "]}");
        break;
    case OP_LONG_WRITE: {
        unsigned n = g.o.hours * 3600 / SAMPLE_S;
        long long first = now / SAMPLE_S * SAMPLE_S - (long long)(n - 1) * SAMPLE_S;
        path = "/long_write";
        strbuf_printf(&body, "{\"metrics\":[");
        for (unsigned i = 0; i < n; i++)
            strbuf_printf(&body,
                          "%s{\"timestamp\":%lld,\"power\":%.3f,\"impedance\":%.4f,"
                          "\"tension\":%.2f}",
                          i ? "," : "", first + (long long)i * SAMPLE_S, 1 + rnd(),
                          0.4 + 0.05 * rnd(), 228 + 4 * rnd());
        strbuf_printf(&body, "]}");
        break;
    }
    case OP_QUERY_AVG: {
        static const char *const m[] = {"power", "impedance", "tension"};
        method = "GET";
        int k = (int)(rnd() * 3) % 3;
        if (g.o.query_window_s == 0)
            snprintf(target, sizeof(target), "/query_avg?metric=%s", m[k]);
        else
            snprintf(target, sizeof(target), "/query_avg?metric=%s&from=%lld&to=%lld", m[k],
                     now - g.o.query_window_s, now);
        path = target;
        break;
    }
    case OP_N:
        break;
    }
    strbuf_printf(&u->req, "%s %s HTTP/1.1\r\nHost: %s.grid.%s\r\n", method, path, u->name,
                  g.o.domain);
    if (u->token[0] != '\0')
        strbuf_printf(&u->req, "Authorization: Bearer %s\r\n", u->token);
    if (method[0] == 'P')
        strbuf_printf(&u->req, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                      body.len);
    strbuf_printf(&u->req, "\r\n%s", body.len ? body.data : "");
    strbuf_free(&body);
}

/* Opens a connection to the server and starts its TLS handshake. */
static int
conn_open(struct user *u)
{
    char path[PATH_MAX], host[256];
    bool pending;

    int fd = transport_connect((struct sockaddr *)&g.sa, g.salen, false, &pending);
    if (fd < 0)
        return -1;
    transport_tune(fd, g.o.connect.kind, false);
    if (sg_tls_open(&u->t, fd, g.ctx, 0, RESP_MAX) != 0)
        return -1;
    snprintf(host, sizeof(host), "%s.grid.%s", u->name, g.o.domain);
    snprintf(path, sizeof(path), "%s/users/%s.pem", g.o.certs, u->name);
    int ok = SSL_set_tlsext_host_name(u->t.ssl, host) == 1 && SSL_set1_host(u->t.ssl, host) == 1 &&
             SSL_use_certificate_chain_file(u->t.ssl, path) == 1;
    snprintf(path, sizeof(path), "%s/users/%s.key", g.o.certs, u->name);
    uint8_t nonce[32];
    if (g.o.attest != NULL)
        ok = ok && RAND_bytes(nonce, sizeof(nonce)) == 1 &&
             ratls_ssl_request_fresh(u->t.ssl, nonce, sizeof(nonce)) == 0;
    if (!ok || SSL_use_PrivateKey_file(u->t.ssl, path, SSL_FILETYPE_PEM) != 1 ||
        io_start(g.loop, &u->io, fd, EPOLLIN | EPOLLOUT, on_io, u) != 0) {
        sg_tls_log_errors("client setup");
        sg_tls_close(&u->t);
        return -1;
    }
    u->state = pending ? U_CONNECTING : U_HANDSHAKE;
    return 0;
}

static void
op_start(struct user *u, enum op op)
{
    u->op = op;
    clock_gettime(CLOCK_MONOTONIC, &u->op_start);
    build_request(u);
    if (u->req.failed) {
        op_fail(u, "no_memory");
        return;
    }
    timer_start(g.loop, &u->timeout, g.o.timeout_ms, on_timeout, u);
    if (u->t.state == SG_TLS_CLOSED) {
        if (conn_open(u) != 0) {
            op_fail(u, "connect");
            return;
        }
    } else {
        u->state = U_REQUEST;
    }
    if (u->state == U_REQUEST && sg_tls_send(&u->t, u->req.data, u->req.len) != 0) {
        op_fail(u, "no_memory");
        return;
    }
    user_step(u);
}

/* The response to u's operation arrived: m, len bytes of u's input. */
static void
op_done(struct user *u, const struct sg_http_msg *m, size_t len)
{
    char status[16];

    timer_stop(g.loop, &u->timeout);
    if (m->status != 200) {
        snprintf(status, sizeof(status), "http_%d", m->status);
        op_fail(u, status);
        return;
    }
    if (u->op == OP_LOGIN) {
        cJSON *b = cJSON_ParseWithLength(m->body.p, m->body.len);
        const cJSON *tok = cJSON_GetObjectItemCaseSensitive(b, "token");
        int ok = cJSON_IsString(tok) && strlen(tok->valuestring) < sizeof(u->token);
        if (ok)
            snprintf(u->token, sizeof(u->token), "%s", tok->valuestring);
        cJSON_Delete(b);
        if (!ok) {
            op_fail(u, "bad_response");
            return;
        }
    }
    sg_tls_consume(&u->t, len); /* m is gone from here on */
    record(u, "200", 1);
    if (!m->keep_alive)
        conn_close(u);
    switch (u->op) {
    case OP_LOGOUT:
        session_end(u);
        return;
    case OP_LOGIN:
        if (g.o.mode == MODE_METER) {
            op_start(u, OP_LONG_WRITE);
            return;
        }
        break;
    case OP_LONG_WRITE:
        op_start(u, OP_LOGOUT);
        return;
    default:
        break;
    }
    /* the next request --frequency after this one started */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t spent = (int64_t)(now.tv_sec - u->op_start.tv_sec) * 1000 +
                    (now.tv_nsec - u->op_start.tv_nsec) / 1000000;
    u->state = U_THINK;
    timer_start(g.loop, &u->timer,
                spent < g.o.frequency_ms ? (uint64_t)(g.o.frequency_ms - spent) : 0, on_think, u);
}

/* The server's fresh evidence, verified before anything is sent: false
 * (the operation failed as attest_fail) when it is missing or refused. */
static bool
attested(struct user *u)
{
    static struct attest_claims claims; /* one loop thread */
    static bool told;
    char err[ATTEST_ERR_MAX];

    g.o.attest->now = time(NULL);
    if (ratls_ssl_verify(u->t.ssl, g.o.attest, &claims, err) == ATTEST_OK)
        return true;
    if (!told) /* the first reason; the count is in the report */
        log_warnx("attestation refused user=%s reason=\"%s\"", u->name, err);
    told = true;
    op_fail(u, "attest_fail");
    return false;
}

/* Drives u's connection as far as it goes now. */
static void
user_step(struct user *u)
{
    short ev;

    if (u->t.state == SG_TLS_CLOSED)
        return;
    if (u->state == U_CONNECTING) {
        int r = transport_sock_error(u->t.fd);
        if (r == -EINPROGRESS || r == -EAGAIN)
            return;
        if (r != 0) {
            op_fail(u, "connect");
            return;
        }
        u->state = U_HANDSHAKE;
    }
    int r = sg_tls_step(&u->t, &ev);
    if (r != 0) {
        if (u->state == U_THINK) /* an idle connection went: reopen on the next op */
            conn_close(u);
        else
            op_fail(u, r == -EPROTO ? "tls" : "closed");
        return;
    }
    if (u->state == U_HANDSHAKE && u->t.state == SG_TLS_OPEN) {
        if (g.o.attest != NULL && !attested(u))
            return;
        u->state = U_REQUEST;
        if (sg_tls_send(&u->t, u->req.data, u->req.len) != 0 || sg_tls_step(&u->t, &ev) != 0) {
            op_fail(u, "closed");
            return;
        }
    }
    if (u->state == U_REQUEST && u->t.in_len > 0) {
        struct sg_http_msg m;
        size_t len;
        enum sg_http_fault fault;
        enum parse_result p =
            sg_http_parse(u->t.in, u->t.in_len, 1, 8192, RESP_MAX - 8192, &m, &len, &fault, NULL);
        if (p == PARSE_INVALID) {
            op_fail(u, "bad_response");
            return;
        }
        if (p == PARSE_OK) {
            op_done(u, &m, len); /* may close the connection or start the next op */
            return;
        }
    }
    if (u->t.eof) {
        if (u->state == U_THINK)
            conn_close(u);
        else
            op_fail(u, u->state == U_HANDSHAKE ? "tls" : "closed");
        return;
    }
    if (ev == 0) /* stopped by the read budget, not by the socket */
        loop_defer(g.loop, &u->more, on_more, u);
}

static void
launch_next(void)
{
    while (g.active < g.o.concurrency && g.next_user < g.n_users) {
        struct user *u = &g.users[g.next_user++];
        g.active++;
        u->session_end = loop_now(g.loop) + g.o.duration_ms;
        op_start(u, OP_LOGIN);
    }
    if (g.active == 0 && g.next_user == g.n_users)
        loop_stop(g.loop);
}

/* ---- setup and report */

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double
pct(const struct samples *s, double q)
{
    size_t i = (size_t)ceil(q * (double)s->n);
    return s->n == 0 ? 0 : s->v[i == 0 ? 0 : i - 1];
}

static unsigned
report(double seconds)
{
    unsigned errors = 0;
    for (int i = 0; i < OP_N; i++) {
        struct samples *s = &g.ops[i];
        if (s->n == 0 && s->errors == 0)
            continue;
        if (s->n > 0)
            qsort(s->v, s->n, sizeof(double), cmp_double);
        printf("op=%s ok=%zu errors=%u p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
               op_names[i], s->n, s->errors, pct(s, 0.5), pct(s, 0.95), pct(s, 0.99),
               s->n ? s->v[s->n - 1] : 0);
        errors += s->errors;
        free(s->v);
    }
    for (int i = 0; i < ERR_KINDS && g.err_kind[i][0] != '\0'; i++)
        printf("error kind=%s count=%u\n", g.err_kind[i], g.err_count[i]);
    printf("total users=%zu errors=%u seconds=%.2f\n", g.n_users, errors, seconds);
    return errors;
}

/* Reads "user,key" lines of the keys file; picks the users --users names:
 * N (the first N), A-B (lines A to B, 1-based) or all when absent. */
static void
load_users(void)
{
    char line[256];
    unsigned lo = 1, hi = UINT_MAX, n = 0;
    FILE *f = fopen(g.o.keys, "r");

    if (f == NULL)
        fatal("%s", g.o.keys);
    if (g.o.users_arg != NULL) {
        char *end;
        unsigned long a = strtoul(g.o.users_arg, &end, 10), b = a;
        if (*end == '-')
            b = strtoul(end + 1, &end, 10);
        else
            a = 1;
        if (*end != '\0' || a == 0 || b < a || b > 10000000)
            fatalx("--users: expected N or A-B");
        lo = (unsigned)a;
        hi = (unsigned)b;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (++n < lo || n > hi)
            continue;
        char *comma = strchr(line, ',');
        size_t klen = comma ? strcspn(comma + 1, "\r\n") : 0;
        if (comma == NULL || comma - line > 64 || klen > 64)
            fatalx("%s:%u: expected user,key", g.o.keys, n);
        struct user *u = realloc(g.users, (g.n_users + 1) * sizeof(*u));
        if (u == NULL)
            fatalx("out of memory");
        g.users = u;
        u = &g.users[g.n_users++];
        memset(u, 0, sizeof(*u));
        memcpy(u->name, line, (size_t)(comma - line));
        memcpy(u->key, comma + 1, klen);
        u->t = (struct sg_tls){.state = SG_TLS_CLOSED, .fd = -1};
        u->sessions_left = g.o.sessions;
        u->timer.data = u->timeout.data = u;
    }
    fclose(f);
    if (g.n_users == 0)
        fatalx("%s: no users selected", g.o.keys);
}

static noreturn void
usage(void)
{
    fprintf(stderr,
            "usage: smartgrid-load --connect tcp:IP:PORT|unix:PATH | --server IP --port PORT\n"
            "         --certs DIR [--keys FILE]\n"
            "         [--mode meter|customer] [--users N|A-B] [--concurrency N] [--sessions N]\n"
            "         [--domain example] [--hours 1|3|12] [--duration 60s] [--frequency 5s]\n"
            "         [--write-ratio 0.2] [--ramp-up 0s] [--timeout 30s] [--query-window 12h]\n"
            "         [--csv FILE] [--seed N] [--attest-sim-root FILE] [--attest-pcr N=HEX]...\n");
    exit(2);
}

static unsigned
duration_arg(const char *what)
{
    unsigned ms;
    if (units_duration(optarg, &ms) != 0)
        fatalx("%s: expected a duration such as 5s", what);
    return ms;
}

static unsigned
count_arg(const char *what, unsigned max)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(optarg, &end, 10);
    if (errno != 0 || *end != '\0' || v == 0 || v > max)
        fatalx("%s: expected a number from 1 to %u", what, max);
    return (unsigned)v;
}

static void
parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longs[] = {{"connect", required_argument, NULL, 'c'},
                                          {"certs", required_argument, NULL, 'C'},
                                          {"keys", required_argument, NULL, 'k'},
                                          {"mode", required_argument, NULL, 'm'},
                                          {"users", required_argument, NULL, 'u'},
                                          {"concurrency", required_argument, NULL, 'n'},
                                          {"sessions", required_argument, NULL, 's'},
                                          {"domain", required_argument, NULL, 'D'},
                                          {"hours", required_argument, NULL, 'h'},
                                          {"duration", required_argument, NULL, 'd'},
                                          {"frequency", required_argument, NULL, 'f'},
                                          {"write-ratio", required_argument, NULL, 'w'},
                                          {"ramp-up", required_argument, NULL, 'r'},
                                          {"timeout", required_argument, NULL, 't'},
                                          {"query-window", required_argument, NULL, 'q'},
                                          {"csv", required_argument, NULL, 'o'},
                                          {"seed", required_argument, NULL, 'S'},
                                          {"server", required_argument, NULL, 'H'},
                                          {"port", required_argument, NULL, 'P'},
                                          {"attest-sim-root", required_argument, NULL, 'A'},
                                          {"attest-pcr", required_argument, NULL, 'R'},
                                          {NULL, 0, NULL, 0}};
    const char *connect = NULL, *server = NULL, *port = NULL, *err;
    static char keys[PATH_MAX], tcp[300];
    int ch;
    char *end;

    *o = (struct opts){.domain = "example",
                       .mode = MODE_METER,
                       .sessions = 1,
                       .hours = 1,
                       .duration_ms = 60000,
                       .frequency_ms = 5000,
                       .write_ratio = 0.2,
                       .timeout_ms = 30000,
                       .query_window_s = 12 * 3600,
                       .seed = 1};
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 'c':
            connect = optarg;
            break;
        case 'C':
            o->certs = optarg;
            break;
        case 'H':
            server = optarg;
            break;
        case 'P':
            port = optarg;
            break;
        case 'k':
            o->keys = optarg;
            break;
        case 'm':
            if (strcmp(optarg, "meter") == 0)
                o->mode = MODE_METER;
            else if (strcmp(optarg, "customer") == 0)
                o->mode = MODE_CUSTOMER;
            else
                fatalx("--mode: expected meter or customer");
            break;
        case 'u':
            o->users_arg = optarg;
            break;
        case 'n':
            o->concurrency = count_arg("--concurrency", 1000000);
            break;
        case 's':
            o->sessions = count_arg("--sessions", 1000000);
            break;
        case 'D':
            o->domain = optarg;
            break;
        case 'h':
            o->hours = count_arg("--hours", 24 * 31);
            break;
        case 'd':
            o->duration_ms = duration_arg("--duration");
            break;
        case 'f':
            o->frequency_ms = duration_arg("--frequency");
            break;
        case 'r':
            o->ramp_ms = duration_arg("--ramp-up");
            break;
        case 't':
            o->timeout_ms = duration_arg("--timeout");
            break;
        case 'q':
            o->query_window_s = duration_arg("--query-window") / 1000;
            break;
        case 'w':
            o->write_ratio = strtod(optarg, &end);
            if (*end != '\0' || !(o->write_ratio >= 0 && o->write_ratio <= 1))
                fatalx("--write-ratio: expected a number from 0 to 1");
            break;
        case 'o':
            o->csv = optarg;
            break;
        case 'S':
            o->seed = strtoull(optarg, &end, 10) | 1;
            break;
        case 'A':
            o->attest_sim_root = optarg;
            break;
        case 'R':
            if (o->attest == NULL && (o->attest = calloc(1, sizeof(*o->attest))) == NULL)
                fatalx("out of memory");
            if (o->attest->npcrs >= ATTEST_PCR_MAX ||
                attest_pcr_arg(optarg, &o->attest->pcrs[o->attest->npcrs]) != 0)
                fatalx("--attest-pcr: expected N=HEX (N from 0 to 31)");
            o->attest->npcrs++;
            break;
        default:
            usage();
        }
    }
    /* --server IP --port PORT: the dissertation client's spelling of tcp: */
    if (connect == NULL && server != NULL && port != NULL) {
        snprintf(tcp, sizeof(tcp), strchr(server, ':') ? "tcp:[%s]:%s" : "tcp:%s:%s", server, port);
        connect = tcp;
    }
    if (optind != argc || connect == NULL || o->certs == NULL)
        usage();
    if (endpoint_parse(connect, &o->connect, &err) != PARSE_OK ||
        (o->connect.kind != EP_TCP && o->connect.kind != EP_UNIX))
        fatalx("--connect: expected tcp:IP:PORT or unix:PATH");
    if (o->keys == NULL) {
        snprintf(keys, sizeof(keys), "%s/keys.csv", o->certs);
        o->keys = keys;
    }
}

/* The attestation policy of --attest-*: fresh evidence on every
 * connection, sim evidence only from --attest-sim-root. */
static void
attest_setup(void)
{
    char err[ATTEST_ERR_MAX];
    uint8_t *pem;
    size_t len;

    if (g.o.attest_sim_root != NULL && g.o.attest == NULL &&
        (g.o.attest = calloc(1, sizeof(*g.o.attest))) == NULL)
        fatalx("out of memory");
    if (g.o.attest == NULL)
        return;
    if (g.o.attest_sim_root != NULL) {
        /* a trust anchor: refused when others may change it */
        if (attest_file_read(g.o.attest_sim_root, false, ATTEST_PEM_MAX, &pem, &len, err) != 0)
            fatalx("--attest-sim-root %s", err);
        BIO *bio = BIO_new_mem_buf(pem, (int)len);
        g.o.attest->sim_root = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        free(pem);
        if (g.o.attest->sim_root == NULL)
            fatalx("--attest-sim-root %s: no PEM certificate", g.o.attest_sim_root);
    }
    if (SSL_CTX_set_min_proto_version(g.ctx, TLS1_3_VERSION) != 1 || ratls_ctx_client(g.ctx) != 0)
        fatalx("cannot set up attested TLS");
}

int
main(int argc, char **argv)
{
    char ca[PATH_MAX];
    struct timespec t0, t1;

    parse_args(argc, argv, &g.o);
    g.rng = g.o.seed * 0x9E3779B97F4A7C15ULL | 1;
    signal(SIGPIPE, SIG_IGN);
    /* one socket per concurrent user: lift the soft fd limit to the hard one */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (transport_addr(&g.o.connect, &g.sa, &g.salen) != 0)
        fatalx("--connect: expected a literal address (no name resolution)");
    load_users();
    if (g.o.concurrency == 0 || g.o.concurrency > g.n_users)
        g.o.concurrency = (unsigned)g.n_users;
    snprintf(ca, sizeof(ca), "%s/ca.pem", g.o.certs);
    g.ctx = SSL_CTX_new(TLS_client_method());
    if (g.ctx == NULL || SSL_CTX_load_verify_locations(g.ctx, ca, NULL) != 1)
        fatalx("cannot load %s", ca);
    SSL_CTX_set_verify(g.ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_options(g.ctx, SG_TLS_OPTIONS);
    attest_setup();
    if (g.o.csv != NULL) {
        g.csv = fopen(g.o.csv, "w");
        if (g.csv == NULL)
            fatal("%s", g.o.csv);
        fprintf(g.csv, "user,op,start,latency_ms,status\n");
    }
    g.loop = loop_new();
    if (g.loop == NULL)
        fatal("loop_new");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* the first wave spreads over --ramp-up; later users start as slots free */
    g.active = g.o.concurrency;
    g.next_user = g.o.concurrency;
    for (size_t i = 0; i < g.o.concurrency; i++)
        timer_start(g.loop, &g.users[i].timer, (uint64_t)g.o.ramp_ms * i / g.o.concurrency,
                    on_think, &g.users[i]);
    if (loop_run(g.loop) != 0)
        fatal("loop");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    unsigned errors =
        report((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    if (g.csv != NULL && fclose(g.csv) != 0)
        log_warn("%s", g.o.csv);
    for (size_t i = 0; i < g.n_users; i++)
        strbuf_free(&g.users[i].req);
    free(g.users);
    SSL_CTX_free(g.ctx);
    loop_free(g.loop);
    if (g.o.attest != NULL)
        X509_free(g.o.attest->sim_root);
    free(g.o.attest);
    return errors ? 3 : 0;
}
