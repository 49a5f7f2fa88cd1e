/* dir.h - the session directory: which instance serves which user key.
 *
 * Every instance belongs to a pool (by name) and has an endpoint. Its
 * state is one of
 *
 *   starting -> idle -> reserved(key) -> active(key) -> draining -> stopped
 *
 * The router asks dir_assign(pool, key): the key's live instance when it
 * has one (reserved or active for that key: sticky), else an idle instance
 * is reserved for the key, else the request waits up to assign_wait for one
 * to become idle. A reservation that does not become active within
 * reserve_timeout goes back to idle. Only dir_activate() makes an instance
 * active, and only for the key it is reserved (or already active) for: a
 * pool asks it when an instance prints a login line, and an instance that
 * claims any other user is refused (its output is not to be believed). A
 * session ends when the pool reports the instance draining or stopped, or
 * when the key was not assigned for session_ttl (each assign renews it).
 * The key of an active session that ended stays with its draining instance
 * until the pool reports it stopped (after storing the session's state
 * back): until then an assign for the key waits, so that the user is never
 * given an instance with the state from before that session (an instance
 * of a node that is not alive holds no key).
 *
 * Reservations that are not active yet are held by clients nobody has
 * authenticated (the login comes later, at the instance), so they are
 * bounded: per client address (max_pending_per_client) and per pool (a
 * share of its instances, pending_share); requests over a bound wait like
 * those that find no idle instance, as many per address and pool as the
 * address may hold (a newer one takes the place of the oldest), and
 * waiting requests are retried newest first. A router holds the reservation
 * its connection got (dir_assign_held(); so do the key's later connections,
 * a bounded number of them, the addresses that hold fewest first) and gives
 * it back when the connection ends (dir_release()): when no connection
 * holds it any more and the instance has not seen the login, it is
 * withdrawn at once. A withdrawn instance waits in DIR_STARTING until its
 * pool offers it again (idle) or recycles it, so it is never handed to the
 * next client while its pool is still wiping what the last one's
 * reservation brought in.
 *
 * Backends: memory (this process only) and redis (several routers and pools
 * in other processes and on other machines share one directory; every
 * state change is one Lua script, so it is atomic). Each runs on the
 * directory's loop: memory on the process's main loop (dir_new()), redis on
 * a thread of its own. Every function here may be called from any thread
 * and never blocks on the backend; results come back as callbacks posted
 * to a loop the caller names. Pool names hold no ':' (-EINVAL). */
#ifndef AIRLOCK_DIR_DIR_H
#define AIRLOCK_DIR_DIR_H

#include <stddef.h>

#include "core/loop.h"
#include "core/strbuf.h"
#include "net/endpoint.h"

#define DIR_KEY_MAX 128 /* user key, bytes incl. NUL */
#define DIR_NAME_MAX 64 /* pool and instance names, bytes incl. NUL */
#define DIR_PREFIX_MAX 64
#define DIR_CLIENT_MAX 64 /* client address key (transport_client_key()), bytes incl. NUL */
#define DIR_PATH_MAX 256  /* a file path, bytes incl. NUL */
#define DIR_SENTINELS_MAX 8
/* connections that may hold one reservation before its login (sticky
 * dir_assign_held()): beyond, a newcomer takes the place of one from the
 * address that holds the most, or is refused as over its client's bound */
#define DIR_HOLDERS_MAX 16
#define DIR_NODE_MAX 13 /* a node name (directory: node:), bytes incl. NUL */

enum dir_state {
    DIR_STARTING,
    DIR_IDLE,
    DIR_RESERVED,
    DIR_ACTIVE,
    DIR_DRAINING,
    DIR_STOPPED,
    DIR_STATE_COUNT,
};

enum dir_backend { DIR_MEMORY, DIR_REDIS };

