/* confmap.h - one walker for every block of the YAML config: keyword
 * tables, the way nginx's commands[] and HAProxy's bind_kws[] describe
 * theirs.
 *
 * A block (the top level, a relay, logs:, a pool's events: ...) is a table
 * of rows, one per key: its name, a setter that reads the value's text
 * into the block's struct at an offset, bounds, and flags. conf_map() walks
 * a YAML mapping against such a table and does, once for every block,
 * what each hand-written loop used to: unknown keys (with "did you mean"),
 * duplicate keys, values of the wrong node type, required keys; then the
 * module's check of the whole block (rules that span keys) and the rows'
 * "applies only when" rules. conf_seq() walks a list, each element through
 * a callback. The command line (config_args()) finds its flags in the same
 * tables and calls the same setters and checks.
 *
 * Messages are "FILE:LINE: KEY: what was expected", KEY the full path
 * ("relays[0].allow[2]"). A walk goes on past an error to the next key,
 * list element and block, so that one run reports them all; a block's
 * check and its "applies only when" rules run once its keys are valid. */
#ifndef AIRLOCK_CLI_CONFMAP_H
#define AIRLOCK_CLI_CONFMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "core/units.h"
#include "net/endpoint.h"

/* Room for the longest key path, "relays[4095].max_connections", and more. */
#define CONF_KEY_MAX 96
#define CONF_MSG_MAX 512

struct conf_block;
struct conf_row;

struct config_errors;

/* The document being walked, and where its errors go. */
struct conf_ctx {
    const char *name; /* the file name used in messages */
    const char *text; /* the document, to turn a reader error's offset into a line */
    size_t len;
    yaml_document_t *doc;
    struct config_errors *errs;     /* cli/config.h */
    const struct conf_block *top;   /* for hints: "it is a top-level setting" */
    const struct conf_block *relay; /* "it is a relay setting" */
};

/* Reads text (a scalar, an element of a list, a command-line value) into
 * the block at base. Returns 0, or -1 with what was expected in msg. */
typedef int (*conf_set_fn)(const struct conf_row *row, void *base, const char *text, char *msg,
                           size_t msglen);

/* Walks a value that is not just text (a mapping, a list of mappings, a
 * scalar or a mapping); key is its full path. Returns 0 or -1 (errors added to c->errs). */
typedef int (*conf_node_fn)(struct conf_ctx *c, const struct conf_row *row, const yaml_node_t *v,
                            const char *key, void *base);

/* An element of a list: item at key ("relays[3]"), index i. */
typedef int (*conf_item_fn)(struct conf_ctx *c, const yaml_node_t *item, const char *key, size_t i,
                            void *arg);

/* What an endpoint setting accepts beyond the syntax: NULL, or -1 with msg. */
typedef int (*conf_ep_fn)(const struct endpoint *ep, char *msg, size_t msglen);

/* For a key that applies to some blocks only: NULL, or why not. */
typedef const char *(*conf_applies_fn)(const void *base);

/* The bounds and messages of a list. few and many are printf formats
 * given max; few NULL: "WHAT, not an empty list". */
struct conf_list {
    const char *what; /* "expected a list of rules (10.0.0.0/8, cid:16)" */
    size_t min, max;
    const char *few, *many;
    bool null_empty; /* a key with no value is an empty list */
    /* a list of blocks: an array of n * size bytes is allocated (the
     * pointer stored at the row's off) and each element walked by item,
     * given the block of the row */
    conf_item_fn item;
    size_t size;
    const struct conf_block *block; /* its elements' block, for confdump.h */
};

enum conf_flags {
    CONF_REQUIRED = 1 << 0,
    CONF_HAS = 1 << 1,    /* a bool at off2 says the key was given */
    CONF_RELAY = 1 << 2,  /* a key of relays (see conf_block.mask) */
    CONF_ROUTER = 1 << 3, /* a key of routers */
};

