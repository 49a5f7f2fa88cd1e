/* http_connect.c - HTTP proxy request heads through libhttp-parser.
 *
 * The parser is run over the whole buffer each time (the caller peeks and
 * calls again as bytes arrive), so no parser state outlives a call. It stops
 * right after the head: by itself for CONNECT (the rest is another
 * protocol), by a pause in on_headers_complete for other methods. */
#include "proto/http_connect.h"

#include <http_parser.h>
#include <string.h>

struct head {
    const char *url; /* the request target, one contiguous slice */
    size_t url_len;
    int url_broken; /* delivered in pieces that do not join up */
    int done;       /* on_headers_complete was reached */
};

static int
on_url(http_parser *p, const char *at, size_t len)
{
    struct head *h = p->data;

    if (h->url == NULL)
        h->url = at;
    else if (h->url + h->url_len != at)
        h->url_broken = 1;
    h->url_len += len;
    return 0;
}

static int
on_headers_complete(http_parser *p)
{
    struct head *h = p->data;

    h->done = 1;
    if (p->method != HTTP_CONNECT)
        http_parser_pause(p, 1);
    return 0;
}

enum parse_result
http_connect_parse(const uint8_t *buf, size_t len, size_t max, struct http_connect *req,
                   size_t *head_len, const char **err)
{
    http_parser_settings settings;
    http_parser parser;
    struct head h = {0};
    const char *msg = NULL;

    http_parser_settings_init(&settings);
    settings.on_url = on_url;
    settings.on_headers_complete = on_headers_complete;
    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = &h;

    size_t n = http_parser_execute(&parser, &settings, (const char *)buf, len > max ? max : len);
    enum http_errno e = HTTP_PARSER_ERRNO(&parser);
    if (e != HPE_OK && e != HPE_PAUSED) {
        msg = http_errno_description(e);
        goto fail;
    }
    if (!h.done) {
        if (len >= max) {
            msg = "request head larger than the limit";
            goto fail;
        }
        return PARSE_AGAIN;
    }
    if (parser.method != HTTP_CONNECT) {
        /* paused at the head's last LF, which the parser has not counted */
        req->is_connect = 0;
        req->method = http_method_str((enum http_method)parser.method);
        req->host = NULL;
        req->host_len = 0;
        req->port = 0;
        *head_len = n + 1;
        goto ok;
    }
    if (!parser.upgrade || h.url == NULL || h.url_broken) {
        msg = "bad CONNECT request";
        goto fail;
    }
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(h.url, h.url_len, 1, &u) != 0 || u.port == 0) {
        msg = "expected CONNECT host:port";
        goto fail;
    }
    req->is_connect = 1;
    req->method = "CONNECT";
    req->host = h.url + u.field_data[UF_HOST].off;
    req->host_len = u.field_data[UF_HOST].len;
    req->port = u.port;
    *head_len = n;

ok:
    msg = NULL;
fail:
    return parse_verdict(err, msg);
}
