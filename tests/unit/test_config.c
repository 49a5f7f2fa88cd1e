/* test_config.c - unit tests for the YAML config loader: every key, the
 * defaults, and the exact message of each kind of mistake. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/config.h"
#include "core/units.h"

#define EP_FORMS "tcp:HOST:PORT, udp:HOST:PORT, unix:/path, vsock:CID:PORT, hvsock:/path:PORT"

#define EXPECT_EGRESS_RULE_TEXT                                                                    \
    "expected DEST:PORTS (api.example.com:443, *.example.com:443, 198.51.100.0/24:80-90, "         \
    "[2001:db8::]/32:443)"

/* A relay that is valid on its own, for tests about something else. */
#define ROUTER_DEF "routers:\n  - listen: tcp:0.0.0.0:443\n    default: tcp:127.0.0.1:1\n"
#define RELAY_OK "  - listen: tcp:0.0.0.0:8443\n    target: vsock:16:8443\n"

static int
parse(const char *yaml, struct config *cfg, char *err, size_t errlen)
{
    return config_parse("airlock.yaml", yaml, strlen(yaml), cfg, err, errlen);
}

/* relay_conf_check() as "KEY: message" (KEY[i] for an item of a list). */
static int
check_text(const struct relay_conf *rc, char *err, size_t len)
{
    struct conf_fault f;
    char full[sizeof(f.msg) + 128];

    if (relay_conf_check(rc, &f) == 0)
        return 0;
    if (f.item != CONF_NO_ITEM)
        snprintf(full, sizeof(full), "%s[%zu]: %s", f.key, f.item, f.msg);
    else
        snprintf(full, sizeof(full), "%s: %s", f.key, f.msg);
    /* cut to len by hand: a short buffer is one of the cases tested, and
     * snprintf() into it is what -Wformat-truncation flags */
    if (len > 0) {
        size_t n = strnlen(full, len - 1);
        memcpy(err, full, n);
        err[n] = '\0';
    }
    return -1;
}

/* config_dump() of cfg (airlock ctl config) parses again, to a config
 * that dumps the same text: defaults and all, nothing lost. */
static void
dump_round_trip(const struct config *cfg)
{
    struct strbuf a = {0}, b = {0};
    struct config again;
    char err[512] = "";

    assert_int_equal(config_dump(cfg, &a, err, sizeof(err)), 0);
    assert_false(a.failed);
    if (config_parse("dump.yaml", a.data, a.len, &again, err, sizeof(err)) != 0)
        fail_msg("the dump does not parse: %s\n%s", err, a.data);
    assert_int_equal(config_dump(&again, &b, err, sizeof(err)), 0);
    assert_string_equal(a.data, b.data);
    config_free(&again);
    strbuf_free(&a);
    strbuf_free(&b);
}

static void
must_parse(const char *yaml, struct config *cfg)
{
    char err[512] = "";

    if (parse(yaml, cfg, err, sizeof(err)) != 0)
        fail_msg("config_parse failed: %s", err);
    dump_round_trip(cfg);
}

/* Asserts that yaml parses, and frees it. */
static void
must_free(const char *yaml)
{
    struct config cfg;

    must_parse(yaml, &cfg);
    config_free(&cfg);
}

/* Asserts that yaml is refused with exactly msg, and that the failed parse
 * left nothing behind to free. */
static void
expect_error_len(const char *yaml, size_t len, const char *msg)
{
    struct config cfg;
    char err[512] = "";

    memset(&cfg, 0xa5, sizeof(cfg));
    assert_int_equal(config_parse("airlock.yaml", yaml, len, &cfg, err, sizeof(err)), -1);
    assert_string_equal(err, msg);
    assert_null(cfg.relays);
    assert_int_equal(cfg.n_relays, 0);
}

static void
expect_error(const char *yaml, const char *msg)
{
    expect_error_len(yaml, strlen(yaml), msg);
}

static void
assert_endpoint(const struct endpoint *ep, const char *text)
{
    char buf[512];

    endpoint_format(ep, buf, sizeof(buf));
    assert_string_equal(buf, text);
}

static void
test_full(void **state)
{
    (void)state;
    static const char yaml[] = "threads: 4\n"
                               "log_level: debug\n"
                               "metrics: unix:/run/airlock/metrics.sock\n"
                               "drain_timeout: 2m\n"
                               "relays:\n"
                               "  - name: web\n"
                               "    listen: tcp:0.0.0.0:8443\n"
                               "    target: vsock:16:8443\n"
                               "    allow: [10.0.0.0/8, '[2001:db8::]/32', 192.0.2.7]\n"
                               "    max_connections: 10000\n"
                               "    connect_timeout: 250ms\n"
                               "    idle_timeout: 0\n"
                               "    keepalive: false\n"
                               "    splice: no\n"
                               "    send_proxy: v2\n"
                               "    accept_proxy: none\n"
                               "  - name: from-enclave_1.x\n"
                               "    listen: vsock:any:9000\n"
                               "    target: tcp:db.internal:5432\n"
                               "    allow:\n"
                               "      - cid:16\n"
                               "      - cid:17\n"
                               "    accept_proxy: v2\n"
                               "  - listen: unix:@airlock-ctl\n"
                               "    target: hvsock:/run/fc/v.sock:52\n";
    struct config cfg;
    uint8_t a[16];

    must_parse(yaml, &cfg);
    assert_int_equal(cfg.threads, 4);
    assert_int_equal(cfg.log_level, LOG_LVL_DEBUG);
    assert_true(cfg.has_metrics);
    assert_int_equal(cfg.metrics.kind, EP_UNIX);
    assert_string_equal(cfg.metrics.path, "/run/airlock/metrics.sock");
    assert_int_equal(cfg.drain_timeout_ms, 120000);
    assert_int_equal(cfg.n_relays, 3);

    const struct relay_conf *r = &cfg.relays[0];
    assert_string_equal(r->name, "web");
    assert_int_equal(r->listen.kind, EP_TCP);
    assert_string_equal(r->listen.host, "0.0.0.0");
    assert_int_equal(r->listen.port, 8443);
    assert_int_equal(r->target.kind, EP_VSOCK);
    assert_int_equal(r->target.cid, 16);
    assert_int_equal(r->target.port, 8443);
    assert_int_equal(r->n_allow, 3);
    assert_int_equal(r->allow[0].kind, ALLOW_V4);
    assert_int_equal(r->allow[0].prefix, 8);
    assert_int_equal(inet_pton(AF_INET, "10.0.0.0", a), 1);
    assert_memory_equal(r->allow[0].addr, a, 4);
    assert_int_equal(r->allow[1].kind, ALLOW_V6);
    assert_int_equal(r->allow[1].prefix, 32);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::", a), 1);
    assert_memory_equal(r->allow[1].addr, a, 16);
    assert_int_equal(r->allow[2].kind, ALLOW_V4);
    assert_int_equal(r->allow[2].prefix, 32);
    assert_int_equal(inet_pton(AF_INET, "192.0.2.7", a), 1);
    assert_memory_equal(r->allow[2].addr, a, 4);
    assert_int_equal(r->max_connections, 10000);
    assert_int_equal(r->connect_timeout_ms, 250);
    assert_int_equal(r->idle_timeout_ms, 0);
    assert_false(r->keepalive);
    assert_false(r->splice);
    assert_int_equal(r->send_proxy, PROXY_V2);
    assert_int_equal(r->accept_proxy, PROXY_NONE);

    r = &cfg.relays[1];
    assert_string_equal(r->name, "from-enclave_1.x");
    assert_int_equal(r->listen.kind, EP_VSOCK);
    assert_int_equal(r->listen.cid, EP_CID_ANY);
    assert_int_equal(r->listen.port, 9000);
    assert_int_equal(r->target.kind, EP_TCP);
    assert_string_equal(r->target.host, "db.internal");
    assert_int_equal(r->target.port, 5432);
    assert_int_equal(r->n_allow, 2);
    assert_int_equal(r->allow[0].kind, ALLOW_CID);
    assert_int_equal(r->allow[0].cid, 16);
    assert_int_equal(r->allow[1].kind, ALLOW_CID);
    assert_int_equal(r->allow[1].cid, 17);
    assert_int_equal(r->accept_proxy, PROXY_V2);
    assert_int_equal(r->send_proxy, PROXY_NONE);
    assert_int_equal(r->connect_timeout_ms, 5000);

    r = &cfg.relays[2];
    assert_string_equal(r->name, "relay3");
    assert_endpoint(&r->listen, "unix:@airlock-ctl");
    assert_int_equal(r->target.kind, EP_HVSOCK);
    assert_string_equal(r->target.path, "/run/fc/v.sock");
    assert_int_equal(r->target.port, 52);
    for (size_t i = 0; i < cfg.n_relays; i++)
        assert_int_equal(check_text(&cfg.relays[i], NULL, 0), 0);

    config_free(&cfg);
    assert_null(cfg.relays);
    assert_int_equal(cfg.n_relays, 0);
    config_free(&cfg);
}

static void
test_defaults(void **state)
{
    (void)state;
    struct config cfg;

    must_parse("relays:\n" RELAY_OK, &cfg);
    assert_int_equal(cfg.threads, 0);
    assert_int_equal(cfg.log_level, LOG_LVL_INFO);
    assert_false(cfg.has_metrics);
    assert_int_equal(cfg.drain_timeout_ms, 30000);
    assert_int_equal(cfg.n_relays, 1);
    const struct relay_conf *r = &cfg.relays[0];
    assert_string_equal(r->name, "relay1");
    assert_endpoint(&r->listen, "tcp:0.0.0.0:8443");
    assert_endpoint(&r->target, "vsock:16:8443");
    assert_int_equal(r->n_allow, 0);
    assert_int_equal(r->max_connections, 0);
    assert_int_equal(r->connect_timeout_ms, 5000);
    assert_int_equal(r->idle_timeout_ms, 3600000);
    assert_true(r->keepalive);
    assert_true(r->splice);
    assert_int_equal(r->send_proxy, PROXY_NONE);
    assert_int_equal(r->accept_proxy, PROXY_NONE);
    config_free(&cfg);
}

static void
test_relay_conf_defaults(void **state)
{
    (void)state;
    struct relay_conf rc;

    memset(&rc, 0xa5, sizeof(rc));
    relay_conf_defaults(&rc);
    assert_string_equal(rc.name, "");
    assert_int_equal(rc.n_allow, 0);
    assert_int_equal(rc.max_connections, 0);
    assert_int_equal(rc.connect_timeout_ms, 5000);
    assert_int_equal(rc.idle_timeout_ms, 3600000);
    assert_true(rc.keepalive);
    assert_true(rc.splice);
    assert_int_equal(rc.send_proxy, PROXY_NONE);
    assert_int_equal(rc.accept_proxy, PROXY_NONE);
    assert_int_equal(rc.max_datagram, 4096);
    assert_int_equal(rc.flow_idle_timeout_ms, 60000);
    assert_int_equal(rc.n_dns_allow, 0);
}

/* Flow style, quoting, YAML 1.1 booleans, anchors and aliases, a document
 * start marker and comments are all plain YAML and must just work. */
static void
test_yaml_forms(void **state)
{
    (void)state;
    static const char yaml[] = "%YAML 1.1\n"
                               "---\n"
                               "# comment\n"
                               "threads: \"2\"\n"
                               "relays:\n"
                               "  - {name: a, listen: 'tcp:127.0.0.1:1', target: &t vsock:3:1,\n"
                               "     keepalive: Off, splice: TRUE}\n"
                               "  - name: b\n"
                               "    listen: tcp:127.0.0.1:2\n"
                               "    target: *t\n"
                               "    keepalive: on\n"
                               "...\n";
    struct config cfg;

    must_parse(yaml, &cfg);
    assert_int_equal(cfg.threads, 2);
    assert_int_equal(cfg.n_relays, 2);
    assert_false(cfg.relays[0].keepalive);
    assert_true(cfg.relays[0].splice);
    assert_true(cfg.relays[1].keepalive);
    assert_endpoint(&cfg.relays[1].target, "vsock:3:1");
    config_free(&cfg);
}

static void
test_limits_accepted(void **state)
{
    (void)state;
    struct config cfg;
    char yaml[4096];
    size_t n;

    must_parse("threads: 256\nrelays:\n" RELAY_OK "    max_connections: 10000000\n", &cfg);
    assert_int_equal(cfg.threads, 256);
    assert_int_equal(cfg.relays[0].max_connections, 10000000);
    config_free(&cfg);

    /* 63 characters is the longest name. */
    must_parse("relays:\n" RELAY_OK
               "    name: abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_\n",
               &cfg);
    assert_int_equal(strlen(cfg.relays[0].name), 63);
    config_free(&cfg);

    /* 64 allow rules is the most. */
    n = (size_t)snprintf(yaml, sizeof(yaml), "relays:\n" RELAY_OK "    allow:\n");
    for (int i = 0; i < CONF_ALLOW_MAX; i++)
        n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "      - 10.0.%d.0/24\n", i);
    must_parse(yaml, &cfg);
    assert_int_equal(cfg.relays[0].n_allow, CONF_ALLOW_MAX);
    config_free(&cfg);

    /* An empty allow list allows everyone. */
    must_parse("relays:\n" RELAY_OK "    allow: []\n", &cfg);
    assert_int_equal(cfg.relays[0].n_allow, 0);
    config_free(&cfg);

    /* A vsock listener may be any CID; hvsock and unix listeners are fine
     * without an allowlist. */
    must_parse("relays:\n"
               "  - listen: hvsock:/run/v.sock:1024\n"
               "    target: unix:/run/app.sock\n",
               &cfg);
    assert_int_equal(cfg.relays[0].listen.kind, EP_HVSOCK);
    config_free(&cfg);
}

static void
test_duration(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        unsigned ms;
    } ok[] = {
        {"0", 0},
        {"30", 30000},
        {"250ms", 250},
        {"5s", 5000},
        {"2m", 120000},
        {"1h", 3600000},
        {"007s", 7000},
        {"0ms", 0},
        {"4294967295ms", 4294967295u},
        {"4294967s", 4294967000u},
        {"1193h", 1193u * 3600000u},
    };
    static const char *const bad[] = {
        "",
        "s",
        "ms",
        "-1",
        "+1",
        "1.5s",
        " 5s",
        "5s ",
        "5 s",
        "5S",
        "5sec",
        "1h30m",
        "1d",
        "0x10",
        "5ms5",
        "4294967296ms",
        "4294968s",
        "1194h",
        "99999999999999999999",
        "71583m",
    };
    unsigned ms;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ms = 12345;
        if (units_duration(ok[i].in, &ms) != 0)
            fail_msg("units_duration(\"%s\") failed", ok[i].in);
        assert_int_equal(ms, ok[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ms = 12345;
        if (units_duration(bad[i], &ms) != -EINVAL)
            fail_msg("units_duration(\"%s\") accepted", bad[i]);
        assert_int_equal(ms, 12345);
    }
    assert_int_equal(units_duration(NULL, &ms), -EINVAL);
}

static void
test_err_yaml_syntax(void **state)
{
    (void)state;
    expect_error("relays:\n"
                 "  - listen: tcp:0.0.0.0:1\n"
                 "   target: vsock:3:1\n",
                 "airlock.yaml:3: invalid YAML: did not find expected '-' indicator "
                 "(while parsing a block collection on line 2)");
    expect_error("threads: 1\n"
                 "log_level: \"info\n",
                 "airlock.yaml:3: invalid YAML: found unexpected end of stream "
                 "(while scanning a quoted scalar on line 2)");
    expect_error("relays:\n"
                 "  - listen: *nowhere\n",
                 "airlock.yaml:2: invalid YAML: found undefined alias; unquoted, a value that "
                 "starts with '*' is a YAML alias (*name): quote it, \"*nowhere\"");
    /* Invalid UTF-8 comes from libyaml's reader, which reports an offset. */
    expect_error("threads: 1\nlog_level: \xff\n",
                 "airlock.yaml:2: invalid YAML: invalid leading UTF-8 octet");
    expect_error_len("threads: 1\n\0", 12,
                     "airlock.yaml:2: invalid YAML: control characters are not allowed");
}

/* Returns prefix, then unit n times, then close n times, then suffix
 * (malloc'd). */
static char *
nested(const char *prefix, const char *unit, const char *close, size_t n, const char *suffix)
{
    size_t lp = strlen(prefix), lu = strlen(unit), lc = strlen(close), ls = strlen(suffix);
    char *s = malloc(lp + n * (lu + lc) + ls + 1), *p = s;

    assert_non_null(s);
    memcpy(p, prefix, lp);
    p += lp;
    for (size_t i = 0; i < n; i++, p += lu)
        memcpy(p, unit, lu);
    for (size_t i = 0; i < n; i++, p += lc)
        memcpy(p, close, lc);
    memcpy(p, suffix, ls + 1);
    return s;
}

/* Deep nesting, many anchors and many directives are refused before
 * libyaml's loader sees them (each costs it quadratic time). */
static void
test_err_yaml_bounds(void **state)
{
    (void)state;
    const char *deep = "airlock.yaml:1: nesting deeper than 64";
    static const struct {
        const char *prefix, *unit, *close, *suffix;
    } forms[] = {
        {"", "[", "", "\n"},           /* unterminated */
        {"threads: ", "[", "]", "\n"}, /* well-formed */
        {"", "{a: ", "", "\n"},        {"threads: ", "{a: ", "}", "\n"}, {"", "- ", "", "x\n"},
    };
    char *s;

    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        s = nested(forms[i].prefix, forms[i].unit, forms[i].close, 100000, forms[i].suffix);
        expect_error(s, deep);
        free(s);
    }
    /* the root mapping and 63 lists: at the limit, the schema speaks */
    s = nested("threads: ", "[", "]", 63, "\n");
    expect_error(s, "airlock.yaml:1: threads: expected an integer from 0 to 256 (0: one per "
                    "core), not a list");
    free(s);
    s = nested("threads: ", "[", "]", 64, "\n");
    expect_error(s, deep);
    free(s);
    /* one level per line: the line of the first level too deep */
    size_t cap = 64 * 1024, len = 0;
    char *b = malloc(cap);
    assert_non_null(b);
    for (int i = 0; i < 70; i++)
        len += (size_t)snprintf(b + len, cap - len, "%*sk%d:\n", 2 * i, "", i);
    expect_error(b, "airlock.yaml:65: nesting deeper than 64");

    len = (size_t)snprintf(b, cap, "threads:\n");
    for (int i = 0; i < 256; i++)
        len += (size_t)snprintf(b + len, cap - len, "  - &a%d x\n", i);
    expect_error(b, "airlock.yaml:2: threads: expected an integer from 0 to 256 (0: one per "
                    "core), not a list");
    len += (size_t)snprintf(b + len, cap - len, "  - *a0\n");
    expect_error(b, "airlock.yaml:258: more than 256 anchors and aliases (&name, *name)");

    len = 0;
    for (int i = 0; i < 16; i++)
        len += (size_t)snprintf(b + len, cap - len, "%%TAG !t%d! tag:example.com,2024:%d:\n", i, i);
    snprintf(b + len, cap - len, "---\nthreads: x\n");
    expect_error(b, "airlock.yaml:18: threads: expected an integer from 0 to 256 (0: one "
                    "per core)");
    snprintf(b + len, cap - len, "%%TAG !u! tag:u:\n---\nthreads: 1\n");
    expect_error(b, "airlock.yaml:17: more than 16 YAML directives (%TAG, %YAML)");
    free(b);
}

static void
test_err_empty(void **state)
{
    (void)state;
    const char *empty = "airlock.yaml:1: expected settings (a mapping with relays:), found an "
                        "empty file";

    expect_error("", empty);
    expect_error("# nothing here\n\n", empty);
    expect_error_len(NULL, 0, empty);
    expect_error("---\n", "airlock.yaml:2: expected settings (a mapping with relays:), found an "
                          "empty document");
}

static void
test_err_root(void **state)
{
    (void)state;
#define ROOT_KEYS                                                                                  \
    "(threads, log_level, log_format, metrics, drain_timeout, relays, routers, logs, log_sinks, "  \
    "directory, control, pools, pool_record, broker, proxies)"
    expect_error("- relays\n",
                 "airlock.yaml:1: expected a mapping of settings " ROOT_KEYS ", not a list");
    expect_error("hello\n", "airlock.yaml:1: expected a mapping of settings " ROOT_KEYS
                            ", not a single value");
#undef ROOT_KEYS
    expect_error("relays:\n" RELAY_OK "---\n"
                 "relays:\n" RELAY_OK,
                 "airlock.yaml:5: expected a single YAML document; found another one");
}

static void
test_err_unknown_key(void **state)
{
    (void)state;
    expect_error("relays:\n"
                 "  - lisen: tcp:0.0.0.0:1\n"
                 "    target: vsock:3:1\n",
                 "airlock.yaml:2: relays[0]: unknown key 'lisen' (did you mean 'listen'?)");
    expect_error("thread: 2\n", "airlock.yaml:1: unknown key 'thread' (did you mean 'threads'?)");
    expect_error("relays:\n" RELAY_OK "    idel_timout: 5s\n",
                 "airlock.yaml:4: relays[0]: unknown key 'idel_timout' (did you mean "
                 "'idle_timeout'?)");
    expect_error("relays:\n" RELAY_OK "    Target: vsock:3:1\n",
                 "airlock.yaml:4: relays[0]: unknown key 'Target' (did you mean 'target'?)");
    expect_error("relays:\n" RELAY_OK "    color: blue\n",
                 "airlock.yaml:4: relays[0]: unknown key 'color'");
    expect_error("listen: tcp:0.0.0.0:1\n",
                 "airlock.yaml:1: unknown key 'listen' (it is a relay setting: put it in a "
                 "relay under relays:)");
    expect_error("relays:\n" RELAY_OK "    threads: 2\n",
                 "airlock.yaml:4: relays[0]: unknown key 'threads' (it is a top-level setting, "
                 "not a relay one)");
    /* Hostile keys are echoed printable and short. */
    expect_error("\"a\\tb\\u00e9cdefghijklmnopqrstuvwxyz0123456789\": 1\n",
                 "airlock.yaml:1: unknown key 'a?b??cdefghijklmnopqrstuvwxyz012...'");
    expect_error("[a, b]: 1\n", "airlock.yaml:1: expected a key name, not a list");
}

