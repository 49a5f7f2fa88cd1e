/* http_msg.c - see http_msg.h. */
#include "proto/http_msg.h"

#include <limits.h>
#include <string.h>
#include <strings.h>

static struct http_msg *
msg_of(http_parser *p)
{
    return p->data;
}

/* A header field or value arrives in pieces when its bytes arrive in
 * several feeds; the pieces are adjacent in the buffer. libhttp-parser also
 * hands a value folded over lines (obs-fold, "a\r\n b") as two pieces of
 * one value: not adjacent, and a span over both would carry the line break
 * to the backend (a second request, or a header of its own). Refused (RFC
 * 9112 5.2 lets a server reject obs-fold). */
static int
on_header_piece(http_parser *p, const char *at, size_t len, int kind)
{
    struct http_msg *m = msg_of(p);
    size_t off = (size_t)(at - m->buf);

    /* trailers of a chunked body are dropped: their bytes are squeezed out
     * with the chunk framing, and a proxy must not turn them into headers */
    if (m->head_done || m->too_many)
        return 0;
    if (m->last == kind) {
        struct http_span *s = kind == 1 ? &m->hdr[m->n_hdr - 1].name : &m->hdr[m->n_hdr - 1].value;
        if (off != s->off + s->len) {
            m->fault = HTTP_FAULT_BAD;
            return 1;
        }
        s->len += len;
        return 0;
    }
    m->last = kind;
    if (kind == 2) {
        m->hdr[m->n_hdr - 1].value = (struct http_span){off, len};
        return 0;
    }
    if (m->n_hdr == m->max_headers) {
        m->too_many = true; /* refused once the head is whole: on_headers_complete() */
        return 0;
    }
    m->hdr[m->n_hdr++] = (struct http_hdr){.name = {off, len}, .value = {off + len, 0}};
    return 0;
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
    return on_header_piece(p, at, len, 1);
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
    return on_header_piece(p, at, len, 2);
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
    struct http_msg *m = msg_of(p);

    if (m->url.len == 0) {
        m->url.off = (size_t)(at - m->buf);
    } else if ((size_t)(at - m->buf) != m->url.off + m->url.len) {
        m->fault = HTTP_FAULT_BAD; /* as for headers: one span, or none */
        return 1;
    }
    m->url.len += len;
    return 0;
}

/* The parser pauses here so that the caller sees the head before the body
 * (Expect: 100-continue, a Content-Length over the limit). A response
 * 1xx, 204 or 304 has no body whatever its Content-Length says (RFC 9112
 * 6.3); libhttp-parser would wait for one. */
static int
on_headers_complete(http_parser *p)
{
    struct http_msg *m = msg_of(p);

    m->head_done = true;
    if (m->too_many) {
        m->fault = HTTP_FAULT_HEADERS;
        return -1;
    }
    if (p->type == HTTP_RESPONSE &&
        (p->status_code < 200 || p->status_code == 204 || p->status_code == 304))
        m->skip_body = true;
    m->keep_alive = http_should_keep_alive(p) != 0;
    m->chunked = (p->flags & F_CHUNKED) != 0;
    if (!m->chunked && !m->skip_body && p->content_length != ULLONG_MAX &&
        p->content_length > m->max_body) {
        m->fault = HTTP_FAULT_BODY_LARGE;
        return -1;
    }
    http_parser_pause(p, 1);
    return m->skip_body ? 1 : 0;
}

/* Chunks are moved down to the end of the body so far: the parser has
 * read past them already, and nothing is written ahead of it. */
static int
on_body(http_parser *p, const char *at, size_t len)
{
    struct http_msg *m = msg_of(p);
    size_t off = (size_t)(at - m->buf);

    if (m->body.len == 0 && m->body.off == 0)
        m->body.off = off;
    if (m->body.len + len > m->max_body) {
        m->fault = HTTP_FAULT_BODY_LARGE;
        return 1;
    }
    if (off != m->body.off + m->body.len)
        memmove(m->buf + m->body.off + m->body.len, at, len);
    m->body.len += len;
    return 0;
}

/* A chunk that would take the body over the limit is refused as soon as
 * its size is known. */
static int
on_chunk_header(http_parser *p)
{
    struct http_msg *m = msg_of(p);

    if (p->content_length > m->max_body - m->body.len) {
        m->fault = HTTP_FAULT_BODY_LARGE;
        return 1;
    }
    return 0;
}

static int
on_message_complete(http_parser *p)
{
    struct http_msg *m = msg_of(p);

    m->done = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_message_complete = on_message_complete,
};

