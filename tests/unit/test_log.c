/* test_log.c - the rate limit of lines a peer can cause (log_rate_ok): the
 * first event is logged, the others of its period are counted quietly and
 * the count comes with the next line; from several threads at once, one
 * line per period and nothing lost from the count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>

#include "core/log.h"

static void
test_periods(void **state)
{
    struct log_rate r = {0};
    unsigned long quiet = 99;
    (void)state;

    assert_true(log_rate_ok(&r, 0, 1000, &quiet)); /* time 0 is a time like any other */
    assert_int_equal(quiet, 0);
    assert_false(log_rate_ok(&r, 10, 1000, &quiet));
    assert_false(log_rate_ok(&r, 999, 1000, &quiet));
    assert_true(log_rate_ok(&r, 1000, 1000, &quiet));
    assert_int_equal(quiet, 2);
    assert_false(log_rate_ok(&r, 1500, 1000, &quiet));
    assert_true(log_rate_ok(&r, 5000, 1000, &quiet));
    assert_int_equal(quiet, 1);
}

#define THREADS 4
#define EVENTS 10000

static struct log_rate shared;
static atomic_ulong logged, quiet_sum;

static void *
storm(void *arg)
{
    unsigned long quiet;
    (void)arg;

    for (int i = 0; i < EVENTS; i++)
        if (log_rate_ok(&shared, 42, 1000, &quiet)) {
            atomic_fetch_add(&logged, 1);
            atomic_fetch_add(&quiet_sum, quiet);
        }
    return NULL;
}

static void
test_threads(void **state)
{
    pthread_t t[THREADS];
    unsigned long quiet;
    (void)state;

    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, storm, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&logged), 1); /* one period, one line */
    assert_true(log_rate_ok(&shared, 2000, 1000, &quiet));
    assert_int_equal(quiet + atomic_load(&quiet_sum), THREADS * EVENTS - 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_periods),
        cmocka_unit_test(test_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
