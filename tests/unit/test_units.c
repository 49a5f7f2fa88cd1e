/* test_units.c - unit tests for the values of settings (core/units.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "core/units.h"

static void
test_uint(void **state)
{
    (void)state;
    uint64_t v = 7;

    assert_int_equal(units_uint("0", 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(units_uint("010", 10, &v), 0);
    assert_int_equal(v, 10);
    v = 7;
    static const char *const bad[] = {
        "", "11", "-1", "+1", " 1", "1 ", "0x1", "1e1", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(units_uint(bad[i], 10, &v), -EINVAL);
    assert_int_equal(units_uint(NULL, 10, &v), -EINVAL);
    assert_int_equal(v, 7);
    assert_int_equal(units_uint("18446744073709551615", UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
}

static void
test_duration_size(void **state)
{
    (void)state;
    unsigned ms = 1;
    size_t n = 1;

    assert_int_equal(units_duration("30", &ms), 0);
    assert_int_equal(ms, 30000);
    assert_int_equal(units_duration("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(units_duration("2m", &ms), 0);
    assert_int_equal(ms, 120000);
    assert_int_equal(units_duration("1193h", &ms), 0);
    assert_int_equal(units_duration("1194h", &ms), -EINVAL);
    assert_int_equal(units_duration("1h30m", &ms), -EINVAL);
    assert_int_equal(units_duration(NULL, &ms), -EINVAL);
    assert_int_equal(units_size("4096", &n), 0);
    assert_int_equal(n, 4096);
    assert_int_equal(units_size("16KiB", &n), 0);
    assert_int_equal(n, 16384);
    assert_int_equal(units_size("1025GiB", &n), -EINVAL);
    assert_int_equal(units_size("1KB", &n), -EINVAL);
    assert_int_equal(n, 16384);
}

static void
test_fixed(void **state)
{
    (void)state;
    uint64_t v = 7;

    assert_int_equal(units_fixed("0.5", 2, 102400, &v), 0);
    assert_int_equal(v, 50);
    assert_int_equal(units_fixed("2", 2, 102400, &v), 0);
    assert_int_equal(v, 200);
    assert_int_equal(units_fixed("1.25", 2, 102400, &v), 0);
    assert_int_equal(v, 125);
    assert_int_equal(units_fixed("0.01", 2, 102400, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(units_fixed("1024", 2, 102400, &v), 0);
    assert_int_equal(v, 102400);
    v = 7;
    const char *bad[] = {"",    ".5", "1.", "0.001", "1024.01", "1025", "-1",  "+1",
                         "1e2", " 1", "1 ", "1.2.3", "0x1",     "1,5",  "1.-5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(units_fixed(bad[i], 2, 102400, &v), -EINVAL);
    assert_int_equal(units_fixed(NULL, 2, 102400, &v), -EINVAL);
    assert_int_equal(v, 7);
}

static void
test_mode_range(void **state)
{
    (void)state;
    unsigned mode = 7, a = 1, b = 2;

    assert_int_equal(units_mode("0660", &mode), 0);
    assert_int_equal(mode, 0660);
    assert_int_equal(units_mode("1000", &mode), -EINVAL);
    assert_int_equal(units_mode("0", &mode), -EINVAL);
    assert_int_equal(units_mode("8", &mode), -EINVAL);
    assert_int_equal(mode, 0660);
    assert_int_equal(units_range("20000-20999", 65535, &a, &b), 0);
    assert_int_equal(a, 20000);
    assert_int_equal(b, 20999);
    static const char *const bad[] = {"",
                                      "5",
                                      "-5",
                                      "5-",
                                      "0-5",
                                      "6-5",
                                      "1-65536",
                                      "1--2",
                                      "1-2-3",
                                      " 1-2",
                                      "12345678901234567-2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(units_range(bad[i], 65535, &a, &b), -EINVAL);
    assert_int_equal(a, 20000);
}

static void
test_names(void **state)
{
    (void)state;
    char long_name[80], long_key[UNITS_KEY_MAX + 1];

    assert_int_equal(units_name("web-1_a.b", 64), 0);
    assert_int_equal(units_name("-x", 64), 0);
    assert_int_equal(units_name("", 64), -EINVAL);
    assert_int_equal(units_name("a\"b", 64), -EINVAL);
    assert_int_equal(units_name("a b", 64), -EINVAL);
    assert_int_equal(units_name("a{b}", 64), -EINVAL);
    memset(long_name, 'a', sizeof(long_name));
    long_name[63] = '\0';
    assert_int_equal(units_name(long_name, 64), 0);
    long_name[63] = 'a';
    long_name[64] = '\0';
    assert_int_equal(units_name(long_name, 64), -EINVAL);
    assert_int_equal(units_account("www-data"), 0);
    assert_int_equal(units_account("1000"), 0);
    assert_int_equal(units_account("-x"), -EINVAL);
    assert_int_equal(units_account("a:b"), -EINVAL);
    /* keys: a login's user, a directory's key */
    assert_int_equal(units_key("dave@example.org_1-2"), 0);
    assert_int_equal(units_key(""), -EINVAL);
    assert_int_equal(units_key("-x"), -EINVAL);
    assert_int_equal(units_key(".x"), -EINVAL);
    assert_int_equal(units_key("a b"), -EINVAL);
    assert_int_equal(units_key("a=b"), -EINVAL);
    assert_int_equal(units_key("a\nb"), -EINVAL);
    memset(long_key, 'k', sizeof(long_key));
    long_key[UNITS_KEY_MAX - 1] = '\0';
    assert_int_equal(units_key(long_key), 0);
    long_key[UNITS_KEY_MAX - 1] = 'k';
    long_key[UNITS_KEY_MAX] = '\0';
    assert_int_equal(units_key(long_key), -EINVAL);
}

static void
test_hex(void **state)
{
    uint8_t b[4] = {0};
    size_t n = 99;

    (void)state;
    assert_int_equal(units_hex("00aBfF", b, sizeof(b), &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(b[0], 0x00);
    assert_int_equal(b[1], 0xab);
    assert_int_equal(b[2], 0xff);
    assert_int_equal(units_hex("", b, sizeof(b), &n), 0);
    assert_int_equal(n, 0);
    const char *bad[] = {"abc", "0x12", "g0", " 12", "12 ", "+1", "0011223344"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(units_hex(bad[i], b, sizeof(b), &n), -EINVAL);
}

static void
test_fault(void **state)
{
    (void)state;
    struct conf_fault f;

    assert_int_equal(conf_fault(&f, "max", "expected at most %u", 3u), -1);
    assert_string_equal(f.key, "max");
    assert_true(f.item == CONF_NO_ITEM);
    assert_false(f.at_block);
    assert_string_equal(f.msg, "expected at most 3");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uint),  cmocka_unit_test(test_duration_size),
        cmocka_unit_test(test_fixed), cmocka_unit_test(test_mode_range),
        cmocka_unit_test(test_names), cmocka_unit_test(test_fault),
        cmocka_unit_test(test_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
