/* env.c - see env.h. */
#include "pool/env.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#define WIPE_DEPTH_MAX 64       /* deeper trees are cut into pieces (move_up()) */
#define MQUEUE_MAGIC 0x19800202 /* the mqueue filesystem (statfs(2)); not in linux/magic.h */
#define SHARED_DEPTH_MAX 8      /* others' writable directories searched in a shared one */
#define WIPE_NAME_MAX 64        /* ".wipe-PID-TAG-N" and the ".K" of pieces */
#define ASIDE_TRIES 64          /* names taken by leftovers of an earlier airlock (unlikely) */
#define ASIDE_PREFIX ".wipe-"
#define FETCH_THREADS 4 /* users' state coming in at once: one slow to read holds no other */
#define STORE_THREADS 4 /* users' state stored back at once: one large holds no other */
#define WIPE_THREADS 4  /* one wipe of millions of files holds no other */

/* A wipe, or (work != NULL) other work for a lane's threads (pool_env_run()). */
struct wipe {
    struct wipe *next;
    uint64_t seq; /* the order of queuing, over every lane: 1, 2, ... */
    bool barrier; /* ENV_AFTER */
    env_work_fn work;
    void *ctx;
    void (*ctx_free)(void *ctx);
    env_work_done_cb work_done; /* main loop only */
    char *base;
    char name[WIPE_NAME_MAX]; /* in base */
    bool give_uid;
    uid_t uid;
    wipe_done_cb done; /* main loop only */
    void *arg;
    int err; /* the thread's results */
    uint64_t entries, ms;
};

/* The queues, each first in, first out, each with threads taking the next.
 * A lane's work never starts before the work queued earlier in the lanes
 * above it has ended (may_start()). */
enum { LANE_FETCH, LANE_STORE, LANE_WIPE, LANES };

static const struct {
    int threads;
    const char *name; /* of its threads */
} lane_conf[LANES] = {
    [LANE_FETCH] = {FETCH_THREADS, "airlock-state"}, /* ENV_URGENT: a login waits for it */
    [LANE_STORE] = {STORE_THREADS, "airlock-store"}, /* ENV_STORE, ENV_AFTER */
    [LANE_WIPE] = {WIPE_THREADS, "airlock-wipe"},
};

struct lane {
    struct wipe *head, *tail;
};

/* A thread of a lane. */
struct worker {
    struct pool_env *env;
    struct lane *lane;
    const struct wipe *running; /* what it runs now, or NULL */
    pthread_t thread;
};

/* Uids, ascending. */
struct uid_set {
    uid_t *v;
    size_t n, cap;
};

struct pool_env {
    struct loop *loop;
    struct uid_set held;   /* given to instances (or kept for ever) */
    struct uid_set reaped; /* reaped since e started: nothing of an earlier airlock runs as them */
    struct uid_set left;   /* an earlier airlock's instances ran as them (pool_env_set_left()) */
    char tag[24];          /* aside names: .wipe-TAG-SEQ, TAG = PID-RANDOM of this env */
    unsigned long long seq;
    int wakefd; /* eventfd: a thread says "wipes done" */
    struct io wake_io;
    pthread_mutex_t lock; /* the rest */
    pthread_cond_t cond;  /* a lane's threads wait on it */
    struct lane lanes[LANES];
    struct worker workers[FETCH_THREADS + STORE_THREADS + WIPE_THREADS]; /* lane by lane */
    int n_workers;
    uint64_t queued; /* the seq of the last one queued */
    struct wipe *done, *done_tail;
    bool stop;
    struct record *record; /* pool_env_set_record() */
};

/* ---- uids */

