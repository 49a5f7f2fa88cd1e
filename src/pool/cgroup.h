/* cgroup.h - a cgroup of its own for each instance of a pool (docs/pool.md,
 * Isolation): the limits of one instance (memory_max, cpu_max,
 * max_processes), and the kill of every process it started, wherever it
 * went (setsid(), double forks) and whatever uid it runs as, which a
 * process group or a shared uid cannot reach.
 *
 * cgroup v2 (/sys/fs/cgroup is a cgroup2 mount): PARENT/airlock-NAME in the
 * one hierarchy, with memory.max (memory.swap.max 0, memory.oom.group 1),
 * cpu.max and pids.max; everything in it killed at once through
 * cgroup.kill.
 * cgroup v1, and hybrid hosts (/sys/fs/cgroup a tmpfs of v1 hierarchies;
 * their unified hierarchy has no controllers and is not used):
 * PARENT/airlock-NAME in the memory hierarchy (memory.limit_in_bytes and
 * memory.memsw.limit_in_bytes), with cpu_max in the cpu one
 * (cpu.cfs_quota_us), with max_processes in the pids one (pids.max), and
 * in the freezer one where it is mounted (and airlock may write there); the
 * processes killed until none is left: with the freezer, each time frozen
 * while they are signalled (none forks meanwhile), then thawed; without it,
 * those listed in the first one.
 *
 * PARENT is a cgroup path as /proc/self/cgroup shows them, under each
 * hierarchy's mount point, or airlock's own cgroup in each (CGROUP_OWN).
 * The directories and files airlock makes are root's (airlock's) and not
 * writable by anyone else: an instance of another uid can neither raise
 * its limits nor move itself out. */
#ifndef AIRLOCK_POOL_CGROUP_H
#define AIRLOCK_POOL_CGROUP_H

#include <stdbool.h>
#include <stddef.h>

#define CGROUP_DIRS_MAX 4    /* v1: the memory, cpu, pids and freezer hierarchies; v2: one */
#define CGROUP_PATH_MAX 1024 /* a cgroup's directory, incl. NUL */
#define CGROUP_PREFIX "airlock-"
#define CGROUP_SWEEP_MS 2000 /* how long a cgroup an earlier airlock left may take to empty */

/* The limits a directory's children get (struct cgroup_parent). */
#define CGROUP_LIMIT_MEMORY 1u /* memory_max */
#define CGROUP_LIMIT_CPU 2u    /* cpu_max */
#define CGROUP_LIMIT_PIDS 4u   /* pids_max */

/* Where, and with which limits, a pool's instances get their cgroups on
 * this host (cgroup_resolve()). */
struct cgroup_parent {
    bool v2;
    size_t n;                                   /* directories: 1 to 3 */
    char dir[CGROUP_DIRS_MAX][CGROUP_PATH_MAX]; /* dir[0]: where processes are listed */
    unsigned limits[CGROUP_DIRS_MAX];           /* CGROUP_LIMIT_*: written in dir[i]'s children */
    int freezer;       /* v1: the index of the directory in the freezer hierarchy, or -1 */
    size_t memory_max; /* bytes; 0: none */
    unsigned cpu_max;  /* hundredths of a core; 0: none */
    unsigned pids_max; /* processes and threads; 0: none */
};

/* One instance's cgroup: a directory in each hierarchy (n 0: none). */
struct cgroup {
    bool v2;
    size_t n;
    int memory;        /* the index of the directory with the memory controller, or -1 */
    size_t memory_max; /* its limit there */
    int freezer;       /* v1: the index of the directory in the freezer hierarchy, or -1 */
    char dir[CGROUP_DIRS_MAX][CGROUP_PATH_MAX];
};

/* Finds where cgroup (CGROUP_OWN or a cgroup path) is on this host, in the
 * hierarchies that memory_max (bytes), cpu_max (hundredths of a core) and
 * pids_max (processes and threads) need (0: not set; on v1 the memory
 * hierarchy, else the pids one, lists the processes of a cgroup without
 * limits), into *cp. Checks that each directory exists and, on v2, offers
 * the controllers. Returns 0, or -errno with why saying "KEY: what is
 * wrong" (naming the path). */
