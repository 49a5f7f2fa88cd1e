/* route.h - the router's table: which upstream a TLS server name goes to.
 *
 * A name is matched, lowercase, against
 *   1. the exact names of the table,
 *   2. its "*.suffix" names, the longest suffix first ("*.example.com"
 *      matches "a.example.com" and "a.b.example.com", not "example.com"),
 *   3. the directory, when the table names a pool: the user key is the
 *      name's first label; with a domain, the name must be exactly
 *      "<key>.<domain>" ("alice.grid.example" with domain grid.example),
 *      without one any name of two labels or more will do,
 *   4. the default target, which also takes connections without SNI.
 * Pure: no syscalls, no allocation. */
#ifndef AIRLOCK_ROUTER_ROUTE_H
#define AIRLOCK_ROUTER_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "dir/dir.h"
#include "net/endpoint.h"
#include "proto/parse.h"
#include "proto/tls_hello.h"

#define ROUTES_MAX 64

struct route {
    char name[TLS_HOST_MAX + 1]; /* lowercase; "*.suffix" for a wildcard */
    struct endpoint target;
};

struct route_table {
    struct route routes[ROUTES_MAX];
    size_t n;
    bool has_default;
    struct endpoint def;
    char directory[DIR_NAME_MAX];  /* the pool of the directory route; "" for none */
    char domain[TLS_HOST_MAX + 1]; /* lowercase; "" for any */
};

enum route_kind {
    ROUTE_NONE,      /* nothing matches and there is no default */
    ROUTE_TARGET,    /* a fixed target */
    ROUTE_DIRECTORY, /* ask the directory for the key's instance */
};

/* Checks the route name s (a DNS host name, or "*." and one) and writes it
 * lowercased to out (TLS_HOST_MAX + 1 bytes). Returns PARSE_OK, or
 * PARSE_INVALID with *why naming what was expected. */
enum parse_result route_name_parse(const char *s, char *out, const char **why);

/* Picks the route for host (a lowercase name as tls_hello gives it, or NULL
 * for a ClientHello without SNI). ROUTE_TARGET: *target points into t.
 * ROUTE_DIRECTORY: key (DIR_KEY_MAX bytes) holds the user key, for pool
 * t->directory. ROUTE_NONE: refuse. */
enum route_kind route_pick(const struct route_table *t, const char *host,
                           const struct endpoint **target, char *key);

#endif
