/* test_field.c - unit tests for src/field/: path syntax and what each path
 * form matches, strict JSON (every form of the issue, every prefix placed
 * before a guard page), round trips with type restoration, refusals that
 * leave the output untouched, tampered tokens, rotation and rewrap,
 * deterministic equality, AES-SIV against OpenSSL's own, keyset files. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "core/file.h"
#include "field/field_int.h"
#include "guard.h"

#define K1 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define K2 "2222222222222222222222222222222222222222222222222222222222222222"
#define K3 "3333333333333333333333333333333333333333333333333333333333333333"

static struct field_keyset *
keyset(const char *primary, const char *k1, const char *k2, const char *k3)
{
    char text[1024], err[FIELD_ERR_MAX];
    int n = snprintf(text, sizeof(text), "{\"tenant\": \"acme\", \"primary\": \"%s\", \"keys\": [",
                     primary);
    const char *ids[] = {"k1", "k2", "k3"}, *keys[] = {k1, k2, k3};
    bool first = true;
    for (int i = 0; i < 3; i++)
        if (keys[i] != NULL) {
            n += snprintf(text + n, sizeof(text) - (size_t)n, "%s{\"id\": \"%s\", \"key\": \"%s\"}",
                          first ? "" : ",", ids[i], keys[i]);
            first = false;
        }
    snprintf(text + n, sizeof(text) - (size_t)n, "]}");
    struct field_keyset *ks = NULL;
    if (field_keyset_parse(text, strlen(text), &ks, err) != 0)
        fail_msg("keyset: %s", err);
    return ks;
}

static struct field_rules *
rules1(const char *path, bool det)
{
    struct field_rule_spec spec = {path, det};
    struct field_rules *r = NULL;
    char err[FIELD_ERR_MAX];
    if (field_rules_compile(&spec, 1, &r, err) != 0)
        fail_msg("%s: %s", path, err);
    return r;
}

/* The body with every token string replaced by "T". */
static char *
mark_tokens(const char *s)
{
    char *m = strdup(s), *o = m;
    assert_non_null(m);
    while (*s) {
        if (strncmp(s, "\"al1:", 5) == 0) {
            const char *end = strchr(s + 1, '"');
            assert_non_null(end);
            o += sprintf(o, "\"T\"");
            s = end + 1;
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
    return m;
}

/* Encrypts body under path (body copied before a guard page) and returns
 * the marked output, or NULL with *res set when refused. */
static char *
enc_marked(const char *path, const char *body, enum field_result *res, unsigned *nf)
{
    struct field_keyset *ks = keyset("k1", K1, NULL, NULL);
    struct field_rules *r = rules1(path, false);
    struct strbuf out = {0};
    struct guard g;
    char err[FIELD_ERR_MAX];
    char *in = (char *)guard_copy(&g, body, strlen(body));
    char *m = NULL;

    *res = field_encrypt_body(r, ks, in, strlen(body), 0, &out, nf, err);
    if (*res == FIELD_OK)
        m = mark_tokens(out.data ? out.data : "");
    else
        assert_int_equal(out.len, 0);
    guard_free(&g);
    strbuf_free(&out);
    field_rules_free(&r);
    field_keyset_free(&ks);
    return m;
}

static void
expect_marks(const char *path, const char *body, const char *want, unsigned want_n)
{
    enum field_result res;
    unsigned nf = 99;
    char *m = enc_marked(path, body, &res, &nf);
    if (m == NULL)
        fail_msg("%s on %s: refused (%d)", path, body, res);
    if (strcmp(m, want) != 0)
        fail_msg("%s on %s:\n got  %s\n want %s", path, body, m, want);
    assert_int_equal(nf, want_n);
    free(m);
}

static void
expect_refused(const char *path, const char *body, enum field_result want)
{
    enum field_result res;
    unsigned nf = 99;
    char *m = enc_marked(path, body, &res, &nf);
    if (m != NULL)
        fail_msg("%s on %s: accepted as %s", path, body, m);
    assert_int_equal(res, want);
    assert_int_equal(nf, 0);
}

static void
test_path_syntax(void **state)
{
    (void)state;
    static const char *const good[] = {
        "$",
        "$.a",
        "$.card.number",
        "$['a.b']",
        "$[\"a b\"]",
        "$[0]",
        "$[*]",
        "$.*",
        "$..email",
        "$..[0]",
        "$..*",
        "$..['x']",
        "$.patients[*].ssn",
        "$['it\\'s']",
        "$.na-me_1$",
        "$.\xc3\xa9t\xc3\xa9",
        "$['']",
        "$[2147483647]",
        "$.a[0][1]..b",
    };
    static const struct {
        const char *path, *msg;
    } bad[] = {
        {"", "starts with '$'"},
        {"a", "starts with '$'"},
        {"$.", "expected a name or * after '.'"},
        {"$..", "expected a name, * or [ after '..'"},
        {"$...a", "expected a name, * or [ after '..'"},
        {"$[", "after '['"},
        {"$[01]", "leading zero"},
        {"$[-1]", "negative"},
        {"$[2147483648]", "past 2147483647"},
        {"$['a", "unterminated"},
        {"$['a\\x']", "escapes"},
        {"$[a]", "after '['"},
        {"$[0", "expected ']'"},
        {"$[*", "expected ']'"},
        {"$.a b", "expected '.' or '['"},
        {"$ .a", "expected '.' or '['"},
        {"$.[0]", "expected a name or *"},
        {"$a", "expected '.' or '['"},
        {"$.\xc3", "not UTF-8"},
        {"$['\x01']", "control character"},
    };
    char err[FIELD_ERR_MAX];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (field_path_check(good[i], err) != 0)
            fail_msg("%s: %s", good[i], err);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(field_path_check(bad[i].path, err), -EINVAL);
        if (strstr(err, bad[i].msg) == NULL || strncmp(err, "at character ", 13) != 0)
            fail_msg("%s: %s (want %s)", bad[i].path, err, bad[i].msg);
    }
    /* bounds: steps and length */
    char p[2100] = "$";
    for (int i = 0; i < 32; i++)
        strcat(p, ".a");
    assert_int_equal(field_path_check(p, err), 0);
    strcat(p, ".a");
    assert_int_equal(field_path_check(p, err), -EINVAL);
    assert_non_null(strstr(err, "too many steps"));
    p[0] = '$';
    p[1] = '.';
    memset(p + 2, 'x', 1100);
    p[1102] = '\0';
    assert_int_equal(field_path_check(p, err), -EINVAL);
    assert_non_null(strstr(err, "longer than"));

    /* compile names the rule and its position */
    struct field_rule_spec specs[] = {{"$.a", false}, {"$.b[", false}};
    struct field_rules *r = NULL;
    assert_int_equal(field_rules_compile(specs, 2, &r, err), -EINVAL);
    assert_null(r);
    assert_string_equal(err, "path 2 ($.b[): at character 5: expected *, an index or a quoted "
                             "name after '['");
    assert_int_equal(field_rules_compile(specs, 0, &r, err), -EINVAL);
}

static void
test_path_matching(void **state)
{
    (void)state;
    const char *body = "{\"card\": {\"number\": \"4111\", \"cvc\": 123}, \"a.b\": 1, "
                       "\"patients\": [{\"ssn\": \"1\", \"x\": {\"ssn\": \"2\"}}, {\"ssn\": 3}],"
                       " \"email\": \"e\", \"deep\": [[{\"email\": true}]]}";
    expect_marks("$.card.number", body,
                 "{\"card\": {\"number\": \"T\", \"cvc\": 123}, \"a.b\": 1, \"patients\": "
                 "[{\"ssn\": \"1\", \"x\": {\"ssn\": \"2\"}}, {\"ssn\": 3}], \"email\": \"e\", "
                 "\"deep\": [[{\"email\": true}]]}",
                 1);
    expect_marks("$['card']['cvc']", body,
                 "{\"card\": {\"number\": \"4111\", \"cvc\": \"T\"}, \"a.b\": 1, \"patients\": "
                 "[{\"ssn\": \"1\", \"x\": {\"ssn\": \"2\"}}, {\"ssn\": 3}], \"email\": \"e\", "
                 "\"deep\": [[{\"email\": true}]]}",
                 1);
    expect_marks("$['a.b']", body,
                 "{\"card\": {\"number\": \"4111\", \"cvc\": 123}, \"a.b\": \"T\", \"patients\": "
                 "[{\"ssn\": \"1\", \"x\": {\"ssn\": \"2\"}}, {\"ssn\": 3}], \"email\": \"e\", "
                 "\"deep\": [[{\"email\": true}]]}",
                 1);
    expect_marks("$.patients[*].ssn", body,
                 "{\"card\": {\"number\": \"4111\", \"cvc\": 123}, \"a.b\": 1, \"patients\": "
                 "[{\"ssn\": \"T\", \"x\": {\"ssn\": \"2\"}}, {\"ssn\": \"T\"}], \"email\": \"e\", "
                 "\"deep\": [[{\"email\": true}]]}",
                 2);
    expect_marks("$.patients[1].ssn", body,
                 "{\"card\": {\"number\": \"4111\", \"cvc\": 123}, \"a.b\": 1, \"patients\": "
                 "[{\"ssn\": \"1\", \"x\": {\"ssn\": \"2\"}}, {\"ssn\": \"T\"}], \"email\": \"e\", "
                 "\"deep\": [[{\"email\": true}]]}",
                 1);
    expect_marks("$..ssn", body,
                 "{\"card\": {\"number\": \"4111\", \"cvc\": 123}, \"a.b\": 1, \"patients\": "
                 "[{\"ssn\": \"T\", \"x\": {\"ssn\": \"T\"}}, {\"ssn\": \"T\"}], \"email\": \"e\", "
                 "\"deep\": [[{\"email\": true}]]}",
                 3);
    expect_marks("$..email", body,
                 "{\"card\": {\"number\": \"4111\", \"cvc\": 123}, \"a.b\": 1, \"patients\": "
                 "[{\"ssn\": \"1\", \"x\": {\"ssn\": \"2\"}}, {\"ssn\": 3}], \"email\": \"T\", "
                 "\"deep\": [[{\"email\": \"T\"}]]}",
                 2);
    expect_marks("$.deep[0][0].email", body,
                 "{\"card\": {\"number\": \"4111\", \"cvc\": 123}, \"a.b\": 1, \"patients\": "
                 "[{\"ssn\": \"1\", \"x\": {\"ssn\": \"2\"}}, {\"ssn\": 3}], \"email\": \"e\", "
                 "\"deep\": [[{\"email\": \"T\"}]]}",
                 1);
    expect_marks("$.card.*", body,
                 "{\"card\": {\"number\": \"T\", \"cvc\": \"T\"}, \"a.b\": 1, \"patients\": "
                 "[{\"ssn\": \"1\", \"x\": {\"ssn\": \"2\"}}, {\"ssn\": 3}], \"email\": \"e\", "
                 "\"deep\": [[{\"email\": true}]]}",
                 2);
    /* a rule that matches nothing copies the body */
    expect_marks("$.nothing.here", body, body, 0);
    expect_marks("$.card[0]", body, body, 0);
    /* descent through arrays and by index; wildcard over an array */
    expect_marks("$..[1]", "[0, 5, {\"a\": [3, 4]}, [6, 7]]",
                 "[0, \"T\", {\"a\": [3, \"T\"]}, [6, \"T\"]]", 3);
    expect_refused("$..[1]", "[0, [1, 2]]", FIELD_NOT_SCALAR);
    expect_marks("$[*]", "[1, \"x\", true, null]", "[\"T\", \"T\", \"T\", null]", 3);
    expect_marks("$.*", "{\"a\": 1, \"b\": \"x\"}", "{\"a\": \"T\", \"b\": \"T\"}", 2);
    /* the root itself */
    expect_marks("$", "\"secret\"", "\"T\"", 1);
    expect_marks("$", " 42 ", " \"T\" ", 1);
    /* a member name written with escapes matches its decoded form */
    expect_marks("$.card", "{\"c\\u0061rd\": \"1\"}", "{\"c\\u0061rd\": \"T\"}", 1);
    expect_marks("$['\xc3\xa9']", "{\"\\u00e9\": 1, \"\xc3\xa9\": 2}",
                 "{\"\\u00e9\": \"T\", \"\xc3\xa9\": \"T\"}", 2);
    /* duplicate keys: every occurrence */
    expect_marks("$.a", "{\"a\": 1, \"a\": \"2\", \"b\": {\"a\": 3}}",
                 "{\"a\": \"T\", \"a\": \"T\", \"b\": {\"a\": 3}}", 2);
    /* null stays null */
    expect_marks("$.a", "{\"a\": null}", "{\"a\": null}", 0);
    /* a path that reaches an object or array is refused (fail closed) */
    expect_refused("$.card", body, FIELD_NOT_SCALAR);
    expect_refused("$.patients", body, FIELD_NOT_SCALAR);
    expect_refused("$..x", body, FIELD_NOT_SCALAR);
    expect_refused("$.deep[0]", body, FIELD_NOT_SCALAR);
    expect_refused("$", "{}", FIELD_NOT_SCALAR);
    expect_refused("$.a", "{\"a\": []}", FIELD_NOT_SCALAR);
}

static void
test_several_rules(void **state)
{
    (void)state;
    struct field_rule_spec specs[] = {{"$.a", false}, {"$.b", true}, {"$..a", true}};
    struct field_rules *r = NULL;
    struct field_keyset *ks = keyset("k1", K1, NULL, NULL);
    struct strbuf out = {0};
    char err[FIELD_ERR_MAX];
    unsigned nf = 0;
    assert_int_equal(field_rules_compile(specs, 3, &r, err), 0);
    const char *body = "{\"a\": \"x\", \"b\": \"x\", \"c\": {\"a\": \"x\"}}";
    assert_int_equal(field_encrypt_body(r, ks, body, strlen(body), 0, &out, &nf, err), FIELD_OK);
    assert_int_equal(nf, 3);
    /* $.a (rule 1, first in order) is GCM: lower-case type; the others SIV */
    assert_non_null(strstr(out.data, "{\"a\": \"al1:k1:s:"));
    assert_non_null(strstr(out.data, "\"b\": \"al1:k1:S:"));
    assert_non_null(strstr(out.data, "\"c\": {\"a\": \"al1:k1:S:"));
    strbuf_free(&out);
    field_rules_free(&r);
    field_rules_free(&r);
    field_keyset_free(&ks);
    field_keyset_free(&ks);
}

static void
test_json_forms(void **state)
{
    (void)state;
    /* whitespace of every kind, escapes, surrogate pairs, big numbers and
     * nested arrays are copied byte for byte around the replaced values */
    static const char *const same[] = {
        " \t\r\n{ \"x\" : [ 1 , [ 2 , [ [ ] ] ] , { } ] , \"y\" :\"\\\"\\\\\\/\\b\\f\\n\\r\\t\" } "
        "\n",
        "{\"s\": \"\\u00e9\\u20ac\\ud83d\\ude00\\uD83D\\uDE00 \xf0\x9f\x98\x80\"}",
        "{\"n\": [0, -0, 1.5, -1e10, 2E+3, 3e-7, 123456789012345678901234567890123456789]}",
        "[true, false, null, \"\", {}, []]",
        "\"\"",
        "0",
        "-12.5e+100",
        "null",
    };
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
        expect_marks("$..zz", same[i], same[i], 0);
    /* what is refused, and with which reason */
    static const char *const bad[] = {
        "",
        " ",
        "{",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "[1,]",
        "[1 2]",
        "{'a': 1}",
        "{\"a\": 01}",
        "{\"a\": 1.}",
        "{\"a\": .5}",
        "{\"a\": -}",
        "{\"a\": 1e}",
        "{\"a\": +1}",
        "{\"a\": NaN}",
        "{\"a\": tru}",
        "{\"a\": nul}",
        "{\"a\": True}",
        "{\"a\": \"\\ud800\"}",
        "{\"a\": \"\\udc00\"}",
        "{\"a\": \"\\ud800\\u0041\"}",
        "{\"a\": \"\\ud800x\"}",
        "{\"a\": \"\\u12\"}",
        "{\"a\": \"\\u12g4\"}",
        "{\"a\": \"\\x41\"}",
        "{\"a\": \"\\'\"}",
        "{\"a\": \"tab\there\"}",
        "{\"a\": \"\xc0\x80\"}",
        "{\"a\": \"\xed\xa0\x80\"}",
        "{\"a\": \"\xf4\x90\x80\x80\"}",
        "{\"a\": \"\xe2\x82\"}",
        "{\"a\": \"\x80\"}",
        "{\"a\": \"\xff\"}",
        "\xef\xbb\xbf{}",
        "{} {}",
        "{}x",
        "{\"a\": 1}}",
        "[\"unterminated]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* (an array where $.a expects an object is refused before it is read) */
        expect_refused(bad[i][0] == '[' ? "$[*]" : "$.a", bad[i], FIELD_MALFORMED);
        expect_refused("$..zz", bad[i], FIELD_MALFORMED);
    }
    /* nesting: FIELD_DEPTH_MAX levels inside the root pass, one more does not */
    char deep[2 * FIELD_DEPTH_MAX + 8];
    memset(deep, '[', FIELD_DEPTH_MAX + 1);
    memset(deep + FIELD_DEPTH_MAX + 1, ']', FIELD_DEPTH_MAX + 1);
    deep[2 * FIELD_DEPTH_MAX + 2] = '\0';
    expect_marks("$..a", deep, deep, 0);
    memmove(deep + 1, deep, strlen(deep) + 1);
    strcat(deep, "]");
    expect_refused("$..a", deep, FIELD_MALFORMED);
}

/* Every proper prefix of an object body is refused, never read past. */
static void
test_every_prefix(void **state)
{
    (void)state;
    const char *body = "{\"card\": {\"number\": \"4111\\u00e9\\ud83d\\ude00\", \"n\": -1.5e3},"
                       " \"l\": [true, false, null], \"e\": \"\xf0\x9f\x98\x80\"}";
    struct field_keyset *ks = keyset("k1", K1, NULL, NULL);
    struct field_rules *r = rules1("$..*", false);
    struct strbuf out = {0};
    char err[FIELD_ERR_MAX];
    struct guard g;
    struct field_rules *r2 = rules1("$.card.number", false);
    for (size_t n = 0; n <= strlen(body); n++) {
        char *in = (char *)guard_copy(&g, body, n);
        out.len = 0;
        enum field_result res = field_encrypt_body(r2, ks, in, n, 0, &out, NULL, err);
        assert_int_equal(res, n == strlen(body) ? FIELD_OK : FIELD_MALFORMED);
        res = field_decrypt_body(ks, in, n, &out, NULL, err);
        assert_int_equal(res, n == strlen(body) ? FIELD_OK : FIELD_MALFORMED);
        guard_free(&g);
    }
    /* and every prefix of a body full of tokens */
    struct strbuf enc = {0};
    const char *flat = "[\"a\", 1, true, \"\\u00e9\"]";
    assert_int_equal(field_encrypt_body(r, ks, flat, strlen(flat), 0, &enc, NULL, err), FIELD_OK);
    for (size_t n = 0; n < enc.len; n++) {
        char *in = (char *)guard_copy(&g, enc.data, n);
        out.len = 0;
        enum field_result res = field_decrypt_body(ks, in, n, &out, NULL, err);
        assert_true(res == FIELD_MALFORMED || res == FIELD_BAD_TOKEN);
        guard_free(&g);
    }
    strbuf_free(&enc);
    strbuf_free(&out);
    field_rules_free(&r);
    field_rules_free(&r2);
    field_keyset_free(&ks);
}

static void
roundtrip(const char *path, bool det, const char *body, const char *want)
{
    struct field_keyset *ks = keyset("k1", K1, NULL, NULL);
    struct field_rules *r = rules1(path, det);
    struct strbuf enc = {0}, dec = {0};
    char err[FIELD_ERR_MAX];
    unsigned ne = 0, nd = 0;
    if (field_encrypt_body(r, ks, body, strlen(body), 0, &enc, &ne, err) != FIELD_OK)
        fail_msg("%s: %s", body, err);
    assert_null(strstr(enc.data, "secret"));
    if (field_decrypt_body(ks, enc.data, enc.len, &dec, &nd, err) != FIELD_OK)
        fail_msg("%s: %s", enc.data, err);
    assert_int_equal(ne, nd);
    assert_string_equal(dec.data, want);
    strbuf_free(&enc);
    strbuf_free(&dec);
    field_rules_free(&r);
    field_keyset_free(&ks);
}

static void
test_roundtrip_types(void **state)
{
    (void)state;
    for (int det = 0; det < 2; det++) {
        const char *b = "{\"s\": \"secret 4111\", \"n\": 123456789012345678901234567890.12e-5, "
                        "\"t\": true, \"f\": false, \"z\": null, \"e\": \"\", \"neg\": -0}";
        roundtrip("$.*", det, b, b);
        /* a string comes back as the same characters: escapes decoded,
         * the ones JSON needs written again */
        roundtrip("$.s", det,
                  "{\"s\": \"secr\\u0065t \\u00e9\\ud83d\\ude00 \\/ \\\" \\\\ \\n\\t\\u0001\"}",
                  "{\"s\": \"secret \xc3\xa9\xf0\x9f\x98\x80 / \\\" \\\\ \\n\\t\\u0001\"}");
        roundtrip("$.s", det, "{\"s\": \"secret\\u0000nul\"}", "{\"s\": \"secret\\u0000nul\"}");
        /* whitespace around replaced values is kept */
        roundtrip("$..v", det, "[ {\"v\" :\n\"secret\" } ,{ \"v\":1 } ]",
                  "[ {\"v\" :\n\"secret\" } ,{ \"v\":1 } ]");
    }
    /* the token's type letter says what comes back */
    struct field_keyset *ks = keyset("k1", K1, NULL, NULL);
    struct field_rules *r = rules1("$.*", false);
    struct strbuf enc = {0};
    char err[FIELD_ERR_MAX];
    const char *b = "{\"s\": \"1\", \"n\": 1, \"b\": true}";
    assert_int_equal(field_encrypt_body(r, ks, b, strlen(b), 0, &enc, NULL, err), FIELD_OK);
    assert_non_null(strstr(enc.data, "\"s\": \"al1:k1:s:"));
    assert_non_null(strstr(enc.data, "\"n\": \"al1:k1:n:"));
    assert_non_null(strstr(enc.data, "\"b\": \"al1:k1:b:"));
    strbuf_free(&enc);
    field_rules_free(&r);
    field_keyset_free(&ks);
}

/* Decrypts body with ks and expects the result. */
static void
expect_decrypt(struct field_keyset *ks, const char *body, enum field_result want)
{
    struct strbuf out = {0};
    char err[FIELD_ERR_MAX] = "";
    unsigned nf = 99;
    strbuf_append(&out, "keep", 4);
    enum field_result res = field_decrypt_body(ks, body, strlen(body), &out, &nf, err);
    if (res != want)
        fail_msg("%s: %d (%s), want %d", body, res, err, want);
    if (want != FIELD_OK) {
        assert_int_equal(out.len, 4);
        assert_string_equal(out.data, "keep");
        assert_int_equal(nf, 0);
        assert_true(err[0] != '\0');
        assert_null(strstr(err, "secret"));
    }
    strbuf_free(&out);
}

static char *
one_token(struct field_keyset *ks, const char *path, bool det, const char *body)
{
    struct field_rules *r = rules1(path, det);
    struct strbuf enc = {0};
    char err[FIELD_ERR_MAX];
    assert_int_equal(field_encrypt_body(r, ks, body, strlen(body), 0, &enc, NULL, err), FIELD_OK);
    field_rules_free(&r);
    return enc.data;
}

static void
test_tampered(void **state)
{
    (void)state;
    struct field_keyset *ks = keyset("k1", K1, K2, NULL);
    for (int det = 0; det < 2; det++) {
        char *enc = one_token(ks, "$.a", det, "{\"a\": \"secret\"}");
        expect_decrypt(ks, enc, FIELD_OK);
        char *tok = strstr(enc, "al1:"), *pay = strrchr(enc, ':') + 1;
        size_t len = strlen(enc);
        /* every single character of the token changed */
        for (char *c = tok; c < enc + len - 2; c++) {
            char keep = *c;
            for (const char *rep = "A_:-0x\\ "; *rep; rep++) {
                if (*rep == keep)
                    continue;
                *c = *rep;
                struct strbuf out = {0};
                char err[FIELD_ERR_MAX];
                enum field_result res = field_decrypt_body(ks, enc, len, &out, NULL, err);
                /* changed into something that is no longer a token (the
                 * prefix) passes as a string; everything else is refused */
                if (c < tok + 4)
                    assert_true(res == FIELD_OK || res == FIELD_BAD_TOKEN ||
                                res == FIELD_MALFORMED);
                else
                    assert_true(res == FIELD_BAD_TOKEN || res == FIELD_MALFORMED);
                if (res == FIELD_OK)
                    assert_null(strstr(out.data, "secret"));
                strbuf_free(&out);
            }
            *c = keep;
        }
        /* truncated, extended */
        char buf[512];
        for (size_t cut = 1; cut < 6; cut++) {
            snprintf(buf, sizeof(buf), "%.*s\"}", (int)(len - 2 - cut), enc);
            expect_decrypt(ks, buf, FIELD_BAD_TOKEN);
        }
        snprintf(buf, sizeof(buf), "%.*sAA\"}", (int)(len - 2), enc);
        expect_decrypt(ks, buf, FIELD_BAD_TOKEN);
        /* moved to another key id, type or rule: the header is bound */
        char *moved = strdup(enc);
        moved[tok - enc + 5] = '2';
        expect_decrypt(ks, moved, FIELD_BAD_TOKEN);
        strcpy(moved, enc);
        moved[tok - enc + 7] = det ? 'N' : 'n';
        expect_decrypt(ks, moved, FIELD_BAD_TOKEN);
        char *other = one_token(ks, "$.b", det, "{\"b\": \"secret\"}");
        strcpy(moved, enc);
        memcpy(moved + (tok - enc) + 9, strstr(other, "al1:") + 9, 8);
        expect_decrypt(ks, moved, FIELD_BAD_TOKEN);
        /* a payload from another token under this header */
        strcpy(moved, enc);
        snprintf(moved + (pay - enc), strlen(enc) - (size_t)(pay - enc) + 1, "%s",
                 strrchr(other, ':') + 1);
        expect_decrypt(ks, moved, FIELD_BAD_TOKEN);
        free(other);
        free(moved);
        /* a keyset without the key: an error, never passed through */
        struct field_keyset *ks2 = keyset("k2", NULL, K2, NULL);
        expect_decrypt(ks2, enc, FIELD_BAD_TOKEN);
        field_keyset_free(&ks2);
        /* a token written with escapes is still a token */
        char esc[512];
        snprintf(esc, sizeof(esc), "{\"a\": \"al1\\u003a%s", tok + 4);
        expect_decrypt(ks, esc, FIELD_OK);
        esc[strlen(esc) - 4] ^= 1;
        expect_decrypt(ks, esc, FIELD_BAD_TOKEN);
        free(enc);
    }
    /* what claims to be a token */
    expect_decrypt(ks, "[\"al1:\"]", FIELD_BAD_TOKEN);
    expect_decrypt(ks, "[\"al1:k1:s:AAAAAAAA:\"]", FIELD_BAD_TOKEN);
    expect_decrypt(ks, "[\"al2:k1:s:AAAAAAAA:AAAA\"]", FIELD_BAD_TOKEN);
    expect_decrypt(ks, "[\"al123:x\"]", FIELD_BAD_TOKEN);
    /* ... and what does not */
    expect_decrypt(ks, "[\"al\", \"al1\", \"alpha:1\", \"al:1\", \"al1234:x\", \"xal1:\"]",
                   FIELD_OK);
    /* member names are not decrypted */
    expect_decrypt(ks, "{\"al1:x\": 1}", FIELD_OK);
    field_keyset_free(&ks);
}

static void
test_rotation(void **state)
{
    (void)state;
    struct field_keyset *v1 = keyset("k1", K1, NULL, NULL);
    struct field_keyset *v2 = keyset("k2", K1, K2, NULL);
    struct field_keyset *v3 = keyset("k3", NULL, K2, K3);
    const char *body = "{\"a\": \"secret\", \"b\": 7, \"c\": [true]}";
    struct field_rule_spec specs[] = {{"$.a", false}, {"$.b", true}, {"$.c[0]", false}};
    struct field_rules *r = NULL;
    struct strbuf old = {0}, cur = {0}, wrap = {0}, dec = {0}, wrap2 = {0};
    char err[FIELD_ERR_MAX];
    unsigned nf = 0;

    assert_int_equal(field_rules_compile(specs, 3, &r, err), 0);
    assert_int_equal(field_encrypt_body(r, v1, body, strlen(body), 0, &old, NULL, err), FIELD_OK);
    /* after rotation: new tokens under k2, old ones still decrypt */
    assert_int_equal(field_encrypt_body(r, v2, body, strlen(body), 0, &cur, NULL, err), FIELD_OK);
    assert_null(strstr(cur.data, "al1:k1:"));
    assert_non_null(strstr(cur.data, "al1:k2:"));
    assert_string_equal(field_keyset_primary(v2), "k2");
    assert_string_equal(field_keyset_tenant(v2), "acme");
    assert_int_equal(field_decrypt_body(v2, old.data, old.len, &dec, NULL, err), FIELD_OK);
    assert_string_equal(dec.data, body);
    /* rewrap moves every token to the primary, types and rules kept */
    assert_int_equal(field_rewrap_body(v2, old.data, old.len, &wrap, &nf, err), FIELD_OK);
    assert_int_equal(nf, 3);
    assert_null(strstr(wrap.data, "al1:k1:"));
    assert_non_null(strstr(wrap.data, "\"b\": \"al1:k2:N:"));
    /* a deterministic token rewrapped is the one encryption under k2 gives */
    const char *bk2 = strstr(cur.data, "\"b\": ");
    assert_memory_equal(strstr(wrap.data, "\"b\": "), bk2, (size_t)(strchr(bk2 + 6, '"') - bk2));
    /* once k1 is dropped: old tokens refused, rewrapped ones decrypt */
    expect_decrypt(v3, old.data, FIELD_BAD_TOKEN);
    dec.len = 0;
    assert_int_equal(field_decrypt_body(v3, wrap.data, wrap.len, &dec, NULL, err), FIELD_OK);
    assert_string_equal(dec.data, body);
    /* rewrap of a body with a bad token fails as a whole */
    assert_int_equal(field_rewrap_body(v3, old.data, old.len, &wrap2, &nf, err), FIELD_BAD_TOKEN);
    assert_int_equal(wrap2.len, 0);
    strbuf_free(&old);
    strbuf_free(&cur);
    strbuf_free(&wrap);
    strbuf_free(&wrap2);
    strbuf_free(&dec);
    field_rules_free(&r);
    field_keyset_free(&v1);
    field_keyset_free(&v2);
    field_keyset_free(&v3);
}

static void
test_deterministic(void **state)
{
    (void)state;
    struct field_keyset *ks = keyset("k1", K1, NULL, NULL);
    struct field_keyset *other = keyset("k1", K2, NULL, NULL);
    const char *body = "[\"x@example.org\", \"x@example.org\", \"y@example.org\"]";
    char *det = one_token(ks, "$[*]", true, body);
    char *det2 = one_token(ks, "$[*]", true, body);
    char *rnd = one_token(ks, "$[*]", false, body);
    char *det_rule = one_token(ks, "$[0]", true, "[\"x@example.org\"]");
    char *det_key = one_token(other, "$[*]", true, body);
    char t[3][256], u[3][256];
    /* equal values, same rule and key: equal tokens, across calls */
    assert_int_equal(sscanf(det, "[\"%255[^\"]\", \"%255[^\"]\", \"%255[^\"]\"]", t[0], t[1], t[2]),
                     3);
    assert_string_equal(t[0], t[1]);
    assert_string_not_equal(t[0], t[2]);
    assert_string_equal(det, det2);
    /* another rule or key: another token */
    assert_null(strstr(det_rule, t[0]));
    assert_null(strstr(det_key, t[0]));
    /* and back to the first rule (a key caches the last header's MAC) */
    char *det3 = one_token(ks, "$[*]", true, body);
    assert_string_equal(det, det3);
    free(det3);
    /* GCM: never equal */
    assert_int_equal(sscanf(rnd, "[\"%255[^\"]\", \"%255[^\"]\", \"%255[^\"]\"]", u[0], u[1], u[2]),
                     3);
    assert_string_not_equal(u[0], u[1]);
    free(det);
    free(det2);
    free(rnd);
    free(det_rule);
    free(det_key);
    field_keyset_free(&ks);
    field_keyset_free(&other);
}

/* The deterministic payload is RFC 5297 AES-SIV: the same bytes as
 * OpenSSL's "AES-256-SIV" under the key derived as keyset.c documents. */
static void
test_siv_matches_openssl(void **state)
{
    (void)state;
    uint8_t master[32], siv_key[64];
    for (int i = 0; i < 32; i++)
        master[i] = (uint8_t)i; /* K1 */
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kc = EVP_KDF_CTX_new(kdf);
    const char *info = "airlock field v1 aes-256-siv";
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, master, 32),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info)),
        OSSL_PARAM_construct_end(),
    };
    assert_int_equal(EVP_KDF_derive(kc, siv_key, 64, p), 1);
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    EVP_CIPHER *siv = EVP_CIPHER_fetch(NULL, "AES-256-SIV", NULL);
    assert_non_null(siv);

    struct field_keyset *ks = keyset("k1", K1, NULL, NULL);
    struct field_rules *r = rules1("$.v", true);
    uint8_t v[300];
    for (size_t i = 0; i < sizeof(v); i++)
        v[i] = (uint8_t)(i * 7 + 1);
    /* (OpenSSL's SIV does not run on an empty plaintext: EVP skips it) */
    size_t lens[] = {1, 15, 16, 17, 31, 32, 33, 64, 255, 256, 300};
    for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
        size_t n = lens[li];
        struct strbuf tok = {0}, back = {0};
        char err[FIELD_ERR_MAX];
        enum field_type type;
        assert_int_equal(field_seal(ks, r, 0, FIELD_T_STRING, v, n, &tok, err), FIELD_OK);
        struct field_token t;
        assert_int_equal(field_token_parse(tok.data, tok.len, &t, err), FIELD_OK);
        /* OpenSSL, keyed afresh: tag (the synthetic IV) then ciphertext */
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        uint8_t want[16 + 300];
        int outl = 0;
        assert_int_equal(EVP_EncryptInit_ex2(c, siv, siv_key, NULL, NULL), 1);
        assert_int_equal(
            EVP_EncryptUpdate(c, NULL, &outl, (const uint8_t *)tok.data, (int)t.header_len), 1);
        assert_int_equal(EVP_EncryptUpdate(c, want + 16, &outl, v, (int)n), 1);
        assert_int_equal(EVP_EncryptFinal_ex(c, want + 16, &outl), 1);
        assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, want), 1);
        EVP_CIPHER_CTX_free(c);
        /* decode the token's payload and compare */
        struct strbuf pay = {0};
        strbuf_append(&pay, t.payload, t.payload_len);
        for (size_t i = 0; i < pay.len; i++)
            pay.data[i] = pay.data[i] == '-' ? '+' : pay.data[i] == '_' ? '/' : pay.data[i];
        while (pay.len % 4)
            strbuf_append(&pay, "=", 1);
        uint8_t got[16 + 300 + 4];
        int gl = EVP_DecodeBlock(got, (const uint8_t *)pay.data, (int)pay.len);
        assert_true(gl >= (int)(16 + n));
        assert_memory_equal(got, want, 16 + n);
        /* and it opens */
        assert_int_equal(field_open(ks, tok.data, tok.len, &back, &type, err), FIELD_OK);
        assert_int_equal(back.len, n);
        if (n > 0)
            assert_memory_equal(back.data, v, n);
        assert_int_equal(type, FIELD_T_STRING);
        strbuf_free(&pay);
        strbuf_free(&tok);
        strbuf_free(&back);
    }
    EVP_CIPHER_free(siv);
    field_rules_free(&r);
    field_keyset_free(&ks);
}

