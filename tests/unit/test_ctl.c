/* test_ctl.c - unit tests for the control command parser: each command
 * parses whole and every prefix of it asks for more; arguments are sliced
 * right; wrong verbs, arguments, names and over-long lines are refused with
 * a message. Every parse reads its input right before a guard page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guard.h"
#include "proto/ctl.h"

static char key[CTL_KEY_MAX + 1]; /* the last parse's key */

static enum parse_result
parse_guarded(const char *s, size_t n, struct ctl_cmd *cmd, size_t *used, char *pool, char *name)
{
    struct guard g;
    const char *p = (const char *)guard_copy(&g, s, n), *why = NULL;
    enum parse_result r = ctl_parse(p, n, cmd, used, &why);

    pool[0] = name[0] = key[0] = '\0';
    if (r == PARSE_OK && cmd->key != NULL)
        snprintf(key, sizeof(key), "%.*s", (int)cmd->key_len, cmd->key);
    if (r == PARSE_OK && cmd->pool != NULL)
        snprintf(pool, 64, "%.*s", (int)cmd->pool_len, cmd->pool);
    if (r == PARSE_OK && cmd->name != NULL)
        snprintf(name, 64, "%.*s", (int)cmd->name_len, cmd->name);
    if (r == PARSE_INVALID)
        assert_non_null(why);
    guard_free(&g);
    return r;
}

/* Parses s whole (every shorter prefix must be AGAIN); returns the command. */
static struct ctl_cmd
must_parse(const char *s, char *pool, char *name)
{
    struct ctl_cmd cmd;
    size_t used = 0, n = strlen(s);

    for (size_t i = 0; i < n; i++)
        assert_int_equal(parse_guarded(s, i, &cmd, &used, pool, name), PARSE_AGAIN);
    assert_int_equal(parse_guarded(s, n, &cmd, &used, pool, name), PARSE_OK);
    assert_int_equal(used, n);
    return cmd;
}

static void
refused(const char *s)
{
    struct ctl_cmd cmd;
    size_t used;
    char pool[64], name[64];

    assert_int_equal(parse_guarded(s, strlen(s), &cmd, &used, pool, name), PARSE_INVALID);
}

static void
test_commands(void **state)
{
    char pool[64], name[64];
    (void)state;

    assert_int_equal(must_parse("sessions\n", pool, name).verb, CTL_SESSIONS);
    assert_int_equal(must_parse("instances\r\n", pool, name).verb, CTL_INSTANCES);
    struct ctl_cmd c = must_parse("drain web-1\n", pool, name);
    assert_int_equal(c.verb, CTL_DRAIN);
    assert_null(c.pool);
    assert_string_equal(name, "web-1");
    c = must_parse("drain grid/i_2.x\n", pool, name);
    assert_string_equal(pool, "grid");
    assert_string_equal(name, "i_2.x");
    assert_string_equal(key, "");
    c = must_parse("assign grid alice@example.org\n", pool, name);
    assert_int_equal(c.verb, CTL_ASSIGN);
    assert_string_equal(pool, "grid");
    assert_null(c.name);
    assert_string_equal(key, "alice@example.org");
    assert_int_equal(must_parse("reload\n", pool, name).verb, CTL_RELOAD);
    assert_int_equal(must_parse("conns\n", pool, name).verb, CTL_CONNS);
    assert_int_equal(must_parse("stats\r\n", pool, name).verb, CTL_STATS);
    c = must_parse("config\n", pool, name);
    assert_int_equal(c.verb, CTL_CONFIG);
    assert_null(c.pool);
    assert_null(c.name);
    assert_null(c.key);
    for (int v = 0; v < CTL_VERB_COUNT; v++) /* the names the server logs */
        assert_string_not_equal(ctl_verb_name(v), "?");
    assert_true(ctl_needs_directory(CTL_DRAIN) && ctl_needs_directory(CTL_SESSIONS));
    assert_false(ctl_needs_directory(CTL_RELOAD) || ctl_needs_directory(CTL_CONFIG));
}

static void
test_pipelined(void **state)
{
    struct ctl_cmd cmd;
    size_t used;
    char pool[64], name[64];
    (void)state;

    /* only the first line is this command; the server ignores the rest */
    assert_int_equal(parse_guarded("sessions\ninstances\n", 19, &cmd, &used, pool, name), PARSE_OK);
    assert_int_equal(used, 9);
    assert_int_equal(cmd.verb, CTL_SESSIONS);
}

static void
test_refused(void **state)
{
    char longname[200], longline[CTL_LINE_MAX + 2], pool[64], name[64];
    (void)state;

    refused("\n");
    refused("session\n");
    refused("SESSIONS\n");
    refused("sessions now\n");
    refused("sessions \n");
    refused("reload now\n");
    refused("reload \n");
    refused("conns x\n");

    refused("stats relay\n");
    refused("config -T\n");

    refused("Reload\n");
    refused("drain\n");
    refused("drain \n");
    refused("drain  a\n");
    refused("drain a b\n");
    refused("drain a/\n");
    refused("drain /a\n");
    refused("drain a/b/c\n");
    refused("drain a;rm\n");
    refused("drain a\x01\n");
    refused("assign\n");
    refused("assign grid\n");
    refused("assign grid \n");
    refused("assign  alice\n");
    refused("assign grid alice bob\n");
    refused("assign grid/x alice\n");
    refused("assign grid -alice\n");
    refused("assign grid .alice\n");
    refused("assign grid al/ice\n");
    refused("assign grid al\x01ice\n");
    memset(longname, 'a', 64);
    snprintf(longname + 64, sizeof(longname) - 64, "\n");
    char line[300];
    snprintf(line, sizeof(line), "drain %s", longname);
    refused(line);
    snprintf(line, sizeof(line), "assign %s", longname); /* a pool name of 64 */
    refused(line);
    memset(longname, 'k', 128); /* a key of 128 */
    snprintf(longname + 128, sizeof(longname) - 128, "\n");
    snprintf(line, sizeof(line), "assign grid %s", longname);
    refused(line);
    longname[127] = '\n';
    longname[128] = '\0';
    snprintf(line, sizeof(line), "assign grid %s", longname); /* 127: fine */
    must_parse(line, pool, name);
    assert_int_equal(strlen(key), CTL_KEY_MAX);
    /* no newline within CTL_LINE_MAX bytes */
    memset(longline, 'x', sizeof(longline) - 1);
    longline[sizeof(longline) - 1] = '\0';
    refused(longline);
    memset(longline, ' ', CTL_LINE_MAX);
    longline[CTL_LINE_MAX] = '\0';
    refused(longline);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
