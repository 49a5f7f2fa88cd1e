/* backend.h - what a directory backend implements (struct dir_ops) and
 * what it may use of the directory (struct dir_host, given at open),
 * internal to src/dir. Everything here runs on the directory's loop (dir.h). */
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
    uint64_t hid;       /* out: the caller's place among its holders; 0: nothing held */
};

/* What the directory gives its backend at open: all a backend may use of
 * it. It lives in the directory and outlives the backend. */
struct dir_host {
    const struct dir_conf *conf;
    struct loop *loop; /* the directory's: loop_now() for deadlines */
    /* inst[0..n) changed by the directory itself (a reservation went back, a
     * session expired, a drain): their pools' watchers hear of them in one
     * batch, so a reservation withdrawn in the same batch is coalesced away. */
    void (*changed)(const struct dir_host *h, const struct dir_instance *inst, size_t n);
    /* pool (NULL: any) may have an idle instance now, or a reservation no
     * longer counts against the bounds: waiters retry. */
    void (*maybe_idle)(const struct dir_host *h, const char *pool);
    /* Copies the names of the watched pools into out (at most max); returns
     * how many. */
    int (*watched_pools)(const struct dir_host *h, char (*out)[DIR_NAME_MAX], int max);
    /* The holder hid of this process lost its place to a newcomer (assign());
     * its connection is closed. */
    void (*evicted)(const struct dir_host *h, uint64_t hid);
    /* Makes the backend's tick() run within ms from now. */
    void (*tick_within)(const struct dir_host *h, unsigned ms);
    /* Whether the backend reaches its store now (dir_up()); a backend that
     * never calls it is always up. */
    void (*set_up)(const struct dir_host *h, int up);
    /* This process's view of how many instances are in each state. */
    void (*set_counts)(const struct dir_host *h, const unsigned long counts[DIR_STATE_COUNT]);
    /* The backend now talks to another master than before (a failover). */
    void (*failed_over)(const struct dir_host *h);
    /* Whether changes other processes make reach this one at once (redis:
     * its doorbell subscription is up), not only at the next tick. */
    void (*set_doorbell)(const struct dir_host *h, int up);
    /* n changes were picked up at a ring of the doorbell (not a tick). */
    void (*rung)(const struct dir_host *h, size_t n);
};

/* A backend: be is the state its open() made. */
struct dir_ops {
    /* Returns the backend's new state, for host, or NULL with errno set. */
    void *(*open)(const struct dir_host *host);
    /* Returns key's instance in pool in *out: 1 (sticky: reserved or active
     * for key; an active session is renewed), 0 (an idle one, now reserved
     * for key), -EAGAIN (none free), -EDQUOT (cl->client holds
     * max_pending_per_client reservations not active yet), -EBUSY (the
     * pool's pending_share is taken), -EINPROGRESS (the key's last session
     * ended and its instance is not stopped yet: its state is being stored
     * back), -ENOENT (unknown pool), -ENOTCONN (the store cannot be
     * reached now, or the connection was lost during the request: the
     * directory asks again when the backend is back, within assign_wait,
     * and an assign is sticky per key, so a repeat of one that was made
     * finds its reservation), -EIO (any other failure). With
     * cl->hold, a reservation returned counts one more holder and its id
     * goes to cl->rid, the holder's to cl->hid. Before its login a
     * reservation has at most DIR_HOLDERS_MAX holders, and at most
     * max_pending_per_client from one client address (else -EDQUOT); when
     * they are all taken, a newcomer whose address would still hold fewer
     * than the address holding the most takes the place of that address's
     * oldest holder, whose process hears of it (host->evicted()). */
    int (*assign)(void *be, const char *pool, const char *key, struct dir_claim *cl,
                  struct dir_instance *out);
    /* Drops holder hid of reservation rid of name for key; the last one
     * withdraws it when it is still reserved (not active): the instance goes
     * to DIR_STARTING (activate() still accepts key there, until the pool
     * reports it) and the pool's watcher hears. Returns 1 (withdrawn), 0
     * (still held, no longer that reservation, or hid lost its place
     * already), -EIO (the directory asks again while the backend is up,
     * at each tick: a repeat of one that was made is 0). */
    int (*release)(void *be, const char *pool, const char *name, const char *key, uint64_t rid,
                   uint64_t hid);
    /* Applies a pool's report (starting, idle, draining, stopped); ep is
     * endpoint_format() text or "". */
    int (*report)(void *be, const char *pool, const char *name, enum dir_state st, const char *ep);
    /* Makes name active for key when it is reserved or active for key, or
     * starting after key's reservation was withdrawn (the pool has not
     * reported it since): 0; else -EPERM with the key it holds in
     * holder[DIR_KEY_MAX] ("" when none); -EIO. */
    int (*activate)(void *be, const char *pool, const char *name, const char *key, char *holder);
    /* Hands back every instance in a malloc'd *out (caller frees); returns
     * the count or -errno (-ENOTCONN: the backend is away). */
    long (*list)(void *be, struct dir_instance **out);
    /* Drains one instance: 0, -ENOENT, -ENOTCONN (the backend is away),
     * -EIO. */
    int (*drain)(void *be, const char *pool, const char *name);
    /* Expires reservations and sessions that are due, and picks up changes
     * made elsewhere. Returns the delay in ms until it wants to run again. */
    unsigned (*tick)(void *be);
    /* Releases the backend's state. */
    void (*free)(void *be);
};

/* The backends: this process (memory.c); a shared redis (redis.c). */
extern const struct dir_ops dir_memory_ops;
extern const struct dir_ops dir_redis_ops;

#endif
