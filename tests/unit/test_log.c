/* test_log.c - the rate limit of lines a peer can cause (log_rate_ok): the
 * first event is logged, the others of its period are counted quietly and
 * the count comes with the next line; from several threads at once, one
 * line per period and nothing lost from the count. The three line formats
 * (log_format_line): text as it always was, logfmt and json with msg words
 * and k=v fields apart (a colon after the fields no part of a value),
 * quoted values, escaping and invalid UTF-8; a
 * peer's text made a quoted value by log_quoted() stays one field. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

#define TS "2026-01-02T03:04:05.678Z"

/* The line of format f for msg and err, as a string. */
static const char *
fmt(enum log_format f, enum log_level lvl, const char *msg, const char *err)
{
    static char out[LOG_OUT_MAX + 1];
    size_t n = log_format_line(out, LOG_OUT_MAX, f, TS, lvl, msg, err);

    assert_true(n > 0 && n <= LOG_OUT_MAX);
    assert_int_equal(out[n - 1], '\n');
    out[n] = '\0';
    return out;
}

static void
test_text(void **state)
{
    static char msg[LOG_MSG_MAX];
    (void)state;

    assert_string_equal(fmt(LOG_FMT_TEXT, LOG_LVL_INFO, "relay=a added", NULL),
                        TS " info relay=a added\n");
    assert_string_equal(fmt(LOG_FMT_TEXT, LOG_LVL_WARN, "accept fd=3", "Too many open files"),
                        TS " warn accept fd=3: Too many open files\n");
    /* a long message is cut where it always was: 2047 bytes with the newline */
    memset(msg, 'x', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    assert_int_equal(strlen(fmt(LOG_FMT_TEXT, LOG_LVL_INFO, msg, "err")), LOG_MSG_MAX - 1);
}

static void
test_logfmt(void **state)
{
    (void)state;

    assert_string_equal(fmt(LOG_FMT_LOGFMT, LOG_LVL_INFO, "relay=a added", NULL),
                        "ts=" TS " level=info msg=added relay=a\n");
    assert_string_equal(
        fmt(LOG_FMT_LOGFMT, LOG_LVL_INFO,
            "conn closed relay=web conn=7 reason=\"peer reset\" bytes=10", NULL),
        "ts=" TS
        " level=info msg=\"conn closed\" relay=web conn=7 reason=\"peer reset\" bytes=10\n");
    assert_string_equal(fmt(LOG_FMT_LOGFMT, LOG_LVL_WARN, "accept relay=a", "Too many open files"),
                        "ts=" TS " level=warn msg=accept relay=a error=\"Too many open files\"\n");
    /* no words: an empty msg; empty values, quotes, '=' and backslashes quoted */
    assert_string_equal(fmt(LOG_FMT_LOGFMT, LOG_LVL_DEBUG, "a= b=x=y c=\\d e=\"\"", NULL),
                        "ts=" TS " level=debug msg=\"\" a=\"\" b=\"x=y\" c=\"\\\\d\" e=\"\"\n");
    /* a key named like a fixed one gets a '_', so keys stay unique */
    assert_string_equal(fmt(LOG_FMT_LOGFMT, LOG_LVL_INFO, "x msg=hi level=9", NULL),
                        "ts=" TS " level=info msg=x _msg=hi _level=9\n");
    /* the colon after a line's fields is no part of the last one */
    assert_string_equal(
        fmt(LOG_FMT_LOGFMT, LOG_LVL_INFO, "dir pool=p instance=i-2: reservation withdrawn", NULL),
        "ts=" TS " level=info msg=\"dir reservation withdrawn\" pool=p instance=i-2\n");
    assert_string_equal(fmt(LOG_FMT_JSON, LOG_LVL_WARN, "log_sink=s: write to f", "No space"),
                        "{\"ts\":\"" TS "\",\"level\":\"warn\",\"msg\":\"write to f\","
                        "\"log_sink\":\"s\",\"error\":\"No space\"}\n");
    /* control bytes and invalid UTF-8 escaped; valid UTF-8 kept */
    assert_string_equal(
        fmt(LOG_FMT_LOGFMT, LOG_LVL_INFO, "bad name=\"a\tb\x01\xff\xc3\xa9\"", NULL),
        "ts=" TS " level=info msg=bad name=\"a\\tb\\u0001\\ufffd\xc3\xa9\"\n");
}

static void
test_json(void **state)
{
    static char msg[LOG_MSG_MAX];
    (void)state;

    assert_string_equal(
        fmt(LOG_FMT_JSON, LOG_LVL_INFO, "conn closed relay=web reason=\"peer reset\"", NULL),
        "{\"ts\":\"" TS "\",\"level\":\"info\",\"msg\":\"conn closed\",\"relay\":\"web\","
        "\"reason\":\"peer reset\"}\n");
    assert_string_equal(fmt(LOG_FMT_JSON, LOG_LVL_ERROR, "bind relay=a", "Address in use"),
                        "{\"ts\":\"" TS "\",\"level\":\"error\",\"msg\":\"bind\",\"relay\":\"a\","
                        "\"error\":\"Address in use\"}\n");
    /* quotes, backslashes, control bytes, DEL; overlong, surrogate, cut
     * and stray bytes are each U+FFFD; 4-byte UTF-8 kept */
    assert_string_equal(
        fmt(LOG_FMT_JSON, LOG_LVL_INFO,
            "say\"\\ \n\r\x1f\x7f k=\"q\"x\" \xc0\xaf\xed\xa0\x80\xe2\x82 \x80 \xf0\x9f\x98\x80",
            NULL),
        "{\"ts\":\"" TS "\",\"level\":\"info\",\"msg\":\"say\\\"\\\\ \\n\\r\\u001f\\u007f "
        "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd \\ufffd \xf0\x9f\x98\x80\","
        "\"k\":\"q\\\"x\"}\n");
    /* an unclosed quote runs to the end */
    assert_string_equal(fmt(LOG_FMT_JSON, LOG_LVL_INFO, "k=\"open end", NULL),
                        "{\"ts\":\"" TS "\",\"level\":\"info\",\"msg\":\"\",\"k\":\"open end\"}\n");
    /* the longest message of bytes that each need 6 still fits whole */
    memset(msg, 0x01, sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    const char *line = fmt(LOG_FMT_JSON, LOG_LVL_INFO, msg, "err");
    assert_true(strstr(line, "\"error\":\"err\"}\n") != NULL);
    memset(msg, 'k', sizeof(msg) - 1);
    for (size_t i = 1; i + 1 < sizeof(msg) - 1; i += 3)
        msg[i] = '=', msg[i + 1] = ' ';
    line = fmt(LOG_FMT_JSON, LOG_LVL_INFO, msg, "err");
    assert_true(strstr(line, "\"error\":\"err\"}\n") != NULL);
}

/* Text a peer chose, given by log_quoted() as a quoted field's value, is
 * that one field whatever it holds: no field, line or quote of its own. */
static void
test_quoted(void **state)
{
    char q[32], msg[128];
    (void)state;

    snprintf(msg, sizeof(msg), "redis why=\"%s\" next=1",
             log_quoted(q, sizeof(q), "a level=error\nforged=1 \"b\xc3\xa9"));
    assert_string_equal(q, "a level=error?forged=1 ?b??");
    assert_string_equal(fmt(LOG_FMT_JSON, LOG_LVL_INFO, msg, NULL),
                        "{\"ts\":\"" TS "\",\"level\":\"info\",\"msg\":\"redis\","
                        "\"why\":\"a level=error?forged=1 ?b??\",\"next\":\"1\"}\n");
    /* cut to the buffer */
    assert_string_equal(log_quoted(q, 4, "abcdef"), "abc");
}

static void
test_parse(void **state)
{
    enum log_format f = LOG_FMT_TEXT;
    (void)state;

    assert_int_equal(log_format_parse("json", &f), 0);
    assert_int_equal(f, LOG_FMT_JSON);
    assert_int_equal(log_format_parse("logfmt", &f), 0);
    assert_int_equal(f, LOG_FMT_LOGFMT);
    assert_int_equal(log_format_parse("text", &f), 0);
    assert_int_equal(f, LOG_FMT_TEXT);
    assert_int_equal(log_format_parse("JSON", &f), -EINVAL);
    assert_int_equal(log_format_parse("", &f), -EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_periods), cmocka_unit_test(test_threads),
        cmocka_unit_test(test_text),    cmocka_unit_test(test_logfmt),
        cmocka_unit_test(test_json),    cmocka_unit_test(test_quoted),
        cmocka_unit_test(test_parse),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
