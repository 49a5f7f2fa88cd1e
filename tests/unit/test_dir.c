/* test_dir.c - the directory's behaviour, the same cases for every backend:
 * memory by default, redis when AIRLOCK_TEST_REDIS names a redis server
 * (tests/integration/t_dir_redis.sh starts one). Sticky while the session
 * lives; an idle instance is reserved for a new key; a reservation is
 * withdrawn after reserve_timeout; a session ends on a draining or
 * stopped report and on TTL expiry, and its key's next assign waits until
 * its instance is stopped (its state stored back); assign_wait then -EAGAIN, or an
 * instance freed meanwhile; cancel; listing and drain; activation only for
 * the key an instance is reserved for; with redis, a second directory
 * handle (another process's view) sees the same state. Reservations not
 * active yet are bounded per client and per pool; a held reservation is
 * withdrawn when its last holder releases it before the login (and not
 * before: sticky holders, active sessions; a login that came first still
 * activates it), and a pool that was not told of the reservation before
 * its withdrawal never hears of it. A reservation withdrawn (or at its
 * timeout) counts against its client until an instance is idle again; at
 * most DIR_HOLDERS_MAX connections hold one reservation; a session ends
 * session_max after its login however often it is assigned; a redis that
 * lost its data hands out no instance before a process noticed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "dir/dir.h"

#define GUARD_MS 5000
/* an end judged against loop_now(): redis keeps its deadlines by its own
 * clock, which may read a little behind the loop's */
#define CLOCK_SLACK_MS 50

static struct loop *loop;
static int case_no;

struct answer {
    int done;
    int evicted; /* dir_assign_held(): its place was taken */
    int err;
    char inst[DIR_NAME_MAX];
    char ep[ENDPOINT_TEXT_MAX];
    char holder[DIR_KEY_MAX];
};

static struct {
    struct dir_instance v[32];
    int n;
} notes;

static struct timer guard;

static void
guard_fired(struct timer *t)
{
    (void)t;
    loop_stop(loop);
}

/* Runs the test's loop until *flag is set or ms pass. */
static void
run_until(const int *flag, unsigned ms)
{
    timer_start(loop, &guard, ms, guard_fired, NULL);
    while (!*flag && guard.slot != 0)
        loop_run(loop);
    timer_stop(loop, &guard);
}

static void
sleep_loop(unsigned ms)
{
    static const int never = 0;
    run_until(&never, ms);
}

static void
on_assign(void *arg, int err, const char *inst, const struct endpoint *ep)
{
    struct answer *a = arg;

    a->done = 1;
    a->err = err;
    if (err == 0) {
        snprintf(a->inst, sizeof(a->inst), "%s", inst);
        endpoint_format(ep, a->ep, sizeof(a->ep));
    }
    loop_stop(loop);
}

static int
assign(struct dir *d, const char *pool, const char *key, char *inst)
{
    struct answer a = {0};

    assert_non_null(dir_assign(d, pool, key, loop, on_assign, &a));
    run_until(&a.done, GUARD_MS);
    assert_true(a.done);
    if (inst != NULL)
        snprintf(inst, DIR_NAME_MAX, "%s", a.err == 0 ? a.inst : "");
    return a.err;
}

static void
on_evicted(void *arg)
{
    struct answer *a = arg;

    a->evicted = 1;
    loop_stop(loop);
}

/* A held assign (a router connection from client) answered in *a, which
 * hears of an eviction until dir_release(*held). Returns its error. */
static int
hold_in(struct dir *d, const char *key, const char *client, struct answer *a,
        struct dir_assign **held)
{
    memset(a, 0, sizeof(*a));
    *held = dir_assign_held(d, "p", key, client, loop, on_assign, on_evicted, a);
    assert_non_null(*held);
    run_until(&a->done, GUARD_MS);
    assert_true(a->done);
    return a->err;
}

/* A held assign (a router connection from client): its answer, and the
 * request in *held for dir_release(). */
static int
assign_held(struct dir *d, const char *key, const char *client, char *inst,
            struct dir_assign **held)
{
    struct answer a = {0};

    *held = dir_assign_held(d, "p", key, client, loop, on_assign, NULL, &a);
    assert_non_null(*held);
    run_until(&a.done, GUARD_MS);
    assert_true(a.done);
    if (inst != NULL)
        snprintf(inst, DIR_NAME_MAX, "%s", a.err == 0 ? a.inst : "");
    return a.err;
}

static void
on_done(void *arg, int err)
{
    struct answer *a = arg;

    a->done = 1;
    a->err = err;
    loop_stop(loop);
}

static void
on_note(void *arg, const struct dir_instance *inst)
{
    (void)arg;
    if (notes.n < 32)
        notes.v[notes.n++] = *inst;
    loop_stop(loop);
}

/* Waits for a watch note about name in state st; returns 1 when it came. */
static int
wait_note(const char *name, enum dir_state st, unsigned ms)
{
    int found = 0;

    for (unsigned waited = 0; waited < ms && !found; waited += 50) {
        for (int i = 0; i < notes.n; i++)
            found |= strcmp(notes.v[i].name, name) == 0 && notes.v[i].state == st;
        if (!found)
            sleep_loop(50);
    }
    return found;
}

static void
report(struct dir *d, const char *pool, const char *name, enum dir_state st)
{
    struct endpoint ep;
    char text[64];
    const char *why;

    snprintf(text, sizeof(text), "tcp:127.0.0.1:%d", 10000 + (name[strlen(name) - 1] - '0'));
    assert_int_equal(endpoint_parse(text, &ep, &why), PARSE_OK);
    assert_int_equal(dir_report(d, pool, name, st, &ep), 0);
}

static void
on_activate(void *arg, int err, const char *holder)
{
    struct answer *a = arg;

    a->done = 1;
    a->err = err;
    snprintf(a->holder, sizeof(a->holder), "%s", holder);
    loop_stop(loop);
}

/* Asks that name become active for key; returns the answer, the holder in
 * holder (may be NULL). */
static int
activate(struct dir *d, const char *pool, const char *name, const char *key, char *holder)
{
    struct answer a = {0};

    assert_non_null(dir_activate(d, pool, name, key, loop, on_activate, &a));
    run_until(&a.done, GUARD_MS);
    assert_true(a.done);
    if (holder != NULL)
        snprintf(holder, DIR_KEY_MAX, "%s", a.holder);
    return a.err;
}

