/* config.c - the YAML configuration and the command line; see config.h.
 *
 * libyaml's document API builds the whole node tree first, so YAML syntax
 * errors are reported before any setting is looked at, and every node keeps
 * its start mark for "FILE:LINE: KEY: what was expected" messages. Each
 * block is a table below, walked by conf_map() (cli/confmap.c); what is
 * left here are the setters of values only one block has, and the rules
 * that span blocks (unique names and listen endpoints, what needs a
 * directory:). Before the loader runs, prescan() bounds what would cost
 * libyaml itself quadratic time: nesting, anchors and directives. */
#include "cli/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <yaml.h>

#include "attest/policy.h"
#include "cli/confdump.h"
#include "cli/confmap.h"
#include "core/file.h"
#include "field/field.h"
#include "net/addr.h"
#include "net/resolve.h"
#include "pool/template.h"

/* Bounds the allocation for the relays array (a few KiB each) on hostile
 * input; far above any real deployment. */
#define CONF_RELAYS_MAX 4096
/* A config is a few KiB, but a router may have ROUTES_MAX routes (one per
 * user): 16 MiB holds them at about 160 bytes each ("- {name: ..., target:
 * ...}" lines are about 60), and still refuses to slurp something that is
 * clearly not a config. */
#define CONF_FILE_MAX (16 * 1024 * 1024)
_Static_assert(CONF_FILE_MAX >= ROUTES_MAX * 160, "a file must hold ROUTES_MAX routes");
/* What libyaml is asked to build (see prescan()): a config nests five
 * levels deep and needs no anchors or directives. */
#define CONF_DEPTH_MAX 64
#define CONF_ANCHORS_MAX 256
#define CONF_DIRECTIVES_MAX 16

#define EXPECT_DURATION "expected a duration (250ms, 5s, 2m, 1h; a bare integer is seconds)"
#define EXPECT_ABOVE_0 "expected a duration above 0 (250ms, 5s, 2m, 1h)"
#define EXPECT_THREADS "expected an integer from 0 to 256 (0: one per core)"
#define EXPECT_MAXCONN "expected an integer from 0 to 10000000 (0: no limit)"
#define EXPECT_BOOL "expected true or false"
#define EXPECT_PROXY "expected v2 or none"
#define EXPECT_LEVEL "expected error, warn, info or debug"
#define EXPECT_LOG_FORMAT "expected text, logfmt or json"
#define EXPECT_NAME "expected a name of 1-63 characters from A-Z a-z 0-9 _ . -"
#define EXPECT_RULE "expected a CIDR (10.0.0.0/8, [2001:db8::]/32), an address or cid:N"
#define EXPECT_TARGET "expected an endpoint (" EP_FORMS ") or egress"
#define EXPECT_EGRESS_RULE                                                                         \
    "expected DEST:PORTS (api.example.com:443, *.example.com:443, 198.51.100.0/24:80-90, "         \
    "[2001:db8::]/32:443)"
#define EXPECT_SIZE_UNITS "(B, KiB, MiB, GiB; a bare integer is bytes)"
#define EXPECT_BUFFER "expected a size from 64KiB to 1GiB " EXPECT_SIZE_UNITS
#define EXPECT_LINE_MAX "expected a size from 256B to 1MiB " EXPECT_SIZE_UNITS
#define EXPECT_FILE "expected a file path of 1-4095 bytes"
#define EXPECT_DATAGRAM "expected an integer from 1 to 65507 (the largest UDP payload)"
#define EXPECT_PATTERN "expected a name (example.com) or a wildcard (*.example.com)"
#define EXPECT_BACKEND "expected memory or redis"
#define EXPECT_PREFIX "expected a redis key prefix of 0-63 bytes without spaces"
#define EXPECT_1_TO(n) "expected an integer from 1 to " #n
#define EXPECT_MAX_FDS                                                                             \
    "expected an integer from 2 to 1048576, or 0 (an eighth of the open files limit, at most "     \
    "4096)"
#define EXPECT_LISTEN                                                                              \
    "expected an endpoint (" EP_FORMS ") or a mapping {endpoint, mode, owner, group}"
#define EXPECT_MODE "expected an octal mode from 0001 to 0777 (0660: owner and group)"
#define EXPECT_OWNER "expected a user name or uid of 1-63 characters (a-z 0-9 _ . -)"
#define EXPECT_GROUP "expected a group name or gid of 1-63 characters (a-z 0-9 _ . -)"
#define EXPECT_PER_CLIENT "expected an integer from 0 (no bound) to 1024"
#define EXPECT_SHARE "expected a percentage from 1 to 100 (100: no bound)"
#define EXPECT_ROUTE "expected a mapping {name: NAME or *.NAME, target: ENDPOINT}"
#define EXPECT_DOMAIN "expected a DNS name (grid.example): user keys come from <key>.<domain>"
#define EXPECT_HELLO "expected a size from 512B to 32KiB (B, KiB; a bare integer is bytes)"
#define EXPECT_ARGV "expected a list of 1-32 words (each 1-511 bytes)"
#define EXPECT_COUNT "expected an integer from 0 to 1024"
#define EXPECT_PORTS "expected a port range FIRST-LAST (20000-20999), ports 1-65535"
#define EXPECT_REGEX "expected a POSIX extended regular expression of 1-511 bytes"
#define EXPECT_POOL_USER "expected a user name of 1-63 characters (a-z 0-9 _ . -)"
#define EXPECT_UIDS "expected a uid range FIRST-LAST (61000-61999), uids 1-4294967294"
#define EXPECT_POLICY_TYPE "expected nitro, snp or tdx"
#define EXPECT_PCRS "expected a mapping of PCR index (0-31) to hex ({0: HEX, 8: HEX})"
#define EXPECT_PCR "expected the PCR's value in hex (1-64 bytes)"
#define EXPECT_RTMRS "expected a mapping of RTMR index (0-3) to hex ({1: HEX, 2: HEX})"
#define EXPECT_RTMR "expected the RTMR's 48 bytes in hex"
#define EXPECT_MEASUREMENT "expected 48 bytes of hex"
#define EXPECT_MIN_TCB "expected 8 bytes of hex, as reported_tcb prints"
#define EXPECT_POLICY_PATH "expected a file path of 1-1023 bytes"
#define EXPECT_TCB_STATUS                                                                          \
    "expected a list of TCB statuses (UpToDate, SWHardeningNeeded, ConfigurationNeeded, "          \
    "ConfigurationAndSWHardeningNeeded, OutOfDate, OutOfDateConfigurationNeeded; never Revoked)"
#define EXPECT_MESSAGE "expected a size from 1KiB to 1MiB " EXPECT_SIZE_UNITS
#define MSG_HVSOCK_LISTEN                                                                          \
    "expected a unix, tcp or vsock endpoint%s; hvsock is the host's face of vsock"

/* The tables of rows below are kept out of clang-format, which would
 * spread each row over a line per field: a row per key reads as a table. */
#define AT(base, off, type) ((type *)(void *)((char *)(base) + (off)))
#define ROWS(r) .rows = (r), .n = sizeof(r) / sizeof((r)[0])

/* The walker hands a block to its check and "applies" rules as void *;
 * these make a module's typed function one of them. */
#define BLOCK_CHECK(name, fn, type)                                                                \
    static int name(void *base, struct conf_fault *f)                                              \
    {                                                                                              \
        return fn((type *)base, f);                                                                \
    }
#define APPLIES(name, fn, type)                                                                    \
    static const char *name(const void *base)                                                      \
    {                                                                                              \
        return fn((const type *)base);                                                             \
    }
#define IN_FORCE(name, fn, type)                                                                   \
    static unsigned name(const void *base)                                                         \
    {                                                                                              \
        return fn((const type *)base);                                                             \
    }

_Static_assert(EP_ID_MAX == UNITS_ACCOUNT_MAX, "owner and group names are accounts");

/* ---- setters of values one block has */

static int
refuse(char *msg, size_t msglen, const char *fmt, const char *why)
{
    snprintf(msg, msglen, fmt, why);
    return -1;
}

static int
set_log_level(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    if (log_level_parse(s, AT(base, row->off, enum log_level)) != 0)
        return refuse(msg, len, "%s", row->expect);
    return 0;
}

static int
set_log_format(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    if (log_format_parse(s, AT(base, row->off, enum log_format)) != 0)
        return refuse(msg, len, "%s", row->expect);
    return 0;
}

static int
set_proxy(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    enum proxy_mode *mode = AT(base, row->off, enum proxy_mode);

    if (strcmp(s, "v2") == 0)
        *mode = PROXY_V2;
    else if (strcmp(s, "none") == 0)
        *mode = PROXY_NONE;
    else
        return refuse(msg, len, "%s", row->expect);
    return 0;
}

static int
set_target(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    struct relay_conf *rc = base;
    const char *why = NULL;

    (void)row;
    if (strcmp(s, "egress") == 0) {
        rc->egress = true;
        memset(&rc->target, 0, sizeof(rc->target));
        return 0;
    }
    if (endpoint_parse(s, &rc->target, &why) != PARSE_OK)
        return refuse(msg, len, EXPECT_TARGET ": %s", why ? why : "invalid");
    return 0;
}

/* Appends to the list at off whose count is at off2 (row->max entries at
 * most): the command line's repeated options and the file's lists alike. */
static size_t *
list_room(const struct conf_row *row, void *base, char *msg, size_t len)
{
    size_t *n = AT(base, row->off2, size_t);

    if (*n < row->max)
        return n;
    snprintf(msg, len, row->list->many, (int)row->max);
    return NULL;
}

/* One endpoint of a list of them (targets:, sentinels:), checked by
 * row->ep_check, appended to the list at off. */
static int
set_endpoint_item(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    size_t *n = list_room(row, base, msg, len);
    struct conf_row one = *row;

    if (n == NULL)
        return -1;
    one.off = row->off + *n * sizeof(struct endpoint);
    if (conf_set_endpoint(&one, base, s, msg, len) != 0)
        return -1;
    ++*n;
    return 0;
}

static int
set_allow(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    size_t *n = list_room(row, base, msg, len);
    const char *why = NULL;

    if (n == NULL)
        return -1;
    if (allow_parse(s, &AT(base, row->off, struct allow_rule)[*n], &why) != PARSE_OK)
        return refuse(msg, len, EXPECT_RULE ": %s", why ? why : "invalid");
    ++*n;
    return 0;
}

static int
set_egress(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    size_t *n = list_room(row, base, msg, len);
    const char *why = NULL;

    if (n == NULL)
        return -1;
    if (egress_rule_parse(s, &AT(base, row->off, struct egress_rule)[*n], &why) != PARSE_OK)
        return refuse(msg, len, "%s", why ? why : EXPECT_EGRESS_RULE);
    ++*n;
    return 0;
}

static int
set_dns(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    size_t *n = list_room(row, base, msg, len);
    char(*names)[DNS_PATTERN_MAX] = (void *)((char *)base + row->off);
    const char *why = NULL;

    if (n == NULL)
        return -1;
    if (dns_pattern_parse(s, names[*n], &why) != PARSE_OK)
        return refuse(msg, len, EXPECT_PATTERN ": %s", why);
    ++*n;
    return 0;
}

/* The expect of a row whose path must be an absolute file's (set_path()). */
static const char expect_abs_file[] = "expected an absolute file path";

/* A file path (row->max bytes with the NUL); absolute when row->min: a
 * directory's, or a file's when the row expects expect_abs_file. */
static int
set_path(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    const char *absolute =
        row->expect == expect_abs_file ? expect_abs_file : "expected an absolute directory path";

    if (row->min && s[0] != '/')
        return refuse(msg, len, "%s", absolute);
    if (s[0] == '\0' || strlen(s) >= row->max)
        return refuse(msg, len, "%s", row->min ? absolute : row->expect);
    memcpy(AT(base, row->off, char), s, strlen(s) + 1);
    return 0;
}

static int
set_account(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    if (units_account(s) != 0)
        return refuse(msg, len, "%s", row->expect);
    memcpy(AT(base, row->off, char), s, strlen(s) + 1);
    return 0;
}

static int
set_mode(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    if (units_mode(s, AT(base, row->off, unsigned)) != 0)
        return refuse(msg, len, "%s", row->expect);
    return 0;
}

/* FIRST-LAST into the unsigned at off and off2 (ports:, uids:). */
static int
set_range(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    if (units_range(s, row->max, AT(base, row->off, unsigned), AT(base, row->off2, unsigned)) != 0)
        return refuse(msg, len, "%s", row->expect);
    return 0;
}

static int
set_domain(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    const char *why;

    if (strncmp(s, "*.", 2) == 0 || route_name_parse(s, AT(base, row->off, char), &why) != PARSE_OK)
        return refuse(msg, len, "%s", row->expect);
    return 0;
}

static int
set_route_name(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    const char *why = NULL;

    if (route_name_parse(s, AT(base, row->off, char), &why) != PARSE_OK)
        return refuse(msg, len, "%s", why);
    return 0;
}

static int
set_backend(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    enum dir_backend *b = AT(base, row->off, enum dir_backend);

    if (strcmp(s, "memory") == 0)
        *b = DIR_MEMORY;
    else if (strcmp(s, "redis") == 0)
        *b = DIR_REDIS;
    else
        return refuse(msg, len, "%s", row->expect);
    return 0;
}

static int
set_prefix(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    if (strlen(s) >= row->max || strpbrk(s, " \t\r\n") != NULL)
        return refuse(msg, len, "%s", row->expect);
    memcpy(AT(base, row->off, char), s, strlen(s) + 1);
    return 0;
}

/* A word of an argv template; row->max: the placeholders it may use. */
static int
set_arg(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    struct argv_conf *a = AT(base, row->off, struct argv_conf);
    const char *why = NULL;

    if (a->n == CONF_ARGV_MAX || s[0] == '\0' || strlen(s) >= CONF_ARG_MAX)
        return refuse(msg, len, "%s", row->expect);
    if (tmpl_check(s, (unsigned)row->max, &why) != 0)
        return refuse(msg, len, "%s", why);
    memcpy(a->arg[a->n++], s, strlen(s) + 1);
    return 0;
}

/* A template (the pool's endpoint); row->max: the placeholders. */
static int
set_template(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    const char *why = NULL;

    if (s[0] == '\0' || strlen(s) >= CONF_ARG_MAX)
        return refuse(msg, len, "%s", row->expect);
    if (tmpl_check(s, (unsigned)row->max, &why) != 0)
        return refuse(msg, len, "%s", why);
    memcpy(AT(base, row->off, char), s, strlen(s) + 1);
    return 0;
}

/* An event rule; row->min: with a capture group for the user. */
static int
set_regex(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    if (pool_conf_regex(s, row->min != 0, msg, len) != 0)
        return -1;
    memcpy(AT(base, row->off, char), s, strlen(s) + 1);
    return 0;
}

/* ---- what endpoints of each use accept */

/* Where a client connects to: a stream endpoint with a CID. */
static int
ep_connectable(const struct endpoint *ep, char *msg, size_t len)
{
    if (ep->kind == EP_UDP)
        return refuse(msg, len, "%s", EP_EXPECT_STREAM);
    if (ep->kind == EP_VSOCK && ep->cid == EP_CID_ANY)
        return refuse(msg, len, "%s", EP_EXPECT_CID);
    return 0;
}

static int
ep_stream(const struct endpoint *ep, char *msg, size_t len)
{
    return ep->kind == EP_UDP ? refuse(msg, len, "%s", EP_EXPECT_STREAM) : 0;
}

static int
ep_metrics(const struct endpoint *ep, char *msg, size_t len)
{
    if (ep->kind == EP_UDP)
        return refuse(msg, len, "%s",
                      "udp: metrics are served over HTTP; expected a tcp, unix, vsock or hvsock "
                      "endpoint");
    return 0;
}

static int
ep_control(const struct endpoint *ep, char *msg, size_t len)
{
    if (ep_stream(ep, msg, len) != 0)
        return -1;
    return ep->kind == EP_HVSOCK ? refuse(msg, len, MSG_HVSOCK_LISTEN, "") : 0;
}

