/* relay.c - listeners, admission (allowlist, max_connections) and hand-off
 * of accepted connections to the workers. */
#include "relay/relay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/log.h"
#include "net/transport.h"
#include "relay/conn.h"
#include "relay/dgram.h"
#include "relay/health.h"
#ifdef AIRLOCK_WITH_ATTEST
#include "relay/tls.h"
#endif

struct relay_stats *
relay_stats_new(const char *name)
{
    struct relay_stats *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    snprintf(s->name, sizeof(s->name), "%s", name);
    atomic_init(&s->refs, 1);
    return s;
}

void
relay_stats_ref(struct relay_stats *s)
{
    atomic_fetch_add(&s->refs, 1);
}

void
relay_stats_unref(struct relay_stats *s)
{
    if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1) {
        unproven_group_fini(&s->unproven);
        free(s);
    }
}

static void
stats_drop(void *owner)
{
    relay_stats_unref(owner);
}

/* The unproven group of stats, for workers[0..n), unless it has one. */
static int
stats_unproven(struct relay_stats *s, struct worker **workers, size_t n)
{
    struct loop *loops[n > 0 ? n : 1];

    if (s->unproven.shares != NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        loops[i] = workers[i]->loop;
    s->unproven.evict_oldest = conn_evict_oldest;
    s->unproven.owner = s;
    s->unproven.owner_refs = &s->refs;
    s->unproven.drop = stats_drop;
    return unproven_group_init(&s->unproven, loops, n);
}

#define MS 1000000ull
const uint64_t relay_hist_bounds[HIST_BUCKETS] = {
    MS / 2,    MS,         5 * MS / 2, 5 * MS,     10 * MS,     25 * MS,
    50 * MS,   100 * MS,   250 * MS,   500 * MS,   1000 * MS,   2500 * MS,
    5000 * MS, 10000 * MS, 30000 * MS, 60000 * MS, 300000 * MS, UINT64_MAX,
};

void
relay_hist_observe(struct relay_hist *h, uint64_t ns)
{
    size_t b = 0;

    while (ns > relay_hist_bounds[b]) /* the last bound takes any */
        b++;
    atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

static const char *const local_names[LOCAL_COUNT] = {
    [LOCAL_FD_LIMIT] = "fd_limit",
    [LOCAL_SYSTEM_FD_LIMIT] = "system_fd_limit",
    [LOCAL_MEMORY] = "memory",
    [LOCAL_RESOLVER_BUSY] = "resolver_busy",
};

const char *
local_error_name(enum local_error e)
{
    return local_names[e];
}

bool
relay_local_error(struct relay_stats *s, int err)
{
    enum local_error e;

    switch (err) {
    case -EMFILE:
        e = LOCAL_FD_LIMIT;
        break;
    case -ENFILE:
        e = LOCAL_SYSTEM_FD_LIMIT;
        break;
    case -ENOMEM:
    case -ENOBUFS:
        e = LOCAL_MEMORY;
        break;
    case -EBUSY:
        e = LOCAL_RESOLVER_BUSY;
        break;
    default:
        return false;
    }
    atomic_fetch_add_explicit(&s->local_errors[e], 1, memory_order_relaxed);
    return true;
}

enum conn_end
relay_dial_failed(struct relay *r, uint64_t id, const struct endpoint *target, int err,
                  enum dial_result why)
{
    char text[ENDPOINT_TEXT_MAX];

    if (why != DIAL_TIMEOUT && relay_local_error(r->stats, err)) {
        endpoint_format(target, text, sizeof(text));
        log_warnx("relay=%s conn=%llu cannot connect to %s: %s (a limit of this process or host)",
                  r->conf.name, (unsigned long long)id, text,
                  err == -EBUSY ? "resolver queue full" : strerror(-err));
        return END_ERROR;
    }
    atomic_fetch_add_explicit(&r->stats->connect_errors, 1, memory_order_relaxed);
    if (why == DIAL_TIMEOUT)
        return END_CONNECT_TIMEOUT;
    if (why == DIAL_HANDSHAKE_FAILED) {
        log_warnx("relay=%s conn=%llu hvsock target refused port %u", r->conf.name,
                  (unsigned long long)id, target->port);
    } else {
        endpoint_format(target, text, sizeof(text));
        log_warnx("relay=%s conn=%llu connect to %s failed: %s", r->conf.name,
                  (unsigned long long)id, text, strerror(-err));
    }
    return END_CONNECT_FAIL;
}

struct relay *
relay_new(const struct relay_conf *conf, struct relay_stats *stats, struct worker **workers,
          size_t n_workers)
{
    struct relay *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->conf = *conf;
    if (route_table_own(&r->conf.router.table) != 0) {
        free(r);
        return NULL;
    }
    if (relay_targets_new(r) != 0) {
        relay_targets_free(r);
        route_table_free(&r->conf.router.table);
        free(r);
        return NULL;
    }
    if (stats_unproven(stats, workers, n_workers) != 0) {
        relay_targets_free(r);
        route_table_free(&r->conf.router.table);
        free(r);
        return NULL;
    }
    r->stats = stats;
    relay_stats_ref(stats);
    atomic_init(&r->refs, 1);
    r->listen_fd = -1;
    r->workers = workers;
    r->n_workers = n_workers;
    return r;
}

void
relay_ref(struct relay *r)
{
    atomic_fetch_add(&r->refs, 1);
}

void
relay_unref(struct relay *r)
{
    if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    if (r->listen_fd >= 0)
        close(r->listen_fd);
    relay_stats_unref(r->stats);
    relay_unref(r->successor);
    route_table_free(&r->conf.router.table);
    relay_targets_free(r);
#ifdef AIRLOCK_WITH_ATTEST
    relay_tls_free(r->tls);
#endif
    free(r);
}

void
relay_retire(struct relay *r, struct relay *next)
{
    if (next != NULL)
        relay_ref(next);
    r->successor = next;
    atomic_store_explicit(&r->retired, true, memory_order_release);
}

const struct relay *
relay_current(const struct relay *r)
{
    while (r != NULL && atomic_load_explicit(&r->retired, memory_order_acquire))
        r = r->successor;
    return r;
}

/* The options accepted sockets inherit from r's listener (conn.c tunes no
 * client socket). A router's client speaks first (its ClientHello), so its
 * tcp listener defers the accept until those bytes are there: the
 * connection is routed in the wakeup that accepts it, and a client that
 * sends nothing holds neither an fd nor a connection slot for the first
 * ROUTER_DEFER_ACCEPT_S seconds (then peek_timeout applies). */
static int
relay_tune_listener(const struct relay *r, int fd)
{
    return transport_tune_listener(fd, r->conf.listen.kind, r->conf.keepalive,
                                   r->conf.router.enabled ? ROUTER_DEFER_ACCEPT_S : 0);
}

bool
relay_takes_listener(const struct relay *r, const struct relay *prev)
{
    return prev != NULL && r->listen_fd < 0 && prev->listen_fd >= 0 &&
           endpoint_equal(&prev->conf.listen, &r->conf.listen);
}

int
relay_listener_settings(const struct relay *r, int fd, const struct relay *was)
{
    int rc = transport_chperm(&r->conf.listen, &was->conf.listen);

    return rc != 0 ? rc : relay_tune_listener(r, fd);
}

void
relay_take_listener(struct relay *r, struct relay *prev)
{
    relay_stop(prev, 0); /* stop its accepting, keep the socket */
    r->listen_fd = prev->listen_fd;
    prev->listen_fd = -1;
}

int
relay_listen(struct relay *r, const struct relay *prev)
{
    if (relay_takes_listener(r, prev))
        return 0;
    int fd = transport_listen(&r->conf.listen);
    if (fd < 0)
        return fd;
    r->listen_fd = fd;
    return relay_tune_listener(r, fd);
}

void
relay_refused(struct relay *r, const char *peer, const char *why)
{
    unsigned long quiet;

    atomic_fetch_add_explicit(&r->stats->refused, 1, memory_order_relaxed);
    if (log_rate_ok(&r->stats->refusal_log, loop_clock_ns() / 1000000, 1000, &quiet))
        log_info("refused relay=%s client=%s reason=%s quiet_before=%lu", r->conf.name, peer, why,
                 quiet);
}

void
relay_refuse(struct relay *r, int fd, const char *peer, const char *why)
{
    close(fd);
    relay_refused(r, peer, why);
}

/* The index of the least busy worker; ties go round robin so that threads
 * share work. */
static size_t
least_busy(struct relay *r)
{
    size_t best = r->next_worker % r->n_workers;

    for (size_t i = 1; i < r->n_workers; i++) {
        size_t w = (r->next_worker + i) % r->n_workers;
        if (atomic_load(&r->workers[w]->n_conns) < atomic_load(&r->workers[best]->n_conns))
            best = w;
    }
    r->next_worker++;
    return best;
}

/* A client at its bound of unproven connections is refused; at
 * max_connections a newcomer claims an unproven connection (of any
 * generation of r) and begins on its worker, where it takes that place
 * (conn.c); when every connection is proven it is refused. */
static void
admit(struct acceptor *a, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
    struct relay *r = a->data;
    struct unproven_share *place = NULL;
    struct unproven_client *counted = NULL;
    char desc[TRANSPORT_DESC_MAX], key[TRANSPORT_CLIENT_MAX];
    unsigned max = r->conf.max_connections;
    /* with accept_proxy, by the client its header names (conn.c) */
    unsigned per_client = r->conf.accept_proxy == PROXY_NONE ? relay_conf_per_client(&r->conf) : 0;
    const char *why = NULL;
    int err;

    if (per_client > 0)
        transport_client_key(fd, peer, key, sizeof(key));
    /* with accept_proxy, allow judges the client the header names (conn.c),
     * and proxy_from the peer that would send it */
    if ((r->conf.n_allow > 0 && r->conf.accept_proxy == PROXY_NONE &&
         !allow_match(r->conf.allow, r->conf.n_allow, peer)) ||
        (r->conf.n_proxy_from > 0 &&
         !allow_match(r->conf.proxy_from, r->conf.n_proxy_from, peer))) {
        why = "not_allowed";
    } else if (per_client > 0 &&
               (err = unproven_client_take(&r->stats->unproven, key, per_client, &counted)) != 0) {
        why = err == -EBUSY ? "max_unproven_per_client" : "out_of_memory";
    } else if (max > 0 && atomic_load(&r->stats->open) >= max &&
               (place = unproven_claim(&r->stats->unproven)) == NULL) {
        why = "max_connections";
    } else if (relay_conf_is_dgram(&r->conf)) { /* a stream of datagram frames */
        err = r->dgram != NULL ? dgram_accept(r, fd, peer, peer_len) : -ESHUTDOWN;
        if (err == 0)
            return;
        why = err == -EMFILE ? "max_fds" : "out_of_memory";
    } else {
        struct conn *c = conn_new(r, fd, peer, peer_len, counted);
        if (c != NULL) {
            atomic_fetch_add_explicit(&r->stats->open, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&r->stats->total, 1, memory_order_relaxed);
            size_t i = place != NULL ? (size_t)(place - r->stats->unproven.shares) : least_busy(r);
            conn_dispatch(c, r->workers[i], &r->stats->unproven.shares[i], place != NULL, r->loop);
            return;
        }
        why = "out_of_memory";
    }
    if (place != NULL)
        unproven_unclaim(place);
    unproven_client_give(&r->stats->unproven, &counted);
    transport_describe(peer, peer_len, desc, sizeof(desc));
    relay_refuse(r, fd, desc, why);
}

/* Out of file descriptors or memory: counted. Short of descriptors, an
 * unproven connection (of any listener) gives its up to the clients
 * queued: the acceptor retries soon. */
static bool
accept_limit(struct acceptor *a, int err)
{
    struct relay *r = a->data;

    relay_local_error(r->stats, err);
    return (err == -EMFILE || err == -ENFILE) && unproven_evict_any();
}

int
relay_start(struct relay *r, struct loop *loop)
{
    int rc;

    r->loop = loop;
#ifdef AIRLOCK_WITH_ATTEST
    if (r->tls != NULL)
        relay_tls_start(r->tls, loop);
#endif
    if ((rc = relay_health_start(r)) != 0)
        return rc;
    if (relay_conf_is_dgram(&r->conf)) {
        if ((rc = dgram_start(r)) != 0)
            return rc;
        if (r->conf.listen.kind == EP_UDP)
            return 0; /* dgram.c reads the socket */
    }
    char what[sizeof(r->acceptor.what)];
    snprintf(what, sizeof(what), "relay=%s", r->conf.name);
    rc = acceptor_start(&r->acceptor, loop, r->listen_fd, what, admit, accept_limit, r);
    if (rc != 0)
        dgram_stop(r);
    return rc;
}

void
relay_stop(struct relay *r, int unlink)
{
    dgram_stop(r);
#ifdef AIRLOCK_WITH_ATTEST
    relay_tls_stop(r->tls);
#endif
    relay_health_stop(r);
    acceptor_stop(&r->acceptor); /* a reload may free r in this loop turn */
    if (unlink && r->listen_fd >= 0) {
        close(r->listen_fd);
        r->listen_fd = -1;
        transport_unlisten(&r->conf.listen);
    }
}
