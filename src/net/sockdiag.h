/* sockdiag.h - who holds the local TCP ports of a range: the uid and state
 * of every socket bound to one of them (listening, bound and not listening
 * yet, connected; IPv4 and IPv6; TIME_WAIT is no one's), from the kernel's
 * socket diagnostics (NETLINK_SOCK_DIAG: what ss(8) reads), filtered by the
 * kernel. The uid of a socket is its creator's, so where each instance of a
 * pool runs as its own uid, it tells which one holds a port (pool.c). */
#ifndef AIRLOCK_NET_SOCKDIAG_H
#define AIRLOCK_NET_SOCKDIAG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Calls each(arg, port, uid, bound) for every TCP socket whose local port
 * is in [lo, hi]; bound: the socket is listening, or bound and not
 * listening (a port taken on purpose: a connected socket may have been
 * given it as an ephemeral port). Returns 0 or -errno. */
int sockdiag_ports(uint16_t lo, uint16_t hi,
                   void (*each)(void *arg, uint16_t port, uid_t uid, bool bound), void *arg);

/* The kernel's range of ephemeral ports (net.ipv4.ip_local_port_range),
 * where connects and listens on port 0 get theirs, into *lo and *hi. */
void sockdiag_ephemeral(uint16_t *lo, uint16_t *hi);

#endif
