/* confdump.c - see confdump.h. */
#include "cli/confdump.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "net/endpoint.h"

#define AT(base, off, type) ((const type *)(const void *)((const char *)(base) + (off)))
/* Values written as given nest this deep at most (an alias may point back
 * at an ancestor: the walk must end). */
#define FLOW_DEPTH_MAX 16

static void
pad(struct strbuf *out, int indent)
{
    strbuf_printf(out, "%*s", indent, "");
}

/* Whether s[0..n) reads back as itself unquoted, in a flow collection too. */
static bool
plain_ok(const char *s, size_t n)
{
    if (n == 0 || !(s[0] == '/' || s[0] == '_' || (s[0] >= '0' && s[0] <= '9') ||
                    (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-", s[i]) ||
            s[i] == '\0')
            return false;
    return true;
}

/* s[0..n) as a YAML scalar: plain when it can be, else double-quoted. */
static void
scalar(struct strbuf *out, const char *s, size_t n)
{
    if (plain_ok(s, n)) {
        strbuf_append(out, s, n);
        return;
    }
    strbuf_printf(out, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            strbuf_printf(out, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            strbuf_printf(out, "\\x%02x", c);
        else
            strbuf_append(out, &s[i], 1);
    }
    strbuf_printf(out, "\"");
}

/* Node n as the file gave it, in flow style. */
static void
flow(const struct conf_dump *d, const yaml_node_t *n, int depth)
{
    if (n == NULL || depth > FLOW_DEPTH_MAX) {
        strbuf_printf(d->out, "\"\"");
        return;
    }
    if (n->type == YAML_SCALAR_NODE) {
        scalar(d->out, (const char *)n->data.scalar.value, n->data.scalar.length);
    } else if (n->type == YAML_SEQUENCE_NODE) {
        strbuf_printf(d->out, "[");
        for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top;
             i++) {
            strbuf_printf(d->out, "%s", i > n->data.sequence.items.start ? ", " : "");
            flow(d, yaml_document_get_node(d->doc, *i), depth + 1);
        }
        strbuf_printf(d->out, "]");
    } else if (n->type == YAML_MAPPING_NODE) {
        strbuf_printf(d->out, "{");
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            strbuf_printf(d->out, "%s", p > n->data.mapping.pairs.start ? ", " : "");
            flow(d, yaml_document_get_node(d->doc, p->key), depth + 1);
            strbuf_printf(d->out, ": ");
            flow(d, yaml_document_get_node(d->doc, p->value), depth + 1);
        }
        strbuf_printf(d->out, "}");
    } else {
        strbuf_printf(d->out, "\"\"");
    }
}

/* The value of key name in mapping map, or NULL. */
static const yaml_node_t *
value_of(const struct conf_dump *d, const yaml_node_t *map, const char *name)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *k = yaml_document_get_node(d->doc, p->key);
        if (k != NULL && k->type == YAML_SCALAR_NODE && k->data.scalar.length == strlen(name) &&
            memcmp(k->data.scalar.value, name, k->data.scalar.length) == 0)
            return yaml_document_get_node(d->doc, p->value);
    }
    return NULL;
}

/* The value of a key with a generic setter, from the struct, into buf:
 * returns 0, or -1 when the struct has none that reads back (an unset
 * endpoint, a number outside the row's bounds). */
static int
generic(const struct conf_row *r, const void *base, char *buf, size_t len)
{
    unsigned long long v;

    if (r->set == conf_set_bool) {
        snprintf(buf, len, "%s", *AT(base, r->off, bool) ? "true" : "false");
        return 0;
    }
    if (r->set == conf_set_name) {
        const char *s = AT(base, r->off, char);
        if (s[0] == '\0')
            return -1;
        snprintf(buf, len, "%s", s);
        return 0;
    }
    if (r->set == conf_set_endpoint) {
        struct endpoint ep;
        const char *why;
        endpoint_format(AT(base, r->off, struct endpoint), buf, len);
        return endpoint_parse(buf, &ep, &why) == PARSE_OK ? 0 : -1;
    }
    if (r->in_force != NULL)
        v = r->in_force(base);
    else if (r->set == conf_set_uint || r->set == conf_set_duration)
        v = *AT(base, r->off, unsigned);
    else if (r->set == conf_set_size)
        v = *AT(base, r->off, size_t);
    else
        return -1;
    if (v < r->min || (r->set != conf_set_duration && r->max != 0 && v > r->max))
        return -1;
    snprintf(buf, len, "%llu%s", v, r->set == conf_set_duration ? "ms" : "");
    return 0;
}

