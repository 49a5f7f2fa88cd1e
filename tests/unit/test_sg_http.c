/* test_sg_http.c - unit tests for the smartgrid HTTP message parser
 * (apps/smartgrid/http.c): requests and responses with and without bodies,
 * pipelined messages, oversized heads and bodies, chunked and malformed
 * input, query parameters; every prefix of each input placed before a
 * guard page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <http_parser.h>

#include "guard.h"
#include "http.h"

#define HEAD 1024
#define BODY 64

static enum parse_result
guarded(const char *s, size_t len, int response, struct sg_http_msg *m, size_t *msg_len,
        enum sg_http_fault *fault, struct guard *g)
{
    const uint8_t *copy = guard_copy(g, s, len);
    return sg_http_parse(copy, len, response, HEAD, BODY, m, msg_len, fault, NULL);
}

static int
slice_is(struct sg_slice s, const char *want)
{
    if (want == NULL)
        return s.p == NULL;
    return s.p != NULL && s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

struct ok_case {
    const char *in;
    int response;
    size_t msg_len;
    int method, status;
    const char *path, *query, *auth, *body;
    int keep_alive;
};

#define LOGIN                                                                                      \
    "POST /login HTTP/1.1\r\nHost: u.grid.example\r\nContent-Length: 11\r\n\r\n{\"key\":\"k\"}"
#define QUERY                                                                                      \
    "GET /query_avg?metric=power&from=1&to=2 HTTP/1.1\r\nAuthorization: Bearer abc\r\n\r\n"
#define RESP "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

static const struct ok_case ok[] = {
    {LOGIN, 0, sizeof(LOGIN) - 1, HTTP_POST, 0, "/login", NULL, NULL, "{\"key\":\"k\"}", 1},
    {LOGIN "GET / HTTP/1.1\r\n\r\n", 0, sizeof(LOGIN) - 1, HTTP_POST, 0, "/login", NULL, NULL,
     "{\"key\":\"k\"}", 1},
    {QUERY, 0, sizeof(QUERY) - 1, HTTP_GET, 0, "/query_avg", "metric=power&from=1&to=2",
     "Bearer abc", NULL, 1},
    {QUERY QUERY, 0, sizeof(QUERY) - 1, HTTP_GET, 0, "/query_avg", "metric=power&from=1&to=2",
     "Bearer abc", NULL, 1},
    {"POST /logout HTTP/1.0\r\n\r\n", 0, 25, HTTP_POST, 0, "/logout", NULL, NULL, NULL, 0},
    {"POST /logout HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 0, 63, HTTP_POST, 0,
     "/logout", NULL, NULL, NULL, 0},
    {"GET /x HTTP/1.1\nauthorization: t\n\n", 0, 34, HTTP_GET, 0, "/x", NULL, "t", NULL, 1},
    {RESP, 1, sizeof(RESP) - 1, 0, 200, NULL, NULL, NULL, "{}", 1},
    {"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 1, 74, 0,
     503, NULL, NULL, NULL, NULL, 0},
};

static void
test_ok(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        const struct ok_case *c = &ok[i];
        size_t len = strlen(c->in);
        struct guard g;
        struct sg_http_msg m;
        size_t msg_len = 0;
        enum sg_http_fault fault;

        assert_int_equal(guarded(c->in, len, c->response, &m, &msg_len, &fault, &g), PARSE_OK);
        assert_int_equal(msg_len, c->msg_len);
        if (!c->response) {
            assert_int_equal(m.method, c->method);
            assert_true(slice_is(m.path, c->path));
            assert_true(slice_is(m.query, c->query));
        } else {
            assert_int_equal(m.status, c->status);
        }
        assert_true(slice_is(m.auth, c->auth));
        if (c->body == NULL)
            assert_int_equal(m.body.len, 0);
        else
            assert_true(slice_is(m.body, c->body));
        assert_int_equal(m.keep_alive, c->keep_alive);
        guard_free(&g);
        /* every shorter prefix of the message is AGAIN */
        for (size_t n = 0; n < c->msg_len; n++) {
            assert_int_equal(guarded(c->in, n, c->response, &m, &msg_len, &fault, &g), PARSE_AGAIN);
            guard_free(&g);
        }
    }
}

struct bad_case {
    const char *in;
    enum sg_http_fault fault;
};

static const struct bad_case bad[] = {
    {"BLAH\r\n\r\n", SG_HTTP_BAD},
    {"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", SG_HTTP_BAD},
    {"POST /w HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", SG_HTTP_BAD},
    {"POST /w HTTP/1.1\r\nContent-Length: 65\r\n\r\n", SG_HTTP_TOO_LARGE},
    {"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", SG_HTTP_BAD},
    {"GET http://[ HTTP/1.1\r\n\r\n", SG_HTTP_BAD},
};

static void
test_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct guard g;
        struct sg_http_msg m;
        size_t msg_len;
        enum sg_http_fault fault = SG_HTTP_BAD + SG_HTTP_TOO_LARGE + 1;
        const char *err = NULL;
        const uint8_t *copy = guard_copy(&g, bad[i].in, strlen(bad[i].in));
        assert_int_equal(
            sg_http_parse(copy, strlen(bad[i].in), 0, HEAD, BODY, &m, &msg_len, &fault, &err),
            PARSE_INVALID);
        assert_int_equal(fault, bad[i].fault);
        assert_non_null(err);
        guard_free(&g);
    }
}

static void
test_head_too_large(void **state)
{
    (void)state;
    char big[HEAD + 64];
    struct guard g;
    struct sg_http_msg m;
    size_t msg_len;
    enum sg_http_fault fault;

    memset(big, 'a', sizeof(big));
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    assert_int_equal(guarded(big, HEAD, 0, &m, &msg_len, &fault, &g), PARSE_AGAIN);
    guard_free(&g);
    assert_int_equal(guarded(big, sizeof(big), 0, &m, &msg_len, &fault, &g), PARSE_INVALID);
    assert_int_equal(fault, SG_HTTP_TOO_LARGE);
    guard_free(&g);

    /* a complete head over the limit, its body already there: refused too */
    char whole[HEAD + 128];
    int n = snprintf(whole, sizeof(whole),
                     "POST / HTTP/1.1\r\nX: %0*d\r\nContent-Length: 1\r\n\r\nx", HEAD, 0);
    assert_int_equal(guarded(whole, (size_t)n, 0, &m, &msg_len, &fault, &g), PARSE_INVALID);
    assert_int_equal(fault, SG_HTTP_TOO_LARGE);
    guard_free(&g);
}

static void
test_query(void **state)
{
    (void)state;
    const char *q = "metric=power&from=10&to=&xfrom=3&from2=4";
    struct sg_slice s = {q, strlen(q)}, v;
    assert_true(sg_query_param(s, "metric", &v) && slice_is(v, "power"));
    assert_true(sg_query_param(s, "from", &v) && slice_is(v, "10"));
    assert_true(sg_query_param(s, "to", &v) && v.len == 0);
    assert_false(sg_query_param(s, "x", &v));
    assert_false(sg_query_param(s, "rom", &v));
    assert_false(sg_query_param((struct sg_slice){NULL, 0}, "metric", &v));
    s.len = 9; /* "metric=po" */
    assert_true(sg_query_param(s, "metric", &v) && slice_is(v, "po"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_head_too_large),
        cmocka_unit_test(test_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