static int
ep_app_listen(const struct endpoint *ep, char *msg, size_t len)
{
    if (ep_stream(ep, msg, len) != 0)
        return -1;
    return ep->kind == EP_HVSOCK ? refuse(msg, len, MSG_HVSOCK_LISTEN, " for apps") : 0;
}

static int
ep_redis(const struct endpoint *ep, char *msg, size_t len)
{
    if (ep->kind != EP_TCP && ep->kind != EP_UNIX)
        return refuse(msg, len, "%s", "expected a tcp or unix endpoint for redis");
    return 0;
}

/* ---- listeners: an endpoint, or a mapping {endpoint, mode, owner, group} */

/* A tcp or udp listener binds an address: a name would fail only when
 * airlock runs (transport_listen() takes literals). */
static int
ep_bindable(const struct endpoint *ep, char *msg, size_t len)
{
    uint8_t a[16];
    size_t n = strlen(ep->host);

    if ((ep->kind != EP_TCP && ep->kind != EP_UDP) || addr_parse_ip(AF_INET, ep->host, n, a) ||
        addr_parse_ip(AF_INET6, ep->host, n, a))
        return 0;
    snprintf(msg, len,
             "expected an IP address to listen on (0.0.0.0, 127.0.0.1, [::1]), not the name '%s'",
             ep->host);
    return -1;
}

/* Whether listeners a and b cannot both bind: the same endpoint; on one
 * port and protocol, a wildcard address (0.0.0.0, ::) and another of its
 * family (IPv6 listeners are IPv6 only), or vsock's any CID and another;
 * one socket file for two unix or hvsock listeners, whatever their port. */
static bool
listen_clash(const struct endpoint *a, const struct endpoint *b)
{
    static const uint8_t any[16];
    bool file_a = a->kind == EP_UNIX || a->kind == EP_HVSOCK;
    bool file_b = b->kind == EP_UNIX || b->kind == EP_HVSOCK;
    uint8_t x[16], y[16];

    if (file_a || file_b)
        return file_a && file_b && strncmp(a->path, b->path, EP_PATH_MAX) == 0;
    if (a->kind != b->kind || a->port != b->port)
        return false;
    if (a->kind == EP_VSOCK)
        return a->cid == b->cid || a->cid == EP_CID_ANY || b->cid == EP_CID_ANY;
    if (endpoint_equal(a, b))
        return true;
    int af = strchr(a->host, ':') != NULL ? AF_INET6 : AF_INET;
    size_t n = af == AF_INET6 ? 16 : 4;
    if (af != (strchr(b->host, ':') != NULL ? AF_INET6 : AF_INET) ||
        !addr_parse_ip(af, a->host, strlen(a->host), x) ||
        !addr_parse_ip(af, b->host, strlen(b->host), y))
        return false;
    return memcmp(x, y, n) == 0 || memcmp(x, any, n) == 0 || memcmp(y, any, n) == 0;
}

struct listen_map {
    struct endpoint ep;
    struct ep_perm perm;
};

/* clang-format off */
static const struct conf_row listen_rows[] = {
    {.name = "endpoint", .set = conf_set_endpoint, .off = offsetof(struct listen_map, ep),
     .expect = EP_EXPECT, .flags = CONF_REQUIRED},
    {.name = "mode", .set = set_mode, .off = offsetof(struct listen_map, perm.mode),
     .expect = EXPECT_MODE},
    {.name = "owner", .set = set_account, .off = offsetof(struct listen_map, perm.owner),
     .expect = EXPECT_OWNER},
    {.name = "group", .set = set_account, .off = offsetof(struct listen_map, perm.group),
     .expect = EXPECT_GROUP},
};
/* clang-format on */

static const struct conf_block listen_block = {
    ROWS(listen_rows),
    .what = EXPECT_LISTEN,
    .missing_here = true,
};

/* The row's endpoint at off, from a scalar or a listen mapping; then the
 * row's ep_check. */
static int
node_listen(struct conf_ctx *c, const struct conf_row *row, const yaml_node_t *v, const char *key,
            void *base)
{
    struct endpoint *ep = AT(base, row->off, struct endpoint);
    struct listen_map m = {0};
    char msg[CONF_MSG_MAX];
    const char *why;
    size_t perm_line = SIZE_MAX;

    if (v->type == YAML_SEQUENCE_NODE)
        return conf_fail(c, conf_line(v), key, EXPECT_LISTEN ", not a list");
    if (v->type != YAML_MAPPING_NODE) {
        if (conf_scalar(c, v, key, EP_EXPECT, &why) != 0)
            return -1;
        if (conf_set_endpoint(row, base, why, msg, sizeof(msg)) != 0 ||
            ep_bindable(ep, msg, sizeof(msg)) != 0)
            return conf_fail(c, conf_line(v), key, "%s", msg);
    } else {
        if (conf_map(c, v, key, &listen_block, &m) != 0)
            return -1;
        *ep = m.ep;
        ep->perm = m.perm;
        for (size_t i = 1; i < listen_block.n; i++) {
            size_t line = conf_key_line(c, v, listen_rows[i].name, CONF_NO_ITEM);
            if (line != 0 && line < perm_line)
                perm_line = line;
        }
        if ((why = endpoint_perm_check(ep)) != NULL)
            return conf_fail(c, perm_line, key, "%s", why);
        if ((row->ep_check != NULL && row->ep_check(ep, msg, sizeof(msg)) != 0) ||
            ep_bindable(ep, msg, sizeof(msg)) != 0)
            return conf_fail(c, conf_line(v), key, "%s", msg);
    }
    return 0;
}

/* ---- policy: an attestation policy (attest/policy.h), the block of a
 * broker secret's policy and a relay's verify */

static int
set_policy_type(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    if (attest_policy_type_parse(s, AT(base, row->off, enum attest_kind)) != 0)
        return refuse(msg, len, "%s", row->expect);
    return 0;
}

/* Exactly row->max bytes of hex at off; the CONF_HAS bool says it was given. */
static int
set_hex(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    uint8_t buf[ATTEST_PCR_LEN_MAX];
    size_t n;

    if (units_hex(s, buf, sizeof(buf), &n) != 0 || n != row->max)
        return refuse(msg, len, "%s", row->expect);
    memcpy(AT(base, row->off, uint8_t), buf, n);
    return 0;
}

/* pcrs: a mapping of PCR index (0-31, each once) to its value in hex. */
static int
node_pcrs(struct conf_ctx *c, const struct conf_row *row, const yaml_node_t *v, const char *key,
          void *base)
{
    struct attest_policy_conf *pc = base;
    char ikey[CONF_KEY_MAX + 24];

    (void)row;
    if (v->type != YAML_MAPPING_NODE)
        return conf_fail(c, conf_line(v), key, EXPECT_PCRS);
    /* an empty one would read as a pin and pin nothing: any enclave, of any
     * image, debug mode included */
    if (v->data.mapping.pairs.start == v->data.mapping.pairs.top)
        return conf_fail(c, conf_line(v), key,
                         EXPECT_PCRS ": at least one (without pcrs, no PCR is pinned)");
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const yaml_node_t *val = yaml_document_get_node(c->doc, p->value);
        struct attest_pcr *pcr = &pc->pcrs[pc->npcrs];
        const char *idx, *hex;
        uint64_t n;

        if (conf_scalar(c, k, key, EXPECT_PCRS, &idx) != 0)
            return -1;
        if (units_uint(idx, ATTEST_PCR_MAX - 1, &n) != 0)
            return conf_fail(c, conf_line(k), key, EXPECT_PCRS ": '%.8s' is no PCR index", idx);
        snprintf(ikey, sizeof(ikey), "%s.%u", key, (unsigned)n);
        for (size_t i = 0; i < pc->npcrs; i++)
            if (pc->pcrs[i].index == n)
                return conf_fail(c, conf_line(k), ikey, "expected each PCR once");
        if (conf_scalar(c, val, ikey, EXPECT_PCR, &hex) != 0)
            return -1;
        if (units_hex(hex, pcr->value, sizeof(pcr->value), &pcr->len) != 0 || pcr->len == 0)
            return conf_fail(c, conf_line(val), ikey, EXPECT_PCR);
        pcr->index = (unsigned)n;
        pc->npcrs++; /* the mapping has at most 32 distinct indexes */
    }
    return 0;
}

/* rtmrs: a mapping of RTMR index (0-3, each once) to its 48 bytes in hex. */
static int
node_rtmrs(struct conf_ctx *c, const struct conf_row *row, const yaml_node_t *v, const char *key,
           void *base)
{
    struct attest_policy_conf *pc = base;
    char ikey[CONF_KEY_MAX + 24];

    (void)row;
    if (v->type != YAML_MAPPING_NODE || v->data.mapping.pairs.start == v->data.mapping.pairs.top)
        return conf_fail(c, conf_line(v), key, EXPECT_RTMRS);
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const yaml_node_t *val = yaml_document_get_node(c->doc, p->value);
        const char *idx, *hex;
        uint64_t n;
        size_t len;

        if (conf_scalar(c, k, key, EXPECT_RTMRS, &idx) != 0)
            return -1;
        if (units_uint(idx, ATTEST_RTMR_COUNT - 1, &n) != 0)
            return conf_fail(c, conf_line(k), key, EXPECT_RTMRS ": '%.8s' is no RTMR index", idx);
        snprintf(ikey, sizeof(ikey), "%s.%u", key, (unsigned)n);
        if ((pc->rtmrs_pinned & 1u << n) != 0)
            return conf_fail(c, conf_line(k), ikey, "expected each RTMR once");
        if (conf_scalar(c, val, ikey, EXPECT_RTMR, &hex) != 0)
            return -1;
        if (units_hex(hex, pc->rtmrs[n], sizeof(pc->rtmrs[n]), &len) != 0 ||
            len != sizeof(pc->rtmrs[n]))
            return conf_fail(c, conf_line(val), ikey, EXPECT_RTMR);
        pc->rtmrs_pinned |= 1u << n;
    }
    return 0;
}

static int
node_tcb_status(struct conf_ctx *c, const struct conf_row *row, const yaml_node_t *v,
                const char *key, void *base)
{
    struct attest_policy_conf *pc = base;

    (void)row;
    if (v->type != YAML_SEQUENCE_NODE || v->data.sequence.items.start == v->data.sequence.items.top)
        return conf_fail(c, conf_line(v), key, EXPECT_TCB_STATUS);
    for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
        const yaml_node_t *item = yaml_document_get_node(c->doc, *i);
        const char *name;
        if (conf_scalar(c, item, key, EXPECT_TCB_STATUS, &name) != 0)
            return -1;
        if (attest_tcb_status_add(name, &pc->tcb_status_ok) != 0)
            return conf_fail(c, conf_line(item), key, EXPECT_TCB_STATUS ": '%.40s' is not one",
                             name);
    }
    return 0;
}

APPLIES(policy_nitro_only, attest_policy_nitro_only, struct attest_policy_conf)
APPLIES(policy_report_only, attest_policy_report_only, struct attest_policy_conf)
APPLIES(policy_snp_only, attest_policy_snp_only, struct attest_policy_conf)
APPLIES(policy_tdx_only, attest_policy_tdx_only, struct attest_policy_conf)
BLOCK_CHECK(policy_check, attest_policy_conf_check, struct attest_policy_conf)

#define AP(field) offsetof(struct attest_policy_conf, field)

/* clang-format off */
static const struct conf_row policy_rows[] = {
    {.name = "type", .set = set_policy_type, .off = AP(type), .expect = EXPECT_POLICY_TYPE},
    {.name = "pcrs", .node = node_pcrs, .expect = EXPECT_PCRS, .applies = policy_nitro_only},
    {.name = "measurement", .set = set_hex, .off = AP(measurement), .off2 = AP(has_measurement),
     .max = ATTEST_MEASUREMENT_LEN, .expect = EXPECT_MEASUREMENT, .flags = CONF_HAS,
     .applies = policy_report_only},
    {.name = "rtmrs", .node = node_rtmrs, .expect = EXPECT_RTMRS, .applies = policy_tdx_only},
    {.name = "roots", .set = set_path, .off = AP(roots), .max = ATTEST_POLICY_PATH_MAX,
     .expect = EXPECT_POLICY_PATH},
    {.name = "sim_root", .set = set_path, .off = AP(sim_root), .max = ATTEST_POLICY_PATH_MAX,
     .expect = EXPECT_POLICY_PATH, .applies = policy_nitro_only},
    {.name = "any_image", .set = conf_set_bool, .off = AP(any_image), .expect = EXPECT_BOOL},
    {.name = "allow_debug", .set = conf_set_bool, .off = AP(allow_debug), .expect = EXPECT_BOOL},
    {.name = "min_tcb", .set = set_hex, .off = AP(min_tcb), .off2 = AP(has_min_tcb),
     .max = 8, .expect = EXPECT_MIN_TCB, .flags = CONF_HAS, .applies = policy_snp_only},
    {.name = "vmpl", .set = conf_set_uint, .off = AP(vmpl), .off2 = AP(has_vmpl), .max = 3,
     .expect = "expected an integer from 0 to 3", .flags = CONF_HAS,
     .applies = policy_snp_only},
    {.name = "collateral", .set = set_path, .off = AP(collateral), .max = ATTEST_POLICY_PATH_MAX,
     .expect = EXPECT_POLICY_PATH, .applies = policy_tdx_only},
    {.name = "tcb_status", .node = node_tcb_status, .expect = EXPECT_TCB_STATUS,
     .applies = policy_tdx_only},
};
/* clang-format on */

static const struct conf_block policy_block = {
    ROWS(policy_rows),
    .what = "expected a mapping of policy settings (type, pcrs, measurement, rtmrs, any_image, "
            "roots, sim_root, allow_debug, min_tcb, vmpl, collateral, tcb_status)",
    .check = policy_check,
};

/* ---- routers' routes: a list of {name, target}; --route NAME=TARGET */

/* clang-format off */
static const struct conf_row route_rows[] = {
    {.name = "name", .set = set_route_name, .off = offsetof(struct route, name),
     .expect = EXPECT_ROUTE, .missing = EXPECT_ROUTE, .flags = CONF_REQUIRED},
    {.name = "target", .set = conf_set_endpoint, .off = offsetof(struct route, target),
     .expect = EP_EXPECT, .missing = EXPECT_ROUTE, .ep_check = ep_connectable,
     .flags = CONF_REQUIRED},
};
/* clang-format on */

static const struct conf_block route_block = {
    ROWS(route_rows),
    .what = EXPECT_ROUTE,
    .missing_here = true,
};

static const struct conf_list routes_list = {
    .what = "expected a list of routes",
    .max = ROUTES_MAX,
    .many = "expected at most %d routes",
};

/* Adds r to t unless its name is taken (by what[j]). */
static int
route_append(struct route_table *t, const struct route *r, const char *what, char *msg, size_t len)
{
    const struct route *other = route_table_find(t, r->name);

    if (other != NULL) {
        snprintf(msg, len, "expected a name no other route has; %s[%zu] is '%s' too", what,
                 (size_t)(other - t->routes), r->name);
        return -1;
    }
    if (route_table_add(t, r) != 0)
        return refuse(msg, len, "%s", "out of memory");
    return 0;
}

/* --route NAME=TARGET */
static int
set_route(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    const char *eq = strchr(s, '=');
    char name[TLS_HOST_MAX + 1];
    struct route r;

    memset(&r, 0, sizeof(r)); /* all of it is copied into the table */
    if (eq == NULL || (size_t)(eq - s) >= sizeof(name))
        return refuse(msg, len, "%s", "expected NAME=TARGET");
    memcpy(name, s, (size_t)(eq - s));
    name[eq - s] = '\0';
    if (set_route_name(&route_rows[0], &r, name, msg, len) != 0 ||
        conf_set_endpoint(&route_rows[1], &r, eq + 1, msg, len) != 0)
        return -1;
    return route_append(AT(base, row->off, struct route_table), &r, "--route", msg, len);
}

struct routes_walk {
    struct route_table *t;
    const char *key;
};

static int
route_item(struct conf_ctx *c, const yaml_node_t *item, const char *key, size_t i, void *arg)
{
    struct routes_walk *w = arg;
    struct route r;
    char msg[CONF_MSG_MAX];

    (void)i;
    memset(&r, 0, sizeof(r));
    if (conf_map(c, item, key, &route_block, &r) != 0)
        return -1;
    if (route_append(w->t, &r, w->key, msg, sizeof(msg)) != 0)
        return conf_fail(c, conf_line(item), key, "%s", msg);
    return 0;
}

