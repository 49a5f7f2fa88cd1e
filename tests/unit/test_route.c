/* test_route.c - route names and matching: exact, *.suffix (longest
 * first), near misses, default, no SNI, duplicates; the same rules in a
 * table of 50,000 routes; the table's copies and comparisons (by the
 * names' text). */
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

static void
set_default(struct route_table *t, const char *target)
{
    assert_int_equal(endpoint_parse(target, &t->def, &(const char *){NULL}), PARSE_OK);
    t->has_default = true;
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

struct pick {
    const char *host; /* NULL: no SNI */
    const char *want; /* match()'s text */
};

/* Fails unless each host of picks goes where it says. */
static void
expect_picks(const struct route_table *t, const struct pick *picks, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(match(t, picks[i].host), picks[i].want) != 0)
            fail_msg("'%s' routed to %s, expected %s", picks[i].host ? picks[i].host : "(no SNI)",
                     match(t, picks[i].host), picks[i].want);
}

#define EXPECT_PICKS(t, ...)                                                                       \
    expect_picks(t, (const struct pick[]){__VA_ARGS__},                                            \
                 sizeof((const struct pick[]){__VA_ARGS__}) / sizeof(struct pick))

static void
test_match(void **state)
{
    static struct route_table t;
    (void)state;

    add(&t, "*.example.com", "tcp:127.0.0.1:1");
    add(&t, "www.example.com", "tcp:127.0.0.1:2");
    add(&t, "*.eu.example.com", "tcp:127.0.0.1:3");
    add(&t, "example.org", "unix:/run/org.sock");
    add(&t, "*.example.net", "tcp:127.0.0.1:4");
    add(&t, "*.a.example.net", "tcp:127.0.0.1:5");
    add(&t, "Mixed.Example.ORG", "tcp:127.0.0.1:6");

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
    EXPECT_PICKS(&t,
                 /* a byte, a label or a dot away from a name: not its route */
                 {"xample.org", "none"}, {"eexample.org", "none"}, {"example.or", "none"},
                 {"example.orgg", "none"}, {"example.org.x", "none"}, {"www.example.net.x", "none"},
                 {"example.net", "none"}, {".example.net", "none"}, {"xexample.net", "none"},
                 {"a.example.netx", "none"}, {".example.com", "none"}, {"", "none"},
                 {"*.example.org", "none"}, {"mixed.example.or", "none"},
                 {"x.www.example.com", "tcp:127.0.0.1:1"},
                 /* names are kept lowercase; hosts come lowercase */
                 {"mixed.example.org", "tcp:127.0.0.1:6"}, {"Mixed.Example.ORG", "none"},
                 /* a wildcard's own text as a host: the suffix rule, never an exact name */
                 {"*.example.net", "tcp:127.0.0.1:4"}, {"*.a.example.net", "tcp:127.0.0.1:5"},
                 {"a.example.net", "tcp:127.0.0.1:4"}, {"..a.example.net", "tcp:127.0.0.1:5"},
                 {"x.y.a.example.net", "tcp:127.0.0.1:5"});

    set_default(&t, "tcp:127.0.0.1:9");
    assert_string_equal(match(&t, "example.com"), "tcp:127.0.0.1:9");
    assert_string_equal(match(&t, NULL), "tcp:127.0.0.1:9");
    assert_string_equal(match(&t, "www.example.com"), "tcp:127.0.0.1:2");
    /* freed (twice: harmless), the routes are gone, the default stays */
    route_table_free(&t);
    route_table_free(&t);
    EXPECT_PICKS(&t, {"www.example.com", "tcp:127.0.0.1:9"});
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
    set_default(&t, "tcp:127.0.0.1:9");
    assert_string_equal(match(&t, "a.b.grid.example"), "tcp:127.0.0.1:9");
    assert_string_equal(match(&t, NULL), "tcp:127.0.0.1:9");
    /* no domain: the first label of any name with two or more */
    t.domain[0] = '\0';
    assert_string_equal(match(&t, "carol.example.org"), "dir:carol");
    assert_string_equal(match(&t, "localhost"), "tcp:127.0.0.1:9");
}

/* The first of two routes with one name is the one picked, as when the
 * table was scanned in order (the config refuses such a pair; the table
 * itself does not). */
