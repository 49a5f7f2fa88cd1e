/* test_config_doc.c - docs/config.md, the key reference, against the config
 * tables (config_keys()): every key of the tables has a row in the page,
 * every row is a key of the tables, and every default the page writes in
 * backticks is the default: the key set to it reads to the same config as
 * the key left out.
 *
 * The page: a "### " heading names the block(s) its table documents, each
 * path in backticks (`relays[].tls`; "### Top level" is the top level); a
 * row "| `KEY` | type | default | role | meaning |" documents KEY in each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/config.h"

#define PATHS_MAX 4
#define ROWS_MAX 512
#define TEXT_MAX 96

struct doc_row {
    char path[TEXT_MAX];
    char key[TEXT_MAX];
    char def[TEXT_MAX]; /* the default in backticks, "" when not a value */
    unsigned line;
    bool seen; /* a key of the tables */
};

static const char *doc_path;

/* Before the tests run, cmocka's fail_msg() cannot be used. */
#define doc_fail(...)                                                                              \
    do {                                                                                           \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)
static struct doc_row rows[ROWS_MAX];
static size_t n_rows;

/* The text between the first pair of backticks of s (at most len bytes),
 * and where it ends; NULL when there is none. */
static const char *
backticked(const char *s, char *out, size_t len)
{
    const char *a = strchr(s, '`'), *b = a != NULL ? strchr(a + 1, '`') : NULL;

    if (b == NULL || (size_t)(b - a - 1) >= len)
        return NULL;
    memcpy(out, a + 1, (size_t)(b - a - 1));
    out[b - a - 1] = '\0';
    return b + 1;
}

/* Cell i (0-based) of a table row "| a | b | ...", trimmed, into out. */
static void
cell(const char *line, int i, char *out, size_t len)
{
    const char *s = line;

    out[0] = '\0';
    for (int k = 0; k <= i; k++)
        if ((s = strchr(s, '|')) == NULL)
            return;
        else
            s++;
    const char *e = strchr(s, '|');
    if (e == NULL)
        return;
    while (s < e && *s == ' ')
        s++;
    while (e > s && e[-1] == ' ')
        e--;
    if ((size_t)(e - s) >= len)
        return;
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = '\0';
}

static void
read_doc(void)
{
    char line[1024], paths[PATHS_MAX][TEXT_MAX], def[TEXT_MAX];
    size_t n_paths = 0;
    unsigned lineno = 0;
    FILE *f = fopen(doc_path, "r");

    if (f == NULL)
        doc_fail("%s: cannot open", doc_path);
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        if (strncmp(line, "### ", 4) == 0) {
            const char *s = line;
            n_paths = 0;
            while (n_paths < PATHS_MAX && (s = backticked(s, paths[n_paths], TEXT_MAX)) != NULL)
                n_paths++;
            if (n_paths == 0 && strncmp(line, "### Top level", 13) == 0)
                paths[n_paths++][0] = '\0';
            continue;
        }
        if (strncmp(line, "## ", 3) == 0)
            n_paths = 0;
        if (strncmp(line, "| `", 3) != 0 || n_paths == 0)
            continue;
        char key[TEXT_MAX], dcell[TEXT_MAX];
        cell(line, 0, dcell, sizeof(dcell));
        if (backticked(dcell, key, sizeof(key)) == NULL)
            doc_fail("%s:%u: no key in backticks", doc_path, lineno);
        cell(line, 2, dcell, sizeof(dcell));
        const char *end = dcell[0] == '`' ? backticked(dcell, def, sizeof(def)) : NULL;
        if (end == NULL || *end != '\0')
            def[0] = '\0';
        for (size_t i = 0; i < n_paths; i++) {
            if (n_rows == ROWS_MAX)
                doc_fail("%s: more than %d rows", doc_path, ROWS_MAX);
            struct doc_row *r = &rows[n_rows++];
            snprintf(r->path, sizeof(r->path), "%s", paths[i]);
            snprintf(r->key, sizeof(r->key), "%s", key);
            snprintf(r->def, sizeof(r->def), "%s", def);
            r->line = lineno;
        }
    }
    fclose(f);
    if (n_rows < 100)
        doc_fail("%s: only %zu keys documented; is it the key reference?", doc_path, n_rows);
}

static const char *
shown(const char *path)
{
    return path[0] != '\0' ? path : "(top level)";
}

static void
table_key(const char *path, const char *key, void *arg)
{
    unsigned *missing = arg;

    for (size_t i = 0; i < n_rows; i++)
        if (strcmp(rows[i].path, path) == 0 && strcmp(rows[i].key, key) == 0) {
            if (rows[i].seen) {
                print_error("%s:%u: %s: %s documented twice\n", doc_path, rows[i].line, shown(path),
                            key);
                ++*missing;
            }
            rows[i].seen = true;
            return;
        }
    print_error("%s: %s: key %s of the config tables is not documented\n", doc_path, shown(path),
                key);
    ++*missing;
}

