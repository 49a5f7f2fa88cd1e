/* lines.c - bounded line splitting; see lines.h. */
#include "proto/lines.h"

#include <string.h>

void
line_split_init(struct line_split *ls, uint8_t *buf, size_t cap)
{
    ls->buf = buf;
    ls->cap = cap;
    ls->len = 0;
    ls->state = LINE_ST_TEXT;
}

enum parse_result
line_next(struct line_split *ls, const uint8_t *in, size_t len, size_t *used, struct line *out)
{
    size_t pos = 0;

    for (;;) {
        if (ls->state == LINE_ST_SKIP) {
            const uint8_t *nl = pos < len ? memchr(in + pos, '\n', len - pos) : NULL;
            if (nl == NULL) {
                *used = len;
                return PARSE_AGAIN;
            }
            pos = (size_t)(nl - in) + 1;
            ls->state = LINE_ST_TEXT;
            continue;
        }
        /* Look at no more than the bytes that can still belong to this
         * line: room left plus one (a newline there still ends it whole). */
        size_t room = ls->cap - ls->len;
        size_t avail = len - pos;
        size_t look = avail < room + 1 ? avail : room + 1;
        const uint8_t *nl = look > 0 ? memchr(in + pos, '\n', look) : NULL;
        if (nl != NULL) {
            size_t n = (size_t)(nl - (in + pos));
            out->cut = false;
            if (ls->len == 0) {
                out->data = in + pos; /* whole line in the input: no copy */
                out->len = n;
            } else {
                memcpy(ls->buf + ls->len, in + pos, n);
                out->data = ls->buf;
                out->len = ls->len + n;
                ls->len = 0;
            }
            *used = pos + n + 1;
            return PARSE_OK;
        }
        if (avail <= room) { /* no newline yet, and the line still fits */
            memcpy(ls->buf + ls->len, in + pos, avail);
            ls->len += avail;
            *used = len;
            return PARSE_AGAIN;
        }
        /* room+1 bytes without a newline: the line is too long */
        memcpy(ls->buf + ls->len, in + pos, room);
        out->data = ls->buf;
        out->len = ls->cap;
        out->cut = true;
        ls->len = 0;
        ls->state = LINE_ST_SKIP;
        *used = pos + room;
        return PARSE_OK;
    }
}

/* A byte line_escape() writes as \xHH. */
static bool
control(uint8_t b)
{
    return (b < 0x20 && b != '\t') || b == 0x7f;
}

struct line
line_escape(const struct line *l, uint8_t *out, size_t max)
{
    static const char hex[] = "0123456789abcdef";
    struct line e = {.data = out, .cut = l->cut};
    size_t i = 0;

    while (i < l->len && !control(l->data[i]))
        i++;
    if (i == l->len)
        return *l;
    if (i > max)
        i = max;
    memcpy(out, l->data, i);
    for (e.len = i; i < l->len; i++) {
        uint8_t b = l->data[i];
        if (e.len + (control(b) ? 4 : 1) > max) {
            e.cut = true;
            break;
        }
        if (!control(b)) {
            out[e.len++] = b;
            continue;
        }
        out[e.len++] = '\\';
        out[e.len++] = 'x';
        out[e.len++] = (uint8_t)hex[b >> 4];
        out[e.len++] = (uint8_t)hex[b & 0xf];
    }
    return e;
}

enum parse_result
line_flush(struct line_split *ls, struct line *out)
{
    if (ls->state == LINE_ST_SKIP) {
        ls->state = LINE_ST_TEXT;
        return PARSE_AGAIN;
    }
    if (ls->len == 0)
        return PARSE_AGAIN;
    out->data = ls->buf;
    out->len = ls->len;
    out->cut = false;
    ls->len = 0;
    return PARSE_OK;
}
