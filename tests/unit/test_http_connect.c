/* test_http_connect.c - unit tests for the HTTP proxy request head parser:
 * CONNECT targets, other methods, malformed and oversized heads, and every
 * prefix of each input placed before a guard page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "guard.h"
#include "proto/http_connect.h"

#define MAX 4096

static enum parse_result
guarded(const char *s, size_t len, size_t max, struct http_connect *req, size_t *head_len,
        const char **err, struct guard *g)
{
    const uint8_t *copy = guard_copy(g, s, len);
    return http_connect_parse(copy, len, max, req, head_len, err);
}

struct ok_case {
    const char *in;
    int is_connect;
    const char *host; /* NULL for other methods */
    uint16_t port;
    size_t head_len;
};

#define CURL_HEAD                                                                                  \
    "CONNECT svc.egress.test:4433 HTTP/1.1\r\nHost: svc.egress.test:4433\r\n"                      \
    "User-Agent: curl/7.88.1\r\nProxy-Connection: Keep-Alive\r\n\r\n"

static const struct ok_case ok[] = {
    {CURL_HEAD, 1, "svc.egress.test", 4433, sizeof(CURL_HEAD) - 1},
    {CURL_HEAD "\x16\x03\x01 client hello", 1, "svc.egress.test", 4433, sizeof(CURL_HEAD) - 1},
    {"CONNECT 198.51.100.7:443 HTTP/1.1\r\n\r\n", 1, "198.51.100.7", 443, 37},
    {"CONNECT [2001:db8::1]:443 HTTP/1.1\r\n\r\n", 1, "2001:db8::1", 443, 38},
    {"CONNECT a:1 HTTP/1.0\r\n\r\n", 1, "a", 1, 24},
    {"CONNECT a.b:65535 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 1, "a.b", 65535, 49},
    {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, NULL, 0, 27},
    {"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\nmore", 0, NULL, 0, 55},
    {"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 0, NULL, 0, 39},
};

static void
test_ok(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        const struct ok_case *c = &ok[i];
        struct http_connect req;
        size_t head_len = 0;
        const char *err = "unset";
        struct guard g;

        print_message("ok: %.40s\n", c->in);
        assert_int_equal(guarded(c->in, strlen(c->in), MAX, &req, &head_len, &err, &g), PARSE_OK);
        assert_null(err);
        assert_int_equal(req.is_connect, c->is_connect);
        assert_int_equal(head_len, c->head_len);
        if (c->host != NULL) {
            assert_int_equal(req.host_len, strlen(c->host));
            assert_memory_equal(req.host, c->host, req.host_len);
            assert_int_equal(req.port, c->port);
            assert_string_equal(req.method, "CONNECT");
        } else {
            assert_null(req.host);
            assert_non_null(req.method);
        }
        guard_free(&g);
    }
}

static const char *const invalid[] = {
    "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "\r\n\r\n\0\r\nQUIT\n",
    "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
    "garbage\r\n\r\n",
    "CONNECT /path HTTP/1.1\r\n\r\n",
    "CONNECT example.com HTTP/1.1\r\n\r\n",
    "CONNECT example.com:0 HTTP/1.1\r\n\r\n",
    "CONNECT example.com:65536 HTTP/1.1\r\n\r\n",
    "CONNECT example.com:x HTTP/1.1\r\n\r\n",
    "CONNECT user@example.com:443 HTTP/1.1\r\n\r\n",
    "CONNECT example.com:443 FTP/1.1\r\n\r\n",
    "CONNECT example.com:443 HTTP/1.1\r\nBad Header\r\n\r\n",
    "connect example.com:443 HTTP/1.1\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
};

static void
test_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        size_t len = i == 1 ? 12 : strlen(invalid[i]);
        struct http_connect req;
        size_t head_len;
        const char *err = NULL;
        struct guard g;

        print_message("invalid: %zu\n", i);
        assert_int_equal(guarded(invalid[i], len, MAX, &req, &head_len, &err, &g), PARSE_INVALID);
        assert_non_null(err);
        guard_free(&g);
    }
}

/* A head that does not end within max bytes is refused once max bytes
 * are there, not waited for. */
static void
test_too_large(void **state)
{
    (void)state;
    char big[MAX + 100];
    struct http_connect req;
    size_t head_len;
    const char *err = NULL;
    struct guard g;
    size_t pre = strlen("CONNECT a.b:443 HTTP/1.1\r\nX: ");

    memcpy(big, "CONNECT a.b:443 HTTP/1.1\r\nX: ", pre);
    memset(big + pre, 'a', sizeof(big) - pre);
    assert_int_equal(guarded(big, MAX - 1, MAX, &req, &head_len, &err, &g), PARSE_AGAIN);
    guard_free(&g);
    assert_int_equal(guarded(big, MAX, MAX, &req, &head_len, &err, &g), PARSE_INVALID);
    assert_string_equal(err, "request head larger than the limit");
    guard_free(&g);
    assert_int_equal(guarded(big, sizeof(big), MAX, &req, &head_len, &err, &g), PARSE_INVALID);
    guard_free(&g);

    /* a complete head within max, followed by more than max bytes */
    memcpy(big, CURL_HEAD, sizeof(CURL_HEAD) - 1);
    assert_int_equal(guarded(big, sizeof(big), MAX, &req, &head_len, &err, &g), PARSE_OK);
    assert_int_equal(head_len, sizeof(CURL_HEAD) - 1);
    guard_free(&g);
}

/* Every proper prefix of a valid head is AGAIN (or already OK once the
 * head is complete); every prefix of an invalid one is AGAIN or INVALID,
 * never a crash past the guard. */
static void
test_prefixes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        size_t len = strlen(ok[i].in);
        for (size_t n = 0; n < len; n++) {
            struct http_connect req;
            size_t head_len;
            const char *err = NULL;
            struct guard g;
            enum parse_result r = guarded(ok[i].in, n, MAX, &req, &head_len, &err, &g);
            if (n < ok[i].head_len)
                assert_int_equal(r, PARSE_AGAIN);
            else
                assert_int_equal(r, PARSE_OK);
            guard_free(&g);
        }
    }
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        size_t len = i == 1 ? 12 : strlen(invalid[i]);
        for (size_t n = 0; n <= len; n++) {
            struct http_connect req;
            size_t head_len;
            const char *err = NULL;
            struct guard g;
            enum parse_result r = guarded(invalid[i], n, MAX, &req, &head_len, &err, &g);
            assert_true(r == PARSE_AGAIN || r == PARSE_INVALID);
            assert_true(r == PARSE_AGAIN || err != NULL);
            guard_free(&g);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
