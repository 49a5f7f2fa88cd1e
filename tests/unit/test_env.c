/* test_env.c - unit tests for what the pools share (src/pool/env.c): uids
 * handed out lowest first and never twice, up to the last valid uid; the
 * wipe thread on real trees (a symlink out of the tree is removed, not
 * followed; a tree deeper than the recursion limit; a directory of mode
 * 000), the directory gone from its name at once, the uid back only after
 * the wipe, a detached wipe, the sweep of an earlier airlock's leftovers;
 * work (pool_env_run()): urgent work while store work and other urgent work
 * are held; store work while other store work is held, never before the
 * urgent work queued earlier; ENV_AFTER work only once the store work
 * queued earlier has ended, and before the store work queued after it; a
 * wipe never before the work queued earlier; a detached one still runs and
 * its context is freed. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/loop.h"
#include "pool/env.h"

static void
test_uids(void **state)
{
    struct loop *loop = loop_new();
    int err = 0;
    uid_t u;
    (void)state;

    struct pool_env *e = pool_env_new(loop, &err);
    assert_non_null(e);
    for (uid_t want = 100; want <= 103; want++) {
        assert_int_equal(pool_env_take_uid(e, 100, 103, &u), 0);
        assert_int_equal(u, want);
    }
    assert_int_equal(pool_env_take_uid(e, 100, 103, &u), -EAGAIN);
    assert_int_equal(pool_env_take_uid(e, 102, 103, &u), -EAGAIN); /* overlapping ranges */
    pool_env_put_uid(e, 101);
    pool_env_put_uid(e, 101); /* twice: harmless */
    assert_int_equal(pool_env_take_uid(e, 100, 103, &u), 0);
    assert_int_equal(u, 101);
    assert_int_equal(pool_env_take_uid(e, 90, 200, &u), 0);
    assert_int_equal(u, 90);
    assert_int_equal(pool_env_take_uid(e, 99, 200, &u), 0);
    assert_int_equal(u, 99);
    assert_int_equal(pool_env_take_uid(e, 99, 200, &u), 0);
    assert_int_equal(u, 104);
    /* the top of the range: no wrap past the last valid uid */
    assert_int_equal(pool_env_take_uid(e, 4294967293u, 4294967294u, &u), 0);
    assert_int_equal(pool_env_take_uid(e, 4294967293u, 4294967294u, &u), 0);
    assert_int_equal(u, 4294967294u);
    assert_int_equal(pool_env_take_uid(e, 4294967293u, 4294967294u, &u), -EAGAIN);
    /* many: the table grows */
    for (uid_t i = 0; i < 5000; i++)
        assert_int_equal(pool_env_take_uid(e, 10000, 20000, &u), 0);
    assert_int_equal(u, 14999);
    pool_env_free(e);
    loop_free(loop);
}

/* ---- wipes */

struct done {
    struct loop *loop;
    int calls, err;
    uint64_t entries;
};

static void
wiped(void *arg, int err, uint64_t entries, uint64_t ms)
{
    struct done *d = arg;
    (void)ms;

    d->calls++;
    d->err = err;
    d->entries = entries;
    loop_stop(d->loop);
}

static void
too_late(struct timer *t)
{
    (void)t;
    fail_msg("the wipe did not end within 20 s");
}

static void
run_until_done(struct loop *loop)
{
    struct timer guard = {0};

    timer_start(loop, &guard, 20000, too_late, NULL);
    loop_run(loop);
    timer_stop(loop, &guard);
}

static void
stop_loop(struct timer *t)
{
    loop_stop(t->data);
}

/* Runs the loop for ms. */
static void
run_for(struct loop *loop, uint64_t ms)
{
    struct timer t = {0};

    timer_start(loop, &t, ms, stop_loop, loop);
    loop_run(loop);
    timer_stop(loop, &t);
}

static void
touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x\n", 2), 2);
    close(fd);
}

/* Entries in dir (without . and ..). */
static int
count(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "exit $(ls -A '%s' | wc -l)", dir);
    int rc = system(cmd);
    return WEXITSTATUS(rc);
}

