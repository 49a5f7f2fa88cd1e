/* cgroup.c - an instance's cgroup; see cgroup.h. */
#include "pool/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "pool/conf.h"

#define CGROUP_MOUNT "/sys/fs/cgroup"
#define LEAF "airlock"       /* v2: airlock's own leaf, when its cgroup is the parent */
#define CPU_PERIOD_US 100000 /* cpu_max's period: cpu_max hundredths = quota in ms */
#define KILL_BATCH 128       /* pids signalled per read of cgroup.procs */
#define STALE_MAX 1024       /* cgroups of an earlier airlock removed at a pool's start */
#define FREEZE_TRIES 20      /* reads of freezer.state, 1 ms apart, before it is taken for stuck */
#define FILE_PATH_MAX (CGROUP_PATH_MAX + 32)

/* ---- small files of cgroupfs and procfs (raw calls: cgroup_clear() runs in forked children) */

/* Reads path into buf (NUL-terminated, len - 1 bytes at most). Returns
 * the length or -errno. */
static int
read_text(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t have = 0;

    if (fd < 0)
        return -errno;
    while (have + 1 < len) {
        ssize_t n = read(fd, buf + have, len - 1 - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int rc = -errno;
            close(fd);
            return rc;
        }
        if (n == 0)
            break;
        have += (size_t)n;
    }
    close(fd);
    buf[have] = '\0';
    return (int)have;
}

