/* template.c - see template.h. */
#include "pool/template.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

static const struct {
    const char *name;
    enum tmpl_var var;
} placeholders[] = {
    {"{port}", TMPL_PORT}, {"{dir}", TMPL_DIR}, {"{instance}", TMPL_INSTANCE},
    {"{user}", TMPL_USER}, {"{uid}", TMPL_UID}, {"{gid}", TMPL_GID},
};

#define N_PLACEHOLDERS (sizeof(placeholders) / sizeof(placeholders[0]))

static const char *
value_of(const struct tmpl_vars *v, enum tmpl_var var)
{
    switch (var) {
    case TMPL_PORT:
        return v->port;
    case TMPL_DIR:
        return v->dir;
    case TMPL_INSTANCE:
        return v->instance;
    case TMPL_USER:
        return v->user;
    case TMPL_UID:
        return v->uid;
    case TMPL_GID:
        return v->gid;
    }
    return NULL;
}

/* The index in placeholders[] of the one p starts with, or N_PLACEHOLDERS. */
static size_t
placeholder_at(const char *p)
{
    size_t k;

    for (k = 0; k < N_PLACEHOLDERS; k++)
        if (strncmp(p, placeholders[k].name, strlen(placeholders[k].name)) == 0)
            break;
    return k;
}

/* The one scanner behind every function here: out may be NULL (check only);
 * *uses collects the placeholders seen. */
static int
scan(const char *tmpl, const struct tmpl_vars *v, char *out, size_t outlen, unsigned *uses,
     const char **why)
{
    size_t n = 0;

    for (const char *p = tmpl; *p != '\0';) {
        const char *val = NULL;
        size_t skip = 1, len = 1;

        if (*p == '{') {
            size_t k = placeholder_at(p);
            if (k == N_PLACEHOLDERS) {
                *why = "unknown placeholder (expected {port}, {dir}, {instance}, {user}, "
                       "{uid} or {gid})";
                return -EINVAL;
            }
            *uses |= placeholders[k].var;
            val = v != NULL ? value_of(v, placeholders[k].var) : NULL;
            if (val == NULL) {
                *why = placeholders[k].var == TMPL_USER ? "{user} is known to hooks only"
                       : placeholders[k].var & (TMPL_UID | TMPL_GID)
                           ? "{uid} and {gid} are known to commands and hooks only"
                           : "placeholder not available here";
                return -EINVAL;
            }
            skip = strlen(placeholders[k].name);
            len = strlen(val);
        }
        if (out != NULL) {
            if (n + len >= outlen) {
                *why = "expanded text too long";
                return -ENAMETOOLONG;
            }
            memcpy(out + n, val != NULL ? val : p, len);
        }
        n += len;
        p += skip;
    }
    if (out != NULL)
        out[n] = '\0';
    return 0;
}

int
tmpl_expand(const char *tmpl, const struct tmpl_vars *v, char *out, size_t outlen, const char **why)
{
    unsigned uses = 0;

    if (outlen == 0) {
        *why = "expanded text too long";
        return -ENAMETOOLONG;
    }
    out[0] = '\0';
    return scan(tmpl, v, out, outlen, &uses, why);
}

int
tmpl_check(const char *tmpl, unsigned allowed, const char **why)
{
    static const char x[] = "x";
    struct tmpl_vars v = {
        .port = allowed & TMPL_PORT ? x : NULL,
        .dir = allowed & TMPL_DIR ? x : NULL,
        .instance = allowed & TMPL_INSTANCE ? x : NULL,
        .user = allowed & TMPL_USER ? x : NULL,
        .uid = allowed & TMPL_UID ? x : NULL,
        .gid = allowed & TMPL_GID ? x : NULL,
    };
    unsigned uses = 0;

    return scan(tmpl, &v, NULL, 0, &uses, why);
}

unsigned
tmpl_uses(const char *tmpl)
{
    static const char x[] = "x";
    struct tmpl_vars v = {x, x, x, x, x, x};
    unsigned uses = 0;
    const char *why;

    scan(tmpl, &v, NULL, 0, &uses, &why);
    return uses;
}

bool
tmpl_match(const char *tmpl, const char *text)
{
    /* a placeholder is "any one character, then any number": the classic
     * wildcard walk, which on a mismatch only goes back to just after the
     * last placeholder, with one more character for it (O(n * m), where
     * trying every split at every placeholder would be exponential) */
    const char *t = tmpl, *s = text, *star_t = NULL, *star_s = NULL;

    while (*s != '\0') {
        size_t k = *t == '{' ? placeholder_at(t) : N_PLACEHOLDERS;
        if (k < N_PLACEHOLDERS) {
            t += strlen(placeholders[k].name);
            star_t = t;
            star_s = ++s;
        } else if (*t != '\0' && *t == *s) {
            t++;
            s++;
        } else if (star_t != NULL) {
            t = star_t;
            s = ++star_s;
        } else {
            return false;
        }
    }
    return *t == '\0';
}