/* Every key of the tables is documented, and only those. */
static void
test_every_key_documented(void **state)
{
    unsigned bad = 0;

    (void)state;
    config_keys(table_key, &bad);
    for (size_t i = 0; i < n_rows; i++)
        if (!rows[i].seen) {
            print_error("%s:%u: %s: %s is no key of the config tables\n", doc_path, rows[i].line,
                        shown(rows[i].path), rows[i].key);
            bad++;
        }
    assert_int_equal(bad, 0);
}

/* ---- defaults: the key set to its documented default reads the same */

/* Configs in which a block's keys can be set: "%s" is where ", KEY: VALUE"
 * goes (flow style, so no indentation to get right). Several for a block
 * whose keys apply to some of its forms only (datagram relays, tdx). */
static const struct {
    const char *path, *yaml;
} bases[] = {
    {"", "{relays: [{listen: tcp:127.0.0.1:1, target: tcp:127.0.0.1:2}]%s}"},
    {"relays[]", "{relays: [{listen: tcp:127.0.0.1:1, target: tcp:127.0.0.1:2%s}]}"},
    {"relays[]", "{relays: [{listen: udp:127.0.0.1:1, target: tcp:127.0.0.1:2%s}]}"},
    {"relays[]", "{relays: [{listen: tcp:127.0.0.1:1, target: udp:127.0.0.1:2%s}]}"},
    {"relays[]", "{relays: [{listen: tcp:127.0.0.1:1, targets: [tcp:127.0.0.1:2]%s}]}"},
    {"relays[].health",
     "{relays: [{listen: tcp:127.0.0.1:1, targets: [tcp:127.0.0.1:2], health: {fall: 3%s}}]}"},
    {"relays[].health",
     "{relays: [{listen: tcp:127.0.0.1:1, targets: [tcp:127.0.0.1:2], health: {rise: 2%s}}]}"},
    {"relays[].tls",
     "{relays: [{listen: tcp:127.0.0.1:1, target: tcp:127.0.0.1:2, tls: {provider: nitro%s}}]}"},
    {"relays[].verify", "{relays: [{listen: tcp:127.0.0.1:1, target: tcp:127.0.0.1:2, "
                        "verify: {policy: {type: nitro, any_image: true}%s}}]}"},
    {"relays[].verify.policy", "{relays: [{listen: tcp:127.0.0.1:1, target: tcp:127.0.0.1:2, "
                               "verify: {policy: {pcrs: {0: '00'}%s}}}]}"},
    {"relays[].verify.policy", "{relays: [{listen: tcp:127.0.0.1:1, target: tcp:127.0.0.1:2, "
                               "verify: {policy: {type: tdx, any_image: true%s}}}]}"},
    {"routers[]", "{routers: [{listen: tcp:127.0.0.1:1, default: tcp:127.0.0.1:2%s}]}"},
    {"logs", "{logs: {forward: tcp:127.0.0.1:1, capture_stderr: true%s}}"},
    {"logs", "{logs: {forward: tcp:127.0.0.1:1, listen: tcp:127.0.0.1:2%s}}"},
    {"log_sinks[]", "{log_sinks: [{listen: tcp:127.0.0.1:1, file: /s.log%s}]}"},
    {"directory", "{directory: {session_ttl: 1h%s}}"},
    {"directory", "{directory: {assign_wait: 5s%s}}"},
    {"directory", "{directory: {backend: redis, redis: tcp:127.0.0.1:6379%s}}"},
    {"pools[]", "{directory: {}, pools: [{command: [/bin/true], endpoint: 'tcp:127.0.0.1:1', "
                "dir: /p, events: {ready: a, login: (b)}%s}]}"},
    {"pools[]", "{directory: {}, pools: [{command: [/bin/true], endpoint: 'tcp:127.0.0.1:1', "
                "dir: /p, events: {ready: a, login: (b)}, uids: 100000-100009%s}]}"},
    {"pools[].events", "{directory: {}, pools: [{command: [/bin/true], "
                       "endpoint: 'tcp:127.0.0.1:1', dir: /p, events: {ready: a, login: (b)%s}}]}"},
    {"pools[].provision", "{directory: {}, pools: [{command: [/bin/true], endpoint: "
                          "'tcp:127.0.0.1:1', dir: /p, events: {ready: a, login: (b)}, "
                          "provision: {command: [/bin/true]%s}}]}"},
    {"pools[].deprovision", "{directory: {}, pools: [{command: [/bin/true], endpoint: "
                            "'tcp:127.0.0.1:1', dir: /p, events: {ready: a, login: (b)}, "
                            "deprovision: {command: [/bin/true]%s}}]}"},
    {"pools[].state", "{directory: {}, pools: [{command: [/bin/true], endpoint: "
                      "'tcp:127.0.0.1:1', dir: /p, events: {ready: a, login: (b)}, "
                      "state: {store: /s%s}}]}"},
    {"proxies[]", "{proxies: [{listen: tcp:127.0.0.1:1, backend: tcp:127.0.0.1:2, keyset: /k, "
                  "routes: [{decrypt: true}]%s}]}"},
    {"proxies[].routes[]", "{proxies: [{listen: tcp:127.0.0.1:1, backend: tcp:127.0.0.1:2, "
                           "keyset: /k, routes: [{encrypt: ['$.a']%s}]}]}"},
    {"broker", "{broker: {listen: tcp:127.0.0.1:1, dir: /b, key_file: /k, "
               "secrets: [{name: s, policy: {type: nitro, any_image: true}}]%s}}"},
    {"broker.secrets[].policy", "{broker: {listen: tcp:127.0.0.1:1, dir: /b, key_file: /k, "
                                "secrets: [{name: s, policy: {pcrs: {0: '00'}%s}}]}}"},
    {"broker.secrets[].policy",
     "{broker: {listen: tcp:127.0.0.1:1, dir: /b, key_file: /k, "
     "secrets: [{name: s, policy: {type: snp, roots: /r.pem, any_image: true%s}}]}}"},
};