/* Writes text to dir/file. Returns 0 or -errno. */
static int
write_text(const char *dir, const char *file, const char *text)
{
    char path[FILE_PATH_MAX];
    int fd, rc = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
        return -errno;
    if (write(fd, text, strlen(text)) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* Whether word is one of the words of list, apart by any of seps. */
static bool
has_word(const char *list, const char *word, const char *seps)
{
    size_t len = strlen(word);

    for (const char *p = list; *p != '\0';) {
        size_t n = strcspn(p, seps);
        if (n == len && strncmp(p, word, len) == 0)
            return true;
        p += n;
        p += *p != '\0';
    }
    return false;
}

/* ---- where the hierarchies are */

/* A hierarchy's mount: its mount point and the cgroup path of its root. */
struct mount {
    char point[CGROUP_PATH_MAX];
    char root[CGROUP_PATH_MAX];
};

/* The last mount in /proc/self/mountinfo (the one on top, when several are
 * stacked) of fstype at point (NULL: anywhere) whose super options name
 * controller (NULL: any). Returns 0 or -ENOENT. */
static int
find_mount(const char *fstype, const char *point, const char *controller, struct mount *m)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char *line = NULL, *tok[64];
    size_t cap = 0;
    int rc = -ENOENT;

    if (f == NULL)
        return -errno;
    while (getline(&line, &cap, f) > 0) {
        size_t n = 0, sep = 0;
        char *save = NULL;
        for (char *t = strtok_r(line, " \n", &save); t != NULL && n < 64;
             t = strtok_r(NULL, " \n", &save))
            tok[n++] = t;
        for (size_t i = 6; i < n && sep == 0; i++)
            sep = strcmp(tok[i], "-") == 0 ? i : 0;
        /* fields: id parent dev root point options [optional...] - fstype source super */
        if (sep == 0 || sep + 3 >= n || strcmp(tok[sep + 1], fstype) != 0 ||
            (point != NULL && strcmp(tok[4], point) != 0) ||
            (controller != NULL && !has_word(tok[sep + 3], controller, ",")) ||
            strchr(tok[3], '\\') != NULL || strchr(tok[4], '\\') != NULL || /* escaped: odd */
            strlen(tok[3]) >= sizeof(m->root) || strlen(tok[4]) >= sizeof(m->point))
            continue;
        memcpy(m->root, tok[3], strlen(tok[3]) + 1);
        memcpy(m->point, tok[4], strlen(tok[4]) + 1);
        rc = 0;
    }
    free(line);
    fclose(f);
    return rc;
}

/* airlock's /proc/self/cgroup as it started: read once, since airlock may
 * move itself into a leaf of its cgroup (cgroup_prepare()), whose parent
 * stays its own. */
static char self_cgroup[4096];

/* airlock's own cgroup path in the hierarchy of controller (NULL: v2's)
 * into path. Returns 0 or -errno. */
static int
own_path(const char *controller, char *path, size_t len)
{
    int rc;

    if (self_cgroup[0] == '\0' &&
        (rc = read_text("/proc/self/cgroup", self_cgroup, sizeof(self_cgroup))) < 0)
        return rc;
    /* lines of ID:CONTROLLERS:PATH; v2's is 0::PATH */
    for (const char *l = self_cgroup; *l != '\0';) {
        size_t n = strcspn(l, "\n");
        const char *c1 = memchr(l, ':', n),
                   *c2 = c1 ? memchr(c1 + 1, ':', n - (size_t)(c1 - l) - 1) : NULL;
        if (c2 != NULL) {
            char ctl[256];
            size_t cl = (size_t)(c2 - c1 - 1), pl = n - (size_t)(c2 + 1 - l);
            bool match = false;
            if (cl < sizeof(ctl)) {
                memcpy(ctl, c1 + 1, cl);
                ctl[cl] = '\0';
                match = controller == NULL ? cl == 0 && strncmp(l, "0:", 2) == 0
                                           : has_word(ctl, controller, ",");
            }
            if (match && pl < len) {
                memcpy(path, c2 + 1, pl);
                path[pl] = '\0';
                return 0;
            }
        }
        l += n;
        l += *l == '\n';
    }
    return -ENOENT;
}

/* The directory of cgroup path under m, into dir. Returns 0, or -EINVAL
 * when path is not under the mount's root (a cgroup namespace's). */
static int
join(const struct mount *m, const char *path, char *dir, size_t len)
{
    size_t rl = strcmp(m->root, "/") == 0 ? 0 : strlen(m->root);

    if (strncmp(path, m->root, rl) != 0 || (path[rl] != '/' && path[rl] != '\0'))
        return -EINVAL;
    const char *rest = path + rl;
    if (strcmp(rest, "/") == 0)
        rest = "";
    if ((size_t)snprintf(dir, len, "%s%s", m->point, rest) >= len)
        return -ENAMETOOLONG;
    return 0;
}

/* The directory of cgroup (CGROUP_OWN or a path) in the hierarchy of
 * controller (v2: NULL), mounted at m, into dir. Returns 0 or -errno with
 * why. */
static int
locate(const struct mount *m, const char *controller, const char *cgroup, char *dir, size_t len,
       char *why, size_t wlen)
{
    char own[CGROUP_PATH_MAX];
    const char *path = cgroup;
    int rc;

    if (strcmp(cgroup, CGROUP_OWN) == 0) {
        if ((rc = own_path(controller, own, sizeof(own))) != 0) {
            snprintf(why, wlen,
                     "cgroup: /proc/self/cgroup names no cgroup of airlock in the %s "
                     "hierarchy",
                     controller ? controller : "v2");
            return rc;
        }
        path = own;
    }
    if ((rc = join(m, path, dir, len)) != 0) {
        snprintf(why, wlen, "cgroup: %s is not under %s (the %s hierarchy's root there is %s)",
                 path, m->point, controller ? controller : "v2", m->root);
        return rc;
    }
    return 0;
}

/* Each limit: its key, and the controller it needs (v2), or the hierarchy
 * its directory is in (v1). */
static const struct {
    unsigned bit;
    const char *key, *controller;
} limit_keys[] = {
    {CGROUP_LIMIT_MEMORY, "memory_max", "memory"},
    {CGROUP_LIMIT_CPU, "cpu_max", "cpu"},
    {CGROUP_LIMIT_PIDS, "max_processes", "pids"},
};
#define LIMIT_KEYS (sizeof(limit_keys) / sizeof(limit_keys[0]))

/* The key of the first limit of the mask limits, or "cgroup" without one. */
static const char *
limits_key(unsigned limits)
{
    for (size_t k = 0; k < LIMIT_KEYS; k++)
        if (limits & limit_keys[k].bit)
            return limit_keys[k].key;
    return "cgroup";
}

/* Appends to cp the directory of cgroup in the hierarchy of controller
 * (v1) or the v2 one (controller NULL), where the children get the limits
 * of the mask limits (CGROUP_LIMIT_*). Returns 0 or -errno with why. */
static int
add_dir(struct cgroup_parent *cp, const char *controller, const char *cgroup, unsigned limits,
        char *why, size_t len)
{
    char *dir = cp->dir[cp->n], text[512];
    struct mount m;
    struct stat st;
    int rc;

    if (find_mount(controller ? "cgroup" : "cgroup2", controller ? NULL : CGROUP_MOUNT, controller,
                   &m) != 0) {
        snprintf(why, len, "%s: no cgroup %s hierarchy%s%s is mounted", limits_key(limits),
                 controller ? "v1" : "v2",
                 controller ? " with the controller " : " at " CGROUP_MOUNT,
                 controller ? controller : "");
        return -ENOENT;
    }
    if ((rc = locate(&m, controller, cgroup, dir, CGROUP_PATH_MAX, why, len)) != 0)
        return rc;
    if (stat(dir, &st) != 0)
        rc = -errno;
    else if (!S_ISDIR(st.st_mode))
        rc = -ENOTDIR;
    if (rc != 0) {
        snprintf(why, len, "cgroup: %s: %s", dir, strerror(-rc));
        return rc;
    }
    /* v2: a child gets only the controllers its parent may enable */
    char path[FILE_PATH_MAX];
    snprintf(path, sizeof(path), "%s/cgroup.controllers", dir);
    if (controller == NULL && limits != 0) {
        if ((rc = read_text(path, text, sizeof(text))) < 0) {
            snprintf(why, len, "cgroup: %s: %s", path, strerror(-rc));
            return rc;
        }
        text[strcspn(text, "\n")] = '\0';
        for (size_t k = 0; k < LIMIT_KEYS; k++) {
            if (!(limits & limit_keys[k].bit) || has_word(text, limit_keys[k].controller, " "))
                continue;
            snprintf(why, len,
                     "%s: %s offers no %s controller (its cgroup.controllers: \"%s\"; systemd: "
                     "Delegate=yes)%s",
                     limit_keys[k].key, dir, limit_keys[k].controller, text,
                     limit_keys[k].bit == CGROUP_LIMIT_PIDS ? "; max_processes: 0 asks for none"
                                                            : "");
            return -EOPNOTSUPP;
        }
    }
    cp->limits[cp->n++] = limits;
    return 0;
}

int
cgroup_resolve(const char *cgroup, size_t memory_max, unsigned cpu_max, unsigned pids_max,
               struct cgroup_parent *cp, char *why, size_t len)
{
    unsigned limits = (memory_max > 0 ? CGROUP_LIMIT_MEMORY : 0) |
                      (cpu_max > 0 ? CGROUP_LIMIT_CPU : 0) | (pids_max > 0 ? CGROUP_LIMIT_PIDS : 0);
    struct statfs fs;
    struct mount m;
    int rc = 0;

    memset(cp, 0, sizeof(*cp));
    cp->freezer = -1;
    cp->memory_max = memory_max;
    cp->cpu_max = cpu_max;
    cp->pids_max = pids_max;
    if (statfs(CGROUP_MOUNT, &fs) != 0) {
        rc = -errno;
        snprintf(why, len, "cgroup: %s: %s", CGROUP_MOUNT, strerror(-rc));
        return rc;
    }
    cp->v2 = fs.f_type == CGROUP2_SUPER_MAGIC;
    if (cp->v2)
        return add_dir(cp, NULL, cgroup, limits, why, len);
    /* the first directory lists the processes: memory's, or where no
     * memory limit needs it, the pids one when a pids limit does or no
     * memory hierarchy is (with cpu_max alone, the cpu one) */
    bool pids_first =
        memory_max == 0 &&
        (pids_max > 0 || (cpu_max == 0 && find_mount("cgroup", NULL, "memory", &m) != 0));
    if (memory_max > 0 || pids_max > 0 || cpu_max == 0)
        rc = add_dir(cp, pids_first ? "pids" : "memory", cgroup,
                     limits & (pids_first ? CGROUP_LIMIT_PIDS : CGROUP_LIMIT_MEMORY), why, len);
    if (rc == 0 && cpu_max > 0)
        rc = add_dir(cp, "cpu", cgroup, CGROUP_LIMIT_CPU, why, len);
    if (rc == 0 && pids_max > 0 && !pids_first)
        rc = add_dir(cp, "pids", cgroup, CGROUP_LIMIT_PIDS, why, len);
    /* the freezer where airlock may use it (else the kill goes without):
     * the processes cannot fork while they are being killed */
    char scratch[CGROUP_PATH_MAX + 128];
    if (rc == 0 && find_mount("cgroup", NULL, "freezer", &m) == 0 &&
        add_dir(cp, "freezer", cgroup, 0, scratch, sizeof(scratch)) == 0) {
        if (access(cp->dir[cp->n - 1], W_OK) == 0)
            cp->freezer = (int)cp->n - 1;
        else
            cp->n--;
    }
    return rc;
}

int
cgroup_check_host(const char *cgroup, size_t memory_max, unsigned cpu_max, unsigned pids_max,
                  char *why, size_t len)
{
    struct cgroup_parent cp;
    char probe[FILE_PATH_MAX];
    int rc = cgroup_resolve(cgroup, memory_max, cpu_max, pids_max, &cp, why, len);

    for (size_t i = 0; rc == 0 && i < cp.n; i++) {
        /* no instance's name (those end in -N), nor an earlier one's to sweep */
        snprintf(probe, sizeof(probe), "%s/" CGROUP_PREFIX "check.%ld", cp.dir[i], (long)getpid());
        if (mkdir(probe, 0755) != 0 && errno != EEXIST) {
            rc = -errno;
            snprintf(why, len,
                     "cgroup: cannot make a cgroup in %s: %s (airlock needs one it may write: "
                     "systemd Delegate=yes and ProtectControlGroups=no)",
                     cp.dir[i], strerror(-rc));
        }
        rmdir(probe);
    }
    return rc;
}

/* ---- limits */

/* Enables controller (memory, cpu, pids) for dir's children. */
static int
enable(const char *dir, const char *controller)
{
    char path[FILE_PATH_MAX], text[512], plus[16];

    snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
    int rc = read_text(path, text, sizeof(text));
    if (rc < 0)
        return rc;
    if (has_word(text, controller, " \n"))
        return 0;
    snprintf(plus, sizeof(plus), "+%s", controller);
    return write_text(dir, "cgroup.subtree_control", plus);
}

int
cgroup_prepare(const struct cgroup_parent *cp, char *why, size_t len)
{
    const char *dir = cp->dir[0];
    char own[CGROUP_PATH_MAX] = "", leaf[FILE_PATH_MAX];
    struct mount m;
    int rc = 0;

    if (!cp->v2 || cp->limits[0] == 0)
        return 0;
    for (int round = 0; round < 2; round++) {
        const char *ctl = "";
        rc = 0;
        for (size_t k = 0; rc == 0 && k < LIMIT_KEYS; k++)
            if (cp->limits[0] & limit_keys[k].bit)
                rc = enable(dir, ctl = limit_keys[k].controller);
        /* the parent holds processes: airlock's own cgroup, airlock being
         * one of them, is left for a leaf of it */
        if (rc != -EBUSY || round > 0 || find_mount("cgroup2", CGROUP_MOUNT, NULL, &m) != 0 ||
            locate(&m, NULL, CGROUP_OWN, own, sizeof(own), why, len) != 0 ||
            strcmp(own, dir) != 0) {
            if (rc != 0)
                snprintf(why, len, "cgroup: cannot enable the %s controller in %s: %s%s", ctl, dir,
                         strerror(-rc),
                         rc == -EBUSY ? " (it holds processes, and cgroup v2 gives controllers "
                                        "only to the children of a cgroup without any: give "
                                        "airlock a cgroup of its own, systemd Delegate=yes)"
                                      : "");
            return rc;
        }
        snprintf(leaf, sizeof(leaf), "%s/" LEAF, dir);
        if ((mkdir(leaf, 0755) != 0 && errno != EEXIST) ||
            (rc = write_text(leaf, "cgroup.procs", "0")) != 0) {
            rc = rc != 0 ? rc : -errno;
            snprintf(why, len, "cgroup: cannot move airlock into %s: %s", leaf, strerror(-rc));
            return rc;
        }
        log_info(
            "cgroup: airlock moved itself into %s, its cgroup's leaf (cgroup v2: the instances' "
            "cgroups beside it get the controllers)",
            leaf);
    }
    return rc;
}

/* Writes cp's limits into the new cgroup dir (of cp's directory i). */
static int
limit(const struct cgroup_parent *cp, size_t i, const char *dir, const char **file)
{
    char v[32];
    int rc = 0;

    if (cp->limits[i] & CGROUP_LIMIT_MEMORY) {
        snprintf(v, sizeof(v), "%zu", cp->memory_max);
        if (cp->v2) {
            /* no swap: memory_max bounds what it holds in memory and swap
             * together; and the kernel kills all of it, not one process */
            if ((rc = write_text(dir, *file = "memory.max", v)) != 0 ||
                ((rc = write_text(dir, *file = "memory.swap.max", "0")) != 0 && rc != -ENOENT) ||
                ((rc = write_text(dir, *file = "memory.oom.group", "1")) != 0 && rc != -ENOENT))
                return rc;
        } else {
            /* memsw (memory and swap) after its part: it may not be less */
            if ((rc = write_text(dir, *file = "memory.limit_in_bytes", v)) != 0 ||
                ((rc = write_text(dir, *file = "memory.memsw.limit_in_bytes", v)) != 0 &&
                 rc != -ENOENT) ||
                (rc = write_text(dir, *file = "memory.oom_control", "0")) != 0)
                return rc;
        }
    }
    if (cp->limits[i] & CGROUP_LIMIT_CPU) {
        unsigned quota = cp->cpu_max * (CPU_PERIOD_US / 100);
        if (cp->v2) {
            snprintf(v, sizeof(v), "%u %u", quota, CPU_PERIOD_US);
            rc = write_text(dir, *file = "cpu.max", v);
        } else {
            snprintf(v, sizeof(v), "%u", CPU_PERIOD_US);
            if ((rc = write_text(dir, *file = "cpu.cfs_period_us", v)) == 0) {
                snprintf(v, sizeof(v), "%u", quota);
                rc = write_text(dir, *file = "cpu.cfs_quota_us", v);
            }
        }
        if (rc != 0)
            return rc;
    }
    if (cp->limits[i] & CGROUP_LIMIT_PIDS) {
        /* processes and threads, as RLIMIT_NPROC counts them, but of this
         * instance alone whatever its uid: a fork there fails with EAGAIN */
        snprintf(v, sizeof(v), "%u", cp->pids_max);
        return write_text(dir, *file = "pids.max", v);
    }
    return 0;
}

int
cgroup_make(const struct cgroup_parent *cp, const char *name, struct cgroup *cg, int *fds,
            char *why, size_t len)
{
    char path[FILE_PATH_MAX];
    const char *file = "";
    size_t i;
    int rc = 0;

    memset(cg, 0, sizeof(*cg));
    cg->v2 = cp->v2;
    cg->memory = -1;
    cg->freezer = -1;
    for (i = 0; i < cp->n; i++)
        fds[i] = -1;
    for (i = 0; i < cp->n; i++) {
        char *dir = cg->dir[i];
        if ((size_t)snprintf(dir, CGROUP_PATH_MAX, "%s/" CGROUP_PREFIX "%s", cp->dir[i], name) >=
            CGROUP_PATH_MAX) {
            rc = -ENAMETOOLONG;
            goto fail;
        }
        if (mkdir(dir, 0755) != 0) {
            rc = -errno;
            goto fail;
        }
        cg->n = i + 1;
        if (cp->limits[i] & CGROUP_LIMIT_MEMORY) {
            cg->memory = (int)i;
            cg->memory_max = cp->memory_max;
        }
        if ((int)i == cp->freezer)
            cg->freezer = (int)i;
        if ((rc = limit(cp, i, dir, &file)) != 0)
            goto fail;
        snprintf(path, sizeof(path), "%s/%s", dir, file = "cgroup.procs");
        if ((fds[i] = open(path, O_WRONLY | O_CLOEXEC)) < 0) {
            rc = -errno;
            goto fail;
        }
    }
    return 0;

fail:
    snprintf(why, len, "%s%s%s: %s", cg->dir[i], file[0] ? "/" : "", file, strerror(-rc));
    for (size_t k = 0; k < cp->n; k++)
        if (fds[k] >= 0)
            close(fds[k]);
    while (cg->n > 0)
        rmdir(cg->dir[--cg->n]);
    return rc;
}

/* ---- the end of a cgroup (no allocation: forked children and threads) */

/* Calls fn(pid, arg) for each pid in dir's cgroup.procs (read in pieces,
 * a number cut by a read completed by the next). Returns how many, or
 * -errno (-ENOENT: the cgroup is gone). */
static int
procs_each(const char *dir, void (*fn)(pid_t pid, void *arg), void *arg)
{
    char path[FILE_PATH_MAX], buf[4096];
    long pid = -1;
    int n = 0, fd;

    snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -errno;
    for (;;) {
        ssize_t got = read(fd, buf, sizeof(buf));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            n = -errno;
            break;
        }
        for (ssize_t i = 0; i < got; i++) {
            if (buf[i] >= '0' && buf[i] <= '9' && pid < INT32_MAX) {
                pid = (pid < 0 ? 0 : pid * 10) + (buf[i] - '0');
            } else if (pid >= 0) {
                fn((pid_t)pid, arg);
                n++;
                pid = -1;
            }
        }
        if (got == 0)
            break;
    }
    if (n >= 0 && pid >= 0) {
        fn((pid_t)pid, arg);
        n++;
    }
    close(fd);
    return n;
}