static int
node_routes(struct conf_ctx *c, const struct conf_row *row, const yaml_node_t *v, const char *key,
            void *base)
{
    struct routes_walk w = {AT(base, row->off, struct route_table), key};

    return conf_seq(c, v, key, &routes_list, route_item, &w);
}

/* ---- relays and routers: one table, each row marked with the blocks
 * that take it */

APPLIES(relay_dgram_only, relay_conf_dgram_only, struct relay_conf)

APPLIES(relay_stream_side_only, relay_conf_stream_side_only, struct relay_conf)

APPLIES(relay_targets_only, relay_conf_targets_only, struct relay_conf)

APPLIES(relay_unproven_only, relay_conf_unproven_only, struct relay_conf)

IN_FORCE(relay_per_client, relay_conf_per_client, struct relay_conf)

BLOCK_CHECK(relay_check, relay_conf_check, struct relay_conf)

BLOCK_CHECK(router_check, router_conf_check, struct relay_conf)

static const struct conf_list allow_list = {
    .what = "expected a list of rules (10.0.0.0/8, cid:16)",
    .max = CONF_ALLOW_MAX,
    .many = "expected at most %d rules",
};

static const struct conf_list egress_list = {
    .what = "expected a list of rules (api.example.com:443, 198.51.100.0/24:80-90)",
    .min = 1,
    .max = CONF_EGRESS_MAX,
    .few = "expected 1-%d rules (an empty list would refuse every destination)",
    .many = "expected 1-%d rules (an empty list would refuse every destination)",
};

static const struct conf_list dns_list = {
    .what = "expected a list of names (example.com, \"*.example.org\")",
    .max = CONF_DNS_ALLOW_MAX,
    .many = "expected at most %d names",
};

static const struct conf_list targets_list = {
    .what = "expected a list of endpoints (vsock:16:5000, vsock:17:5000)",
    .min = 1,
    .max = CONF_TARGETS_MAX,
    .few = "expected 1-%d endpoints",
    .many = "expected 1-%d endpoints",
};

static int
set_balance(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    enum balance *b = AT(base, row->off, enum balance);

    if (strcmp(s, "first") == 0)
        *b = BALANCE_FIRST;
    else if (strcmp(s, "least_conn") == 0)
        *b = BALANCE_LEAST_CONN;
    else
        return refuse(msg, len, "%s", row->expect);
    return 0;
}

#define HEC(field) offsetof(struct health_conf, field)

/* clang-format off */
static const struct conf_row health_rows[] = {
    {.name = "interval", .set = conf_set_duration, .off = HEC(interval_ms), .min = 1,
     .expect = EXPECT_DURATION, .low = EXPECT_ABOVE_0},
    {.name = "timeout", .set = conf_set_duration, .off = HEC(timeout_ms), .min = 1,
     .expect = EXPECT_DURATION, .low = EXPECT_ABOVE_0},
    {.name = "fall", .set = conf_set_uint, .off = HEC(fall), .min = 1, .max = HEALTH_COUNT_MAX,
     .expect = EXPECT_1_TO(100)},
    {.name = "rise", .set = conf_set_uint, .off = HEC(rise), .min = 1, .max = HEALTH_COUNT_MAX,
     .expect = EXPECT_1_TO(100)},
};
/* clang-format on */

static const struct conf_block health_block = {
    ROWS(health_rows),
    .what = "expected a mapping of health check settings (interval, timeout, fall, rise)",
};

/* A rate per second: "20/s", or the bare number. */
static int
set_rate(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    char num[24];
    size_t n = strlen(s);
    uint64_t v;

    if (n >= 2 && strcmp(s + n - 2, "/s") == 0)
        n -= 2;
    if (n >= sizeof(num))
        return refuse(msg, len, "%s", row->expect);
    memcpy(num, s, n);
    num[n] = '\0';
    if (units_uint(num, row->max, &v) != 0)
        return refuse(msg, len, "%s", row->expect);
    *AT(base, row->off, unsigned) = (unsigned)v;
    return 0;
}

#ifdef AIRLOCK_WITH_ATTEST
BLOCK_CHECK(tls_check, relay_tls_conf_check, struct relay_tls_conf)
#define verify_check NULL
#else
/* The static build has no attest/ (no libcbor.a): say so rather than run a
 * relay that cannot attest or verify. */
static int
no_attest(void *base, struct conf_fault *f)
{
    (void)base;
    conf_fault(f, NULL,
               "this airlock is built without attestation (the static build): tls: and "
               "verify: are not available");
    f->at_block = true;
    return -1;
}
#define tls_check no_attest
#define verify_check no_attest
#endif

#define TC(field) offsetof(struct relay_tls_conf, field)

/* clang-format off */
static const struct conf_row tls_rows[] = {
    {.name = "provider", .set = conf_set_name, .off = TC(provider), .max = TLS_PROVIDER_MAX,
     .expect = "expected nitro, tsm or sim (the evidence source)", .missing = "",
     .flags = CONF_REQUIRED},
    {.name = "sim_root", .set = set_path, .off = TC(sim_root), .max = CONF_FILE_PATH_MAX,
     .expect = EXPECT_FILE},
    {.name = "validity", .set = conf_set_duration, .off = TC(validity_ms), .min = 1,
     .expect = EXPECT_DURATION, .low = EXPECT_ABOVE_0},
    {.name = "fresh_evidence_rate", .set = set_rate, .off = TC(fresh_rate),
     .max = TLS_FRESH_RATE_MAX,
     .expect = "expected a rate from 0 to 100000 per second (20/s; 0: no fresh evidence)"},
    {.name = "handshake_timeout", .set = conf_set_duration, .off = TC(handshake_timeout_ms),
     .min = 1, .expect = EXPECT_DURATION, .low = EXPECT_ABOVE_0},
};
/* clang-format on */

#define VC(field) offsetof(struct relay_verify_conf, field)

/* clang-format off */
static const struct conf_row verify_rows[] = {
    {.name = "server_name", .set = set_domain, .off = VC(server_name),
     .expect = "expected a DNS name (the TLS server name, SNI)"},
    {.name = "fresh", .set = conf_set_bool, .off = VC(fresh), .expect = EXPECT_BOOL},
    {.name = "handshake_timeout", .set = conf_set_duration, .off = VC(handshake_timeout_ms),
     .min = 1, .expect = EXPECT_DURATION, .low = EXPECT_ABOVE_0},
    {.name = "policy", .sub = &policy_block, .off = VC(policy),
     .missing = "expected the attestation policy the target must meet", .flags = CONF_REQUIRED},
};
/* clang-format on */

static const struct conf_block verify_block = {
    ROWS(verify_rows),
    .what = "expected a mapping of verification settings (policy, server_name, fresh, "
            "handshake_timeout)",
    .check = verify_check,
};

static const struct conf_block tls_block = {
    ROWS(tls_rows),
    .what = "expected a mapping of attested TLS settings (provider, sim_root, validity, "
            "fresh_evidence_rate, handshake_timeout)",
    .check = tls_check,
};

#define RC(field) offsetof(struct relay_conf, field)
#define BOTH (CONF_RELAY | CONF_ROUTER)

/* clang-format off */
static const struct conf_row relay_rows[] = {
    {.name = "name", .set = conf_set_name, .off = RC(name), .max = CONF_NAME_MAX,
     .expect = EXPECT_NAME, .flags = BOTH},
    {.name = "listen", .set = conf_set_endpoint, .node = node_listen, .off = RC(listen),
     .expect = EXPECT_LISTEN, .missing = EP_EXPECT, .flags = BOTH | CONF_REQUIRED},
    {.name = "target", .set = set_target, .expect = EXPECT_TARGET, .or_key = "targets",
     .missing = EXPECT_TARGET ", or targets: a list of endpoints",
     .flags = CONF_RELAY | CONF_REQUIRED},
    {.name = "targets", .set = set_endpoint_item, .off = RC(targets), .off2 = RC(n_targets),
     .max = CONF_TARGETS_MAX, .expect = EP_EXPECT, .list = &targets_list,
     .ep_check = ep_connectable, .flags = CONF_RELAY},
    {.name = "balance", .set = set_balance, .off = RC(balance),
     .expect = "expected first or least_conn", .applies = relay_targets_only,
     .flags = CONF_RELAY},
    {.name = "health", .sub = &health_block, .off = RC(health), .applies = relay_targets_only,
     .flags = CONF_RELAY},
    {.name = "allow", .set = set_allow, .off = RC(allow), .off2 = RC(n_allow),
     .max = CONF_ALLOW_MAX, .expect = EXPECT_RULE, .list = &allow_list, .flags = BOTH},
    {.name = "max_connections", .set = conf_set_uint, .off = RC(max_connections),
     .max = CONF_MAXCONN_MAX, .expect = EXPECT_MAXCONN, .flags = BOTH},
    {.name = "max_unproven_per_client", .set = conf_set_uint, .off = RC(max_unproven_per_client),
     .max = CONF_MAXCONN_MAX, .expect = EXPECT_MAXCONN, .applies = relay_unproven_only,
     .in_force = relay_per_client, .flags = BOTH},
    {.name = "connect_timeout", .set = conf_set_duration, .off = RC(connect_timeout_ms),
     .expect = EXPECT_DURATION, .flags = BOTH},
    {.name = "idle_timeout", .set = conf_set_duration, .off = RC(idle_timeout_ms),
     .expect = EXPECT_DURATION, .flags = BOTH},
    {.name = "preamble_timeout", .set = conf_set_duration, .off = RC(preamble_timeout_ms),
     .min = 1, .expect = EXPECT_DURATION, .low = EXPECT_ABOVE_0, .flags = BOTH},
    {.name = "keepalive", .set = conf_set_bool, .off = RC(keepalive), .expect = EXPECT_BOOL,
     .flags = BOTH},
    {.name = "splice", .set = conf_set_bool, .off = RC(splice), .expect = EXPECT_BOOL,
     .flags = BOTH},
    {.name = "send_proxy", .set = set_proxy, .off = RC(send_proxy), .expect = EXPECT_PROXY,
     .flags = BOTH},
    {.name = "accept_proxy", .set = set_proxy, .off = RC(accept_proxy), .expect = EXPECT_PROXY,
     .flags = BOTH},
    {.name = "proxy_from", .set = set_allow, .off = RC(proxy_from), .off2 = RC(n_proxy_from),
     .max = CONF_ALLOW_MAX, .expect = EXPECT_RULE, .list = &allow_list, .flags = BOTH},
    {.name = "original_dst", .set = conf_set_bool, .off = RC(original_dst),
     .expect = EXPECT_BOOL, .flags = CONF_RELAY},
    {.name = "egress_allow", .set = set_egress, .off = RC(egress_allow),
     .off2 = RC(n_egress_allow), .max = CONF_EGRESS_MAX, .expect = EXPECT_EGRESS_RULE,
     .list = &egress_list, .flags = CONF_RELAY},
    {.name = "max_datagram", .set = conf_set_uint, .off = RC(max_datagram),
     .max = CONF_DATAGRAM_MAX, .expect = EXPECT_DATAGRAM, .applies = relay_dgram_only,
     .flags = CONF_RELAY},
    {.name = "flow_idle_timeout", .set = conf_set_duration, .off = RC(flow_idle_timeout_ms),
     .expect = EXPECT_DURATION, .applies = relay_dgram_only, .flags = CONF_RELAY},
    {.name = "dns_allow", .set = set_dns, .off = RC(dns_allow), .off2 = RC(n_dns_allow),
     .max = CONF_DNS_ALLOW_MAX, .expect = EXPECT_PATTERN, .list = &dns_list,
     .flags = CONF_RELAY},
    {.name = "max_flows", .set = conf_set_uint, .off = RC(max_flows), .max = CONF_MAX_FLOWS_MAX,
     .expect = EXPECT_1_TO(65536), .applies = relay_stream_side_only, .flags = CONF_RELAY},
    {.name = "max_fds", .set = conf_set_uint, .off = RC(max_fds), .max = CONF_MAX_FDS_MAX,
     .expect = EXPECT_MAX_FDS, .applies = relay_stream_side_only, .flags = CONF_RELAY},
    {.name = "routes", .flag = "route", .set = set_route, .node = node_routes, .off = RC(router.table),
     .expect = "expected NAME=TARGET", .flags = CONF_ROUTER},
    {.name = "default", .set = conf_set_endpoint, .off = RC(router.table.def),
     .off2 = RC(router.table.has_default), .expect = EP_EXPECT, .ep_check = ep_connectable,
     .flags = CONF_ROUTER | CONF_HAS},
    {.name = "peek_timeout", .set = conf_set_duration, .off = RC(router.peek_timeout_ms),
     .min = 1, .expect = EXPECT_DURATION, .low = EXPECT_ABOVE_0, .flags = CONF_ROUTER},
    {.name = "max_hello", .set = conf_set_size, .off = RC(router.max_hello),
     .min = ROUTER_HELLO_MIN, .max = ROUTER_HELLO_MAX, .expect = EXPECT_HELLO,
     .flags = CONF_ROUTER},
    {.name = "directory", .set = conf_set_name, .off = RC(router.table.directory),
     .max = CONF_NAME_MAX, .expect = EXPECT_NAME, .flags = CONF_ROUTER},
    {.name = "domain", .set = set_domain, .off = RC(router.table.domain),
     .expect = EXPECT_DOMAIN, .flags = CONF_ROUTER},
    {.name = "tls", .sub = &tls_block, .off = RC(tls), .off2 = RC(tls.enabled),
     .flags = CONF_RELAY | CONF_HAS},
    {.name = "verify", .sub = &verify_block, .off = RC(verify), .off2 = RC(verify.enabled),
     .flags = CONF_RELAY | CONF_HAS},
};
/* clang-format on */

static const struct conf_block relay_block = {
    ROWS(relay_rows),
    .mask = CONF_RELAY,
    .what = "expected a mapping of relay settings (listen, target, ...)",
    .noun = "relay",
    .check = relay_check,
};

static const struct conf_block router_block = {
    ROWS(relay_rows),
    .mask = CONF_ROUTER,
    .what = "expected a mapping of router settings (listen, routes, default, ...)",
    .noun = "router",
    .check = router_check,
};

/* ---- logs: and log_sinks: */

APPLIES(logs_listen_only, log_conf_listen_only, struct log_conf)

BLOCK_CHECK(logs_check, log_conf_check, struct log_conf)

BLOCK_CHECK(sink_check, log_sink_conf_check, struct log_sink_conf)

#define LC(field) offsetof(struct log_conf, field)
#define SC(field) offsetof(struct log_sink_conf, field)

/* clang-format off */
static const struct conf_row logs_rows[] = {
    {.name = "forward", .set = conf_set_endpoint, .off = LC(forward), .expect = EP_EXPECT,
     .missing = "expected the endpoint to forward log lines to (" EP_FORMS ")",
     .ep_check = ep_connectable, .flags = CONF_REQUIRED},
    {.name = "capture_stderr", .set = conf_set_bool, .off = LC(capture_stderr),
     .expect = EXPECT_BOOL},
    {.name = "listen", .set = conf_set_endpoint, .node = node_listen, .off = LC(listen),
     .off2 = LC(has_listen), .expect = EXPECT_LISTEN, .ep_check = ep_app_listen,
     .flags = CONF_HAS},
    {.name = "buffer", .set = conf_set_size, .off = LC(buffer), .min = LOG_BUFFER_MIN,
     .max = LOG_BUFFER_MAX, .expect = EXPECT_BUFFER},
    {.name = "line_max", .set = conf_set_size, .off = LC(line_max), .min = LOG_LINE_MIN,
     .max = LOG_LINE_MAX, .expect = EXPECT_LINE_MAX},
    {.name = "allow", .set = set_allow, .off = LC(limits.allow), .off2 = LC(limits.n_allow),
     .max = CONF_ALLOW_MAX, .expect = EXPECT_RULE, .list = &allow_list,
     .applies = logs_listen_only},
    {.name = "max_streams", .set = conf_set_uint, .off = LC(limits.max_streams), .min = 1,
     .max = CONF_STREAMS_MAX, .expect = EXPECT_1_TO(4096), .applies = logs_listen_only},
    {.name = "idle_timeout", .set = conf_set_duration, .off = LC(limits.idle_timeout_ms),
     .expect = EXPECT_DURATION, .applies = logs_listen_only},
};
/* clang-format on */

