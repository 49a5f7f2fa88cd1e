/* route.c - matching server names to upstreams; see route.h. */
#include "router/route.h"

#include <errno.h>
#include <stdlib.h>
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

/* The directory's key for host: its first label, when the rest is the
 * domain (or, without a domain, anything). Returns 1 and fills key, or 0. */
static int
user_key(const struct route_table *t, const char *host, char *key)
{
    const char *dot = strchr(host, '.');
    size_t len = dot != NULL ? (size_t)(dot - host) : 0;

    if (dot == NULL || len >= DIR_KEY_MAX)
        return 0;
    if (t->domain[0] != '\0' && strcmp(dot + 1, t->domain) != 0)
        return 0;
    memcpy(key, host, len);
    key[len] = '\0';
    return 1;
}

enum route_kind
route_pick(const struct route_table *t, const char *host, const struct endpoint **target, char *key)
{
    const struct route *best = NULL;
    size_t best_len = 0, len = host != NULL ? strlen(host) : 0;

    for (size_t i = 0; host != NULL && i < t->n; i++) {
        const struct route *r = &t->routes[i];
        if (r->name[0] != '*') {
            if (strcmp(r->name, host) == 0) {
                *target = &r->target;
                return ROUTE_TARGET;
            }
            continue;
        }
        /* "*.suffix": host ends in ".suffix" with at least one label before */
        size_t slen = strlen(r->name) - 1;
        if (len > slen && slen > best_len && memcmp(host + len - slen, r->name + 1, slen) == 0) {
            best = r;
            best_len = slen;
        }
    }
    if (best != NULL) {
        *target = &best->target;
        return ROUTE_TARGET;
    }
    if (host != NULL && t->directory[0] != '\0' && user_key(t, host, key))
        return ROUTE_DIRECTORY;
    if (!t->has_default)
        return ROUTE_NONE;
    *target = &t->def;
    return ROUTE_TARGET;
}

int
route_table_add(struct route_table *t, const struct route *r)
{
    struct route *v = realloc(t->routes, (t->n + 1) * sizeof(*v));

    if (v == NULL)
        return -ENOMEM;
    v[t->n++] = *r;
    t->routes = v;
    return 0;
}

int
route_table_own(struct route_table *dst)
{
    const struct route *src = dst->routes;

    if (dst->n == 0)
        return 0;
    if ((dst->routes = malloc(dst->n * sizeof(*src))) == NULL) {
        dst->n = 0;
        return -ENOMEM;
    }
    memcpy(dst->routes, src, dst->n * sizeof(*src));
    return 0;
}

bool
route_table_equal(const struct route_table *a, const struct route_table *b)
{
    struct route_table x = *a, y = *b;

    x.routes = y.routes = NULL;
    return memcmp(&x, &y, sizeof(x)) == 0 &&
           (a->n == 0 || memcmp(a->routes, b->routes, a->n * sizeof(*a->routes)) == 0);
}

void
route_table_free(struct route_table *t)
{
    free(t->routes);
    t->routes = NULL;
    t->n = 0;
}
