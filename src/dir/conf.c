/* conf.c - the directory's names and defaults (no thread, no backend: the
 * config parser links this alone). See dir.h. */
#include <string.h>

#include "dir/dir.h"

const char *
dir_state_name(enum dir_state s)
{
    static const char *const names[DIR_STATE_COUNT] = {
        [DIR_STARTING] = "starting", [DIR_IDLE] = "idle",         [DIR_RESERVED] = "reserved",
        [DIR_ACTIVE] = "active",     [DIR_DRAINING] = "draining", [DIR_STOPPED] = "stopped",
    };

    return (unsigned)s < DIR_STATE_COUNT ? names[s] : "?";
}

void
dir_conf_defaults(struct dir_conf *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->backend = DIR_MEMORY;
    strcpy(conf->prefix, "airlock:");
    conf->reserve_timeout_ms = 10 * 1000;
    conf->session_ttl_ms = 60 * 60 * 1000;
    conf->assign_wait_ms = 5 * 1000;
    conf->max_pending_per_client = 2;
    conf->pending_share = 75;
}