/* The processes of one round: a pidfd for each pid read, kept until the
 * list is read again. */
struct batch {
    size_t n;
    pid_t pid[KILL_BATCH];
    int pidfd[KILL_BATCH];
    bool listed[KILL_BATCH];
};

static void
batch_open(pid_t pid, void *arg)
{
    struct batch *b = arg;

    if (b->n == KILL_BATCH)
        return; /* the next round */
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return; /* gone */
    b->pid[b->n] = pid;
    b->pidfd[b->n] = fd;
    b->listed[b->n++] = false;
}

static void
batch_mark(pid_t pid, void *arg)
{
    struct batch *b = arg;

    for (size_t i = 0; i < b->n; i++)
        b->listed[i] = b->listed[i] || b->pid[i] == pid;
}

/* SIGKILLs the processes dir lists. A pid read may be freed and taken by
 * another process before the kill: each pidfd was opened before the list
 * is read again, so one still listed then is the process that was in the
 * cgroup (a pid stays with its process until it is reaped). Returns how
 * many were listed, or -errno. */
static int
kill_round(const char *dir)
{
    struct batch b = {.n = 0};
    int n = procs_each(dir, batch_open, &b);

    if (n > 0 && b.n > 0 && procs_each(dir, batch_mark, &b) >= 0)
        for (size_t i = 0; i < b.n; i++)
            if (b.listed[i])
                syscall(SYS_pidfd_send_signal, b.pidfd[i], SIGKILL, NULL, 0);
    for (size_t i = 0; i < b.n; i++)
        close(b.pidfd[i]);
    return n;
}

