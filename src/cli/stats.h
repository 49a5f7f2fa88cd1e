/* stats.h - `airlock ctl stats`: the counters of /metrics as a table.
 *
 * The table is made from the Prometheus text the metrics endpoint serves
 * (metrics.h), not from the counters themselves, so the two cannot
 * disagree and nothing is counted twice: one section per kind of series
 * owner (relays and routers, pools, HTTP proxies), one row per name, one
 * column per counter (pool instances: one per state). */
#ifndef AIRLOCK_CLI_STATS_H
#define AIRLOCK_CLI_STATS_H

#include <stddef.h>

#include "core/strbuf.h"

/* What a relay named name is ("relay", "router"), for its KIND column. */
typedef const char *(*stats_kind_fn)(const char *name, void *arg);

/* Appends to out the table of the exposition text[0..len): a first line
 * "N relays, N pools, N proxies", then a table per non-empty section, a
 * blank line between them. Lines it does not know are skipped. */
void stats_table(const char *text, size_t len, stats_kind_fn kind, void *arg, struct strbuf *out);

#endif
