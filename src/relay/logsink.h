/* logsink.h - the host side of log forwarding (one entry of log_sinks:).
 *
 * Listens on an endpoint (vsock:any:PORT in production; an hvsock listener
 * answers the device's CONNECT line like a relay does) and appends the
 * complete lines of every stream to one file opened with O_APPEND. Lines of
 * different streams never mix: only whole lines are written, and all
 * streams are served on one thread. A stream that ends in the middle of a
 * line gets that line completed with LOGSINK_END_MARK; a line longer than
 * line_max is cut and marked like the forwarder does. On a tcp or vsock
 * listener, the lines of a stream from a port any process may bind (1024
 * and above) begin with LOGSINK_UNVERIFIED "[PEER]: " (mark_unverified):
 * airlock's forwarder connects from a reserved one, so a line of an
 * unprivileged process of the sending host (an instance of a pool in the
 * enclave) never passes for airlock's or an app's. logsink_reopen()
 * (SIGHUP) reopens the file after logrotate renamed it. Runs on the loop
 * given to logsink_new(). */
#ifndef AIRLOCK_RELAY_LOGSINK_H
#define AIRLOCK_RELAY_LOGSINK_H

#include "core/loop.h"
#include "core/strbuf.h"
#include "relay/log_conf.h"

/* Completes a line that a broken stream left unfinished. */
#define LOGSINK_END_MARK " [stream ended]"

/* Begins the lines of a stream from an unreserved port. */
#define LOGSINK_UNVERIFIED "unverified"

struct logsink;

/* Opens conf->file and listens on conf->listen. Returns the sink, or NULL
 * with *err = -errno and a logged reason. Free with logsink_free(). */
struct logsink *logsink_new(struct loop *loop, const struct log_sink_conf *conf, int *err);

/* Returns the configuration the sink runs with. */
const struct log_sink_conf *logsink_conf(const struct logsink *s);

/* Opens the file again (by name) and switches to it; on failure the old
 * file stays in use. Returns 0 or -errno. */
int logsink_reopen(struct logsink *s);

/* Appends the airlock_log_sink_* metrics of sinks[0..n) to out (nothing
 * when n is 0). */
void logsink_render(struct logsink *const *sinks, size_t n, struct strbuf *out);

/* Writes out the partial lines of open streams (marked), closes every
 * stream, the listener and the file, and frees s. NULL is harmless. */
void logsink_free(struct logsink *s);

#endif
