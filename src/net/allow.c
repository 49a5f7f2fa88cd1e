/* allow.c - client allowlists: parse CIDR and CID rules, match peer addresses.
 *
 * Pure: no syscalls, no allocation. inet_pton() is plain libc string code. */
#include "net/allow.h"

#include <arpa/inet.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include "net/addr.h"

#define CID_MAX 4294967294u /* 4294967295 is VMADDR_CID_ANY, never a peer */

/* A rule such as 10.0.0.1/8 is rejected rather than masked: it is most likely a typo for
 * either 10.0.0.1/32 or 10.0.0.0/8, and guessing would widen or narrow access silently. */
static bool
host_bits_zero(const uint8_t *addr, unsigned prefix, unsigned len)
{
    for (unsigned bit = prefix; bit < len; bit++)
        if (addr[bit / 8] & (0x80 >> (bit % 8)))
            return false;
    return true;
}

enum parse_result
allow_parse(const char *s, struct allow_rule *rule, const char **err)
{
    const char *msg = "expected an IPv4 address, an IPv6 address (optionally in brackets), "
                      "either with an optional /PREFIX, or cid:N";

    memset(rule, 0, sizeof(*rule));
    if (s == NULL)
        goto fail;
    size_t len = strlen(s);

    if (len >= 4 && memcmp(s, "cid:", 4) == 0) {
        rule->kind = ALLOW_CID;
        if (!addr_parse_decimal(s + 4, len - 4, CID_MAX, &rule->cid)) {
            msg = "cid must be 0-4294967294";
            goto fail;
        }
        goto ok;
    }

    const char *addr = s, *slash = memchr(s, '/', len);
    size_t addr_len = slash != NULL ? (size_t)(slash - s) : len;
    if (addr_len > 0 && addr[0] == '[') {
        /* Brackets are only for IPv6, and must close right before the prefix or the end. */
        if (addr_len < 2 || addr[addr_len - 1] != ']') {
            msg = "expected [IPV6] or [IPV6]/PREFIX";
            goto fail;
        }
        addr++;
        addr_len -= 2;
        rule->kind = ALLOW_V6;
    } else {
        rule->kind = memchr(addr, ':', addr_len) != NULL ? ALLOW_V6 : ALLOW_V4;
    }
    if (addr_len == 0)
        goto fail;

    unsigned bits = rule->kind == ALLOW_V4 ? 32 : 128;
    if (!addr_parse_ip(rule->kind == ALLOW_V4 ? AF_INET : AF_INET6, addr, addr_len, rule->addr)) {
        msg = rule->kind == ALLOW_V4 ? "invalid IPv4 address" : "invalid IPv6 address";
        goto fail;
    }
    rule->prefix = (uint8_t)bits;
    if (slash != NULL) {
        uint32_t prefix;
        if (!addr_parse_decimal(slash + 1, (size_t)(s + len - slash - 1), bits, &prefix)) {
            msg = rule->kind == ALLOW_V4 ? "IPv4 prefix length must be 0-32"
                                         : "IPv6 prefix length must be 0-128";
            goto fail;
        }
        rule->prefix = (uint8_t)prefix;
    }
    if (!host_bits_zero(rule->addr, rule->prefix, bits)) {
        msg = "address has bits set past the prefix length (write 10.0.0.0/8, not 10.0.0.1/8)";
        goto fail;
    }

ok:
    msg = NULL;
fail:
    return parse_verdict(err, msg);
}

