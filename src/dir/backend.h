/* backend.h - what a directory backend implements and what it may call
 * back (internal to src/dir). Everything here runs on the directory's own
 * thread. */
#ifndef AIRLOCK_DIR_BACKEND_H
#define AIRLOCK_DIR_BACKEND_H

#include <stdint.h>

#include "dir/dir.h"

/* Who asks for an assignment (the bounds on reservations not active yet)
 * and what a held answer needs to be released. */
struct dir_claim {
    const char *client; /* address key, or NULL: not bounded per client */
    int hold;           /* the caller holds what it gets (dir_assign_held()) */
    uint64_t rid;       /* out: the held reservation's id; 0: nothing held */
};

struct dir_ops {
    /* Returns key's instance in pool in *out: 1 (sticky: reserved or active
     * for key; an active session is renewed), 0 (an idle one, now reserved
     * for key), -EAGAIN (none free), -EDQUOT (cl->client holds
     * max_pending_per_client reservations not active yet), -EBUSY (the
     * pool's pending_share is taken), -ENOENT (unknown pool), -EIO. With
     * cl->hold, a reservation returned counts one more holder and its id
     * goes to cl->rid. */
    int (*assign)(struct dir *d, const char *pool, const char *key, struct dir_claim *cl,
                  struct dir_instance *out);
    /* Drops one holder of reservation rid of name for key; the last one
     * withdraws it when it is still reserved (not active): the instance goes
     * to DIR_STARTING (activate() still accepts key there, until the pool
     * reports it) and the pool's watcher hears. Returns 1 (withdrawn), 0
     * (still held, or no longer that reservation), -EIO. */
    int (*release)(struct dir *d, const char *pool, const char *name, const char *key,
                   uint64_t rid);
    /* Applies a pool's report (starting, idle, draining, stopped); ep is
     * endpoint_format() text or "". */
    int (*report)(struct dir *d, const char *pool, const char *name, enum dir_state st,
                  const char *ep);
    /* Makes name active for key when it is reserved or active for key, or
     * starting after key's reservation was withdrawn (the pool has not
     * reported it since): 0; else -EPERM with the key it holds in
     * holder[DIR_KEY_MAX] ("" when none); -EIO. */
    int (*activate)(struct dir *d, const char *pool, const char *name, const char *key,
                    char *holder);
    /* Hands back every instance in a malloc'd *out (caller frees); returns
     * the count or -errno. */
    long (*list)(struct dir *d, struct dir_instance **out);
    /* Drains one instance: 0, -ENOENT, -EIO. */
    int (*drain)(struct dir *d, const char *pool, const char *name);
    /* Expires reservations and sessions that are due, and picks up changes
     * made elsewhere. Returns the delay in ms until it wants to run again. */
    unsigned (*tick)(struct dir *d);
    /* Releases the backend's state (d->be). */
    void (*free)(struct dir *d);
};

/* The memory and redis backends: set d->ops and d->be, return 0 or -errno. */
int dir_memory_open(struct dir *d);
int dir_redis_open(struct dir *d);

/* Backends tell the front end: inst changed by the directory itself (a
 * reservation went back, a session expired, a drain), so pool's watcher
 * hears of it; and pool may have an idle instance now (waiters retry). */
void dir_changed(struct dir *d, const struct dir_instance *inst);
/* The same for n changes at once (a batch popped from redis): they reach
 * the watcher together, so a reservation withdrawn in the same batch is
 * coalesced away. */
void dir_changed_n(struct dir *d, const struct dir_instance *inst, size_t n);
void dir_maybe_idle(struct dir *d, const char *pool);

/* Copies the names of the watched pools into out (at most max); returns
 * how many. */
int dir_watched_pools(struct dir *d, char (*out)[DIR_NAME_MAX], int max);

/* Makes the backend's tick() run within ms from now. */
void dir_tick_within(struct dir *d, unsigned ms);

/* This process's view of how many instances are in each state. */
void dir_set_counts(struct dir *d, const unsigned long counts[DIR_STATE_COUNT]);

/* The directory's configuration, backend state and loop. */
const struct dir_conf *dir_conf_of(const struct dir *d);
void *dir_backend_state(const struct dir *d);
void dir_set_backend(struct dir *d, const struct dir_ops *ops, void *be);
struct loop *dir_loop(const struct dir *d);

#endif
