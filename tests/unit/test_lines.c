/* test_lines.c - unit tests for the bounded line splitter: exact lines for
 * known inputs, the same lines for every way of cutting the input into
 * pieces (every prefix, then the rest; one byte at a time), inputs placed
 * right before a guard page, long and never-ending lines, binary bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guard.h"
#include "proto/lines.h"

/* Splits the pieces in[0..n) (each copied before a guard page) with a
 * splitter of cap bytes, flushes at the end, and renders every line as
 * "<text>|" or "<text>+|" (cut), with "!<text>|" for the flushed one. */
static size_t
split(const char *const *pieces, const size_t *lens, size_t n, size_t cap, char *out, size_t outlen)
{
    struct guard g;
    struct line_split ls;
    struct line l;
    size_t o = 0;

    uint8_t *storage = malloc(cap);
    assert_non_null(storage);
    line_split_init(&ls, storage, cap);
    for (size_t i = 0; i < n; i++) {
        uint8_t *buf = guard_copy(&g, pieces[i], lens[i]);
        size_t off = 0;
        for (;;) {
            size_t used = 0;
            enum parse_result pr = line_next(&ls, buf + off, lens[i] - off, &used, &l);
            assert_true(used <= lens[i] - off);
            off += used;
            if (pr == PARSE_AGAIN) {
                assert_int_equal(off, lens[i]);
                break;
            }
            assert_int_equal(pr, PARSE_OK);
            assert_true(l.len <= cap);
            assert_true(o + l.len + 3 < outlen);
            memcpy(out + o, l.data, l.len);
            o += l.len;
            if (l.cut)
                out[o++] = '+';
            out[o++] = '|';
        }
        guard_free(&g);
    }
    if (line_flush(&ls, &l) == PARSE_OK) {
        assert_true(o + l.len + 3 < outlen);
        out[o++] = '!';
        memcpy(out + o, l.data, l.len);
        o += l.len;
        out[o++] = '|';
    }
    assert_int_equal(line_flush(&ls, &l), PARSE_AGAIN);
    out[o] = '\0';
    free(storage);
    return o;
}

static size_t
split_whole(const char *in, size_t len, size_t cap, char *out, size_t outlen)
{
    return split(&in, &len, 1, cap, out, outlen);
}

/* The result must not depend on how the input is cut into pieces. */
static void
check_all_cuts(const char *in, size_t len, size_t cap, const char *expected)
{
    char want[4096], got[4096];

    split_whole(in, len, cap, want, sizeof(want));
    assert_string_equal(want, expected);
    for (size_t k = 0; k <= len; k++) {
        const char *pieces[2] = {in, in + k};
        size_t lens[2] = {k, len - k};
        split(pieces, lens, 2, cap, got, sizeof(got));
        assert_string_equal(got, expected);
    }
    const char **bytes = calloc(len + 1, sizeof(*bytes));
    size_t *ones = calloc(len + 1, sizeof(*ones));
    assert_non_null(bytes);
    assert_non_null(ones);
    for (size_t i = 0; i < len; i++) {
        bytes[i] = in + i;
        ones[i] = 1;
    }
    split(bytes, ones, len, cap, got, sizeof(got));
    assert_string_equal(got, expected);
    free(bytes);
    free(ones);
}

#define CHECK(in, cap, expected) check_all_cuts(in, sizeof(in) - 1, cap, expected)

static void
test_lines_basic(void **state)
{
    (void)state;
    CHECK("", 8, "");
    CHECK("\n", 8, "|");
    CHECK("a\n", 8, "a|");
    CHECK("a\nbb\n\nccc\n", 8, "a|bb||ccc|");
    CHECK("no newline", 16, "!no newline|");
    CHECK("one\ntail", 8, "one|!tail|");
    CHECK("\r\n", 8, "\r|");
}

static void
test_lines_cut(void **state)
{
    (void)state;
    /* exactly cap bytes and its newline: whole */
    CHECK("abcd\n", 4, "abcd|");
    /* one more: cut, the rest of the line is discarded */
    CHECK("abcde\n", 4, "abcd+|");
    CHECK("abcdefghij\nxy\n", 4, "abcd+|xy|");
    CHECK("abcdefghij\nxyzzy\nk", 4, "abcd+|xyzz+|!k|");
    /* exactly cap bytes, then the stream ends: the partial line */
    CHECK("abcd", 4, "!abcd|");
    /* a cut line never comes back as a partial one at the end */
    CHECK("abcdefgh", 4, "abcd+|");
    CHECK("ab\nabcdefgh", 4, "ab|abcd+|");
    CHECK("x\n", 1, "x|");
    CHECK("xy\nz\n", 1, "x+|z|");
}

static void
test_lines_binary(void **state)
{
    static const char in[] = "\x00\x01\xff\x7f\n\x1b[31mred\n\xc3\x28";
    char got[64];
    (void)state;

    size_t n = split_whole(in, sizeof(in) - 1, 16, got, sizeof(got));
    assert_int_equal(n, 4 + 1 + 8 + 1 + 1 + 2 + 1);
    assert_memory_equal(got, "\x00\x01\xff\x7f|\x1b[31mred|!\xc3\x28|", n);
    check_all_cuts(in, sizeof(in) - 1, 3, "\x00\x01\xff+|\x1b[3+|!\xc3\x28|");
}

