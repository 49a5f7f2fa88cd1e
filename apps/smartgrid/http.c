/* http.c - smartgrid HTTP messages through libhttp-parser.
 *
 * Like src/proto/http_connect.c, the parser runs over the whole buffer on
 * each call (the caller calls again as bytes arrive), so no parser state
 * outlives a call and every callback's slice is contiguous. It pauses at the
 * end of the first message so that pipelined bytes are left alone. */
#include "http.h"

#include <http_parser.h>
#include <string.h>
#include <strings.h>

struct msg_state {
    const uint8_t *buf;
    struct sg_http_msg m;
    size_t max_body;
    int in_auth;   /* the header being read is Authorization */
    int too_large; /* Content-Length over max_body */
    int chunked;
    int done; /* on_message_complete was reached */
    const char *end;
};

static int
on_url(http_parser *p, const char *at, size_t len)
{
    struct msg_state *s = p->data;
    struct http_parser_url u;

    http_parser_url_init(&u);
    if (http_parser_parse_url(at, len, 0, &u) != 0 || !(u.field_set & (1 << UF_PATH)))
        return 1;
    s->m.path.p = at + u.field_data[UF_PATH].off;
    s->m.path.len = u.field_data[UF_PATH].len;
    if (u.field_set & (1 << UF_QUERY)) {
        s->m.query.p = at + u.field_data[UF_QUERY].off;
        s->m.query.len = u.field_data[UF_QUERY].len;
    }
    return 0;
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
    struct msg_state *s = p->data;

    s->in_auth = len == 13 && strncasecmp(at, "authorization", 13) == 0;
    return 0;
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
    struct msg_state *s = p->data;

    if (s->in_auth) {
        s->m.auth.p = at;
        s->m.auth.len = len;
    }
    return 0;
}

static int
on_headers_complete(http_parser *p)
{
    struct msg_state *s = p->data;

    if (p->flags & F_CHUNKED) {
        s->chunked = 1;
        return 1;
    }
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > s->max_body) {
        s->too_large = 1;
        return 1;
    }
    return 0;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
    struct msg_state *s = p->data;

    if (s->m.body.p == NULL)
        s->m.body.p = at;
    s->m.body.len += len;
    s->end = at + len;
    return 0;
}

static int
on_message_complete(http_parser *p)
{
    struct msg_state *s = p->data;

    s->done = 1;
    http_parser_pause(p, 1);
    return 0;
}

enum parse_result
sg_http_parse(const uint8_t *buf, size_t len, int response, size_t max_head, size_t max_body,
              struct sg_http_msg *m, size_t *msg_len, enum sg_http_fault *fault, const char **err)
{
    http_parser_settings settings;
    http_parser parser;
    struct msg_state s = {.buf = buf, .max_body = max_body};
    const char *msg = NULL;

    http_parser_settings_init(&settings);
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    http_parser_init(&parser, response ? HTTP_RESPONSE : HTTP_REQUEST);
    parser.data = &s;

    size_t n = http_parser_execute(&parser, &settings, (const char *)buf, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&parser);
    if (s.too_large) {
        *fault = SG_HTTP_TOO_LARGE;
        msg = "body larger than the limit";
        goto fail;
    }
    if (s.chunked) {
        *fault = SG_HTTP_BAD;
        msg = "chunked bodies are not supported";
        goto fail;
    }
    if (e != HPE_OK && e != HPE_PAUSED) {
        *fault = SG_HTTP_BAD;
        msg = http_errno_description(e);
        goto fail;
    }
    /* the head ends where the body starts, or with the message */
    size_t head = s.m.body.p ? (size_t)((const uint8_t *)s.m.body.p - buf) : s.done ? n : len;
    if (head > max_head) {
        *fault = SG_HTTP_TOO_LARGE;
        msg = "head larger than the limit";
        goto fail;
    }
    if (!s.done)
        return PARSE_AGAIN;
    if (!response && s.m.path.p == NULL) {
        *fault = SG_HTTP_BAD;
        msg = "no path";
        goto fail;
    }
    /* paused in on_message_complete: n counts the message's last byte */
    *msg_len = s.end ? (size_t)((const uint8_t *)s.end - buf) : n;
    s.m.method = parser.method;
    s.m.status = parser.status_code;
    s.m.keep_alive = http_should_keep_alive(&parser);
    *m = s.m;
    return PARSE_OK;
fail:
    if (err != NULL)
        *err = msg;
    return PARSE_INVALID;
}

int
sg_query_param(struct sg_slice query, const char *name, struct sg_slice *val)
{
    size_t nlen = strlen(name);

    if (query.p == NULL) /* no query (NULL + 0 is undefined behaviour) */
        return 0;
    const char *p = query.p, *end = query.p + query.len;

    while (p != NULL && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
            val->p = p + nlen + 1;
            val->len = (size_t)(stop - val->p);
            return 1;
        }
        p = amp ? amp + 1 : end;
    }
    return 0;
}
