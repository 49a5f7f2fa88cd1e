/* env.h - what the pools of one airlock process share (docs/pool.md,
 * Isolation): the uids they hand out, one per instance, and the threads that
 * wipe instance directories and move users' state off the main loop.
 *
 * A uid goes back only when its last process is gone and its directory is
 * wiped, so that no instance ever meets anything of the one before it. An
 * instance directory is wiped in two steps: on the main loop it is renamed
 * aside at once (BASE/.wipe-PID-TAG-N, then owned by airlock and mode 0700, so
 * nothing of the instance reaches it any more and a fresh instance can
 * start), and a wipe thread removes the tree (openat/unlinkat, never
 * following a symlink; a tree deeper than 64 levels is cut into pieces
 * renamed up to BASE). The end of each wipe comes back on the loop.
 *
 * Three queues, each with four threads taking the next: work that a login
 * waits for (ENV_URGENT: a user's state brought in), so that it never waits
 * behind another user's state that is large or slow to read; the other work
 * of the pools (pool_env_run(): a user's state stored back, a store's
 * release, who holds a port); and wipes, so that a directory of millions of files holds back
 * neither the store-backs nor the other wipes. Nothing starts before the
 * work queued earlier in the queues before its own has ended: a store-back
 * waits for the fetch into its directory, a wipe for the store-back of it. */
#ifndef AIRLOCK_POOL_ENV_H
#define AIRLOCK_POOL_ENV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/loop.h"

struct pool_env;
struct wipe;

/* err: 0 or -errno of the wipe; entries: what it removed; ms: how long it took. */
typedef void (*wipe_done_cb)(void *arg, int err, uint64_t entries, uint64_t ms);

/* Starts the shared state of the pools on loop (the main loop), with its
 * threads. Returns it, or NULL with *err = -errno. */
struct pool_env *pool_env_new(struct loop *loop, int *err);

/* Finishes the queued wipes (blocking: for the exit, after the pools are
 * freed; their callbacks are not called) and frees e; NULL is harmless. */
void pool_env_free(struct pool_env *e);

/* Takes the lowest uid of first..last that no instance of this process
 * holds. Returns 0, or -EAGAIN when all are held. */
int pool_env_take_uid(struct pool_env *e, uid_t first, uid_t last, uid_t *uid);

/* Gives uid back (taken with pool_env_take_uid()). */
void pool_env_put_uid(struct pool_env *e, uid_t uid);

/* Whether uid was reaped since e started (pool_env_set_reaped()): an
 * earlier airlock, killed with sessions running, left what their instances
 * started running as their uids, and a uid not reaped yet is not to serve
 * anyone. */
bool pool_env_uid_reaped(const struct pool_env *e, uid_t uid);

/* Notes that no process of uid is left (its reaper said so) and none
 * started since but by an instance of e's pools. Returns 0 or -ENOMEM. */
int pool_env_set_reaped(struct pool_env *e, uid_t uid);

/* Notes that an earlier airlock's instances ran as uid (its record,
 * pool/record.h): the pool whose uids have it reaps it at once
 * (pool_env_take_left()), not at its next take. Returns 0 or -ENOMEM. */
int pool_env_set_left(struct pool_env *e, uid_t uid);

/* Takes (holds) a uid of first..last noted with pool_env_set_left() that
 * no one holds and no reaper went over since, for the caller's reaper; each
 * is given once. Returns 0, or -EAGAIN when there is none. */
int pool_env_take_left(struct pool_env *e, uid_t first, uid_t last, uid_t *uid);

/* Whether a wipe that gives a uid back finds the POSIX message queues the
 * uid left: /dev/mqueue is the mqueue filesystem (without it, nothing
 * lists them). */
bool pool_env_mqueues_wiped(void);

/* Moves base/name aside and queues its removal as described above; once
 * removed, uid goes back (when give_uid) and done(arg, ...) runs on the
 * loop (done may be NULL). Returns the queued wipe, or NULL with *err =
 * -errno (-ENOENT: there is nothing to wipe) and nothing done. */
struct wipe *pool_env_wipe(struct pool_env *e, const char *base, const char *name, bool give_uid,
                           uid_t uid, wipe_done_cb done, void *arg, int *err);

/* Queues the removal of what uid left where every uid may write (/tmp,
 * /var/tmp, /dev/shm, /dev/mqueue, /run/lock), as pool_env_wipe() does
 * after an instance's directory, for a uid no process of which is left but
 * whose last sessions were not wiped (an earlier airlock's, killed); then
 * uid goes back (unless something of it may remain: err) and done(arg,
 * ...) runs on the loop. Returns the queued wipe, or NULL with *err =
 * -ENOMEM and nothing done. */
struct wipe *pool_env_wipe_uid(struct pool_env *e, uid_t uid, wipe_done_cb done, void *arg,
                               int *err);

/* Work for a thread: returns 0 or -errno (the thread's only access to
 * ctx until it returns). */
typedef int (*env_work_fn)(void *ctx);

/* Runs on the loop once work(ctx) returned err; ctx is freed after it. */
typedef void (*env_work_done_cb)(void *arg, void *ctx, int err);

/* Where pool_env_run() queues work. */
enum env_queue {
    ENV_URGENT, /* a login waits for it: beside everything else */
    ENV_STORE,  /* beside the other ENV_STORE work; before the wipes queued after it */
    ENV_AFTER,  /* once the ENV_STORE and ENV_AFTER work queued before it has
                 * ended, and before any queued after it starts */
};

/* Queues work(ctx) last in q (the urgent work runs beside everything else,
 * but the store work and the wipes queued after this call wait for it all
 * the same). Once it ran, done(arg, ctx, err) runs on the loop (done may be
 * NULL) and ctx_free(ctx); e owns ctx from now on, even when this fails.
 * Returns the queued work, or NULL (out of memory: ctx is freed, nothing
 * runs). */
struct wipe *pool_env_run(struct pool_env *e, env_work_fn work, void *ctx,
                          void (*ctx_free)(void *ctx), enum env_queue q, env_work_done_cb done,
                          void *arg);

/* The owner of w (a wipe or work) goes away: its done callback is not
 * called; the wipe and the uid's return, or the work, still happen. */
void pool_env_wipe_detach(struct wipe *w);

/* Queues the removal of what an earlier airlock left in base: directories
 * of the pool whose instances are named PREFIX-<digits> (POOL, or
 * POOL-NODE with a node name) and .wipe-* ones (but e's own: each is
 * renamed e's, so a second sweep of base does not take it again). Returns
 * how many. */
unsigned pool_env_sweep(struct pool_env *e, const char *base, const char *prefix);

struct record;

/* The record of where the pools run (pool/record.h), which e's pools note
 * their places and uids in; NULL (the default) for none. */
void pool_env_set_record(struct pool_env *e, struct record *r);
struct record *pool_env_record(const struct pool_env *e);

#endif
