/* confmap.c - the one walker of the YAML config; see confmap.h.
 *
 * The walk only ever descends into known keys, to the fixed depth of the
 * tables, so aliases - even ones that point back at an ancestor - cannot
 * make it loop or blow up. */
#include "cli/confmap.h"

#include "cli/config.h"
#include "core/closest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest key echoed back in "unknown key" messages. */
#define CONF_ECHO_MAX 32
#define CONF_ROWS_MAX 32 /* keys of the largest block */

#define AT(base, off, type) ((type *)(void *)((char *)(base) + (off)))

size_t
conf_line(const yaml_node_t *n)
{
    return n->start_mark.line + 1;
}

static const char *
node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "a single value";
    }
}

void
config_error_add(struct config_errors *errs, size_t line, const char *fmt, ...)
{
    size_t at = errs->n;
    va_list ap;

    errs->total++;
    while (at > 0 && errs->e[at - 1].line > line)
        at--;
    if (at == CONFIG_ERRORS_MAX)
        return; /* later in the file than every one kept */
    if (errs->n == CONFIG_ERRORS_MAX)
        errs->n--; /* the last one in the file makes room */
    memmove(&errs->e[at + 1], &errs->e[at], (errs->n - at) * sizeof(errs->e[0]));
    errs->n++;
    errs->e[at].line = line;
    va_start(ap, fmt);
    vsnprintf(errs->e[at].msg, sizeof(errs->e[at].msg), fmt, ap);
    va_end(ap);
    /* values from the file are in the message: printable ASCII only, so
     * hostile input cannot garble the terminal or forge a log line */
    for (char *p = errs->e[at].msg; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
}

int
conf_fail(struct conf_ctx *c, size_t line, const char *key, const char *fmt, ...)
{
    char msg[CONF_MSG_MAX * 2];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (key != NULL && key[0] != '\0')
        config_error_add(c->errs, line, "%s:%zu: %s: %s", c->name, line, key, msg);
    else
        config_error_add(c->errs, line, "%s:%zu: %s", c->name, line, msg);
    return -1;
}

void
conf_join(char *key, size_t len, const char *path, const char *name)
{
    snprintf(key, len, "%s%s%s", path, path[0] != '\0' ? "." : "", name);
}

/* ---- hints for YAML's quoting traps: what YAML made of the text, and
 * how to write it */

/* "[2001:db8::1]" unquoted is a list of one: the hint, or "". */
static const char *
list_hint(const struct conf_ctx *c, const yaml_node_t *n)
{
    if (n->type != YAML_SEQUENCE_NODE || n->data.sequence.style != YAML_FLOW_SEQUENCE_STYLE ||
        n->data.sequence.items.top - n->data.sequence.items.start != 1)
        return "";
    const yaml_node_t *item = yaml_document_get_node(c->doc, n->data.sequence.items.start[0]);
    const char *colon =
        item->type == YAML_SCALAR_NODE ? strchr((const char *)item->data.scalar.value, ':') : NULL;
    if (colon == NULL || strchr(colon + 1, ':') == NULL) /* IPv6: two colons at least */
        return "";
    return " (unquoted, [...] is a YAML list: quote the whole value, \"[2001:db8::1]\")";
}

/* Words YAML 1.1 (not 1.2) reads as true or false when unquoted; libyaml
 * hands them over as text. */
static bool
yaml11_bool(const char *s)
{
    static const char *const words[] = {"y", "yes", "n", "no", "on", "off"};

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasecmp(s, words[i]) == 0)
            return true;
    return false;
}

/* A refused unquoted value that YAML 1.1 reads as true or false: the hint
 * in buf, else "". */
static const char *
bool_hint(const struct conf_row *row, const yaml_node_t *n, const char *s, char *buf, size_t len)
{
    char shown[8];

    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
        !yaml11_bool(s))
        return "";
    snprintf(shown, sizeof(shown), "%s", s);
    if (row->set == conf_set_bool)
        snprintf(buf, len, " ('%s' is true or false to some YAML tools, not to others)", shown);
    else
        snprintf(buf, len,
                 " (unquoted, '%s' is true or false in YAML 1.1, not a value of this key)", shown);
    return buf;
}

