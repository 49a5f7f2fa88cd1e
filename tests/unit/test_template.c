/* test_template.c - unit tests for pool templates: every placeholder, the
 * allowed mask, unknown placeholders, an output buffer of every size (too
 * small must fail cleanly, never overflow), templates right before a guard
 * page; names matched against templates (tmpl_match()). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "guard.h"
#include "pool/template.h"

static const struct tmpl_vars vars = {.port = "20001",
                                      .dir = "/srv/p/p-1",
                                      .instance = "p-1",
                                      .user = "alice",
                                      .uid = "61000",
                                      .gid = "61001"};

static void
test_expand(void **state)
{
    char out[256];
    const char *why = NULL;
    (void)state;

    assert_int_equal(tmpl_expand("--port={port}", &vars, out, sizeof(out), &why), 0);
    assert_string_equal(out, "--port=20001");
    assert_int_equal(tmpl_expand("{dir}/{user}.db", &vars, out, sizeof(out), &why), 0);
    assert_string_equal(out, "/srv/p/p-1/alice.db");
    assert_int_equal(tmpl_expand("{instance}{instance}", &vars, out, sizeof(out), &why), 0);
    assert_string_equal(out, "p-1p-1");
    assert_int_equal(tmpl_expand("{uid}:{gid}", &vars, out, sizeof(out), &why), 0);
    assert_string_equal(out, "61000:61001");
    assert_int_equal(tmpl_expand("plain", &vars, out, sizeof(out), &why), 0);
    assert_string_equal(out, "plain");
    assert_int_equal(tmpl_expand("", &vars, out, sizeof(out), &why), 0);
    assert_string_equal(out, "");
}

static void
test_invalid(void **state)
{
    char out[64];
    const char *why = NULL;
    struct tmpl_vars no_user = vars;
    (void)state;

    no_user.user = NULL;
    assert_int_equal(tmpl_expand("{nope}", &vars, out, sizeof(out), &why), -EINVAL);
    assert_non_null(why);
    assert_int_equal(tmpl_expand("{port", &vars, out, sizeof(out), &why), -EINVAL);
    assert_int_equal(tmpl_expand("a{", &vars, out, sizeof(out), &why), -EINVAL);
    assert_int_equal(tmpl_expand("{user}", &no_user, out, sizeof(out), &why), -EINVAL);
    assert_int_equal(tmpl_check("{user}", TMPL_PORT | TMPL_DIR | TMPL_INSTANCE, &why), -EINVAL);
    assert_int_equal(tmpl_check("{user}{port}", TMPL_PORT | TMPL_USER, &why), 0);
    assert_int_equal(tmpl_check("{dir}", TMPL_PORT, &why), -EINVAL);
    assert_int_equal(tmpl_check("{uid}", TMPL_PORT | TMPL_DIR | TMPL_INSTANCE, &why), -EINVAL);
    assert_string_equal(why, "{uid} and {gid} are known to commands and hooks only");
    assert_int_equal(tmpl_check("{gid}{uid}", TMPL_UID | TMPL_GID, &why), 0);
    assert_int_equal(tmpl_uses("x{port}y{dir}"), TMPL_PORT | TMPL_DIR);
    assert_int_equal(tmpl_uses("{gid}"), TMPL_GID);
    assert_int_equal(tmpl_uses("none"), 0);
}

/* Every output size: too small fails with -ENAMETOOLONG and a terminated
 * buffer, big enough gives the whole text. */
static void
test_sizes(void **state)
{
    const char *tmpl = "--dir={dir}/{user}";
    const char *want = "--dir=/srv/p/p-1/alice";
    char out[64];
    const char *why = NULL;
    (void)state;

    for (size_t n = 0; n < sizeof(out); n++) {
        memset(out, 'Z', sizeof(out));
        int rc = tmpl_expand(tmpl, &vars, out, n, &why);
        if (n > strlen(want)) {
            assert_int_equal(rc, 0);
            assert_string_equal(out, want);
        } else {
            assert_int_equal(rc, -ENAMETOOLONG);
            assert_int_equal(out[n], 'Z'); /* nothing written past the buffer */
        }
    }
}

/* Every prefix of a template, placed right before a guard page. */
static void
test_prefixes(void **state)
{
    const char *tmpl = "{port}:{dir}:{instance}:{user}";
    char out[256];
    const char *why = NULL;
    struct guard g;
    (void)state;

    for (size_t n = 0; n <= strlen(tmpl); n++) {
        char *s = (char *)guard_copy(&g, tmpl, n + 1);
        s[n] = '\0';
        int rc = tmpl_expand(s, &vars, out, sizeof(out), &why);
        /* a prefix that ends inside a placeholder is invalid */
        const char *open = strrchr(s, '{');
        int inside = open != NULL && strchr(open, '}') == NULL;
        assert_int_equal(rc, inside ? -EINVAL : 0);
        guard_free(&g);
    }
}

/* Names against the shapes of state files: each placeholder stands for one
 * character or more; both strings right before a guard page. */
static void
test_match(void **state)
{
    static const struct {
        const char *tmpl, *text;
        bool match;
    } cases[] = {
        {"{user}.db", "dave.db", true},       {"{user}.db", ".db", false},
        {"{user}.db", "dave.db.x", false},    {"{user}.db", "a.db.db", true},
        {"{user}.db", "dave.dc", false},      {"state-{user}", "state-x", true},
        {"state-{user}", "state-", false},    {"state-{user}", "stat-x", false},
        {"{user}-{user}.db", "a-b.db", true}, {"{user}-{user}.db", "a-.db", false},
        {"{user}{user}", "a", false},         {"{user}{user}", "ab", true},
        {"fixed.db", "fixed.db", true},       {"fixed.db", "fixed.dbx", false},
        {"fixed.db", "fixed.d", false},       {"{usr}.db", "{usr}.db", true},
    };
    struct guard gt, gx;
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *t = (const char *)guard_copy(&gt, cases[i].tmpl, strlen(cases[i].tmpl) + 1);
        const char *x = (const char *)guard_copy(&gx, cases[i].text, strlen(cases[i].text) + 1);
        if (tmpl_match(t, x) != cases[i].match)
            fail_msg("'%s' against '%s': expected %d", cases[i].text, cases[i].tmpl,
                     cases[i].match);
        guard_free(&gx);
        guard_free(&gt);
    }
    /* many placeholders against a long name that misses at its end: no
     * exponential backtracking (this would not finish) */
    char tmpl[512] = "", text[256];
    for (int i = 0; i < 80; i++)
        strcat(tmpl, "{user}");
    strcat(tmpl, "b");
    memset(text, 'a', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    assert_false(tmpl_match(tmpl, text));
    text[sizeof(text) - 2] = 'b';
    assert_true(tmpl_match(tmpl, text));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expand), cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_sizes),  cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
