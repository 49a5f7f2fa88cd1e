/* test_route.c - route names and matching: exact, *.suffix (longest
 * first), default, no SNI. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "router/route.h"

static void
add(struct route_table *t, const char *name, const char *target)
{
    const char *why = NULL;
    struct route r;

    assert_int_equal(route_name_parse(name, r.name, &why), PARSE_OK);
    assert_int_equal(endpoint_parse(target, &r.target, &why), PARSE_OK);
    assert_int_equal(route_table_add(t, &r), 0);
}

/* Returns the target's text, "dir:KEY" or "none". */
static const char *
match(const struct route_table *t, const char *host)
{
    static char buf[ENDPOINT_TEXT_MAX];
    const struct endpoint *ep = NULL;
    char key[DIR_KEY_MAX];

    switch (route_pick(t, host, &ep, key)) {
    case ROUTE_NONE:
        return "none";
    case ROUTE_DIRECTORY:
        snprintf(buf, sizeof(buf), "dir:%s", key);
        return buf;
    case ROUTE_TARGET:
        break;
    }
    endpoint_format(ep, buf, sizeof(buf));
    return buf;
}

static void
test_names(void **state)
{
    char out[TLS_HOST_MAX + 1];
    const char *why = NULL;
    char long_name[300];
    (void)state;

    assert_int_equal(route_name_parse("Web.Example.COM", out, &why), PARSE_OK);
    assert_string_equal(out, "web.example.com");
    assert_int_equal(route_name_parse("*.Grid.example", out, &why), PARSE_OK);
    assert_string_equal(out, "*.grid.example");
    const char *bad[] = {"", "*.", "*", "a..b", "-a.b", "a_b.c", "a.b.", "*.*.a", "a.*.b", "a b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        if (route_name_parse(bad[i], out, &why) != PARSE_INVALID)
            fail_msg("'%s' accepted", bad[i]);
        assert_non_null(why);
    }
    /* 253 bytes with "*." in front: too long in all */
    memset(long_name, 'a', sizeof(long_name));
    for (size_t i = 63; i < 253; i += 64)
        long_name[i] = '.';
    memcpy(long_name, "*.", 2);
    long_name[255] = '\0';
    assert_int_equal(route_name_parse(long_name, out, &why), PARSE_INVALID);
    long_name[253] = '\0';
    assert_int_equal(route_name_parse(long_name, out, &why), PARSE_OK);
}

static void
test_match(void **state)
{
    static struct route_table t;
    (void)state;

    add(&t, "*.example.com", "tcp:127.0.0.1:1");
    add(&t, "www.example.com", "tcp:127.0.0.1:2");
    add(&t, "*.eu.example.com", "tcp:127.0.0.1:3");
    add(&t, "example.org", "unix:/run/org.sock");

    assert_string_equal(match(&t, "www.example.com"), "tcp:127.0.0.1:2");
    assert_string_equal(match(&t, "api.example.com"), "tcp:127.0.0.1:1");
    assert_string_equal(match(&t, "a.b.example.com"), "tcp:127.0.0.1:1");
    assert_string_equal(match(&t, "x.eu.example.com"), "tcp:127.0.0.1:3");
    assert_string_equal(match(&t, "eu.example.com"), "tcp:127.0.0.1:1");
    assert_string_equal(match(&t, "example.com"), "none");
    assert_string_equal(match(&t, "badexample.com"), "none");
    assert_string_equal(match(&t, "example.org"), "unix:/run/org.sock");
    assert_string_equal(match(&t, "www.example.org"), "none");
    assert_string_equal(match(&t, NULL), "none");

    assert_int_equal(endpoint_parse("tcp:127.0.0.1:9", &t.def, &(const char *){NULL}), PARSE_OK);
    t.has_default = true;
    assert_string_equal(match(&t, "example.com"), "tcp:127.0.0.1:9");
    assert_string_equal(match(&t, NULL), "tcp:127.0.0.1:9");
    assert_string_equal(match(&t, "www.example.com"), "tcp:127.0.0.1:2");
}

static void
test_directory(void **state)
{
    static struct route_table t;
    (void)state;

    add(&t, "admin.grid.example", "tcp:127.0.0.1:1");
    add(&t, "*.static.grid.example", "tcp:127.0.0.1:2");
    snprintf(t.directory, sizeof(t.directory), "grid");
    snprintf(t.domain, sizeof(t.domain), "grid.example");

    /* static routes first, then <key>.<domain>, nothing else */
    assert_string_equal(match(&t, "admin.grid.example"), "tcp:127.0.0.1:1");
    assert_string_equal(match(&t, "x.static.grid.example"), "tcp:127.0.0.1:2");
    assert_string_equal(match(&t, "alice.grid.example"), "dir:alice");
    assert_string_equal(match(&t, "bob-2.grid.example"), "dir:bob-2");
    assert_string_equal(match(&t, "a.b.grid.example"), "none");
    assert_string_equal(match(&t, "grid.example"), "none");
    assert_string_equal(match(&t, "alice.grid.example.org"), "none");
    assert_string_equal(match(&t, "alice.xgrid.example"), "none");
    assert_string_equal(match(&t, NULL), "none");
    /* a default takes what the directory does not */
    assert_int_equal(endpoint_parse("tcp:127.0.0.1:9", &t.def, &(const char *){NULL}), PARSE_OK);
    t.has_default = true;
    assert_string_equal(match(&t, "a.b.grid.example"), "tcp:127.0.0.1:9");
    assert_string_equal(match(&t, NULL), "tcp:127.0.0.1:9");
    /* no domain: the first label of any name with two or more */
    t.domain[0] = '\0';
    assert_string_equal(match(&t, "carol.example.org"), "dir:carol");
    assert_string_equal(match(&t, "localhost"), "tcp:127.0.0.1:9");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_directory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
