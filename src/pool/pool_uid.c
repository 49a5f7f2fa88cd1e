/* pool_uid.c - who a pool's instances run as (pool_int.h). */
#include "pool/pool_int.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "net/sockdiag.h"
#include "pool/record.h"

/* ---- a uid's first use */

/* A uid of uids: not reaped since this airlock started: an earlier
 * airlock, killed (kill -9, a crash, the OOM killer) with sessions running,
 * left running as it what their instances started outside their process
 * groups (setsid(), double forks), which PR_SET_PDEATHSIG does not reach,
 * and a thread waiting uninterruptibly (on a FUSE or NFS file) outlives
 * even SIGKILL. The uid is reaped as at a session's end (proc_reap()),
 * held meanwhile, before it serves anyone; one whose processes do not go
 * is reaped again every REAP_PATIENCE_MS and serves nobody until they
 * have, the pool running on its other uids. */
struct uid_reap {
    struct pool *pool;
    struct list link; /* in pool->uid_reaps */
    uid_t uid;
    unsigned tries;
    bool slow; /* past REAP_PATIENCE_MS: the pool takes its other uids meanwhile */
    struct proc reaper;
    struct timer timer; /* REAP_PATIENCE_MS, or the wait before it starts again */
    struct wipe *wipe;  /* then what its sessions left in /tmp and the like */
    struct task free;
};

/* The gid of an instance of uid. */
static gid_t
uid_gid(const struct pool *p, uid_t uid)
{
    return p->has_group ? p->group_gid : (gid_t)uid;
}

static void
uid_reap_free(struct task *t)
{
    free(t->data);
}

/* Ends r: its uid goes back to the pool's takes (marked reaped when
 * reaped), or is kept for ever (keep: something of it remains). */
static void
uid_reap_end(struct uid_reap *r, bool reaped, bool keep)
{
    struct pool *p = r->pool;

    if (r->wipe != NULL) { /* it gives the uid back when done */
        pool_env_wipe_detach(r->wipe);
        keep = true;
    }
    timer_stop(p->loop, &r->timer);
    proc_close(&r->reaper);
    list_del(&r->link);
    if (reaped && pool_env_set_reaped(p->env, r->uid) != 0)
        log_warnx("pool=%s uid=%u: out of memory: reaped again at its next take", p->conf.name,
                  (unsigned)r->uid);
    if (!keep)
        pool_env_put_uid(p->env, r->uid);
    loop_defer(p->loop, &r->free, uid_reap_free, r);
}

static void uid_reap_timer(struct timer *t);

static void
uid_reap_line(struct proc *pr, const char *line, bool cut)
{
    const struct uid_reap *r = pr->data;
    char uid[12];

    snprintf(uid, sizeof(uid), "%u", (unsigned)r->uid);
    pool_said(r->pool, "uid", uid, "reaper", line, cut);
}

static void
uid_reap_wiped(void *arg, int err, uint64_t entries, uint64_t ms)
{
    struct uid_reap *r = arg;
    struct pool *p = r->pool;

    r->wipe = NULL;
    if (err != 0)
        log_warnx("pool=%s uid=%u: cannot remove what an earlier airlock's sessions left: %s; "
                  "the uid is not used again",
                  p->conf.name, (unsigned)r->uid, strerror(-err));
    else if (entries > 0)
        log_info("pool=%s uid=%u: removed %llu entries an earlier airlock's sessions left "
                 "(%llu ms)",
                 p->conf.name, (unsigned)r->uid, (unsigned long long)entries,
                 (unsigned long long)ms);
    uid_reap_end(r, err == 0, true); /* the wipe gave it back, or kept it */
    pool_scale_soon(p);
}

