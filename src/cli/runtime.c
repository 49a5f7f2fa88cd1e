/* runtime.c - see runtime.h. The main thread runs worker 0's loop, which
 * also owns the listeners, the metrics endpoint and the signals. */
#include "cli/runtime.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/conns.h"
#include "cli/control.h"
#include "cli/hostcheck.h"
#include "cli/metrics.h"
#include "cli/notify.h"
#include "cli/process.h"
#include "cli/stats.h"
#include "core/file.h"
#include "core/hash.h"
#include "core/log.h"
#include "dir/dir.h"
#include "http/proxy.h"
#include "net/resolve.h"
#include "net/transport.h"
#include "pool/pool.h"
#include "pool/record.h"
#include "pool/spawn.h"
#include "relay/conn.h"
#include "relay/dgram.h"
#include "relay/health.h"
#include "relay/logfwd.h"
#include "relay/logsink.h"
#include "relay/relay.h"
#ifdef AIRLOCK_WITH_ATTEST
#include "relay/tls.h"
#endif

#ifdef AIRLOCK_WITH_ATTEST
#include "broker/broker.h"
#endif

#define DRAIN_POLL_MS 100
/* A relayed connection holds two sockets, and during bulk transfers a
 * splice pipe (two fds) per direction. */
#define CONN_FDS_MAX 6
#define CONN_FDS_NOSPLICE 2
/* Listeners, epoll and event fds, signals, metrics, logs: a generous round
 * number for what does not grow with connections. */
#define FDS_FIXED 64
/* the answer of a reload: every fault of a file, or every part not applied */
#define RELOAD_TEXT_MAX 4096

/* ok: the whole file applied; partial: applied but for the parts the
 * answer names (kept as they ran, or not started); failed: nothing applied */
enum reload_result { RELOAD_OK, RELOAD_PARTIAL, RELOAD_FAILED, RELOAD_RESULT_COUNT };

struct runtime {
    struct config cfg;
    const char *path;
    struct worker **workers;
    size_t n_workers;
    struct loop *loop; /* workers[0]'s, on the main thread */
    struct relay **relays;
    size_t n_relays;
    struct metrics *metrics;
    struct logfwd *logfwd;  /* logs: (enclave side), or NULL */
    struct logsink **sinks; /* log_sinks: (host side) */
    size_t n_sinks;
    struct dir *dir;         /* the session directory (directory:), or NULL */
    struct control *control; /* control: (airlock ctl), or NULL */
    struct pool **pools;     /* pools:, on the main loop */
    size_t n_pools;
    struct leaving *leaving; /* pools a reload removed, stopping */
    size_t n_leaving;
    struct timer leave_timer;
    char (*waiting)[CONF_NAME_MAX]; /* pools of cfg that wait for a leaving one */
    size_t n_waiting;
    struct pool_env *pool_env;   /* what the pools share (uids, their threads); with the first */
    struct record *record;       /* where they run (pool_record), or NULL */
    struct broker *broker;       /* broker: (its own thread), or NULL */
    struct http_env *http;       /* the loops of the HTTP proxies' sessions */
    struct http_proxy **proxies; /* proxies:, listening on the main loop */
    size_t n_proxies;
    int sigfd;
    struct io sig_io;
    struct timer drain_timer;
    uint64_t drain_deadline;
    int draining;
    bool drain_late;   /* the deadline passed: connections closed, processes killed */
    bool drain_forced; /* a second stop signal: store-backs are not awaited */
    /* the metrics of reloads; the start counts as the first, successful load */
    uint64_t reloads[RELOAD_RESULT_COUNT];
    bool last_reload_ok;
    time_t last_reload_time;
    struct strbuf *faults; /* during a reload: the parts not applied, for its answer */
};

/* A part of the config that could not be applied: logged (unless the
 * module that failed did) and, during a reload, added to the parts its
 * answer names, so that "reloaded" is never said of a config half live. */
static void __attribute__((format(printf, 3, 4)))
apply_fault(struct runtime *rt, bool logged, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!logged)
        log_warnx("%s", msg);
    if (rt->faults != NULL)
        strbuf_printf(rt->faults, "%s%s", rt->faults->len > 0 ? "; " : "", msg);
}

/* ---- metrics */

/* A histogram of durations per relay, the one at offset in struct
 * relay_stats. Buckets are cumulative in the exposition, counted apart. */
static void
render_hist(struct strbuf *out, const struct runtime *rt, const char *name, const char *help,
            size_t offset)
{
    strbuf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (size_t i = 0; i < rt->n_relays; i++) {
        struct relay_stats *s = rt->relays[i]->stats;
        struct relay_hist *h = (struct relay_hist *)((char *)s + offset);
        uint64_t count = 0;
        for (size_t b = 0; b < HIST_BUCKETS; b++) {
            count += atomic_load_explicit(&h->bucket[b], memory_order_relaxed);
            if (relay_hist_bounds[b] == UINT64_MAX)
                strbuf_printf(out, "%s_bucket{relay=\"%s\",le=\"+Inf\"} %llu\n", name, s->name,
                              (unsigned long long)count);
            else
                strbuf_printf(out, "%s_bucket{relay=\"%s\",le=\"%g\"} %llu\n", name, s->name,
                              (double)relay_hist_bounds[b] / 1e9, (unsigned long long)count);
        }
        /* apart from the buckets: a scrape racing an observation may see
         * its sum without its bucket; the next scrape agrees */
        uint64_t sum = atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
        strbuf_printf(out, "%s_sum{relay=\"%s\"} %llu.%09llu\n%s_count{relay=\"%s\"} %llu\n", name,
                      s->name, (unsigned long long)(sum / 1000000000),
                      (unsigned long long)(sum % 1000000000), name, s->name,
                      (unsigned long long)count);
    }
}

/* Datagram counters, for the relays with a udp side only. */
static void
render_dgram(struct strbuf *out, const struct runtime *rt)
{
    static const struct {
        const char *name, *help;
        size_t offset;
    } counters[] = {
        {"airlock_datagrams_in_total", "Datagrams relayed from clients to the target.",
         offsetof(struct relay_stats, datagrams_in)},
        {"airlock_datagrams_out_total", "Datagrams relayed from the target to clients.",
         offsetof(struct relay_stats, datagrams_out)},
    };

    for (size_t k = 0; k < sizeof(counters) / sizeof(counters[0]); k++) {
        strbuf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", counters[k].name, counters[k].help,
                      counters[k].name);
        for (size_t i = 0; i < rt->n_relays; i++) {
            struct relay_stats *s = rt->relays[i]->stats;
            atomic_uint_fast64_t *v = (atomic_uint_fast64_t *)((char *)s + counters[k].offset);
            if (relay_conf_is_dgram(&rt->relays[i]->conf))
                strbuf_printf(out, "%s{relay=\"%s\"} %llu\n", counters[k].name, s->name,
                              (unsigned long long)atomic_load(v));
        }
    }
    strbuf_printf(out, "# HELP airlock_datagram_flows Datagram flows open now (stream -> udp: each "
                       "a socket).\n# TYPE airlock_datagram_flows gauge\n");
    for (size_t i = 0; i < rt->n_relays; i++)
        if (relay_conf_is_dgram(&rt->relays[i]->conf))
            strbuf_printf(out, "airlock_datagram_flows{relay=\"%s\"} %llu\n",
                          rt->relays[i]->stats->name,
                          (unsigned long long)atomic_load(&rt->relays[i]->stats->flows));
    strbuf_printf(out, "# HELP airlock_datagram_flows_evicted_total Flows closed before their idle "
                       "timeout to make room for new ones (max_flows, max_fds).\n"
                       "# TYPE airlock_datagram_flows_evicted_total counter\n");
    for (size_t i = 0; i < rt->n_relays; i++)
        if (relay_conf_is_dgram(&rt->relays[i]->conf))
            strbuf_printf(out, "airlock_datagram_flows_evicted_total{relay=\"%s\"} %llu\n",
                          rt->relays[i]->stats->name,
                          (unsigned long long)atomic_load(&rt->relays[i]->stats->flows_evicted));
    strbuf_printf(out, "# HELP airlock_datagram_flows_evicted_waiting_total Flows evicted while "
                       "waiting for an answer (it is lost).\n"
                       "# TYPE airlock_datagram_flows_evicted_waiting_total counter\n");
    for (size_t i = 0; i < rt->n_relays; i++)
        if (relay_conf_is_dgram(&rt->relays[i]->conf))
            strbuf_printf(
                out, "airlock_datagram_flows_evicted_waiting_total{relay=\"%s\"} %llu\n",
                rt->relays[i]->stats->name,
                (unsigned long long)atomic_load(&rt->relays[i]->stats->flows_evicted_waiting));
    strbuf_printf(out, "# HELP airlock_datagrams_dropped_total Datagrams dropped, by reason.\n"
                       "# TYPE airlock_datagrams_dropped_total counter\n");
    for (size_t i = 0; i < rt->n_relays; i++) {
        struct relay_stats *s = rt->relays[i]->stats;
        if (!relay_conf_is_dgram(&rt->relays[i]->conf))
            continue;
        for (int d = 0; d < DROP_COUNT; d++)
            strbuf_printf(out, "airlock_datagrams_dropped_total{relay=\"%s\",reason=\"%s\"} %llu\n",
                          s->name, dgram_drop_name(d),
                          (unsigned long long)atomic_load(&s->dropped[d]));
    }
}

