/* control.h - the control socket: `airlock ctl` talks to a running airlock.
 *
 * The server runs on the main loop and answers one command per connection
 * (proto/ctl.h): sessions, instances, drain and assign from the directory
 * (a process without one refuses them), the others through control_ops
 * (the runtime): "OK ..." and a table, or "ERR why", then closes. A malformed, over-long or slow (5
 * s) command gets "ERR" and a close; nothing else is disturbed. */
#ifndef AIRLOCK_CLI_CONTROL_H
#define AIRLOCK_CLI_CONTROL_H

#include "core/loop.h"
#include "core/strbuf.h"
#include "dir/dir.h"
#include "net/endpoint.h"
#include "proto/ctl.h"

#define CONTROL_DEFAULT "unix:/run/airlock/ctl.sock"
#define CONTROL_MODE 0600 /* of the socket file, unless ep->perm.mode says */

struct control;

/* Called once, on the control loop's thread, when a command that
 * control_ops.run left pending is answered: rc 0 (its out holds the
 * answer) or -1 (out holds why it failed, one line). */
typedef void (*control_done_fn)(void *ctx, int rc);

/* What the commands beyond the directory's ask of the process. */
struct control_ops {
    /* Runs verb (reload, conns, stats, config) on the loop's thread,
     * appending the answer (lines ended by '\n') to out. Returns 0 (done),
     * -1 (out holds why it failed, one line), or 1: pending, done(ctx, rc)
     * comes later, and out stays the caller's until then. */
    int (*run)(void *arg, enum ctl_verb verb, struct strbuf *out, control_done_fn done, void *ctx);
    void *arg;
};

/* Listens on ep (a stream endpoint; not hvsock) and serves commands
 * against d (NULL: no directory) and ops, on loop's thread. A unix socket file gets ep->perm (mode
 * CONTROL_MODE by default), and on a unix socket only root, airlock's own
 * user and ep->perm's owner and group members (SO_PEERCRED) may issue
 * commands: others get "ERR permission denied" and a close. Returns it, or
 * NULL with *err = -errno. Free with control_stop(). */
struct control *control_start(struct loop *loop, const struct endpoint *ep, struct dir *d,
                              const struct control_ops *ops, int *err);

/* Closes the listener and every connection; NULL is harmless. A connection
 * waiting for the directory or a pending command is freed when its answer
 * comes. */
void control_stop(struct control *c);

/* The client: sends command (one line, without newline) to the server at
 * ep, prints the answer (without the OK / ERR word) to stdout, or the error
 * to stderr. Returns the exit status: 0 (OK), 1 (ERR or no connection). */
int control_client(const struct endpoint *ep, const char *command);

#endif
