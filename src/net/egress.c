/* egress.c - the egress destination allowlist: rule parsing and checks.
 *
 * Pure: no syscalls, no allocation. CIDRs are parsed by allow.c. */
#include "net/egress.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include "net/addr.h"
#include "net/allow.h"

static const char *const verdict_names[EGRESS_VERDICT_COUNT] = {
    [EGRESS_OK] = "ok",
    [EGRESS_NOT_ALLOWED_NAME] = "not_allowed_name",
    [EGRESS_NOT_ALLOWED_ADDRESS] = "not_allowed_address",
    [EGRESS_NOT_ALLOWED_PORT] = "not_allowed_port",
    [EGRESS_PRIVATE_ADDRESS] = "private_address",
    [EGRESS_RESOLVE_FAILED] = "resolve_failed",
    [EGRESS_BAD_DESTINATION] = "bad_destination",
};

const char *
egress_verdict_name(enum egress_verdict v)
{
    return (unsigned)v < EGRESS_VERDICT_COUNT ? verdict_names[v] : "unknown";
}

/* ---- special-purpose ranges (IANA registries), most specific first, so
 * that the metadata addresses are found before the range around them */

struct special {
    int v6;
    uint8_t addr[16];
    uint8_t prefix;
    const char *label;
};

static const struct special specials[] = {
    {0, {169, 254, 169, 254}, 32, "metadata"},
    {1, {0xfd, 0x00, 0x0e, 0xc2, [14] = 0x02, 0x54}, 128, "metadata"}, /* fd00:ec2::254 */
    {0, {0}, 8, "this_network"},
    {0, {10}, 8, "private"},
    {0, {100, 64}, 10, "shared"},
    {0, {127}, 8, "loopback"},
    {0, {169, 254}, 16, "link_local"},
    {0, {172, 16}, 12, "private"},
    {0, {192, 0, 0}, 24, "ietf"},
    {0, {192, 0, 2}, 24, "documentation"},
    {0, {192, 88, 99}, 24, "relay_6to4"},
    {0, {192, 168}, 16, "private"},
    {0, {198, 18}, 15, "benchmarking"},
    {0, {198, 51, 100}, 24, "documentation"},
    {0, {203, 0, 113}, 24, "documentation"},
    {0, {224}, 4, "multicast"},
    {0, {240}, 4, "reserved"},
    {1, {0}, 128, "unspecified"},
    {1, {[15] = 1}, 128, "loopback"},
    {1, {0}, 96, "ipv4_compatible"},
    {1, {0x00, 0x64, 0xff, 0x9b}, 96, "nat64"},
    {1, {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, "nat64"},
    {1, {0x01, 0x00}, 64, "discard"},
    {1, {0x20, 0x01, 0x0d, 0xb8}, 32, "documentation"},
    {1, {0x20, 0x01}, 23, "ietf"},
    {1, {0x20, 0x02}, 16, "relay_6to4"},
    {1, {0xfc}, 7, "private"},
    {1, {0xfe, 0x80}, 10, "link_local"},
    {1, {0xfe, 0xc0}, 10, "site_local"},
    {1, {0xff}, 8, "multicast"},
};

/* ---- names */

static char
lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

static bool
name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_';
}

enum parse_result
egress_name_normalize(const char *in, size_t len, char *out, const char **err)
{
    const char *msg = NULL;
    size_t label = 0;
    bool digits_only = true;

    if (len > 0 && in[len - 1] == '.')
        len--;
    if (len == 0) {
        msg = "expected a host name, found nothing";
        goto fail;
    }
    if (len > EGRESS_NAME_MAX - 1) {
        msg = "expected a host name of at most 253 characters";
        goto fail;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = in[i];
        if (ch == '.') {
            if (label == 0) {
                msg = "expected a host name without empty labels (..)";
                goto fail;
            }
            label = 0;
            digits_only = true;
            out[i] = ch;
            continue;
        }
        if (!name_char(ch)) {
            msg = "expected a host name of letters, digits, '-', '_' and dots";
            goto fail;
        }
        if (++label > 63) {
            msg = "expected host name labels of at most 63 characters";
            goto fail;
        }
        digits_only = digits_only && ch >= '0' && ch <= '9';
        out[i] = lower(ch);
    }
    if (digits_only) {
        /* "10.1" or "2130706433" would be read as an address by inet_aton */
        msg = "expected a host name whose last label is not all digits";
        goto fail;
    }
    out[len] = '\0';
    if (err != NULL)
        *err = NULL;
    return PARSE_OK;

fail:
    if (err != NULL)
        *err = msg;
    return PARSE_INVALID;
}