static void
render(struct strbuf *out, void *arg)
{
    struct runtime *rt = arg;
    static const struct {
        const char *name, *type, *help;
        size_t offset;
    } counters[] = {
        {"airlock_connections_open", "gauge", "Connections open now.",
         offsetof(struct relay_stats, open)},
        {"airlock_connections_total", "counter", "Connections accepted.",
         offsetof(struct relay_stats, total)},
        {"airlock_connections_refused_total", "counter",
         "Connections refused by the allowlist, max_connections or max_unproven_per_client.",
         offsetof(struct relay_stats, refused)},
        {"airlock_connect_errors_total", "counter", "Failed or timed out connects to the target.",
         offsetof(struct relay_stats, connect_errors)},
        {"airlock_bytes_in_total", "counter", "Bytes relayed from clients to the target.",
         offsetof(struct relay_stats, bytes_in)},
        {"airlock_bytes_out_total", "counter", "Bytes relayed from the target to clients.",
         offsetof(struct relay_stats, bytes_out)},
    };

    for (size_t k = 0; k < sizeof(counters) / sizeof(counters[0]); k++) {
        strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", counters[k].name, counters[k].help,
                      counters[k].name, counters[k].type);
        for (size_t i = 0; i < rt->n_relays; i++) {
            struct relay_stats *s = rt->relays[i]->stats;
            atomic_uint_fast64_t *v = (atomic_uint_fast64_t *)((char *)s + counters[k].offset);
            strbuf_printf(out, "%s{relay=\"%s\"} %llu\n", counters[k].name, s->name,
                          (unsigned long long)atomic_load(v));
        }
    }
    strbuf_printf(out, "# HELP airlock_connections_closed_total Connections closed, by how they "
                       "ended.\n# TYPE airlock_connections_closed_total counter\n");
    for (size_t i = 0; i < rt->n_relays; i++) {
        struct relay_stats *s = rt->relays[i]->stats;
        for (int e = 0; e < END_COUNT; e++)
            strbuf_printf(out, "airlock_connections_closed_total{relay=\"%s\",end=\"%s\"} %llu\n",
                          s->name, conn_end_name(e), (unsigned long long)atomic_load(&s->ended[e]));
    }
    strbuf_printf(out, "# HELP airlock_local_errors_total Accepts, connects and pipes that failed "
                       "for want of a resource of this process or host, by reason.\n"
                       "# TYPE airlock_local_errors_total counter\n");
    for (size_t i = 0; i < rt->n_relays; i++) {
        struct relay_stats *s = rt->relays[i]->stats;
        for (int e = 0; e < LOCAL_COUNT; e++)
            strbuf_printf(out, "airlock_local_errors_total{relay=\"%s\",reason=\"%s\"} %llu\n",
                          s->name, local_error_name(e),
                          (unsigned long long)atomic_load(&s->local_errors[e]));
    }
    strbuf_printf(out, "# HELP airlock_egress_denied_total Egress destinations refused, by "
                       "reason.\n# TYPE airlock_egress_denied_total counter\n");
    for (size_t i = 0; i < rt->n_relays; i++) {
        struct relay_stats *s = rt->relays[i]->stats;
        if (!rt->relays[i]->conf.egress)
            continue;
        for (int v = EGRESS_OK + 1; v < EGRESS_VERDICT_COUNT; v++)
            strbuf_printf(out, "airlock_egress_denied_total{relay=\"%s\",reason=\"%s\"} %llu\n",
                          s->name, egress_verdict_name(v),
                          (unsigned long long)atomic_load(&s->egress_denied[v]));
    }
    static const char *const renew_names[TLS_RENEW_COUNT] = {"ok", "failed"};
    static const char *const fresh_names[TLS_FRESH_COUNT] = {"served", "refused"};
    bool any_tls = false;
    for (size_t i = 0; i < rt->n_relays; i++)
        any_tls = any_tls || rt->relays[i]->conf.tls.enabled;
    if (any_tls) /* only where it applies: others' output stays as it was */
        strbuf_printf(out,
                      "# HELP airlock_tls_renewals_total Certificates of tls: listeners "
                      "renewed, by result.\n# TYPE airlock_tls_renewals_total counter\n"
                      "# HELP airlock_tls_fresh_evidence_total ClientHellos of tls: listeners "
                      "that asked for fresh evidence: served, or refused over "
                      "fresh_evidence_rate.\n# TYPE airlock_tls_fresh_evidence_total counter\n");
    for (size_t i = 0; i < rt->n_relays; i++) {
        struct relay_stats *s = rt->relays[i]->stats;
        if (!rt->relays[i]->conf.tls.enabled)
            continue;
        for (int k = 0; k < TLS_RENEW_COUNT; k++)
            strbuf_printf(out, "airlock_tls_renewals_total{relay=\"%s\",result=\"%s\"} %llu\n",
                          s->name, renew_names[k],
                          (unsigned long long)atomic_load(&s->tls_renewals[k]));
        for (int k = 0; k < TLS_FRESH_COUNT; k++)
            strbuf_printf(
                out, "airlock_tls_fresh_evidence_total{relay=\"%s\",result=\"%s\"} %llu\n", s->name,
                fresh_names[k], (unsigned long long)atomic_load(&s->tls_fresh[k]));
    }
    struct resolve_stats rs;
    resolve_stats(&rs);
    strbuf_printf(out,
                  "# HELP airlock_resolver_threads Threads looking up target names.\n"
                  "# TYPE airlock_resolver_threads gauge\nairlock_resolver_threads %u\n"
                  "# HELP airlock_resolver_queued Names waiting for a resolver thread.\n"
                  "# TYPE airlock_resolver_queued gauge\nairlock_resolver_queued %u\n"
                  "# HELP airlock_resolver_rejected_total Lookups refused: resolver_queue names "
                  "were waiting.\n# TYPE airlock_resolver_rejected_total counter\n"
                  "airlock_resolver_rejected_total %llu\n",
                  rs.threads, rs.queued, (unsigned long long)rs.rejected);
    render_hist(out, rt, "airlock_connect_duration_seconds",
                "Time from the start of a dial (name lookup included) to the target connected.",
                offsetof(struct relay_stats, connect_time));
    render_hist(out, rt, "airlock_connection_duration_seconds",
                "Time from accept to close of the connections counted in "
                "airlock_connections_closed_total.",
                offsetof(struct relay_stats, conn_time));
    strbuf_printf(out,
                  "# HELP airlock_reloads_total Config reloads (SIGHUP), by result.\n"
                  "# TYPE airlock_reloads_total counter\n"
                  "airlock_reloads_total{result=\"ok\"} %llu\n"
                  "airlock_reloads_total{result=\"partial\"} %llu\n"
                  "airlock_reloads_total{result=\"failed\"} %llu\n"
                  "# HELP airlock_last_reload_success Whether the last load of the config (the "
                  "start, or a reload) succeeded.\n# TYPE airlock_last_reload_success gauge\n"
                  "airlock_last_reload_success %d\n"
                  "# HELP airlock_last_reload_timestamp_seconds When the config was last loaded "
                  "(the start, or a reload), successfully or not.\n"
                  "# TYPE airlock_last_reload_timestamp_seconds gauge\n"
                  "airlock_last_reload_timestamp_seconds %lld\n",
                  (unsigned long long)rt->reloads[RELOAD_OK],
                  (unsigned long long)rt->reloads[RELOAD_PARTIAL],
                  (unsigned long long)rt->reloads[RELOAD_FAILED], rt->last_reload_ok ? 1 : 0,
                  (long long)rt->last_reload_time);
    if (rt->logfwd != NULL)
        logfwd_render(rt->logfwd, out);
    logsink_render(rt->sinks, rt->n_sinks, out);
    render_dgram(out, rt);
    relay_targets_render(rt->relays, rt->n_relays, out);
    pool_metrics(out, rt->pools, rt->n_pools);
    http_proxy_render(rt->proxies, rt->n_proxies, out);
    if (rt->dir != NULL)
        dir_render(rt->dir, out);
#ifdef AIRLOCK_WITH_ATTEST
    if (rt->broker != NULL)
        broker_metrics(rt->broker, out);
#endif
    process_render(out);
}

static struct logsink *find_sink(struct logsink **sinks, size_t n, const char *name);
static struct pool *find_pool(struct pool **pools, size_t n, const char *name);

/* /readyz: not while draining; every relay accepts on its listener (a udp
 * one reads it) and, with targets:, has one of them up; every log sink, the
 * log forwarder and every pool of the config runs (a reload that could not
 * start one leaves it out); the directory, when there is one, reaches its
 * backend. */
static int
ready(char *why, size_t len, void *arg)
{
    struct runtime *rt = arg;

    if (rt->draining) {
        snprintf(why, len, "draining");
        return 0;
    }
    for (size_t i = 0; i < rt->n_relays; i++) {
        const struct relay *r = rt->relays[i];
        if (r->listen_fd < 0 || r->loop == NULL ||
            (r->conf.listen.kind != EP_UDP && r->acceptor.loop == NULL)) {
            snprintf(why, len, "relay=%s not accepting", r->conf.name);
            return 0;
        }
        if (!relay_targets_healthy(r)) {
            snprintf(why, len, "relay=%s no healthy target", r->conf.name);
            return 0;
        }
    }
    for (size_t i = 0; i < rt->cfg.n_sinks; i++)
        if (find_sink(rt->sinks, rt->n_sinks, rt->cfg.sinks[i].name) == NULL) {
            snprintf(why, len, "log_sink=%s not listening", rt->cfg.sinks[i].name);
            return 0;
        }
    if (rt->cfg.logs.enabled && rt->logfwd == NULL) {
        snprintf(why, len, "logs: forwarder not started");
        return 0;
    }
    for (size_t i = 0; i < rt->cfg.n_pools; i++)
        if (find_pool(rt->pools, rt->n_pools, rt->cfg.pools[i].name) == NULL) {
            snprintf(why, len, "pool=%s not started", rt->cfg.pools[i].name);
            return 0;
        }
    if (rt->dir != NULL && !dir_up(rt->dir)) {
        snprintf(why, len, "directory: %s unreachable",
                 rt->cfg.directory.backend == DIR_REDIS ? "redis" : "backend");
        return 0;
    }
    return 1;
}