/* Member names a backend would read as a rule's name, which the rule does
 * not match: refused, never passed in plaintext. A name with U+0000 (a C
 * string reader sees "number"), and one a rule's name differs from only in
 * case (a case-insensitive binder sees "number"), by Unicode's simple case
 * mappings. */
static void
test_lookalike_names(void **state)
{
    (void)state;
    /* U+0000 anywhere in a name, at a level a rule reaches or not */
    expect_refused("$.card.number", "{\"card\": {\"number\\u0000\": \"4111\"}}", FIELD_MALFORMED);
    expect_refused("$.card.number", "{\"card\\u0000\": {\"number\": \"4111\"}}", FIELD_MALFORMED);
    expect_refused("$.card.number", "{\"x\": {\"\\u0000\": 1}}", FIELD_MALFORMED);
    expect_refused("$..ssn", "[{\"s\\u0000sn\": 1}]", FIELD_MALFORMED);
    /* "\\u0000" is a backslash and "u0000": no NUL */
    expect_marks("$.a", "{\"\\\\u0000\": 1, \"a\": 2}", "{\"\\\\u0000\": 1, \"a\": \"T\"}", 1);
    /* a NUL in a string value is data */
    expect_marks("$.a", "{\"a\": \"x\\u0000y\"}", "{\"a\": \"T\"}", 1);
    /* case: at each step of a rule, whatever the rule's form */
    expect_refused("$.card.number", "{\"card\": {\"NUMBER\": \"4111\"}}", FIELD_AMBIGUOUS);
    expect_refused("$.card.number", "{\"Card\": {\"number\": \"4111\"}}", FIELD_AMBIGUOUS);
    expect_refused("$.card.number", "{\"card\": {\"N\\u0075mber\": \"4111\"}}", FIELD_AMBIGUOUS);
    expect_refused("$..ssn", "{\"a\": [{\"SsN\": 1}]}", FIELD_AMBIGUOUS);
    expect_refused("$.patients[*].ssn", "{\"patients\": [{\"sSn\": 1}]}", FIELD_AMBIGUOUS);
    expect_refused("$['Key']", "{\"key\": 1}", FIELD_AMBIGUOUS);
    /* letters outside ASCII that case-map to ASCII: long s, Kelvin sign, dotless i */
    expect_refused("$.ssn", "{\"\xc5\xbfsn\": 1}", FIELD_AMBIGUOUS);
    expect_refused("$.key",
                   "{\"\xe2\x84\xaa"
                   "ey\": 1}",
                   FIELD_AMBIGUOUS);
    expect_refused("$.pin", "{\"p\\u0131n\": 1}", FIELD_AMBIGUOUS);
    /* rule names outside ASCII: Unicode's simple case mappings (Java's
     * equalsIgnoreCase takes "grÖße" and "GRÖẞE" for "größe") */
    expect_refused("$['größe']", "{\"grÖße\": 1}", FIELD_AMBIGUOUS);
    expect_refused("$['größe']", "{\"GR\\u00d6\\u1e9eE\": 1}", FIELD_AMBIGUOUS);
    expect_marks("$['größe']", "{\"größe\": 1}", "{\"größe\": \"T\"}", 1);
    expect_refused("$['σ']", "{\"Σ\": 1}", FIELD_AMBIGUOUS);
    expect_refused("$['σ']", "{\"ς\": 1}", FIELD_AMBIGUOUS); /* final sigma */
    /* an index and a member named by it are one to JavaScript and PHP */
    expect_refused("$.items[0]", "{\"items\": {\"0\": \"s1\"}}", FIELD_AMBIGUOUS);
    expect_refused("$..12", "{\"a\": [0,1,2,3,4,5,6,7,8,9,10,11,12]}", FIELD_AMBIGUOUS);
    expect_marks("$.items[0]", "{\"items\": {\"00\": 1, \"1\": 2}}",
                 "{\"items\": {\"00\": 1, \"1\": 2}}", 0);
    /* the exact name still matches; other names, and names at levels no rule
     * reaches, pass */
    expect_marks("$.card.number", "{\"card\": {\"number\": 1, \"numbers\": 2}}",
                 "{\"card\": {\"number\": \"T\", \"numbers\": 2}}", 1);
    expect_marks("$.card.number", "{\"other\": {\"NUMBER\": 1}}", "{\"other\": {\"NUMBER\": 1}}",
                 0);
    expect_marks("$.card.number", "{\"card\": {\"n\xc3\xbcmber\": 1}}",
                 "{\"card\": {\"n\xc3\xbcmber\": 1}}", 0);
    assert_int_equal(field_status(FIELD_AMBIGUOUS), 422);
    assert_string_equal(field_result_name(FIELD_AMBIGUOUS), "ambiguous_name");
}