static void
test_lines_never_ending(void **state)
{
    const size_t big = 4 * 1024 * 1024;
    char *in = malloc(big + 8);
    char got[256];
    (void)state;

    assert_non_null(in);
    memset(in, 'x', big);
    memcpy(in + big, "\nnext\n", 6);
    size_t lens[1] = {big + 6};
    const char *pieces[1] = {in};
    split(pieces, lens, 1, 8, got, sizeof(got));
    assert_string_equal(got, "xxxxxxxx+|next|");
    free(in);
}

/* Zero-copy: a whole line in the input comes back as a slice of it. */
static void
test_lines_slices(void **state)
{
    uint8_t storage[16], in[] = "abc\ndef";
    struct line_split ls;
    struct line l;
    size_t used;
    (void)state;

    line_split_init(&ls, storage, sizeof(storage));
    assert_int_equal(line_next(&ls, in, 7, &used, &l), PARSE_OK);
    assert_ptr_equal(l.data, in);
    assert_int_equal(l.len, 3);
    assert_int_equal(used, 4);
    assert_int_equal(line_next(&ls, in + 4, 3, &used, &l), PARSE_AGAIN);
    assert_int_equal(used, 3);
    assert_int_equal(ls.len, 3);
    assert_int_equal(line_next(&ls, (const uint8_t *)"\n", 1, &used, &l), PARSE_OK);
    assert_ptr_equal(l.data, storage);
    assert_memory_equal(l.data, "def", 3);
    assert_int_equal(line_next(&ls, in, 0, &used, &l), PARSE_AGAIN);
    assert_int_equal(used, 0);
}

/* line_escape() of text, as a C string ("" when returned as it is). */
static const char *
escaped(const char *text)
{
    static uint8_t out[256];
    static char str[257];
    struct line l = {.data = (const uint8_t *)text, .len = strlen(text)};
    struct line e = line_escape(&l, out, sizeof(out));

    if (e.data == l.data)
        return "";
    memcpy(str, e.data, e.len);
    str[e.len] = '\0';
    return str;
}

/* What a reader could split a line on, or a terminal act on, is written as
 * \xHH: C0 controls (not TAB), DEL, C1 controls (NEL, CSI), U+2028/U+2029,
 * bidi controls, and bytes of no valid UTF-8 sequence; other UTF-8 stays. */
static void
test_lines_escape(void **state)
{
    (void)state;
    assert_string_equal(escaped("plain\ttext, gr\xc3\xb6\xc3\x9f\xe2\x82\xac \xf0\x9f\x98\x80"),
                        "");
    assert_string_equal(escaped("a\rb\x1b[2K\x7f"), "a\\x0db\\x1b[2K\\x7f");
    assert_string_equal(escaped("x\xc2\x85"
                                "airlock: forged"),
                        "x\\xc2\\x85airlock: forged");
    assert_string_equal(escaped("x\xc2\x9b"
                                "2Ky"),
                        "x\\xc2\\x9b2Ky");
    assert_string_equal(escaped("x\xe2\x80\xa8"
                                "app[1]#1: y\xe2\x80\xa9z"),
                        "x\\xe2\\x80\\xa8app[1]#1: y\\xe2\\x80\\xa9z");
    assert_string_equal(escaped("\xe2\x80\xae"
                                "evil\xe2\x81\xa6"),
                        "\\xe2\\x80\\xaeevil\\xe2\\x81\\xa6");
    /* Latin-1 NEL, a lone continuation, overlong and surrogate forms, truncated */
    assert_string_equal(escaped("a\x85"
                                "b"),
                        "a\\x85b");
    assert_string_equal(escaped("\xc0\x8a"), "\\xc0\\x8a");
    assert_string_equal(escaped("\xed\xa0\x80"), "\\xed\\xa0\\x80");
    assert_string_equal(escaped("ok\xe2\x80"), "ok\\xe2\\x80");
    /* cut where an escape would not fit whole */
    uint8_t out[6];
    struct line l = {.data = (const uint8_t *)"ab\xc2\x85", .len = 4};
    struct line e = line_escape(&l, out, sizeof(out));
    assert_true(e.cut);
    assert_int_equal(e.len, 2);
    /* a plain part longer than max is cut where a sequence begins */
    l = (struct line){.data = (const uint8_t *)"a\xc3\xb6\xc3\xb6\x01", .len = 6};
    e = line_escape(&l, out, 4);
    assert_true(e.cut);
    assert_int_equal(e.len, 3);
    assert_memory_equal(e.data, "a\xc3\xb6", 3);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_basic),  cmocka_unit_test(test_lines_cut),
        cmocka_unit_test(test_lines_binary), cmocka_unit_test(test_lines_never_ending),
        cmocka_unit_test(test_lines_slices), cmocka_unit_test(test_lines_escape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
