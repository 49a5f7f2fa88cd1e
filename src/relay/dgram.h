/* dgram.h - datagram relays: UDP carried over one stream as frames
 * (proto/frame.h), so that DNS and NTP clients work through vsock.
 *
 *   udp -> stream  (enclave side) a UDP socket on the listen endpoint; each
 *                  client address is a flow with an id; one stream to the
 *                  target, re-established with backoff when it breaks
 *                  (flows survive); replies go back by flow id.
 *   stream -> udp  (host side) accepted streams; per stream and flow id one
 *                  connected UDP socket towards the target, so replies come
 *                  back per flow; optional dns_allow answers REFUSED itself.
 *
 * Flows are forgotten after flow_idle_timeout, or when a table is full
 * (evicted, counted) the least recently used one that has had its answers,
 * else the least recently used one still waiting (counted apart too). The stream side holds at most
 * dgram_fd_budget() fds: half of them for streams (more are refused), half
 * for flow sockets, shared fairly among the streams (at most max_flows
 * each); its streams close after idle_timeout without a frame. Datagrams
 * over max_datagram, and datagrams that find the stream backed up (a
 * bounded queue), are dropped and counted.
 * Everything here runs on the main loop (the relay's accepting loop): these
 * relays carry light traffic, and one thread needs no locks. */
#ifndef AIRLOCK_RELAY_DGRAM_H
#define AIRLOCK_RELAY_DGRAM_H

#include <sys/socket.h>

#include "relay/relay.h"

/* Starts the datagram side of r on r->loop, with r->listen_fd open: a udp
 * listener starts reading and connects its stream; a stream listener is
 * ready for dgram_accept(). Sets r->dgram. Returns 0 or -errno (nothing is
 * left behind then). */
int dgram_start(struct relay *r);

/* Takes over fd, a stream accepted by r's listener (stream -> udp relays).
 * Returns 0, or -errno when it cannot (the caller still owns and closes fd):
 * -EMFILE when streams hold their half of the relay's fd budget. */
int dgram_accept(struct relay *r, int fd, const struct sockaddr *peer, socklen_t peer_len);

/* Returns how many file descriptors the streams and flow sockets of a
 * stream -> udp relay with settings rc may hold together: max_fds, or when
 * that is 0 an eighth of the process's open files limit (2 to 4096), so
 * that no peer of a datagram relay can exhaust the fds other relays need. */
unsigned dgram_fd_budget(const struct relay_conf *rc);

/* Closes every stream, flow and socket of r's datagram side (r->listen_fd
 * stays with r) and sets r->dgram to NULL; memory goes after the current
 * loop turn. Harmless when r has no datagram side. */
void dgram_stop(struct relay *r);

#endif