/* Members JavaScript copies into another object (json.c proto_name()):
 * "__proto__" anywhere, "prototype" in a "constructor"; refused whatever
 * level a rule reaches, since a copy or merge moves them elsewhere. */
static void
test_prototype_names(void **state)
{
    (void)state;
    expect_refused("$.card.number", "{\"card\": {\"__proto__\": {\"number\": \"4111\"}}}",
                   FIELD_AMBIGUOUS);
    expect_refused("$.card.number", "{\"__proto__\": {\"card\": {\"number\": 1}}}",
                   FIELD_AMBIGUOUS);
    expect_refused("$.card.number", "{\"x\": [{\"__pr\\u006fto__\": 1}]}", FIELD_AMBIGUOUS);
    expect_refused("$.card.number",
                   "{\"card\": {}, \"constructor\": {\"prototype\": {\"number\": 1}}}",
                   FIELD_AMBIGUOUS);
    expect_refused("$..a", "[{\"constructor\": {\"a\": 1, \"prototype\": {}}}]", FIELD_AMBIGUOUS);
    /* other spellings are other names to JavaScript; "prototype" elsewhere,
     * and a "constructor" that is no object, carry nothing */
    expect_marks("$.a", "{\"__PROTO__\": 1, \"__proto\": 2, \"a\": 3}",
                 "{\"__PROTO__\": 1, \"__proto\": 2, \"a\": \"T\"}", 1);
    expect_marks("$.a", "{\"prototype\": {\"a\": 1}, \"constructor\": 2}",
                 "{\"prototype\": {\"a\": 1}, \"constructor\": 2}", 0);
    expect_marks("$..a", "[{\"constructor\": 1}, {\"prototype\": 2}]",
                 "[{\"constructor\": 1}, {\"prototype\": 2}]", 0);
    expect_marks("$.a", "{\"constructor\": [{\"prototype\": 1}]}",
                 "{\"constructor\": [{\"prototype\": 1}]}", 0);
    expect_marks("$.a", "{\"constructor\": {\"x\": {\"prototype\": 1}}}",
                 "{\"constructor\": {\"x\": {\"prototype\": 1}}}", 0);
}

