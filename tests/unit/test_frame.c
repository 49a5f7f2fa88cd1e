/* test_frame.c - datagram frames: parse and encode.
 *
 * Every parse goes through parse_guarded(), which places the input right
 * before an unreadable page, so an over-read crashes the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include "guard.h"
#include "proto/frame.h"

/* clang-format off */
/* flow 0x01020304 carrying "abc" */
static const uint8_t frame_abc[] = {
    0xA1,                   /* magic */
    0x01,                   /* DATA */
    0x00, 0x03,             /* 3 bytes of payload */
    0x01, 0x02, 0x03, 0x04, /* flow id */
    'a', 'b', 'c',
};
/* clang-format on */

static enum parse_result
parse_guarded(const uint8_t *b, size_t n, struct frame *f, size_t *flen, const char **err)
{
    struct guard g;
    uint8_t *p = guard_copy(&g, b, n);

    *err = NULL;
    enum parse_result r = frame_parse(p, n, f, flen, err);
    if (r == PARSE_INVALID)
        assert_non_null(*err);
    if (r == PARSE_OK) {
        assert_ptr_equal(f->payload, p + FRAME_HDR_LEN);
        f->payload = b + FRAME_HDR_LEN; /* the copy goes away */
    }
    guard_free(&g);
    return r;
}

/* Every strict prefix is AGAIN, the whole frame OK with frame_len n. */
static void
check_prefixes(const uint8_t *b, size_t n, struct frame *f)
{
    size_t flen = 0;
    const char *err;

    for (size_t i = 0; i < n; i++)
        if (parse_guarded(b, i, f, &flen, &err) != PARSE_AGAIN)
            fail_msg("prefix %zu of %zu: not AGAIN (%s)", i, n, err ? err : "OK");
    assert_int_equal(parse_guarded(b, n, f, &flen, &err), PARSE_OK);
    assert_int_equal(flen, n);
}

/* Bytes before bad are a valid prefix; from bad + 1 bytes on it is INVALID
 * with message want. */
static void
check_invalid_at(const uint8_t *b, size_t n, size_t bad, const char *want)
{
    struct frame f;
    size_t flen;
    const char *err;

    for (size_t i = 0; i <= bad; i++)
        assert_int_equal(parse_guarded(b, i, &f, &flen, &err), PARSE_AGAIN);
    for (size_t i = bad + 1; i <= n; i++) {
        assert_int_equal(parse_guarded(b, i, &f, &flen, &err), PARSE_INVALID);
        assert_string_equal(err, want);
    }
}

static void
test_literal(void **state)
{
    struct frame f;
    (void)state;

    check_prefixes(frame_abc, sizeof(frame_abc), &f);
    assert_int_equal(f.flow, 0x01020304);
    assert_int_equal(f.len, 3);
    assert_memory_equal(f.payload, "abc", 3);
}

static void
test_encode_matches_literal(void **state)
{
    uint8_t out[64];
    (void)state;

    assert_int_equal(frame_encode(out, sizeof(out), 0x01020304, "abc", 3), sizeof(frame_abc));
    assert_memory_equal(out, frame_abc, sizeof(frame_abc));
    assert_int_equal(frame_encode_header(out, sizeof(out), 0x01020304, 3), FRAME_HDR_LEN);
    assert_memory_equal(out, frame_abc, FRAME_HDR_LEN);
}

static void
test_empty_payload(void **state)
{
    uint8_t out[FRAME_HDR_LEN];
    struct frame f;
    (void)state;

    assert_int_equal(frame_encode(out, sizeof(out), 7, NULL, 0), FRAME_HDR_LEN);
    check_prefixes(out, sizeof(out), &f);
    assert_int_equal(f.flow, 7);
    assert_int_equal(f.len, 0);
}

