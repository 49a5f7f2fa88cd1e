/* test_http_msg.c - unit tests for the proxy's resumable HTTP message
 * parser: requests and responses fed at once, byte by byte (the buffer
 * growing and squeezed as the proxy does) and as every prefix before a
 * guard page; chunked bodies de-chunked in place; limits; EOF-delimited
 * and truncated responses; hop-by-hop headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guard.h"
#include "proto/http_msg.h"

#define HEAD_MAX 1024
#define BODY_MAX 64

struct ok_case {
    const char *in;
    bool response;
    const char *body; /* de-chunked */
    size_t end;       /* the message's length (bytes after it belong to the next) */
};

#define CHUNKED_REQ                                                                                \
    "POST /pay HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"                          \
    "4\r\n{\"a\"\r\n3;ext=1\r\n:1}\r\n0\r\nTrailer: t\r\n\r\n"

static const struct ok_case ok[] = {
    {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", false, "", 27},
    {"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\n\r\n", false, "", 27},
    {"POST /p HTTP/1.1\r\nContent-Length: 7\r\n\r\n{\"a\":1}", false, "{\"a\":1}", 46},
    {CHUNKED_REQ, false, "{\"a\":1}", sizeof(CHUNKED_REQ) - 1},
    {CHUNKED_REQ "POST /2 HTTP/1.1\r\n\r\n", false, "{\"a\":1}", sizeof(CHUNKED_REQ) - 1},
    {"POST / HTTP/1.0\r\nContent-Length: 0\r\n\r\n", false, "", 38},
    {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true, "ok", 40},
    {"HTTP/1.1 204 No Content\r\n\r\n", true, "", 27},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n1\r\n!\r\n0\r\n\r\n", true,
     "ok!", 65},
};

/* Feeds in byte by byte into a growing buffer, squeezing after each AGAIN
 * as the proxy does; returns DONE or INVALID with m filled. */
static enum http_msg_result
feed_bytewise(const char *in, size_t n, bool response, struct http_msg *m, char **bufp,
              size_t *lenp)
{
    char *buf = malloc(n + 1);
    size_t len = 0;
    enum http_msg_result r = HTTP_MSG_AGAIN;

    assert_non_null(buf);
    http_msg_init(m, response, HEAD_MAX, 16, BODY_MAX);
    for (size_t i = 0; i < n && r != HTTP_MSG_DONE && r != HTTP_MSG_INVALID; i++) {
        buf[len++] = in[i];
        do {
            r = http_msg_feed(m, buf, len);
            if (r == HTTP_MSG_AGAIN)
                http_msg_squeeze(m, buf, &len);
        } while (r == HTTP_MSG_HEAD);
    }
    if (r == HTTP_MSG_AGAIN && response)
        r = http_msg_eof(m, buf, len);
    *bufp = buf;
    *lenp = len;
    return r;
}

/* Feeds in whole, once; returns DONE or INVALID with m filled (AGAIN when
 * a request is not whole). */
static enum http_msg_result
feed_whole(const char *in, size_t n, bool response, struct http_msg *m)
{
    char *buf = malloc(n + 1);
    enum http_msg_result r;

    assert_non_null(buf);
    memcpy(buf, in, n);
    http_msg_init(m, response, HEAD_MAX, 16, BODY_MAX);
    while ((r = http_msg_feed(m, buf, n)) == HTTP_MSG_HEAD)
        ;
    if (r == HTTP_MSG_AGAIN && response)
        r = http_msg_eof(m, buf, n);
    free(buf);
    return r;
}