static const struct conf_block logs_block = {
    ROWS(logs_rows),
    .what = "expected a mapping of log settings (forward, capture_stderr, listen, buffer, "
            "line_max)",
    .check = logs_check,
};

/* clang-format off */
static const struct conf_row sink_rows[] = {
    {.name = "name", .set = conf_set_name, .off = SC(name), .max = CONF_NAME_MAX,
     .expect = EXPECT_NAME},
    {.name = "listen", .set = conf_set_endpoint, .node = node_listen, .off = SC(listen),
     .expect = EXPECT_LISTEN, .missing = EP_EXPECT, .ep_check = ep_stream,
     .flags = CONF_REQUIRED},
    {.name = "file", .set = set_path, .off = SC(file), .max = CONF_FILE_PATH_MAX,
     .expect = EXPECT_FILE, .flags = CONF_REQUIRED},
    {.name = "line_max", .set = conf_set_size, .off = SC(line_max), .min = LOG_LINE_MIN,
     .max = LOG_LINE_MAX, .expect = EXPECT_LINE_MAX},
    {.name = "allow", .set = set_allow, .off = SC(limits.allow), .off2 = SC(limits.n_allow),
     .max = CONF_ALLOW_MAX, .expect = EXPECT_RULE, .list = &allow_list},
    {.name = "max_streams", .set = conf_set_uint, .off = SC(limits.max_streams), .min = 1,
     .max = CONF_STREAMS_MAX, .expect = EXPECT_1_TO(4096)},
    {.name = "idle_timeout", .set = conf_set_duration, .off = SC(limits.idle_timeout_ms),
     .expect = EXPECT_DURATION},
    {.name = "mark_unverified", .set = conf_set_bool, .off = SC(mark_unverified),
     .expect = EXPECT_BOOL},
};
/* clang-format on */

static const struct conf_block sink_block = {
    ROWS(sink_rows),
    .what = "expected a mapping of sink settings (listen, file, ...)",
    .noun = "sink",
    .check = sink_check,
};

/* ---- directory: */

static const struct conf_list sentinels_list = {
    .what = "expected a list of sentinel endpoints (tcp:HOST:PORT or unix:/path)",
    .min = 1,
    .max = DIR_SENTINELS_MAX,
    .few = "expected 1-%d sentinels",
    .many = "expected 1-%d sentinels",
};

APPLIES(dir_redis_only, dir_conf_redis_only, struct dir_conf)

BLOCK_CHECK(dir_check, dir_conf_check, struct dir_conf)

#define DC(field) offsetof(struct dir_conf, field)

/* clang-format off */
static const struct conf_row dir_rows[] = {
    {.name = "backend", .set = set_backend, .off = DC(backend), .expect = EXPECT_BACKEND},
    {.name = "redis", .set = conf_set_endpoint, .off = DC(redis), .expect = EP_EXPECT,
     .ep_check = ep_redis, .applies = dir_redis_only},
    {.name = "prefix", .set = set_prefix, .off = DC(prefix), .max = DIR_PREFIX_MAX,
     .expect = EXPECT_PREFIX},
    {.name = "reserve_timeout", .set = conf_set_duration, .off = DC(reserve_timeout_ms),
     .min = 1, .expect = EXPECT_DURATION, .low = "expected more than 0"},
    {.name = "session_ttl", .set = conf_set_duration, .off = DC(session_ttl_ms),
     .expect = EXPECT_DURATION},
    {.name = "session_max", .set = conf_set_duration, .off = DC(session_max_ms),
     .expect = EXPECT_DURATION},
    {.name = "assign_wait", .set = conf_set_duration, .off = DC(assign_wait_ms),
     .expect = EXPECT_DURATION},
    {.name = "max_pending_per_client", .set = conf_set_uint, .off = DC(max_pending_per_client),
     .max = 1024, .expect = EXPECT_PER_CLIENT},
    {.name = "pending_share", .set = conf_set_uint, .off = DC(pending_share), .min = 1,
     .max = 100, .expect = EXPECT_SHARE},
    {.name = "redis_user", .set = set_prefix, .off = DC(redis_user), .max = DIR_NAME_MAX,
     .expect = "expected a redis ACL user name of 1-63 bytes without spaces",
     .applies = dir_redis_only},
    {.name = "redis_password_file", .set = set_path, .off = DC(redis_password_file),
     .max = DIR_PATH_MAX, .expect = "expected the path of a file (mode 0600) holding the password",
     .applies = dir_redis_only},
    {.name = "sentinels", .set = set_endpoint_item, .off = DC(sentinels), .off2 = DC(n_sentinels),
     .max = DIR_SENTINELS_MAX, .expect = EP_EXPECT, .list = &sentinels_list,
     .ep_check = ep_redis, .applies = dir_redis_only},
    {.name = "sentinel_password_file", .set = set_path, .off = DC(sentinel_password_file),
     .max = DIR_PATH_MAX,
     .expect = "expected the path of a file (mode 0600) holding the sentinels' password",
     .applies = dir_redis_only},
    {.name = "sentinel_master", .set = set_prefix, .off = DC(sentinel_master),
     .max = DIR_NAME_MAX, .expect = "expected the master's name at the sentinels (1-63 bytes)",
     .applies = dir_redis_only},
    {.name = "min_replicas_acked", .set = conf_set_uint, .off = DC(min_replicas_acked),
     .max = 16, .expect = "expected 0-16 replicas (WAIT after each assignment)",
     .applies = dir_redis_only},
    {.name = "node", .set = conf_set_name, .off = DC(node), .max = DIR_NODE_MAX,
     .expect = "expected this machine's name in the directory: 1-12 of A-Z a-z 0-9 _ . -",
     .applies = dir_redis_only},
};
/* clang-format on */

static const struct conf_block dir_block = {
    ROWS(dir_rows),
    .what =
        "expected a mapping of directory settings (backend, redis, prefix, reserve_timeout, "
        "session_ttl, session_max, assign_wait, max_pending_per_client, pending_share, redis_user, "
        "redis_password_file, sentinels, sentinel_password_file, sentinel_master, "
        "min_replicas_acked, node)",
    .check = dir_check,
};

/* ---- pools: */

APPLIES(pool_processes_apply, pool_conf_processes_apply, struct pool_conf)

#define EXPECT_PROCESSES "expected an integer from 0 (no limit) to 4194304"
#define EXPECT_CGROUP                                                                              \
    "expected \"" CGROUP_OWN "\" or an absolute cgroup path of at most 511 bytes (/airlock)"
#define EXPECT_MEMORY "expected a size from 1MiB to 1024GiB " EXPECT_SIZE_UNITS
#define EXPECT_CORES "expected a number of cores from 0.01 to 1024, at most two decimals (0.5)"
#define PC(field) offsetof(struct pool_conf, field)
#define HC(field) offsetof(struct hook_conf, field)
#define INST (TMPL_PORT | TMPL_DIR | TMPL_INSTANCE)
#define HOOK_VARS (INST | TMPL_USER | TMPL_UID | TMPL_GID)

static const struct conf_list argv_list = {
    .what = EXPECT_ARGV,
    .min = 1,
    .max = CONF_ARGV_MAX,
    .few = EXPECT_ARGV,
    .many = EXPECT_ARGV,
};

/* clang-format off */
static const struct conf_row event_rows[] = {
    {.name = "ready", .set = set_regex, .off = PC(ready), .expect = EXPECT_REGEX,
     .flags = CONF_REQUIRED},
    {.name = "login", .set = set_regex, .off = PC(login), .min = 1, .expect = EXPECT_REGEX,
     .flags = CONF_REQUIRED},
    {.name = "logout", .set = set_regex, .off = PC(logout), .expect = EXPECT_REGEX},
};
/* clang-format on */

static const struct conf_block event_block = {
    ROWS(event_rows),
    .what = "expected a mapping of rules (ready, login, logout)",
};

/* clang-format off */
static const struct conf_row hook_rows[] = {
    {.name = "command", .set = set_arg, .off = HC(command), .max = HOOK_VARS,
     .expect = EXPECT_ARGV, .list = &argv_list, .flags = CONF_REQUIRED},
    {.name = "timeout", .set = conf_set_duration, .off = HC(timeout_ms), .min = 1,
     .expect = EXPECT_DURATION, .low = "expected a duration of more than 0"},
};
/* clang-format on */

static const struct conf_block hook_block = {
    ROWS(hook_rows),
    .what = "expected a mapping (command, timeout)",
};

#define STC(field) offsetof(struct state_conf, field)
#define EXPECT_STATE_NAMES                                                                         \
    "expected a list of 1-32 file names ({user} allowed; no '/', not starting with '.')"
#define EXPECT_STATE_SIZE "expected a size from 1B to 1024GiB " EXPECT_SIZE_UNITS

static const struct conf_list state_names_list = {
    .what = EXPECT_STATE_NAMES,
    .min = 1,
    .max = CONF_ARGV_MAX,
    .few = EXPECT_STATE_NAMES,
    .many = EXPECT_STATE_NAMES,
};

/* A file name of state: (a template with {user}): a plain name in the
 * instance directory and the store. */
static int
set_state_name(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    if (s[0] == '.' || strchr(s, '/') != NULL)
        return refuse(msg, len, "%s", row->expect);
    return set_arg(row, base, s, msg, len);
}

/* clang-format off */
static const struct conf_row state_rows[] = {
    {.name = "store", .set = set_path, .off = STC(store), .min = 1, .max = CONF_FILE_PATH_MAX,
     .expect = EXPECT_FILE, .flags = CONF_REQUIRED},
    {.name = "fetch_optional", .set = set_state_name, .off = STC(fetch_optional), .max = TMPL_USER,
     .expect = EXPECT_STATE_NAMES, .list = &state_names_list},
    {.name = "fetch", .set = set_state_name, .off = STC(fetch), .max = TMPL_USER,
     .expect = EXPECT_STATE_NAMES, .list = &state_names_list},
    {.name = "store_back", .set = set_state_name, .off = STC(store_back), .max = TMPL_USER,
     .expect = EXPECT_STATE_NAMES, .list = &state_names_list},
    {.name = "max_file_size", .set = conf_set_size, .off = STC(max_file_size), .min = 1,
     .max = STATE_FILE_SIZE_MAX, .expect = EXPECT_STATE_SIZE},
    {.name = "max_session_size", .set = conf_set_size, .off = STC(max_session_size), .min = 1,
     .max = STATE_FILE_SIZE_MAX, .expect = EXPECT_STATE_SIZE},
    {.name = "timeout", .set = conf_set_duration, .off = STC(timeout_ms), .min = 1,
     .expect = EXPECT_DURATION, .low = "expected a duration of more than 0"},
};
/* clang-format on */

static const struct conf_block state_block = {
    ROWS(state_rows),
    .what = "expected a mapping (store, fetch_optional, fetch, store_back, max_file_size, "
            "max_session_size, timeout)",
};

BLOCK_CHECK(pool_check, pool_conf_check, struct pool_conf)

/* A number of cores (cpu_max) into the unsigned at off, in hundredths. */
static int
set_cores(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    uint64_t v;

    if (units_fixed(s, 2, row->max, &v) != 0 || v < row->min)
        return refuse(msg, len, "%s", row->expect);
    *AT(base, row->off, unsigned) = (unsigned)v;
    return 0;
}

/* clang-format off */
static const struct conf_row pool_rows[] = {
    {.name = "name", .set = conf_set_name, .off = PC(name), .max = CONF_NAME_MAX,
     .expect = EXPECT_NAME},
    {.name = "command", .set = set_arg, .off = PC(command), .max = INST | TMPL_UID | TMPL_GID,
     .expect = EXPECT_ARGV, .missing = "", .list = &argv_list, .flags = CONF_REQUIRED},
    {.name = "launcher", .set = set_arg, .off = PC(launcher), .max = INST | TMPL_UID | TMPL_GID,
     .expect = EXPECT_ARGV, .list = &argv_list},
    {.name = "endpoint", .set = set_template, .off = PC(endpoint), .max = INST,
     .expect = EP_EXPECT, .missing = "", .flags = CONF_REQUIRED},
    {.name = "ports", .set = set_range, .off = PC(port_min), .off2 = PC(port_max), .max = 65535,
     .expect = EXPECT_PORTS},
    {.name = "dir", .set = set_path, .off = PC(dir), .min = 1,
     .max = CONF_FILE_PATH_MAX - DIR_NAME_MAX, .expect = EXPECT_FILE, .missing = "",
     .flags = CONF_REQUIRED},
    {.name = "user", .set = set_account, .off = PC(user), .expect = EXPECT_POOL_USER},
    {.name = "uids", .set = set_range, .off = PC(uid_min), .off2 = PC(uid_max),
     .max = POOL_UID_LAST, .expect = EXPECT_UIDS},
    {.name = "group", .set = set_account, .off = PC(group), .expect = EXPECT_GROUP},
    {.name = "max_processes", .set = conf_set_uint, .off = PC(max_processes),
     .max = POOL_PROCESSES_MAX, .expect = EXPECT_PROCESSES, .applies = pool_processes_apply},
    {.name = "cgroup", .set = set_prefix, .off = PC(cgroup), .max = CONF_CGROUP_MAX,
     .expect = EXPECT_CGROUP},
    {.name = "memory_max", .set = conf_set_size, .off = PC(memory_max), .min = POOL_MEMORY_MIN,
     .max = POOL_MEMORY_MAX, .expect = EXPECT_MEMORY},
    {.name = "cpu_max", .set = set_cores, .off = PC(cpu_max), .min = 1, .max = POOL_CPU_MAX,
     .expect = EXPECT_CORES},
    {.name = "min_idle", .set = conf_set_uint, .off = PC(min_idle), .max = CONF_INSTANCES_MAX,
     .expect = EXPECT_COUNT},
    {.name = "max", .set = conf_set_uint, .off = PC(max), .max = CONF_INSTANCES_MAX,
     .expect = EXPECT_COUNT},
    {.name = "max_idle", .set = conf_set_uint, .off = PC(max_idle), .max = CONF_INSTANCES_MAX,
     .expect = EXPECT_COUNT},
    {.name = "cooldown", .set = conf_set_duration, .off = PC(cooldown_ms),
     .expect = EXPECT_DURATION},
    {.name = "replace_delay", .set = conf_set_duration, .off = PC(replace_delay_ms),
     .expect = EXPECT_DURATION},
    {.name = "replace_after_login", .set = conf_set_duration, .off = PC(replace_after_login_ms),
     .expect = EXPECT_DURATION},
    {.name = "start_timeout", .set = conf_set_duration, .off = PC(start_timeout_ms),
     .expect = EXPECT_DURATION},
    {.name = "stop_grace", .set = conf_set_duration, .off = PC(stop_grace_ms),
     .expect = EXPECT_DURATION},
    {.name = "restart_backoff", .set = conf_set_duration, .off = PC(backoff_ms),
     .expect = EXPECT_DURATION},
    {.name = "restart_backoff_max", .set = conf_set_duration, .off = PC(backoff_max_ms),
     .expect = EXPECT_DURATION},
    {.name = "events", .sub = &event_block, .missing = "", .flags = CONF_REQUIRED},
    {.name = "provision", .sub = &hook_block, .off = PC(provision)},
    {.name = "deprovision", .sub = &hook_block, .off = PC(deprovision)},
    {.name = "state", .sub = &state_block, .off = PC(state)},
};
/* clang-format on */

static const struct conf_block pool_block = {
    ROWS(pool_rows),
    .what = "expected a mapping of pool settings (command, endpoint, dir, events, ...)",
    .noun = "pool",
    .check = pool_check,
};

/* ---- proxies: (the HTTP reverse proxy, docs/field-encryption.md) */

