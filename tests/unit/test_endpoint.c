/* test_endpoint.c - unit tests for the endpoint parser and formatter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "guard.h"
#include "net/endpoint.h"

/* A name of exactly n characters, in labels of at most 63, the last one alphabetic. */
static const char *
long_name(size_t n)
{
    static char buf[512];

    for (size_t i = 0; i < n; i++)
        buf[i] = i % 64 == 63 ? '.' : 'a';
    buf[n] = '\0';
    return buf;
}

/* Parses s from a copy whose NUL is the last byte before a PROT_NONE page, so reading past
 * the terminator crashes. */
static enum parse_result
guarded_parse(const char *s, size_t len, struct endpoint *ep, const char **err)
{
    struct guard g;
    char *copy = (char *)guard_copy(&g, s, len + 1);

    copy[len] = '\0';
    enum parse_result r = endpoint_parse(copy, ep, err);
    guard_free(&g);
    return r;
}

/* Formats ep, checks the text is want (when given), and that it parses back to ep. */
static void
assert_round_trip(const struct endpoint *ep, const char *want)
{
    char buf[512];
    struct endpoint back;
    const char *err = "unset";

    size_t n = endpoint_format(ep, buf, sizeof(buf));
    assert_true(n < sizeof(buf));
    assert_int_equal(n, strlen(buf));
    if (want != NULL)
        assert_string_equal(buf, want);
    assert_int_equal(guarded_parse(buf, n, &back, &err), PARSE_OK);
    assert_null(err);
    assert_true(endpoint_equal(ep, &back));
    assert_true(endpoint_equal(&back, ep));
}

struct valid_case {
    const char *in;
    enum ep_kind kind;
    const char *text; /* host or path */
    uint32_t cid;
    uint32_t port;
    const char *canon; /* formatted text */
};

static const struct valid_case valid[] = {
    {"tcp:127.0.0.1:80", EP_TCP, "127.0.0.1", 0, 80, "tcp:127.0.0.1:80"},
    {"tcp:0.0.0.0:1", EP_TCP, "0.0.0.0", 0, 1, "tcp:0.0.0.0:1"},
    {"tcp:255.255.255.255:65535", EP_TCP, "255.255.255.255", 0, 65535, "tcp:255.255.255.255:65535"},
    {"tcp:[::1]:443", EP_TCP, "::1", 0, 443, "tcp:[::1]:443"},
    {"tcp:[::]:8080", EP_TCP, "::", 0, 8080, "tcp:[::]:8080"},
    {"tcp:[2001:DB8:0:0::1]:53", EP_TCP, "2001:db8::1", 0, 53, "tcp:[2001:db8::1]:53"},
    {"tcp:[::ffff:192.0.2.1]:25", EP_TCP, "::ffff:192.0.2.1", 0, 25, "tcp:[::ffff:192.0.2.1]:25"},
    {"tcp:localhost:6379", EP_TCP, "localhost", 0, 6379, "tcp:localhost:6379"},
    {"tcp:Redis.Example.COM:6379", EP_TCP, "redis.example.com", 0, 6379,
     "tcp:redis.example.com:6379"},
    {"tcp:my_host-1.internal:9", EP_TCP, "my_host-1.internal", 0, 9, "tcp:my_host-1.internal:9"},
    {"tcp:a:00080", EP_TCP, "a", 0, 80, "tcp:a:80"},
    {"tcp:1host:22", EP_TCP, "1host", 0, 22, "tcp:1host:22"},
    {"tcp:10.0.0.1.example:22", EP_TCP, "10.0.0.1.example", 0, 22, "tcp:10.0.0.1.example:22"},
    {"udp:10.1.2.3:53", EP_UDP, "10.1.2.3", 0, 53, "udp:10.1.2.3:53"},
    {"udp:[fe80::1]:123", EP_UDP, "fe80::1", 0, 123, "udp:[fe80::1]:123"},
    {"udp:ntp.example.org:123", EP_UDP, "ntp.example.org", 0, 123, "udp:ntp.example.org:123"},
    {"unix:/run/airlock.sock", EP_UNIX, "/run/airlock.sock", 0, 0, "unix:/run/airlock.sock"},
    {"unix:relative/sock", EP_UNIX, "relative/sock", 0, 0, "unix:relative/sock"},
    {"unix:@airlock", EP_UNIX, "@airlock", 0, 0, "unix:@airlock"},
    {"unix:/tmp/a:b", EP_UNIX, "/tmp/a:b", 0, 0, "unix:/tmp/a:b"},
    {"vsock:3:5000", EP_VSOCK, NULL, 3, 5000, "vsock:3:5000"},
    {"vsock:any:0", EP_VSOCK, NULL, EP_CID_ANY, 0, "vsock:any:0"},
    {"vsock:0:4294967294", EP_VSOCK, NULL, 0, 4294967294u, "vsock:0:4294967294"},
    {"vsock:4294967294:1", EP_VSOCK, NULL, 4294967294u, 1, "vsock:4294967294:1"},
    {"vsock:0003:007", EP_VSOCK, NULL, 3, 7, "vsock:3:7"},
    {"hvsock:/run/fc/v.sock:52", EP_HVSOCK, "/run/fc/v.sock", 0, 52, "hvsock:/run/fc/v.sock:52"},
    {"hvsock:/a:b:c:0", EP_HVSOCK, "/a:b:c", 0, 0, "hvsock:/a:b:c:0"},
    {"hvsock:v.sock:4294967294", EP_HVSOCK, "v.sock", 0, 4294967294u, "hvsock:v.sock:4294967294"},
};

