/* state.h - built-in provisioning (a pool's state:, docs/pool.md): a user's
 * files copied between the store and an instance directory by airlock
 * itself, on the pool env's threads (pool_env_run()), with no process
 * started.
 *
 *   fetch  STORE/NAME -> DIR/NAME for each name of fetch_optional (those
 *          the store has), then of fetch, in order (the last one's arrival
 *          tells the instance that its user's state is complete); owned by
 *          DIR's owner (the instance's uid and gid), mode 0600
 *   store  DIR/NAME -> STORE/NAME for each name of store_back; owned by
 *          airlock, mode 0600, synced; at most max_file_size bytes (a
 *          larger file is refused before the copy, and the copy of one that
 *          grows stops at the bound: the store never keeps more), and all
 *          of them together at most max_session_size bytes (counted as
 *          copied)
 *
 * Each way is all or nothing: every file is copied to a temporary first,
 * and only when all are are they renamed into place, in the order of the
 * names; a refusal or a failure of any removes every temporary, so that the
 * destination keeps its previous set whole (docs/pool.md, "All or nothing").
 *
 * DIR belongs to the instance, whose user may run anything in it. So DIR is
 * opened once with O_NOFOLLOW (its path is airlock's: the pool's base) and
 * everything in it through that fd; a file is written under a fresh random
 * name created with O_EXCL (never through something planted there), owned
 * by its reader and complete before it is renamed into place; a file of DIR
 * is read only when it is a regular file of DIR's owner with one link,
 * opened with O_NOFOLLOW | O_NONBLOCK (a planted link, a hard link, a fifo
 * are refused). Files are copied, never moved (reflinked where the
 * filesystem can, FICLONE, else copy_file_range()): the store always keeps
 * the user's last stored state. A name must expand to a plain file name
 * (no '/', not starting with '.'). */
#ifndef AIRLOCK_POOL_STATE_H
#define AIRLOCK_POOL_STATE_H

#include "pool/conf.h"

struct state_xfer;

/* Checks that sc's store (when state: is used) is a directory airlock can
 * open here that only airlock may change (privdir_check(): its owner, mode
 * and parents). Returns 0, or -errno with why saying "state.store: ...". */
int state_conf_check_host(const struct state_conf *sc, char *why, size_t len);

/* Removes from sc's store the temporaries that a store-back cut short (a
 * crash, kill -9) left: regular files of airlock's uid named
 * ".NAME.<16 hex digits>" with NAME of the shape of one of sc's names
 * (tmpl_match()), never through a link, nothing else. Run it where no
 * store-back of this process runs at the same time (ENV_AFTER: a temporary
 * being written would go too). Returns 0 or the first -errno,
 * with *removed the count removed. */
int state_store_sweep(const struct state_conf *sc, unsigned *removed);

/* Takes store (a pool's state.store) for one pool of one airlock: an
 * exclusive flock(2) of the directory, which another pool of this process
 * or another process cannot take while it is held; or (shared: the pool of
 * one node of a cluster, whose directory keeps each user on one node at a
 * time) a shared one, which the other nodes take too, and which excludes
 * an exclusive one. Returns the fd that holds it (close it to release), or
 * -EBUSY (held elsewhere) or -errno, with why saying "state.store: ...". */
int state_store_lock(const char *store, bool shared, char *why, size_t len);

enum state_way { STATE_FETCH, STATE_STORE };

/* Prepares one transfer of user's files as sc says, with the instance
 * directory dir (opened here). Returns it, or NULL with *err = -errno
 * (-EINVAL: a name is not a plain file name) and a line in why. Run it with
 * state_xfer_run(), free it with state_xfer_free(). */
struct state_xfer *state_xfer_new(const struct state_conf *sc, enum state_way way, const char *user,
                                  const char *dir, int *err, char *why, size_t whylen);

/* Does the transfer (blocking: on an env thread). x is a struct
 * state_xfer. Returns 0, or -errno with state_xfer_why() telling what: then
 * nothing was renamed into place, unless a rename itself failed (the names
 * before it were). */
int state_xfer_run(void *x);

/* What made state_xfer_run() fail ("" when it did not). */
const char *state_xfer_why(const struct state_xfer *x);

/* Closes and frees x (a struct state_xfer); NULL is harmless. */
void state_xfer_free(void *x);

#endif