/* "listen:tcp:127.0.0.1:80" (no space after the colon) is one word to
 * YAML: the hint in buf when s starts with a key of b and a colon, else
 * "". */
static const char *
colon_hint(const struct conf_block *b, const yaml_node_t *n, char *buf, size_t len)
{
    const char *s, *colon;

    if (n->type != YAML_SCALAR_NODE)
        return "";
    s = (const char *)n->data.scalar.value;
    if ((colon = strchr(s, ':')) == NULL || conf_row(b, s, (size_t)(colon - s)) == NULL)
        return "";
    snprintf(buf, len, " (no space after '%.*s:': YAML reads it as one word; write '%.*s: %.16s')",
             (int)(colon - s), s, (int)(colon - s), s, colon + 1);
    return buf;
}

/* Hands back the text of a scalar node, or fails naming what was expected
 * when the node is a list or mapping, or holds a NUL (possible with a "\0"
 * escape) that would silently cut the value short. */
int
conf_scalar(struct conf_ctx *c, const yaml_node_t *n, const char *key, const char *expected,
            const char **out)
{
    *out = NULL; /* defined on failure too */
    if (n->type != YAML_SCALAR_NODE)
        return conf_fail(c, conf_line(n), key, "%s, not %s%s", expected, node_kind(n),
                         list_hint(c, n));
    const char *s = (const char *)n->data.scalar.value;
    if (strlen(s) != n->data.scalar.length)
        return conf_fail(c, conf_line(n), key, "%s, not text with a NUL byte", expected);
    *out = s;
    return 0;
}

/* Copies a user-supplied key into buf for a message: printable ASCII only,
 * cut at CONF_ECHO_MAX, so hostile input cannot garble the terminal. */
