/* metrics.h - a minimal HTTP listener serving Prometheus text on
 * GET /metrics (any endpoint kind, so an enclave can export it over vsock).
 *
 * On an hvsock endpoint it first answers the device's "CONNECT <port>" line
 * with "OK <port>" (as the vsock device does), so a host relay with an
 * hvsock target can reach it. It answers one request per connection and
 * closes it; anything other than
 * GET /metrics gets 404, a request over 4 KiB or slower than 5 s is dropped. */
#ifndef AIRLOCK_CLI_METRICS_H
#define AIRLOCK_CLI_METRICS_H

#include "core/loop.h"
#include "core/strbuf.h"
#include "net/endpoint.h"

struct metrics;

/* Appends the exposition text to out. */
typedef void (*metrics_render_cb)(struct strbuf *out, void *arg);

/* Listens on ep and serves what render writes. Returns the listener or NULL
 * with *err = -errno. Runs on loop's thread; free with metrics_stop(). */
struct metrics *metrics_start(struct loop *loop, const struct endpoint *ep,
                              metrics_render_cb render, void *arg, int *err);

/* Closes the listener and any request in progress; NULL is harmless. */
void metrics_stop(struct metrics *m);

#endif
