/* test_closest.c - unit tests for "did you mean" (core/closest.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "core/closest.h"

static size_t
dist(const char *a, const char *b)
{
    return closest_distance(a, strlen(a), b, strlen(b));
}

static void
test_distance(void **state)
{
    (void)state;
    assert_int_equal(dist("check", "check"), 0);
    assert_int_equal(dist("CHECK", "check"), 0);  /* case-insensitive */
    assert_int_equal(dist("chek", "check"), 1);   /* deletion */
    assert_int_equal(dist("checkk", "check"), 1); /* insertion */
    assert_int_equal(dist("chack", "check"), 1);  /* substitution */
    assert_int_equal(dist("rleay", "relay"), 1);  /* adjacent swap */
    assert_int_equal(dist("", "ctl"), 3);
    assert_int_equal(dist("xyzzyq", "check"), 6);
    char longer[CLOSEST_MAX + 2];
    memset(longer, 'a', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    assert_true(dist(longer, "a") == SIZE_MAX); /* never compared */
    assert_true(dist("a", longer) == SIZE_MAX);
}

static void
test_word(void **state)
{
    (void)state;
    static const char *const w[] = {"relay", "router", "run", "check", "ctl", "version"};
    size_t n = sizeof(w) / sizeof(w[0]);

    assert_string_equal(closest_word("chek", 4, w, n), "check");
    assert_string_equal(closest_word("rn", 2, w, n), "run");
    assert_string_equal(closest_word("versoin", 7, w, n), "version");
    assert_string_equal(closest_word("routre", 6, w, n), "router"); /* two edits, long word */
    assert_null(closest_word("chkc", 4, w, n));                     /* two edits, short word */
    assert_null(closest_word("xyzzyq", 6, w, n));
    assert_null(closest_word("", 0, w, n));
    assert_null(closest_word("chek", 4, w, 0));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distance),
        cmocka_unit_test(test_word),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