static int
metrics_apply(struct runtime *rt, const struct config *cfg)
{
    int err = 0;

    if (rt->metrics != NULL && cfg->has_metrics && rt->cfg.has_metrics &&
        endpoint_equal(&cfg->metrics, &rt->cfg.metrics)) {
        if ((err = transport_chperm(&cfg->metrics, &rt->cfg.metrics)) != 0)
            apply_fault(rt, false, "metrics: cannot change the mode of %s: %s", cfg->metrics.path,
                        strerror(-err));
        return err;
    }
    metrics_stop(rt->metrics);
    rt->metrics = NULL;
    if (!cfg->has_metrics)
        return 0;
    rt->metrics = metrics_start(rt->loop, &cfg->metrics, render, rt, &err);
    if (rt->metrics == NULL) {
        char ep[EP_HOST_MAX + 32];
        endpoint_format(&cfg->metrics, ep, sizeof(ep));
        apply_fault(rt, false, "metrics: cannot listen on %s: %s", ep, strerror(-err));
        return err;
    }
    metrics_set_ready(rt->metrics, ready, rt);
    return 0;
}

/* ---- open files */

/* Raises the soft RLIMIT_NOFILE to the hard one: the soft default (1024)
 * is there for select() users, not for a relay of thousands of sockets.
 * What airlock starts keeps the one it was given. */
static void
nofile_raise(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur >= rl.rlim_max) {
        log_info("open files limit %llu", (unsigned long long)rl.rlim_cur);
        return;
    }
    rlim_t was = rl.rlim_cur;
    proc_set_nofile(was);
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        log_warn("open files limit: cannot raise %llu to %llu", (unsigned long long)was,
                 (unsigned long long)rl.rlim_max);
    else
        log_info("open files limit raised from %llu to %llu", (unsigned long long)was,
                 (unsigned long long)rl.rlim_max);
}

/* Warns when the limits of cfg's relays can hold more file descriptors
 * than RLIMIT_NOFILE allows: then accepts pause and connects fail (counted
 * in airlock_local_errors_total) before max_connections refuses anyone.
 * Relays without max_connections are bounded by the limit alone. */
static void
nofile_check(const struct config *cfg, size_t n_workers)
{
    struct rlimit rl;
    unsigned long long need = FDS_FIXED + n_workers * (2 * WORKER_SPARE_PIPES + 2);

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return;
    for (size_t i = 0; i < cfg->n_relays; i++) {
        const struct relay_conf *rc = &cfg->relays[i];
        if (relay_conf_is_dgram(rc))
            need += rc->listen.kind == EP_UDP ? 2 : dgram_fd_budget(rc);
        else
            need += (unsigned long long)rc->max_connections *
                    (rc->splice ? CONN_FDS_MAX : CONN_FDS_NOSPLICE);
    }
    if (need <= rl.rlim_cur)
        return;
    log_warnx("open files limit %llu is below the %llu file descriptors the relays may need "
              "(max_connections x %d: two sockets and a splice pipe per direction; %d without "
              "splice; the datagram relays' max_fds; %d spare pipes per thread): at the limit, "
              "accepts pause and connects fail (airlock_local_errors_total); raise the hard "
              "limit (systemd LimitNOFILE=) or lower max_connections",
              (unsigned long long)rl.rlim_cur, need, CONN_FDS_MAX, CONN_FDS_NOSPLICE,
              WORKER_SPARE_PIPES);
}

/* ---- the session directory */

/* Whether this process runs a directory: a directory: block (routers with
 * directory routes and pools also need one: add their conditions here;
 * cfg->directory holds the defaults when the block is absent). */
static bool
needs_directory(const struct config *cfg)
{
    return cfg->has_directory;
}

/* Starts the directory when needed. Routers and pools get rt->dir; its
 * settings change only at the next start. */
static int
dir_apply(struct runtime *rt)
{
    const struct dir_conf *dc = &rt->cfg.directory;
    char ep[ENDPOINT_TEXT_MAX] = "-";

    if (!needs_directory(&rt->cfg))
        return 0;
    if ((rt->dir = dir_new(dc, rt->loop)) == NULL) {
        log_warn("directory: cannot start");
        return -1;
    }
    if (dc->backend == DIR_REDIS && dc->n_sentinels > 0)
        snprintf(ep, sizeof(ep), "sentinels:%s", dc->sentinel_master);
    else if (dc->backend == DIR_REDIS)
        endpoint_format(&dc->redis, ep, sizeof(ep));
    log_info("directory backend=%s redis=%s reserve_timeout_ms=%u session_ttl_ms=%u "
             "assign_wait_ms=%u max_pending_per_client=%u pending_share=%u",
             dc->backend == DIR_REDIS ? "redis" : "memory", ep, dc->reserve_timeout_ms,
             dc->session_ttl_ms, dc->assign_wait_ms, dc->max_pending_per_client, dc->pending_share);
    return 0;
}

/* ---- log forwarding and log sinks */

static struct logsink *
find_sink(struct logsink **sinks, size_t n, const char *name)
{
    for (size_t i = 0; sinks != NULL && i < n; i++)
        if (sinks[i] != NULL && strcmp(logsink_conf(sinks[i])->name, name) == 0)
            return sinks[i];
    return NULL;
}

/* Starts, reconfigures or stops the forwarder and the sinks as cfg says.
 * Unchanged sinks keep their streams and reopen their files (SIGHUP after
 * logrotate); changed ones are restarted. Returns 0, or the first -errno
 * (what could be started runs). */
static int
logs_apply(struct runtime *rt, const struct config *cfg)
{
    int rc = 0, err = 0;

    if (!cfg->logs.enabled) {
        if (rt->logfwd != NULL)
            log_info("logs: forwarding stopped");
        logfwd_free(rt->logfwd);
        rt->logfwd = NULL;
    } else if (rt->logfwd != NULL) {
        const struct log_conf *running = logfwd_conf(rt->logfwd);
        if (cfg->logs.buffer != running->buffer || cfg->logs.line_max != running->line_max)
            apply_fault(rt, true, "logs: buffer and line_max kept until the next start");
        if ((rc = logfwd_reconfigure(rt->logfwd, &cfg->logs)) != 0)
            apply_fault(rt, true, "logs: cannot listen: %s", strerror(-rc));
    } else if ((rt->logfwd = logfwd_new(rt->loop, &cfg->logs, &err)) == NULL) {
        char ep[EP_HOST_MAX + EP_PATH_MAX + 32];
        endpoint_format(&cfg->logs.listen, ep, sizeof(ep));
        apply_fault(rt, false, "logs: cannot start: %s%s%s", strerror(-err),
                    err == -EADDRINUSE ? " (listen endpoint in use): " : "",
                    err == -EADDRINUSE ? ep : "");
        rc = err;
    }

    struct logsink **next = calloc(cfg->n_sinks ? cfg->n_sinks : 1, sizeof(*next));
    if (next == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->n_sinks; i++) {
        const struct log_sink_conf *sc = &cfg->sinks[i];
        struct logsink *old = find_sink(rt->sinks, rt->n_sinks, sc->name);
        if (old != NULL && log_sink_conf_equal(logsink_conf(old), sc)) {
            if ((err = logsink_reopen(old)) != 0)
                apply_fault(rt, true,
                            "log_sink=%s: cannot reopen %s: %s; still writing to the old file",
                            sc->name, sc->file, file_strerror(err));
            next[i] = old;
        } else {
            if (old != NULL) { /* its listener may be the one we need */
                logsink_free(old);
                for (size_t j = 0; j < rt->n_sinks; j++)
                    if (rt->sinks[j] == old)
                        rt->sinks[j] = NULL;
            }
            next[i] = logsink_new(rt->loop, sc, &err);
            if (next[i] == NULL)
                apply_fault(rt, true, "log_sink=%s: not started: %s", sc->name, file_strerror(err));
            if (next[i] == NULL && rc == 0)
                rc = err;
        }
        if (next[i] != NULL) /* taken over: not freed below */
            for (size_t j = 0; j < rt->n_sinks; j++)
                if (rt->sinks[j] == next[i])
                    rt->sinks[j] = NULL;
    }
    for (size_t j = 0; j < rt->n_sinks; j++)
        logsink_free(rt->sinks[j]);
    free(rt->sinks);
    /* sinks that failed to start leave a hole: compact */
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_sinks; i++)
        if (next[i] != NULL)
            next[n++] = next[i];
    rt->sinks = next;
    rt->n_sinks = n;
    return rc;
}

/* ---- pools */

static struct pool *
find_pool(struct pool **pools, size_t n, const char *name)
{
    for (size_t i = 0; pools != NULL && i < n; i++)
        if (pools[i] != NULL && strcmp(pool_conf(pools[i])->name, name) == 0)
            return pools[i];
    return NULL;
}

/* Into out, the config file at path as its record knows it: its
 * directory's real path and the file's own name, so that a link swapped to
 * another file is still the same config. Returns 0, or -1 for a config that
 * is not a regular file (a pipe). */
static int
config_identity(const char *path, char *out, size_t len)
{
    const char *slash = strrchr(path, '/');
    char dir[CONF_FILE_PATH_MAX], real[PATH_MAX];
    struct stat st;

    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || realpath(dir, real) == NULL)
        return -1;
    snprintf(out, len, "%s/%s", strcmp(real, "/") == 0 ? "" : real,
             slash == NULL ? path : slash + 1);
    return 0;
}

