/* runtime.h - the running process: workers, relays, metrics, signals.
 *
 * SIGHUP reloads the config file: added, changed and removed relays take
 * effect at once and established connections stay up. SIGTERM or SIGINT
 * stop accepting and drain until drain_timeout; a second one stops now. */
#ifndef AIRLOCK_CLI_RUNTIME_H
#define AIRLOCK_CLI_RUNTIME_H

#include "cli/config.h"

/* Runs cfg until stopped. path is the file to reload on SIGHUP (NULL: the
 * config came from the command line and SIGHUP only logs). Takes ownership
 * of cfg. Returns the process exit status. */
int runtime_run(struct config *cfg, const char *path);

#endif