#define PXC(field) offsetof(struct http_proxy_conf, field)
#define RTC(field) offsetof(struct http_route_conf, field)
#define EXPECT_METHOD "expected a list of methods (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)"
#define EXPECT_HTTP_PREFIX "expected a path prefix starting with '/' of at most 255 bytes"
#define EXPECT_MEDIA "expected a media type (application/json) of at most 127 bytes"
#define EXPECT_JSON_PATH "expected a JSON path of at most 255 bytes ($.card.number, $..email)"
#define EXPECT_HEAD_SIZE "expected a size from 1KiB to 1MiB " EXPECT_SIZE_UNITS
#define EXPECT_BODY_SIZE "expected a size from 0 to 1GiB " EXPECT_SIZE_UNITS

static int
set_method(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    for (size_t i = 0; i < HTTP_RM_COUNT; i++)
        if (strcmp(s, http_route_method_names[i]) == 0) {
            *AT(base, row->off, unsigned) |= 1u << i;
            return 0;
        }
    return refuse(msg, len, "%s", row->expect);
}

/* A text of 1..row->max-1 bytes; row->min: it must start with '/'. */
static int
set_text(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    if (s[0] == '\0' || strlen(s) >= row->max || (row->min && s[0] != '/') ||
        strpbrk(s, " \t\r\n") != NULL)
        return refuse(msg, len, "%s", row->expect);
    memcpy(AT(base, row->off, char), s, strlen(s) + 1);
    return 0;
}

/* An encrypt path; row->min: deterministic. */
static int
set_field_path(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    struct http_route_conf *rc = base;
    size_t *n = list_room(row, base, msg, len);
    char err[FIELD_ERR_MAX];

    if (n == NULL)
        return -1;
    if (strlen(s) >= HTTP_PATH_MAX)
        return refuse(msg, len, "%s", row->expect);
#ifdef AIRLOCK_WITH_FIELD
    if (field_path_check(s, err) != 0)
        return refuse(msg, len, "%s", err);
#else
    (void)err;
    return refuse(msg, len, "%s", HTTP_NO_FIELD);
#endif
    memcpy(rc->rules[*n].path, s, strlen(s) + 1);
    rc->rules[*n].deterministic = row->min != 0;
    ++*n;
    return 0;
}

static int
set_proxy_mode(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    if (strcmp(s, "inbound") == 0)
        *AT(base, row->off, enum http_mode) = HTTP_INBOUND;
    else if (strcmp(s, "outbound") == 0)
        *AT(base, row->off, enum http_mode) = HTTP_OUTBOUND;
    else
        return refuse(msg, len, "%s", row->expect);
    return 0;
}

static int
set_upstream(const struct conf_row *row, void *base, const char *s, char *msg, size_t len)
{
    const char *why;

    if (http_upstream_parse(s, AT(base, row->off, struct endpoint), &why) != 0)
        return refuse(msg, len, "%s", why);
    return 0;
}

static const struct conf_list method_list = {
    .what = EXPECT_METHOD,
    .min = 1,
    .max = 7,
    .many = EXPECT_METHOD,
};

static const struct conf_list path_list = {
    .what = "expected a list of JSON paths ($.card.number, \"$.items[*].ssn\")",
    .min = 1,
    .max = HTTP_RULES_MAX,
    .many = "expected at most %d paths in all (encrypt and deterministic)",
};

BLOCK_CHECK(hroute_check, http_route_conf_check, struct http_route_conf)
BLOCK_CHECK(proxy_check, http_proxy_conf_check, struct http_proxy_conf)
IN_FORCE(proxy_per_client, http_proxy_per_client, struct http_proxy_conf)

/* clang-format off */
static const struct conf_row hroute_rows[] = {
    {.name = "name", .set = conf_set_name, .off = RTC(name), .max = CONF_NAME_MAX,
     .expect = EXPECT_NAME},
    {.name = "methods", .set = set_method, .off = RTC(methods), .expect = EXPECT_METHOD,
     .list = &method_list},
    {.name = "path", .set = set_text, .off = RTC(prefix), .min = 1, .max = HTTP_PREFIX_MAX,
     .expect = EXPECT_HTTP_PREFIX},
    {.name = "content_type", .set = set_text, .off = RTC(content_type), .max = HTTP_CTYPE_MAX,
     .expect = EXPECT_MEDIA},
    {.name = "encrypt", .set = set_field_path, .off = RTC(rules), .off2 = RTC(n_rules),
     .max = HTTP_RULES_MAX, .expect = EXPECT_JSON_PATH, .list = &path_list},
    {.name = "deterministic", .set = set_field_path, .off = RTC(rules), .off2 = RTC(n_rules),
     .min = 1, .max = HTTP_RULES_MAX, .expect = EXPECT_JSON_PATH, .list = &path_list},
    {.name = "decrypt", .set = conf_set_bool, .off = RTC(decrypt), .expect = EXPECT_BOOL},
    {.name = "keyset", .set = set_path, .off = RTC(keyset), .max = HTTP_FILE_MAX,
     .expect = EXPECT_FILE},
    {.name = "upstream", .set = set_upstream, .off = RTC(upstream),
     .expect = "expected https://HOST[:PORT] or HOST:PORT"},
};
/* clang-format on */

static const struct conf_block hroute_block = {
    ROWS(hroute_rows),
    .what = "expected a mapping of route settings (path, methods, encrypt, decrypt, ...)",
    .check = hroute_check,
};

static int
http_route_item(struct conf_ctx *c, const yaml_node_t *item, const char *key, size_t i, void *arg)
{
    struct http_proxy_conf *pc = arg;

    http_route_conf_defaults(&pc->routes[i]);
    snprintf(pc->routes[i].name, sizeof(pc->routes[i].name), "route%zu", i + 1);
    pc->n_routes = i + 1;
    return conf_map(c, item, key, &hroute_block, &pc->routes[i]);
}

static const struct conf_list http_routes_list = {
    .what = "expected a list of routes (each with path and rules)",
    .min = 1,
    .max = HTTP_ROUTES_MAX,
    .many = "expected at most %d routes",
    .item = http_route_item,
    .size = sizeof(struct http_route_conf),
    .block = &hroute_block,
};

/* clang-format off */
static const struct conf_row proxy_rows[] = {
    {.name = "name", .set = conf_set_name, .off = PXC(name), .max = CONF_NAME_MAX,
     .expect = EXPECT_NAME},
    {.name = "listen", .set = conf_set_endpoint, .node = node_listen, .off = PXC(listen),
     .expect = EXPECT_LISTEN, .missing = EP_EXPECT, .ep_check = ep_stream,
     .flags = CONF_REQUIRED},
    {.name = "mode", .set = set_proxy_mode, .off = PXC(mode), .expect = "expected inbound or outbound"},
    {.name = "backend", .set = conf_set_endpoint, .off = PXC(backend), .expect = EP_EXPECT,
     .ep_check = ep_connectable},
    {.name = "egress_allow", .set = set_egress, .off = PXC(egress_allow),
     .off2 = PXC(n_egress_allow), .max = HTTP_EGRESS_MAX, .expect = EXPECT_EGRESS_RULE,
     .list = &egress_list},
    {.name = "ca_file", .set = set_path, .off = PXC(ca_file), .max = HTTP_FILE_MAX,
     .expect = EXPECT_FILE},
    {.name = "via", .set = conf_set_endpoint, .off = PXC(via), .expect = EP_EXPECT,
     .ep_check = ep_connectable},
    {.name = "max_connections", .set = conf_set_uint, .off = PXC(max_connections),
     .max = HTTP_MAXCONN_MAX, .expect = EXPECT_MAXCONN},
    {.name = "max_unproven_per_client", .set = conf_set_uint,
     .off = PXC(max_unproven_per_client), .max = HTTP_MAXCONN_MAX, .expect = EXPECT_MAXCONN,
     .in_force = proxy_per_client},
    {.name = "accept_proxy", .set = set_proxy, .off = PXC(accept_proxy), .expect = EXPECT_PROXY},
    {.name = "proxy_from", .set = set_allow, .off = PXC(proxy_from), .off2 = PXC(n_proxy_from),
     .max = CONF_ALLOW_MAX, .expect = EXPECT_RULE, .list = &allow_list},
    {.name = "max_header", .set = conf_set_size, .off = PXC(max_header), .min = 1024,
     .max = HTTP_MAX_HEADER_LIMIT, .expect = EXPECT_HEAD_SIZE},
    {.name = "max_headers", .set = conf_set_uint, .off = PXC(max_headers), .min = 1,
     .max = 256, .expect = EXPECT_1_TO(256)},
    {.name = "max_body", .set = conf_set_size, .off = PXC(max_body), .max = 1024 * 1024 * 1024,
     .expect = EXPECT_BODY_SIZE},
    {.name = "max_response", .set = conf_set_size, .off = PXC(max_response),
     .max = 1024 * 1024 * 1024, .expect = EXPECT_BODY_SIZE},
    {.name = "header_timeout", .set = conf_set_duration, .off = PXC(header_timeout_ms), .min = 1,
     .expect = EXPECT_DURATION, .low = EXPECT_ABOVE_0},
    {.name = "body_timeout", .set = conf_set_duration, .off = PXC(body_timeout_ms), .min = 1,
     .expect = EXPECT_DURATION, .low = EXPECT_ABOVE_0},
    {.name = "idle_timeout", .set = conf_set_duration, .off = PXC(idle_timeout_ms), .min = 1,
     .expect = EXPECT_DURATION, .low = EXPECT_ABOVE_0},
    {.name = "connect_timeout", .set = conf_set_duration, .off = PXC(connect_timeout_ms),
     .min = 1, .expect = EXPECT_DURATION, .low = EXPECT_ABOVE_0},
    {.name = "response_timeout", .set = conf_set_duration, .off = PXC(response_timeout_ms),
     .min = 1, .expect = EXPECT_DURATION, .low = EXPECT_ABOVE_0},
    {.name = "keyset", .set = set_path, .off = PXC(keyset), .max = HTTP_FILE_MAX,
     .expect = EXPECT_FILE},
    {.name = "routes", .off = PXC(routes), .list = &http_routes_list},
};
/* clang-format on */

static const struct conf_block proxy_block = {
    ROWS(proxy_rows),
    .what = "expected a mapping of proxy settings (listen, backend or mode: outbound, routes, ...)",
    .noun = "proxy",
    .check = proxy_check,
};

/* ---- the lists of blocks: relays, routers, log_sinks, pools */

