/* proxy.h - the HTTP/1.1 reverse proxy role (proxies:): a listener on the
 * main loop, sessions on the worker loops, one backend; routes whose rules
 * encrypt JSON fields of request bodies and decrypt tokens in responses
 * (src/field/, docs/field-encryption.md).
 *
 *   accept (main loop) ─► least busy worker ─► session:
 *     IDLE ─► HEAD ─► BODY ─► (route rules: encrypt | refuse 4xx) ─► BACKEND
 *     (dial, write, read the whole response) ─► (decrypt | 502) ─► WRITE ─► IDLE
 *
 * A session serves one request at a time; pipelined requests wait in its
 * buffer, so responses leave in order. Bodies are buffered whole (they are
 * rewritten) and re-framed with Content-Length both ways, but for a response
 * no rule rewrites that outgrows max_response: that one is streamed. */
#ifndef AIRLOCK_HTTP_PROXY_H
#define AIRLOCK_HTTP_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "core/strbuf.h"
#include "http/conf.h"

struct http_env;
struct http_proxy;

/* The worker loops every proxy's sessions run on: loops[0] is the main
 * loop, where listeners accept. Returns NULL on ENOMEM. */
struct http_env *http_env_new(struct loop **loops, size_t n);

/* Sessions open now, on every loop (any thread). */
size_t http_env_open(const struct http_env *env);

/* One session as `airlock ctl conns` lists it: its proxy's name, the
 * client's address ("" on a unix listener), the backend (outbound: its
 * route's upstream; NULL before it has a route) and the time since it was
 * accepted. */
typedef void (*http_conn_fn)(void *arg, const char *proxy, const char *client,
                             const struct endpoint *backend, uint64_t age_ms);

/* Calls each for every session of loop i and returns how many there are.
 * Runs on loop i's thread: its session list is that thread's alone. */
size_t http_env_conns(struct http_env *env, size_t i, http_conn_fn each, void *arg);

/* Draining: each loop closes its idle sessions, the others after their
 * current response. Main loop. */
void http_env_drain(struct http_env *env);

/* Closes every session of loop i; runs on loop i's thread. */
void http_env_close_all(struct http_env *env, size_t i);

/* Posts http_env_close_all(env, i) to loop i (any thread). */
void http_env_post_close(struct http_env *env, size_t i);

/* Frees env, after every session is closed and reaped. */
void http_env_free(struct http_env *env);

/* Starts the proxy pc (copied, routes included) on env: compiles its
 * rules, loads its keysets (one per loop), listens and accepts on loops[0].
 * prev (may be NULL): the proxy of the same name it replaces; its counters
 * go on. donor (may be NULL): the running proxy on pc's endpoint that gives
 * it up (prev, or one removed, renamed or moved): its listener is adopted,
 * since a bind would find the endpoint in use by this process. Returns
 * NULL with *err (-errno) and msg (MSG_MAX bytes) saying why. */
#define HTTP_MSG_MAX 512
struct http_proxy *http_proxy_new(struct http_env *env, const struct http_proxy_conf *pc,
                                  struct http_proxy *prev, struct http_proxy *donor, int *err,
                                  char *msg);

/* What pc's file alone cannot tell (airlock check and run, before anything
 * starts): mode outbound's ca_file loads. Returns 0, or -errno with "KEY:
 * what is wrong" in why (len bytes). Builds with field encryption only. */
int http_proxy_check_host(const struct http_proxy_conf *pc, char *why, size_t len);

/* Stops accepting and closes the listener (unless adopted). Idempotent. */
void http_proxy_stop(struct http_proxy *p);

/* A reload replaced p by next (NULL: removed it): its sessions finish the
 * request they are in on its settings and go on with next's (those between
 * two requests at once), or close. Kept on p, a kept-alive client
 * (outbound: the enclave's application) would go on under routes and an
 * egress_allow the reload took away. Idempotent; while the workers run. */
void http_proxy_retire(struct http_proxy *p, struct http_proxy *next);

/* Drops the caller's reference; the proxy goes when its last session ends. */
void http_proxy_unref(struct http_proxy *p);

const struct http_proxy_conf *http_proxy_conf(const struct http_proxy *p);

/* Whether a keyset file of p's routes, or its ca_file, is not the one p
 * read (rewritten, replaced, gone): a reload then starts p afresh, as for a
 * changed config, so that a key added to the file (rotation) is used, and a
 * CA taken out of ca_file is no longer trusted. */
bool http_proxy_files_changed(const struct http_proxy *p);

/* Appends the Prometheus text of proxies[0..n) (docs/observability.md). */
void http_proxy_render(struct http_proxy *const *proxies, size_t n, struct strbuf *out);

#endif