static int
parse_base(const char *base, const char *extra, struct config *cfg, char *err, size_t errlen)
{
    char yaml[1024];
    const char *at = strstr(base, "%s");

    assert_non_null(at);
    snprintf(yaml, sizeof(yaml), "%.*s%s%s", (int)(at - base), base, extra, at + 2);
    return config_parse("airlock.yaml", yaml, strlen(yaml), cfg, err, errlen);
}

static bool
same_bytes(const void *a, const void *b, size_t n)
{
    return n == 0 || memcmp(a, b, n) == 0;
}

/* The config without its owned pointers, which differ between two loads. */
static bool
same_config(const struct config *a, const struct config *b)
{
    struct config x = *a, y = *b;

    x.relays = y.relays = NULL;
    x.sinks = y.sinks = NULL;
    x.pools = y.pools = NULL;
    x.proxies = y.proxies = NULL;
    x.broker.secrets = y.broker.secrets = NULL;
    x.text = y.text = NULL; /* the file's own text */
    x.text_len = y.text_len = 0;
    if (!same_bytes(&x, &y, sizeof(x)) ||
        !same_bytes(a->relays, b->relays, a->n_relays * sizeof(*a->relays)) ||
        !same_bytes(a->sinks, b->sinks, a->n_sinks * sizeof(*a->sinks)) ||
        !same_bytes(a->pools, b->pools, a->n_pools * sizeof(*a->pools)) ||
        !same_bytes(a->broker.secrets, b->broker.secrets,
                    a->broker.n_secrets * sizeof(*a->broker.secrets)))
        return false;
    for (size_t i = 0; i < a->n_proxies; i++) {
        struct http_proxy_conf p = a->proxies[i], q = b->proxies[i];
        p.routes = q.routes = NULL;
        if (memcmp(&p, &q, sizeof(p)) != 0 ||
            memcmp(a->proxies[i].routes, b->proxies[i].routes, p.n_routes * sizeof(*p.routes)) != 0)
            return false;
    }
    return true;
}

/* 0: the default checked; 1: it differs; 2: no base takes the key. */
static int
check_default(const struct doc_row *r)
{
    char extra[2 * TEXT_MAX + 8], err[512];
    int checked = 2;

    snprintf(extra, sizeof(extra), ", %s: %s", r->key, r->def);
    for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
        struct config with, without;

        if (strcmp(bases[i].path, r->path) != 0)
            continue;
        if (parse_base(bases[i].yaml, extra, &with, err, sizeof(err)) != 0)
            continue;
        if (parse_base(bases[i].yaml, "", &without, err, sizeof(err)) != 0)
            fail_msg("the base config of %s does not parse: %s", shown(r->path), err);
        bool same = same_config(&with, &without);
        config_free(&with);
        config_free(&without);
        if (!same)
            return 1;
        checked = 0;
    }
    return checked;
}

static void
test_defaults_documented(void **state)
{
    unsigned bad = 0, checked = 0;

    (void)state;
    for (size_t i = 0; i < n_rows; i++) {
        const struct doc_row *r = &rows[i];
        if (r->def[0] == '\0')
            continue;
        switch (check_default(r)) {
        case 0:
            checked++;
            break;
        case 1:
            print_error("%s:%u: %s: %s: the default is not %s\n", doc_path, r->line, shown(r->path),
                        r->key, r->def);
            bad++;
            break;
        default:
            print_error("%s:%u: %s: %s: %s: no config of the test takes it; write a default "
                        "that is not a value without backticks\n",
                        doc_path, r->line, shown(r->path), r->key, r->def);
            bad++;
        }
    }
    print_message("%u documented defaults checked\n", checked);
    assert_int_equal(bad, 0);
    assert_true(checked >= 50);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_key_documented),
        cmocka_unit_test(test_defaults_documented),
    };

    if (argc != 2) {
        fprintf(stderr, "usage: %s docs/config.md\n", argv[0]);
        return 2;
    }
    doc_path = argv[1];
    read_doc();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
