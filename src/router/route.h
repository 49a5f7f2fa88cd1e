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
 * The table keeps a hash index of its names as routes are added, so that a
 * pick costs the same with ten routes or a hundred thousand: one lookup of
 * the name, and one per label boundary for the wildcards (looked up by
 * suffix in the same index, not scanned: a table may hold a wildcard per
 * tenant). route_pick() is pure: no syscalls, no allocation. */
#ifndef AIRLOCK_ROUTER_ROUTE_H
#define AIRLOCK_ROUTER_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dir/dir.h"
#include "net/endpoint.h"
#include "proto/parse.h"
#include "proto/tls_hello.h"

#define ROUTES_MAX 100000 /* a sanity bound: one per user is the Trivial deployment */

struct route {
    char name[TLS_HOST_MAX + 1]; /* lowercase; "*.suffix" for a wildcard */
    struct endpoint target;
};

/* A slot of the index: the route's position + 1 (0: empty) and its name's
 * hash, compared before the name. */
struct route_slot {
    uint32_t pos;
    uint32_t hash;
};

/* The routes and their index live on the heap: whoever holds the table
 * frees them with route_table_free() (config_free() for a config, the relay
 * for its copy). A struct copy shares them: see route_table_own(). */
struct route_table {
    struct route *routes; /* n entries (room for cap), or NULL */
    size_t n;
    size_t cap;
    struct route_slot *slots; /* open addressing, linear probing; n_slots a power of 2
                                 at least twice n, or NULL when n is 0 */
    size_t n_slots;
    size_t n_wild; /* how many names are "*.suffix" */
    bool has_default;
    struct endpoint def;
    char directory[DIR_NAME_MAX];  /* the pool of the directory route; "" for none */
    char domain[TLS_HOST_MAX + 1]; /* lowercase; "" for any */
};

/* Appends a copy of r to t: amortized O(1) (the array and the index grow
 * geometrically). Of two routes with the same name, the first added is the
 * one picked. Returns 0 or -ENOMEM (t unchanged). */
int route_table_add(struct route_table *t, const struct route *r);

/* Returns t's first route named exactly name ("*.suffix" for a wildcard,
 * compared as text), or NULL. The route belongs to t. */
const struct route *route_table_find(const struct route_table *t, const char *name);

/* Makes dst's routes and index a copy of its own (dst a struct copy of a
 * table whose routes someone else owns). Returns 0, or -ENOMEM with dst
 * holding none. */
int route_table_own(struct route_table *dst);

/* Returns true when a and b hold the same routes, in the same order, and
 * settings (their capacities aside; names and the domain compared as text,
 * whatever follows their NUL). */
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
