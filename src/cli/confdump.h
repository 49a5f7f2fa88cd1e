/* confdump.h - the effective config as YAML (`airlock ctl config`, like
 * `nginx -T`), written by walking the same keyword tables as the parser
 * (confmap.h), so that a new key is dumped without code of its own.
 *
 * A block is written key by key in its table's order: a key whose setter
 * is a generic one (numbers, durations, sizes, booleans, names, endpoints)
 * from the parsed struct, given or not, so defaults show (except where a
 * rule says it does not apply, or its value would not read back; a number
 * whose default depends on other keys as the row's in_force computes it,
 * the value in force); a key
 * with a sub-block recursively; a list of blocks element by element; any
 * other key as the file gave it (the document's node, re-quoted), or
 * through put when the caller knows its type. The config file holds no
 * secret values (passwords and keys are files: their paths are shown),
 * and file contents are never read here. The output is accepted by the
 * parser as it is. */
#ifndef AIRLOCK_CLI_CONFDUMP_H
#define AIRLOCK_CLI_CONFDUMP_H

#include <yaml.h>

#include "cli/confmap.h"
#include "core/strbuf.h"

struct conf_dump {
    yaml_document_t *doc; /* the file as parsed, for the keys written as given */
    struct strbuf *out;
    /* The value of a key whose setter the walker does not know, as YAML
     * text in buf; returns 0, or -1 to write it as the file gave it (or
     * not at all when absent). NULL: always as given. */
    int (*put)(const struct conf_row *row, const void *base, char *buf, size_t len);
    /* The struct of element i of list row (whose elements are in
     * row->list->block) of the block at base, or NULL to write the
     * element as given. */
    const void *(*elem)(const struct conf_row *row, const void *base, size_t i, void *arg);
    void *arg;
};

/* Writes mapping map (NULL: none in the file) of block b parsed into
 * base, its keys at indent spaces. */
void conf_dump_map(struct conf_dump *d, const struct conf_block *b, const yaml_node_t *map,
                   const void *base, int indent);

#endif