struct dir_conf {
    enum dir_backend backend;
    struct endpoint redis; /* redis backend: tcp or unix; or the sentinels: */
    struct endpoint sentinels[DIR_SENTINELS_MAX]; /* tcp or unix; asked for the master */
    size_t n_sentinels;
    char sentinel_master[DIR_NAME_MAX];     /* the master's name at the sentinels */
    char redis_user[DIR_NAME_MAX];          /* ACL user; "": AUTH with the password alone */
    char redis_password_file[DIR_PATH_MAX]; /* "": no AUTH; else mode 0600, its first line */
    unsigned min_replicas_acked;            /* WAIT for this many replicas after an assignment or
                                               activation; 0 (default): don't wait */
    char prefix[DIR_PREFIX_MAX];            /* redis key prefix; default "airlock:" */
    unsigned reserve_timeout_ms;            /* default 10s */
    unsigned session_ttl_ms;                /* default 1h; 0: sessions end only by report */
    unsigned session_max_ms;                /* a session ends this long after its login at the
                                               latest, however often it is assigned; 0 (default):
                                               no bound */
    unsigned assign_wait_ms;                /* default 5s; 0: refuse at once */
    unsigned max_pending_per_client;        /* reservations not active yet per client address;
                                               default 2; 0: no bound */
    unsigned pending_share;                 /* percent of a pool's instances that reservations not
                                               active yet may hold; default 75; 100: no bound */
    /* "" or this machine's name among those sharing the redis directory:
     * instances are POOL-NODE-N, the directory's events about them go to
     * this process only */
    char node[DIR_NODE_MAX];
    /* "" or the sentinels' password (their requirepass), as
     * redis_password_file */
    char sentinel_password_file[DIR_PATH_MAX];
};

/* One instance as the directory knows it (listings and callbacks). */
struct dir_instance {
    char pool[DIR_NAME_MAX];
    char name[DIR_NAME_MAX];
    char endpoint[ENDPOINT_TEXT_MAX]; /* endpoint_format() text */
    enum dir_state state;
    char key[DIR_KEY_MAX];       /* reserved and active; else "" */
    unsigned long long since_ms; /* wall clock ms of the last state change */
};

struct dir;
struct dir_assign;
struct dir_activate;

/* Returns the label of s ("starting", "idle", ...). */
const char *dir_state_name(enum dir_state s);

/* Returns the wall clock in ms, the clock of since_ms (the redis backend
 * uses the redis server's, which should agree). */
unsigned long long dir_wall_ms(void);

/* Fills *conf with the defaults (memory backend, see struct dir_conf). */
void dir_conf_defaults(struct dir_conf *conf);

/* Returns true when a and b are the same settings, field by field
 * (strings by their text): a reload then has no change to defer. */
bool dir_conf_equal(const struct dir_conf *a, const struct dir_conf *b);

/* Checks the rules that span the keys of a directory: block (redis needs
 * its endpoint, or sentinels and sentinel_master, not both; redis_user
 * needs redis_password_file). Returns 0, or -1 with *f naming the
 * key at fault. */
struct conf_fault;
int dir_conf_check(const struct dir_conf *conf, struct conf_fault *f);

/* For the redis key: NULL when conf's backend is redis, else why it does
 * not apply. */
const char *dir_conf_redis_only(const struct dir_conf *conf);

/* Starts a directory: the memory backend on main (a loop of the caller's,
 * the pools'), the redis backend (and memory when main is NULL) on a thread
 * of its own; redis connects in the background and reconnects. Returns it,
 * or NULL with errno set. Free with dir_free(), after every pending request
 * was answered or cancelled; on main: on main's thread, after dir_stop()
 * and one more turn of main (what was posted to d runs), before main is
 * freed. */
struct dir *dir_new(const struct dir_conf *conf, struct loop *main);

/* Returns the node name of conf (never NULL; "" when not set): the pool
 * puts it in its instance names, unique across the machines sharing one
 * redis directory. Owned by d. */
const char *dir_node(const struct dir *d);

/* Stops the directory (its thread, when it has one; on main, call it on
 * main's thread): nothing is answered or watched from now
 * on (call it before freeing the loops that answers go to). Requests and
 * cancels made after it are accepted and dropped by dir_free(). Idempotent. */
void dir_stop(struct dir *d);

/* Stops it (dir_stop()), releases pending requests without answering
 * them, and frees d; NULL is harmless. */
void dir_free(struct dir *d);

/* Whether the directory reaches its backend now: always for memory; for
 * redis, from the first successful connect until the connection is lost
 * (the next reconnect makes it up again). Any thread. */
int dir_up(struct dir *d);

/* ---- router side ---- */

