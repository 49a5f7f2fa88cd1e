/* template.h - argv and endpoint templates of pools: "{port}", "{dir}",
 * "{instance}", (argvs only) "{uid}" and "{gid}" and (hooks only) "{user}"
 * are replaced by the instance's values; any other '{' is an error. Pure:
 * no syscalls, no allocation. */
#ifndef AIRLOCK_POOL_TEMPLATE_H
#define AIRLOCK_POOL_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

/* The placeholders, as bits of an `allowed` mask. */
enum tmpl_var {
    TMPL_PORT = 1 << 0,
    TMPL_DIR = 1 << 1,
    TMPL_INSTANCE = 1 << 2,
    TMPL_USER = 1 << 3,
    TMPL_UID = 1 << 4, /* the uid and gid the instance runs as */
    TMPL_GID = 1 << 5,
};

/* The values substituted; NULL for a placeholder that is not allowed. */
struct tmpl_vars {
    const char *port, *dir, *instance, *user, *uid, *gid;
};

/* Writes tmpl with its placeholders replaced into out (outlen bytes, always
 * NUL-terminated when outlen > 0). Returns 0; -EINVAL with *why set to a
 * static message when tmpl holds an unknown placeholder or one whose value
 * is NULL; -ENAMETOOLONG when out is too small. */
int tmpl_expand(const char *tmpl, const struct tmpl_vars *v, char *out, size_t outlen,
                const char **why);

/* Checks tmpl like tmpl_expand() would with the placeholders of `allowed`
 * (an OR of enum tmpl_var). Returns 0, or -EINVAL with *why set. */
int tmpl_check(const char *tmpl, unsigned allowed, const char **why);

/* Returns the placeholders tmpl uses (an OR of enum tmpl_var). */
unsigned tmpl_uses(const char *tmpl);

/* Whether text is what tmpl expands to for some values of its placeholders,
 * each at least one character long ("{user}.db" matches "dave.db", not
 * ".db"). */
bool tmpl_match(const char *tmpl, const char *text);

#endif