static void
key_line(struct conf_dump *d, int indent, const char *name)
{
    pad(d->out, indent);
    strbuf_printf(d->out, "%s:", name);
}

/* A list of blocks: each element through its block, or as given. */
static void
blocks(struct conf_dump *d, const struct conf_row *r, const yaml_node_t *v, const void *base,
       int indent)
{
    size_t i = 0;

    key_line(d, indent, r->name);
    strbuf_printf(d->out, "\n");
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++, i++) {
        const yaml_node_t *item = yaml_document_get_node(d->doc, *it);
        const void *elem = d->elem != NULL ? d->elem(r, base, i, d->arg) : NULL;
        pad(d->out, indent + 2);
        if (elem == NULL || item == NULL || item->type != YAML_MAPPING_NODE) {
            strbuf_printf(d->out, "- ");
            flow(d, item, 0);
            strbuf_printf(d->out, "\n");
            continue;
        }
        strbuf_printf(d->out, "-\n");
        conf_dump_map(d, r->list->block, item, elem, indent + 4);
    }
}

void
conf_dump_map(struct conf_dump *d, const struct conf_block *b, const yaml_node_t *map,
              const void *base, int indent)
{
    char buf[ENDPOINT_TEXT_MAX + 64];

    for (size_t k = 0; k < b->n; k++) {
        const struct conf_row *r = &b->rows[k];
        const yaml_node_t *v = value_of(d, map, r->name);
        if (conf_row(b, r->name, strlen(r->name)) != r)
            continue; /* another kind's key (a router's, in a relay) */
        if ((r->flags & CONF_HAS) && !*AT(base, r->off2, bool))
            continue;
        if (r->applies != NULL && r->applies(base) != NULL)
            continue;
        if (r->sub != NULL) {
            if (v == NULL && !(r->flags & CONF_HAS))
                continue;
            /* into a buffer of its own: a block with nothing to write is {} */
            struct strbuf *out = d->out, sub = {0};
            d->out = &sub;
            conf_dump_map(d, r->sub, v, (const char *)base + r->off, indent + 2);
            d->out = out;
            key_line(d, indent, r->name);
            if (sub.failed)
                out->failed = 1;
            else if (sub.len == 0)
                strbuf_printf(out, " {}\n");
            else {
                strbuf_printf(out, "\n");
                strbuf_append(out, sub.data, sub.len);
            }
            strbuf_free(&sub);
        } else if (r->list != NULL && r->list->block != NULL && v != NULL &&
                   v->type == YAML_SEQUENCE_NODE &&
                   v->data.sequence.items.top > v->data.sequence.items.start) {
            blocks(d, r, v, base, indent);
        } else if ((v == NULL || v->type == YAML_SCALAR_NODE) && r->list == NULL &&
                   generic(r, base, buf, sizeof(buf)) == 0) {
            key_line(d, indent, r->name);
            strbuf_printf(d->out, " ");
            scalar(d->out, buf, strlen(buf));
            strbuf_printf(d->out, "\n");
        } else if (d->put != NULL && r->list == NULL && d->put(r, base, buf, sizeof(buf)) == 0) {
            key_line(d, indent, r->name);
            strbuf_printf(d->out, " ");
            scalar(d->out, buf, strlen(buf));
            strbuf_printf(d->out, "\n");
        } else if (v != NULL) {
            key_line(d, indent, r->name);
            strbuf_printf(d->out, " ");
            flow(d, v, 0);
            strbuf_printf(d->out, "\n");
        }
    }
}