static void
test_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        const struct valid_case *c = &valid[i];
        struct endpoint ep;
        const char *err = "unset";

        print_message("valid: %s\n", c->in);
        assert_int_equal(guarded_parse(c->in, strlen(c->in), &ep, &err), PARSE_OK);
        assert_null(err);
        assert_int_equal(ep.kind, c->kind);
        assert_int_equal(ep.port, c->port);
        switch (c->kind) {
        case EP_TCP:
        case EP_UDP:
            assert_string_equal(ep.host, c->text);
            break;
        case EP_UNIX:
        case EP_HVSOCK:
            assert_string_equal(ep.path, c->text);
            break;
        case EP_VSOCK:
            assert_int_equal(ep.cid, c->cid);
            break;
        }
        assert_round_trip(&ep, c->canon);
    }
}

struct invalid_case {
    const char *in;
    const char *err; /* exact message, or NULL to only require one */
};

static const struct invalid_case invalid[] = {
    {"", "expected tcp:HOST:PORT, udp:HOST:PORT, unix:PATH, vsock:CID:PORT or hvsock:PATH:PORT"},
    {"tcp", NULL},
    {"TCP:a:1", NULL},
    {"sctp:a:1", NULL},
    {"http://a:1", NULL},
    {" tcp:a:1", NULL},
    {"tcp:", "tcp: expected HOST:PORT"},
    {"tcp:host", "tcp: expected HOST:PORT"},
    {"tcp::80", "tcp: expected HOST:PORT"},
    {"tcp:a:1:2", "tcp: expected HOST:PORT"},
    {"tcp:host:", "tcp: port must be 1-65535"},
    {"tcp:host:0", "tcp: port must be 1-65535"},
    {"tcp:host:65536", "tcp: port must be 1-65535"},
    {"tcp:host:99999999999999999999", "tcp: port must be 1-65535"},
    {"tcp:host:-1", "tcp: port must be 1-65535"},
    {"tcp:host:+80", "tcp: port must be 1-65535"},
    {"tcp:host:80 ", "tcp: port must be 1-65535"},
    {"tcp:host:8a", "tcp: port must be 1-65535"},
    {"tcp:host:0x50", "tcp: port must be 1-65535"},
    {"tcp:ho st:80", "tcp: host name may hold letters, digits, '-', '_' and '.', in labels of "
                     "1-63 characters, at most 253 in all"},
    {"tcp: host:80", NULL},
    {"tcp:host*:80", NULL},
    {"tcp:h\xc3\xa9:80", NULL},
    {"tcp:a..b:80", NULL},
    {"tcp:.a:80", NULL},
    {"tcp:a.:80", NULL},
    {"tcp:.:80", NULL},
    {"tcp:256.0.0.1:80", "tcp: invalid IPv4 address"},
    {"tcp:1.2.3:80", "tcp: invalid IPv4 address"},
    {"tcp:127.1:80", "tcp: invalid IPv4 address"},
    {"tcp:1.2.3.4.5:80", "tcp: invalid IPv4 address"},
    {"tcp:01.2.3.4:80", "tcp: invalid IPv4 address"},
    {"tcp:0x7f.0.0.1:80", "tcp: invalid IPv4 address"},
    {"tcp:0x7f000001:80", "tcp: invalid IPv4 address"},
    {"tcp:2130706433:80", "tcp: invalid IPv4 address"},
    {"tcp:::1:80", "tcp: IPv6 address must be in brackets, as [::1]:PORT"},
    {"tcp:2001:db8::1", "tcp: IPv6 address must be in brackets, as [::1]:PORT"},
    {"tcp:[::1]", "tcp: expected [IPV6]:PORT"},
    {"tcp:[::1", "tcp: expected [IPV6]:PORT"},
    {"tcp:[::1]80", "tcp: expected [IPV6]:PORT"},
    {"tcp:[::1]:", "tcp: port must be 1-65535"},
    {"tcp:[::1]:0", "tcp: port must be 1-65535"},
    {"tcp:[]:80", "tcp: invalid IPv6 address"},
    {"tcp:[1.2.3.4]:80", "tcp: invalid IPv6 address"},
    {"tcp:[::g]:80", "tcp: invalid IPv6 address"},
    {"tcp:[fe80::1%eth0]:80", "tcp: invalid IPv6 address"},
    {"tcp:[localhost]:80", "tcp: invalid IPv6 address"},
    {"tcp:[1:2:3:4:5:6:7:8:9]:80", "tcp: invalid IPv6 address"},
    {"tcp:[::1]]:80", NULL},
    {"udp:host", "udp: expected HOST:PORT"},
    {"udp:host:65536", "udp: port must be 1-65535"},
    {"udp:[::1]", "udp: expected [IPV6]:PORT"},
    {"unix:", "unix: expected /PATH or @NAME"},
    {"unix:@", "unix: abstract socket name after '@' must not be empty"},
    {"unix:/a b", "unix: path must not contain spaces or control characters"},
    {"unix:/a\tb", "unix: path must not contain spaces or control characters"},
    {"unix:/a\x7f", "unix: path must not contain spaces or control characters"},
    {"unix: /a", "unix: path must not contain spaces or control characters"},
    {"vsock:", "vsock: expected CID:PORT"},
    {"vsock:3", "vsock: expected CID:PORT"},
    {"vsock::5", "vsock: expected CID:PORT"},
    {"vsock:3:", "vsock: port must be 0-4294967294"},
    {"vsock:3:4294967295", "vsock: port must be 0-4294967294"},
    {"vsock:3:99999999999", "vsock: port must be 0-4294967294"},
    {"vsock:3:5:6", "vsock: port must be 0-4294967294"},
    {"vsock:3:-1", "vsock: port must be 0-4294967294"},
    {"vsock:4294967295:5", "vsock: CID must be 0-4294967294 or \"any\""},
    {"vsock:ANY:5", "vsock: CID must be 0-4294967294 or \"any\""},
    {"vsock:anyx:5", "vsock: CID must be 0-4294967294 or \"any\""},
    {"vsock:-1:5", "vsock: CID must be 0-4294967294 or \"any\""},
    {"vsock: 3:5", "vsock: CID must be 0-4294967294 or \"any\""},
    {"hvsock:", "hvsock: expected /PATH:PORT"},
    {"hvsock:/path", "hvsock: expected /PATH:PORT"},
    {"hvsock::52", "hvsock: expected /PATH:PORT"},
    {"hvsock:/path:", "hvsock: port must be 0-4294967294"},
    {"hvsock:/path:4294967295", "hvsock: port must be 0-4294967294"},
    {"hvsock:/path:52x", "hvsock: port must be 0-4294967294"},
    {"hvsock:/p ath:52", "hvsock: path must not contain spaces or control characters"},
};

