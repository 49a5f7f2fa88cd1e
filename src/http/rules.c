/* rules.c - a proxy route's rules: its JSON paths compiled, its keyset
 * read once and loaded once per worker, and bodies rewritten through
 * src/field/ (fields encrypted, tokens opened); field results mapped to the
 * proxy's failure reasons. Without field encryption (the static build) a route with rules
 * does not load. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "field/field.h"
#include "http/proxy_int.h"

/* ---- routes: their rules and keys (src/field/, not in the static build) */

#ifdef AIRLOCK_WITH_FIELD
/* Whether route j's keyset is the file named file. */
static bool
keyset_is(const struct http_proxy *p, size_t j, const char *file)
{
    const char *f = http_route_keyset(&p->conf, j);

    return f != NULL && strcmp(f, file) == 0;
}

/* Loads the keyset file of route i for every worker, and of the routes
 * after it that name the same file, from one read of the file: a file
 * replaced while the proxy loads (a rename over it, during a reload)
 * cannot leave two workers or two routes with other keys. Each route gets
 * the stamp of the bytes read, so the next reload tells a later change. */
static int
keysets_load(struct http_proxy *p, size_t i, const char *file, char *msg)
{
    size_t nw = p->env->n, m = 0;
    struct field_keyset **all = NULL;
    struct file_stamp stamp;
    char err[FIELD_ERR_MAX];
    int rc;

    for (size_t j = i; j < p->conf.n_routes; j++)
        if (keyset_is(p, j, file)) {
            if ((p->routes[j].ks = calloc(nw, sizeof(*p->routes[j].ks))) == NULL)
                goto nomem;
            m++;
        }
    if ((all = calloc(m * nw, sizeof(*all))) == NULL)
        goto nomem;
    if ((rc = field_keyset_load_n(file, all, m * nw, &stamp, err)) != 0) {
        snprintf(msg, HTTP_MSG_MAX, "route %s: %s", p->conf.routes[i].name, err);
        free(all);
        return rc;
    }
    for (size_t j = i, q = 0; j < p->conf.n_routes; j++)
        if (keyset_is(p, j, file)) {
            memcpy(p->routes[j].ks, all + q++ * nw, nw * sizeof(*all));
            p->routes[j].ks_stamp = stamp;
        }
    free(all);
    return 0;
nomem:
    snprintf(msg, HTTP_MSG_MAX, "out of memory");
    return -ENOMEM;
}

/* Compiles route i's rules and loads its keyset once per worker, unless a
 * route before it that names the same file did (keysets_load()). */
int
route_load(struct http_proxy *p, size_t i, char *msg)
{
    const struct http_route_conf *rc = &p->conf.routes[i];
    struct route_rt *r = &p->routes[i];
    const char *file = http_route_keyset(&p->conf, i);
    struct field_rule_spec specs[HTTP_RULES_MAX];
    char err[FIELD_ERR_MAX];
    int rc_;

    for (size_t k = 0; k < rc->n_rules; k++)
        specs[k] = (struct field_rule_spec){rc->rules[k].path, rc->rules[k].deterministic};
    if (rc->n_rules > 0 && (rc_ = field_rules_compile(specs, rc->n_rules, &r->rules, err)) != 0) {
        snprintf(msg, HTTP_MSG_MAX, "route %s: %s", rc->name, err);
        return rc_;
    }
    if (file == NULL || r->ks != NULL) /* nothing to encrypt or decrypt, or loaded */
        return 0;
    return keysets_load(p, i, file, msg);
}

void
route_free(struct http_proxy *p, struct route_rt *r)
{
    field_rules_free(&r->rules);
    for (size_t k = 0; r->ks != NULL && k < p->env->n; k++)
        field_keyset_free(&r->ks[k]);
    free(r->ks);
}

static enum http_fail
field_fail(enum field_result r)
{
    switch (r) {
    case FIELD_MALFORMED:
        return FAIL_MALFORMED;
    case FIELD_NOT_SCALAR:
        return FAIL_NOT_SCALAR;
    case FIELD_TOO_LARGE:
        return FAIL_VALUE_LARGE;
    case FIELD_BAD_TOKEN:
        return FAIL_BAD_TOKEN;
    case FIELD_AMBIGUOUS:
        return FAIL_AMBIGUOUS_NAME;
    case FIELD_BODY_LARGE:
        return FAIL_BODY_LARGE;
    case FIELD_SHAPE:
        return FAIL_SHAPE_MISMATCH;
    default:
        return FAIL_INTERNAL;
    }
}

/* Rewrites the body in[0..len) of s's route into s->body: its fields
 * encrypted (a request) or its tokens opened (a response). An encrypted
 * body may be at most HTTP_SEALED_GROWTH times max_body, and 64 KiB more:
 * what a connection holds stays a multiple of what it may send, and so does
 * the worker's time sealing it. Returns 200, or the status of the refusal
 * with *why and err. */
int
route_rewrite(struct sess *s, bool encrypt, const char *in, size_t len, enum http_fail *why,
              char *err)
{
    struct route_rt *r = &s->p->routes[s->route];
    struct field_keyset *ks = r->ks[s->w->index];
    unsigned n = 0;
    size_t max = HTTP_SEALED_GROWTH * s->p->conf.max_body + 64 * 1024;
    enum field_result fr = encrypt
                               ? field_encrypt_body(r->rules, ks, in, len, max, &s->body, &n, err)
                               : field_decrypt_body(ks, in, len, &s->body, &n, err);

    if (fr != FIELD_OK) {
        *why = field_fail(fr);
        return field_status(fr);
    }
    count(encrypt ? &s->p->stats->encrypted[r->slot] : &s->p->stats->decrypted[r->slot], n);
    return 200;
}

int
route_members(struct sess *s, const char *in, size_t len, const char *name, struct strbuf *values)
{
    struct field_keyset *ks = s->p->routes[s->route].ks[s->w->index];
    char err[FIELD_ERR_MAX];
    unsigned n;

    return field_json_member(ks, in, len, name, values, &n, err) == FIELD_OK ? 0 : -EINVAL;
}
#else
int
route_load(struct http_proxy *p, size_t i, char *msg)
{
    const struct http_route_conf *rc = &p->conf.routes[i];

    if (rc->n_rules == 0 && !rc->decrypt)
        return 0;
    snprintf(msg, HTTP_MSG_MAX, "route %s: field encryption is not in this build", rc->name);
    return -ENOTSUP;
}

void
route_free(struct http_proxy *p, struct route_rt *r)
{
    (void)p, (void)r;
}

/* Never called: routes with rules do not load (route_load()). */
int
route_rewrite(struct sess *s, bool encrypt, const char *in, size_t len, enum http_fail *why,
              char *err)
{
    (void)s, (void)encrypt, (void)in, (void)len;
    *why = FAIL_INTERNAL;
    snprintf(err, FIELD_ERR_MAX, "field encryption is not in this build");
    return 500;
}

/* Never called: routes with rules do not load (route_load()). */
int
route_members(struct sess *s, const char *in, size_t len, const char *name, struct strbuf *values)
{
    (void)s, (void)in, (void)len, (void)name, (void)values;
    return -ENOTSUP;
}
#endif

bool
http_proxy_files_changed(const struct http_proxy *p)
{
    if (p->conf.ca_file[0] != '\0' && !file_stamp_same(p->conf.ca_file, &p->ca_stamp))
        return true;
    for (size_t i = 0; i < p->conf.n_routes; i++) {
        const char *file = http_route_keyset(&p->conf, i);
        if (file != NULL && !file_stamp_same(file, &p->routes[i].ks_stamp))
            return true;
    }
    return false;
}