static const char *
echo(const char *s, size_t len, char *buf, size_t buflen)
{
    size_t n = 0;

    for (size_t i = 0; i < len && n + 4 < buflen; i++) {
        if (i == CONF_ECHO_MAX) {
            memcpy(buf + n, "...", 3);
            n += 3;
            break;
        }
        unsigned char ch = (unsigned char)s[i];
        buf[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    buf[n] = '\0';
    return buf;
}

static bool
visible(const struct conf_block *b, const struct conf_row *r)
{
    return b->mask == 0 || (r->flags & b->mask) != 0;
}

/* Whether the key named name (none: NULL) was seen in the block walked. */
static bool
seen_key(const struct conf_block *b, const size_t *seen, const char *name)
{
    for (size_t i = 0; name != NULL && i < b->n; i++)
        if (strcmp(b->rows[i].name, name) == 0)
            return seen[i] != 0;
    return false;
}

/* The visible key closest to s and near it (closest_near), or NULL. */
const struct conf_row *
conf_closest(const struct conf_block *b, const char *s, size_t len)
{
    const struct conf_row *best = NULL;
    size_t best_d = SIZE_MAX;

    for (size_t i = 0; i < b->n; i++) {
        size_t lk = strlen(b->rows[i].name);
        if (!visible(b, &b->rows[i]))
            continue;
        size_t d = closest_distance(s, len, b->rows[i].name, lk);
        if (closest_near(d, lk) && d < best_d) {
            best = &b->rows[i];
            best_d = d;
        }
    }
    return best;
}

const struct conf_row *
conf_row(const struct conf_block *b, const char *s, size_t len)
{
    for (size_t i = 0; i < b->n; i++)
        if (visible(b, &b->rows[i]) && strlen(b->rows[i].name) == len &&
            memcmp(s, b->rows[i].name, len) == 0)
            return &b->rows[i];
    return NULL;
}

const struct conf_row *
conf_option(const struct conf_block *b, const char *flag)
{
    for (size_t i = 0; i < b->n; i++)
        if (visible(b, &b->rows[i]) &&
            strcmp(flag, b->rows[i].flag ? b->rows[i].flag : b->rows[i].name) == 0)
            return &b->rows[i];
    return NULL;
}

/* Reads the key of one mapping pair and finds it in b; fails on a key
 * that is not text, an unknown key (with a hint) or one already seen. */
static int
map_key(struct conf_ctx *c, const yaml_node_t *k, const char *path, const struct conf_block *b,
        size_t *seen, const struct conf_row **row)
{
    bool top = path[0] == '\0';
    char shown[CONF_ECHO_MAX + 8];

    *row = NULL;
    if (k->type != YAML_SCALAR_NODE)
        return conf_fail(c, conf_line(k), path, "expected a key name, not %s", node_kind(k));
    const char *s = (const char *)k->data.scalar.value;
    size_t len = k->data.scalar.length;
    const struct conf_row *r = conf_row(b, s, len);
    if (r == NULL) {
        const struct conf_row *hint = conf_closest(b, s, len);
        char colon[CONF_ECHO_MAX * 3];
        echo(s, len, shown, sizeof(shown));
        if (colon_hint(b, k, colon, sizeof(colon))[0] != '\0')
            return conf_fail(c, conf_line(k), path, "unknown key '%s'%s", shown, colon);
        if (hint != NULL)
            return conf_fail(c, conf_line(k), path, "unknown key '%s' (did you mean '%s'?)", shown,
                             hint->name);
        /* A setting at the wrong level is a likely slip of indentation. */
        if (top && c->relay != NULL && conf_row(c->relay, s, len) != NULL)
            return conf_fail(c, conf_line(k), path,
                             "unknown key '%s' (it is a relay setting: put it in a relay under "
                             "relays:)",
                             shown);
        if (!top && c->top != NULL && conf_row(c->top, s, len) != NULL)
            return conf_fail(c, conf_line(k), path,
                             "unknown key '%s' (it is a top-level setting, not a relay one)",
                             shown);
        return conf_fail(c, conf_line(k), path, "unknown key '%s'", shown);
    }
    size_t i = (size_t)(r - b->rows);
    if (seen[i] != 0) {
        char full[CONF_KEY_MAX];
        conf_join(full, sizeof(full), path, r->name);
        return conf_fail(c, conf_line(k), full, "duplicate key; first set on line %zu", seen[i]);
    }
    seen[i] = conf_line(k);
    *row = r;
    return 0;
}

/* One element of a list of text: through the row's setter. */
struct text_item {
    const struct conf_row *row;
    void *base;
};

static int
text_item(struct conf_ctx *c, const yaml_node_t *item, const char *key, size_t i, void *arg)
{
    const struct text_item *t = arg;
    char msg[CONF_MSG_MAX], hint[96];
    const char *s;

    (void)i;
    if (conf_scalar(c, item, key, t->row->expect, &s) != 0)
        return -1;
    if (t->row->set(t->row, t->base, s, msg, sizeof(msg)) != 0)
        return conf_fail(c, conf_line(item), key, "%s%s", msg,
                         bool_hint(t->row, item, s, hint, sizeof(hint)));
    return 0;
}

/* A list of blocks: the array, then each element. */
static int
items(struct conf_ctx *c, const struct conf_row *row, const yaml_node_t *v, const char *key,
      void *base)
{
    size_t n = v->type == YAML_SEQUENCE_NODE
                   ? (size_t)(v->data.sequence.items.top - v->data.sequence.items.start)
                   : 0;
    void *array;

    if (n > 0 && n <= row->list->max) {
        if ((array = calloc(n, row->list->size)) == NULL)
            return conf_fail(c, conf_line(v), key, "out of memory");
        memcpy((char *)base + row->off, &array, sizeof(array));
    }
    return conf_seq(c, v, key, row->list, row->list->item, base);
}

int
conf_value(struct conf_ctx *c, const struct conf_row *row, const yaml_node_t *v, const char *key,
           void *base)
{
    char msg[CONF_MSG_MAX], hint[96];
    const char *s;
    int rc;

    if (row->node != NULL) {
        rc = row->node(c, row, v, key, base);
    } else if (row->list != NULL && row->list->item != NULL) {
        rc = items(c, row, v, key, base);
    } else if (row->list != NULL) {
        struct text_item t = {row, base};
        rc = conf_seq(c, v, key, row->list, text_item, &t);
    } else if (row->sub != NULL) {
        rc = conf_map(c, v, key, row->sub, (char *)base + row->off);
    } else if ((rc = conf_scalar(c, v, key, row->expect, &s)) == 0 &&
               row->set(row, base, s, msg, sizeof(msg)) != 0) {
        rc = conf_fail(c, conf_line(v), key, "%s%s", msg, bool_hint(row, v, s, hint, sizeof(hint)));
    }
    if (rc == 0 && (row->flags & CONF_HAS))
        *AT(base, row->off2, bool) = true;
    return rc;
}

size_t
conf_key_line(const struct conf_ctx *c, const yaml_node_t *n, const char *key, size_t item)
{
    if (n->type != YAML_MAPPING_NODE)
        return 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        if (k->type != YAML_SCALAR_NODE || strcmp((const char *)k->data.scalar.value, key) != 0)
            continue;
        if (item == CONF_NO_ITEM || v->type != YAML_SEQUENCE_NODE)
            return conf_line(v);
        size_t count = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        if (item >= count)
            return conf_line(v);
        return conf_line(yaml_document_get_node(c->doc, v->data.sequence.items.start[item]));
    }
    return 0;
}

int
conf_report(struct conf_ctx *c, const yaml_node_t *n, const char *path, const struct conf_fault *f)
{
    char key[CONF_KEY_MAX + 24];
    size_t line = 0;

    if (f->key == NULL)
        return conf_fail(c, conf_line(n), path, "%s", f->msg);
    conf_join(key, sizeof(key), path, f->key);
    if (f->item != CONF_NO_ITEM)
        snprintf(key + strlen(key), sizeof(key) - strlen(key), "[%zu]", f->item);
    if (!f->at_block)
        line = conf_key_line(c, n, f->key, f->item);
    return conf_fail(c, line ? line : conf_line(n), key, "%s", f->msg);
}

int
conf_map(struct conf_ctx *c, const yaml_node_t *n, const char *path, const struct conf_block *b,
         void *base)
{
    size_t seen[CONF_ROWS_MAX] = {0};
    char key[CONF_KEY_MAX], hint[CONF_ECHO_MAX * 3];
    struct conf_fault f;
    int rc = 0;

    if (n->type != YAML_MAPPING_NODE)
        return conf_fail(c, conf_line(n), path, "%s, not %s%s", b->what, node_kind(n),
                         colon_hint(b, n, hint, sizeof(hint)));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        const struct conf_row *row;

        if (map_key(c, k, path, b, seen, &row) != 0) {
            rc = -1;
            continue;
        }
        conf_join(key, sizeof(key), path, row->name);
        if (conf_value(c, row, v, key, base) != 0)
            rc = -1;
    }
    for (size_t i = 0; i < b->n; i++) {
        const struct conf_row *r = &b->rows[i];
        const char *what = r->missing != NULL ? r->missing : r->expect;
        if (!(r->flags & CONF_REQUIRED) || seen[i] != 0 || !visible(b, r) ||
            seen_key(b, seen, r->or_key))
            continue;
        conf_join(key, sizeof(key), path, r->name);
        if (b->missing_here)
            rc = conf_fail(c, conf_line(n), path, "missing %s: %s", r->name, what);
        else if (b->noun == NULL)
            rc = conf_fail(c, conf_line(n), key, "missing: %s", what);
        else
            rc = conf_fail(c, conf_line(n), key, "missing from %s '%s'%s%s", b->noun,
                           (const char *)base, what[0] != '\0' ? ": " : "", what);
    }
    /* the rules between keys hold only for values that are all valid, and
     * that apply (a key the others make void is named first) */
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < b->n; i++) {
        const char *why = b->rows[i].applies ? b->rows[i].applies(base) : NULL;
        if (seen[i] == 0 || why == NULL)
            continue;
        conf_join(key, sizeof(key), path, b->rows[i].name);
        rc = conf_fail(c, conf_key_line(c, n, b->rows[i].name, CONF_NO_ITEM), key, "%s", why);
    }
    if (rc == 0 && b->check != NULL && b->check(base, &f) != 0)
        return conf_report(c, n, path, &f);
    return rc;
}