static struct dir_conf
conf(unsigned reserve_ms, unsigned ttl_ms, unsigned wait_ms)
{
    struct dir_conf c;
    const char *redis = getenv("AIRLOCK_TEST_REDIS"), *why;

    dir_conf_defaults(&c);
    c.reserve_timeout_ms = reserve_ms;
    c.session_ttl_ms = ttl_ms;
    c.assign_wait_ms = wait_ms;
    c.pending_share = 100; /* the cases of the bounds set their own */
    if (redis != NULL) {
        c.backend = DIR_REDIS;
        assert_int_equal(endpoint_parse(redis, &c.redis, &why), PARSE_OK);
    }
    /* a fresh key space per case (redis keeps state between cases) */
    snprintf(c.prefix, sizeof(c.prefix), "t%d:%d:", (int)getpid(), ++case_no);
    return c;
}

static struct dir *
open_dir(const struct dir_conf *c)
{
    struct dir *d = dir_new(c, loop); /* memory: on the test's loop, as on airlock's main */

    assert_non_null(d);
    notes.n = 0;
    return d;
}

/* dir_free() on the loop the directory runs on: after dir_stop() and one
 * more turn (what was posted to d runs), as airlock's exit does */
static void
close_dir(struct dir *d)
{
    dir_stop(d);
    loop_stop(loop);
    loop_run(loop);
    dir_free(d);
}

static void
test_unknown_pool(void **state)
{
    struct dir_conf c = conf(10000, 0, 0);
    struct dir *d = open_dir(&c);
    (void)state;

    assert_int_equal(assign(d, "nopool", "alice", NULL), -ENOENT);
    close_dir(d);
}

static void
test_sticky_and_reserve(void **state)
{
    struct dir_conf c = conf(10000, 0, 0);
    struct dir *d = open_dir(&c);
    char a1[DIR_NAME_MAX], a2[DIR_NAME_MAX], b[DIR_NAME_MAX];
    (void)state;

    report(d, "p", "i1", DIR_IDLE);
    report(d, "p", "i2", DIR_IDLE);
    assert_int_equal(assign(d, "p", "alice", a1), 0);
    assert_int_equal(assign(d, "p", "alice", a2), 0);
    assert_string_equal(a1, a2); /* sticky while reserved */
    assert_int_equal(assign(d, "p", "bob", b), 0);
    assert_string_not_equal(a1, b);                           /* an idle one for a new key */
    assert_int_equal(assign(d, "p", "carol", NULL), -EAGAIN); /* none left */
    assert_int_equal(activate(d, "p", a1, "alice", NULL), 0);
    assert_int_equal(assign(d, "p", "alice", a2), 0);
    assert_string_equal(a1, a2); /* sticky while active */
    close_dir(d);
}

static void
test_reservation_timeout(void **state)
{
    struct dir_conf c = conf(300, 0, 0);
    struct dir *d = open_dir(&c);
    char a[DIR_NAME_MAX], b[DIR_NAME_MAX];
    (void)state;

    assert_int_equal(dir_watch(d, "p", loop, on_note, NULL), 0);
    report(d, "p", "i1", DIR_IDLE);
    assert_int_equal(assign(d, "p", "alice", a), 0);
    /* the pool hears of the reservation, with the key (to provision ahead) */
    assert_true(wait_note("i1", DIR_RESERVED, 3000));
    int keyed = 0;
    for (int i = 0; i < notes.n; i++)
        keyed |= notes.v[i].state == DIR_RESERVED && strcmp(notes.v[i].key, "alice") == 0;
    assert_true(keyed);
    assert_int_equal(assign(d, "p", "bob", NULL), -EAGAIN);
    /* withdrawn, not idle: alice's client may have spoken to it; the pool
     * hears, with the key (a login line that came first still counts) */
    assert_true(wait_note("i1", DIR_STARTING, 3000));
    keyed = 0;
    for (int i = 0; i < notes.n; i++)
        keyed |= notes.v[i].state == DIR_STARTING && strcmp(notes.v[i].key, "alice") == 0;
    assert_true(keyed);
    assert_int_equal(assign(d, "p", "bob", NULL), -EAGAIN);
    report(d, "p", "i1", DIR_IDLE); /* recycled (in airlock: a fresh instance) */
    assert_int_equal(assign(d, "p", "bob", b), 0);
    assert_string_equal(a, b);
    dir_unwatch(d, "p");
    close_dir(d);
}

static void
test_session_ends_on_report(void **state)
{
    struct dir_conf c = conf(10000, 0, 0);
    struct dir *d = open_dir(&c);
    char a[DIR_NAME_MAX];
    (void)state;

    report(d, "p", "i1", DIR_IDLE);
    report(d, "p", "i2", DIR_IDLE);
    report(d, "p", "i3", DIR_IDLE);
    assert_int_equal(assign(d, "p", "alice", a), 0);
    assert_int_equal(activate(d, "p", a, "alice", NULL), 0);
    report(d, "p", a, DIR_DRAINING);
    /* alice's session ended, what it wrote is not stored back yet: her next
     * assign waits for the instance's stop (here: none), bob's does not */
    char b[DIR_NAME_MAX];
    assert_int_equal(assign(d, "p", "alice", NULL), -EINPROGRESS);
    assert_int_equal(assign(d, "p", "bob", b), 0);
    report(d, "p", a, DIR_STOPPED);
    /* stopped: she gets an idle one, not the draining one */
    char e[DIR_NAME_MAX];
    assert_int_equal(assign(d, "p", "alice", e), 0);
    assert_string_not_equal(a, e);
    assert_string_not_equal(b, e);
    /* a reservation that ends before its login has nothing to store back */
    report(d, "p", b, DIR_DRAINING);
    report(d, "p", a, DIR_IDLE); /* recycled */
    char f[DIR_NAME_MAX];
    assert_int_equal(assign(d, "p", "bob", f), 0);
    assert_string_equal(a, f);
    close_dir(d);
}

/* An assign for a key whose session is draining goes on once its instance
 * is stopped; a drain from the directory and a session's TTL keep the key
 * the same way. */
