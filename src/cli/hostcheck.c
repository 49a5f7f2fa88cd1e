/* hostcheck.c - see hostcheck.h. */
#include "cli/hostcheck.h"

#include <stdbool.h>
#include <stdint.h>

#include "http/proxy.h"
#include "pool/pool.h"
#include "pool/state.h"
#ifdef AIRLOCK_WITH_FIELD
#include "field/field.h"
#endif
#ifdef AIRLOCK_WITH_ATTEST
#include "relay/tls.h"
#endif

#ifdef AIRLOCK_WITH_FIELD
/* The keyset files of proxy i's routes load, as the proxy loads them
 * when it starts (the proxy's own keyset: one error for all its routes). */
static void
keysets_missing(const struct http_proxy_conf *pc, size_t i, const char *path,
                struct config_errors *errs)
{
    char err[FIELD_ERR_MAX];
    bool told = false;

    for (size_t j = 0; j < pc->n_routes; j++) {
        struct field_keyset *ks = NULL;
        const char *file = http_route_keyset(pc, j);
        bool own = pc->routes[j].keyset[0] != '\0';
        if (file == NULL || (!own && told) || field_keyset_load(file, &ks, err) == 0) {
            field_keyset_free(&ks);
            continue;
        }
        if (own) {
            config_error_add(errs, SIZE_MAX, "%s: proxies[%zu].routes[%zu].keyset: %s", path, i, j,
                             err);
        } else {
            config_error_add(errs, SIZE_MAX, "%s: proxies[%zu].keyset: %s", path, i, err);
            told = true;
        }
    }
}
#endif

/* The instances of pools with uids run code their users control: one that
 * can connect to a redis directory without a password could rewrite where
 * the router sends other users; one that can connect to a sentinel without
 * one could have it name a master of its own and read redis's password
 * there (docs/directory.md). The master the sentinels name is a tcp
 * address: always within reach. */
static void
directory_unguarded(const struct config *cfg, size_t i, const char *path,
                    struct config_errors *errs)
{
    const struct dir_conf *dc = &cfg->directory;
    const struct pool_conf *pc = &cfg->pools[i];
    char ep[ENDPOINT_TEXT_MAX] = "the master the sentinels name";

    if (!cfg->has_directory || dc->backend != DIR_REDIS || pool_conf_uids(pc) == 0)
        return;
    if (dc->redis_password_file[0] == '\0' &&
        (dc->n_sentinels > 0 || pool_conf_reaches(pc, &dc->redis))) {
        if (dc->n_sentinels == 0)
            endpoint_format(&dc->redis, ep, sizeof(ep));
        config_error_add(errs, SIZE_MAX,
                         "%s: directory.redis_password_file: expected one: the instances of "
                         "pools[%zu] can reach %s (one could rewrite where the router sends other "
                         "users)",
                         path, i, ep);
    }
    for (size_t j = 0; dc->sentinel_password_file[0] == '\0' && j < dc->n_sentinels; j++) {
        if (!pool_conf_reaches(pc, &dc->sentinels[j]))
            continue;
        endpoint_format(&dc->sentinels[j], ep, sizeof(ep));
        config_error_add(errs, SIZE_MAX,
                         "%s: directory.sentinel_password_file: expected one: the instances of "
                         "pools[%zu] can reach the sentinel %s (one could have it name a master "
                         "of its own and read redis's password there)",
                         path, i, ep);
        return;
    }
}

void
config_host_faults(const struct config *cfg, const char *path, struct config_errors *errs)
{
    char why[1024]; /* room for a path or two */

    for (size_t i = 0; i < cfg->n_pools; i++) {
        directory_unguarded(cfg, i, path, errs);
        if (pool_conf_check_host(&cfg->pools[i], why, sizeof(why)) != 0)
            config_error_add(errs, SIZE_MAX, "%s: pools[%zu].%s", path, i, why);
        if (pool_conf_check_cgroup(&cfg->pools[i], why, sizeof(why)) != 0)
            config_error_add(errs, SIZE_MAX, "%s: pools[%zu].%s", path, i, why);
        if (state_conf_check_host(&cfg->pools[i].state, why, sizeof(why)) != 0)
            config_error_add(errs, SIZE_MAX, "%s: pools[%zu].%s", path, i, why);
    }
#ifdef AIRLOCK_WITH_ATTEST
    for (size_t i = 0; i < cfg->n_relays; i++)
        if (relay_tls_check_host(&cfg->relays[i], why, sizeof(why)) != 0)
            config_error_add(errs, SIZE_MAX, "%s: relays[%zu].%s", path, i, why);
#endif
#ifdef AIRLOCK_WITH_FIELD
    for (size_t i = 0; i < cfg->n_proxies; i++) {
        keysets_missing(&cfg->proxies[i], i, path, errs);
        if (http_proxy_check_host(&cfg->proxies[i], why, sizeof(why)) != 0)
            config_error_add(errs, SIZE_MAX, "%s: proxies[%zu].%s", path, i, why);
    }
#endif
}