static void
test_ok(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof(ok) / sizeof(ok[0]); c++) {
        const struct ok_case *k = &ok[c];
        size_t n = strlen(k->in), len;
        struct http_msg m;
        char *buf;

        /* at once */
        struct guard g;
        char *copy = (char *)guard_copy(&g, k->in, n);
        http_msg_init(&m, k->response, HEAD_MAX, 16, BODY_MAX);
        enum http_msg_result r;
        while ((r = http_msg_feed(&m, copy, n)) == HTTP_MSG_HEAD)
            ;
        assert_int_equal(r, HTTP_MSG_DONE);
        assert_int_equal(m.end, k->end);
        assert_int_equal(m.body.len, strlen(k->body));
        assert_memory_equal(copy + m.body.off, k->body, m.body.len);
        guard_free(&g);

        /* byte by byte: the same body, and the bytes after it intact */
        r = feed_bytewise(k->in, k->end, k->response, &m, &buf, &len);
        assert_int_equal(r, HTTP_MSG_DONE);
        assert_int_equal(m.body.len, strlen(k->body));
        assert_memory_equal(buf + m.body.off, k->body, m.body.len);
        free(buf);

        /* every prefix before a guard page: valid so far, no over-read */
        for (size_t p = 1; p < k->end; p++) {
            copy = (char *)guard_copy(&g, k->in, p);
            http_msg_init(&m, k->response, HEAD_MAX, 16, BODY_MAX);
            while ((r = http_msg_feed(&m, copy, p)) == HTTP_MSG_HEAD)
                ;
            assert_true(r == HTTP_MSG_AGAIN || r == HTTP_MSG_DONE);
            guard_free(&g);
        }
    }
}

/* Trailers of a chunked body never become headers (their bytes are
 * squeezed out with the framing), whole or byte by byte. */
static void
test_trailers(void **state)
{
    static const char in[] = CHUNKED_REQ;
    char buf[sizeof(in)], *grown;
    struct http_msg m;
    size_t len;

    (void)state;
    memcpy(buf, in, sizeof(in));
    http_msg_init(&m, false, HEAD_MAX, 16, BODY_MAX);
    while (http_msg_feed(&m, buf, sizeof(in) - 1) == HTTP_MSG_HEAD)
        ;
    assert_true(m.done);
    assert_int_equal(m.n_hdr, 2);
    assert_int_equal(feed_bytewise(in, sizeof(in) - 1, false, &m, &grown, &len), HTTP_MSG_DONE);
    assert_int_equal(m.n_hdr, 2);
    free(grown);
}

static void
test_head_pause(void **state)
{
    static const char in[] =
        "PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: x-a, close\r\n"
        "X-A: 1\r\nKeep-Alive: 5\r\n\r\nabc";
    char buf[sizeof(in)];
    struct http_msg m;
    size_t vlen;

    (void)state;
    memcpy(buf, in, sizeof(in));
    http_msg_init(&m, false, HEAD_MAX, 16, BODY_MAX);
    /* the head alone: HEAD, then AGAIN for the body */
    size_t head = strstr(in, "\r\n\r\n") - in + 4;
    assert_int_equal(http_msg_feed(&m, buf, head), HTTP_MSG_HEAD);
    assert_int_equal(m.head_len, head);
    assert_false(m.keep_alive);
    const char *v = http_msg_header(&m, "EXPECT", &vlen);
    assert_non_null(v);
    assert_true(http_list_has(v, vlen, "100-continue"));
    assert_true(http_msg_hop(&m, "X-A", 3));
    assert_true(http_msg_hop(&m, "keep-alive", 10));
    assert_true(http_msg_hop(&m, "Transfer-Encoding", 17));
    assert_false(http_msg_hop(&m, "Expect", 6));
    assert_false(http_msg_hop(&m, "X-B", 3));
    assert_int_equal(http_msg_feed(&m, buf, head), HTTP_MSG_AGAIN);
    assert_int_equal(http_msg_feed(&m, buf, sizeof(in) - 1), HTTP_MSG_DONE);
    assert_memory_equal(buf + m.body.off, "abc", 3);
}

struct bad_case {
    const char *in;
    bool response;
    enum http_msg_fault fault;
};

/* Each refused with its fault, the same whole and byte by byte: a fault
 * never depends on how the bytes were cut into feeds. */
