/* conn.h - one relayed connection and the worker (event loop) that owns it.
 *
 * A connection is created by the accepting loop (conn_new) and handed to a
 * worker, where it lives and dies (conn_start): every function here except
 * conn_new and conn_dispatch runs on the owning worker's thread. */
#ifndef AIRLOCK_RELAY_CONN_H
#define AIRLOCK_RELAY_CONN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "core/list.h"
#include "core/loop.h"
#include "net/transport.h"
#include "net/unproven.h"
#include "relay/pump.h"
#include "relay/relay.h"

#define WORKER_SPARE_PIPES PUMP_SPARE_PIPES /* pipe pairs a worker keeps (fd budget) */

struct conn;

/* One event loop thread and what its connections share. */
struct worker {
    struct loop *loop;
    pthread_t thread;
    int has_thread;
    struct list conns; /* every live connection of this worker (struct conn) */
    atomic_size_t n_conns;
    struct pump_cache pumps; /* spare pipes and the scratch buffer of its pumps */
};

/* Returns a worker with a new loop (no thread yet), or NULL. */
struct worker *worker_new(void);

/* Runs w's loop on a new thread. Returns 0 or -errno. */
int worker_spawn(struct worker *w);

/* Closes every connection of w with END_SHUTDOWN; runs on w's thread. */
void worker_close_all(struct worker *w);

/* Stops w's loop, joins its thread (if any) and frees it. Call after its
 * connections are closed. */
void worker_free(struct worker *w);

/* Creates a connection for an accepted client fd of relay r, counted in
 * its client's unproven connections (NULL: not counted). Ownership of fd
 * and the count passes to the connection. Returns NULL on ENOMEM (the
 * caller closes fd and gives the count back). */
struct conn *conn_new(struct relay *r, int fd, const struct sockaddr *peer, socklen_t peer_len,
                      struct unproven_client *counted);

/* Returns a new connection id, unique in the process (for log lines); any
 * thread. */
uint64_t conn_next_id(void);

/* Hands c to worker w, c's relay's share of unproven connections there
 * being share; w starts serving it on its own thread. With place, c was
 * accepted at max_connections on a claim of share (net/unproven.h): it
 * takes the place of share's oldest unproven connection there, and is
 * refused if that one proved itself meanwhile. here is the caller's loop:
 * when it is w's, c starts at once, without a post (no wakeup, no
 * allocation). On failure the connection is closed here. */
void conn_dispatch(struct conn *c, struct worker *w, struct unproven_share *share, bool place,
                   struct loop *here);

/* The relays' evict_oldest (net/unproven.h): closes share's oldest
 * unproven connection (end=evicted). Returns false when there is none.
 * Runs on share's worker. */
bool conn_evict_oldest(struct unproven_share *share);

/* One open connection, as `airlock ctl conns` lists it. */
struct conn_info {
    char relay[64];                  /* the relay's, router's or HTTP proxy's name */
    char client[TRANSPORT_DESC_MAX]; /* the PROXY header's source, else the peer */
    char target[ENDPOINT_TEXT_MAX];  /* "-" while a router or egress relay has none */
    uint64_t age_ms;
    uint64_t bytes_in, bytes_out; /* written to the target, to the client; UINT64_MAX: not
                                     counted (an HTTP proxy's session) */
};

/* Copies the first max of w's open connections into out and returns how
 * many w has. Runs on w's thread (the list and the byte counts are that
 * thread's alone): post it there with loop_post(). */
size_t worker_conns(struct worker *w, struct conn_info *out, size_t max);

#endif
