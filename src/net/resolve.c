/* resolve.c - TTL-respecting name cache with lookups on a bounded pool of
 * helper threads.
 *
 *   resolve_start ──(same name in flight: join it)──► lookup.waiters
 *        │ new name: queue (at most max_queue waiting, else -EBUSY)
 *        ▼
 *   queue ──► up to max_threads threads (started on demand, kept) ──► cache
 *                                  └── answers posted to each waiter's loop
 *
 * An egress relay's *.suffix rules let an enclave name any number of hosts:
 * the threads, the queue and the cache are all bounded, so a flood of names
 * costs a few threads and prompt refusals, never a thread per name. */
#include "net/resolve.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"

#define RESOLVE_MAX_ADDRS 8
#define RESOLVE_KEEP_EXPIRED 60 /* seconds an expired entry is kept before it is freed */
/* names cached at most: beyond, the one expiring first goes (a client
 * naming hosts of a *.suffix rule without end would grow the cache, and
 * its linear search, for each name's TTL) */
#define RESOLVE_CACHE_MAX 4096
#define RESOLVE_CLIENT_SHARE 4 /* one client's names take at most a quarter of the queue */

struct entry {
    struct list link; /* in cache */
    char *host;
    uint64_t expires; /* CLOCK_MONOTONIC seconds */
    int err;          /* 0, or the failure cached until expires */
    unsigned next_addr;
    size_t n;
    struct sockaddr_storage addrs[RESOLVE_MAX_ADDRS];
};

/* A caller waiting for a lookup; called back on its own loop. */
struct resolve_waiter {
    struct resolve_waiter *next;
    struct loop *loop;
    void (*done)(void *arg, int err);
    void *arg;
    int err;
};

/* A lookup queued or running. Callers asking for the same name meanwhile
 * join it, so a burst of connections to one name costs one lookup. */
struct lookup {
    struct list link;       /* in inflight */
    struct list queue_link; /* in lookup_queue, while waiting for a thread */
    char *host;
    char *client;                   /* who asked first (NULL: none): counted against its share */
    struct resolve_waiter *waiters; /* a stack; resolve_cancel() takes one out */
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct list cache = {&cache, &cache};
/* the rest is under cache_lock too */
static struct list inflight = {&inflight, &inflight}; /* queued and running */
/* waiting for a thread, oldest first */
static struct list lookup_queue = {&lookup_queue, &lookup_queue};
static pthread_cond_t queue_cond = PTHREAD_COND_INITIALIZER;
static unsigned max_threads = RESOLVE_THREADS_DEFAULT, max_queue = RESOLVE_QUEUE_DEFAULT;
static unsigned n_threads, n_idle, n_queued;
static uint64_t n_rejected;

static uint64_t
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec;
}

static struct entry *
cache_find(const char *host)
{
    struct list *pos, *tmp;

    list_for_each_safe(pos, tmp, &cache) {
        struct entry *e = list_entry(pos, struct entry, link);
        if (strcasecmp(e->host, host) == 0)
            return e;
    }
    return NULL;
}

