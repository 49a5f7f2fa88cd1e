/* strbuf.h - a growing text buffer for responses that are built, then sent.
 *
 * What such a buffer holds may be plaintext the host must not see (a body,
 * a header with a secret, a decrypted value): its memory is wiped before it
 * is freed, before it moves (growing never leaves the old block behind
 * unwiped, as realloc() would) and where bytes are dropped for reuse
 * (strbuf_truncate()). buf_wipe_realloc() and buf_wipe_free() do the same for
 * the other buffers of such data (http/session.c's hbuf). */
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

/* Appends the text s as a JSON string, its quotes included: quotes,
 * backslashes and control bytes escaped, invalid UTF-8 as U+FFFD
 * (utf8_json_char()); on ENOMEM sets sb->failed. */
void strbuf_json_string(struct strbuf *sb, const char *s);

/* Drops the bytes from n on (n <= sb->len), wiped: the buffer is reused
 * from there. */
void strbuf_truncate(struct strbuf *sb, size_t n);

/* Frees the data, wiped, and zeroes sb; safe to call twice. */
void strbuf_free(struct strbuf *sb);

/* realloc() that leaves nothing behind: a new block of size bytes holding
 * the first len bytes of p (a block of cap bytes, or NULL), p wiped whole
 * and freed. Returns the new block, or NULL on ENOMEM (p untouched). */
void *buf_wipe_realloc(void *p, size_t len, size_t cap, size_t size);

/* Wipes the n bytes at p (explicit_bzero: not optimised away), then frees
 * p; NULL is nothing. */
void buf_wipe_free(void *p, size_t n);

#endif
