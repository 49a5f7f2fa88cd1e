/* strbuf.c - see strbuf.h. */
#include "core/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        size_t cap = sb->cap ? sb->cap * 2 : 4096;
        while (cap - sb->len <= (size_t)n)
            cap *= 2;
        char *nd = realloc(sb->data, cap);
        if (nd == NULL) {
            sb->failed = 1;
            return;
        }
        sb->data = nd;
        sb->cap = cap;
    }
}

void
strbuf_free(struct strbuf *sb)
{
    free(sb->data);
    memset(sb, 0, sizeof(*sb));
}