static void
test_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        const struct invalid_case *c = &invalid[i];
        struct endpoint ep;
        const char *err = NULL;

        print_message("invalid: %s\n", c->in);
        assert_int_equal(guarded_parse(c->in, strlen(c->in), &ep, &err), PARSE_INVALID);
        assert_non_null(err);
        assert_true(strlen(err) > 0);
        if (c->err != NULL)
            assert_string_equal(err, c->err);
    }
}

/* Limits: host names of 253 characters and labels of 63, paths of 107 bytes. */
static void
test_lengths(void **state)
{
    (void)state;
    char in[600], path[200];
    struct endpoint ep;
    const char *err;

    snprintf(in, sizeof(in), "tcp:%s:1", long_name(253));
    assert_int_equal(guarded_parse(in, strlen(in), &ep, &err), PARSE_OK);
    assert_int_equal(strlen(ep.host), 253);
    assert_round_trip(&ep, in);
    snprintf(in, sizeof(in), "tcp:%s:1", long_name(254));
    assert_int_equal(guarded_parse(in, strlen(in), &ep, &err), PARSE_INVALID);
    assert_non_null(strstr(err, "at most 253"));

    memset(in, 0, sizeof(in));
    memcpy(in, "tcp:", 4);
    memset(in + 4, 'a', 63);
    strcat(in, ".b:1");
    assert_int_equal(guarded_parse(in, strlen(in), &ep, &err), PARSE_OK);
    memset(in, 0, sizeof(in));
    memcpy(in, "tcp:", 4);
    memset(in + 4, 'a', 64);
    strcat(in, ".b:1");
    assert_int_equal(guarded_parse(in, strlen(in), &ep, &err), PARSE_INVALID);
    assert_non_null(strstr(err, "1-63"));

    for (int abstract = 0; abstract <= 1; abstract++) {
        memset(path, 'p', sizeof(path));
        path[0] = abstract ? '@' : '/';
        path[EP_PATH_MAX - 1] = '\0';
        snprintf(in, sizeof(in), "unix:%s", path);
        assert_int_equal(guarded_parse(in, strlen(in), &ep, &err), PARSE_OK);
        assert_int_equal(strlen(ep.path), EP_PATH_MAX - 1);
        assert_round_trip(&ep, in);
        snprintf(in, sizeof(in), "hvsock:%s:1", path);
        assert_int_equal(guarded_parse(in, strlen(in), &ep, &err), PARSE_OK);
        assert_round_trip(&ep, in);

        path[EP_PATH_MAX - 1] = 'p';
        path[EP_PATH_MAX] = '\0';
        snprintf(in, sizeof(in), "unix:%s", path);
        assert_int_equal(guarded_parse(in, strlen(in), &ep, &err), PARSE_INVALID);
        assert_string_equal(err, "unix: path must be at most 107 bytes");
        snprintf(in, sizeof(in), "hvsock:%s:1", path);
        assert_int_equal(guarded_parse(in, strlen(in), &ep, &err), PARSE_INVALID);
        assert_string_equal(err, "hvsock: path must be at most 107 bytes");
    }
}

