/* path.c - the encrypt paths of a route (docs/field-encryption.md "Rules"):
 * parsed once at config time into steps, and the automaton that the JSON
 * rewriter runs them as (one bit per rule and number of steps matched).
 *
 *   path  = "$" *step
 *   step  = "." name / ".*" / "[" sel "]" / ".." ( name / "*" / "[" sel "]" )
 *   sel   = "*" / index / "'" chars "'" / DQUOTE chars DQUOTE   (\\ \' \" escapes)
 *   name  = 1*( ALPHA / DIGIT / "_" / "-" / "$" / UTF-8 beyond ASCII ) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "field/field_int.h"

#define INDEX_MAX 0x7fffffffu

struct path_parser {
    const char *s;
    size_t i, len;
    struct field_step *steps; /* [FIELD_SEGS_MAX] */
    size_t n;
    const char *why;
};

static bool
name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '$' || c >= 0x80;
}

static int
stop(struct path_parser *pp, const char *why)
{
    pp->why = why;
    return -1;
}

int64_t
field_name_index(const char *name, size_t n)
{
    int64_t v = 0;

    if (n == 0 || n > 18 || (name[0] == '0' && n > 1))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

/* Appends a step; name[0..len) is copied (NUL-terminated). */
static int
add_step(struct path_parser *pp, enum field_step_kind kind, bool descent, const char *name,
         size_t len, uint32_t index)
{
    if (pp->n == FIELD_SEGS_MAX)
        return stop(pp, "too many steps (at most 32)");
    struct field_step *st = &pp->steps[pp->n];
    *st = (struct field_step){.kind = kind, .descent = descent, .index = index};
    if (kind == STEP_NAME) {
        if ((st->name = malloc(len + 1)) == NULL)
            return stop(pp, "out of memory");
        memcpy(st->name, name, len);
        st->name[len] = '\0';
        st->name_len = len;
        st->name_index = field_name_index(name, len);
    }
    pp->n++;
    return 0;
}

/* A quoted name at s[i] (the opening quote), escapes resolved in place of
 * a copy: name chars are copied to buf, which has room for the path. */
static int
quoted(struct path_parser *pp, char *buf, size_t *blen)
{
    char q = pp->s[pp->i++];
    size_t n = 0;
    for (;;) {
        if (pp->i == pp->len)
            return stop(pp, "unterminated quoted name");
        char c = pp->s[pp->i++];
        if (c == q)
            break;
        if (c == '\\') {
            if (pp->i == pp->len ||
                (pp->s[pp->i] != '\\' && pp->s[pp->i] != '\'' && pp->s[pp->i] != '"'))
                return stop(pp, "only \\\\, \\' and \\\" escapes in a quoted name");
            c = pp->s[pp->i++];
        } else if ((unsigned char)c < 0x20) {
            return stop(pp, "control character in a quoted name");
        }
        buf[n++] = c;
    }
    *blen = n;
    return 0;
}

static int
bracket(struct path_parser *pp, bool descent)
{
    pp->i++; /* '[' */
    if (pp->i == pp->len)
        return stop(pp, "expected *, an index or a quoted name after '['");
    char c = pp->s[pp->i];
    int rc;
    if (c == '*') {
        pp->i++;
        rc = add_step(pp, STEP_ANY, descent, NULL, 0, 0);
    } else if (c >= '0' && c <= '9') {
        uint64_t v = 0;
        size_t start = pp->i;
        while (pp->i < pp->len && pp->s[pp->i] >= '0' && pp->s[pp->i] <= '9') {
            v = v * 10 + (uint64_t)(pp->s[pp->i++] - '0');
            if (v > INDEX_MAX)
                return stop(pp, "index past 2147483647");
        }
        if (c == '0' && pp->i - start > 1)
            return stop(pp, "index with a leading zero");
        rc = add_step(pp, STEP_INDEX, descent, NULL, 0, (uint32_t)v);
    } else if (c == '\'' || c == '"') {
        char *buf = malloc(pp->len + 1);
        size_t n = 0;
        if (buf == NULL)
            return stop(pp, "out of memory");
        rc = quoted(pp, buf, &n);
        if (rc == 0)
            rc = add_step(pp, STEP_NAME, descent, buf, n, 0);
        free(buf);
    } else if (c == '-') {
        return stop(pp, "negative indexes are not supported");
    } else {
        return stop(pp, "expected *, an index or a quoted name after '['");
    }
    if (rc != 0)
        return rc;
    if (pp->i == pp->len || pp->s[pp->i] != ']')
        return stop(pp, "expected ']'");
    pp->i++;
    return 0;
}

/* After "." or "..": a name or "*" (and after ".." also "[...]"). */
static int
dotted(struct path_parser *pp, bool descent)
{
    if (pp->i < pp->len && pp->s[pp->i] == '*') {
        pp->i++;
        return add_step(pp, STEP_ANY, descent, NULL, 0, 0);
    }
    if (descent && pp->i < pp->len && pp->s[pp->i] == '[')
        return bracket(pp, descent);
    size_t start = pp->i;
    while (pp->i < pp->len && name_char((unsigned char)pp->s[pp->i]))
        pp->i++;
    if (pp->i == start)
        return stop(pp, descent ? "expected a name, * or [ after '..'"
                                : "expected a name or * after '.'");
    return add_step(pp, STEP_NAME, descent, pp->s + start, pp->i - start, 0);
}

static void
steps_free(struct field_step *steps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(steps[i].name);
}

/* Parses path into steps[FIELD_SEGS_MAX]: 0 and *n, or -EINVAL with err
 * (where and what), -ENOMEM. On failure no step is left allocated. */
static int
path_parse(const char *path, struct field_step *steps, size_t *n, char *err)
{
    struct path_parser pp = {.s = path, .len = strlen(path), .steps = steps};
    int rc = -1;

    if (pp.len > FIELD_PATH_MAX)
        stop(&pp, "longer than 1024 characters");
    else if (field_utf8_check((const uint8_t *)path, pp.len) != 0)
        stop(&pp, "not UTF-8");
    else if (pp.len == 0 || path[0] != '$')
        stop(&pp, "a path starts with '$'");
    else
        rc = 0;
    for (pp.i = 1; rc == 0 && pp.i < pp.len;) {
        if (path[pp.i] == '[') {
            rc = bracket(&pp, false);
        } else if (path[pp.i] == '.') {
            bool descent = pp.i + 1 < pp.len && path[pp.i + 1] == '.';
            pp.i += descent ? 2 : 1;
            rc = dotted(&pp, descent);
        } else {
            rc = stop(&pp, "expected '.' or '['");
        }
    }
    if (rc == 0) {
        *n = pp.n;
        return 0;
    }
    steps_free(steps, pp.n);
    snprintf(err, FIELD_ERR_MAX, "at character %zu: %s", pp.i + 1, pp.why);
    return strcmp(pp.why, "out of memory") == 0 ? -ENOMEM : -EINVAL;
}

int
field_path_check(const char *path, char *err)
{
    struct field_step steps[FIELD_SEGS_MAX];
    size_t n = 0;
    int rc = path_parse(path, steps, &n, err);
    if (rc == 0)
        steps_free(steps, n);
    return rc;
}

void
field_rules_free(struct field_rules **rp)
{
    struct field_rules *r = *rp;
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++) {
        steps_free(r->rule[i].steps, r->rule[i].nsteps);
        free(r->rule[i].steps);
    }
    free(r->rule);
    free(r->state_rule);
    free(r->state_step);
    free(r);
    *rp = NULL;
}

