/* config.c - the YAML configuration; see config.h.
 *
 * libyaml's document API builds the whole node tree first, so YAML syntax
 * errors are reported before any setting is looked at, and every node keeps
 * its start mark for "FILE:LINE: KEY: what was expected" messages. The walk
 * below knows the schema and only ever descends into known keys, to a fixed
 * depth (root, relays, relay, allow), so aliases - even ones that point back
 * at an ancestor - cannot make it loop or blow up. Before the loader runs,
 * prescan() bounds what would cost libyaml itself quadratic time: nesting,
 * anchors and directives. */
#include "cli/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "pool/template.h"

#define CONF_THREADS_MAX 256
#define CONF_MAXCONN_MAX 10000000u
/* Bounds the allocation for the relays array (a few KiB each) on hostile
 * input; far above any real deployment. */
#define CONF_RELAYS_MAX 4096
/* A config is a few KiB; refuse to slurp something that is clearly not one. */
#define CONF_FILE_MAX (1024 * 1024)
/* Room for the longest key path, "relays[4095].max_connections", and more. */
#define CONF_KEY_MAX 64
/* Longest key echoed back in "unknown key" messages. */
#define CONF_ECHO_MAX 32
/* What libyaml is asked to build (see prescan()): a config nests five
 * levels deep and needs no anchors or directives. */
#define CONF_DEPTH_MAX 64
#define CONF_ANCHORS_MAX 256
#define CONF_DIRECTIVES_MAX 16

#define EP_FORMS "tcp:HOST:PORT, udp:HOST:PORT, unix:/path, vsock:CID:PORT, hvsock:/path:PORT"
#define EXPECT_EP "expected an endpoint (" EP_FORMS ")"
#define EXPECT_DURATION "expected a duration (250ms, 5s, 2m, 1h; a bare integer is seconds)"
#define EXPECT_THREADS "expected an integer from 0 to 256 (0: one per core)"
#define EXPECT_MAXCONN "expected an integer from 0 to 10000000 (0: no limit)"
#define EXPECT_BOOL "expected true or false"
#define EXPECT_PROXY "expected v2 or none"
#define EXPECT_LEVEL "expected error, warn, info or debug"
#define EXPECT_NAME "expected a name of 1-63 characters from A-Z a-z 0-9 _ . -"
#define EXPECT_RULE "expected a CIDR (10.0.0.0/8, [2001:db8::]/32), an address or cid:N"
#define EXPECT_TARGET "expected an endpoint (" EP_FORMS ") or egress"
#define EXPECT_EGRESS_RULE                                                                         \
    "expected DEST:PORTS (api.example.com:443, *.example.com:443, 198.51.100.0/24:80-90, "         \
    "[2001:db8::]/32:443)"
#define EXPECT_BUFFER                                                                              \
    "expected a size from 64KiB to 1GiB (B, KiB, MiB, GiB; a bare integer is bytes)"
#define EXPECT_LINE_MAX                                                                            \
    "expected a size from 256B to 1MiB (B, KiB, MiB, GiB; a bare integer is bytes)"
#define EXPECT_FILE "expected a file path of 1-4095 bytes"
#define MSG_STREAM_EP "expected a stream endpoint (tcp, unix, vsock, hvsock), not udp"
#define EXPECT_DATAGRAM "expected an integer from 1 to 65507 (the largest UDP payload)"
#define EXPECT_PATTERN "expected a name (example.com) or a wildcard (*.example.com)"
#define EXPECT_BACKEND "expected memory or redis"
#define EXPECT_PREFIX "expected a redis key prefix of 0-63 bytes without spaces"
#define MSG_DGRAM_ONLY "applies to datagram relays (a udp listen or target) only"
#define EXPECT_MAX_FLOWS "expected an integer from 1 to 65536"
#define EXPECT_RESOLVER_THREADS "expected an integer from 1 to 64"
#define EXPECT_RESOLVER_QUEUE "expected an integer from 1 to 65536"
#define EXPECT_MAX_FDS                                                                             \
    "expected an integer from 2 to 1048576, or 0 (an eighth of the open files limit, at most "     \
    "4096)"
#define MSG_STREAM_SIDE                                                                            \
    "applies to stream -> udp relays only (the host side, which opens a socket per flow)"
#define EXPECT_STREAMS "expected an integer from 1 to 4096"
#define EXPECT_LISTEN                                                                              \
    "expected an endpoint (" EP_FORMS ") or a mapping {endpoint, mode, owner, group}"
#define EXPECT_MODE "expected an octal mode from 0001 to 0777 (0660: owner and group)"
#define EXPECT_OWNER "expected a user name or uid of 1-63 characters (a-z 0-9 _ . -)"
#define EXPECT_GROUP "expected a group name or gid of 1-63 characters (a-z 0-9 _ . -)"

enum top_key {
    TK_THREADS,
    TK_LOG_LEVEL,
    TK_METRICS,
    TK_DRAIN_TIMEOUT,
    TK_RELAYS,
    TK_LOGS,
    TK_LOG_SINKS,
    TK_ROUTERS,
    TK_DIRECTORY,
    TK_CONTROL,
    TK_POOLS,
    TK_RESOLVER_THREADS,
    TK_RESOLVER_QUEUE,
    TK_COUNT
};

static const char *const top_keys[TK_COUNT] = {
    [TK_THREADS] = "threads",
    [TK_LOG_LEVEL] = "log_level",
    [TK_METRICS] = "metrics",
    [TK_DRAIN_TIMEOUT] = "drain_timeout",
    [TK_RELAYS] = "relays",
    [TK_LOGS] = "logs",
    [TK_LOG_SINKS] = "log_sinks",
    [TK_ROUTERS] = "routers",
    [TK_DIRECTORY] = "directory",
    [TK_CONTROL] = "control",
    [TK_POOLS] = "pools",
    [TK_RESOLVER_THREADS] = "resolver_threads",
    [TK_RESOLVER_QUEUE] = "resolver_queue",
};

enum dir_key {
    DK_BACKEND,
    DK_REDIS,
    DK_PREFIX,
    DK_RESERVE,
    DK_TTL,
    DK_WAIT,
    DK_PER_CLIENT,
    DK_SHARE,
    DK_COUNT
};

static const char *const dir_keys[DK_COUNT] = {
    [DK_BACKEND] = "backend",
    [DK_REDIS] = "redis",
    [DK_PREFIX] = "prefix",
    [DK_RESERVE] = "reserve_timeout",
    [DK_TTL] = "session_ttl",
    [DK_WAIT] = "assign_wait",
    [DK_PER_CLIENT] = "max_pending_per_client",
    [DK_SHARE] = "pending_share",
};

#define EXPECT_PER_CLIENT "expected an integer from 0 (no bound) to 1024"
#define EXPECT_SHARE "expected a percentage from 1 to 100 (100: no bound)"

/* The keys of struct stream_limits, in the logs block and in each sink. */
enum limits_key { LIM_ALLOW, LIM_MAX_STREAMS, LIM_IDLE_TIMEOUT, LIM_COUNT };

enum logs_key {
    LK_FORWARD,
    LK_CAPTURE_STDERR,
    LK_LISTEN,
    LK_BUFFER,
    LK_LINE_MAX,
    LK_ALLOW, /* the limits_key order from here */
    LK_MAX_STREAMS,
    LK_IDLE_TIMEOUT,
    LK_COUNT
};

static const char *const logs_keys[LK_COUNT] = {
    [LK_FORWARD] = "forward",         [LK_CAPTURE_STDERR] = "capture_stderr",
    [LK_LISTEN] = "listen",           [LK_BUFFER] = "buffer",
    [LK_LINE_MAX] = "line_max",       [LK_ALLOW] = "allow",
    [LK_MAX_STREAMS] = "max_streams", [LK_IDLE_TIMEOUT] = "idle_timeout",
};

enum sink_key {
    SK_NAME,
    SK_LISTEN,
    SK_FILE,
    SK_LINE_MAX,
    SK_ALLOW, /* the limits_key order from here */
    SK_MAX_STREAMS,
    SK_IDLE_TIMEOUT,
    SK_COUNT
};

static const char *const sink_keys[SK_COUNT] = {
    [SK_NAME] = "name",
    [SK_LISTEN] = "listen",
    [SK_FILE] = "file",
    [SK_LINE_MAX] = "line_max",
    [SK_ALLOW] = "allow",
    [SK_MAX_STREAMS] = "max_streams",
    [SK_IDLE_TIMEOUT] = "idle_timeout",
};

enum relay_key {
    RK_NAME,
    RK_LISTEN,
    RK_TARGET,
    RK_ALLOW,
    RK_MAX_CONNECTIONS,
    RK_CONNECT_TIMEOUT,
    RK_IDLE_TIMEOUT,
    RK_KEEPALIVE,
    RK_SPLICE,
    RK_SEND_PROXY,
    RK_ACCEPT_PROXY,
    RK_ORIGINAL_DST,
    RK_EGRESS_ALLOW,
    RK_MAX_DATAGRAM,
    RK_FLOW_IDLE_TIMEOUT,
    RK_DNS_ALLOW,
    RK_MAX_FLOWS,
    RK_MAX_FDS,
    RK_COUNT
};

static const char *const relay_keys[RK_COUNT] = {
    [RK_NAME] = "name",
    [RK_LISTEN] = "listen",
    [RK_TARGET] = "target",
    [RK_ALLOW] = "allow",
    [RK_MAX_CONNECTIONS] = "max_connections",
    [RK_CONNECT_TIMEOUT] = "connect_timeout",
    [RK_IDLE_TIMEOUT] = "idle_timeout",
    [RK_KEEPALIVE] = "keepalive",
    [RK_SPLICE] = "splice",
    [RK_SEND_PROXY] = "send_proxy",
    [RK_ACCEPT_PROXY] = "accept_proxy",
    [RK_ORIGINAL_DST] = "original_dst",
    [RK_EGRESS_ALLOW] = "egress_allow",
    [RK_MAX_DATAGRAM] = "max_datagram",
    [RK_FLOW_IDLE_TIMEOUT] = "flow_idle_timeout",
    [RK_DNS_ALLOW] = "dns_allow",
    [RK_MAX_FLOWS] = "max_flows",
    [RK_MAX_FDS] = "max_fds",
};

/* Which setting relay_check() objected to, so that config_parse() can point
 * at its line and relay_conf_check() can name it. */
struct fault {
    enum relay_key key;
    bool has_item; /* the allow rule at index item, rather than the whole list */
    size_t item;
};

/* Where the settings of the relay being parsed are, for messages. */
struct relay_lines {
    size_t map;           /* the relay's mapping */
    size_t key[RK_COUNT]; /* each key's value; 0 when absent */
    size_t rule[CONF_ALLOW_MAX];
    size_t name[CONF_DNS_ALLOW_MAX];
};

struct ctx {
    const char *name; /* the file name used in messages */
    const char *text; /* the document, to turn a reader error's offset into a line */
    size_t len;
    yaml_document_t *doc;
    char *err;
    size_t errlen;
};

bool
relay_conf_equal(const struct relay_conf *a, const struct relay_conf *b)
{
    struct relay_conf x = *a, y = *b;

    x.router.table.routes = y.router.table.routes = NULL;
    return memcmp(&x, &y, sizeof(x)) == 0 && route_table_equal(&a->router.table, &b->router.table);
}

void
relay_conf_defaults(struct relay_conf *rc)
{
    memset(rc, 0, sizeof(*rc));
    rc->max_connections = 0;
    rc->connect_timeout_ms = 5 * 1000;
    rc->idle_timeout_ms = 60 * 60 * 1000;
    rc->keepalive = true;
    rc->splice = true;
    rc->send_proxy = PROXY_NONE;
    rc->accept_proxy = PROXY_NONE;
    rc->max_datagram = 4096;
    rc->flow_idle_timeout_ms = 60 * 1000;
    rc->max_flows = CONF_MAX_FLOWS_DEFAULT;
    rc->router.peek_timeout_ms = ROUTER_PEEK_TIMEOUT_DEFAULT;
    rc->router.max_hello = TLS_HELLO_DEFAULT;
}

bool
relay_conf_is_dgram(const struct relay_conf *rc)
{
    return rc->listen.kind == EP_UDP || rc->target.kind == EP_UDP;
}

/* Whether the n allow rules suit a listener of kind: none on unix and
 * hvsock, cid:N on vsock, CIDRs on tcp and udp. Returns NULL, or what was
 * expected with *item the rule at fault (n: the list as a whole). */
static const char *
allow_check(enum ep_kind kind, const struct allow_rule *rules, size_t n, size_t *item)
{
    *item = n;
    if (n > 0 && kind != EP_TCP && kind != EP_UDP && kind != EP_VSOCK)
        return "allow applies to tcp, udp and vsock listeners; "
               "restrict a unix socket with file permissions";
    for (size_t i = 0; i < n; i++) {
        bool is_cid = rules[i].kind == ALLOW_CID;
        *item = i;
        if ((kind == EP_TCP || kind == EP_UDP) && is_cid)
            return "expected a CIDR or address: a tcp or udp listener sees IP peers, "
                   "cid: rules are for vsock listeners";
        if (kind == EP_VSOCK && !is_cid)
            return "expected a cid:N rule: a vsock listener sees CID peers, "
                   "CIDRs are for tcp listeners";
    }
    *item = n;
    return NULL;
}

