/* resolve.h - host names of targets, resolved when a connection needs them
 * and cached for the DNS answer's TTL, so a moved service is followed.
 *
 * Names listed in /etc/hosts are cached for RESOLVE_HOSTS_TTL seconds. The
 * lookup runs on a short-lived helper thread, never on an event loop;
 * concurrent requests for one name share it. */
#ifndef AIRLOCK_NET_RESOLVE_H
#define AIRLOCK_NET_RESOLVE_H

#include <stdint.h>
#include <sys/socket.h>

struct loop;

#define RESOLVE_HOSTS_TTL 5
#define RESOLVE_NEG_TTL 2 /* a failed lookup is retried no sooner */

/* Looks host up in the cache. Returns 0 and fills *ss and *len with the next
 * address (round robin) and port; -EAGAIN when there is no fresh entry (call
 * resolve_start()); or the cached failure (-EHOSTUNREACH, -ENOENT...). */
int resolve_cached(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len);

/* Resolves host on a helper thread, stores the answer in the cache, then
 * calls done(arg, err) on loop's thread (err 0 or -errno). Returns 0, or
 * -errno when the lookup could not be started (done is then never called). */
int resolve_start(struct loop *loop, const char *host, void (*done)(void *arg, int err),
                  void *arg);

#endif