/* field_json_member(): the members of the top level named so, compared
 * decoded, each value and a NUL (a string's characters, nothing for
 * another kind); nested ones and other bodies have none; bad JSON fails. */
static void
test_json_member_of_top_level(void **state)
{
    (void)state;
    struct field_keyset *ks = keyset("k1", K1, NULL, NULL);
    static const struct {
        const char *body;
        unsigned count;
        const char *values; /* with '|' for each NUL */
    } cases[] = {
        {"{\"_method\": \"PUT\", \"a\": 1}", 1, "PUT|"},
        {" {\"a\": {\"_method\": \"X\"}, \"\\u005fmethod\" : \"p\\u0055t\"} ", 1, "pUt|"},
        {"{\"_method\": \"POST\", \"_method\": [1], \"_method\": \"PUT\"}", 3, "POST||PUT|"},
        /* a U+0000 in the value would end it early: it names nothing */
        {"{\"_method\": \"PUT\\u0000x\", \"_method\": \"GET\"}", 2, "|GET|"},
        {"{\"_methodx\": \"PUT\", \"x\": [\"_method\"]}", 0, ""},
        {"[{\"_method\": \"PUT\"}]", 0, ""},
        {"{}", 0, ""},
        {"\"_method\"", 0, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct strbuf v = {0};
        char err[FIELD_ERR_MAX];
        unsigned n = 99;
        assert_int_equal(
            field_json_member(ks, cases[i].body, strlen(cases[i].body), "_method", &v, &n, err),
            FIELD_OK);
        assert_int_equal(n, cases[i].count);
        for (size_t k = 0; k < v.len; k++)
            if (v.data[k] == '\0')
                v.data[k] = '|';
        assert_int_equal(v.len, strlen(cases[i].values));
        assert_memory_equal(v.data != NULL ? v.data : "", cases[i].values, v.len);
        strbuf_free(&v);
    }
    static const char *const bad[] = {"{\"_method\": \"PUT\"", "{\"_method\": \"\\x\"}",
                                      "{\"a\": tru}", "{\"_method\" \"PUT\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct strbuf v = {0};
        char err[FIELD_ERR_MAX];
        unsigned n;
        assert_int_equal(field_json_member(ks, bad[i], strlen(bad[i]), "_method", &v, &n, err),
                         FIELD_MALFORMED);
        strbuf_free(&v);
    }
    field_keyset_free(&ks);
}

/* A value of another kind than a rule's next step expects, which a binder
 * that wraps a value into an array of one or unwraps an array of one
 * (Jackson's ACCEPT_SINGLE_VALUE_AS_ARRAY, UNWRAP_SINGLE_VALUE_ARRAYS)
 * would read as the rule's field: refused, or (an object where an array's
 * element is expected) read as that element too. */
static void
test_shapes(void **state)
{
    (void)state;
    /* a name step facing an array, at the root or below */
    expect_refused("$.card.number", "{\"card\": [{\"number\": \"4111\"}]}", FIELD_SHAPE);
    expect_refused("$.card.number", "[{\"card\": {\"number\": \"4111\"}}]", FIELD_SHAPE);
    expect_refused("$.card.number", "{\"card\": []}", FIELD_SHAPE);
    expect_refused("$.patients.ssn", "{\"patients\": [{\"ssn\": 1}]}", FIELD_SHAPE);
    expect_refused("$..card.number", "{\"x\": {\"card\": [{\"number\": 1}]}}", FIELD_SHAPE);
    /* an index or * step facing a string, number or boolean */
    expect_refused("$.items[0]", "{\"items\": \"4111\"}", FIELD_SHAPE);
    expect_refused("$.items[3]", "{\"items\": 4111}", FIELD_SHAPE);
    expect_refused("$.tags[*]", "{\"tags\": true}", FIELD_SHAPE);
    expect_refused("$.a[*][0]", "{\"a\": \"x\"}", FIELD_SHAPE);
    expect_refused("$[0]", "\"4111\"", FIELD_SHAPE);
    /* an object where [0] or * has steps after it: also the element */
    expect_marks("$.patients[*].ssn", "{\"patients\": {\"ssn\": \"P\"}}",
                 "{\"patients\": {\"ssn\": \"T\"}}", 1);
    expect_marks("$.patients[*].ssn", "{\"patients\": {\"a\": {\"ssn\": 1}, \"ssn\": 2}}",
                 "{\"patients\": {\"a\": {\"ssn\": \"T\"}, \"ssn\": \"T\"}}", 2);
    expect_marks("$.items[0].n", "{\"items\": {\"n\": 1}}", "{\"items\": {\"n\": \"T\"}}", 1);
    expect_marks("$.a[*][0].n", "{\"a\": {\"n\": 1}}", "{\"a\": {\"n\": \"T\"}}", 1);
    expect_marks("$.items[1].n", "{\"items\": {\"n\": 1}}", "{\"items\": {\"n\": 1}}", 0);
    /* what the rules expect: passed as before */
    expect_marks("$.card.*", "{\"card\": {\"a\": 1}}", "{\"card\": {\"a\": \"T\"}}", 1);
    expect_marks("$.items[0]", "{\"items\": {\"a\": 1}}", "{\"items\": {\"a\": 1}}", 0);
    expect_marks("$.items[0]", "{\"items\": null}", "{\"items\": null}", 0);
    expect_marks("$.patients[*].ssn", "{\"patients\": \"x\"}", "{\"patients\": \"x\"}", 0);
    expect_marks("$.card.number", "{\"card\": \"x\"}", "{\"card\": \"x\"}", 0);
    expect_marks("$.card.number", "{\"other\": [1]}", "{\"other\": [1]}", 0);
    expect_marks("$..email", "[[{\"email\": 1}], 2]", "[[{\"email\": \"T\"}], 2]", 1);
    expect_marks("$..[0]", "{\"a\": \"x\", \"b\": [1]}", "{\"a\": \"x\", \"b\": [\"T\"]}", 1);
    assert_int_equal(field_status(FIELD_SHAPE), 422);
    assert_string_equal(field_result_name(FIELD_SHAPE), "shape_mismatch");
}

/* A name rule's state faces every element of an array under it (whether
 * the name writes the element's index: json.c step_set()). The name's index
 * is taken once, when the rule is compiled: only a canonical decimal names
 * an element (formatting each index for each rule cost 2.6 s of CPU for 64
 * rules over a 1 MiB array; measured, not timed here). */
static void
test_element_index_names(void **state)
{
    (void)state;
    assert_int_equal(field_name_index("0", 1), 0);
    assert_int_equal(field_name_index("12", 2), 12);
    assert_int_equal(field_name_index("999999999999999999", 18), 999999999999999999);
    assert_int_equal(field_name_index("1000000000000000000", 19), -1);
    assert_int_equal(field_name_index("00", 2), -1);
    assert_int_equal(field_name_index("+1", 2), -1);
    assert_int_equal(field_name_index("1a", 2), -1);
    assert_int_equal(field_name_index("", 0), -1);
}

static void
test_limits_and_statuses(void **state)
{
    (void)state;
    size_t big = FIELD_VALUE_MAX + 1;
    char *body = malloc(big + 16);
    assert_non_null(body);
    memcpy(body, "{\"a\": \"", 7);
    memset(body + 7, 'x', big);
    memcpy(body + 7 + big, "\"}", 3);
    expect_refused("$.a", body, FIELD_TOO_LARGE);
    expect_marks("$.b", body, body, 0); /* unmatched: only copied */
    body[7 + big - 1] = '"';
    body[7 + big] = '}';
    body[7 + big + 1] = '\0'; /* exactly FIELD_VALUE_MAX */
    enum field_result res;
    unsigned nf;
    char *m = enc_marked("$.a", body, &res, &nf);
    assert_non_null(m);
    assert_string_equal(m, "{\"a\": \"T\"}");
    free(m);
    free(body);
    assert_int_equal(field_status(FIELD_OK), 200);
    assert_int_equal(field_status(FIELD_MALFORMED), 400);
    assert_int_equal(field_status(FIELD_NOT_SCALAR), 422);
    assert_int_equal(field_status(FIELD_TOO_LARGE), 413);
    assert_int_equal(field_status(FIELD_BAD_TOKEN), 400);
    assert_int_equal(field_status(FIELD_INTERNAL), 500);
    assert_string_equal(field_result_name(FIELD_NOT_SCALAR), "not_scalar");
    assert_string_equal(field_result_name(FIELD_BAD_TOKEN), "bad_token");
    /* output appended after what the buffer had; refusal restores it */
    struct field_keyset *ks = keyset("k1", K1, NULL, NULL);
    struct field_rules *r = rules1("$.a", false);
    struct strbuf out = {0};
    char err[FIELD_ERR_MAX];
    strbuf_append(&out, "head|", 5);
    assert_int_equal(field_encrypt_body(r, ks, "{\"a\": 1}", 8, 0, &out, NULL, err), FIELD_OK);
    assert_int_equal(strncmp(out.data, "head|{\"a\": \"al1:k1:n:", 21), 0);
    size_t had = out.len;
    assert_int_equal(field_encrypt_body(r, ks, "{\"a\": {}}", 9, 0, &out, NULL, err),
                     FIELD_NOT_SCALAR);
    assert_int_equal(out.len, had);
    assert_string_equal(err, "path 1 matches an object at byte 6: only strings, numbers and "
                             "booleans are encrypted");
    assert_int_equal(field_encrypt_body(r, ks, "{\"a\" 1}", 7, 0, &out, NULL, err),
                     FIELD_MALFORMED);
    assert_string_equal(err, "malformed JSON at byte 5: expected ':'");
    strbuf_free(&out);
    field_rules_free(&r);
    field_keyset_free(&ks);
}

/* A value of one byte becomes a token of some 60: a body of them grows 30
 * times. The caller's bound stops it as it grows, and nothing is kept. */
static void
test_growth_bound(void **state)
{
    (void)state;
    struct field_keyset *ks = keyset("k1", K1, NULL, NULL);
    struct field_rules *r = rules1("$.a[*]", false);
    struct strbuf body = {0}, out = {0};
    char err[FIELD_ERR_MAX];
    unsigned n = 0;

    strbuf_append(&body, "{\"a\":[1", 7);
    for (int i = 0; i < 9999; i++)
        strbuf_append(&body, ",1", 2);
    strbuf_append(&body, "]}", 2);
    assert_int_equal(field_encrypt_body(r, ks, body.data, body.len, 0, &out, &n, err), FIELD_OK);
    assert_int_equal(n, 10000);
    assert_true(out.len > 20 * body.len);
    size_t whole = out.len;
    strbuf_free(&out);
    strbuf_append(&out, "head|", 5);
    assert_int_equal(field_encrypt_body(r, ks, body.data, body.len, 4 * body.len, &out, &n, err),
                     FIELD_BODY_LARGE);
    assert_int_equal(out.len, 5);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err, "with its fields encrypted would be over"));
    assert_int_equal(field_status(FIELD_BODY_LARGE), 413);
    assert_string_equal(field_result_name(FIELD_BODY_LARGE), "body_too_large");
    /* a bound the whole fits in */
    strbuf_free(&out);
    assert_int_equal(field_encrypt_body(r, ks, body.data, body.len, whole, &out, &n, err),
                     FIELD_OK);
    assert_int_equal(out.len, whole);
    strbuf_free(&out);
    strbuf_free(&body);
    field_rules_free(&r);
    field_keyset_free(&ks);
}