static int
relay_check(const struct relay_conf *rc, struct fault *f, char *msg, size_t msglen)
{
    f->has_item = false;
    f->item = 0;

    bool dgram = relay_conf_is_dgram(rc);

    if (rc->listen.kind == EP_UDP && rc->target.kind == EP_UDP) {
        f->key = RK_TARGET;
        snprintf(msg, msglen,
                 "expected a stream endpoint (tcp, unix, vsock, hvsock): a datagram relay "
                 "carries udp over a stream, udp to udp is not supported");
        return -1;
    }
    if (dgram && rc->send_proxy != PROXY_NONE) {
        f->key = RK_SEND_PROXY;
        snprintf(msg, msglen, "PROXY headers apply to stream relays, not to udp ones");
        return -1;
    }
    if (dgram && rc->accept_proxy != PROXY_NONE) {
        f->key = RK_ACCEPT_PROXY;
        snprintf(msg, msglen, "PROXY headers apply to stream relays, not to udp ones");
        return -1;
    }
    if (rc->n_dns_allow > CONF_DNS_ALLOW_MAX) {
        f->key = RK_DNS_ALLOW;
        snprintf(msg, msglen, "expected at most %d names", CONF_DNS_ALLOW_MAX);
        return -1;
    }
    if (rc->n_dns_allow > 0 && (rc->target.kind != EP_UDP || rc->listen.kind == EP_UDP)) {
        f->key = RK_DNS_ALLOW;
        snprintf(msg, msglen,
                 "dns_allow applies to stream -> udp relays (the host side, in front of the "
                 "resolver)");
        return -1;
    }
    if (rc->max_datagram < 1 || rc->max_datagram > CONF_DATAGRAM_MAX) {
        f->key = RK_MAX_DATAGRAM;
        snprintf(msg, msglen, "%s", EXPECT_DATAGRAM);
        return -1;
    }
    if (rc->flow_idle_timeout_ms == 0) {
        f->key = RK_FLOW_IDLE_TIMEOUT;
        snprintf(msg, msglen, "expected a duration above 0 (250ms, 5s, 2m, 1h)");
        return -1;
    }
    if (rc->max_flows < 1 || rc->max_flows > CONF_MAX_FLOWS_MAX) {
        f->key = RK_MAX_FLOWS;
        snprintf(msg, msglen, "%s", EXPECT_MAX_FLOWS);
        return -1;
    }
    if (rc->max_fds == 1 || rc->max_fds > CONF_MAX_FDS_MAX) {
        f->key = RK_MAX_FDS;
        snprintf(msg, msglen, "%s", EXPECT_MAX_FDS);
        return -1;
    }
    if (rc->target.kind == EP_VSOCK && rc->target.cid == EP_CID_ANY) {
        f->key = RK_TARGET;
        snprintf(msg, msglen, "expected the CID to connect to; vsock:any is for listeners");
        return -1;
    }
    if (rc->n_allow > CONF_ALLOW_MAX) {
        f->key = RK_ALLOW;
        snprintf(msg, msglen, "expected at most %d rules", CONF_ALLOW_MAX);
        return -1;
    }
    const char *what = allow_check(rc->listen.kind, rc->allow, rc->n_allow, &f->item);
    if (what != NULL) {
        f->key = RK_ALLOW;
        f->has_item = f->item < rc->n_allow;
        if (!f->has_item)
            f->item = 0;
        snprintf(msg, msglen, "%s", what);
        return -1;
    }
    if (rc->n_egress_allow > 0 && !rc->egress) {
        f->key = RK_EGRESS_ALLOW;
        snprintf(msg, msglen, "egress_allow applies to relays with target: egress");
        return -1;
    }
    if (rc->egress && (rc->n_egress_allow == 0 || rc->n_egress_allow > CONF_EGRESS_MAX)) {
        f->key = RK_EGRESS_ALLOW;
        snprintf(msg, msglen,
                 "expected 1-%d rules for target: egress (an egress relay without rules would "
                 "refuse every destination)",
                 CONF_EGRESS_MAX);
        return -1;
    }
    if (rc->egress && rc->send_proxy != PROXY_NONE) {
        f->key = RK_SEND_PROXY;
        snprintf(msg, msglen,
                 "expected none for target: egress: its destinations are servers outside, "
                 "not airlock");
        return -1;
    }
    if (rc->egress && rc->accept_proxy != PROXY_NONE) {
        f->key = RK_ACCEPT_PROXY;
        snprintf(msg, msglen,
                 "expected none for target: egress: an egress relay recognises a PROXY v2 "
                 "header (or an HTTP CONNECT request) by itself");
        return -1;
    }
    if (rc->original_dst &&
        (rc->listen.kind != EP_TCP || rc->send_proxy != PROXY_V2 || rc->egress)) {
        f->key = RK_ORIGINAL_DST;
        snprintf(msg, msglen,
                 "expected a tcp listener with send_proxy: v2 and an endpoint target: the "
                 "original destination of a redirected connection travels in the PROXY header");
        return -1;
    }
    if (rc->max_connections > CONF_MAXCONN_MAX) {
        f->key = RK_MAX_CONNECTIONS;
        snprintf(msg, msglen, "%s", EXPECT_MAXCONN);
        return -1;
    }
    if (rc->connect_timeout_ms == 0) {
        f->key = RK_CONNECT_TIMEOUT;
        snprintf(msg, msglen, "expected a duration above 0 (250ms, 5s, 2m, 1h)");
        return -1;
    }
    return 0;
}

int
relay_conf_check(const struct relay_conf *rc, char *err, size_t errlen)
{
    struct fault f;
    char msg[256];

    if (relay_check(rc, &f, msg, sizeof(msg)) == 0)
        return 0;
    if (errlen == 0)
        return -1;
    if (f.has_item)
        snprintf(err, errlen, "%s[%zu]: %s", relay_keys[f.key], f.item, msg);
    else
        snprintf(err, errlen, "%s: %s", relay_keys[f.key], msg);
    return -1;
}

/* Digits only: no sign, no spaces, no base prefixes, so "-1", "+3", " 5",
 * "0x10" and "1e3" are all rejected rather than read as something else. */
static int
parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (*s == '\0')
        return -EINVAL;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > max)
            return -ERANGE;
    }
    *out = v;
    return 0;
}

/* One unit a number may carry: "ms", "KiB", or "" for a bare number. */
struct unit {
    const char *suffix;
    uint64_t mult;
};

/* Reads decimal digits followed by exactly one of the n suffixes in units and
 * stores digits * multiplier in *out. The digits alone and the product must
 * both stay within limit. Returns 0 or -EINVAL (empty, no leading digit,
 * unknown suffix, over limit). */
static int
parse_scaled(const char *s, const struct unit *units, size_t n, uint64_t limit, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;

    if (s == NULL || *p < '0' || *p > '9')
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > limit)
            return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(p, units[i].suffix) != 0)
            continue;
        if (v > limit / units[i].mult)
            return -EINVAL;
        *out = v * units[i].mult;
        return 0;
    }
    return -EINVAL;
}

int
config_duration(const char *s, unsigned *ms)
{
    static const struct unit units[] = {
        {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}};
    uint64_t v;
    int rc = parse_scaled(s, units, sizeof(units) / sizeof(units[0]), UINT_MAX, &v);

    if (rc == 0)
        *ms = (unsigned)v;
    return rc;
}

int
config_size(const char *s, size_t *bytes)
{
    static const struct unit units[] = {
        {"", 1}, {"B", 1}, {"KiB", 1024}, {"MiB", 1024 * 1024}, {"GiB", 1024 * 1024 * 1024}};
    uint64_t v;
    int rc = parse_scaled(s, units, sizeof(units) / sizeof(units[0]), (uint64_t)1 << 40, &v);

    if (rc == 0)
        *bytes = (size_t)v;
    return rc;
}

int
config_mode(const char *s, unsigned *mode)
{
    unsigned v = 0;
    size_t n = strlen(s);

    if (n == 0 || n > 4 || strspn(s, "01234567") != n)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        v = v * 8 + (unsigned)(s[i] - '0');
    if (v == 0 || v > 0777)
        return -EINVAL;
    *mode = v;
    return 0;
}

int
config_account(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len >= EP_ID_MAX || s[0] == '-' ||
        strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != len)
        return -EINVAL;
    return 0;
}

const char *
config_perm_check(const struct endpoint *ep)
{
    bool set = ep->perm.mode != 0 || ep->perm.owner[0] != '\0' || ep->perm.group[0] != '\0';
    bool file = (ep->kind == EP_UNIX || ep->kind == EP_HVSOCK) && ep->path[0] != '@';

    if (set && !file)
        return "mode, owner and group apply to listeners with a socket file (unix:/path, "
               "hvsock:/path:PORT), not to network or abstract sockets";
    return NULL;
}

void
config_free(struct config *cfg)
{
    for (size_t i = 0; cfg->relays != NULL && i < cfg->n_relays; i++)
        route_table_free(&cfg->relays[i].router.table);
    free(cfg->relays);
    free(cfg->sinks);
    free(cfg->pools);
    memset(cfg, 0, sizeof(*cfg));
    cfg->relays = NULL;
    cfg->sinks = NULL;
    cfg->pools = NULL;
}

static size_t
node_line(const yaml_node_t *n)
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

/* Writes "NAME:LINE: KEY: message" (KEY omitted when empty) and returns -1. */
static int fail(struct ctx *c, size_t line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
fail(struct ctx *c, size_t line, const char *key, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (c->errlen == 0)
        return -1;
    if (key != NULL && key[0] != '\0')
        n = snprintf(c->err, c->errlen, "%s:%zu: %s: ", c->name, line, key);
    else
        n = snprintf(c->err, c->errlen, "%s:%zu: ", c->name, line);
    if (n < 0 || (size_t)n >= c->errlen)
        return -1;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    /* values from the file are in the message: printable ASCII only, so
     * hostile input cannot garble the terminal or forge a log line */
    for (char *p = c->err; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
    return -1;
}

/* Hands back the text of a scalar node, or fails naming what was expected
 * when the node is a list or mapping, or holds a NUL (possible with a "\0"
 * escape) that would silently cut the value short. */
static int
scalar(struct ctx *c, const yaml_node_t *n, const char *key, const char *expected, const char **out)
{
    *out = NULL; /* defined on failure too */
    if (n->type != YAML_SCALAR_NODE)
        return fail(c, node_line(n), key, "%s, not %s", expected, node_kind(n));
    const char *s = (const char *)n->data.scalar.value;
    if (strlen(s) != n->data.scalar.length)
        return fail(c, node_line(n), key, "%s, not text with a NUL byte", expected);
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

static int
lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

/* Optimal string alignment distance, case-insensitive: insertions,
 * deletions, substitutions and swaps of adjacent letters each cost one. */
static size_t
edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t d[CONF_ECHO_MAX + 1][CONF_ECHO_MAX + 1];

    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = lower(a[i - 1]) != lower(b[j - 1]);
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
                lower(a[i - 2]) == lower(b[j - 1]) && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

/* The known key closest to s: one edit away, or two for longer keys where
 * two typos are still recognisable. NULL when nothing is that close. */
static const char *
closest(const char *s, size_t len, const char *const *keys, size_t n)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;

    if (len > CONF_ECHO_MAX)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t lk = strlen(keys[i]);
        size_t d = edit_distance(s, len, keys[i], lk);
        size_t limit = lk >= 6 ? 2 : 1;
        if (d <= limit && d < best_d) {
            best = keys[i];
            best_d = d;
        }
    }
    return best;
}

static int
lookup(const char *s, size_t len, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(keys[i]) == len && memcmp(s, keys[i], len) == 0)
            return (int)i;
    return -1;
}

/* Reads the key of one mapping pair and finds it in keys; fails on a key
 * that is not text, an unknown key (with a hint) or one already seen. */
static int
map_key(struct ctx *c, const yaml_node_t *k, const char *path, const char *const *keys, size_t n,
        size_t *seen, int *idx)
{
    bool top = path[0] == '\0';
    char shown[CONF_ECHO_MAX + 8];

    *idx = 0; /* defined on failure too (callers return first) */
    if (k->type != YAML_SCALAR_NODE)
        return fail(c, node_line(k), path, "expected a key name, not %s", node_kind(k));
    const char *s = (const char *)k->data.scalar.value;
    size_t len = k->data.scalar.length;
    int i = lookup(s, len, keys, n);
    if (i < 0) {
        const char *hint = closest(s, len, keys, n);
        echo(s, len, shown, sizeof(shown));
        if (hint != NULL)
            return fail(c, node_line(k), path, "unknown key '%s' (did you mean '%s'?)", shown,
                        hint);
        /* A setting at the wrong level is a likely slip of indentation. */
        if (top && lookup(s, len, relay_keys, RK_COUNT) >= 0)
            return fail(c, node_line(k), path,
                        "unknown key '%s' (it is a relay setting: put it in a relay under "
                        "relays:)",
                        shown);
        if (!top && lookup(s, len, top_keys, TK_COUNT) >= 0)
            return fail(c, node_line(k), path,
                        "unknown key '%s' (it is a top-level setting, not a relay one)", shown);
        return fail(c, node_line(k), path, "unknown key '%s'", shown);
    }
    if (seen[i] != 0) {
        char full[CONF_KEY_MAX];
        snprintf(full, sizeof(full), "%s%s%s", path, top ? "" : ".", keys[i]);
        return fail(c, node_line(k), full, "duplicate key; first set on line %zu", seen[i]);
    }
    seen[i] = node_line(k);
    *idx = i;
    return 0;
}

