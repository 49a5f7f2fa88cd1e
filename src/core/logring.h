/* logring.h - the bounded buffer of log lines waiting to be forwarded.
 *
 * Many producers (log lines of any thread, app lines read on the main loop)
 * append whole lines; one consumer (the forward stream, on the main loop)
 * sends them. The buffer never grows: a line that does not fit is dropped
 * and counted ("tail drop": the newest line goes, the buffered ones stay),
 * and when lines fit again a marker line saying how many were lost is
 * placed where they would have been. Because producers never reclaim
 * buffered bytes, the consumer can write straight from the buffer without
 * holding the lock, and a line is either delivered whole or dropped whole.
 *
 * The consumer tracks a partially sent line: when the stream breaks,
 * logring_rewind() makes the next stream start again at that line's first
 * byte, so no line is ever sent as a fragment glued to another.
 *
 * Every function is thread-safe. None allocates except logring_init(), none
 * blocks longer than a memcpy of one line under a mutex, and none logs
 * (log lines are produced into this buffer). */
#ifndef AIRLOCK_CORE_LOGRING_H
#define AIRLOCK_CORE_LOGRING_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Where a line came from; one set of counters each. */
enum log_source { LOG_SRC_AIRLOCK, LOG_SRC_APP, LOG_SRC_COUNT };

/* Appended to a line that was cut at the line limit. */
#define LOGRING_CUT_MARK " [cut]"

struct logring_stats {
    uint64_t lines[LOG_SRC_COUNT];   /* accepted into the buffer */
    uint64_t dropped[LOG_SRC_COUNT]; /* lost: the buffer was full */
    uint64_t cut[LOG_SRC_COUNT];     /* accepted, but cut at the limit */
    uint64_t sent_bytes;             /* whole lines handed to a stream */
    size_t buffered;                 /* bytes waiting (or in flight) now */
};

struct logring {
    pthread_mutex_t lock;
    uint8_t *buf;
    size_t cap;
    uint64_t rd;       /* first byte of the first line not yet fully sent */
    uint64_t sent;     /* bytes past rd already written to the stream */
    uint64_t wr;       /* end of the buffered lines; wr - rd <= cap */
    uint64_t unmarked; /* lines dropped since the last marker line */
    struct logring_stats stats;
};

/* Allocates a buffer of cap bytes (cap >= 64). Returns 0 or -ENOMEM. */
int logring_init(struct logring *r, size_t cap);

/* Frees the buffer; safe to call twice. */
void logring_free(struct logring *r);

/* Appends tag, line[0..len), LOGRING_CUT_MARK when cut, and '\n' as one
 * line from src. Before it, a pending "lines dropped" marker goes in when
 * both fit. Returns 1 when the buffer held nothing to send before (the
 * consumer may need a wake-up), 0 when it did, or -ENOBUFS when the line was
 * dropped (and counted). */
int logring_put(struct logring *r, enum log_source src, const char *tag, size_t tag_len,
                const void *line, size_t len, bool cut);

/* Fills iov[0..2) with the bytes ready to send (after what was already
 * sent). Returns the number of iovecs used (0: nothing to send). The bytes
 * stay valid until logring_sent() or logring_rewind() say otherwise. */
int logring_peek(struct logring *r, struct iovec iov[2]);

/* Records that n bytes from the last peek were written. Lines written
 * whole are released; the tail of a partly written line stays. */
void logring_sent(struct logring *r, size_t n);

/* The stream broke: the next peek starts again at the first byte of the
 * line that was partly written (lines written whole are gone). */
void logring_rewind(struct logring *r);

/* Copies the counters. */
void logring_stats(struct logring *r, struct logring_stats *out);

#endif
