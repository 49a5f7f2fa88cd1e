/* unproven.c - connections a newcomer may take the place of; see
 * unproven.h. */
#include "net/unproven.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/hash.h"
#include "net/transport.h"

#define CLIENT_BUCKETS 1024

/* One client's unproven connections in a group; freed when it holds none. */
struct unproven_client {
    struct unproven_client *next; /* in its bucket */
    unsigned held;
    char key[TRANSPORT_CLIENT_MAX];
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct list registry = {&registry, &registry};

int
unproven_group_init(struct unproven_group *g, struct loop *const *loops, size_t n)
{
    if ((g->shares = calloc(n, sizeof(*g->shares))) == NULL)
        return -ENOMEM;
    g->n = n;
    for (size_t i = 0; i < n; i++) {
        struct unproven_share *s = &g->shares[i];
        atomic_init(&s->held, 0);
        atomic_init(&s->claimed, 0);
        atomic_init(&s->placed, 0);
        list_init(&s->list);
        s->loop = loops[i];
        s->group = g;
    }
    pthread_mutex_init(&g->clients_lock, NULL);
    g->clients = NULL;
    pthread_mutex_lock(&registry_lock);
    list_add_tail(&registry, &g->link);
    pthread_mutex_unlock(&registry_lock);
    return 0;
}

void
unproven_group_fini(struct unproven_group *g)
{
    if (g->shares == NULL)
        return;
    pthread_mutex_lock(&registry_lock);
    list_del(&g->link);
    pthread_mutex_unlock(&registry_lock);
    free(g->shares);
    g->shares = NULL;
    for (size_t i = 0; g->clients != NULL && i < CLIENT_BUCKETS; i++) {
        while (g->clients[i] != NULL) {
            struct unproven_client *u = g->clients[i];
            g->clients[i] = u->next;
            free(u);
        }
    }
    free(g->clients);
    pthread_mutex_destroy(&g->clients_lock);
}

void
unproven_add(struct unproven_share *s, struct list *link)
{
    if (list_linked(link))
        return;
    list_add_tail(&s->list, link);
    atomic_fetch_add(&s->held, 1);
}

void
unproven_del(struct unproven_share *s, struct list *link)
{
    if (!list_linked(link))
        return;
    list_del(link);
    atomic_fetch_sub(&s->held, 1);
}

struct list *
unproven_oldest(struct unproven_share *s)
{
    return list_empty(&s->list) ? NULL : s->list.next;
}

/* How many of s's connections are not claimed yet; without the placed
 * newcomers, unless placed_too. */
static unsigned
unclaimed(struct unproven_share *s, bool placed_too)
{
    unsigned held = atomic_load(&s->held), claimed = atomic_load(&s->claimed);
    unsigned others = claimed + (placed_too ? 0 : atomic_load(&s->placed));

    return held > others ? held - others : 0;
}

/* The share of g with the most unclaimed, and at least more than *most
 * (updated); NULL when none has. */
static struct unproven_share *
most_unclaimed(struct unproven_group *g, unsigned *most, bool placed_too)
{
    struct unproven_share *best = NULL;

    for (size_t i = 0; i < g->n; i++) {
        unsigned k = unclaimed(&g->shares[i], placed_too);
        if (k > *most) {
            best = &g->shares[i];
            *most = k;
        }
    }
    return best;
}

struct unproven_share *
unproven_claim(struct unproven_group *g)
{
    unsigned most = 0;
    struct unproven_share *s = most_unclaimed(g, &most, false);

    /* every other is claimed: a placed newcomer that sends nothing is as
     * unproven as the rest (its claim moves on to the next) */
    if (s == NULL)
        s = most_unclaimed(g, &most, true);
    if (s != NULL)
        atomic_fetch_add(&s->claimed, 1);
    return s;
}

void
unproven_unclaim(struct unproven_share *s)
{
    atomic_fetch_sub(&s->claimed, 1);
}

void
unproven_placed(struct unproven_share *s)
{
    atomic_fetch_add(&s->placed, 1);
}

void
unproven_unplace(struct unproven_share *s)
{
    atomic_fetch_sub(&s->placed, 1);
    unproven_unclaim(s);
}

/* ---- counts by client */

/* The bucket of key: FNV-1a seeded with a random number, so that nobody
 * picks addresses that all fall in one. */
static struct unproven_client **
client_bucket(struct unproven_group *g, const char *key)
{
    uint64_t h = fnv64(FNV64_START ^ g->clients_seed, key);

    return &g->clients[(h ^ h >> 32) % CLIENT_BUCKETS];
}

int
unproven_client_take(struct unproven_group *g, const char *key, unsigned max,
                     struct unproven_client **held)
{
    struct unproven_client *u;
    int rc = 0;