static int
get_uint(struct ctx *c, const yaml_node_t *v, const char *key, uint64_t max, const char *expected,
         unsigned *out)
{
    const char *s;
    uint64_t u;

    if (scalar(c, v, key, expected, &s) != 0)
        return -1;
    if (parse_uint(s, max, &u) != 0)
        return fail(c, node_line(v), key, "%s", expected);
    *out = (unsigned)u;
    return 0;
}

static int
get_duration(struct ctx *c, const yaml_node_t *v, const char *key, unsigned *out)
{
    const char *s;

    if (scalar(c, v, key, EXPECT_DURATION, &s) != 0)
        return -1;
    if (config_duration(s, out) != 0)
        return fail(c, node_line(v), key, EXPECT_DURATION);
    return 0;
}

static int
get_bool(struct ctx *c, const yaml_node_t *v, const char *key, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    const char *s;

    if (scalar(c, v, key, EXPECT_BOOL, &s) != 0)
        return -1;
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return fail(c, node_line(v), key, EXPECT_BOOL);
}

static int
get_proxy(struct ctx *c, const yaml_node_t *v, const char *key, enum proxy_mode *out)
{
    const char *s;

    if (scalar(c, v, key, EXPECT_PROXY, &s) != 0)
        return -1;
    if (strcmp(s, "v2") == 0)
        *out = PROXY_V2;
    else if (strcmp(s, "none") == 0)
        *out = PROXY_NONE;
    else
        return fail(c, node_line(v), key, EXPECT_PROXY);
    return 0;
}

static int
get_endpoint(struct ctx *c, const yaml_node_t *v, const char *key, struct endpoint *ep)
{
    const char *s, *why = NULL;

    if (scalar(c, v, key, EXPECT_EP, &s) != 0)
        return -1;
    if (endpoint_parse(s, ep, &why) != PARSE_OK)
        return fail(c, node_line(v), key, EXPECT_EP ": %s", why ? why : "invalid");
    return 0;
}

/* A listener: an endpoint, or a mapping with the endpoint and who may
 * connect to its socket file (mode, owner, group). */
static int
get_listen(struct ctx *c, const yaml_node_t *v, const char *key, struct endpoint *ep)
{
    static const char *const keys[] = {"endpoint", "mode", "owner", "group"};
    size_t seen[4] = {0}, perm_line = 0;
    struct ep_perm perm;
    char ikey[CONF_KEY_MAX + 16];
    const char *s, *why;

    if (v->type == YAML_SEQUENCE_NODE)
        return fail(c, node_line(v), key, EXPECT_LISTEN ", not a list");
    if (v->type != YAML_MAPPING_NODE)
        return get_endpoint(c, v, key, ep);
    memset(&perm, 0, sizeof(perm));
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const yaml_node_t *val = yaml_document_get_node(c->doc, p->value);
        int i;

        if (map_key(c, k, key, keys, 4, seen, &i) != 0)
            return -1;
        snprintf(ikey, sizeof(ikey), "%s.%s", key, keys[i]);
        if (i == 0) {
            if (get_endpoint(c, val, ikey, ep) != 0)
                return -1;
            continue;
        }
        why = i == 1 ? EXPECT_MODE : i == 2 ? EXPECT_OWNER : EXPECT_GROUP;
        if (scalar(c, val, ikey, why, &s) != 0)
            return -1;
        if (i == 1 ? config_mode(s, &perm.mode) != 0 : config_account(s) != 0)
            return fail(c, node_line(val), ikey, "%s", why);
        if (i > 1)
            memcpy(i == 2 ? perm.owner : perm.group, s, strlen(s) + 1);
        if (perm_line == 0)
            perm_line = node_line(val);
    }
    if (seen[0] == 0)
        return fail(c, node_line(v), key, "missing endpoint: " EXPECT_EP);
    ep->perm = perm;
    if ((why = config_perm_check(ep)) != NULL)
        return fail(c, perm_line, key, "%s", why);
    return 0;
}

static int
get_target(struct ctx *c, const yaml_node_t *v, const char *key, struct relay_conf *rc)
{
    const char *s, *why = NULL;

    if (scalar(c, v, key, EXPECT_TARGET, &s) != 0)
        return -1;
    if (strcmp(s, "egress") == 0) {
        rc->egress = true;
        memset(&rc->target, 0, sizeof(rc->target));
        return 0;
    }
    if (endpoint_parse(s, &rc->target, &why) != PARSE_OK)
        return fail(c, node_line(v), key, EXPECT_TARGET ": %s", why ? why : "invalid");
    return 0;
}

static int
get_egress_allow(struct ctx *c, const yaml_node_t *v, const char *key, struct relay_conf *rc)
{
    if (v->type != YAML_SEQUENCE_NODE)
        return fail(c, node_line(v), key,
                    "expected a list of rules (api.example.com:443, 198.51.100.0/24:80-90), "
                    "not %s",
                    node_kind(v));
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0 || n > CONF_EGRESS_MAX)
        return fail(c, node_line(v), key,
                    "expected 1-%d rules (an empty list would refuse every destination)",
                    CONF_EGRESS_MAX);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = yaml_document_get_node(c->doc, v->data.sequence.items.start[i]);
        char ikey[CONF_KEY_MAX + 24];
        const char *s, *why = NULL;

        snprintf(ikey, sizeof(ikey), "%s[%zu]", key, i);
        if (scalar(c, item, ikey, EXPECT_EGRESS_RULE, &s) != 0)
            return -1;
        if (egress_rule_parse(s, &rc->egress_allow[i], &why) != PARSE_OK)
            return fail(c, node_line(item), ikey, "%s", why ? why : EXPECT_EGRESS_RULE);
    }
    rc->n_egress_allow = n;
    return 0;
}

static int
get_name(struct ctx *c, const yaml_node_t *v, const char *key, char *name)
{
    const char *s;

    if (scalar(c, v, key, EXPECT_NAME, &s) != 0)
        return -1;
    size_t len = strlen(s);
    if (len == 0 || len >= CONF_NAME_MAX)
        return fail(c, node_line(v), key, EXPECT_NAME);
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
        if (!ok)
            return fail(c, node_line(v), key, EXPECT_NAME);
    }
    memcpy(name, s, len + 1);
    return 0;
}

/* An allow list into rules[0..CONF_ALLOW_MAX) and *n; line[i]: rule i's
 * line. */
static int
get_allow(struct ctx *c, const yaml_node_t *v, const char *key, struct allow_rule *rules,
          size_t *n_out, size_t *line)
{
    if (v->type != YAML_SEQUENCE_NODE)
        return fail(c, node_line(v), key, "expected a list of rules (10.0.0.0/8, cid:16), not %s",
                    node_kind(v));
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n > CONF_ALLOW_MAX)
        return fail(c, node_line(v), key, "expected at most %d rules", CONF_ALLOW_MAX);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = yaml_document_get_node(c->doc, v->data.sequence.items.start[i]);
        char ikey[CONF_KEY_MAX + 24];
        const char *s, *why = NULL;

        snprintf(ikey, sizeof(ikey), "%s[%zu]", key, i);
        if (scalar(c, item, ikey, EXPECT_RULE, &s) != 0)
            return -1;
        if (allow_parse(s, &rules[i], &why) != PARSE_OK)
            return fail(c, node_line(item), ikey, EXPECT_RULE ": %s", why ? why : "invalid");
        line[i] = node_line(item);
    }
    *n_out = n;
    return 0;
}

static int
get_dns_allow(struct ctx *c, const yaml_node_t *v, const char *key, struct relay_conf *rc,
              struct relay_lines *lines)
{
    if (v->type != YAML_SEQUENCE_NODE)
        return fail(c, node_line(v), key,
                    "expected a list of names (example.com, \"*.example.org\"), not %s",
                    node_kind(v));
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n > CONF_DNS_ALLOW_MAX)
        return fail(c, node_line(v), key, "expected at most %d names", CONF_DNS_ALLOW_MAX);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = yaml_document_get_node(c->doc, v->data.sequence.items.start[i]);
        char ikey[CONF_KEY_MAX + 24];
        const char *s, *why = NULL;

        snprintf(ikey, sizeof(ikey), "%s[%zu]", key, i);
        if (scalar(c, item, ikey, EXPECT_PATTERN, &s) != 0)
            return -1;
        if (dns_pattern_parse(s, rc->dns_allow[i], &why) != PARSE_OK)
            return fail(c, node_line(item), ikey, EXPECT_PATTERN ": %s", why);
        lines->name[i] = node_line(item);
    }
    rc->n_dns_allow = n;
    return 0;
}

static int
relay_value(struct ctx *c, int k, const yaml_node_t *v, const char *key, struct relay_conf *rc,
            struct relay_lines *lines)
{
    switch ((enum relay_key)k) {
    case RK_NAME:
        return get_name(c, v, key, rc->name);
    case RK_LISTEN:
        return get_listen(c, v, key, &rc->listen);
    case RK_TARGET:
        return get_target(c, v, key, rc);
    case RK_ALLOW:
        return get_allow(c, v, key, rc->allow, &rc->n_allow, lines->rule);
    case RK_MAX_CONNECTIONS:
        return get_uint(c, v, key, CONF_MAXCONN_MAX, EXPECT_MAXCONN, &rc->max_connections);
    case RK_CONNECT_TIMEOUT:
        return get_duration(c, v, key, &rc->connect_timeout_ms);
    case RK_IDLE_TIMEOUT:
        return get_duration(c, v, key, &rc->idle_timeout_ms);
    case RK_KEEPALIVE:
        return get_bool(c, v, key, &rc->keepalive);
    case RK_SPLICE:
        return get_bool(c, v, key, &rc->splice);
    case RK_SEND_PROXY:
        return get_proxy(c, v, key, &rc->send_proxy);
    case RK_ACCEPT_PROXY:
        return get_proxy(c, v, key, &rc->accept_proxy);
    case RK_ORIGINAL_DST:
        return get_bool(c, v, key, &rc->original_dst);
    case RK_EGRESS_ALLOW:
        return get_egress_allow(c, v, key, rc);
    case RK_MAX_DATAGRAM:
        return get_uint(c, v, key, CONF_DATAGRAM_MAX, EXPECT_DATAGRAM, &rc->max_datagram);
    case RK_FLOW_IDLE_TIMEOUT:
        return get_duration(c, v, key, &rc->flow_idle_timeout_ms);
    case RK_DNS_ALLOW:
        return get_dns_allow(c, v, key, rc, lines);
    case RK_MAX_FLOWS:
        return get_uint(c, v, key, CONF_MAX_FLOWS_MAX, EXPECT_MAX_FLOWS, &rc->max_flows);
    case RK_MAX_FDS:
        return get_uint(c, v, key, CONF_MAX_FDS_MAX, EXPECT_MAX_FDS, &rc->max_fds);
    case RK_COUNT:
        break;
    }
    return -1;
}

/* relay_check() for the relay or router at path, failing with the line
 * and key of the setting it objects to. */
static int
check_relay(struct ctx *c, const struct relay_conf *rc, const char *path,
            const struct relay_lines *lines)
{
    struct fault f;
    char key[CONF_KEY_MAX], msg[256];

    if (relay_check(rc, &f, msg, sizeof(msg)) == 0)
        return 0;
    size_t line = f.has_item ? lines->rule[f.item] : lines->key[f.key];
    if (f.has_item)
        snprintf(key, sizeof(key), "%s.%s[%zu]", path, relay_keys[f.key], f.item);
    else
        snprintf(key, sizeof(key), "%s.%s", path, relay_keys[f.key]);
    return fail(c, line ? line : lines->map, key, "%s", msg);
}

/* Writes "relays[i]" or "routers[i]" for cfg->relays[j] (routers follow
 * the relays there). */
static void
entry_path(const struct config *cfg, size_t j, char *buf, size_t len)
{
    size_t first_router = 0;

    while (first_router < j && !cfg->relays[first_router].router.enabled)
        first_router++;
    if (cfg->relays[j].router.enabled)
        snprintf(buf, len, "routers[%zu]", j - first_router);
    else
        snprintf(buf, len, "relays[%zu]", j);
}

/* Checks cfg->relays[idx] (relays and routers alike, called path in
 * messages) against the ones before it: names and listen endpoints must be
 * unique. */
static int
check_unique(struct ctx *c, const struct config *cfg, size_t idx, const char *path, bool named,
             const struct relay_lines *lines)
{
    const struct relay_conf *rc = &cfg->relays[idx];
    char key[CONF_KEY_MAX], other[32];

    for (size_t j = 0; j < idx; j++) {
        const struct relay_conf *o = &cfg->relays[j];
        if (strcmp(o->name, rc->name) != 0)
            continue;
        entry_path(cfg, j, other, sizeof(other));
        snprintf(key, sizeof(key), "%s.name", path);
        if (named)
            return fail(c, lines->key[RK_NAME], key,
                        "expected a unique name; %s is already called '%s'", other, o->name);
        return fail(c, lines->map, key, "expected a name: the default '%s' is already used by %s",
                    rc->name, other);
    }
    for (size_t j = 0; j < idx; j++) {
        const struct relay_conf *o = &cfg->relays[j];
        char ep[EP_HOST_MAX + EP_PATH_MAX + 32];
        if (!endpoint_equal(&o->listen, &rc->listen))
            continue;
        endpoint_format(&rc->listen, ep, sizeof(ep));
        entry_path(cfg, j, other, sizeof(other));
        snprintf(key, sizeof(key), "%s.listen", path);
        return fail(c, lines->key[RK_LISTEN], key,
                    "expected an endpoint no other relay listens on; %s ('%s') "
                    "already listens on %s",
                    other, o->name, ep);
    }
    return 0;
}