/* The record of where the pools run (pool/record.h): pool_record, or by
 * default RECORD_DIR/pools-HASH.record, HASH from the config file's path
 * (config_identity()), so that each config file has its own. Opened at the
 * start, or at the reload that brings the first pools; at the start also
 * without pools when the file is there (the pools of the airlock before may
 * have gone from the config). Returns 0, or -errno when the start must fail
 * (the record named cannot be had, or another airlock run from this config
 * holds it); a default record that cannot be had is only logged. */
#define RECORD_DIR "/var/lib/airlock"
static int
record_apply(struct runtime *rt, const struct config *cfg, bool start)
{
    char path[CONF_FILE_PATH_MAX], why[CONF_FILE_PATH_MAX + 128];
    bool named = cfg->pool_record[0] != '\0';
    int err;

    if (rt->record != NULL)
        return 0;
    if (named) {
        snprintf(path, sizeof(path), "%s", cfg->pool_record);
    } else {
        char id[PATH_MAX + CONF_FILE_PATH_MAX];
        if (rt->path == NULL || config_identity(rt->path, id, sizeof(id)) != 0)
            return 0; /* a config from arguments or a pipe: no file to be known by */
        snprintf(path, sizeof(path), RECORD_DIR "/pools-%016" PRIx64 ".record",
                 fnv64(FNV64_START, id));
    }
    if (cfg->n_pools == 0 && (!start || access(path, F_OK) != 0))
        return 0;
    if (!named && mkdir(RECORD_DIR, 0700) != 0 && errno != EEXIST) {
        err = -errno;
        snprintf(why, sizeof(why), RECORD_DIR ": %s", strerror(-err));
    } else if ((rt->record = record_open(path, &err, why, sizeof(why))) != NULL) {
        return 0;
    }
    if (start && (named || err == -EWOULDBLOCK)) {
        log_warnx("pool_record: %s", why);
        return err;
    }
    apply_fault(rt, false,
                "pool_record: %s: without it, what a killed airlock's pools left is "
                "removed only where a pool of the config runs again (docs/pool.md)",
                why);
    return 0;
}

/* A pool that a reload removes is stopped like at airlock's stop: its
 * sessions end (SIGTERM), their state is stored back, and it is freed once
 * it has no instance left, or at drain_timeout (what is left is killed),
 * once the store-backs under way then have ended (a user back on another
 * node must not be served the state from before its session).
 * A pool of the config that has the name, the store or a port of a
 * leaving pool (a pool renamed, or moved) waits until that one is freed,
 * and starts after the transfers' thread has run what was queued before:
 * the leaving pool's store-backs and the release of its store. A pool that
 * stays and whose new settings have the store or a port of a leaving pool
 * waits the same way on its running settings, then takes the new ones. */
struct leaving {
    struct pool *pool;
    uint64_t deadline; /* loop ms */
    bool killed;       /* at the deadline */
};

static bool
pools_clash(const struct pool_conf *a, const struct pool_conf *b)
{
    return strcmp(a->name, b->name) == 0 ||
           (a->state.store[0] != '\0' && strcmp(a->state.store, b->state.store) == 0) ||
           (pool_conf_ports(a) > 0 && pool_conf_ports(b) > 0 && a->port_min <= b->port_max &&
            b->port_min <= a->port_max);
}

/* The leaving pool pc has to wait for, or NULL. */
static const struct pool *
leaving_clash(const struct runtime *rt, const struct pool_conf *pc)
{
    for (size_t i = 0; i < rt->n_leaving; i++)
        if (pools_clash(pc, pool_conf(rt->leaving[i].pool)))
            return rt->leaving[i].pool;
    return NULL;
}

static int
pool_after_run(void *ctx)
{
    (void)ctx;
    return 0;
}

/* On the loop, after the work queued before it on the transfers' thread:
 * starts the waiting pool named ctx, or gives it its settings when it
 * runs, if the config still has it. */
static void
pool_after_done(void *arg, void *ctx, int err)
{
    const char *name = ctx;
    struct runtime *rt = arg;
    const struct pool_conf *pc = NULL;
    struct pool *p, **grown;

    (void)err;
    for (size_t i = 0; i < rt->cfg.n_pools; i++)
        if (strcmp(rt->cfg.pools[i].name, name) == 0)
            pc = &rt->cfg.pools[i];
    if (pc == NULL || rt->draining)
        return; /* a later reload took it away, or airlock stops */
    if ((p = find_pool(rt->pools, rt->n_pools, name)) != NULL) {
        char kept[1024];
        if (pool_reconfigure(p, pc, kept, sizeof(kept)) != 0)
            log_warnx("pool=%s: %s", name, kept);
        return;
    }
    if ((grown = realloc(rt->pools, (rt->n_pools + 1) * sizeof(*grown))) == NULL) {
        log_warnx("pool=%s: cannot start: %s", name, strerror(ENOMEM));
        return;
    }
    rt->pools = grown;
    if ((p = pool_new(rt->loop, rt->dir, rt->pool_env, pc, &err)) == NULL) {
        log_warnx("pool=%s: cannot start: %s", name, strerror(-err));
        return;
    }
    rt->pools[rt->n_pools++] = p;
}

static void leave_check(struct timer *t);

/* Frees every pool, the leaving ones too (at airlock's end). */
static void
pools_free(struct runtime *rt)
{
    timer_stop(rt->loop, &rt->leave_timer);
    for (size_t i = 0; i < rt->n_pools; i++)
        pool_free(rt->pools[i]);
    for (size_t i = 0; i < rt->n_leaving; i++)
        pool_free(rt->leaving[i].pool);
    free(rt->pools);
    free(rt->leaving);
    free(rt->waiting);
    rt->pools = NULL;
    rt->leaving = NULL;
    rt->waiting = NULL;
    rt->n_pools = rt->n_leaving = rt->n_waiting = 0;
}

/* Frees the leaving pools that are done (or out of time), then queues the
 * start of the waiting pools that no longer clash with one. */
static void
leave_poll(struct runtime *rt)
{
    uint64_t now = loop_now(rt->loop);

    for (size_t i = 0; i < rt->n_leaving; i++) {
        struct leaving *l = &rt->leaving[i];
        if (pool_busy(l->pool) > 0 && now < l->deadline)
            continue;
        if (pool_busy(l->pool) > 0 && !l->killed) {
            log_warnx("pool=%s: drain_timeout reached: killing %zu instances; awaiting %zu "
                      "store-backs",
                      pool_conf(l->pool)->name, pool_busy(l->pool), pool_storing(l->pool));
            pool_kill(l->pool);
            l->killed = true;
        }
        if (pool_storing(l->pool) > 0)
            continue;
        log_info("pool=%s removed", pool_conf(l->pool)->name);
        pool_free(l->pool);
        rt->leaving[i--] = rt->leaving[--rt->n_leaving];
    }
    for (size_t i = 0; i < rt->n_waiting; i++) {
        const struct pool_conf *pc = NULL;
        for (size_t j = 0; j < rt->cfg.n_pools; j++)
            if (strcmp(rt->cfg.pools[j].name, rt->waiting[i]) == 0)
                pc = &rt->cfg.pools[j];
        if (pc != NULL && leaving_clash(rt, pc) != NULL)
            continue;
        char *name = pc != NULL ? strdup(pc->name) : NULL;
        if (pc != NULL && (name == NULL || pool_env_run(rt->pool_env, pool_after_run, name, free,
                                                        ENV_AFTER, pool_after_done, rt) == NULL))
            log_warnx("pool=%s: cannot start: %s", pc->name, strerror(ENOMEM));
        memmove(rt->waiting[i--], rt->waiting[--rt->n_waiting], sizeof(rt->waiting[0]));
    }
    if (rt->n_leaving > 0 || rt->n_waiting > 0)
        timer_start(rt->loop, &rt->leave_timer, DRAIN_POLL_MS, leave_check, rt);
}

static void
leave_check(struct timer *t)
{
    leave_poll(t->data);
}

/* Stops p, removed by a reload whose drain_timeout is ms. */
static int
pool_leave(struct runtime *rt, struct pool *p, uint32_t ms)
{
    struct leaving *grown = realloc(rt->leaving, (rt->n_leaving + 1) * sizeof(*grown));

    if (grown == NULL)
        return -ENOMEM;
    rt->leaving = grown;
    log_info("pool=%s removed: stopping its %zu instances (sessions stored back)",
             pool_conf(p)->name, pool_busy(p));
    pool_stop(p);
    rt->leaving[rt->n_leaving++] = (struct leaving){p, loop_now(rt->loop) + ms, false};
    return 0;
}

/* Starts, reconfigures or stops the pools as cfg says: a pool that stays
 * keeps its instances and sessions (pool_reconfigure()); a removed one
 * leaves (pool_leave()), and a new or changed one that clashes with a
 * leaving pool waits for it (struct leaving). Returns 0, or the first
 * -errno (what could be started runs). */
