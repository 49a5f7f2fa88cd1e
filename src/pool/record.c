/* record.c - see record.h. */
#include "pool/record.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/privdir.h"
#include "core/units.h"
#include "pool/spawn.h"

#define RECORD_MAX (64 << 20) /* bytes of a record: far beyond any real one */
#define LINE_MAX_ (CGROUP_PATH_MAX + 128)
#define REAP_WAIT_MS 2000 /* how long a uid's processes may take to go */

/* A range of uids a pool of this run takes. */
struct uid_range {
    uid_t min, max;
};

/* The cgroups an earlier airlock left for one prefix in the parents no pool
 * of this run uses, removed on a thread. */
struct cg_work {
    size_t slot; /* in the record's work */
    char prefix[LINE_MAX_];
    struct cgroup_parent cp;
    struct cgroup *stale;
    size_t n;
    unsigned removed;
    char left[CGROUP_PATH_MAX];             /* the last one that could not be removed */
    char lines[CGROUP_DIRS_MAX][LINE_MAX_]; /* kept in the record then */
};

struct record {
    int fd;
    bool locked;
    bool keep; /* record_keep() */
    char path[CONF_FILE_PATH_MAX];
    char **lines; /* noted in this run, each once */
    size_t n, cap;
    struct uid_range *ranges;
    size_t n_ranges;
    char *prev; /* the earlier airlock's lines, NUL-separated */
    size_t prev_len;
    /* the sweep */
    struct pool_env *env;
    struct loop *loop;
    unsigned pending; /* its parts still under way */
    struct wipe **work;
    size_t n_work;
    uid_t *uids; /* to reap, one at a time */
    size_t n_uids, next_uid;
    struct proc reaper;
    struct timer timer;
    struct wipe *uid_wipe;
};

/* ---- the lines */

/* Appends line and a newline to fd. Returns 0 or -errno. */
static int
put_line(int fd, const char *line)
{
    char buf[LINE_MAX_ + 2];
    int len = snprintf(buf, sizeof(buf), "%s\n", line);

    if (len >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    ssize_t n = write(fd, buf, (size_t)len);
    return n == len ? 0 : n < 0 ? -errno : -ENOSPC;
}

static bool
noted(const struct record *r, const char *line)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->lines[i], line) == 0)
            return true;
    return false;
}

/* Notes line (no newline): written at once unless this run noted it. */
static void
note(struct record *r, const char *line)
{
    if (r == NULL || noted(r, line))
        return;
    if (strchr(line, '\n') != NULL) { /* a path with a newline cannot be a line */
        log_warnx("pool record %s: cannot note \"%s\": a newline in it", r->path, line);
        return;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        char **grown = realloc(r->lines, cap * sizeof(*grown));
        if (grown == NULL)
            goto fail;
        r->lines = grown;
        r->cap = cap;
    }
    if ((r->lines[r->n] = strdup(line)) == NULL)
        goto fail;
    r->n++;
    int rc = put_line(r->fd, line);
    if (rc != 0)
        log_warnx("pool record %s: cannot write \"%s\": %s", r->path, line, strerror(-rc));
    return;
fail:
    log_warnx("pool record %s: out of memory: \"%s\" not noted", r->path, line);
}

void
record_note_pool(struct record *r, const char *prefix, const char *base,
                 const struct cgroup_parent *cgp, uid_t uid_min, uid_t uid_max)
{
    char line[LINE_MAX_];

    if (r == NULL)
        return;
    snprintf(line, sizeof(line), "dir %s %s", prefix, base);
    note(r, line);
    for (size_t i = 0; cgp != NULL && i < cgp->n; i++) {
        snprintf(line, sizeof(line), "cgroup %s %d %d %s", prefix, cgp->v2, (int)i == cgp->freezer,
                 cgp->dir[i]);
        note(r, line);
    }
    if (uid_max == 0)
        return;
    struct uid_range *grown = realloc(r->ranges, (r->n_ranges + 1) * sizeof(*grown));
    if (grown == NULL) {
        log_warnx("pool record %s: out of memory: the uids of %s are swept as left", r->path,
                  prefix);
        return;
    }
    r->ranges = grown;
    r->ranges[r->n_ranges++] = (struct uid_range){uid_min, uid_max};
}