static void
kill_pid(pid_t pid, void *arg)
{
    (void)arg;
    kill(pid, SIGKILL);
}

/* Whether dir's freezer.state reads FROZEN, within FREEZE_TRIES: every
 * process of it stopped (one that does not stop soon, in an uninterruptible
 * sleep, keeps it FREEZING). */
static bool
frozen(const char *dir)
{
    char path[FILE_PATH_MAX], state[32];

    snprintf(path, sizeof(path), "%s/freezer.state", dir);
    for (int i = 0; i < FREEZE_TRIES; i++) {
        if (read_text(path, state, sizeof(state)) < 0)
            return false;
        if (strncmp(state, "FROZEN", 6) == 0)
            return true;
        loop_sleep_ms(1);
    }
    return false;
}

/* v1's freezer, as systemd and runc use it: dir frozen, so that none of
 * its processes forks into the places the others free while they are
 * killed, each listed SIGKILLed (frozen, none exits: a pid read is its
 * process's; while still freezing, as kill_round()), then thawed for them
 * to die. Returns how many were listed, or -errno. */
static int
kill_frozen(const char *dir)
{
    int rc = write_text(dir, "freezer.state", "FROZEN");

    if (rc != 0)
        return rc;
    int n = frozen(dir) ? procs_each(dir, kill_pid, NULL) : kill_round(dir);
    if ((rc = write_text(dir, "freezer.state", "THAWED")) != 0 && n >= 0)
        n = rc;
    return n;
}

