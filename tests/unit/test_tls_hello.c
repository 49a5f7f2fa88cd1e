/* test_tls_hello.c - the SNI of a ClientHello: real captures fed whole, in
 * every prefix, one byte at a time, split over records; GREASE, ECH, no
 * SNI, limits and malformed variants.
 *
 * Every feed goes through feed_guarded(), which places the bytes right
 * before an unreadable page, so an over-read crashes the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include "guard.h"
#include "proto/tls_hello.h"
#include "tls_hello_samples.h"

#define CAP TLS_HELLO_DEFAULT

static uint8_t hsbuf[CAP];

static enum parse_result
feed_guarded(struct tls_hello *h, const uint8_t *b, size_t n, size_t *used)
{
    struct guard g;
    uint8_t *p = guard_copy(&g, b, n);
    enum parse_result r = tls_hello_feed(h, p, n, used);

    guard_free(&g);
    if (r == PARSE_INVALID)
        assert_non_null(h->err);
    return r;
}

/* Feeds b[0..n) in pieces of step bytes (0: all at once). */
static enum parse_result
parse_steps(struct tls_hello *h, size_t cap, const uint8_t *b, size_t n, size_t step)
{
    enum parse_result r = PARSE_AGAIN;
    size_t used = 0, total = 0;

    tls_hello_init(h, hsbuf, cap);
    for (size_t off = 0; off < n && r == PARSE_AGAIN; off += used) {
        size_t k = step == 0 || n - off < step ? n - off : step;
        r = feed_guarded(h, b + off, k, &used);
        if (r == PARSE_AGAIN)
            used = k;
        total = off + used;
    }
    if (r == PARSE_OK)
        assert_int_equal(total, n); /* the samples end with the hello */
    return r;
}

static void
expect_host(const uint8_t *b, size_t n, const char *host, bool ech)
{
    struct tls_hello h;

    /* every strict prefix is AGAIN, whole or one byte at a time */
    for (size_t i = 0; i < n; i++)
        if (parse_steps(&h, CAP, b, i, 0) != PARSE_AGAIN)
            fail_msg("prefix %zu of %zu: not AGAIN (%s)", i, n, h.err ? h.err : "OK");
    for (size_t step = 0; step <= 3; step++) {
        assert_int_equal(parse_steps(&h, CAP, b, n, step == 3 ? 97 : step), PARSE_OK);
        assert_int_equal(h.has_sni, host != NULL);
        assert_string_equal(h.host, host != NULL ? host : "");
        assert_int_equal(h.host_len, host != NULL ? strlen(host) : 0);
        assert_int_equal(h.has_ech, ech);
        /* once done, the result stays and nothing is consumed */
        size_t used = 99;
        assert_int_equal(tls_hello_feed(&h, b, 1, &used), PARSE_OK);
        assert_int_equal(used, 99);
    }
}

static void
test_openssl_tls13(void **state)
{
    (void)state;
    /* sent as "api.Example.org": matched lowercased */
    expect_host(openssl_tls13, sizeof(openssl_tls13), "api.example.org", false);
}

static void
test_curl(void **state)
{
    (void)state;
    expect_host(curl, sizeof(curl), "alice.grid.example", false);
}

static void
test_grease_ech(void **state)
{
    (void)state;
    /* GREASE cipher and extensions skipped; routed on the outer SNI */
    expect_host(browser_grease_ech, sizeof(browser_grease_ech), "alice.grid.example", true);
}

static void
test_no_sni(void **state)
{
    (void)state;
    expect_host(openssl_nosni, sizeof(openssl_nosni), NULL, false);
}

/* Re-frames the handshake message of a one-record sample into records of
 * size bytes each (record version 0x0303). Returns the new length. */
static size_t
split_records(const uint8_t *b, size_t n, size_t size, uint8_t *out)
{
    size_t o = 0;

    for (size_t off = 5; off < n; off += size) {
        size_t k = n - off < size ? n - off : size;
        out[o++] = 22;
        out[o++] = 3;
        out[o++] = 3;
        out[o++] = (uint8_t)(k >> 8);
        out[o++] = (uint8_t)k;
        memcpy(out + o, b + off, k);
        o += k;
    }
    return o;
}

static void
test_split_records(void **state)
{
    static uint8_t rec[8192];
    struct tls_hello h;
    (void)state;

    for (size_t size = 1; size <= 600; size = size * 3 + 1) {
        size_t n = split_records(browser_grease_ech, sizeof(browser_grease_ech), size, rec);
        for (size_t step = 0; step <= 1; step++) {
            assert_int_equal(parse_steps(&h, CAP, rec, n, step), PARSE_OK);
            assert_string_equal(h.host, "alice.grid.example");
            assert_true(h.has_ech);
            assert_int_equal(h.record_version, 0x0303);
        }
    }
    /* 1-byte records take six bytes each on the wire: past twice the limit */
    size_t n = split_records(curl, sizeof(curl), 1, rec);
    assert_int_equal(parse_steps(&h, 1024, rec, n, 0), PARSE_INVALID);
    assert_non_null(strstr(h.err, "twice"));
    /* exactly twice the limit, all the router peeks at, is enough to know */
    tls_hello_init(&h, hsbuf, 1024);
    assert_true(n > 2 * 1024);
    assert_int_equal(tls_hello_feed(&h, rec, 2 * 1024, NULL), PARSE_INVALID);
    assert_non_null(strstr(h.err, "twice"));
}

