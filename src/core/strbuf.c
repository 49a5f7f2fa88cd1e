/* strbuf.c - see strbuf.h. */
#include "core/strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"

/* Grows sb so that n more bytes and a NUL fit; 0 or -1 (failed set). */
static int
strbuf_grow(struct strbuf *sb, size_t n)
{
    if (sb->cap - sb->len > n)
        return 0;
    if (n >= SIZE_MAX / 2 - sb->len) {
        sb->failed = 1;
        return -1;
    }
    size_t cap = sb->cap ? sb->cap * 2 : 4096;
    while (cap - sb->len <= n)
        cap *= 2;
    /* the NUL after the text moves with it */
    char *nd = buf_wipe_realloc(sb->data, sb->data ? sb->len + 1 : 0, sb->cap, cap);
    if (nd == NULL) {
        sb->failed = 1;
        return -1;
    }
    sb->data = nd;
    sb->cap = cap;
    return 0;
}

char *
strbuf_room(struct strbuf *sb, size_t n)
{
    return strbuf_grow(sb, n) == 0 ? sb->data + sb->len : NULL;
}

void
strbuf_append(struct strbuf *sb, const void *p, size_t n)
{
    if (n == 0 || strbuf_grow(sb, n) != 0)
        return;
    memcpy(sb->data + sb->len, p, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void
strbuf_json_string(struct strbuf *sb, const char *s)
{
    size_t len = strlen(s);
    char esc[UTF8_JSON_CHAR_MAX];

    strbuf_append(sb, "\"", 1);
    for (size_t i = 0, used; i < len; i += used)
        strbuf_append(sb, esc, utf8_json_char((const uint8_t *)s + i, len - i, esc, &used));
    strbuf_append(sb, "\"", 1);
}

void
strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;

    for (;;) {
        size_t room = sb->cap - sb->len;
        va_start(ap, fmt);
        int n = vsnprintf(sb->data ? sb->data + sb->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            sb->failed = 1;
            return;
        }
        if ((size_t)n < room) {
            sb->len += (size_t)n;
            return;
        }
        if (strbuf_grow(sb, (size_t)n) != 0)
            return;
    }
}

void
strbuf_truncate(struct strbuf *sb, size_t n)
{
    if (n >= sb->len)
        return;
    explicit_bzero(sb->data + n, sb->len - n);
    sb->len = n;
}

void
strbuf_free(struct strbuf *sb)
{
    buf_wipe_free(sb->data, sb->cap);
    memset(sb, 0, sizeof(*sb));
}

void *
buf_wipe_realloc(void *p, size_t len, size_t cap, size_t size)
{
    void *n = malloc(size);

    if (n == NULL)
        return NULL;
    if (p != NULL)
        memcpy(n, p, len < size ? len : size);
    buf_wipe_free(p, cap);
    return n;
}

void
buf_wipe_free(void *p, size_t n)
{
    if (p == NULL)
        return;
    explicit_bzero(p, n);
    free(p);
}
