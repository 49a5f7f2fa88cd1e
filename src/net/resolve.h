/* resolve.h - host names of targets, resolved when a connection needs them
 * and cached for the DNS answer's TTL, so a moved service is followed.
 *
 * Names listed in /etc/hosts are cached for RESOLVE_HOSTS_TTL seconds.
 * Lookups run on a pool of at most resolver_threads helper threads, never
 * on an event loop; at most resolver_queue distinct names wait for a
 * thread, and concurrent requests for one name share its lookup. */
#ifndef AIRLOCK_NET_RESOLVE_H
#define AIRLOCK_NET_RESOLVE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct loop;

#define RESOLVE_HOSTS_TTL 5
#define RESOLVE_NEG_TTL 2 /* a failed lookup is retried no sooner */
#define RESOLVE_THREADS_DEFAULT 4
#define RESOLVE_QUEUE_DEFAULT 256

/* Looks host up in the cache. Returns 0 and fills *ss and *len with the next
 * address (round robin) and port; -EAGAIN when there is no fresh entry (call
 * resolve_start()); or the cached failure (-EHOSTUNREACH, -ENOENT...). */
int resolve_cached(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len);

/* A caller waiting for a lookup (resolve_start()). */
struct resolve_waiter;

/* Resolves host on a helper thread, stores the answer in the cache, then
 * calls done(arg, err) on loop's thread (err 0 or -errno); *waiter (when
 * not NULL) is the handle for resolve_cancel() until then. client (a
 * transport_client_key(), or NULL) is whose lookup it is: one client's
 * names take at most a quarter of the queue. Returns 0, or -errno when the
 * lookup could not be started (done is then never called): -EBUSY when
 * resolver_queue names (or client's share) already wait for a thread
 * (counted in resolve_stats()) or no thread could be started, or -ENOMEM. */
int resolve_start(struct loop *loop, const char *host, const char *client,
                  void (*done)(void *arg, int err), void *arg, struct resolve_waiter **waiter);

/* Withdraws waiter before its answer. Returns true when done will never be
 * called (the caller frees arg; the lookup goes on for the cache), false
 * when the answer is already posted to its loop: done will be called
 * there, arg must stay. A loop that goes away must have withdrawn its
 * waiters first: an answer posted to a freed loop is a use after free. */
bool resolve_cancel(struct resolve_waiter *waiter);

/* Sets the pool's bounds: at most threads helper threads (0: the default,
 * RESOLVE_THREADS_DEFAULT) and queue names waiting (0: RESOLVE_QUEUE_DEFAULT).
 * Threads start when lookups wait and stay; lowering threads ends the
 * surplus once idle. Any thread. */
void resolve_configure(unsigned threads, unsigned queue);

/* The pool now, for metrics. */
struct resolve_stats {
    unsigned threads;  /* running */
    unsigned queued;   /* names waiting for a thread */
    uint64_t rejected; /* resolve_start() calls refused with -EBUSY, since the start */
};
void resolve_stats(struct resolve_stats *st);

#endif
