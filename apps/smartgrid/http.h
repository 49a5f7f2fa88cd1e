/* http.h - one HTTP/1.1 message (request or response, head and body) of the
 * smartgrid application, parsed by libhttp-parser.
 *
 * Pure: no syscalls, no allocation. Every field handed back is a slice into
 * the caller's buffer (not NUL-terminated). Bodies need a Content-Length:
 * chunked bodies are refused (the application's clients never send them). */
#ifndef SMARTGRID_HTTP_H
#define SMARTGRID_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "proto/parse.h"

struct sg_slice {
    const char *p; /* NULL when absent */
    size_t len;
};

struct sg_http_msg {
    int method;            /* requests: enum http_method (HTTP_GET, HTTP_POST...) */
    int status;            /* responses: the status code */
    struct sg_slice path;  /* requests: the target's path ("/login") */
    struct sg_slice query; /* requests: the target's query, without '?' */
    struct sg_slice auth;  /* the Authorization header's value */
    struct sg_slice body;  /* the body (len 0 when there is none) */
    int keep_alive;        /* 1 when the connection stays open after this message */
};

enum sg_http_fault {
    SG_HTTP_BAD,       /* malformed (answer 400 and close) */
    SG_HTTP_TOO_LARGE, /* the head is over max_head or the body over max_body (413) */
};

/* Parses the message at the start of buf[0..len), which may hold bytes of
 * the next message after it. response is 0 for a request, 1 for a response.
 *
 * PARSE_OK: *m is filled and *msg_len is the message's length, body included.
 * PARSE_AGAIN: a valid prefix; more bytes are needed.
 * PARSE_INVALID: *fault says why and *err (may be NULL) names the fault.
 * A Content-Length over max_body is refused as soon as the head is complete,
 * before the body arrives. *m and *msg_len are written only on PARSE_OK.
 * Never reads past buf[len). */
enum parse_result sg_http_parse(const uint8_t *buf, size_t len, int response, size_t max_head,
                                size_t max_body, struct sg_http_msg *m, size_t *msg_len,
                                enum sg_http_fault *fault, const char **err);

/* Finds parameter name in a query string ("a=1&b=2"). Returns 1 and sets
 * *val to its raw value (a slice of query, no percent-decoding), or 0 when
 * the parameter is absent. */
int sg_query_param(struct sg_slice query, const char *name, struct sg_slice *val);

#endif
