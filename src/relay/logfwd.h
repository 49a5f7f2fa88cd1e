/* logfwd.h - the enclave side of log forwarding (the logs: block).
 *
 * Lines come from two kinds of source: airlock's own log lines (with
 * capture_stderr; handed over by log.c's tee from any thread) and apps that
 * connect to the optional listen endpoint and write lines (many at once).
 * Each line is tagged with its source ("airlock: ", "app[PID]#N: ", see
 * docs/observability.md), cut at line_max if longer, and appended whole to a
 * bounded buffer (core/logring.h; full: the new line is dropped and
 * counted). One stream to the forward endpoint carries the buffer out; when
 * it breaks it is reconnected with backoff, and the line it broke in is sent
 * again whole. Nothing here ever blocks: not the logging threads, not the
 * apps (their lines are dropped rather than their writes stalled), not the
 * main loop (reads and writes are bounded per wakeup).
 *
 * Everything runs on the loop given to logfwd_new() (the main loop), except
 * the tee, which any thread may call. */
#ifndef AIRLOCK_RELAY_LOGFWD_H
#define AIRLOCK_RELAY_LOGFWD_H

#include <stdbool.h>

#include "core/loop.h"
#include "core/strbuf.h"
#include "relay/log_conf.h"

struct logfwd;

/* Starts forwarding as conf says: opens the listen endpoint (if any),
 * installs the tee (capture_stderr) and connects. Returns the forwarder, or
 * NULL with *err = -errno (e.g. the listen endpoint is taken). Free with
 * logfwd_free(). */
struct logfwd *logfwd_new(struct loop *loop, const struct log_conf *conf, int *err);

/* Applies a reloaded conf: a changed forward endpoint reconnects (buffered
 * lines stay), a changed listen endpoint reopens the listener (connected
 * apps stay), capture_stderr turns the tee on or off. buffer and line_max
 * keep their running values until the next start. Returns 0, or -errno when
 * the new listener cannot be opened (the old one is then kept). */
int logfwd_reconfigure(struct logfwd *f, const struct log_conf *conf);

/* Returns the settings the forwarder runs with (buffer and line_max: those
 * of its start). */
const struct log_conf *logfwd_conf(const struct logfwd *f);

/* Returns the bytes still waiting to be sent (for the drain). */
size_t logfwd_pending(struct logfwd *f);

/* Appends the airlock_log_* metrics to out. */
void logfwd_render(struct logfwd *f, struct strbuf *out);

/* Removes the tee, closes the stream, the listener and every app
 * connection, and frees f (buffered lines are lost). NULL is harmless. */
void logfwd_free(struct logfwd *f);

#endif