static void
test_duplicates(void **state)
{
    static struct route_table t;
    (void)state;

    for (int i = 1; i <= 40; i++) {
        add(&t, "twice.example", "tcp:127.0.0.1:1");
        add(&t, "*.twice.example", "tcp:127.0.0.1:2");
        t.routes[t.n - 2].target.port = (uint32_t)i;
        t.routes[t.n - 1].target.port = (uint32_t)(100 + i);
        /* more routes between them, so that the table grows meanwhile */
        char name[64];
        snprintf(name, sizeof(name), "other%d.example", i);
        add(&t, name, "tcp:127.0.0.1:3");
    }
    assert_string_equal(match(&t, "twice.example"), "tcp:127.0.0.1:1");
    assert_string_equal(match(&t, "a.twice.example"), "tcp:127.0.0.1:101");
    assert_string_equal(match(&t, "other40.example"), "tcp:127.0.0.1:3");
    route_table_free(&t);
}

#define MANY 50000

/* The name of generated route i: exact names of one to three labels
 * below a few domains, and a wildcard every 10th. */
static void
many_name(char *out, size_t len, int i)
{
    switch (i % 10) {
    case 0:
        snprintf(out, len, "*.w%d.example", i);
        break;
    case 1:
    case 2:
    case 3:
        snprintf(out, len, "user%d.grid.example", i);
        break;
    case 4:
    case 5:
        snprintf(out, len, "s%d.eu.region%d.example.com", i, i % 7);
        break;
    default:
        snprintf(out, len, "h%d-x%d.example.org", i, i * 7919 % 100003);
        break;
    }
}

/* Whether host goes to route r itself (the target points into the table). */
static bool
picks(const struct route_table *t, const char *host, const struct route *r)
{
    const struct endpoint *ep = NULL;
    char key[DIR_KEY_MAX];

    return route_pick(t, host, &ep, key) == ROUTE_TARGET && ep == &r->target;
}

/* 50,000 routes: each name finds its own route, hosts one or two labels
 * under each wildcard find it, names near the members find nothing, and
 * the precedence rules hold the same way with many routes around them,
 * whatever the order they came in. */
static void
test_many(void **state)
{
    static struct route_table t;
    char name[TLS_HOST_MAX + 1], host[2 * TLS_HOST_MAX];
    (void)state;

    /* the precedence pairs: a wildcard before its exact name, and after */
    add(&t, "*.mix.example", "tcp:127.0.0.1:1");
    add(&t, "*.deep.mix.example", "tcp:127.0.0.1:2");
    for (int i = 0; i < MANY; i++) {
        many_name(name, sizeof(name), i);
        add(&t, name, "tcp:127.0.0.1:3");
        t.routes[t.n - 1].target.port = (uint32_t)(1 + i % 65535);
    }
    add(&t, "a.deep.mix.example", "tcp:127.0.0.1:4");
    add(&t, "*.b.deep.mix.example", "tcp:127.0.0.1:5");
    add(&t, "mix.example", "tcp:127.0.0.1:6");
    assert_int_equal(t.n, MANY + 5);

    for (int i = 0; i < MANY; i++) {
        const struct route *want = &t.routes[2 + i];
        bool found;
        many_name(name, sizeof(name), i);
        if (name[0] == '*') {
            snprintf(host, sizeof(host), "h%d%s", i, name + 1);
            found = picks(&t, host, want);
            snprintf(host, sizeof(host), "a.b%s", name + 1);
            found = found && picks(&t, host, want);
            snprintf(host, sizeof(host), "%s", name + 2); /* no label before: not taken */
        } else {
            found = picks(&t, name, want);
            snprintf(host, sizeof(host), "x.%s", name); /* a label more: not this route */
        }
        if (!found)
            fail_msg("route %d (%s) not found", 2 + i, want->name);
        EXPECT_PICKS(&t, {host, "none"});
    }
    EXPECT_PICKS(&t, {"user100001.grid.example", "none"}, {"user0.grid.example", "none"},
                 {"w10.example", "none"}, {"s4.eu.region4.example.com.", "none"},
                 {"user11.grid.example.org", "none"}, {"user11.grid.exampl", "none"},
                 {"ser11.grid.example", "none"}, {"h6-x47515.example.org", "none"},
                 /* exact before wildcard, longest wildcard first, either order of adding */
                 {"a.deep.mix.example", "tcp:127.0.0.1:4"},
                 {"c.deep.mix.example", "tcp:127.0.0.1:2"},
                 {"c.b.deep.mix.example", "tcp:127.0.0.1:5"},
                 {"b.deep.mix.example", "tcp:127.0.0.1:2"}, {"deep.mix.example", "tcp:127.0.0.1:1"},
                 {"mix.example", "tcp:127.0.0.1:6"}, {"x.a.deep.mix.example", "tcp:127.0.0.1:2"});
    /* the directory and the default come after all of them */
    snprintf(t.directory, sizeof(t.directory), "grid");
    snprintf(t.domain, sizeof(t.domain), "grid.example");
    EXPECT_PICKS(&t, {"user11.grid.example", "tcp:127.0.0.1:12"},
                 {"user10.grid.example", "dir:user10"}, {"a.mix.example", "tcp:127.0.0.1:1"},
                 {"other.example", "none"});
    set_default(&t, "tcp:127.0.0.1:9");
    EXPECT_PICKS(&t, {"other.example", "tcp:127.0.0.1:9"}, {NULL, "tcp:127.0.0.1:9"},
                 {"user11.grid.example", "tcp:127.0.0.1:12"});
    route_table_free(&t);
}

