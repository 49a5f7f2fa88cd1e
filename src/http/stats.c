/* stats.c - an HTTP proxy's counters (kept by name across reloads) and
 * their Prometheus text (docs/observability.md). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/proxy_int.h"

const char *const fail_names[FAIL_COUNT] = {
    [FAIL_BAD_REQUEST] = "bad_request",
    [FAIL_HEADER_LARGE] = "header_too_large",
    [FAIL_BODY_LARGE] = "body_too_large",
    [FAIL_HEADER_TIMEOUT] = "header_timeout",
    [FAIL_BODY_TIMEOUT] = "body_timeout",
    [FAIL_METHOD] = "method",
    [FAIL_CONTENT_TYPE] = "content_type",
    [FAIL_MALFORMED] = "malformed_json",
    [FAIL_NOT_SCALAR] = "not_scalar",
    [FAIL_VALUE_LARGE] = "value_too_large",
    [FAIL_BAD_TOKEN] = "bad_token",
    [FAIL_INTERNAL] = "internal",
    [FAIL_BACKEND_DOWN] = "backend_down",
    [FAIL_BACKEND_TIMEOUT] = "backend_timeout",
    [FAIL_BACKEND_CLOSED] = "backend_closed",
    [FAIL_BAD_RESPONSE] = "bad_response",
    [FAIL_NO_ROUTE] = "no_route",
    [FAIL_DEST_DENIED] = "destination_denied",
    [FAIL_UPSTREAM_UNVERIFIED] = "upstream_unverified",
    [FAIL_UPSTREAM_TLS] = "upstream_tls",
    [FAIL_URI_TOO_LONG] = "uri_too_long",
    [FAIL_AMBIGUOUS_NAME] = "ambiguous_name",
    [FAIL_SHAPE_MISMATCH] = "shape_mismatch",
};

/* Upper bounds of the latency histogram, in microseconds. */
static const uint64_t lat_bounds[] = {250,    500,     1000,    2500,    5000,
                                      10000,  25000,   50000,   100000,  250000,
                                      500000, 1000000, 2500000, 5000000, 10000000};

/* ---- stats */

struct http_stats *
stats_new(const char *name)
{
    struct http_stats *st = calloc(1, sizeof(*st));

    if (st == NULL)
        return NULL;
    snprintf(st->name, sizeof(st->name), "%s", name);
    strcpy(st->route[0], "-");
    st->n_routes = 1;
    atomic_init(&st->refs, 1);
    return st;
}

void
stats_unref(struct http_stats *st)
{
    if (st != NULL && atomic_fetch_sub(&st->refs, 1) == 1) {
        unproven_group_fini(&st->unproven);
        free(st);
    }
}

static void
stats_drop(void *owner)
{
    stats_unref(owner);
}

int
stats_unproven(struct http_stats *st, const struct http_env *env)
{
    struct loop *loops[env->n > 0 ? env->n : 1];

    if (st->unproven.shares != NULL)
        return 0;
    for (size_t i = 0; i < env->n; i++)
        loops[i] = env->w[i].loop;
    st->unproven.evict_oldest = sess_evict_oldest;
    st->unproven.owner = st;
    st->unproven.owner_refs = &st->refs;
    st->unproven.drop = stats_drop;
    return unproven_group_init(&st->unproven, loops, env->n);
}

/* The slot of route name, added when new; the last slot is shared when the
 * names seen over many reloads outnumber the slots. Main loop only. */
size_t
stats_slot(struct http_stats *st, const char *name)
{
    for (size_t i = 0; i < st->n_routes; i++)
        if (strcmp(st->route[i], name) == 0)
            return i;
    if (st->n_routes == ROUTE_SLOTS)
        return ROUTE_SLOTS - 1;
    snprintf(st->route[st->n_routes], CONF_NAME_MAX, "%s", name);
    return st->n_routes++;
}

void
stats_observe(struct sess *s, int status)
{
    struct http_stats *st = s->p->stats;
    size_t slot = s->route >= 0 ? s->p->routes[s->route].slot : 0;
    int cls = status >= 100 && status < 600 ? status / 100 : 0;

    count(&st->requests[slot][cls], 1);
    if (s->t_req == 0)
        return;
    uint64_t us = now_us() - s->t_req;
    size_t b = 0;
    while (b < LAT_N && us > lat_bounds[b])
        b++;
    count(&st->lat[b], 1);
    count(&st->lat_sum_us, us);
    count(&st->lat_count, 1);
}

/* ---- metrics */