static void
test_bad(void **state)
{
    static char big_head[HEAD_MAX + 64], big_bad[HEAD_MAX + 64];
    static char many[2048], many_bad[2048];
    (void)state;

    memset(big_head, 0, sizeof(big_head));
    snprintf(big_head, sizeof(big_head), "GET / HTTP/1.1\r\nX: ");
    memset(big_head + strlen(big_head), 'a', HEAD_MAX);
    /* past max_head, a byte no head may hold: the head is too large,
     * whether the parser got to that byte or not */
    snprintf(big_bad, sizeof(big_bad), "%s\x01\r\n\r\n", big_head);
    strcpy(many, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 16; i++)
        strcat(many, "A: b\r\n");
    /* one header line too many, whose name is not a token: malformed, as
     * the whole head is refused, however its bytes came */
    snprintf(many_bad, sizeof(many_bad), "%sA\x01: b\r\n\r\n", many);
    strcat(many, "A: b\r\n\r\n");
    const struct bad_case bad[] = {
        {"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", false, HTTP_FAULT_BAD},
        {"GET / HTTP/1.1\r\nHost x\r\n\r\n", false, HTTP_FAULT_BAD},
        {"POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n", false, HTTP_FAULT_BODY_LARGE},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n", false,
         HTTP_FAULT_BODY_LARGE},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, HTTP_FAULT_BAD},
        {big_head, false, HTTP_FAULT_HEAD_LARGE},
        {many, false, HTTP_FAULT_HEADERS},
        {big_bad, false, HTTP_FAULT_HEAD_LARGE},
        {many_bad, false, HTTP_FAULT_BAD},
        {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", true, HTTP_FAULT_BODY_LARGE},
    };
    for (size_t c = 0; c < sizeof(bad) / sizeof(bad[0]); c++) {
        size_t len;
        struct http_msg m;
        char *buf;
        enum http_msg_result r =
            feed_bytewise(bad[c].in, strlen(bad[c].in), bad[c].response, &m, &buf, &len);
        free(buf);
        if (r != HTTP_MSG_INVALID || m.fault != bad[c].fault)
            fail_msg("case %zu byte by byte: result %d fault %d", c, r, m.fault);
        r = feed_whole(bad[c].in, strlen(bad[c].in), bad[c].response, &m);
        if (r != HTTP_MSG_INVALID || m.fault != bad[c].fault)
            fail_msg("case %zu whole: result %d fault %d", c, r, m.fault);
    }
}

/* Heads whose header bytes the proxy would write on as something else:
 * obs-fold (a value over two lines: its span would carry the line break
 * to the next hop, the rest of the head read there as a second request),
 * whitespace before the first header or before a colon. Refused, in
 * requests and responses, whole and byte by byte. */
static void
test_folded(void **state)
{
    static const char *const heads[] = {
        "X-A: a\r\n b\r\n", "X-A: a\r\n\tb\r\n",
        "X-A:\r\n b\r\n",   "X-A:\r\n \r\n",
        "X-A: a\n b\n",     "Host: x\r\nX-A: a\r\n b\r\nContent-Type: application/json\r\n",
        " X-A: a\r\n",      "X-A : a\r\n",
        "X A: a\r\n",
    };
    static const char *const starts[] = {"POST /pay HTTP/1.1\r\n", "HTTP/1.1 200 OK\r\n"};

    (void)state;
    for (size_t k = 0; k < 2; k++)
        for (size_t c = 0; c < sizeof(heads) / sizeof(heads[0]); c++) {
            char in[512], *buf;
            size_t len;
            struct http_msg m;
            int n =
                snprintf(in, sizeof(in), "%s%sContent-Length: 2\r\n\r\n{}", starts[k], heads[c]);
            enum http_msg_result r = feed_bytewise(in, (size_t)n, k == 1, &m, &buf, &len);
            free(buf);
            if (r != HTTP_MSG_INVALID || m.fault != HTTP_FAULT_BAD)
                fail_msg("%s case %zu bytewise: result %d fault %d", k ? "response" : "request", c,
                         r, m.fault);
            http_msg_init(&m, k == 1, HEAD_MAX, 16, BODY_MAX);
            while ((r = http_msg_feed(&m, in, (size_t)n)) == HTTP_MSG_HEAD)
                ;
            if (r != HTTP_MSG_INVALID || m.fault != HTTP_FAULT_BAD)
                fail_msg("%s case %zu whole: result %d fault %d", k ? "response" : "request", c, r,
                         m.fault);
        }
}

/* A response 1xx, 204 or 304 has no body whatever its Content-Length: it
 * is DONE at the end of its head (the next bytes are the next response). */
