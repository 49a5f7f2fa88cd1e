/* proxy.c - the HTTP reverse proxy role; see proxy.h. */
#include "http/proxy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/list.h"
#include "core/log.h"
#include "field/field.h"
#include "net/dial.h"
#include "net/transport.h"
#include "proto/http_msg.h"

#define ACCEPT_BUDGET 64
#define LISTEN_BACKLOG 4096
#define READ_CHUNK (64 * 1024)
#define STEP_BUDGET 64 /* steps per wakeup before other sessions get a turn */
#define ROUTE_SLOTS (2 * HTTP_ROUTES_MAX + 1) /* route names seen across reloads, and "-" */
#define IDLE_MAX 32 /* idle backend connections a worker keeps, all proxies together */

/* Why a request failed; one counter each (airlock_http_failures_total). */
enum http_fail {
    FAIL_BAD_REQUEST,     /* malformed HTTP */
    FAIL_HEADER_LARGE,    /* head over max_header or max_headers */
    FAIL_BODY_LARGE,      /* body over max_body */
    FAIL_HEADER_TIMEOUT,  /* no whole head within header_timeout */
    FAIL_BODY_TIMEOUT,    /* no whole body within body_timeout */
    FAIL_METHOD,          /* CONNECT, upgrades */
    FAIL_CONTENT_TYPE,    /* a body a route's rules cannot read */
    FAIL_MALFORMED,       /* field: the body is not JSON */
    FAIL_NOT_SCALAR,      /* field: a path matched an object or array */
    FAIL_VALUE_LARGE,     /* field: a value over the limit */
    FAIL_BAD_TOKEN,       /* field: a token in a request or response that does not open */
    FAIL_INTERNAL,        /* field: crypto or memory */
    FAIL_BACKEND_DOWN,    /* the backend refused or was unreachable: 502 */
    FAIL_BACKEND_TIMEOUT, /* connect or response over its timeout: 504 */
    FAIL_BACKEND_CLOSED,  /* the backend closed or reset inside the response: 502 */
    FAIL_BAD_RESPONSE,    /* malformed or over max_response: 502 */
    FAIL_COUNT,
};

static const char *const fail_names[FAIL_COUNT] = {
    [FAIL_BAD_REQUEST] = "bad_request",       [FAIL_HEADER_LARGE] = "header_too_large",
    [FAIL_BODY_LARGE] = "body_too_large",     [FAIL_HEADER_TIMEOUT] = "header_timeout",
    [FAIL_BODY_TIMEOUT] = "body_timeout",     [FAIL_METHOD] = "method",
    [FAIL_CONTENT_TYPE] = "content_type",     [FAIL_MALFORMED] = "malformed_json",
    [FAIL_NOT_SCALAR] = "not_scalar",         [FAIL_VALUE_LARGE] = "value_too_large",
    [FAIL_BAD_TOKEN] = "bad_token",           [FAIL_INTERNAL] = "internal",
    [FAIL_BACKEND_DOWN] = "backend_down",     [FAIL_BACKEND_TIMEOUT] = "backend_timeout",
    [FAIL_BACKEND_CLOSED] = "backend_closed", [FAIL_BAD_RESPONSE] = "bad_response",
};

/* Upper bounds of the latency histogram, in microseconds. */
static const uint64_t lat_bounds[] = {250,    500,     1000,    2500,    5000,
                                      10000,  25000,   50000,   100000,  250000,
                                      500000, 1000000, 2500000, 5000000, 10000000};
#define LAT_N (sizeof(lat_bounds) / sizeof(lat_bounds[0]))

/* Counters of a proxy, handed on to its successor at a reload. Per-route
 * counters are kept by route name, so a route keeps its series. */
struct http_stats {
    char name[CONF_NAME_MAX];
    atomic_int refs;
    atomic_uint_fast64_t open, total, refused;
    char route[ROUTE_SLOTS][CONF_NAME_MAX]; /* slot 0: "-", no route */
    size_t n_routes;
    atomic_uint_fast64_t requests[ROUTE_SLOTS][6]; /* by status class: [1..5], [0] other */
    atomic_uint_fast64_t encrypted[ROUTE_SLOTS], decrypted[ROUTE_SLOTS];
    atomic_uint_fast64_t failures[FAIL_COUNT];
    atomic_uint_fast64_t lat[LAT_N + 1], lat_sum_us, lat_count;
};

struct http_worker {
    struct loop *loop;
    struct list sessions;
    atomic_size_t n;
    size_t index;
    struct list idle; /* struct idle_conn, oldest first */
    size_t n_idle;
};

/* A kept-alive backend connection between two sessions: any event on it
 * (the backend closed it, or spoke out of turn) or its timer ends it. */
struct idle_conn {
    struct list link;
    struct http_worker *w;
    struct http_proxy *p; /* a reference: only its sessions take the connection */
    struct io io;
    struct timer timer;
};

struct http_env {
    struct http_worker *w;
    size_t n;
    atomic_bool draining;
};

/* A route ready to serve: compiled rules, one keyset per worker. */
struct route_rt {
    struct field_rules *rules;
    struct field_keyset **ks; /* env->n of them, or NULL without keys */
    size_t slot;              /* in stats */
};

struct http_proxy {
    struct http_proxy_conf conf;
    struct http_env *env;
    struct http_stats *stats;
    struct route_rt *routes;
    atomic_int refs;
    int listen_fd;
    struct io listen_io;
    struct task more;
    unsigned next;
};

enum sess_state {
    S_IDLE, /* waiting for a request */
    S_HEAD,
    S_BODY,
    S_BACKEND, /* connecting, sending, reading the response */
    S_WRITE,   /* the response (or an error) to the client */
    S_CLOSED,
};

struct hbuf {
    char *data;
    size_t len, cap;
};

/* What a socket's edges said: data (or EOF) to read, room to write, and a
 * FIN seen (then a short read does not mean drained: read until EOF). */
struct ready {
    bool readable, writable, hup;
};

struct sess {
    struct list link;
    struct http_worker *w;
    struct http_proxy *p;
    uint64_t id;
    enum sess_state st;
    struct io cio, bio;  /* client, backend; fd -1 when closed */
    struct ready cr, br; /* client, backend */
    struct timer timer;
    struct task work, reap;
    struct dial dial;
    bool dialing;
    struct hbuf in, rin; /* client bytes, backend bytes */
    struct http_msg req, resp;
    struct strbuf head; /* the head being sent (and an error's body) */
    struct strbuf body; /* a rewritten body */
    const char *obody;  /* the body sent after head */
    size_t olen, osent; /* head.len + body length; sent so far */
    int route;          /* index in p->routes, -1 none */
    bool close_after, is_head, reused, retried, strip_encoding;
    bool b_idle;    /* the backend connection is between two exchanges */
    uint64_t t_req; /* us, when the request was whole */
    char client_ip[INET6_ADDRSTRLEN];
    uint64_t t_admit; /* us, when it was accepted (airlock ctl conns) */
};