static void
test_wipe(void **state)
{
    char root[] = "/tmp/test_env.XXXXXX", base[256], path[4096], keep[256];
    struct loop *loop = loop_new();
    struct done d = {.loop = loop};
    int err = 0;
    uid_t u;
    (void)state;

    assert_non_null(mkdtemp(root));
    snprintf(base, sizeof(base), "%s/base", root);
    snprintf(keep, sizeof(keep), "%s/keep", root);
    assert_int_equal(mkdir(base, 0711), 0);
    touch(keep);
    struct pool_env *e = pool_env_new(loop, &err);
    assert_non_null(e);
    assert_int_equal(pool_env_take_uid(e, 500, 500, &u), 0);

    /* p-1: files, a link out, a directory of mode 000, 100 levels */
    snprintf(path, sizeof(path), "%s/p-1", base);
    assert_int_equal(mkdir(path, 0700), 0);
    for (int i = 0; i < 10; i++) {
        snprintf(path, sizeof(path), "%s/p-1/f%d", base, i);
        touch(path);
    }
    snprintf(path, sizeof(path), "%s/p-1/out", base);
    assert_int_equal(symlink(root, path), 0);
    bool as_root = geteuid() == 0; /* only root enters a directory of mode 000 */
    if (as_root) {
        snprintf(path, sizeof(path), "%s/p-1/closed", base);
        assert_int_equal(mkdir(path, 0700), 0);
        snprintf(path, sizeof(path), "%s/p-1/closed/f", base);
        touch(path);
        snprintf(path, sizeof(path), "%s/p-1/closed", base);
        assert_int_equal(chmod(path, 0), 0);
    }
    size_t len = (size_t)snprintf(path, sizeof(path), "%s/p-1", base);
    for (int i = 0; i < 100; i++) {
        len += (size_t)snprintf(path + len, sizeof(path) - len, "/d");
        assert_int_equal(mkdir(path, 0700), 0);
    }

    struct wipe *w = pool_env_wipe(e, base, "p-1", true, 500, wiped, &d, &err);
    assert_non_null(w);
    snprintf(path, sizeof(path), "%s/p-1", base);
    assert_int_equal(access(path, F_OK), -1); /* gone from its name at once */
    assert_int_equal(pool_env_take_uid(e, 500, 500, &u), -EAGAIN);
    run_until_done(loop);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.err, 0);
    assert_int_equal(d.entries, 1 + 10 + 1 + (as_root ? 2 : 0) + 100);
    assert_int_equal(count(base), 0);
    assert_int_equal(access(keep, F_OK), 0); /* the link was not followed */
    assert_int_equal(pool_env_take_uid(e, 500, 500, &u), 0);

    /* nothing there */
    assert_null(pool_env_wipe(e, base, "p-2", false, 0, wiped, &d, &err));
    assert_int_equal(err, -ENOENT);

    /* detached: no callback; the uid still comes back */
    snprintf(path, sizeof(path), "%s/p-3", base);
    assert_int_equal(mkdir(path, 0700), 0);
    w = pool_env_wipe(e, base, "p-3", true, 500, wiped, &d, &err);
    assert_non_null(w);
    pool_env_wipe_detach(w);

    /* leftovers of an earlier airlock: p-7 and .wipe-1-1 go, and q-1 with a sweep of q */
    snprintf(path, sizeof(path), "%s/p-7", base);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/.wipe-1-1", base);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/.wipe-1-1/f", base);
    touch(path);
    snprintf(path, sizeof(path), "%s/q-1", base);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/p-x", base);
    assert_int_equal(mkdir(path, 0700), 0);
    /* q-1 and .wipe-1-1, both renamed this env's own: a second sweep of the
     * base (another prefix) takes p-7 only, not the aside again */
    assert_int_equal(pool_env_sweep(e, base, "q"), 2);
    assert_int_equal(pool_env_sweep(e, base, "p"), 1);
    snprintf(path, sizeof(path), "%s/p-9", base);
    assert_int_equal(mkdir(path, 0700), 0);
    w = pool_env_wipe(e, base, "p-9", false, 0, wiped, &d, &err);
    assert_non_null(w);
    run_until_done(loop);
    assert_int_equal(d.calls, 2);
    /* the others, on threads of their own, and p-3's uid back */
    for (int ms = 0; count(base) != 1 || pool_env_take_uid(e, 500, 500, &u) != 0; ms += 10) {
        assert_true(ms < 20000);
        run_for(loop, 10);
    }
    assert_int_equal(count(base), 1); /* p-x */

    pool_env_free(e);
    loop_free(loop);
    snprintf(path, sizeof(path), "rm -rf '%s'", root);
    assert_int_equal(system(path), 0);
}

/* ---- work */

struct order {
    int began[2]; /* a pipe: a held job writes there that it runs */
    int ran[16];  /* the ids, in the order the threads ran them */
    int n_ran;
    pthread_mutex_t lock; /* ran and n_ran: the threads write them */
    int n_done, want;
    struct loop *loop;
};

struct job_ctx {
    struct order *o;
    int id;
    int gate; /* held: it blocks on reading this; -1: not held */
};

static int
job_work(void *arg)
{
    struct job_ctx *c = arg;
    char b;

    if (c->gate >= 0) {
        assert_int_equal(write(c->o->began[1], "x", 1), 1);
        assert_int_equal(read(c->gate, &b, 1), 1);
    }
    pthread_mutex_lock(&c->o->lock);
    c->o->ran[c->o->n_ran++] = c->id;
    pthread_mutex_unlock(&c->o->lock);
    return -c->id;
}

static void
job_done(void *arg, void *ctx, int err)
{
    struct order *o = arg;

    assert_int_equal(err, -((struct job_ctx *)ctx)->id);
    if (++o->n_done == o->want)
        loop_stop(o->loop);
}

