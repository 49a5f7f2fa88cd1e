/* unproven.c - connections a newcomer may take the place of; see
 * unproven.h. */
#include "net/unproven.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

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
        list_init(&s->list);
        s->loop = loops[i];
        s->group = g;
    }
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

/* How many of s's connections are not claimed yet. */
static unsigned
unclaimed(struct unproven_share *s)
{
    unsigned held = atomic_load(&s->held), claimed = atomic_load(&s->claimed);

    return held > claimed ? held - claimed : 0;
}

/* The share of g with the most unclaimed, and at least more than *most
 * (updated); NULL when none has. */
static struct unproven_share *
most_unclaimed(struct unproven_group *g, unsigned *most)
{
    struct unproven_share *best = NULL;

    for (size_t i = 0; i < g->n; i++) {
        unsigned k = unclaimed(&g->shares[i]);
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
    struct unproven_share *s = most_unclaimed(g, &most);

    if (s != NULL)
        atomic_fetch_add(&s->claimed, 1);
    return s;
}

void
unproven_unclaim(struct unproven_share *s)
{
    atomic_fetch_sub(&s->claimed, 1);
}

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

bool
unproven_evict_any(void)
{
    struct unproven_share *best = NULL;
    unsigned most = 0;

    pthread_mutex_lock(&registry_lock);
    for (struct list *it = registry.next; it != &registry; it = it->next) {
        struct unproven_group *g = list_entry(it, struct unproven_group, link);
        struct unproven_share *s = most_unclaimed(g, &most);
        if (s != NULL)
            best = s;
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