struct conf_row {
    const char *name;
    const char *flag;    /* the command-line option, when not --NAME ("route" for routes) */
    conf_set_fn set;     /* the value as text; NULL: not a command-line option */
    conf_node_fn node;   /* the YAML value, when it is more than text */
    size_t off, off2;    /* where in the block; off2: a list's count, a CONF_HAS bool */
    uint64_t min, max;   /* bounds of a number or size; the setter's own use elsewhere */
    const char *expect;  /* "expected ..." */
    const char *low;     /* below min, when it differs from expect */
    const char *missing; /* a required key absent: NULL expect, "" nothing more */
    const char *or_key;  /* a required key this other key of the block stands in for */
    const struct conf_list *list; /* the value is a list of text, each through set */
    const struct conf_block *sub; /* the value is a mapping walked against sub (with node:
                                     its block, for confdump.h) */
    conf_ep_fn ep_check;          /* endpoints */
    conf_applies_fn applies;
    /* a number whose default depends on other keys: the value in force,
     * for confdump.h (max_unproven_per_client); NULL: the field's own */
    unsigned (*in_force)(const void *base);
    unsigned flags;
};

struct conf_block {
    const struct conf_row *rows;
    size_t n;
    unsigned mask;     /* 0, or the rows (CONF_RELAY, CONF_ROUTER) this block takes */
    const char *what;  /* "expected a mapping of relay settings (listen, ...)" */
    const char *noun;  /* "relay": "missing from relay 'NAME'" (the block's struct
                          begins with its name); NULL: "missing" */
    bool missing_here; /* "PATH: missing KEY: MISSING" (routes, listen mappings) */
    int (*check)(void *base, struct conf_fault *f); /* rules spanning keys, or NULL */
};

/* Walks mapping n (at path; "" for the top level) against b into base. */
int conf_map(struct conf_ctx *c, const yaml_node_t *n, const char *path, const struct conf_block *b,
             void *base);

/* Walks list v (at key) within l's bounds, each element through fn. */
int conf_seq(struct conf_ctx *c, const yaml_node_t *v, const char *key, const struct conf_list *l,
             conf_item_fn fn, void *arg);

/* Walks the value v of row: through its node function, its list, its sub
 * block or its setter. */
int conf_value(struct conf_ctx *c, const struct conf_row *row, const yaml_node_t *v,
               const char *key, void *base);

/* The row of b called name (len bytes), or NULL; only rows b takes. */
const struct conf_row *conf_row(const struct conf_block *b, const char *name, size_t len);

/* The row of b whose command-line option is flag ('_' for '-'), or NULL. */
const struct conf_row *conf_option(const struct conf_block *b, const char *flag);

/* The visible row of b closest to name, for "did you mean", or NULL. */
const struct conf_row *conf_closest(const struct conf_block *b, const char *name, size_t len);

/* The line of key's value in mapping n (of its item-th element when item
 * is not CONF_NO_ITEM), 0 when absent. */
size_t conf_key_line(const struct conf_ctx *c, const yaml_node_t *n, const char *key, size_t item);

size_t conf_line(const yaml_node_t *n);

/* Reports f, what a block check found wrong in mapping n at path: at the
 * line of f's key (of its item), else of the mapping. Returns -1. */
int conf_report(struct conf_ctx *c, const yaml_node_t *n, const char *path,
                const struct conf_fault *f);

/* Adds "NAME:LINE: KEY: message" (KEY omitted when empty) to c->errs and
 * returns -1. */
int conf_fail(struct conf_ctx *c, size_t line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* key = path.name (name alone at the top level). */
void conf_join(char *key, size_t len, const char *path, const char *name);

/* The text of scalar n, or a failure naming expected. */
int conf_scalar(struct conf_ctx *c, const yaml_node_t *n, const char *key, const char *expected,
                const char **out);

/* Generic setters (row->off points at the type named). */
int conf_set_uint(const struct conf_row *row, void *base, const char *text, char *msg,
                  size_t msglen); /* unsigned, min..max */
int conf_set_duration(const struct conf_row *row, void *base, const char *text, char *msg,
                      size_t msglen); /* unsigned ms, at least min */
int conf_set_size(const struct conf_row *row, void *base, const char *text, char *msg,
                  size_t msglen); /* size_t, min..max */
int conf_set_bool(const struct conf_row *row, void *base, const char *text, char *msg,
                  size_t msglen); /* bool */
int conf_set_name(const struct conf_row *row, void *base, const char *text, char *msg,
                  size_t msglen); /* char[max]: units_name() */
int conf_set_endpoint(const struct conf_row *row, void *base, const char *text, char *msg,
                      size_t msglen); /* struct endpoint, then row->ep_check */

#endif