static void
test_err_duplicate_key(void **state)
{
    (void)state;
    expect_error("threads: 1\n"
                 "relays:\n" RELAY_OK "threads: 2\n",
                 "airlock.yaml:5: threads: duplicate key; first set on line 1");
    expect_error("relays:\n" RELAY_OK "    listen: tcp:0.0.0.0:9\n",
                 "airlock.yaml:4: relays[0].listen: duplicate key; first set on line 2");
}

static void
test_err_wrong_type(void **state)
{
    (void)state;
    expect_error("relays:\n"
                 "  - listen: [tcp:0.0.0.0:1]\n"
                 "    target: vsock:3:1\n",
                 "airlock.yaml:2: relays[0].listen: expected an endpoint (" EP_FORMS
                 ") or a mapping {endpoint, mode, owner, group}, not a list");
    expect_error("threads: {n: 2}\n",
                 "airlock.yaml:1: threads: expected an integer from 0 to 256 (0: one per core), "
                 "not a mapping");
    expect_error("relays:\n" RELAY_OK "    allow: 10.0.0.0/8\n",
                 "airlock.yaml:4: relays[0].allow: expected a list of rules (10.0.0.0/8, "
                 "cid:16), not a single value");
    expect_error("relays:\n" RELAY_OK "    allow: [[10.0.0.0/8]]\n",
                 "airlock.yaml:4: relays[0].allow[0]: expected a CIDR (10.0.0.0/8, "
                 "[2001:db8::]/32), an address or cid:N, not a list");
    expect_error("relays: tcp:0.0.0.0:1\n",
                 "airlock.yaml:1: relays: expected a list of relays, not a single value");
    expect_error("relays:\n  listen: tcp:0.0.0.0:1\n",
                 "airlock.yaml:2: relays: expected a list of relays, not a mapping");
    expect_error("relays:\n  - tcp:0.0.0.0:1\n",
                 "airlock.yaml:2: relays[0]: expected a mapping of relay settings (listen, "
                 "target, ...), not a single value");
    expect_error("relays:\n" RELAY_OK "    keepalive: [true]\n",
                 "airlock.yaml:4: relays[0].keepalive: expected true or false, not a list");
    /* An alias back to an ancestor is just a node of the wrong type. */
    expect_error("relays: &r [*r]\n",
                 "airlock.yaml:1: relays[0]: expected a mapping of relay settings (listen, "
                 "target, ...), not a list");
    expect_error("relays:\n" RELAY_OK "    name: \"we\\0b\"\n",
                 "airlock.yaml:4: relays[0].name: expected a name of 1-63 characters from A-Z "
                 "a-z 0-9 _ . -, not text with a NUL byte");
}

static void
test_err_relays(void **state)
{
    (void)state;
    expect_error("threads: 1\n", "airlock.yaml:1: relays: expected at least one relay");
    expect_error("threads: 1\nrelays: []\n", "airlock.yaml:2: relays: expected at least one relay");
    expect_error("threads: 1\nrelays:\n", "airlock.yaml:2: relays: expected at least one relay");
}

static void
test_err_missing(void **state)
{
    (void)state;
    expect_error("relays:\n"
                 "  - name: web\n"
                 "    target: vsock:3:1\n",
                 "airlock.yaml:2: relays[0].listen: missing from relay 'web': expected an "
                 "endpoint (" EP_FORMS ")");
    expect_error("relays:\n" RELAY_OK "  - listen: tcp:0.0.0.0:2\n",
                 "airlock.yaml:4: relays[1].target: missing from relay 'relay2': expected an "
                 "endpoint (" EP_FORMS ") or egress, or targets: a list of endpoints");
    expect_error("relays:\n  - {}\n", "airlock.yaml:2: relays[0].listen: missing from relay "
                                      "'relay1': expected an endpoint (" EP_FORMS ")");
}

static void
test_err_numbers(void **state)
{
    (void)state;
    const char *threads = "airlock.yaml:1: threads: expected an integer from 0 to 256 (0: one "
                          "per core)";
    const char *maxconn = "airlock.yaml:4: relays[0].max_connections: expected an integer from "
                          "0 to 10000000 (0: no limit)";

    expect_error("threads: -1\n", threads);
    expect_error("threads: two\n", threads);
    expect_error("threads: 257\n", threads);
    expect_error("threads: 1.5\n", threads);
    expect_error("threads: 0x10\n", threads);
    expect_error("threads: 99999999999999999999999\n", threads);
    expect_error("threads:\n", threads);
    expect_error("relays:\n" RELAY_OK "    max_connections: 10000001\n", maxconn);
    expect_error("relays:\n" RELAY_OK "    max_connections: -5\n", maxconn);
    expect_error("relays:\n" RELAY_OK "    max_connections: lots\n", maxconn);
}

static void
test_err_duration(void **state)
{
    (void)state;
    expect_error("drain_timeout: 1d\n",
                 "airlock.yaml:1: drain_timeout: expected a duration (250ms, 5s, 2m, 1h; a bare "
                 "integer is seconds)");
    expect_error("relays:\n" RELAY_OK "    idle_timeout: -1s\n",
                 "airlock.yaml:4: relays[0].idle_timeout: expected a duration (250ms, 5s, 2m, "
                 "1h; a bare integer is seconds)");
    expect_error("relays:\n" RELAY_OK "    connect_timeout: 5000000h\n",
                 "airlock.yaml:4: relays[0].connect_timeout: expected a duration (250ms, 5s, 2m, "
                 "1h; a bare integer is seconds)");
    expect_error("relays:\n" RELAY_OK "    connect_timeout: 0\n",
                 "airlock.yaml:4: relays[0].connect_timeout: expected a duration above 0 "
                 "(250ms, 5s, 2m, 1h)");
}

static void
test_err_enums(void **state)
{
    (void)state;
    expect_error("log_level: verbose\n",
                 "airlock.yaml:1: log_level: expected error, warn, info or debug");
    expect_error("relays:\n" RELAY_OK "    send_proxy: v1\n",
                 "airlock.yaml:4: relays[0].send_proxy: expected v2 or none");
    expect_error("relays:\n" RELAY_OK "    accept_proxy: true\n",
                 "airlock.yaml:4: relays[0].accept_proxy: expected v2 or none");
    expect_error("relays:\n" RELAY_OK "    splice: maybe\n",
                 "airlock.yaml:4: relays[0].splice: expected true or false");
}

static void
test_err_name(void **state)
{
    (void)state;
    const char *bad = "airlock.yaml:4: relays[0].name: expected a name of 1-63 characters from "
                      "A-Z a-z 0-9 _ . -";

    expect_error("relays:\n" RELAY_OK "    name: web server\n", bad);
    expect_error("relays:\n" RELAY_OK "    name: \"\"\n", bad);
    expect_error("relays:\n" RELAY_OK "    name: caf\xc3\xa9\n", bad);
    expect_error("relays:\n" RELAY_OK
                 "    name: abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_x\n",
                 bad);
}

static void
test_err_duplicate_name(void **state)
{
    (void)state;
    expect_error("relays:\n"
                 "  - name: web\n"
                 "    listen: tcp:0.0.0.0:1\n"
                 "    target: vsock:3:1\n"
                 "  - name: web\n"
                 "    listen: tcp:0.0.0.0:2\n"
                 "    target: vsock:3:1\n",
                 "airlock.yaml:5: relays[1].name: expected a unique name; relays[0] is already "
                 "called 'web'");
    expect_error("relays:\n"
                 "  - name: relay2\n"
                 "    listen: tcp:0.0.0.0:1\n"
                 "    target: vsock:3:1\n"
                 "  - listen: tcp:0.0.0.0:2\n"
                 "    target: vsock:3:1\n",
                 "airlock.yaml:5: relays[1].name: expected a name: the default 'relay2' is "
                 "already used by relays[0]");
}

static void
test_err_duplicate_listen(void **state)
{
    (void)state;
    expect_error("relays:\n"
                 "  - name: a\n"
                 "    listen: tcp:0.0.0.0:1\n"
                 "    target: vsock:3:1\n"
                 "  - name: b\n"
                 "    target: vsock:3:2\n"
                 "    listen: tcp:0.0.0.0:1\n",
                 "airlock.yaml:7: relays[1].listen: expected an endpoint no other relay listens "
                 "on; relays[0] ('a') already listens on tcp:0.0.0.0:1");
    expect_error("metrics: tcp:0.0.0.0:8443\n"
                 "relays:\n" RELAY_OK,
                 "airlock.yaml:1: metrics: expected an endpoint no relay listens on; relays[0] "
                 "('relay1') already listens on tcp:0.0.0.0:8443");
}

/* Listeners that cannot both bind: run would fail on the second. */
#define TWO_RELAYS(a, b)                                                                           \
    "relays:\n  - listen: " a "\n    target: vsock:3:1\n  - listen: " b "\n    target: "           \
    "vsock:3:2\n"
#define CLASH(a)                                                                                   \
    "airlock.yaml:4: relays[1].listen: expected an endpoint no other relay listens on; relays[0] " \
    "('relay1') already listens on " a

static void
test_err_listen_clash(void **state)
{
    (void)state;
    struct config cfg;

    /* a wildcard address and another of its family, either way round */
    expect_error(TWO_RELAYS("tcp:0.0.0.0:8080", "tcp:127.0.0.1:8080"), CLASH("tcp:0.0.0.0:8080"));
    expect_error(TWO_RELAYS("tcp:127.0.0.1:8080", "tcp:0.0.0.0:8080"), CLASH("tcp:127.0.0.1:8080"));
    expect_error(TWO_RELAYS("udp:[::1]:53", "udp:[::]:53"), CLASH("udp:[::1]:53"));
    expect_error(TWO_RELAYS("vsock:any:80", "vsock:3:80"), CLASH("vsock:any:80"));
    /* one socket file, whatever the kind and port */
    expect_error(TWO_RELAYS("unix:/tmp/a.sock", "hvsock:/tmp/a.sock:5"), CLASH("unix:/tmp/a.sock"));
    expect_error(TWO_RELAYS("hvsock:/tmp/a.sock:1", "hvsock:/tmp/a.sock:2"),
                 CLASH("hvsock:/tmp/a.sock:1"));
    /* and between roles */
    expect_error("metrics: tcp:0.0.0.0:8443\nrelays:\n  - listen: tcp:127.0.0.1:8443\n"
                 "    target: vsock:16:8443\n",
                 "airlock.yaml:1: metrics: expected an endpoint no relay listens on; relays[0] "
                 "('relay1') already listens on tcp:127.0.0.1:8443");
    expect_error("relays:\n  - listen: tcp:0.0.0.0:8443\n    target: vsock:16:8443\n"
                 "proxies:\n  - listen: tcp:127.0.0.1:8443\n    backend: tcp:127.0.0.1:1\n",
                 "airlock.yaml:5: proxies[0].listen: expected an endpoint nothing else listens on; "
                 "a relay already listens on tcp:0.0.0.0:8443");
    expect_error("directory: {backend: memory}\ncontrol: unix:/tmp/c.sock\n"
                 "log_sinks:\n  - listen: hvsock:/tmp/c.sock:9\n    file: /tmp/x.log\n",
                 "airlock.yaml:2: control: expected an endpoint nothing else listens on; "
                 "log_sinks[0] ('sink1') already listens on hvsock:/tmp/c.sock:9");
    /* these bind side by side: IPv6 listeners are IPv6 only; tcp and udp;
     * two addresses; two CIDs */
    must_parse(TWO_RELAYS("tcp:0.0.0.0:8080", "tcp:[::1]:8080"), &cfg);
    config_free(&cfg);
    must_parse(TWO_RELAYS("tcp:[::]:8080", "tcp:127.0.0.1:8080"), &cfg);
    config_free(&cfg);
    must_parse(TWO_RELAYS("tcp:0.0.0.0:53", "udp:127.0.0.1:53"), &cfg);
    config_free(&cfg);
    must_parse(TWO_RELAYS("tcp:127.0.0.1:80", "tcp:127.0.0.2:80"), &cfg);
    config_free(&cfg);
    must_parse(TWO_RELAYS("vsock:3:80", "vsock:4:80"), &cfg);
    config_free(&cfg);
    /* a listener binds an address, never a name */
    expect_error("relays:\n  - listen: tcp:localhost:8080\n    target: vsock:3:1\n",
                 "airlock.yaml:2: relays[0].listen: expected an IP address to listen on (0.0.0.0, "
                 "127.0.0.1, [::1]), not the name 'localhost'");
    expect_error("metrics: {endpoint: 'tcp:metrics.example:9100'}\nrelays:\n" RELAY_OK,
                 "airlock.yaml:1: metrics: expected an IP address to listen on (0.0.0.0, "
                 "127.0.0.1, [::1]), not the name 'metrics.example'");
}

static void
test_err_endpoint(void **state)
{
    (void)state;
    expect_error("relays:\n"
                 "  - name: a\n"
                 "    listen: tcp:0.0.0.0:1\n"
                 "    target: vsock:3:1\n"
                 "  - name: b\n"
                 "    target: vsock:3:2\n"
                 "    listen: tcp:0.0.0.0:0\n",
                 "airlock.yaml:7: relays[1].listen: expected an endpoint (" EP_FORMS
                 "): tcp: port must be 1-65535");
    expect_error("metrics: http://localhost:9100\n",
                 "airlock.yaml:1: metrics: expected an endpoint (" EP_FORMS
                 "): expected tcp:HOST:PORT, udp:HOST:PORT, unix:PATH, vsock:CID:PORT or "
                 "hvsock:PATH:PORT");
}

/* Both sides of a datagram relay pair, with every datagram setting. */
static void
test_udp(void **state)
{
    (void)state;
    struct config cfg;

    must_parse("relays:\n"
               "  - name: dns-enclave\n"
               "    listen: udp:127.0.0.1:53\n"
               "    target: vsock:3:53\n"
               "    allow: [127.0.0.0/8]\n"
               "    max_datagram: 65507\n"
               "    flow_idle_timeout: 500ms\n"
               "  - name: dns-host\n"
               "    listen: vsock:any:53\n"
               "    target: udp:10.0.0.2:53\n"
               "    max_datagram: 1\n"
               "    dns_allow: [Example.COM., \"*.example.org\", _ntp._udp.x-1.test]\n"
               "  - name: ntp-host\n"
               "    listen: hvsock:/run/v.sock:123\n"
               "    target: udp:ntp.test:123\n",
               &cfg);
    assert_int_equal(cfg.n_relays, 3);
    assert_true(relay_conf_is_dgram(&cfg.relays[0]));
    assert_int_equal(cfg.relays[0].listen.kind, EP_UDP);
    assert_int_equal(cfg.relays[0].max_datagram, 65507);
    assert_int_equal(cfg.relays[0].flow_idle_timeout_ms, 500);
    assert_int_equal(cfg.relays[0].n_allow, 1);
    assert_int_equal(cfg.relays[1].max_datagram, 1);
    assert_int_equal(cfg.relays[1].flow_idle_timeout_ms, 60000);
    assert_int_equal(cfg.relays[1].n_dns_allow, 3);
    assert_string_equal(cfg.relays[1].dns_allow[0], "example.com");
    assert_string_equal(cfg.relays[1].dns_allow[1], "*.example.org");
    assert_string_equal(cfg.relays[1].dns_allow[2], "_ntp._udp.x-1.test");
    assert_int_equal(cfg.relays[2].max_datagram, 4096);
    assert_int_equal(cfg.relays[2].n_dns_allow, 0);
    assert_false(relay_conf_is_dgram(&(struct relay_conf){.listen.kind = EP_TCP}));
    config_free(&cfg);
}

static void
test_err_udp(void **state)
{
    (void)state;
    char yaml[8192];
    size_t n;

    expect_error("relays:\n"
                 "  - listen: udp:0.0.0.0:53\n"
                 "    target: udp:10.0.0.1:53\n",
                 "airlock.yaml:3: relays[0].target: expected a stream endpoint (tcp, unix, vsock, "
                 "hvsock): a datagram relay carries udp over a stream, udp to udp is not "
                 "supported");
    expect_error("relays:\n"
                 "  - listen: udp:0.0.0.0:53\n"
                 "    target: vsock:3:53\n"
                 "    send_proxy: v2\n",
                 "airlock.yaml:4: relays[0].send_proxy: PROXY headers apply to stream relays, not "
                 "to udp ones");
    expect_error("relays:\n"
                 "  - listen: tcp:0.0.0.0:53\n"
                 "    target: udp:10.0.0.1:53\n"
                 "    accept_proxy: v2\n",
                 "airlock.yaml:4: relays[0].accept_proxy: PROXY headers apply to stream relays, "
                 "not to udp ones");
    expect_error("relays:\n"
                 "  - listen: udp:0.0.0.0:53\n"
                 "    target: vsock:3:53\n"
                 "    dns_allow: [example.com]\n",
                 "airlock.yaml:4: relays[0].dns_allow: dns_allow applies to stream -> udp relays "
                 "(the host side, in front of the resolver)");
    expect_error("relays:\n" RELAY_OK "    dns_allow: [example.com]\n",
                 "airlock.yaml:4: relays[0].dns_allow: dns_allow applies to stream -> udp relays "
                 "(the host side, in front of the resolver)");
    expect_error("relays:\n" RELAY_OK "    max_datagram: 512\n",
                 "airlock.yaml:4: relays[0].max_datagram: applies to datagram relays (a udp "
                 "listen or target) only");
    expect_error("relays:\n" RELAY_OK "    flow_idle_timeout: 5s\n",
                 "airlock.yaml:4: relays[0].flow_idle_timeout: applies to datagram relays (a udp "
                 "listen or target) only");
    static const char *const bad_sizes[] = {"0", "65508", "-1", "4k", "[1]"};
    for (size_t i = 0; i < 5; i++) {
        snprintf(yaml, sizeof(yaml),
                 "relays:\n  - listen: udp:0.0.0.0:53\n    target: vsock:3:53\n"
                 "    max_datagram: %s\n",
                 bad_sizes[i]);
        expect_error(yaml, i < 4 ? "airlock.yaml:4: relays[0].max_datagram: expected an integer "
                                   "from 1 to 65507 (the largest UDP payload)"
                                 : "airlock.yaml:4: relays[0].max_datagram: expected an integer "
                                   "from 1 to 65507 (the largest UDP payload), not a list");
    }
    expect_error("relays:\n  - listen: udp:0.0.0.0:53\n    target: vsock:3:53\n"
                 "    flow_idle_timeout: 0\n",
                 "airlock.yaml:4: relays[0].flow_idle_timeout: expected a duration above 0 "
                 "(250ms, 5s, 2m, 1h)");
    expect_error("relays:\n  - listen: udp:0.0.0.0:53\n    target: vsock:3:53\n"
                 "    allow: [cid:3]\n",
                 "airlock.yaml:4: relays[0].allow[0]: expected a CIDR or address: a tcp or udp "
                 "listener sees IP peers, cid: rules are for vsock listeners");

    static const struct {
        const char *name, *why;
    } bad_names[] = {
        {"\"\"", "expected a name such as example.com or *.example.com"},
        {"\".\"", "expected a name such as example.com or *.example.com"},
        {"a..b", "expected a name without empty labels"},
        {".a", "expected a name without empty labels"},
        {"a.b..", "expected a name without empty labels"},
        {"\"*\"", "expected labels of letters, digits, '-' and '_' (\"*.\" only at the start)"},
        {"\"a.*.b\"", "expected labels of letters, digits, '-' and '_' (\"*.\" only at the start)"},
        {"\"*.\"", "expected a name such as example.com or *.example.com"},
        {"\"ex ample.com\"",
         "expected labels of letters, digits, '-' and '_' (\"*.\" only at the start)"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com",
         "expected labels of at most 63 characters"},
    };
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        char msg[512];
        snprintf(yaml, sizeof(yaml),
                 "relays:\n  - listen: unix:/run/d.sock\n    target: udp:127.0.0.1:53\n"
                 "    dns_allow:\n      - ok.test\n      - %s\n",
                 bad_names[i].name);
        snprintf(msg, sizeof(msg),
                 "airlock.yaml:6: relays[0].dns_allow[1]: expected a name (example.com) or a "
                 "wildcard (*.example.com): %s",
                 bad_names[i].why);
        expect_error(yaml, msg);
    }
    n = (size_t)snprintf(yaml, sizeof(yaml),
                         "relays:\n  - listen: unix:/run/d.sock\n    target: udp:127.0.0.1:53\n"
                         "    dns_allow:\n");
    for (int i = 0; i <= CONF_DNS_ALLOW_MAX; i++)
        n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "      - n%d.test\n", i);
    expect_error(yaml, "airlock.yaml:5: relays[0].dns_allow: expected at most 64 names");
    /* 253 characters is the longest name */
    n = (size_t)snprintf(yaml, sizeof(yaml),
                         "relays:\n  - listen: unix:/run/d.sock\n    target: udp:127.0.0.1:53\n"
                         "    dns_allow: [\"*.");
    for (int i = 0; i < 4; i++)
        n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "%.*s%s", i < 3 ? 63 : 62,
                              "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                              i < 3 ? "." : "\"]\n");
    expect_error(yaml, "airlock.yaml:4: relays[0].dns_allow[0]: expected a name (example.com) or "
                       "a wildcard (*.example.com): expected a name of at most 253 characters");
    memcpy(yaml + n - 4, "\"]\n", 4); /* drop one character: 253 */
    struct config cfg;
    must_parse(yaml, &cfg);
    assert_int_equal(strlen(cfg.relays[0].dns_allow[0]), 2 + 253);
    config_free(&cfg);
    expect_error("metrics: udp:127.0.0.1:9100\n",
                 "airlock.yaml:1: metrics: udp: metrics are served over HTTP; expected a tcp, "
                 "unix, vsock or hvsock endpoint");
}