/* Parses relays[idx] into cfg->relays[idx] and checks it against the
 * relays before it (names and listen endpoints must be unique). */
static int
parse_relay(struct ctx *c, const yaml_node_t *n, struct config *cfg, size_t idx)
{
    struct relay_conf *rc = &cfg->relays[idx];
    struct relay_lines lines;
    size_t seen[RK_COUNT] = {0};
    bool named;
    char path[32], key[CONF_KEY_MAX];

    memset(&lines, 0, sizeof(lines));
    relay_conf_defaults(rc);
    snprintf(path, sizeof(path), "relays[%zu]", idx);
    if (n->type != YAML_MAPPING_NODE)
        return fail(c, node_line(n), path,
                    "expected a mapping of relay settings (listen, target, ...), not %s",
                    node_kind(n));
    lines.map = node_line(n);

    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        int i;

        if (map_key(c, k, path, relay_keys, RK_COUNT, seen, &i) != 0)
            return -1;
        lines.key[i] = node_line(v);
        snprintf(key, sizeof(key), "%s.%s", path, relay_keys[i]);
        if (relay_value(c, i, v, key, rc, &lines) != 0)
            return -1;
    }

    named = lines.key[RK_NAME] != 0;
    if (!named)
        snprintf(rc->name, sizeof(rc->name), "relay%zu", idx + 1);
    for (int req = RK_LISTEN; req <= RK_TARGET; req++) {
        if (lines.key[req] != 0)
            continue;
        snprintf(key, sizeof(key), "%s.%s", path, relay_keys[req]);
        return fail(c, lines.map, key, "missing from relay '%s': %s", rc->name,
                    req == RK_TARGET ? EXPECT_TARGET : EXPECT_EP);
    }

    if (check_relay(c, rc, path, &lines) != 0)
        return -1;
    /* settings that have no meaning on a stream relay are mistakes */
    static const enum relay_key dgram_keys[] = {RK_MAX_DATAGRAM, RK_FLOW_IDLE_TIMEOUT};
    for (size_t j = 0; !relay_conf_is_dgram(rc) && j < 2; j++) {
        if (lines.key[dgram_keys[j]] == 0)
            continue;
        snprintf(key, sizeof(key), "%s.%s", path, relay_keys[dgram_keys[j]]);
        return fail(c, lines.key[dgram_keys[j]], key, MSG_DGRAM_ONLY);
    }
    /* the flows of the udp side are memory only: its table is bounded apart */
    static const enum relay_key stream_side_keys[] = {RK_MAX_FLOWS, RK_MAX_FDS};
    bool stream_side = rc->target.kind == EP_UDP && rc->listen.kind != EP_UDP;
    for (size_t j = 0; !stream_side && j < 2; j++) {
        if (lines.key[stream_side_keys[j]] == 0)
            continue;
        snprintf(key, sizeof(key), "%s.%s", path, relay_keys[stream_side_keys[j]]);
        return fail(c, lines.key[stream_side_keys[j]], key, MSG_STREAM_SIDE);
    }

    return check_unique(c, cfg, idx, path, named, &lines);
}

static int
parse_relays(struct ctx *c, const yaml_node_t *v, struct config *cfg)
{
    if (v->type == YAML_SCALAR_NODE && v->data.scalar.length == 0)
        return fail(c, node_line(v), "relays", "expected at least one relay");
    if (v->type != YAML_SEQUENCE_NODE)
        return fail(c, node_line(v), "relays", "expected a list of relays, not %s", node_kind(v));
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0)
        return fail(c, node_line(v), "relays", "expected at least one relay");
    if (n > CONF_RELAYS_MAX)
        return fail(c, node_line(v), "relays", "expected at most %d relays", CONF_RELAYS_MAX);
    cfg->relays = calloc(n, sizeof(*cfg->relays));
    if (cfg->relays == NULL)
        return fail(c, node_line(v), "relays", "out of memory");
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = yaml_document_get_node(c->doc, v->data.sequence.items.start[i]);
        if (parse_relay(c, item, cfg, i) != 0)
            return -1;
        cfg->n_relays = i + 1;
    }
    return 0;
}

static int
get_size(struct ctx *c, const yaml_node_t *v, const char *key, size_t min, size_t max,
         const char *expected, size_t *out)
{
    const char *s;
    size_t n;

    if (scalar(c, v, key, expected, &s) != 0)
        return -1;
    if (config_size(s, &n) != 0 || n < min || n > max)
        return fail(c, node_line(v), key, "%s", expected);
    *out = n;
    return 0;
}

/* A stream endpoint that a process can connect to: not udp, not vsock:any. */
static int
connectable(struct ctx *c, size_t line, const char *key, const struct endpoint *ep)
{
    if (ep->kind == EP_UDP)
        return fail(c, line, key, MSG_STREAM_EP);
    if (ep->kind == EP_VSOCK && ep->cid == EP_CID_ANY)
        return fail(c, line, key, "expected the CID to connect to; vsock:any is for listeners");
    return 0;
}

/* Where the limits of a log listener were set, for messages. */
struct limits_lines {
    size_t key[LIM_COUNT];
    size_t rule[CONF_ALLOW_MAX];
};

static int
get_limit(struct ctx *c, enum limits_key k, const yaml_node_t *v, const char *key,
          struct stream_limits *lim, struct limits_lines *ll)
{
    ll->key[k] = node_line(v);
    switch (k) {
    case LIM_ALLOW:
        return get_allow(c, v, key, lim->allow, &lim->n_allow, ll->rule);
    case LIM_MAX_STREAMS:
        if (get_uint(c, v, key, CONF_STREAMS_MAX, EXPECT_STREAMS, &lim->max_streams) != 0)
            return -1;
        return lim->max_streams == 0 ? fail(c, node_line(v), key, EXPECT_STREAMS) : 0;
    case LIM_IDLE_TIMEOUT:
        return get_duration(c, v, key, &lim->idle_timeout_ms);
    case LIM_COUNT:
        break;
    }
    return -1;
}

/* The allow rules of the limits at path ("logs", "log_sinks[1]") against
 * the kind of listener they guard. */
static int
check_limits(struct ctx *c, const struct stream_limits *lim, const struct endpoint *listen,
             const char *path, const struct limits_lines *ll)
{
    char key[CONF_KEY_MAX + 16];
    size_t item;
    const char *what = allow_check(listen->kind, lim->allow, lim->n_allow, &item);

    if (what == NULL)
        return 0;
    if (item < lim->n_allow) {
        snprintf(key, sizeof(key), "%s.allow[%zu]", path, item);
        return fail(c, ll->rule[item], key, "%s", what);
    }
    snprintf(key, sizeof(key), "%s.allow", path);
    return fail(c, ll->key[LIM_ALLOW], key, "%s", what);
}

static int
parse_logs(struct ctx *c, const yaml_node_t *n, struct log_conf *lc, size_t *listen_line)
{
    size_t seen[LK_COUNT] = {0}, vline[LK_COUNT] = {0};
    struct limits_lines ll = {0};
    char key[CONF_KEY_MAX];

    if (n->type != YAML_MAPPING_NODE)
        return fail(c, node_line(n), "logs",
                    "expected a mapping of log settings (forward, capture_stderr, listen, "
                    "buffer, line_max), not %s",
                    node_kind(n));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        int i = 0, rc = 0;

        if (map_key(c, k, "logs", logs_keys, LK_COUNT, seen, &i) != 0)
            return -1;
        vline[i] = node_line(v);
        snprintf(key, sizeof(key), "logs.%s", logs_keys[i]);
        switch ((enum logs_key)i) {
        case LK_FORWARD:
            rc = get_endpoint(c, v, key, &lc->forward);
            if (rc == 0)
                rc = connectable(c, vline[i], key, &lc->forward);
            break;
        case LK_CAPTURE_STDERR:
            rc = get_bool(c, v, key, &lc->capture_stderr);
            break;
        case LK_LISTEN:
            rc = get_listen(c, v, key, &lc->listen);
            if (rc == 0 && lc->listen.kind == EP_UDP)
                rc = fail(c, vline[i], key, MSG_STREAM_EP);
            if (rc == 0 && lc->listen.kind == EP_HVSOCK)
                rc = fail(c, vline[i], key,
                          "expected a unix, tcp or vsock endpoint for apps; hvsock is the host's "
                          "face of vsock");
            lc->has_listen = rc == 0;
            break;
        case LK_BUFFER:
            rc = get_size(c, v, key, LOG_BUFFER_MIN, LOG_BUFFER_MAX, EXPECT_BUFFER, &lc->buffer);
            break;
        case LK_LINE_MAX:
            rc = get_size(c, v, key, LOG_LINE_MIN, LOG_LINE_MAX, EXPECT_LINE_MAX, &lc->line_max);
            break;
        case LK_ALLOW:
        case LK_MAX_STREAMS:
        case LK_IDLE_TIMEOUT:
            rc = get_limit(c, (enum limits_key)(i - LK_ALLOW), v, key, &lc->limits, &ll);
            break;
        case LK_COUNT:
            rc = -1;
            break;
        }
        if (rc != 0)
            return -1;
    }
    if (vline[LK_FORWARD] == 0)
        return fail(c, node_line(n), "logs.forward",
                    "missing: expected the endpoint to forward log lines to (" EP_FORMS ")");
    if (!lc->capture_stderr && !lc->has_listen)
        return fail(c, node_line(n), "logs",
                    "expected capture_stderr: true or a listen endpoint; nothing would be "
                    "forwarded");
    if (lc->has_listen && endpoint_equal(&lc->listen, &lc->forward))
        return fail(c, vline[LK_LISTEN], "logs.listen",
                    "expected an endpoint other than forward (lines would loop)");
    for (int k = LK_ALLOW; k <= LK_IDLE_TIMEOUT && !lc->has_listen; k++)
        if (vline[k] != 0) {
            snprintf(key, sizeof(key), "logs.%s", logs_keys[k]);
            return fail(c, vline[k], key, "applies to the apps on logs.listen, which is not set");
        }
    if (lc->has_listen && check_limits(c, &lc->limits, &lc->listen, "logs", &ll) != 0)
        return -1;
    if (lc->line_max > lc->buffer / 4)
        return fail(c, vline[LK_LINE_MAX] ? vline[LK_LINE_MAX] : vline[LK_BUFFER],
                    vline[LK_LINE_MAX] ? "logs.line_max" : "logs.buffer",
                    "expected line_max (%zu) to be at most a quarter of buffer (%zu)", lc->line_max,
                    lc->buffer);
    *listen_line = vline[LK_LISTEN];
    lc->enabled = true;
    return 0;
}

static int
parse_sink(struct ctx *c, const yaml_node_t *n, struct config *cfg, size_t idx, size_t *listen_line)
{
    struct log_sink_conf *sc = &cfg->sinks[idx];
    size_t seen[SK_COUNT] = {0}, vline[SK_COUNT] = {0};
    char path[32], key[CONF_KEY_MAX];
    const char *s = NULL;

    struct limits_lines ll = {0};

    memset(sc, 0, sizeof(*sc));
    sc->line_max = LOG_SINK_LINE_DEFAULT;
    sc->limits.max_streams = LOG_STREAMS_DEFAULT;
    sc->limits.idle_timeout_ms = LOG_SINK_IDLE_DEFAULT;
    snprintf(path, sizeof(path), "log_sinks[%zu]", idx);
    if (n->type != YAML_MAPPING_NODE)
        return fail(c, node_line(n), path,
                    "expected a mapping of sink settings (listen, file, ...), not %s",
                    node_kind(n));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        int i = 0, rc = 0;

        if (map_key(c, k, path, sink_keys, SK_COUNT, seen, &i) != 0)
            return -1;
        vline[i] = node_line(v);
        snprintf(key, sizeof(key), "%s.%s", path, sink_keys[i]);
        switch ((enum sink_key)i) {
        case SK_NAME:
            rc = get_name(c, v, key, sc->name);
            break;
        case SK_LISTEN:
            rc = get_listen(c, v, key, &sc->listen);
            if (rc == 0 && sc->listen.kind == EP_UDP)
                rc = fail(c, vline[i], key, MSG_STREAM_EP);
            break;
        case SK_FILE:
            rc = scalar(c, v, key, EXPECT_FILE, &s);
            if (rc == 0 && (s[0] == '\0' || strlen(s) >= CONF_FILE_PATH_MAX))
                rc = fail(c, vline[i], key, EXPECT_FILE);
            if (rc == 0)
                memcpy(sc->file, s, strlen(s) + 1);
            break;
        case SK_LINE_MAX:
            rc = get_size(c, v, key, LOG_LINE_MIN, LOG_LINE_MAX, EXPECT_LINE_MAX, &sc->line_max);
            break;
        case SK_ALLOW:
        case SK_MAX_STREAMS:
        case SK_IDLE_TIMEOUT:
            rc = get_limit(c, (enum limits_key)(i - SK_ALLOW), v, key, &sc->limits, &ll);
            break;
        case SK_COUNT:
            rc = -1;
            break;
        }
        if (rc != 0)
            return -1;
    }
    if (vline[SK_NAME] == 0)
        snprintf(sc->name, sizeof(sc->name), "sink%zu", idx + 1);
    if (vline[SK_LISTEN] == 0) {
        snprintf(key, sizeof(key), "%s.listen", path);
        return fail(c, node_line(n), key, "missing from sink '%s': " EXPECT_EP, sc->name);
    }
    if (vline[SK_FILE] == 0) {
        snprintf(key, sizeof(key), "%s.file", path);
        return fail(c, node_line(n), key, "missing from sink '%s': " EXPECT_FILE, sc->name);
    }
    if (check_limits(c, &sc->limits, &sc->listen, path, &ll) != 0)
        return -1;
    for (size_t j = 0; j < idx; j++) {
        if (strcmp(cfg->sinks[j].name, sc->name) != 0)
            continue;
        snprintf(key, sizeof(key), "%s.name", path);
        return fail(c, vline[SK_NAME] ? vline[SK_NAME] : node_line(n), key,
                    "expected a unique name; log_sinks[%zu] is already called '%s'", j, sc->name);
    }
    *listen_line = vline[SK_LISTEN];
    return 0;
}