static void
test_bytes_after_hello(void **state)
{
    static uint8_t b[sizeof(openssl_tls13) + 6];
    struct tls_hello h;
    size_t used = 0;
    (void)state;

    /* a change_cipher_spec record follows (TLS 1.3 middlebox compatibility) */
    memcpy(b, openssl_tls13, sizeof(openssl_tls13));
    memcpy(b + sizeof(openssl_tls13), "\x14\x03\x03\x00\x01\x01", 6);
    tls_hello_init(&h, hsbuf, CAP);
    assert_int_equal(feed_guarded(&h, b, sizeof(b), &used), PARSE_OK);
    assert_int_equal(used, sizeof(openssl_tls13));
}

/* Applies one change at offset off of a copy of the curl sample and
 * expects INVALID with a message holding why, whole and in every prefix
 * that reaches the change. */
static void
expect_invalid(size_t off, uint8_t val, size_t cap, const char *why)
{
    static uint8_t b[sizeof(curl)];
    struct tls_hello h;

    memcpy(b, curl, sizeof(curl));
    if (off < sizeof(b))
        b[off] = val;
    for (size_t step = 0; step <= 1; step++) {
        if (parse_steps(&h, cap, b, sizeof(b), step) != PARSE_INVALID)
            fail_msg("change at %zu to %#x: not INVALID", off, val);
        if (strstr(h.err, why) == NULL)
            fail_msg("change at %zu: '%s' does not say '%s'", off, h.err, why);
    }
}

static size_t
host_offset(void)
{
    const uint8_t *p = memmem(curl, sizeof(curl), "alice", 5);

    assert_non_null(p);
    return (size_t)(p - curl);
}

static void
test_malformed(void **state)
{
    struct tls_hello h;
    (void)state;

    expect_invalid(0, 'G', CAP, "not a TLS handshake record");
    expect_invalid(0, 21, CAP, "not a TLS handshake record"); /* an alert */
    expect_invalid(1, 2, CAP, "record version");
    expect_invalid(2, 5, CAP, "TLS 1.0-1.3");
    expect_invalid(3, 0x41, CAP, "record length"); /* 0x41xx > 16384 */
    expect_invalid(5, 2, CAP, "not a ClientHello");
    expect_invalid(9, 2, CAP, "not TLS");
    expect_invalid(43, 33, CAP, "session id");
    expect_invalid(0, 22, 256, "larger than the limit"); /* 517 bytes, limit 256 */
    /* the message 1 byte shorter: the extensions no longer fit */
    expect_invalid(8, (uint8_t)(curl[8] - 1), CAP, "do not fill");
    size_t host = host_offset();
    expect_invalid(host, '_', CAP, "not a letter");
    expect_invalid(host, '-', CAP, "starting with '-'");
    expect_invalid(host + 6, '.', CAP, "empty label");
    expect_invalid(host + 17, '.', CAP, "ends in");
    /* host name length 0 */
    expect_invalid(host - 1, 0, CAP, "empty");

    /* garbage fails on its first byte */
    tls_hello_init(&h, hsbuf, CAP);
    assert_int_equal(feed_guarded(&h, (const uint8_t *)"G", 1, NULL), PARSE_INVALID);
    assert_int_equal(tls_hello_feed(&h, (const uint8_t *)"\x16", 1, NULL), PARSE_INVALID);
}

static void
test_duplicate_extension(void **state)
{
    static uint8_t b[sizeof(curl) + 4];
    struct tls_hello h;
    (void)state;

    /* curl's hello ends with extended_master_secret (0x0017, empty) among
     * others; append a second one and grow the three lengths by 4 */
    memcpy(b, curl, sizeof(curl));
    memcpy(b + sizeof(curl), "\x00\x17\x00\x00", 4);
    assert_non_null(memmem(curl, sizeof(curl), "\x00\x17\x00\x00", 4));
    size_t p = 9 + 2 + 32;
    p += 1 + curl[p];
    p += 2 + ((size_t)curl[p] << 8 | curl[p + 1]);
    p += 1 + curl[p];
    size_t el = ((size_t)curl[p] << 8 | curl[p + 1]) + 4, rl = sizeof(b) - 5, hl = sizeof(b) - 9;
    b[p] = (uint8_t)(el >> 8);
    b[p + 1] = (uint8_t)el;
    b[3] = (uint8_t)(rl >> 8);
    b[4] = (uint8_t)rl;
    b[6] = (uint8_t)(hl >> 16);
    b[7] = (uint8_t)(hl >> 8);
    b[8] = (uint8_t)hl;
    assert_int_equal(parse_steps(&h, CAP, b, sizeof(b), 0), PARSE_INVALID);
    assert_non_null(strstr(h.err, "twice"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openssl_tls13), cmocka_unit_test(test_curl),
        cmocka_unit_test(test_grease_ech),    cmocka_unit_test(test_no_sni),
        cmocka_unit_test(test_split_records), cmocka_unit_test(test_bytes_after_hello),
        cmocka_unit_test(test_malformed),     cmocka_unit_test(test_duplicate_extension),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
