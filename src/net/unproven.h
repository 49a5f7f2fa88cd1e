/* unproven.h - connections anyone could have opened, and newcomers that
 * take their places.
 *
 * A connection is unproven until it has shown what it is for: a relay's
 * until its preamble, its ClientHello (routers) or its TLS handshake (tls:)
 * is whole; an HTTP proxy's until a request head is, and again between two
 * requests. Anyone can open and hold such connections, each a slot of
 * max_connections and a file descriptor. So when a listener is at its
 * max_connections, or an accept or a dial finds no file descriptor, a
 * newcomer takes the place of the oldest unproven connection instead of
 * being refused: a client that opens connections and says too little holds
 * them only until others come. Proven connections are never evicted.
 *
 * Connections live on worker threads. A listener keeps one share per
 * worker: the list of its unproven connections there (only that worker's
 * thread touches it), oldest first, and their count (read by any thread).
 * The accepting loop claims one on the worker that holds the most not yet
 * claimed (unproven_evict) and posts the eviction to it; there the owner
 * closes the oldest on the list. */
#ifndef AIRLOCK_NET_UNPROVEN_H
#define AIRLOCK_NET_UNPROVEN_H

#include <stdatomic.h>
#include <stddef.h>

#include "core/list.h"
#include "core/loop.h"

struct unproven_share {
    atomic_uint held;    /* connections on list */
    atomic_uint claimed; /* evictions posted to the worker and not yet run */
    struct list list;    /* the unproven connections, oldest first (the worker's) */
    struct loop *loop;   /* the worker's */
    void *owner;         /* the listener, for the eviction */
};

/* An empty share of owner's on the worker that runs loop. */
void unproven_share_init(struct unproven_share *s, struct loop *loop, void *owner);

/* A connection's link: on s's list, the newest, unless it is on it
 * already (on s's worker). */
void unproven_add(struct unproven_share *s, struct list *link);

/* A connection's link is off s's list: it is proven, or it closed.
 * Idempotent (on s's worker). */
void unproven_del(struct unproven_share *s, struct list *link);

/* The link of the oldest unproven connection on s's list, or NULL (on s's
 * worker). */
struct list *unproven_oldest(struct unproven_share *s);

/* Claims an unproven connection on the share of shares[0..n) that holds
 * the most not yet claimed, and has evict(share) run on its worker: at
 * once when its loop is here, else posted. evict closes the oldest
 * connection of the share (if one is left: it may have proven itself since)
 * and ends with unproven_evicted(). Returns the share, or NULL when every
 * connection is proven or claimed (or the post failed). */
struct unproven_share *unproven_evict(struct unproven_share *shares, size_t n, struct loop *here,
                                      void (*evict)(void *share));

/* evict's last step: gives back its claim. */
void unproven_evicted(struct unproven_share *s);

#endif