/* The index of the first uid of set >= uid. */
static size_t
uid_index(const struct uid_set *set, uid_t uid)
{
    size_t lo = 0, hi = set->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (set->v[mid] < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Puts uid into set at its index i. Returns 0 or -ENOMEM. */
static int
uid_insert(struct uid_set *set, size_t i, uid_t uid)
{
    if (set->n == set->cap) {
        size_t cap = set->cap ? 2 * set->cap : 64;
        uid_t *grown = realloc(set->v, cap * sizeof(*grown));
        if (grown == NULL)
            return -ENOMEM;
        set->v = grown;
        set->cap = cap;
    }
    memmove(&set->v[i + 1], &set->v[i], (set->n - i) * sizeof(*set->v));
    set->v[i] = uid;
    set->n++;
    return 0;
}

static bool
uid_member(const struct uid_set *set, uid_t uid)
{
    size_t i = uid_index(set, uid);

    return i < set->n && set->v[i] == uid;
}

/* Removes the i-th uid of set. */
static void
uid_remove(struct uid_set *set, size_t i)
{
    memmove(&set->v[i], &set->v[i + 1], (set->n - i - 1) * sizeof(*set->v));
    set->n--;
}

int
pool_env_take_uid(struct pool_env *e, uid_t first, uid_t last, uid_t *uid)
{
    size_t i = uid_index(&e->held, first);
    uid_t u = first;
    int rc;

    for (; i < e->held.n && e->held.v[i] == u; i++, u++)
        if (u == last)
            return -EAGAIN;
    if (u > last)
        return -EAGAIN;
    if ((rc = uid_insert(&e->held, i, u)) != 0)
        return rc;
    *uid = u;
    return 0;
}

void
pool_env_put_uid(struct pool_env *e, uid_t uid)
{
    size_t i = uid_index(&e->held, uid);

    if (i == e->held.n || e->held.v[i] != uid)
        return;
    uid_remove(&e->held, i);
}

bool
pool_env_uid_reaped(const struct pool_env *e, uid_t uid)
{
    return uid_member(&e->reaped, uid);
}

int
pool_env_set_reaped(struct pool_env *e, uid_t uid)
{
    return uid_member(&e->reaped, uid) ? 0
                                       : uid_insert(&e->reaped, uid_index(&e->reaped, uid), uid);
}

int
pool_env_set_left(struct pool_env *e, uid_t uid)
{
    return uid_member(&e->left, uid) || uid_member(&e->reaped, uid)
               ? 0
               : uid_insert(&e->left, uid_index(&e->left, uid), uid);
}

int
pool_env_take_left(struct pool_env *e, uid_t first, uid_t last, uid_t *uid)
{
    for (size_t i = uid_index(&e->left, first); i < e->left.n && e->left.v[i] <= last;) {
        uid_t u = e->left.v[i];
        uid_remove(&e->left, i);
        /* held: an instance has it, reaped before it started, or a reaper */
        if (uid_member(&e->held, u) || uid_member(&e->reaped, u))
            continue;
        if (uid_insert(&e->held, uid_index(&e->held, u), u) != 0)
            return -ENOMEM; /* reaped at its take */
        *uid = u;
        return 0;
    }
    return -EAGAIN;
}

/* ---- the wipe thread */

/* Renames without replacing anything: -EEXIST when to is taken. Where the
 * filesystem has no RENAME_NOREPLACE, a check first is as good (only
 * airlock writes in the base directory). */
static int
rename_new(int fromdfd, const char *from, int todfd, const char *to)
{
    struct stat st;

    if (renameat2(fromdfd, from, todfd, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL)
        return -errno;
    if (fstatat(todfd, to, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return -EEXIST;
    return renameat(fromdfd, from, todfd, to) == 0 ? 0 : -errno;
}

/* One tree being removed: the names at the top of base still to remove
 * (the wipe's own, then pieces of a deeper tree moved up). */
struct walk {
    const struct wipe *w;
    int base;
    char (*todo)[WIPE_NAME_MAX];
    size_t n, cap;
    unsigned pieces;
    uint64_t entries;
};

/* A directory at the depth limit: renamed up to base under a name of its
 * own, removed later from there, so no tree is too deep to wipe. */
static int
move_up(struct walk *wk, int dfd, const char *name)
{
    if (wk->n == wk->cap) {
        size_t cap = wk->cap ? 2 * wk->cap : 8;
        char(*grown)[WIPE_NAME_MAX] = realloc(wk->todo, cap * sizeof(*grown));
        if (grown == NULL)
            return -ENOMEM;
        wk->todo = grown;
        wk->cap = cap;
    }
    char *piece = wk->todo[wk->n];
    int len = snprintf(piece, WIPE_NAME_MAX, "%s.%u", wk->w->name, ++wk->pieces);
    if (len < 0 || len >= WIPE_NAME_MAX)
        return -ENAMETOOLONG;
    int rc = rename_new(dfd, name, wk->base, piece);
    if (rc != 0)
        return rc;
    wk->n++;
    return 0;
}

/* Removes name in dfd and everything below it, never following a symlink
 * (a link is removed, not what it points to). Returns 0 or -errno. */
static int
wipe_at(struct walk *wk, int dfd, const char *name, int depth)
{
    if (unlinkat(dfd, name, 0) == 0) {
        wk->entries++;
        return 0;
    }
    if (errno == ENOENT)
        return 0;
    if (errno != EISDIR)
        return -errno;
    if (depth >= WIPE_DEPTH_MAX)
        return move_up(wk, dfd, name);
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        int r = wipe_at(wk, fd, de->d_name, depth + 1);
        if (r != 0 && rc == 0)
            rc = r;
    }
    closedir(d);
    if (unlinkat(dfd, name, AT_REMOVEDIR) == 0)
        wk->entries++;
    else if (rc == 0)
        rc = -errno;
    return rc;
}

/* Removes name in wk->base and the pieces of it that were moved up.
 * Returns 0 or the first -errno. */
static int
wipe_top(struct walk *wk, const char *name)
{
    int rc = wipe_at(wk, wk->base, name, 0);
    while (wk->n > 0) {
        char piece[WIPE_NAME_MAX];
        memcpy(piece, wk->todo[--wk->n], sizeof(piece));
        int r = wipe_at(wk, wk->base, piece, 0);
        if (r != 0 && rc == 0)
            rc = r;
    }
    return rc;
}

/* Where a process of any uid may leave files that outlive it (and POSIX
 * message queues): what the instance's uid left there would meet the next
 * user of that uid. */
static const char *const shared_dirs[] = {"/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue",
                                          "/run/lock"};

bool
pool_env_mqueues_wiped(void)
{
    struct statfs sf;

    return statfs("/dev/mqueue", &sf) == 0 && sf.f_type == MQUEUE_MAGIC;
}

/* Removes the entries of the directory dfd owned by uid (no process of it
 * is left: nothing makes new ones meanwhile), and looks for more in the
 * subdirectories of others that uid may write in too (a sticky
 * /tmp/.X11-unix, another uid's directory of mode 1777), down to
 * SHARED_DEPTH_MAX. */
static int
wipe_shared_at(struct walk *wk, int dfd, int depth)
{
    DIR *d = fdopendir(dup(dfd));
    struct dirent *de;
    struct stat st;
    int rc = 0;

    if (d == NULL)
        return -errno;
    while ((de = readdir(d)) != NULL) {
        int r = 0;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (st.st_uid == wk->w->uid) {
            wk->base = dfd;
            r = wipe_top(wk, de->d_name);
        } else if (S_ISDIR(st.st_mode) && (st.st_mode & (S_IWGRP | S_IWOTH)) &&
                   depth < SHARED_DEPTH_MAX) {
            int fd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0) {
                r = wipe_shared_at(wk, fd, depth + 1);
                close(fd);
            }
        }
        if (r != 0 && rc == 0)
            rc = r;
    }
    closedir(d);
    return rc;
}

static int
wipe_shared_dirs(struct walk *wk)
{
    int rc = 0;

    for (size_t i = 0; i < sizeof(shared_dirs) / sizeof(shared_dirs[0]); i++) {
        int fd = open(shared_dirs[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue; /* not on this machine */
        int r = wipe_shared_at(wk, fd, 0);
        close(fd);
        if (r != 0 && rc == 0)
            rc = r;
    }
    return rc;
}

static void
wipe_tree(struct wipe *w)
{
    struct walk wk = {.w = w};
    uint64_t start = loop_clock_ms();

    /* none: only what the uid left in the shared directories
     * (pool_env_wipe_uid()) */
    if (w->name[0] != '\0') {
        wk.base = open(w->base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (wk.base < 0) {
            w->err = -errno;
            return;
        }
        w->err = wipe_top(&wk, w->name);
        close(wk.base);
    }
    /* the uid goes back: the next instance of it must not find what this
     * one left outside its directory either (its keys and SysV IPC objects
     * are the reaper's: only the uid may remove them without CAP_SYS_ADMIN) */
    if (w->give_uid) {
        int r = wipe_shared_dirs(&wk);
        if (r != 0 && w->err == 0)
            w->err = r;
    }
    free(wk.todo);
    w->entries = wk.entries;
    w->ms = loop_clock_ms() - start;
}

/* Adds w last to the list of *head and *tail (under e->lock). */
static void
append(struct wipe **head, struct wipe **tail, struct wipe *w)
{
    w->next = NULL;
    if (*tail != NULL)
        (*tail)->next = w;
    else
        *head = w;
    *tail = w;
}

/* Whether l's first may start: not before the work queued earlier in the
 * lanes above l has ended, so that a store-back or a wipe of an instance
 * directory waits for the fetch into it queued first, and a wipe for the
 * store-back of it; the work of one lane never waits for a lane below it (a
 * store-back for a wipe). In its own lane, a barrier (ENV_AFTER) starts once
 * nothing else of it runs, and nothing starts while one runs. */
static bool
may_start(const struct pool_env *e, const struct lane *l)
{
    uint64_t seq = l->head->seq;

    for (const struct lane *above = e->lanes; above < l; above++)
        if (above->head != NULL && above->head->seq < seq)
            return false;
    for (int i = 0; i < e->n_workers; i++) {
        const struct worker *wk = &e->workers[i];
        if (wk->running == NULL || wk->lane > l)
            continue;
        if (wk->lane < l ? wk->running->seq < seq : wk->running->barrier || l->head->barrier)
            return false;
    }
    return true;
}

static void *
worker_thread(void *arg)
{
    struct worker *wk = arg;
    struct pool_env *e = wk->env;
    struct lane *l = wk->lane;

    pthread_mutex_lock(&e->lock);
    for (;;) {
        while (l->head != NULL ? !may_start(e, l) : !e->stop)
            pthread_cond_wait(&e->cond, &e->lock);
        struct wipe *w = l->head;
        if (w == NULL) /* stopping, and nothing left to do */
            break;
        if ((l->head = w->next) == NULL)
            l->tail = NULL;
        wk->running = w;
        pthread_mutex_unlock(&e->lock);
        if (w->work != NULL)
            w->err = w->work(w->ctx);
        else
            wipe_tree(w);
        pthread_mutex_lock(&e->lock);
        wk->running = NULL;
        pthread_cond_broadcast(&e->cond); /* other threads may wait for this one */
        append(&e->done, &e->done_tail, w);
        uint64_t one = 1;
        (void)!write(e->wakefd, &one, sizeof(one));
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

/* ---- the main loop's side */

static void
finish(struct pool_env *e, struct wipe *w)
{
    if (w->work != NULL) {
        if (w->work_done != NULL)
            w->work_done(w->arg, w->ctx, w->err);
        w->ctx_free(w->ctx);
        free(w);
        return;
    }
    if (w->give_uid && w->err == 0) /* else something of it may remain */
        pool_env_put_uid(e, w->uid);
    if (w->done != NULL)
        w->done(w->arg, w->err, w->entries, w->ms);
    free(w->base);
    free(w);
}

/* Runs the callbacks of the wipes and work the threads finished. */
static void
finish_done(struct pool_env *e)
{
    pthread_mutex_lock(&e->lock);
    struct wipe *w = e->done;
    e->done = e->done_tail = NULL;
    pthread_mutex_unlock(&e->lock);
    while (w != NULL) {
        struct wipe *next = w->next;
        finish(e, w);
        w = next;
    }
}

static void
wake_event(struct io *io, uint32_t events)
{
    struct pool_env *e = io->data;
    uint64_t n;
    (void)events;

    while (read(e->wakefd, &n, sizeof(n)) > 0)
        ;
    finish_done(e);
}

/* Queues w last in lane. */
static void
enqueue(struct pool_env *e, struct wipe *w, int lane)
{
    struct lane *l = &e->lanes[lane];

    pthread_mutex_lock(&e->lock);
    w->seq = ++e->queued;
    append(&l->head, &l->tail, w);
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

/* What was moved aside belongs to airlock from now on (mode 0700): a
 * process of the instance's uid, even one that knows the name, cannot reach
 * it while it is being removed. */
static void
seal(int base, const char *name)
{
    int fd = openat(base, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0)
        return; /* not a directory: removed by the first unlinkat() */
    (void)!fchown(fd, geteuid(), getegid());
    (void)!fchmod(fd, 0700);
    close(fd);
}

static struct wipe *
wipe_new(const char *base, bool give_uid, uid_t uid, wipe_done_cb done, void *arg)
{
    struct wipe *w = calloc(1, sizeof(*w));

    if (w == NULL || (w->base = strdup(base)) == NULL) {
        free(w);
        return NULL;
    }
    w->give_uid = give_uid;
    w->uid = uid;
    w->done = done;
    w->arg = arg;
    return w;
}

struct wipe *
pool_env_wipe(struct pool_env *e, const char *base, const char *name, bool give_uid, uid_t uid,
              wipe_done_cb done, void *arg, int *err)
{
    struct wipe *w = wipe_new(base, give_uid, uid, done, arg);
    int fd = -1, rc = -ENOMEM;

    if (w == NULL)
        goto fail;
    if ((fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = -errno;
        goto fail;
    }
    for (int i = 0;; i++) {
        snprintf(w->name, sizeof(w->name), ASIDE_PREFIX "%s-%llu", e->tag, ++e->seq);
        if ((rc = rename_new(fd, name, fd, w->name)) == 0)
            break;
        if (rc != -EEXIST || i == ASIDE_TRIES)
            goto fail;
    }
    seal(fd, w->name);
    close(fd);
    enqueue(e, w, LANE_WIPE);
    return w;

fail:
    if (fd >= 0)
        close(fd);
    if (w != NULL)
        free(w->base);
    free(w);
    *err = rc;
    return NULL;
}

struct wipe *
pool_env_wipe_uid(struct pool_env *e, uid_t uid, wipe_done_cb done, void *arg, int *err)
{
    struct wipe *w = wipe_new("", true, uid, done, arg);

    if (w == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    enqueue(e, w, LANE_WIPE);
    return w;
}

struct wipe *
pool_env_run(struct pool_env *e, env_work_fn work, void *ctx, void (*ctx_free)(void *ctx),
             enum env_queue q, env_work_done_cb done, void *arg)
{
    struct wipe *w = calloc(1, sizeof(*w));

    if (w == NULL) {
        ctx_free(ctx);
        return NULL;
    }
    w->work = work;
    w->ctx = ctx;
    w->ctx_free = ctx_free;
    w->work_done = done;
    w->arg = arg;
    w->barrier = q == ENV_AFTER;
    enqueue(e, w, q == ENV_URGENT ? LANE_FETCH : LANE_STORE);
    return w;
}

void
pool_env_wipe_detach(struct wipe *w)
{
    w->done = NULL;
    w->work_done = NULL;
    w->arg = NULL;
}

/* PREFIX-<digits>: an instance directory of the pool whose instance names
 * begin with prefix. */
static bool
instance_of(const char *name, const char *prefix)
{
    size_t len = strlen(prefix);

    if (strncmp(name, prefix, len) != 0 || name[len] != '-' || name[len + 1] == '\0')
        return false;
    for (const char *c = name + len + 1; *c != '\0'; c++)
        if (*c < '0' || *c > '9')
            return false;
    return true;
}

unsigned
pool_env_sweep(struct pool_env *e, const char *base, const char *prefix)
{
    int fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err;
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    char(*names)[WIPE_NAME_MAX] = NULL;
    size_t n = 0, cap = 0;
    unsigned queued = 0;
    struct dirent *de;

    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    char own[WIPE_NAME_MAX]; /* this env's wipes, queued already */
    int own_len = snprintf(own, sizeof(own), ASIDE_PREFIX "%s-", e->tag);
    /* names first: what is renamed aside below must not be found again */
    while ((de = readdir(d)) != NULL) {
        bool aside = strncmp(de->d_name, ASIDE_PREFIX, strlen(ASIDE_PREFIX)) == 0;
        if ((!aside && !instance_of(de->d_name, prefix)) || strlen(de->d_name) >= WIPE_NAME_MAX ||
            strncmp(de->d_name, own, (size_t)own_len) == 0)
            continue;
        if (n == cap) {
            size_t grown_cap = cap ? 2 * cap : 16;
            char(*grown)[WIPE_NAME_MAX] = realloc(names, grown_cap * sizeof(*grown));
            if (grown == NULL)
                break;
            names = grown;
            cap = grown_cap;
        }
        memcpy(names[n++], de->d_name, strlen(de->d_name) + 1);
    }
    /* an earlier airlock's asides too are renamed this env's own: a second
     * sweep of base (another pool's, the record's) never queues them again */
    for (size_t i = 0; i < n; i++)
        queued += pool_env_wipe(e, base, names[i], false, 0, NULL, NULL, &err) != NULL;
    closedir(d);
    free(names);
    return queued;
}

void
pool_env_set_record(struct pool_env *e, struct record *r)
{
    e->record = r;
}

struct record *
pool_env_record(const struct pool_env *e)
{
    return e->record;
}

/* ---- the whole */

struct pool_env *
pool_env_new(struct loop *loop, int *err)
{
    struct pool_env *e = calloc(1, sizeof(*e));
    int rc = -ENOMEM;

    if (e == NULL)
        goto fail;
    e->loop = loop;
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        rnd = (uint32_t)loop_clock_ms();
    snprintf(e->tag, sizeof(e->tag), "%d-%08x", (int)getpid(), (unsigned)rnd);
    e->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->cond, NULL);
    if (e->wakefd < 0) {
        rc = -errno;
        goto fail;
    }
    if ((rc = io_start(loop, &e->wake_io, e->wakefd, EPOLLIN, wake_event, e)) != 0)
        goto fail;
    for (int lane = 0; lane < LANES; lane++)
        for (int i = 0; i < lane_conf[lane].threads; i++) {
            struct worker *wk = &e->workers[e->n_workers];
            wk->env = e;
            wk->lane = &e->lanes[lane];
            if ((rc = -pthread_create(&wk->thread, NULL, worker_thread, wk)) != 0)
                goto fail;
            pthread_setname_np(wk->thread, lane_conf[lane].name);
            e->n_workers++;
        }
    return e;

fail:
    pool_env_free(e);
    *err = rc;
    return NULL;
}

void
pool_env_free(struct pool_env *e)
{
    if (e == NULL)
        return;
    pthread_mutex_lock(&e->lock);
    e->stop = true;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
    for (; e->n_workers > 0; e->n_workers--)
        pthread_join(e->workers[e->n_workers - 1].thread, NULL);
    finish_done(e);
    if (e->wakefd >= 0) {
        io_stop(e->loop, &e->wake_io);
        close(e->wakefd);
        e->wakefd = -1;
    }
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->lock);
    free(e->held.v);
    free(e->reaped.v);
    free(e->left.v);
    free(e);
}