static void
test_keyset_text(void **state)
{
    (void)state;
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"", "not a JSON object"},
        {"[]", "not a JSON object"},
        {"{\"primary\": \"k1\", \"keys\": []}", "\"tenant\""},
        {"{\"tenant\": \"a b\", \"primary\": \"k1\", \"keys\": []}", "\"tenant\""},
        {"{\"tenant\": \"t\", \"keys\": []}", "\"primary\""},
        {"{\"tenant\": \"t\", \"primary\": \"k1\", \"keys\": []}", "\"keys\""},
        {"{\"tenant\": \"t\", \"primary\": \"k1\", \"keys\": {}}", "\"keys\""},
        {"{\"tenant\": \"t\", \"primary\": \"k1\", \"keys\": [{\"id\": \"k:1\", \"key\": \"" K1
         "\"}]}",
         "keys[0].id"},
        {"{\"tenant\": \"t\", \"primary\": \"k1\", \"keys\": [{\"id\": \"k1\", \"key\": \"00\"}]}",
         "keys[0].key (k1): expected 64 hex digits"},
        {"{\"tenant\": \"t\", \"primary\": \"k1\", \"keys\": [{\"id\": \"k1\", \"key\": \"" K1
         "0\"}]}",
         "64 hex digits"},
        {"{\"tenant\": \"t\", \"primary\": \"k1\", \"keys\": [{\"id\": \"k1\", \"key\": "
         "\"zz02030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"}]}",
         "64 hex digits"},
        {"{\"tenant\": \"t\", \"primary\": \"k1\", \"keys\": [{\"id\": \"k1\", \"key\": \"" K1
         "\"}, {\"id\": \"k1\", \"key\": \"" K2 "\"}]}",
         "keys[1].id: k1 is there twice"},
        {"{\"tenant\": \"t\", \"primary\": \"k9\", \"keys\": [{\"id\": \"k1\", \"key\": \"" K1
         "\"}]}",
         "no key has the id k9"},
        /* a key pasted as the primary is not echoed (checked below) */
        {"{\"tenant\": \"t\", \"primary\": \"" K1 "\", \"keys\": [{\"id\": \"k1\", \"key\": \"" K1
         "\"}]}",
         "\"primary\": expected the id of one of the keys"},
        /* what cJSON would take quietly: a member twice (the first wins),
         * text after the object, a NUL that ends a string early */
        {"{\"tenant\": \"t\", \"primary\": \"k1\", \"primary\": \"k2\", \"keys\": [{\"id\": "
         "\"k1\", \"key\": \"" K1 "\"}, {\"id\": \"k2\", \"key\": \"" K2 "\"}]}",
         "\"primary\" is given twice in one object"},
        {"{\"tenant\": \"t\", \"primary\": \"k1\", \"keys\": [{\"id\": \"k1\", \"key\": \"" K1
         "\", \"key\": \"" K2 "\"}]}",
         "\"key\" is given twice in one object"},
        {"{\"tenant\": \"t\", \"primary\": \"k1\", \"keys\": [{\"id\": \"k1\", \"key\": \"" K1
         "\"}]} {",
         "text after the JSON object"},
        {"{\"tenant\": \"t\", \"primary\": \"k1\\u0000x\", \"keys\": [{\"id\": \"k1\", \"key\": "
         "\"" K1 "\"}]}",
         "a NUL"},
        /* no key of its own: all zero, or another id's key */
        {"{\"tenant\": \"t\", \"primary\": \"k1\", \"keys\": [{\"id\": \"k1\", \"key\": \""
         "0000000000000000000000000000000000000000000000000000000000000000\"}]}",
         "keys[0].key (k1): all zero"},
        {"{\"tenant\": \"t\", \"primary\": \"k1\", \"keys\": [{\"id\": \"k1\", \"key\": \"" K1
         "\"}, {\"id\": \"k2\", \"key\": \"" K1 "\"}]}",
         "keys[1].key (k2): the same key as keys[0] (k1)"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct field_keyset *ks = NULL;
        char err[FIELD_ERR_MAX] = "";
        assert_int_equal(field_keyset_parse(bad[i].text, strlen(bad[i].text), &ks, err), -EINVAL);
        assert_null(ks);
        if (strstr(err, bad[i].msg) == NULL)
            fail_msg("%s: %s (want %s)", bad[i].text, err, bad[i].msg);
        assert_null(strstr(err, "0102030405"));
    }
}