void
http_msg_init(struct http_msg *m, bool response, size_t max_head, size_t max_headers,
              size_t max_body)
{
    memset(m, 0, sizeof(*m));
    http_parser_init(&m->parser, response ? HTTP_RESPONSE : HTTP_REQUEST);
    m->parser.data = m;
    m->max_head = max_head;
    m->max_headers = max_headers < HTTP_MSG_HEADERS_MAX ? max_headers : HTTP_MSG_HEADERS_MAX;
    m->max_body = max_body;
}

static enum http_msg_result
msg_invalid(struct http_msg *m)
{
    if (m->fault == HTTP_FAULT_NONE)
        m->fault = HTTP_FAULT_BAD;
    return HTTP_MSG_INVALID;
}

/* RFC 9110 5.6.2: the characters of a token (a header's name). */
static bool
tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* The head buf[0..len) is whole: what libhttp-parser lets through but a
 * proxy that writes the headers on as name ": " value must not. A line
 * that starts with a space or a tab (obs-fold, or whitespace before the
 * first header: RFC 9112 2.2, 5.2), a name that is not a token (a space
 * before the colon: RFC 9112 5.1), a value holding CR, LF or NUL (RFC 9110
 * 5.5). Each would let a header's bytes be read as another header, or as
 * the end of the head, by the next hop. */
static bool
head_valid(const struct http_msg *m, const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++)
        if (buf[i] == '\n' && (buf[i + 1] == ' ' || buf[i + 1] == '\t'))
            return false;
    for (size_t i = 0; i < m->n_hdr; i++) {
        const struct http_hdr *h = &m->hdr[i];
        if (h->name.len == 0)
            return false;
        for (size_t k = 0; k < h->name.len; k++)
            if (!tchar((unsigned char)buf[h->name.off + k]))
                return false;
        for (size_t k = 0; k < h->value.len; k++) {
            char c = buf[h->value.off + k];
            if (c == '\r' || c == '\n' || c == '\0')
                return false;
        }
    }
    return true;
}

enum http_msg_result
http_msg_feed(struct http_msg *m, char *buf, size_t len)
{
    bool had_head = m->head_done;

    if (m->fault != HTTP_FAULT_NONE)
        return HTTP_MSG_INVALID;
    if (m->done)
        return HTTP_MSG_DONE;
    if (HTTP_PARSER_ERRNO(&m->parser) == HPE_PAUSED)
        http_parser_pause(&m->parser, 0);
    m->buf = buf;
    /* a head is parsed up to one byte past max_head, never further: what
     * the parser finds wrong there is the fault, however the bytes came */
    size_t avail = len - m->fed;
    if (!m->head_done && avail > m->max_head + 1 - m->fed)
        avail = m->max_head + 1 - m->fed;
    size_t n = http_parser_execute(&m->parser, &settings, buf + m->fed, avail);
    m->fed += n;
    enum http_errno e = HTTP_PARSER_ERRNO(&m->parser);
    if (e != HPE_OK && e != HPE_PAUSED)
        return msg_invalid(m);
    if (!had_head && m->head_done) {
        m->head_len = m->fed + 1; /* paused before the head's last LF */
        if (m->head_len > m->max_head) {
            m->fault = HTTP_FAULT_HEAD_LARGE;
            return HTTP_MSG_INVALID;
        }
        if (!head_valid(m, buf, m->head_len))
            return msg_invalid(m);
        return HTTP_MSG_HEAD;
    }
    if (!m->head_done && m->fed > m->max_head) {
        m->fault = HTTP_FAULT_HEAD_LARGE;
        return HTTP_MSG_INVALID;
    }
    if (m->done) {
        m->end = m->fed;
        return HTTP_MSG_DONE;
    }
    return HTTP_MSG_AGAIN;
}

enum http_msg_result
http_msg_eof(struct http_msg *m, char *buf, size_t len)
{
    enum http_msg_result r = http_msg_feed(m, buf, len);

    if (r != HTTP_MSG_AGAIN)
        return r;
    m->buf = buf;
    http_parser_execute(&m->parser, &settings, buf + len, 0);
    if (m->done && HTTP_PARSER_ERRNO(&m->parser) == HPE_PAUSED) {
        m->end = m->fed;
        return HTTP_MSG_DONE;
    }
    m->fault = HTTP_FAULT_TRUNCATED;
    return HTTP_MSG_INVALID;
}

