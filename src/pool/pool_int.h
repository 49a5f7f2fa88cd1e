/* pool_int.h - inside a pool: its instances, their states, and what
 * pool.c lends the files that do one part of a pool's work for it. Private
 * to pool.c (the supervisor: states, hooks, ends, autoscaling, the
 * directory's changes), pool_uid.c (who an instance runs as: uids reaped
 * before their first use, the shared user, the host's accounts) and
 * pool_port.c (the ports of a pool's range and who holds them).
 *
 * Everything here runs on the pool's loop (pool.h). */
#ifndef AIRLOCK_POOL_POOL_INT_H
#define AIRLOCK_POOL_POOL_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/backoff.h"
#include "core/list.h"
#include "core/loop.h"
#include "dir/dir.h"
#include "net/endpoint.h"
#include "pool/cgroup.h"
#include "pool/conf.h"
#include "pool/env.h"
#include "pool/pool.h"
#include "pool/rules.h"
#include "pool/spawn.h"

#define REAP_PATIENCE_MS 2000 /* a reaper still running then is killed and started again */
#define PREFIX_MAX (CONF_NAME_MAX + DIR_NODE_MAX + 2) /* instance_prefix() */
#define READY_BUCKETS 8                               /* pool.c's ready_bounds[] */
#define LEFTOVERS "no process left, but keys or SysV IPC objects of the uid are"

enum inst_state {
    INST_STARTING,       /* spawned; waiting for the ready line */
    INST_IDLE,           /* ready for a user */
    INST_RESERVED,       /* the directory reserved it for a user: their state is brought in
                            ahead of the login (provisioned once the hook is done) */
    INST_VERIFYING,      /* login line seen; the directory checks it (dir_activate): nothing
                            is brought in for the claimed user meanwhile */
    INST_PROVISIONING,   /* login confirmed; the provisioning hook runs */
    INST_ACTIVE,         /* serving its user */
    INST_STOPPING,       /* being stopped: SIGTERM, SIGKILL after stop_grace; then, with a
                            uid of its own, every process of the uid is killed */
    INST_DEPROVISIONING, /* gone; the deprovisioning hook stores the state back */
    INST_WIPING,         /* gone; its directory is being wiped (it keeps its uid) */
    INST_STATE_COUNT
};

/* Why an instance is stopped. */
enum stop_why {
    WHY_LOGOUT,
    WHY_EXIT,
    WHY_TRIM,
    WHY_START_TIMEOUT,
    WHY_HOOK,
    WHY_BAD_LOGIN,
    WHY_FORGED_LOGIN, /* a login the directory did not reserve the instance for */
    WHY_UNVERIFIED,   /* a login the directory could not check (unreachable) */
    WHY_RECYCLE,
    WHY_SHUTDOWN,
    WHY_TOOK_PORT,    /* it holds a port of a pool, not its own */
    WHY_MEMORY_LIMIT, /* the kernel killed it at its memory_max */
};

enum hook_kind { HOOK_PROVISION, HOOK_DEPROVISION, HOOK_COUNT };

/* HF_STATE: built-in provisioning (state:) failed or refused */
enum hook_fail { HF_EXIT, HF_TIMEOUT, HF_SPAWN, HF_STATE, HF_COUNT };

struct instance {
    struct pool *pool;
    struct list link; /* in pool->instances */
    char name[DIR_NAME_MAX];
    char dir[CONF_FILE_PATH_MAX + DIR_NAME_MAX];
    char port[8];      /* "" when the pool has no ports */
    unsigned port_idx; /* in the pool's port_used, or PORT_NONE: no port, or one out of the
                          range since a reload (kept, never given again) */
    struct endpoint ep;
    enum inst_state state;
    enum stop_why why;
    char user[DIR_KEY_MAX];
    bool provisioned; /* the directory holds the user's state: store it back */
    bool replace;     /* start a fresh instance in its place when gone */
    bool sent_term;
    bool run_as;  /* runs as uid/gid (else as airlock) */
    bool own_uid; /* a uid of the pool's uids: taken from p->env, given back after the wipe */
    bool reaped;  /* own_uid: no process of the uid is left */
    bool spoilt;  /* own_uid: the uid keeps keys or SysV IPC objects the reaper could not
                     remove: not used again */
    uid_t uid;
    gid_t gid;
    char uid_s[12], gid_s[12]; /* {uid} {gid} */
    unsigned reap_tries;
    struct cgroup cg; /* its own (cg.n 0: none); removed by its reaper */
    int oom_fd;       /* v1: signalled at an OOM in its memory cgroup (cgroup_oom_watch()); -1 */
    struct io oom_io;
    struct timer oom_timer; /* the kill that follows an OOM, looked for again */
    uint64_t oom_until;     /* looked for until this loop_now() */
    unsigned oom_wait_ms;
    struct proc proc, hook, reaper;
    enum hook_kind hook_kind;
    struct wipe *xfer; /* built-in provisioning (state:) on an env thread, in place of hook */
    struct dir_activate *activating; /* the directory's answer to its login line, to come
                                        (INST_VERIFYING, or INST_STOPPING after it) */
    bool logged_out;                 /* INST_VERIFYING: its logout line came before the answer */
    struct timer timer; /* start timeout, hook timeout, stop escalation, reaper patience */
    struct wipe *wipe;  /* INST_WIPING */
    uint64_t started;
    uint64_t idle_since;
    struct task reap;
    struct task withdraw; /* the directory withdrew a reservation (withdrawn()) */
    unsigned withdraw_turns;
    char withdrawn_key[DIR_KEY_MAX];
};