static void
test_bodyless(void **state)
{
    static const char *const heads[] = {
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\n\r\n",
        "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
        "HTTP/1.1 100 Continue\r\nContent-Length: 3\r\n\r\n",
        "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\nContent-Length: 70000\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
    };

    (void)state;
    for (size_t c = 0; c < sizeof(heads) / sizeof(heads[0]); c++) {
        char in[512], *buf;
        size_t n = (size_t)snprintf(in, sizeof(in), "%sHTTP/1.1 200 OK\r\n\r\n", heads[c]);
        size_t head = strlen(heads[c]), len;
        struct http_msg m;
        enum http_msg_result r;

        http_msg_init(&m, true, HEAD_MAX, 16, BODY_MAX);
        while ((r = http_msg_feed(&m, in, n)) == HTTP_MSG_HEAD)
            ;
        if (r != HTTP_MSG_DONE || m.end != head || m.body.len != 0)
            fail_msg("case %zu: result %d end %zu (want %zu)", c, r, m.end, head);
        /* byte by byte: done on its head's last byte */
        r = feed_bytewise(in, head, true, &m, &buf, &len);
        free(buf);
        if (r != HTTP_MSG_DONE || m.end != head)
            fail_msg("case %zu bytewise: result %d end %zu", c, r, m.end);
    }
}

/* Headers that may come several times are read as one list; the first
 * alone must not decide. */
static void
test_lists(void **state)
{
    static const char in[] =
        "POST / HTTP/1.1\r\nContent-Encoding: identity\r\nConnection: close\r\n"
        "Content-Encoding: br\r\nConnection: x-secret, "
        "x-a-header-name-longer-than-sixty-four-characters-which-is-still-hop-by-hop\r\n"
        "Content-Length: 0\r\n\r\n";
    char buf[sizeof(in)];
    struct http_msg m;
    size_t other = 99;
    static const char lng[] =
        "X-A-Header-Name-Longer-Than-Sixty-Four-Characters-Which-Is-Still-Hop-By-Hop";

    (void)state;
    memcpy(buf, in, sizeof(in));
    http_msg_init(&m, false, HEAD_MAX, 16, BODY_MAX);
    assert_int_equal(http_msg_feed(&m, buf, sizeof(in) - 1), HTTP_MSG_HEAD);
    assert_int_equal(http_msg_count(&m, "content-encoding"), 2);
    assert_int_equal(http_msg_count(&m, "content-type"), 0);
    assert_int_equal(http_msg_list(&m, "content-encoding", "identity", &other), 1);
    assert_int_equal(other, 1);
    assert_int_equal(http_msg_list(&m, "content-type", "identity", &other), 0);
    assert_int_equal(other, 0);
    assert_true(http_msg_coded(&m)); /* br on the second line */
    assert_true(http_msg_hop(&m, "X-Secret", 8));
    assert_true(http_msg_hop(&m, lng, strlen(lng)));
    assert_false(http_msg_hop(&m, lng, strlen(lng) - 1));
    assert_false(http_msg_hop(&m, "Content-Encoding", 16));
    size_t vlen;
    const char *v = http_msg_header(&m, "connection", &vlen);
    assert_non_null(v);
    assert_true(http_list_has(v, vlen, "close"));
    assert_false(http_list_has("gzip, identity", 14, "br"));
    assert_true(http_list_has(" , gzip ,identity ", 18, "identity"));
}

/* A content coding is any but identity, in any case, on any line; no
 * Content-Encoding, or only empty ones, is none. */
static void
test_coded(void **state)
{
    static const struct {
        const char *headers;
        bool coded;
    } cases[] = {
        {"", false},
        {"Content-Encoding: IDENTITY\r\nContent-Encoding: \r\n", false},
        {"Content-Encoding: Identity , identity\r\n", false},
        {"Content-Encoding: x-gzip\r\n", true},
        {"Content-Encoding: gzip, gzip\r\n", true},
        {"Content-Encoding: \"identity\"\r\n", true},
        {"Content-Encoding: identity\r\nContent-Encoding: br\r\n", true},
    };
    char buf[256];
    struct http_msg m;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n%sContent-Length: 0\r\n\r\n",
                         cases[i].headers);
        http_msg_init(&m, true, HEAD_MAX, 16, BODY_MAX);
        assert_int_equal(http_msg_feed(&m, buf, (size_t)n), HTTP_MSG_HEAD);
        assert_int_equal(http_msg_coded(&m), cases[i].coded);
    }
}

/* Authentication schemes are read as words over every header of the name:
 * first, after a comma or in a parameter; never as part of a longer word. */
