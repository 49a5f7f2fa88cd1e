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

/* The bytes at p[0..n) that line_escape() takes as one: a byte, or a
 * whole UTF-8 sequence. *esc: whether it writes them as \xHH each: a
 * control byte (C0 but TAB, and DEL), a byte no valid sequence holds (a
 * Latin-1 reader takes 0x85 for NEL), a C1 control (U+0080-U+009F, NEL and
 * CSI among them), a line or paragraph separator (U+2028, U+2029) or a
 * bidi embedding, override or isolate (U+202A-U+202E, U+2066-U+2069): what
 * a Unicode-aware reader splits lines on, or a terminal acts on. */
static size_t
unit(const uint8_t *p, size_t n, bool *esc)
{
    uint8_t b = p[0];
    size_t k = b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 && b <= 0xdf ? 2 : 1;

    if (b < 0x80) {
        *esc = (b < 0x20 && b != '\t') || b == 0x7f;
        return 1;
    }
    *esc = true;
    if (k == 1 || k > n || b > 0xf4)
        return 1;
    for (size_t i = 1; i < k; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 1;
    uint32_t cp = b & (0x7f >> k);
    for (size_t i = 1; i < k; i++)
        cp = cp << 6 | (p[i] & 0x3f);
    /* overlong, a surrogate, beyond U+10FFFF: no valid sequence */
    if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 1;
    *esc = cp <= 0x9f || cp == 0x2028 || cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069);
    return k;
}

struct line
line_escape(const struct line *l, uint8_t *out, size_t max)
{
    static const char hex[] = "0123456789abcdef";
    struct line e = {.data = out, .cut = l->cut};
    size_t i = 0, k;
    bool esc = false;

    while (i < l->len && (k = unit(l->data + i, l->len - i, &esc), !esc))
        i += k;
    if (i == l->len)
        return *l;
    if (i > max) {
        /* cut where a sequence begins: data[0..i) holds whole ones only */
        for (i = max; i > 0 && (l->data[i] & 0xc0) == 0x80; i--)
            ;
    }
    memcpy(out, l->data, i);
    for (e.len = i; i < l->len; i += k) {
        k = unit(l->data + i, l->len - i, &esc);
        if (e.len + (esc ? 4 * k : k) > max) {
            e.cut = true;
            break;
        }
        for (size_t j = i; j < i + k; j++) {
            uint8_t b = l->data[j];
            if (!esc) {
                out[e.len++] = b;
                continue;
            }
            out[e.len++] = '\\';
            out[e.len++] = 'x';
            out[e.len++] = (uint8_t)hex[b >> 4];
            out[e.len++] = (uint8_t)hex[b & 0xf];
        }
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