int
resolve_cached(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    int rc = -EAGAIN;

    pthread_mutex_lock(&cache_lock);
    struct entry *e = cache_find(host);
    if (e != NULL && e->expires > now_s()) {
        if (e->err != 0) {
            rc = e->err;
        } else {
            *ss = e->addrs[e->next_addr++ % e->n];
            if (ss->ss_family == AF_INET) {
                ((struct sockaddr_in *)ss)->sin_port = htons(port);
                *len = sizeof(struct sockaddr_in);
            } else {
                ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
                *len = sizeof(struct sockaddr_in6);
            }
            rc = 0;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    return rc;
}

/* Names in /etc/hosts (nss "files") win over DNS, as nsswitch.conf says on
 * Debian; they carry no TTL. */
static int
in_hosts_file(const char *host)
{
    struct hostent he, *res;
    char buf[4096];
    int err, found = 0;
    static pthread_mutex_t hosts_lock = PTHREAD_MUTEX_INITIALIZER;

    /* the hosts enumeration state is process-wide */
    pthread_mutex_lock(&hosts_lock);
    sethostent(0);
    while (!found && gethostent_r(&he, buf, sizeof(buf), &res, &err) == 0 && res != NULL) {
        if (strcasecmp(he.h_name, host) == 0)
            found = 1;
        for (char **a = he.h_aliases; !found && *a != NULL; a++)
            found = strcasecmp(*a, host) == 0;
    }
    endhostent();
    pthread_mutex_unlock(&hosts_lock);
    return found;
}

static void
lookup_hosts_file(const char *host, struct entry *e)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai, *p;

    e->expires = now_s() + RESOLVE_HOSTS_TTL;
    if (getaddrinfo(host, NULL, &hints, &ai) != 0) {
        e->err = -ENOENT;
        return;
    }
    for (p = ai; p != NULL && e->n < RESOLVE_MAX_ADDRS; p = p->ai_next)
        memcpy(&e->addrs[e->n++], p->ai_addr, p->ai_addrlen);
    freeaddrinfo(ai);
}

/* One DNS query of type A or AAAA; appends addresses and lowers *ttl. */
static int
query(res_state rs, const char *host, int type, struct entry *e, uint32_t *ttl)
{
    unsigned char answer[4096];
    ns_msg msg;
    ns_rr rr;

    int n = res_nquery(rs, host, ns_c_in, type, answer, sizeof(answer));
    if (n < 0 || ns_initparse(answer, n, &msg) != 0)
        return -1;
    for (int i = 0; i < ns_msg_count(msg, ns_s_an) && e->n < RESOLVE_MAX_ADDRS; i++) {
        if (ns_parserr(&msg, ns_s_an, i, &rr) != 0 || (int)ns_rr_type(rr) != type)
            continue;
        struct sockaddr_storage *ss = &e->addrs[e->n];
        memset(ss, 0, sizeof(*ss));
        if (type == ns_t_a && ns_rr_rdlen(rr) == 4) {
            ss->ss_family = AF_INET;
            memcpy(&((struct sockaddr_in *)ss)->sin_addr, ns_rr_rdata(rr), 4);
        } else if (type == ns_t_aaaa && ns_rr_rdlen(rr) == 16) {
            ss->ss_family = AF_INET6;
            memcpy(&((struct sockaddr_in6 *)ss)->sin6_addr, ns_rr_rdata(rr), 16);
        } else {
            continue;
        }
        e->n++;
        if (ns_rr_ttl(rr) < *ttl)
            *ttl = ns_rr_ttl(rr);
    }
    return 0;
}

static void
lookup_dns(const char *host, struct entry *e)
{
    struct __res_state rs;
    uint32_t ttl = UINT32_MAX;

    memset(&rs, 0, sizeof(rs));
    if (res_ninit(&rs) != 0) {
        e->err = -EIO;
        e->expires = now_s() + RESOLVE_NEG_TTL;
        return;
    }
    query(&rs, host, ns_t_a, e, &ttl);
    if (e->n == 0)
        query(&rs, host, ns_t_aaaa, e, &ttl);
    res_nclose(&rs);
    if (e->n == 0) {
        e->err = -EHOSTUNREACH;
        ttl = RESOLVE_NEG_TTL;
    }
    e->expires = now_s() + (ttl < 1 ? 1 : ttl);
}

/* Drops entries that expired more than RESOLVE_KEEP_EXPIRED seconds ago:
 * an egress relay's *.suffix rules let an enclave name any number of
 * hosts, and the cache must not grow with every one it ever named. Runs
 * with cache_lock held. */
static unsigned n_cached;

static void
lookup_free(struct lookup *l)
{
    if (l == NULL)
        return;
    free(l->host);
    free(l->client);
    free(l);
}

/* Whether client's names fill its share of the queue (under cache_lock). */
static bool
client_full(const char *client)
{
    unsigned share = max_queue / RESOLVE_CLIENT_SHARE > 0 ? max_queue / RESOLVE_CLIENT_SHARE : 1,
             n = 0;
    struct list *pos;

    if (client == NULL)
        return false;
    for (pos = lookup_queue.next; pos != &lookup_queue && n < share; pos = pos->next) {
        const struct lookup *l = list_entry(pos, struct lookup, queue_link);
        n += l->client != NULL && strcmp(l->client, client) == 0;
    }
    return n >= share;
}

static void
cache_drop(struct entry *e)
{
    list_del(&e->link);
    free(e->host);
    free(e);
    n_cached--;
}

/* Frees the entries expired long enough, and the one expiring first when
 * the cache is full. */
static void
cache_prune(uint64_t now)
{
    struct list *pos, *tmp;
    struct entry *first = NULL;

    list_for_each_safe(pos, tmp, &cache) {
        struct entry *e = list_entry(pos, struct entry, link);
        if (e->expires + RESOLVE_KEEP_EXPIRED < now)
            cache_drop(e);
        else if (first == NULL || e->expires < first->expires)
            first = e;
    }
    if (n_cached >= RESOLVE_CACHE_MAX && first != NULL)
        cache_drop(first);
}

static void
cache_store(const char *host, const struct entry *fresh)
{
    pthread_mutex_lock(&cache_lock);
    cache_prune(now_s());
    struct entry *e = cache_find(host);
    if (e == NULL) {
        e = calloc(1, sizeof(*e));
        if (e == NULL || (e->host = strdup(host)) == NULL) {
            free(e);
            pthread_mutex_unlock(&cache_lock);
            return;
        }
        list_add(&cache, &e->link);
        n_cached++;
    }
    e->expires = fresh->expires;
    e->err = fresh->err;
    e->n = fresh->n;
    memcpy(e->addrs, fresh->addrs, sizeof(e->addrs));
    pthread_mutex_unlock(&cache_lock);
}

static void
lookup_deliver(void *arg)
{
    struct resolve_waiter *w = arg;

    w->done(w->arg, w->err);
    free(w);
}

/* Resolves l->host, stores the answer, and posts it to every waiter. */
static void
lookup_run(struct lookup *l)
{
    struct entry fresh;

    memset(&fresh, 0, sizeof(fresh));
    if (in_hosts_file(l->host))
        lookup_hosts_file(l->host, &fresh);
    else
        lookup_dns(l->host, &fresh);
    cache_store(l->host, &fresh);
    if (fresh.err == 0)
        log_debug("resolve host=%s addrs=%zu ttl=%llus", l->host, fresh.n,
                  (unsigned long long)(fresh.expires - now_s()));
    else
        log_warnx("resolve host=%s failed", l->host);

    /* posted under the lock: resolve_cancel() finds a waiter in its lookup,
     * or its answer on its loop */
    pthread_mutex_lock(&cache_lock);
    list_del(&l->link);
    struct resolve_waiter *w = l->waiters;
    while (w != NULL) {
        struct resolve_waiter *next = w->next;
        w->err = fresh.err;
        if (loop_post(w->loop, lookup_deliver, w) != 0)
            abort(); /* the waiting connection would hang forever */
        w = next;
    }
    pthread_mutex_unlock(&cache_lock);
    lookup_free(l);
}

/* A pool thread: runs queued lookups, oldest first, and waits for more;
 * exits when resolve_configure() lowered the number of threads. */
static void *
lookup_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&cache_lock);
    for (;;) {
        while (list_empty(&lookup_queue) && n_threads <= max_threads) {
            n_idle++;
            pthread_cond_wait(&queue_cond, &cache_lock);
            n_idle--;
        }
        if (n_threads > max_threads)
            break;
        struct lookup *l = list_entry(lookup_queue.next, struct lookup, queue_link);
        list_del(&l->queue_link);
        n_queued--;
        pthread_mutex_unlock(&cache_lock);
        lookup_run(l);
        pthread_mutex_lock(&cache_lock);
    }
    n_threads--;
    pthread_mutex_unlock(&cache_lock);
    return NULL;
}