int
field_rules_compile(const struct field_rule_spec *specs, size_t n, struct field_rules **out,
                    char *err)
{
    struct field_step steps[FIELD_SEGS_MAX];
    char why[FIELD_ERR_MAX];
    struct field_rules *r = NULL;
    int rc = -ENOMEM;

    if (n < 1 || n > FIELD_RULES_MAX) {
        snprintf(err, FIELD_ERR_MAX, "expected 1 to %d paths, not %zu", FIELD_RULES_MAX, n);
        return -EINVAL;
    }
    if (field_fold_locale() == (locale_t)0) {
        snprintf(err, FIELD_ERR_MAX,
                 "the C.UTF-8 locale is not installed (Debian: libc-bin): member names "
                 "cannot be compared as backends compare them");
        return -EINVAL;
    }
    if ((r = calloc(1, sizeof(*r))) == NULL || (r->rule = calloc(n, sizeof(*r->rule))) == NULL)
        goto nomem;
    for (; r->n < n; r->n++) {
        struct field_rule *ru = &r->rule[r->n];
        size_t nsteps = 0;
        rc = path_parse(specs[r->n].path, steps, &nsteps, why);
        if (rc != 0) {
            snprintf(err, FIELD_ERR_MAX, "path %zu (%.60s): %.160s", r->n + 1, specs[r->n].path,
                     why);
            goto fail;
        }
        if (nsteps > 0 && (ru->steps = calloc(nsteps, sizeof(*ru->steps))) == NULL) {
            steps_free(steps, nsteps);
            rc = -ENOMEM;
            goto nomem;
        }
        if (nsteps > 0)
            memcpy(ru->steps, steps, nsteps * sizeof(*steps));
        ru->nsteps = nsteps;
        ru->deterministic = specs[r->n].deterministic;
        uint8_t md[SHA256_DIGEST_LENGTH];
        SHA256((const uint8_t *)specs[r->n].path, strlen(specs[r->n].path), md);
        memcpy(ru->id, md, FIELD_RULE_ID_LEN);
        ru->state = (unsigned)r->nstates;
        r->nstates += nsteps + 1;
    }
    r->nwords = (r->nstates + 63) / 64;
    r->state_rule = calloc(r->nstates, sizeof(*r->state_rule));
    r->state_step = calloc(r->nstates, sizeof(*r->state_step));
    if (r->state_rule == NULL || r->state_step == NULL)
        goto nomem;
    for (size_t i = 0; i < r->n; i++)
        for (size_t k = 0; k <= r->rule[i].nsteps; k++) {
            r->state_rule[r->rule[i].state + k] = (uint16_t)i;
            r->state_step[r->rule[i].state + k] = (uint8_t)k;
        }
    *out = r;
    return 0;
nomem:
    snprintf(err, FIELD_ERR_MAX, "out of memory");
fail:
    field_rules_free(&r);
    return rc;
}
