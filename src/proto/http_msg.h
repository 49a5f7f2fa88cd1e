/* http_msg.h - one HTTP/1.1 message (request or response) parsed as its
 * bytes arrive, through libhttp-parser, for the reverse proxy (src/http/).
 *
 * Pure: no syscalls, no allocation. The caller owns one buffer per
 * direction and feeds it again after each read; the parser's state lives
 * in struct http_msg, so bytes may arrive one at a time. Everything handed
 * back is an offset into that buffer (valid until the caller drops the
 * message's bytes). A chunked body is de-chunked in place: the body is
 * always one contiguous span, and the chunk framing after it in the buffer
 * is dead space the caller may squeeze out (http_msg_squeeze()). */
#ifndef AIRLOCK_PROTO_HTTP_MSG_H
#define AIRLOCK_PROTO_HTTP_MSG_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MSG_HEADERS_MAX 256 /* the most header lines a message may have */

/* A slice of the caller's buffer. */
struct http_span {
    size_t off, len;
};

struct http_hdr {
    struct http_span name, value;
};

enum http_msg_result {
    HTTP_MSG_AGAIN,   /* valid so far: feed more bytes */
    HTTP_MSG_HEAD,    /* the head is complete (once per message): inspect it, feed again */
    HTTP_MSG_DONE,    /* the message is complete: msg->end is its length */
    HTTP_MSG_INVALID, /* msg->fault says why */
};

enum http_msg_fault {
    HTTP_FAULT_NONE,
    HTTP_FAULT_BAD,        /* malformed (400 for a request, 502 for a response) */
    HTTP_FAULT_HEAD_LARGE, /* the head is over max_head (431) */
    HTTP_FAULT_HEADERS,    /* more than max_headers header lines (431) */
    HTTP_FAULT_BODY_LARGE, /* the body is, or says it will be, over max_body (413) */
    HTTP_FAULT_TRUNCATED,  /* the peer closed inside the message */
};

struct http_msg {
    http_parser parser;
    char *buf; /* the buffer being fed (set by each call) */
    size_t max_head, max_body, max_headers;
    size_t fed;      /* bytes of buf the parser has seen */
    size_t head_len; /* the head's length once HTTP_MSG_HEAD was returned */
    size_t end;      /* DONE: the message's length in buf */
    struct http_span url;
    struct http_hdr hdr[HTTP_MSG_HEADERS_MAX];
    size_t n_hdr;
    struct http_span body; /* contiguous, de-chunked */
    int last;              /* the last header callback: 0 none, 1 field, 2 value */
    bool head_done, done, chunked;
    /* a header line beyond max_headers: refused once the head is whole
     * (HTTP_FAULT_HEADERS), so that a head that is also malformed is
     * refused as that, however its bytes were cut into feeds */
    bool too_many;
    bool skip_body; /* a response to HEAD: set before feeding */
    bool keep_alive;
    enum http_msg_fault fault;
};

/* Starts m on a new message: response false for a request. The limits
 * bound the head's bytes, its header lines (at most HTTP_MSG_HEADERS_MAX)
 * and the body's bytes. */
void http_msg_init(struct http_msg *m, bool response, size_t max_head, size_t max_headers,
                   size_t max_body);

/* Parses buf[m->fed..len): buf[0] is the start of the message, and
 * buf[0..m->fed) is what earlier calls saw (unchanged, apart from what this
 * parser moved). May move body bytes within buf[0..len). Never reads past
 * buf[len). */
enum http_msg_result http_msg_feed(struct http_msg *m, char *buf, size_t len);

/* The peer closed after buf[0..len) (all fed): DONE when that ends the
 * message (a response without a length), else INVALID (TRUNCATED). */
enum http_msg_result http_msg_eof(struct http_msg *m, char *buf, size_t len);

/* Drops the dead chunk framing between the body's end and m->fed from
 * buf[0..*len), which shrinks *len; the bytes freed at the end are zeroed
 * (no copy of the body stays behind). Call after a feed that returned AGAIN. */
void http_msg_squeeze(struct http_msg *m, char *buf, size_t *len);

/* Drops the first n bytes of the body (at most m->body.len: what the caller
 * passed on) from buf[0..*len), which shrinks *len (the bytes freed at the
 * end zeroed); the message goes on being fed as before. For a body
 * streamed rather than held whole. */
void http_msg_consume(struct http_msg *m, char *buf, size_t *len, size_t n);

/* The value of the first header called name (case-insensitive), or NULL
 * (then *vlen is 0). Only for a header that may appear once: a caller
 * checks http_msg_count() first, or reads a list with http_msg_list(). */
const char *http_msg_header(const struct http_msg *m, const char *name, size_t *vlen);

/* How many header lines are called name (case-insensitive). */
size_t http_msg_count(const struct http_msg *m, const char *name);

/* The comma-separated list of every header called name, as one list (RFC
 * 9110 5.3): returns how many of its elements are token (case-insensitive);
 * *other (unless NULL) gets how many other non-empty elements it has. */
size_t http_msg_list(const struct http_msg *m, const char *name, const char *token, size_t *other);

/* Whether m's body has a content coding (RFC 9110 8.4): any but identity
 * (case-insensitive) in every coding of every Content-Encoding line, so
 * "gzip, identity" and "IDENTITY, gzip" are coded, "Identity" is not. */
bool http_msg_coded(const struct http_msg *m);

/* Whether a header called name holds the word scheme (case-insensitive;
 * words split at ',', spaces and tabs): a challenge (WWW-Authenticate) or
 * credentials (Authorization) of that authentication scheme, or the word
 * inside a parameter (a caller that must not miss one takes that too). */
bool http_msg_auth_scheme(const struct http_msg *m, const char *name, const char *scheme);

/* Whether name (len bytes) is a hop-by-hop header: one of RFC 9110's list,
 * or named in one of the message's Connection headers. */
bool http_msg_hop(const struct http_msg *m, const char *name, size_t len);

/* Whether the comma-separated list value[0..len) holds token (case-insensitive). */
bool http_list_has(const char *value, size_t len, const char *token);

#endif