static void
test_err_vsock_any_target(void **state)
{
    (void)state;
    expect_error("relays:\n"
                 "  - listen: tcp:0.0.0.0:1\n"
                 "    target: vsock:any:1\n",
                 "airlock.yaml:3: relays[0].target: expected the CID to connect to; vsock:any is "
                 "for listeners");
}

#define TARGETS_RELAY "  - listen: tcp:0.0.0.0:1\n"

static void
test_targets(void **state)
{
    (void)state;
    struct config cfg;

    must_parse("relays:\n" TARGETS_RELAY "    targets: [vsock:16:5000, vsock:17:5000]\n"
               "    balance: least_conn\n"
               "    health: {interval: 500ms, timeout: 250ms, fall: 1, rise: 5}\n",
               &cfg);
    const struct relay_conf *r = &cfg.relays[0];
    assert_int_equal(r->n_targets, 2);
    assert_int_equal(r->targets[1].kind, EP_VSOCK);
    assert_int_equal(r->targets[1].cid, 17);
    assert_int_equal(r->balance, BALANCE_LEAST_CONN);
    assert_int_equal(r->health.interval_ms, 500);
    assert_int_equal(r->health.timeout_ms, 250);
    assert_int_equal(r->health.fall, 1);
    assert_int_equal(r->health.rise, 5);
    config_free(&cfg);

    must_parse("relays:\n" TARGETS_RELAY "    targets: [unix:/run/blue.sock]\n", &cfg);
    r = &cfg.relays[0];
    assert_int_equal(r->balance, BALANCE_FIRST);
    assert_int_equal(r->health.interval_ms, HEALTH_INTERVAL_DEFAULT);
    assert_int_equal(r->health.fall, HEALTH_FALL_DEFAULT);
    assert_int_equal(r->health.rise, HEALTH_RISE_DEFAULT);
    config_free(&cfg);
}

static void
test_err_targets(void **state)
{
    (void)state;
    expect_error("relays:\n" TARGETS_RELAY "    targets: [vsock:16:1, \"hvsock:/d.sock:1\", "
                 "vsock:16:1]\n",
                 "airlock.yaml:3: relays[0].targets[2]: expected each endpoint once, not a "
                 "duplicate of targets[0]");
    expect_error("relays:\n" TARGETS_RELAY "    target: vsock:16:1\n    targets: [vsock:17:1]\n",
                 "airlock.yaml:4: relays[0].targets: expected target: or targets:, not both "
                 "(target: is the form for one)");
    expect_error("relays:\n" TARGETS_RELAY "    target: egress\n    egress_allow: [a.example:443]\n"
                 "    targets: [vsock:17:1]\n",
                 "airlock.yaml:5: relays[0].targets: expected target: or targets:, not both "
                 "(target: is the form for one)");
    expect_error("relays:\n" TARGETS_RELAY "    targets: []\n",
                 "airlock.yaml:3: relays[0].targets: expected 1-16 endpoints");
    expect_error("relays:\n" TARGETS_RELAY "    targets: [vsock:any:1]\n",
                 "airlock.yaml:3: relays[0].targets[0]: expected the CID to connect to; "
                 "vsock:any is for listeners");
    expect_error("relays:\n" TARGETS_RELAY "    targets: [udp:127.0.0.1:53]\n",
                 "airlock.yaml:3: relays[0].targets[0]: " EP_EXPECT_STREAM);
    expect_error("relays:\n  - listen: udp:0.0.0.0:1\n    targets: [vsock:16:1]\n",
                 "airlock.yaml:3: relays[0].targets: applies to stream relays, not to a udp "
                 "listener");
    expect_error("relays:\n" TARGETS_RELAY "    target: vsock:16:1\n    balance: first\n",
                 "airlock.yaml:4: relays[0].balance: applies to relays with targets: (several "
                 "endpoints) only");
    expect_error("relays:\n" TARGETS_RELAY "    target: vsock:16:1\n    health: {fall: 2}\n",
                 "airlock.yaml:4: relays[0].health: applies to relays with targets: (several "
                 "endpoints) only");
    expect_error("relays:\n" TARGETS_RELAY "    targets: [vsock:16:1]\n    balance: random\n",
                 "airlock.yaml:4: relays[0].balance: expected first or least_conn");
    expect_error("relays:\n" TARGETS_RELAY "    targets: [vsock:16:1]\n    health: {rise: 0}\n",
                 "airlock.yaml:4: relays[0].health.rise: expected an integer from 1 to 100");
    expect_error("relays:\n" TARGETS_RELAY "    targets: [vsock:16:1]\n"
                 "    health: {interval: 0s}\n",
                 "airlock.yaml:4: relays[0].health.interval: expected a duration above 0 (250ms, "
                 "5s, 2m, 1h)");
}

static void
test_err_allow(void **state)
{
    (void)state;
    char yaml[4096];
    size_t n;

    expect_error("relays:\n"
                 "  - listen: unix:/run/a.sock\n"
                 "    target: vsock:3:1\n"
                 "    allow: [10.0.0.0/8]\n",
                 "airlock.yaml:4: relays[0].allow: allow applies to tcp, udp and vsock listeners; "
                 "restrict a unix socket with file permissions");
    expect_error("relays:\n"
                 "  - listen: hvsock:/run/v.sock:5\n"
                 "    target: tcp:127.0.0.1:5\n"
                 "    allow: [cid:3]\n",
                 "airlock.yaml:4: relays[0].allow: allow applies to tcp, udp and vsock listeners; "
                 "restrict a unix socket with file permissions");
    expect_error("relays:\n" RELAY_OK "    allow:\n"
                 "      - 10.0.0.0/8\n"
                 "      - cid:16\n",
                 "airlock.yaml:6: relays[0].allow[1]: expected a CIDR or address: a tcp or udp "
                 "listener sees IP peers, cid: rules are for vsock listeners");
    expect_error("relays:\n"
                 "  - listen: vsock:any:1\n"
                 "    target: tcp:127.0.0.1:1\n"
                 "    allow: [cid:16, 10.0.0.0/8]\n",
                 "airlock.yaml:4: relays[0].allow[1]: expected a cid:N rule: a vsock listener "
                 "sees CID peers, CIDRs are for tcp listeners");
    expect_error("relays:\n" RELAY_OK "    allow: [10.0.0.1/8]\n",
                 "airlock.yaml:4: relays[0].allow[0]: expected a CIDR (10.0.0.0/8, "
                 "[2001:db8::]/32), an address or cid:N: address has bits set past the prefix "
                 "length (write 10.0.0.0/8, not 10.0.0.1/8)");

    n = (size_t)snprintf(yaml, sizeof(yaml), "relays:\n" RELAY_OK "    allow:\n");
    for (int i = 0; i <= CONF_ALLOW_MAX; i++)
        n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "      - 10.0.%d.0/24\n", i);
    expect_error(yaml, "airlock.yaml:5: relays[0].allow: expected at most 64 rules");
}

static void
test_egress(void **state)
{
    (void)state;
    struct config cfg;
    static const char yaml[] = "relays:\n"
                               "  - name: egress\n"
                               "    listen: vsock:any:8080\n"
                               "    target: egress\n"
                               "    egress_allow:\n"
                               "      - api.example.com:443\n"
                               "      - '*.s3.amazonaws.com:443'\n"
                               "      - 198.51.100.0/24:80-90\n"
                               "      - 10.1.2.3:5432\n"
                               "      - '[2001:db8::]/32:*'\n"
                               "  - name: out\n"
                               "    listen: tcp:127.0.0.1:15001\n"
                               "    target: vsock:3:8080\n"
                               "    send_proxy: v2\n"
                               "    original_dst: true\n";

    must_parse(yaml, &cfg);
    assert_int_equal(cfg.n_relays, 2);
    const struct relay_conf *e = &cfg.relays[0], *o = &cfg.relays[1];
    assert_true(e->egress);
    assert_false(e->original_dst);
    assert_int_equal(e->n_egress_allow, 5);
    assert_int_equal(e->egress_allow[0].kind, EGRESS_RULE_NAME);
    assert_string_equal(e->egress_allow[0].name, "api.example.com");
    assert_int_equal(e->egress_allow[1].kind, EGRESS_RULE_SUFFIX);
    assert_string_equal(e->egress_allow[1].name, ".s3.amazonaws.com");
    assert_int_equal(e->egress_allow[2].kind, EGRESS_RULE_V4);
    assert_int_equal(e->egress_allow[2].prefix, 24);
    assert_int_equal(e->egress_allow[2].port_lo, 80);
    assert_int_equal(e->egress_allow[2].port_hi, 90);
    assert_int_equal(e->egress_allow[4].kind, EGRESS_RULE_V6);
    assert_int_equal(e->egress_allow[4].port_hi, 65535);
    assert_false(o->egress);
    assert_true(o->original_dst);
    assert_int_equal(o->n_egress_allow, 0);
    config_free(&cfg);
}

#define EGRESS_RELAY "  - listen: vsock:any:8080\n    target: egress\n"

static void
test_err_egress(void **state)
{
    (void)state;
    char yaml[8192];
    size_t n;

    expect_error("relays:\n" EGRESS_RELAY,
                 "airlock.yaml:2: relays[0].egress_allow: expected 1-64 rules for target: egress "
                 "(an egress relay without rules would refuse every destination)");
    expect_error("relays:\n" EGRESS_RELAY "    egress_allow: []\n",
                 "airlock.yaml:4: relays[0].egress_allow: expected 1-64 rules (an empty list "
                 "would refuse every destination)");
    expect_error("relays:\n" EGRESS_RELAY "    egress_allow: api.example.com:443\n",
                 "airlock.yaml:4: relays[0].egress_allow: expected a list of rules "
                 "(api.example.com:443, 198.51.100.0/24:80-90), not a single value");
    expect_error("relays:\n" EGRESS_RELAY "    egress_allow:\n"
                 "      - api.example.com:443\n"
                 "      - api.example.com\n",
                 "airlock.yaml:6: relays[0].egress_allow[1]: expected DEST:PORTS: a host name, "
                 "*.suffix or CIDR, then a port, a range LO-HI or * (api.example.com:443, "
                 "*.example.com:443, 198.51.100.0/24:80-90, [2001:db8::]/32:443)");
    expect_error("relays:\n" EGRESS_RELAY "    egress_allow: ['2001:db8::1:443']\n",
                 "airlock.yaml:4: relays[0].egress_allow[0]: expected an IPv6 address in "
                 "brackets: [2001:db8::1]:443, [2001:db8::]/32:443");
    expect_error("relays:\n" EGRESS_RELAY "    egress_allow: [a.b:90-80]\n",
                 "airlock.yaml:4: relays[0].egress_allow[0]: expected a port 1-65535, a range "
                 "LO-HI (80-90) or * after the last ':'");
    expect_error("relays:\n" EGRESS_RELAY "    egress_allow: [[a.b:1]]\n",
                 "airlock.yaml:4: relays[0].egress_allow[0]: " EXPECT_EGRESS_RULE_TEXT
                 ", not a list");
    expect_error("relays:\n" RELAY_OK "    egress_allow: [a.b:1]\n",
                 "airlock.yaml:4: relays[0].egress_allow: egress_allow applies to relays with "
                 "target: egress");
    expect_error("relays:\n" EGRESS_RELAY "    egress_allow: [a.b:1]\n    send_proxy: v2\n",
                 "airlock.yaml:5: relays[0].send_proxy: expected none for target: egress: its "
                 "destinations are servers outside, not airlock");
    expect_error("relays:\n" EGRESS_RELAY "    egress_allow: [a.b:1]\n    accept_proxy: v2\n",
                 "airlock.yaml:5: relays[0].accept_proxy: expected none for target: egress: an "
                 "egress relay recognises a PROXY v2 header (or an HTTP CONNECT request) by "
                 "itself");
    expect_error("relays:\n"
                 "  - listen: tcp:127.0.0.1:1\n    target: egres\n",
                 "airlock.yaml:3: relays[0].target: expected an endpoint (" EP_FORMS
                 ") or egress: expected tcp:HOST:PORT, udp:HOST:PORT, unix:PATH, vsock:CID:PORT or "
                 "hvsock:PATH:PORT");
#define ORIG_MSG                                                                                   \
    "relays[0].original_dst: expected a tcp listener with send_proxy: v2 and an endpoint "         \
    "target: the original destination of a redirected connection travels in the PROXY header"
    expect_error("relays:\n" RELAY_OK "    original_dst: true\n", "airlock.yaml:4: " ORIG_MSG);
    expect_error("relays:\n"
                 "  - listen: unix:/run/a.sock\n    target: vsock:3:1\n"
                 "    send_proxy: v2\n    original_dst: true\n",
                 "airlock.yaml:5: " ORIG_MSG);
    expect_error("relays:\n" RELAY_OK "    original_dst: maybe\n",
                 "airlock.yaml:4: relays[0].original_dst: expected true or false");

    n = (size_t)snprintf(yaml, sizeof(yaml), "relays:\n" EGRESS_RELAY "    egress_allow:\n");
    for (int i = 0; i <= CONF_EGRESS_MAX; i++)
        n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "      - h%d.example:443\n", i);
    expect_error(yaml, "airlock.yaml:5: relays[0].egress_allow: expected 1-64 rules (an empty "
                       "list would refuse every destination)");
}

/* relay_conf_check() also serves relays built from the command line, so
 * its messages name the setting without a file or line. */
static void
test_relay_conf_check(void **state)
{
    (void)state;
    struct relay_conf rc;
    const char *why;
    char err[600];

    relay_conf_defaults(&rc);
    assert_int_equal(endpoint_parse("unix:/run/a.sock", &rc.listen, &why), PARSE_OK);
    assert_int_equal(endpoint_parse("vsock:3:1", &rc.target, &why), PARSE_OK);
    assert_int_equal(check_text(&rc, err, sizeof(err)), 0);

    rc.n_allow = 1;
    assert_int_equal(allow_parse("10.0.0.0/8", &rc.allow[0], &why), PARSE_OK);
    assert_int_equal(check_text(&rc, err, sizeof(err)), -1);
    assert_string_equal(err, "allow: allow applies to tcp, udp and vsock listeners; restrict a "
                             "unix socket with file permissions");

    assert_int_equal(endpoint_parse("vsock:any:1", &rc.listen, &why), PARSE_OK);
    assert_int_equal(check_text(&rc, err, sizeof(err)), -1);
    assert_string_equal(err, "allow[0]: expected a cid:N rule: a vsock listener sees CID peers, "
                             "CIDRs are for tcp listeners");

    rc.n_allow = 0;
    rc.max_connections = 10000001;
    assert_int_equal(check_text(&rc, err, sizeof(err)), -1);
    assert_string_equal(err, "max_connections: expected an integer from 0 to 10000000 (0: no "
                             "limit)");

    rc.max_connections = 0;
    assert_int_equal(endpoint_parse("udp:0.0.0.0:53", &rc.listen, &why), PARSE_OK);
    assert_int_equal(check_text(&rc, err, sizeof(err)), 0);
    rc.max_datagram = 65508;
    assert_int_equal(check_text(&rc, err, sizeof(err)), -1);
    assert_string_equal(err, "max_datagram: expected an integer from 1 to 65507 (the largest UDP "
                             "payload)");
    rc.max_datagram = 4096;
    rc.n_dns_allow = 1;
    assert_int_equal(check_text(&rc, err, sizeof(err)), -1);
    assert_string_equal(err, "dns_allow: dns_allow applies to stream -> udp relays (the host "
                             "side, in front of the resolver)");
    assert_int_equal(endpoint_parse("udp:0.0.0.0:53", &rc.target, &why), PARSE_OK);
    rc.n_dns_allow = 0;

    /* A short buffer gets a truncated, terminated message. */
    assert_int_equal(check_text(&rc, err, 8), -1);
    assert_string_equal(err, "target:");
}