static void
test_wait_for_stop(void **state)
{
    struct dir_conf c = conf(10000, 300, 3000);
    struct dir *d = open_dir(&c);
    struct answer b = {0}, e = {0};
    char a[DIR_NAME_MAX], x[DIR_NAME_MAX];
    (void)state;

    report(d, "p", "i1", DIR_IDLE);
    report(d, "p", "i2", DIR_IDLE);
    report(d, "p", "i3", DIR_IDLE);
    assert_int_equal(assign(d, "p", "alice", a), 0);
    assert_int_equal(activate(d, "p", a, "alice", NULL), 0);
    struct answer r = {0};
    assert_int_equal(dir_drain(d, "p", a, loop, on_done, &r), 0);
    run_until(&r.done, GUARD_MS);
    assert_int_equal(r.err, 0);
    assert_non_null(dir_assign(d, "p", "alice", loop, on_assign, &b));
    sleep_loop(200);
    assert_false(b.done); /* waiting for the stop */
    report(d, "p", a, DIR_STOPPED);
    run_until(&b.done, GUARD_MS);
    assert_true(b.done);
    assert_int_equal(b.err, 0);
    assert_string_not_equal(b.inst, a);
    /* the session's TTL (300 ms, no assign renews it): the same */
    assert_int_equal(activate(d, "p", b.inst, "alice", NULL), 0);
    sleep_loop(1500);
    assert_non_null(dir_assign(d, "p", "alice", loop, on_assign, &e));
    sleep_loop(200);
    assert_false(e.done);
    report(d, "p", b.inst, DIR_STOPPED);
    run_until(&e.done, GUARD_MS);
    assert_int_equal(e.err, 0);
    assert_string_not_equal(e.inst, b.inst);
    assert_int_equal(assign(d, "p", "alice", x), 0); /* sticky to it (reserved) */
    assert_string_equal(x, e.inst);
    close_dir(d);
}

static void
test_session_ttl(void **state)
{
    struct dir_conf c = conf(10000, 1000, 0);
    struct dir *d = open_dir(&c);
    char a[DIR_NAME_MAX];
    uint64_t last = 0;
    (void)state;

    assert_int_equal(dir_watch(d, "p", loop, on_note, NULL), 0);
    report(d, "p", "i1", DIR_IDLE);
    assert_int_equal(assign(d, "p", "alice", a), 0);
    assert_int_equal(activate(d, "p", a, "alice", NULL), 0);
    /* each assign renews the session: it ends no sooner than the ttl
     * after the last one (unrenewed, it would end 600 ms before that) */
    for (int i = 0; i < 6; i++) {
        sleep_loop(100);
        last = loop_now(loop);
        assert_int_equal(assign(d, "p", "alice", NULL), 0);
    }
    assert_true(wait_note(a, DIR_DRAINING, 5000));
    assert_true(loop_now(loop) - last >= 1000 - CLOCK_SLACK_MS);
    assert_int_equal(assign(d, "p", "bob", NULL), -EAGAIN);
    dir_unwatch(d, "p");
    close_dir(d);
}

/* session_max: a session ends that long after its login however often it
 * is assigned (by anyone: the router cannot tell a user's ClientHello from
 * another's), and without session_ttl too. */
static void
test_session_max(void **state)
{
    char a[DIR_NAME_MAX], b[DIR_NAME_MAX];
    (void)state;

    for (int ttl = 0; ttl <= 300; ttl += 300) {
        struct dir_conf c = conf(10000, (unsigned)ttl, 0);
        c.session_max_ms = 600;
        struct dir *d = open_dir(&c);
        assert_int_equal(dir_watch(d, "p", loop, on_note, NULL), 0);
        report(d, "p", "i1", DIR_IDLE);
        report(d, "p", "i2", DIR_IDLE);
        uint64_t t0 = loop_now(loop);
        assert_int_equal(assign(d, "p", "alice", a), 0);
        assert_int_equal(activate(d, "p", a, "alice", NULL), 0);
        sleep_loop(200);
        /* a second login of the same session does not move its end */
        assert_int_equal(activate(d, "p", a, "alice", NULL), 0);
        /* renewed every 100 ms: still over at 600 ms */
        for (int i = 0; i < 3; i++) {
            sleep_loop(100);
            assert_int_equal(assign(d, "p", "alice", NULL), 0);
        }
        assert_true(wait_note(a, DIR_DRAINING, 3000));
        /* not before it (a stall of the machine longer than the ttl
         * between two renewals may end it earlier: only without one) */
        if (ttl == 0)
            assert_true(loop_now(loop) - t0 >= 600 - CLOCK_SLACK_MS);
        /* the next session is a new one, with an end of its own: not
         * before its ttl or session_max from its own assign (bounds that
         * a busy machine only makes later) */
        report(d, "p", a, DIR_STOPPED);
        t0 = loop_now(loop);
        assert_int_equal(assign(d, "p", "alice", b), 0);
        assert_string_not_equal(a, b);
        assert_int_equal(activate(d, "p", b, "alice", NULL), 0);
        assert_true(wait_note(b, DIR_DRAINING, 3000));
        assert_true(loop_now(loop) - t0 >= (ttl > 0 ? (uint64_t)ttl : 600) - CLOCK_SLACK_MS);
        dir_unwatch(d, "p");
        close_dir(d);
    }
}

static void
test_wait_then_again(void **state)
{
    struct dir_conf c = conf(10000, 0, 300);
    struct dir *d = open_dir(&c);
    (void)state;

    report(d, "p", "i1", DIR_IDLE);
    assert_int_equal(assign(d, "p", "alice", NULL), 0);
    uint64_t t0 = loop_now(loop);
    assert_int_equal(assign(d, "p", "bob", NULL), -EAGAIN);
    uint64_t waited = loop_now(loop) - t0;
    assert_true(waited >= 250 && waited < 3000);
    close_dir(d);
}

static void
test_wait_then_idle(void **state)
{
    struct dir_conf c = conf(10000, 0, 3000);
    struct dir *d = open_dir(&c);
    struct answer b = {0};
    char a[DIR_NAME_MAX];
    (void)state;

    report(d, "p", "i1", DIR_IDLE);
    assert_int_equal(assign(d, "p", "alice", a), 0);
    assert_non_null(dir_assign(d, "p", "bob", loop, on_assign, &b));
    sleep_loop(200);
    assert_false(b.done); /* waiting */
    assert_int_equal(activate(d, "p", a, "alice", NULL), 0);
    report(d, "p", a, DIR_DRAINING);
    report(d, "p", a, DIR_IDLE);
    run_until(&b.done, GUARD_MS);
    assert_true(b.done);
    assert_int_equal(b.err, 0);
    assert_string_equal(b.inst, a);
    assert_string_equal(b.ep, "tcp:127.0.0.1:10001");
    close_dir(d);
}