/* Starts a pool thread when the queued lookups outnumber the idle threads
 * and the pool has room. Runs with cache_lock held. Returns 0, or -EBUSY
 * when no thread at all could run the lookup. */
static int
pool_grow(void)
{
    pthread_attr_t attr;
    pthread_t tid;

    if (n_queued <= n_idle || n_threads >= max_threads)
        return 0;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = -pthread_create(&tid, &attr, lookup_thread, NULL);
    pthread_attr_destroy(&attr);
    if (rc == 0)
        n_threads++;
    else
        log_warnx("resolver: cannot start a thread (%u running): %s", n_threads, strerror(-rc));
    return n_threads > 0 ? 0 : -EBUSY;
}

int
resolve_start(struct loop *loop, const char *host, const char *client,
              void (*done)(void *arg, int err), void *arg, struct resolve_waiter **waiter)
{
    struct resolve_waiter *w = calloc(1, sizeof(*w));
    struct lookup *l;
    struct list *pos, *tmp;
    int rc = 0;

    if (w == NULL)
        return -ENOMEM;
    w->loop = loop;
    w->done = done;
    w->arg = arg;
    pthread_mutex_lock(&cache_lock);
    list_for_each_safe(pos, tmp, &inflight)
        if (strcasecmp(list_entry(pos, struct lookup, link)->host, host) == 0)
            break;
    l = pos != &inflight ? list_entry(pos, struct lookup, link) : NULL;
    if (l == NULL) {
        if (n_queued >= max_queue || client_full(client)) {
            n_rejected++;
            rc = -EBUSY;
            goto out;
        }
        if ((l = calloc(1, sizeof(*l))) == NULL || (l->host = strdup(host)) == NULL ||
            (client != NULL && (l->client = strdup(client)) == NULL)) {
            rc = -ENOMEM;
            goto out;
        }
        /* queued under the lock: nobody can join a lookup that fails to start */
        list_add_tail(&lookup_queue, &l->queue_link);
        n_queued++;
        if ((rc = pool_grow()) != 0) {
            list_del(&l->queue_link);
            n_queued--;
            goto out;
        }
        pthread_cond_signal(&queue_cond);
        list_add(&inflight, &l->link);
    }
    w->next = l->waiters;
    l->waiters = w;
    pthread_mutex_unlock(&cache_lock);
    if (waiter != NULL)
        *waiter = w;
    return 0;

out:
    pthread_mutex_unlock(&cache_lock);
    lookup_free(l);
    free(w);
    return rc;
}