    *held = NULL;
    if (max == 0)
        return 0;
    pthread_mutex_lock(&g->clients_lock);
    if (g->clients == NULL) {
        if (getrandom(&g->clients_seed, sizeof(g->clients_seed), GRND_NONBLOCK) !=
            (ssize_t)sizeof(g->clients_seed))
            g->clients_seed = (uint64_t)loop_clock_ns();
        g->clients = calloc(CLIENT_BUCKETS, sizeof(*g->clients));
    }
    struct unproven_client **bucket = g->clients != NULL ? client_bucket(g, key) : NULL;
    for (u = bucket != NULL ? *bucket : NULL; u != NULL && strcmp(u->key, key) != 0; u = u->next)
        ;
    if (bucket == NULL) {
        rc = -ENOMEM;
    } else if (u != NULL && u->held >= max) {
        rc = -EBUSY;
    } else if (u == NULL && (u = calloc(1, sizeof(*u))) == NULL) {
        rc = -ENOMEM;
    } else {
        if (u->held++ == 0) {
            snprintf(u->key, sizeof(u->key), "%s", key);
            u->next = *bucket;
            *bucket = u;
        }
        *held = u;
    }
    pthread_mutex_unlock(&g->clients_lock);
    return rc;
}

void
unproven_client_give(struct unproven_group *g, struct unproven_client **held)
{
    struct unproven_client *u = *held;

    if (u == NULL)
        return;
    *held = NULL;
    pthread_mutex_lock(&g->clients_lock);
    if (--u->held == 0) {
        struct unproven_client **p = client_bucket(g, u->key);
        while (*p != u)
            p = &(*p)->next;
        *p = u->next;
        free(u);
    }
    pthread_mutex_unlock(&g->clients_lock);
}

/* ---- evictions */

/* A reference to g's owner, unless its count is 0 (it is going). */
static bool
hold(struct unproven_group *g)
{
    int n = atomic_load(g->owner_refs);

    while (n > 0 && !atomic_compare_exchange_weak(g->owner_refs, &n, n + 1))
        ;
    return n > 0;
}

/* The eviction posted by unproven_evict_any(), on the share's worker. */
static void
evict_posted(void *arg)
{
    struct unproven_share *s = arg;
    struct unproven_group *g = s->group;

    g->evict_oldest(s);
    unproven_unclaim(s);
    g->drop(g->owner);
}

/* Has the oldest unproven connection of the share of only (any group
 * when NULL) that holds the most closed, posted to its worker; placed
 * newcomers counted last, as by unproven_claim(). */
static bool
evict_in(struct unproven_group *only)
{
    struct unproven_share *best = NULL;
    unsigned most = 0;

    pthread_mutex_lock(&registry_lock);
    for (int placed_too = 0; placed_too < 2 && best == NULL; placed_too++) {
        for (struct list *it = registry.next; it != &registry; it = it->next) {
            struct unproven_group *g = list_entry(it, struct unproven_group, link);
            struct unproven_share *s =
                only == NULL || g == only ? most_unclaimed(g, &most, placed_too) : NULL;
            if (s != NULL)
                best = s;
        }
    }
    if (best != NULL && hold(best->group))
        atomic_fetch_add(&best->claimed, 1);
    else
        best = NULL;
    pthread_mutex_unlock(&registry_lock);
    if (best == NULL)
        return false;
    if (loop_post(best->loop, evict_posted, best) != 0) {
        unproven_unclaim(best);
        best->group->drop(best->group->owner);
        return false;
    }
    return true;
}

bool
unproven_evict_any(void)
{
    return evict_in(NULL);
}

bool
unproven_evict_elsewhere(struct unproven_group *g)
{
    return evict_in(g);
}