int
conf_seq(struct conf_ctx *c, const yaml_node_t *v, const char *key, const struct conf_list *l,
         conf_item_fn fn, void *arg)
{
    char ikey[CONF_KEY_MAX + 24];
    int rc = 0;

    if (l->null_empty && v->type == YAML_SCALAR_NODE && v->data.scalar.length == 0)
        return conf_fail(c, conf_line(v), key, l->few, (int)l->max);
    if (v->type != YAML_SEQUENCE_NODE)
        return conf_fail(c, conf_line(v), key, "%s, not %s", l->what, node_kind(v));
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n < l->min && l->few == NULL)
        return conf_fail(c, conf_line(v), key, "%s, not an empty list", l->what);
    if (n < l->min)
        return conf_fail(c, conf_line(v), key, l->few, (int)l->max);
    if (n > l->max)
        return conf_fail(c, conf_line(v), key, l->many, (int)l->max);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = yaml_document_get_node(c->doc, v->data.sequence.items.start[i]);
        snprintf(ikey, sizeof(ikey), "%s[%zu]", key, i);
        if (fn(c, item, ikey, i, arg) != 0)
            rc = -1;
    }
    return rc;
}

/* ---- generic setters */

static int
refuse(char *msg, size_t msglen, const char *what)
{
    snprintf(msg, msglen, "%s", what);
    return -1;
}