/* ---- rules */

static bool
parse_u16(const char *p, size_t len, uint16_t *out)
{
    uint32_t v = 0;

    if (len == 0 || len > 5)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (uint32_t)(p[i] - '0');
    }
    if (v == 0 || v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

static bool
parse_ports(const char *p, size_t len, uint16_t *lo, uint16_t *hi)
{
    if (len == 1 && p[0] == '*') {
        *lo = 1;
        *hi = 65535;
        return true;
    }
    const char *dash = memchr(p, '-', len);
    if (dash == NULL) {
        if (!parse_u16(p, len, lo))
            return false;
        *hi = *lo;
        return true;
    }
    return parse_u16(p, (size_t)(dash - p), lo) &&
           parse_u16(dash + 1, (size_t)(p + len - dash - 1), hi) && *lo <= *hi;
}

/* Looks like an IPv4 address or CIDR (digits, dots, one slash): then an
 * error from the CIDR parser is the helpful one. */
static bool
looks_v4(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || p[i] == '.' || p[i] == '/'))
            return false;
    return true;
}

enum parse_result
egress_rule_parse(const char *s, struct egress_rule *r, const char **err)
{
    const char *msg = "expected DEST:PORTS: a host name, *.suffix or CIDR, then a port, "
                      "a range LO-HI or * (api.example.com:443, *.example.com:443, "
                      "198.51.100.0/24:80-90, [2001:db8::]/32:443)";
    char dest[EGRESS_NAME_MAX + 4];

    memset(r, 0, sizeof(*r));
    if (s == NULL)
        goto fail;
    size_t len = strlen(s);
    const char *colon = memrchr(s, ':', len);
    if (colon == NULL || colon == s)
        goto fail;
    size_t dlen = (size_t)(colon - s);
    if (!parse_ports(colon + 1, len - dlen - 1, &r->port_lo, &r->port_hi)) {
        msg = "expected a port 1-65535, a range LO-HI (80-90) or * after the last ':'";
        goto fail;
    }
    if (s[0] == '[' || looks_v4(s, dlen)) {
        struct allow_rule a;
        const char *why = NULL;
        if (dlen >= sizeof(dest)) {
            msg = "expected an address or CIDR before the port";
            goto fail;
        }
        memcpy(dest, s, dlen);
        dest[dlen] = '\0';
        if (s[0] == '[' && memchr(dest, ']', dlen) == NULL) {
            msg = "expected [IPV6]:PORTS or [IPV6]/PREFIX:PORTS";
            goto fail;
        }
        if (allow_parse(dest, &a, &why) != PARSE_OK || a.kind == ALLOW_CID) {
            msg = why != NULL ? why : msg;
            goto fail;
        }
        r->kind = a.kind == ALLOW_V4 ? EGRESS_RULE_V4 : EGRESS_RULE_V6;
        memcpy(r->addr, a.addr, sizeof(r->addr));
        r->prefix = a.prefix;
        goto ok;
    }
    if (memchr(s, ':', dlen) != NULL) {
        msg = "expected an IPv6 address in brackets: [2001:db8::1]:443, [2001:db8::]/32:443";
        goto fail;
    }
    r->kind = EGRESS_RULE_NAME;
    const char *name = s;
    size_t nlen = dlen;
    if (dlen >= 2 && s[0] == '*' && s[1] == '.') {
        r->kind = EGRESS_RULE_SUFFIX;
        name += 2;
        nlen -= 2;
    }
    const char *why = NULL;
    if (egress_name_normalize(name, nlen, dest, &why) != PARSE_OK) {
        msg = memchr(name, '*', nlen) != NULL
                  ? "expected a name or *.suffix: '*' only as a whole first label"
                  : why;
        goto fail;
    }
    if (r->kind == EGRESS_RULE_SUFFIX) {
        if (strlen(dest) + 1 >= sizeof(r->name)) {
            msg = "expected a host name of at most 253 characters";
            goto fail;
        }
        r->name[0] = '.';
        memcpy(r->name + 1, dest, strlen(dest) + 1);
    } else {
        memcpy(r->name, dest, strlen(dest) + 1);
    }

ok:
    msg = NULL;
fail:
    return parse_verdict(err, msg);
}