static void
uid_reap_exit(struct proc *pr, int status)
{
    struct uid_reap *r = pr->data;
    struct pool *p = r->pool;
    int err;

    timer_stop(p->loop, &r->timer);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        if (r->slow)
            log_info("pool=%s uid=%u: the processes left by an earlier airlock are gone",
                     p->conf.name, (unsigned)r->uid);
        else
            log_debug("pool=%s uid=%u: reaped before its first use", p->conf.name,
                      (unsigned)r->uid);
        /* what they left in /tmp and the like goes too, as at a session's
         * end, before the uid serves anyone */
        if ((r->wipe = pool_env_wipe_uid(p->env, r->uid, uid_reap_wiped, r, &err)) == NULL) {
            log_warnx("pool=%s uid=%u: cannot wipe what it left: %s; reaped again at its next "
                      "take",
                      p->conf.name, (unsigned)r->uid, strerror(-err));
            uid_reap_end(r, false, false);
            pool_scale_soon(p);
        }
        return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == PROC_REAP_LEFTOVERS) {
        log_warnx("pool=%s uid=%u: " LEFTOVERS " (left by an earlier airlock); the uid is not "
                  "used again",
                  p->conf.name, (unsigned)r->uid);
        uid_reap_end(r, false, true);
        pool_scale_soon(p);
        return;
    }
    unsigned delay = pool_reap_again_ms(r->tries);
    log_warnx("pool=%s uid=%u: reaper ended with status 0x%x: again in %u ms", p->conf.name,
              (unsigned)r->uid, (unsigned)status, delay);
    timer_start(p->loop, &r->timer, delay, uid_reap_timer, r);
}

/* Runs r's reaper, bounded by REAP_PATIENCE_MS (uid_reap_timer()). */
static void
uid_reap_run(struct uid_reap *r)
{
    struct pool *p = r->pool;
    const struct reap_opts o = {.by_uid = true, .uid = r->uid, .gid = uid_gid(p, r->uid)};
    int rc;

    r->tries++;
    if ((rc = proc_reap(&r->reaper, p->loop, &o, uid_reap_line, uid_reap_exit, r)) != 0)
        log_warnx("pool=%s uid=%u: cannot start the reaper: %s", p->conf.name, (unsigned)r->uid,
                  strerror(-rc));
    timer_start(p->loop, &r->timer, REAP_PATIENCE_MS, uid_reap_timer, r);
}

static void
uid_reap_timer(struct timer *t)
{
    struct uid_reap *r = t->data;
    struct pool *p = r->pool;

    if (r->reaper.state == PROC_RUNNING) {
        /* a process in an uninterruptible sleep, or one that stopped the
         * reaper: the pool goes on with its other uids */
        log_warnx("pool=%s uid=%u: processes left by an earlier airlock after %u ms: killing "
                  "again; the uid serves nobody until they are gone",
                  p->conf.name, (unsigned)r->uid, r->tries * REAP_PATIENCE_MS);
        r->slow = true;
        pool_scale_soon(p);
    }
    proc_close(&r->reaper);
    uid_reap_run(r);
}

/* Reaps uid, which the caller took (it stays held), and gives it back
 * marked reaped once no process of it is left (uid_reap_end()). Returns 0
 * or -ENOMEM. */
static int
uid_reap_start(struct pool *p, uid_t uid)
{
    struct uid_reap *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return -ENOMEM;
    r->pool = p;
    r->uid = uid;
    r->reaper.pidfd = r->reaper.out_fd = -1;
    list_add_tail(&p->uid_reaps, &r->link);
    uid_reap_run(r);
    return 0;
}

/* Takes a uid of p's uids, reaped since this airlock started, into *uid.
 * The lowest free one is reaped first when it was not (held meanwhile, one
 * at a time unless the others are slow): -EAGAIN until then (its end comes
 * back to scale()), as when every uid is held. Returns 0 or -errno. */
