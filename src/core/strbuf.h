/* strbuf.h - a growing text buffer for responses that are built, then sent. */
#ifndef AIRLOCK_CORE_STRBUF_H
#define AIRLOCK_CORE_STRBUF_H

#include <stddef.h>

struct strbuf {
    char *data; /* NUL-terminated when len > 0; owned */
    size_t len, cap;
    int failed; /* an allocation failed: the content is incomplete */
};

/* Appends formatted text; on ENOMEM sets sb->failed and keeps what it had. */
void strbuf_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Makes room for n more bytes and the NUL after them: returns where to
 * write them (the caller then adds what it wrote to sb->len), or NULL with
 * sb->failed set on ENOMEM. */
char *strbuf_room(struct strbuf *sb, size_t n);

/* Appends the n bytes at p (any bytes, NUL included); on ENOMEM sets
 * sb->failed and keeps what it had. */
void strbuf_append(struct strbuf *sb, const void *p, size_t n);

/* Frees the data and zeroes sb; safe to call twice. */
void strbuf_free(struct strbuf *sb);

#endif