static void
test_short_err_buffer(void **state)
{
    (void)state;
    struct config cfg;
    char err[16];

    assert_int_equal(parse("threads: x\n", &cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "airlock.yaml:1:");
    assert_int_equal(parse("threads: x\n", &cfg, NULL, 0), -1);
}

/* Asserts that yaml is refused with the n errors want, in this order,
 * total found, and that the failed parse left nothing behind. */
static void
expect_errors(const char *yaml, size_t total, const char *const *want, size_t n)
{
    struct config_errors *errs = malloc(sizeof(*errs));
    struct config cfg;

    assert_non_null(errs);
    memset(&cfg, 0xa5, sizeof(cfg));
    assert_int_equal(config_parse_all("airlock.yaml", yaml, strlen(yaml), &cfg, errs), -1);
    assert_int_equal(errs->total, total);
    assert_int_equal(errs->n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(errs->e[i].msg, want[i]);
    assert_null(cfg.relays);
    free(errs);
}

/* Every error of each key and block, in file order (routers: is walked
 * after the rest, a missing key is found after the keys of its block). */
static void
test_all_errors(void **state)
{
    (void)state;
    static const char *const want[] = {
        "airlock.yaml:1: routers[0].peek_timeout: expected a duration above 0 (250ms, 5s, 2m, "
        "1h)",
        "airlock.yaml:3: threads: expected an integer from 0 to 256 (0: one per core)",
        "airlock.yaml:8: relays[0].idle_timeout: expected a duration (250ms, 5s, 2m, 1h; a bare "
        "integer is seconds)",
        "airlock.yaml:9: relays[1].target: missing from relay 'relay2': expected an endpoint "
        "(" EP_FORMS ") or egress, or targets: a list of endpoints",
        "airlock.yaml:10: relays[1]: unknown key 'idle_timout' (did you mean 'idle_timeout'?)",
        "airlock.yaml:11: relays[1].keepalive: expected true or false",
        "airlock.yaml:12: relays[2].name: expected a unique name; relays[0] is already called "
        "'web'",
        "airlock.yaml:17: logs.buffer: expected a size from 64KiB to 1GiB (B, KiB, MiB, GiB; a "
        "bare integer is bytes)",
    };
    expect_errors("routers: [{listen: 'tcp:127.0.0.1:443', default: 'tcp:127.0.0.1:1', "
                  "peek_timeout: 0}]\n"
                  "log_level: info\n"
                  "threads: 999\n"
                  "relays:\n"
                  "  - name: web\n"
                  "    listen: tcp:127.0.0.1:80\n"
                  "    target: tcp:127.0.0.1:81\n"
                  "    idle_timeout: soon\n"
                  "  - listen: tcp:127.0.0.1:82\n"
                  "    idle_timout: 5s\n"
                  "    keepalive: maybe\n"
                  "  - name: web\n"
                  "    listen: tcp:127.0.0.1:83\n"
                  "    target: tcp:127.0.0.1:84\n"
                  "logs:\n"
                  "  forward: tcp:127.0.0.1:9\n"
                  "  buffer: 1B\n",
                  8, want, 8);
}

/* A YAML syntax error stops there: nothing after it can be trusted, and
 * nothing before it is walked. */
static void
test_all_errors_syntax(void **state)
{
    (void)state;
    static const char *const want[] = {
        "airlock.yaml:4: invalid YAML: did not find expected key (while parsing a block "
        "mapping on line 1)",
    };
    expect_errors("threads: 999\n"
                  "relays:\n"
                  "  - listen: tcp:127.0.0.1:80\n"
                  " target: tcp:127.0.0.1:80\n",
                  1, want, 1);
}

/* A garbage file is not a flood: the first CONFIG_ERRORS_MAX in the file
 * are kept, all are counted. */
static void
test_all_errors_cap(void **state)
{
    (void)state;
    const char *want[CONFIG_ERRORS_MAX];
    char msgs[CONFIG_ERRORS_MAX][128];
    size_t cap = 64 * 1024, len;
    char *yaml = malloc(cap);

    assert_non_null(yaml);
    len = (size_t)snprintf(yaml, cap, "relays:\n");
    for (int i = 0; i < 2 * CONFIG_ERRORS_MAX; i++)
        len += (size_t)snprintf(yaml + len, cap - len,
                                "  - {listen: 'tcp:127.0.0.1:%d', target: 'tcp:127.0.0.1:1', "
                                "splice: maybe}\n",
                                i + 1000);
    for (int i = 0; i < CONFIG_ERRORS_MAX; i++) {
        snprintf(msgs[i], sizeof(msgs[i]),
                 "airlock.yaml:%d: relays[%d].splice: expected true or "
                 "false",
                 i + 2, i);
        want[i] = msgs[i];
    }
    expect_errors(yaml, 2 * CONFIG_ERRORS_MAX, want, CONFIG_ERRORS_MAX);
    free(yaml);
}

/* YAML's quoting traps: the error says what YAML made of the text and
 * how to quote it. */
#define HINT_LIST "unquoted, [...] is a YAML list: quote the whole value, "
#define HINT_ALIAS(v)                                                                              \
    "; unquoted, a value that starts with '*' is a YAML alias (*name): quote it, \"" v "\""

static void
test_quoting_hints(void **state)
{
    (void)state;
    /* an IPv6 CIDR: a flow list, then junk */
    expect_error("relays:\n" RELAY_OK "    allow: [10.0.0.0/8, [2001:db8::]/32]\n",
                 "airlock.yaml:4: invalid YAML: found unexpected ':' (while scanning a plain "
                 "scalar on line 4); " HINT_LIST "\"[2001:db8::]/32\"");
    expect_error("relays:\n" RELAY_OK "    allow:\n      - [2001:db8::]/32\n",
                 "airlock.yaml:5: invalid YAML: found unexpected ':' (while scanning a plain "
                 "scalar on line 5); " HINT_LIST "\"[2001:db8::]/32\"");
    expect_error("relays:\n  - listen: tcp:0.0.0.0:8443\n    target: egress\n"
                 "    egress_allow: [[2001:db8::]/32:443]\n",
                 "airlock.yaml:4: invalid YAML: found unexpected ':' (while scanning a plain "
                 "scalar on line 4); " HINT_LIST "\"[2001:db8::]/32:443\"");
    /* an IPv6 address alone: a list of one */
    expect_error("relays:\n" RELAY_OK "    allow: [[2001:db8::1]]\n",
                 "airlock.yaml:4: relays[0].allow[0]: expected a CIDR (10.0.0.0/8, "
                 "[2001:db8::]/32), an address or cid:N, not a list (" HINT_LIST
                 "\"[2001:db8::1]\")");
    /* a wildcard name: an alias */
    expect_error("relays:\n  - listen: tcp:0.0.0.0:8443\n    target: egress\n"
                 "    egress_allow:\n      - *.example.com:443\n",
                 "airlock.yaml:5: invalid YAML: did not find expected alphabetic or numeric "
                 "character (while scanning an alias on line 5)" HINT_ALIAS("*.example.com:443"));
    expect_error("routers:\n  - listen: tcp:0.0.0.0:443\n"
                 "    routes: [{name: *.example.org, target: 'tcp:127.0.0.1:1'}]\n",
                 "airlock.yaml:3: invalid YAML: did not find expected alphabetic or numeric "
                 "character (while scanning an alias on line 3)" HINT_ALIAS("*.example.org"));
    /* YAML 1.1's words for true and false */
    expect_error("relays:\n" RELAY_OK "    send_proxy: no\n",
                 "airlock.yaml:4: relays[0].send_proxy: expected v2 or none (unquoted, 'no' is "
                 "true or false in YAML 1.1, not a value of this key)");
    expect_error("relays:\n" RELAY_OK "    allow: [On]\n",
                 "airlock.yaml:4: relays[0].allow[0]: expected a CIDR (10.0.0.0/8, "
                 "[2001:db8::]/32), an address or cid:N: invalid IPv4 address (unquoted, 'On' is "
                 "true or false in YAML 1.1, not a value of this key)");
    expect_error("relays:\n" RELAY_OK "    keepalive: Y\n",
                 "airlock.yaml:4: relays[0].keepalive: expected true or false ('Y' is true or "
                 "false to some YAML tools, not to others)");
    /* quoted, the same words are text: no hint */
    expect_error("relays:\n" RELAY_OK "    send_proxy: 'no'\n",
                 "airlock.yaml:4: relays[0].send_proxy: expected v2 or none");
    /* a tab */
    expect_error("relays:\n  - listen: tcp:0.0.0.0:8443\n\ttarget: vsock:16:8443\n",
                 "airlock.yaml:3: invalid YAML: found a tab character that violates indentation "
                 "(while scanning a plain scalar on line 2); a tab: YAML indents with spaces only");
    /* key:value without the space */
    expect_error("relays:\n  - listen:tcp:0.0.0.0:8443\n    target: vsock:16:8443\n",
                 "airlock.yaml:3: invalid YAML: mapping values are not allowed in this context; "
                 "line 2 has no space after 'listen:': YAML reads it as one word; write 'listen: "
                 "tcp:0.0.0.0:8443'");
    expect_error("relays:\n  - {name:web, listen: 'tcp:0.0.0.0:8443', target: 'vsock:16:1'}\n",
                 "airlock.yaml:2: relays[0]: unknown key 'name:web' (no space after 'name:': YAML "
                 "reads it as one word; write 'name: web')");
    expect_error("log_level:debug\nrelays:\n" RELAY_OK,
                 "airlock.yaml:2: invalid YAML: mapping values are not allowed in this context; "
                 "line 1 has no space after 'log_level:': YAML reads it as one word; write "
                 "'log_level: debug'");
    expect_error("relays:\n  - listen:tcp:0.0.0.0:8443\n",
                 "airlock.yaml:2: relays[0]: expected a mapping of relay settings (listen, target, "
                 "...), not a single value (no space after 'listen:': YAML reads it as one word; "
                 "write 'listen: tcp:0.0.0.0:8443')");
    /* '@' and '`' cannot start a plain value */
    expect_error("directory:\n  prefix: @airlock\n",
                 "airlock.yaml:2: invalid YAML: found character that cannot start any token "
                 "(while scanning for the next token on line 2); '@' is reserved in YAML: a value "
                 "that starts with it must be quoted, \"@airlock\"");
    expect_error("directory:\n  prefix: `airlock`\n",
                 "airlock.yaml:2: invalid YAML: found character that cannot start any token "
                 "(while scanning for the next token on line 2); '`' is reserved in YAML: a value "
                 "that starts with it must be quoted, \"`airlock`\"");
    /* quoted, each is what it says */
    must_free("directory:\n  prefix: '@airlock'\nrelays:\n" RELAY_OK
              "    allow: ['[2001:db8::]/32']\n");
}

static void
test_load(void **state)
{
    (void)state;
    char path[] = "/tmp/test_config_XXXXXX";
    struct config cfg;
    char err[512];
    int fd = mkstemp(path);
    static const char yaml[] = "relays:\n"
                               "  - listen: tcp:0.0.0.0:8443\n"
                               "    target: vsock:16:99999999999\n";

    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, sizeof(yaml) - 1), (ssize_t)(sizeof(yaml) - 1));
    close(fd);
    assert_int_equal(config_load(path, &cfg, err, sizeof(err)), -1);
    char want[512];
    snprintf(want, sizeof(want),
             "%s:3: relays[0].target: expected an endpoint (" EP_FORMS
             ") or egress: vsock: port must be 0-4294967294",
             path);
    assert_string_equal(err, want);

    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "relays:\n" RELAY_OK, strlen("relays:\n" RELAY_OK)),
                     (ssize_t)strlen("relays:\n" RELAY_OK));
    close(fd);
    assert_int_equal(config_load(path, &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.n_relays, 1);
    config_free(&cfg);
    unlink(path);

    assert_int_equal(config_load("/nonexistent/airlock.yaml", &cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "/nonexistent/airlock.yaml: cannot open: No such file or directory");
    assert_int_equal(config_load("/tmp", &cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "/tmp: not a regular file");
    /* a FIFO with no writer: refused, not waited on */
    char fifo[64];
    snprintf(fifo, sizeof(fifo), "/tmp/test_config_fifo.%d", (int)getpid());
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(config_load(fifo, &cfg, err, sizeof(err)), -1);
    unlink(fifo);
    assert_non_null(strstr(err, ": not a regular file"));
    config_free(&cfg);
}

/* Writes a router with n routes in block form to f, each about 110 bytes
 * (names and socket paths of a deployment with one route per user). */
static void
write_routes(FILE *f, size_t n)
{
    fputs("routers:\n  - listen: tcp:127.0.0.1:8443\n    routes:\n", f);
    for (size_t i = 0; i < n; i++)
        fprintf(f,
                "      - name: user-%06zu.customers.region-1.example.com\n"
                "        target: unix:/run/airlock/users/user-%06zu.sock\n",
                i, i);
}

/* A config file holds ROUTES_MAX routes (the file bound is no lower bound
 * on routes); one more route is refused by name, and a file above the
 * file bound with a clear message. */
static void
test_load_routes_max(void **state)
{
    (void)state;
    char path[] = "/tmp/test_config_XXXXXX", want[512], err[512];
    struct config cfg;
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

    assert_non_null(f);
    write_routes(f, ROUTES_MAX);
    assert_int_equal(fclose(f), 0);
    if (config_load(path, &cfg, err, sizeof(err)) != 0)
        fail_msg("%d routes: %s", ROUTES_MAX, err);
    assert_int_equal(cfg.relays[0].router.table.n, ROUTES_MAX);
    config_free(&cfg);

    assert_non_null(f = fopen(path, "w"));
    write_routes(f, ROUTES_MAX + 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(config_load(path, &cfg, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:4: routers[0].routes: expected at most %d routes", path,
             ROUTES_MAX);
    assert_string_equal(err, want);

    /* 16 MiB and one byte of a comment */
    assert_non_null(f = fopen(path, "w"));
    fputc('#', f);
    for (size_t i = 0; i < 16 * 1024; i++)
        fprintf(f, "%1024s", "");
    assert_int_equal(fclose(f), 0);
    assert_int_equal(config_load(path, &cfg, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: expected a config file of at most 16384 KiB", path);
    assert_string_equal(err, want);
    unlink(path);
}

static void
test_logs(void **state)
{
    struct config cfg;
    size_t n;
    (void)state;

    must_parse("logs:\n"
               "  forward: vsock:3:9200\n"
               "  capture_stderr: true\n"
               "  listen: unix:/run/airlock/log.sock\n"
               "  buffer: 4MiB\n"
               "  line_max: 1KiB\n"
               "log_sinks:\n"
               "  - name: enclave16\n"
               "    listen: vsock:any:9200\n"
               "    file: /var/log/enclave.log\n"
               "    line_max: 512B\n"
               "  - listen: hvsock:/run/dev.sock:9201\n"
               "    file: relative.log\n",
               &cfg);
    assert_int_equal(cfg.n_relays, 0);
    assert_true(cfg.logs.enabled);
    assert_endpoint(&cfg.logs.forward, "vsock:3:9200");
    assert_true(cfg.logs.capture_stderr);
    assert_true(cfg.logs.has_listen);
    assert_endpoint(&cfg.logs.listen, "unix:/run/airlock/log.sock");
    assert_int_equal(cfg.logs.buffer, 4 * 1024 * 1024);
    assert_int_equal(cfg.logs.line_max, 1024);
    assert_int_equal(cfg.n_sinks, 2);
    assert_string_equal(cfg.sinks[0].name, "enclave16");
    assert_endpoint(&cfg.sinks[0].listen, "vsock:any:9200");
    assert_string_equal(cfg.sinks[0].file, "/var/log/enclave.log");
    assert_int_equal(cfg.sinks[0].line_max, 512);
    assert_string_equal(cfg.sinks[1].name, "sink2");
    assert_string_equal(cfg.sinks[1].file, "relative.log");
    assert_int_equal(cfg.sinks[1].line_max, LOG_SINK_LINE_DEFAULT);
    config_free(&cfg);
    config_free(&cfg);

    /* defaults; relays alongside */
    must_parse("logs:\n  forward: unix:/x.sock\n  capture_stderr: yes\nrelays:\n" RELAY_OK, &cfg);
    assert_false(cfg.logs.has_listen);
    assert_int_equal(cfg.logs.buffer, LOG_BUFFER_DEFAULT);
    assert_int_equal(cfg.logs.line_max, LOG_LINE_DEFAULT);
    assert_int_equal(cfg.n_relays, 1);
    config_free(&cfg);
    /* a host name: resolved when the forwarder connects */
    must_parse("logs:\n  forward: tcp:logs.example:9200\n  capture_stderr: true\n", &cfg);
    assert_endpoint(&cfg.logs.forward, "tcp:logs.example:9200");
    config_free(&cfg);
    must_parse("relays:\n" RELAY_OK, &cfg);
    assert_false(cfg.logs.enabled);
    assert_int_equal(cfg.n_sinks, 0);
    config_free(&cfg);

    assert_int_equal(units_size("0", &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(units_size("64B", &n), 0);
    assert_int_equal(n, 64);
    assert_int_equal(units_size("3KiB", &n), 0);
    assert_int_equal(n, 3072);
    assert_int_equal(units_size("1GiB", &n), 0);
    assert_int_equal(n, 1024 * 1024 * 1024);
    assert_int_equal(units_size("1024GiB", &n), 0);
    assert_int_equal(n, 1024ull * 1024 * 1024 * 1024);
    n = 7;
    static const char *const bad[] = {"",
                                      "-1",
                                      "+1",
                                      " 1",
                                      "1 ",
                                      "1k",
                                      "1KB",
                                      "1kib",
                                      "1.5MiB",
                                      "1025GiB",
                                      "99999999999999999999",
                                      "MiB",
                                      "1MiBx"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(units_size(bad[i], &n), -EINVAL);
    assert_int_equal(n, 7);
}

#define BUF_MSG "expected a size from 64KiB to 1GiB (B, KiB, MiB, GiB; a bare integer is bytes)"
#define LINE_MSG "expected a size from 256B to 1MiB (B, KiB, MiB, GiB; a bare integer is bytes)"

static void
test_err_logs(void **state)
{
    (void)state;
    expect_error("logs: 1\n", "airlock.yaml:1: logs: expected a mapping of log settings "
                              "(forward, capture_stderr, listen, buffer, line_max), not a single "
                              "value");
    expect_error("logs:\n  capture_stderr: true\n",
                 "airlock.yaml:2: logs.forward: missing: expected the endpoint to forward log "
                 "lines to (" EP_FORMS ")");
    expect_error("logs:\n  forward: unix:/f\n",
                 "airlock.yaml:2: logs: expected capture_stderr: true or a listen endpoint; "
                 "nothing would be forwarded");
    expect_error("logs:\n  forward: vsock:any:9\n  capture_stderr: true\n",
                 "airlock.yaml:2: logs.forward: expected the CID to connect to; vsock:any is for "
                 "listeners");
    expect_error("logs:\n  forward: udp:127.0.0.1:9\n  capture_stderr: true\n",
                 "airlock.yaml:2: logs.forward: expected a stream endpoint (tcp, unix, vsock, "
                 "hvsock), not udp");
    expect_error("logs:\n  forward: unix:/f\n  listen: unix:/f\n",
                 "airlock.yaml:3: logs.listen: expected an endpoint other than forward (lines "
                 "would loop)");
    expect_error("logs:\n  forward: unix:/f\n  listen: hvsock:/d.sock:5\n",
                 "airlock.yaml:3: logs.listen: expected a unix, tcp or vsock endpoint for apps; "
                 "hvsock is the host's face of vsock");
    expect_error("logs:\n  forward: unix:/f\n  capture_stderr: maybe\n",
                 "airlock.yaml:3: logs.capture_stderr: expected true or false");
    expect_error("logs:\n  forward: unix:/f\n  capture_stderr: true\n  buffer: 1KiB\n",
                 "airlock.yaml:4: logs.buffer: " BUF_MSG);
    expect_error("logs:\n  forward: unix:/f\n  capture_stderr: true\n  buffer: 2GiB\n",
                 "airlock.yaml:4: logs.buffer: " BUF_MSG);
    expect_error("logs:\n  forward: unix:/f\n  capture_stderr: true\n  line_max: 10\n",
                 "airlock.yaml:4: logs.line_max: " LINE_MSG);
    expect_error("logs:\n  forward: unix:/f\n  capture_stderr: true\n  buffer: 64KiB\n"
                 "  line_max: 32KiB\n",
                 "airlock.yaml:5: logs.line_max: expected line_max (32768) to be at most a "
                 "quarter of buffer (65536)");
    expect_error(
        "logs:\n  forward: unix:/f\n  captur_stderr: true\n",
        "airlock.yaml:3: logs: unknown key 'captur_stderr' (did you mean 'capture_stderr'?)");
    expect_error("logs:\n  forward: unix:/f\n  capture_stderr: true\n  forward: unix:/g\n",
                 "airlock.yaml:4: logs.forward: duplicate key; first set on line 2");
    expect_error("metrics: unix:/m\nlogs:\n  forward: unix:/f\n  listen: unix:/m\n",
                 "airlock.yaml:4: logs.listen: expected an endpoint nothing else listens on; "
                 "metrics already listens on unix:/m");
}

static void
test_err_log_sinks(void **state)
{
    (void)state;
    expect_error("log_sinks: []\n", "airlock.yaml:1: log_sinks: expected a list of sinks (each "
                                    "with listen and file), not an empty list");
    expect_error("log_sinks: x\n", "airlock.yaml:1: log_sinks: expected a list of sinks (each "
                                   "with listen and file), not a single value");
    expect_error("log_sinks:\n  - file: /f\n", "airlock.yaml:2: log_sinks[0].listen: missing from "
                                               "sink 'sink1': expected an endpoint (" EP_FORMS ")");
    expect_error("log_sinks:\n  - listen: unix:/s\n",
                 "airlock.yaml:2: log_sinks[0].file: missing from sink 'sink1': expected a file "
                 "path of 1-4095 bytes");
    expect_error("log_sinks:\n  - listen: unix:/s\n    file: ''\n",
                 "airlock.yaml:3: log_sinks[0].file: expected a file path of 1-4095 bytes");
    expect_error("log_sinks:\n  - listen: udp:127.0.0.1:9\n    file: /f\n",
                 "airlock.yaml:2: log_sinks[0].listen: expected a stream endpoint (tcp, unix, "
                 "vsock, hvsock), not udp");
    expect_error("log_sinks:\n  - listen: unix:/s\n    file: /f\n    line_max: 2MiB\n",
                 "airlock.yaml:4: log_sinks[0].line_max: " LINE_MSG);
    expect_error("log_sinks:\n  - listen: unix:/s\n    file: /f\n    files: /g\n",
                 "airlock.yaml:4: log_sinks[0]: unknown key 'files' (did you mean 'file'?)");
    expect_error("log_sinks:\n  - {name: a, listen: unix:/s, file: /f}\n"
                 "  - {name: a, listen: unix:/t, file: /g}\n",
                 "airlock.yaml:3: log_sinks[1].name: expected a unique name; log_sinks[0] is "
                 "already called 'a'");
    expect_error("log_sinks:\n  - {listen: unix:/s, file: /f}\n  - {listen: unix:/s, file: /g}\n",
                 "airlock.yaml:3: log_sinks[1].listen: expected an endpoint nothing else listens "
                 "on; log_sinks[0] ('sink1') already listens on unix:/s");
    expect_error("relays:\n  - {name: web, listen: 'unix:/s', target: 'unix:/t'}\n"
                 "log_sinks:\n  - {listen: 'unix:/s', file: /f}\n",
                 "airlock.yaml:4: log_sinks[0].listen: expected an endpoint nothing else listens "
                 "on; relays[0] ('web') already listens on unix:/s");
    expect_error("logs:\n  forward: unix:/f\n  listen: unix:/s\n"
                 "log_sinks:\n  - {listen: 'unix:/s', file: /f}\n",
                 "airlock.yaml:5: log_sinks[0].listen: expected an endpoint nothing else listens "
                 "on; logs already listens on unix:/s");
}

/* Listeners with a socket file take a mapping with mode, owner and group. */
/* allow, max_streams and idle_timeout of log listeners (relay/streams.h). */
static void
test_log_limits(void **state)
{
    struct config cfg;
    (void)state;

    must_parse("logs:\n  forward: vsock:3:9200\n  listen: unix:/l.sock\n"
               "log_sinks:\n  - {listen: 'vsock:any:9200', file: /f}\n",
               &cfg);
    assert_int_equal(cfg.logs.limits.max_streams, LOG_STREAMS_DEFAULT);
    assert_int_equal(cfg.logs.limits.idle_timeout_ms, 0);
    assert_int_equal(cfg.logs.limits.n_allow, 0);
    assert_int_equal(cfg.sinks[0].limits.max_streams, LOG_STREAMS_DEFAULT);
    assert_int_equal(cfg.sinks[0].limits.idle_timeout_ms, LOG_SINK_IDLE_DEFAULT);
    config_free(&cfg);

    must_parse("logs:\n  forward: vsock:3:9200\n  listen: tcp:127.0.0.1:9\n"
               "  allow: [127.0.0.0/8]\n  max_streams: 4096\n  idle_timeout: 90s\n"
               "log_sinks:\n"
               "  - {listen: 'vsock:any:9200', file: /f, allow: ['cid:16', 'cid:17'],\n"
               "     max_streams: 1, idle_timeout: 0}\n",
               &cfg);
    assert_int_equal(cfg.logs.limits.n_allow, 1);
    assert_int_equal(cfg.logs.limits.max_streams, 4096);
    assert_int_equal(cfg.logs.limits.idle_timeout_ms, 90000);
    assert_int_equal(cfg.sinks[0].limits.n_allow, 2);
    assert_int_equal(cfg.sinks[0].limits.allow[1].cid, 17);
    assert_int_equal(cfg.sinks[0].limits.max_streams, 1);
    assert_int_equal(cfg.sinks[0].limits.idle_timeout_ms, 0);
    config_free(&cfg);

    expect_error("log_sinks:\n  - {listen: 'unix:/s', file: /f, allow: [10.0.0.0/8]}\n",
                 "airlock.yaml:2: log_sinks[0].allow: allow applies to tcp, udp and vsock "
                 "listeners; restrict a unix socket with file permissions");
    expect_error("log_sinks:\n  - listen: vsock:any:9\n    file: /f\n    allow:\n"
                 "      - cid:3\n      - 10.0.0.0/8\n",
                 "airlock.yaml:6: log_sinks[0].allow[1]: expected a cid:N rule: a vsock listener "
                 "sees CID peers, CIDRs are for tcp listeners");
    expect_error("log_sinks:\n  - {listen: 'vsock:any:9', file: /f, max_streams: 0}\n",
                 "airlock.yaml:2: log_sinks[0].max_streams: expected an integer from 1 to 4096");
    expect_error("log_sinks:\n  - {listen: 'vsock:any:9', file: /f, max_streams: 4097}\n",
                 "airlock.yaml:2: log_sinks[0].max_streams: expected an integer from 1 to 4096");
    expect_error("logs:\n  forward: vsock:3:9\n  capture_stderr: true\n  idle_timeout: 5s\n",
                 "airlock.yaml:4: logs.idle_timeout: applies to the apps on logs.listen, which is "
                 "not set");
    expect_error("logs:\n  forward: vsock:3:9\n  listen: tcp:127.0.0.1:9\n  allow: [cid:3]\n",
                 "airlock.yaml:4: logs.allow[0]: expected a CIDR or address: a tcp or udp "
                 "listener sees IP peers, cid: rules are for vsock listeners");
}

static void
test_listen_perm(void **state)
{
    struct config cfg;
    (void)state;

    must_parse("metrics: {endpoint: 'unix:/run/m.sock', mode: '0640', owner: prom, group: '1000'}\n"
               "relays:\n"
               "  - listen: {endpoint: 'hvsock:/run/vm.sock:5000', mode: 600}\n"
               "    target: tcp:127.0.0.1:1\n"
               "  - listen: {endpoint: 'tcp:127.0.0.1:2'}\n"
               "    target: tcp:127.0.0.1:1\n"
               "logs:\n"
               "  forward: vsock:3:9200\n"
               "  listen:\n"
               "    endpoint: unix:/run/log.sock\n"
               "    group: apps\n"
               "log_sinks:\n"
               "  - {listen: {endpoint: 'unix:/run/s.sock', mode: '0666'}, file: /f}\n"
               "directory: {}\n"
               "control: {endpoint: 'unix:/run/ctl.sock', owner: ops}\n",
               &cfg);
    assert_endpoint(&cfg.metrics, "unix:/run/m.sock");
    assert_int_equal(cfg.metrics.perm.mode, 0640);
    assert_string_equal(cfg.metrics.perm.owner, "prom");
    assert_string_equal(cfg.metrics.perm.group, "1000");
    assert_endpoint(&cfg.relays[0].listen, "hvsock:/run/vm.sock:5000");
    assert_int_equal(cfg.relays[0].listen.perm.mode, 0600);
    assert_int_equal(cfg.relays[1].listen.perm.mode, 0);
    assert_int_equal(cfg.logs.listen.perm.mode, 0);
    assert_string_equal(cfg.logs.listen.perm.group, "apps");
    assert_int_equal(cfg.sinks[0].listen.perm.mode, 0666);
    assert_string_equal(cfg.control.perm.owner, "ops");
    assert_int_equal(cfg.control.perm.mode, 0);
    config_free(&cfg);

    unsigned mode = 7;
    assert_int_equal(units_mode("0", &mode), -EINVAL);
    assert_int_equal(units_mode("1000", &mode), -EINVAL);
    assert_int_equal(units_mode("0o660", &mode), -EINVAL);
    assert_int_equal(units_mode("00660", &mode), -EINVAL);
    assert_int_equal(units_mode("", &mode), -EINVAL);
    assert_int_equal(mode, 7);
    assert_int_equal(units_mode("777", &mode), 0);
    assert_int_equal(mode, 0777);
    assert_int_equal(units_account("-x"), -EINVAL);
    assert_int_equal(units_account("a b"), -EINVAL);
    assert_int_equal(units_account("www-data"), 0);
}

static void
test_err_listen_perm(void **state)
{
    (void)state;
    expect_error("metrics: {endpoint: 'unix:/m', mode: '0800'}\nrelays:\n" RELAY_OK,
                 "airlock.yaml:1: metrics.mode: expected an octal mode from 0001 to 0777 (0660: "
                 "owner and group)");
    expect_error("metrics: {endpoint: 'unix:/m', owner: 'a:b'}\nrelays:\n" RELAY_OK,
                 "airlock.yaml:1: metrics.owner: expected a user name or uid of 1-63 characters "
                 "(a-z 0-9 _ . -)");
    expect_error("metrics: {endpoint: 'unix:/m', group: [a]}\nrelays:\n" RELAY_OK,
                 "airlock.yaml:1: metrics.group: expected a group name or gid of 1-63 characters "
                 "(a-z 0-9 _ . -), not a list");
    expect_error("metrics: {mode: '0600'}\nrelays:\n" RELAY_OK,
                 "airlock.yaml:1: metrics: missing endpoint: expected an endpoint (" EP_FORMS ")");
    expect_error("metrics: {endpoint: 'unix:/m', mod: '0600'}\nrelays:\n" RELAY_OK,
                 "airlock.yaml:1: metrics: unknown key 'mod' (did you mean 'mode'?)");
    expect_error("metrics: [unix:/m]\nrelays:\n" RELAY_OK,
                 "airlock.yaml:1: metrics: expected an endpoint (" EP_FORMS
                 ") or a mapping {endpoint, mode, owner, group}, not a list");
    expect_error("relays:\n  - listen:\n      endpoint: tcp:127.0.0.1:1\n      mode: '0600'\n"
                 "    target: tcp:127.0.0.1:2\n",
                 "airlock.yaml:4: relays[0].listen: mode, owner and group apply to listeners with "
                 "a socket file (unix:/path, hvsock:/path:PORT), not to network or abstract "
                 "sockets");
    expect_error("directory: {}\ncontrol: {endpoint: 'unix:@c', mode: '0600'}\n",
                 "airlock.yaml:2: control: mode, owner and group apply to listeners with a socket "
                 "file (unix:/path, hvsock:/path:PORT), not to network or abstract sockets");
}

static void
test_directory(void **state)
{
    struct config cfg;
    (void)state;

    must_parse("relays:\n" RELAY_OK, &cfg);
    assert_false(cfg.has_directory);
    assert_int_equal(cfg.directory.backend, DIR_MEMORY); /* the defaults */
    assert_string_equal(cfg.directory.prefix, "airlock:");
    assert_int_equal(cfg.directory.reserve_timeout_ms, 10000);
    assert_int_equal(cfg.directory.session_ttl_ms, 3600 * 1000);
    assert_int_equal(cfg.directory.assign_wait_ms, 5000);
    assert_int_equal(cfg.directory.max_pending_per_client, 2);
    assert_int_equal(cfg.directory.pending_share, 75);
    config_free(&cfg);

    must_parse("directory: {}\n", &cfg);
    assert_true(cfg.has_directory);
    assert_false(cfg.has_control);
    config_free(&cfg);

    must_parse("directory:\n"
               "  backend: redis\n"
               "  redis: unix:/run/redis.sock\n"
               "  prefix: 'grid:'\n"
               "  reserve_timeout: 2s\n"
               "  session_ttl: 0\n"
               "  assign_wait: 250ms\n"
               "  max_pending_per_client: 0\n"
               "  pending_share: 100\n"
               "control: unix:/run/airlock/ctl.sock\n",
               &cfg);
    assert_true(cfg.has_directory);
    assert_int_equal(cfg.directory.backend, DIR_REDIS);
    assert_endpoint(&cfg.directory.redis, "unix:/run/redis.sock");
    assert_string_equal(cfg.directory.prefix, "grid:");
    assert_int_equal(cfg.directory.reserve_timeout_ms, 2000);
    assert_int_equal(cfg.directory.session_ttl_ms, 0);
    assert_int_equal(cfg.directory.assign_wait_ms, 250);
    assert_int_equal(cfg.directory.max_pending_per_client, 0);
    assert_int_equal(cfg.directory.pending_share, 100);
    assert_true(cfg.has_control);
    assert_endpoint(&cfg.control, "unix:/run/airlock/ctl.sock");
    config_free(&cfg);

    /* a control socket without a directory (reload, conns, stats, config) */
    must_parse("relays:\n" RELAY_OK "control: unix:/c\n", &cfg);
    assert_false(cfg.has_directory);
    assert_true(cfg.has_control);
    config_free(&cfg);

    /* production redis: an ACL user, a password file, sentinels */
    must_parse("directory:\n"
               "  backend: redis\n"
               "  sentinels: [tcp:10.0.0.1:26379, tcp:10.0.0.2:26379, unix:/run/s.sock]\n"
               "  sentinel_master: grid\n"
               "  redis_user: airlock\n"
               "  redis_password_file: /etc/airlock/redis.pw\n"
               "  min_replicas_acked: 1\n"
               "  node: grid-n1.a_B\n",
               &cfg);
    assert_int_equal(cfg.directory.n_sentinels, 3);
    assert_endpoint(&cfg.directory.sentinels[0], "tcp:10.0.0.1:26379");
    assert_endpoint(&cfg.directory.sentinels[2], "unix:/run/s.sock");
    assert_string_equal(cfg.directory.sentinel_master, "grid");
    assert_string_equal(cfg.directory.redis_user, "airlock");
    assert_string_equal(cfg.directory.redis_password_file, "/etc/airlock/redis.pw");
    assert_int_equal(cfg.directory.min_replicas_acked, 1);
    assert_string_equal(cfg.directory.node, "grid-n1.a_B");
    config_free(&cfg);
}

static void
test_err_directory(void **state)
{
    (void)state;
    expect_error("directory: x\n",
                 "airlock.yaml:1: directory: expected a mapping of directory settings (backend, "
                 "redis, prefix, reserve_timeout, session_ttl, session_max, assign_wait, "
                 "max_pending_per_client, pending_share, redis_user, redis_password_file, "
                 "sentinels, sentinel_password_file, sentinel_master, min_replicas_acked, node), "
                 "not a single value");
    expect_error("directory:\n  backend: redis\n  redis: tcp:127.0.0.1:6379\n  node: n1/a\n",
                 "airlock.yaml:4: directory.node: expected this machine's name in the directory: "
                 "1-12 of A-Z a-z 0-9 _ . -");
    expect_error("directory:\n  backend: redis\n  redis: tcp:127.0.0.1:6379\n"
                 "  node: thirteen-char\n",
                 "airlock.yaml:4: directory.node: expected this machine's name in the directory: "
                 "1-12 of A-Z a-z 0-9 _ . -");
    expect_error("directory:\n  node: n1\n",
                 "airlock.yaml:2: directory.node: applies to backend: redis only (the backend is "
                 "memory)");
    expect_error("directory:\n  max_pending_per_client: -1\n",
                 "airlock.yaml:2: directory.max_pending_per_client: expected an integer from 0 "
                 "(no bound) to 1024");
    expect_error("directory:\n  pending_share: 0\n",
                 "airlock.yaml:2: directory.pending_share: expected a percentage from 1 to 100 "
                 "(100: no bound)");
    expect_error("directory:\n  pending_share: 101\n",
                 "airlock.yaml:2: directory.pending_share: expected a percentage from 1 to 100 "
                 "(100: no bound)");
    expect_error("directory:\n  backend: etcd\n",
                 "airlock.yaml:2: directory.backend: expected memory or redis");
    expect_error("directory:\n  backend: redis\n",
                 "airlock.yaml:2: directory.redis: missing: expected the redis server's endpoint "
                 "(tcp:HOST:PORT or unix:/path), or sentinels: and sentinel_master:");
    expect_error("directory:\n  backend: redis\n  redis: tcp:127.0.0.1:6379\n"
                 "  sentinels: [tcp:127.0.0.1:26379]\n  sentinel_master: m\n",
                 "airlock.yaml:4: directory.sentinels: expected either redis: (one server) or "
                 "sentinels: (they name the master), not both");
    expect_error("directory:\n  backend: redis\n  sentinels: [tcp:127.0.0.1:26379]\n",
                 "airlock.yaml:2: directory.sentinel_master: expected sentinels: and "
                 "sentinel_master: together (the sentinels are asked for the master of that "
                 "name)");
    expect_error(
        "directory:\n  backend: redis\n  sentinels: [vsock:3:26379]\n",
        "airlock.yaml:3: directory.sentinels[0]: expected a tcp or unix endpoint for redis");
    expect_error("directory:\n  backend: redis\n  sentinels: []\n  sentinel_master: m\n",
                 "airlock.yaml:3: directory.sentinels: expected 1-8 sentinels");
    expect_error("directory:\n  backend: redis\n  redis: tcp:127.0.0.1:6379\n  redis_user: u\n",
                 "airlock.yaml:2: directory.redis_password_file: missing: expected it with "
                 "redis_user (AUTH needs the user's password)");
    expect_error("directory:\n  backend: redis\n  redis: tcp:127.0.0.1:6379\n"
                 "  sentinel_password_file: /spw\n",
                 "airlock.yaml:4: directory.sentinel_password_file: expected it with sentinels: "
                 "only (the sentinels' password)");
    expect_error("directory:\n  redis_password_file: /pw\n",
                 "airlock.yaml:2: directory.redis_password_file: applies to backend: redis only "
                 "(the backend is memory)");
    expect_error("directory:\n  redis: tcp:127.0.0.1:6379\n",
                 "airlock.yaml:2: directory.redis: applies to backend: redis only (the backend is "
                 "memory)");
    expect_error("directory:\n  backend: redis\n  redis: vsock:3:6379\n",
                 "airlock.yaml:3: directory.redis: expected a tcp or unix endpoint for redis");
    expect_error("directory:\n  reserve_timeout: 0\n",
                 "airlock.yaml:2: directory.reserve_timeout: expected more than 0");
    expect_error("directory:\n  assign_wait: soon\n",
                 "airlock.yaml:2: directory.assign_wait: expected a duration (250ms, 5s, 2m, 1h; a "
                 "bare integer is seconds)");
    expect_error("directory:\n  prefix: 'a b'\n",
                 "airlock.yaml:2: directory.prefix: expected a redis key prefix of 0-63 bytes "
                 "without spaces");
    expect_error(
        "directory:\n  session_tl: 1h\n",
        "airlock.yaml:2: directory: unknown key 'session_tl' (did you mean 'session_ttl'?)");
    expect_error("directory: {}\ncontrol: udp:127.0.0.1:9\n",
                 "airlock.yaml:2: control: expected a stream endpoint (tcp, unix, vsock, hvsock), "
                 "not udp");
}

/* A reload keeps a router whose routes read the same, and replaces one
 * whose routes changed (they live on the heap: compared by content). */
static void
test_router_equal(void **state)
{
    struct config a, b, c;
    (void)state;
#define ROUTER_WITH(target)                                                                        \
    "routers:\n  - listen: tcp:0.0.0.0:443\n    routes:\n"                                         \
    "      - {name: a.example, target: tcp:127.0.0.1:1}\n"                                         \
    "      - {name: b.example, target: " target "}\n"
    must_parse(ROUTER_WITH("tcp:127.0.0.1:2"), &a);
    must_parse(ROUTER_WITH("tcp:127.0.0.1:2"), &b);
    must_parse(ROUTER_WITH("tcp:127.0.0.1:3"), &c);
    assert_ptr_not_equal(a.relays[0].router.table.routes, b.relays[0].router.table.routes);
    assert_true(relay_conf_equal(&a.relays[0], &b.relays[0]));
    assert_false(relay_conf_equal(&a.relays[0], &c.relays[0]));
    config_free(&a);
    config_free(&b);
    config_free(&c);
}

/* Leaves c in the stack below the caller: what the locals of the functions
 * it calls next start with. */
static void __attribute__((noinline)) stack_dirty(char c)
{
    volatile char junk[64 * 1024];

    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = c;
}

/* A router made twice from the same --route flags is the same router
 * (a reload or a comparison must not see a change), whatever the stack
 * held: the route built from a flag is all written, not only its name. */
static void
test_router_equal_flags(void **state)
{
    char *argv[] = {"router",  "tcp:127.0.0.1:443",         "--route", "a.example=tcp:127.0.0.1:1",
                    "--route", "b.example=unix:/run/b.sock"};
    struct config a, b;
    char err[512] = "";
    (void)state;

    stack_dirty((char)0xa5);
    if (config_args(6, argv, true, &a, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    stack_dirty(0x5a);
    if (config_args(6, argv, true, &b, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_int_equal(a.relays[0].router.table.n, 2);
    assert_true(relay_conf_equal(&a.relays[0], &b.relays[0]));
    config_free(&a);
    config_free(&b);
}

static void
test_routers(void **state)
{
    struct config cfg;
    (void)state;

    /* routers follow the relays in cfg.relays, wherever routers: is */
    must_parse("routers:\n"
               "  - listen: tcp:0.0.0.0:443\n"
               "    routes:\n"
               "      - {name: WWW.example.com, target: tcp:127.0.0.1:8443}\n"
               "      - {name: \"*.example.org\", target: unix:/run/org.sock}\n"
               "    default: tcp:127.0.0.1:9443\n"
               "    peek_timeout: 2s\n"
               "    preamble_timeout: 3s\n"
               "    max_hello: 8KiB\n"
               "    send_proxy: v2\n"
               "    idle_timeout: 10m\n"
               "  - name: edge2\n"
               "    listen: tcp:0.0.0.0:444\n"
               "    default: tcp:127.0.0.1:9443\n"
               "relays:\n" RELAY_OK,
               &cfg);
    assert_int_equal(cfg.n_relays, 3);
    assert_false(cfg.relays[0].router.enabled);
    const struct relay_conf *r = &cfg.relays[1];
    assert_true(r->router.enabled);
    assert_string_equal(r->name, "router1");
    assert_int_equal(r->router.table.n, 2);
    assert_string_equal(r->router.table.routes[0].name, "www.example.com");
    assert_endpoint(&r->router.table.routes[0].target, "tcp:127.0.0.1:8443");
    assert_string_equal(r->router.table.routes[1].name, "*.example.org");
    assert_true(r->router.table.has_default);
    assert_endpoint(&r->router.table.def, "tcp:127.0.0.1:9443");
    assert_int_equal(r->router.peek_timeout_ms, 2000);
    assert_int_equal(r->preamble_timeout_ms, 3000);
    assert_int_equal(r->router.max_hello, 8192);
    assert_int_equal(r->send_proxy, PROXY_V2);
    assert_int_equal(r->idle_timeout_ms, 600000);
    assert_string_equal(cfg.relays[2].name, "edge2");
    assert_int_equal(cfg.relays[2].router.peek_timeout_ms, 5000);
    assert_int_equal(cfg.relays[2].preamble_timeout_ms, 10000);
    assert_int_equal(cfg.relays[2].router.max_hello, 16384);
    config_free(&cfg);

    must_parse("directory: {}\n"
               "routers:\n"
               "  - listen: tcp:0.0.0.0:443\n"
               "    directory: grid\n"
               "    domain: Grid.Example\n",
               &cfg);
    assert_string_equal(cfg.relays[0].router.table.directory, "grid");
    assert_string_equal(cfg.relays[0].router.table.domain, "grid.example");
    assert_int_equal(cfg.relays[0].router.table.n, 0);
    config_free(&cfg);
}

/* max_unproven_per_client: its default wherever connections are unproven
 * for a while and clients are told apart (a tcp listener's peers, the
 * sources PROXY headers name), relays, routers and HTTP proxies alike;
 * none elsewhere; set, it holds only where connections are unproven for a
 * while. `airlock ctl config` shows the value in force. */
static void
test_per_client(void **state)
{
    struct config cfg;
    (void)state;

    must_parse("routers:\n"
               "  - {listen: tcp:0.0.0.0:443, default: tcp:127.0.0.1:1, max_connections: 9}\n"
               "  - {listen: tcp:0.0.0.0:444, default: tcp:127.0.0.1:1}\n"
               "  - {listen: tcp:0.0.0.0:445, default: tcp:127.0.0.1:1, max_connections: 1}\n"
               "  - {listen: tcp:0.0.0.0:446, default: tcp:127.0.0.1:1, max_connections: 9,\n"
               "     accept_proxy: v2}\n"
               "  - {listen: tcp:0.0.0.0:447, default: tcp:127.0.0.1:1, max_connections: 9,\n"
               "     max_unproven_per_client: 0}\n"
               "  - {listen: tcp:0.0.0.0:448, default: tcp:127.0.0.1:1,\n"
               "     max_unproven_per_client: 7}\n"
               "relays:\n"
               "  - {listen: tcp:0.0.0.0:8443, target: tcp:127.0.0.1:1, max_connections: 9}\n"
               "  - {listen: tcp:0.0.0.0:8444, target: tcp:127.0.0.1:1, max_connections: 9,\n"
               "     accept_proxy: v2, max_unproven_per_client: 2}\n"
               "  - {listen: vsock:any:8445, target: tcp:127.0.0.1:1, max_connections: 9,\n"
               "     accept_proxy: v2}\n"
               "  - {listen: tcp:0.0.0.0:8446, target: egress, egress_allow: [a.example:443],\n"
               "     max_connections: 10}\n"
               "  - {listen: vsock:any:8447, target: egress, egress_allow: [a.example:443],\n"
               "     max_connections: 10}\n"
               "  - {listen: unix:/run/p.sock, target: tcp:127.0.0.1:1, max_connections: 9}\n"
               "proxies:\n"
               "  - {listen: tcp:127.0.0.1:80, backend: tcp:127.0.0.1:81, max_connections: 9,\n"
               "     routes: [{path: /}]}\n"
               "  - {listen: unix:/run/h.sock, backend: tcp:127.0.0.1:81, max_connections: 9,\n"
               "     accept_proxy: v2, routes: [{path: /}]}\n"
               "  - {listen: unix:/run/i.sock, backend: tcp:127.0.0.1:81, max_connections: 9,\n"
               "     routes: [{path: /}]}\n",
               &cfg);
    assert_int_equal(cfg.n_relays, 12);
    assert_int_equal(relay_conf_per_client(&cfg.relays[0]), 0); /* plain: proven at once */
    assert_int_equal(relay_conf_per_client(&cfg.relays[1]), 2);
    assert_int_equal(relay_conf_per_client(&cfg.relays[2]), 4); /* by the PROXY source */
    assert_int_equal(relay_conf_per_client(&cfg.relays[3]), 5); /* egress on tcp */
    assert_int_equal(relay_conf_per_client(&cfg.relays[4]), 0); /* one peer for all */
    assert_int_equal(relay_conf_per_client(&cfg.relays[5]), 0); /* plain */
    assert_int_equal(relay_conf_per_client(&cfg.relays[6]), 4); /* half of 9 */
    assert_int_equal(relay_conf_per_client(&cfg.relays[7]), 0); /* no max_connections */
    assert_int_equal(relay_conf_per_client(&cfg.relays[8]), 1);
    assert_int_equal(relay_conf_per_client(&cfg.relays[9]), 4);  /* by the PROXY source */
    assert_int_equal(relay_conf_per_client(&cfg.relays[10]), 0); /* set: none */
    assert_int_equal(relay_conf_per_client(&cfg.relays[11]), 7);
    assert_int_equal(http_proxy_per_client(&cfg.proxies[0]), 4); /* tcp peers */
    assert_int_equal(http_proxy_per_client(&cfg.proxies[1]), 4); /* by the PROXY source */
    assert_int_equal(http_proxy_per_client(&cfg.proxies[2]), 0); /* one peer for all */

    /* the dump shows the value in force, not the default's absence */
    struct strbuf out = {0};
    char err[512] = "";
    assert_int_equal(config_dump(&cfg, &out, err, sizeof(err)), 0);
    assert_non_null(strstr(out.data, "    max_connections: 10\n    max_unproven_per_client: 5\n"));
    assert_non_null(strstr(out.data, "    max_connections: 9\n    max_unproven_per_client: 4\n"));
    size_t shown = 0; /* each block but the two plain relays, whose connections are proven */
    for (const char *at = out.data; (at = strstr(at, "max_unproven_per_client: ")) != NULL; at++)
        shown++;
    assert_int_equal(shown, 13);
    strbuf_free(&out);
    config_free(&cfg);

    expect_error("relays:\n" RELAY_OK "    max_unproven_per_client: 3\n",
                 "airlock.yaml:4: relays[0].max_unproven_per_client: expected only where "
                 "connections are unproven for a while: routers, tls: listeners, relays with "
                 "accept_proxy, an hvsock listener or target: egress");
    expect_error(ROUTER_DEF "    max_connections: 4\n    max_unproven_per_client: 5\n",
                 "airlock.yaml:5: routers[0].max_unproven_per_client: expected at most "
                 "max_connections (4)");
    expect_error(ROUTER_DEF "    max_unproven_per_client: -1\n",
                 "airlock.yaml:4: routers[0].max_unproven_per_client: expected an integer from "
                 "0 to 10000000 (0: no limit)");
}

static void
test_err_routers(void **state)
{
    (void)state;
#define ROUTER_HEAD "routers:\n  - listen: tcp:0.0.0.0:443\n"
    expect_error("routers:\n  - default: tcp:127.0.0.1:1\n",
                 "airlock.yaml:2: routers[0].listen: missing from router 'router1': expected an "
                 "endpoint (" EP_FORMS ")");
    expect_error(ROUTER_HEAD,
                 "airlock.yaml:2: routers[0]: expected at least one of routes:, directory:, "
                 "default: in router 'router1'");
    expect_error(ROUTER_HEAD "    directory: grid\n",
                 "airlock.yaml:2: routers: routers[0] ('router1') routes to directory pool "
                 "'grid': expected a directory: block too");
    expect_error(ROUTER_HEAD "    directory: grid\n    domain: \"*.grid.example\"\ndirectory: {}\n",
                 "airlock.yaml:4: routers[0].domain: expected a DNS name (grid.example): user "
                 "keys come from <key>.<domain>");
    expect_error(ROUTER_HEAD "    default: tcp:127.0.0.1:1\n    domain: grid.example\n",
                 "airlock.yaml:2: routers[0].domain: applies to routers with a directory: pool "
                 "only");
    expect_error(ROUTER_HEAD "    target: tcp:127.0.0.1:1\n",
                 "airlock.yaml:3: routers[0]: unknown key 'target'");
    expect_error(ROUTER_HEAD "    routes:\n      - {name: a_b.example, target: tcp:127.0.0.1:1}\n",
                 "airlock.yaml:4: routers[0].routes[0].name: expected a DNS name (letters, "
                 "digits, inner '-', dots; at most 253 bytes) or *.name");
    expect_error(ROUTER_HEAD "    routes:\n      - {name: a.example}\n",
                 "airlock.yaml:4: routers[0].routes[0]: missing target: expected a mapping "
                 "{name: NAME or *.NAME, target: ENDPOINT}");
    expect_error(ROUTER_HEAD "    routes:\n      - {name: a.example, target: udp:127.0.0.1:1}\n",
                 "airlock.yaml:4: routers[0].routes[0].target: expected a stream endpoint (tcp, "
                 "unix, vsock, hvsock), not udp");
    expect_error(ROUTER_HEAD "    routes:\n      - {name: a.example, target: tcp:127.0.0.1:1}\n"
                             "      - {name: A.example, target: tcp:127.0.0.1:2}\n",
                 "airlock.yaml:5: routers[0].routes[1]: expected a name no other route has; "
                 "routers[0].routes[0] is 'a.example' too");
    expect_error(ROUTER_HEAD "    routes:\n      - {name: a.example, target: tcp:127.0.0.1:1}\n"
                             "      - {name: \"*.a.example\", target: tcp:127.0.0.1:2}\n"
                             "      - {name: b.example, target: tcp:127.0.0.1:3}\n"
                             "      - {name: \"*.A.Example\", target: tcp:127.0.0.1:4}\n",
                 "airlock.yaml:7: routers[0].routes[3]: expected a name no other route has; "
                 "routers[0].routes[1] is '*.a.example' too");
    expect_error(ROUTER_HEAD "    default: tcp:127.0.0.1:1\n    max_hello: 100KiB\n",
                 "airlock.yaml:4: routers[0].max_hello: expected a size from 512B to 32KiB (B, "
                 "KiB; a bare integer is bytes)");
    expect_error(ROUTER_HEAD "    default: tcp:127.0.0.1:1\n    preamble_timeout: 0\n",
                 "airlock.yaml:4: routers[0].preamble_timeout: expected a duration above 0 (250ms, "
                 "5s, 2m, 1h)");
    expect_error(ROUTER_HEAD "    default: tcp:127.0.0.1:1\n    peek_timeout: 0\n",
                 "airlock.yaml:4: routers[0].peek_timeout: expected a duration above 0 (250ms, "
                 "5s, 2m, 1h)");
    expect_error("relays:\n  - name: web\n    listen: tcp:0.0.0.0:1\n    target: "
                 "tcp:127.0.0.1:2\n" ROUTER_HEAD "    name: web\n    default: tcp:127.0.0.1:1\n",
                 "airlock.yaml:7: routers[0].name: expected a unique name; relays[0] is already "
                 "called 'web'");
    expect_error("relays:\n  - listen: tcp:0.0.0.0:443\n    target: tcp:127.0.0.1:2\n" ROUTER_HEAD
                 "    default: tcp:127.0.0.1:1\n",
                 "airlock.yaml:5: routers[0].listen: expected an endpoint no other relay listens "
                 "on; relays[0] ('relay1') already listens on tcp:0.0.0.0:443");
#undef ROUTER_HEAD
}

/* ---- pools: */

#define POOL_HEAD                                                                                  \
    "pools:\n"                                                                                     \
    "  - name: grid\n"                                                                             \
    "    command: [/usr/bin/app, --port, \"{port}\", --dir, \"{dir}\"]\n"                          \
    "    endpoint: \"tcp:127.0.0.1:{port}\"\n"                                                     \
    "    ports: 20000-20099\n"                                                                     \
    "    dir: /var/lib/airlock/grid\n"
#define POOL_EVENTS                                                                                \
    "    events:\n"                                                                                \
    "      ready: \"^WAITING_LOGIN$\"\n"                                                           \
    "      login: \"^LOGIN (.+)$\"\n"
/* after the pools, so that the line numbers above stay */
#define POOL_DIRECTORY "directory:\n  backend: memory\n"

static void
test_pools(void **state)
{
    struct config cfg;
    (void)state;

    must_parse(POOL_HEAD POOL_EVENTS "      logout: \"^LOGOUT$\"\n"
                                     "    launcher: [gramine-sgx]\n"
                                     "    min_idle: 2\n"
                                     "    max: 50\n"
                                     "    max_idle: 4\n"
                                     "    cooldown: 30s\n"
                                     "    start_timeout: 10s\n"
                                     "    restart_backoff: 100ms\n"
                                     "    restart_backoff_max: 5s\n"
                                     "    user: nobody\n"
                                     "    provision:\n"
                                     "      command: [fetch, \"{user}\", \"{dir}\", \"{uid}\"]\n"
                                     "      timeout: 5s\n" POOL_DIRECTORY,
               &cfg);
    assert_int_equal(cfg.n_pools, 1);
    const struct pool_conf *pc = &cfg.pools[0];
    assert_string_equal(pc->name, "grid");
    assert_int_equal(pc->command.n, 5);
    assert_string_equal(pc->command.arg[2], "{port}");
    assert_int_equal(pc->launcher.n, 1);
    assert_int_equal(pc->port_min, 20000);
    assert_int_equal(pool_conf_ports(pc), 100);
    assert_int_equal(pc->min_idle, 2);
    assert_int_equal(pc->max, 50);
    assert_int_equal(pc->max_idle, 4);
    assert_int_equal(pc->cooldown_ms, 30000);
    assert_int_equal(pc->backoff_ms, 100);
    assert_string_equal(pc->user, "nobody");
    assert_string_equal(pc->logout, "^LOGOUT$");
    assert_int_equal(pc->provision.command.n, 4);
    assert_int_equal(pool_conf_uids(pc), 0);
    assert_int_equal(pc->provision.timeout_ms, 5000);
    assert_int_equal(pc->deprovision.command.n, 0);
    config_free(&cfg);

    /* one uid per instance; {uid} and {gid} in the command */
    must_parse(POOL_HEAD POOL_EVENTS
               "    uids: 61000-61999\n"
               "    launcher: [setpriv, \"--reuid={uid}\", \"--regid={gid}\"]\n" POOL_DIRECTORY,
               &cfg);
    assert_int_equal(cfg.pools[0].uid_min, 61000);
    assert_int_equal(cfg.pools[0].uid_max, 61999);
    assert_int_equal(pool_conf_uids(&cfg.pools[0]), 1000);
    assert_string_equal(cfg.pools[0].user, "");
    assert_string_equal(cfg.pools[0].group, "");
    config_free(&cfg);
    must_parse(POOL_HEAD POOL_EVENTS "    uids: 61000-61999\n    group: smartgrid\n" POOL_DIRECTORY,
               &cfg);
    assert_string_equal(cfg.pools[0].group, "smartgrid");
    config_free(&cfg);
    must_parse(POOL_HEAD POOL_EVENTS "    uids: 1-4294967294\n" POOL_DIRECTORY, &cfg);
    assert_int_equal(cfg.pools[0].uid_max, 4294967294u);
    config_free(&cfg);

    /* a cgroup per instance: with a limit, under airlock's own by default */
    must_parse(POOL_HEAD POOL_EVENTS "    memory_max: 512MiB\n    cpu_max: 1.25\n" POOL_DIRECTORY,
               &cfg);
    assert_int_equal(cfg.pools[0].memory_max, (size_t)512 << 20);
    assert_int_equal(cfg.pools[0].cpu_max, 125);
    assert_true(pool_conf_cgroups(&cfg.pools[0]));
    assert_string_equal(pool_conf_cgroup(&cfg.pools[0]), "own");
    config_free(&cfg);
    must_parse(POOL_HEAD POOL_EVENTS "    cgroup: /airlock.slice/pools\n" POOL_DIRECTORY, &cfg);
    assert_true(pool_conf_cgroups(&cfg.pools[0]));
    assert_string_equal(pool_conf_cgroup(&cfg.pools[0]), "/airlock.slice/pools");
    assert_int_equal(cfg.pools[0].max_processes, 1024); /* its pids.max */
    config_free(&cfg);
    /* max_processes without uids: the cgroup's pids.max, given after it too */
    must_parse(POOL_HEAD POOL_EVENTS
               "    user: nobody\n    max_processes: 64\n    cgroup: own\n" POOL_DIRECTORY,
               &cfg);
    assert_int_equal(cfg.pools[0].max_processes, 64);
    assert_true(pool_conf_cgroups(&cfg.pools[0]));
    config_free(&cfg);

    /* defaults: max_idle follows min_idle; no cgroups */
    must_parse(POOL_HEAD POOL_EVENTS POOL_DIRECTORY, &cfg);
    assert_int_equal(cfg.pools[0].min_idle, 1);
    assert_int_equal(cfg.pools[0].max_idle, 1);
    assert_int_equal(cfg.pools[0].max, 10);
    assert_int_equal(cfg.pools[0].start_timeout_ms, 30000);
    assert_false(pool_conf_cgroups(&cfg.pools[0]));
    config_free(&cfg);
}

static void
test_err_pools(void **state)
{
    (void)state;

    expect_error("pools: []\n", "airlock.yaml:1: pools: expected a list of pools (each with "
                                "command, endpoint, dir, events), not an empty list");
    expect_error(POOL_HEAD "    events:\n      ready: \"(\"\n      login: \"(.+)\"\n",
                 "airlock.yaml:8: pools[0].events.ready: expected a POSIX extended regular "
                 "expression of 1-511 bytes: Unmatched ( or \\(");
    /* what makes regcomp() exponential in memory */
    static const char *const costly[][2] = {
        {"WAIT+++++++++++++++++++++++++++++++ING", "a repetition of a repetition"},
        {"(((((((((((((((((((((((((x+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)",
         "a repetition of a repetition"},
        {"((x{9}y){9}){9}", "a repetition of a repetition"},
        {"a*?", "a repetition of a repetition"},
        {"x{65}", "a count above 64"},
        {"x{1,99999}", "a count above 64"},
    };
    for (size_t i = 0; i < sizeof(costly) / sizeof(costly[0]); i++) {
        char yaml[1024], msg[256];
        snprintf(yaml, sizeof(yaml),
                 POOL_HEAD "    events:\n      ready: \"%s\"\n      login: \"(.+)\"\n",
                 costly[i][0]);
        snprintf(msg, sizeof(msg),
                 "airlock.yaml:8: pools[0].events.ready: expected a POSIX extended regular "
                 "expression of 1-511 bytes without %s",
                 costly[i][1]);
        expect_error(yaml, msg);
    }
    /* repetitions side by side, in brackets, escaped, counts up to 64: fine */
    struct config cfg;
    must_parse(POOL_HEAD
               "    events:\n      ready: \"^[+*]+ (a+)(b*) x{64} \\\\++ [[:alpha:]]+$\"\n"
               "      login: \"^LOGIN ([a-z]{1,64})$\"\n" POOL_DIRECTORY,
               &cfg);
    config_free(&cfg);
    expect_error(POOL_HEAD "    events:\n      ready: x\n      login: \"LOGIN .+\"\n",
                 "airlock.yaml:9: pools[0].events.login: expected a capture group for the user, "
                 "as in \"^LOGIN (.+)$\"");
    expect_error(POOL_HEAD "    events:\n      login: \"(.+)\"\n",
                 "airlock.yaml:8: pools[0].events.ready: missing: expected a POSIX extended "
                 "regular expression of 1-511 bytes");
    expect_error(POOL_HEAD POOL_EVENTS "    min_idle: 20\n    max: 5\n",
                 "airlock.yaml:10: pools[0].min_idle: expected at most max (5)");
    expect_error(POOL_HEAD POOL_EVENTS "    max: 500\n",
                 "airlock.yaml:5: pools[0].ports: expected at least max (500) ports, not 100");
    expect_error(POOL_HEAD POOL_EVENTS "    provision:\n      command: [x, \"{usr}\"]\n",
                 "airlock.yaml:11: pools[0].provision.command[1]: unknown placeholder (expected "
                 "{port}, {dir}, {instance}, {user}, {uid} or {gid})");
    expect_error(POOL_HEAD POOL_EVENTS "    uids: 61000-61999\n    user: nobody\n",
                 "airlock.yaml:10: pools[0].uids: expected either user (one shared user) or uids "
                 "(one uid per instance), not both");
    expect_error(POOL_HEAD POOL_EVENTS "    group: smartgrid\n",
                 "airlock.yaml:10: pools[0].group: applies with uids only (the gid of every "
                 "instance)");
    expect_error(POOL_HEAD POOL_EVENTS "    max_processes: 64\n",
                 "airlock.yaml:10: pools[0].max_processes: applies with uids (a limit per "
                 "instance's uid) or a cgroup per instance (memory_max, cpu_max or cgroup: its "
                 "pids.max)");
    expect_error(POOL_HEAD POOL_EVENTS "    memory_max: 1000KiB\n",
                 "airlock.yaml:10: pools[0].memory_max: expected a size from 1MiB to 1024GiB (B, "
                 "KiB, MiB, GiB; a bare integer is bytes)");
    expect_error(POOL_HEAD POOL_EVENTS "    cpu_max: 0.001\n",
                 "airlock.yaml:10: pools[0].cpu_max: expected a number of cores from 0.01 to "
                 "1024, at most two decimals (0.5)");
    expect_error(POOL_HEAD POOL_EVENTS "    cpu_max: 1024.01\n",
                 "airlock.yaml:10: pools[0].cpu_max: expected a number of cores from 0.01 to "
                 "1024, at most two decimals (0.5)");
    expect_error(POOL_HEAD POOL_EVENTS "    cgroup: /a/../b\n",
                 "airlock.yaml:10: pools[0].cgroup: expected \"own\" or an absolute cgroup path "
                 "(/airlock, as in /proc/self/cgroup) without . or .. components");
    expect_error(POOL_HEAD POOL_EVENTS "    cgroup: \"a b\"\n",
                 "airlock.yaml:10: pools[0].cgroup: expected \"own\" or an absolute cgroup path of "
                 "at most 511 bytes (/airlock)");
    expect_error(POOL_HEAD POOL_EVENTS "    uids: 61000-61999\n    max_processes: 4194305\n",
                 "airlock.yaml:11: pools[0].max_processes: expected an integer from 0 (no limit) "
                 "to 4194304");
    expect_error(POOL_HEAD POOL_EVENTS "    uids: 61000-61999\n    group: \"a b\"\n",
                 "airlock.yaml:11: pools[0].group: expected a group name or gid of 1-63 "
                 "characters (a-z 0-9 _ . -)");
    expect_error(POOL_HEAD POOL_EVENTS "    uids: 61000-61004\n",
                 "airlock.yaml:10: pools[0].uids: expected at least max (10) uids, not 5");
    expect_error(POOL_HEAD POOL_EVENTS "    uids: 0-100\n",
                 "airlock.yaml:10: pools[0].uids: expected a uid range FIRST-LAST (61000-61999), "
                 "uids 1-4294967294");
    expect_error(POOL_HEAD POOL_EVENTS "    uids: 1-4294967295\n",
                 "airlock.yaml:10: pools[0].uids: expected a uid range FIRST-LAST (61000-61999), "
                 "uids 1-4294967294");
    expect_error(POOL_HEAD POOL_EVENTS "    uids: 61000\n",
                 "airlock.yaml:10: pools[0].uids: expected a uid range FIRST-LAST (61000-61999), "
                 "uids 1-4294967294");
    expect_error(POOL_HEAD POOL_EVENTS "    uids: 61000-61999\n"
                                       "  - name: two\n"
                                       "    command: [/usr/bin/app]\n"
                                       "    endpoint: \"unix:{dir}/s\"\n"
                                       "    dir: /var/lib/airlock/two\n"
                                       "    uids: 61999-62999\n" POOL_EVENTS,
                 "airlock.yaml:15: pools[1].uids: expected uids no other pool uses; pools[0] has "
                 "61000-61999");
    expect_error("pools:\n  - endpoint: \"unix:/x/{uid}\"\n",
                 "airlock.yaml:2: pools[0].endpoint: {uid} and {gid} are known to commands and "
                 "hooks only");
    expect_error(POOL_HEAD POOL_EVENTS "    launcher: [\"{user}\"]\n",
                 "airlock.yaml:10: pools[0].launcher[0]: {user} is known to hooks only");
    expect_error("pools:\n  - command: [a]\n    endpoint: \"udp:127.0.0.1:{port}\"\n"
                 "    ports: 1-99\n    dir: /x\n" POOL_EVENTS,
                 "airlock.yaml:3: pools[0].endpoint: expected a stream endpoint (tcp, unix, "
                 "vsock, hvsock), not udp");
    expect_error("pools:\n  - command: [a]\n    endpoint: \"tcp:127.0.0.1:{port}\"\n"
                 "    dir: /x\n" POOL_EVENTS,
                 "airlock.yaml:2: pools[0].ports: missing: {port} is used; expected a port "
                 "range FIRST-LAST (20000-20999), ports 1-65535");
    expect_error(POOL_HEAD POOL_EVENTS "    ports: 9-3\n",
                 "airlock.yaml:10: pools[0].ports: duplicate key; first set on line 5");
    expect_error("pools:\n  - ports: 9-3\n", "airlock.yaml:2: pools[0].ports: expected a port "
                                             "range FIRST-LAST (20000-20999), ports 1-65535");
    expect_error("pools:\n  - endpoint: \"unix:{dir}/s\"\n    dir: /x\n" POOL_EVENTS,
                 "airlock.yaml:2: pools[0].command: missing from pool 'pool1'");
    /* state names: each one user's */
    expect_error(POOL_HEAD POOL_EVENTS "    state:\n      store: /s\n"
                                       "      fetch_optional: [\"{user}\"]\n"
                                       "      fetch: [\"{user}.db\"]\n",
                 "airlock.yaml:2: pools[0].state.fetch: \"{user}.db\" and \"{user}\" may name one "
                 "file for two users (a user whose name makes one the other's would get that "
                 "user's file): expected names no two users share");
    expect_error(POOL_HEAD POOL_EVENTS "    state:\n      store: /s\n"
                                       "      store_back: [\"{user}.db\", \"all.db\"]\n",
                 "airlock.yaml:2: pools[0].state.store_back: expected names with {user}, not "
                 "\"all.db\": every user's session would store it, and every fetch of it read "
                 "another user's");
    /* with uids, a socket's name elsewhere than in the instance's own
     * directory may be taken by another instance first */
    expect_error("pools:\n  - command: [a]\n    endpoint: \"unix:@grid-{instance}\"\n"
                 "    dir: /x\n    uids: 61000-61099\n" POOL_EVENTS,
                 "airlock.yaml:3: pools[0].endpoint: expected a socket file in the instance's "
                 "directory ({dir}/NAME) with uids, not an abstract name: another instance could "
                 "take that name first (as expanded: unix:@grid-pool1-1)");
    expect_error("pools:\n  - command: [a]\n    endpoint: \"unix:/run/grid/{instance}.sock\"\n"
                 "    dir: /x\n    uids: 61000-61099\n" POOL_EVENTS,
                 "airlock.yaml:3: pools[0].endpoint: expected a socket file in the instance's "
                 "directory ({dir}/NAME) with uids, not a file elsewhere: another instance could "
                 "take that name first (as expanded: unix:/run/grid/pool1-1.sock)");
    expect_error("pools:\n  - command: [a]\n    endpoint: \"hvsock:{dir}/../v.sock:52\"\n"
                 "    dir: /x\n    uids: 61000-61099\n" POOL_EVENTS,
                 "airlock.yaml:3: pools[0].endpoint: expected a socket file in the instance's "
                 "directory ({dir}/NAME) with uids, not a file elsewhere: another instance could "
                 "take that name first (as expanded: hvsock:/x/pool1-1/../v.sock:52)");
    expect_error("pools:\n  - dir: relative\n",
                 "airlock.yaml:2: pools[0].dir: expected an absolute directory path");
    expect_error("pool_record: pools.record\n",
                 "airlock.yaml:1: pool_record: expected an absolute file path");
    /* without a directory, no login line could be checked */
    expect_error(POOL_HEAD POOL_EVENTS,
                 "airlock.yaml:1: pools: expected a directory: block too (a login line is "
                 "believed only for the user the directory reserved the instance for)");
    /* the sentinels' password (whether one is needed is the host's check) */
    must_parse(POOL_HEAD POOL_EVENTS "directory:\n  backend: redis\n"
                                     "  sentinels: [tcp:127.0.0.1:26379]\n  sentinel_master: m\n"
                                     "  redis_password_file: /pw\n  sentinel_password_file: /spw\n",
               &cfg);
    assert_string_equal(cfg.directory.sentinel_password_file, "/spw");
    config_free(&cfg);
}

/* The bounds of the data path: datagram flows and fds, the resolver pool. */
static void
test_bounds(void **state)
{
    (void)state;
    struct config cfg;

    must_parse("resolver_threads: 64\n"
               "resolver_queue: 1\n"
               "relays:\n"
               "  - name: dns-host\n"
               "    listen: vsock:any:53\n"
               "    target: udp:10.0.0.2:53\n"
               "    max_flows: 65536\n"
               "    max_fds: 2\n"
               "  - name: dns-host2\n"
               "    listen: tcp:127.0.0.1:53\n"
               "    target: udp:10.0.0.2:53\n",
               &cfg);
    assert_int_equal(cfg.resolver_threads, 64);
    assert_int_equal(cfg.resolver_queue, 1);
    assert_int_equal(cfg.relays[0].max_flows, 65536);
    assert_int_equal(cfg.relays[0].max_fds, 2);
    assert_int_equal(cfg.relays[1].max_flows, 256);
    assert_int_equal(cfg.relays[1].max_fds, 0);
    config_free(&cfg);
    must_parse("relays:\n" RELAY_OK, &cfg);
    /* net/resolve.h's defaults, as ctl config shows them */
    assert_int_equal(cfg.resolver_threads, 4);
    assert_int_equal(cfg.resolver_queue, 256);
    config_free(&cfg);
}

static void
test_err_bounds(void **state)
{
    (void)state;

    expect_error("resolver_threads: 0\nrelays:\n" RELAY_OK,
                 "airlock.yaml:1: resolver_threads: expected an integer from 1 to 64");
    expect_error("resolver_threads: 65\nrelays:\n" RELAY_OK,
                 "airlock.yaml:1: resolver_threads: expected an integer from 1 to 64");
    expect_error("resolver_queue: 0\nrelays:\n" RELAY_OK,
                 "airlock.yaml:1: resolver_queue: expected an integer from 1 to 65536");
    expect_error("resolver_queue: 65537\nrelays:\n" RELAY_OK,
                 "airlock.yaml:1: resolver_queue: expected an integer from 1 to 65536");
    expect_error("relays:\n  - listen: vsock:any:53\n    target: udp:10.0.0.2:53\n"
                 "    max_flows: 0\n",
                 "airlock.yaml:4: relays[0].max_flows: expected an integer from 1 to 65536");
    expect_error("relays:\n  - listen: vsock:any:53\n    target: udp:10.0.0.2:53\n"
                 "    max_fds: 1\n",
                 "airlock.yaml:4: relays[0].max_fds: expected an integer from 2 to 1048576, or 0 "
                 "(an eighth of the open files limit, at most 4096)");
    expect_error("relays:\n  - listen: vsock:any:53\n    target: udp:10.0.0.2:53\n"
                 "    max_fds: 1048577\n",
                 "airlock.yaml:4: relays[0].max_fds: expected an integer from 2 to 1048576, or 0 "
                 "(an eighth of the open files limit, at most 4096)");
    expect_error("relays:\n" RELAY_OK "    max_flows: 10\n",
                 "airlock.yaml:4: relays[0].max_flows: applies to stream -> udp relays only (the "
                 "host side, which opens a socket per flow)");
    expect_error("relays:\n  - listen: udp:0.0.0.0:53\n    target: vsock:3:53\n"
                 "    max_fds: 100\n",
                 "airlock.yaml:4: relays[0].max_fds: applies to stream -> udp relays only (the "
                 "host side, which opens a socket per flow)");
}

/* The command line resolves to the same rows as the file: a bad value is
 * refused by both with the same "what was expected" (the file says where,
 * the command line which option). */
static void
test_cli_same_rows(void **state)
{
    (void)state;
    static const struct {
        const char *key, *flag, *value;
    } bad[] = {
        {"name", "--name", "a\"b"},
        {"name", "--name", "a{b}"},
        {"idle_timeout", "--idle-timeout", "5 s"},
        {"connect_timeout", "--connect-timeout", "1h30m"},
        {"max_connections", "--max-connections", "10000001"},
        {"max_connections", "--max-connections", "-1"},
        {"send_proxy", "--send-proxy", "v1"},
        {"keepalive", "--keepalive", "maybe"},
        {"allow", "--allow", "300.0.0.0/8"},
    };
    struct config cfg;
    char yaml[512], err[512], cli[512], want[512];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bool list = strcmp(bad[i].key, "allow") == 0;
        snprintf(yaml, sizeof(yaml),
                 "relays:\n  - listen: tcp:127.0.0.1:1\n    target: tcp:127.0.0.1:2\n"
                 "    %s: %s'%s'%s\n",
                 bad[i].key, list ? "[" : "", bad[i].value, list ? "]" : "");
        assert_int_equal(parse(yaml, &cfg, err, sizeof(err)), -1);
        char *what = strstr(err, list ? "[0]: " : ": expected");
        assert_non_null(what);
        what += list ? 5 : 2;
        char opt[64];
        snprintf(opt, sizeof(opt), "%s=%s", bad[i].flag, bad[i].value);
        char *argv[] = {"relay", "tcp:127.0.0.1:1", "tcp:127.0.0.1:2", (char *)bad[i].flag,
                        (char *)bad[i].value};
        if (i % 2 == 1) /* both spellings (keepalive, a flag, is odd) */
            argv[3] = opt;
        assert_int_equal(config_args(i % 2 == 1 ? 4 : 5, argv, false, &cfg, cli, sizeof(cli)), -1);
        assert_null(cfg.relays);
        snprintf(want, sizeof(want), "%s '%s': %s", bad[i].flag, bad[i].value, what);
        assert_string_equal(cli, want);
    }

    /* a rule that spans keys: the same block check */
    assert_int_equal(parse("relays:\n  - listen: unix:/a.sock\n    target: tcp:127.0.0.1:2\n"
                           "    allow: [10.0.0.0/8]\n",
                           &cfg, err, sizeof(err)),
                     -1);
    char *argv2[] = {"relay", "unix:/a.sock", "tcp:127.0.0.1:2", "--allow=10.0.0.0/8"};
    assert_int_equal(config_args(4, argv2, false, &cfg, cli, sizeof(cli)), -1);
    assert_string_equal(strstr(err, ": allow ") + 2, strstr(cli, ": allow ") + 2);

    /* an unknown key or option: the same closest row */
    assert_int_equal(parse("relays:\n  - listen: tcp:127.0.0.1:1\n    target: tcp:127.0.0.1:2\n"
                           "    idle_timout: 5s\n",
                           &cfg, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "airlock.yaml:4: relays[0]: unknown key 'idle_timout' (did you mean "
                             "'idle_timeout'?)");
    char *argv3[] = {"relay", "tcp:127.0.0.1:1", "tcp:127.0.0.1:2", "--idle-timout", "5s"};
    assert_int_equal(config_args(5, argv3, false, &cfg, cli, sizeof(cli)), -1);
    assert_string_equal(cli,
                        "unrecognized option '--idle-timout' (did you mean '--idle-timeout'?)");

    /* the options of the other command, and the shape of the command */
    char *argv4[] = {"router", "tcp:127.0.0.1:1", "--default", "tcp:127.0.0.1:2", "--max-fds", "9"};
    assert_int_equal(config_args(6, argv4, true, &cfg, cli, sizeof(cli)), -1);
    assert_string_equal(cli, "--max-fds: applies to airlock relay only");
    char *argv5[] = {"relay", "tcp:127.0.0.1:1"};
    assert_int_equal(config_args(2, argv5, false, &cfg, cli, sizeof(cli)), -1);
    assert_string_equal(cli, "");

    /* and a good command line gives what the file gives */
    char *argv6[] = {"relay",       "vsock:any:5",    "udp:127.0.0.1:53",
                     "--name=dns",  "--idle-timeout", "5s",
                     "--no-splice", "--max-flows",    "9",
                     "--dns-allow", "*.example.org",  "--allow",
                     "cid:16",      "--threads",      "3"};
    assert_int_equal(config_args(15, argv6, false, &cfg, cli, sizeof(cli)), 0);
    struct config file;
    must_parse("threads: 3\nrelays:\n  - {name: dns, listen: 'vsock:any:5', target: "
               "'udp:127.0.0.1:53', idle_timeout: 5s, splice: false, max_flows: 9, dns_allow: "
               "['*.example.org'], allow: ['cid:16']}\n",
               &file);
    assert_int_equal(cfg.threads, 3);
    assert_true(relay_conf_equal(&cfg.relays[0], &file.relays[0]));
    /* no file to show (airlock ctl config) */
    struct strbuf out = {0};
    assert_int_equal(config_dump(&cfg, &out, cli, sizeof(cli)), -1);
    assert_string_equal(cli, "no config file (started from the command line)");
    assert_null(out.data);
    config_free(&file);
    config_free(&cfg);
}

#define BROKER_HEAD "broker:\n  listen: tcp:127.0.0.1:8600\n  dir: /var/lib/s\n  key_file: /etc/k\n"
#define PCR48                                                                                      \
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d" \
    "2e2f"

/* The broker block and the policy block of its secrets (attest/policy.h). */
static void
test_broker_policy(void **state)
{
    struct config cfg;
    (void)state;

    must_parse("relays:\n" RELAY_OK, &cfg);
    assert_false(cfg.broker.enabled);
    assert_int_equal(cfg.broker.max_connections, 64); /* the defaults */
    assert_int_equal(cfg.broker.max_per_peer, 0);
    assert_int_equal(broker_conf_per_peer(&cfg.broker), 32); /* half */
    assert_int_equal(cfg.broker.timeout_ms, 10000);
    assert_int_equal(cfg.broker.request_timeout_ms, 2000);
    assert_int_equal(cfg.broker.nonce_ttl_ms, 5000);
    assert_int_equal(cfg.broker.max_message, 64 * 1024);
    config_free(&cfg);

    must_parse(BROKER_HEAD "  max_connections: 8\n  timeout: 20s\n  nonce_ttl: 3s\n"
                           "  max_message: 4KiB\n  max_per_peer: 3\n  request_timeout: 500ms\n"
                           "  secrets:\n"
                           "    - name: db-key\n"
                           "      policy:\n"
                           "        pcrs: {0: " PCR48 ", 8: ABCD}\n"
                           "        sim_root: /etc/sim.pem\n"
                           "        roots: /etc/aws.pem\n"
                           "    - name: snp-key\n"
                           "      policy: {type: snp, roots: /etc/ark.pem, measurement: " PCR48
                           ", min_tcb: 0300000000000873, allow_debug: true, vmpl: 0}\n"
                           "    - name: tdx-key\n"
                           "      policy: {type: tdx, collateral: /var/lib/pcs, tcb_status: "
                           "[UpToDate, SWHardeningNeeded], any_image: true}\n",
               &cfg);
    assert_true(cfg.broker.enabled);
    assert_endpoint(&cfg.broker.listen, "tcp:127.0.0.1:8600");
    assert_string_equal(cfg.broker.dir, "/var/lib/s");
    assert_string_equal(cfg.broker.key_file, "/etc/k");
    assert_int_equal(cfg.broker.max_connections, 8);
    assert_int_equal(broker_conf_per_peer(&cfg.broker), 3);
    assert_int_equal(cfg.broker.request_timeout_ms, 500);
    assert_int_equal(cfg.broker.timeout_ms, 20000);
    assert_int_equal(cfg.broker.nonce_ttl_ms, 3000);
    assert_int_equal(cfg.broker.max_message, 4096);
    assert_int_equal(cfg.broker.n_secrets, 3);
    const struct attest_policy_conf *p = &cfg.broker.secrets[0].policy;
    assert_string_equal(cfg.broker.secrets[0].name, "db-key");
    assert_int_equal(p->type, ATTEST_KIND_NITRO);
    assert_int_equal(p->npcrs, 2);
    assert_false(p->any_image);
    assert_true(cfg.broker.secrets[2].policy.any_image);
    assert_int_equal(p->pcrs[0].index, 0);
    assert_int_equal(p->pcrs[0].len, 48);
    assert_int_equal(p->pcrs[0].value[47], 0x2f);
    assert_int_equal(p->pcrs[1].index, 8);
    assert_int_equal(p->pcrs[1].len, 2);
    assert_int_equal(p->pcrs[1].value[0], 0xab);
    assert_string_equal(p->sim_root, "/etc/sim.pem");
    assert_string_equal(p->roots, "/etc/aws.pem");
    assert_null(p->root_certs); /* parsing loads nothing */
    p = &cfg.broker.secrets[1].policy;
    assert_int_equal(p->type, ATTEST_KIND_SNP);
    assert_true(p->has_measurement);
    assert_int_equal(p->measurement[1], 1);
    assert_true(p->has_min_tcb);
    assert_int_equal(p->min_tcb[0], 3);
    assert_int_equal(p->min_tcb[7], 0x73);
    assert_true(p->allow_debug);
    assert_true(p->has_vmpl);
    assert_int_equal(p->vmpl, 0);
    assert_false(cfg.broker.secrets[0].policy.has_vmpl);
    p = &cfg.broker.secrets[2].policy;
    assert_int_equal(p->type, ATTEST_KIND_TDX);
    assert_string_equal(p->collateral, "/var/lib/pcs");
    assert_int_equal(p->tcb_status_ok,
                     1u << ATTEST_TCB_UP_TO_DATE | 1u << ATTEST_TCB_SW_HARDENING_NEEDED);
    assert_null(p->tdx); /* parsing loads nothing */
    assert_int_equal(cfg.broker.secrets[0].policy.tcb_status_ok, 0);
    assert_int_equal(cfg.n_relays, 0); /* a broker alone is a config */
    config_free(&cfg);
    config_free(&cfg);

#define SECRET(policy) BROKER_HEAD "  secrets:\n    - name: s\n      policy: " policy "\n"
    expect_error(SECRET("{type: sev}"), "airlock.yaml:7: broker.secrets[0].policy.type: expected "
                                        "nitro, snp or tdx");
    expect_error(SECRET("{type: snp, pcrs: {0: AB}, roots: /r}"),
                 "airlock.yaml:7: broker.secrets[0].policy.pcrs: applies to type nitro only");
    expect_error(SECRET("{type: snp}"),
                 "airlock.yaml:7: broker.secrets[0].policy.roots: expected the PEM file of the "
                 "ARK and ASK for type snp");
    expect_error(SECRET("{measurement: " PCR48 "}"),
                 "airlock.yaml:7: broker.secrets[0].policy.measurement: applies to types snp "
                 "and tdx only");
    expect_error(SECRET("{type: tdx, min_tcb: 0011223344556677}"),
                 "airlock.yaml:7: broker.secrets[0].policy.min_tcb: applies to type snp only");
    expect_error(SECRET("{type: snp, roots: /r, min_tcb: 0000000100000000}"),
                 "airlock.yaml:7: broker.secrets[0].policy.min_tcb: expected zero in bytes 2 to 5 "
                 "(reserved in reported_tcb: not checked)");
    expect_error(SECRET("{type: tdx, vmpl: 0}"),
                 "airlock.yaml:7: broker.secrets[0].policy.vmpl: applies to type snp only");
    expect_error(SECRET("{type: snp, roots: /r, vmpl: 4}"),
                 "airlock.yaml:7: broker.secrets[0].policy.vmpl: expected an integer from 0 to 3");
    expect_error(SECRET("{type: snp, roots: /r, collateral: /c}"),
                 "airlock.yaml:7: broker.secrets[0].policy.collateral: applies to type tdx only");
    expect_error(SECRET("{tcb_status: [UpToDate]}"),
                 "airlock.yaml:7: broker.secrets[0].policy.tcb_status: applies to type tdx only");
    expect_error(SECRET("{type: tdx, tcb_status: [UpToDate]}"),
                 "airlock.yaml:7: broker.secrets[0].policy.tcb_status: expected collateral too: "
                 "without it the TCB is not judged");
    expect_error(SECRET("{type: tdx, collateral: /c, tcb_status: [UpToDate, Revoked]}"),
                 "airlock.yaml:7: broker.secrets[0].policy.tcb_status: expected a list of TCB "
                 "statuses (UpToDate, SWHardeningNeeded, ConfigurationNeeded, "
                 "ConfigurationAndSWHardeningNeeded, OutOfDate, OutOfDateConfigurationNeeded; "
                 "never Revoked): 'Revoked' is not one");
    expect_error(SECRET("{type: tdx, collateral: /c, tcb_status: uptodate}"),
                 "airlock.yaml:7: broker.secrets[0].policy.tcb_status: expected a list of TCB "
                 "statuses (UpToDate, SWHardeningNeeded, ConfigurationNeeded, "
                 "ConfigurationAndSWHardeningNeeded, OutOfDate, OutOfDateConfigurationNeeded; "
                 "never Revoked)");
    expect_error(SECRET("{type: tdx, sim_root: /s}"),
                 "airlock.yaml:7: broker.secrets[0].policy.sim_root: applies to type nitro only");
    expect_error(SECRET("{type: tdx, measurement: 0011}"),
                 "airlock.yaml:7: broker.secrets[0].policy.measurement: expected 48 bytes of hex");
    expect_error(SECRET("{pcrs: {32: AB}}"),
                 "airlock.yaml:7: broker.secrets[0].policy.pcrs: expected a mapping of PCR index "
                 "(0-31) to hex ({0: HEX, 8: HEX}): '32' is no PCR index");
    /* no image pinned: any enclave of the type would get the secret */
    expect_error(SECRET("{type: tdx}"),
                 "airlock.yaml:7: broker.secrets[0].policy.measurement: missing: expected the "
                 "image to pin (measurement, the TD's firmware, and rtmrs 1 and 2, what it "
                 "boots), or any_image: true to accept every tdx enclave, whoever launched it");
    /* a TD's MRTD is its firmware (TDVF): any kernel, initrd and command
     * line it boots passed (RTMR 1 and 2, which could not be pinned) */
    expect_error(SECRET("{type: tdx, measurement: " PCR48 "}"),
                 "airlock.yaml:7: broker.secrets[0].policy.rtmrs: missing: expected RTMR 1 and 2 "
                 "pinned too (the kernel, its command line and initrd: the MRTD measures only the "
                 "TD's firmware), or any_image: true to accept every tdx enclave of this firmware");
    expect_error(SECRET("{type: tdx, measurement: " PCR48 ", rtmrs: {1: " PCR48 ", 3: " PCR48 "}}"),
                 "airlock.yaml:7: broker.secrets[0].policy.rtmrs: missing: expected RTMR 1 and 2 "
                 "pinned too (the kernel, its command line and initrd: the MRTD measures only the "
                 "TD's firmware), or any_image: true to accept every tdx enclave of this firmware");
    /* RTMRs are what the firmware measured: without the MRTD, anything */
    expect_error(SECRET("{type: tdx, rtmrs: {1: " PCR48 ", 2: " PCR48 "}}"),
                 "airlock.yaml:7: broker.secrets[0].policy.measurement: missing: expected the "
                 "image to pin (measurement, the TD's firmware, and rtmrs 1 and 2, what it "
                 "boots), or any_image: true to accept every tdx enclave, whoever launched it");
    expect_error(SECRET("{type: tdx, any_image: true, rtmrs: {1: " PCR48 "}}"),
                 "airlock.yaml:7: broker.secrets[0].policy.any_image: expected no rtmrs with "
                 "any_image: true");
    expect_error(SECRET("{rtmrs: {1: " PCR48 "}, any_image: true}"),
                 "airlock.yaml:7: broker.secrets[0].policy.rtmrs: applies to type tdx only");
    expect_error(SECRET("{type: tdx, any_image: true, rtmrs: {4: " PCR48 "}}"),
                 "airlock.yaml:7: broker.secrets[0].policy.rtmrs: expected a mapping of RTMR "
                 "index (0-3) to hex ({1: HEX, 2: HEX}): '4' is no RTMR index");
    expect_error(SECRET("{type: tdx, any_image: true, rtmrs: {1: " PCR48 ", 01: " PCR48 "}}"),
                 "airlock.yaml:7: broker.secrets[0].policy.rtmrs.1: expected each RTMR once");
    expect_error(SECRET("{type: tdx, any_image: true, rtmrs: {1: AB}}"),
                 "airlock.yaml:7: broker.secrets[0].policy.rtmrs.1: expected the RTMR's 48 bytes "
                 "in hex");
    expect_error(SECRET("{type: tdx, any_image: true, rtmrs: {}}"),
                 "airlock.yaml:7: broker.secrets[0].policy.rtmrs: expected a mapping of RTMR "
                 "index (0-3) to hex ({1: HEX, 2: HEX})");
    must_parse(SECRET("{type: tdx, measurement: " PCR48 ", rtmrs: {2: " PCR48 ", 1: " PCR48 "}}"),
               &cfg);
    assert_int_equal(cfg.broker.secrets[0].policy.rtmrs_pinned, 1u << 1 | 1u << 2);
    assert_int_equal(cfg.broker.secrets[0].policy.rtmrs[2][47], 0x2f);
    struct config other;
    must_parse(SECRET("{type: tdx, measurement: " PCR48 ", rtmrs: {1: " PCR48 ", 2: " PCR48 "}}"),
               &other);
    assert_true(broker_conf_equal(&cfg.broker, &other.broker));
    other.broker.secrets[0].policy.rtmrs[1][0] ^= 1; /* a reload that changes it applies it */
    assert_false(broker_conf_equal(&cfg.broker, &other.broker));
    config_free(&other);
    config_free(&cfg);
    /* the firmware alone, when it says so */
    must_parse(SECRET("{type: tdx, measurement: " PCR48 ", any_image: true}"), &cfg);
    assert_true(cfg.broker.secrets[0].policy.has_measurement);
    config_free(&cfg);
    expect_error(SECRET("{type: snp, roots: /r}"),
                 "airlock.yaml:7: broker.secrets[0].policy.measurement: missing: expected the "
                 "image to pin (measurement), or any_image: true to accept every snp enclave, "
                 "whoever launched it");
    expect_error(SECRET("{sim_root: /s, roots: /r, allow_debug: true}"),
                 "airlock.yaml:7: broker.secrets[0].policy.pcrs: missing: expected the image to "
                 "pin (pcrs), or any_image: true to accept every nitro enclave, whoever launched "
                 "it");
    expect_error(SECRET("{pcrs: {0: AB}, any_image: true}"),
                 "airlock.yaml:7: broker.secrets[0].policy.any_image: expected no pcrs or "
                 "measurement with any_image: true");
    expect_error(SECRET("{pcrs: {}}"),
                 "airlock.yaml:7: broker.secrets[0].policy.pcrs: expected a mapping of PCR index "
                 "(0-31) to hex ({0: HEX, 8: HEX}): at least one (without pcrs, no PCR is "
                 "pinned)");
    expect_error(SECRET("{pcrs: {1: AB, 01: CD}}"),
                 "airlock.yaml:7: broker.secrets[0].policy.pcrs.1: expected each PCR once");
    expect_error(SECRET("{pcrs: {1: XY}}"), "airlock.yaml:7: broker.secrets[0].policy.pcrs.1: "
                                            "expected the PCR's value in hex (1-64 bytes)");
    expect_error(SECRET("{pcrs: {1: ''}}"), "airlock.yaml:7: broker.secrets[0].policy.pcrs.1: "
                                            "expected the PCR's value in hex (1-64 bytes)");
    expect_error(SECRET("{pcrs: [AB]}"),
                 "airlock.yaml:7: broker.secrets[0].policy.pcrs: expected a mapping of PCR index "
                 "(0-31) to hex ({0: HEX, 8: HEX})");
    expect_error(SECRET("{pcrs: {1: AB}, color: red}"),
                 "airlock.yaml:7: broker.secrets[0].policy: unknown key 'color'");
    expect_error(BROKER_HEAD "  secrets:\n    - name: s\n",
                 "airlock.yaml:6: broker.secrets[0].policy: missing: expected the attestation "
                 "policy a requester must meet");
    expect_error(BROKER_HEAD "  secrets:\n    - {name: s, policy: {any_image: true}}\n"
                             "    - {name: s, policy: {any_image: true}}\n",
                 "airlock.yaml:7: broker.secrets[1].name: expected a unique name; secrets[0] is "
                 "already 's'");
    expect_error(BROKER_HEAD
                 "  timeout: 2s\n  secrets:\n    - {name: s, policy: {any_image: true}}\n",
                 "airlock.yaml:2: broker.nonce_ttl: expected at most timeout (2000 ms)");
    expect_error(BROKER_HEAD "  timeout: 2s\n  nonce_ttl: 1s\n  request_timeout: 3s\n"
                             "  secrets:\n    - {name: s, policy: {any_image: true}}\n",
                 "airlock.yaml:7: broker.request_timeout: expected at most timeout (2000 ms)");
    expect_error(BROKER_HEAD "  max_connections: 4\n  max_per_peer: 5\n"
                             "  secrets:\n    - {name: s, policy: {any_image: true}}\n",
                 "airlock.yaml:6: broker.max_per_peer: expected at most max_connections (4)");
    expect_error(BROKER_HEAD
                 "  max_per_peer: 0\n  secrets:\n    - {name: s, policy: {any_image: true}}\n",
                 "airlock.yaml:5: broker.max_per_peer: expected an integer from 1 to 4096");
    expect_error("broker:\n  dir: /d\n  key_file: /k\n  secrets:\n    - {name: s, policy: "
                 "{any_image: true}}\n",
                 "airlock.yaml:2: broker.listen: missing: expected an endpoint (" EP_FORMS ")");
    expect_error("relays:\n" RELAY_OK "broker:\n  listen: tcp:0.0.0.0:8443\n  dir: /d\n"
                 "  key_file: /k\n  secrets:\n    - {name: s, policy: {any_image: true}}\n",
                 "airlock.yaml:5: broker.listen: expected an endpoint nothing else listens on; "
                 "relays[0] ('relay1') already listens on tcp:0.0.0.0:8443");
#undef SECRET
}

/* The form request paths are matched in (http_path_normalize()): a last
 * segment that is empty, ".", ".." or parameters only keeps its '/', as
 * RFC 3986 5.2.4 and URL parsers do; a route /v2/pay/ takes them all. */
static void
test_http_path_normalize(void **state)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"/v2/pay/", "/v2/pay/"},
        {"/v2/pay/.", "/v2/pay/"},
        {"/v2/pay/%2e", "/v2/pay/"},
        {"/v2/pay/%2E", "/v2/pay/"},
        {"/v2/pay/x/..", "/v2/pay/"},
        {"/v2/pay/x/%2e%2e", "/v2/pay/"},
        {"/v2/pay/;", "/v2/pay/"},
        {"/v2/pay/;a=b", "/v2/pay/"},
        {"/v2/pay/%3B", "/v2/pay/"},
        {"/v2/pay//", "/v2/pay/"},
        {"/v2/pay", "/v2/pay"},
        {"/v2/pay;x", "/v2/pay"},
        {"/v2/pay/./x", "/v2/pay/x"},
        {"/v2/pay/x/../y", "/v2/pay/y"},
        {"/%70ay/../pay", "/pay"},
        {"/..", "/"},
        {"/.", "/"},
        {"/a/..", "/"},
        {"", "/"},
        {"/", "/"},
        {"/kid%C5%BF", "/kids"},
    };
    char out[HTTP_REQ_PATH_MAX + 2];
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(http_path_normalize(cases[i].in, strlen(cases[i].in), out, sizeof(out)),
                         HTTP_PATH_OK);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("%s: got %s, want %s", cases[i].in, out, cases[i].want);
    }
    assert_int_equal(http_path_normalize("/x/..;/pay", 10, out, sizeof(out)), HTTP_PATH_INVALID);
    /* an escape that decodes to another escape: another path to a backend
     * that decodes twice; a '%' without two hex digits after it is a '%' */
    static const char *const twice[] = {"/%2570ay", "/p%2561y",     "/pay%252e%252e",
                                        "/%252F",   "/%25%37%30ay", "/pay/..%252f"};
    for (size_t i = 0; i < sizeof(twice) / sizeof(twice[0]); i++)
        if (http_path_normalize(twice[i], strlen(twice[i]), out, sizeof(out)) != HTTP_PATH_INVALID)
            fail_msg("%s: not refused", twice[i]);
    assert_int_equal(http_path_normalize("/100%25", 7, out, sizeof(out)), HTTP_PATH_OK);
    assert_string_equal(out, "/100%");
    assert_int_equal(http_path_normalize("/a%25zz", 7, out, sizeof(out)), HTTP_PATH_OK);
}

/* proxies: the HTTP proxy role and its routes (docs/field-encryption.md). */
static void
test_proxies(void **state)
{
    struct config cfg;
    (void)state;

    must_parse("proxies:\n  - name: api\n    listen: tcp:127.0.0.1:8080\n"
               "    backend: unix:/run/app.sock\n    keyset: /etc/k.json\n    max_body: 2MiB\n"
               "    response_timeout: 5s\n    routes:\n      - name: pay\n"
               "        methods: [POST, PUT]\n        path: /pay\n"
               "        encrypt: [\"$.card.number\", \"$.items[*].ssn\"]\n"
               "        deterministic: [\"$..email\"]\n        decrypt: true\n"
               "      - path: /public\n",
               &cfg);
    assert_int_equal(cfg.n_relays, 0);
    assert_int_equal(cfg.n_proxies, 1);
    const struct http_proxy_conf *pc = &cfg.proxies[0];
    assert_string_equal(pc->name, "api");
    assert_int_equal(pc->max_body, 2 * 1024 * 1024);
    assert_int_equal(pc->response_timeout_ms, 5000);
    assert_int_equal(pc->max_header, 16 * 1024);
    assert_int_equal(pc->n_routes, 2);
    assert_int_equal(pc->routes[0].methods, HTTP_RM_POST | HTTP_RM_PUT);
    assert_int_equal(pc->routes[0].n_rules, 3);
    assert_string_equal(pc->routes[0].rules[1].path, "$.items[*].ssn");
    assert_false(pc->routes[0].rules[1].deterministic);
    assert_true(pc->routes[0].rules[2].deterministic);
    assert_true(pc->routes[0].decrypt);
    assert_string_equal(pc->routes[0].content_type, "application/json");
    assert_string_equal(pc->routes[1].name, "route2");
    assert_int_equal(pc->routes[1].n_rules, 0);
    config_free(&cfg);

#define PX "proxies:\n  - listen: tcp:127.0.0.1:80\n    backend: tcp:127.0.0.1:81\n"
    expect_error(PX "    routes:\n      - path: /p\n        encrypt: [$.a]\n",
                 "airlock.yaml:5: proxies[0].routes[0]: expected a keyset: route 'route1' "
                 "encrypts or decrypts; give keyset: in the route or the proxy");
    expect_error(PX "    keyset: /k\n    routes:\n      - path: /p\n        encrypt: [\"$.a[\"]\n",
                 "airlock.yaml:7: proxies[0].routes[0].encrypt[0]: at character 5: expected *, "
                 "an index or a quoted name after '['");
    expect_error(PX "    keyset: /k\n    routes:\n      - path: p\n",
                 "airlock.yaml:6: proxies[0].routes[0].path: expected a path prefix starting "
                 "with '/' of at most 255 bytes");
    expect_error(PX "    keyset: /k\n    routes:\n      - path: /caf\xc3\xa9\n",
                 "airlock.yaml:6: proxies[0].routes[0].path: expected a path prefix in ASCII "
                 "(routes compare case in ASCII only, a backend may fold it in all of Unicode: "
                 "give the ASCII part before it)");
    /* a route behind one that takes all its requests: its rules never run */
    expect_error(PX "    keyset: /k\n    routes:\n      - path: /\n      - path: /pay\n"
                    "        encrypt: [$.a]\n",
                 "airlock.yaml:7: proxies[0].routes[1]: expected a route some request reaches: "
                 "routes[0] ('route1') comes first and takes every request route 'route2' "
                 "would, whose rules would never run");
    expect_error(PX "    keyset: /k\n    routes:\n      - {path: /PA, methods: [GET, POST]}\n"
                    "      - {path: /pay, methods: [POST], decrypt: true}\n",
                 "airlock.yaml:7: proxies[0].routes[1]: expected a route some request reaches: "
                 "routes[0] ('route1') comes first and takes every request route 'route2' "
                 "would, whose rules would never run");
    must_parse(PX "    keyset: /k\n    routes:\n      - {path: /pay, methods: [GET]}\n"
                  "      - {path: /pay, methods: [POST], encrypt: [$.a]}\n"
                  "      - {path: /pay/public}\n      - {path: /pay, encrypt: [$.a]}\n",
               &cfg);
    config_free(&cfg);
    expect_error(PX "    keyset: /k\n    routes:\n      - path: /p\n        encrypt: [$.a, $.a]\n",
                 "airlock.yaml:7: proxies[0].routes[0].encrypt: expected each path once; $.a is "
                 "given twice");
    expect_error(PX "  - listen: tcp:127.0.0.1:80\n    backend: tcp:127.0.0.1:82\n",
                 "airlock.yaml:4: proxies[1].listen: expected an endpoint nothing else listens on; "
                 "another proxy already listens on tcp:127.0.0.1:80");
    expect_error("proxies:\n  - listen: tcp:127.0.0.1:80\n",
                 "airlock.yaml:2: proxies[0].backend: missing from proxy 'proxy1': expected an "
                 "endpoint (" EP_FORMS ")");
#undef PX
}

/* Fills what follows the NUL of the string s (size bytes) with 0x5a. */
static void
garble(char *s, size_t size)
{
    size_t n = strnlen(s, size);

    if (n + 1 < size)
        memset(s + n + 1, 0x5a, size - n - 1);
}

static void
garble_ep(struct endpoint *ep)
{
    garble(ep->host, sizeof(ep->host));
    garble(ep->path, sizeof(ep->path));
    garble(ep->perm.owner, sizeof(ep->perm.owner));
    garble(ep->perm.group, sizeof(ep->perm.group));
}

/* What a reload compares to keep a part running (a directory, a log sink,
 * a proxy, the broker) compares settings, not bytes: the same file parsed
 * again with other bytes after its strings' NULs is equal; a change of a
 * string is not. */
static void
test_equal_by_text(void **state)
{
    static const char yaml[] =
        "directory:\n  backend: redis\n  redis: tcp:127.0.0.1:6379\n  prefix: \"x:\"\n"
        "  node: n1\n"
        "log_sinks:\n  - name: s\n    listen: tcp:127.0.0.1:7000\n    file: /tmp/s.log\n"
        "    allow: [10.0.0.0/8]\n"
        "proxies:\n  - name: out\n    mode: outbound\n    listen: unix:/run/out.sock\n"
        "    keyset: /k.json\n    ca_file: /ca.pem\n    egress_allow: [\"api.example:443\"]\n"
        "    routes: [{name: r, path: /x, upstream: \"https://api.example:443\", decrypt: "
        "true}]\n";
    struct config a, b;
    (void)state;

    must_parse(yaml, &a);
    must_parse(yaml, &b);
    garble_ep(&b.directory.redis);
    garble(b.directory.prefix, sizeof(b.directory.prefix));
    garble(b.directory.node, sizeof(b.directory.node));
    garble(b.directory.sentinel_master, sizeof(b.directory.sentinel_master));
    garble(b.sinks[0].name, sizeof(b.sinks[0].name));
    garble(b.sinks[0].file, sizeof(b.sinks[0].file));
    garble_ep(&b.sinks[0].listen);
    struct http_proxy_conf *p = &b.proxies[0];
    garble(p->name, sizeof(p->name));
    garble(p->keyset, sizeof(p->keyset));
    garble(p->ca_file, sizeof(p->ca_file));
    garble_ep(&p->listen);
    garble_ep(&p->via);
    garble(p->egress_allow[0].name, sizeof(p->egress_allow[0].name));
    garble(p->routes[0].name, sizeof(p->routes[0].name));
    garble(p->routes[0].prefix, sizeof(p->routes[0].prefix));
    garble(p->routes[0].content_type, sizeof(p->routes[0].content_type));
    garble_ep(&p->routes[0].upstream);
    garble(b.broker.dir, sizeof(b.broker.dir));
    assert_true(dir_conf_equal(&a.directory, &b.directory));
    assert_true(log_sink_conf_equal(&a.sinks[0], &b.sinks[0]));
    assert_true(http_proxy_conf_equal(&a.proxies[0], &b.proxies[0]));
    assert_true(broker_conf_equal(&a.broker, &b.broker));
    b.directory.node[1] = '2';
    assert_false(dir_conf_equal(&a.directory, &b.directory));
    b.sinks[0].file[1] = 'x';
    assert_false(log_sink_conf_equal(&a.sinks[0], &b.sinks[0]));
    p->routes[0].upstream.host[0] = 'x';
    assert_false(http_proxy_conf_equal(&a.proxies[0], &b.proxies[0]));
    b.broker.dir[0] = 'x';
    assert_false(broker_conf_equal(&a.broker, &b.broker));
    config_free(&a);
    config_free(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_equal_by_text),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_relay_conf_defaults),
        cmocka_unit_test(test_yaml_forms),
        cmocka_unit_test(test_limits_accepted),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_err_yaml_syntax),
        cmocka_unit_test(test_err_yaml_bounds),
        cmocka_unit_test(test_log_limits),
        cmocka_unit_test(test_listen_perm),
        cmocka_unit_test(test_err_listen_perm),
        cmocka_unit_test(test_err_empty),
        cmocka_unit_test(test_err_root),
        cmocka_unit_test(test_err_unknown_key),
        cmocka_unit_test(test_err_duplicate_key),
        cmocka_unit_test(test_err_wrong_type),
        cmocka_unit_test(test_err_relays),
        cmocka_unit_test(test_http_path_normalize),
        cmocka_unit_test(test_proxies),
        cmocka_unit_test(test_err_missing),
        cmocka_unit_test(test_err_numbers),
        cmocka_unit_test(test_err_duration),
        cmocka_unit_test(test_err_enums),
        cmocka_unit_test(test_err_name),
        cmocka_unit_test(test_err_duplicate_name),
        cmocka_unit_test(test_err_duplicate_listen),
        cmocka_unit_test(test_err_listen_clash),
        cmocka_unit_test(test_err_endpoint),
        cmocka_unit_test(test_udp),
        cmocka_unit_test(test_err_udp),
        cmocka_unit_test(test_err_vsock_any_target),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_err_targets),
        cmocka_unit_test(test_err_allow),
        cmocka_unit_test(test_egress),
        cmocka_unit_test(test_err_egress),
        cmocka_unit_test(test_relay_conf_check),
        cmocka_unit_test(test_cli_same_rows),
        cmocka_unit_test(test_short_err_buffer),
        cmocka_unit_test(test_all_errors),
        cmocka_unit_test(test_all_errors_syntax),
        cmocka_unit_test(test_all_errors_cap),
        cmocka_unit_test(test_quoting_hints),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_load_routes_max),
        cmocka_unit_test(test_logs),
        cmocka_unit_test(test_err_logs),
        cmocka_unit_test(test_err_log_sinks),
        cmocka_unit_test(test_directory),
        cmocka_unit_test(test_broker_policy),
        cmocka_unit_test(test_err_directory),
        cmocka_unit_test(test_routers),
        cmocka_unit_test(test_router_equal),
        cmocka_unit_test(test_router_equal_flags),
        cmocka_unit_test(test_per_client),
        cmocka_unit_test(test_err_routers),
        cmocka_unit_test(test_pools),
        cmocka_unit_test(test_err_pools),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_err_bounds),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
