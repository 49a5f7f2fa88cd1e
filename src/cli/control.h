/* control.h - the control socket: `airlock ctl` talks to a running airlock.
 *
 * The server runs on the main loop and answers one command per connection
 * (proto/ctl.h) from the directory: "OK ..." and a table, or "ERR why",
 * then closes. A malformed, over-long or slow (5 s) command gets "ERR" and a
 * close; nothing else is disturbed. */
#ifndef AIRLOCK_CLI_CONTROL_H
#define AIRLOCK_CLI_CONTROL_H

#include "core/loop.h"
#include "dir/dir.h"
#include "net/endpoint.h"

#define CONTROL_DEFAULT "unix:/run/airlock/ctl.sock"
#define CONTROL_MODE 0600 /* of the socket file, unless ep->perm.mode says */

struct control;

/* Listens on ep (a stream endpoint; not hvsock) and serves commands
 * against d, on loop's thread. A unix socket file gets ep->perm (mode
 * CONTROL_MODE by default), and on a unix socket only root, airlock's own
 * user and ep->perm's owner and group members (SO_PEERCRED) may issue
 * commands: others get "ERR permission denied" and a close. Returns it, or
 * NULL with *err = -errno. Free with control_stop(). */
struct control *control_start(struct loop *loop, const struct endpoint *ep, struct dir *d,
                              int *err);

/* Closes the listener and every connection; NULL is harmless. A connection
 * waiting for the directory is freed when its answer comes. */
void control_stop(struct control *c);

/* The client: sends command (one line, without newline) to the server at
 * ep, prints the answer (without the OK / ERR word) to stdout, or the error
 * to stderr. Returns the exit status: 0 (OK), 1 (ERR or no connection). */
int control_client(const struct endpoint *ep, const char *command);

#endif
