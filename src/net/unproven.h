/* unproven.h - connections anyone could have opened, and newcomers that
 * take their places.
 *
 * A connection is unproven until it has shown what it is for: a relay's
 * until its preamble, its ClientHello (routers) or its TLS handshake (tls:)
 * is whole; an HTTP proxy's until a request head is, and again between two
 * requests. Anyone can open and hold such connections, each a slot of
 * max_connections and a file descriptor. So when a listener is at its
 * max_connections, a newcomer takes the place of its oldest unproven
 * connection instead of being refused; and when an accept or a dial finds
 * no file descriptor, the oldest unproven connection of any listener gives
 * its own up. A client that opens connections and says too little holds
 * them only until others come. Proven connections are never evicted.
 *
 * Connections live on worker threads. A listener has a group of shares,
 * one per worker: the list of its unproven connections there (only that
 * worker's thread touches it), oldest first, and their count (read by any
 * thread). The group is kept by what outlives the listener's reloads (its
 * counters), so a newcomer also takes the place of a connection an earlier
 * generation of the listener accepted. Every group is in one registry, for
 * the evictions that free a descriptor (unproven_evict_any).
 *
 * Taking the oldest place lets one client that opens connections faster than
 * others finish their handshakes push those out. So a group also counts its
 * unproven connections by client (transport_client_key(): an address, an
 * IPv6 /64), and a listener may bound how many one client holds: beyond, its
 * newcomer is refused, and it never reaches the places of the others. */
#ifndef AIRLOCK_NET_UNPROVEN_H
#define AIRLOCK_NET_UNPROVEN_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pthread.h>

#include "core/list.h"
#include "core/loop.h"
#include "net/endpoint.h"

struct unproven_group;
struct unproven_client;

#define UNPROVEN_PER_CLIENT_AUTO UINT_MAX /* a listener's max_unproven_per_client not set */

/* The max_unproven_per_client of a listener of kind whose connections are
 * unproven for a while when it is not set, for relays, routers and HTTP
 * proxies alike: half of max_connections (at least 1) where clients are
 * told apart, by the source a PROXY v2 header names (by_header: with
 * accept_proxy) or by their address on a tcp listener; else 0, no bound
 * (every peer of a vsock or unix listener is one address), and 0 without
 * max_connections. */
static inline unsigned
unproven_per_client_default(unsigned max_connections, enum ep_kind kind, bool by_header)
{
    if (max_connections == 0 || (kind != EP_TCP && !by_header))
        return 0;
    return max_connections > 1 ? max_connections / 2 : 1;
}

struct unproven_share {
    atomic_uint held;    /* connections on list */
    atomic_uint claimed; /* evictions on their way to the worker */
    atomic_uint placed;  /* of held: newcomers on list that hold a claim (unproven_placed()) */
    struct list list;    /* the unproven connections, oldest first (the worker's) */
    struct loop *loop;   /* the worker's */
    struct unproven_group *group;
};

struct unproven_group {
    struct unproven_share *shares;
    size_t n;
    /* On a share's worker: closes the share's oldest unproven connection
     * (unproven_oldest()). Returns false when there is none. */
    bool (*evict_oldest)(struct unproven_share *s);
    /* The object that keeps the group, its reference count, and how a
     * reference is dropped: a posted eviction holds one (none is taken
     * once the count is 0: the owner is going). */
    void *owner;
    atomic_int *owner_refs;
    void (*drop)(void *owner);
    struct list link; /* in the registry */
    /* unproven connections by client, in buckets by a hash of its key
     * (made at the first unproven_client_take) */
    pthread_mutex_t clients_lock;
    struct unproven_client **clients;
    uint64_t clients_seed;
};

/* Makes g's shares, one per loops[0..n) (the workers'), and registers it.
 * The other fields are the caller's, set before. Returns 0 or -ENOMEM. */
int unproven_group_init(struct unproven_group *g, struct loop *const *loops, size_t n);

/* Unregisters g and frees its shares (when its owner goes). */
void unproven_group_fini(struct unproven_group *g);

/* A connection's link: on s's list, the newest, unless it is on it
 * already (on s's worker). */
void unproven_add(struct unproven_share *s, struct list *link);

/* A connection's link is off s's list: it is proven, or it closed.
 * Idempotent (on s's worker). */
void unproven_del(struct unproven_share *s, struct list *link);

/* The link of the oldest unproven connection on s's list, or NULL (on s's
 * worker). */
struct list *unproven_oldest(struct unproven_share *s);

/* The accepting loop, at max_connections: claims an unproven connection on
 * the share of g that holds the most not yet claimed, and returns it (NULL:
 * every one is proven or claimed). The newcomer then begins on that share's
 * worker, evicts (g->evict_oldest) and gives the claim back. Newcomers
 * that hold claims are counted last: a claim goes to the share of the
 * connections it is to evict, not to the newcomers that went there before
 * (they would evict each other while others kept their places). */
struct unproven_share *unproven_claim(struct unproven_group *g);
void unproven_unclaim(struct unproven_share *s);
/* A newcomer that holds a claim of s waits on s's list (for its PROXY
 * header) before it evicts: counted as placed until unproven_unplace()
 * gives the claim back (it evicted, or closed). */
void unproven_placed(struct unproven_share *s);
void unproven_unplace(struct unproven_share *s);

/* The accepting loop, for a newcomer from the client key (its
 * transport_client_key()) when one client may hold at most max unproven
 * connections of g (0: no bound): counts it. Returns 0 with *held the
 * count it is in (NULL without a bound), -EBUSY when the client holds max
 * already, or -ENOMEM. */
int unproven_client_take(struct unproven_group *g, const char *key, unsigned max,
                         struct unproven_client **held);

/* The connection counted in *held is proven, or closed, or never began:
 * its client holds one less. Sets *held to NULL; nothing when it is NULL
 * (any thread). */
void unproven_client_give(struct unproven_group *g, struct unproven_client **held);

/* Out of file descriptors (any thread): has the oldest unproven connection
 * of the share of any listener that holds the most closed, posted to its
 * worker. Returns true when one is on its way. */
bool unproven_evict_any(void);
/* A newcomer of g found no unproven connection left on its claim's share
 * (on that worker): has the oldest of the share of g that holds the most
 * closed, posted to its worker. Returns true when one is on its way. */
bool unproven_evict_elsewhere(struct unproven_group *g);

#endif