static void sess_step(struct sess *s);
static void sess_close(struct sess *s);

static void
ready_update(struct ready *r, uint32_t events)
{
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        r->readable = true;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        r->hup = true;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        r->writable = true;
}

static uint64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- stats */

static struct http_stats *
stats_new(const char *name)
{
    struct http_stats *st = calloc(1, sizeof(*st));

    if (st == NULL)
        return NULL;
    snprintf(st->name, sizeof(st->name), "%s", name);
    strcpy(st->route[0], "-");
    st->n_routes = 1;
    atomic_init(&st->refs, 1);
    return st;
}

static void
stats_unref(struct http_stats *st)
{
    if (st != NULL && atomic_fetch_sub(&st->refs, 1) == 1)
        free(st);
}

/* The slot of route name, added when new; the last slot is shared when the
 * names seen over many reloads outnumber the slots. Main loop only. */
static size_t
stats_slot(struct http_stats *st, const char *name)
{
    for (size_t i = 0; i < st->n_routes; i++)
        if (strcmp(st->route[i], name) == 0)
            return i;
    if (st->n_routes == ROUTE_SLOTS)
        return ROUTE_SLOTS - 1;
    snprintf(st->route[st->n_routes], CONF_NAME_MAX, "%s", name);
    return st->n_routes++;
}