static void
test_auth_scheme(void **state)
{
    static const char in[] = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\n"
                             "WWW-Authenticate: Bearer, negotiate\r\n"
                             "Authorization: NTLMv2 abc\r\nContent-Length: 0\r\n\r\n";
    char buf[sizeof(in)];
    struct http_msg m;

    (void)state;
    memcpy(buf, in, sizeof(in));
    http_msg_init(&m, true, HEAD_MAX, 16, BODY_MAX);
    assert_int_equal(http_msg_feed(&m, buf, sizeof(in) - 1), HTTP_MSG_HEAD);
    assert_true(http_msg_auth_scheme(&m, "www-authenticate", "Negotiate"));
    assert_true(http_msg_auth_scheme(&m, "www-authenticate", "basic"));
    assert_false(http_msg_auth_scheme(&m, "www-authenticate", "NTLM"));
    assert_false(http_msg_auth_scheme(&m, "authorization", "NTLM"));
    assert_false(http_msg_auth_scheme(&m, "authorization", "Negotiate"));
}

static void
test_eof(void **state)
{
    char eof_body[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close";
    char truncated[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort";
    char chunk_cut[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab";
    char head_cut[] = "HTTP/1.1 200 OK\r\nContent-Le";
    struct http_msg m;

    (void)state;
    http_msg_init(&m, true, HEAD_MAX, 16, BODY_MAX);
    assert_int_equal(http_msg_eof(&m, eof_body, strlen(eof_body)), HTTP_MSG_HEAD);
    assert_int_equal(http_msg_eof(&m, eof_body, strlen(eof_body)), HTTP_MSG_DONE);
    assert_memory_equal(eof_body + m.body.off, "until close", m.body.len);
    char *cases[] = {truncated, chunk_cut, head_cut};
    for (size_t i = 0; i < 3; i++) {
        enum http_msg_result r;
        http_msg_init(&m, true, HEAD_MAX, 16, 1000);
        while ((r = http_msg_eof(&m, cases[i], strlen(cases[i]))) == HTTP_MSG_HEAD)
            ;
        assert_int_equal(r, HTTP_MSG_INVALID);
        assert_int_equal(m.fault, HTTP_FAULT_TRUNCATED);
    }
    /* a response to HEAD: no body, whatever its Content-Length */
    char head_resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n";
    http_msg_init(&m, true, HEAD_MAX, 16, BODY_MAX);
    m.skip_body = true;
    assert_int_equal(http_msg_feed(&m, head_resp, strlen(head_resp)), HTTP_MSG_HEAD);
    assert_int_equal(http_msg_feed(&m, head_resp, strlen(head_resp)), HTTP_MSG_DONE);
    assert_int_equal(m.end, strlen(head_resp));
}

/* A body streamed: each byte's worth fed, passed on and consumed as it
 * comes (the buffer never holds more than the head and what is unsent),
 * chunked and by length; what was passed on is the whole body. */
static void
test_consume(void **state)
{
    static const char *const in[] = {
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nabcdefg",
    };

    (void)state;
    for (size_t k = 0; k < 2; k++) {
        char buf[256], out[16];
        size_t len = 0, got = 0, n = strlen(in[k]);
        enum http_msg_result r = HTTP_MSG_AGAIN;
        struct http_msg m;

        http_msg_init(&m, true, HEAD_MAX, 16, 4); /* a body over max_body: consumed on the way */
        m.max_body = SIZE_MAX;
        for (size_t i = 0; i < n && r != HTTP_MSG_DONE; i++) {
            buf[len++] = in[k][i];
            do {
                r = http_msg_feed(&m, buf, len);
                if (r == HTTP_MSG_AGAIN)
                    http_msg_squeeze(&m, buf, &len);
            } while (r == HTTP_MSG_HEAD);
            assert_int_not_equal(r, HTTP_MSG_INVALID);
            memcpy(out + got, buf + m.body.off, m.body.len);
            got += m.body.len;
            http_msg_consume(&m, buf, &len, m.body.len);
            assert_true(!m.head_done || len <= m.head_len + 16);
        }
        assert_int_equal(r, HTTP_MSG_DONE);
        assert_int_equal(got, 7);
        assert_memory_equal(out, "abcdefg", 7);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok),          cmocka_unit_test(test_trailers),
        cmocka_unit_test(test_head_pause),  cmocka_unit_test(test_bad),
        cmocka_unit_test(test_eof),         cmocka_unit_test(test_consume),
        cmocka_unit_test(test_folded),      cmocka_unit_test(test_bodyless),
        cmocka_unit_test(test_lists),       cmocka_unit_test(test_coded),
        cmocka_unit_test(test_auth_scheme),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