/* Every prefix of every input, each ending right at the guard page: no crash, no over-read,
 * a message on failure, and a round trip on success. */
static void
check_prefixes(const char *s)
{
    size_t len = strlen(s);

    for (size_t n = 0; n <= len; n++) {
        struct endpoint ep;
        const char *err = NULL;
        enum parse_result r = guarded_parse(s, n, &ep, &err);
        if (r == PARSE_OK) {
            assert_null(err);
            assert_round_trip(&ep, NULL);
        } else {
            assert_int_equal(r, PARSE_INVALID);
            assert_non_null(err);
        }
    }
}

static void
test_prefixes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
        check_prefixes(valid[i].in);
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        check_prefixes(invalid[i].in);
}

/* Some prefixes are valid endpoints themselves; the rest must be rejected. */
static void
test_prefix_results(void **state)
{
    (void)state;
    const char *s = "tcp:[::1]:443";
    for (size_t n = 0; n < strlen(s); n++) {
        struct endpoint ep;
        const char *err;
        enum parse_result r = guarded_parse(s, n, &ep, &err);
        /* "tcp:[::1]:4" and "tcp:[::1]:44" are valid endpoints of their own. */
        assert_int_equal(r, n >= 11 ? PARSE_OK : PARSE_INVALID);
    }
}

