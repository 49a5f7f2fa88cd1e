/* http_connect.h - the head of an HTTP proxy request (CONNECT host:port),
 * parsed by libhttp-parser (Debian's libhttp-parser-dev, nodejs's parser).
 *
 * Pure: no syscalls, no allocation. The request arrives from the enclave
 * and is untrusted: every field handed back is a checked slice into the
 * caller's buffer. */
#ifndef AIRLOCK_PROTO_HTTP_CONNECT_H
#define AIRLOCK_PROTO_HTTP_CONNECT_H

#include <stddef.h>
#include <stdint.h>

#include "proto/parse.h"

struct http_connect {
    int is_connect;     /* 1 for CONNECT; 0 for any other method (answer 405) */
    const char *method; /* static name of the method ("GET", ...) */
    const char *host;   /* CONNECT: the authority's host, IPv6 without brackets; */
    size_t host_len;    /* a slice into the caller's buffer, not NUL-terminated */
    uint16_t port;      /* CONNECT: 1-65535 */
};

/* Parses the request head at the start of buf[0..len), which may hold
 * bytes after the head (a client's first payload). max bounds the head.
 *
 * PARSE_OK: a complete head; *req is filled and *head_len is its length,
 * the empty line included (the payload starts at buf + *head_len). For a
 * method other than CONNECT, req->host is NULL. A CONNECT whose target is
 * not host:port (an origin-form path, a missing or zero port, user info)
 * is PARSE_INVALID.
 * PARSE_AGAIN: a valid prefix of a head shorter than max; more bytes needed.
 * PARSE_INVALID: *err (may be NULL) names the fault, "request head larger
 * than the limit" included. *req and *head_len are written only on PARSE_OK.
 * Never reads past buf[len). */
enum parse_result http_connect_parse(const uint8_t *buf, size_t len, size_t max,
                                     struct http_connect *req, size_t *head_len, const char **err);

#endif
