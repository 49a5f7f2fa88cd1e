/* test_egress.c - unit tests for the egress allowlist: rule parsing, host
 * name normalization, and the checks of names and addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "guard.h"
#include "net/egress.h"

/* Parses s from a copy whose NUL is the last byte before a PROT_NONE page. */
static enum parse_result
guarded_rule(const char *s, size_t len, struct egress_rule *r, const char **err)
{
    struct guard g;
    char *copy = (char *)guard_copy(&g, s, len + 1);

    copy[len] = '\0';
    enum parse_result res = egress_rule_parse(copy, r, err);
    guard_free(&g);
    return res;
}

/* Normalizes s[0..len) placed right before a PROT_NONE page (no NUL). */
static enum parse_result
guarded_name(const char *s, size_t len, char *out, const char **err)
{
    struct guard g;
    char *copy = (char *)guard_copy(&g, s, len);
    enum parse_result res = egress_name_normalize(copy, len, out, err);

    guard_free(&g);
    return res;
}

struct rule_case {
    const char *in;
    enum egress_rule_kind kind;
    const char *what; /* the name, or the inet_pton text of the address */
    uint8_t prefix;
    uint16_t lo, hi;
};

static const struct rule_case valid[] = {
    {"api.example.com:443", EGRESS_RULE_NAME, "api.example.com", 0, 443, 443},
    {"API.Example.COM.:443", EGRESS_RULE_NAME, "api.example.com", 0, 443, 443},
    {"*.s3.amazonaws.com:443", EGRESS_RULE_SUFFIX, ".s3.amazonaws.com", 0, 443, 443},
    {"*.com:1-65535", EGRESS_RULE_SUFFIX, ".com", 0, 1, 65535},
    {"localhost:*", EGRESS_RULE_NAME, "localhost", 0, 1, 65535},
    {"my_host-1.example:8080", EGRESS_RULE_NAME, "my_host-1.example", 0, 8080, 8080},
    {"198.51.100.0/24:80-90", EGRESS_RULE_V4, "198.51.100.0", 24, 80, 90},
    {"10.1.2.3:5432", EGRESS_RULE_V4, "10.1.2.3", 32, 5432, 5432},
    {"0.0.0.0/0:443", EGRESS_RULE_V4, "0.0.0.0", 0, 443, 443},
    {"169.254.169.254:80", EGRESS_RULE_V4, "169.254.169.254", 32, 80, 80},
    {"[2001:db8::]/32:443", EGRESS_RULE_V6, "2001:db8::", 32, 443, 443},
    {"[2001:db8::1]:443", EGRESS_RULE_V6, "2001:db8::1", 128, 443, 443},
    {"[::1]:*", EGRESS_RULE_V6, "::1", 128, 1, 65535},
    {"1.2.3.4:65535", EGRESS_RULE_V4, "1.2.3.4", 32, 65535, 65535},
    {"1.2.3.4:7-7", EGRESS_RULE_V4, "1.2.3.4", 32, 7, 7},
};

static void
test_rule_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        const struct rule_case *c = &valid[i];
        struct egress_rule r;
        const char *err = "unset";
        uint8_t want[16] = {0};

        print_message("valid: %s\n", c->in);
        assert_int_equal(guarded_rule(c->in, strlen(c->in), &r, &err), PARSE_OK);
        assert_null(err);
        assert_int_equal(r.kind, c->kind);
        assert_int_equal(r.port_lo, c->lo);
        assert_int_equal(r.port_hi, c->hi);
        if (c->kind == EGRESS_RULE_NAME || c->kind == EGRESS_RULE_SUFFIX) {
            assert_string_equal(r.name, c->what);
        } else {
            int af = c->kind == EGRESS_RULE_V4 ? AF_INET : AF_INET6;
            assert_int_equal(inet_pton(af, c->what, want), 1);
            assert_memory_equal(r.addr, want, 16);
            assert_int_equal(r.prefix, c->prefix);
        }
    }
}

#define MSG_SYNTAX "expected DEST:PORTS"
#define MSG_PORTS "expected a port 1-65535, a range LO-HI (80-90) or * after the last ':'"

