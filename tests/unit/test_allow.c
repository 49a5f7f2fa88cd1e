/* test_allow.c - unit tests for allowlist rules: parsing and matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "guard.h"
#include "net/allow.h"

/* Parses s from a copy whose NUL is the last byte before a PROT_NONE page. */
static enum parse_result
guarded_parse(const char *s, size_t len, struct allow_rule *rule, const char **err)
{
    struct guard g;
    char *copy = (char *)guard_copy(&g, s, len + 1);

    copy[len] = '\0';
    enum parse_result r = allow_parse(copy, rule, err);
    guard_free(&g);
    return r;
}

static struct allow_rule
rule_of(const char *s)
{
    struct allow_rule r;
    const char *err = NULL;

    if (allow_parse(s, &r, &err) != PARSE_OK)
        fail_msg("allow_parse(\"%s\"): %s", s, err);
    return r;
}

struct valid_case {
    const char *in;
    enum allow_kind kind;
    const char *addr; /* inet_pton text of the expected address, NULL for CID */
    uint8_t prefix;
    uint32_t cid;
};

static const struct valid_case valid[] = {
    {"10.0.0.0/8", ALLOW_V4, "10.0.0.0", 8, 0},
    {"192.0.2.7", ALLOW_V4, "192.0.2.7", 32, 0},
    {"192.0.2.7/32", ALLOW_V4, "192.0.2.7", 32, 0},
    {"0.0.0.0/0", ALLOW_V4, "0.0.0.0", 0, 0},
    {"172.16.0.0/12", ALLOW_V4, "172.16.0.0", 12, 0},
    {"192.0.2.6/31", ALLOW_V4, "192.0.2.6", 31, 0},
    {"10.0.0.0/08", ALLOW_V4, "10.0.0.0", 8, 0},
    {"[2001:db8::]/32", ALLOW_V6, "2001:db8::", 32, 0},
    {"2001:db8::/32", ALLOW_V6, "2001:db8::", 32, 0},
    {"2001:db8::1", ALLOW_V6, "2001:db8::1", 128, 0},
    {"[2001:db8::1]", ALLOW_V6, "2001:db8::1", 128, 0},
    {"[2001:db8::1]/128", ALLOW_V6, "2001:db8::1", 128, 0},
    {"::/0", ALLOW_V6, "::", 0, 0},
    {"[::]/0", ALLOW_V6, "::", 0, 0},
    {"fe80::/10", ALLOW_V6, "fe80::", 10, 0},
    {"::ffff:0:0/96", ALLOW_V6, "::ffff:0:0", 96, 0},
    {"cid:16", ALLOW_CID, NULL, 0, 16},
    {"cid:0", ALLOW_CID, NULL, 0, 0},
    {"cid:3", ALLOW_CID, NULL, 0, 3},
    {"cid:4294967294", ALLOW_CID, NULL, 0, 4294967294u},
};

static void
test_parse_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        const struct valid_case *c = &valid[i];
        struct allow_rule r;
        const char *err = "unset";
        uint8_t want[16] = {0};

        print_message("valid: %s\n", c->in);
        assert_int_equal(guarded_parse(c->in, strlen(c->in), &r, &err), PARSE_OK);
        assert_null(err);
        assert_int_equal(r.kind, c->kind);
        switch (c->kind) {
        case ALLOW_V4:
            assert_int_equal(inet_pton(AF_INET, c->addr, want), 1);
            assert_memory_equal(r.addr, want, 16);
            assert_int_equal(r.prefix, c->prefix);
            break;
        case ALLOW_V6:
            assert_int_equal(inet_pton(AF_INET6, c->addr, want), 1);
            assert_memory_equal(r.addr, want, 16);
            assert_int_equal(r.prefix, c->prefix);
            break;
        case ALLOW_CID:
            assert_int_equal(r.cid, c->cid);
            break;
        }
    }
}

#define MSG_SYNTAX                                                                                 \
    "expected an IPv4 address, an IPv6 address (optionally in brackets), either with an "          \
    "optional /PREFIX, or cid:N"
