/* transport.h - sockets for each endpoint kind behind one small table.
 *
 * tcp, unix, vsock and hvsock (a unix socket with a one-line CONNECT
 * handshake, done by the relay) are all stream sockets; what differs is how
 * the address is built and which socket options apply. Every fd returned
 * here is non-blocking and close-on-exec. */
#ifndef AIRLOCK_NET_TRANSPORT_H
#define AIRLOCK_NET_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "net/endpoint.h"

/* Longest text transport_describe() writes, including NUL. */
#define TRANSPORT_DESC_MAX 128

/* The mode of a listener's socket file when ep->perm.mode is 0. */
#define TRANSPORT_UNIX_MODE 0660

/* Opens a listening socket for ep (tcp, unix, vsock; hvsock listens on its
 * unix path; udp gives a bound datagram socket). A unix path held by a dead
 * socket file is replaced; one with a live listener gives -EADDRINUSE. A
 * socket file gets ep->perm (mode, else TRANSPORT_UNIX_MODE; owner; group)
 * whatever the umask, and nobody else can connect before it has them. The
 * backlog is the kernel's largest (net.core.somaxconn): a short one drops
 * the SYNs of a burst, and each dropped one costs its client a second.
 * Returns the fd, or -errno (-ENOENT also for an unknown owner or group). */
int transport_listen(const struct endpoint *ep);

/* A listener on old stays open for ep (a reload, endpoint_equal()): gives
 * its socket file ep->perm when that differs from old->perm. Returns 0
 * (also for endpoints without a file), or -errno. */
int transport_chperm(const struct endpoint *ep, const struct endpoint *old);

/* Resolves perm's owner and group (names or numbers) into *uid and *gid,
 * -1 for those not set. Returns 0, -ENOENT when one does not exist, or
 * -errno. */
int transport_perm_ids(const struct ep_perm *perm, uid_t *uid, gid_t *gid);

/* Removes what transport_listen() left in the filesystem (unix paths). */
void transport_unlisten(const struct endpoint *ep);

/* Builds the socket address of ep without name resolution. Returns 0,
 * -EAGAIN when ep is tcp/udp with a host name (use resolve.h), or -errno. */
int transport_addr(const struct endpoint *ep, struct sockaddr_storage *ss, socklen_t *len);

/* Starts a non-blocking connect to sa, from a reserved port (512-1023)
 * when reserved is set and sa is tcp or vsock: the first one free from a
 * random start (with SO_REUSEADDR, so that it keeps no listener of that
 * port out); without the right to bind one (CAP_NET_BIND_SERVICE), or with
 * none free, from any port (getsockname() and transport_port() tell). Returns the fd and sets
 * *pending when the connect is still in progress (wait for EPOLLOUT, then
 * transport_sock_error()), or returns -errno. */
int transport_connect(const struct sockaddr *sa, socklen_t len, bool reserved, bool *pending);

/* The first and last port of transport_connect()'s reserved range: below
 * 1024, only a privileged process binds them. */
#define TRANSPORT_RESERVED_LO 512
#define TRANSPORT_RESERVED_HI 1023

/* Returns the port of sa (tcp, vsock), or 0 for other families. */
uint32_t transport_port(const struct sockaddr *sa);

/* Opens a UDP socket connected to sa (so that it receives only from sa),
 * on a local port no socket gave back by transport_udp_release() in the
 * last TRANSPORT_UDP_QUARANTINE_S seconds. A reply on its way to a socket
 * that was closed would otherwise reach the next socket the kernel gives
 * that port: another flow, another client. Returns the fd, or -errno
 * (-EADDRINUSE when the ports the kernel offered were all that recent). */
int transport_udp_connect(const struct sockaddr *sa, socklen_t len);

/* Closes a socket of transport_udp_connect(): its port rests for the
 * quarantine. */
void transport_udp_release(int fd);

#define TRANSPORT_UDP_QUARANTINE_S 10

/* The error pending on socket fd (SO_ERROR, which this clears): 0 or -errno.
 * After a non-blocking connect: whether it succeeded. */
int transport_sock_error(int fd);

/* Sets the options a relayed stream socket of kind wants: for tcp,
 * TCP_NODELAY always and keepalive when asked; nothing for other kinds. */
void transport_tune(int fd, enum ep_kind kind, bool keepalive);

/* Tunes a stream listener of kind so that the sockets it accepts inherit
 * what transport_tune() would set on each (one setsockopt() per listener,
 * not two per connection): for tcp, TCP_NODELAY, SO_KEEPALIVE on or off as
 * keepalive says, and TCP_DEFER_ACCEPT of defer_s seconds (0: off; a client
 * is accepted once its first bytes arrive, or after about defer_s seconds
 * of silence). Nothing for other kinds. Returns 0 or -errno. */
int transport_tune_listener(int fd, enum ep_kind kind, bool keepalive, unsigned defer_s);

/* Accepts one connection on the listening socket lfd, retrying when accept4()
 * is interrupted or the client already gave up. Returns the new fd
 * (non-blocking, close-on-exec), or -errno (-EAGAIN: none pending) with
 * errno left set for log_warn(). */
int transport_accept(int lfd);

/* The hvsock listener's half of the handshake. line is what the peer sent
 * before its '\n', NUL-terminated. When it is exactly "CONNECT <port>"
 * naming port, writes "OK <port>\n" to fd and returns 0; returns -EINVAL for
 * any other line and -EIO when the answer could not be written whole. */
int transport_hvsock_answer(int fd, const char *line, uint32_t port);

/* The connecting half: writes "CONNECT <port>\n" to a freshly connected
 * hvsock fd. Returns 0, or -EIO when it could not be written whole; the
 * caller then waits for the "OK" line. */
int transport_hvsock_hello(int fd, uint32_t port);

/* The tail of a connection whose answer is written and whose write side is
 * shut: closing it with input unread would send a reset, and a reset drops
 * the answer before the peer reads it, so what still comes (the rest of a
 * refused or over-long request) is read and dropped until the peer closes.
 * *dropped counts what was dropped. Returns 0 while the peer may send more
 * (wait for the next readable event), 1 when fd may be closed now: at its
 * end, an error, or past TRANSPORT_LINGER_MAX bytes (a peer that sends on
 * and on is closed: only a huge over-long request loses its answer; the
 * caller's timer bounds the time). */
#define TRANSPORT_LINGER_MAX (256 * 1024)
#define TRANSPORT_LINGER_MS 5000 /* how long a caller lingers at most */
int transport_linger(int fd, size_t *dropped);

/* Writes "1.2.3.4:5", "[::1]:5", "unix:/p", "vsock:3:5" for sa into buf. */
void transport_describe(const struct sockaddr *sa, socklen_t len, char *buf, size_t buflen);

/* Longest text transport_client_key() writes, including NUL. */
#define TRANSPORT_CLIENT_MAX 64

/* Writes the key that per-client bounds count the peer sa of socket fd by:
 * its IPv4 address ("192.0.2.1", also for an IPv4-mapped IPv6 one), the /64
 * of an IPv6 address ("2001:db8:1:2::/64": one subscriber's network, in
 * which a host picks addresses at will), "vsock:CID", or a unix peer's uid
 * ("unix:uid=N"; "unix" when fd is -1 or its credentials cannot be had). */
void transport_client_key(int fd, const struct sockaddr *sa, char *buf, size_t buflen);

#endif
