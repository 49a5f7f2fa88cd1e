/* test_rules.c - unit tests for a pool's event rules: each event, the order
 * (login, logout, ready), users that are not valid keys, no logout rule,
 * and lines right before a guard page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "guard.h"
#include "pool/rules.h"

static void
compile(struct rules *r, const char *ready, const char *login, const char *logout)
{
    struct pool_conf pc;

    memset(&pc, 0, sizeof(pc));
    strcpy(pc.ready, ready);
    strcpy(pc.login, login);
    strcpy(pc.logout, logout);
    assert_int_equal(rules_compile(r, &pc), 0);
}

static void
test_events(void **state)
{
    struct rules r;
    char user[128];
    (void)state;

    compile(&r, "^WAITING_LOGIN$", "^LOGIN (.+)$", "^LOGOUT$");
    assert_int_equal(rules_match(&r, "WAITING_LOGIN", user, sizeof(user)), RULE_READY);
    assert_int_equal(rules_match(&r, "LOGIN alice", user, sizeof(user)), RULE_LOGIN);
    assert_string_equal(user, "alice");
    assert_int_equal(rules_match(&r, "LOGIN a.b-c_d@example.org", user, sizeof(user)), RULE_LOGIN);
    assert_string_equal(user, "a.b-c_d@example.org");
    assert_int_equal(rules_match(&r, "LOGOUT", user, sizeof(user)), RULE_LOGOUT);
    assert_int_equal(rules_match(&r, "something else", user, sizeof(user)), RULE_NONE);
    assert_int_equal(rules_match(&r, "", user, sizeof(user)), RULE_NONE);
    rules_free(&r);
    rules_free(&r); /* twice is harmless */
}

static void
test_bad_users(void **state)
{
    struct rules r;
    char user[8];
    (void)state;

    compile(&r, "^READY$", "^LOGIN (.*)$", "^LOGOUT$");
    static const char *const bad[] = {
        "LOGIN ",         /* empty */
        "LOGIN -rf",      /* an option to a hook */
        "LOGIN .hidden",  /* a dot file */
        "LOGIN a/b",      /* a path */
        "LOGIN a b",      /* spaces */
        "LOGIN a\"b",     /* quotes */
        "LOGIN 12345678", /* longer than the buffer (8 incl. NUL) */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(rules_match(&r, bad[i], user, sizeof(user)), RULE_BAD_LOGIN);
    assert_int_equal(rules_match(&r, "LOGIN 1234567", user, sizeof(user)), RULE_LOGIN);
    assert_string_equal(user, "1234567");
    rules_free(&r);

    /* a group that does not take part in the match */
    compile(&r, "^READY$", "^LOGIN( x)?$", "");
    assert_int_equal(rules_match(&r, "LOGIN", user, sizeof(user)), RULE_BAD_LOGIN);
    rules_free(&r);
}

static void
test_no_logout(void **state)
{
    struct rules r;
    char user[64];
    (void)state;

    compile(&r, "ready", "^LOGIN (.+)$", "");
    assert_int_equal(rules_match(&r, "LOGOUT", user, sizeof(user)), RULE_NONE);
    /* login is tried first: a line matching both is a login */
    assert_int_equal(rules_match(&r, "LOGIN ready", user, sizeof(user)), RULE_LOGIN);
    assert_string_equal(user, "ready");
    rules_free(&r);
}

static void
test_invalid(void **state)
{
    struct rules r;
    struct pool_conf pc;
    (void)state;

    memset(&pc, 0, sizeof(pc));
    strcpy(pc.ready, "(");
    strcpy(pc.login, "(.+)");
    assert_int_not_equal(rules_compile(&r, &pc), 0);
    strcpy(pc.ready, "x");
    strcpy(pc.logout, "[");
    assert_int_not_equal(rules_compile(&r, &pc), 0);
    rules_free(&r); /* owns nothing after a failure */
}

/* Every prefix of a line, NUL-terminated right before a guard page. */
static void
test_prefixes(void **state)
{
    const char *line = "LOGIN alice";
    struct rules r;
    struct guard g;
    char user[64];
    (void)state;

    compile(&r, "^WAITING_LOGIN$", "^LOGIN (.+)$", "^LOGOUT$");
    for (size_t n = 0; n <= strlen(line); n++) {
        char *s = (char *)guard_copy(&g, line, n + 1);
        s[n] = '\0';
        enum rule_event e = rules_match(&r, s, user, sizeof(user));
        assert_int_equal(e, n > strlen("LOGIN ") ? RULE_LOGIN : RULE_NONE);
        guard_free(&g);
    }
    rules_free(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events),    cmocka_unit_test(test_bad_users),
        cmocka_unit_test(test_no_logout), cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