static const struct {
    const char *in;
    const char *err; /* the message starts with this */
} invalid[] = {
    {"", MSG_SYNTAX},
    {"api.example.com", MSG_SYNTAX},
    {":443", MSG_SYNTAX},
    {"api.example.com:", MSG_PORTS},
    {"api.example.com:0", MSG_PORTS},
    {"api.example.com:65536", MSG_PORTS},
    {"api.example.com:99999999", MSG_PORTS},
    {"api.example.com:90-80", MSG_PORTS},
    {"api.example.com:80-", MSG_PORTS},
    {"api.example.com:-80", MSG_PORTS},
    {"api.example.com:https", MSG_PORTS},
    {"api.example.com: 443", MSG_PORTS},
    {"api.example.com:**", MSG_PORTS},
    {"2001:db8::1:443", "expected an IPv6 address in brackets"},
    {"[2001:db8::1:443", "expected [IPV6]:PORTS"},
    {"[2001:db8::1]/129:443", "IPv6 prefix length must be 0-128"},
    {"10.0.0.1/8:443", "address has bits set past the prefix length"},
    {"10.0.0.0/33:443", "IPv4 prefix length must be 0-32"},
    {"10.0.0:443", "invalid IPv4 address"},
    {"2130706433:80", "invalid IPv4 address"},
    {"cid:16:443", "expected an IPv6 address in brackets"},
    {"*:443", "expected a name or *.suffix"},
    {"*example.com:443", "expected a name or *.suffix"},
    {"api.*.com:443", "expected a name or *.suffix"},
    {"*.:443", "expected a host name, found nothing"},
    {"a..b:443", "expected a host name without empty labels"},
    {".a:443", "expected a host name without empty labels"},
    {"a b:443", "expected a host name of letters"},
    {"host/x:443", "expected a host name of letters"},
    {"example.123:443", "expected a host name whose last label is not all digits"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com:1",
     "expected host name labels of at most 63"},
};

static void
test_rule_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        struct egress_rule r;
        const char *err = NULL;

        print_message("invalid: %s\n", invalid[i].in);
        assert_int_equal(guarded_rule(invalid[i].in, strlen(invalid[i].in), &r, &err),
                         PARSE_INVALID);
        assert_non_null(err);
        if (strncmp(err, invalid[i].err, strlen(invalid[i].err)) != 0)
            fail_msg("'%s': got '%s', expected '%s...'", invalid[i].in, err, invalid[i].err);
    }
}

static void
test_rule_long_names(void **state)
{
    (void)state;
    char name[600];
    struct egress_rule r;
    const char *err = NULL;

    /* 253 characters of name: the longest there is */
    memset(name, 'a', sizeof(name));
    for (size_t i = 63; i < 253; i += 64)
        name[i] = '.';
    memcpy(name + 253, ":443", 5);
    assert_int_equal(guarded_rule(name, strlen(name), &r, &err), PARSE_OK);
    assert_int_equal(strlen(r.name), 253);
    /* one more is too long, with or without "*." */
    name[253] = 'a';
    memcpy(name + 254, ":443", 5);
    assert_int_equal(guarded_rule(name, strlen(name), &r, &err), PARSE_INVALID);
    assert_string_equal(err, "expected a host name of at most 253 characters");
    memcpy(name, "*.", 2);
    memcpy(name + 253, ":443", 5);
    assert_int_equal(guarded_rule(name, strlen(name), &r, &err), PARSE_OK);
    /* a long run that ends in a huge "port" */
    memset(name, '9', 599);
    name[599] = '\0';
    name[10] = ':';
    assert_int_equal(guarded_rule(name, strlen(name), &r, &err), PARSE_INVALID);
}

static void
check_prefixes(const char *s)
{
    for (size_t n = 0; n <= strlen(s); n++) {
        struct egress_rule r;
        const char *err = NULL;
        enum parse_result res = guarded_rule(s, n, &r, &err);
        if (res == PARSE_OK)
            assert_null(err);
        else
            assert_non_null(err);
    }
}

static void
test_rule_prefixes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
        check_prefixes(valid[i].in);
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        check_prefixes(invalid[i].in);
}