bool
resolve_cancel(struct resolve_waiter *waiter)
{
    struct list *pos, *tmp;
    bool found = false;

    pthread_mutex_lock(&cache_lock);
    list_for_each_safe(pos, tmp, &inflight) {
        struct lookup *l = list_entry(pos, struct lookup, link);
        struct resolve_waiter **w = &l->waiters;
        while (*w != NULL && *w != waiter)
            w = &(*w)->next;
        if (*w == NULL)
            continue;
        *w = waiter->next;
        found = true;
        /* a lookup nobody waits for any more, still queued, goes: else
         * clients that ask for names and leave would hold the queue */
        if (l->waiters == NULL && list_linked(&l->queue_link)) {
            list_del(&l->queue_link);
            n_queued--;
            list_del(&l->link);
            lookup_free(l);
        }
        break;
    }
    pthread_mutex_unlock(&cache_lock);
    if (found)
        free(waiter);
    return found;
}

void
resolve_configure(unsigned threads, unsigned queue)
{
    pthread_mutex_lock(&cache_lock);
    max_threads = threads > 0 ? threads : RESOLVE_THREADS_DEFAULT;
    max_queue = queue > 0 ? queue : RESOLVE_QUEUE_DEFAULT;
    pthread_cond_broadcast(&queue_cond); /* a surplus of idle threads exits */
    pthread_mutex_unlock(&cache_lock);
}

void
resolve_stats(struct resolve_stats *st)
{
    pthread_mutex_lock(&cache_lock);
    st->threads = n_threads;
    st->queued = n_queued;
    st->rejected = n_rejected;
    pthread_mutex_unlock(&cache_lock);
}
