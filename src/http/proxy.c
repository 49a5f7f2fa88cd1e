/* proxy.c - the HTTP reverse proxy role (proxy.h): the workers, a proxy's
 * lifecycle (compile and load its routes, listen or adopt the listener of
 * the proxy it replaces, stop) and the hand-off of each accepted client to
 * the least busy worker, where session.c takes it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "http/proxy_int.h"
#include "net/transport.h"

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
    /* libhttp-parser's own bound on a head (80 KiB built in, one setting for the
     * process) above any max_header, so that max_header decides (431, not 400) */
    http_parser_set_max_header_size(2 * HTTP_MAX_HEADER_LIMIT);
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
        /* outbound: the upstream of its route, once it has one */
        const struct endpoint *to = s->p->conf.mode != HTTP_OUTBOUND ? &s->p->conf.backend
                                    : s->route >= 0 ? &s->p->conf.routes[s->route].upstream
                                                    : NULL;
        each(arg, s->p->conf.name, s->client_ip, to, (now - s->t_admit) / 1000);
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

/* ---- the proxy */

void
proxy_ref(struct http_proxy *p)
{
    atomic_fetch_add(&p->refs, 1);
}

static void
proxy_free(struct http_proxy *p)
{
    for (size_t i = 0; p->routes != NULL && i < p->conf.n_routes; i++)
        route_free(p, &p->routes[i]);
    outbound_free(p);
    http_proxy_unref(p->successor);
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

static void admit(struct acceptor *a, int fd, const struct sockaddr *peer, socklen_t len);
static bool accept_limit(struct acceptor *a, int err);

struct http_proxy *
http_proxy_new(struct http_env *env, const struct http_proxy_conf *pc, struct http_proxy *prev,
               struct http_proxy *donor, int *err, char *msg)
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
    if ((p->routes = calloc(pc->n_routes + 1, sizeof(*p->routes))) == NULL ||
        stats_unproven(p->stats, env) != 0)
        goto fail;
    for (size_t i = 0; i < pc->n_routes; i++) {
        p->routes[i].slot = stats_slot(p->stats, pc->routes[i].name);
        if ((rc = route_load(p, i, msg)) != 0)
            goto fail;
    }
    if ((rc = outbound_open(p, msg)) != 0)
        goto fail;
    if (donor != NULL && donor->listen_fd >= 0 &&
        endpoint_equal(&donor->conf.listen, &pc->listen)) {
        acceptor_stop(&donor->acceptor);
        p->listen_fd = donor->listen_fd;
        donor->listen_fd = -1;
    } else if ((p->listen_fd = transport_listen(&pc->listen)) < 0) {
        rc = p->listen_fd;
        p->listen_fd = -1;
        snprintf(msg, HTTP_MSG_MAX, "cannot listen: %s", strerror(-rc));
        goto fail;
    }
    char what[sizeof(p->acceptor.what)];
    snprintf(what, sizeof(what), "http proxy=%s", pc->name);
    /* at once, the clients that queued while the listener changed hands */
    if ((rc = acceptor_start(&p->acceptor, env->w[0].loop, p->listen_fd, what, admit, accept_limit,
                             p)) != 0) {
        snprintf(msg, HTTP_MSG_MAX, "cannot accept: %s", strerror(-rc));
        goto fail;
    }
    return p;

fail:
    *err = rc;
    if (p != NULL)
        proxy_free(p);
    return NULL;
}

/* A retired proxy's sessions on one worker. */
struct retire {
    struct http_worker *w;
    struct http_proxy *p;
};

/* On w: p's sessions between two requests go on with its successor now;
 * the others after the response they are in (exchange_done()), and when p
 * was removed, that response says Connection: close. One that begins later
 * follows at once (sess_begin()). */
static void
retire_posted(void *arg)
{
    struct retire *r = arg;
    struct list *pos, *tmp;

    list_for_each_safe(pos, tmp, &r->w->sessions) {
        struct sess *s = list_entry(pos, struct sess, link);
        if (s->p != r->p)
            continue;
        if (s->st == S_IDLE)
            sess_follow(s);
        else if (r->p->successor == NULL)
            s->close_after = true;
    }
    http_proxy_unref(r->p);
    free(r);
}

