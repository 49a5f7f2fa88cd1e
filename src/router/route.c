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

/* ---- the index: FNV-1a over a name's bytes taken from its end, so that
 * one pass from the right over a host gives the hash of each of its
 * suffixes (the wildcards' keys) on the way to the hash of the whole. */

#define HASH_START 2166136261u

static uint32_t
hash_step(uint32_t h, unsigned char c)
{
    return (h ^ c) * 16777619u;
}

static uint32_t
name_hash(const char *s)
{
    uint32_t h = HASH_START;

    for (size_t i = strlen(s); i-- > 0;)
        h = hash_step(h, (unsigned char)s[i]);
    return h;
}

/* The first route (in order of adding) whose name is "*" followed by rest
 * when wild, or rest itself when not; h is that name's hash. */
static const struct route *
index_find(const struct route_table *t, uint32_t h, bool wild, const char *rest)
{
    size_t mask = t->n_slots - 1;

    if (t->slots == NULL)
        return NULL;
    for (size_t i = h & mask; t->slots[i].pos != 0; i = (i + 1) & mask) {
        const struct route *r = &t->routes[t->slots[i].pos - 1];
        const char *name = r->name;
        if (t->slots[i].hash != h || (wild && *name++ != '*'))
            continue;
        if (strcmp(name, rest) == 0)
            return r;
    }
    return NULL;
}

/* Puts route pos (hash h) in the first free slot of its probe sequence. */
static void
index_put(struct route_slot *slots, size_t n_slots, uint32_t pos, uint32_t h)
{
    size_t i = h & (n_slots - 1);

    while (slots[i].pos != 0)
        i = (i + 1) & (n_slots - 1);
    slots[i] = (struct route_slot){.pos = pos + 1, .hash = h};
}

/* Makes room in t's index for one more route: at most half full, so that
 * probe sequences stay short. Returns 0 or -ENOMEM (t unchanged). */
static int
index_reserve(struct route_table *t)
{
    size_t n_slots = t->n_slots != 0 ? t->n_slots : 16;
    struct route_slot *slots;

    if (2 * (t->n + 1) <= t->n_slots)
        return 0;
    while (2 * (t->n + 1) > n_slots)
        n_slots *= 2;
    if ((slots = calloc(n_slots, sizeof(*slots))) == NULL)
        return -ENOMEM;
    /* the old slots hold each name's first route, once: the order of re-putting is free */
    for (size_t i = 0; i < t->n_slots; i++)
        if (t->slots[i].pos != 0)
            index_put(slots, n_slots, t->slots[i].pos - 1, t->slots[i].hash);
    free(t->slots);
    t->slots = slots;
    t->n_slots = n_slots;
    return 0;
}

const struct route *
route_table_find(const struct route_table *t, const char *name)
{
    return index_find(t, name_hash(name), false, name);
}

/* The static route for host: its exact name, else its longest "*.suffix";
 * NULL for none. */
static const struct route *
static_pick(const struct route_table *t, const char *host)
{
    const struct route *best = NULL, *r;
    uint32_t h = HASH_START;

    for (size_t i = strlen(host); i-- > 0;) {
        h = hash_step(h, (unsigned char)host[i]);
        /* "*.suffix" takes a host that ends in ".suffix" with at least one
         * byte before; from the right, the last one found is the longest */
        if (host[i] == '.' && i > 0 && t->n_wild > 0 &&
            (r = index_find(t, hash_step(h, '*'), true, host + i)) != NULL)
            best = r;
    }
    /* an exact name comes first (a host "*.x" that finds the wildcard "*.x"
     * here found it as its longest suffix too) */
    r = index_find(t, h, false, host);
    return r != NULL ? r : best;
}

enum route_kind
route_pick(const struct route_table *t, const char *host, const struct endpoint **target, char *key)
{
    const struct route *r = host != NULL ? static_pick(t, host) : NULL;

    if (r != NULL) {
        *target = &r->target;
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
    uint32_t h = name_hash(r->name);

    if (t->n == t->cap) {
        size_t cap = t->cap != 0 ? 2 * t->cap : 16;
        struct route *v = realloc(t->routes, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        t->routes = v;
        t->cap = cap;
    }
    if (index_reserve(t) != 0)
        return -ENOMEM;
    /* a name already there keeps its first route, as a scan in order would */
    if (index_find(t, h, false, r->name) == NULL)
        index_put(t->slots, t->n_slots, (uint32_t)t->n, h);
    t->routes[t->n++] = *r;
    t->n_wild += r->name[0] == '*';
    return 0;
}

int
route_table_own(struct route_table *dst)
{
    const struct route *routes = dst->routes;
    const struct route_slot *slots = dst->slots;

    /* nothing of the original's is freed here */
    dst->routes = NULL;
    dst->slots = NULL;
    if (dst->n == 0) {
        route_table_free(dst);
        return 0;
    }
    dst->routes = malloc(dst->n * sizeof(*routes));
    dst->slots = malloc(dst->n_slots * sizeof(*slots));
    if (dst->routes == NULL || dst->slots == NULL) {
        route_table_free(dst);
        return -ENOMEM;
    }
    memcpy(dst->routes, routes, dst->n * sizeof(*routes));
    memcpy(dst->slots, slots, dst->n_slots * sizeof(*slots));
    dst->cap = dst->n;
    return 0;
}

bool
route_table_equal(const struct route_table *a, const struct route_table *b)
{
    /* the index follows from the routes, the capacities from the history;
     * names are compared as text: what follows a name's NUL (and the
     * padding after it) is whatever its writer's buffer held */
    if (a->n != b->n || a->has_default != b->has_default ||
        !endpoint_conf_equal(&a->def, &b->def) || strcmp(a->directory, b->directory) != 0 ||
        strcmp(a->domain, b->domain) != 0)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->routes[i].name, b->routes[i].name) != 0 ||
            !endpoint_conf_equal(&a->routes[i].target, &b->routes[i].target))
            return false;
    return true;
}

void
route_table_free(struct route_table *t)
{
    free(t->routes);
    free(t->slots);
    t->routes = NULL;
    t->slots = NULL;
    t->n = t->cap = t->n_slots = t->n_wild = 0;
}
