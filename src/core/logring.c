/* logring.c - the bounded line buffer; see logring.h. */
#include "core/logring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
logring_init(struct logring *r, size_t cap)
{
    memset(r, 0, sizeof(*r));
    if (cap < 64)
        return -EINVAL;
    r->buf = malloc(cap);
    if (r->buf == NULL)
        return -ENOMEM;
    r->cap = cap;
    pthread_mutex_init(&r->lock, NULL);
    return 0;
}

void
logring_free(struct logring *r)
{
    if (r->buf == NULL)
        return;
    free(r->buf);
    r->buf = NULL;
    pthread_mutex_destroy(&r->lock);
}

/* Copies len bytes to the ring at wr (wrapping); the caller checked room. */
static void
ring_copy(struct logring *r, const void *p, size_t len)
{
    size_t at = (size_t)(r->wr % r->cap);
    size_t first = r->cap - at < len ? r->cap - at : len;

    memcpy(r->buf + at, p, first);
    memcpy(r->buf, (const uint8_t *)p + first, len - first);
    r->wr += len;
}

/* Writes the "lines dropped" marker line when lines were dropped and it
 * fits (the lock is held). Returns its length, or 0. */
static size_t
put_marker(struct logring *r, size_t reserve)
{
    char mark[96];

    if (r->unmarked == 0)
        return 0;
    int k = snprintf(mark, sizeof(mark), "airlock: log buffer full: %llu lines dropped\n",
                     (unsigned long long)r->unmarked);
    size_t len = k > 0 ? (size_t)k : 0;
    if (len + reserve > r->cap - (size_t)(r->wr - r->rd))
        return 0;
    ring_copy(r, mark, len);
    r->unmarked = 0;
    return len;
}

int
logring_put(struct logring *r, enum log_source src, const char *tag, size_t tag_len,
            const void *line, size_t len, bool cut)
{
    size_t cut_len = cut ? sizeof(LOGRING_CUT_MARK) - 1 : 0;
    size_t need = tag_len + len + cut_len + 1;
    int rc;

    pthread_mutex_lock(&r->lock);
    rc = r->wr == r->rd + r->sent;
    /* the marker first: lines after a gap never go in before it */
    if (r->unmarked > 0 && put_marker(r, need) == 0) {
        r->unmarked++;
        r->stats.dropped[src]++;
        pthread_mutex_unlock(&r->lock);
        return -ENOBUFS;
    }
    if (need > r->cap - (size_t)(r->wr - r->rd)) {
        r->unmarked++;
        r->stats.dropped[src]++;
        pthread_mutex_unlock(&r->lock);
        return -ENOBUFS;
    }
    ring_copy(r, tag, tag_len);
    ring_copy(r, line, len);
    if (cut) {
        ring_copy(r, LOGRING_CUT_MARK, cut_len);
        r->stats.cut[src]++;
    }
    ring_copy(r, "\n", 1);
    r->stats.lines[src]++;
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int
logring_peek(struct logring *r, struct iovec iov[2])
{
    int n = 0;

    pthread_mutex_lock(&r->lock);
    uint64_t from = r->rd + r->sent;
    size_t len = (size_t)(r->wr - from);
    if (len > 0) {
        size_t at = (size_t)(from % r->cap);
        size_t first = r->cap - at < len ? r->cap - at : len;
        iov[n].iov_base = r->buf + at;
        iov[n++].iov_len = first;
        if (len > first) {
            iov[n].iov_base = r->buf;
            iov[n++].iov_len = len - first;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return n;
}

/* The offset of the last '\n' in ring bytes [from, from+n), or -1. */
static int64_t
last_newline(const struct logring *r, uint64_t from, size_t n)
{
    while (n > 0) {
        uint64_t end = from + n; /* exclusive */
        size_t at_end = (size_t)((end - 1) % r->cap) + 1;
        size_t chunk = at_end < n ? at_end : n;
        const uint8_t *p = memrchr(r->buf + at_end - chunk, '\n', chunk);
        if (p != NULL)
            return (int64_t)(end - chunk + (uint64_t)(p - (r->buf + at_end - chunk)));
        n -= chunk;
    }
    return -1;
}

void
logring_sent(struct logring *r, size_t n)
{
    pthread_mutex_lock(&r->lock);
    uint64_t from = r->rd + r->sent;
    if (n > r->wr - from)
        n = (size_t)(r->wr - from);
    int64_t nl = last_newline(r, from, n);
    if (nl >= 0) {
        uint64_t new_rd = (uint64_t)nl + 1;
        r->stats.sent_bytes += new_rd - r->rd;
        r->sent = from + n - new_rd;
        r->rd = new_rd;
        put_marker(r, 0); /* room was freed: say what was lost */
    } else {
        r->sent += n;
    }
    pthread_mutex_unlock(&r->lock);
}

void
logring_rewind(struct logring *r)
{
    pthread_mutex_lock(&r->lock);
    r->sent = 0;
    pthread_mutex_unlock(&r->lock);
}

void
logring_stats(struct logring *r, struct logring_stats *out)
{
    pthread_mutex_lock(&r->lock);
    *out = r->stats;
    out->buffered = (size_t)(r->wr - r->rd);
    pthread_mutex_unlock(&r->lock);
}