/* The number of elements of v, 0 when it is not a list. */
static size_t
seq_len(const yaml_node_t *v)
{
    if (v->type != YAML_SEQUENCE_NODE)
        return 0;
    return (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
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

/* Checks cfg->relays[idx] (relays and routers alike, mapping n at path)
 * against the ones before it: names and listen endpoints must be unique.
 * Each that is not is reported (its first clash). */
static void
check_unique(struct conf_ctx *c, const struct config *cfg, size_t idx, const yaml_node_t *n,
             const char *path)
{
    const struct relay_conf *rc = &cfg->relays[idx];
    size_t name_line = conf_key_line(c, n, "name", CONF_NO_ITEM);
    char key[CONF_KEY_MAX], other[32], ep[ENDPOINT_TEXT_MAX];

    for (size_t j = 0; j < idx; j++) {
        const struct relay_conf *o = &cfg->relays[j];
        if (strcmp(o->name, rc->name) != 0)
            continue;
        entry_path(cfg, j, other, sizeof(other));
        conf_join(key, sizeof(key), path, "name");
        if (name_line != 0)
            conf_fail(c, name_line, key, "expected a unique name; %s is already called '%s'", other,
                      o->name);
        else
            conf_fail(c, conf_line(n), key,
                      "expected a name: the default '%s' is already used by %s", rc->name, other);
        break;
    }
    for (size_t j = 0; j < idx; j++) {
        const struct relay_conf *o = &cfg->relays[j];
        if (!listen_clash(&o->listen, &rc->listen))
            continue;
        endpoint_format(&o->listen, ep, sizeof(ep));
        entry_path(cfg, j, other, sizeof(other));
        conf_join(key, sizeof(key), path, "listen");
        conf_fail(c, conf_key_line(c, n, "listen", CONF_NO_ITEM), key,
                  "expected an endpoint no other relay listens on; %s ('%s') already listens on %s",
                  other, o->name, ep);
        break;
    }
}

/* A relay or router: relays[i] or routers[i], at cfg->relays[n_relays]. */
static int
relay_item(struct conf_ctx *c, const yaml_node_t *item, const char *key, size_t i, void *arg)
{
    struct config *cfg = arg;
    struct relay_conf *rc = &cfg->relays[cfg->n_relays];
    bool router = key[1] == 'o'; /* "routers[i]" */

    relay_conf_defaults(rc);
    rc->router.enabled = router;
    snprintf(rc->name, sizeof(rc->name), "%s%zu", router ? "router" : "relay", i + 1);
    /* counted even when it fails (config_free() frees its routes), so that
     * the walk goes on with the next one at the right index */
    cfg->n_relays++;
    if (conf_map(c, item, key, router ? &router_block : &relay_block, rc) != 0)
        return -1;
    /* a clash is an error of the file, not of this block: the rules
     * between blocks still run (parse_root()) */
    check_unique(c, cfg, cfg->n_relays - 1, item, key);
    return 0;
}

static const struct conf_list relays_list = {
    .what = "expected a list of relays",
    .min = 1,
    .max = CONF_RELAYS_MAX,
    .few = "expected at least one relay",
    .many = "expected at most %d relays",
    .null_empty = true,
    .block = &relay_block,
};

static const struct conf_list routers_list = {
    .what = "expected a list of routers",
    .min = 1,
    .max = CONF_RELAYS_MAX,
    .few = "expected at least one router",
    .many = "expected at most %d relays and routers",
    .block = &router_block,
};

/* Relays and routers share cfg->relays, routers after the relays. */
static int
node_relays(struct conf_ctx *c, const struct conf_row *row, const yaml_node_t *v, const char *key,
            void *base)
{
    struct config *cfg = base;
    size_t n = seq_len(v);
    const struct conf_list *l = row->list;

    if (n + cfg->n_relays > CONF_RELAYS_MAX)
        return conf_fail(c, conf_line(v), key, l->many, CONF_RELAYS_MAX);
    if (n > 0) {
        struct relay_conf *all = realloc(cfg->relays, (cfg->n_relays + n) * sizeof(*all));
        if (all == NULL)
            return conf_fail(c, conf_line(v), key, "out of memory");
        cfg->relays = all;
    }
    return conf_seq(c, v, key, l, relay_item, cfg);
}

/* routers: is walked after relays:, wherever it is (parse_root()). */
static int
node_later(struct conf_ctx *c, const struct conf_row *row, const yaml_node_t *v, const char *key,
           void *base)
{
    (void)c, (void)row, (void)v, (void)key, (void)base;
    return 0;
}

static int
sink_item(struct conf_ctx *c, const yaml_node_t *item, const char *key, size_t i, void *arg)
{
    struct config *cfg = arg;
    struct log_sink_conf *sc = &cfg->sinks[i];

    log_sink_conf_defaults(sc);
    snprintf(sc->name, sizeof(sc->name), "sink%zu", i + 1);
    cfg->n_sinks = i + 1;
    if (conf_map(c, item, key, &sink_block, sc) != 0)
        return -1;
    for (size_t j = 0; j < i; j++) {
        char nkey[CONF_KEY_MAX + 8];
        size_t line = conf_key_line(c, item, "name", CONF_NO_ITEM);
        if (strcmp(cfg->sinks[j].name, sc->name) != 0)
            continue;
        conf_join(nkey, sizeof(nkey), key, "name");
        return conf_fail(c, line ? line : conf_line(item), nkey,
                         "expected a unique name; log_sinks[%zu] is already called '%s'", j,
                         sc->name);
    }
    return 0;
}

static const struct conf_list sinks_list = {
    .what = "expected a list of sinks (each with listen and file)",
    .min = 1,
    .max = CONF_SINKS_MAX,
    .many = "expected at most %d sinks",
    .item = sink_item,
    .size = sizeof(struct log_sink_conf),
    .block = &sink_block,
};

/* pools[i] against the pools before it: names, directories, stores, ports
 * and uids of its own. */
static int
pool_unique(const struct config *cfg, size_t i, struct conf_fault *f)
{
    const struct pool_conf *pc = &cfg->pools[i];

    for (size_t j = 0; j < i; j++) {
        const struct pool_conf *o = &cfg->pools[j];
        if (strcmp(o->name, pc->name) == 0)
            return conf_fault(f, "name",
                              "expected a unique name; pools[%zu] is already called '%s'", j,
                              pc->name);
        if (strcmp(o->dir, pc->dir) == 0)
            return conf_fault(f, "dir", "expected a directory of its own; pools[%zu] uses %s", j,
                              pc->dir);
        if (pc->state.store[0] != '\0' && strcmp(o->state.store, pc->state.store) == 0)
            return conf_fault(
                f, "state.store",
                "expected a store of its own; pools[%zu] uses %s (one pool per store)", j,
                pc->state.store);
        if (pool_conf_ports(pc) != 0 && pool_conf_ports(o) != 0 && pc->port_min <= o->port_max &&
            o->port_min <= pc->port_max)
            return conf_fault(f, "ports", "expected ports no other pool uses; pools[%zu] has %u-%u",
                              j, o->port_min, o->port_max);
        if (pool_conf_uids(pc) != 0 && pool_conf_uids(o) != 0 && pc->uid_min <= o->uid_max &&
            o->uid_min <= pc->uid_max)
            return conf_fault(f, "uids", "expected uids no other pool uses; pools[%zu] has %u-%u",
                              j, o->uid_min, o->uid_max);
    }
    return 0;
}

static int
pool_item(struct conf_ctx *c, const yaml_node_t *item, const char *key, size_t i, void *arg)
{
    struct config *cfg = arg;
    struct conf_fault f;

    pool_conf_defaults(&cfg->pools[i]);
    snprintf(cfg->pools[i].name, sizeof(cfg->pools[i].name), "pool%zu", i + 1);
    cfg->n_pools = i + 1;
    if (conf_map(c, item, key, &pool_block, &cfg->pools[i]) != 0)
        return -1;
    return pool_unique(cfg, i, &f) != 0 ? conf_report(c, item, key, &f) : 0;
}

static const struct conf_list pools_list = {
    .what = "expected a list of pools (each with command, endpoint, dir, events)",
    .min = 1,
    .max = CONF_POOLS_MAX,
    .many = "expected at most %d pools",
    .item = pool_item,
    .size = sizeof(struct pool_conf),
    .block = &pool_block,
};

/* ---- broker: */

static int
ep_broker_listen(const struct endpoint *ep, char *msg, size_t len)
{
    if (ep_stream(ep, msg, len) != 0)
        return -1;
    return ep->kind == EP_HVSOCK ? refuse(msg, len, MSG_HVSOCK_LISTEN, " for the broker") : 0;
}

BLOCK_CHECK(broker_check, broker_conf_check, struct broker_conf)

#define BC(field) offsetof(struct broker_conf, field)
#define BS(field) offsetof(struct broker_secret_conf, field)

/* clang-format off */
static const struct conf_row secret_rows[] = {
    {.name = "name", .set = conf_set_name, .off = BS(name), .max = CONF_NAME_MAX,
     .expect = EXPECT_NAME, .flags = CONF_REQUIRED},
    {.name = "policy", .sub = &policy_block, .off = BS(policy),
     .missing = "expected the attestation policy a requester must meet", .flags = CONF_REQUIRED},
};
/* clang-format on */

static const struct conf_block secret_block = {
    ROWS(secret_rows),
    .what = "expected a mapping {name, policy}",
};

static int
secret_item(struct conf_ctx *c, const yaml_node_t *item, const char *key, size_t i, void *arg)
{
    struct broker_conf *bc = arg;
    struct conf_fault f;

    attest_policy_conf_defaults(&bc->secrets[i].policy);
    bc->n_secrets = i + 1;
    if (conf_map(c, item, key, &secret_block, &bc->secrets[i]) != 0)
        return -1;
    return broker_secret_unique(bc, i, &f) != 0 ? conf_report(c, item, key, &f) : 0;
}

static const struct conf_list secrets_list = {
    .what = "expected a list of secrets (each with name and policy)",
    .min = 1,
    .max = BROKER_SECRETS_MAX,
    .many = "expected at most %d secrets",
    .item = secret_item,
    .size = sizeof(struct broker_secret_conf),
    .block = &secret_block,
};

/* clang-format off */
static const struct conf_row broker_rows[] = {
    {.name = "listen", .set = conf_set_endpoint, .node = node_listen, .off = BC(listen),
     .expect = EXPECT_LISTEN, .missing = EP_EXPECT, .ep_check = ep_broker_listen,
     .flags = CONF_REQUIRED},
    {.name = "dir", .set = set_path, .off = BC(dir), .min = 1, .max = CONF_FILE_PATH_MAX,
     .expect = EXPECT_FILE, .missing = "", .flags = CONF_REQUIRED},
    {.name = "key_file", .set = set_path, .off = BC(key_file), .max = CONF_FILE_PATH_MAX,
     .expect = EXPECT_FILE, .missing = "", .flags = CONF_REQUIRED},
    {.name = "max_connections", .set = conf_set_uint, .off = BC(max_connections), .min = 1,
     .max = BROKER_CONNECTIONS_MAX, .expect = EXPECT_1_TO(4096)},
    {.name = "max_per_peer", .set = conf_set_uint, .off = BC(max_per_peer), .min = 1,
     .max = BROKER_CONNECTIONS_MAX, .expect = EXPECT_1_TO(4096)},
    {.name = "timeout", .set = conf_set_duration, .off = BC(timeout_ms), .min = 1,
     .expect = EXPECT_ABOVE_0},
    {.name = "request_timeout", .set = conf_set_duration, .off = BC(request_timeout_ms), .min = 1,
     .expect = EXPECT_ABOVE_0},
    {.name = "nonce_ttl", .set = conf_set_duration, .off = BC(nonce_ttl_ms), .min = 1,
     .expect = EXPECT_ABOVE_0},
    {.name = "max_message", .set = conf_set_size, .off = BC(max_message),
     .min = BROKER_MESSAGE_MIN, .max = BROKER_MESSAGE_MAX, .expect = EXPECT_MESSAGE},
    {.name = "secrets", .off = BC(secrets), .list = &secrets_list, .missing = "",
     .flags = CONF_REQUIRED},
};
/* clang-format on */

static const struct conf_block broker_block = {
    ROWS(broker_rows),
    .what = "expected a mapping of broker settings (listen, dir, key_file, secrets, ...)",
    .check = broker_check,
};

static int
node_broker(struct conf_ctx *c, const struct conf_row *row, const yaml_node_t *v, const char *key,
            void *base)
{
    struct broker_conf *bc = AT(base, row->off, struct broker_conf);

    if (conf_map(c, v, key, &broker_block, bc) != 0)
        return -1;
    bc->enabled = true;
    return 0;
}

/* proxies[i] against the proxies and relays before it: names and listeners. */
static int
proxy_item(struct conf_ctx *c, const yaml_node_t *item, const char *key, size_t i, void *arg)
{
    struct config *cfg = arg;
    struct http_proxy_conf *pc = &cfg->proxies[i];
    char nkey[CONF_KEY_MAX + 8], ep[ENDPOINT_TEXT_MAX];

    http_proxy_conf_defaults(pc);
    snprintf(pc->name, sizeof(pc->name), "proxy%zu", i + 1);
    cfg->n_proxies = i + 1;
    if (conf_map(c, item, key, &proxy_block, pc) != 0)
        return -1;
    for (size_t j = 0; j < i; j++) {
        if (strcmp(cfg->proxies[j].name, pc->name) != 0)
            continue;
        conf_join(nkey, sizeof(nkey), key, "name");
        return conf_fail(c, conf_line(item), nkey,
                         "expected a unique name; proxies[%zu] is already called '%s'", j,
                         pc->name);
    }
    for (size_t j = 0; j < i + cfg->n_relays; j++) {
        const struct endpoint *o = j < i ? &cfg->proxies[j].listen : &cfg->relays[j - i].listen;
        if (!listen_clash(o, &pc->listen))
            continue;
        endpoint_format(o, ep, sizeof(ep));
        conf_join(nkey, sizeof(nkey), key, "listen");
        return conf_fail(c, conf_key_line(c, item, "listen", CONF_NO_ITEM), nkey,
                         "expected an endpoint nothing else listens on; %s already listens on %s",
                         j < i ? "another proxy" : "a relay", ep);
    }
    return 0;
}

static const struct conf_list proxies_list = {
    .what = "expected a list of proxies (each with listen and backend)",
    .min = 1,
    .max = HTTP_PROXIES_MAX,
    .many = "expected at most %d proxies",
    .item = proxy_item,
    .size = sizeof(struct http_proxy_conf),
    .block = &proxy_block,
};

/* ---- the top level */

static int
node_logs(struct conf_ctx *c, const struct conf_row *row, const yaml_node_t *v, const char *key,
          void *base)
{
    struct log_conf *lc = AT(base, row->off, struct log_conf);

    if (conf_map(c, v, key, &logs_block, lc) != 0)
        return -1;
    lc->enabled = true;
    return 0;
}

#define CF(field) offsetof(struct config, field)

/* clang-format off */
static const struct conf_row top_rows[] = {
    {.name = "threads", .set = conf_set_uint, .off = CF(threads), .max = 256,
     .expect = EXPECT_THREADS},
    {.name = "log_level", .set = set_log_level, .off = CF(log_level), .expect = EXPECT_LEVEL},
    {.name = "log_format", .set = set_log_format, .off = CF(log_format),
     .expect = EXPECT_LOG_FORMAT},
    {.name = "metrics", .set = conf_set_endpoint, .node = node_listen, .off = CF(metrics),
     .off2 = CF(has_metrics), .expect = EXPECT_LISTEN, .ep_check = ep_metrics,
     .flags = CONF_HAS},
    {.name = "drain_timeout", .set = conf_set_duration, .off = CF(drain_timeout_ms),
     .expect = EXPECT_DURATION},
    {.name = "relays", .node = node_relays, .list = &relays_list},
    {.name = "logs", .node = node_logs, .sub = &logs_block, .off = CF(logs)},
    {.name = "log_sinks", .off = CF(sinks), .list = &sinks_list},
    {.name = "routers", .node = node_later, .list = &routers_list},
    {.name = "directory", .sub = &dir_block, .off = CF(directory), .off2 = CF(has_directory),
     .flags = CONF_HAS},
    {.name = "control", .node = node_listen, .off = CF(control), .off2 = CF(has_control),
     .expect = EXPECT_LISTEN, .ep_check = ep_control, .flags = CONF_HAS},
    {.name = "pools", .off = CF(pools), .list = &pools_list},
    {.name = "pool_record", .set = set_path, .off = CF(pool_record), .min = 1,
     .max = CONF_FILE_PATH_MAX, .expect = expect_abs_file},
    {.name = "proxies", .off = CF(proxies), .list = &proxies_list},
    {.name = "resolver_threads", .set = conf_set_uint, .off = CF(resolver_threads), .min = 1,
     .max = 64, .expect = EXPECT_1_TO(64)},
    {.name = "resolver_queue", .set = conf_set_uint, .off = CF(resolver_queue), .min = 1,
     .max = 65536, .expect = EXPECT_1_TO(65536)},
    {.name = "broker", .node = node_broker, .sub = &broker_block, .off = CF(broker)},
};
/* clang-format on */

static const struct conf_block top_block = {
    ROWS(top_rows),
    .what = "expected a mapping of settings (threads, log_level, log_format, metrics, "
            "drain_timeout, relays, routers, logs, log_sinks, directory, control, pools, "
            "pool_record, broker, proxies)",
};

/* ---- the key reference: docs/config.md is checked against these tables */

/* The keys of b (the rows it takes) and of the blocks below them. */
static void
keys_of(const struct conf_block *b, const char *path, config_key_fn fn, void *arg)
{
    char sub[CONF_KEY_MAX];

    for (size_t i = 0; i < b->n; i++) {
        const struct conf_row *r = &b->rows[i];

        if (conf_row(b, r->name, strlen(r->name)) != r)
            continue;
        fn(path, r->name, arg);
        if (r->sub != NULL) {
            conf_join(sub, sizeof(sub), path, r->name);
            keys_of(r->sub, sub, fn, arg);
        }
    }
}

void
config_keys(config_key_fn fn, void *arg)
{
    /* The blocks reached through a list or a node function rather than a
     * row's sub (a list's item callback names its block in code only). */
    static const struct {
        const char *path;
        const struct conf_block *b;
    } roots[] = {
        {"", &top_block},
        {"listen{}", &listen_block},
        {"relays[]", &relay_block},
        {"routers[]", &router_block},
        {"routers[].routes[]", &route_block},
        {"log_sinks[]", &sink_block},
        {"pools[]", &pool_block},
        {"proxies[]", &proxy_block},
        {"proxies[].routes[]", &hroute_block},
        {"broker.secrets[]", &secret_block},
    };

    for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++)
        keys_of(roots[i].b, roots[i].path, fn, arg);
}

/* The value of key in mapping n (and its key node), or NULL. */
static const yaml_node_t *
value_of(const struct conf_ctx *c, const yaml_node_t *n, const char *key, const yaml_node_t **k)
{
    if (n == NULL || n->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        *k = yaml_document_get_node(c->doc, p->key);
        if ((*k)->type == YAML_SCALAR_NODE &&
            strcmp((const char *)(*k)->data.scalar.value, key) == 0)
            return yaml_document_get_node(c->doc, p->value);
    }
    return NULL;
}

/* The listeners of the roles that are not relays (logs.listen, each sink's,
 * the broker's, each proxy's, the control socket) must differ from each
 * other, from every relay's listen and from metrics. */
static int
check_listeners(struct conf_ctx *c, const struct config *cfg, const yaml_node_t *root)
{
    struct owner {
        const struct endpoint *ep;
        char what[CONF_NAME_MAX + 48];
        char key[CONF_KEY_MAX]; /* "": not a log listener (only collides) */
        size_t line;
    };
    size_t n = cfg->n_relays + cfg->n_sinks + cfg->n_proxies + 4, k = 0;
    struct owner *o = calloc(n, sizeof(*o));
    const yaml_node_t *key, *sinks = value_of(c, root, "log_sinks", &key);
    const yaml_node_t *proxies = value_of(c, root, "proxies", &key);
    char ep[ENDPOINT_TEXT_MAX];
    int rc = 0;

    if (o == NULL)
        return conf_fail(c, 1, NULL, "out of memory");
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
        snprintf(o[k].key, sizeof(o[k].key), "logs.listen");
        o[k].line = conf_key_line(c, value_of(c, root, "logs", &key), "listen", CONF_NO_ITEM);
        snprintf(o[k++].what, sizeof(o[0].what), "logs");
    }
    if (cfg->broker.enabled) {
        o[k].ep = &cfg->broker.listen;
        snprintf(o[k].key, sizeof(o[k].key), "broker.listen");
        o[k].line = conf_key_line(c, value_of(c, root, "broker", &key), "listen", CONF_NO_ITEM);
        snprintf(o[k++].what, sizeof(o[0].what), "broker");
    }
    for (size_t i = 0; i < cfg->n_sinks; i++, k++) {
        const yaml_node_t *item =
            yaml_document_get_node(c->doc, sinks->data.sequence.items.start[i]);
        o[k].ep = &cfg->sinks[i].listen;
        snprintf(o[k].key, sizeof(o[k].key), "log_sinks[%zu].listen", i);
        o[k].line = conf_key_line(c, item, "listen", CONF_NO_ITEM);
        snprintf(o[k].what, sizeof(o[k].what), "log_sinks[%zu] ('%s')", i, cfg->sinks[i].name);
    }
    for (size_t i = 0; i < cfg->n_proxies; i++, k++) {
        const yaml_node_t *item =
            yaml_document_get_node(c->doc, proxies->data.sequence.items.start[i]);
        o[k].ep = &cfg->proxies[i].listen;
        snprintf(o[k].key, sizeof(o[k].key), "proxies[%zu].listen", i);
        o[k].line = conf_key_line(c, item, "listen", CONF_NO_ITEM);
        snprintf(o[k].what, sizeof(o[k].what), "proxies[%zu] ('%s')", i, cfg->proxies[i].name);
    }
    if (cfg->has_control) {
        o[k].ep = &cfg->control;
        snprintf(o[k].key, sizeof(o[k].key), "control");
        o[k].line = conf_line(value_of(c, root, "control", &key));
        snprintf(o[k++].what, sizeof(o[0].what), "the control socket");
    }
    for (size_t i = 0; i < k; i++) {
        for (size_t j = 0; o[i].key[0] != '\0' && j < i; j++) {
            if (!listen_clash(o[i].ep, o[j].ep))
                continue;
            endpoint_format(o[j].ep, ep, sizeof(ep));
            rc = conf_fail(c, o[i].line, o[i].key,
                           "expected an endpoint nothing else listens on; %s already listens on %s",
                           o[j].what, ep);
            break;
        }
    }
    free(o);
    return rc;
}

