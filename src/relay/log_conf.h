/* log_conf.h - the settings of log forwarding (the logs: block, the
 * enclave side: relay/logfwd.h) and of log sinks (log_sinks:, the host
 * side: relay/logsink.h), with the limits of their listeners' streams
 * (relay/streams.h). The keys are described in cli/config.h. */
#ifndef AIRLOCK_RELAY_LOG_CONF_H
#define AIRLOCK_RELAY_LOG_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "core/units.h"
#include "net/allow.h"
#include "net/endpoint.h"
#include "relay/conf.h"

#define CONF_SINKS_MAX 64

/* Defaults and bounds of the log settings (bytes). */
#define LOG_BUFFER_DEFAULT (1024 * 1024)
#define LOG_BUFFER_MIN (64 * 1024)
#define LOG_BUFFER_MAX (1024 * 1024 * 1024)
#define LOG_LINE_DEFAULT (16 * 1024)
#define LOG_SINK_LINE_DEFAULT (64 * 1024)
#define LOG_LINE_MIN 256
#define LOG_LINE_MAX (1024 * 1024)

/* Who may hold one of the streams of a log listener (logs.listen, a log
 * sink's listen): see relay/streams.h. */
#define CONF_STREAMS_MAX 4096
#define LOG_STREAMS_DEFAULT 256
#define LOG_SINK_IDLE_DEFAULT (60 * 60 * 1000) /* ms; the forwarder reconnects */
struct stream_limits {
    struct allow_rule allow[CONF_ALLOW_MAX]; /* tcp: CIDRs, vsock: cid:N; empty: anyone */
    size_t n_allow;
    unsigned max_streams;     /* 1..CONF_STREAMS_MAX; more: the busiest peer's quietest goes */
    unsigned idle_timeout_ms; /* a stream silent this long is closed; 0: never */
};

/* The enclave side of log forwarding (the logs: block). */
struct log_conf {
    bool enabled; /* a logs: block is present */
    struct endpoint forward;
    bool capture_stderr;
    bool has_listen;
    struct endpoint listen;
    size_t buffer;               /* bytes, LOG_BUFFER_MIN..LOG_BUFFER_MAX */
    size_t line_max;             /* bytes, LOG_LINE_MIN..LOG_LINE_MAX, at most buffer / 4 */
    struct stream_limits limits; /* of the apps on listen; idle_timeout 0 by default */
};

/* One host-side log sink (an entry of log_sinks:). */
struct log_sink_conf {
    char name[CONF_NAME_MAX];
    struct endpoint listen;
    char file[CONF_FILE_PATH_MAX];
    size_t line_max;
    struct stream_limits limits; /* idle_timeout LOG_SINK_IDLE_DEFAULT by default */
    bool mark_unverified;        /* tcp, vsock: mark the lines of streams from ports
                                    any process may bind (relay/logsink.h) */
};

/* Fill *lc, *sc with the defaults (buffer 1MiB, line_max 16KiB for logs,
 * 64KiB for sinks, max_streams 256, idle_timeout 0 for logs, 1h for sinks). */
void log_conf_defaults(struct log_conf *lc);

/* Returns true when a and b are the same settings of a sink, field by
 * field (strings by their text): a reload keeps such a sink running. */
bool log_sink_conf_equal(const struct log_sink_conf *a, const struct log_sink_conf *b);
void log_sink_conf_defaults(struct log_sink_conf *sc);

/* The rules that span the keys of a logs: block (something to forward,
 * listen not forward, allow rules that suit listen, line_max against
 * buffer), of a sink (allow rules that suit listen). Return 0, or -1 with
 * *f naming the key at fault. */
int log_conf_check(const struct log_conf *lc, struct conf_fault *f);
int log_sink_conf_check(const struct log_sink_conf *sc, struct conf_fault *f);

/* For the keys of logs: about the apps' streams (allow, max_streams,
 * idle_timeout): NULL when lc has a listen endpoint, else why they do not
 * apply. */
const char *log_conf_listen_only(const struct log_conf *lc);

#endif
