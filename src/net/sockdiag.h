/* sockdiag.h - who holds the local TCP ports of a range: the sockets bound
 * to one of them (listening, bound and not listening yet, connected; IPv4
 * and IPv6; TIME_WAIT is no one's), from the kernel's socket diagnostics
 * (NETLINK_SOCK_DIAG: what ss(8) reads), filtered by the kernel; and the
 * process that holds one. A socket's uid is its creator's, which may have
 * passed it on (SCM_RIGHTS) or left it (a connection closed with data
 * unsent outlives every process): where each instance of a pool runs as its
 * own uid, the uid of the process holding the socket tells which instance
 * holds a port (pool_port.c). */
#ifndef AIRLOCK_NET_SOCKDIAG_H
#define AIRLOCK_NET_SOCKDIAG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct sockdiag_sock {
    uint16_t port;
    uid_t uid;   /* its creator's */
    ino_t inode; /* what a holder's /proc/PID/fd/N links to: socket:[inode] */
    bool bound;  /* listening, or bound and not listening: a port taken on
                    purpose (a connected socket may have been given it as an
                    ephemeral port) */
    int family;  /* AF_INET or AF_INET6 */
    uint16_t dport;
    uint8_t src[16], dst[16]; /* the addresses, network order (4 bytes for AF_INET) */
};

/* Calls each(arg, s) for every TCP socket whose local port is in [lo, hi].
 * Returns 0 or -errno. */
int sockdiag_ports(uint16_t lo, uint16_t hi, void (*each)(void *arg, const struct sockdiag_sock *s),
                   void *arg);

/* The creator's uid of the other end of fd, a connected TCP socket, when
 * that end is on this machine: 0 with *uid, -ENOENT when it is elsewhere
 * (or gone), or -errno. One lookup by the four-tuple, not a dump: a few
 * microseconds whatever the number of sockets. */
int sockdiag_peer_uid(int fd, uid_t *uid);

/* Sockets to find the holders of: n inodes (what a holder's
 * /proc/PID/fd/N links to: socket:[inode]), and for each whether a process
 * (not the caller) holds it and that process's real uid. */
struct sockdiag_holders {
    size_t n;
    const ino_t *inodes;
    bool *found;
    uid_t *uids;
};

/* Finds the holders of h's sockets (found all false on entry) in one pass
 * over every process's fd tables (/proc/PID/fd, and /proc/PID/task/TID/fd
 * of a thread with a table of its own: a zombie leader's /proc/PID/fd is
 * empty while its threads hold theirs), the files registered in the
 * io_urings open there (their fdinfo) and its mappings (/proc/PID/maps: a
 * TCP socket may be mapped, and its fd closed). One that none holds so is
 * not found: an orphan the kernel alone keeps, or one held where /proc
 * shows no holder (in flight, sent with SCM_RIGHTS and never received; in
 * an io_uring whose fd is closed). As many fds as the processes hold are
 * read, so it may take seconds (an instance may open millions): never on
 * the main loop. As root, with CAP_SYS_PTRACE (sockdiag_holder_check()). */
void sockdiag_holders(struct sockdiag_holders *h);

/* Whether sockdiag_holders() sees the sockets of every process: the kernel
 * lets root read another uid's /proc/PID/fd only with CAP_SYS_PTRACE (its
 * ptrace read check), which also reaches a process that made itself
 * non-dumpable; without it, none of another uid's is found. Returns 0,
 * -EPERM when CAP_SYS_PTRACE is not in the caller's effective set, or
 * -errno when its capabilities cannot be read. */
int sockdiag_holder_check(void);

/* The kernel's range of ephemeral ports (net.ipv4.ip_local_port_range),
 * where connects and listens on port 0 get theirs, into *lo and *hi. */
void sockdiag_ephemeral(uint16_t *lo, uint16_t *hi);

#endif
