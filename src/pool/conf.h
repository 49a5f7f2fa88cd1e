/* conf.h - the settings of one pool of standby instances (an entry of
 * pools:; docs/pool.md), their defaults, bounds and the rules that span
 * several of them. The keys are described in cli/config.h. */
#ifndef AIRLOCK_POOL_CONF_H
#define AIRLOCK_POOL_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "core/units.h"

#define CONF_POOLS_MAX 16
#define CONF_ARGV_MAX 32   /* words of a command, launcher or hook */
#define CONF_ARG_MAX 512   /* bytes of one word or template, incl. NUL */
#define CONF_REGEX_MAX 512 /* bytes of one event rule, incl. NUL */
#define CONF_INSTANCES_MAX 1024
#define POOL_NAME_MAX 40            /* characters of a pool name: instance names are NAME-N */
#define POOL_UID_LAST 4294967294u   /* (uid_t)-1 means "no change" to setresuid() */
#define POOL_PROCESSES_MAX 4194304u /* max_processes: the kernel's pid_max at most */
#define STATE_FILE_SIZE_DEFAULT ((size_t)256 << 20)  /* state.max_file_size (docs/pool.md) */
#define STATE_FILE_SIZE_MAX ((size_t)1 << 40)        /* the largest size units_size() reads */
#define STATE_SESSION_SIZE_DEFAULT ((size_t)1 << 30) /* state.max_session_size (docs/pool.md) */
#define CONF_CGROUP_MAX 512                          /* bytes of cgroup:, incl. NUL */
#define CGROUP_OWN "own"                  /* cgroup: airlock's own cgroup (the default) */
#define POOL_MEMORY_MIN ((size_t)1 << 20) /* memory_max: an instance needs some to exec */
#define POOL_MEMORY_MAX ((size_t)1 << 40) /* the largest size units_size() reads */
#define POOL_CPU_MAX 102400u              /* cpu_max, in hundredths of a core: 1024 cores */

/* An argv template: words with {port}, {dir}, {instance}, {uid}, {gid} (and
 * {user} in hooks). */
struct argv_conf {
    char arg[CONF_ARGV_MAX][CONF_ARG_MAX];
    size_t n; /* 0: not set */
};

/* A provisioning or deprovisioning hook. */
struct hook_conf {
    struct argv_conf command; /* n == 0: no hook */
    unsigned timeout_ms;      /* default 30s; more than 0 */
};

/* Built-in provisioning (state:): airlock itself copies a user's files
 * between a store directory and the instance directory (pool/state.h),
 * with no hook process. Names are templates with {user}. */
struct state_conf {
    char store[CONF_FILE_PATH_MAX];  /* "": not used */
    struct argv_conf fetch_optional; /* brought in first, when the store has them */
    struct argv_conf fetch;          /* then these, in order (the store must have them) */
    struct argv_conf store_back;     /* copied back to the store after the session */
    size_t max_file_size;            /* of each file stored back; default 256 MiB */
    size_t max_session_size;         /* of all of one session's; 0 (unset): the larger of
                                      * 1 GiB and max_file_size */
    unsigned timeout_ms;             /* each way; default 30s; more than 0 */
};

/* One pool of standby instances (an entry of pools:). */
struct pool_conf {
    char name[CONF_NAME_MAX];
    struct argv_conf launcher;           /* optional prefix (gramine-sgx, nitro-cli ...) */
    struct argv_conf command;            /* required */
    char endpoint[CONF_ARG_MAX];         /* template; required */
    unsigned port_min, port_max;         /* ports: A-B; 0-0 when not set */
    char dir[CONF_FILE_PATH_MAX];        /* base of the instance directories; required */
    char user[CONF_NAME_MAX];            /* run-as user; "" keeps airlock's */
    unsigned uid_min, uid_max;           /* uids: A-B, one per instance; 0-0 when not set */
    char group[CONF_NAME_MAX];           /* with uids: every instance's gid; "": gid = uid */
    unsigned max_processes;              /* processes and threads of each instance, default
                                            1024, 0: none; with uids: RLIMIT_NPROC of its uid;
                                            with a cgroup: its pids.max (whatever its uid) */
    char cgroup[CONF_CGROUP_MAX];        /* where each instance gets a cgroup of its own
                                            (pool/cgroup.h): a cgroup path ("/airlock"), or
                                            CGROUP_OWN; "": none, unless a limit below is set */
    size_t memory_max;                   /* of each instance's cgroup; 0: none */
    unsigned cpu_max;                    /* of each instance's cgroup, in hundredths of a
                                            core; 0: none */
    unsigned min_idle;                   /* default 1 */
    unsigned max;                        /* default 10, at most CONF_INSTANCES_MAX */
    unsigned max_idle;                   /* default min_idle */
    unsigned cooldown_ms;                /* default 60s */
    unsigned replace_delay_ms;           /* default 50ms */
    unsigned replace_after_login_ms;     /* default 20ms */
    unsigned start_timeout_ms;           /* default 30s; more than 0 */
    unsigned stop_grace_ms;              /* default 5s: SIGTERM, then SIGKILL */
    unsigned backoff_ms, backoff_max_ms; /* restart backoff; default 250ms, 30s */
    char ready[CONF_REGEX_MAX];          /* POSIX extended regexes; ready and login required */
    char login[CONF_REGEX_MAX];          /* one capture group: the user */
    char logout[CONF_REGEX_MAX];         /* "" : the process's exit ends the session */
    struct hook_conf provision, deprovision;
    struct state_conf state; /* instead of the hooks */
};

/* Fills *pc with the defaults (see struct pool_conf); max_idle is left
 * unset until pool_conf_check() makes it min_idle. */
void pool_conf_defaults(struct pool_conf *pc);

/* Completes *pc (max_idle) and checks the rules that span its keys (counts,
 * backoff, ports and uids against max, user or uids, the endpoint template
 * expanded for a sample instance). Returns 0, or -1 with *f naming the key
 * at fault. What only the host can tell is pool_conf_check_host()'s. */
int pool_conf_check(struct pool_conf *pc, struct conf_fault *f);

/* Checks an event rule: a POSIX extended regex of 1-511 bytes that glibc
 * compiles in bounded memory, with a capture group when group is set.
 * Returns 0, or -1 with what was expected in msg. */
int pool_conf_regex(const char *s, bool group, char *msg, size_t msglen);

/* Returns the ports pc's instances can use (0 when it needs none). */
unsigned pool_conf_ports(const struct pool_conf *pc);

/* Returns the size of pc's uid range (0 without uids:). */
unsigned pool_conf_uids(const struct pool_conf *pc);

/* Whether pc's instances get a cgroup each (cgroup:, memory_max or
 * cpu_max given). */
bool pool_conf_cgroups(const struct pool_conf *pc);

/* The cgroup path pc's instances get their cgroups under: pc->cgroup, or
 * CGROUP_OWN when only a limit is given. Only when pool_conf_cgroups(). */
const char *pool_conf_cgroup(const struct pool_conf *pc);

/* For max_processes, which bounds each instance's uid (uids) or each
 * instance's cgroup (pool_conf_cgroups()): NULL, or why it does not apply. */
const char *pool_conf_processes_apply(const struct pool_conf *pc);

#endif