static int
take_reaped_uid(struct pool *p, uid_t *uid)
{
    struct list *pos, *tmp;
    int rc;

    if ((rc = pool_env_take_uid(p->env, p->conf.uid_min, p->conf.uid_max, uid)) != 0 ||
        pool_env_uid_reaped(p->env, *uid))
        return rc;
    list_for_each_safe(pos, tmp, &p->uid_reaps) {
        if (!list_entry(pos, struct uid_reap, link)->slow) {
            pool_env_put_uid(p->env, *uid);
            return -EAGAIN;
        }
    }
    if ((rc = uid_reap_start(p, *uid)) != 0)
        pool_env_put_uid(p->env, *uid);
    return rc != 0 ? rc : -EAGAIN;
}

/* Starts a reaper for each uid of p's that an earlier airlock's instances
 * ran as (its record: pool_env_set_left()), all at once: what a killed
 * session left does not run on until the uid's next take, which may be
 * long in coming or never come. */
void
pool_reap_left(struct pool *p)
{
    uid_t uid;

    if (pool_conf_uids(&p->conf) == 0)
        return;
    while (pool_env_take_left(p->env, p->conf.uid_min, p->conf.uid_max, &uid) == 0) {
        if (uid_reap_start(p, uid) != 0) { /* out of memory: reaped at its take */
            pool_env_put_uid(p->env, uid);
            return;
        }
    }
}

void
pool_uid_reaps_end(struct pool *p)
{
    while (!list_empty(&p->uid_reaps))
        uid_reap_end(list_entry(p->uid_reaps.next, struct uid_reap, link), false, false);
}

/* Who in runs as: a uid of its own from uids:, the shared user:, or
 * airlock's. Returns 0, or -EAGAIN when every uid is held or being reaped
 * before its first use. */
int
pool_take_uid(struct pool *p, struct instance *in)
{
    int rc;

    if (pool_conf_uids(&p->conf) > 0) {
        if ((rc = take_reaped_uid(p, &in->uid)) != 0)
            return rc;
        record_note_uid(pool_env_record(p->env), in->uid);
        in->gid = uid_gid(p, in->uid);
        in->run_as = in->own_uid = true;
    } else if (p->run_as) {
        in->uid = p->uid;
        in->gid = p->gid;
        in->run_as = true;
    } else {
        in->uid = geteuid();
        in->gid = getegid();
    }
    snprintf(in->uid_s, sizeof(in->uid_s), "%u", (unsigned)in->uid);
    snprintf(in->gid_s, sizeof(in->gid_s), "%u", (unsigned)in->gid);
    return 0;
}

/* ---- the host's users and groups */

/* The gid of group: (a name or a number). Returns 0, -ENOENT (no such
 * group) or -EPERM (root's). */
static int
group_gid(const char *group, gid_t *gid)
{
    char *end;
    unsigned long n = strtoul(group, &end, 10);

    if (group[0] >= '0' && group[0] <= '9' && *end == '\0' && n <= UINT32_MAX - 1) {
        *gid = (gid_t)n;
    } else {
        const struct group *gr = getgrnam(group);
        if (gr == NULL)
            return -ENOENT;
        *gid = gr->gr_gid;
    }
    return *gid == 0 ? -EPERM : 0;
}

/* Whether one of pc's uids may do what bit (S_IXOTH: pass, S_IWOTH:
 * write) says to what st describes, by its owner, group or other bits. */
static bool
uids_may(const struct pool_conf *pc, bool has_group, gid_t group, const struct stat *st, mode_t bit)
{
    bool owner = st->st_uid >= pc->uid_min && st->st_uid <= pc->uid_max;
    bool in_group =
        has_group ? st->st_gid == group : st->st_gid >= pc->uid_min && st->st_gid <= pc->uid_max;

    return (st->st_mode & bit) || (owner && (st->st_mode & (bit << 6))) ||
           (in_group && (st->st_mode & (bit << 3)));
}

