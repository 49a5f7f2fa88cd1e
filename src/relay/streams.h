/* streams.h - who may hold one of the long-lived inbound streams of a log
 * listener (a log sink's listen, logs.listen) or of a stream -> udp datagram
 * relay, and for how long.
 *
 * A stream is admitted when its peer matches the allow rules (tcp: CIDRs,
 * vsock: CIDs; config.h refuses rules on unix listeners, whose socket file
 * says who may connect). The number of streams is bounded, but a full set
 * never refuses: a new stream takes the place of a stream of the peer
 * holding the most streams (its own peer's when that holds as many): the
 * least recently active of those that never sent a whole line, else the
 * least recently active. So a peer that opens streams and stays silent (or
 * sends bytes without a line) only ever displaces its own, and the one
 * stream of the real forwarder (or of an app) keeps its place, even among
 * such streams of its own address. A stream the owner says is verified (a
 * log sink's, from a reserved port) is a peer of its own, and an unverified
 * newcomer never takes its place, however it keeps its streams busy (it is
 * refused when every stream is verified). A peer is an IP address (tcp), a CID (vsock) or a
 * uid (unix, hvsock: SO_PEERCRED). A stream silent for idle_timeout_ms is
 * closed; active and silent count whole lines, not bytes. Each refusal,
 * eviction and timeout is counted.
 *
 * The owner (logsink.c, logfwd.c) embeds a struct stream_slot in each of
 * its streams, calls streams_admit() when it accepts one, streams_touch()
 * when a line comes from one and streams_remove() when it closes one. The
 * set calls
 * back the owner's close_cb to end a stream (eviction, idle timeout); the
 * callback must call streams_remove(). Everything runs on the set's loop. */
#ifndef AIRLOCK_RELAY_STREAMS_H
#define AIRLOCK_RELAY_STREAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/list.h"
#include "core/loop.h"
#include "relay/log_conf.h"

/* Why the set ends a stream (close_cb). */
enum streams_end { STREAMS_EVICTED, STREAMS_IDLE };

struct stream_peer;
struct stream_slot;
typedef void (*streams_close_cb)(struct stream_slot *slot, enum streams_end why);

struct stream_slot {
    struct list link;    /* in the set's slots */
    struct streams *set; /* NULL when not in a set */
    struct stream_peer *peer;
    uint64_t active_ms; /* loop_now() when a whole line last came (or it came) */
    bool spoke;         /* a whole line came from it */
    bool retired;       /* the owner refused it and waits for its peer to close */
    struct timer idle;
    void *data; /* the owner's stream */
};

struct streams {
    struct loop *loop;
    const char *what; /* "log_sink=NAME", "logs listen": for log lines */
    struct stream_limits lim;
    streams_close_cb close_cb;
    struct list slots; /* least recently active first */
    size_t n;
    struct list peers;                      /* the peers holding streams */
    uint64_t refused, evicted, idle_closed; /* counters */
    uint64_t logged_ms[3]; /* when each kind of log line (refused, evicted, idle) last went */
};

/* Sets up an empty set on loop with limits lim; what names it in log
 * lines (kept by reference). */
void streams_init(struct streams *s, struct loop *loop, const char *what,
                  const struct stream_limits *lim, streams_close_cb close_cb);

/* New limits for the streams to come (a reload); the ones there stay. */
void streams_set_limits(struct streams *s, const struct stream_limits *lim);

/* Decides on fd, just accepted (verified: its peer proved who it is, or
 * the listener does not tell): -EACCES when its peer is not allowed
 * (counted; the caller closes it), -EBUSY when it is unverified and every
 * stream is verified, -ENOMEM, or 0 when slot (zeroed by the caller, data
 * set) is now in the set. At the limit, another stream was ended through
 * close_cb first. */
int streams_admit(struct streams *s, struct stream_slot *slot, int fd, bool verified);

/* A whole line came from the stream: it is now the most recently active
 * (bytes without a line do not count: a peer that keeps its streams warm
 * with them neither keeps their places nor escapes idle_timeout). */
void streams_touch(struct stream_slot *slot);

/* The owner refused the stream and only waits, for a bounded time, for its
 * peer to close it (what the peer still sends is dropped: a close with
 * input unread would be a reset). It keeps its place meanwhile, so that
 * such streams stay bounded, but it is the first a newcomer takes, whoever
 * its peer (close_cb, STREAMS_EVICTED, neither counted nor logged as an
 * eviction), and no idle timeout ends it. */
void streams_retire(struct stream_slot *slot);

/* Returns the least recently active stream's slot, NULL when there is none. */
struct stream_slot *streams_oldest(const struct streams *s);

/* Takes slot out of its set (idempotent). */
void streams_remove(struct stream_slot *slot);

/* Frees what the set holds; every stream must have been removed. */
void streams_fini(struct streams *s);

#endif
