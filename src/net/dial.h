/* dial.h - the one asynchronous dialer: every outbound stream connect.
 *
 *   dial_start ─► (name?) RESOLVING: resolve.c, cached, on a resolver thread
 *              ─► admit(address)?  ─► CONNECTING: non-blocking connect, SO_ERROR
 *              ─► (hvsock?) HANDSHAKE: "CONNECT port\n" sent, "OK ...\n" awaited
 *              ─► done(fd)          one timeout covers all of it
 *
 * A name is resolved through net/resolve (its cache, its bounded thread
 * pool); each dial connects to one address, the next of the cache's round
 * robin, as relays always did. The hvsock "OK" line is read with MSG_PEEK
 * and consumed exactly, so bytes the peer sends after it stay in the
 * socket. Everything runs on the loop given to dial_start(). */
#ifndef AIRLOCK_NET_DIAL_H
#define AIRLOCK_NET_DIAL_H

#include <sys/socket.h>

#include "core/loop.h"
#include "net/endpoint.h"

/* How a dial ended. */
enum dial_result {
    DIAL_OK,
    DIAL_RESOLVE_FAILED,   /* the name has no address (err from resolve.c) */
    DIAL_ADMIT_REFUSED,    /* the admit hook refused the address (its err) */
    DIAL_CONNECT_FAILED,   /* socket(), connect(), SO_ERROR, or no resolver slot (-EBUSY) */
    DIAL_HANDSHAKE_FAILED, /* hvsock: no "OK" line (-ECONNREFUSED), EOF (-ECONNRESET) */
    DIAL_TIMEOUT,          /* the whole dial took longer than its timeout (-ETIMEDOUT) */
};

/* Called with each address before connecting to it (egress checks its
 * allowlist after resolution, so a permitted name cannot lead to a private
 * address). Returns 0 to connect, or -errno to refuse: the dial ends with
 * DIAL_ADMIT_REFUSED and that error. It must not cancel or free the dial. */
typedef int (*dial_admit_cb)(void *arg, const struct sockaddr *sa, socklen_t len);

/* The end of a dial: fd >= 0 is the connected, non-blocking, close-on-exec
 * socket (the callee owns it; the dialer no longer watches it), else fd is
 * -errno and why says what failed. The dial is idle again when this runs:
 * the callee may free it or start it again. */
typedef void (*dial_done_cb)(void *arg, int fd, enum dial_result why);

enum dial_state {
    DIAL_ST_IDLE, /* zeroed, finished or cancelled */
    DIAL_ST_STARTING,
    DIAL_ST_RESOLVING,
    DIAL_ST_CONNECTING,
    DIAL_ST_HANDSHAKE,
};

struct dial_lookup;

/* One dial in progress. A zeroed struct is an idle dial. */
struct dial {
    enum dial_state state;
    struct loop *loop;
    const struct endpoint *target;
    struct io io; /* CONNECTING, HANDSHAKE: the socket */
    struct timer timer;
    struct task task;           /* STARTING: the first step, after dial_start() returned */
    struct dial_lookup *lookup; /* RESOLVING: the resolver's answer comes there */
    dial_admit_cb admit;
    dial_done_cb done;
    void *arg;
    /* whose dial it is (set after dial_start(); NULL: nobody's): its name
     * lookups count against that client's share of the resolver's queue */
    const struct sockaddr *client;
};

/* Dials target (tcp, unix, vsock, hvsock) on loop's thread: done(arg, ...)
 * is called exactly once, never from within dial_start(), unless the dial
 * is cancelled first. timeout_ms bounds the whole dial (0: no bound). admit
 * (may be NULL) sees the address before the connect. A nofollow target's
 * socket file is reached only through a path without symbolic links
 * (DIAL_CONNECT_FAILED, -ELOOP otherwise). target must stay valid and
 * unchanged until done runs or the dial is cancelled. A dial still in
 * progress is cancelled first. */
void dial_start(struct dial *d, struct loop *loop, const struct endpoint *target,
                unsigned timeout_ms, dial_admit_cb admit, dial_done_cb done, void *arg);

/* Stops the dial: closes its socket, withdraws it from the resolver, and
 * done is never called. Idempotent; harmless on an idle dial and from the
 * done callback; d may be freed as soon as it returns. */
void dial_cancel(struct dial *d);

/* Dials target on a loop of the caller's own and waits: for command-line
 * clients (airlock ctl, airlock attest fetch-secret), so that their server
 * may be named like any target (a host name, an hvsock device). Returns the
 * connected, non-blocking fd, or -errno with *why saying how it ended. */
int dial_sync(const struct endpoint *target, unsigned timeout_ms, enum dial_result *why);

/* The text for why, for log lines: "connect failed", "connect timed out"... */
const char *dial_result_name(enum dial_result why);

#endif