bool
pool_conf_reaches(const struct pool_conf *pc, const struct endpoint *ep)
{
    char path[EP_PATH_MAX];
    struct stat st;
    gid_t group = 0;
    bool has_group = pc->group[0] != '\0' && group_gid(pc->group, &group) == 0;

    if (ep->kind != EP_UNIX || ep->path[0] != '/')
        return true;
    snprintf(path, sizeof(path), "%s", ep->path);
    for (char *slash = strchr(path + 1, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        bool pass = stat(path, &st) == 0 && uids_may(pc, has_group, group, &st, S_IXOTH);
        *slash = '/';
        if (!pass)
            return false;
    }
    if (stat("/", &st) != 0 || !uids_may(pc, has_group, group, &st, S_IXOTH))
        return false;
    return stat(path, &st) != 0 || uids_may(pc, has_group, group, &st, S_IWOTH);
}

/* Who pc's instances run as: the shared user (user:), the group of uids:;
 * p keeps what it had when pc's user or group does not exist. */
int
pool_apply_user(struct pool *p, const struct pool_conf *pc)
{
    gid_t gid = 0;

    if (pc->group[0] != '\0' && group_gid(pc->group, &gid) != 0)
        return -ENOENT;
    struct passwd *pw = pc->user[0] != '\0' ? getpwnam(pc->user) : NULL;
    if (pc->user[0] != '\0' && pw == NULL)
        return -ENOENT;
    p->has_group = pc->group[0] != '\0';
    p->group_gid = gid;
    p->run_as = pw != NULL;
    if (pw != NULL) {
        p->uid = pw->pw_uid;
        p->gid = pw->pw_gid;
    }
    return 0;
}

int
pool_conf_check_host(const struct pool_conf *pc, char *why, size_t len)
{
    const struct passwd *pw;
    const struct group *gr;
    gid_t gid;
    int rc = 0;

    if (pc->user[0] != '\0' && getpwnam(pc->user) == NULL) {
        snprintf(why, len, "user: no such user '%s' on this machine", pc->user);
        return -ENOENT;
    }
    if (pc->group[0] != '\0' && (rc = group_gid(pc->group, &gid)) != 0) {
        snprintf(why, len, "group: %s '%s'",
                 rc == -EPERM ? "expected a group other than root's, not" : "no such group",
                 pc->group);
        return rc;
    }
    if (pool_conf_uids(pc) == 0)
        return 0;
    /* an instance that binds ports of the range not its own is found by
     * the process that has the socket open: unseen, it would keep the pool
     * from starting instances and wait there for others' connections. As
     * root only: as another user, check is a lint and run refuses uids: */
    if (pool_conf_ports(pc) > 0 && geteuid() == 0 && (rc = sockdiag_holder_check()) != 0) {
        if (rc == -EPERM)
            snprintf(why, len,
                     "uids: with ports:, airlock needs CAP_SYS_PTRACE (to read the instances' "
                     "/proc/PID/fd), which it does not have: without it an instance that holds "
                     "a port of the range not its own is never found and stopped "
                     "(why=took_port); run airlock with it (dist/airlock.service gives it; in "
                     "a container, --cap-add SYS_PTRACE)");
        else
            snprintf(why, len, "uids: cannot read airlock's capabilities: %s", strerror(-rc));
        return rc;
    }
    /* an instance must not share a uid (its files, its processes) or a gid
     * (the group's rights) with anyone else */
    setpwent();
    while (rc == 0 && (pw = getpwent()) != NULL)
        if (pw->pw_uid >= pc->uid_min && pw->pw_uid <= pc->uid_max) {
            snprintf(why, len, "uids: %u-%u holds uid %u of user '%s'", pc->uid_min, pc->uid_max,
                     (unsigned)pw->pw_uid, pw->pw_name);
            rc = -EEXIST;
        }
    endpwent();
    setgrent();
    while (rc == 0 && pc->group[0] == '\0' && (gr = getgrent()) != NULL)
        if (gr->gr_gid >= pc->uid_min && gr->gr_gid <= pc->uid_max) {
            snprintf(why, len,
                     "uids: %u-%u holds gid %u of group '%s' (instances run with gid = uid)",
                     pc->uid_min, pc->uid_max, (unsigned)gr->gr_gid, gr->gr_name);
            rc = -EEXIST;
        }
    endgrent();
    return rc;
}