/* The rules that span blocks, once every block is walked: each one that
 * fails is reported. */
static int
check_root(struct conf_ctx *c, const yaml_node_t *root, const struct config *cfg)
{
    const yaml_node_t *k = NULL, *v;
    char ep[ENDPOINT_TEXT_MAX], path[32];
    int rc = 0;

    for (size_t j = 0; !cfg->has_directory && j < cfg->n_relays; j++) {
        if (cfg->relays[j].router.table.directory[0] == '\0')
            continue;
        entry_path(cfg, j, path, sizeof(path));
        rc = conf_fail(c, conf_line(value_of(c, root, "routers", &k)), "routers",
                       "%s ('%s') routes to directory pool '%s': expected a directory: block too",
                       path, cfg->relays[j].name, cfg->relays[j].router.table.directory);
        break;
    }
    if (cfg->n_relays == 0 && !cfg->logs.enabled && cfg->n_sinks == 0 && !cfg->has_directory &&
        cfg->n_pools == 0 && !cfg->broker.enabled && cfg->n_proxies == 0)
        rc = conf_fail(c, conf_line(root), "relays", "expected at least one relay");
    if (cfg->n_pools > 0 && !cfg->has_directory && value_of(c, root, "pools", &k) != NULL)
        rc = conf_fail(c, conf_line(k), "pools",
                       "expected a directory: block too (a login line is believed only for the "
                       "user the directory reserved the instance for)");
    for (size_t j = 0; cfg->has_metrics && j < cfg->n_relays; j++) {
        if (!listen_clash(&cfg->relays[j].listen, &cfg->metrics))
            continue;
        v = value_of(c, root, "metrics", &k);
        endpoint_format(&cfg->relays[j].listen, ep, sizeof(ep));
        rc = conf_fail(c, conf_line(v), "metrics",
                       "expected an endpoint no relay listens on; relays[%zu] ('%s') already "
                       "listens on %s",
                       j, cfg->relays[j].name, ep);
        break;
    }
    return check_listeners(c, cfg, root) != 0 ? -1 : rc;
}

static int
parse_root(struct conf_ctx *c, const yaml_node_t *root, struct config *cfg)
{
    const yaml_node_t *k, *routers;

    size_t errors = c->errs->total;

    if (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0)
        return conf_fail(c, conf_line(root), NULL,
                         "expected settings (a mapping with relays:), found an empty document");
    int rc = conf_map(c, root, "", &top_block, cfg);
    routers = value_of(c, root, "routers", &k);
    if (routers != NULL &&
        node_relays(c, conf_row(&top_block, "routers", 7), routers, "routers", cfg) != 0)
        rc = -1;
    /* the rules between blocks hold only for blocks that are all valid
     * (relays that clash with each other are) */
    if (rc == 0)
        rc = check_root(c, root, cfg);
    return rc != 0 || c->errs->total > errors ? -1 : 0;
}

/* ---- config_dump(): the keys whose setters are this file's */

/* confdump's put: the values of this file's setters, from the struct. */
static int
dump_put(const struct conf_row *row, const void *base, char *buf, size_t len)
{
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    static const char *const formats[] = {"text", "logfmt", "json"};
    const void *at = (const char *)base + row->off;

    if (row->set == set_log_level)
        snprintf(buf, len, "%s", levels[*(const enum log_level *)at]);
    else if (row->set == set_log_format)
        snprintf(buf, len, "%s", formats[*(const enum log_format *)at]);
    else if (row->set == set_proxy)
        snprintf(buf, len, "%s", *(const enum proxy_mode *)at == PROXY_V2 ? "v2" : "none");
    else if (row->set == set_backend)
        snprintf(buf, len, "%s", *(const enum dir_backend *)at == DIR_REDIS ? "redis" : "memory");
    else if (row->set == set_target && ((const struct relay_conf *)base)->egress)
        snprintf(buf, len, "egress");
    else if (row->set == set_target && ((const struct relay_conf *)base)->n_targets > 0)
        return -1; /* targets: instead */
    else if (row->set == set_target)
        endpoint_format(&((const struct relay_conf *)base)->target, buf, len);
    else if (row->set == set_path || row->set == set_account || row->set == set_domain ||
             row->set == set_text || row->set == set_prefix) {
        /* an empty prefix is a setting; elsewhere empty means not given */
        if (((const char *)at)[0] == '\0' && strcmp(row->name, "prefix") != 0)
            return -1;
        snprintf(buf, len, "%s", (const char *)at);
    } else
        return -1;
    return 0;
}

struct dump_arg {
    const struct config *cfg;
    size_t n_relays; /* of relays:, before the routers in cfg->relays */
};

/* confdump's elem: the struct of element i of a list of blocks. */
static const void *
dump_elem(const struct conf_row *row, const void *base, size_t i, void *arg)
{
    const struct dump_arg *a = arg;
    const char *all;

    if (row->list == &relays_list)
        return i < a->n_relays ? &a->cfg->relays[i] : NULL;
    if (row->list == &routers_list)
        return a->n_relays + i < a->cfg->n_relays ? &a->cfg->relays[a->n_relays + i] : NULL;
    all = *(char *const *)(const void *)((const char *)base + row->off);
    return all != NULL && row->list->size != 0 ? all + i * row->list->size : NULL;
}

int
config_dump(const struct config *cfg, struct strbuf *out, char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    int rc = -1;

    if (cfg->text == NULL) {
        snprintf(err, errlen, "no config file (started from the command line)");
        return -1;
    }
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)cfg->text, cfg->text_len);
    if (!yaml_parser_load(&parser, &doc)) { /* it parsed before: only memory fails */
        snprintf(err, errlen, "cannot read the config again: %s",
                 parser.problem ? parser.problem : "out of memory");
        goto out;
    }
    const yaml_node_t *root = yaml_document_get_root_node(&doc);
    const yaml_node_t *relays = NULL;
    for (yaml_node_pair_t *p = root != NULL && root->type == YAML_MAPPING_NODE
                                   ? root->data.mapping.pairs.start
                                   : NULL;
         p != NULL && p < root->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = yaml_document_get_node(&doc, p->key);
        if (k != NULL && k->type == YAML_SCALAR_NODE && k->data.scalar.length == 6 &&
            memcmp(k->data.scalar.value, "relays", 6) == 0)
            relays = yaml_document_get_node(&doc, p->value);
    }
    struct dump_arg a = {
        .cfg = cfg,
        .n_relays =
            relays != NULL && relays->type == YAML_SEQUENCE_NODE
                ? (size_t)(relays->data.sequence.items.top - relays->data.sequence.items.start)
                : 0,
    };
    struct conf_dump d = {.doc = &doc, .out = out, .put = dump_put, .elem = dump_elem, .arg = &a};
    conf_dump_map(&d, &top_block, root, cfg, 0);
    yaml_document_delete(&doc);
    rc = 0;
out:
    yaml_parser_delete(&parser);
    return rc;
}

/* ---- config_parse(), config_load(), config_free() */

/* A config before its file or command line: what has no block defaults. */
static void
config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->log_level = LOG_LVL_INFO;
    cfg->drain_timeout_ms = 30 * 1000;
    cfg->resolver_threads = RESOLVE_THREADS_DEFAULT;
    cfg->resolver_queue = RESOLVE_QUEUE_DEFAULT;
    log_conf_defaults(&cfg->logs);
    dir_conf_defaults(&cfg->directory);
    broker_conf_defaults(&cfg->broker);
}

void
config_free(struct config *cfg)
{
    for (size_t i = 0; cfg->relays != NULL && i < cfg->n_relays; i++)
        route_table_free(&cfg->relays[i].router.table);
    free(cfg->relays);
    free(cfg->sinks);
    free(cfg->pools);
    free(cfg->broker.secrets);
    for (size_t i = 0; cfg->proxies != NULL && i < cfg->n_proxies; i++)
        http_proxy_conf_free(&cfg->proxies[i]);
    free(cfg->proxies);
    free(cfg->text);
    memset(cfg, 0, sizeof(*cfg));
    cfg->relays = NULL;
    cfg->sinks = NULL;
    cfg->pools = NULL;
}

/* ---- the command line: the same rows */

/* What the arguments of one option resolve to. */
struct option_row {
    const struct conf_row *row;
    void *base;
    bool negated; /* --no-KEY of a true-or-false key */
};

/* Finds --flag (without the dashes, '-' for '_' already) among the keys
 * of b (rc), the top level (cfg) and a listener's socket file (perm). */
static bool
find_option(const char *flag, const struct conf_block *b, struct config *cfg,
            struct listen_map *perm, struct option_row *o)
{
    o->negated = false;
    if ((o->row = conf_option(b, flag)) != NULL) {
        o->base = cfg->relays;
    } else if ((o->row = conf_option(&top_block, flag)) != NULL) {
        o->base = cfg;
    } else if (strncmp(flag, "socket_", 7) == 0 &&
               (o->row = conf_option(&listen_block, flag + 7)) != NULL && o->row->off != 0) {
        o->base = perm;
    } else if (b == &router_block && strcmp(flag, "redis") == 0) {
        /* the directory a router asks: --redis is backend: redis */
        o->row = conf_option(&dir_block, flag);
        o->base = &cfg->directory;
        cfg->directory.backend = DIR_REDIS;
    } else if (strncmp(flag, "no_", 3) == 0 && (o->row = conf_option(b, flag + 3)) != NULL &&
               o->row->set == conf_set_bool) {
        o->base = cfg->relays;
        o->negated = true;
    } else {
        o->row = NULL;
    }
    return o->row != NULL && o->row->set != NULL;
}

/* "--idle-timeout" for row idle_timeout. */
static const char *
flag_of(const struct conf_row *r, char *buf, size_t len)
{
    snprintf(buf, len, "--%s", r->flag ? r->flag : r->name);
    for (char *p = buf; *p != '\0'; p++)
        if (*p == '_')
            *p = '-';
    return buf;
}

/* An option that no row of this command has: the other command's, or
 * unknown (with the closest flag of this one). */
static int
unknown_option(const char *arg, const char *flag, const struct conf_block *b, char *err,
               size_t errlen)
{
    const struct conf_block *other = b == &router_block ? &relay_block : &router_block;
    const struct conf_row *hint = conf_closest(b, flag, strlen(flag));
    char shown[CONF_KEY_MAX];

    if (conf_option(other, flag) != NULL) {
        snprintf(err, errlen, "%s: applies to airlock %s only", arg,
                 other == &router_block ? "router" : "relay");
        return -1;
    }
    if (hint == NULL)
        hint = conf_closest(&top_block, flag, strlen(flag));
    if (hint != NULL && hint->set != NULL)
        snprintf(err, errlen, "unrecognized option '%s' (did you mean '%s'?)", arg,
                 flag_of(hint, shown, sizeof(shown)));
    else
        snprintf(err, errlen, "unrecognized option '%s'", arg);
    return -1;
}

#define N_ROWS(rows) (sizeof(rows) / sizeof((rows)[0]))

/* Where the settings of the command line came from, for messages. */
struct given {
    const char *value[N_ROWS(relay_rows)]; /* of each relay row */
    /* the rows an option set so far (find_option(): a relay's or a
     * router's, the top level's, a socket file's, --redis) */
    const struct conf_row *set[N_ROWS(relay_rows) + N_ROWS(top_rows) + N_ROWS(listen_rows) + 1];
    size_t n_set;
};

/* Records that an option set row. A list's option (--allow, --route)
 * adds to it each time; any other given again would quietly replace the
 * first value, where a file's duplicate key is an error: -1 with why in
 * err. */
static int
given_once(struct given *g, const struct conf_row *row, const char *arg, char *err, size_t errlen)
{
    if (row->list != NULL || row->set == set_route)
        return 0;
    for (size_t i = 0; i < g->n_set; i++)
        if (g->set[i] == row) {
            snprintf(err, errlen,
                     "%s: given twice (only a list's option, --allow, --route, "
                     "..., is repeatable)",
                     arg);
            return -1;
        }
    if (g->n_set < N_ROWS(g->set))
        g->set[g->n_set++] = row;
    return 0;
}

/* Reports f (of the relay or router block) as the option that set its key. */
static int
option_fault(const struct given *g, const struct conf_fault *f, char *err, size_t errlen)
{
    char flag[CONF_KEY_MAX];
    const struct conf_row *r = f->key ? conf_row(&relay_block, f->key, strlen(f->key)) : NULL;
    const char *v = r ? g->value[r - relay_rows] : NULL;

    if (f->key == NULL)
        snprintf(err, errlen, "%s", f->msg);
    else if (r != NULL && (r->flags & CONF_REQUIRED) && v != NULL) /* LISTEN, TARGET */
        snprintf(err, errlen, "%s '%s': %s", strcmp(r->name, "listen") == 0 ? "LISTEN" : "TARGET",
                 v, f->msg);
    else if (r != NULL && f->item != CONF_NO_ITEM)
        snprintf(err, errlen, "%s[%zu]: %s", flag_of(r, flag, sizeof(flag)), f->item, f->msg);
    else if (v != NULL)
        snprintf(err, errlen, "%s '%s': %s", flag_of(r, flag, sizeof(flag)), v, f->msg);
    else
        snprintf(err, errlen, "%s: %s", f->key, f->msg);
    return -1;
}

/* Applies --socket-mode, --socket-owner, --socket-group to the listeners
 * with a socket file (LISTEN, --metrics); at least one must have one. */
static int
apply_perm(struct config *cfg, const struct listen_map *perm, char *err, size_t errlen)
{
    struct endpoint *eps[2] = {&cfg->relays[0].listen, cfg->has_metrics ? &cfg->metrics : NULL};
    bool used = false;

    if (perm->perm.mode == 0 && perm->perm.owner[0] == '\0' && perm->perm.group[0] == '\0')
        return 0;
    for (size_t i = 0; i < 2; i++) {
        if (eps[i] == NULL)
            continue;
        eps[i]->perm = perm->perm;
        if (endpoint_perm_check(eps[i]) == NULL)
            used = true;
        else
            memset(&eps[i]->perm, 0, sizeof(eps[i]->perm));
    }
    if (!used)
        snprintf(err, errlen,
                 "--socket-mode, --socket-owner and --socket-group apply to "
                 "unix:/path and hvsock:/path:PORT listeners (LISTEN, --metrics)");
    return used ? 0 : -1;
}

/* Sets one option (its value, or argv[*i + 1]). */
static int
set_option(int argc, char **argv, int *i, const struct conf_block *b, struct config *cfg,
           struct listen_map *perm, struct given *g, char *err, size_t errlen)
{
    char flag[CONF_KEY_MAX], shown[CONF_KEY_MAX], msg[CONF_MSG_MAX];
    const char *arg = argv[*i], *value = strchr(arg, '=');
    size_t len = value ? (size_t)(value - arg) : strlen(arg);
    struct option_row o;

