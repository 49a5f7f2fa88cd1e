/* record.h - where the pools of this airlock run, kept in a file while it
 * runs (docs/pool.md, Isolation), so that the next airlock run from the
 * same config removes what a killed one left even of a pool the config no
 * longer has, or has moved: the processes in its instances' cgroups and
 * those cgroups, the processes and files of its instances' uids, its
 * instance directories. What a pool that is still in the config left where
 * it still runs, it removes itself (pool_new(): its cgroups and directories
 * at its start; the uids listed here at once, pool_env_set_left(), and any
 * other before its first use); the record is for the rest.
 *
 * The file is a list of lines, each written once, when it is first noted:
 *
 *   dir PREFIX BASE                   instance directories PREFIX-N in BASE
 *   cgroup PREFIX V2 FREEZER PARENT   their cgroups airlock-PREFIX-N in PARENT
 *                                     (V2, FREEZER: 0 or 1)
 *   uid UID                           an instance ran as UID (of uids:)
 *
 * PREFIX is the instances' name prefix (POOL, or POOL-NODE). The file is
 * held with flock(2) for as long as its airlock runs: a second airlock run
 * from the same config is refused, and a killed one's lock is free at once.
 * It is airlock's (mode 0600, in a directory only airlock may change): a
 * line of it makes airlock kill and remove. */
#ifndef AIRLOCK_POOL_RECORD_H
#define AIRLOCK_POOL_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/loop.h"
#include "pool/cgroup.h"
#include "pool/env.h"

struct record;

/* Opens the record at path (absolute), made (mode 0600) when missing, takes it (flock)
 * and reads what the airlock that held it before noted. Its directory must
 * be one only airlock may change (privdir_check()). Returns it, or NULL
 * with *err = -errno (-EWOULDBLOCK: another airlock holds it) and why. */
struct record *record_open(const char *path, int *err, char *why, size_t len);

/* Whether the airlock before left lines to sweep (record_sweep()). */
bool record_pending(const struct record *r);

/* Notes that a pool's instances are named PREFIX-N, with their directories
 * in base, their cgroups in cgp's directories (NULL: none) and their uids
 * in uid_min..uid_max (uid_max 0: none). Each line is written at once, once
 * per run; r NULL is harmless. */
void record_note_pool(struct record *r, const char *prefix, const char *base,
                      const struct cgroup_parent *cgp, uid_t uid_min, uid_t uid_max);

/* Notes that an instance runs as uid (of a pool's uids), before it starts. */
void record_note_uid(struct record *r, uid_t uid);

/* Removes, through e on loop, what the airlock before noted and no pool
 * noted since covers (the same directories, cgroup parents or uid range):
 * its instance directories are wiped, the processes of its cgroups killed
 * and those removed, the processes of its uids killed and what they left
 * in /tmp and the like removed. Its uids that a pool's range covers go to
 * that pool (pool_env_set_left()). Once done, the file holds this run's
 * lines, and those of the earlier one that could not be removed or that a
 * pool is still to reap (tried again at the next start). Call it once,
 * after the pools of the config started, before the loop turns again. */
void record_sweep(struct record *r, struct pool_env *e, struct loop *loop);

/* Notes that something of this run may be left where it noted (a process
 * that would not go at the stop): the file stays at record_free(). */
void record_keep(struct record *r);

/* Stops a sweep under way (its work on e's threads ends without it), lets
 * the file go and frees r; NULL is harmless. Called once the pools are
 * stopped: the file is removed when the sweep was done and nothing was
 * kept (record_keep()), else it stays for the next start. */
void record_free(struct record *r);

#endif
