/* conns.h - `airlock ctl conns`: the open relayed connections.
 *
 * Each worker lists its own connections (worker_conns(), and the HTTP
 * proxies' sessions on its loop: http_env_conns(), posted to its thread),
 * since the lists and the per-connection byte counts belong to that thread
 * alone: nothing on the byte path takes a lock or counts anything more for
 * this. The last worker to answer posts the lot back to the control loop,
 * which writes the table: one line per connection (relay, router or proxy,
 * client, target, age, bytes each way: "-" for a proxy's session, which
 * does not count them), at most CONNS_SHOWN_MAX, then a total line. */
#ifndef AIRLOCK_CLI_CONNS_H
#define AIRLOCK_CLI_CONNS_H

#include <stddef.h>

#include "cli/control.h"
#include "core/loop.h"
#include "core/strbuf.h"
#include "http/proxy.h"
#include "relay/conn.h"

#define CONNS_SHOWN_MAX 1000 /* lines of the table; the total counts them all */

/* Asks the n workers for their connections and the sessions of http on
 * the same loops (NULL: none), to be written to out on home (the caller's
 * loop). Returns 1: done(ctx, 0) comes later on home's
 * thread, out written; or -1 (out says why). The workers must outlive the
 * answer (runtime_free() joins them before home's last turn). */
int conns_list(struct loop *home, struct worker *const *workers, struct http_env *http, size_t n,
               struct strbuf *out, control_done_fn done, void *ctx);

#endif