void
http_proxy_render(struct http_proxy *const *proxies, size_t n, struct strbuf *out)
{
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } per_proxy[] = {
        {"airlock_http_connections_open", "gauge", "Client connections of HTTP proxies open now.",
         offsetof(struct http_stats, open)},
        {"airlock_http_connections_total", "counter", "Client connections accepted.",
         offsetof(struct http_stats, total)},
        {"airlock_http_connections_refused_total", "counter",
         "Client connections refused by max_connections, max_unproven_per_client or proxy_from.",
         offsetof(struct http_stats, refused)},
        {"airlock_http_connections_evicted_total", "counter",
         "Client connections closed before a whole request head (or between two requests) for "
         "a newcomer, at max_connections or out of file descriptors.",
         offsetof(struct http_stats, evicted)},
    };
    static const char *const cls[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};

    if (n == 0)
        return;
    for (size_t k = 0; k < sizeof(per_proxy) / sizeof(per_proxy[0]); k++) {
        strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", per_proxy[k].name, per_proxy[k].help,
                      per_proxy[k].name, per_proxy[k].type);
        for (size_t i = 0; i < n; i++) {
            struct http_stats *st = proxies[i]->stats;
            strbuf_printf(out, "%s{proxy=\"%s\"} %llu\n", per_proxy[k].name, st->name,
                          (unsigned long long)atomic_load(
                              (atomic_uint_fast64_t *)((char *)st + per_proxy[k].off)));
        }
    }
    strbuf_printf(out, "# HELP airlock_http_requests_total Requests answered, by route and "
                       "status class.\n# TYPE airlock_http_requests_total counter\n");
    for (size_t i = 0; i < n; i++) {
        struct http_stats *st = proxies[i]->stats;
        for (size_t r = 0; r < st->n_routes; r++)
            for (int c = 1; c < 6; c++)
                strbuf_printf(out,
                              "airlock_http_requests_total{proxy=\"%s\",route=\"%s\",code=\"%s\"} "
                              "%llu\n",
                              st->name, st->route[r], cls[c],
                              (unsigned long long)atomic_load(&st->requests[r][c]));
    }
    strbuf_printf(out, "# HELP airlock_http_fields_encrypted_total JSON values replaced by tokens "
                       "in request bodies.\n# TYPE airlock_http_fields_encrypted_total counter\n");
    for (size_t i = 0; i < n; i++) {
        struct http_stats *st = proxies[i]->stats;
        for (size_t r = 1; r < st->n_routes; r++)
            strbuf_printf(
                out, "airlock_http_fields_encrypted_total{proxy=\"%s\",route=\"%s\"} %llu\n",
                st->name, st->route[r], (unsigned long long)atomic_load(&st->encrypted[r]));
    }
    strbuf_printf(out, "# HELP airlock_http_fields_decrypted_total Tokens opened in response "
                       "bodies (inbound) or request bodies (outbound).\n# TYPE "
                       "airlock_http_fields_decrypted_total counter\n");
    for (size_t i = 0; i < n; i++) {
        struct http_stats *st = proxies[i]->stats;
        for (size_t r = 1; r < st->n_routes; r++)
            strbuf_printf(
                out, "airlock_http_fields_decrypted_total{proxy=\"%s\",route=\"%s\"} %llu\n",
                st->name, st->route[r], (unsigned long long)atomic_load(&st->decrypted[r]));
    }
    strbuf_printf(out, "# HELP airlock_http_failures_total Requests the proxy answered itself or "
                       "refused, by reason.\n# TYPE airlock_http_failures_total counter\n");
    for (size_t i = 0; i < n; i++) {
        struct http_stats *st = proxies[i]->stats;
        for (int f = 0; f < FAIL_COUNT; f++)
            strbuf_printf(out, "airlock_http_failures_total{proxy=\"%s\",reason=\"%s\"} %llu\n",
                          st->name, fail_names[f],
                          (unsigned long long)atomic_load(&st->failures[f]));
    }
    strbuf_printf(out, "# HELP airlock_http_request_duration_seconds From a whole request to its "
                       "response queued for the client (rules and backend included).\n"
                       "# TYPE airlock_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < n; i++) {
        struct http_stats *st = proxies[i]->stats;
        uint64_t cum = 0;
        for (size_t b = 0; b <= LAT_N; b++) {
            cum += atomic_load(&st->lat[b]);
            if (b < LAT_N)
                strbuf_printf(
                    out,
                    "airlock_http_request_duration_seconds_bucket{proxy=\"%s\",le=\"%g\"} "
                    "%llu\n",
                    st->name, (double)lat_bounds[b] / 1e6, (unsigned long long)cum);
            else
                strbuf_printf(
                    out,
                    "airlock_http_request_duration_seconds_bucket{proxy=\"%s\",le=\"+Inf\"} "
                    "%llu\n",
                    st->name, (unsigned long long)cum);
        }
        strbuf_printf(out,
                      "airlock_http_request_duration_seconds_sum{proxy=\"%s\"} %.6f\n"
                      "airlock_http_request_duration_seconds_count{proxy=\"%s\"} %llu\n",
                      st->name, (double)atomic_load(&st->lat_sum_us) / 1e6, st->name,
                      (unsigned long long)atomic_load(&st->lat_count));
    }
}
