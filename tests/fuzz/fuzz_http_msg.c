/* fuzz_http_msg.c - libFuzzer harness for the proxy's HTTP message parser
 * (proto/http_msg.c over libhttp-parser). The first byte picks request or
 * response and a split point; the rest is fed at once, and again in two
 * pieces with the buffer squeezed between them as the proxy does.
 * Properties: both ways end the same (DONE with the same body bytes, or
 * INVALID with the same fault, or still AGAIN); every span lies inside what
 * was fed; the body stays within its limit. abort() on any disagreement. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/http_msg.h"

#define HEAD_MAX 2048
#define BODY_MAX 4096

static enum http_msg_result
run(struct http_msg *m, char *buf, size_t *len, size_t split, bool response)
{
    size_t total = *len, have = split < total ? split : total;
    enum http_msg_result r;

    http_msg_init(m, response, HEAD_MAX, 32, BODY_MAX);
    for (;;) {
        while ((r = http_msg_feed(m, buf, have)) == HTTP_MSG_HEAD)
            ;
        if (r != HTTP_MSG_AGAIN || have == total)
            break;
        /* squeeze, then the rest: what moved down closes the gap */
        size_t before = have;
        http_msg_squeeze(m, buf, &have);
        memmove(buf + have, buf + before, total - before);
        total -= before - have;
        have = total;
    }
    *len = total;
    return r;
}

static void
spans_inside(const struct http_msg *m, size_t len)
{
    check(m->url.off + m->url.len <= len);
    for (size_t i = 0; i < m->n_hdr; i++) {
        check(m->hdr[i].name.off + m->hdr[i].name.len <= len);
        check(m->hdr[i].value.off + m->hdr[i].value.len <= len);
    }
    check(m->body.off + m->body.len <= len);
    check(m->body.len <= BODY_MAX);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    bool response = data[0] & 1;
    size_t n = size - 1, split = (size_t)data[0] % (n + 1);
    char *a = malloc(n), *b = malloc(n);
    struct http_msg *ma = malloc(sizeof(*ma)), *mb = malloc(sizeof(*mb));
    size_t la = n, lb = n;

    check(a != NULL && b != NULL && ma != NULL && mb != NULL);
    memcpy(a, data + 1, n);
    memcpy(b, data + 1, n);
    enum http_msg_result ra = run(ma, a, &la, n, response);
    enum http_msg_result rb = run(mb, b, &lb, split, response);
    check(ra == rb);
    if (ra == HTTP_MSG_DONE) {
        spans_inside(ma, la);
        spans_inside(mb, lb);
        check(ma->body.len == mb->body.len);
        check(memcmp(a + ma->body.off, b + mb->body.off, ma->body.len) == 0);
        check(ma->end <= la && mb->end <= lb);
    } else if (ra == HTTP_MSG_INVALID) {
        check(ma->fault == mb->fault);
    }
    free(a);
    free(b);
    free(ma);
    free(mb);
    return 0;
}