void
http_msg_squeeze(struct http_msg *m, char *buf, size_t *len)
{
    size_t keep = m->body.off + m->body.len;

    if (!m->chunked || m->body.len == 0 || keep >= m->fed)
        return;
    memmove(buf + keep, buf + m->fed, *len - m->fed);
    /* what moved leaves no copy behind: the body may be plaintext */
    memset(buf + *len - (m->fed - keep), 0, m->fed - keep);
    *len -= m->fed - keep;
    m->fed = keep;
}

void
http_msg_consume(struct http_msg *m, char *buf, size_t *len, size_t n)
{
    size_t from = m->body.off + n;

    memmove(buf + m->body.off, buf + from, *len - from);
    memset(buf + *len - n, 0, n);
    *len -= n;
    m->fed -= n;
    m->body.len -= n;
}

const char *
http_msg_header(const struct http_msg *m, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);

    for (size_t i = 0; i < m->n_hdr; i++) {
        const struct http_hdr *h = &m->hdr[i];
        if (h->name.len == nlen && strncasecmp(m->buf + h->name.off, name, nlen) == 0) {
            *vlen = h->value.len;
            return m->buf + h->value.off;
        }
    }
    *vlen = 0;
    return NULL;
}

size_t
http_msg_count(const struct http_msg *m, const char *name)
{
    size_t nlen = strlen(name), n = 0;

    for (size_t i = 0; i < m->n_hdr; i++) {
        const struct http_hdr *h = &m->hdr[i];
        if (h->name.len == nlen && strncasecmp(m->buf + h->name.off, name, nlen) == 0)
            n++;
    }
    return n;
}

/* Counts the elements of the comma-separated list value[0..len) that are
 * token[0..tlen) (case-insensitive) into *same, the other non-empty ones
 * into *other. */
static void
list_count(const char *value, size_t len, const char *token, size_t tlen, size_t *same,
           size_t *other)
{
    size_t i = 0;

    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        size_t start = i;
        while (i < len && value[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            end--;
        if (end == start)
            continue;
        if (end - start == tlen && strncasecmp(value + start, token, tlen) == 0)
            (*same)++;
        else
            (*other)++;
    }
}

size_t
http_msg_list(const struct http_msg *m, const char *name, const char *token, size_t *other)
{
    size_t nlen = strlen(name), same = 0, o = 0;

    for (size_t i = 0; i < m->n_hdr; i++) {
        const struct http_hdr *h = &m->hdr[i];
        if (h->name.len == nlen && strncasecmp(m->buf + h->name.off, name, nlen) == 0)
            list_count(m->buf + h->value.off, h->value.len, token, strlen(token), &same, &o);
    }
    if (other != NULL)
        *other = o;
    return same;
}

bool
http_msg_coded(const struct http_msg *m)
{
    size_t other;

    (void)http_msg_list(m, "content-encoding", "identity", &other);
    return other != 0;
}

bool
http_msg_auth_scheme(const struct http_msg *m, const char *name, const char *scheme)
{
    size_t nlen = strlen(name), slen = strlen(scheme);

    for (size_t i = 0; i < m->n_hdr; i++) {
        const struct http_hdr *h = &m->hdr[i];
        if (h->name.len != nlen || strncasecmp(m->buf + h->name.off, name, nlen) != 0)
            continue;
        const char *v = m->buf + h->value.off, *end = v + h->value.len;
        /* each word: "NTLM", "Negotiate abc=", "Basic realm=x, NTLM" */
        for (const char *e = v; e < end; e++) {
            if (e > v && e[-1] != ',' && e[-1] != ' ' && e[-1] != '\t')
                continue;
            if ((size_t)(end - e) >= slen && strncasecmp(e, scheme, slen) == 0 &&
                (e + slen == end || e[slen] == ' ' || e[slen] == '\t' || e[slen] == ','))
                return true;
        }
    }
    return false;
}

bool
http_list_has(const char *value, size_t len, const char *token)
{
    size_t same = 0, other = 0;

    list_count(value, len, token, strlen(token), &same, &other);
    return same > 0;
}

bool
http_msg_hop(const struct http_msg *m, const char *name, size_t len)
{
    static const char *const hop[] = {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
    };

    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (strlen(hop[i]) == len && strncasecmp(hop[i], name, len) == 0)
            return true;
    /* what every Connection header names, however long */
    for (size_t i = 0; i < m->n_hdr; i++) {
        const struct http_hdr *h = &m->hdr[i];
        size_t same = 0, other = 0;
        if (h->name.len != 10 || strncasecmp(m->buf + h->name.off, "connection", 10) != 0)
            continue;
        list_count(m->buf + h->value.off, h->value.len, name, len, &same, &other);
        if (same > 0)
            return true;
    }
    return false;
}