#define MSG_HOST_BITS                                                                              \
    "address has bits set past the prefix length (write 10.0.0.0/8, not 10.0.0.1/8)"

struct invalid_case {
    const char *in;
    const char *err;
};

static const struct invalid_case invalid[] = {
    {"", MSG_SYNTAX},
    {"/8", MSG_SYNTAX},
    {"[]", MSG_SYNTAX},
    {"[]/8", MSG_SYNTAX},
    {"10.0.0.1/8", MSG_HOST_BITS},
    {"192.0.2.7/31", MSG_HOST_BITS},
    {"0.0.0.1/0", MSG_HOST_BITS},
    {"2001:db8::1/32", MSG_HOST_BITS},
    {"[2001:db8::1]/127", MSG_HOST_BITS},
    {"::1/0", MSG_HOST_BITS},
    {"10.0.0.0/33", "IPv4 prefix length must be 0-32"},
    {"10.0.0.0/", "IPv4 prefix length must be 0-32"},
    {"10.0.0.0/-1", "IPv4 prefix length must be 0-32"},
    {"10.0.0.0/8x", "IPv4 prefix length must be 0-32"},
    {"10.0.0.0/8/8", "IPv4 prefix length must be 0-32"},
    {"10.0.0.0/ 8", "IPv4 prefix length must be 0-32"},
    {"10.0.0.0/99999999999", "IPv4 prefix length must be 0-32"},
    {"::/129", "IPv6 prefix length must be 0-128"},
    {"[::]/", "IPv6 prefix length must be 0-128"},
    {"10.0.0", "invalid IPv4 address"},
    {"10.0.0.256", "invalid IPv4 address"},
    {"010.0.0.0/8", "invalid IPv4 address"},
    {" 10.0.0.0/8", "invalid IPv4 address"},
    {"10.0.0.0 /8", "invalid IPv4 address"},
    {"host.example", "invalid IPv4 address"},
    {"2001:db8::g", "invalid IPv6 address"},
    {"[1.2.3.4]", "invalid IPv6 address"},
    {"::1]", "invalid IPv6 address"},
    {"fe80::1%eth0", "invalid IPv6 address"},
    {"[::1", "expected [IPV6] or [IPV6]/PREFIX"},
    {"[::1/64]", "expected [IPV6] or [IPV6]/PREFIX"},
    {"[::1]x", "expected [IPV6] or [IPV6]/PREFIX"},
    {"[", "expected [IPV6] or [IPV6]/PREFIX"},
    {"cid:", "cid must be 0-4294967294"},
    {"cid:x", "cid must be 0-4294967294"},
    {"cid:-1", "cid must be 0-4294967294"},
    {"cid:4294967295", "cid must be 0-4294967294"},
    {"cid:99999999999", "cid must be 0-4294967294"},
    {"cid:any", "cid must be 0-4294967294"},
    {"cid:16 ", "cid must be 0-4294967294"},
    {"CID:16", "invalid IPv6 address"},
};

static void
test_parse_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        const struct invalid_case *c = &invalid[i];
        struct allow_rule r;
        const char *err = NULL;

        print_message("invalid: %s\n", c->in);
        assert_int_equal(guarded_parse(c->in, strlen(c->in), &r, &err), PARSE_INVALID);
        assert_non_null(err);
        assert_string_equal(err, c->err);
    }
}

/* Every prefix of every input, ending right at the guard page. */
static void
check_prefixes(const char *s)
{
    for (size_t n = 0; n <= strlen(s); n++) {
        struct allow_rule r;
        const char *err = NULL;
        enum parse_result res = guarded_parse(s, n, &r, &err);
        if (res == PARSE_OK)
            assert_null(err);
        else
            assert_non_null(err);
    }
}

static void
test_parse_prefixes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
        check_prefixes(valid[i].in);
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        check_prefixes(invalid[i].in);
}

static struct sockaddr_in
v4(const char *s)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(1234)};
    assert_int_equal(inet_pton(AF_INET, s, &sin.sin_addr), 1);
    return sin;
}

static struct sockaddr_in6
v6(const char *s)
{
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(1234)};
    assert_int_equal(inet_pton(AF_INET6, s, &sin6.sin6_addr), 1);
    return sin6;
}