static void
test_name_normalize(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } ok[] = {
        {"Example.COM", "example.com"}, {"example.com.", "example.com"},    {"a", "a"},
        {"x-1_y.test", "x-1_y.test"},   {"1.2.3.example", "1.2.3.example"},
    };
    static const char *const bad[] = {
        "",      ".",     "..",  "a..b",  ".a",  "a b",          "a\nb",  "1.2.3.4",
        "127.1", "12345", "a:b", "[::1]", "a%b", "\xc3\xa9.com", "a.b..",
    };
    char out[EGRESS_NAME_MAX];
    const char *err;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        size_t len = strlen(ok[i].in);
        for (size_t n = 0; n <= len; n++) /* every prefix ends at the guard page */
            guarded_name(ok[i].in, n, out, &err);
        assert_int_equal(guarded_name(ok[i].in, len, out, &err), PARSE_OK);
        assert_null(err);
        assert_string_equal(out, ok[i].out);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len = strlen(bad[i]);
        print_message("bad name: %s\n", bad[i]);
        assert_int_equal(guarded_name(bad[i], len, out, &err), PARSE_INVALID);
        assert_non_null(err);
    }
    /* an embedded NUL is a bad character, not the end of the name */
    assert_int_equal(guarded_name("a\0b", 3, out, &err), PARSE_INVALID);
}

static struct egress_rule
rule(const char *s)
{
    struct egress_rule r;
    const char *err = NULL;

    if (egress_rule_parse(s, &r, &err) != PARSE_OK)
        fail_msg("egress_rule_parse(\"%s\"): %s", s, err);
    return r;
}

static void
test_check_name(void **state)
{
    (void)state;
    struct egress_rule rules[] = {
        rule("api.example.com:443"),
        rule("*.s3.amazonaws.com:443"),
        rule("db.example.com:5000-5010"),
    };
    size_t n = sizeof(rules) / sizeof(rules[0]);

    assert_int_equal(egress_check_name(rules, n, "api.example.com", 443), EGRESS_OK);
    assert_int_equal(egress_check_name(rules, n, "api.example.com", 80), EGRESS_NOT_ALLOWED_PORT);
    assert_int_equal(egress_check_name(rules, n, "x.api.example.com", 443),
                     EGRESS_NOT_ALLOWED_NAME);
    assert_int_equal(egress_check_name(rules, n, "example.com", 443), EGRESS_NOT_ALLOWED_NAME);
    assert_int_equal(egress_check_name(rules, n, "bucket.s3.amazonaws.com", 443), EGRESS_OK);
    assert_int_equal(egress_check_name(rules, n, "a.b.s3.amazonaws.com", 443), EGRESS_OK);
    assert_int_equal(egress_check_name(rules, n, "s3.amazonaws.com", 443), EGRESS_NOT_ALLOWED_NAME);
    assert_int_equal(egress_check_name(rules, n, "evils3.amazonaws.com", 443),
                     EGRESS_NOT_ALLOWED_NAME);
    assert_int_equal(egress_check_name(rules, n, "bucket.s3.amazonaws.com", 80),
                     EGRESS_NOT_ALLOWED_PORT);
    assert_int_equal(egress_check_name(rules, n, "db.example.com", 5000), EGRESS_OK);
    assert_int_equal(egress_check_name(rules, n, "db.example.com", 5010), EGRESS_OK);
    assert_int_equal(egress_check_name(rules, n, "db.example.com", 5011), EGRESS_NOT_ALLOWED_PORT);
    assert_int_equal(egress_check_name(rules, 0, "api.example.com", 443), EGRESS_NOT_ALLOWED_NAME);
}

static struct sockaddr_storage
addr(const char *text, uint16_t port)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
    } else if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
    } else {
        fail_msg("bad address %s", text);
    }
    return ss;
}

static enum egress_verdict
check(const struct egress_rule *rules, size_t n, const char *a, uint16_t port, int from_name,
      const char **range)
{
    struct sockaddr_storage ss = addr(a, port);
    return egress_check_addr(rules, n, (struct sockaddr *)&ss, from_name, range);
}