static void
on_list(void *arg, const struct dir_instance *list, long n)
{
    struct dir_instance *out = arg;

    out[0].since_ms = (unsigned long long)n + 1; /* done marker: count + 1 */
    for (long i = 0; i < n && i < 8; i++)
        out[i + 1] = list[i];
    loop_stop(loop);
}

/* Lists pool p's instances into out[1..]; returns how many. */
static long
list(struct dir *d, struct dir_instance *out)
{
    memset(out, 0, 9 * sizeof(*out));
    assert_int_equal(dir_list(d, loop, on_list, out), 0);
    for (int i = 0; i < 100 && out[0].since_ms == 0; i++)
        sleep_loop(50);
    assert_true(out[0].since_ms > 0);
    return (long)out[0].since_ms - 1;
}

static const struct dir_instance *
listed(const struct dir_instance *out, long n, const char *name)
{
    for (long i = 1; i <= n; i++)
        if (strcmp(out[i].name, name) == 0)
            return &out[i];
    return NULL;
}

static void
test_cancel(void **state)
{
    struct dir_conf c = conf(10000, 0, 3000);
    struct dir *d = open_dir(&c);
    struct answer b = {0};
    struct dir_instance out[9];
    char a[DIR_NAME_MAX];
    (void)state;

    report(d, "p", "i1", DIR_IDLE);
    assert_int_equal(assign(d, "p", "alice", a), 0);
    struct dir_assign *pending = dir_assign(d, "p", "bob", loop, on_assign, &b);
    assert_non_null(pending);
    sleep_loop(100);
    dir_assign_cancel(pending);
    report(d, "p", a, DIR_IDLE);
    sleep_loop(300);
    assert_false(b.done); /* never called */
    long n = list(d, out);
    const struct dir_instance *i1 = listed(out, n, a);
    assert_non_null(i1);
    assert_int_equal(i1->state, DIR_IDLE); /* not reserved for the cancelled bob */
    close_dir(d);
}

static void
test_list_and_drain(void **state)
{
    struct dir_conf c = conf(10000, 0, 0);
    struct dir *d = open_dir(&c);
    struct dir_instance out[9];
    struct answer r = {0};
    char a[DIR_NAME_MAX];
    (void)state;

    assert_int_equal(dir_watch(d, "p", loop, on_note, NULL), 0);
    assert_int_equal(dir_watch(d, "p", loop, on_note, NULL), -EEXIST);
    report(d, "p", "i1", DIR_IDLE);
    report(d, "q", "i2", DIR_STARTING);
    assert_int_equal(assign(d, "p", "alice", a), 0);
    long n = list(d, out);
    assert_int_equal(n, 2);
    const struct dir_instance *i1 = listed(out, n, "i1");
    assert_non_null(i1);
    assert_int_equal(i1->state, DIR_RESERVED);
    assert_string_equal(i1->key, "alice");
    assert_string_equal(i1->endpoint, "tcp:127.0.0.1:10001");
    assert_int_equal(listed(out, n, "i2")->state, DIR_STARTING);

    assert_int_equal(dir_drain(d, "p", "i1", loop, on_done, &r), 0);
    run_until(&r.done, GUARD_MS);
    assert_int_equal(r.err, 0);
    assert_true(wait_note("i1", DIR_DRAINING, 3000));
    assert_int_equal(assign(d, "p", "alice", NULL), -EAGAIN); /* her session ended */
    memset(&r, 0, sizeof(r));
    assert_int_equal(dir_drain(d, "p", "nosuch", loop, on_done, &r), 0);
    run_until(&r.done, GUARD_MS);
    assert_int_equal(r.err, -ENOENT);
    dir_unwatch(d, "p");
    close_dir(d);
}

/* Only dir_activate() makes an instance active, and only for the key it is
 * reserved or active for: an idle instance, one reserved for another key,
 * a starting or unknown one are refused with the key they hold; the pool
 * cannot report active or reserved by itself. */
static void
test_activate_only_reserved(void **state)
{
    struct dir_conf c = conf(10000, 0, 0);
    struct dir *d = open_dir(&c);
    struct endpoint ep;
    const char *why;
    char a[DIR_NAME_MAX], b[DIR_NAME_MAX], holder[DIR_KEY_MAX];
    (void)state;

    report(d, "p", "i1", DIR_IDLE);
    report(d, "p", "i2", DIR_IDLE);
    report(d, "p", "i3", DIR_STARTING);
    assert_int_equal(activate(d, "p", "i1", "mallory", holder), -EPERM); /* idle */
    assert_string_equal(holder, "");
    assert_int_equal(activate(d, "p", "i3", "mallory", holder), -EPERM); /* starting */
    assert_int_equal(activate(d, "p", "nosuch", "mallory", holder), -EPERM);
    assert_int_equal(activate(d, "q", "i1", "mallory", holder), -EPERM); /* another pool */
    assert_int_equal(assign(d, "p", "alice", a), 0);
    assert_int_equal(activate(d, "p", a, "bob", holder), -EPERM); /* reserved for alice */
    assert_string_equal(holder, "alice");
    assert_int_equal(assign(d, "p", "alice", b), 0);
    assert_string_equal(a, b); /* still alice's */
    /* the other instance, idle, cannot take alice's session either */
    assert_int_equal(activate(d, "p", strcmp(a, "i1") == 0 ? "i2" : "i1", "alice", holder), -EPERM);
    assert_int_equal(activate(d, "p", a, "alice", NULL), 0);
    assert_int_equal(activate(d, "p", a, "alice", NULL), 0); /* again: already hers */
    assert_int_equal(activate(d, "p", a, "bob", holder), -EPERM);
    assert_string_equal(holder, "alice");
    struct dir_instance out[9];
    long n = list(d, out);
    assert_int_equal(listed(out, n, a)->state, DIR_ACTIVE);
    assert_string_equal(listed(out, n, a)->key, "alice");
    /* a draining instance is no one's */
    report(d, "p", a, DIR_DRAINING);
    assert_int_equal(activate(d, "p", a, "alice", holder), -EPERM);
    assert_int_equal(endpoint_parse("tcp:127.0.0.1:1", &ep, &why), PARSE_OK);
    assert_int_equal(dir_report(d, "p", "i1", DIR_ACTIVE, &ep), -EINVAL);
    assert_int_equal(dir_report(d, "p", "i1", DIR_RESERVED, &ep), -EINVAL);
    /* a cancelled activation never answers */
    struct answer x = {0};
    assert_int_equal(assign(d, "p", "carol", b), 0);
    struct dir_activate *pending = dir_activate(d, "p", b, "carol", loop, on_activate, &x);
    assert_non_null(pending);
    dir_activate_cancel(pending);
    sleep_loop(200);
    assert_false(x.done);
    close_dir(d);
}