/* Queues job id; gate >= 0: it holds its thread until a byte comes there. */
static struct wipe *
job(struct pool_env *e, struct order *o, int id, enum env_queue q, int gate)
{
    struct job_ctx *c = malloc(sizeof(*c));

    assert_non_null(c);
    c->o = o;
    c->id = id;
    c->gate = gate;
    return pool_env_run(e, job_work, c, free, q, job_done, o);
}

/* Queues a held job and waits until its thread runs it. */
static void
held_job(struct pool_env *e, struct order *o, int id, enum env_queue q, int gate)
{
    char b;

    assert_non_null(job(e, o, id, q, gate));
    assert_int_equal(read(o->began[0], &b, 1), 1);
}

/* Runs the loop until o->want jobs have ended, then checks that the threads
 * ran the ids of want (n of them) so far, in that order. */
static void
ran_so_far(struct order *o, int want_done, const int *want, int n)
{
    o->want = want_done;
    if (o->n_done < want_done)
        run_until_done(o->loop);
    pthread_mutex_lock(&o->lock);
    assert_int_equal(o->n_ran, n);
    for (int i = 0; i < n; i++)
        assert_int_equal(o->ran[i], want[i]);
    pthread_mutex_unlock(&o->lock);
}

static void
test_run(void **state)
{
    struct loop *loop = loop_new();
    struct order o = {.loop = loop, .lock = PTHREAD_MUTEX_INITIALIZER};
    int err = 0, gate0[2], gate2[2];
    (void)state;

    assert_int_equal(pipe(gate0), 0);
    assert_int_equal(pipe(gate2), 0);
    assert_int_equal(pipe(o.began), 0);
    struct pool_env *e = pool_env_new(loop, &err);
    assert_non_null(e);

    /* urgent work runs while a store thread and another urgent thread are held */
    held_job(e, &o, 0, ENV_STORE, gate0[0]); /* holds a store thread */
    held_job(e, &o, 2, ENV_URGENT, gate2[0]);
    assert_non_null(job(e, &o, 4, ENV_URGENT, -1));
    ran_so_far(&o, 1, (int[]){4}, 1);
    assert_int_equal(write(gate2[1], "x", 1), 1);
    ran_so_far(&o, 2, (int[]){4, 2}, 2);
    /* store work runs beside store work */
    assert_non_null(job(e, &o, 1, ENV_STORE, -1));
    ran_so_far(&o, 3, (int[]){4, 2, 1}, 3);
    /* ENV_AFTER waits for the store work before it, and the store work after
     * it waits for it */
    pool_env_wipe_detach(job(e, &o, 3, ENV_AFTER, -1)); /* runs, unheard */
    assert_non_null(job(e, &o, 5, ENV_STORE, -1));
    usleep(100 * 1000); /* time for store threads to run 3 and 5, were they allowed to */
    ran_so_far(&o, 3, (int[]){4, 2, 1}, 3);
    assert_int_equal(write(gate0[1], "x", 1), 1);
    ran_so_far(&o, 5, (int[]){4, 2, 1, 0, 3, 5}, 6); /* 3 was detached */

    /* a wipe waits for the store's work queued before it */
    char base[] = "/tmp/test_env.XXXXXX", dir[64]; /* base: mkdtemp()'s template */
    struct done d = {.loop = loop};
    assert_non_null(mkdtemp(base));
    snprintf(dir, sizeof(dir), "%s/p-1", base);
    assert_int_equal(mkdir(dir, 0700), 0);
    held_job(e, &o, 8, ENV_STORE, gate0[0]);
    assert_non_null(pool_env_wipe(e, base, "p-1", false, 0, wiped, &d, &err));
    usleep(100 * 1000);               /* time for a wipe thread to run it, were it allowed to */
    assert_int_equal(count(base), 1); /* moved aside, not removed */
    assert_int_equal(write(gate0[1], "x", 1), 1);
    run_until_done(loop);
    assert_int_equal(d.calls, 1);
    assert_int_equal(count(base), 0);
    assert_int_equal(rmdir(base), 0);
    ran_so_far(&o, 6, (int[]){4, 2, 1, 0, 3, 5, 8}, 7);

    /* store work waits for the urgent work queued before it */
    held_job(e, &o, 6, ENV_URGENT, gate2[0]);
    assert_non_null(job(e, &o, 7, ENV_STORE, -1));
    usleep(100 * 1000); /* time for a store thread to run 7, were it allowed to */
    ran_so_far(&o, 6, (int[]){4, 2, 1, 0, 3, 5, 8}, 7);
    assert_int_equal(write(gate2[1], "x", 1), 1);
    pool_env_free(e); /* the rest runs before it returns */
    ran_so_far(&o, 8, (int[]){4, 2, 1, 0, 3, 5, 8, 6, 7}, 9);
    assert_int_equal(o.n_done, 8); /* 3 was detached: its callback never ran */
    loop_free(loop);
    int fds[] = {gate0[0], gate0[1], gate2[0], gate2[1], o.began[0], o.began[1]};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        close(fds[i]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uids),
        cmocka_unit_test(test_wipe),
        cmocka_unit_test(test_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