static int
parse_sinks(struct ctx *c, const yaml_node_t *v, struct config *cfg, size_t *lines)
{
    if (v->type != YAML_SEQUENCE_NODE || v->data.sequence.items.top == v->data.sequence.items.start)
        return fail(c, node_line(v), "log_sinks",
                    "expected a list of sinks (each with listen and file), not %s",
                    v->type == YAML_SEQUENCE_NODE ? "an empty list" : node_kind(v));
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n > CONF_SINKS_MAX)
        return fail(c, node_line(v), "log_sinks", "expected at most %d sinks", CONF_SINKS_MAX);
    cfg->sinks = calloc(n, sizeof(*cfg->sinks));
    if (cfg->sinks == NULL)
        return fail(c, node_line(v), "log_sinks", "out of memory");
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = yaml_document_get_node(c->doc, v->data.sequence.items.start[i]);
        if (parse_sink(c, item, cfg, i, &lines[i]) != 0)
            return -1;
        cfg->n_sinks = i + 1;
    }
    return 0;
}

/* The log listeners (logs.listen, each sink's listen) must differ from each
 * other, from every relay's listen and from metrics. */
static int
check_log_listeners(struct ctx *c, const struct config *cfg, size_t logs_line,
                    const size_t *sink_lines)
{
    struct owner {
        const struct endpoint *ep;
        char what[CONF_NAME_MAX + 48];
        size_t line; /* 0: not a log listener (only collides) */
    };
    size_t n = cfg->n_relays + cfg->n_sinks + 2, k = 0;
    struct owner *o = calloc(n, sizeof(*o));
    char ep[EP_HOST_MAX + EP_PATH_MAX + 32], key[CONF_KEY_MAX + 16];
    int rc = 0;

    if (o == NULL)
        return fail(c, 1, NULL, "out of memory");
    for (size_t i = 0; i < cfg->n_relays; i++, k++) {
        o[k].ep = &cfg->relays[i].listen;
        snprintf(o[k].what, sizeof(o[k].what), "relays[%zu] ('%s')", i, cfg->relays[i].name);
    }
    if (cfg->has_metrics) {
        o[k].ep = &cfg->metrics;
        snprintf(o[k++].what, sizeof(o[0].what), "metrics");
    }
    if (cfg->logs.has_listen) {
        o[k].ep = &cfg->logs.listen;
        o[k].line = logs_line;
        snprintf(o[k++].what, sizeof(o[0].what), "logs");
    }
    for (size_t i = 0; i < cfg->n_sinks; i++, k++) {
        o[k].ep = &cfg->sinks[i].listen;
        o[k].line = sink_lines[i];
        snprintf(o[k].what, sizeof(o[k].what), "log_sinks[%zu] ('%s')", i, cfg->sinks[i].name);
    }
    for (size_t i = 0; i < k && rc == 0; i++) {
        if (o[i].line == 0)
            continue;
        for (size_t j = 0; j < i; j++) {
            if (!endpoint_equal(o[i].ep, o[j].ep))
                continue;
            if (strcmp(o[i].what, "logs") == 0)
                snprintf(key, sizeof(key), "logs.listen");
            else
                snprintf(key, sizeof(key), "log_sinks[%zu].listen", i - (k - cfg->n_sinks));
            endpoint_format(o[i].ep, ep, sizeof(ep));
            rc = fail(c, o[i].line, key,
                      "expected an endpoint nothing else listens on; %s already listens on %s",
                      o[j].what, ep);
            break;
        }
    }
    free(o);
    return rc;
}

/* ---- routers: relays whose upstream the ClientHello's server name picks */

enum router_key {
    OK_ROUTES = RK_COUNT, /* after the relay keys a router shares */
    OK_DEFAULT,
    OK_PEEK_TIMEOUT,
    OK_MAX_HELLO,
    OK_DIRECTORY,
    OK_DOMAIN,
};

/* The relay keys that apply to a router, then its own; router_key_of maps
 * an index of router_keys to a relay_key or router_key. */
static const char *const router_keys[] = {
    "name",         "listen",    "allow",      "max_connections", "connect_timeout", "idle_timeout",
    "keepalive",    "splice",    "send_proxy", "accept_proxy",    "routes",          "default",
    "peek_timeout", "max_hello", "directory",  "domain",
};
#define ROUTER_KEY_COUNT (sizeof(router_keys) / sizeof(router_keys[0]))
static const int router_key_of[ROUTER_KEY_COUNT] = {
    RK_NAME,         RK_LISTEN,    RK_ALLOW,        RK_MAX_CONNECTIONS, RK_CONNECT_TIMEOUT,
    RK_IDLE_TIMEOUT, RK_KEEPALIVE, RK_SPLICE,       RK_SEND_PROXY,      RK_ACCEPT_PROXY,
    OK_ROUTES,       OK_DEFAULT,   OK_PEEK_TIMEOUT, OK_MAX_HELLO,       OK_DIRECTORY,
    OK_DOMAIN,
};

#define EXPECT_ROUTE "expected a mapping {name: NAME or *.NAME, target: ENDPOINT}"
#define EXPECT_DOMAIN "expected a DNS name (grid.example): user keys come from <key>.<domain>"
#define EXPECT_HELLO "expected a size from 512B to 32KiB (B, KiB; a bare integer is bytes)"

/* A route's target: a stream endpoint to connect to. */
static int
get_route_target(struct ctx *c, const yaml_node_t *v, const char *key, struct endpoint *ep)
{
    if (get_endpoint(c, v, key, ep) != 0)
        return -1;
    if (ep->kind == EP_UDP)
        return fail(c, node_line(v), key, MSG_STREAM_EP);
    if (ep->kind == EP_VSOCK && ep->cid == EP_CID_ANY)
        return fail(c, node_line(v), key,
                    "expected the CID to connect to; vsock:any is for listeners");
    return 0;
}

static int
get_route(struct ctx *c, const yaml_node_t *n, const char *path, struct route *r)
{
    static const char *const keys[] = {"name", "target"};
    size_t seen[2] = {0};
    char key[2 * CONF_KEY_MAX];
    const char *s, *why = NULL;

    if (n->type != YAML_MAPPING_NODE)
        return fail(c, node_line(n), path, EXPECT_ROUTE ", not %s", node_kind(n));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        int i;

        if (map_key(c, k, path, keys, 2, seen, &i) != 0)
            return -1;
        snprintf(key, sizeof(key), "%s.%s", path, keys[i]);
        if (i == 1 && get_route_target(c, v, key, &r->target) != 0)
            return -1;
        if (i == 0 && scalar(c, v, key, EXPECT_ROUTE, &s) != 0)
            return -1;
        if (i == 0 && route_name_parse(s, r->name, &why) != PARSE_OK)
            return fail(c, node_line(v), key, "%s", why);
    }
    for (int i = 0; i < 2; i++)
        if (seen[i] == 0)
            return fail(c, node_line(n), path, "missing %s: " EXPECT_ROUTE, keys[i]);
    return 0;
}

static int
get_routes(struct ctx *c, const yaml_node_t *v, const char *key, struct route_table *t)
{
    char path[CONF_KEY_MAX + 24];

    if (v->type != YAML_SEQUENCE_NODE)
        return fail(c, node_line(v), key, "expected a list of routes, not %s", node_kind(v));
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n > ROUTES_MAX)
        return fail(c, node_line(v), key, "expected at most %d routes", ROUTES_MAX);
    if (n > 0 && (t->routes = calloc(n, sizeof(*t->routes))) == NULL)
        return fail(c, node_line(v), key, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = yaml_document_get_node(c->doc, v->data.sequence.items.start[i]);
        snprintf(path, sizeof(path), "%s[%zu]", key, i);
        t->n = i; /* what config_free() frees is all there */
        if (get_route(c, item, path, &t->routes[i]) != 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(t->routes[j].name, t->routes[i].name) == 0)
                return fail(c, node_line(item), path,
                            "expected a name no other route has; %s[%zu] is '%s' too", key, j,
                            t->routes[j].name);
    }
    t->n = n;
    return 0;
}

static int
router_value(struct ctx *c, int k, const yaml_node_t *v, const char *key, struct relay_conf *rc,
             struct relay_lines *lines)
{
    struct router_conf *ro = &rc->router;
    const char *s, *why;

    switch (k) {
    case OK_ROUTES:
        return get_routes(c, v, key, &ro->table);
    case OK_DEFAULT:
        ro->table.has_default = true;
        return get_route_target(c, v, key, &ro->table.def);
    case OK_PEEK_TIMEOUT:
        if (get_duration(c, v, key, &ro->peek_timeout_ms) != 0)
            return -1;
        if (ro->peek_timeout_ms == 0)
            return fail(c, node_line(v), key, "expected a duration above 0 (250ms, 5s, 2m, 1h)");
        return 0;
    case OK_MAX_HELLO:
        return get_size(c, v, key, ROUTER_HELLO_MIN, ROUTER_HELLO_MAX, EXPECT_HELLO,
                        &ro->max_hello);
    case OK_DIRECTORY:
        return get_name(c, v, key, ro->table.directory);
    case OK_DOMAIN:
        if (scalar(c, v, key, EXPECT_DOMAIN, &s) != 0)
            return -1;
        if (strncmp(s, "*.", 2) == 0 || route_name_parse(s, ro->table.domain, &why) != PARSE_OK)
            return fail(c, node_line(v), key, EXPECT_DOMAIN);
        return 0;
    default:
        return relay_value(c, k, v, key, rc, lines);
    }
}

/* Parses routers[idx] into cfg->relays[at]; the relays and routers before
 * it must have other names and listen endpoints. */
static int
parse_router(struct ctx *c, const yaml_node_t *n, struct config *cfg, size_t idx, size_t at)
{
    struct relay_conf *rc = &cfg->relays[at];
    struct relay_lines lines;
    size_t seen[ROUTER_KEY_COUNT] = {0};
    char path[32], key[CONF_KEY_MAX];

    memset(&lines, 0, sizeof(lines));
    relay_conf_defaults(rc);
    rc->router.enabled = true;
    snprintf(path, sizeof(path), "routers[%zu]", idx);
    if (n->type != YAML_MAPPING_NODE)
        return fail(c, node_line(n), path,
                    "expected a mapping of router settings (listen, routes, default, ...), not %s",
                    node_kind(n));
    lines.map = node_line(n);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        int i;

        if (map_key(c, k, path, router_keys, ROUTER_KEY_COUNT, seen, &i) != 0)
            return -1;
        if (router_key_of[i] < RK_COUNT)
            lines.key[router_key_of[i]] = node_line(v);
        snprintf(key, sizeof(key), "%s.%s", path, router_keys[i]);
        if (router_value(c, router_key_of[i], v, key, rc, &lines) != 0)
            return -1;
    }
    bool named = lines.key[RK_NAME] != 0;
    if (!named)
        snprintf(rc->name, sizeof(rc->name), "router%zu", idx + 1);
    snprintf(key, sizeof(key), "%s.listen", path);
    if (lines.key[RK_LISTEN] == 0)
        return fail(c, lines.map, key, "missing from router '%s': " EXPECT_EP, rc->name);
    if (rc->listen.kind == EP_UDP)
        return fail(c, lines.key[RK_LISTEN], key, MSG_STREAM_EP);
    if (rc->router.table.n == 0 && !rc->router.table.has_default &&
        rc->router.table.directory[0] == '\0')
        return fail(c, lines.map, path,
                    "expected at least one of routes:, directory:, default: in router '%s'",
                    rc->name);
    snprintf(key, sizeof(key), "%s.domain", path);
    if (rc->router.table.domain[0] != '\0' && rc->router.table.directory[0] == '\0')
        return fail(c, lines.map, key, "applies to routers with a directory: pool only");
    if (check_relay(c, rc, path, &lines) != 0)
        return -1;
    return check_unique(c, cfg, at, path, named, &lines);
}

/* Appends the routers to cfg->relays, after the relays. */
static int
parse_routers(struct ctx *c, const yaml_node_t *v, struct config *cfg)
{
    if (v->type != YAML_SEQUENCE_NODE)
        return fail(c, node_line(v), "routers", "expected a list of routers, not %s", node_kind(v));
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0)
        return fail(c, node_line(v), "routers", "expected at least one router");
    if (n + cfg->n_relays > CONF_RELAYS_MAX)
        return fail(c, node_line(v), "routers", "expected at most %d relays and routers",
                    CONF_RELAYS_MAX);
    struct relay_conf *all = realloc(cfg->relays, (cfg->n_relays + n) * sizeof(*all));
    if (all == NULL)
        return fail(c, node_line(v), "routers", "out of memory");
    cfg->relays = all;
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = yaml_document_get_node(c->doc, v->data.sequence.items.start[i]);
        if (parse_router(c, item, cfg, i, cfg->n_relays) != 0) {
            route_table_free(&cfg->relays[cfg->n_relays].router.table); /* not counted yet */
            return -1;
        }
        cfg->n_relays++;
    }
    return 0;
}

