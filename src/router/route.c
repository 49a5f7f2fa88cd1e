/* route.c - matching server names to upstreams; see route.h. */
#include "router/route.h"

#include <string.h>

#include "proto/tls_hello.h"

enum parse_result
route_name_parse(const char *s, char *out, const char **why)
{
    size_t len = strlen(s), skip = strncmp(s, "*.", 2) == 0 ? 2 : 0;

    /* the same rules as a name in a ClientHello */
    if (len > TLS_HOST_MAX ||
        tls_host_parse((const uint8_t *)s + skip, len - skip, out + skip, why) != PARSE_OK) {
        *why = "expected a DNS name (letters, digits, inner '-', dots; at most 253 bytes) or "
               "*.name";
        return PARSE_INVALID;
    }
    memcpy(out, s, skip);
    return PARSE_OK;
}

const struct endpoint *
route_match(const struct route_table *t, const char *host)
{
    const struct route *best = NULL;
    size_t best_len = 0;

    if (host == NULL)
        return t->has_default ? &t->def : NULL;
    size_t len = strlen(host);
    for (size_t i = 0; i < t->n; i++) {
        const struct route *r = &t->routes[i];
        if (r->name[0] != '*') {
            if (strcmp(r->name, host) == 0)
                return &r->target;
            continue;
        }
        /* "*.suffix": host ends in ".suffix" with at least one label before */
        size_t slen = strlen(r->name) - 1;
        if (len > slen && slen > best_len && memcmp(host + len - slen, r->name + 1, slen) == 0) {
            best = r;
            best_len = slen;
        }
    }
    if (best != NULL)
        return &best->target;
    return t->has_default ? &t->def : NULL;
}