int cgroup_resolve(const char *cgroup, size_t memory_max, unsigned cpu_max, unsigned pids_max,
                   struct cgroup_parent *cp, char *why, size_t len);

/* cgroup_resolve(), then makes and removes a cgroup in each directory, as
 * a start would (airlock check). Returns 0 or -errno with why. */
int cgroup_check_host(const char *cgroup, size_t memory_max, unsigned cpu_max, unsigned pids_max,
                      char *why, size_t len);

/* Readies cp's directories for children with limits: on v2, enables the
 * controllers in the parent's cgroup.subtree_control. A cgroup with
 * processes has no children with controllers (v2's "no internal
 * processes"): when the parent is airlock's own cgroup, airlock first moves
 * itself into a leaf PARENT/airlock. Returns 0 or -errno with why. */
int cgroup_prepare(const struct cgroup_parent *cp, char *why, size_t len);

/* Makes the cgroup CGROUP_PREFIX name in each of cp's directories with
 * cp's limits into *cg, and opens each one's cgroup.procs for writing into
 * fds[0..cg->n) (close-on-exec; the caller closes them): the child writes
 * "0" there before its exec, joining them. A name that exists already
 * (left by an earlier airlock, not removed yet) is -EEXIST. Returns 0, or
 * -errno with why (nothing left made). */
int cgroup_make(const struct cgroup_parent *cp, const char *name, struct cgroup *cg, int *fds,
                char *why, size_t len);

/* Kills every process in cg and removes it: v2's cgroup.kill, then (and
 * on v1 from the start) each process listed in cgroup.procs, again until
 * none is left, then each directory is removed; on v1 with the freezer,
 * that directory first, frozen while its processes are signalled and then
 * thawed, each round. A pid is signalled through a pidfd opened before the
 * list was read again and still listed (or while the cgroup is frozen: no
 * process of it exits), so no process that took a pid freed meanwhile is
 * ever hit. Blocking, with no
 * allocation: for a forked child or a thread. timeout_ms < 0: until done.
 * Returns 0 (also when it was gone), -EBUSY at the timeout, or -errno. */
int cgroup_clear(const struct cgroup *cg, long timeout_ms);

/* How many processes of cg the kernel killed at its memory limit
 * (memory.events or memory.oom_control: oom_kill); 0 without one (a cg of
 * no directory: none). */
unsigned long long cgroup_oom_kills(const struct cgroup *cg);

/* On v1, an eventfd (non-blocking, close-on-exec; the caller closes it)
 * the kernel signals at an OOM in cg's memory cgroup, its own limit's or
 * an ancestor's (cgroup.event_control on memory.oom_control): v1 has no
 * memory.oom.group, so its OOM killer kills one process of the instance,
 * and the pool ends the rest. The notification comes before the kill is
 * counted (cgroup_oom_kills()). It is signalled once more when the cgroup is
 * removed. Returns the fd, -EOPNOTSUPP on v2 (memory.oom.group 1 kills the
 * whole cgroup) or without a memory limit, or -errno. */
int cgroup_oom_watch(const struct cgroup *cg);

/* Clears the n cgroups of stale (cgroup_stale()) in order, each within
 * timeout_ms (cgroup_clear(); blocking: on a thread), counting those removed
 * in *removed. Returns 0, or the -errno of the last that could not be
 * removed, with its directory in left (CGROUP_PATH_MAX bytes). */
int cgroup_clear_all(const struct cgroup *stale, size_t n, long timeout_ms, unsigned *removed,
                     char *left);

/* The cgroups an earlier airlock left in cp's directories for instances
 * named PREFIX-<digits> (CGROUP_PREFIX PREFIX-N), each as one cgroup of
 * one directory, those of the freezer first (cleared in this order, they
 * are emptied frozen). Returns an array of *n (free() it), or NULL when there are
 * none (or no memory to list them). */
struct cgroup *cgroup_stale(const struct cgroup_parent *cp, const char *prefix, size_t *n);

#endif