/* The directory: block (dir/dir.h); cfg->directory holds the defaults. */
static int
parse_directory(struct ctx *c, const yaml_node_t *n, struct dir_conf *dc)
{
    size_t seen[DK_COUNT] = {0}, vline[DK_COUNT] = {0};
    char key[CONF_KEY_MAX];
    const char *s;

    if (n->type != YAML_MAPPING_NODE)
        return fail(c, node_line(n), "directory",
                    "expected a mapping of directory settings (backend, redis, prefix, "
                    "reserve_timeout, session_ttl, assign_wait, max_pending_per_client, "
                    "pending_share), not %s",
                    node_kind(n));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        int i = 0, rc = 0;

        if (map_key(c, k, "directory", dir_keys, DK_COUNT, seen, &i) != 0)
            return -1;
        vline[i] = node_line(v);
        snprintf(key, sizeof(key), "directory.%s", dir_keys[i]);
        switch ((enum dir_key)i) {
        case DK_BACKEND:
            rc = scalar(c, v, key, EXPECT_BACKEND, &s);
            if (rc == 0 && strcmp(s, "memory") == 0)
                dc->backend = DIR_MEMORY;
            else if (rc == 0 && strcmp(s, "redis") == 0)
                dc->backend = DIR_REDIS;
            else if (rc == 0)
                rc = fail(c, vline[i], key, EXPECT_BACKEND);
            break;
        case DK_REDIS:
            rc = get_endpoint(c, v, key, &dc->redis);
            if (rc == 0 && dc->redis.kind != EP_TCP && dc->redis.kind != EP_UNIX)
                rc = fail(c, vline[i], key, "expected a tcp or unix endpoint for redis");
            break;
        case DK_PREFIX:
            rc = scalar(c, v, key, EXPECT_PREFIX, &s);
            if (rc == 0 && (strlen(s) >= sizeof(dc->prefix) || strpbrk(s, " \t\r\n") != NULL))
                rc = fail(c, vline[i], key, EXPECT_PREFIX);
            if (rc == 0)
                snprintf(dc->prefix, sizeof(dc->prefix), "%s", s);
            break;
        case DK_RESERVE:
            rc = get_duration(c, v, key, &dc->reserve_timeout_ms);
            if (rc == 0 && dc->reserve_timeout_ms == 0)
                rc = fail(c, vline[i], key, "expected more than 0");
            break;
        case DK_TTL:
            rc = get_duration(c, v, key, &dc->session_ttl_ms);
            break;
        case DK_WAIT:
            rc = get_duration(c, v, key, &dc->assign_wait_ms);
            break;
        case DK_PER_CLIENT:
            rc = get_uint(c, v, key, 1024, EXPECT_PER_CLIENT, &dc->max_pending_per_client);
            break;
        case DK_SHARE:
            rc = get_uint(c, v, key, 100, EXPECT_SHARE, &dc->pending_share);
            if (rc == 0 && dc->pending_share == 0)
                rc = fail(c, vline[i], key, EXPECT_SHARE);
            break;
        case DK_COUNT:
            rc = -1;
            break;
        }
        if (rc != 0)
            return -1;
    }
    if (dc->backend == DIR_REDIS && vline[DK_REDIS] == 0)
        return fail(c, node_line(n), "directory.redis",
                    "missing: expected the redis server's endpoint (tcp:HOST:PORT or unix:/path)");
    if (dc->backend == DIR_MEMORY && vline[DK_REDIS] != 0)
        return fail(c, vline[DK_REDIS], "directory.redis",
                    "applies to backend: redis only (the backend is memory)");
    return 0;
}

/* ---- pools: (docs/pool.md) */

#define EXPECT_ARGV "expected a list of 1-32 words (each 1-511 bytes)"
#define EXPECT_COUNT "expected an integer from 0 to 1024"
#define EXPECT_PORTS "expected a port range FIRST-LAST (20000-20999), ports 1-65535"
#define EXPECT_REGEX "expected a POSIX extended regular expression of 1-511 bytes"
#define EXPECT_POOL_USER "expected a user name of 1-63 characters (a-z 0-9 _ . -)"
#define EXPECT_POOL_GROUP "expected a group name or gid of 1-63 characters (a-z 0-9 _ . -)"
#define EXPECT_UIDS "expected a uid range FIRST-LAST (61000-61999), uids 1-4294967294"
#define UID_LAST 4294967294u /* (uid_t)-1 means "no change" to setresuid() */

enum pool_key {
    PK_NAME,
    PK_COMMAND,
    PK_LAUNCHER,
    PK_ENDPOINT,
    PK_PORTS,
    PK_DIR,
    PK_USER,
    PK_UIDS,
    PK_GROUP,
    PK_MIN_IDLE,
    PK_MAX,
    PK_MAX_IDLE,
    PK_COOLDOWN,
    PK_START_TIMEOUT,
    PK_STOP_GRACE,
    PK_BACKOFF,
    PK_BACKOFF_MAX,
    PK_EVENTS,
    PK_PROVISION,
    PK_DEPROVISION,
    PK_COUNT
};

static const char *const pool_keys[PK_COUNT] = {
    [PK_NAME] = "name",
    [PK_COMMAND] = "command",
    [PK_LAUNCHER] = "launcher",
    [PK_ENDPOINT] = "endpoint",
    [PK_PORTS] = "ports",
    [PK_DIR] = "dir",
    [PK_USER] = "user",
    [PK_UIDS] = "uids",
    [PK_GROUP] = "group",
    [PK_MIN_IDLE] = "min_idle",
    [PK_MAX] = "max",
    [PK_MAX_IDLE] = "max_idle",
    [PK_COOLDOWN] = "cooldown",
    [PK_START_TIMEOUT] = "start_timeout",
    [PK_STOP_GRACE] = "stop_grace",
    [PK_BACKOFF] = "restart_backoff",
    [PK_BACKOFF_MAX] = "restart_backoff_max",
    [PK_EVENTS] = "events",
    [PK_PROVISION] = "provision",
    [PK_DEPROVISION] = "deprovision",
};

enum event_key { EK_READY, EK_LOGIN, EK_LOGOUT, EK_COUNT };

static const char *const event_keys[EK_COUNT] = {
    [EK_READY] = "ready",
    [EK_LOGIN] = "login",
    [EK_LOGOUT] = "logout",
};

enum hook_key { HK_COMMAND, HK_TIMEOUT, HK_COUNT };

static const char *const hook_keys[HK_COUNT] = {
    [HK_COMMAND] = "command",
    [HK_TIMEOUT] = "timeout",
};

unsigned
pool_conf_ports(const struct pool_conf *pc)
{
    return pc->port_max == 0 ? 0 : pc->port_max - pc->port_min + 1;
}

unsigned
pool_conf_uids(const struct pool_conf *pc)
{
    return pc->uid_max == 0 ? 0 : pc->uid_max - pc->uid_min + 1;
}

/* A list of template words; allowed: the placeholders they may use. */
static int
get_argv(struct ctx *c, const yaml_node_t *v, const char *key, unsigned allowed,
         struct argv_conf *out)
{
    if (v->type != YAML_SEQUENCE_NODE)
        return fail(c, node_line(v), key, EXPECT_ARGV ", not %s", node_kind(v));
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0 || n > CONF_ARGV_MAX)
        return fail(c, node_line(v), key, EXPECT_ARGV);
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = yaml_document_get_node(c->doc, v->data.sequence.items.start[i]);
        char ikey[CONF_KEY_MAX + 24];
        const char *s, *why = NULL;

        snprintf(ikey, sizeof(ikey), "%s[%zu]", key, i);
        if (scalar(c, item, ikey, EXPECT_ARGV, &s) != 0)
            return -1;
        if (s[0] == '\0' || strlen(s) >= CONF_ARG_MAX)
            return fail(c, node_line(item), ikey, EXPECT_ARGV);
        if (tmpl_check(s, allowed, &why) != 0)
            return fail(c, node_line(item), ikey, "%s", why);
        memcpy(out->arg[i], s, strlen(s) + 1);
    }
    out->n = n;
    return 0;
}

#define REGEX_COUNT_MAX 64 /* the largest {m,n} of an event rule */

/* Skips the bracket expression at s ("[...]", with "[]...]", "[^]...]" and
 * "[:class:]" inside); returns what follows it (s's end when unclosed:
 * regcomp() refuses that). */
static const char *
skip_bracket(const char *s)
{
    const char *p = s + 1;

    if (*p == '^')
        p++;
    if (*p == ']')
        p++;
    for (; *p != '\0' && *p != ']'; p++)
        if (p[0] == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
            const char *end = strchr(p + 2, p[1]);
            while (end != NULL && end[1] != ']')
                end = strchr(end + 1, p[1]);
            if (end == NULL)
                return p + strlen(p);
            p = end + 1;
        }
    return *p == ']' ? p + 1 : p;
}

/* glibc's regcomp() copies the tree of a repeated expression once per
 * repetition, so a repetition of a repetition ("a++", "(a+)*", "(a{9}){9}")
 * and large counts grow its memory exponentially: a 700-byte rule took
 * more than 2 GB. Returns why s is refused, or NULL. Event rules never need
 * them. */
static const char *
regex_costly(const char *s)
{
    bool quant[CONF_REGEX_MAX + 1] = {false}; /* per group depth: holds a repetition */
    size_t depth = 0;
    bool after_quant = false, after_group = false, group_quant = false;

    for (const char *p = s; *p != '\0';) {
        bool is_quant =
            *p == '*' || *p == '+' || *p == '?' || (*p == '{' && p[1] >= '0' && p[1] <= '9');
        if (is_quant) {
            if (after_quant || (after_group && group_quant))
                return "a repetition of a repetition";
            if (*p == '{') {
                char *end;
                unsigned long m = strtoul(p + 1, &end, 10), n = m;
                if (*end == ',' && end[1] >= '0' && end[1] <= '9')
                    n = strtoul(end + 1, &end, 10);
                else if (*end == ',')
                    end++;
                if (m > REGEX_COUNT_MAX || n > REGEX_COUNT_MAX)
                    return "a count above 64";
                p = *end == '}' ? end + 1 : end;
            } else {
                p++;
            }
            quant[depth] = true;
            after_quant = true;
            after_group = false;
            continue;
        }
        after_quant = after_group = false;
        if (*p == '\\' && p[1] != '\0') {
            p += 2;
        } else if (*p == '[') {
            p = skip_bracket(p);
        } else if (*p == '(' && depth < CONF_REGEX_MAX) {
            quant[++depth] = false;
            p++;
        } else if (*p == ')' && depth > 0) {
            group_quant = quant[depth--];
            quant[depth] = quant[depth] || group_quant;
            after_group = true;
            p++;
        } else {
            p++;
        }
    }
    return NULL;
}

static int
get_regex(struct ctx *c, const yaml_node_t *v, const char *key, int groups, char *out)
{
    const char *s;
    regex_t re;
    char msg[128];

    if (scalar(c, v, key, EXPECT_REGEX, &s) != 0)
        return -1;
    if (s[0] == '\0' || strlen(s) >= CONF_REGEX_MAX)
        return fail(c, node_line(v), key, EXPECT_REGEX);
    const char *costly = regex_costly(s);
    if (costly != NULL)
        return fail(c, node_line(v), key, EXPECT_REGEX " without %s", costly);
    int rc = regcomp(&re, s, REG_EXTENDED | (groups ? 0 : REG_NOSUB));
    if (rc != 0) {
        regerror(rc, &re, msg, sizeof(msg));
        return fail(c, node_line(v), key, EXPECT_REGEX ": %s", msg);
    }
    size_t n = re.re_nsub;
    regfree(&re);
    if (groups && n < 1)
        return fail(c, node_line(v), key,
                    "expected a capture group for the user, as in \"^LOGIN (.+)$\"");
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

/* FIRST-LAST, 1 <= FIRST <= LAST <= max (ports:, uids:). */
static int
get_range(struct ctx *c, const yaml_node_t *v, const char *key, uint64_t max, const char *expect,
          unsigned *first, unsigned *last)
{
    const char *s;
    char a[16], b[16];
    uint64_t lo, hi;

    if (scalar(c, v, key, expect, &s) != 0)
        return -1;
    const char *dash = strchr(s, '-');
    if (dash == NULL || dash - s == 0 || (size_t)(dash - s) >= sizeof(a) ||
        strlen(dash + 1) >= sizeof(b))
        return fail(c, node_line(v), key, "%s", expect);
    memcpy(a, s, (size_t)(dash - s));
    a[dash - s] = '\0';
    memcpy(b, dash + 1, strlen(dash + 1) + 1);
    if (parse_uint(a, max, &lo) != 0 || parse_uint(b, max, &hi) != 0 || lo == 0 || hi < lo)
        return fail(c, node_line(v), key, "%s", expect);
    *first = (unsigned)lo;
    *last = (unsigned)hi;
    return 0;
}

static int
parse_events(struct ctx *c, const yaml_node_t *n, const char *path, struct pool_conf *pc)
{
    size_t seen[EK_COUNT] = {0};
    char key[CONF_KEY_MAX + 48];

    if (n->type != YAML_MAPPING_NODE)
        return fail(c, node_line(n), path,
                    "expected a mapping of rules (ready, login, logout), not %s", node_kind(n));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        int i = 0;
        char *dst[EK_COUNT] = {pc->ready, pc->login, pc->logout};

        if (map_key(c, k, path, event_keys, EK_COUNT, seen, &i) != 0)
            return -1;
        snprintf(key, sizeof(key), "%s.%s", path, event_keys[i]);
        if (get_regex(c, v, key, i == EK_LOGIN, dst[i]) != 0)
            return -1;
    }
    for (int i = EK_READY; i <= EK_LOGIN; i++) {
        if (seen[i] != 0)
            continue;
        snprintf(key, sizeof(key), "%s.%s", path, event_keys[i]);
        return fail(c, node_line(n), key, "missing: " EXPECT_REGEX);
    }
    return 0;
}