static void
test_format_truncation(void **state)
{
    (void)state;
    struct endpoint ep;
    const char *err;
    char buf[8];

    assert_int_equal(endpoint_parse("tcp:[2001:db8::1]:443", &ep, &err), PARSE_OK);
    size_t full = strlen("tcp:[2001:db8::1]:443");
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(endpoint_format(&ep, buf, sizeof(buf)), full);
    assert_string_equal(buf, "tcp:[20");
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(endpoint_format(&ep, buf, 1), full);
    assert_int_equal(buf[0], '\0');
    assert_int_equal(buf[1], 'x');
    assert_int_equal(endpoint_format(&ep, NULL, 0), full);
}

static void
test_equal(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b;
        int eq;
    } cases[] = {
        {"tcp:[::1]:80", "tcp:[0:0::1]:80", 1},
        {"tcp:[2001:db8::1]:80", "tcp:[2001:DB8:0::1]:80", 1},
        {"tcp:Example.com:80", "tcp:example.COM:80", 1},
        {"tcp:example.com:80", "tcp:example.com:81", 0},
        {"tcp:example.com:80", "udp:example.com:80", 0},
        {"tcp:example.com:80", "tcp:example.org:80", 0},
        {"tcp:127.0.0.1:80", "tcp:[::ffff:127.0.0.1]:80", 0},
        {"unix:/a", "unix:/a", 1},
        {"unix:/a", "unix:@a", 0},
        {"unix:/a", "hvsock:/a:0", 0},
        {"vsock:3:1", "vsock:3:1", 1},
        {"vsock:3:1", "vsock:4:1", 0},
        {"vsock:any:1", "vsock:4294967294:1", 0},
        {"hvsock:/a:1", "hvsock:/a:2", 0},
        {"hvsock:/a:1", "hvsock:/b:1", 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct endpoint a, b;
        const char *err;
        assert_int_equal(endpoint_parse(cases[i].a, &a, &err), PARSE_OK);
        assert_int_equal(endpoint_parse(cases[i].b, &b, &err), PARSE_OK);
        assert_int_equal(endpoint_equal(&a, &b), cases[i].eq);
        assert_int_equal(endpoint_equal(&b, &a), cases[i].eq);
    }
}

/* A NULL err pointer or string is tolerated. */
static void
test_null(void **state)
{
    (void)state;
    struct endpoint ep;
    const char *err = NULL;

    assert_int_equal(endpoint_parse(NULL, &ep, &err), PARSE_INVALID);
    assert_non_null(err);
    assert_int_equal(endpoint_parse("tcp:a:1", &ep, NULL), PARSE_OK);
    assert_int_equal(endpoint_parse("tcp:a", &ep, NULL), PARSE_INVALID);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),          cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_lengths),        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_prefix_results), cmocka_unit_test(test_format_truncation),
        cmocka_unit_test(test_equal),          cmocka_unit_test(test_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