static struct sockaddr_vm
vm(uint32_t cid)
{
    struct sockaddr_vm svm = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = 1234};
    return svm;
}

/* Does the one rule text r match peer address text a (IPv6 when it holds a colon)? */
static int
match_ip(const char *r, const char *a)
{
    struct allow_rule rule = rule_of(r);

    if (strchr(a, ':') != NULL) {
        struct sockaddr_in6 sin6 = v6(a);
        return allow_match(&rule, 1, (const struct sockaddr *)&sin6);
    }
    struct sockaddr_in sin = v4(a);
    return allow_match(&rule, 1, (const struct sockaddr *)&sin);
}

static void
test_match_v4(void **state)
{
    (void)state;
    assert_true(match_ip("0.0.0.0/0", "0.0.0.0"));
    assert_true(match_ip("0.0.0.0/0", "255.255.255.255"));
    assert_true(match_ip("192.0.2.7", "192.0.2.7"));
    assert_false(match_ip("192.0.2.7", "192.0.2.6"));
    assert_false(match_ip("192.0.2.7", "192.0.2.8"));
    assert_true(match_ip("192.0.2.7/32", "192.0.2.7"));
    assert_true(match_ip("192.0.2.6/31", "192.0.2.6"));
    assert_true(match_ip("192.0.2.6/31", "192.0.2.7"));
    assert_false(match_ip("192.0.2.6/31", "192.0.2.5"));
    assert_false(match_ip("192.0.2.6/31", "192.0.2.8"));
    assert_true(match_ip("10.0.0.0/8", "10.255.255.255"));
    assert_false(match_ip("10.0.0.0/8", "11.0.0.0"));
    assert_false(match_ip("10.0.0.0/8", "9.255.255.255"));
    assert_true(match_ip("172.16.0.0/12", "172.31.255.255"));
    assert_false(match_ip("172.16.0.0/12", "172.32.0.0"));
    assert_false(match_ip("172.16.0.0/12", "172.15.255.255"));
    assert_true(match_ip("128.0.0.0/1", "200.0.0.1"));
    assert_false(match_ip("128.0.0.0/1", "127.255.255.255"));
    /* IPv4 rules never match plain IPv6 peers, even ones that embed the address. */
    assert_false(match_ip("0.0.0.0/0", "::1"));
    assert_false(match_ip("0.0.0.0/0", "::"));
    assert_false(match_ip("10.0.0.0/8", "::10.0.0.1"));
    assert_false(match_ip("10.0.0.0/8", "64:ff9b::10.0.0.1"));
}

static void
test_match_v4_mapped(void **state)
{
    (void)state;
    assert_true(match_ip("10.0.0.0/8", "::ffff:10.1.2.3"));
    assert_false(match_ip("10.0.0.0/8", "::ffff:11.1.2.3"));
    assert_true(match_ip("192.0.2.7", "::ffff:192.0.2.7"));
    assert_false(match_ip("192.0.2.7", "::ffff:192.0.2.8"));
    assert_true(match_ip("0.0.0.0/0", "::ffff:0.0.0.0"));
    /* Not mapped: ::fffe:... and ::1:ffff:... */
    assert_false(match_ip("10.0.0.0/8", "::fffe:10.1.2.3"));
    assert_false(match_ip("10.0.0.0/8", "0:0:0:0:1:ffff:a01:203"));
    /* IPv6 rules still see the raw mapped address. */
    assert_true(match_ip("::ffff:0:0/96", "::ffff:10.1.2.3"));
    assert_true(match_ip("::/0", "::ffff:10.1.2.3"));
    assert_false(match_ip("2001:db8::/32", "::ffff:10.1.2.3"));
}

