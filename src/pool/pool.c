/* pool.c - see pool.h. */
#include "pool/pool_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/backoff.h"
#include "core/list.h"
#include "core/log.h"
#include "core/privdir.h"
#include "pool/cgroup.h"
#include "pool/env.h"
#include "pool/record.h"
#include "pool/rules.h"
#include "pool/spawn.h"
#include "pool/state.h"
#include "pool/template.h"

#define REAP_WAIT_MS 5000     /* pool_free(): how long the reapers may take, in all */
#define GIVE_ENTRIES_MAX 4096 /* a provisioning hook's entries handed over, at most */
#define WITHDRAW_TURNS_MAX 8  /* loop turns a withdrawal waits for the instance's output */
#define ARG_EXPANDED_MAX (CONF_ARG_MAX + CONF_FILE_PATH_MAX + DIR_KEY_MAX)

static const char *const state_names[INST_STATE_COUNT] = {
    "starting", "idle",     "reserved",       "verifying", "provisioning",
    "active",   "stopping", "deprovisioning", "wiping",
};

static const char *const why_names[] = {
    "logout",       "exit",       "trim",    "start_timeout", "hook_failed", "bad_login",
    "forged_login", "unverified", "recycle", "shutdown",      "took_port",   "memory_limit",
};

static const char *const hook_names[HOOK_COUNT] = {"provision", "deprovision"};
static const char *const hook_fail_names[HF_COUNT] = {"exit", "timeout", "spawn", "state"};

/* Upper bounds (seconds) of the time-to-ready histogram. */
static const double ready_bounds[READY_BUCKETS] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

/* After an OOM notification (v1), its kill is looked for this long, at
 * most OOM_WAIT_MAX_MS apart: it is counted a moment after it (the OOM
 * killer picks and kills the victim in the same kernel call, which may
 * print a report first). */
#define OOM_LOOK_MS 5000
#define OOM_WAIT_MAX_MS 100

/* Every pool (the main loop's): a port one holds may be another's. */
static struct list all_pools = {&all_pools, &all_pools};

static void instance_gone(struct instance *in);
static void instance_reaped(struct instance *in);
static void instance_timer(struct timer *t);
static void oom_timer(struct timer *t);

/* ---- hooks and built-in provisioning (state:): what the rest sees of them */

/* p brings a user's state in (HOOK_PROVISION) or stores it back. */
static bool
has_hook(const struct pool *p, enum hook_kind kind)
{
    const struct pool_conf *c = &p->conf;

    if (c->state.store[0] != '\0')
        return kind == HOOK_PROVISION ? c->state.fetch.n + c->state.fetch_optional.n > 0
                                      : c->state.store_back.n > 0;
    return (kind == HOOK_PROVISION ? c->provision : c->deprovision).command.n > 0;
}

static unsigned
hook_timeout_ms(const struct pool *p, enum hook_kind kind)
{
    if (p->conf.state.store[0] != '\0')
        return p->conf.state.timeout_ms;
    return (kind == HOOK_PROVISION ? p->conf.provision : p->conf.deprovision).timeout_ms;
}

/* A hook or a built-in transfer of in is under way. */
static bool
hook_busy(const struct instance *in)
{
    return in->hook.state == PROC_RUNNING || in->xfer != NULL;
}

/* Ends in's hook, unheard. A built-in transfer cannot be stopped: it ends
 * on its env thread, before the wipe of in's directory queued after it. */
static void
hook_cancel(struct instance *in)
{
    proc_close(&in->hook);
    if (in->xfer != NULL) {
        pool_env_wipe_detach(in->xfer);
        in->xfer = NULL;
    }
}

/* ---- instance directories */

/* The base directory in->dir was made in (it stays in->dir's even when a
 * reload moves the pool's dir), into base (CONF_FILE_PATH_MAX bytes). */
static void
base_of(const struct instance *in, char *base)
{
    size_t len = strlen(in->dir) - strlen(in->name) - 1;

    memcpy(base, in->dir, len);
    base[len] = '\0';
}

/* A fresh, empty directory for in: mode 0700, owned by its run-as user. The
 * base is airlock's and writable by airlock only (pool_new()), so the name
 * cannot be planted by anyone else; something left there is moved aside to
 * be wiped. */