/* redis lost the directory's data (only this case's keys here) and no
 * process has noticed yet (its sweep, every 100 ms): an instance reported
 * idle since is not handed out, the key waits (-EINPROGRESS) as while the
 * directory recovers (or for the reconnect of a sweep that noticed); the
 * key's session may be on a node that has not reported it again. */
static void
test_lost_unnoticed(void **state)
{
    struct dir_conf c = conf(10000, 0, 0);
    (void)state;

    if (c.backend != DIR_REDIS)
        skip();
    struct dir *d = open_dir(&c);
    const char *path = getenv("AIRLOCK_TEST_REDIS") + strlen("unix:");
    redisContext *rdc = redisConnectUnix(path);
    assert_true(rdc != NULL && rdc->err == 0);

    report(d, "p", "i1", DIR_IDLE);
    /* a round trip: connected (P epoch taken), i1 reported */
    assert_int_equal(assign(d, "p", "bob", NULL), 0);
    redisReply *rep = redisCommand(rdc, "EVAL %s 0 %s",
                                   "for _, k in ipairs(redis.call('KEYS', ARGV[1] .. '*')) do "
                                   "redis.call('DEL', k) end",
                                   c.prefix);
    assert_true(rep != NULL && rep->type != REDIS_REPLY_ERROR);
    freeReplyObject(rep);
    report(d, "p", "i2", DIR_IDLE);
    /* or -ENOTCONN: a sweep that noticed it first connects again */
    int rc = assign(d, "p", "alice", NULL);
    assert_true(rc == -EINPROGRESS || rc == -ENOTCONN);
    redisFree(rdc);
    close_dir(d);
}

/* Two handles on one redis: what one reports, the other assigns; what one
 * drains, the other's watcher hears. */
static void
test_second_handle(void **state)
{
    struct dir_conf c = conf(10000, 0, 0);
    (void)state;

    if (c.backend != DIR_REDIS)
        skip();
    struct dir *d1 = open_dir(&c), *d2 = open_dir(&c);
    char a[DIR_NAME_MAX], b[DIR_NAME_MAX];
    struct answer r = {0};

    assert_int_equal(dir_watch(d1, "p", loop, on_note, NULL), 0);
    report(d1, "p", "i1", DIR_IDLE);
    report(d1, "p", "i2", DIR_IDLE);
    sleep_loop(100);
    assert_int_equal(assign(d2, "p", "alice", a), 0);
    assert_int_equal(assign(d1, "p", "alice", b), 0);
    assert_string_equal(a, b);
    assert_int_equal(dir_drain(d2, "p", a, loop, on_done, &r), 0);
    run_until(&r.done, GUARD_MS);
    assert_int_equal(r.err, 0);
    assert_true(wait_note(a, DIR_DRAINING, 3000)); /* d1's pool hears d2's drain */
    dir_unwatch(d1, "p");
    dir_free(d2);
    dir_free(d1);
}

/* Per client address: max_pending_per_client reservations not active
 * yet; per pool: pending_share of its instances. Sticky answers and other
 * clients are not refused by one client's bound; an active session stops
 * counting. */
static void
test_pending_bounds(void **state)
{
    struct dir_conf c = conf(10000, 0, 0);
    struct dir_assign *h[8];
    char a[DIR_NAME_MAX], b[DIR_NAME_MAX];
    (void)state;

    c.max_pending_per_client = 2;
    c.pending_share = 60; /* of 5 instances: 3 */
    struct dir *d = open_dir(&c);
    for (int i = 1; i <= 5; i++) {
        char name[8];
        snprintf(name, sizeof(name), "i%d", i);
        report(d, "p", name, DIR_IDLE);
    }
    assert_int_equal(assign_held(d, "u1", "10.0.0.1", a, &h[0]), 0);
    assert_int_equal(assign_held(d, "u2", "10.0.0.1", NULL, &h[1]), 0);
    assert_int_equal(assign_held(d, "u3", "10.0.0.1", NULL, &h[2]), -EDQUOT);
    assert_int_equal(assign_held(d, "u1", "10.0.0.1", b, &h[3]), 0); /* sticky: no new one */
    assert_string_equal(a, b);
    assert_int_equal(assign_held(d, "u4", "10.0.0.2", NULL, &h[4]), 0);
    assert_int_equal(assign_held(d, "u5", "10.0.0.3", NULL, &h[5]), -EBUSY); /* 3 of 5 */
    assert_int_equal(assign(d, "p", "u5", NULL), -EBUSY); /* without a client too */
    assert_int_equal(activate(d, "p", a, "u1", NULL), 0); /* u1 logged in */
    assert_int_equal(assign_held(d, "u5", "10.0.0.3", NULL, &h[6]), 0);
    assert_int_equal(assign_held(d, "u6", "10.0.0.1", NULL, &h[7]), -EBUSY); /* 10.0.0.1: 1 */
    for (int i = 0; i < 8; i++)
        dir_release(h[i]);
    close_dir(d);
}

/* One address waits with as many requests as it may hold reservations: a
 * newer one takes the place of its oldest waiting one (answered at once),
 * and waiting requests are retried newest first: of one address's requests
 * waiting for its bound, the latest gets the reservation that frees. */
