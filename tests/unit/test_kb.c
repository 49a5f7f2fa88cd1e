/* test_kb.c - unit tests for the key broker's message parser (proto/kb.c):
 * each message parses whole and every prefix of it asks for more; fields
 * are sliced right; wrong verbs, field counts (a SECRET without its
 * signature among them), names, hex and over-long lines are refused with a
 * message. Every parse reads its input right
 * before a guard page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guard.h"
#include "proto/kb.h"

#define MAX 1024

static enum parse_result
parse_guarded(const char *s, size_t n, size_t max, struct kb_msg *m, size_t *used)
{
    struct guard g;
    const char *p = (const char *)guard_copy(&g, s, n), *why = NULL;
    enum parse_result r = kb_parse(p, n, max, m, used, &why);

    if (r == PARSE_INVALID)
        assert_non_null(why);
    if (r == PARSE_OK) { /* slices must not outlive the guard: check them here */
        for (size_t i = 0; i < m->nhex; i++)
            assert_true(m->hex[i].p >= p && m->hex[i].p + m->hex[i].len <= p + *used);
        if (m->name.p != NULL)
            assert_true(m->name.p >= p && m->name.p + m->name.len <= p + *used);
        /* rebase the slices onto s, which outlives the guard */
        for (size_t i = 0; i < m->nhex; i++)
            m->hex[i].p = s + (m->hex[i].p - p);
        if (m->name.p != NULL)
            m->name.p = s + (m->name.p - p);
        if (m->text.p != NULL)
            m->text.p = s + (m->text.p - p);
    }
    guard_free(&g);
    return r;
}

/* Parses s whole (every shorter prefix must be AGAIN); returns the message. */
static struct kb_msg
must_parse(const char *s)
{
    struct kb_msg m;
    size_t used = 0, n = strlen(s);

    for (size_t i = 0; i < n; i++)
        assert_int_equal(parse_guarded(s, i, MAX, &m, &used), PARSE_AGAIN);
    assert_int_equal(parse_guarded(s, n, MAX, &m, &used), PARSE_OK);
    assert_int_equal(used, n);
    return m;
}

static void
refused(const char *s)
{
    struct kb_msg m;
    size_t used;

    if (parse_guarded(s, strlen(s), MAX, &m, &used) != PARSE_INVALID)
        fail_msg("'%s' was not refused", s);
}

static void
assert_slice(struct kb_slice sl, const char *want)
{
    assert_non_null(sl.p);
    assert_int_equal(sl.len, strlen(want));
    assert_memory_equal(sl.p, want, sl.len);
}

static void
test_messages(void **state)
{
    struct kb_msg m;

    (void)state;
    m = must_parse("REQUEST db-key\n");
    assert_int_equal(m.verb, KB_REQUEST);
    assert_slice(m.name, "db-key");
    assert_int_equal(m.nhex, 0);
    m = must_parse("REQUEST a.B_9\r\n");
    assert_slice(m.name, "a.B_9");
    m = must_parse("CHALLENGE 00112233445566778899aabbccddeeff\n");
    assert_int_equal(m.verb, KB_CHALLENGE);
    assert_int_equal(m.nhex, 1);
    assert_slice(m.hex[0], "00112233445566778899aabbccddeeff");
    m = must_parse("ATTEST ABCD 0102\n");
    assert_int_equal(m.verb, KB_ATTEST);
    assert_int_equal(m.nhex, 2);
    assert_slice(m.hex[0], "ABCD");
    assert_slice(m.hex[1], "0102");
    m = must_parse("ATTEST ab cd ef\n");
    assert_int_equal(m.nhex, 3);
    assert_slice(m.hex[2], "ef");
    m = must_parse("SECRET 3082 A1b2\n");
    assert_int_equal(m.verb, KB_SECRET);
    assert_int_equal(m.nhex, 2);
    assert_slice(m.hex[0], "3082");
    assert_slice(m.hex[1], "A1b2");
    m = must_parse("REFUSED policy PCR0 differs: 'x'\n");
    assert_int_equal(m.verb, KB_REFUSED);
    assert_slice(m.name, "policy");
    assert_slice(m.text, "PCR0 differs: 'x'");
    m = must_parse("REFUSED busy\n");
    assert_slice(m.name, "busy");
    assert_null(m.text.p);
}

static void
test_refused(void **state)
{
    static const char *const bad[] = {
        "\n",
        "request db\n",
        "REQUEST\n",
        "REQUEST \n",
        "REQUEST db key\n",
        "REQUEST d/b\n",
        "REQUEST  db\n",
        "REQUEST 0123456789012345678901234567890123456789012345678901234567890123\n",
        "CHALLENGE 0011\n", /* shorter than 16 bytes */
        "CHALLENGE 00112233445566778899aabbccddeeff00 11\n",
        "ATTEST abcd\n",
        "ATTEST abc 12\n",      /* odd */
        "ATTEST ab 12 34 56\n", /* four fields */
        "ATTEST xy 12\n",
        "ATTEST ab  12\n",
        "ATTEST ab 12 \n",
        "SECRET\n",
        "SECRET 3082\n", /* unsigned: the answer of a broker before signatures, or of a host */
        "SECRET 3082 \n",
        "SECRET 3082 a1b\n",
        "SECRET 3082 a1b2 c3\n",
        "REFUSED\n",
        "REFUSED why \x01\n",
        "HELLO world\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        refused(bad[i]);
    char nonce[2 * KB_NONCE_MAX + 32] = "CHALLENGE ";
    memset(nonce + 10, 'a', 2 * KB_NONCE_MAX + 2);
    strcpy(nonce + 10 + 2 * KB_NONCE_MAX + 2, "\n");
    refused(nonce); /* longer than 64 bytes */
}

/* A line of max bytes or more without its newline is refused, not waited
 * for; a message and what follows it are told apart. */
static void
test_bounds(void **state)
{
    struct kb_msg m;
    size_t used = 0;
    char line[64];

    (void)state;
    memset(line, 'A', sizeof(line));
    assert_int_equal(parse_guarded(line, 15, 16, &m, &used), PARSE_AGAIN);
    assert_int_equal(parse_guarded(line, 16, 16, &m, &used), PARSE_INVALID);
    assert_int_equal(parse_guarded("REQUEST ab\n", 11, 10, &m, &used), PARSE_INVALID);
    assert_int_equal(parse_guarded("REQUEST ab\n", 11, 11, &m, &used), PARSE_OK);
    const char *two = "REQUEST ab\nATTEST";
    assert_int_equal(parse_guarded(two, strlen(two), MAX, &m, &used), PARSE_OK);
    assert_int_equal(used, 11);
}

static void
test_hex(void **state)
{
    uint8_t out[4];
    char hex[9];
    struct kb_slice s = {"0aFf", 4};

    (void)state;
    assert_int_equal(kb_unhex(s, out, sizeof(out)), 2);
    assert_int_equal(out[0], 0x0a);
    assert_int_equal(out[1], 0xff);
    s = (struct kb_slice){"0011223344", 10};
    assert_int_equal(kb_unhex(s, out, sizeof(out)), 0); /* does not fit */
    kb_hex(hex, (const uint8_t *)"\x00\x7f\x80\xff", 4);
    hex[8] = '\0';
    assert_string_equal(hex, "007f80ff");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