#define PORT_NONE UINT_MAX

struct pool_stats {
    unsigned long long starts, restarts;
    unsigned long long hook_failures[HOOK_COUNT][HF_COUNT];
    unsigned long long ready_buckets[READY_BUCKETS];
    unsigned long long ready_count, ready_sum_ms;
    unsigned long long forged_logins;
    unsigned long long took_ports;   /* instances stopped for holding a port not their own */
    unsigned long long memory_kills; /* instances the kernel killed at memory_max */
};

struct pool {
    struct loop *loop;
    struct dir *dir;
    struct pool_env *env;
    struct pool_conf conf;
    struct rules rules;
    bool run_as; /* user: */
    uid_t uid;
    gid_t gid;
    bool has_group; /* group: (with uids:) */
    gid_t group_gid;
    struct list instances; /* oldest first */
    size_t n[INST_STATE_COUNT];
    size_t total;
    unsigned pending; /* fresh instances owed for ones that went away (to max_idle) */
    struct backoff backoff;
    uint64_t not_before;   /* no start before this loop_now() */
    uint64_t calm_until;   /* starts owed to a take wait until then while one is idle */
    uint64_t settle_until; /* ... and until then after the last login: its first request */
    unsigned long long seq;
    bool *port_used; /* pool_conf_ports() entries */
    unsigned n_ports;
    bool stopping;
    uint64_t killed_ms; /* pool_kill()'s loop_now(), or 0 */
    struct timer scale_timer;
    struct task scale_task, free_task;
    struct pool_stats stats;
    int store_lock;       /* conf.state.store, held (state_store_lock()); -1: none */
    struct wipe *holders; /* holders_run() under way, or NULL */
    bool cgroups;         /* each instance gets a cgroup of its own, in cgp */
    struct cgroup_parent cgp;
    struct wipe *cg_sweep; /* the cgroups of an earlier airlock being removed: no start before */
    struct list uid_reaps; /* struct uid_reap: uids reaped before their first use */
    struct list link;      /* in all_pools */
};

/* ---- pool.c */

/* Stops in for why: its session (if any) ends in the directory now; the
 * process gets SIGTERM (after stop_grace on a logout, so that it can exit
 * by itself) and SIGKILL stop_grace later, or SIGKILL at once when it must
 * not go on (a failed hook, a bad login, a start timeout). replace: a
 * fresh instance takes its place once it is gone. */
void pool_retire(struct instance *in, enum stop_why why, bool replace);

/* Autoscaling runs after the current batch of events, once however many
 * states changed in it. */
void pool_scale_soon(struct pool *p);

/* One line of an instance, hook or reaper in the log (of key=value), as the
 * quoted value of the field what (out="LINE"). */
void pool_said(const struct pool *p, const char *key, const char *value, const char *what,
               const char *line, bool cut);

/* When a reaper that ended without its work done is started again, after
 * tries. */
unsigned pool_reap_again_ms(unsigned tries);

/* The live instance of any pool that runs as uid, its own (uids:), or NULL:
 * no other process runs as it. */
struct instance *pool_instance_of_uid(uid_t uid);

/* ---- pool_uid.c */

/* Who in runs as: a uid of its own from uids: (reaped first when this
 * airlock has not reaped it yet), the shared user:, or airlock's. Returns
 * 0, or -EAGAIN when every uid is held or being reaped before its first
 * use (its end comes back to autoscaling). */
int pool_take_uid(struct pool *p, struct instance *in);

/* Starts a reaper for each uid of p's that an earlier airlock's instances
 * ran as (its record: pool_env_set_left()), all at once. */
void pool_reap_left(struct pool *p);

/* Ends the reaps of uids before their first use that are still under way:
 * their uids are reaped again at their next take. */
void pool_uid_reaps_end(struct pool *p);

/* Who pc's instances run as: the shared user (user:), the group of uids:;
 * p keeps what it had when pc's user or group does not exist (-ENOENT). */
int pool_apply_user(struct pool *p, const struct pool_conf *pc);

/* ---- pool_port.c */

/* A free port of p's range for in (none needed: ""). Returns 0, -ENOMEM,
 * or -EAGAIN when every port is held (by instances reloaded from a larger
 * range, or by a socket there: tried again at the next start). An instance
 * found holding one not its own is stopped (why=took_port). */
int pool_take_port(struct pool *p, struct instance *in);

/* Lets the search for the holders of p's ports end without p. */
void pool_ports_stop(struct pool *p);

#endif