static void
test_pending_waiters(void **state)
{
    struct dir_conf c = conf(10000, 0, 1500);
    struct dir_assign *h1, *h2, *w[3];
    struct answer ans[3] = {0};
    char a[DIR_NAME_MAX], a1[DIR_NAME_MAX];
    (void)state;

    c.max_pending_per_client = 2;
    struct dir *d = open_dir(&c);
    report(d, "p", "i1", DIR_IDLE);
    report(d, "p", "i2", DIR_IDLE);
    report(d, "p", "i3", DIR_IDLE);
    assert_int_equal(assign_held(d, "u1", "10.0.0.1", a1, &h1), 0);
    assert_int_equal(assign_held(d, "u2", "10.0.0.1", a, &h2), 0);
    for (int i = 0; i < 3; i++) {
        char key[8];
        snprintf(key, sizeof(key), "w%d", i);
        w[i] = dir_assign_held(d, "p", key, "10.0.0.1", loop, on_assign, NULL, &ans[i]);
        assert_non_null(w[i]);
        sleep_loop(100);
    }
    /* 10.0.0.1 holds its 2: w0 and w1 wait, w2 takes w0's place */
    assert_true(ans[0].done);
    assert_int_equal(ans[0].err, -EDQUOT);
    assert_false(ans[1].done || ans[2].done);
    /* u1 logs in (no longer pending): the newest, w2, gets an instance */
    assert_int_equal(activate(d, "p", a1, "u1", NULL), 0);
    run_until(&ans[2].done, GUARD_MS);
    assert_int_equal(ans[2].err, 0);
    assert_false(ans[1].done);
    run_until(&ans[1].done, GUARD_MS);
    assert_int_equal(ans[1].err, -EAGAIN); /* w1 waited in vain (at last for an idle one) */
    dir_release(h1);
    dir_release(h2);
    for (int i = 0; i < 3; i++)
        dir_release(w[i]);
    close_dir(d);
}

/* The directory's count of assigns asked of its backend. */
static unsigned long
tries(struct dir *d)
{
    struct strbuf out = {0};
    unsigned long n = 0;

    dir_render(d, &out);
    const char *at = strstr(out.data, "\nairlock_dir_assign_tries_total ");
    assert_non_null(at);
    n = strtoul(at + strlen("\nairlock_dir_assign_tries_total "), NULL, 10);
    strbuf_free(&out);
    return n;
}

/* Waiters of many addresses cost one try per pool per retry round while
 * nothing is idle (with redis a try is a round trip, and a round comes at
 * every tick and ring), not one each, and each waiter one a second; a key
 * that got its instance in a round is still found by its other waiters
 * (sticky). */
static void
test_waiters_retry_cost(void **state)
{
    struct dir_conf c = conf(10000, 0, 5000);
    struct answer ans[20] = {0};
    struct dir_assign *w[20];
    (void)state;

    struct dir *d = open_dir(&c);
    report(d, "p", "i1", DIR_STARTING); /* the pool, nothing idle */
    sleep_loop(100);
    for (int i = 0; i < 20; i++) {
        char key[8], client[16];
        snprintf(key, sizeof(key), "w%d", i % 19); /* w0 twice: the oldest and the newest */
        snprintf(client, sizeof(client), "10.0.0.%d", i + 1);
        w[i] = dir_assign_held(d, "p", key, client, loop, on_assign, NULL, &ans[i]);
        assert_non_null(w[i]);
    }
    sleep_loop(300);
    unsigned long before = tries(d);
    uint64_t t0 = loop_now(loop);
    for (int k = 0; k < 10; k++) { /* a round each: a change, nothing idle */
        report(d, "p", "i2", k % 2 ? DIR_STOPPED : DIR_DRAINING);
        sleep_loop(20);
    }
    /* redis: one round per tick too; and each waiter is asked once a
     * second however rounds go */
    unsigned long ms = (unsigned long)(loop_now(loop) - t0);
    unsigned long rounds = 10 + ms / 100 + 2, allowed = rounds + 20 * (ms / 1000 + 1);
    unsigned long spent = tries(d) - before;
    if (spent > allowed)
        fail_msg("%lu tries in about %lu rounds of 20 waiters in %lu ms", spent, rounds, ms);
    for (int i = 0; i < 20; i++)
        assert_false(ans[i].done);
    /* one comes idle: the newest (w0) gets it, and so does the oldest, w0 too */
    report(d, "p", "i3", DIR_IDLE);
    run_until(&ans[19].done, GUARD_MS);
    run_until(&ans[0].done, GUARD_MS);
    assert_int_equal(ans[19].err, 0);
    assert_int_equal(ans[0].err, 0);
    assert_string_equal(ans[0].inst, "i3");
    assert_string_equal(ans[19].inst, "i3");
    for (int i = 1; i < 19; i++)
        assert_false(ans[i].done);
    for (int i = 0; i < 20; i++)
        dir_release(w[i]);
    close_dir(d);
}

/* A reservation its client leaves before the login costs its pool a
 * recycled instance: it counts against the client's
 * max_pending_per_client until an instance of the pool is idle again (or
 * reserve_timeout), so that one address cannot churn every instance of a
 * pool (reserve, leave, again) faster than the pool gets them back. */
static void
test_abandoned_counts(void **state)
{
    struct dir_conf c = conf(400, 0, 0);
    struct dir_assign *h;
    char a[2][DIR_NAME_MAX];
    (void)state;

    c.max_pending_per_client = 2;
    struct dir *d = open_dir(&c);
    for (int i = 0; i < 5; i++) {
        char name[8];
        snprintf(name, sizeof(name), "i%d", i);
        report(d, "p", name, DIR_IDLE);
    }
    for (int i = 0; i < 2; i++) {
        char key[8];
        snprintf(key, sizeof(key), "x%d", i);
        assert_int_equal(assign_held(d, key, "10.0.0.1", a[i], &h), 0);
        dir_release(h); /* left before the login: withdrawn, being recycled */
    }
    assert_int_equal(assign_held(d, "x2", "10.0.0.1", NULL, &h), -EDQUOT);
    dir_release(h);
    assert_int_equal(assign_held(d, "y0", "10.0.0.2", NULL, &h), 0); /* another address */
    dir_release(h);
    report(d, "p", a[0], DIR_IDLE); /* one back: the oldest charge is paid */
    assert_int_equal(assign_held(d, "x3", "10.0.0.1", NULL, &h), 0);
    dir_release(h);
    assert_int_equal(assign_held(d, "x4", "10.0.0.1", NULL, &h), -EDQUOT);
    dir_release(h);
    sleep_loop(500); /* reserve_timeout later the charges are gone */
    assert_int_equal(assign_held(d, "x5", "10.0.0.1", NULL, &h), 0);
    dir_release(h);
    close_dir(d);
}

