/* test_dir.c - the directory's behaviour, the same cases for every backend:
 * memory by default, redis when AIRLOCK_TEST_REDIS names a redis server
 * (tests/integration/t_dir_redis.sh starts one). Sticky while the session
 * lives; an idle instance is reserved for a new key; a reservation goes
 * back to idle after reserve_timeout; a session ends on a draining or
 * stopped report and on TTL expiry; assign_wait then -EAGAIN, or an
 * instance freed meanwhile; cancel; listing and drain; activation only for
 * the key an instance is reserved for; with redis, a second directory
 * handle (another process's view) sees the same state. */
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

#include "dir/dir.h"

#define GUARD_MS 5000

static struct loop *loop;
static int case_no;

struct answer {
    int done;
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
    struct dir *d = dir_new(c);

    assert_non_null(d);
    notes.n = 0;
    return d;
}

static void
test_unknown_pool(void **state)
{
    struct dir_conf c = conf(10000, 0, 0);
    struct dir *d = open_dir(&c);
    (void)state;

    assert_int_equal(assign(d, "nopool", "alice", NULL), -ENOENT);
    dir_free(d);
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
    dir_free(d);
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
    assert_true(wait_note("i1", DIR_IDLE, 3000)); /* back to idle, the pool hears */
    assert_int_equal(assign(d, "p", "bob", b), 0);
    assert_string_equal(a, b);
    dir_unwatch(d, "p");
    dir_free(d);
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
    assert_int_equal(assign(d, "p", "alice", a), 0);
    assert_int_equal(activate(d, "p", a, "alice", NULL), 0);
    report(d, "p", a, DIR_DRAINING);
    /* alice's session ended: she gets the other instance, not the draining one */
    char b[DIR_NAME_MAX];
    assert_int_equal(assign(d, "p", "alice", b), 0);
    assert_string_not_equal(a, b);
    report(d, "p", b, DIR_STOPPED);
    assert_int_equal(assign(d, "p", "alice", NULL), -EAGAIN); /* i stopped, other draining */
    report(d, "p", a, DIR_IDLE);                              /* recycled */
    char e[DIR_NAME_MAX];
    assert_int_equal(assign(d, "p", "alice", e), 0);
    assert_string_equal(a, e);
    dir_free(d);
}

static void
test_session_ttl(void **state)
{
    struct dir_conf c = conf(10000, 300, 0);
    struct dir *d = open_dir(&c);
    char a[DIR_NAME_MAX];
    (void)state;

    assert_int_equal(dir_watch(d, "p", loop, on_note, NULL), 0);
    report(d, "p", "i1", DIR_IDLE);
    assert_int_equal(assign(d, "p", "alice", a), 0);
    assert_int_equal(activate(d, "p", a, "alice", NULL), 0);
    /* each assign renews the session */
    for (int i = 0; i < 4; i++) {
        sleep_loop(100);
        assert_int_equal(assign(d, "p", "alice", NULL), 0);
    }
    assert_false(wait_note(a, DIR_DRAINING, 100));
    assert_true(wait_note(a, DIR_DRAINING, 3000));
    assert_int_equal(assign(d, "p", "bob", NULL), -EAGAIN);
    dir_unwatch(d, "p");
    dir_free(d);
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
    dir_free(d);
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
    dir_free(d);
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
    dir_free(d);
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
    dir_free(d);
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
    dir_free(d);
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_pool),        cmocka_unit_test(test_sticky_and_reserve),
        cmocka_unit_test(test_reservation_timeout), cmocka_unit_test(test_session_ends_on_report),
        cmocka_unit_test(test_session_ttl),         cmocka_unit_test(test_wait_then_again),
        cmocka_unit_test(test_wait_then_idle),      cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_list_and_drain),      cmocka_unit_test(test_activate_only_reserved),
        cmocka_unit_test(test_second_handle),
    };
    int rc;

    loop = loop_new();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    loop_free(loop);
    return rc;
}