/* Kills what dir holds until none is left (frozen each round: a freezer
 * cgroup), then removes it (deadline: loop_clock_ms(), 0 none). */
static int
clear_dir(const char *dir, bool v2, bool freezer, uint64_t deadline)
{
    /* at once, forks in flight too (the kernel's; 5.14 and later) */
    if (v2)
        (void)write_text(dir, "cgroup.kill", "1");
    for (long wait = 1;; wait = wait < 100 ? wait * 2 : 100) {
        int n = freezer ? kill_frozen(dir) : kill_round(dir);
        if (n == -ENOENT)
            return 0;
        if (n < 0)
            return n;
        if (n == 0) {
            if (rmdir(dir) == 0 || errno == ENOENT)
                return 0;
            if (errno != EBUSY)
                return -errno;
        }
        if (deadline != 0 && loop_clock_ms() >= deadline)
            return -EBUSY;
        loop_sleep_ms(wait);
    }
}

int
cgroup_clear(const struct cgroup *cg, long timeout_ms)
{
    uint64_t deadline = timeout_ms < 0 ? 0 : loop_clock_ms() + (uint64_t)timeout_ms + 1;
    int rc = 0;

    /* the freezer's first: the others are empty then */
    if (cg->freezer >= 0)
        rc = clear_dir(cg->dir[cg->freezer], false, true, deadline);
    for (size_t i = 0; rc == 0 && i < cg->n; i++)
        if ((int)i != cg->freezer)
            rc = clear_dir(cg->dir[i], cg->v2, false, deadline);
    return rc;
}

