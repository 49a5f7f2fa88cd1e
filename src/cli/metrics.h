/* metrics.h - a minimal HTTP listener serving Prometheus text on
 * GET /metrics (any endpoint kind, so an enclave can export it over vsock),
 * and the probes of a load balancer or an orchestrator: GET /healthz (200
 * "ok" whenever the loop serving it runs) and GET /readyz (200 "ready", or
 * 503 with a one-line reason while metrics_ready_cb says not ready).
 *
 * On an hvsock endpoint it first answers the device's "CONNECT <port>" line
 * with "OK <port>" (as the vsock device does), so a host relay with an
 * hvsock target can reach it. It answers one request per connection and
 * closes it; any other path gets 404, any other method 405, a request over
 * 4 KiB or slower than 5 s is dropped. */
#ifndef AIRLOCK_CLI_METRICS_H
#define AIRLOCK_CLI_METRICS_H

#include <stddef.h>

#include "core/loop.h"
#include "core/strbuf.h"
#include "net/endpoint.h"

struct metrics;

/* Appends the exposition text to out. */
typedef void (*metrics_render_cb)(struct strbuf *out, void *arg);

/* Longest reason /readyz gives, bytes incl. NUL. */
#define METRICS_WHY_MAX 256

/* Returns nonzero when ready; else 0 with why[0..len) holding a one-line
 * reason (NUL-terminated, no newline). Runs on the metrics loop. */
typedef int (*metrics_ready_cb)(char *why, size_t len, void *arg);

/* Listens on ep and serves what render writes. Returns the listener or NULL
 * with *err = -errno. Runs on loop's thread; free with metrics_stop(). */
struct metrics *metrics_start(struct loop *loop, const struct endpoint *ep,
                              metrics_render_cb render, void *arg, int *err);

/* Makes /readyz ask ready(why, len, arg); until then it answers 200. */
void metrics_set_ready(struct metrics *m, metrics_ready_cb ready, void *arg);

/* Closes the listener and any request in progress; NULL is harmless. */
void metrics_stop(struct metrics *m);

#endif