static void
test_check_addr_literal(void **state)
{
    (void)state;
    struct egress_rule rules[] = {
        rule("0.0.0.0/0:443"),     rule("198.51.100.0/24:80-90"), rule("10.1.2.3:5432"),
        rule("127.0.0.1:8443"),    rule("[2001:db8::]/32:443"),   rule("93.184.216.0/24:80"),
        rule("169.254.0.0/16:80"),
    };
    size_t n = sizeof(rules) / sizeof(rules[0]);
    const char *range;

    /* public addresses: any rule listing them */
    assert_int_equal(check(rules, n, "93.184.216.34", 443, 0, &range), EGRESS_OK);
    assert_null(range);
    assert_int_equal(check(rules, n, "93.184.216.34", 80, 0, &range), EGRESS_OK);
    assert_int_equal(check(rules, n, "93.184.216.34", 81, 0, &range), EGRESS_NOT_ALLOWED_PORT);
    assert_int_equal(check(rules, 1, "1.1.1.1", 443, 0, &range), EGRESS_OK);
    assert_int_equal(check(rules + 1, n - 1, "1.1.1.1", 443, 0, &range),
                     EGRESS_NOT_ALLOWED_ADDRESS);

    /* special ranges: 0.0.0.0/0 does not open them; narrower rules do */
    assert_int_equal(check(rules, n, "10.0.0.1", 443, 0, &range), EGRESS_PRIVATE_ADDRESS);
    assert_string_equal(range, "private");
    assert_int_equal(check(rules, n, "10.1.2.3", 5432, 0, &range), EGRESS_OK);
    assert_string_equal(range, "private");
    assert_int_equal(check(rules, n, "10.1.2.3", 5433, 0, &range), EGRESS_NOT_ALLOWED_PORT);
    /* listed, but not at that port */
    assert_int_equal(check(rules, n, "127.0.0.1", 443, 0, &range), EGRESS_NOT_ALLOWED_PORT);
    assert_string_equal(range, "loopback");
    assert_int_equal(check(rules, n, "127.0.0.1", 8443, 0, &range), EGRESS_OK);
    assert_int_equal(check(rules, n, "127.0.0.2", 8443, 0, &range), EGRESS_PRIVATE_ADDRESS);
    assert_int_equal(check(rules, n, "198.51.100.7", 85, 0, &range), EGRESS_OK);
    assert_string_equal(range, "documentation");
    assert_int_equal(check(rules, n, "198.51.100.7", 443, 0, &range), EGRESS_NOT_ALLOWED_PORT);
    assert_int_equal(check(rules, n, "192.0.2.1", 443, 0, &range), EGRESS_PRIVATE_ADDRESS);
    assert_int_equal(check(rules, n, "0.0.0.0", 443, 0, &range), EGRESS_PRIVATE_ADDRESS);
    assert_string_equal(range, "this_network");
    assert_int_equal(check(rules, n, "100.64.0.1", 443, 0, &range), EGRESS_PRIVATE_ADDRESS);
    assert_int_equal(check(rules, n, "172.31.255.255", 443, 0, &range), EGRESS_PRIVATE_ADDRESS);
    assert_int_equal(check(rules, n, "172.32.0.1", 443, 0, &range), EGRESS_OK);
    assert_int_equal(check(rules, n, "192.168.1.1", 443, 0, &range), EGRESS_PRIVATE_ADDRESS);
    assert_int_equal(check(rules, n, "224.0.0.1", 443, 0, &range), EGRESS_PRIVATE_ADDRESS);
    assert_string_equal(range, "multicast");
    assert_int_equal(check(rules, n, "255.255.255.255", 443, 0, &range), EGRESS_PRIVATE_ADDRESS);

    /* link-local is opened by 169.254.0.0/16, the metadata address is not */
    assert_int_equal(check(rules, n, "169.254.1.1", 80, 0, &range), EGRESS_OK);
    assert_int_equal(check(rules, n, "169.254.169.254", 80, 0, &range), EGRESS_PRIVATE_ADDRESS);
    assert_string_equal(range, "metadata");
    struct egress_rule meta = rule("169.254.169.254:80");
    assert_int_equal(check(&meta, 1, "169.254.169.254", 80, 0, &range), EGRESS_OK);
    assert_int_equal(check(&meta, 1, "169.254.169.254", 80, 1, &range), EGRESS_OK);

    /* IPv6 */
    assert_int_equal(check(rules, n, "2001:db8::1", 443, 0, &range), EGRESS_OK);
    assert_string_equal(range, "documentation");
    assert_int_equal(check(rules, n, "2606:4700::1", 443, 0, &range), EGRESS_NOT_ALLOWED_ADDRESS);
    assert_int_equal(check(rules, n, "::1", 443, 0, &range), EGRESS_PRIVATE_ADDRESS);
    assert_string_equal(range, "loopback");
    assert_int_equal(check(rules, n, "::", 443, 0, &range), EGRESS_PRIVATE_ADDRESS);
    assert_string_equal(range, "unspecified");
    assert_int_equal(check(rules, n, "fd00::1", 443, 0, &range), EGRESS_PRIVATE_ADDRESS);
    assert_int_equal(check(rules, n, "fe80::1", 443, 0, &range), EGRESS_PRIVATE_ADDRESS);
    assert_int_equal(check(rules, n, "ff02::1", 443, 0, &range), EGRESS_PRIVATE_ADDRESS);
    assert_int_equal(check(rules, n, "fd00:ec2::254", 443, 1, &range), EGRESS_PRIVATE_ADDRESS);
    assert_string_equal(range, "metadata");
    struct egress_rule all6 = rule("[::]/0:443");
    assert_int_equal(check(&all6, 1, "2606:4700::1", 443, 0, &range), EGRESS_OK);
    assert_int_equal(check(&all6, 1, "64:ff9b::a00:1", 443, 0, &range), EGRESS_PRIVATE_ADDRESS);
    assert_int_equal(check(&all6, 1, "2002:a00:1::", 443, 0, &range), EGRESS_PRIVATE_ADDRESS);

    /* IPv4-mapped: checked as the IPv4 address, against IPv4 rules */
    assert_int_equal(check(rules, n, "::ffff:127.0.0.2", 443, 0, &range), EGRESS_PRIVATE_ADDRESS);
    assert_string_equal(range, "loopback");
    assert_int_equal(check(rules, n, "::ffff:127.0.0.1", 8443, 0, &range), EGRESS_OK);
    assert_int_equal(check(rules, n, "::ffff:93.184.216.34", 80, 0, &range), EGRESS_OK);
    assert_int_equal(check(&all6, 1, "::ffff:93.184.216.34", 443, 0, &range),
                     EGRESS_NOT_ALLOWED_ADDRESS);
    assert_int_equal(check(rules, n, "::ffff:169.254.169.254", 80, 1, &range),
                     EGRESS_PRIVATE_ADDRESS);

    /* port 0 and other families are no destination */
    assert_int_equal(check(rules, n, "93.184.216.34", 0, 0, &range), EGRESS_BAD_DESTINATION);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    assert_int_equal(egress_check_addr(rules, n, (struct sockaddr *)&sun, 0, &range),
                     EGRESS_BAD_DESTINATION);
}

