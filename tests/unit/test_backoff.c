/* test_backoff.c - the one doubling backoff (core/backoff.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>

#include "core/backoff.h"

/* min, doubling, capped at max; a reset starts at min again. */
static void
test_doubling(void **state)
{
    (void)state;
    struct backoff b = BACKOFF_INIT(100, 1000);
    static const unsigned want[] = {100, 200, 400, 800, 1000, 1000};

    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(backoff_next(&b), want[i]);
    backoff_reset(&b);
    assert_int_equal(b.cur_ms, 0);
    assert_int_equal(backoff_next(&b), 100);
    assert_int_equal(backoff_next(&b), 200);
}

/* A max that is not a power-of-two multiple of min is reached exactly. */
static void
test_uneven_max(void **state)
{
    (void)state;
    struct backoff b = BACKOFF_INIT(250, 600);

    assert_int_equal(backoff_next(&b), 250);
    assert_int_equal(backoff_next(&b), 500);
    assert_int_equal(backoff_next(&b), 600);
    assert_int_equal(backoff_next(&b), 600);
}

/* Bounds changed on the way (a reload) apply to the next delay; a huge max
 * never wraps the doubling around. */
static void
test_bounds_change(void **state)
{
    (void)state;
    struct backoff b = BACKOFF_INIT(100, 10000);

    assert_int_equal(backoff_next(&b), 100);
    assert_int_equal(backoff_next(&b), 200);
    b.max_ms = 150;
    assert_int_equal(backoff_next(&b), 150);
    b.min_ms = 5;
    b.max_ms = UINT_MAX;
    backoff_reset(&b);
    assert_int_equal(backoff_next(&b), 5);
    b.cur_ms = UINT_MAX / 2 + 1;
    assert_int_equal(backoff_next(&b), UINT_MAX);
    assert_int_equal(backoff_next(&b), UINT_MAX);
}

/* min above max: max wins. */
static void
test_min_above_max(void **state)
{
    (void)state;
    struct backoff b = BACKOFF_INIT(500, 300);

    assert_int_equal(backoff_next(&b), 300);
    assert_int_equal(backoff_next(&b), 300);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doubling),
        cmocka_unit_test(test_uneven_max),
        cmocka_unit_test(test_bounds_change),
        cmocka_unit_test(test_min_above_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