static void
test_match_v6(void **state)
{
    (void)state;
    assert_true(match_ip("::/0", "::"));
    assert_true(match_ip("::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    assert_true(match_ip("2001:db8::1", "2001:db8::1"));
    assert_false(match_ip("2001:db8::1", "2001:db8::2"));
    assert_false(match_ip("2001:db8::1", "2001:db8::"));
    assert_true(match_ip("[2001:db8::1]/128", "2001:db8::1"));
    assert_true(match_ip("2001:db8::/127", "2001:db8::1"));
    assert_false(match_ip("2001:db8::/127", "2001:db8::2"));
    assert_true(match_ip("[2001:db8::]/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
    assert_false(match_ip("[2001:db8::]/32", "2001:db9::"));
    assert_true(match_ip("fe80::/10", "febf::1"));
    assert_false(match_ip("fe80::/10", "fec0::1"));
    /* IPv6 rules never match IPv4 peers, not even ::/0. */
    assert_false(match_ip("::/0", "127.0.0.1"));
    assert_false(match_ip("::ffff:0:0/96", "127.0.0.1"));
}

static void
test_match_cid(void **state)
{
    (void)state;
    struct allow_rule rules[] = {rule_of("cid:3"), rule_of("cid:16")};
    struct sockaddr_vm a = vm(3), b = vm(16), c = vm(4), any = vm(VMADDR_CID_ANY);
    struct sockaddr_in sin = v4("0.0.0.3");

    assert_true(allow_match(rules, 2, (const struct sockaddr *)&a));
    assert_true(allow_match(rules, 2, (const struct sockaddr *)&b));
    assert_false(allow_match(rules, 2, (const struct sockaddr *)&c));
    assert_false(allow_match(rules, 2, (const struct sockaddr *)&any));
    assert_false(allow_match(rules, 1, (const struct sockaddr *)&b));
    /* CID rules do not match IP peers, IP rules do not match vsock peers. */
    assert_false(allow_match(rules, 2, (const struct sockaddr *)&sin));
    struct allow_rule all[] = {rule_of("0.0.0.0/0"), rule_of("::/0")};
    assert_false(allow_match(all, 2, (const struct sockaddr *)&a));
}

static void
test_match_list(void **state)
{
    (void)state;
    struct allow_rule rules[] = {rule_of("10.0.0.0/8"), rule_of("2001:db8::/32"), rule_of("cid:3")};
    size_t n = sizeof(rules) / sizeof(rules[0]);
    struct sockaddr_in in_a = v4("10.9.8.7"), in_b = v4("192.0.2.1");
    struct sockaddr_in6 in6_a = v6("2001:db8::5"), in6_b = v6("::ffff:10.0.0.1"), in6_c = v6("::1");
    struct sockaddr_vm vm_a = vm(3), vm_b = vm(2);
    struct sockaddr_un sun = {.sun_family = AF_UNIX, .sun_path = "/tmp/x"};
    struct sockaddr unspec = {.sa_family = AF_UNSPEC};

    assert_true(allow_match(rules, n, (const struct sockaddr *)&in_a));
    assert_false(allow_match(rules, n, (const struct sockaddr *)&in_b));
    assert_true(allow_match(rules, n, (const struct sockaddr *)&in6_a));
    assert_true(allow_match(rules, n, (const struct sockaddr *)&in6_b));
    assert_false(allow_match(rules, n, (const struct sockaddr *)&in6_c));
    assert_true(allow_match(rules, n, (const struct sockaddr *)&vm_a));
    assert_false(allow_match(rules, n, (const struct sockaddr *)&vm_b));
    /* Other families never match a non-empty list. */
    assert_false(allow_match(rules, n, (const struct sockaddr *)&sun));
    assert_false(allow_match(rules, n, &unspec));
    assert_false(allow_match(rules, n, NULL));

    /* An empty list allows everyone, whatever the family. */
    assert_true(allow_match(NULL, 0, (const struct sockaddr *)&in_b));
    assert_true(allow_match(rules, 0, (const struct sockaddr *)&in6_c));
    assert_true(allow_match(NULL, 0, (const struct sockaddr *)&vm_b));
    assert_true(allow_match(NULL, 0, (const struct sockaddr *)&sun));
    assert_true(allow_match(NULL, 0, NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),     cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_parse_prefixes),  cmocka_unit_test(test_match_v4),
        cmocka_unit_test(test_match_v4_mapped), cmocka_unit_test(test_match_v6),
        cmocka_unit_test(test_match_cid),       cmocka_unit_test(test_match_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