int
conf_set_uint(const struct conf_row *row, void *base, const char *text, char *msg, size_t msglen)
{
    uint64_t v;

    if (units_uint(text, row->max, &v) != 0)
        return refuse(msg, msglen, row->expect);
    if (v < row->min)
        return refuse(msg, msglen, row->low ? row->low : row->expect);
    *AT(base, row->off, unsigned) = (unsigned)v;
    return 0;
}

int
conf_set_duration(const struct conf_row *row, void *base, const char *text, char *msg,
                  size_t msglen)
{
    unsigned ms;

    if (units_duration(text, &ms) != 0)
        return refuse(msg, msglen, row->expect);
    if (ms < row->min)
        return refuse(msg, msglen, row->low ? row->low : row->expect);
    *AT(base, row->off, unsigned) = ms;
    return 0;
}

int
conf_set_size(const struct conf_row *row, void *base, const char *text, char *msg, size_t msglen)
{
    size_t n;

    if (units_size(text, &n) != 0 || n < row->min || n > row->max)
        return refuse(msg, msglen, row->expect);
    *AT(base, row->off, size_t) = n;
    return 0;
}

int
conf_set_bool(const struct conf_row *row, void *base, const char *text, char *msg, size_t msglen)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};

    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(text, yes[i]) == 0 || strcasecmp(text, no[i]) == 0) {
            *AT(base, row->off, bool) = strcasecmp(text, yes[i]) == 0;
            return 0;
        }
    }
    return refuse(msg, msglen, row->expect);
}

int
conf_set_name(const struct conf_row *row, void *base, const char *text, char *msg, size_t msglen)
{
    if (units_name(text, (size_t)row->max) != 0)
        return refuse(msg, msglen, row->expect);
    memcpy(AT(base, row->off, char), text, strlen(text) + 1);
    return 0;
}

int
conf_set_endpoint(const struct conf_row *row, void *base, const char *text, char *msg,
                  size_t msglen)
{
    struct endpoint *ep = AT(base, row->off, struct endpoint);
    const char *why = NULL;

    if (endpoint_parse(text, ep, &why) != PARSE_OK) {
        snprintf(msg, msglen, "%s: %s", EP_EXPECT, why ? why : "invalid");
        return -1;
    }
    return row->ep_check != NULL ? row->ep_check(ep, msg, msglen) : 0;
}