/* The client that caused a reservation leaves before the login: it is
 * withdrawn at once, the pool hears (starting, with the key), and the
 * instance is handed out again only once its pool reports it idle; until
 * then a login of that key (its line came first) is still activated, and
 * the key waits (-EINPROGRESS), never reserved a second instance. */
static void
test_release(void **state)
{
    struct dir_conf c = conf(10000, 0, 0);
    struct dir *d = open_dir(&c);
    struct dir_instance out[9];
    struct dir_assign *h, *h2;
    char a[DIR_NAME_MAX], b[DIR_NAME_MAX];
    (void)state;

    assert_int_equal(dir_watch(d, "p", loop, on_note, NULL), 0);
    report(d, "p", "i1", DIR_IDLE);
    assert_int_equal(assign_held(d, "alice", "10.0.0.1", a, &h), 0);
    assert_true(wait_note(a, DIR_RESERVED, 3000));
    dir_release(h);
    assert_true(wait_note(a, DIR_STARTING, 3000));
    int keyed = 0;
    for (int i = 0; i < notes.n; i++)
        keyed |= notes.v[i].state == DIR_STARTING && strcmp(notes.v[i].key, "alice") == 0;
    assert_true(keyed);
    long n = list(d, out);
    assert_int_equal(listed(out, n, a)->state, DIR_STARTING);
    assert_int_equal(assign(d, "p", "bob", NULL), -EAGAIN); /* not before the pool says so */
    report(d, "p", a, DIR_IDLE);
    assert_int_equal(activate(d, "p", a, "alice", NULL), -EPERM); /* the pool decided */
    assert_int_equal(assign_held(d, "bob", "10.0.0.1", b, &h2), 0);
    assert_string_equal(a, b);

    /* bob's login line was printed before his client left: it still counts,
     * and until the pool has decided bob's next connection waits, never
     * given a second instance (both would have become his session) */
    dir_release(h2);
    for (int i = 0; i < 60 && listed(out, list(d, out), b)->state != DIR_STARTING; i++)
        sleep_loop(50);
    report(d, "p", "i2", DIR_IDLE);
    assert_int_equal(assign(d, "p", "bob", NULL), -EINPROGRESS);
    assert_int_equal(activate(d, "p", b, "carol", NULL), -EPERM);
    assert_int_equal(activate(d, "p", b, "bob", NULL), 0);
    assert_int_equal(assign(d, "p", "bob", a), 0); /* sticky again: his session */
    assert_string_equal(a, b);
    assert_int_equal(listed(out, list(d, out), b)->state, DIR_ACTIVE);
    dir_unwatch(d, "p");
    close_dir(d);
}

/* Connections that hold one reservation before its login are bounded
 * (DIR_HOLDERS_MAX, and max_pending_per_client from one address): a
 * ClientHello proves nothing, so one address can neither hold every
 * connection slot of a router through one reservation nor, with others,
 * take every place of a user's reservation (the user would be shut out):
 * when all are taken, a newcomer from an address that would still hold
 * fewer than the one holding the most takes the place of that one's
 * oldest, which is told (with redis through a second handle: another
 * router's holder); a place one address gave back is its again. The
 * counts stay exact: an evicted holder's release counts nothing, the
 * last holder's withdraws the reservation. */
static void
test_holders_bounded(void **state)
{
    struct dir_conf c = conf(10000, 0, 0);
    struct dir_assign *h[DIR_HOLDERS_MAX + 2], *more;
    struct answer ans[DIR_HOLDERS_MAX + 2], no;
    struct dir_instance out[9];
    char a[DIR_NAME_MAX], client[32];
    (void)state;

    c.max_pending_per_client = 2;
    struct dir *d = open_dir(&c), *d2 = c.backend == DIR_REDIS ? open_dir(&c) : d;
    report(d, "p", "i1", DIR_IDLE);
    report(d, "p", "i2", DIR_IDLE);
    for (int i = 0; i < DIR_HOLDERS_MAX; i++) {
        snprintf(client, sizeof(client), "10.0.0.%d", i / 2 + 1);
        assert_int_equal(hold_in(d, "x", client, &ans[i], &h[i]), 0);
        if (i == 0)
            snprintf(a, sizeof(a), "%s", ans[0].inst);
        assert_string_equal(a, ans[i].inst); /* sticky */
        if (i == 1) {
            /* 10.0.0.1 has its two places */
            assert_int_equal(hold_in(d, "x", "10.0.0.1", &no, &more), -EDQUOT);
            dir_release(more);
        }
    }
    dir_release(h[1]); /* 10.0.0.1 gives one back, takes it again */
    assert_int_equal(hold_in(d, "x", "10.0.0.1", &ans[1], &h[1]), 0);

    /* all 16 taken, two by each of 8 addresses: 10.0.1.1 takes the place of
     * the oldest, 10.0.0.1's first */
    assert_int_equal(hold_in(d2, "x", "10.0.1.1", &ans[16], &h[16]), 0);
    assert_string_equal(a, ans[16].inst);
    run_until(&ans[0].evicted, GUARD_MS);
    assert_true(ans[0].evicted);
    /* neither 10.0.0.1 (one left) nor 10.0.1.1 would hold fewer than two */
    assert_int_equal(hold_in(d, "x", "10.0.0.1", &no, &more), -EDQUOT);
    dir_release(more);
    assert_int_equal(hold_in(d2, "x", "10.0.1.1", &no, &more), -EDQUOT);
    dir_release(more);
    /* a third address takes the place of 10.0.0.2's oldest */
    assert_int_equal(hold_in(d2, "x", "10.0.2.1", &ans[17], &h[17]), 0);
    run_until(&ans[2].evicted, GUARD_MS);
    assert_true(ans[2].evicted);
    for (int i = 0; i < DIR_HOLDERS_MAX + 2; i++)
        assert_int_equal(ans[i].evicted, i == 0 || i == 2);

    /* the evicted leave: nothing changes; the others leave, the last one
     * withdraws it */
    dir_release(h[0]);
    dir_release(h[2]);
    for (int i = 1; i < DIR_HOLDERS_MAX + 2; i++)
        if (i != 2 && i != 16)
            dir_release(h[i]);
    sleep_loop(300);
    assert_int_equal(listed(out, list(d, out), a)->state, DIR_RESERVED);
    dir_release(h[16]);
    for (int i = 0; i < 60 && listed(out, list(d, out), a)->state != DIR_STARTING; i++)
        sleep_loop(50);
    assert_int_equal(listed(out, list(d, out), a)->state, DIR_STARTING);

    /* once logged in, a session's connections are its user's: not bounded */
    assert_int_equal(hold_in(d, "y", "10.0.0.1", &ans[0], &h[0]), 0);
    snprintf(a, sizeof(a), "%s", ans[0].inst);
    assert_int_equal(activate(d, "p", a, "y", NULL), 0);
    for (int i = 1; i < DIR_HOLDERS_MAX + 2; i++) {
        assert_int_equal(hold_in(d, "y", "10.0.0.1", &ans[i], &h[i]), 0);
        assert_string_equal(a, ans[i].inst);
    }
    for (int i = 0; i < DIR_HOLDERS_MAX + 2; i++)
        dir_release(h[i]);
    if (d2 != d)
        close_dir(d2);
    close_dir(d);
}