/* ---- checks */

static bool
port_in(const struct egress_rule *r, uint16_t port)
{
    return port >= r->port_lo && port <= r->port_hi;
}

static bool
name_matches(const struct egress_rule *r, const char *name, size_t len)
{
    if (r->kind == EGRESS_RULE_NAME)
        return strcmp(r->name, name) == 0;
    if (r->kind != EGRESS_RULE_SUFFIX)
        return false;
    size_t slen = strlen(r->name); /* ".suffix": at least one label must precede it */
    return len > slen && memcmp(name + len - slen, r->name, slen) == 0;
}

enum egress_verdict
egress_check_name(const struct egress_rule *rules, size_t n, const char *name, uint16_t port)
{
    size_t len = strlen(name);
    bool matched = false;

    for (size_t i = 0; i < n; i++) {
        if (!name_matches(&rules[i], name, len))
            continue;
        if (port_in(&rules[i], port))
            return EGRESS_OK;
        matched = true;
    }
    return matched ? EGRESS_NOT_ALLOWED_PORT : EGRESS_NOT_ALLOWED_NAME;
}

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

enum egress_verdict
egress_check_addr(const struct egress_rule *rules, size_t n, const struct sockaddr *sa,
                  int from_name, const char **range)
{
    uint8_t addr[16] = {0};
    uint16_t port;
    int v6;
    const struct special *sp = NULL;
    bool matched = false;

    if (range != NULL)
        *range = NULL;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        memcpy(addr, &sin->sin_addr, 4);
        port = ntohs(sin->sin_port);
        v6 = 0;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        memcpy(addr, &sin6->sin6_addr, 16);
        port = ntohs(sin6->sin6_port);
        v6 = 1;
        /* ::ffff:127.0.0.1 reaches 127.0.0.1: check what it carries */
        if (memcmp(addr, v4_mapped, sizeof(v4_mapped)) == 0) {
            memmove(addr, addr + 12, 4);
            memset(addr + 4, 0, 12);
            v6 = 0;
        }
    } else {
        return EGRESS_BAD_DESTINATION;
    }
    if (port == 0)
        return EGRESS_BAD_DESTINATION;

    for (size_t i = 0; i < sizeof(specials) / sizeof(specials[0]); i++) {
        if (specials[i].v6 == v6 && addr_prefix_equal(addr, specials[i].addr, specials[i].prefix)) {
            sp = &specials[i];
            break;
        }
    }
    if (range != NULL && sp != NULL)
        *range = sp->label;
    if (from_name && sp == NULL)
        return EGRESS_OK;

    for (size_t i = 0; i < n; i++) {
        const struct egress_rule *r = &rules[i];
        if (r->kind != (v6 ? EGRESS_RULE_V6 : EGRESS_RULE_V4))
            continue;
        if (!addr_prefix_equal(addr, r->addr, r->prefix))
            continue;
        /* a rule wider than the special range (0.0.0.0/0) does not open it */
        if (sp != NULL && r->prefix < sp->prefix)
            continue;
        if (port_in(r, port))
            return EGRESS_OK;
        matched = true;
    }
    if (matched)
        return EGRESS_NOT_ALLOWED_PORT;
    return sp != NULL ? EGRESS_PRIVATE_ADDRESS : EGRESS_NOT_ALLOWED_ADDRESS;
}

/* egress_rule_equal() compares each field: a new one must be added there,
 * and this size (LP64 ABIs) with it. */
#if defined(__x86_64__) || defined(__aarch64__)
_Static_assert(sizeof(struct egress_rule) == 280, "egress_rule_equal(): compare the new field");
#endif

bool
egress_rule_equal(const struct egress_rule *a, const struct egress_rule *b)
{
    if (a->kind != b->kind || a->port_lo != b->port_lo || a->port_hi != b->port_hi)
        return false;
    if (a->kind == EGRESS_RULE_NAME || a->kind == EGRESS_RULE_SUFFIX)
        return strncmp(a->name, b->name, sizeof(a->name)) == 0;
    return a->prefix == b->prefix && addr_prefix_equal(a->addr, b->addr, a->prefix);
}