static void
count(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* ---- env */

struct http_env *
http_env_new(struct loop **loops, size_t n)
{
    struct http_env *env = calloc(1, sizeof(*env));

    if (env == NULL || (env->w = calloc(n, sizeof(*env->w))) == NULL) {
        free(env);
        return NULL;
    }
    env->n = n;
    for (size_t i = 0; i < n; i++) {
        env->w[i].loop = loops[i];
        env->w[i].index = i;
        list_init(&env->w[i].sessions);
        list_init(&env->w[i].idle);
    }
    return env;
}

size_t
http_env_open(const struct http_env *env)
{
    size_t n = 0;

    for (size_t i = 0; env != NULL && i < env->n; i++)
        n += atomic_load(&env->w[i].n);
    return n;
}

size_t
http_env_conns(struct http_env *env, size_t i, http_conn_fn each, void *arg)
{
    struct http_worker *w;
    uint64_t now = now_us();
    size_t n = 0;

    if (env == NULL || i >= env->n)
        return 0;
    w = &env->w[i];
    for (struct list *it = w->sessions.next; it != &w->sessions; it = it->next, n++) {
        const struct sess *s = list_entry(it, struct sess, link);
        each(arg, s->p->conf.name, s->client_ip, &s->p->conf.backend, (now - s->t_admit) / 1000);
    }
    return n;
}

static void
drain_posted(void *arg)
{
    struct http_worker *w = arg;
    struct list *pos, *tmp;

    list_for_each_safe(pos, tmp, &w->sessions) {
        struct sess *s = list_entry(pos, struct sess, link);
        if (s->st == S_IDLE)
            sess_close(s);
        else
            s->close_after = true;
    }
}

void
http_env_drain(struct http_env *env)
{
    if (env == NULL)
        return;
    atomic_store(&env->draining, true);
    for (size_t i = 0; i < env->n; i++)
        if (loop_post(env->w[i].loop, drain_posted, &env->w[i]) != 0)
            log_warnx("http: cannot post the drain to loop %zu", i);
}

static void close_posted(void *arg);
static void idle_close(struct idle_conn *ic);

void
http_env_close_all(struct http_env *env, size_t i)
{
    if (env != NULL && i < env->n)
        close_posted(&env->w[i]);
}

static void
close_posted(void *arg)
{
    struct http_worker *w = arg;
    struct list *pos, *tmp;

    list_for_each_safe(pos, tmp, &w->sessions) {
        sess_close(list_entry(pos, struct sess, link));
    }
    while (!list_empty(&w->idle))
        idle_close(list_entry(w->idle.next, struct idle_conn, link));
}

void
http_env_post_close(struct http_env *env, size_t i)
{
    if (env != NULL && i < env->n && loop_post(env->w[i].loop, close_posted, &env->w[i]) != 0)
        log_warnx("http: cannot post the close to loop %zu", i);
}

void
http_env_free(struct http_env *env)
{
    if (env == NULL)
        return;
    free(env->w);
    free(env);
}

/* ---- routes: their rules and keys (src/field/, not in the static build) */

#ifdef AIRLOCK_WITH_FIELD
/* Compiles route i's rules and loads its keyset once per worker. */
static int
route_load(struct http_proxy *p, size_t i, char *msg)
{
    const struct http_route_conf *rc = &p->conf.routes[i];
    struct route_rt *r = &p->routes[i];
    const char *file = rc->keyset[0] != '\0' ? rc->keyset : p->conf.keyset;
    struct field_rule_spec specs[HTTP_RULES_MAX];
    char err[FIELD_ERR_MAX];
    int rc_;

    for (size_t k = 0; k < rc->n_rules; k++)
        specs[k] = (struct field_rule_spec){rc->rules[k].path, rc->rules[k].deterministic};
    if (rc->n_rules > 0 && (rc_ = field_rules_compile(specs, rc->n_rules, &r->rules, err)) != 0) {
        snprintf(msg, HTTP_MSG_MAX, "route %s: %s", rc->name, err);
        return rc_;
    }
    if (rc->n_rules == 0 && !rc->decrypt)
        return 0;
    if ((r->ks = calloc(p->env->n, sizeof(*r->ks))) == NULL)
        return -ENOMEM;
    for (size_t k = 0; k < p->env->n; k++)
        if ((rc_ = field_keyset_load(file, &r->ks[k], err)) != 0) {
            snprintf(msg, HTTP_MSG_MAX, "route %s: %s", rc->name, err);
            return rc_;
        }
    return 0;
}

static void
route_free(struct http_proxy *p, struct route_rt *r)
{
    field_rules_free(&r->rules);
    for (size_t k = 0; r->ks != NULL && k < p->env->n; k++)
        field_keyset_free(&r->ks[k]);
    free(r->ks);
}

static enum http_fail
field_fail(enum field_result r)
{
    switch (r) {
    case FIELD_MALFORMED:
        return FAIL_MALFORMED;
    case FIELD_NOT_SCALAR:
        return FAIL_NOT_SCALAR;
    case FIELD_TOO_LARGE:
        return FAIL_VALUE_LARGE;
    case FIELD_BAD_TOKEN:
        return FAIL_BAD_TOKEN;
    default:
        return FAIL_INTERNAL;
    }
}

/* Rewrites the body in[0..len) of s's route into s->body: its fields
 * encrypted (a request) or its tokens opened (a response). Returns 200, or
 * the status of the refusal with *why and err. */
static int
route_rewrite(struct sess *s, bool encrypt, const char *in, size_t len, enum http_fail *why,
              char *err)
{
    struct route_rt *r = &s->p->routes[s->route];
    struct field_keyset *ks = r->ks[s->w->index];
    unsigned n = 0;
    enum field_result fr = encrypt ? field_encrypt_body(r->rules, ks, in, len, &s->body, &n, err)
                                   : field_decrypt_body(ks, in, len, &s->body, &n, err);

    if (fr != FIELD_OK) {
        *why = field_fail(fr);
        return field_status(fr);
    }
    count(encrypt ? &s->p->stats->encrypted[r->slot] : &s->p->stats->decrypted[r->slot], n);
    return 200;
}
#else
static int
route_load(struct http_proxy *p, size_t i, char *msg)
{
    const struct http_route_conf *rc = &p->conf.routes[i];

    if (rc->n_rules == 0 && !rc->decrypt)
        return 0;
    snprintf(msg, HTTP_MSG_MAX, "route %s: field encryption is not in this build", rc->name);
    return -ENOTSUP;
}

static void
route_free(struct http_proxy *p, struct route_rt *r)
{
    (void)p, (void)r;
}

/* Never called: routes with rules do not load (route_load()). */
static int
route_rewrite(struct sess *s, bool encrypt, const char *in, size_t len, enum http_fail *why,
              char *err)
{
    (void)s, (void)encrypt, (void)in, (void)len;
    *why = FAIL_INTERNAL;
    snprintf(err, FIELD_ERR_MAX, "field encryption is not in this build");
    return 500;
}
#endif

/* ---- the proxy */

static void
proxy_ref(struct http_proxy *p)
{
    atomic_fetch_add(&p->refs, 1);
}

static void
proxy_free(struct http_proxy *p)
{
    for (size_t i = 0; p->routes != NULL && i < p->conf.n_routes; i++)
        route_free(p, &p->routes[i]);
    free(p->routes);
    if (p->listen_fd >= 0)
        close(p->listen_fd);
    stats_unref(p->stats);
    http_proxy_conf_free(&p->conf);
    free(p);
}

void
http_proxy_unref(struct http_proxy *p)
{
    if (p != NULL && atomic_fetch_sub(&p->refs, 1) == 1)
        proxy_free(p);
}

const struct http_proxy_conf *
http_proxy_conf(const struct http_proxy *p)
{
    return &p->conf;
}

static void accept_some(struct http_proxy *p);

static void
accept_event(struct io *io, uint32_t events)
{
    (void)events;
    accept_some(io->data);
}

static void
accept_more(struct task *t)
{
    accept_some(t->data);
}

struct http_proxy *
http_proxy_new(struct http_env *env, const struct http_proxy_conf *pc, struct http_proxy *prev,
               int *err, char *msg)
{
    struct http_proxy *p = calloc(1, sizeof(*p));
    int rc = -ENOMEM;

    snprintf(msg, HTTP_MSG_MAX, "out of memory");
    if (p == NULL)
        goto fail;
    p->conf = *pc;
    p->conf.routes = NULL;
    p->conf.n_routes = 0;
    p->listen_fd = -1;
    p->env = env;
    atomic_init(&p->refs, 1);
    if (pc->n_routes > 0) {
        if ((p->conf.routes = malloc(pc->n_routes * sizeof(*pc->routes))) == NULL)
            goto fail;
        memcpy(p->conf.routes, pc->routes, pc->n_routes * sizeof(*pc->routes));
        p->conf.n_routes = pc->n_routes;
    }
    if (prev != NULL) {
        p->stats = prev->stats;
        atomic_fetch_add(&p->stats->refs, 1);
    } else if ((p->stats = stats_new(pc->name)) == NULL) {
        goto fail;
    }
    if ((p->routes = calloc(pc->n_routes + 1, sizeof(*p->routes))) == NULL)
        goto fail;
    for (size_t i = 0; i < pc->n_routes; i++) {
        p->routes[i].slot = stats_slot(p->stats, pc->routes[i].name);
        if ((rc = route_load(p, i, msg)) != 0)
            goto fail;
    }
    if (prev != NULL && prev->listen_fd >= 0 && endpoint_equal(&prev->conf.listen, &pc->listen)) {
        io_stop(env->w[0].loop, &prev->listen_io);
        loop_cancel(env->w[0].loop, &prev->more);
        p->listen_fd = prev->listen_fd;
        prev->listen_fd = -1;
    } else if ((p->listen_fd = transport_listen(&pc->listen, LISTEN_BACKLOG)) < 0) {
        rc = p->listen_fd;
        p->listen_fd = -1;
        snprintf(msg, HTTP_MSG_MAX, "cannot listen: %s", strerror(-rc));
        goto fail;
    }
    if ((rc = io_start(env->w[0].loop, &p->listen_io, p->listen_fd, EPOLLIN, accept_event, p)) !=
        0) {
        snprintf(msg, HTTP_MSG_MAX, "cannot accept: %s", strerror(-rc));
        goto fail;
    }
    accept_some(p); /* clients that queued while the listener changed hands */
    return p;

fail:
    *err = rc;
    if (p != NULL)
        proxy_free(p);
    return NULL;
}

void
http_proxy_stop(struct http_proxy *p)
{
    if (p == NULL || p->listen_fd < 0)
        return;
    io_stop(p->env->w[0].loop, &p->listen_io);
    loop_cancel(p->env->w[0].loop, &p->more);
    close(p->listen_fd);
    p->listen_fd = -1;
    if (p->conf.listen.kind == EP_UNIX && p->conf.listen.path[0] != '\0')
        unlink(p->conf.listen.path);
}

/* ---- buffers */

/* Makes room for at least want more bytes, the buffer at most max long.
 * Returns the room (0 when at max), or -ENOMEM. */
static ssize_t
hbuf_room(struct hbuf *b, size_t want, size_t max)
{
    if (b->len >= max)
        return 0;
    if (want > max - b->len)
        want = max - b->len;
    if (b->cap - b->len < want) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < want)
            cap *= 2;
        char *nd = realloc(b->data, cap);
        if (nd == NULL)
            return -ENOMEM;
        b->data = nd;
        b->cap = cap;
    }
    return (ssize_t)(b->cap - b->len < max - b->len ? b->cap - b->len : max - b->len);
}