static int
parse_hook(struct ctx *c, const yaml_node_t *n, const char *path, struct hook_conf *hc)
{
    size_t seen[HK_COUNT] = {0};
    char key[CONF_KEY_MAX + 48];

    if (n->type != YAML_MAPPING_NODE)
        return fail(c, node_line(n), path, "expected a mapping (command, timeout), not %s",
                    node_kind(n));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        int i = 0, rc;

        if (map_key(c, k, path, hook_keys, HK_COUNT, seen, &i) != 0)
            return -1;
        snprintf(key, sizeof(key), "%s.%s", path, hook_keys[i]);
        if (i == HK_COMMAND)
            rc = get_argv(c, v, key,
                          TMPL_DIR | TMPL_INSTANCE | TMPL_USER | TMPL_PORT | TMPL_UID | TMPL_GID,
                          &hc->command);
        else
            rc = get_duration(c, v, key, &hc->timeout_ms);
        if (rc == 0 && i == HK_TIMEOUT && hc->timeout_ms == 0)
            rc = fail(c, node_line(v), key, "expected a duration of more than 0");
        if (rc != 0)
            return -1;
    }
    if (seen[HK_COMMAND] == 0) {
        snprintf(key, sizeof(key), "%s.command", path);
        return fail(c, node_line(n), key, "missing: " EXPECT_ARGV);
    }
    return 0;
}

/* A user or group name (expect says which). */
static int
get_pool_user(struct ctx *c, const yaml_node_t *v, const char *key, const char *expect, char *out)
{
    const char *s;

    if (scalar(c, v, key, expect, &s) != 0)
        return -1;
    if (config_account(s) != 0)
        return fail(c, node_line(v), key, "%s", expect);
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

static int
pool_value(struct ctx *c, int k, const yaml_node_t *v, const char *key, struct pool_conf *pc)
{
    const unsigned inst = TMPL_PORT | TMPL_DIR | TMPL_INSTANCE;
    const char *s, *why = NULL;

    switch ((enum pool_key)k) {
    case PK_NAME:
        return get_name(c, v, key, pc->name);
    case PK_COMMAND:
        return get_argv(c, v, key, inst | TMPL_UID | TMPL_GID, &pc->command);
    case PK_LAUNCHER:
        return get_argv(c, v, key, inst | TMPL_UID | TMPL_GID, &pc->launcher);
    case PK_ENDPOINT:
        if (scalar(c, v, key, EXPECT_EP, &s) != 0)
            return -1;
        if (s[0] == '\0' || strlen(s) >= CONF_ARG_MAX)
            return fail(c, node_line(v), key, EXPECT_EP);
        if (tmpl_check(s, inst, &why) != 0)
            return fail(c, node_line(v), key, "%s", why);
        memcpy(pc->endpoint, s, strlen(s) + 1);
        return 0;
    case PK_PORTS:
        return get_range(c, v, key, 65535, EXPECT_PORTS, &pc->port_min, &pc->port_max);
    case PK_DIR:
        if (scalar(c, v, key, EXPECT_FILE, &s) != 0)
            return -1;
        if (s[0] != '/' || strlen(s) >= CONF_FILE_PATH_MAX - DIR_NAME_MAX)
            return fail(c, node_line(v), key, "expected an absolute directory path");
        memcpy(pc->dir, s, strlen(s) + 1);
        return 0;
    case PK_USER:
        return get_pool_user(c, v, key, EXPECT_POOL_USER, pc->user);
    case PK_GROUP:
        return get_pool_user(c, v, key, EXPECT_POOL_GROUP, pc->group);
    case PK_UIDS:
        return get_range(c, v, key, UID_LAST, EXPECT_UIDS, &pc->uid_min, &pc->uid_max);
    case PK_MIN_IDLE:
        return get_uint(c, v, key, CONF_INSTANCES_MAX, EXPECT_COUNT, &pc->min_idle);
    case PK_MAX:
        return get_uint(c, v, key, CONF_INSTANCES_MAX, EXPECT_COUNT, &pc->max);
    case PK_MAX_IDLE:
        return get_uint(c, v, key, CONF_INSTANCES_MAX, EXPECT_COUNT, &pc->max_idle);
    case PK_COOLDOWN:
        return get_duration(c, v, key, &pc->cooldown_ms);
    case PK_START_TIMEOUT:
        return get_duration(c, v, key, &pc->start_timeout_ms);
    case PK_STOP_GRACE:
        return get_duration(c, v, key, &pc->stop_grace_ms);
    case PK_BACKOFF:
        return get_duration(c, v, key, &pc->backoff_ms);
    case PK_BACKOFF_MAX:
        return get_duration(c, v, key, &pc->backoff_max_ms);
    case PK_EVENTS:
        return parse_events(c, v, key, pc);
    case PK_PROVISION:
        return parse_hook(c, v, key, &pc->provision);
    case PK_DEPROVISION:
        return parse_hook(c, v, key, &pc->deprovision);
    case PK_COUNT:
        break;
    }
    return -1;
}

/* The endpoint template, expanded for a sample instance, must be a stream
 * endpoint a client can connect to. */
static int
check_pool_endpoint(struct ctx *c, size_t line, const char *key, const struct pool_conf *pc)
{
    char port[16], inst[DIR_NAME_MAX + 16], dir[CONF_FILE_PATH_MAX + sizeof(inst) + 1];
    char text[CONF_ARG_MAX + sizeof(dir)];
    struct tmpl_vars tv = {.port = port, .dir = dir, .instance = inst};
    struct endpoint ep;
    const char *why = NULL;

    snprintf(port, sizeof(port), "%u", pc->port_min);
    snprintf(inst, sizeof(inst), "%s-1", pc->name);
    snprintf(dir, sizeof(dir), "%s/%s", pc->dir, inst);
    if (tmpl_expand(pc->endpoint, &tv, text, sizeof(text), &why) != 0)
        return fail(c, line, key, "%s", why);
    if (endpoint_parse(text, &ep, &why) != PARSE_OK)
        return fail(c, line, key, EXPECT_EP ": %s (as expanded: %s)", why ? why : "invalid", text);
    if (ep.kind == EP_UDP)
        return fail(c, line, key, MSG_STREAM_EP);
    if (ep.kind == EP_VSOCK && ep.cid == EP_CID_ANY)
        return fail(c, line, key, "expected the CID to connect to; vsock:any is for listeners");
    return 0;
}

static int
parse_pool(struct ctx *c, const yaml_node_t *n, struct config *cfg, size_t idx)
{
    struct pool_conf *pc = &cfg->pools[idx];
    size_t seen[PK_COUNT] = {0}, vline[PK_COUNT] = {0};
    char path[32], key[CONF_KEY_MAX + 16];

    memset(pc, 0, sizeof(*pc));
    pc->min_idle = 1;
    pc->max = 10;
    pc->cooldown_ms = 60 * 1000;
    pc->start_timeout_ms = 30 * 1000;
    pc->stop_grace_ms = 5 * 1000;
    pc->backoff_ms = 250;
    pc->backoff_max_ms = 30 * 1000;
    pc->provision.timeout_ms = 30 * 1000;
    pc->deprovision.timeout_ms = 30 * 1000;
    snprintf(path, sizeof(path), "pools[%zu]", idx);
    if (n->type != YAML_MAPPING_NODE)
        return fail(c, node_line(n), path,
                    "expected a mapping of pool settings (command, endpoint, dir, events, ...), "
                    "not %s",
                    node_kind(n));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        int i = 0;

        if (map_key(c, k, path, pool_keys, PK_COUNT, seen, &i) != 0)
            return -1;
        vline[i] = node_line(v);
        snprintf(key, sizeof(key), "%s.%s", path, pool_keys[i]);
        if (pool_value(c, i, v, key, pc) != 0)
            return -1;
    }
    if (vline[PK_NAME] == 0)
        snprintf(pc->name, sizeof(pc->name), "pool%zu", idx + 1);
    if (strlen(pc->name) > POOL_NAME_MAX) {
        snprintf(key, sizeof(key), "%s.name", path);
        return fail(c, vline[PK_NAME], key,
                    "expected at most %d characters (instance names add -N to it)", POOL_NAME_MAX);
    }
    if (vline[PK_MAX_IDLE] == 0)
        pc->max_idle = pc->min_idle;
    static const enum pool_key required[] = {PK_COMMAND, PK_ENDPOINT, PK_DIR, PK_EVENTS};
    for (size_t r = 0; r < sizeof(required) / sizeof(required[0]); r++) {
        if (vline[required[r]] != 0)
            continue;
        snprintf(key, sizeof(key), "%s.%s", path, pool_keys[required[r]]);
        return fail(c, node_line(n), key, "missing from pool '%s'", pc->name);
    }
#define POOL_FAIL(k, ...)                                                                          \
    (snprintf(key, sizeof(key), "%s.%s", path, pool_keys[k]),                                      \
     fail(c, vline[k] ? vline[k] : node_line(n), key, __VA_ARGS__))
    if (pc->max == 0)
        return POOL_FAIL(PK_MAX, "expected at least 1 instance");
    if (pc->min_idle > pc->max)
        return POOL_FAIL(PK_MIN_IDLE, "expected at most max (%u)", pc->max);
    if (pc->max_idle < pc->min_idle || pc->max_idle > pc->max)
        return POOL_FAIL(PK_MAX_IDLE, "expected from min_idle (%u) to max (%u)", pc->min_idle,
                         pc->max);
    if (pc->start_timeout_ms == 0)
        return POOL_FAIL(PK_START_TIMEOUT, "expected a duration of more than 0");
    if (pc->backoff_ms == 0 || pc->backoff_max_ms < pc->backoff_ms)
        return POOL_FAIL(vline[PK_BACKOFF_MAX] ? PK_BACKOFF_MAX : PK_BACKOFF,
                         "expected 0 < restart_backoff <= restart_backoff_max");
    unsigned uses = tmpl_uses(pc->endpoint);
    for (size_t w = 0; w < pc->command.n; w++)
        uses |= tmpl_uses(pc->command.arg[w]);
    for (size_t w = 0; w < pc->launcher.n; w++)
        uses |= tmpl_uses(pc->launcher.arg[w]);
    if ((uses & TMPL_PORT) && vline[PK_PORTS] == 0)
        return POOL_FAIL(PK_PORTS, "missing: {port} is used; " EXPECT_PORTS);
    if (pool_conf_ports(pc) != 0 && pool_conf_ports(pc) < pc->max)
        return POOL_FAIL(PK_PORTS, "expected at least max (%u) ports, not %u", pc->max,
                         pool_conf_ports(pc));
    if (vline[PK_UIDS] != 0 && vline[PK_USER] != 0)
        return POOL_FAIL(PK_UIDS, "expected either user (one shared user) or uids (one uid per "
                                  "instance), not both");
    if (vline[PK_GROUP] != 0 && vline[PK_UIDS] == 0)
        return POOL_FAIL(PK_GROUP, "applies with uids only (the gid of every instance)");
    if (pool_conf_uids(pc) != 0 && pool_conf_uids(pc) < pc->max)
        return POOL_FAIL(PK_UIDS, "expected at least max (%u) uids, not %u", pc->max,
                         pool_conf_uids(pc));
    snprintf(key, sizeof(key), "%s.endpoint", path);
    if (check_pool_endpoint(c, vline[PK_ENDPOINT], key, pc) != 0)
        return -1;
    for (size_t j = 0; j < idx; j++) {
        if (strcmp(cfg->pools[j].name, pc->name) == 0)
            return POOL_FAIL(PK_NAME, "expected a unique name; pools[%zu] is already called '%s'",
                             j, pc->name);
        if (strcmp(cfg->pools[j].dir, pc->dir) == 0)
            return POOL_FAIL(PK_DIR, "expected a directory of its own; pools[%zu] uses %s", j,
                             pc->dir);
        if (pool_conf_ports(pc) != 0 && pool_conf_ports(&cfg->pools[j]) != 0 &&
            pc->port_min <= cfg->pools[j].port_max && cfg->pools[j].port_min <= pc->port_max)
            return POOL_FAIL(PK_PORTS, "expected ports no other pool uses; pools[%zu] has %u-%u", j,
                             cfg->pools[j].port_min, cfg->pools[j].port_max);
        if (pool_conf_uids(pc) != 0 && pool_conf_uids(&cfg->pools[j]) != 0 &&
            pc->uid_min <= cfg->pools[j].uid_max && cfg->pools[j].uid_min <= pc->uid_max)
            return POOL_FAIL(PK_UIDS, "expected uids no other pool uses; pools[%zu] has %u-%u", j,
                             cfg->pools[j].uid_min, cfg->pools[j].uid_max);
    }
#undef POOL_FAIL
    return 0;
}

