/* pool.h - the supervisor of one pool of standby instances (docs/pool.md).
 *
 * Each instance is a process started from the pool's command template in
 * its own process group and fresh working directory (mode 0700), as a uid
 * of its own (uids:), a shared user (user:) or airlock's. Its state:
 *
 *   starting --ready line--> idle [--reservation--> reserved (hook ahead)]
 *   --login line--> verifying --directory: reserved for that user-->
 *   provisioning --hook ok--> active --logout line / exit--> stopping -->
 *   deprovisioning --> wiping --> (gone)
 *
 * A login line is believed only when the directory reserved the instance
 * for that user (dir_activate()); any other claim kills it at once with
 * nothing stored back, and is counted (airlock_pool_forged_logins_total).
 * Any failure (a start timeout, a crash, a hook that fails or times out, a
 * bad login line) goes to stopping at once; once the process is gone, every
 * other process of its own uid is killed; the deprovisioning hook runs only
 * for a session whose provisioning hook succeeded. Then DIR_STOPPED is
 * reported, the directory is wiped off the loop (the uid is held until it
 * is done) and a fresh process takes the place of an instance that served a
 * session or failed. A uid is reaped the same way before its first instance
 * (an earlier airlock, killed, left running as it what its sessions
 * started), held until no process of it is left; those the earlier
 * airlock's record lists (pool/record.h) at once, when the pool starts.
 * Autoscaling keeps min_idle instances starting or idle, never more than
 * max in total, and trims idle ones above max_idle
 * after cooldown. Starts that fail back off exponentially. Every state
 * change is reported to the directory.
 *
 * Everything runs on the loop given to pool_new(), never blocking it. */
#ifndef AIRLOCK_POOL_POOL_H
#define AIRLOCK_POOL_POOL_H

#include <stddef.h>

#include "core/loop.h"
#include "core/strbuf.h"
#include "dir/dir.h"
#include "pool/conf.h"
#include "pool/env.h"

struct pool;

/* Checks what pc's file cannot tell, on this machine: the run-as user
 * exists, no account or group has a uid or gid of the uids range, and
 * airlock, as root, has CAP_SYS_PTRACE for a pool with uids and ports
 * (sockdiag_holder_check()). Returns 0, or -errno with a message
 * ("KEY: ...") in why. */
int pool_conf_check_host(const struct pool_conf *pc, char *why, size_t len);

/* Checks, when pc's instances get cgroups (pool_conf_cgroups()), that
 * this airlock can make them where pc says, with the controllers its
 * limits need (cgroup_check_host()). Returns 0, or -errno with a message
 * ("KEY: ...") in why. */
int pool_conf_check_cgroup(const struct pool_conf *pc, char *why, size_t len);

/* Whether an instance of pc (a pool with uids) could connect to ep on this
 * machine: any tcp endpoint and abstract unix socket; a unix socket whose
 * directories it may pass and that it may write to by the owner, group or
 * other bits of each, or that does not exist yet where it could (it cannot
 * be told). */
bool pool_conf_reaches(const struct pool_conf *pc, const struct endpoint *ep);

/* Starts a pool as pc says on loop, reporting to d (required, since logins
 * are checked against its reservations: -EINVAL without), taking uids and
 * wiping through env (shared by every pool of the process; it must outlive
 * p). Checks pc with pool_conf_check_host(), creates pc->dir (mode 0711:
 * passable, not listable) when missing (it must be airlock's and not
 * writable by others) and queues the wipe of what an earlier airlock left
 * in it; with cgroups, readies their parent and queues the removal of
 * those an earlier airlock left (no instance starts before it is done).
 * Returns the pool, or NULL with *err = -errno (-ENOENT: no such user).
 * Free with pool_free(). */
struct pool *pool_new(struct loop *loop, struct dir *d, struct pool_env *env,
                      const struct pool_conf *pc, int *err);

/* Applies pc (same name) to p: sizes, timeouts, backoff and hooks take
 * effect at once, the command, endpoint, ports, events and user for
 * instances started from now on. No instance with a session is stopped.
 * Returns 0, or -1 when a part of pc could not be applied and keeps its
 * running value (logged, and named in kept[0..len), "; " between parts). */
int pool_reconfigure(struct pool *p, const struct pool_conf *pc, char *kept, size_t len);

/* Stops every instance (SIGTERM, SIGKILL after stop_grace) and starts no
 * more; the deprovisioning hooks of sessions still run. */
void pool_stop(struct pool *p);

/* Returns how many instances p still has (running or being torn down). */
size_t pool_busy(const struct pool *p);

/* Returns how many of p's sessions are still to be stored back or being
 * stored back: pool_free() would cut them off (a user back on another
 * node would be served the state from before the session). Once
 * pool_kill() ran, a session whose processes are not gone within a few
 * seconds no longer counts (they may never go). */
size_t pool_storing(const struct pool *p);

/* At drain_timeout: kills the processes of the instances still stopping
 * (SIGKILL); their sessions are stored back as usual (pool_storing()). */
void pool_kill(struct pool *p);

/* Returns p's configuration. */
const struct pool_conf *pool_conf(const struct pool *p);

/* Kills whatever is left (SIGKILL to each process group, reaped at once;
 * every process of each uid of its own, waiting a few seconds at most),
 * deprovisioning hooks too, reports the instances stopped, hands the
 * directories to the env's wipe threads and frees p; NULL is
 * harmless. Deferred work of p may still be queued on the loop: run the
 * loop once more before freeing it. */
void pool_free(struct pool *p);

/* Appends the Prometheus text of the n pools (instances by state, starts,
 * restarts, hook failures, forged logins, time to ready) to out; nothing
 * when n is 0. */
void pool_metrics(struct strbuf *out, struct pool *const *pools, size_t n);

#endif
