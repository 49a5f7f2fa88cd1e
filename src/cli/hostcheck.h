/* hostcheck.h - what a config file alone cannot tell, checked on this
 * host before anything of it is applied: by airlock check and run, and by
 * a reload (which is refused, the running config kept, when one fails). */
#ifndef AIRLOCK_CLI_HOSTCHECK_H
#define AIRLOCK_CLI_HOSTCHECK_H

#include "cli/config.h"

/* The run-as users of cfg's pools exist here and their uids are nobody's,
 * airlock has the capability a pool with uids needs to find who squats its
 * ports, a redis directory those uids can reach has passwords, their state
 * stores are directories; the files of tls: and verify: and
 * the proxies' keysets and outbound CA files load. Adds to errs an error
 * "PATH: BLOCK[i].KEY: what is wrong" for each fault; path names the file
 * in them. */
void config_host_faults(const struct config *cfg, const char *path, struct config_errors *errs);

#endif