/* Drops the first n bytes. */
static void
hbuf_drop(struct hbuf *b, size_t n)
{
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

static void
hbuf_free(struct hbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* ---- idle backend connections, per worker */

static void
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
static bool
idle_put(struct sess *s)
{
    struct http_worker *w = s->w;
    struct idle_conn *ic = calloc(1, sizeof(*ic));

    if (ic == NULL)
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

/* ---- closing */

static void
sock_close(struct sess *s, struct io *io)
{
    if (io->fd < 0)
        return;
    io_stop(s->w->loop, io);
    close(io->fd);
    io->fd = -1;
}

static void
backend_close(struct sess *s)
{
    if (s->dialing) {
        dial_cancel(&s->dial);
        s->dialing = false;
    }
    sock_close(s, &s->bio);
    s->br = (struct ready){0};
}

static void
sess_reap(struct task *t)
{
    struct sess *s = t->data;

    if (task_queued(&s->work)) {
        loop_defer(s->w->loop, &s->reap, sess_reap, s);
        return;
    }
    hbuf_free(&s->in);
    hbuf_free(&s->rin);
    strbuf_free(&s->head);
    strbuf_free(&s->body);
    http_proxy_unref(s->p);
    free(s);
}

static void
sess_close(struct sess *s)
{
    if (s->st == S_CLOSED)
        return;
    s->st = S_CLOSED;
    /* a backend connection between two exchanges outlives its client */
    if (!(s->b_idle && s->bio.fd >= 0 && !s->br.hup && !s->br.readable && idle_put(s)))
        backend_close(s);
    sock_close(s, &s->cio);
    timer_stop(s->w->loop, &s->timer);
    loop_cancel(s->w->loop, &s->work);
    list_del(&s->link);
    atomic_fetch_sub(&s->w->n, 1);
    atomic_fetch_sub_explicit(&s->p->stats->open, 1, memory_order_relaxed);
    log_debug("http proxy=%s conn=%llu closed", s->p->conf.name, (unsigned long long)s->id);
    loop_defer(s->w->loop, &s->reap, sess_reap, s);
}

/* ---- timers */

static void reply_error(struct sess *s, int status, enum http_fail why, const char *text);

static void
sess_timeout(struct timer *t)
{
    struct sess *s = t->data;

    switch (s->st) {
    case S_IDLE:
        sess_close(s);
        return;
    case S_HEAD:
        s->close_after = true;
        reply_error(s, 408, FAIL_HEADER_TIMEOUT, "the request head did not come in time");
        break;
    case S_BODY:
        s->close_after = true;
        reply_error(s, 408, FAIL_BODY_TIMEOUT, "the request body did not come in time");
        break;
    case S_BACKEND:
        backend_close(s);
        reply_error(s, 504, FAIL_BACKEND_TIMEOUT, "the backend did not answer in time");
        break;
    case S_WRITE: /* the client does not read its response */
    case S_CLOSED:
        sess_close(s);
        return;
    }
    sess_step(s);
}

static void
arm(struct sess *s, unsigned ms)
{
    if (ms > 0)
        timer_start(s->w->loop, &s->timer, ms, sess_timeout, s);
    else
        timer_stop(s->w->loop, &s->timer);
}

/* ---- answers */

static void
observe(struct sess *s, int status)
{
    struct http_stats *st = s->p->stats;
    size_t slot = s->route >= 0 ? s->p->routes[s->route].slot : 0;
    int cls = status >= 100 && status < 600 ? status / 100 : 0;

    count(&st->requests[slot][cls], 1);
    if (s->t_req == 0)
        return;
    uint64_t us = now_us() - s->t_req;
    size_t b = 0;
    while (b < LAT_N && us > lat_bounds[b])
        b++;
    count(&st->lat[b], 1);
    count(&st->lat_sum_us, us);
    count(&st->lat_count, 1);
}

/* Queues head (and body) for the client. */
static void
send_client(struct sess *s, const char *body, size_t len)
{
    s->obody = body;
    s->olen = s->head.len + len;
    s->osent = 0;
    s->st = S_WRITE;
    arm(s, s->p->conf.idle_timeout_ms);
}

/* An answer of the proxy's own: a JSON body naming why. A request whose
 * body was not read whole, or whose framing is in doubt, closes after it. */
static void
reply_error(struct sess *s, int status, enum http_fail why, const char *text)
{
    backend_close(s);
    strbuf_free(&s->head);
    strbuf_free(&s->body);
    count(&s->p->stats->failures[why], 1);
    if (s->st != S_BACKEND && s->st != S_WRITE && !s->req.done)
        s->close_after = true;
    strbuf_printf(&s->body, "{\"error\":\"%s\",\"message\":\"%s\"}\n", fail_names[why], text);
    strbuf_printf(&s->head,
                  "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: "
                  "%zu\r\nCache-Control: no-store\r\n%s\r\n",
                  status, http_status_str((enum http_status)status), s->body.len,
                  s->close_after ? "Connection: close\r\n" : "");
    log_info("http proxy=%s conn=%llu status=%d reason=%s", s->p->conf.name,
             (unsigned long long)s->id, status, fail_names[why]);
    observe(s, status);
    send_client(s, s->body.data, s->body.len);
}

/* ---- the request */

/* Decodes %XX, drops empty and "." segments and resolves ".." in the path
 * of url[0..len) (up to '?' or '#') into out (size HTTP_PREFIX_MAX * 4):
 * routes match what the backend will see, however the client spells it.
 * Returns false when the path does not fit, has a bad escape, or holds a
 * NUL, a backslash or an encoded '/' (which backends read differently). */
static bool
path_normalize(const char *url, size_t len, char *out, size_t size)
{
    struct http_parser_url u;
    size_t o = 0;

    http_parser_url_init(&u);
    if (http_parser_parse_url(url, len, 0, &u) != 0 || !(u.field_set & (1 << UF_PATH)))
        return false;
    const char *p = url + u.field_data[UF_PATH].off;
    size_t n = u.field_data[UF_PATH].len;
    for (size_t i = 0; i < n;) {
        /* one segment: from a '/' to the next */
        size_t seg = o;
        if (o + 1 >= size)
            return false;
        out[o++] = '/';
        while (i < n && p[i] == '/')
            i++;
        while (i < n && p[i] != '/') {
            char c = p[i++];
            if (c == '%') {
                if (i + 1 >= n || !isxdigit((unsigned char)p[i]) ||
                    !isxdigit((unsigned char)p[i + 1]))
                    return false;
                char hex[3] = {p[i], p[i + 1], 0};
                c = (char)strtol(hex, NULL, 16);
                i += 2;
                /* an encoded separator is a segment to one backend and two
                 * to another: refused rather than guessed */
                if (c == '\0' || c == '/' || c == '\\')
                    return false;
            } else if (c == '\\') {
                return false;
            }
            if (o + 1 >= size)
                return false;
            out[o++] = c;
        }
        size_t sl = o - seg - 1;
        if (sl == 1 && out[seg + 1] == '.') {
            o = seg;
        } else if (sl == 2 && out[seg + 1] == '.' && out[seg + 2] == '.') {
            o = seg;
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
        }
    }
    if (o == 0 || (n > 0 && p[n - 1] == '/'))
        out[o++] = '/';
    out[o] = '\0';
    return true;
}

static unsigned
method_bit(unsigned m)
{
    switch (m) {
    case HTTP_GET:
        return HTTP_RM_GET;
    case HTTP_HEAD:
        return HTTP_RM_HEAD;
    case HTTP_POST:
        return HTTP_RM_POST;
    case HTTP_PUT:
        return HTTP_RM_PUT;
    case HTTP_PATCH:
        return HTTP_RM_PATCH;
    case HTTP_DELETE:
        return HTTP_RM_DELETE;
    case HTTP_OPTIONS:
        return HTTP_RM_OPTIONS;
    default:
        return 0;
    }
}

/* Whether the media type in value[0..len) is type (parameters ignored). */
static bool
media_is(const char *value, size_t len, const char *type)
{
    size_t end = 0, t = strlen(type);

    while (end < len && value[end] != ';')
        end++;
    while (end > 0 && (value[end - 1] == ' ' || value[end - 1] == '\t'))
        end--;
    return end == t && strncasecmp(value, type, t) == 0;
}

/* The head is whole: the route, refusals that need no body, 100-continue. */
static void
on_request_head(struct sess *s)
{
    struct http_msg *m = &s->req;
    const struct http_proxy_conf *pc = &s->p->conf;
    char path[HTTP_PREFIX_MAX * 4];
    size_t vlen;
    const char *v;

    s->is_head = m->parser.method == HTTP_HEAD;
    if (!m->keep_alive)
        s->close_after = true;
    if (m->parser.method == HTTP_CONNECT || m->parser.upgrade) {
        s->close_after = true;
        reply_error(s, 501, FAIL_METHOD, "CONNECT and protocol upgrades are not proxied");
        return;
    }
    if (!path_normalize(s->in.data + m->url.off, m->url.len, path, sizeof(path))) {
        s->close_after = true;
        reply_error(s, 400, FAIL_BAD_REQUEST, "the request target has no valid path");
        return;
    }
    s->route = -1;
    for (size_t i = 0; i < pc->n_routes; i++) {
        const struct http_route_conf *rc = &pc->routes[i];
        if ((rc->methods == 0 || (rc->methods & method_bit(m->parser.method)) != 0) &&
            strncasecmp(path, rc->prefix, strlen(rc->prefix)) == 0) {
            s->route = (int)i;
            break;
        }
    }
    bool body =
        m->chunked || (m->parser.content_length != ULLONG_MAX && m->parser.content_length > 0);
    if (s->route >= 0) {
        const struct http_route_conf *rc = &pc->routes[s->route];
        s->strip_encoding = rc->decrypt;
        v = http_msg_header(m, "content-type", &vlen);
        if (body && rc->n_rules > 0 && (v == NULL || !media_is(v, vlen, rc->content_type))) {
            s->close_after = true;
            reply_error(s, 415, FAIL_CONTENT_TYPE,
                        "this route encrypts fields of JSON bodies: expected its content type");
            return;
        }
        v = http_msg_header(m, "content-encoding", &vlen);
        if (body && rc->n_rules > 0 && v != NULL && !http_list_has(v, vlen, "identity")) {
            s->close_after = true;
            reply_error(s, 415, FAIL_CONTENT_TYPE, "this route cannot read encoded bodies");
            return;
        }
    }
    v = http_msg_header(m, "expect", &vlen);
    if (v != NULL && body && m->parser.http_minor >= 1 && http_list_has(v, vlen, "100-continue")) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        /* nothing else is queued for the client while a request is read */
        if (write(s->cio.fd, cont, sizeof(cont) - 1) != (ssize_t)sizeof(cont) - 1) {
            sess_close(s);
            return;
        }
    }
    s->st = S_BODY;
    arm(s, pc->body_timeout_ms);
}

static bool
skip_request_header(const struct http_msg *m, const char *name, size_t len, bool strip_encoding)
{
    static const char *const own[] = {"content-length", "expect", "x-forwarded-for"};

    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if (strlen(own[i]) == len && strncasecmp(own[i], name, len) == 0)
            return true;
    if (strip_encoding && len == 15 && strncasecmp(name, "accept-encoding", len) == 0)
        return true;
    return http_msg_hop(m, name, len);
}

static void backend_start(struct sess *s);

/* The request is whole: its rules, then the head for the backend. */
static void
on_request(struct sess *s)
{
    struct http_msg *m = &s->req;
    const char *body = s->in.data + m->body.off;
    size_t blen = m->body.len, xlen;

    s->t_req = now_us();
    if (atomic_load(&s->p->env->draining))
        s->close_after = true;
    if (s->route >= 0 && blen > 0 && s->p->routes[s->route].rules != NULL) {
        char err[FIELD_ERR_MAX];
        enum http_fail why;
        int status = route_rewrite(s, true, body, blen, &why, err);
        if (status != 200) {
            reply_error(s, status, why, err);
            return;
        }
        body = s->body.data;
        blen = s->body.len;
    }
    strbuf_printf(&s->head, "%s %.*s HTTP/1.1\r\n", http_method_str(m->parser.method),
                  (int)m->url.len, s->in.data + m->url.off);
    for (size_t i = 0; i < m->n_hdr; i++) {
        const struct http_hdr *h = &m->hdr[i];
        if (!skip_request_header(m, s->in.data + h->name.off, h->name.len, s->strip_encoding))
            strbuf_printf(&s->head, "%.*s: %.*s\r\n", (int)h->name.len, s->in.data + h->name.off,
                          (int)h->value.len, s->in.data + h->value.off);
    }
    const char *xff = http_msg_header(m, "x-forwarded-for", &xlen);
    if (xff != NULL || s->client_ip[0] != '\0')
        strbuf_printf(&s->head, "X-Forwarded-For: %.*s%s%s\r\n", (int)xlen, xff ? xff : "",
                      xff && s->client_ip[0] ? ", " : "", s->client_ip);
    if (blen > 0 || m->chunked || m->parser.content_length != ULLONG_MAX)
        strbuf_printf(&s->head, "Content-Length: %zu\r\n", blen);
    strbuf_printf(&s->head, "\r\n");
    if (s->head.failed || s->body.failed) {
        reply_error(s, 500, FAIL_INTERNAL, "out of memory");
        return;
    }
    s->obody = body;
    s->olen = s->head.len + blen;
    s->osent = 0;
    s->st = S_BACKEND;
    arm(s, s->p->conf.response_timeout_ms);
    backend_start(s);
}

static void
request_fault(struct sess *s)
{
    s->close_after = true;
    switch (s->req.fault) {
    case HTTP_FAULT_HEAD_LARGE:
    case HTTP_FAULT_HEADERS:
        reply_error(s, 431, FAIL_HEADER_LARGE, "the request head is too large");
        break;
    case HTTP_FAULT_BODY_LARGE:
        reply_error(s, 413, FAIL_BODY_LARGE, "the request body is too large");
        break;
    default:
        reply_error(s, 400, FAIL_BAD_REQUEST, "malformed HTTP request");
        break;
    }
}

/* Parses what the client sent, or reads more. Returns true on progress. */
static bool
read_request(struct sess *s)
{
    const struct http_proxy_conf *pc = &s->p->conf;

    if (s->in.len > s->req.fed) {
        if (s->st == S_IDLE) {
            s->st = S_HEAD;
            arm(s, pc->header_timeout_ms);
        }
        switch (http_msg_feed(&s->req, s->in.data, s->in.len)) {
        case HTTP_MSG_AGAIN:
            http_msg_squeeze(&s->req, s->in.data, &s->in.len);
            break;
        case HTTP_MSG_HEAD:
            on_request_head(s);
            break;
        case HTTP_MSG_DONE:
            if (s->st == S_HEAD || s->st == S_BODY)
                on_request(s);
            break;
        case HTTP_MSG_INVALID:
            request_fault(s);
            break;
        }
        return true;
    }
    if (!s->cr.readable)
        return false;
    ssize_t room = hbuf_room(&s->in, READ_CHUNK, pc->max_header + pc->max_body + READ_CHUNK);
    if (room <= 0) {
        if (room < 0) {
            sess_close(s);
            return false;
        }
        s->req.fault = HTTP_FAULT_BODY_LARGE;
        request_fault(s);
        return true;
    }
    ssize_t n = read(s->cio.fd, s->in.data + s->in.len, (size_t)room);
    if (n > 0) {
        /* a short read drained the socket: the next data brings a new edge
         * (not after a FIN, whose edge has been consumed) */
        if ((size_t)n < (size_t)room && !s->cr.hup)
            s->cr.readable = false;
        s->in.len += (size_t)n;
        return true;
    }
    if (n < 0 && errno == EAGAIN) {
        s->cr.readable = false;
        return false;
    }
    if (n == 0 && s->st != S_IDLE)
        log_info("http proxy=%s conn=%llu client closed inside a request", pc->name,
                 (unsigned long long)s->id);
    sess_close(s);
    return false;
}

/* ---- the backend */

static void
backend_event(struct io *io, uint32_t events)
{
    struct sess *s = io->data;

    ready_update(&s->br, events);
    sess_step(s);
}

static void
dial_done(void *arg, int fd, enum dial_result why)
{
    struct sess *s = arg;
    int rc;

    s->dialing = false;
    if (fd < 0) {
        char t[ENDPOINT_TEXT_MAX];
        endpoint_format(&s->p->conf.backend, t, sizeof(t));
        log_warnx("http proxy=%s conn=%llu backend %s: %s (%s)", s->p->conf.name,
                  (unsigned long long)s->id, t, dial_result_name(why), strerror(-fd));
        if (why == DIAL_TIMEOUT)
            reply_error(s, 504, FAIL_BACKEND_TIMEOUT, "the backend did not accept in time");
        else
            reply_error(s, 502, FAIL_BACKEND_DOWN, "the backend is unreachable");
        sess_step(s);
        return;
    }
    transport_tune(fd, s->p->conf.backend.kind, true);
    if ((rc = io_start(s->w->loop, &s->bio, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, backend_event,
                       s)) != 0) {
        close(fd);
        reply_error(s, 502, FAIL_BACKEND_DOWN, "cannot watch the backend socket");
    } else {
        s->br.writable = true;
    }
    sess_step(s);
}

/* Sends the request on the kept backend connection, or dials one. */
static void
backend_start(struct sess *s)
{
    s->rin.len = 0;
    http_msg_init(&s->resp, true, s->p->conf.max_header, HTTP_MSG_HEADERS_MAX,
                  s->p->conf.max_response);
    s->resp.skip_body = s->is_head;
    s->b_idle = false;
    if (s->bio.fd >= 0 && (s->br.hup || s->br.readable))
        backend_close(s); /* it closed, or spoke out of turn, while idle */
    if (s->bio.fd < 0 && !s->retried) {
        int fd = idle_take(s);
        if (fd >= 0 && io_start(s->w->loop, &s->bio, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP,
                                backend_event, s) == 0)
            s->br = (struct ready){.writable = true};
        else if (fd >= 0)
            close(fd);
    }
    s->reused = s->bio.fd >= 0;
    if (s->reused)
        return;
    s->dialing = true;
    dial_start(&s->dial, s->w->loop, &s->p->conf.backend, s->p->conf.connect_timeout_ms, NULL,
               dial_done, s);
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

/* Writes head + body from osent on; returns 0, -EAGAIN or -errno. */
static int
write_out(struct sess *s, int fd)
{
    while (s->osent < s->olen) {
        struct iovec iov[2];
        int n = 0;
        if (s->osent < s->head.len)
            iov[n++] = (struct iovec){s->head.data + s->osent, s->head.len - s->osent};
        size_t boff = s->osent > s->head.len ? s->osent - s->head.len : 0;
        if (s->olen - s->head.len > boff)
            iov[n++] = (struct iovec){(void *)(s->obody + boff), s->olen - s->head.len - boff};
        ssize_t w = writev(fd, iov, n);
        if (w < 0)
            return errno == EINTR ? 0 : -errno;
        s->osent += (size_t)w;
    }
    return 0;
}

static void on_response(struct sess *s);

static bool
backend_step(struct sess *s)
{
    const struct http_proxy_conf *pc = &s->p->conf;

    if (s->dialing || s->bio.fd < 0)
        return false;
    if (s->osent < s->olen) {
        if (!s->br.writable)
            return false;
        int rc = write_out(s, s->bio.fd);
        if (rc == -EAGAIN) {
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
    ssize_t room = hbuf_room(&s->rin, READ_CHUNK, pc->max_header + pc->max_response + READ_CHUNK);
    if (room < 0) {
        backend_failed(s, "out of memory");
        return true;
    }
    if (room == 0) {
        s->close_after = true;
        reply_error(s, 502, FAIL_BAD_RESPONSE, "the backend's response is too large");
        return true;
    }
    ssize_t n = read(s->bio.fd, s->rin.data + s->rin.len, (size_t)room);
    if (n > 0) {
        if ((size_t)n < (size_t)room && !s->br.hup) /* drained, as for the client */
            s->br.readable = false;
        s->rin.len += (size_t)n;
        return true;
    }
    if (n < 0 && errno == EAGAIN) {
        s->br.readable = false;
        return false;
    }
    if (n == 0 && http_msg_eof(&s->resp, s->rin.data, s->rin.len) == HTTP_MSG_DONE) {
        backend_close(s); /* a response that ends with the connection */
        on_response(s);
        return true;
    }
    backend_failed(s, n == 0 ? "closed" : strerror(errno));
    return true;
}

static bool
skip_response_header(const struct http_msg *m, const char *name, size_t len, bool is_head)
{
    if (!is_head && len == 14 && strncasecmp(name, "content-length", len) == 0)
        return true;
    return http_msg_hop(m, name, len);
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
        http_msg_init(m, true, s->p->conf.max_header, HTTP_MSG_HEADERS_MAX,
                      s->p->conf.max_response);
        m->skip_body = s->is_head;
        return;
    }
    if (!m->keep_alive || s->rin.len > m->end)
        backend_close(s); /* bytes after the response: not a connection to reuse */
    strbuf_free(&s->body);
    const char *ct = http_msg_header(m, "content-type", &vlen);
    if (s->route >= 0 && s->p->conf.routes[s->route].decrypt && blen > 0 && ct != NULL &&
        media_is(ct, vlen, "application/json")) {
        char err[FIELD_ERR_MAX];
        enum http_fail why;
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
    strbuf_free(&s->head);
    strbuf_printf(&s->head, "HTTP/1.1 %d %s\r\n", status,
                  http_status_str((enum http_status)status));
    for (size_t i = 0; i < m->n_hdr; i++) {
        const struct http_hdr *h = &m->hdr[i];
        if (!skip_response_header(m, s->rin.data + h->name.off, h->name.len, s->is_head))
            strbuf_printf(&s->head, "%.*s: %.*s\r\n", (int)h->name.len, s->rin.data + h->name.off,
                          (int)h->value.len, s->rin.data + h->value.off);
    }
    if (!s->is_head && status != 204 && status != 304)
        strbuf_printf(&s->head, "Content-Length: %zu\r\n", blen);
    if (s->close_after)
        strbuf_printf(&s->head, "Connection: close\r\n");
    else if (s->req.parser.http_minor == 0)
        strbuf_printf(&s->head, "Connection: keep-alive\r\n");
    strbuf_printf(&s->head, "\r\n");
    if (s->head.failed || s->body.failed) {
        reply_error(s, 500, FAIL_INTERNAL, "out of memory");
        return;
    }
    observe(s, status);
    send_client(s, body, s->is_head || status == 204 || status == 304 ? 0 : blen);
}

/* ---- the client's side */

/* The exchange is over: the next request, or the end. */
static void
exchange_done(struct sess *s)
{
    const struct http_proxy_conf *pc = &s->p->conf;
    size_t used = s->req.done ? s->req.end : s->in.len;

    s->b_idle = true; /* a response was whole: what is left of the backend is reusable */
    if (s->close_after) {
        /* a FIN after the answer, not a reset that could discard it */
        shutdown(s->cio.fd, SHUT_WR);
        sess_close(s);
        return;
    }
    hbuf_drop(&s->in, used);
    strbuf_free(&s->head);
    strbuf_free(&s->body);
    s->rin.len = 0;
    s->route = -1;
    s->retried = s->is_head = s->strip_encoding = false;
    s->t_req = 0;
    http_msg_init(&s->req, false, pc->max_header, pc->max_headers, pc->max_body);
    s->st = S_IDLE;
    arm(s, pc->idle_timeout_ms);
}

static bool
write_client(struct sess *s)
{
    if (!s->cr.writable)
        return false;
    int rc = write_out(s, s->cio.fd);
    if (rc == -EAGAIN) {
        s->cr.writable = false;
        return false;
    }
    if (rc != 0) {
        sess_close(s);
        return false;
    }
    exchange_done(s);
    return true;
}

static void
sess_work(struct task *t)
{
    sess_step(t->data);
}

static void
sess_step(struct sess *s)
{
    for (int i = 0; i < STEP_BUDGET; i++) {
        bool more = false;
        switch (s->st) {
        case S_IDLE:
        case S_HEAD:
        case S_BODY:
            more = read_request(s);
            break;
        case S_BACKEND:
            more = backend_step(s);
            break;
        case S_WRITE:
            more = write_client(s);
            break;
        case S_CLOSED:
            return;
        }
        if (!more)
            return;
    }
    if (s->st != S_CLOSED)
        loop_defer(s->w->loop, &s->work, sess_work, s);
}

static void
client_event(struct io *io, uint32_t events)
{
    struct sess *s = io->data;

    ready_update(&s->cr, events);
    sess_step(s);
}

static void
sess_begin(void *arg)
{
    struct sess *s = arg;
    const struct http_proxy_conf *pc = &s->p->conf;

    list_add_tail(&s->w->sessions, &s->link);
    if (io_start(s->w->loop, &s->cio, s->cio.fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, client_event,
                 s) != 0) {
        close(s->cio.fd);
        s->cio.fd = -1;
        sess_close(s);
        return;
    }
    arm(s, pc->header_timeout_ms);
    sess_step(s);
}

static void
admit(struct http_proxy *p, int fd, const struct sockaddr_storage *peer)
{
    struct http_env *env = p->env;
    unsigned max = p->conf.max_connections;

    if (max > 0 && atomic_load(&p->stats->open) >= max) {
        close(fd);
        count(&p->stats->refused, 1);
        return;
    }
    struct sess *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        close(fd);
        count(&p->stats->refused, 1);
        return;
    }
    transport_tune(fd, p->conf.listen.kind, true);
    s->p = p;
    proxy_ref(p);
    s->id = (uint64_t)atomic_fetch_add(&p->stats->total, 1) + 1;
    s->cio.fd = fd;
    s->bio.fd = -1;
    s->route = -1;
    s->st = S_IDLE;
    s->t_admit = now_us();
    s->cr = (struct ready){.readable = true, .writable = true};
    if (peer->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, s->client_ip,
                  sizeof(s->client_ip));
    else if (peer->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)peer)->sin6_addr, s->client_ip,
                  sizeof(s->client_ip));
    http_msg_init(&s->req, false, p->conf.max_header, p->conf.max_headers, p->conf.max_body);
    /* the least busy worker; ties go round robin */
    struct http_worker *best = &env->w[p->next % env->n];
    for (size_t i = 1; i < env->n; i++) {
        struct http_worker *w = &env->w[(p->next + i) % env->n];
        if (atomic_load(&w->n) < atomic_load(&best->n))
            best = w;
    }
    p->next++;
    s->w = best;
    atomic_fetch_add(&best->n, 1);
    count(&p->stats->open, 1);
    if (loop_post(best->loop, sess_begin, s) != 0) {
        /* never started: undo by hand, the session is on no loop */
        atomic_fetch_sub(&best->n, 1);
        atomic_fetch_sub(&p->stats->open, 1);
        close(fd);
        http_proxy_unref(p);
        free(s);
    }
}

static void
accept_some(struct http_proxy *p)
{
    for (int i = 0; i < ACCEPT_BUDGET; i++) {
        struct sockaddr_storage peer = {0};
        socklen_t len = sizeof(peer);

        if (p->listen_fd < 0)
            return;
        int fd =
            accept4(p->listen_fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                log_warn("http proxy=%s accept", p->conf.name);
            return;
        }
        admit(p, fd, &peer);
    }
    loop_defer(p->env->w[0].loop, &p->more, accept_more, p);
}

/* ---- metrics */

void
http_proxy_render(struct http_proxy *const *proxies, size_t n, struct strbuf *out)
{
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } per_proxy[] = {
        {"airlock_http_connections_open", "gauge", "Client connections of HTTP proxies open now.",
         offsetof(struct http_stats, open)},
        {"airlock_http_connections_total", "counter", "Client connections accepted.",
         offsetof(struct http_stats, total)},
        {"airlock_http_connections_refused_total", "counter",
         "Client connections refused by max_connections.", offsetof(struct http_stats, refused)},
    };
    static const char *const cls[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};

    if (n == 0)
        return;
    for (size_t k = 0; k < sizeof(per_proxy) / sizeof(per_proxy[0]); k++) {
        strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", per_proxy[k].name, per_proxy[k].help,
                      per_proxy[k].name, per_proxy[k].type);
        for (size_t i = 0; i < n; i++) {
            struct http_stats *st = proxies[i]->stats;
            strbuf_printf(out, "%s{proxy=\"%s\"} %llu\n", per_proxy[k].name, st->name,
                          (unsigned long long)atomic_load(
                              (atomic_uint_fast64_t *)((char *)st + per_proxy[k].off)));
        }
    }
    strbuf_printf(out, "# HELP airlock_http_requests_total Requests answered, by route and "
                       "status class.\n# TYPE airlock_http_requests_total counter\n");
    for (size_t i = 0; i < n; i++) {
        struct http_stats *st = proxies[i]->stats;
        for (size_t r = 0; r < st->n_routes; r++)
            for (int c = 1; c < 6; c++)
                strbuf_printf(out,
                              "airlock_http_requests_total{proxy=\"%s\",route=\"%s\",code=\"%s\"} "
                              "%llu\n",
                              st->name, st->route[r], cls[c],
                              (unsigned long long)atomic_load(&st->requests[r][c]));
    }
    strbuf_printf(out, "# HELP airlock_http_fields_encrypted_total JSON values replaced by tokens "
                       "in request bodies.\n# TYPE airlock_http_fields_encrypted_total counter\n");
    for (size_t i = 0; i < n; i++) {
        struct http_stats *st = proxies[i]->stats;
        for (size_t r = 1; r < st->n_routes; r++)
            strbuf_printf(
                out, "airlock_http_fields_encrypted_total{proxy=\"%s\",route=\"%s\"} %llu\n",
                st->name, st->route[r], (unsigned long long)atomic_load(&st->encrypted[r]));
    }
    strbuf_printf(out, "# HELP airlock_http_fields_decrypted_total Tokens opened in response "
                       "bodies.\n# TYPE airlock_http_fields_decrypted_total counter\n");
    for (size_t i = 0; i < n; i++) {
        struct http_stats *st = proxies[i]->stats;
        for (size_t r = 1; r < st->n_routes; r++)
            strbuf_printf(
                out, "airlock_http_fields_decrypted_total{proxy=\"%s\",route=\"%s\"} %llu\n",
                st->name, st->route[r], (unsigned long long)atomic_load(&st->decrypted[r]));
    }
    strbuf_printf(out, "# HELP airlock_http_failures_total Requests the proxy answered itself or "
                       "refused, by reason.\n# TYPE airlock_http_failures_total counter\n");
    for (size_t i = 0; i < n; i++) {
        struct http_stats *st = proxies[i]->stats;
        for (int f = 0; f < FAIL_COUNT; f++)
            strbuf_printf(out, "airlock_http_failures_total{proxy=\"%s\",reason=\"%s\"} %llu\n",
                          st->name, fail_names[f],
                          (unsigned long long)atomic_load(&st->failures[f]));
    }
    strbuf_printf(out, "# HELP airlock_http_request_duration_seconds From a whole request to its "
                       "response queued for the client (rules and backend included).\n"
                       "# TYPE airlock_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < n; i++) {
        struct http_stats *st = proxies[i]->stats;
        uint64_t cum = 0;
        for (size_t b = 0; b <= LAT_N; b++) {
            cum += atomic_load(&st->lat[b]);
            if (b < LAT_N)
                strbuf_printf(
                    out,
                    "airlock_http_request_duration_seconds_bucket{proxy=\"%s\",le=\"%g\"} "
                    "%llu\n",
                    st->name, (double)lat_bounds[b] / 1e6, (unsigned long long)cum);
            else
                strbuf_printf(
                    out,
                    "airlock_http_request_duration_seconds_bucket{proxy=\"%s\",le=\"+Inf\"} "
                    "%llu\n",
                    st->name, (unsigned long long)cum);
        }
        strbuf_printf(out,
                      "airlock_http_request_duration_seconds_sum{proxy=\"%s\"} %.6f\n"
                      "airlock_http_request_duration_seconds_count{proxy=\"%s\"} %llu\n",
                      st->name, (double)atomic_load(&st->lat_sum_us) / 1e6, st->name,
                      (unsigned long long)atomic_load(&st->lat_count));
    }
}
