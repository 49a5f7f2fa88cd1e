/* test_dns.c - the DNS question parser, name matching and error replies.
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
#include "proto/dns.h"

/* clang-format off */
/* What dig sends for "dig Www.Example.COM A": RD, one question, one EDNS
 * OPT record after it. */
static const uint8_t query_www[] = {
    0x12, 0x34,             /* id */
    0x01, 0x20,             /* RD, AD */
    0x00, 0x01,             /* QDCOUNT 1 */
    0x00, 0x00, 0x00, 0x00, /* AN, NS */
    0x00, 0x01,             /* AR 1 */
    3, 'W', 'w', 'w', 7, 'E', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'C', 'O', 'M', 0,
    0x00, 0x01,             /* A */
    0x00, 0x01,             /* IN */
    0x00, 0x00, 0x29, 0x04, 0xD0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* OPT */
};
#define WWW_QEND (12 + 17 + 4)

/* "_ntp._udp.pool-1.test" SRV, no RD */
static const uint8_t query_srv[] = {
    0xBE, 0xEF, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    4, '_', 'n', 't', 'p', 4, '_', 'u', 'd', 'p', 6, 'p', 'o', 'o', 'l', '-', '1',
    4, 't', 'e', 's', 't', 0,
    0x00, 0x21, 0x00, 0x01,
};

/* the root, type NS */
static const uint8_t query_root[] = {
    0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0, 0x00, 0x02, 0x00, 0x01,
};
/* clang-format on */

static enum parse_result
parse_guarded(const uint8_t *b, size_t n, struct dns_question *q, const char **err)
{
    struct guard g;
    uint8_t *p = guard_copy(&g, b, n);

    *err = NULL;
    enum parse_result r = dns_parse_query(p, n, q, err);
    if (r == PARSE_INVALID)
        assert_non_null(*err);
    guard_free(&g);
    return r;
}

/* Every prefix shorter than qend is AGAIN; from qend on it is OK. */
static void
check_prefixes(const uint8_t *b, size_t n, size_t qend, struct dns_question *q)
{
    const char *err;

    for (size_t i = 0; i < qend; i++)
        if (parse_guarded(b, i, q, &err) != PARSE_AGAIN)
            fail_msg("prefix %zu of %zu: not AGAIN (%s)", i, n, err ? err : "OK");
    for (size_t i = qend; i <= n; i++) {
        assert_int_equal(parse_guarded(b, i, q, &err), PARSE_OK);
        assert_int_equal(q->end, qend);
    }
}

/* Bytes before bad are a valid prefix; from bad + 1 bytes on it is INVALID. */
static void
check_invalid_at(const uint8_t *b, size_t n, size_t bad, const char *want)
{
    struct dns_question q;
    const char *err;

    for (size_t i = 0; i <= bad; i++)
        if (parse_guarded(b, i, &q, &err) != PARSE_AGAIN)
            fail_msg("prefix %zu (bad at %zu): not AGAIN (%s)", i, bad, err ? err : "OK");
    for (size_t i = bad + 1; i <= n; i++) {
        assert_int_equal(parse_guarded(b, i, &q, &err), PARSE_INVALID);
        assert_string_equal(err, want);
    }
}

static void
test_www(void **state)
{
    struct dns_question q;
    (void)state;

    check_prefixes(query_www, sizeof(query_www), WWW_QEND, &q);
    assert_int_equal(q.id, 0x1234);
    assert_string_equal(q.name, "www.example.com");
    assert_int_equal(q.qtype, 1);
    assert_int_equal(q.qclass, 1);
}

static void
test_srv_and_root(void **state)
{
    struct dns_question q;
    (void)state;

    check_prefixes(query_srv, sizeof(query_srv), sizeof(query_srv), &q);
    assert_string_equal(q.name, "_ntp._udp.pool-1.test");
    assert_int_equal(q.qtype, 33);
    check_prefixes(query_root, sizeof(query_root), sizeof(query_root), &q);
    assert_string_equal(q.name, "");
    assert_int_equal(q.qtype, 2);
}

static void
test_header_faults(void **state)
{
    uint8_t b[sizeof(query_www)];
    (void)state;

    memcpy(b, query_www, sizeof(b));
    b[2] |= 0x80;
    check_invalid_at(b, sizeof(b), 2, "a response, not a query");
    memcpy(b, query_www, sizeof(b));
    b[2] |= 5 << 3; /* UPDATE */
    check_invalid_at(b, sizeof(b), 2, "opcode other than QUERY");
    memcpy(b, query_www, sizeof(b));
    b[5] = 2;
    check_invalid_at(b, sizeof(b), 5, "expected exactly one question");
    b[5] = 0;
    check_invalid_at(b, sizeof(b), 5, "expected exactly one question");
    b[5] = 1;
    b[4] = 1; /* 257 */
    check_invalid_at(b, sizeof(b), 4, "expected exactly one question");
}