unsigned long long
cgroup_oom_kills(const struct cgroup *cg)
{
    char path[FILE_PATH_MAX], text[1024];

    if (cg->n == 0 || cg->memory < 0)
        return 0;
    snprintf(path, sizeof(path), "%s/%s", cg->dir[cg->memory],
             cg->v2 ? "memory.events" : "memory.oom_control");
    if (read_text(path, text, sizeof(text)) < 0)
        return 0;
    for (const char *l = text; *l != '\0';) {
        if (strncmp(l, "oom_kill ", 9) == 0)
            return strtoull(l + 9, NULL, 10);
        l += strcspn(l, "\n");
        l += *l == '\n';
    }
    return 0;
}

int
cgroup_oom_watch(const struct cgroup *cg)
{
    char path[FILE_PATH_MAX], line[32];
    int efd, cfd, rc = 0;

    if (cg->v2 || cg->n == 0 || cg->memory < 0)
        return -EOPNOTSUPP;
    snprintf(path, sizeof(path), "%s/memory.oom_control", cg->dir[cg->memory]);
    if ((cfd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -errno;
    if ((efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        rc = -errno;
        goto out;
    }
    /* "<eventfd> <fd of memory.oom_control>": the kernel keeps a reference
     * to the eventfd, not to cfd */
    snprintf(line, sizeof(line), "%d %d", efd, cfd);
    if ((rc = write_text(cg->dir[cg->memory], "cgroup.event_control", line)) != 0) {
        close(efd);
        goto out;
    }
    rc = efd;
out:
    close(cfd);
    return rc;
}

/* CGROUP_PREFIX PREFIX-<digits>: the cgroup of an instance named PREFIX-N. */
static bool
stale_name(const char *name, const char *prefix)
{
    size_t pl = strlen(CGROUP_PREFIX), len = strlen(prefix);

    if (strncmp(name, CGROUP_PREFIX, pl) != 0 || strncmp(name + pl, prefix, len) != 0 ||
        name[pl + len] != '-' || name[pl + len + 1] == '\0')
        return false;
    return strspn(name + pl + len + 1, "0123456789") == strlen(name + pl + len + 1);
}

struct cgroup *
cgroup_stale(const struct cgroup_parent *cp, const char *prefix, size_t *n)
{
    struct cgroup *out = NULL;
    size_t cap = 0;

    *n = 0;
    for (size_t k = 0; k < cp->n; k++) {
        /* the freezer's first */
        size_t i = cp->freezer < 0 ? k : (k + (size_t)cp->freezer) % cp->n;
        DIR *d = opendir(cp->dir[i]);
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL && *n < STALE_MAX) {
            if (e->d_type != DT_DIR || !stale_name(e->d_name, prefix))
                continue;
            if (*n == cap) {
                size_t grown_cap = cap ? 2 * cap : 8;
                struct cgroup *grown = realloc(out, grown_cap * sizeof(*grown));
                if (grown == NULL)
                    break; /* the rest at the next start */
                out = grown;
                cap = grown_cap;
            }
            struct cgroup *cg = &out[*n];
            memset(cg, 0, sizeof(*cg));
            cg->v2 = cp->v2;
            cg->memory = -1;
            cg->freezer = (int)i == cp->freezer ? 0 : -1;
            if ((size_t)snprintf(cg->dir[0], CGROUP_PATH_MAX, "%s/%s", cp->dir[i], e->d_name) <
                CGROUP_PATH_MAX) {
                cg->n = 1;
                (*n)++;
            }
        }
        if (d != NULL)
            closedir(d);
    }
    if (*n == 0) {
        free(out);
        out = NULL;
    }
    return out;
}

int
cgroup_clear_all(const struct cgroup *stale, size_t n, long timeout_ms, unsigned *removed,
                 char *left)
{
    int err = 0;

    for (size_t i = 0; i < n; i++) {
        int rc = cgroup_clear(&stale[i], timeout_ms);
        if (rc == 0) {
            (*removed)++;
            continue;
        }
        err = rc;
        memcpy(left, stale[i].dir[0], CGROUP_PATH_MAX);
    }
    return err;
}
