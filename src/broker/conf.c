/* conf.c - the key broker's settings; see conf.h. */
#include "broker/conf.h"

#include <string.h>

void
broker_conf_defaults(struct broker_conf *bc)
{
    memset(bc, 0, sizeof(*bc));
    bc->max_connections = 64;
    bc->timeout_ms = 10 * 1000;
    bc->nonce_ttl_ms = 5 * 1000;
    bc->max_message = 64 * 1024;
}

int
broker_conf_check(const struct broker_conf *bc, struct conf_fault *f)
{
    /* a challenge outliving its connection could never be answered */
    if (bc->nonce_ttl_ms > bc->timeout_ms)
        return conf_fault(f, "nonce_ttl", "expected at most timeout (%u ms)", bc->timeout_ms);
    return 0;
}

int
broker_secret_unique(const struct broker_conf *bc, size_t i, struct conf_fault *f)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(bc->secrets[j].name, bc->secrets[i].name) == 0)
            return conf_fault(f, "name", "expected a unique name; secrets[%zu] is already '%s'", j,
                              bc->secrets[i].name);
    return 0;
}

bool
broker_conf_equal(const struct broker_conf *a, const struct broker_conf *b)
{
    struct broker_conf x = *a, y = *b;

    x.secrets = y.secrets = NULL;
    return memcmp(&x, &y, sizeof(x)) == 0 &&
           (a->n_secrets == 0 ||
            memcmp(a->secrets, b->secrets, a->n_secrets * sizeof(a->secrets[0])) == 0);
}