/* The peer, reduced to what rules compare against. */
struct peer {
    bool has_v4, has_v6, has_cid;
    uint8_t v4[4];
    uint8_t v6[16];
    uint32_t cid;
};

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static struct peer
peer_of(const struct sockaddr *sa)
{
    struct peer p = {0};

    switch (sa->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        memcpy(p.v4, &sin->sin_addr, 4);
        p.has_v4 = true;
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        memcpy(p.v6, &sin6->sin6_addr, 16);
        p.has_v6 = true;
        /* A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; they must meet the
         * same IPv4 rules as on a v4-only socket. IPv6 rules still see the raw address. */
        if (memcmp(p.v6, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0) {
            memcpy(p.v4, p.v6 + 12, 4);
            p.has_v4 = true;
        }
        break;
    }
    case AF_VSOCK: {
        const struct sockaddr_vm *svm = (const struct sockaddr_vm *)sa;
        p.cid = svm->svm_cid;
        p.has_cid = true;
        break;
    }
    default:
        break;
    }
    return p;
}

int
allow_match(const struct allow_rule *rules, size_t n, const struct sockaddr *sa)
{
    if (n == 0)
        return 1;
    if (sa == NULL)
        return 0;

    struct peer p = peer_of(sa);
    for (size_t i = 0; i < n; i++) {
        const struct allow_rule *r = &rules[i];
        switch (r->kind) {
        case ALLOW_V4:
            if (p.has_v4 && addr_prefix_equal(p.v4, r->addr, r->prefix > 32 ? 32 : r->prefix))
                return 1;
            break;
        case ALLOW_V6:
            if (p.has_v6 && addr_prefix_equal(p.v6, r->addr, r->prefix > 128 ? 128 : r->prefix))
                return 1;
            break;
        case ALLOW_CID:
            if (p.has_cid && p.cid == r->cid)
                return 1;
            break;
        }
    }
    return 0;
}

/* allow_rule_equal() compares each field: a new one must be added there,
 * and this size (LP64 ABIs) with it. */
#if defined(__x86_64__) || defined(__aarch64__)
_Static_assert(sizeof(struct allow_rule) == 28, "allow_rule_equal(): compare the new field");
#endif

bool
allow_rule_equal(const struct allow_rule *a, const struct allow_rule *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == ALLOW_CID)
        return a->cid == b->cid;
    return a->prefix == b->prefix && addr_prefix_equal(a->addr, b->addr, a->prefix);
}

bool
allow_rules_equal(const struct allow_rule *a, const struct allow_rule *b, size_t n)
{
    for (size_t i = 0; i < n && i < CONF_ALLOW_MAX; i++)
        if (!allow_rule_equal(&a[i], &b[i]))
            return false;
    return true;
}

int
allow_check(enum ep_kind kind, const struct allow_rule *rules, size_t n, const char *key,
            struct conf_fault *f)
{
    if (n > CONF_ALLOW_MAX)
        return conf_fault(f, key, "expected at most %d rules", CONF_ALLOW_MAX);
    if (n > 0 && kind != EP_TCP && kind != EP_UDP && kind != EP_VSOCK)
        return conf_fault(f, key,
                          "allow applies to tcp, udp and vsock listeners; "
                          "restrict a unix socket with file permissions");
    for (size_t i = 0; i < n; i++) {
        bool is_cid = rules[i].kind == ALLOW_CID;
        int rc = 0;
        if ((kind == EP_TCP || kind == EP_UDP) && is_cid)
            rc = conf_fault(f, key,
                            "expected a CIDR or address: a tcp or udp listener sees IP peers, "
                            "cid: rules are for vsock listeners");
        if (kind == EP_VSOCK && !is_cid)
            rc = conf_fault(f, key,
                            "expected a cid:N rule: a vsock listener sees CID peers, "
                            "CIDRs are for tcp listeners");
        if (rc != 0) {
            f->item = i;
            return rc;
        }
    }
    return 0;
}

int
allow_proxy_from_check(enum ep_kind kind, bool accept_proxy, const struct allow_rule *rules,
                       size_t n, struct conf_fault *f)
{
    if (n > 0 && !accept_proxy)
        return conf_fault(f, "proxy_from", "applies with accept_proxy: v2");
    return allow_check(kind, rules, n, "proxy_from", f);
}