/* err: 0 (ep is the instance's endpoint, instance its name), -EAGAIN (no
 * instance became free within assign_wait), -EDQUOT (the client's address
 * held max_pending_per_client reservations not active yet all through
 * assign_wait, or a newer request of the address took this one's place
 * among its waiting ones), -EBUSY (the pool's pending_share was taken, all through
 * assign_wait), -EINPROGRESS (the key's last session was being stored back
 * all through assign_wait), -ENOENT (no such pool has ever reported), -ENOTCONN (the
 * backend was unreachable all through assign_wait: a request made while it
 * is away, or cut off by a lost connection, waits for it like one waiting
 * for an idle instance), -EIO (the backend failed otherwise: a script error,
 * a write the replicas did not acknowledge), -ENOMEM. ep and instance are
 * valid during the call only. */
typedef void (*dir_assign_cb)(void *arg, int err, const char *instance, const struct endpoint *ep);

/* Asks for key's instance in pool. cb(arg, ...) runs exactly once on loop
 * `on`, unless cancelled first. Returns the pending request (owned by the
 * directory), or NULL with errno set (cb is then never called). */
struct dir_assign *dir_assign(struct dir *d, const char *pool, const char *key, struct loop *on,
                              dir_assign_cb cb, void *arg);

/* Withdraws a pending request; call on loop `on`'s thread, before its
 * callback ran. The callback is then never called and a is freed by the
 * directory. An instance already reserved for it stays reserved until
 * reserve_timeout (a reconnecting client finds it: sticky). */
void dir_assign_cancel(struct dir_assign *a);

/* The connection of a dir_assign_held() request lost its place among the
 * holders of its reservation to a newcomer: the caller closes it (and ends
 * the request with dir_release(), as always). */
typedef void (*dir_evict_cb)(void *arg);

/* Like dir_assign(), for a client connection that holds what it gets:
 * client is its address key (transport_client_key(); NULL or "": not
 * bounded per client). A reservation made or found for it counts the
 * connection as one of its holders. Before the login a reservation has at
 * most DIR_HOLDERS_MAX holders, at most max_pending_per_client of them
 * from one address (-EDQUOT beyond): whoever sends the user's name holds
 * it, so when all places are taken, a newcomer whose address would still
 * hold fewer than the address holding the most takes the place of that
 * address's oldest holder, and evicted(arg) runs on `on` for that one
 * (whichever process of those sharing a redis directory holds it; with
 * redis within a tick), unless its request ended first. The caller keeps
 * its reference after the callback ran and ends the request with
 * dir_release() (exactly once, before or after the answer). */
struct dir_assign *dir_assign_held(struct dir *d, const char *pool, const char *key,
                                   const char *client, struct loop *on, dir_assign_cb cb,
                                   dir_evict_cb evicted, void *arg);

/* Ends a dir_assign_held() request; call on loop `on`'s thread. Before the
 * answer it cancels it (see dir_assign_cancel()). After it, the connection
 * stops holding its reservation: when no other connection holds it and the
 * instance is still only reserved for the key (no login), the reservation
 * is withdrawn (the instance goes to DIR_STARTING and its pool hears of it).
 * An active session is not touched. a is freed; NULL is harmless. */
void dir_release(struct dir_assign *a);

/* ---- pool side ---- */

/* Reports that instance name of pool is now in state st: DIR_STARTING or
 * DIR_IDLE (reachable at ep), DIR_DRAINING (its session, if any, ends) or
 * DIR_STOPPED (forgotten; ep may be NULL with these two). A pool cannot
 * report an instance reserved or active: reservations are the directory's
 * (dir_assign) and activation is checked (dir_activate). Fire and forget:
 * returns 0, -EINVAL (another state, a bad name) or -ENOMEM. */
int dir_report(struct dir *d, const char *pool, const char *name, enum dir_state st,
               const struct endpoint *ep);

/* err: 0 (instance name of pool is now active for key: it was reserved or
 * already active for key), -EPERM (it is not: idle, reserved or active for
 * another key, starting, draining or unknown; holder is the key it is
 * reserved or active for, "" when none), -ENOTCONN (the backend was
 * unreachable all through assign_wait, asked again every 100 ms
 * meanwhile), -EIO (it failed otherwise), -ENOMEM. holder is valid during
 * the call only. */
typedef void (*dir_activate_cb)(void *arg, int err, const char *holder);

