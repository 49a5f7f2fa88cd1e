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

#define ROUTES_MAX 100000 /* a sanity bound: one per user is the Trivial deployment */

struct route {
    char name[TLS_HOST_MAX + 1]; /* lowercase; "*.suffix" for a wildcard */
    struct endpoint target;
};

/* The routes live on the heap: whoever holds the table frees them with
 * route_table_free() (config_free() for a config, the relay for its copy). */
struct route_table {
    struct route *routes; /* n entries, or NULL */
    size_t n;
    bool has_default;
    struct endpoint def;
    char directory[DIR_NAME_MAX];  /* the pool of the directory route; "" for none */
    char domain[TLS_HOST_MAX + 1]; /* lowercase; "" for any */
};

/* Appends a copy of r to t. Returns 0 or -ENOMEM (t unchanged). */
int route_table_add(struct route_table *t, const struct route *r);

/* Makes dst's routes a copy of its own (dst a struct copy of a table
 * whose routes someone else owns). Returns 0, or -ENOMEM with dst holding
 * none. */
int route_table_own(struct route_table *dst);

/* Returns true when a and b hold the same routes and settings. */
bool route_table_equal(const struct route_table *a, const struct route_table *b);

/* Frees t's routes; t is then empty. Idempotent. */
void route_table_free(struct route_table *t);

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