static int
parse_pools(struct ctx *c, const yaml_node_t *v, struct config *cfg)
{
    if (v->type != YAML_SEQUENCE_NODE || v->data.sequence.items.top == v->data.sequence.items.start)
        return fail(c, node_line(v), "pools",
                    "expected a list of pools (each with command, endpoint, dir, events), not %s",
                    v->type == YAML_SEQUENCE_NODE ? "an empty list" : node_kind(v));
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n > CONF_POOLS_MAX)
        return fail(c, node_line(v), "pools", "expected at most %d pools", CONF_POOLS_MAX);
    cfg->pools = calloc(n, sizeof(*cfg->pools));
    if (cfg->pools == NULL)
        return fail(c, node_line(v), "pools", "out of memory");
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = yaml_document_get_node(c->doc, v->data.sequence.items.start[i]);
        if (parse_pool(c, item, cfg, i) != 0)
            return -1;
        cfg->n_pools = i + 1;
    }
    return 0;
}

static int
parse_root(struct ctx *c, const yaml_node_t *root, struct config *cfg)
{
    size_t seen[TK_COUNT] = {0};
    size_t metrics_line = 0, logs_listen_line = 0, control_line = 0, pools_line = 0;
    size_t sink_lines[CONF_SINKS_MAX] = {0};
    const yaml_node_t *routers = NULL;

    if (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0)
        return fail(c, node_line(root), NULL,
                    "expected settings (a mapping with relays:), "
                    "found an empty document");
    if (root->type != YAML_MAPPING_NODE)
        return fail(c, node_line(root), NULL,
                    "expected a mapping of settings (threads, log_level, metrics, "
                    "drain_timeout, relays, routers, logs, log_sinks, directory, control, "
                    "pools), not %s",
                    node_kind(root));

    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        const char *s;
        int i, rc = 0;

        if (map_key(c, k, "", top_keys, TK_COUNT, seen, &i) != 0)
            return -1;
        switch ((enum top_key)i) {
        case TK_THREADS:
            rc = get_uint(c, v, "threads", CONF_THREADS_MAX, EXPECT_THREADS, &cfg->threads);
            break;
        case TK_LOG_LEVEL:
            rc = scalar(c, v, "log_level", EXPECT_LEVEL, &s);
            if (rc == 0 && log_level_parse(s, &cfg->log_level) != 0)
                rc = fail(c, node_line(v), "log_level", EXPECT_LEVEL);
            break;
        case TK_METRICS:
            rc = get_listen(c, v, "metrics", &cfg->metrics);
            if (rc == 0 && cfg->metrics.kind == EP_UDP)
                rc = fail(c, node_line(v), "metrics",
                          "udp: metrics are served over HTTP; expected a tcp, unix, vsock or "
                          "hvsock endpoint");
            cfg->has_metrics = rc == 0;
            metrics_line = node_line(v);
            break;
        case TK_DRAIN_TIMEOUT:
            rc = get_duration(c, v, "drain_timeout", &cfg->drain_timeout_ms);
            break;
        case TK_RELAYS:
            rc = parse_relays(c, v, cfg);
            break;
        case TK_LOGS:
            rc = parse_logs(c, v, &cfg->logs, &logs_listen_line);
            break;
        case TK_LOG_SINKS:
            rc = parse_sinks(c, v, cfg, sink_lines);
            break;
        case TK_ROUTERS:
            routers = v; /* after relays:, wherever it is */
            break;
        case TK_DIRECTORY:
            rc = parse_directory(c, v, &cfg->directory);
            cfg->has_directory = rc == 0;
            break;
        case TK_CONTROL:
            rc = get_listen(c, v, "control", &cfg->control);
            if (rc == 0 && cfg->control.kind == EP_UDP)
                rc = fail(c, node_line(v), "control", MSG_STREAM_EP);
            if (rc == 0 && cfg->control.kind == EP_HVSOCK)
                rc = fail(c, node_line(v), "control",
                          "expected a unix, tcp or vsock endpoint; hvsock is the host's face of "
                          "vsock");
            cfg->has_control = rc == 0;
            control_line = node_line(v);
            break;
        case TK_POOLS:
            rc = parse_pools(c, v, cfg);
            pools_line = node_line(k);
            break;
        case TK_RESOLVER_THREADS:
            rc = get_uint(c, v, "resolver_threads", CONF_RESOLVER_THREADS_MAX,
                          EXPECT_RESOLVER_THREADS, &cfg->resolver_threads);
            if (rc == 0 && cfg->resolver_threads == 0)
                rc = fail(c, node_line(v), "resolver_threads", EXPECT_RESOLVER_THREADS);
            break;
        case TK_RESOLVER_QUEUE:
            rc = get_uint(c, v, "resolver_queue", CONF_RESOLVER_QUEUE_MAX, EXPECT_RESOLVER_QUEUE,
                          &cfg->resolver_queue);
            if (rc == 0 && cfg->resolver_queue == 0)
                rc = fail(c, node_line(v), "resolver_queue", EXPECT_RESOLVER_QUEUE);
            break;
        case TK_COUNT:
            rc = -1;
            break;
        }
        if (rc != 0)
            return -1;
    }

    if (routers != NULL && parse_routers(c, routers, cfg) != 0)
        return -1;
    for (size_t j = 0; routers != NULL && !cfg->has_directory && j < cfg->n_relays; j++) {
        char path[32];
        if (cfg->relays[j].router.table.directory[0] == '\0')
            continue;
        entry_path(cfg, j, path, sizeof(path));
        return fail(c, node_line(routers), "routers",
                    "%s ('%s') routes to directory pool '%s': expected a directory: block too",
                    path, cfg->relays[j].name, cfg->relays[j].router.table.directory);
    }
    if (seen[TK_RELAYS] == 0 && seen[TK_LOGS] == 0 && seen[TK_LOG_SINKS] == 0 &&
        seen[TK_ROUTERS] == 0 && seen[TK_DIRECTORY] == 0 && seen[TK_POOLS] == 0)
        return fail(c, node_line(root), "relays", "expected at least one relay");
    if (cfg->has_control && !cfg->has_directory)
        return fail(c, control_line, "control",
                    "expected a directory: block too (the control socket operates the "
                    "directory)");
    if (cfg->n_pools > 0 && !cfg->has_directory)
        return fail(c, pools_line, "pools",
                    "expected a directory: block too (a login line is believed only for the "
                    "user the directory reserved the instance for)");
    for (size_t j = 0; cfg->has_metrics && j < cfg->n_relays; j++) {
        char ep[EP_HOST_MAX + EP_PATH_MAX + 32];
        if (!endpoint_equal(&cfg->relays[j].listen, &cfg->metrics))
            continue;
        endpoint_format(&cfg->metrics, ep, sizeof(ep));
        return fail(c, metrics_line, "metrics",
                    "expected an endpoint no relay listens on; relays[%zu] ('%s') already "
                    "listens on %s",
                    j, cfg->relays[j].name, ep);
    }
    return check_log_listeners(c, cfg, logs_listen_line, sink_lines);
}

/* Reader errors (bad UTF-8, control characters) carry a byte offset rather
 * than a mark. */
static size_t
offset_line(const struct ctx *c, size_t off)
{
    size_t line = 1;

    for (size_t i = 0; i < off && i < c->len; i++)
        line += c->text[i] == '\n';
    return line;
}

static int
yaml_fail(struct ctx *c, const yaml_parser_t *parser)
{
    const char *problem = parser->problem ? parser->problem : "unknown error";

    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        return fail(c, 1, NULL, "out of memory reading YAML");
    case YAML_READER_ERROR:
        return fail(c, offset_line(c, parser->problem_offset), "invalid YAML", "%s", problem);
    default:
        if (parser->context != NULL)
            return fail(c, parser->problem_mark.line + 1, "invalid YAML", "%s (%s on line %zu)",
                        problem, parser->context, parser->context_mark.line + 1);
        return fail(c, parser->problem_mark.line + 1, "invalid YAML", "%s", problem);
    }
}

/* Counts the lines that start with '%' (a YAML directive can only start
 * a line); fails at the first one past CONF_DIRECTIVES_MAX. */
static int
count_directives(struct ctx *c)
{
    size_t n = 0, line = 1;

    for (size_t i = 0; i < c->len; i++) {
        if (c->text[i] == '%' && (i == 0 || c->text[i - 1] == '\n') && ++n > CONF_DIRECTIVES_MAX)
            return fail(c, line, NULL, "more than %d YAML directives (%%TAG, %%YAML)",
                        CONF_DIRECTIVES_MAX);
        line += c->text[i] == '\n';
    }
    return 0;
}

/* libyaml's scanner looks at every open flow level for each token, its
 * parser checks each %TAG directive against the ones before it and its
 * loader finds anchors in a list: deep nesting (100k levels of '[' or
 * '{a: ' took half a minute), many directives and many anchors cost
 * quadratic time. So before the loader builds anything, the directives are
 * counted in the text and the events of the whole stream are walked, which
 * stops at the first node deeper than CONF_DEPTH_MAX: the scanner reads at
 * most a line (1024 characters for a possible key) past it. Syntax errors
 * are reported here, as the loader would. */
static int
prescan(struct ctx *c)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    size_t depth = 0, anchors = 0;
    int rc = -1;

    if (count_directives(c) != 0)
        return -1;
    if (!yaml_parser_initialize(&parser))
        return fail(c, 1, NULL, "out of memory reading YAML");
    yaml_parser_set_input_string(&parser, (const unsigned char *)c->text, c->len);
    for (;;) {
        if (!yaml_parser_parse(&parser, &ev)) {
            yaml_fail(c, &parser);
            break;
        }
        size_t line = ev.start_mark.line + 1;
        bool anchored =
            (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.anchor != NULL) ||
            (ev.type == YAML_SEQUENCE_START_EVENT && ev.data.sequence_start.anchor != NULL) ||
            (ev.type == YAML_MAPPING_START_EVENT && ev.data.mapping_start.anchor != NULL) ||
            ev.type == YAML_ALIAS_EVENT;
        bool opens = ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT;
        bool closes = ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT;
        bool end = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
        if (end) {
            rc = 0;
            break;
        }
        if (opens && ++depth > CONF_DEPTH_MAX) {
            fail(c, line, NULL, "nesting deeper than %d", CONF_DEPTH_MAX);
            break;
        }
        if (closes && depth > 0)
            depth--;
        if (anchored && ++anchors > CONF_ANCHORS_MAX) {
            fail(c, line, NULL, "more than %d anchors and aliases (&name, *name)",
                 CONF_ANCHORS_MAX);
            break;
        }
    }
    yaml_parser_delete(&parser);
    return rc;
}

int
config_parse(const char *name, const char *text, size_t len, struct config *cfg, char *err,
             size_t errlen)
{
    char scratch[1];
    struct ctx c = {
        .name = name ? name : "config",
        .text = text ? text : "",
        .len = text ? len : 0,
        .err = errlen ? err : scratch,
        .errlen = errlen ? errlen : sizeof(scratch),
    };
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    const yaml_node_t *root, *more;
    bool have_parser = false, have_doc = false, have_extra = false;
    int rc = -1;

    memset(cfg, 0, sizeof(*cfg));
    cfg->log_level = LOG_LVL_INFO;
    cfg->drain_timeout_ms = 30 * 1000;
    cfg->logs.buffer = LOG_BUFFER_DEFAULT;
    cfg->logs.line_max = LOG_LINE_DEFAULT;
    cfg->logs.limits.max_streams = LOG_STREAMS_DEFAULT;
    dir_conf_defaults(&cfg->directory);
    c.err[0] = '\0';

    if (prescan(&c) != 0)
        goto fail;
    if (!yaml_parser_initialize(&parser)) {
        fail(&c, 1, NULL, "out of memory reading YAML");
        goto fail;
    }
    have_parser = true;
    yaml_parser_set_input_string(&parser, (const unsigned char *)c.text, c.len);

    /* yaml_parser_load() frees the document itself when it fails. */
    if (!yaml_parser_load(&parser, &doc)) {
        yaml_fail(&c, &parser);
        goto fail;
    }
    have_doc = true;
    c.doc = &doc;
    root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        fail(&c, 1, NULL, "expected settings (a mapping with relays:), found an empty file");
        goto fail;
    }
    if (parse_root(&c, root, cfg) != 0)
        goto fail;

    /* A second document would be silently ignored, which hides mistakes
     * such as two configs concatenated into one file. */
    if (!yaml_parser_load(&parser, &extra)) {
        yaml_fail(&c, &parser);
        goto fail;
    }
    have_extra = true;
    more = yaml_document_get_root_node(&extra);
    if (more != NULL) {
        fail(&c, node_line(more), NULL, "expected a single YAML document; found another one");
        goto fail;
    }
    rc = 0;

fail:
    if (have_extra)
        yaml_document_delete(&extra);
    if (have_doc)
        yaml_document_delete(&doc);
    if (have_parser)
        yaml_parser_delete(&parser);
    if (rc != 0)
        config_free(cfg);
    return rc;
}

/* Reads by growing a buffer rather than trusting st_size, so that pipes
 * and /dev/stdin work too. */
int
config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int fd, rc = -1;

    memset(cfg, 0, sizeof(*cfg));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (len == cap) {
            /* One byte past the limit is how a file that is too big shows. */
            if (cap > CONF_FILE_MAX) {
                snprintf(err, errlen, "%s: expected a config file of at most %d KiB", path,
                         CONF_FILE_MAX / 1024);
                goto fail;
            }
            cap = cap ? cap * 2 : 4096;
            if (cap > CONF_FILE_MAX)
                cap = CONF_FILE_MAX + 1;
            char *nb = realloc(buf, cap);
            if (nb == NULL) {
                snprintf(err, errlen, "%s: out of memory", path);
                goto fail;
            }
            buf = nb;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    rc = config_parse(path, buf, len, cfg, err, errlen);

fail:
    free(buf);
    close(fd);
    return rc;
}