static int
pools_apply(struct runtime *rt, const struct config *cfg, bool start)
{
    struct pool **next = calloc(cfg->n_pools ? cfg->n_pools : 1, sizeof(*next));
    char(*waiting)[CONF_NAME_MAX] = calloc(cfg->n_pools ? cfg->n_pools : 1, sizeof(*waiting));
    size_t n = 0, n_waiting = 0;
    int rc = 0, err = 0;

    if (next == NULL || waiting == NULL) {
        free(next);
        free(waiting);
        return -ENOMEM;
    }
    bool opened = rt->record == NULL;
    if ((err = record_apply(rt, cfg, start)) == 0 &&
        (cfg->n_pools > 0 || record_pending(rt->record)) && rt->pool_env == NULL &&
        (rt->pool_env = pool_env_new(rt->loop, &err)) == NULL)
        apply_fault(rt, false, "pools: cannot start the wipe and state threads: %s",
                    strerror(-err));
    if (err != 0) {
        free(next);
        free(waiting);
        return err;
    }
    if (rt->pool_env != NULL)
        pool_env_set_record(rt->pool_env, rt->record);
    for (size_t j = 0; j < rt->n_pools; j++) {
        bool stays = false;
        for (size_t i = 0; i < cfg->n_pools; i++)
            stays = stays || strcmp(cfg->pools[i].name, pool_conf(rt->pools[j])->name) == 0;
        if (stays)
            continue;
        if (pool_leave(rt, rt->pools[j], cfg->drain_timeout_ms) != 0) {
            log_info("pool=%s removed", pool_conf(rt->pools[j])->name);
            pool_free(rt->pools[j]); /* out of memory: at once, as it stands */
        }
        rt->pools[j] = NULL;
    }
    for (size_t i = 0; i < cfg->n_pools; i++) {
        struct pool *old = find_pool(rt->pools, rt->n_pools, cfg->pools[i].name);
        const struct pool *clash = leaving_clash(rt, &cfg->pools[i]);
        if (old != NULL && clash != NULL) {
            log_info("pool=%s: keeps its running settings until pool=%s, which has the store or "
                     "ports of the new ones, has stopped",
                     cfg->pools[i].name, pool_conf(clash)->name);
            memcpy(waiting[n_waiting++], cfg->pools[i].name, sizeof(waiting[0]));
            next[n++] = old;
        } else if (old != NULL) {
            char kept[1024];
            if (pool_reconfigure(old, &cfg->pools[i], kept, sizeof(kept)) != 0)
                apply_fault(rt, true, "pool=%s: %s", cfg->pools[i].name, kept);
            next[n++] = old;
        } else if (clash != NULL) {
            log_info("pool=%s: starts once pool=%s, which has its name, store or ports, has "
                     "stopped",
                     cfg->pools[i].name, pool_conf(clash)->name);
            memcpy(waiting[n_waiting++], cfg->pools[i].name, sizeof(waiting[0]));
        } else if ((next[n] = pool_new(rt->loop, rt->dir, rt->pool_env, &cfg->pools[i], &err)) !=
                   NULL) {
            n++;
        } else {
            apply_fault(rt, false, "pool=%s: cannot start: %s", cfg->pools[i].name, strerror(-err));
            if (rc == 0)
                rc = err;
        }
    }
    free(rt->pools);
    rt->pools = next;
    rt->n_pools = n;
    free(rt->waiting);
    rt->waiting = waiting;
    rt->n_waiting = n_waiting;
    /* on the loop: the waiting pools are looked up in the config once it
     * is rt's */
    if (rt->n_leaving > 0 || rt->n_waiting > 0)
        timer_start(rt->loop, &rt->leave_timer, 0, leave_check, rt);
    if (opened) /* what the pools of the airlock before left, where none runs now */
        record_sweep(rt->record, rt->pool_env, rt->loop);
    return rc;
}

/* The sum of count() over the pools, the leaving ones too. */
static size_t
pools_count(const struct runtime *rt, size_t (*count)(const struct pool *))
{
    size_t n = 0;

    for (size_t i = 0; i < rt->n_pools; i++)
        n += count(rt->pools[i]);
    for (size_t i = 0; i < rt->n_leaving; i++)
        n += count(rt->leaving[i].pool);
    return n;
}

/* ---- HTTP proxies */

static struct http_proxy *
find_proxy(struct http_proxy **proxies, size_t n, const char *name)
{
    for (size_t i = 0; proxies != NULL && i < n; i++)
        if (proxies[i] != NULL && strcmp(http_proxy_conf(proxies[i])->name, name) == 0)
            return proxies[i];
    return NULL;
}

/* The running proxy whose listener pc is to take (http_proxy_new()): old
 * when it stays on pc's endpoint, else the one that listens there now and
 * is not kept on it (removed, renamed, moved: the config has no other
 * listener on one endpoint). Without it, a renamed proxy's bind found its
 * endpoint in use, and the reload left nothing listening there. */
static struct http_proxy *
proxy_donor(struct runtime *rt, const struct config *cfg, const struct http_proxy_conf *pc,
            struct http_proxy *old)
{
    for (size_t j = 0; j < rt->n_proxies; j++) {
        struct http_proxy *p = rt->proxies[j];
        const struct http_proxy_conf *c = p != NULL ? http_proxy_conf(p) : NULL;
        bool kept = false;
        if (c == NULL || !endpoint_equal(&c->listen, &pc->listen))
            continue;
        for (size_t k = 0; p != old && k < cfg->n_proxies; k++)
            kept = kept || (strcmp(cfg->proxies[k].name, c->name) == 0 &&
                            endpoint_equal(&cfg->proxies[k].listen, &c->listen));
        if (!kept)
            return p;
    }
    return NULL;
}

/* Starts, replaces or stops the proxies as cfg says: an unchanged proxy
 * keeps running; a changed one is replaced (its listener adopted, its
 * sessions finishing on the old settings); a removed one stops listening.
 * Returns 0, or the first -errno (what could be started runs, and a proxy
 * that could not be replaced keeps running as it was). */
static int
proxies_apply(struct runtime *rt, const struct config *cfg)
{
    struct http_proxy **next = calloc(cfg->n_proxies + rt->n_proxies + 1, sizeof(*next));
    size_t n = 0;
    int rc = 0, err = 0;
    char msg[HTTP_MSG_MAX];

    if (next == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < cfg->n_proxies; i++) {
        const struct http_proxy_conf *pc = &cfg->proxies[i];
        struct http_proxy *old = find_proxy(rt->proxies, rt->n_proxies, pc->name);
        struct http_proxy *p = old;
        /* a keyset or CA file rewritten (a key added for rotation, a CA
         * taken out) counts as a change: the file is read again */
        bool rekeyed = old != NULL && http_proxy_files_changed(old);
        if (old == NULL || rekeyed || !http_proxy_conf_equal(http_proxy_conf(old), pc))
            p = http_proxy_new(rt->http, pc, old, proxy_donor(rt, cfg, pc, old), &err, msg);
        if (p == NULL) {
            apply_fault(rt, false, "proxy=%s: cannot start: %s%s", pc->name, msg,
                        old != NULL ? "; it runs on as it was" : "");
            if (rc == 0)
                rc = err;
            p = old; /* keeps running as it was, if it was */
        } else if (old != NULL && p != old) {
            log_info("proxy=%s changed%s", pc->name, rekeyed ? " (a keyset file changed)" : "");
        } else if (old == NULL) {
            char l[ENDPOINT_TEXT_MAX], b[ENDPOINT_TEXT_MAX];
            endpoint_format(&pc->listen, l, sizeof(l));
            endpoint_format(&pc->backend, b, sizeof(b));
            log_info("proxy=%s listen=%s backend=%s routes=%zu", pc->name, l, b, pc->n_routes);
        }
        if (p == NULL)
            continue;
        next[n++] = p;
        for (size_t j = 0; j < rt->n_proxies; j++)
            if (rt->proxies[j] == p)
                rt->proxies[j] = NULL; /* carried over as it is */
    }
    for (size_t j = 0; j < rt->n_proxies; j++) {
        struct http_proxy *old = rt->proxies[j];
        if (old == NULL)
            continue;
        struct http_proxy *successor = find_proxy(next, n, http_proxy_conf(old)->name);
        if (successor == NULL)
            log_info("proxy=%s removed", http_proxy_conf(old)->name);
        http_proxy_retire(old, successor);
        http_proxy_stop(old);
        http_proxy_unref(old);
    }
    free(rt->proxies);
    rt->proxies = next;
    rt->n_proxies = n;
    return rc;
}

/* ---- relays and reload */

/* Whether a trust file r read (tls:, verify:) is not the one it read: a
 * reload then replaces r as for a changed config. */
static bool
relay_files_changed(const struct relay *r)
{
#ifdef AIRLOCK_WITH_ATTEST
    return relay_tls_files_changed(r->tls);
#else
    (void)r;
    return false;
#endif
}

static struct relay *
find_relay(struct relay **relays, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(relays[i]->conf.name, name) == 0)
            return relays[i];
    return NULL;
}

/* The running relay whose listener the new relay c is to take: its
 * predecessor by name when that stays on c's endpoint, else the one that
 * listens there now and gives it up (removed, renamed, or moved elsewhere:
 * the config has no other relay on one endpoint), unless an earlier relay
 * of the new set took it already. A bind would find the endpoint in use:
 * without this, renaming a relay or swapping two relays' endpoints failed
 * the whole reload. */
static struct relay *
listener_donor(struct runtime *rt, const struct config *cfg, struct relay *const *prevs,
               size_t n_prevs, const struct relay_conf *c, struct relay *old)
{
    if (old != NULL && endpoint_equal(&old->conf.listen, &c->listen))
        return old;
    for (size_t j = 0; j < rt->n_relays; j++) {
        struct relay *r = rt->relays[j];
        bool kept = false, taken = false;
        if (r->listen_fd < 0 || !endpoint_equal(&r->conf.listen, &c->listen))
            continue;
        for (size_t k = 0; k < cfg->n_relays; k++)
            kept = kept || (strcmp(cfg->relays[k].name, r->conf.name) == 0 &&
                            endpoint_equal(&cfg->relays[k].listen, &r->conf.listen));
        for (size_t k = 0; k < n_prevs; k++)
            taken = taken || prevs[k] == r;
        if (!kept && !taken)
            return r;
    }
    return NULL;
}

/* Builds the relay set of cfg, reusing the unchanged relays of the current
 * set and the listeners of changed ones. All or nothing: the running
 * relays are touched only once every new one is built and listening (one
 * on an endpoint a running relay gives up, its predecessor or another,
 * then takes that socket, with its own settings); on failure the current set is left as
 * it was, -errno is returned and why says what failed (for the caller's
 * log line). */