void
http_proxy_retire(struct http_proxy *p, struct http_proxy *next)
{
    if (atomic_load(&p->retired))
        return;
    if (next != NULL && next->stats == p->stats) { /* sessions keep their counters' places */
        proxy_ref(next);
        p->successor = next;
    }
    atomic_store_explicit(&p->retired, true, memory_order_release);
    for (size_t i = 0; i < p->env->n; i++) {
        struct retire *r = malloc(sizeof(*r));
        if (r == NULL) { /* its sessions still follow after their next response */
            log_warnx("http proxy=%s: cannot post the retirement to loop %zu", p->conf.name, i);
            continue;
        }
        *r = (struct retire){.w = &p->env->w[i], .p = p};
        proxy_ref(p);
        if (loop_post(r->w->loop, retire_posted, r) != 0) {
            log_warnx("http proxy=%s: cannot post the retirement to loop %zu", p->conf.name, i);
            http_proxy_unref(p);
            free(r);
        }
    }
}

void
http_proxy_stop(struct http_proxy *p)
{
    if (p == NULL || p->listen_fd < 0)
        return;
    acceptor_stop(&p->acceptor);
    close(p->listen_fd);
    p->listen_fd = -1;
    if (p->conf.listen.kind == EP_UNIX && p->conf.listen.path[0] != '\0')
        unlink(p->conf.listen.path);
}
/* The index of the least busy worker; ties go round robin. */
static size_t
least_busy(struct http_proxy *p)
{
    struct http_env *env = p->env;
    size_t best = p->next % env->n;

    for (size_t i = 1; i < env->n; i++) {
        size_t w = (p->next + i) % env->n;
        if (atomic_load(&env->w[w].n) < atomic_load(&env->w[best].n))
            best = w;
    }
    p->next++;
    return best;
}

void
http_refused(struct http_proxy *p, const char *client, const char *why)
{
    unsigned long quiet;

    count(&p->stats->refused, 1);
    if (log_rate_ok(&p->stats->refusal_log, loop_clock_ns() / 1000000, 1000, &quiet))
        log_info("http proxy=%s refused client=%s reason=%s quiet_before=%lu", p->conf.name, client,
                 why, quiet);
}

/* A client at its bound of unproven sessions is refused; at
 * max_connections a newcomer claims an unproven session (of any generation
 * of p) and begins on its worker, where it takes that place (session.c);
 * when every session is in a request it is refused. */
static void
admit(struct acceptor *a, int fd, const struct sockaddr *peer, socklen_t len)
{
    struct http_proxy *p = a->data;
    unsigned max = p->conf.max_connections;
    struct unproven_share *place = NULL;

    /* with accept_proxy, only a front may name the client (relay.c alike) */
    if (!allow_match(p->conf.proxy_from, p->conf.n_proxy_from, peer)) {
        char desc[TRANSPORT_DESC_MAX];
        transport_describe(peer, len, desc, sizeof(desc));
        close(fd);
        http_refused(p, desc, "not_allowed");
        return;
    }
    if (max > 0 && atomic_load(&p->stats->open) >= max &&
        (place = unproven_claim(&p->stats->unproven)) == NULL) {
        close(fd);
        count(&p->stats->refused, 1);
        return;
    }
    struct sess *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        if (place != NULL)
            unproven_unclaim(place);
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
    s->b_route = -1;
    s->st = S_IDLE;
    s->t_admit = now_us();
    s->cr = (struct ready){.readable = true, .writable = true};
    /* with accept_proxy the client is the one the header names (session.c) */
    s->preamble = p->conf.accept_proxy != PROXY_NONE;
    if (!s->preamble && !sess_client(s, peer, len)) {
        if (place != NULL)
            unproven_unclaim(place);
        close(fd);
        http_proxy_unref(p);
        free(s);
        return;
    }
    http_msg_init(&s->req, false, p->conf.max_header, p->conf.max_headers, p->conf.max_body);
    size_t i = place != NULL ? (size_t)(place - p->stats->unproven.shares) : least_busy(p);
    s->w = &p->env->w[i];
    s->share = &p->stats->unproven.shares[i];
    s->place = place != NULL;
    atomic_fetch_add(&s->w->n, 1);
    count(&p->stats->open, 1);
    if (loop_post(s->w->loop, sess_begin, s) != 0) {
        if (place != NULL)
            unproven_unclaim(place);
        sess_unbegun(s);
    }
}

/* Out of file descriptors: an unproven connection (of any listener) gives
 * its up to the clients queued, and the acceptor retries soon. */
static bool
accept_limit(struct acceptor *a, int err)
{
    (void)a;
    return (err == -EMFILE || err == -ENFILE) && unproven_evict_any();
}
