/* acceptor.h - a listening socket's accepts on an event loop: every
 * listener of airlock (relays, HTTP proxies, the key broker, the log sink
 * and forwarder, metrics, ctl) accepts through one.
 *
 * The loop's events are edge-triggered: a wakeup reports the clients queued
 * since the last one, so each wakeup accepts until the queue is empty, at
 * most ACCEPTOR_BUDGET at a time (the rest in the next loop turn, so that a
 * flood on one listener does not hold the loop). Out of file descriptors or
 * memory, the clients stay queued in the kernel and accepting is retried
 * every ACCEPTOR_PAUSE_MS: no new client may come to wake the loop for them,
 * and retrying at once would spin. One log line when that starts, one when
 * it ends. When the listener's owner frees what is short for them (a relay
 * evicts an unproven connection), the retry comes after ACCEPTOR_RETRY_MS,
 * unlogged. */
#ifndef AIRLOCK_NET_ACCEPTOR_H
#define AIRLOCK_NET_ACCEPTOR_H

#include <stdbool.h>
#include <sys/socket.h>

#include "core/loop.h"

#define ACCEPTOR_BUDGET 64    /* accepts per loop turn */
#define ACCEPTOR_PAUSE_MS 100 /* the retry while out of file descriptors or memory */
#define ACCEPTOR_RETRY_MS 1   /* the retry while a descriptor is being freed */

struct acceptor;

/* An accepted socket (non-blocking, close-on-exec; the callee owns it) and
 * its peer's address. It may stop the acceptor, not free it. */
typedef void (*acceptor_cb)(struct acceptor *a, int fd, const struct sockaddr *peer, socklen_t len);

/* An accept that failed for want of a resource of this process or host
 * (-EMFILE, -ENFILE, -ENOMEM, -ENOBUFS), before the pause: for counting.
 * Returns true when it set about freeing what is short (a relay closes a
 * connection a newcomer may take the place of): the pause is then
 * ACCEPTOR_RETRY_MS. */
typedef bool (*acceptor_limit_cb)(struct acceptor *a, int err);

struct acceptor {
    int fd;            /* the listening socket, not owned */
    struct loop *loop; /* NULL: stopped */
    struct io io;
    struct timer pause; /* armed while out of descriptors or memory */
    struct task more;   /* accepting continued after the budget */
    bool paused;        /* since the last accept that did not fail that way */
    char what[80];      /* who accepts, for the log: "relay=NAME", "metrics" */
    acceptor_cb admit;
    acceptor_limit_cb limit; /* NULL: not counted */
    void *data;
};

/* Accepts from the listening socket fd on loop, each client to admit(data
 * in a->data), and at once what is already queued (a listener adopted from
 * a reload may hold clients). what names it in the log (copied). limit may
 * be NULL. Returns 0 or -errno (nothing is watched then). */
int acceptor_start(struct acceptor *a, struct loop *loop, int fd, const char *what,
                   acceptor_cb admit, acceptor_limit_cb limit, void *data);

/* Stops accepting (on the acceptor's loop): nothing of it stays queued. The
 * socket stays open, the caller's. Idempotent; a zeroed acceptor is a
 * stopped one. */
void acceptor_stop(struct acceptor *a);

#endif