/* Makes instance name of pool active for key if, and only if, the
 * directory reserved it for key (or it is already active for key, or its
 * reservation for key was withdrawn and the pool has not reported it since:
 * the login line came before the pool heard of the withdrawal), in one
 * atomic step of the backend (under the directory thread for memory, one
 * Lua script for redis): what a pool asks when an instance claims a login.
 * The session's TTL starts. cb(arg, ...) runs exactly once on loop `on`,
 * unless cancelled first. Returns the pending request (owned by the
 * directory), or NULL with errno set (cb is then never called). */
struct dir_activate *dir_activate(struct dir *d, const char *pool, const char *name,
                                  const char *key, struct loop *on, dir_activate_cb cb, void *arg);

/* Withdraws a pending activation; call on loop `on`'s thread, before its
 * callback ran. The callback is then never called and a is freed by the
 * directory (the activation itself may still take place). NULL is harmless. */
void dir_activate_cancel(struct dir_activate *a);

/* Changes the directory makes to one of pool's instances other than the
 * pool's own reports: a reservation for a key (st DIR_RESERVED, inst->key
 * set; the pool may bring the user's state in ahead of the login), a
 * reservation that timed out (DIR_IDLE), a reservation withdrawn because
 * its clients left (DIR_STARTING, inst->key the key it was for: the
 * directory hands the instance out again only when the pool reports it
 * idle, so the pool either reports it idle or recycles it), a session that
 * expired or an operator's drain (DIR_DRAINING; the pool then recycles the
 * instance). With redis they come through a list the watching process pops
 * every 100 ms. Changes that reach the watcher's loop together are
 * coalesced: a reservation followed by another change of the same instance
 * is not delivered (its client left before the pool heard of it). */
typedef void (*dir_watch_cb)(void *arg, const struct dir_instance *inst);

/* Calls cb(arg, ...) on loop `on` for each such change to pool's
 * instances, until dir_unwatch(). One watcher per pool. Returns 0 or -errno. */
int dir_watch(struct dir *d, const char *pool, struct loop *on, dir_watch_cb cb, void *arg);
void dir_unwatch(struct dir *d, const char *pool);

/* ---- operators (airlock ctl) ---- */

/* cb(arg, list, n) runs once on loop `on` with every instance the
 * directory knows (all pools, all processes for redis), or with list NULL
 * and n = -errno. list is valid during the call only. Returns 0 or -errno. */
typedef void (*dir_list_cb)(void *arg, const struct dir_instance *list, long n);
int dir_list(struct dir *d, struct loop *on, dir_list_cb cb, void *arg);

/* Asks that instance name of pool be drained: its session ends and its
 * pool (whichever process runs it) is told through dir_watch(). cb(arg,
 * err) runs once on `on`: 0, -ENOENT (no such instance), -ENOTCONN (the
 * backend is away), -EIO. Returns 0 or -errno. */
typedef void (*dir_done_cb)(void *arg, int err);
int dir_drain(struct dir *d, const char *pool, const char *name, struct loop *on, dir_done_cb cb,
              void *arg);

/* ---- metrics ---- */

/* How assign requests ended (airlock_dir_assigns_total{outcome}). */
enum dir_outcome {
    DIR_OUT_STICKY,        /* the key's live instance */
    DIR_OUT_RESERVED,      /* an idle instance, now reserved */
    DIR_OUT_NONE_FREE,     /* -EAGAIN */
    DIR_OUT_NO_POOL,       /* -ENOENT */
    DIR_OUT_ERROR,         /* -EIO: the backend failed */
    DIR_OUT_CANCELLED,     /* dir_assign_cancel() before the answer */
    DIR_OUT_CLIENT_LIMIT,  /* -EDQUOT: max_pending_per_client */
    DIR_OUT_PENDING_LIMIT, /* -EBUSY: pending_share */
    DIR_OUT_STORING,       /* -EINPROGRESS: the key's last session is being stored back */
    DIR_OUT_UNAVAILABLE,   /* -ENOTCONN: the backend was unreachable all through assign_wait */
    DIR_OUTCOME_COUNT,
};

/* Appends the directory's Prometheus text (sessions, instances by state
 * as this process sees them, assigns by outcome, assign latency,
 * reservations withdrawn by dir_release(), redis master failovers
 * followed) to out.
 * Any thread. */
void dir_render(struct dir *d, struct strbuf *out);

#endif
