/* unproven.c - connections a newcomer may take the place of; see
 * unproven.h. */
#include "net/unproven.h"

void
unproven_share_init(struct unproven_share *s, struct loop *loop, void *owner)
{
    atomic_init(&s->held, 0);
    atomic_init(&s->claimed, 0);
    list_init(&s->list);
    s->loop = loop;
    s->owner = owner;
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

struct unproven_share *
unproven_evict(struct unproven_share *shares, size_t n, struct loop *here,
               void (*evict)(void *share))
{
    struct unproven_share *most = NULL;
    unsigned most_n = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned held = atomic_load(&shares[i].held), claimed = atomic_load(&shares[i].claimed);
        if (held > claimed && held - claimed > most_n) {
            most = &shares[i];
            most_n = held - claimed;
        }
    }
    if (most == NULL)
        return NULL;
    atomic_fetch_add(&most->claimed, 1);
    if (most->loop == here) {
        evict(most);
        return most;
    }
    if (loop_post(most->loop, evict, most) != 0) {
        atomic_fetch_sub(&most->claimed, 1);
        return NULL;
    }
    return most;
}

void
unproven_evicted(struct unproven_share *s)
{
    atomic_fetch_sub(&s->claimed, 1);
}
