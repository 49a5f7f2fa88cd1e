/* state.c - smartgrid-state, the pool's provisioning hooks for smartgrid
 * (docs/pool.md, "Hooks contract"): a user's files between the store and an
 * instance directory, for a pool with hooks rather than airlock's built-in
 * `state:` (and for the tests of the hooks).
 *
 *   smartgrid-state fetch STORE USER DIR
 *       STORE/USER.crt and STORE/USER.key (when present), then STORE/USER.db
 *       -> DIR, same names, owned by DIR's owner (the instance's uid), 0600
 *   smartgrid-state store STORE USER DIR
 *       DIR/USER.db -> STORE/USER.db (only that file)
 *
 * The hook runs as root, but DIR belongs to the instance, whose user may
 * run anything in it. The copies are airlock's own built-in provisioning
 * (src/pool/state.c), with the same guarantees: nothing in DIR is opened
 * by a path that could lead elsewhere, a file is written under a fresh
 * O_EXCL name and complete before it is renamed into place, a file is read
 * only when it is a regular file of the instance's uid with one link, and
 * stored back only up to the defaults of state.max_file_size (256 MiB) and
 * max_session_size (1 GiB). The database stays encrypted all the way: the
 * key never reaches this host.
 * Exit status: 0 done, 1 refused or failed (a line on stderr says why),
 * 2 usage. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pool/state.h"

static const char *prog = "smartgrid-state";

/* The smartgrid files, as a pool's state: block would name them. */
static void
smartgrid_files(struct state_conf *sc, const char *store)
{
    static const char *const optional[] = {"{user}.crt", "{user}.key"};

    snprintf(sc->store, sizeof(sc->store), "%s", store);
    for (size_t i = 0; i < sizeof(optional) / sizeof(optional[0]); i++)
        snprintf(sc->fetch_optional.arg[sc->fetch_optional.n++], CONF_ARG_MAX, "%s", optional[i]);
    /* the database last: its arrival is the server's signal that the
     * user's state is complete */
    snprintf(sc->fetch.arg[sc->fetch.n++], CONF_ARG_MAX, "{user}.db");
    snprintf(sc->store_back.arg[sc->store_back.n++], CONF_ARG_MAX, "{user}.db");
    /* as a state: block without the keys */
    sc->max_file_size = STATE_FILE_SIZE_DEFAULT;
    sc->max_session_size = STATE_SESSION_SIZE_DEFAULT;
}

int
main(int argc, char **argv)
{
    static struct state_conf sc;
    char why[512];
    int err = 0;

    if (argc != 5 || (strcmp(argv[1], "fetch") != 0 && strcmp(argv[1], "store") != 0)) {
        fprintf(stderr, "usage: %s fetch|store STORE USER DIR\n", prog);
        return 2;
    }
    smartgrid_files(&sc, argv[2]);
    struct state_xfer *x =
        state_xfer_new(&sc, strcmp(argv[1], "fetch") == 0 ? STATE_FETCH : STATE_STORE, argv[3],
                       argv[4], &err, why, sizeof(why));
    if (x == NULL) {
        fprintf(stderr, "%s: %s\n", prog, why);
        return err == -EINVAL ? 2 : 1;
    }
    int rc = state_xfer_run(x);
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", prog, state_xfer_why(x));
    state_xfer_free(x);
    return rc == 0 ? 0 : 1;
}
