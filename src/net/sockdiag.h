/* sockdiag.h - who holds a local TCP port: the uids of the sockets bound
 * to it, listening or bound and not listening yet, IPv4 and IPv6, from the
 * kernel's socket diagnostics (NETLINK_SOCK_DIAG: what ss(8) reads). The
 * uid of a socket is its creator's, so where each instance of a pool runs
 * as its own uid, it tells which one holds a port (pool.c). */
#ifndef AIRLOCK_NET_SOCKDIAG_H
#define AIRLOCK_NET_SOCKDIAG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Writes the uids of the first max TCP sockets bound to local port (any
 * address) into uids. Returns how many there are (more than max: only max
 * written), or -errno. */
int sockdiag_port_uids(uint16_t port, uid_t *uids, size_t max);

#endif
