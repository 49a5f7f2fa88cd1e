/* pump.h - one direction of a relayed stream: bytes from one socket to
 * another, copied or spliced, with back-pressure and half-close.
 *
 * Small messages are read into the thread's scratch buffer and written on
 * at once; only what the destination does not take waits in a buffer of the
 * pump's own. A read that fills the whole scratch buffer means bulk traffic:
 * the pump then moves bytes with splice() through a pipe taken from the
 * thread's spare pipes while data is in flight. EOF from the source becomes
 * shutdown(SHUT_WR) on the destination. A pump knows two sockets and their
 * readiness, nothing of the connection that holds them; everything here runs
 * on the thread that owns the pump_cache. */
#ifndef AIRLOCK_RELAY_PUMP_H
#define AIRLOCK_RELAY_PUMP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/loop.h"

#define PUMP_CHUNK (64 * 1024)       /* one read() through the scratch buffer */
#define PUMP_SPLICE_LEN (256 * 1024) /* pipe capacity: bytes per splice() */
#define PUMP_SPARE_PIPES 64          /* empty pipes a thread keeps for reuse */

/* One socket of a connection and its edge-triggered readiness: the owner
 * sets the flags from epoll events, the pumps clear them on EAGAIN (and
 * readable on a short read). */
struct side {
    struct io io; /* io.fd is the socket; -1 once closed */
    int readable; /* edge-triggered readiness, cleared on EAGAIN or a short read */
    int writable;
    int hup; /* the peer shut down (EPOLLRDHUP): read until EOF */
};

/* What the pumps of one thread share: empty pipes kept for reuse and the
 * buffer every read goes through (passed on at once, never kept). Zeroed
 * memory is an empty cache. */
struct pump_cache {
    int spare[PUMP_SPARE_PIPES][2];
    size_t n_spare;
    char scratch[PUMP_CHUNK];
};

/* One turn of a connection's pumps (one wakeup): what they share and how
 * much they may still move. */
struct pump_turn {
    struct pump_cache *cache;
    size_t budget;      /* bytes left to move in this turn; 0: stop */
    unsigned pipe_errs; /* pipes that could not be had (the bytes were copied) */
    int pipe_err;       /* -errno of the last of them, for the owner's counters */
};

struct pump {
    struct side *from, *to;
    int pipe[2];
    size_t in_pipe;
    char *buf; /* what the destination did not take yet: buf[off..len) */
    size_t off, len;
    int splice_ok;                 /* splice allowed, and the kernel has not refused it */
    int splice;                    /* bulk seen: splicing now */
    int eof;                       /* from has no more to give */
    int shut;                      /* EOF was passed on with shutdown(SHUT_WR) */
    atomic_uint_fast64_t *counter; /* shared total the written bytes are added to */
    uint64_t bytes;                /* bytes written to the destination */
};

/* Sets up p (zeroed memory) to move bytes from -> to, adding what it writes
 * to *counter; splice: zero-copy may be used for bulk traffic. */
void pump_init(struct pump *p, struct side *from, struct side *to, int splice,
               atomic_uint_fast64_t *counter);

/* Queues data[0..len) to be written before anything else (a PROXY header,
 * the ClientHello a router read). Returns 0 or -ENOMEM. */
int pump_prepend(struct pump *p, const void *data, size_t len);

/* Moves bytes until the source is dry, the destination is full, the source
 * ended (EOF passed on: p->shut), or t->budget is spent (t->budget is
 * lowered by what was read). Returns 0, or -errno of a read, write or
 * splice that failed (the connection must end; -ECONNRESET and -EPIPE are
 * a peer's reset). */
int pump_run(struct pump *p, struct pump_turn *t);

/* True when p holds bytes its destination does not take now: reading
 * more from its source is pointless until the destination is writable. */
bool pump_blocked(const struct pump *p);

/* Gives back what p holds: its buffer, and its pipe to cache (a pipe with
 * bytes still in it is closed, never reused). Idempotent. */
void pump_release(struct pump *p, struct pump_cache *cache);

/* Closes the pipes kept in cache. */
void pump_cache_clear(struct pump_cache *cache);

#endif
