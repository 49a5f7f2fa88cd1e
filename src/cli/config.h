/* config.h - the YAML configuration (libyaml) and its defaults.
 *
 * The keys, their types, defaults and meaning: docs/config.md, the key
 * reference (tests/unit/test_config_doc.c checks it against the tables).
 *
 * Each block is a table of keys walked by one function (cli/confmap.h);
 * the structs, defaults and cross-key rules are their modules':
 * relay/conf.h (relays, routers), relay/log_conf.h (logs, log_sinks),
 * dir/dir.h (directory), pool/conf.h (pools), broker/conf.h (broker),
 * attest/policy.h (its secrets' policy:) and http/conf.h (proxies). The options of airlock relay
 * and airlock router are the keys of a relay or router, the top level and
 * a listener mapping ("--idle-timeout 5s" is idle_timeout: 5s, "--no-splice"
 * splice: false, "--socket-mode" the listen mapping's mode), read by the
 * same setters and checked by the same rules (config_args()).
 */
#ifndef AIRLOCK_CLI_CONFIG_H
#define AIRLOCK_CLI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/conf.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "dir/dir.h"
#include "http/conf.h"
#include "net/endpoint.h"
#include "pool/conf.h"
#include "relay/conf.h"
#include "relay/log_conf.h"

struct config {
    unsigned threads; /* 0: one per online core */
    enum log_level log_level;
    enum log_format log_format; /* LOG_FMT_TEXT (0) unless set */
    bool has_metrics;
    struct endpoint metrics;
    unsigned drain_timeout_ms;
    struct relay_conf *relays; /* owned; n_relays entries */
    size_t n_relays;
    struct log_conf logs;
    struct log_sink_conf *sinks; /* owned; n_sinks entries */
    size_t n_sinks;
    bool has_directory;        /* a directory: block is present */
    struct dir_conf directory; /* dir_conf_defaults() unless given */
    bool has_control;
    struct endpoint control; /* the airlock ctl socket */
    struct pool_conf *pools; /* owned; n_pools entries */
    size_t n_pools;
    char pool_record[CONF_FILE_PATH_MAX]; /* "": the default (cli/runtime.c) */
    struct http_proxy_conf *proxies;      /* owned; n_proxies entries */
    size_t n_proxies;
    unsigned resolver_threads;
    unsigned resolver_queue;
    struct broker_conf broker; /* broker_conf_defaults() unless given */
    char *text;                /* the file as parsed (config_dump()), owned; NULL: from arguments */
    size_t text_len;
};

/* The errors found in a config, in file order: each
 * "FILE:LINE: KEY: what was expected" (LINE 1-based). The first
 * CONFIG_ERRORS_MAX by line are kept (a garbage file is not a flood);
 * total counts them all. */
#define CONFIG_ERRORS_MAX 50
#define CONFIG_ERROR_MAX 1024

struct config_error {
    size_t line; /* for the order; SIZE_MAX: found after the file (the host's) */
    char msg[CONFIG_ERROR_MAX];
};

struct config_errors {
    size_t n;     /* in e[] */
    size_t total; /* found */
    struct config_error e[CONFIG_ERRORS_MAX];
};

/* Adds an error at line to errs, in line order (after those of the same
 * line); control characters in it become '?'. In cli/confmap.c, with the
 * walker's conf_fail(). */
void config_error_add(struct config_errors *errs, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Loads and checks the YAML file at path (at most 1 MiB; pipes work) into
 * *cfg (zeroed first). Returns 0, or -1 with err holding the first error
 * in the file ("FILE:LINE: KEY: what was expected"). On success the caller
 * frees with config_free(); on failure *cfg is left zeroed, owning nothing. */
int config_load(const char *path, struct config *cfg, char *err, size_t errlen);

/* config_load() with every error in errs (zeroed first): after a YAML
 * syntax error nothing more is read, but each key's and each block's
 * errors are reported; the rules that span blocks (unique listeners, what
 * needs a directory:) once the blocks are valid. */
int config_load_all(const char *path, struct config *cfg, struct config_errors *errs);

/* Same as config_load() on the len bytes at text (no NUL needed); name is
 * used in messages. For tests and the fuzzer. err may be NULL when errlen
 * is 0. */
int config_parse(const char *name, const char *text, size_t len, struct config *cfg, char *err,
                 size_t errlen);

/* config_parse() with every error in errs, as config_load_all(). */
int config_parse_all(const char *name, const char *text, size_t len, struct config *cfg,
                     struct config_errors *errs);

/* Builds a one-relay (router: one-router) config from the arguments of
 * airlock relay / router (argv[0] is the command): LISTEN and TARGET (a
 * router: LISTEN) and --KEY VALUE, --KEY=VALUE, --KEY / --no-KEY (true,
 * false) options, KEY a key of the relay or router, of the top level, or
 * socket-mode, socket-owner, socket-group (LISTEN's and --metrics' socket
 * file), with '-' for '_'. Returns 0 (free with config_free()), or -1 with
 * "--KEY 'VALUE': what was expected" in err ("" when the arguments do not
 * have the shape of a command: the caller shows the usage) and *cfg
 * zeroed. */
int config_args(int argc, char **argv, bool router, struct config *cfg, char *err, size_t errlen);

/* Calls fn(path, key, arg) for every key of the YAML file, path the block
 * it is in: "" (the top level), "relays[]", "relays[].tls", "listen{}" (a
 * listener mapping) ... For the check of docs/config.md, the key reference. */
typedef void (*config_key_fn)(const char *path, const char *key, void *arg);
void config_keys(config_key_fn fn, void *arg);

/* Appends the effective config cfg (parsed from a file) to out as YAML:
 * every key of every block in table order, defaults filled in; the file
 * holds no secret values (passwords and keys are files: paths only).
 * config_parse() accepts the result. Returns 0, or -1 with err saying why
 * (a config from the command line has no file). See cli/confdump.h. */
int config_dump(const struct config *cfg, struct strbuf *out, char *err, size_t errlen);

/* Releases what cfg owns and zeroes it; safe to call twice. */
void config_free(struct config *cfg);

#endif