static void
test_label_faults(void **state)
{
    uint8_t b[sizeof(query_www)];
    (void)state;

    memcpy(b, query_www, sizeof(b));
    b[16] = 0xC0; /* "example" replaced by a pointer */
    check_invalid_at(b, sizeof(b), 16, "compression pointer in the question");
    memcpy(b, query_www, sizeof(b));
    b[12] = 0x43; /* 01 label type */
    check_invalid_at(b, sizeof(b), 12, "reserved label type");
    b[12] = 0x83; /* 10 label type */
    check_invalid_at(b, sizeof(b), 12, "reserved label type");
    /* "www.example" as one label under com would print as www.example.com */
    memcpy(b, query_www, sizeof(b));
    b[14] = '.';
    check_invalid_at(b, sizeof(b), 14, "a byte other than a letter, digit, '-' or '_' in a label");
    memcpy(b, query_www, sizeof(b));
    b[14] = 0;
    check_invalid_at(b, sizeof(b), 14, "a byte other than a letter, digit, '-' or '_' in a label");
}

/* 255 bytes on the wire is the longest name; 256 is refused as soon as the
 * length byte that would pass the limit is seen. */
static void
test_name_length(void **state)
{
    uint8_t b[12 + 300];
    struct dns_question q;
    const char *err;
    size_t p = 12;
    (void)state;

    memcpy(b, query_srv, 12);
    /* 3 labels of 63 + one of 61: 3*64 + 62 + 1 = 255 */
    for (int l = 0; l < 4; l++) {
        size_t n = l < 3 ? 63 : 61;
        b[p++] = (uint8_t)n;
        memset(b + p, 'a' + l, n);
        p += n;
    }
    b[p++] = 0;
    assert_int_equal(p - 12, 255);
    memcpy(b + p, "\x00\x01\x00\x01", 4);
    check_prefixes(b, p + 4, p + 4, &q);
    assert_int_equal(strlen(q.name), DNS_NAME_MAX);

    /* a last label of 63: 256 bytes, refused at its length byte */
    p = 12 + 3 * 64;
    b[p] = 63;
    memset(b + p + 1, 'd', 63);
    b[p + 64] = 0;
    memcpy(b + p + 65, "\x00\x01\x00\x01", 4);
    assert_int_equal(parse_guarded(b, p + 69, &q, &err), PARSE_INVALID);
    assert_string_equal(err, "name longer than 255 bytes");
    check_invalid_at(b, p + 69, p, "name longer than 255 bytes");

    /* a label of 64 is a reserved label type (0x40) */
    b[12] = 64;
    assert_int_equal(parse_guarded(b, 13, &q, &err), PARSE_INVALID);
}

static void
test_match(void **state)
{
    (void)state;
    assert_true(dns_name_match("example.com", "example.com"));
    assert_false(dns_name_match("example.com", "www.example.com"));
    assert_false(dns_name_match("example.com", "example.co"));
    assert_false(dns_name_match("example.com", "xexample.com"));
    assert_true(dns_name_match("*.example.org", "a.example.org"));
    assert_true(dns_name_match("*.example.org", "a.b.example.org"));
    assert_false(dns_name_match("*.example.org", "example.org"));
    assert_false(dns_name_match("*.example.org", "badexample.org"));
    assert_false(dns_name_match("*.example.org", ""));
}

static void
test_error_reply(void **state)
{
    struct dns_question q;
    uint8_t out[512];
    const char *err;
    (void)state;

    assert_int_equal(parse_guarded(query_www, sizeof(query_www), &q, &err), PARSE_OK);
    size_t n =
        dns_error_reply(query_www, sizeof(query_www), &q, DNS_RCODE_REFUSED, out, sizeof(out));
    assert_int_equal(n, WWW_QEND);
    static const uint8_t hdr[12] = {0x12, 0x34, 0x81, 0x05, 0, 1, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(out, hdr, 12);
    assert_memory_equal(out + 12, query_www + 12, WWW_QEND - 12);

    /* without a question: the header alone */
    n = dns_error_reply(query_www, sizeof(query_www), NULL, DNS_RCODE_FORMERR, out, sizeof(out));
    assert_int_equal(n, 12);
    static const uint8_t bare[12] = {0x12, 0x34, 0x81, 0x01, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(out, bare, 12);

    /* never to a response, a short message, or into a short buffer */
    uint8_t resp[sizeof(query_www)];
    memcpy(resp, query_www, sizeof(resp));
    resp[2] |= 0x80;
    assert_int_equal(dns_error_reply(resp, sizeof(resp), NULL, 5, out, sizeof(out)), 0);
    assert_int_equal(dns_error_reply(query_www, 11, NULL, 5, out, sizeof(out)), 0);
    assert_int_equal(dns_error_reply(query_www, sizeof(query_www), &q, 5, out, WWW_QEND - 1), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_www),           cmocka_unit_test(test_srv_and_root),
        cmocka_unit_test(test_header_faults), cmocka_unit_test(test_label_faults),
        cmocka_unit_test(test_name_length),   cmocka_unit_test(test_match),
        cmocka_unit_test(test_error_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
