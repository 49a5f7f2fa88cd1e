/* conf.c - the directory's names and defaults (no thread, no backend: the
 * config parser links this alone). See dir.h. */
#include <stdbool.h>
#include <string.h>

#include "core/units.h"
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

int
dir_conf_check(const struct dir_conf *conf, struct conf_fault *f)
{
    /* a given redis endpoint has a host (tcp) or a path (unix) */
    bool has_redis = conf->redis.host[0] != '\0' || conf->redis.path[0] != '\0';
    bool has_sentinels = conf->n_sentinels > 0;

    if (conf->backend == DIR_REDIS && !has_redis && !has_sentinels)
        return conf_fault(f, "redis",
                          "missing: expected the redis server's endpoint (tcp:HOST:PORT or "
                          "unix:/path), or sentinels: and sentinel_master:");
    if (has_redis && has_sentinels)
        return conf_fault(f, "sentinels",
                          "expected either redis: (one server) or sentinels: (they name the "
                          "master), not both");
    if (has_sentinels != (conf->sentinel_master[0] != '\0'))
        return conf_fault(f, has_sentinels ? "sentinel_master" : "sentinels",
                          "expected sentinels: and sentinel_master: together (the sentinels are "
                          "asked for the master of that name)");
    if (conf->sentinel_password_file[0] != '\0' && !has_sentinels)
        return conf_fault(f, "sentinel_password_file",
                          "expected it with sentinels: only (the sentinels' password)");
    if (conf->redis_user[0] != '\0' && conf->redis_password_file[0] == '\0')
        return conf_fault(f, "redis_password_file",
                          "missing: expected it with redis_user (AUTH needs the user's password)");
    return 0;
}

const char *
dir_conf_redis_only(const struct dir_conf *conf)
{
    return conf->backend == DIR_REDIS ? NULL
                                      : "applies to backend: redis only (the backend is memory)";
}

/* dir_conf_equal() compares each field: a new one must be added there, and
 * this size (LP64 ABIs) with it. */
#if defined(__x86_64__) || defined(__aarch64__)
_Static_assert(sizeof(struct dir_conf) == 5376, "dir_conf_equal(): compare the new field");
#endif

bool
dir_conf_equal(const struct dir_conf *a, const struct dir_conf *b)
{
    if (a->backend != b->backend || !endpoint_conf_equal(&a->redis, &b->redis) ||
        a->n_sentinels != b->n_sentinels ||
        strncmp(a->sentinel_master, b->sentinel_master, sizeof(a->sentinel_master)) != 0 ||
        strncmp(a->redis_user, b->redis_user, sizeof(a->redis_user)) != 0 ||
        strncmp(a->redis_password_file, b->redis_password_file, sizeof(a->redis_password_file)) !=
            0 ||
        strncmp(a->sentinel_password_file, b->sentinel_password_file,
                sizeof(a->sentinel_password_file)) != 0 ||
        a->min_replicas_acked != b->min_replicas_acked ||
        strncmp(a->prefix, b->prefix, sizeof(a->prefix)) != 0 ||
        a->reserve_timeout_ms != b->reserve_timeout_ms || a->session_ttl_ms != b->session_ttl_ms ||
        a->session_max_ms != b->session_max_ms || a->assign_wait_ms != b->assign_wait_ms ||
        a->max_pending_per_client != b->max_pending_per_client ||
        a->pending_share != b->pending_share || strncmp(a->node, b->node, sizeof(a->node)) != 0)
        return false;
    for (size_t i = 0; i < a->n_sentinels && i < DIR_SENTINELS_MAX; i++)
        if (!endpoint_conf_equal(&a->sentinels[i], &b->sentinels[i]))
            return false;
    return true;
}
