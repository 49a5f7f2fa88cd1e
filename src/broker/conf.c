/* conf.c - the key broker's settings; see conf.h. */
#include "broker/conf.h"

#include <string.h>

void
broker_conf_defaults(struct broker_conf *bc)
{
    memset(bc, 0, sizeof(*bc));
    bc->max_connections = 64;
    bc->timeout_ms = 10 * 1000;
    bc->request_timeout_ms = 2 * 1000;
    bc->nonce_ttl_ms = 5 * 1000;
    bc->max_message = 64 * 1024;
}

int
broker_conf_check(const struct broker_conf *bc, struct conf_fault *f)
{
    /* a challenge outliving its connection could never be answered */
    if (bc->nonce_ttl_ms > bc->timeout_ms)
        return conf_fault(f, "nonce_ttl", "expected at most timeout (%u ms)", bc->timeout_ms);
    if (bc->request_timeout_ms > bc->timeout_ms)
        return conf_fault(f, "request_timeout", "expected at most timeout (%u ms)", bc->timeout_ms);
    if (bc->max_per_peer > bc->max_connections)
        return conf_fault(f, "max_per_peer", "expected at most max_connections (%u)",
                          bc->max_connections);
    return 0;
}

unsigned
broker_conf_per_peer(const struct broker_conf *bc)
{
    if (bc->max_per_peer != 0)
        return bc->max_per_peer;
    return bc->max_connections > 1 ? bc->max_connections / 2 : 1;
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

/* broker_conf_equal() compares each field: a new one must be added there,
 * and these sizes (LP64 ABIs) with it. */
#if defined(__x86_64__) || defined(__aarch64__)
_Static_assert(sizeof(struct broker_conf) == 8752, "broker_conf_equal(): compare the new field");
_Static_assert(sizeof(struct broker_secret_conf) == 6128, "broker_conf_equal(): compare it");
#endif

bool
broker_conf_same_start(const struct broker_conf *a, const struct broker_conf *b)
{
    return a->enabled == b->enabled && endpoint_conf_equal(&a->listen, &b->listen) &&
           a->max_connections == b->max_connections && a->max_message == b->max_message;
}

bool
broker_conf_equal(const struct broker_conf *a, const struct broker_conf *b)
{
    if (a->enabled != b->enabled || !endpoint_conf_equal(&a->listen, &b->listen) ||
        strncmp(a->dir, b->dir, sizeof(a->dir)) != 0 ||
        strncmp(a->key_file, b->key_file, sizeof(a->key_file)) != 0 ||
        a->max_connections != b->max_connections || a->max_per_peer != b->max_per_peer ||
        a->timeout_ms != b->timeout_ms || a->request_timeout_ms != b->request_timeout_ms ||
        a->nonce_ttl_ms != b->nonce_ttl_ms || a->max_message != b->max_message ||
        a->n_secrets != b->n_secrets)
        return false;
    for (size_t i = 0; i < a->n_secrets; i++)
        if (strncmp(a->secrets[i].name, b->secrets[i].name, sizeof(a->secrets[i].name)) != 0 ||
            !attest_policy_conf_equal(&a->secrets[i].policy, &b->secrets[i].policy))
            return false;
    return true;
}