static int
make_dir(const struct instance *in)
{
    struct pool *p = in->pool;
    char base[CONF_FILE_PATH_MAX];
    int bfd, fd = -1, rc = 0;

    base_of(in, base);
    if ((bfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -errno;
    if (mkdirat(bfd, in->name, 0700) != 0) {
        if (errno != EEXIST)
            goto fail;
        if (pool_env_wipe(p->env, base, in->name, false, 0, NULL, NULL, &rc) == NULL)
            goto out;
        if (mkdirat(bfd, in->name, 0700) != 0)
            goto fail;
    }
    /* the mode without the umask; the owner that the instance runs as */
    if ((fd = openat(bfd, in->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
        fchmod(fd, 0700) != 0 || (in->run_as && fchown(fd, in->uid, in->gid) != 0))
        goto fail;
    goto out;

fail:
    rc = -errno;
out:
    if (fd >= 0)
        close(fd);
    close(bfd);
    return rc;
}

/* The provisioning hook runs as airlock's user: what it made at the top of
 * the directory (regular files and directories owned by airlock, with one
 * link) is handed to the run-as user. Each entry is opened without
 * following a link and checked before the chown, so nothing the instance
 * planted meanwhile (a link, a hard link to a file elsewhere) changes
 * owner. On an env thread: the instance may be running already (a login
 * confirmed while its hook ran) and fill the directory with names. */
struct give {
    char dir[CONF_FILE_PATH_MAX + DIR_NAME_MAX];
    uid_t uid;
    gid_t gid;
    char what[2 * CONF_NAME_MAX + 32]; /* "pool=P instance=I", for the log */
};

static int
give_entries(void *ctx)
{
    const struct give *g = ctx;
    int fd = open(g->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *e;
    unsigned seen = 0;

    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (++seen > GIVE_ENTRIES_MAX) {
            log_warnx("%s: more than %d entries at the top of its directory after the "
                      "provisioning hook: the rest are not handed over",
                      g->what, GIVE_ENTRIES_MAX);
            break;
        }
        int f = openat(fd, e->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (f < 0 || fstat(f, &st) != 0 || st.st_uid != geteuid() ||
            !((S_ISREG(st.st_mode) && st.st_nlink == 1) || S_ISDIR(st.st_mode))) {
            if (f >= 0)
                close(f);
            continue;
        }
        if (fchownat(f, "", g->uid, g->gid, AT_EMPTY_PATH) != 0) {
            char name[sizeof(e->d_name)]; /* quoted: the hook chose it */
            int err = errno;
            log_quoted(name, sizeof(name), e->d_name);
            errno = err; /* the chown's, for log_warn() */
            log_warn("%s: chown name=\"%s\"", g->what, name);
        }
        close(f);
    }
    closedir(d);
    return 0;
}

static void hook_ended(struct instance *in, bool ok, enum hook_fail why);

static void
give_done(void *arg, void *ctx, int err)
{
    struct instance *in = arg;
    (void)ctx, (void)err;

    in->xfer = NULL;
    hook_ended(in, true, HF_EXIT);
}

/* Queues give_entries() for in (as in->xfer: the hook is not done before
 * it). Returns 0, or -ENOMEM (nothing queued). */
static int
give_start(struct instance *in)
{
    struct pool *p = in->pool;
    struct give *g = calloc(1, sizeof(*g));

    if (g == NULL)
        return -ENOMEM;
    memcpy(g->dir, in->dir, sizeof(g->dir));
    g->uid = in->uid;
    g->gid = in->gid;
    snprintf(g->what, sizeof(g->what), "pool=%s instance=%s", p->conf.name, in->name);
    in->xfer = pool_env_run(p->env, give_entries, g, free, ENV_URGENT, give_done, in);
    return in->xfer != NULL ? 0 : -ENOMEM;
}

/* ---- states and reports */

/* A user took an idle instance (a reservation, or a login line). The start
 * that replaces it would compete with that user's login for the CPU: the
 * TLS handshake, up to the login line, and the application's own work after
 * it (its first request). So while another instance is idle, starts wait
 * until no taken instance is still waiting for its login (logins_on_way())
 * and replace_after_login has passed since the last login came in, and at
 * most replace_delay after the first take: later takes do not extend that.
 * (A fixed delay after the take put each start on the next user's
 * handshake when users arrived at that interval.) */
static void
taken(struct pool *p)
{
    uint64_t now = loop_now(p->loop);

    if (now >= p->calm_until)
        p->calm_until = now + p->conf.replace_delay_ms;
}

/* Instances taken whose login line has not come, or not been confirmed, or
 * whose user's state is still being brought in. */
static size_t
logins_on_way(const struct pool *p)
{
    return p->n[INST_RESERVED] + p->n[INST_VERIFYING] + p->n[INST_PROVISIONING];
}

static void
set_state(struct instance *in, enum inst_state st)
{
    struct pool *p = in->pool;

    if (in->state == INST_IDLE && (st == INST_RESERVED || st == INST_VERIFYING))
        taken(p);
    if (st == INST_ACTIVE)
        p->settle_until = loop_now(p->loop) + p->conf.replace_after_login_ms;
    p->n[in->state]--;
    p->n[st]++;
    log_debug("pool=%s instance=%s state=%s", p->conf.name, in->name, state_names[st]);
    in->state = st;
    if (st == INST_IDLE)
        in->idle_since = loop_now(p->loop);
    pool_scale_soon(p);
}

/* The directory has (or may have, while a login is checked) a user on in:
 * ending it must end that there too. */
static bool
holds_user(const struct instance *in)
{
    return in->state == INST_RESERVED || in->state == INST_VERIFYING ||
           in->state == INST_PROVISIONING || in->state == INST_ACTIVE;
}

static void
report(const struct instance *in, enum dir_state st)
{
    struct pool *p = in->pool;

    bool with_ep = st == DIR_STARTING || st == DIR_IDLE;
    if (dir_report(p->dir, p->conf.name, in->name, st, with_ep ? &in->ep : NULL) != 0)
        log_warnx("pool=%s instance=%s: cannot report %s to the directory: out of memory",
                  p->conf.name, in->name, dir_state_name(st));
}

/* Expands the words of a (launcher, command) into argv, backed by store. */
static int
expand_argv(const struct instance *in, const struct argv_conf *const *parts, size_t n_parts,
            char (*store)[ARG_EXPANDED_MAX], char **argv)
{
    struct tmpl_vars tv = {.port = in->port,
                           .dir = in->dir,
                           .instance = in->name,
                           .user = in->user[0] ? in->user : NULL,
                           .uid = in->uid_s,
                           .gid = in->gid_s};
    size_t k = 0;
    const char *why = NULL;

    for (size_t j = 0; j < n_parts; j++)
        for (size_t i = 0; i < parts[j]->n; i++, k++)
            if (tmpl_expand(parts[j]->arg[i], &tv, store[k], ARG_EXPANDED_MAX, &why) != 0) {
                log_warnx("pool=%s instance=%s: %s: %s", in->pool->conf.name, in->name,
                          parts[j]->arg[i], why);
                return -EINVAL;
            }
    for (size_t i = 0; i < k; i++)
        argv[i] = store[i];
    argv[k] = NULL;
    return 0;
}

/* ---- output lines and events */

/* One line of an instance, hook or reaper in the log (of key=value), as the
 * quoted value of the field what (out="LINE"): an instance may write
 * " pool=other login ...", which in words of their own read as fields of
 * the line, json's and logfmt's too. */
void
pool_said(const struct pool *p, const char *key, const char *value, const char *what,
          const char *line, bool cut)
{
    char shown[PROC_LINE_MAX + 1];

    log_info("pool=%s %s=%s %s=\"%s\"%s", p->conf.name, key, value, what,
             log_quoted(shown, sizeof(shown), line), cut ? " [cut]" : "");
}

static void
log_line(const struct instance *in, const char *what, const char *line, bool cut)
{
    pool_said(in->pool, "instance", in->name, what, line, cut);
}

static void hook_run(struct instance *in, enum hook_kind kind);

static void
on_ready(struct instance *in)
{
    struct pool *p = in->pool;

    if (in->state != INST_STARTING)
        return;
    timer_stop(p->loop, &in->timer);
    uint64_t ms = loop_now(p->loop) - in->started;
    p->stats.ready_count++;
    p->stats.ready_sum_ms += ms;
    for (size_t b = 0; b < READY_BUCKETS; b++)
        if ((double)ms / 1000.0 <= ready_bounds[b])
            p->stats.ready_buckets[b]++;
    backoff_reset(&p->backoff); /* a start that works ends the backoff */
    set_state(in, INST_IDLE);
    log_info("pool=%s instance=%s ready ms=%llu", p->conf.name, in->name, (unsigned long long)ms);
    report(in, DIR_IDLE);
}

/* in claimed the login of user, whom the directory did not reserve it for
 * (holder: the user it is reserved or active for, "" when none): whatever
 * it runs, it may not serve or impersonate that user. SIGKILL at once, no
 * hook, nothing stored back (an instance that lies about its user is
 * trusted with no one's state), counted; a fresh one takes its place. One
 * that has ended already (answered_after_end()) is only counted. */
static void
forged(struct instance *in, const char *user, const char *holder)
{
    struct pool *p = in->pool;

    p->stats.forged_logins++;
    log_warnx("pool=%s instance=%s forged login user=%s reserved=%s: %s", p->conf.name, in->name,
              user, holder[0] != '\0' ? holder : "-",
              in->state == INST_STOPPING ? "nothing stored back" : "killed");
    in->provisioned = false;
    pool_retire(in, WHY_FORGED_LOGIN, true);
}

/* The directory's answer to a login line that came before its instance
 * ended (a crash, an exit without a logout line, a stop): the session may
 * have written its user's state, which is stored back once the login is
 * confirmed, as for any session; a refused or unchecked login stores
 * nothing back, and its fetch, if it still runs, is given up. */
static void
answered_after_end(struct instance *in, int err, const char *holder)
{
    struct pool *p = in->pool;

    /* reported once answered: the directory, redis, may be away, and would
     * hear of the end of the session before the login it checks */
    report(in, DIR_DRAINING);
    if (err == 0) {
        if (!in->provisioned && !hook_busy(in) && !has_hook(p, HOOK_PROVISION))
            in->provisioned = true; /* with no provisioning hook: store back what it leaves */
        log_info("pool=%s instance=%s login user=%s confirmed after its end", p->conf.name,
                 in->name, in->user);
    } else {
        if (err == -EPERM && in->why == WHY_RECYCLE) { /* the directory ended it first */
            log_info("pool=%s instance=%s: login of %s refused: the directory had ended its "
                     "reservation: nothing stored back",
                     p->conf.name, in->name, in->user);
        } else if (err == -EPERM) {
            forged(in, in->user, holder);
        } else {
            log_warnx("pool=%s instance=%s: login of %s not verified: directory: %s: nothing "
                      "stored back",
                      p->conf.name, in->name, in->user, strerror(-err));
        }
        in->provisioned = false;
        if (hook_busy(in)) {
            hook_cancel(in);
            if (in->proc.state != PROC_RUNNING) { /* instance_gone() waited for the fetch */
                instance_gone(in);
                return;
            }
        }
    }
    if (in->reaped) /* instance_reaped() waited for this answer */
        instance_reaped(in);
}

/* The directory's answer to the login of in->user (INST_VERIFYING). */
static void
activated(void *arg, int err, const char *holder)
{
    struct instance *in = arg;
    struct pool *p = in->pool;

    in->activating = NULL;
    if (in->state == INST_STOPPING) {
        answered_after_end(in, err, holder);
        return;
    }
    if (err == -EPERM) {
        forged(in, in->user, holder);
        return;
    }
    if (err != 0) {
        log_warnx("pool=%s instance=%s: login of %s not verified: directory: %s: killed",
                  p->conf.name, in->name, in->user, strerror(-err));
        in->provisioned = false;
        pool_retire(in, WHY_UNVERIFIED, true);
        return;
    }
    bool hook_running = hook_busy(in); /* started at the reservation */
    bool hook_now = !in->provisioned && !hook_running && has_hook(p, HOOK_PROVISION);
    log_info("pool=%s instance=%s login user=%s provisioned=%s", p->conf.name, in->name, in->user,
             in->provisioned ? "ahead"
             : hook_running  ? "running"
             : hook_now      ? "now"
                             : "none");
    if (hook_now) {
        set_state(in, INST_PROVISIONING);
        hook_run(in, HOOK_PROVISION);
    } else if (hook_running) {
        set_state(in, INST_PROVISIONING); /* hook_exit() makes it active */
    } else {
        in->provisioned = true; /* with no provisioning hook: store back what it leaves */
        set_state(in, INST_ACTIVE);
    }
    if (in->logged_out)
        pool_retire(in, WHY_LOGOUT, true);
}

/* A login line: believed only once the directory confirms that it reserved
 * the instance for that user (every instance may run its user's code and
 * print anything). A claim the pool already knows to be false is forged at
 * once; the rest wait in INST_VERIFYING for dir_activate()'s answer. */
static void
on_login(struct instance *in, const char *user)
{
    struct pool *p = in->pool;

    switch (in->state) {
    case INST_IDLE:
        break;
    case INST_RESERVED:
        if (strcmp(user, in->user) != 0) {
            forged(in, user, in->user);
            return;
        }
        break;
    case INST_VERIFYING:
    case INST_PROVISIONING:
    case INST_ACTIVE:
        if (strcmp(user, in->user) != 0)
            forged(in, user, in->user);
        else
            log_info("pool=%s instance=%s: login line of %s again: ignored", p->conf.name, in->name,
                     user);
        return;
    default: /* starting: never offered to the directory, so reserved for nobody */
        forged(in, user, "");
        return;
    }
    in->activating = dir_activate(p->dir, p->conf.name, in->name, user, p->loop, activated, in);
    if (in->activating == NULL) {
        log_warn("pool=%s instance=%s: cannot ask the directory about the login of %s: killed",
                 p->conf.name, in->name, user);
        pool_retire(in, WHY_UNVERIFIED, true);
        return;
    }
    snprintf(in->user, sizeof(in->user), "%s", user);
    set_state(in, INST_VERIFYING);
}

static void
instance_line(struct proc *pr, const char *line, bool cut)
{
    struct instance *in = pr->data;
    char user[DIR_KEY_MAX];

    log_line(in, "out", line, cut);
    if (in->state == INST_STOPPING || in->state == INST_DEPROVISIONING)
        return;
    switch (rules_match(&in->pool->rules, line, user, sizeof(user))) {
    case RULE_READY:
        on_ready(in);
        break;
    case RULE_LOGIN:
        on_login(in, user);
        break;
    case RULE_BAD_LOGIN:
        log_warnx("pool=%s instance=%s: login line without a valid user: stopped",
                  in->pool->conf.name, in->name);
        pool_retire(in, WHY_BAD_LOGIN, true);
        break;
    case RULE_LOGOUT:
        if (in->state == INST_ACTIVE || in->state == INST_PROVISIONING)
            pool_retire(in, WHY_LOGOUT, true);
        else if (in->state == INST_VERIFYING)
            in->logged_out = true; /* the session ends once its login is confirmed */
        break;
    case RULE_NONE:
        break;
    }
}

/* ---- the end of an instance */

/* A start failed: the next one waits twice as long as the last wait
 * (restart_backoff first, restart_backoff_max at most). */
static void
backoff(struct pool *p)
{
    /* the running conf's bounds: a reload may have changed them */
    p->backoff.min_ms = p->conf.backoff_ms;
    p->backoff.max_ms = p->conf.backoff_max_ms;
    p->not_before = loop_now(p->loop) + backoff_next(&p->backoff);
    log_info("pool=%s restart backoff ms=%u", p->conf.name, p->backoff.cur_ms);
}

/* The kernel killed oom (> 0) processes of in at its memory limit. */
static void
memory_killed(struct instance *in, unsigned long long oom)
{
    struct pool *p = in->pool;

    in->why = WHY_MEMORY_LIMIT;
    p->stats.memory_kills++;
    log_warnx("pool=%s instance=%s: killed by its memory limit memory_max=%zu oom_kills=%llu",
              p->conf.name, in->name, in->cg.memory_max, oom);
}

/* Stops watching in's memory cgroup for OOMs; idempotent. */
static void
oom_unwatch(struct instance *in)
{
    timer_stop(in->pool->loop, &in->oom_timer);
    if (in->oom_fd < 0)
        return;
    io_stop(in->pool->loop, &in->oom_io);
    close(in->oom_fd);
    in->oom_fd = -1;
}

/* After an OOM in in's memory cgroup (v1): a process of it killed ends all
 * of it, as v2's memory.oom.group has the kernel do, and as after a crash
 * (its session ends, why=memory_limit). The kill is counted after the
 * notification: it is looked for again, up to OOM_LOOK_MS; none may come
 * (an ancestor's OOM whose victim was elsewhere, or one already dying). */
static void
oom_check(struct instance *in)
{
    struct pool *p = in->pool;
    unsigned long long oom;

    if (in->state == INST_STOPPING || in->state == INST_DEPROVISIONING || in->state == INST_WIPING)
        return; /* ending: its reaper kills all of it */
    if ((oom = cgroup_oom_kills(&in->cg)) == 0) {
        if (loop_now(p->loop) >= in->oom_until)
            return;
        in->oom_wait_ms = in->oom_wait_ms == 0 ? 1 : in->oom_wait_ms * 2;
        if (in->oom_wait_ms > OOM_WAIT_MAX_MS)
            in->oom_wait_ms = OOM_WAIT_MAX_MS;
        timer_start(p->loop, &in->oom_timer, in->oom_wait_ms, oom_timer, in);
        return;
    }
    bool session = holds_user(in);
    memory_killed(in, oom);
    oom_unwatch(in);
    if (!session)
        backoff(p); /* as for a crash; before pool_retire(): it lets autoscaling start the
                       next one */
    pool_retire(in, WHY_MEMORY_LIMIT, session);
}

static void
oom_timer(struct timer *t)
{
    oom_check(t->data);
}

static void
oom_event(struct io *io, uint32_t events)
{
    struct instance *in = io->data;
    uint64_t n;
    (void)events;

    while (read(in->oom_fd, &n, sizeof(n)) == (ssize_t)sizeof(n))
        ;
    in->oom_wait_ms = 0;
    in->oom_until = loop_now(in->pool->loop) + OOM_LOOK_MS;
    oom_check(in);
}

/* Watches in's memory cgroup for OOMs where the kernel would kill only one
 * of its processes (cgroup v1). */
static void
oom_watch(struct instance *in)
{
    struct pool *p = in->pool;
    int rc = cgroup_oom_watch(&in->cg);

    if (rc == -EOPNOTSUPP)
        return;
    if (rc >= 0) {
        in->oom_fd = rc;
        if ((rc = io_start(p->loop, &in->oom_io, in->oom_fd, EPOLLIN, oom_event, in)) == 0)
            return;
        close(in->oom_fd);
        in->oom_fd = -1;
    }
    /* its start goes on: a kill at its limit is still told at its exit */
    log_warnx("pool=%s instance=%s: cannot watch its memory cgroup for OOMs: %s", p->conf.name,
              in->name, strerror(-rc));
}

static void
instance_reap(struct task *t)
{
    free(t->data);
}

/* Its directory is wiped (or cannot be: then its uid is kept for ever):
 * the instance is forgotten. */
static void
instance_forget(struct instance *in)
{
    struct pool *p = in->pool;

    in->wipe = NULL;
    p->n[in->state]--;
    p->total--;
    list_del(&in->link);
    loop_defer(p->loop, &in->reap, instance_reap, in);
    pool_scale_soon(p);
}

static void
instance_wiped(void *arg, int err, uint64_t entries, uint64_t ms)
{
    struct instance *in = arg;
    struct pool *p = in->pool;

    if (err != 0)
        log_warnx("pool=%s instance=%s: cannot wipe all of %s: %s%s", p->conf.name, in->name,
                  in->dir, strerror(-err), in->own_uid ? "; its uid is not used again" : "");
    log_info("pool=%s instance=%s wiped entries=%llu ms=%llu", p->conf.name, in->name,
             (unsigned long long)entries, (unsigned long long)ms);
    instance_forget(in);
}

/* Starts the wipe of in's directory; its uid goes back once it is done
 * without an error, if none of its processes (nor keys) is left. Returns the wipe, or NULL when
 * there was nothing to wipe (the uid went back) or the wipe could not start (then the uid is kept
 * for ever: something of it may remain). */
static struct wipe *
wipe_start(struct instance *in, wipe_done_cb done)
{
    struct pool *p = in->pool;
    char base[CONF_FILE_PATH_MAX];
    bool give = in->own_uid && in->reaped && !in->spoilt;
    int err = 0;

    base_of(in, base);
    struct wipe *w = pool_env_wipe(p->env, base, in->name, give, in->uid, done, in, &err);
    if (w == NULL && err == -ENOENT && give)
        pool_env_put_uid(p->env, in->uid);
    else if (w == NULL)
        log_warnx("pool=%s instance=%s: cannot wipe %s: %s%s", p->conf.name, in->name, in->dir,
                  strerror(-err), in->own_uid ? "; its uid is not used again" : "");
    return w;
}

/* The processes and hooks are gone: the port goes back at once (nothing of
 * the instance listens any more), the uid once the directory is wiped; the
 * directory hears the instance is gone, a fresh one may take its place. */
static void
instance_done(struct instance *in)
{
    struct pool *p = in->pool;

    timer_stop(p->loop, &in->timer);
    oom_unwatch(in);
    proc_close(&in->proc);
    hook_cancel(in);
    proc_close(&in->reaper);
    dir_activate_cancel(in->activating);
    in->activating = NULL;
    if (in->port_idx != PORT_NONE)
        p->port_used[in->port_idx] = false;
    in->port_idx = PORT_NONE;
    in->port[0] = '\0';
    report(in, DIR_STOPPED);
    log_info("pool=%s instance=%s stopped why=%s", p->conf.name, in->name, why_names[in->why]);
    if (in->replace && !p->stopping)
        p->pending++;
    set_state(in, INST_WIPING);
    if ((in->wipe = wipe_start(in, instance_wiped)) == NULL)
        instance_forget(in);
}

/* Every process of the instance is gone: store the state back when there
 * is one. */
static void
instance_reaped(struct instance *in)
{
    struct pool *p = in->pool;

    in->reaped = true;
    if (in->activating != NULL)
        return; /* whether to store back waits for the answer: answered_after_end() */
    if (in->provisioned && has_hook(p, HOOK_DEPROVISION)) {
        set_state(in, INST_DEPROVISIONING);
        hook_run(in, HOOK_DEPROVISION);
        return;
    }
    instance_done(in);
}

static void
reaper_line(struct proc *pr, const char *line, bool cut)
{
    log_line(pr->data, "reaper", line, cut);
}

/* When a reaper that ended without its work done (a process of the uid may
 * have stopped or killed it before it killed them) is started again, after
 * tries: sooner the first times (the uid is not used before one succeeds). */
unsigned
pool_reap_again_ms(unsigned tries)
{
    unsigned delay = tries < 8 ? 10u << tries : REAP_PATIENCE_MS;

    return delay < REAP_PATIENCE_MS ? delay : REAP_PATIENCE_MS;
}

static void
reaper_exit(struct proc *pr, int status)
{
    struct instance *in = pr->data;
    struct pool *p = in->pool;

    timer_stop(p->loop, &in->timer);
    if (WIFEXITED(status) &&
        (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == PROC_REAP_LEFTOVERS))
        in->cg.n = 0; /* removed before the uid's turn */
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        log_debug("pool=%s instance=%s uid=%u: no process left", p->conf.name, in->name,
                  (unsigned)in->uid);
        instance_reaped(in);
        return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == PROC_REAP_LEFTOVERS) {
        log_warnx("pool=%s instance=%s uid=%u: " LEFTOVERS "; the uid is not used again",
                  p->conf.name, in->name, (unsigned)in->uid);
        in->spoilt = true;
        instance_reaped(in);
        return;
    }
    unsigned delay = pool_reap_again_ms(in->reap_tries);
    log_warnx("pool=%s instance=%s uid=%u: reaper ended with status 0x%x: again in %u ms",
              p->conf.name, in->name, (unsigned)in->uid, (unsigned)status, delay);
    timer_start(p->loop, &in->timer, delay, instance_timer, in);
}

/* Whether in has a reaper to run once its process is gone: a cgroup or a
 * uid of its own. */
static bool
has_reaper(const struct instance *in)
{
    return in->own_uid || in->cg.n > 0;
}

/* Starts in's reaper (proc_reap()): every process of its cgroup and of its
 * own uid is killed; what it started outside its process group
 * (setsid(), double forks) must not outlive the session. */
static int
reaper_start(struct instance *in)
{
    const struct reap_opts o = {
        .cg = in->cg.n > 0 ? &in->cg : NULL, .by_uid = in->own_uid, .uid = in->uid, .gid = in->gid};

    return proc_reap(&in->reaper, in->pool->loop, &o, reaper_line, reaper_exit, in);
}

/* Runs in's reaper, bounded by REAP_PATIENCE_MS (instance_timer()). */
static void
reap_start(struct instance *in)
{
    struct pool *p = in->pool;
    int rc;

    in->reap_tries++;
    if ((rc = reaper_start(in)) != 0)
        log_warnx("pool=%s instance=%s uid=%u: cannot start the reaper: %s", p->conf.name, in->name,
                  (unsigned)in->uid, strerror(-rc));
    timer_start(p->loop, &in->timer, REAP_PATIENCE_MS, instance_timer, in);
}

/* The process is gone (reaped): kill what is left of its uid, then store
 * the state back. */
static void
instance_gone(struct instance *in)
{
    struct pool *p = in->pool;

    timer_stop(p->loop, &in->timer);
    if (hook_busy(in)) {
        /* the fetch of a confirmed login: its user may have been served
         * what it had written; hook_ended() goes on, or the timeout */
        timer_start(p->loop, &in->timer, hook_timeout_ms(p, HOOK_PROVISION), instance_timer, in);
        return;
    }
    if (has_reaper(in)) {
        reap_start(in);
        return;
    }
    instance_reaped(in);
}

static void
instance_exit(struct proc *pr, int status)
{
    struct instance *in = pr->data;
    struct pool *p = in->pool;

    oom_unwatch(in);
    if (in->state != INST_STOPPING) {
        /* an exit nobody asked for: a crash, or the end of a session
         * without a logout line */
        bool session = holds_user(in);
        /* brought in, never used: the store has it. After a login line the
         * directory's answer decides (answered_after_end()). */
        if (in->state == INST_RESERVED) {
            hook_cancel(in);
            in->provisioned = false;
        }
        in->why = WHY_EXIT;
        /* the kernel's OOM killer, at the limit of its cgroup: told apart
         * from a crash, which is the application's own */
        unsigned long long oom = cgroup_oom_kills(&in->cg);
        if (oom > 0)
            memory_killed(in, oom);
        in->replace = session; /* else min_idle brings a fresh one, after the backoff */
        if (session && in->activating == NULL)
            report(in, DIR_DRAINING);
        else if (!session)
            backoff(p);
        set_state(in, INST_STOPPING);
    }
    if (WIFSIGNALED(status))
        log_info("pool=%s instance=%s exited signal=%d", p->conf.name, in->name, WTERMSIG(status));
    else
        log_info("pool=%s instance=%s exited status=%d", p->conf.name, in->name,
                 WEXITSTATUS(status));
    instance_gone(in);
}

static void
hook_timed_out(struct instance *in)
{
    struct pool *p = in->pool;

    hook_cancel(in);
    p->stats.hook_failures[in->hook_kind][HF_TIMEOUT]++;
    log_warnx("pool=%s instance=%s hook=%s failed reason=timeout ms=%u", p->conf.name, in->name,
              hook_names[in->hook_kind], hook_timeout_ms(p, in->hook_kind));
}

static void
instance_timer(struct timer *t)
{
    struct instance *in = t->data;
    struct pool *p = in->pool;

    switch (in->state) {
    case INST_STARTING:
        log_warnx("pool=%s instance=%s: not ready within %u ms: killed", p->conf.name, in->name,
                  p->conf.start_timeout_ms);
        backoff(p); /* before pool_retire(): it lets autoscaling start the next one */
        pool_retire(in, WHY_START_TIMEOUT, false);
        break;
    case INST_DEPROVISIONING:
        if (in->xfer != NULL) {
            /* a store-back is never given up: a copy cannot be stopped
             * midway, and its user, back, must not be served the state it
             * would then write over; nor is the session's state dropped
             * because the store is slow. The session ends when it has. */
            log_warnx("pool=%s instance=%s state=deprovision: past its timeout (%u ms), awaited",
                      p->conf.name, in->name, p->conf.state.timeout_ms);
            break;
        }
        hook_timed_out(in);
        instance_done(in);
        break;
    case INST_RESERVED:
    case INST_VERIFYING: /* a hook started at the reservation */
    case INST_PROVISIONING:
        hook_timed_out(in);
        pool_retire(in, WHY_HOOK, true);
        break;
    case INST_STOPPING:
        if (in->proc.state != PROC_RUNNING && hook_busy(in)) {
            hook_timed_out(in); /* the fetch instance_gone() waits for */
            instance_gone(in);
            break;
        }
        if (in->proc.state != PROC_RUNNING) {
            /* the reaper failed, or is still at it (a process in an
             * uninterruptible sleep, or one that stopped it) */
            if (in->reaper.state == PROC_RUNNING)
                log_warnx("pool=%s instance=%s uid=%u: processes left after %u ms: killing again",
                          p->conf.name, in->name, (unsigned)in->uid,
                          in->reap_tries * REAP_PATIENCE_MS);
            proc_close(&in->reaper);
            reap_start(in);
            break;
        }
        if (!in->sent_term) {
            in->sent_term = true;
            proc_signal(&in->proc, SIGTERM);
        } else {
            proc_signal(&in->proc, SIGKILL);
        }
        timer_start(p->loop, &in->timer, p->conf.stop_grace_ms, instance_timer, in);
        break;
    case INST_IDLE:
    case INST_ACTIVE:
    case INST_WIPING:
    case INST_STATE_COUNT:
        break;
    }
}

/* Stops in for why: its session (if any) ends in the directory now; the
 * process gets SIGTERM (after stop_grace on a logout, so that it can exit
 * by itself) and SIGKILL stop_grace later, or SIGKILL at once when it must
 * not go on (a failed hook, a bad login, a start timeout). */
void
pool_retire(struct instance *in, enum stop_why why, bool replace)
{
    struct pool *p = in->pool;

    if (in->state == INST_STOPPING || in->state == INST_DEPROVISIONING || in->state == INST_WIPING)
        return;
    /* No login line yet, or one not believed: nothing to store back, the
     * answer no longer matters. A login line still being checked may have
     * been served its user's state: the answer decides
     * (answered_after_end()). A confirmed login whose fetch still runs
     * (INST_PROVISIONING) was served the state the fetch had already
     * written: instance_gone() lets the fetch end and what the session
     * wrote is stored back. */
    bool distrusted = why == WHY_BAD_LOGIN || why == WHY_FORGED_LOGIN || why == WHY_UNVERIFIED;
    if (in->state == INST_RESERVED || (in->state == INST_VERIFYING && distrusted)) {
        dir_activate_cancel(in->activating);
        in->activating = NULL;
        hook_cancel(in);
        in->provisioned = false;
    }
    if (holds_user(in) && in->activating == NULL)
        report(in, DIR_DRAINING);
    in->why = why;
    in->replace = replace;
    set_state(in, INST_STOPPING);
    log_info("pool=%s instance=%s stopping why=%s", p->conf.name, in->name, why_names[why]);
    if (why == WHY_HOOK || why == WHY_BAD_LOGIN || why == WHY_FORGED_LOGIN ||
        why == WHY_UNVERIFIED || why == WHY_START_TIMEOUT || why == WHY_TOOK_PORT ||
        why == WHY_MEMORY_LIMIT) {
        in->sent_term = true;
        proc_signal(&in->proc, SIGKILL);
    } else if (why != WHY_LOGOUT) {
        in->sent_term = true;
        proc_signal(&in->proc, SIGTERM);
    }
    timer_start(p->loop, &in->timer, p->conf.stop_grace_ms, instance_timer, in);
}

/* ---- hooks */

static void
hook_line(struct proc *pr, const char *line, bool cut)
{
    struct instance *in = pr->data;

    log_line(in, hook_names[in->hook_kind], line, cut);
}

static void
hook_failed(struct instance *in, enum hook_fail why)
{
    struct pool *p = in->pool;

    p->stats.hook_failures[in->hook_kind][why]++;
    log_warnx("pool=%s instance=%s hook=%s failed reason=%s", p->conf.name, in->name,
              hook_names[in->hook_kind], hook_fail_names[why]);
    if (in->state == INST_STOPPING) { /* the fetch of a stopped, confirmed login */
        if (in->proc.state != PROC_RUNNING)
            instance_gone(in);
    } else if (in->hook_kind == HOOK_PROVISION) {
        pool_retire(in, WHY_HOOK, true);
    } else {
        instance_done(in);
    }
}

/* in's hook or built-in transfer ended: ok, or failed for why. */
static void
hook_ended(struct instance *in, bool ok, enum hook_fail why)
{
    struct pool *p = in->pool;

    /* a stopping instance's timer is its stop_grace until it is gone */
    if (in->state != INST_STOPPING || in->proc.state != PROC_RUNNING)
        timer_stop(p->loop, &in->timer);
    if (!ok) {
        hook_failed(in, why);
        return;
    }
    log_info("pool=%s instance=%s hook=%s ok", p->conf.name, in->name, hook_names[in->hook_kind]);
    if (in->hook_kind == HOOK_PROVISION) {
        in->provisioned = true;
        if (in->state == INST_PROVISIONING) /* else reserved: the login is still to come */
            set_state(in, INST_ACTIVE);
        else if (in->state == INST_STOPPING && in->proc.state != PROC_RUNNING)
            instance_gone(in); /* it waited for this fetch */
    } else {
        instance_done(in);
    }
}

static void
hook_exit(struct proc *pr, int status)
{
    struct instance *in = pr->data;
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;

    if (ok && in->hook_kind == HOOK_PROVISION && in->run_as && give_start(in) == 0)
        return; /* give_done() ends it */
    hook_ended(in, ok, HF_EXIT);
}

static void
xfer_done(void *arg, void *ctx, int err)
{
    struct instance *in = arg;

    in->xfer = NULL;
    if (err != 0)
        log_warnx("pool=%s instance=%s state=%s: %s", in->pool->conf.name, in->name,
                  hook_names[in->hook_kind], state_xfer_why(ctx));
    hook_ended(in, err == 0, HF_STATE);
}

/* Built-in provisioning: the transfer of in->user's files, queued off the
 * main loop (a fetch for the env's urgent threads: a login waits for it). */
static void
xfer_run(struct instance *in, enum hook_kind kind)
{
    struct pool *p = in->pool;
    char why[256];
    int err = 0;

    in->hook_kind = kind;
    struct state_xfer *x =
        state_xfer_new(&p->conf.state, kind == HOOK_PROVISION ? STATE_FETCH : STATE_STORE, in->user,
                       in->dir, &err, why, sizeof(why));
    if (x == NULL) {
        log_warnx("pool=%s instance=%s state=%s: %s", p->conf.name, in->name, hook_names[kind],
                  why);
        hook_failed(in, HF_STATE);
        return;
    }
    in->xfer = pool_env_run(p->env, state_xfer_run, x, state_xfer_free,
                            kind == HOOK_PROVISION ? ENV_URGENT : ENV_STORE, xfer_done, in);
    if (in->xfer == NULL) {
        log_warnx("pool=%s instance=%s state=%s: out of memory", p->conf.name, in->name,
                  hook_names[kind]);
        hook_failed(in, HF_STATE);
        return;
    }
    timer_start(p->loop, &in->timer, p->conf.state.timeout_ms, instance_timer, in);
}

static void
hook_run(struct instance *in, enum hook_kind kind)
{
    struct pool *p = in->pool;
    const struct hook_conf *hc = kind == HOOK_PROVISION ? &p->conf.provision : &p->conf.deprovision;
    const struct argv_conf *parts[] = {&hc->command};
    static char store[CONF_ARGV_MAX][ARG_EXPANDED_MAX];
    char *argv[CONF_ARGV_MAX + 1];
    struct proc_opts o = {.cwd = in->dir};
    int rc;

    if (p->conf.state.store[0] != '\0') {
        xfer_run(in, kind);
        return;
    }
    in->hook_kind = kind;
    if (expand_argv(in, parts, 1, store, argv) != 0) {
        hook_failed(in, HF_SPAWN);
        return;
    }
    if ((rc = proc_spawn(&in->hook, p->loop, argv, &o, hook_line, hook_exit, in)) != 0) {
        log_warnx("pool=%s instance=%s hook=%s: cannot start: %s", p->conf.name, in->name,
                  hook_names[kind], strerror(-rc));
        hook_failed(in, HF_SPAWN);
        return;
    }
    timer_start(p->loop, &in->timer, hc->timeout_ms, instance_timer, in);
}

/* ---- starting instances */

/* The live instance of any pool that runs as uid, its own (uids:), or NULL:
 * no other process runs as it. */
struct instance *
pool_instance_of_uid(uid_t uid)
{
    for (struct list *pl = all_pools.next; pl != &all_pools; pl = pl->next) {
        struct pool *p = list_entry(pl, struct pool, link);
        for (struct list *l = p->instances.next; l != &p->instances; l = l->next) {
            struct instance *in = list_entry(l, struct instance, link);
            if (in->own_uid && in->uid == uid && in->state != INST_WIPING)
                return in;
        }
    }
    return NULL;
}

/* The prefix of p's instance names (PREFIX-N) into prefix: the pool's name,
 * and the directory's node name after it when there is one, which makes the
 * names unique among the machines that share one redis directory with a
 * pool of this name. Their directories and cgroups have it too. */
static const char *
instance_prefix(const struct pool *p, char prefix[PREFIX_MAX])
{
    const char *node = dir_node(p->dir);

    snprintf(prefix, PREFIX_MAX, "%s%s%s", p->conf.name, node[0] != '\0' ? "-" : "", node);
    return prefix;
}

/* Notes where p's instances run, as p now says, in the record
 * (pool/record.h), before any of them starts there. */
static void
note_places(const struct pool *p)
{
    char prefix[PREFIX_MAX];

    record_note_pool(pool_env_record(p->env), instance_prefix(p, prefix), p->conf.dir,
                     p->cgroups ? &p->cgp : NULL, p->conf.uid_min,
                     pool_conf_uids(&p->conf) > 0 ? p->conf.uid_max : 0);
}

/* Starts one instance. Returns 0, -EAGAIN when no port or uid is free (until
 * a wipe ends), or -errno (then it counts as a failed start, for the
 * backoff). */
static int
instance_start(struct pool *p)
{
    struct instance *in = calloc(1, sizeof(*in));
    static char store[2 * CONF_ARGV_MAX][ARG_EXPANDED_MAX];
    char *argv[2 * CONF_ARGV_MAX + 1];
    char ep[ARG_EXPANDED_MAX];
    const struct argv_conf *parts[] = {&p->conf.launcher, &p->conf.command};
    const char *why = NULL;
    int rc;

    if (in == NULL)
        return -ENOMEM;
    in->pool = p;
    in->port_idx = PORT_NONE;
    in->hook.pidfd = in->hook.out_fd = in->proc.pidfd = in->proc.out_fd = -1;
    in->reaper.pidfd = in->reaper.out_fd = -1;
    in->oom_fd = -1;
    /* first: a start that waits for a uid takes no name */
    if ((rc = pool_take_uid(p, in)) != 0 || (rc = pool_take_port(p, in)) != 0)
        goto fail;
    char name[PREFIX_MAX + 24], prefix[PREFIX_MAX];
    snprintf(name, sizeof(name), "%s-%llu", instance_prefix(p, prefix), ++p->seq);
    if (strlen(name) >= sizeof(in->name)) { /* POOL_NAME_MAX keeps it short */
        rc = -ENAMETOOLONG;
        goto fail;
    }
    memcpy(in->name, name, strlen(name) + 1);
    snprintf(in->dir, sizeof(in->dir), "%s/%s", p->conf.dir, in->name);
    struct tmpl_vars tv = {.port = in->port, .dir = in->dir, .instance = in->name};
    if (tmpl_expand(p->conf.endpoint, &tv, ep, sizeof(ep), &why) != 0 ||
        endpoint_parse(ep, &in->ep, &why) != PARSE_OK) {
        log_warnx("pool=%s instance=%s: endpoint %s: %s", p->conf.name, in->name, ep, why);
        rc = -EINVAL;
        goto fail;
    }
    if ((rc = expand_argv(in, parts, 2, store, argv)) != 0)
        goto fail;
    if ((rc = make_dir(in)) != 0) {
        log_warnx("pool=%s instance=%s: cannot make %s: %s", p->conf.name, in->name, in->dir,
                  strerror(-rc));
        goto fail;
    }
    int cg_fds[CGROUP_DIRS_MAX];
    char why_cg[CGROUP_PATH_MAX + 128];
    if (p->cgroups &&
        (rc = cgroup_make(&p->cgp, in->name, &in->cg, cg_fds, why_cg, sizeof(why_cg))) != 0) {
        log_warnx("pool=%s instance=%s: cannot make its cgroup: %s", p->conf.name, in->name,
                  why_cg);
        wipe_start(in, NULL); /* empty; the uid goes back below, nothing ran as it */
        goto fail;
    }
    oom_watch(in); /* before anything runs in its cgroup */
    struct proc_opts o = {.cwd = in->dir,
                          .uid = in->uid,
                          .gid = in->gid,
                          .run_as = in->run_as,
                          .no_mqueue = in->own_uid && !pool_env_mqueues_wiped(),
                          .max_processes = in->own_uid ? p->conf.max_processes : 0,
                          .cgroup_fds = cg_fds,
                          .n_cgroup_fds = in->cg.n};
    rc = proc_spawn(&in->proc, p->loop, argv, &o, instance_line, instance_exit, in);
    for (size_t i = 0; i < in->cg.n; i++)
        close(cg_fds[i]);
    if (rc != 0) {
        log_warnx("pool=%s instance=%s: cannot start: %s", p->conf.name, in->name, strerror(-rc));
        oom_unwatch(in);
        cgroup_clear(&in->cg, 0); /* empty: nothing ran in it */
        wipe_start(in, NULL);     /* empty; the uid goes back below, nothing ran as it */
        goto fail;
    }
    in->started = loop_now(p->loop);
    in->state = INST_STARTING;
    p->n[INST_STARTING]++;
    p->total++;
    list_add_tail(&p->instances, &in->link);
    p->stats.starts++;
    if (p->backoff.cur_ms > 0)
        p->stats.restarts++;
    log_info("pool=%s instance=%s starting pid=%d port=%s", p->conf.name, in->name,
             (int)in->proc.pid, in->port[0] ? in->port : "-");
    report(in, DIR_STARTING);
    timer_start(p->loop, &in->timer, p->conf.start_timeout_ms, instance_timer, in);
    return 0;

fail:
    if (in->port_idx != PORT_NONE)
        p->port_used[in->port_idx] = false;
    if (in->own_uid)
        pool_env_put_uid(p->env, in->uid);
    free(in);
    return rc;
}

/* ---- autoscaling */

static void
scale_timer(struct timer *t)
{
    pool_scale_soon(t->data);
}

static void
scale(struct pool *p)
{
    uint64_t now = loop_now(p->loop), due = 0;

    if (p->stopping)
        return;
    pool_reap_left(p);
    size_t ready = p->n[INST_STARTING] + p->n[INST_IDLE];
    size_t need = p->conf.min_idle > ready ? p->conf.min_idle - ready : 0;
    /* an instance that ended a session was replaced when it was taken: a
     * fresh one in its place is owed only up to max_idle, above which it
     * would stand idle for the cooldown and be trimmed, a start for nothing */
    size_t room = p->conf.max_idle > ready ? p->conf.max_idle - ready : 0;
    if (p->pending > room)
        p->pending = room;
    if (p->pending > need)
        need = p->pending;
    if (p->calm_until > now + p->conf.replace_delay_ms)
        p->calm_until = now + p->conf.replace_delay_ms; /* a reload shortened it */
    uint64_t calm = p->calm_until;
    if (logins_on_way(p) == 0 && p->settle_until < calm)
        calm = p->settle_until; /* every login is in: only its first request is left */
    if (need > p->pending && p->n[INST_IDLE] > 0 && now < calm) {
        need = p->pending; /* a user's login is on its way: taken() */
        due = calm;
    } else {
        p->calm_until = 0; /* what was owed starts now: the next take waits afresh */
    }
    /* directories being wiped hold a uid, not a process; an earlier
     * airlock's cgroups go first (cg_sweep_done() comes back here) */
    while (need > 0 && p->cg_sweep == NULL && p->total - p->n[INST_WIPING] < p->conf.max) {
        if (now < p->not_before) {
            due = p->not_before;
            break;
        }
        int rc = instance_start(p);
        if (rc == -EAGAIN)
            break; /* the end of a wipe frees a uid and comes back here */
        if (rc != 0) {
            backoff(p);
            due = p->not_before;
            break;
        }
        need--;
        if (p->pending > 0)
            p->pending--;
    }
    if (p->total - p->n[INST_WIPING] >= p->conf.max)
        p->pending = 0; /* at max: only min_idle is owed */

    /* trim: idle instances above max_idle once idle for cooldown; above
     * max (after a resize) at once */
    size_t excess = p->n[INST_IDLE] > p->conf.max_idle ? p->n[INST_IDLE] - p->conf.max_idle : 0;
    size_t live = p->total - p->n[INST_STOPPING] - p->n[INST_DEPROVISIONING] - p->n[INST_WIPING];
    size_t over = live > p->conf.max ? live - p->conf.max : 0;
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &p->instances) {
        struct instance *in = list_entry(pos, struct instance, link);
        if (excess == 0 && over == 0)
            break;
        if (in->state != INST_IDLE)
            continue;
        uint64_t at = in->idle_since + p->conf.cooldown_ms;
        if (over > 0 || at <= now) {
            pool_retire(in, WHY_TRIM, false);
            over -= over > 0;
            excess -= excess > 0;
        } else if (due == 0 || at < due) {
            due = at;
        }
    }
    if (due != 0)
        timer_start(p->loop, &p->scale_timer, due > now ? due - now : 0, scale_timer, p);
}

static void
scale_task(struct task *t)
{
    scale(t->data);
}

/* Autoscaling runs after the current batch of events, once however many
 * states changed in it. */
void
pool_scale_soon(struct pool *p)
{
    loop_defer(p->loop, &p->scale_task, scale_task, p);
}

/* ---- the directory's changes */

/* A reservation the directory withdrew (its clients left) is decided on
 * only after the instance's output has been read: a login line it printed
 * before its client left is still the authority (the session goes on: the
 * directory still activates the withdrawn key). Then an instance that brought the user's
 * state in is recycled; one that brought nothing (no hook, or the pool
 * never heard of the reservation) serves the next client as it is. */
static void
withdraw_check(struct task *t)
{
    struct instance *in = t->data;
    struct pool *p = in->pool;

    if ((in->state != INST_RESERVED && in->state != INST_IDLE) || p->stopping)
        return; /* the login came first, or it is going anyway */
    if (proc_output_pending(&in->proc) && ++in->withdraw_turns < WITHDRAW_TURNS_MAX) {
        loop_defer(p->loop, &in->withdraw, withdraw_check, in);
        return;
    }
    /* whoever held the reservation may have spoken to the instance: it
     * serves nobody else (an unauthenticated client's bytes may have left
     * something in it), even when nothing was brought in yet */
    log_info("pool=%s instance=%s: reservation for %s withdrawn before a login: recycled",
             p->conf.name, in->name, in->withdrawn_key);
    pool_retire(in, WHY_RECYCLE, true);
}

/* The directory withdrew the reservation for key (the instance waits in
 * starting there until the pool reports it again); decided after the
 * events of this turn, which may hold its login line. */
static void
withdrawn(struct instance *in, const char *key)
{
    struct pool *p = in->pool;

    snprintf(in->withdrawn_key, sizeof(in->withdrawn_key), "%s", key);
    in->withdraw_turns = 0;
    loop_defer(p->loop, &in->withdraw, withdraw_check, in);
}

/* A reservation: bring the user's state in while their TLS handshake and
 * login request are on the way, so that the login does not wait for the
 * hook. A reservation withdrawn (its clients left, or reserve_timeout), a
 * session that expired, a drain: the instance is recycled (a fresh
 * process, its directory wiped). */
static void
watched(void *arg, const struct dir_instance *di)
{
    struct pool *p = arg;
    struct list *pos, *tmp;

    list_for_each_safe(pos, tmp, &p->instances)
        if (strcmp(list_entry(pos, struct instance, link)->name, di->name) == 0)
            break;
    if (pos == &p->instances)
        return;
    struct instance *in = list_entry(pos, struct instance, link);
    if (di->state == DIR_RESERVED) {
        if (in->state != INST_IDLE || !has_hook(p, HOOK_PROVISION) || di->key[0] == '\0')
            return; /* the login came first (redis is polled), or nothing to bring in */
        snprintf(in->user, sizeof(in->user), "%s", di->key);
        set_state(in, INST_RESERVED);
        log_info("pool=%s instance=%s reserved user=%s: provisioning ahead", p->conf.name, in->name,
                 in->user);
        hook_run(in, HOOK_PROVISION);
    } else if (di->state == DIR_STARTING) {
        withdrawn(in, di->key);
    } else if (di->state == DIR_DRAINING && (in->state == INST_IDLE || holds_user(in))) {
        log_info("pool=%s instance=%s: drained by the directory", p->conf.name, in->name);
        pool_retire(in, WHY_RECYCLE, true);
    }
}

/* ---- the pool */

int
pool_conf_check_cgroup(const struct pool_conf *pc, char *why, size_t len)
{
    if (!pool_conf_cgroups(pc))
        return 0;
    return cgroup_check_host(pool_conf_cgroup(pc), pc->memory_max, pc->cpu_max, pc->max_processes,
                             why, len);
}

/* Where pc's instances get their cgroups, into p->cgp (p->cgroups), the
 * parent readied for them (cgroup_prepare()). Returns 0, or -errno with
 * why; p keeps what it had then. */
static int
apply_cgroups(struct pool *p, const struct pool_conf *pc, char *why, size_t len)
{
    struct cgroup_parent cp;
    int rc;

    if (!pool_conf_cgroups(pc)) {
        p->cgroups = false;
        return 0;
    }
    if ((rc = cgroup_resolve(pool_conf_cgroup(pc), pc->memory_max, pc->cpu_max, pc->max_processes,
                             &cp, why, len)) != 0 ||
        (rc = cgroup_prepare(&cp, why, len)) != 0)
        return rc;
    p->cgp = cp;
    p->cgroups = true;
    return 0;
}

/* The removal of the cgroups an earlier airlock left for instances of a
 * pool of this name (cgroup_stale()), off the loop: their processes are
 * killed until none is left, which may take a while. */
struct cg_sweep {
    char pool[CONF_NAME_MAX];
    struct cgroup *stale;
    size_t n;
    unsigned removed;
    char left[CGROUP_PATH_MAX]; /* the last one that could not be removed */
};

static int
cg_sweep_run(void *ctx)
{
    struct cg_sweep *s = ctx;

    return cgroup_clear_all(s->stale, s->n, CGROUP_SWEEP_MS, &s->removed, s->left);
}

static void
cg_sweep_free(void *ctx)
{
    struct cg_sweep *s = ctx;

    free(s->stale);
    free(s);
}

static void
cg_sweep_done(void *arg, void *ctx, int err)
{
    struct pool *p = arg;
    const struct cg_sweep *s = ctx;

    p->cg_sweep = NULL;
    log_info("pool=%s: removed %u cgroups left by an earlier airlock", s->pool, s->removed);
    if (err != 0) /* its name is not given again: the start fails (cgroup_make()) */
        log_warnx("pool=%s: cannot remove %s (and %zu more): %s", s->pool, s->left,
                  s->n - s->removed - 1, strerror(-err));
    pool_scale_soon(p);
}

/* Queues the removal of the cgroups an earlier airlock (killed: its
 * instances' daemons live on there) left in p's parents; p starts no
 * instance before it is done. */
static void
cg_sweep_start(struct pool *p)
{
    char prefix[PREFIX_MAX];
    struct cg_sweep *s;

    instance_prefix(p, prefix);
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return; /* at the next start */
    snprintf(s->pool, sizeof(s->pool), "%s", p->conf.name);
    if ((s->stale = cgroup_stale(&p->cgp, prefix, &s->n)) == NULL) {
        free(s);
        return;
    }
    log_info("pool=%s: removing %zu cgroups left by an earlier airlock", p->conf.name, s->n);
    p->cg_sweep = pool_env_run(p->env, cg_sweep_run, s, cg_sweep_free, ENV_STORE, cg_sweep_done, p);
}

/* The base of the instance directories, made when missing (0711: a run-as
 * user may pass through to its own directory, but not list the others).
 * It must be airlock's and writable by airlock only, its parents too
 * (privdir_check()), else an instance could plant names there. What an
 * earlier airlock left in it is wiped. */
static int
base_prepare(struct pool *p, const struct pool_conf *pc)
{
    char why[2 * CONF_FILE_PATH_MAX];
    int rc;

    if (mkdir(pc->dir, 0711) != 0 && errno != EEXIST) {
        rc = -errno;
        log_warn("pool=%s: cannot make %s", pc->name, pc->dir);
        return rc;
    }
    if ((rc = privdir_check(pc->dir, why, sizeof(why))) != 0) {
        log_warnx("pool=%s: %s", pc->name, why);
        return rc;
    }
    char prefix[PREFIX_MAX];
    unsigned n = pool_env_sweep(p->env, pc->dir, instance_prefix(p, prefix));
    if (n > 0)
        log_info("pool=%s: wiping %u directories left in %s", pc->name, n, pc->dir);
    return 0;
}

/* The sweep of a pool's state store at its start (state_store_sweep()). */
struct sweep {
    char pool[CONF_NAME_MAX];
    struct state_conf sc;
    unsigned removed;
};

static int
sweep_run(void *ctx)
{
    struct sweep *s = ctx;

    return state_store_sweep(&s->sc, &s->removed);
}

/* On the loop, once the sweep ran: the pool may be gone, s is all it needs. */
static void
sweep_done(void *arg, void *ctx, int err)
{
    const struct sweep *s = ctx;

    (void)arg;
    if (err != 0)
        log_warnx("pool=%s: state.store: sweeping %s: %s", s->pool, s->sc.store, strerror(-err));
    else
        log_info("pool=%s: state.store: removed %u temporary files left in %s", s->pool, s->removed,
                 s->sc.store);
}

/* Queues the removal of the temporaries an earlier airlock left in pc's
 * store (ENV_AFTER: no store-back of this process runs meanwhile), so that
 * none of their temporaries is ever taken for a leftover. */
static void
sweep_store(struct pool *p, const struct pool_conf *pc)
{
    struct sweep *s;

    if (pc->state.store[0] == '\0')
        return;
    /* the other nodes' temporaries in flight look the same as a crash's */
    if (dir_node(p->dir)[0] != '\0') {
        log_info("pool=%s: state.store: shared by the nodes of a cluster, not swept", pc->name);
        return;
    }
    if ((s = calloc(1, sizeof(*s))) != NULL) {
        snprintf(s->pool, sizeof(s->pool), "%s", pc->name);
        s->sc = pc->state;
        if (pool_env_run(p->env, sweep_run, s, free, ENV_AFTER, sweep_done, NULL) != NULL)
            return; /* s is the env's (freed by it when this fails, too) */
    }
    log_warnx("pool=%s: state.store: out of memory, leftovers of a crash stay", pc->name);
}

/* The store's lock of a pool that leaves it, released (ENV_AFTER) once the
 * transfers queued before it ran: their temporaries are this airlock's
 * until then. */
struct store_unlock {
    int fd;
    char pool[CONF_NAME_MAX];
    char store[CONF_FILE_PATH_MAX];
};

static int
store_unlock_run(void *ctx)
{
    struct store_unlock *u = ctx;

    close(u->fd);
    u->fd = -1;
    return 0;
}

/* On the loop, once released: the pool may be gone, u is all it needs. */
static void
store_unlock_done(void *arg, void *ctx, int err)
{
    const struct store_unlock *u = ctx;

    (void)arg;
    (void)err;
    log_info("pool=%s: state.store: released %s", u->pool, u->store);
}

static void
store_unlock_free(void *ctx)
{
    struct store_unlock *u = ctx;

    if (u->fd >= 0) /* it never ran (out of memory): released now */
        close(u->fd);
    free(u);
}

/* Takes the store of sc for p (state_store_lock()): shared by the nodes of
 * a cluster, whose directory keeps each user on one node at a time. */
static int
store_take(const struct pool *p, const struct state_conf *sc, char *why, size_t len)
{
    return state_store_lock(sc->store, dir_node(p->dir)[0] != '\0', why, len);
}

/* Releases p's store lock (held or not) after the work queued so far. */
static void
store_release(struct pool *p)
{
    struct store_unlock *u;

    if (p->store_lock < 0)
        return;
    if ((u = malloc(sizeof(*u))) == NULL) {
        close(p->store_lock); /* nothing can wait for the transfers: they end, unlocked */
    } else {
        u->fd = p->store_lock;
        snprintf(u->pool, sizeof(u->pool), "%s", p->conf.name);
        snprintf(u->store, sizeof(u->store), "%s", p->conf.state.store);
        pool_env_run(p->env, store_unlock_run, u, store_unlock_free, ENV_AFTER, store_unlock_done,
                     NULL);
    }
    p->store_lock = -1;
}

struct pool *
pool_new(struct loop *loop, struct dir *d, struct pool_env *env, const struct pool_conf *pc,
         int *err)
{
    struct pool *p = calloc(1, sizeof(*p));
    char why[1024]; /* room for a path or two */
    int rc = -ENOMEM;

    if (p == NULL)
        goto fail;
    p->store_lock = -1;
    list_init(&p->instances);
    list_init(&p->uid_reaps);
    if (d == NULL) { /* no login could be checked: config.c requires directory: */
        log_warnx("pool=%s: no directory to check logins against", pc->name);
        rc = -EINVAL;
        goto fail;
    }
    p->loop = loop;
    p->dir = d;
    p->env = env;
    p->conf = *pc;
    p->n_ports = pool_conf_ports(pc);
    if ((p->port_used = calloc(p->n_ports ? p->n_ports : 1, sizeof(bool))) == NULL)
        goto fail;
    if ((rc = rules_compile(&p->rules, pc)) != 0)
        goto fail;
    if ((rc = pool_conf_check_host(pc, why, sizeof(why))) != 0 ||
        (rc = state_conf_check_host(&pc->state, why, sizeof(why))) != 0 ||
        (pc->state.store[0] != '\0' &&
         (rc = p->store_lock = store_take(p, &pc->state, why, sizeof(why))) < 0)) {
        log_warnx("pool=%s: %s", pc->name, why);
        goto fail;
    }
    if (pool_conf_uids(pc) > 0 && geteuid() != 0) {
        log_warnx("pool=%s: uids: airlock must run as root to switch to them", pc->name);
        rc = -EPERM;
        goto fail;
    }
    if (pool_conf_uids(pc) > 0 && !pool_env_mqueues_wiped())
        log_info("pool=%s: /dev/mqueue is not mounted, so a POSIX message queue an instance "
                 "left could not be found and wiped: instances get none (RLIMIT_MSGQUEUE 0)",
                 pc->name);
    if ((rc = pool_apply_user(p, pc)) != 0 || (rc = base_prepare(p, pc)) != 0)
        goto fail;
    if ((rc = apply_cgroups(p, pc, why, sizeof(why))) != 0) {
        log_warnx("pool=%s: %s", pc->name, why);
        goto fail;
    }
    if ((rc = dir_watch(d, pc->name, loop, watched, p)) != 0) {
        log_warnx("pool=%s: cannot watch the directory: %s", pc->name, strerror(-rc));
        goto fail;
    }
    sweep_store(p, pc);
    if (p->cgroups)
        cg_sweep_start(p);
    note_places(p);
    list_add_tail(&all_pools, &p->link);
    log_info("pool=%s min_idle=%u max=%u max_idle=%u dir=%s", pc->name, pc->min_idle, pc->max,
             pc->max_idle, pc->dir);
    pool_scale_soon(p);
    return p;

fail:
    if (p != NULL) {
        rules_free(&p->rules);
        free(p->port_used);
        if (p->store_lock >= 0) /* nothing was queued on it */
            close(p->store_lock);
    }
    free(p);
    *err = rc;
    return NULL;
}

/* Logs that what of pool name keeps its running value, and adds it to
 * kept[0..len) for the reload's answer. */
static void __attribute__((format(printf, 4, 5)))
kept_add(const char *name, char *kept, size_t len, const char *fmt, ...)
{
    size_t n = strnlen(kept, len);
    char what[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    log_warnx("pool=%s: %s", name, what);
    if (n + 1 < len)
        snprintf(kept + n, len - n, "%s%s", n > 0 ? "; " : "", what);
}

int
pool_reconfigure(struct pool *p, const struct pool_conf *pc, char *kept, size_t len)
{
    struct rules r;

    if (len > 0)
        kept[0] = '\0';
    if (memcmp(&p->conf, pc, sizeof(*pc)) == 0)
        return 0;
    if (pool_conf_ports(pc) != p->n_ports || pc->port_min != p->conf.port_min) {
        /* instances on the old ports keep them until they go */
        bool *used = calloc(pool_conf_ports(pc) ? pool_conf_ports(pc) : 1, sizeof(bool));
        if (used == NULL) {
            kept_add(pc->name, kept, len, "reload: out of memory, keeping the running settings");
            return -1;
        }
        struct list *pos, *tmp;
        list_for_each_safe(pos, tmp, &p->instances) {
            struct instance *in = list_entry(pos, struct instance, link);
            unsigned port = (unsigned)atoi(in->port);
            if (in->port[0] == '\0' || port < pc->port_min || port > pc->port_max) {
                in->port_idx = PORT_NONE; /* not in the new range: never given again */
                continue;
            }
            in->port_idx = port - pc->port_min;
            used[in->port_idx] = true;
        }
        free(p->port_used);
        p->port_used = used;
        p->n_ports = pool_conf_ports(pc);
    }
    struct pool_conf next = *pc;
    if (rules_compile(&r, pc) == 0) {
        rules_free(&p->rules);
        p->rules = r;
    } else {
        kept_add(pc->name, kept, len, "events: cannot compile; the running rules kept");
        memcpy(next.ready, p->conf.ready, sizeof(next.ready));
        memcpy(next.login, p->conf.login, sizeof(next.login));
        memcpy(next.logout, p->conf.logout, sizeof(next.logout));
    }
    char why[1024] = "no such user or group"; /* room for a path or two */
    if (pool_conf_check_host(pc, why, sizeof(why)) != 0 || pool_apply_user(p, pc) != 0) {
        kept_add(pc->name, kept, len, "%s; new instances keep the running user, group and uids",
                 why);
        memcpy(next.user, p->conf.user, sizeof(next.user));
        memcpy(next.group, p->conf.group, sizeof(next.group));
        next.uid_min = p->conf.uid_min;
        next.uid_max = p->conf.uid_max;
    }
    /* half a provisioning would lose users' state: the running one stays
     * whole; a new store is taken before the old one is let go */
    int lock = -1;
    bool moved = strcmp(pc->state.store, p->conf.state.store) != 0;
    if (state_conf_check_host(&pc->state, why, sizeof(why)) != 0 ||
        (moved && pc->state.store[0] != '\0' &&
         (lock = store_take(p, &pc->state, why, sizeof(why))) < 0)) {
        kept_add(pc->name, kept, len, "%s; sessions keep the running provisioning", why);
        next.state = p->conf.state;
        next.provision = p->conf.provision;
        next.deprovision = p->conf.deprovision;
    } else if (moved) {
        store_release(p);
        p->store_lock = lock;
    }
    bool cg_moved = strcmp(pc->cgroup, p->conf.cgroup) != 0 ||
                    pc->memory_max != p->conf.memory_max || pc->cpu_max != p->conf.cpu_max ||
                    pc->max_processes != p->conf.max_processes;
    if (cg_moved && apply_cgroups(p, pc, why, sizeof(why)) != 0) {
        kept_add(pc->name, kept, len, "%s; new instances keep the running cgroup settings", why);
        memcpy(next.cgroup, p->conf.cgroup, sizeof(next.cgroup));
        next.memory_max = p->conf.memory_max;
        next.cpu_max = p->conf.cpu_max;
        next.max_processes = p->conf.max_processes;
    }
    if (strcmp(pc->dir, p->conf.dir) != 0 && base_prepare(p, pc) != 0) {
        kept_add(pc->name, kept, len, "dir: new instances keep their directories in %s",
                 p->conf.dir);
        memcpy(next.dir, p->conf.dir, sizeof(next.dir));
    }
    p->conf = next;
    note_places(p);
    log_info("pool=%s reconfigured min_idle=%u max=%u max_idle=%u", pc->name, pc->min_idle, pc->max,
             pc->max_idle);
    pool_scale_soon(p);
    return len > 0 && kept[0] != '\0' ? -1 : 0;
}

void
pool_stop(struct pool *p)
{
    if (p == NULL || p->stopping)
        return;
    p->stopping = true;
    p->pending = 0;
    timer_stop(p->loop, &p->scale_timer);
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &p->instances)
        pool_retire(list_entry(pos, struct instance, link), WHY_SHUTDOWN, false);
}

size_t
pool_busy(const struct pool *p)
{
    return p->total;
}

size_t
pool_storing(const struct pool *p)
{
    size_t n = 0;
    struct list *pos, *tmp;

    if (!has_hook(p, HOOK_DEPROVISION))
        return 0;
    /* a stopping session's store-back begins once its processes are gone
     * (and its fetch, if it still runs, has ended): after pool_kill(), for
     * REAP_WAIT_MS at most, as pool_free() would wait (a process that
     * outlives SIGKILL would hold the pool for ever) */
    bool reaping = p->killed_ms == 0 || loop_now(p->loop) < p->killed_ms + REAP_WAIT_MS;
    list_for_each_safe(pos, tmp, &p->instances) {
        const struct instance *in = list_entry(pos, struct instance, link);
        if (in->state == INST_DEPROVISIONING ||
            (reaping && in->state == INST_STOPPING &&
             (in->provisioned || hook_busy(in) || in->activating != NULL)))
            n++;
    }
    return n;
}

void
pool_kill(struct pool *p)
{
    struct list *pos, *tmp;

    p->killed_ms = loop_now(p->loop);
    list_for_each_safe(pos, tmp, &p->instances) {
        struct instance *in = list_entry(pos, struct instance, link);
        if (in->state == INST_STOPPING && in->proc.state == PROC_RUNNING) {
            in->sent_term = true;
            proc_signal(&in->proc, SIGKILL);
        }
    }
}

const struct pool_conf *
pool_conf(const struct pool *p)
{
    return &p->conf;
}

static void
pool_reap(struct task *t)
{
    free(t->data);
}

/* pool_free(): the processes of every uid still held are killed at once,
 * waiting (in all) REAP_WAIT_MS for them to go. A uid whose processes
 * could not all be seen gone is never given back. */
static void
reap_all(struct pool *p)
{
    struct list *pos, *tmp;
    int rc;

    list_for_each_safe(pos, tmp, &p->instances) {
        struct instance *in = list_entry(pos, struct instance, link);
        if (!has_reaper(in) || in->reaped || in->state == INST_WIPING ||
            in->reaper.state == PROC_RUNNING)
            continue;
        if ((rc = reaper_start(in)) != 0)
            log_warnx("pool=%s instance=%s uid=%u: cannot start the reaper: %s", p->conf.name,
                      in->name, (unsigned)in->uid, strerror(-rc));
    }
    uint64_t deadline = loop_clock_ms() + REAP_WAIT_MS;
    list_for_each_safe(pos, tmp, &p->instances) {
        struct instance *in = list_entry(pos, struct instance, link);
        if (in->reaper.state != PROC_RUNNING)
            continue;
        uint64_t now = loop_clock_ms();
        int status = proc_wait(&in->reaper, now < deadline ? (int)(deadline - now) : 0);
        if (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            in->reaped = true;
            in->cg.n = 0;
            continue;
        }
        proc_close(&in->reaper);
        record_keep(pool_env_record(p->env)); /* the next start tries again */
        bool leftovers =
            status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == PROC_REAP_LEFTOVERS;
        if (in->cg.n > 0 && !leftovers) /* its next start removes it (cg_sweep_start()) */
            log_warnx("pool=%s instance=%s: processes may be left in its cgroup %s", p->conf.name,
                      in->name, in->cg.dir[0]);
        if (in->own_uid)
            log_warnx("pool=%s instance=%s uid=%u: %s; the uid is not used again", p->conf.name,
                      in->name, (unsigned)in->uid, leftovers ? LEFTOVERS : "processes may be left");
    }
}

void
pool_free(struct pool *p)
{
    if (p == NULL)
        return;
    p->stopping = true;
    list_del(&p->link);
    dir_unwatch(p->dir, p->conf.name);
    timer_stop(p->loop, &p->scale_timer);
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &p->instances) {
        struct instance *in = list_entry(pos, struct instance, link);
        timer_stop(p->loop, &in->timer);
        oom_unwatch(in);
        proc_close(&in->proc);
        hook_cancel(in);
        dir_activate_cancel(in->activating);
        in->activating = NULL;
    }
    reap_all(p);
    pool_uid_reaps_end(p);
    /* the wipes go on without the pool; their uids go back when done */
    while (!list_empty(&p->instances)) {
        struct instance *in = list_entry(p->instances.next, struct instance, link);
        if (in->state != INST_WIPING) {
            if (holds_user(in))
                report(in, DIR_DRAINING);
            report(in, DIR_STOPPED);
            in->why = WHY_SHUTDOWN;
            log_info("pool=%s instance=%s stopped why=%s", p->conf.name, in->name,
                     why_names[in->why]);
            in->wipe = wipe_start(in, NULL);
        }
        if (in->wipe != NULL)
            pool_env_wipe_detach(in->wipe);
        instance_forget(in);
    }
    pool_ports_stop(p);
    if (p->cg_sweep != NULL)
        pool_env_wipe_detach(p->cg_sweep);
    p->cg_sweep = NULL;
    rules_free(&p->rules);
    free(p->port_used);
    p->port_used = NULL;
    store_release(p);
    /* after the instances' and the scale task: they run first */
    loop_defer(p->loop, &p->free_task, pool_reap, p);
}

/* The family airlock_pool_NAME_total of the counter at off in each pool's
 * stats. */
static void
counter(struct strbuf *out, struct pool *const *pools, size_t n, const char *name, const char *help,
        size_t off)
{
    strbuf_printf(out, "# HELP airlock_pool_%s_total %s\n# TYPE airlock_pool_%s_total counter\n",
                  name, help, name);
    for (size_t i = 0; i < n; i++)
        strbuf_printf(out, "airlock_pool_%s_total{pool=\"%s\"} %llu\n", name, pools[i]->conf.name,
                      *(const unsigned long long *)((const char *)&pools[i]->stats + off));
}

void
pool_metrics(struct strbuf *out, struct pool *const *pools, size_t n)
{
    if (n == 0)
        return; /* no pools: no empty families */
    strbuf_printf(out, "# HELP airlock_pool_instances Instances of each pool, by state.\n"
                       "# TYPE airlock_pool_instances gauge\n");
    for (size_t i = 0; i < n; i++)
        for (int s = 0; s < INST_STATE_COUNT; s++)
            strbuf_printf(out, "airlock_pool_instances{pool=\"%s\",state=\"%s\"} %zu\n",
                          pools[i]->conf.name, state_names[s], pools[i]->n[s]);
    counter(out, pools, n, "starts", "Instances started.", offsetof(struct pool_stats, starts));
    counter(out, pools, n, "restarts",
            "Instances started after a failed start or a crash (with backoff).",
            offsetof(struct pool_stats, restarts));
    strbuf_printf(out, "# HELP airlock_pool_hook_failures_total Hooks that failed, by hook and "
                       "reason.\n# TYPE airlock_pool_hook_failures_total counter\n");
    for (size_t i = 0; i < n; i++)
        for (int h = 0; h < HOOK_COUNT; h++)
            for (int r = 0; r < HF_COUNT; r++)
                strbuf_printf(out,
                              "airlock_pool_hook_failures_total{pool=\"%s\",hook=\"%s\","
                              "reason=\"%s\"} %llu\n",
                              pools[i]->conf.name, hook_names[h], hook_fail_names[r],
                              pools[i]->stats.hook_failures[h][r]);
    counter(out, pools, n, "forged_logins",
            "Login lines for a user the directory had not reserved the instance for (instance "
            "killed).",
            offsetof(struct pool_stats, forged_logins));
    counter(out, pools, n, "took_ports",
            "Instances that held a port of a pool not their own (instance killed).",
            offsetof(struct pool_stats, took_ports));
    counter(out, pools, n, "memory_kills",
            "Instances the kernel killed at their memory limit, memory_max (session ended, "
            "why=memory_limit).",
            offsetof(struct pool_stats, memory_kills));
    strbuf_printf(out, "# HELP airlock_pool_ready_seconds Time from start to the ready line.\n"
                       "# TYPE airlock_pool_ready_seconds histogram\n");
    for (size_t i = 0; i < n; i++) {
        const struct pool_stats *st = &pools[i]->stats;
        for (size_t b = 0; b < READY_BUCKETS; b++)
            strbuf_printf(out, "airlock_pool_ready_seconds_bucket{pool=\"%s\",le=\"%g\"} %llu\n",
                          pools[i]->conf.name, ready_bounds[b], st->ready_buckets[b]);
        strbuf_printf(out,
                      "airlock_pool_ready_seconds_bucket{pool=\"%s\",le=\"+Inf\"} %llu\n"
                      "airlock_pool_ready_seconds_sum{pool=\"%s\"} %.3f\n"
                      "airlock_pool_ready_seconds_count{pool=\"%s\"} %llu\n",
                      pools[i]->conf.name, st->ready_count, pools[i]->conf.name,
                      (double)st->ready_sum_ms / 1000.0, pools[i]->conf.name, st->ready_count);
    }
}