static int
relays_apply(struct runtime *rt, const struct config *cfg, char *why, size_t whylen)
{
    struct relay **next = calloc(cfg->n_relays ? cfg->n_relays : 1, sizeof(*next));
    struct relay **prevs = calloc(cfg->n_relays ? cfg->n_relays : 1, sizeof(*prevs));
    size_t i;
    int rc = -ENOMEM;

    snprintf(why, whylen, "out of memory");
    if (next == NULL || prevs == NULL)
        goto fail;
    for (i = 0; i < cfg->n_relays; i++) {
        const struct relay_conf *rc_new = &cfg->relays[i];
        struct relay *old = find_relay(rt->relays, rt->n_relays, rc_new->name);
        if (old != NULL && relay_conf_equal(&old->conf, rc_new) && !relay_files_changed(old)) {
            relay_ref(old);
            next[i] = old;
            continue;
        }
        struct relay_stats *st = old ? old->stats : relay_stats_new(rc_new->name);
        if (st == NULL)
            goto fail;
        next[i] = relay_new(rc_new, st, rt->workers, rt->n_workers);
        if (old == NULL)
            relay_stats_unref(st);
        if (next[i] == NULL)
            goto fail;
        next[i]->dir = rt->dir;
        relay_targets_adopt(next[i], old); /* the health of the targets that stay */
#ifdef AIRLOCK_WITH_ATTEST
        if ((rc = relay_tls_open(next[i])) != 0) { /* the reason is logged */
            snprintf(why, whylen, "relay=%s: cannot set up %s", rc_new->name,
                     rc_new->tls.enabled ? "tls" : "verify");
            relay_unref(next[i]);
            next[i] = NULL;
            goto fail;
        }
#endif
        prevs[i] = listener_donor(rt, cfg, prevs, i, rc_new, old);
        if ((rc = relay_listen(next[i], prevs[i])) != 0) {
            char ep[EP_HOST_MAX + 32];
            endpoint_format(&rc_new->listen, ep, sizeof(ep));
            snprintf(why, whylen, "relay=%s: cannot listen on %s: %s", rc_new->name, ep,
                     strerror(-rc));
            relay_unref(next[i]);
            next[i] = NULL;
            goto fail;
        }
    }
    for (i = 0; i < cfg->n_relays; i++) {
        if (!relay_takes_listener(next[i], prevs[i]))
            continue;
        if ((rc = relay_listener_settings(next[i], prevs[i]->listen_fd, prevs[i])) != 0) {
            snprintf(why, whylen, "relay=%s: cannot set up its listener: %s", next[i]->conf.name,
                     strerror(-rc));
            for (size_t k = 0; k <= i; k++) /* the running settings back */
                if (relay_takes_listener(next[k], prevs[k]))
                    relay_listener_settings(prevs[k], prevs[k]->listen_fd, next[k]);
            goto fail;
        }
    }
    for (i = 0; i < cfg->n_relays; i++)
        if (relay_takes_listener(next[i], prevs[i]))
            relay_take_listener(next[i], prevs[i]);
    for (i = 0; i < cfg->n_relays; i++) {
        if (next[i]->loop == NULL && (rc = relay_start(next[i], rt->loop)) != 0)
            apply_fault(rt, false, "relay=%s: cannot accept: %s", next[i]->conf.name,
                        strerror(-rc));
    }
    /* before the old relays are released: the last reference may go */
    for (i = 0; i < cfg->n_relays; i++)
        if (find_relay(rt->relays, rt->n_relays, next[i]->conf.name) == NULL)
            log_info("relay=%s added", next[i]->conf.name);
    for (i = 0; i < rt->n_relays; i++) {
        struct relay *old = rt->relays[i];
        if (find_relay(next, cfg->n_relays, old->conf.name) != old) {
            struct relay *succ = find_relay(next, cfg->n_relays, old->conf.name);
            relay_retire(old, succ); /* its connections still choosing go by succ's rules */
            /* a successor on another endpoint, or none: close the old listener */
            if (succ == NULL || !endpoint_equal(&succ->conf.listen, &old->conf.listen))
                relay_stop(old, 1);
            if (succ == NULL)
                log_info("relay=%s removed", old->conf.name);
            else
                log_info("relay=%s changed", old->conf.name);
        }
        relay_unref(old);
    }
    free(rt->relays);
    free(prevs);
    rt->relays = next;
    rt->n_relays = cfg->n_relays;
    return 0;

fail:
    /* drop what was built: the running relays were not touched */
    for (size_t k = 0; next != NULL && k < cfg->n_relays; k++) {
        if (next[k] == NULL)
            break;
        if (find_relay(rt->relays, rt->n_relays, next[k]->conf.name) != next[k])
            relay_stop(next[k], 1); /* its own new listener, if it has one */
        relay_unref(next[k]);
    }
    free(next);
    free(prevs);
    return rc;
}

/* The key broker on its own thread (the config check refused a broker
 * in a build without attestation). */
static int
broker_apply(struct runtime *rt)
{
#ifdef AIRLOCK_WITH_ATTEST
    char err[512];

    if (!rt->cfg.broker.enabled)
        return 0;
    if ((rt->broker = broker_load(&rt->cfg.broker, err, sizeof(err))) == NULL ||
        broker_start(rt->broker, err, sizeof(err)) != 0) {
        log_warnx("%s", err);
        return -1;
    }
#else
    (void)rt;
#endif
    return 0;
}

/* why[0..len): the refused reload's answer, naming each of errs. */
static void
refused_why(const struct config_errors *errs, char *why, size_t len)
{
    size_t at = (size_t)snprintf(why, len, "reload failed, keeping the running config: ");

    for (size_t i = 0; i < errs->n && at < len; i++)
        at += (size_t)snprintf(why + at, len - at, "%s%s", i > 0 ? "; " : "", errs->e[i].msg);
    if (errs->total > errs->n && at < len)
        snprintf(why + at, len - at, "; %zu more errors", errs->total - errs->n);
}

/* Loads the config file at path into *cfg, as airlock check does, with
 * what only this host can tell (a keyset, CA file, certificate or key that
 * does not load, a pool's user or store). Returns 0 (free *cfg with
 * config_free()), or -1 with nothing loaded and why[0..len) naming every
 * fault (file, line and reason). */
static int
reload_load(const char *path, struct config *cfg, char *why, size_t len)
{
    struct config_errors *errs = calloc(1, sizeof(*errs));

    if (errs == NULL) {
        snprintf(why, len, "reload failed, keeping the running config: out of memory");
        return -1;
    }
    if (config_load_all(path, cfg, errs) == 0) {
        config_host_faults(cfg, path, errs);
        if (errs->total > 0)
            config_free(cfg);
    }
    int rc = errs->total > 0 ? -1 : 0;
    if (rc != 0)
        refused_why(errs, why, len);
    free(errs);
    return rc;
}

/* The broker's part of a reload, before anything is applied: when its
 * secrets, their policies, key or limits changed, or a file it read was
 * rewritten (a policy's roots, a TDX collateral refreshed), *fresh is the
 * new config's broker loaded (not started), for broker_reload_adopt(); a
 * load that fails fails the reload (-1, err). What only a start changes
 * (a broker: block added or removed; listen, max_connections,
 * max_message) is a fault, and cfg keeps the running values of it. */
static int
broker_reload(struct runtime *rt, struct config *cfg, struct broker **fresh, char *err,
              size_t errlen)
{
    struct broker_conf *now = &rt->cfg.broker, *next = &cfg->broker;

    if (next->enabled != now->enabled) {
        apply_fault(rt, false,
                    "broker: a broker: block added or removed takes effect at the "
                    "next start");
        /* cfg keeps the running settings; each config frees its own secrets */
        struct broker_conf running = *now;
        *now = *next;
        *next = running;
        return 0;
    }
    if (!broker_conf_same_start(next, now)) {
        apply_fault(rt, false,
                    "broker: listen, max_connections and max_message: the running "
                    "ones kept until the next start");
        next->listen = now->listen;
        next->max_connections = now->max_connections;
        next->max_message = now->max_message;
    }
#ifdef AIRLOCK_WITH_ATTEST
    if (rt->broker != NULL && next->enabled &&
        (!broker_conf_equal(next, now) || broker_files_changed(rt->broker)) &&
        (*fresh = broker_load(next, err, errlen)) == NULL)
        return -1;
#else
    (void)fresh;
    (void)err;
    (void)errlen;
#endif
    return 0;
}

/* Frees what broker_reload() loaded for a reload that failed after it. */
static void
broker_reload_drop(struct broker *fresh)
{
#ifdef AIRLOCK_WITH_ATTEST
    broker_stop(fresh);
#else
    (void)fresh;
#endif
}

/* The running broker takes what broker_reload() loaded. */
static void
broker_reload_adopt(struct runtime *rt, struct broker *fresh)
{
#ifdef AIRLOCK_WITH_ATTEST
    if (fresh != NULL)
        broker_adopt(rt->broker, fresh);
#else
    (void)rt;
    (void)fresh;
#endif
}

/* Loads the config file, checks what only this host can tell, and applies
 * it. Returns 0 (the parts that could not be applied in rt->faults), or -1
 * with the running config kept and why[0..len) saying why (the text of the
 * log line). */