/* A relay's copy of a big table: equal to its original, and still
 * routing after the original is gone (a copy shares nothing). */
static void
test_own(void **state)
{
    struct route_table a = {0}, b = {0}, c;
    char name[TLS_HOST_MAX + 1];
    (void)state;

    for (int i = 0; i < 3000; i++) {
        many_name(name, sizeof(name), i);
        add(&a, name, "tcp:127.0.0.1:1");
        add(&b, name, "tcp:127.0.0.1:1");
    }
    assert_true(route_table_equal(&a, &b));
    c = a;
    assert_int_equal(route_table_own(&c), 0);
    assert_true(route_table_equal(&a, &c));
    route_table_free(&a);
    assert_string_equal(match(&c, "user2991.grid.example"), "tcp:127.0.0.1:1");
    assert_string_equal(match(&c, "x.w2990.example"), "tcp:127.0.0.1:1");
    assert_string_equal(match(&c, "user2990.grid.example"), "none");
    /* a route more, or another target: not equal */
    add(&c, "more.example", "tcp:127.0.0.1:1");
    assert_false(route_table_equal(&b, &c));
    route_table_free(&c);
    c = b;
    assert_int_equal(route_table_own(&c), 0);
    c.routes[1234].target.port = 2;
    assert_false(route_table_equal(&b, &c));
    route_table_free(&b);
    route_table_free(&c);
    /* an empty table's copy: empty */
    c = b;
    assert_int_equal(route_table_own(&c), 0);
    assert_int_equal(c.n, 0);
    assert_string_equal(match(&c, "user1.grid.example"), "none");
}

/* Tables whose names were written into buffers of different garbage (a
 * route on the stack, a domain set twice) compare by the text alone. */
static void
test_equal_text(void **state)
{
    struct route_table t[2] = {{0}, {0}};
    const char *why = NULL;
    struct route r;
    (void)state;

    for (int i = 0; i < 2; i++) {
        memset(&r, i == 0 ? 0xa5 : 0x5a, sizeof(r));
        assert_int_equal(route_name_parse("a.example", r.name, &why), PARSE_OK);
        assert_int_equal(endpoint_parse("tcp:127.0.0.1:1", &r.target, &why), PARSE_OK);
        assert_int_equal(route_table_add(&t[i], &r), 0);
        assert_int_equal(
            route_name_parse(i == 0 ? "longer.example" : "x.example", t[i].domain, &why), PARSE_OK);
        assert_int_equal(route_name_parse("grid.example", t[i].domain, &why), PARSE_OK);
    }
    assert_true(route_table_equal(&t[0], &t[1]));
    t[1].routes[0].name[0] = 'b';
    assert_false(route_table_equal(&t[0], &t[1]));
    route_table_free(&t[0]);
    route_table_free(&t[1]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),      cmocka_unit_test(test_match),
        cmocka_unit_test(test_directory),  cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_many),       cmocka_unit_test(test_own),
        cmocka_unit_test(test_equal_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
