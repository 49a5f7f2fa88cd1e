/* fuzz_sg_http.c - libFuzzer harness for the smartgrid HTTP message parser
 * (apps/smartgrid/http.c), requests and responses.
 *
 * On PARSE_OK: the message length and every slice must lie inside the
 * input, and the message alone must parse to the same result. On
 * PARSE_INVALID an error is named. abort() on any disagreement. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"

#define HEAD 2048
#define BODY 4096

static void
inside(struct sg_slice s, const uint8_t *data, size_t size)
{
    if (s.p != NULL)
        check(s.p >= (const char *)data && s.p + s.len <= (const char *)data + size);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int response = 0; response < 2; response++) {
        struct sg_http_msg m, again;
        size_t len = 0, len2 = 0;
        enum sg_http_fault fault;
        const char *err = NULL;
        enum parse_result r =
            sg_http_parse(data, size, response, HEAD, BODY, &m, &len, &fault, &err);
        if (r == PARSE_INVALID) {
            check(err != NULL && (fault == SG_HTTP_BAD || fault == SG_HTTP_TOO_LARGE));
            continue;
        }
        if (r == PARSE_AGAIN)
            continue;
        check(len > 0 && len <= size && m.body.len <= BODY);
        inside(m.path, data, len);
        inside(m.query, data, len);
        inside(m.auth, data, len);
        inside(m.body, data, len);
        check(sg_http_parse(data, len, response, HEAD, BODY, &again, &len2, &fault, NULL) ==
              PARSE_OK);
        check(len2 == len && again.body.len == m.body.len && again.status == m.status &&
              again.method == m.method);
        struct sg_slice v;
        sg_query_param(m.query, "metric", &v);
    }
    return 0;
}