/* Two connections of one user hold one reservation: the first to leave
 * does not withdraw it; the last does. After the login, leaving changes
 * nothing. A request released before its answer leaves nothing reserved. */
static void
test_release_holders(void **state)
{
    struct dir_conf c = conf(10000, 0, 0);
    struct dir *d = open_dir(&c);
    struct dir_instance out[9];
    struct dir_assign *h1, *h2, *h3;
    char a[DIR_NAME_MAX], b[DIR_NAME_MAX];
    (void)state;

    report(d, "p", "i1", DIR_IDLE);
    report(d, "p", "i2", DIR_IDLE);
    assert_int_equal(assign_held(d, "alice", "10.0.0.1", a, &h1), 0);
    assert_int_equal(assign_held(d, "alice", "10.0.0.2", b, &h2), 0); /* sticky */
    assert_string_equal(a, b);
    dir_release(h1);
    assert_int_equal(assign(d, "p", "alice", b), 0); /* still hers */
    assert_string_equal(a, b);
    assert_int_equal(listed(out, list(d, out), a)->state, DIR_RESERVED);
    dir_release(h2);
    for (int i = 0; i < 60 && listed(out, list(d, out), a)->state != DIR_STARTING; i++)
        sleep_loop(50);
    assert_int_equal(listed(out, list(d, out), a)->state, DIR_STARTING);

    /* logged in: the session stays when its connection goes */
    assert_int_equal(assign_held(d, "bob", "10.0.0.1", b, &h3), 0);
    assert_int_equal(activate(d, "p", b, "bob", NULL), 0);
    dir_release(h3);
    sleep_loop(200);
    assert_int_equal(listed(out, list(d, out), b)->state, DIR_ACTIVE);

    /* released before the answer came */
    report(d, "p", a, DIR_IDLE);
    struct answer never = {0};
    struct dir_assign *h4 =
        dir_assign_held(d, "p", "carol", "10.0.0.1", loop, on_assign, NULL, &never);
    assert_non_null(h4);
    dir_release(h4);
    sleep_loop(300);
    assert_false(never.done);
    assert_int_not_equal(listed(out, list(d, out), a)->state, DIR_RESERVED);
    close_dir(d);
}

static void
on_note_loop(void *arg, const struct dir_instance *inst)
{
    on_note(arg, inst);
    loop_stop(arg);
}

/* The pool's loop was busy while a reservation was made and withdrawn: it
 * hears of the withdrawal only, so it never brings the user's state in. */
static void
test_release_coalesced(void **state)
{
    struct dir_conf c = conf(10000, 0, 0);
    struct dir *d = open_dir(&c);
    struct loop *pool_loop = loop_new();
    struct dir_instance out[9];
    struct dir_assign *h;
    char a[DIR_NAME_MAX];
    (void)state;

    assert_non_null(pool_loop);
    assert_int_equal(dir_watch(d, "p", pool_loop, on_note_loop, pool_loop), 0);
    report(d, "p", "i1", DIR_IDLE);
    assert_int_equal(assign_held(d, "alice", "10.0.0.1", a, &h), 0);
    dir_release(h);
    for (int i = 0; i < 60 && listed(out, list(d, out), a)->state != DIR_STARTING; i++)
        sleep_loop(50);
    sleep_loop(300); /* redis: the events are popped */
    loop_stop(pool_loop);
    assert_int_equal(loop_run(pool_loop), 0); /* one turn: what was queued */
    assert_int_equal(notes.n, 1);
    assert_int_equal(notes.v[0].state, DIR_STARTING);
    assert_string_equal(notes.v[0].key, "alice");
    dir_unwatch(d, "p");
    close_dir(d);
    loop_free(pool_loop);
}

int
main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_pool),
        cmocka_unit_test(test_sticky_and_reserve),
        cmocka_unit_test(test_reservation_timeout),
        cmocka_unit_test(test_session_ends_on_report),
        cmocka_unit_test(test_session_ttl),
        cmocka_unit_test(test_session_max),
        cmocka_unit_test(test_abandoned_counts),
        cmocka_unit_test(test_holders_bounded),
        cmocka_unit_test(test_wait_for_stop),
        cmocka_unit_test(test_wait_then_again),
        cmocka_unit_test(test_wait_then_idle),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_list_and_drain),
        cmocka_unit_test(test_activate_only_reserved),
        cmocka_unit_test(test_second_handle),
        cmocka_unit_test(test_lost_unnoticed),
        cmocka_unit_test(test_pending_bounds),
        cmocka_unit_test(test_release),
        cmocka_unit_test(test_release_holders),
        cmocka_unit_test(test_release_coalesced),
        cmocka_unit_test(test_pending_waiters),
        cmocka_unit_test(test_waiters_retry_cost),
    };
    /* clang-format on */
    int rc;

    loop = loop_new();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    loop_free(loop);
    return rc;
}