static int
reload_apply(struct runtime *rt, char *why, size_t len)
{
    struct config cfg;
    char err[512];

    if (rt->path == NULL) {
        snprintf(why, len, "reload: no config file (started from the command line)");
        return -1;
    }
    if (reload_load(rt->path, &cfg, why, len) != 0)
        return -1;
    if (cfg.threads != rt->cfg.threads)
        apply_fault(rt, false, "threads: the running %zu kept until the next start", rt->n_workers);
    if (cfg.has_directory != rt->cfg.has_directory ||
        !dir_conf_equal(&cfg.directory, &rt->cfg.directory) ||
        cfg.has_control != rt->cfg.has_control ||
        !endpoint_conf_equal(&cfg.control, &rt->cfg.control))
        apply_fault(rt, false, "directory and control: the running ones kept until the next start");
    struct broker *fresh = NULL;
    if (broker_reload(rt, &cfg, &fresh, err, sizeof(err)) != 0) {
        snprintf(why, len, "reload failed, keeping the running config: %s", err);
        config_free(&cfg);
        return -1;
    }
    cfg.has_directory = rt->cfg.has_directory;
    cfg.directory = rt->cfg.directory;
    cfg.has_control = rt->cfg.has_control;
    cfg.control = rt->cfg.control;
    if (relays_apply(rt, &cfg, err, sizeof(err)) != 0) {
        snprintf(why, len, "reload failed, keeping the running config: %s", err);
        broker_reload_drop(fresh);
        config_free(&cfg);
        return -1;
    }
    broker_reload_adopt(rt, fresh);
    nofile_check(&cfg, rt->n_workers);
    resolve_configure(cfg.resolver_threads, cfg.resolver_queue);
    log_threshold = cfg.log_level;
    log_format = cfg.log_format;
    metrics_apply(rt, &cfg);
    logs_apply(rt, &cfg);
    pools_apply(rt, &cfg, false);
    proxies_apply(rt, &cfg);
    cfg.threads = rt->cfg.threads;
    config_free(&rt->cfg);
    rt->cfg = cfg;
    return 0;
}

/* Counts the time, and the result, of the config's last load. */
static void
reload_record(struct runtime *rt, enum reload_result result)
{
    rt->reloads[result]++;
    rt->last_reload_ok = result == RELOAD_OK;
    rt->last_reload_time = time(NULL);
}

/* The generation of the running config: 1 at the start, one more at each
 * reload that was applied (in whole or in part). */
static unsigned long long
generation(const struct runtime *rt)
{
    return (unsigned long long)(rt->reloads[RELOAD_OK] + rt->reloads[RELOAD_PARTIAL]) + 1;
}

/* Reloads the config file (SIGHUP, airlock ctl reload), on the main loop:
 * one at a time by construction. Logs the outcome and writes it to
 * out[0..len) (for airlock ctl: the same text): "reloaded", or the parts
 * not applied, or why nothing was. Returns 0 when all of it was applied,
 * else -1. */
static int
reload(struct runtime *rt, char *out, size_t len)
{
    struct strbuf faults = {0};
    char why[RELOAD_TEXT_MAX];

    /* the manager waits for READY=1 again, whether or not the reload
     * succeeded (a failed one keeps the running config) */
    notify_reloading();
    rt->faults = &faults;
    int rc = reload_apply(rt, why, sizeof(why));
    rt->faults = NULL;
    enum reload_result result = rc != 0          ? RELOAD_FAILED
                                : faults.len > 0 ? RELOAD_PARTIAL
                                                 : RELOAD_OK;
    reload_record(rt, result);
    notify_send("READY=1");
    if (result == RELOAD_FAILED) {
        log_warnx("%s", why);
        snprintf(out, len, "%s", why);
    } else if (result == RELOAD_PARTIAL) {
        snprintf(out, len, "reloaded %s in part (generation %llu), not applied: %s%s", rt->path,
                 generation(rt), faults.data, faults.failed ? "..." : "");
        log_warnx("%s", out);
    } else {
        log_info("reloaded %s: %zu relays, %zu pools%s (generation %llu)", rt->path, rt->n_relays,
                 rt->cfg.n_pools, rt->n_waiting > 0 ? ", some waiting for a pool that stops" : "",
                 generation(rt));
        snprintf(out, len, "reloaded (generation %llu)", generation(rt));
    }
    strbuf_free(&faults);
    return result == RELOAD_OK ? 0 : -1;
}

/* ---- the control socket (airlock ctl) */

/* The KIND column of ctl stats. */
static const char *
relay_kind(const char *name, void *arg)
{
    const struct runtime *rt = arg;
    const struct relay *r = find_relay(rt->relays, rt->n_relays, name);

    if (r == NULL)
        return "-";
    return r->conf.router.enabled ? "router" : r->conf.egress ? "egress" : "relay";
}

/* control_ops.run: the commands that are not the directory's. */
static int
ctl_run(void *arg, enum ctl_verb verb, struct strbuf *out, control_done_fn done, void *ctx)
{
    struct runtime *rt = arg;

    if (verb == CTL_CONNS)
        return conns_list(rt->loop, rt->workers, rt->http, rt->n_workers, out, done, ctx);
    if (verb == CTL_RELOAD) {
        char result[RELOAD_TEXT_MAX];
        if (rt->draining) {
            strbuf_printf(out, "reload: draining (stopping): not reloading");
            return -1;
        }
        int rc = reload(rt, result, sizeof(result));
        strbuf_printf(out, "%s\n", result);
        return rc;
    }
    if (verb == CTL_CONFIG) {
        char err[256];
        strbuf_printf(out, "# the effective config of %s (generation %llu), defaults filled in\n",
                      rt->path != NULL ? rt->path : "-", generation(rt));
        if (config_dump(&rt->cfg, out, err, sizeof(err)) != 0) {
            strbuf_free(out);
            strbuf_printf(out, "config: %s", err);
            return -1;
        }
        return 0;
    }
    if (verb == CTL_STATS) {
        /* from the /metrics text: one source for both */
        struct strbuf text = {0};
        render(&text, rt);
        if (text.failed)
            out->failed = 1;
        else
            stats_table(text.data != NULL ? text.data : "", text.len, relay_kind, rt, out);
        strbuf_free(&text);
        return 0;
    }
    strbuf_printf(out, "%s: not served by this process", ctl_verb_name(verb));
    return -1;
}

/* The control socket, on the directory when there is one; its settings
 * change only at the next start. */
static int
control_apply(struct runtime *rt)
{
    const struct control_ops ops = {.run = ctl_run, .arg = rt};
    char cep[ENDPOINT_TEXT_MAX];
    int err = 0;

    if (!rt->cfg.has_control)
        return 0;
    endpoint_format(&rt->cfg.control, cep, sizeof(cep));
    if ((rt->control = control_start(rt->loop, &rt->cfg.control, rt->dir, &ops, &err)) == NULL) {
        log_warnx("control: cannot listen on %s: %s", cep, strerror(-err));
        return -1;
    }
    log_info("control listen=%s directory=%s", cep, rt->dir != NULL ? "yes" : "no");
    return 0;
}

/* ---- drain and stop */

static size_t
open_connections(const struct runtime *rt)
{
    size_t n = 0;

    for (size_t i = 0; i < rt->n_workers; i++)
        n += atomic_load(&rt->workers[i]->n_conns);
    return n + http_env_open(rt->http);
}

static void
close_all_posted(void *arg)
{
    worker_close_all(arg);
}

static void drain_check(struct timer *t);

/* Closes every connection, on the loops that own them. */
static void
connections_close(struct runtime *rt)
{
    for (size_t i = 0; i < rt->n_workers; i++) {
        http_env_post_close(rt->http, i);
        if (loop_post(rt->workers[i]->loop, close_all_posted, rt->workers[i]) != 0)
            log_warnx("cannot post the close to loop %zu", i);
    }
}

/* Stops the main loop once no connection is left or the deadline passed.
 * At the deadline the connections are closed and the pools' processes
 * killed, and the store-backs of their sessions are awaited (unless a
 * second stop signal came): the directory hears the instances stopped
 * only once their state is stored. */
static void
drain_poll(struct runtime *rt)
{
    size_t open = open_connections(rt);
    size_t logs = rt->logfwd != NULL ? logfwd_pending(rt->logfwd) : 0;
    size_t instances = pools_count(rt, pool_busy);

    if ((open > 0 || logs > 0 || instances > 0) && loop_now(rt->loop) < rt->drain_deadline) {
        timer_start(rt->loop, &rt->drain_timer, DRAIN_POLL_MS, drain_check, rt);
        return;
    }
    if (!rt->drain_late) {
        rt->drain_late = true;
        if (open > 0)
            log_warnx("drain deadline reached: closing %zu connections", open);
        if (logs > 0)
            log_warnx("drain deadline reached: %zu bytes of log lines not forwarded", logs);
        if (instances > 0)
            log_warnx("drain deadline reached: killing %zu pool instances; awaiting %zu "
                      "store-backs",
                      instances, pools_count(rt, pool_storing));
        connections_close(rt);
        for (size_t i = 0; i < rt->n_pools; i++)
            pool_kill(rt->pools[i]);
        for (size_t i = 0; i < rt->n_leaving; i++)
            pool_kill(rt->leaving[i].pool);
    }
    size_t storing = pools_count(rt, pool_storing);
    if (storing > 0 && !rt->drain_forced) {
        timer_start(rt->loop, &rt->drain_timer, DRAIN_POLL_MS, drain_check, rt);
        return;
    }
    if (storing > 0)
        log_warnx("second stop signal: %zu store-backs not awaited", storing);
    /* a second signal comes here with the poll still armed: it must not fire
     * in the last loop turn of runtime_free(), after the workers are freed */
    timer_stop(rt->loop, &rt->drain_timer);
    loop_stop(rt->loop);
}

static void
drain_check(struct timer *t)
{
    drain_poll(t->data);
}