static void
test_max_payload(void **state)
{
    static uint8_t payload[FRAME_PAYLOAD_MAX], out[FRAME_MAX_LEN];
    struct frame f;
    size_t flen;
    const char *err;
    (void)state;

    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 7);
    assert_int_equal(frame_encode(out, sizeof(out), UINT32_MAX, payload, sizeof(payload)),
                     FRAME_MAX_LEN);
    /* prefixes around the interesting places only: the whole loop is slow */
    for (size_t i = 0; i < 16; i++)
        assert_int_equal(parse_guarded(out, i, &f, &flen, &err), PARSE_AGAIN);
    assert_int_equal(parse_guarded(out, FRAME_MAX_LEN - 1, &f, &flen, &err), PARSE_AGAIN);
    assert_int_equal(parse_guarded(out, FRAME_MAX_LEN, &f, &flen, &err), PARSE_OK);
    assert_int_equal(f.flow, UINT32_MAX);
    assert_int_equal(f.len, FRAME_PAYLOAD_MAX);
    assert_memory_equal(f.payload, payload, sizeof(payload));
    /* one byte more cannot be encoded */
    assert_int_equal(frame_encode_header(out, sizeof(out), 1, FRAME_PAYLOAD_MAX + 1), 0);
}

/* Two frames back to back: frame_len says where the second starts. */
static void
test_back_to_back(void **state)
{
    uint8_t buf[64];
    struct frame f;
    size_t flen, n;
    const char *err;
    (void)state;

    n = frame_encode(buf, sizeof(buf), 1, "first", 5);
    n += frame_encode(buf + n, sizeof(buf) - n, 2, "2nd", 3);
    assert_int_equal(parse_guarded(buf, n, &f, &flen, &err), PARSE_OK);
    assert_int_equal(flen, FRAME_HDR_LEN + 5);
    assert_memory_equal(f.payload, "first", 5);
    assert_int_equal(parse_guarded(buf + flen, n - flen, &f, &flen, &err), PARSE_OK);
    assert_int_equal(f.flow, 2);
    assert_memory_equal(f.payload, "2nd", 3);
}

static void
test_bad_magic(void **state)
{
    uint8_t b[sizeof(frame_abc)];
    (void)state;

    memcpy(b, frame_abc, sizeof(b));
    b[0] = 'G'; /* "GET / HTTP/1.1" */
    check_invalid_at(b, sizeof(b), 0, "bad magic byte (not an airlock datagram stream?)");
}

static void
test_bad_type(void **state)
{
    uint8_t b[sizeof(frame_abc)];
    (void)state;

    memcpy(b, frame_abc, sizeof(b));
    b[1] = 0x02;
    check_invalid_at(b, sizeof(b), 1, "unknown frame type");
    b[1] = 0x00;
    check_invalid_at(b, sizeof(b), 1, "unknown frame type");
}

static void
test_too_long(void **state)
{
    uint8_t b[sizeof(frame_abc)];
    (void)state;

    memcpy(b, frame_abc, sizeof(b));
    b[2] = 0xFF;
    b[3] = 0xE4; /* 65508 */
    check_invalid_at(b, sizeof(b), 3, "payload longer than 65507 bytes");
    b[3] = 0xE3; /* 65507: valid, wants its payload */
    struct frame f;
    size_t flen;
    const char *err;
    assert_int_equal(parse_guarded(b, sizeof(b), &f, &flen, &err), PARSE_AGAIN);
}

static void
test_flow_zero(void **state)
{
    uint8_t b[sizeof(frame_abc)];
    (void)state;

    memcpy(b, frame_abc, sizeof(b));
    memset(b + 4, 0, 4);
    check_invalid_at(b, sizeof(b), 7, "flow id 0");
}

static void
test_encode_refuses(void **state)
{
    uint8_t out[16];
    (void)state;

    memset(out, 0x55, sizeof(out));
    assert_int_equal(frame_encode(out, sizeof(out), 0, "x", 1), 0);
    assert_int_equal(frame_encode(out, FRAME_HDR_LEN + 2, 1, "abc", 3), 0);
    assert_int_equal(frame_encode_header(out, FRAME_HDR_LEN - 1, 1, 0), 0);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 0x55); /* nothing written */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal),       cmocka_unit_test(test_encode_matches_literal),
        cmocka_unit_test(test_empty_payload), cmocka_unit_test(test_max_payload),
        cmocka_unit_test(test_back_to_back),  cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_bad_type),      cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_flow_zero),     cmocka_unit_test(test_encode_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
