/* process.h - what the process is: its build (version, commit, date) and
 * the standard Prometheus process metrics, read from /proc. */
#ifndef AIRLOCK_CLI_PROCESS_H
#define AIRLOCK_CLI_PROCESS_H

#include "core/strbuf.h"

/* Static strings of the build: the version (meson's project version), the
 * git commit ("unknown" when not built from a checkout) and the build date
 * (UTC, from SOURCE_DATE_EPOCH when set, for reproducible packages). */
extern const char process_version[];
extern const char process_commit[];
extern const char process_build_date[];

/* Appends airlock_build_info and process_{cpu_seconds_total,
 * resident_memory_bytes, virtual_memory_bytes, open_fds, max_fds,
 * start_time_seconds} to out. A value /proc does not give is left out. Any
 * thread. */
void process_render(struct strbuf *out);

#endif