    if (len - 2 >= sizeof(flag))
        return unknown_option(arg, arg + 2, b, err, errlen);
    memcpy(flag, arg + 2, len - 2);
    flag[len - 2] = '\0';
    for (char *p = flag; *p != '\0'; p++)
        if (*p == '-')
            *p = '_';
    if (!find_option(flag, b, cfg, perm, &o))
        return unknown_option(arg, flag, b, err, errlen);
    snprintf(shown, sizeof(shown), "%.*s", (int)len, arg); /* without "=VALUE" */
    arg = shown;
    if (given_once(g, o.row, arg, err, errlen) != 0)
        return -1;
    if (value != NULL && o.negated) {
        snprintf(err, errlen, "%s: takes no value", arg);
        return -1;
    }
    if (value != NULL) {
        value++;
    } else if (o.row->set == conf_set_bool) {
        value = o.negated ? "false" : "true";
    } else if (*i + 1 < argc) {
        value = argv[++*i];
    } else {
        snprintf(err, errlen, "%s: %s", arg, o.row->expect);
        return -1;
    }
    if (o.row->set(o.row, o.base, value, msg, sizeof(msg)) != 0) {
        snprintf(err, errlen, "%s '%s': %s", arg, value, msg);
        return -1;
    }
    if (o.row->flags & CONF_HAS)
        *AT(o.base, o.row->off2, bool) = true;
    if (o.base == cfg->relays) {
        g->value[o.row - relay_rows] = value;
        /* a router's directory route needs the directory */
        cfg->has_directory = cfg->has_directory || o.row->off == RC(router.table.directory);
    }
    return 0;
}

int
config_args(int argc, char **argv, bool router, struct config *cfg, char *err, size_t errlen)
{
    const struct conf_block *b = router ? &router_block : &relay_block;
    struct listen_map perm = {0};
    struct given g = {0};
    struct conf_fault f;
    const char *pos[3];
    char msg[CONF_MSG_MAX];
    int npos = 0, want = router ? 1 : 2;
    bool opts = true;

    config_defaults(cfg);
    err[0] = '\0';
    if ((cfg->relays = calloc(1, sizeof(*cfg->relays))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    cfg->n_relays = 1;
    struct relay_conf *rc = cfg->relays;
    relay_conf_defaults(rc);
    rc->router.enabled = router;
    snprintf(rc->name, sizeof(rc->name), router ? "router1" : "relay1");
    for (int i = 1; i < argc; i++) {
        if (opts && strcmp(argv[i], "--") == 0)
            opts = false;
        else if (opts && strncmp(argv[i], "--", 2) == 0) {
            if (set_option(argc, argv, &i, b, cfg, &perm, &g, err, errlen) != 0)
                goto fail;
        } else if (npos < 3) {
            pos[npos++] = argv[i];
        } else {
            npos++;
        }
    }
    if (npos != want)
        goto fail; /* err "": the usage */
    /* LISTEN and TARGET are the listen and target keys */
    for (int i = 0; i < npos; i++) {
        const struct conf_row *r = conf_row(b, i == 0 ? "listen" : "target", 6);
        if (r->set(r, rc, pos[i], msg, sizeof(msg)) != 0) {
            snprintf(err, errlen, "%s '%s': %s", i == 0 ? "LISTEN" : "TARGET", pos[i], msg);
            goto fail;
        }
        g.value[r - relay_rows] = pos[i];
    }
    /* what a file's listeners are checked for (node_listen()) */
    if (ep_bindable(&rc->listen, msg, sizeof(msg)) != 0) {
        snprintf(err, errlen, "LISTEN '%s': %s", pos[0], msg);
        goto fail;
    }
    if (cfg->has_metrics && ep_bindable(&cfg->metrics, msg, sizeof(msg)) != 0) {
        snprintf(err, errlen, "--metrics: %s", msg);
        goto fail;
    }
    if (cfg->has_metrics && listen_clash(&rc->listen, &cfg->metrics)) {
        endpoint_format(&cfg->metrics, msg, sizeof(msg));
        snprintf(err, errlen,
                 "--metrics '%s': expected an endpoint no relay listens on; LISTEN is '%s'", msg,
                 pos[0]);
        goto fail;
    }
    if (apply_perm(cfg, &perm, err, errlen) != 0)
        goto fail;
    if (router && !cfg->has_directory &&
        (rc->router.table.domain[0] != '\0' || cfg->directory.backend == DIR_REDIS)) {
        snprintf(err, errlen, "--domain and --redis go with --directory");
        goto fail;
    }
    if ((router ? router_conf_check(rc, &f) : relay_conf_check(rc, &f)) != 0) {
        option_fault(&g, &f, err, errlen);
        goto fail;
    }
    for (size_t i = 0; i < b->n; i++) {
        const char *why = relay_rows[i].applies ? relay_rows[i].applies(rc) : NULL;
        if (g.value[i] != NULL && why != NULL) {
            snprintf(err, errlen, "%s: %s", flag_of(&relay_rows[i], msg, sizeof(msg)), why);
            goto fail;
        }
    }
    return 0;

fail:
    config_free(cfg);
    return -1;
}
/* Reader errors (bad UTF-8, control characters) carry a byte offset rather
 * than a mark. */
static size_t
offset_line(const struct conf_ctx *c, size_t off)
{
    size_t line = 1;

    for (size_t i = 0; i < off && i < c->len; i++)
        line += c->text[i] == '\n';
    return line;
}

/* Every block, for hints that name a key wherever it is. */
static const struct conf_block *const all_blocks[] = {
    &top_block,   &relay_block,  &router_block, &listen_block, &policy_block,
    &route_block, &tls_block,    &verify_block, &logs_block,   &sink_block,
    &dir_block,   &event_block,  &hook_block,   &pool_block,   &hroute_block,
    &proxy_block, &secret_block, &broker_block, &state_block,
};

/* The text of line (0-based) of c, its length in *len; "" past the end. */
static const char *
line_text(const struct conf_ctx *c, size_t line, size_t *len)
{
    size_t i = 0;

    for (size_t l = 0; l < line && i < c->len; i++)
        l += c->text[i] == '\n';
    const char *nl = memchr(c->text + i, '\n', c->len - i);
    *len = nl ? (size_t)(nl - (c->text + i)) : c->len - i;
    return c->text + i;
}

/* The length of the plain value at l[from] (n bytes in all): up to a
 * space, a comment or a flow indicator that ends it, at most 48 bytes
 * (a hint shows it). */
static int
token_len(const char *l, size_t n, size_t from, const char *ends)
{
    size_t i = from;

    while (i < n && i - from < 48 && l[i] != '\0' && strchr(ends, l[i]) == NULL)
        i++;
    return (int)(i - from);
}

/* "[2001:db8::]/32" or "[::1]:443" unquoted: a bracketed IPv6 address
 * followed by more, which YAML reads as a list and then junk. Returns
 * where the value starts in l (n bytes), its length in *len; NULL when
 * there is none. */
static const char *
bracket_trap(const char *l, size_t n, int *len)
{
    for (const char *o = memchr(l, '[', n); o != NULL;
         o = memchr(o + 1, '[', n - (size_t)(o + 1 - l))) {
        const char *p = o + 1;
        bool colon = false;
        while (p < l + n && *p != '\0' && strchr("0123456789abcdefABCDEF.:", *p) != NULL)
            colon |= *p++ == ':';
        if (colon && p + 1 < l + n && *p == ']' && (p[1] == '/' || p[1] == ':')) {
            *len = (int)(p + 1 - o) + token_len(l, n, (size_t)(p + 1 - l), " \t,]}#");
            return o;
        }
        if (p + 1 >= l + n)
            break;
    }
    return NULL;
}

/* "KEY:VALUE" without the space, KEY a key of some block: the key's
 * length, else 0. */
static size_t
colon_trap(const char *l, size_t n)
{
    size_t i = 0, k;

    while (i < n && (l[i] == ' ' || l[i] == '-' || l[i] == '{' || l[i] == ','))
        i++;
    for (k = i; k < n && (l[k] == '_' || (l[k] >= 'a' && l[k] <= 'z')); k++)
        ;
    if (k == i || k + 1 >= n || l[k] != ':' || l[k + 1] == ' ')
        return 0;
    for (size_t b = 0; b < sizeof(all_blocks) / sizeof(all_blocks[0]); b++)
        for (size_t r = 0; r < all_blocks[b]->n; r++)
            if (strlen(all_blocks[b]->rows[r].name) == k - i &&
                memcmp(all_blocks[b]->rows[r].name, l + i, k - i) == 0)
                return k;
    return 0;
}

/* What a YAML syntax error most likely comes from among the quoting traps
 * of a config, and how to write it, in buf; "" when none applies. The
 * lines looked at are the error's, the one before it (YAML often finds a
 * mistake a line late) and the line of its context. */
static const char *
yaml_hint(const struct conf_ctx *c, const yaml_parser_t *parser, char *buf, size_t len)
{
    const char *ctx = parser->context ? parser->context : "";
    const char *problem = parser->problem ? parser->problem : "";
    size_t line = parser->problem_mark.line, col = parser->problem_mark.column, n;
    size_t lines[3] = {line, line > 0 ? line - 1 : line, parser->context_mark.line};
    const char *l = line_text(c, line, &n);

    if (strstr(ctx, "alias") != NULL || strstr(problem, "alias") != NULL) {
        const yaml_mark_t *at =
            strstr(ctx, "alias") ? &parser->context_mark : &parser->problem_mark;
        const char *a = line_text(c, at->line, &n);
        if (at->column >= n || a[at->column] != '*')
            return "; unquoted, a value that starts with '*' is a YAML alias (*name): quote it";
        snprintf(buf, len,
                 "; unquoted, a value that starts with '*' is a YAML alias (*name): quote it, "
                 "\"%.*s\"",
                 token_len(a, n, at->column, " \t,]}#"), a + at->column);
        return buf;
    }
    if (memchr(l, '\t', col < n ? col + 1 : n) != NULL)
        return "; a tab: YAML indents with spaces only";
    if (col < n && (l[col] == '@' || l[col] == '`')) {
        snprintf(buf, len,
                 "; '%c' is reserved in YAML: a value that starts with it must be quoted, "
                 "\"%.*s\"",
                 l[col], token_len(l, n, col, " \t,]}#"), l + col);
        return buf;
    }
    for (size_t i = 0; i < 3; i++) {
        const char *v;
        size_t k;
        int vlen;
        l = line_text(c, lines[i], &n);
        if ((v = bracket_trap(l, n, &vlen)) != NULL) {
            snprintf(buf, len, "; unquoted, [...] is a YAML list: quote the whole value, \"%.*s\"",
                     vlen, v);
            return buf;
        }
        if ((k = colon_trap(l, n)) != 0) {
            const char *key = l + k;
            while (key > l && key[-1] != ' ' && key[-1] != '-' && key[-1] != '{' && key[-1] != ',')
                key--;
            snprintf(buf, len,
                     "; line %zu has no space after '%.*s:': YAML reads it as one word; write "
                     "'%.*s: %.*s'",
                     lines[i] + 1, (int)(l + k - key), key, (int)(l + k - key), key,
                     token_len(l, n, k + 1, " \t,}#"), l + k + 1);
            return buf;
        }
    }
    return "";
}

static int
yaml_fail(struct conf_ctx *c, const yaml_parser_t *parser)
{
    const char *problem = parser->problem ? parser->problem : "unknown error";
    char hint[256];

    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        return conf_fail(c, 1, NULL, "out of memory reading YAML");
    case YAML_READER_ERROR:
        return conf_fail(c, offset_line(c, parser->problem_offset), "invalid YAML", "%s", problem);
    default:
        if (parser->context != NULL)
            return conf_fail(c, parser->problem_mark.line + 1, "invalid YAML",
                             "%s (%s on line %zu)%s", problem, parser->context,
                             parser->context_mark.line + 1,
                             yaml_hint(c, parser, hint, sizeof(hint)));
        return conf_fail(c, parser->problem_mark.line + 1, "invalid YAML", "%s%s", problem,
                         yaml_hint(c, parser, hint, sizeof(hint)));
    }
}

/* Counts the lines that start with '%' (a YAML directive can only start
 * a line); fails at the first one past CONF_DIRECTIVES_MAX. */
static int
count_directives(struct conf_ctx *c)
{
    size_t n = 0, line = 1;

    for (size_t i = 0; i < c->len; i++) {
        if (c->text[i] == '%' && (i == 0 || c->text[i - 1] == '\n') && ++n > CONF_DIRECTIVES_MAX)
            return conf_fail(c, line, NULL, "more than %d YAML directives (%%TAG, %%YAML)",
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
prescan(struct conf_ctx *c)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    size_t depth = 0, anchors = 0;
    int rc = -1;

    if (count_directives(c) != 0)
        return -1;
    if (!yaml_parser_initialize(&parser))
        return conf_fail(c, 1, NULL, "out of memory reading YAML");
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
            conf_fail(c, line, NULL, "nesting deeper than %d", CONF_DEPTH_MAX);
            break;
        }
        if (closes && depth > 0)
            depth--;
        if (anchored && ++anchors > CONF_ANCHORS_MAX) {
            conf_fail(c, line, NULL, "more than %d anchors and aliases (&name, *name)",
                      CONF_ANCHORS_MAX);
            break;
        }
    }
    yaml_parser_delete(&parser);
    return rc;
}

int
config_parse_all(const char *name, const char *text, size_t len, struct config *cfg,
                 struct config_errors *errs)
{
    struct conf_ctx c = {
        .name = name ? name : "config",
        .text = text ? text : "",
        .len = text ? len : 0,
        .errs = errs,
        .top = &top_block,
        .relay = &relay_block,
    };
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    const yaml_node_t *root, *more;
    bool have_parser = false, have_doc = false, have_extra = false;
    int rc = -1;

    config_defaults(cfg);
    memset(errs, 0, sizeof(*errs));

    if (prescan(&c) != 0)
        goto fail;
    if (!yaml_parser_initialize(&parser)) {
        conf_fail(&c, 1, NULL, "out of memory reading YAML");
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
        conf_fail(&c, 1, NULL, "expected settings (a mapping with relays:), found an empty file");
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
        conf_fail(&c, conf_line(more), NULL, "expected a single YAML document; found another one");
        goto fail;
    }
    /* for config_dump(): the keys it writes as the file gave them */
    if ((cfg->text = malloc(c.len + 1)) == NULL) {
        conf_fail(&c, 1, NULL, "out of memory");
        goto fail;
    }
    memcpy(cfg->text, c.text, c.len);
    cfg->text_len = c.len;
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

/* The first of errs into err; rc. */
static int
first_error(int rc, const struct config_errors *errs, char *err, size_t errlen)
{
    if (errlen > 0)
        snprintf(err, errlen, "%s", rc != 0 && errs->n > 0 ? errs->e[0].msg : "");
    return rc;
}

int
config_parse(const char *name, const char *text, size_t len, struct config *cfg, char *err,
             size_t errlen)
{
    struct config_errors *errs = malloc(sizeof(*errs));
    int rc;

    if (errs == NULL) {
        memset(cfg, 0, sizeof(*cfg));
        if (errlen > 0)
            snprintf(err, errlen, "%s: out of memory", name ? name : "config");
        return -1;
    }
    rc = first_error(config_parse_all(name, text, len, cfg, errs), errs, err, errlen);
    free(errs);
    return rc;
}

/* A regular file only: a FIFO or a device in its place would block the
 * load (and a reload, the whole main loop) in open() or read(). */
int
config_load_all(const char *path, struct config *cfg, struct config_errors *errs)
{
    char *buf = NULL;
    size_t len = 0;
    int rc;

    memset(cfg, 0, sizeof(*cfg));
    memset(errs, 0, sizeof(*errs));
    rc = file_read_regular(path, 0, CONF_FILE_MAX, &buf, &len);
    if (rc == -EFBIG) {
        config_error_add(errs, 0, "%s: expected a config file of at most %d KiB", path,
                         CONF_FILE_MAX / 1024);
        return -1;
    }
    if (rc != 0) {
        config_error_add(errs, 0, "%s: %s%s", path,
                         rc == -FILE_NOT_REGULAR ? "" : "cannot open: ", file_strerror(rc));
        return -1;
    }
    rc = config_parse_all(path, buf, len, cfg, errs);
    free(buf);
    return rc;
}

int
config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
    struct config_errors *errs = malloc(sizeof(*errs));
    int rc;

    if (errs == NULL) {
        memset(cfg, 0, sizeof(*cfg));
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    rc = first_error(config_load_all(path, cfg, errs), errs, err, errlen);
    free(errs);
    return rc;
}