static void
test_keyset_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_field.XXXXXX", path[128], link[128], err[FIELD_ERR_MAX];
    struct field_keyset *ks = NULL;
    const char *text = "{\"tenant\": \"acme\", \"primary\": \"k1\", \"keys\": [{\"id\": \"k1\", "
                       "\"key\": \"" K1 "\"}]}";
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/keys.json", dir);
    snprintf(link, sizeof(link), "%s/link.json", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(field_keyset_load(path, &ks, err), 0);
    assert_string_equal(field_keyset_primary(ks), "k1");
    field_keyset_free(&ks);
    assert_null(ks);
    /* n keysets from one read, and the stamp of the file read */
    struct field_keyset *three[3];
    struct file_stamp stamp, now;
    assert_int_equal(field_keyset_load_n(path, three, 3, &stamp, err), 0);
    assert_int_equal(file_stamp(path, &now), 0);
    assert_true(file_stamp_equal(&stamp, &now));
    for (int i = 0; i < 3; i++) {
        assert_string_equal(field_keyset_primary(three[i]), "k1");
        field_keyset_free(&three[i]);
    }
    chmod(path, 0400);
    assert_int_equal(field_keyset_load(path, &ks, err), 0);
    field_keyset_free(&ks);
    /* readable by others: refused, and says why */
    chmod(path, 0640);
    assert_int_equal(field_keyset_load(path, &ks, err), -EPERM);
    assert_non_null(strstr(err, "mode 0640"));
    chmod(path, 0604);
    assert_int_equal(field_keyset_load(path, &ks, err), -EPERM);
    chmod(path, 0600);
    /* a symlink, a directory, a missing file */
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(field_keyset_load(link, &ks, err), -ELOOP);
    assert_non_null(strstr(err, "a symbolic link"));
    assert_int_equal(field_keyset_load(dir, &ks, err), -EPERM);
    assert_non_null(strstr(err, "not a regular file"));
    unlink(link);
    /* a FIFO nobody writes to: refused, not waited on */
    assert_int_equal(mkfifo(link, 0600), 0);
    assert_int_equal(field_keyset_load(link, &ks, err), -EPERM);
    assert_non_null(strstr(err, "not a regular file"));
    unlink(link);
    unlink(path);
    assert_int_equal(field_keyset_load(path, &ks, err), -ENOENT);
    assert_non_null(strstr(err, path));
    /* bad content: the path and the reason */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_int_equal(write(fd, "{}", 2), 2);
    close(fd);
    assert_int_equal(field_keyset_load(path, &ks, err), -EINVAL);
    assert_non_null(strstr(err, "keys.json: \"tenant\""));
    unlink(path);
    rmdir(dir);
    assert_null(ks);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_syntax),
        cmocka_unit_test(test_path_matching),
        cmocka_unit_test(test_several_rules),
        cmocka_unit_test(test_json_forms),
        cmocka_unit_test(test_every_prefix),
        cmocka_unit_test(test_roundtrip_types),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_siv_matches_openssl),
        cmocka_unit_test(test_lookalike_names),
        cmocka_unit_test(test_prototype_names),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_element_index_names),
        cmocka_unit_test(test_json_member_of_top_level),
        cmocka_unit_test(test_limits_and_statuses),
        cmocka_unit_test(test_growth_bound),
        cmocka_unit_test(test_keyset_text),
        cmocka_unit_test(test_keyset_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
