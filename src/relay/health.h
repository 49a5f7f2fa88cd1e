/* health.h - the targets of a relay with targets: (conf.h), their health
 * and the choice of one per connection.
 *
 * Each target is a struct relay_target: its endpoint, whether it is up, its
 * open connections. The state is atomics only, read and written by any
 * thread: the relay's active checks run on its accepting loop (a connect,
 * and to an hvsock target the CONNECT/OK exchange, every health.interval;
 * never on a worker's byte path), and a worker whose connect to a target
 * failed counts that as a failed check (passive). fall failures in a row
 * mark a target down, rise good checks in a row up again; each change is
 * logged ("relay=X target=Y down ..."). A target starts up.
 *
 * Targets are reference counted: a reload that replaces a relay hands the
 * state of each target that stays (same endpoint) to its successor, so a
 * down target stays down, and the open connections of the old relay still
 * count for least_conn and the metrics. */
#ifndef AIRLOCK_RELAY_HEALTH_H
#define AIRLOCK_RELAY_HEALTH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/strbuf.h"
#include "net/dial.h"
#include "net/endpoint.h"

struct relay;

struct relay_target {
    atomic_int refs;
    struct endpoint ep;
    char text[ENDPOINT_TEXT_MAX]; /* endpoint_format(): logs and the metrics' label */
    atomic_bool up;
    atomic_uint fails, oks;        /* failed / good checks in a row */
    atomic_uint_fast64_t open;     /* connections to it now */
    atomic_uint_fast64_t total;    /* connections that picked it */
    atomic_uint_fast64_t failures; /* failed checks, active and passive */
};

/* Creates r's targets from r->conf.targets (none for a relay with target:).
 * Returns 0 or -ENOMEM (r->targets may be partly filled; relay_targets_free
 * frees it). */
int relay_targets_new(struct relay *r);

/* Releases r's targets and stops nothing: relay_health_stop() first. */
void relay_targets_free(struct relay *r);

/* For each target of r that prev has too (the same endpoint): r takes prev's
 * (its state, its counters) in place of its own fresh one. */
void relay_targets_adopt(struct relay *r, const struct relay *prev);

/* Starts the active checks of r's targets on r->loop, the first at once.
 * Returns 0 or -ENOMEM. Calling it again restarts them. */
int relay_health_start(struct relay *r);

/* Stops r's checks (a dial in progress is cancelled). Idempotent. */
void relay_health_stop(struct relay *r);

/* Picks a healthy target of r by r->conf.balance, other than skip (may be
 * NULL), and counts a connection on it (relay_target_release() ends it).
 * Returns NULL when none is up. Any thread. */
struct relay_target *relay_target_pick(struct relay *r, const struct relay_target *skip);

/* A connection that picked t ended (or moved to another target). */
void relay_target_release(struct relay_target *t);

/* A dial of t ended with err and why: a check of r's (active), or a
 * connection's connect (passive). Counts a failed check, which may mark t
 * down. Any thread. */
void relay_target_failed(struct relay *r, struct relay_target *t, int err, enum dial_result why);

/* Returns false when r has targets: and none of them is up. */
bool relay_targets_healthy(const struct relay *r);

/* Appends the targets' metrics of relays[0..n) (Prometheus text). */
void relay_targets_render(struct relay *const *relays, size_t n, struct strbuf *out);

#endif