/* What an allowed name resolves to: only special ranges are refused. */
static void
test_check_addr_resolved(void **state)
{
    (void)state;
    struct egress_rule rules[] = {rule("api.example.com:443"), rule("127.0.0.1:4433")};
    size_t n = sizeof(rules) / sizeof(rules[0]);
    const char *range;

    assert_int_equal(check(rules, n, "93.184.216.34", 443, 1, &range), EGRESS_OK);
    assert_int_equal(check(rules, n, "93.184.216.34", 443, 0, &range), EGRESS_NOT_ALLOWED_ADDRESS);
    /* DNS rebinding: an allowed name pointing at a private address */
    assert_int_equal(check(rules, n, "10.0.0.5", 443, 1, &range), EGRESS_PRIVATE_ADDRESS);
    assert_int_equal(check(rules, n, "127.0.0.1", 443, 1, &range), EGRESS_NOT_ALLOWED_PORT);
    assert_int_equal(check(rules, n, "127.0.0.1", 4433, 1, &range), EGRESS_OK);
    assert_int_equal(check(rules, n, "::1", 4433, 1, &range), EGRESS_PRIVATE_ADDRESS);
    assert_int_equal(check(rules, n, "169.254.169.254", 443, 1, &range), EGRESS_PRIVATE_ADDRESS);
    assert_string_equal(range, "metadata");
}

static void
test_verdict_names(void **state)
{
    (void)state;
    assert_string_equal(egress_verdict_name(EGRESS_OK), "ok");
    assert_string_equal(egress_verdict_name(EGRESS_PRIVATE_ADDRESS), "private_address");
    assert_string_equal(egress_verdict_name(EGRESS_RESOLVE_FAILED), "resolve_failed");
    assert_string_equal(egress_verdict_name(EGRESS_VERDICT_COUNT), "unknown");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_valid),         cmocka_unit_test(test_rule_invalid),
        cmocka_unit_test(test_rule_long_names),    cmocka_unit_test(test_rule_prefixes),
        cmocka_unit_test(test_name_normalize),     cmocka_unit_test(test_check_name),
        cmocka_unit_test(test_check_addr_literal), cmocka_unit_test(test_check_addr_resolved),
        cmocka_unit_test(test_verdict_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