void
record_note_uid(struct record *r, uid_t uid)
{
    char line[32];

    snprintf(line, sizeof(line), "uid %u", (unsigned)uid);
    note(r, line);
}

/* ---- the file */

struct record *
record_open(const char *path, int *err, char *why, size_t len)
{
    struct record *r = calloc(1, sizeof(*r));
    char dir[CONF_FILE_PATH_MAX];
    const char *slash = strrchr(path, '/');
    struct stat st;
    int rc;

    if (r == NULL) {
        *err = -ENOMEM;
        snprintf(why, len, "%s: %s", path, strerror(ENOMEM));
        return NULL;
    }
    r->fd = -1;
    r->reaper.pidfd = r->reaper.out_fd = -1;
    snprintf(r->path, sizeof(r->path), "%s", path);
    if (path[0] != '/') {
        rc = -EINVAL;
        snprintf(why, len, "%s: expected an absolute file path", path);
        goto fail;
    }
    snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    if ((rc = privdir_check(dir, why, len)) != 0)
        goto fail;
    if ((r->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0 ||
        fstat(r->fd, &st) != 0) {
        rc = -errno;
        snprintf(why, len, "%s: %s", path, strerror(-rc));
        goto fail;
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0 ||
        st.st_size > RECORD_MAX) {
        rc = -EPERM;
        snprintf(why, len, "%s: expected a regular file of airlock's, mode 0600, of 64 MiB at most",
                 path);
        goto fail;
    }
    if (flock(r->fd, LOCK_EX | LOCK_NB) != 0) {
        rc = -errno;
        snprintf(why, len, "%s: %s", path,
                 rc == -EWOULDBLOCK ? "held by another airlock run from this config"
                                    : strerror(-rc));
        goto fail;
    }
    r->locked = true;
    if ((r->prev = malloc((size_t)st.st_size + 1)) == NULL) {
        rc = -ENOMEM;
        snprintf(why, len, "%s: %s", path, strerror(ENOMEM));
        goto fail;
    }
    ssize_t n;
    while (r->prev_len < (size_t)st.st_size &&
           (n = pread(r->fd, r->prev + r->prev_len, (size_t)st.st_size - r->prev_len,
                      (off_t)r->prev_len)) > 0)
        r->prev_len += (size_t)n;
    r->prev[r->prev_len] = '\0';
    /* one line each, the last only when whole (a kill may cut a write) */
    char *end = memrchr(r->prev, '\n', r->prev_len);
    r->prev_len = end != NULL ? (size_t)(end - r->prev) + 1 : 0;
    if (ftruncate(r->fd, (off_t)r->prev_len) != 0) /* no line is appended to a cut one */
        log_warn("pool record %s: cannot cut a line a kill cut short", r->path);
    if (r->prev_len == 0) { /* nothing to sweep */
        free(r->prev);
        r->prev = NULL;
    }
    for (size_t i = 0; i < r->prev_len; i++)
        if (r->prev[i] == '\n')
            r->prev[i] = '\0';
    return r;
fail:
    *err = rc;
    record_free(r);
    return NULL;
}

bool
record_pending(const struct record *r)
{
    return r != NULL && r->prev_len > 0;
}

/* Writes this run's lines over the file's. */
static void
rewrite(struct record *r)
{
    int rc = ftruncate(r->fd, 0) == 0 ? 0 : -errno;

    for (size_t i = 0; rc == 0 && i < r->n; i++)
        rc = put_line(r->fd, r->lines[i]);
    if (rc != 0)
        log_warnx("pool record %s: cannot rewrite it: %s", r->path, strerror(-rc));
}

/* ---- the sweep */

static void
part_done(struct record *r)
{
    if (--r->pending > 0)
        return;
    free(r->prev);
    r->prev = NULL;
    r->prev_len = 0;
    rewrite(r);
}

/* The lines of the earlier airlock, one after another: NULL after the last. */
static const char *
prev_next(const struct record *r, const char *line)
{
    const char *p = line == NULL ? r->prev : line + strlen(line) + 1;

    return p < r->prev + r->prev_len ? p : NULL;
}

/* A prefix as instances are named: 1-63 of A-Z a-z 0-9 _ . - */
static bool
prefix_ok(const char *s, size_t len)
{
    static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";

    return len > 0 && len < 64 && strspn(s, ok) >= len;
}

/* Splits "KIND PREFIX REST" into prefix (copied) and rest; false when the
 * line is not of kind. */
static bool
split(const char *line, const char *kind, char prefix[64], const char **rest)
{
    size_t kl = strlen(kind);

    if (strncmp(line, kind, kl) != 0 || line[kl] != ' ')
        return false;
    const char *p = line + kl + 1, *sp = strchr(p, ' ');
    if (sp == NULL || !prefix_ok(p, (size_t)(sp - p)))
        return false;
    memcpy(prefix, p, (size_t)(sp - p));
    prefix[sp - p] = '\0';
    *rest = sp + 1;
    return true;
}

static void
sweep_dirs(struct record *r)
{
    char prefix[64];
    const char *base;

    for (const char *l = prev_next(r, NULL); l != NULL; l = prev_next(r, l)) {
        if (!split(l, "dir", prefix, &base) || noted(r, l))
            continue;
        char why[CONF_FILE_PATH_MAX + 128];
        if (access(base, F_OK) != 0) /* gone, with what it held */
            continue;
        /* only a base only airlock may change, as pool_new() wants it */
        if (privdir_check(base, why, sizeof(why)) != 0) {
            log_warnx("pool record: not swept: %s", why);
            continue;
        }
        unsigned n = pool_env_sweep(r->env, base, prefix);
        if (n > 0)
            log_info("pool record: wiping %u directories an earlier airlock left in %s "
                     "(instances %s-N)",
                     n, base, prefix);
    }
}

static int
cg_work_run(void *ctx)
{
    struct cg_work *w = ctx;

    if ((w->stale = cgroup_stale(&w->cp, w->prefix, &w->n)) == NULL)
        return 0;
    return cgroup_clear_all(w->stale, w->n, CGROUP_SWEEP_MS, &w->removed, w->left);
}

static void
cg_work_free(void *ctx)
{
    struct cg_work *w = ctx;

    free(w->stale);
    free(w);
}

static void
cg_work_done(void *arg, void *ctx, int err)
{
    struct record *r = arg;
    struct cg_work *w = ctx;

    r->work[w->slot] = NULL; /* freed after this */
    if (w->n > 0)
        log_info("pool record: removed %u cgroups an earlier airlock left (instances %s-N)",
                 w->removed, w->prefix);
    if (err != 0) {
        log_warnx("pool record: cannot remove %s (and %zu more): %s; tried again at the next "
                  "start",
                  w->left, w->n - w->removed - 1, strerror(-err));
        for (size_t i = 0; i < w->cp.n; i++)
            note(r, w->lines[i]);
    }
    part_done(r);
}

/* The cgroup lines of the earlier airlock for prefix that no pool of this
 * run has, as one parent; false when there are none. */
static bool
cg_parent(struct record *r, const char *prefix, struct cg_work *w)
{
    char pre[64];
    const char *rest;
    int v2, freezer, off;

    w->cp.freezer = -1;
    for (const char *l = prev_next(r, NULL); l != NULL; l = prev_next(r, l)) {
        if (!split(l, "cgroup", pre, &rest) || strcmp(pre, prefix) != 0 || noted(r, l))
            continue;
        if (sscanf(rest, "%d %d %n", &v2, &freezer, &off) != 2 || rest[off] != '/' ||
            strlen(rest + off) >= CGROUP_PATH_MAX || w->cp.n == CGROUP_DIRS_MAX) {
            log_warnx("pool record %s: ignored: \"%s\"", r->path, l);
            continue;
        }
        w->cp.v2 = v2 != 0;
        if (freezer)
            w->cp.freezer = (int)w->cp.n;
        snprintf(w->lines[w->cp.n], sizeof(w->lines[0]), "%s", l);
        memcpy(w->cp.dir[w->cp.n++], rest + off, strlen(rest + off) + 1);
    }
    return w->cp.n > 0;
}

/* Whether a line before l is a cgroup line of prefix to sweep: the work
 * of that line took l too (cg_parent()). */
static bool
cg_taken(const struct record *r, const char *l, const char *prefix)
{
    char pre[64];
    const char *rest;

    for (const char *e = prev_next(r, NULL); e != l; e = prev_next(r, e))
        if (split(e, "cgroup", pre, &rest) && strcmp(pre, prefix) == 0 && !noted(r, e))
            return true;
    return false;
}

static void
sweep_cgroups(struct record *r)
{
    char prefix[64];
    const char *rest;

    for (const char *l = prev_next(r, NULL); l != NULL; l = prev_next(r, l)) {
        if (!split(l, "cgroup", prefix, &rest) || noted(r, l) || cg_taken(r, l, prefix))
            continue;
        struct cg_work *w = calloc(1, sizeof(*w));
        struct wipe **grown = w != NULL ? realloc(r->work, (r->n_work + 1) * sizeof(*grown)) : NULL;
        if (grown == NULL) {
            log_warnx("pool record: out of memory: the cgroups of %s-N are swept at the next start",
                      prefix);
            free(w);
            continue;
        }
        r->work = grown;
        w->slot = r->n_work;
        snprintf(w->prefix, sizeof(w->prefix), "%s", prefix);
        if (!cg_parent(r, prefix, w)) {
            free(w);
            continue;
        }
        /* after the pools' own sweeps queued before, before any start of theirs */
        struct wipe *q =
            pool_env_run(r->env, cg_work_run, w, cg_work_free, ENV_AFTER, cg_work_done, r);
        if (q != NULL) {
            r->work[r->n_work++] = q;
            r->pending++;
        }
    }
}

/* Whether a pool of this run takes uid. */
static bool
uid_in_use(const struct record *r, uid_t uid)
{
    for (size_t i = 0; i < r->n_ranges; i++)
        if (uid >= r->ranges[i].min && uid <= r->ranges[i].max)
            return true;
    return false;
}

static void reap_next(struct record *r);

static void
uid_wiped(void *arg, int err, uint64_t entries, uint64_t ms)
{
    struct record *r = arg;
    uid_t uid = r->uids[r->next_uid];

    r->uid_wipe = NULL;
    if (err != 0) {
        log_warnx("pool record: uid %u: cannot remove what an earlier airlock's sessions left: "
                  "%s; tried again at the next start",
                  (unsigned)uid, strerror(-err));
        record_note_uid(r, uid);
    } else {
        if (entries > 0)
            log_info("pool record: uid %u: removed %" PRIu64 " entries an earlier airlock's "
                     "sessions left (%" PRIu64 " ms)",
                     (unsigned)uid, entries, ms);
        if (pool_env_set_reaped(r->env, uid) != 0) /* a pool of a reload may take it at once */
            log_warnx("pool record: uid %u: out of memory: reaped again at its take",
                      (unsigned)uid);
    }
    r->next_uid++;
    reap_next(r);
}

/* The end of uid's reaper: what its processes left goes next, or the uid
 * stays in the record for the next start. */
static void
reap_ended(struct record *r, bool ok, const char *why)
{
    uid_t uid = r->uids[r->next_uid];
    int err;

    timer_stop(r->loop, &r->timer);
    proc_close(&r->reaper);
    if (ok && (r->uid_wipe = pool_env_wipe_uid(r->env, uid, uid_wiped, r, &err)) != NULL)
        return;
    log_warnx("pool record: uid %u: %s; tried again at the next start", (unsigned)uid,
              ok ? strerror(-err) : why);
    pool_env_put_uid(r->env, uid);
    record_note_uid(r, uid);
    r->next_uid++;
    reap_next(r);
}

static void
reaper_exit(struct proc *pr, int status)
{
    struct record *r = pr->data;

    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        reap_ended(r, true, NULL);
    else
        reap_ended(r, false, "its processes, or what they left, could not all be removed");
}

static void
reaper_line(struct proc *pr, const char *line, bool cut)
{
    const struct record *r = pr->data;

    log_warnx("pool record: uid %u: %s%s", (unsigned)r->uids[r->next_uid], line, cut ? "..." : "");
}

static void
reaper_timeout(struct timer *t)
{
    reap_ended(t->data, false, "processes left by an earlier airlock do not go");
}

/* Reaps the next uid, held meanwhile so that no pool takes it (a reload may
 * add one that would). */
static void
reap_next(struct record *r)
{
    for (; r->next_uid < r->n_uids; r->next_uid++) {
        uid_t uid = r->uids[r->next_uid], got;
        if (pool_env_take_uid(r->env, uid, uid, &got) != 0)
            continue; /* a pool of a reload took it: it reaps it first */
        const struct reap_opts o = {.by_uid = true, .uid = uid, .gid = (gid_t)uid};
        int rc = proc_reap(&r->reaper, r->loop, &o, reaper_line, reaper_exit, r);
        if (rc == 0) {
            timer_start(r->loop, &r->timer, REAP_WAIT_MS, reaper_timeout, r);
            return;
        }
        log_warnx("pool record: uid %u: cannot start the reaper: %s; tried again at the next "
                  "start",
                  (unsigned)uid, strerror(-rc));
        pool_env_put_uid(r->env, uid);
        record_note_uid(r, uid);
    }
    part_done(r);
}

static void
sweep_uids(struct record *r)
{
    unsigned u;
    int off;

    for (const char *l = prev_next(r, NULL); l != NULL; l = prev_next(r, l)) {
        if (sscanf(l, "uid %u%n", &u, &off) != 1 || l[off] != '\0' || noted(r, l))
            continue;
        if (uid_in_use(r, (uid_t)u)) { /* its pool reaps it (kept here till then) */
            note(r, l);
            if (pool_env_set_left(r->env, (uid_t)u) != 0)
                log_warnx("pool record: out of memory: uid %u is reaped at its next take", u);
            continue;
        }
        if (u == 0 || u == (unsigned)geteuid()) {
            log_warnx("pool record %s: ignored: \"%s\"", r->path, l);
            continue;
        }
        uid_t *grown = realloc(r->uids, (r->n_uids + 1) * sizeof(*grown));
        if (grown == NULL) {
            log_warnx("pool record: out of memory: uid %u is swept at the next start", u);
            record_note_uid(r, (uid_t)u);
            continue;
        }
        r->uids = grown;
        r->uids[r->n_uids++] = (uid_t)u;
    }
    if (r->n_uids == 0)
        return;
    log_info("pool record: reaping %zu uids an earlier airlock's instances ran as", r->n_uids);
    r->pending++;
    reap_next(r);
}

void
record_sweep(struct record *r, struct pool_env *e, struct loop *loop)
{
    if (r == NULL || r->prev == NULL)
        return;
    r->env = e;
    r->loop = loop;
    r->pending = 1; /* until every part is queued */
    sweep_dirs(r);
    sweep_cgroups(r);
    sweep_uids(r);
    part_done(r);
}

void
record_keep(struct record *r)
{
    if (r != NULL)
        r->keep = true;
}

void
record_free(struct record *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_work; i++)
        if (r->work[i] != NULL)
            pool_env_wipe_detach(r->work[i]);
    if (r->uid_wipe != NULL)
        pool_env_wipe_detach(r->uid_wipe);
    proc_close(&r->reaper);
    if (r->loop != NULL) {
        timer_stop(r->loop, &r->timer);
        loop_cancel(r->loop, &r->reaper.more); /* a slice of its output may be queued */
    }
    if (r->locked && r->prev == NULL && !r->keep && unlink(r->path) != 0)
        log_warn("pool record %s: cannot remove it", r->path);
    if (r->fd >= 0)
        close(r->fd); /* the lock goes with it */
    for (size_t i = 0; i < r->n; i++)
        free(r->lines[i]);
    free(r->lines);
    free(r->ranges);
    free(r->prev);
    free(r->work);
    free(r->uids);
    free(r);
}