static void
drain_start(struct runtime *rt)
{
    if (rt->draining) {
        log_warnx("second stop signal: closing every connection now");
        rt->drain_deadline = 0;
        rt->drain_forced = true;
        drain_poll(rt);
        return;
    }
    rt->draining = 1;
    notify_send("STOPPING=1");
    for (size_t i = 0; i < rt->n_relays; i++)
        relay_stop(rt->relays[i], 1);
    for (size_t i = 0; i < rt->n_pools; i++)
        pool_stop(rt->pools[i]);
    for (size_t i = 0; i < rt->n_proxies; i++)
        http_proxy_stop(rt->proxies[i]);
    http_env_drain(rt->http);
    log_info("draining %zu connections and %zu pool instances for up to %u ms",
             open_connections(rt), pools_count(rt, pool_busy), rt->cfg.drain_timeout_ms);
    rt->drain_deadline = loop_now(rt->loop) + rt->cfg.drain_timeout_ms;
    drain_poll(rt);
}

static void
signal_event(struct io *io, uint32_t events)
{
    struct runtime *rt = io->data;
    struct signalfd_siginfo si;
    (void)events;

    while (read(rt->sigfd, &si, sizeof(si)) == sizeof(si)) {
        char result[RELOAD_TEXT_MAX];
        if (si.ssi_signo == SIGHUP && !rt->draining)
            reload(rt, result, sizeof(result));
        else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
            drain_start(rt);
    }
}

static int
signals_start(struct runtime *rt)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    /* blocked before the workers start, so that they inherit the mask and
     * every signal arrives through the signalfd */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* a shell starts background jobs with SIGINT ignored, and an ignored
     * signal never reaches a signalfd */
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    rt->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (rt->sigfd < 0)
        return -errno;
    return io_start(rt->loop, &rt->sig_io, rt->sigfd, EPOLLIN, signal_event, rt);
}

static void
runtime_free(struct runtime *rt)
{
    /* a signal from now on waits, blocked, for the exit: the last loop turn
     * below must not start a drain over the workers freed before it */
    io_stop(rt->loop, &rt->sig_io);
    timer_stop(rt->loop, &rt->drain_timer);
    metrics_stop(rt->metrics);
#ifdef AIRLOCK_WITH_ATTEST
    broker_stop(rt->broker);
    rt->broker = NULL;
#endif
    control_stop(rt->control);
    rt->control = NULL;
    /* no answers to loops that go away below; their cancels wait for dir_free */
    if (rt->dir != NULL)
        dir_stop(rt->dir);
    for (size_t i = 0; i < rt->n_relays; i++) {
        relay_stop(rt->relays[i], 1);
        relay_unref(rt->relays[i]);
    }
    free(rt->relays);
    for (size_t i = 0; i < rt->n_proxies; i++) {
        http_proxy_stop(rt->proxies[i]);
        http_proxy_unref(rt->proxies[i]);
    }
    free(rt->proxies);
    rt->proxies = NULL;
    rt->n_proxies = 0;
    /* connections hold relay references: close them on their own threads
     * (the loops run the posted close and its deferred frees, then stop) */
    for (size_t i = 1; i < rt->n_workers; i++) {
        if (rt->workers[i] == NULL)
            continue;
        http_env_post_close(rt->http, i);
        loop_post(rt->workers[i]->loop, close_all_posted, rt->workers[i]);
        worker_free(rt->workers[i]);
    }
    if (rt->n_workers > 0 && rt->workers[0] != NULL) {
        /* after the other workers are gone: none of them logs into the
         * forwarder any more */
        logfwd_free(rt->logfwd);
        rt->logfwd = NULL;
        for (size_t i = 0; i < rt->n_sinks; i++)
            logsink_free(rt->sinks[i]);
        free(rt->sinks);
        rt->sinks = NULL;
        rt->n_sinks = 0;
        pools_free(rt);
        record_free(rt->record);
        rt->record = NULL;
        /* the wipes still queued are finished: no user's state stays behind */
        pool_env_free(rt->pool_env);
        rt->pool_env = NULL;
        http_env_close_all(rt->http, 0);
        worker_close_all(rt->workers[0]);
        loop_stop(rt->loop);
        loop_run(rt->loop); /* one more turn runs the deferred frees */
        dir_free(rt->dir);  /* a memory directory runs on this loop */
        rt->dir = NULL;
        worker_free(rt->workers[0]);
    }
    free(rt->workers);
    http_env_free(rt->http);
    rt->http = NULL;
    if (rt->sigfd >= 0)
        close(rt->sigfd);
    config_free(&rt->cfg);
}

int
runtime_run(struct config *cfg, const char *path)
{
    struct runtime rt = {.cfg = *cfg,
                         .path = path,
                         .sigfd = -1,
                         .last_reload_ok = true,
                         .last_reload_time = time(NULL)};
    int status = 1, rc;

    memset(cfg, 0, sizeof(*cfg));
    log_threshold = rt.cfg.log_level;
    log_format = rt.cfg.log_format;
    if ((rc = log_stderr_nowait()) != 0)
        log_warnx("stderr: %s: lines may wait for its reader", strerror(-rc));
    if ((rc = notify_init()) != 0)
        log_warnx("NOTIFY_SOCKET: %s: not telling the service manager", strerror(-rc));
    nofile_raise();
    rt.n_workers = rt.cfg.threads;
    if (rt.n_workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        rt.n_workers = n > 0 ? (size_t)n : 1;
    }
    rt.workers = calloc(rt.n_workers, sizeof(*rt.workers));
    if (rt.workers == NULL)
        goto out;
    for (size_t i = 0; i < rt.n_workers; i++)
        if ((rt.workers[i] = worker_new()) == NULL)
            goto out;
    rt.loop = rt.workers[0]->loop;
    struct loop **loops = calloc(rt.n_workers, sizeof(*loops));
    for (size_t i = 0; loops != NULL && i < rt.n_workers; i++)
        loops[i] = rt.workers[i]->loop;
    rt.http = loops != NULL ? http_env_new(loops, rt.n_workers) : NULL;
    free(loops);
    if (rt.http == NULL)
        goto out;
    nofile_check(&rt.cfg, rt.n_workers);
    resolve_configure(rt.cfg.resolver_threads, rt.cfg.resolver_queue);
    if ((rc = signals_start(&rt)) != 0) {
        log_warnx("signals: %s", strerror(-rc));
        goto out;
    }
    if (dir_apply(&rt) != 0 || control_apply(&rt) != 0)
        goto out;
    char why[512];
    if (relays_apply(&rt, &rt.cfg, why, sizeof(why)) != 0) {
        log_warnx("%s", why);
        goto out;
    }
    if (metrics_apply(&rt, &rt.cfg) != 0)
        goto out;
    if (logs_apply(&rt, &rt.cfg) != 0)
        goto out;
    if (pools_apply(&rt, &rt.cfg, true) != 0)
        goto out;
    if (broker_apply(&rt) != 0)
        goto out;
    if (proxies_apply(&rt, &rt.cfg) != 0)
        goto out;
    for (size_t i = 1; i < rt.n_workers; i++) {
        if ((rc = worker_spawn(rt.workers[i])) != 0) {
            log_warnx("cannot start worker thread: %s", strerror(-rc));
            goto out;
        }
    }
    for (size_t i = 0; i < rt.n_relays; i++) {
        char l[EP_HOST_MAX + 32], t[EP_HOST_MAX + 32];
        endpoint_format(&rt.relays[i]->conf.listen, l, sizeof(l));
        /* fields only: logfmt and json keep each key's kind of value */
        if (rt.relays[i]->conf.egress)
            snprintf(t, sizeof(t), "target=egress rules=%zu", rt.relays[i]->conf.n_egress_allow);
        else if (rt.relays[i]->conf.router.enabled)
            snprintf(t, sizeof(t), "target=sni routes=%zu default=%s",
                     rt.relays[i]->conf.router.table.n,
                     rt.relays[i]->conf.router.table.has_default ? "yes" : "no");
        else if (rt.relays[i]->conf.n_targets > 0)
            snprintf(t, sizeof(t), "targets=%zu balance=%s", rt.relays[i]->conf.n_targets,
                     rt.relays[i]->conf.balance == BALANCE_FIRST ? "first" : "least_conn");
        else {
            memcpy(t, "target=", 7);
            endpoint_format(&rt.relays[i]->conf.target, t + 7, sizeof(t) - 7);
        }
        log_info("relay=%s listen=%s %s", rt.relays[i]->conf.name, l, t);
    }
    for (size_t i = 0; i < rt.n_sinks; i++) {
        const struct log_sink_conf *sc = logsink_conf(rt.sinks[i]);
        char l[EP_HOST_MAX + EP_PATH_MAX + 32];
        endpoint_format(&sc->listen, l, sizeof(l));
        log_info("log_sink=%s listen=%s file=%s", sc->name, l, sc->file);
    }
    if (rt.logfwd != NULL) {
        char fw[EP_HOST_MAX + EP_PATH_MAX + 32], l[EP_HOST_MAX + EP_PATH_MAX + 32] = "-";
        endpoint_format(&rt.cfg.logs.forward, fw, sizeof(fw));
        if (rt.cfg.logs.has_listen)
            endpoint_format(&rt.cfg.logs.listen, l, sizeof(l));
        log_info("logs forward=%s listen=%s capture_stderr=%s buffer=%zu line_max=%zu", fw, l,
                 rt.cfg.logs.capture_stderr ? "true" : "false", rt.cfg.logs.buffer,
                 rt.cfg.logs.line_max);
    }
    log_info("airlock running: %zu relays, %zu pools, %zu proxies, %zu threads, pid %d",
             rt.n_relays, rt.n_pools, rt.n_proxies, rt.n_workers, (int)getpid());
    notify_send("READY=1");
    if ((rc = loop_run(rt.loop)) != 0)
        log_warnx("main loop: %s", strerror(-rc));
    else
        status = 0;
    log_info("stopped");
out:
    runtime_free(&rt);
    return status;
}
