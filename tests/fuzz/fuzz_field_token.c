/* fuzz_field_token.c - libFuzzer harness for the token parser: only a
 * string with the prefix is parsed; a parsed token's slices lie inside it;
 * opening any input gives a value or a refusal (never a crash), and a value
 * it gives seals again into a token that opens to the same value. */
#include <stdlib.h>
#include <string.h>

#include "field_keys.h"

static int
inside(const char *s, size_t n, const char *base, size_t len)
{
    return s >= base && s + n <= base + len;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct field_keyset *ks = fuzz_keyset();
    struct field_token tok;
    struct strbuf val = {0}, again = {0}, back = {0};
    char err[FIELD_ERR_MAX];
    enum field_type type, type2;

    enum field_result r = field_token_parse(in, size, &tok, err);
    check(r == FIELD_OK || r == FIELD_BAD_TOKEN);
    if (!field_token_claimed(in, size))
        check(r == FIELD_BAD_TOKEN);
    if (r == FIELD_OK) {
        check(tok.kid_len >= 1 && tok.kid_len <= FIELD_KEY_ID_MAX);
        check(inside(tok.kid, tok.kid_len, in, size));
        check(inside(tok.payload, tok.payload_len, in, size));
        check(tok.header_len < size && in[tok.header_len - 1] == ':');
        check(tok.payload == in + tok.header_len);
    }
    r = field_open(ks, in, size, &val, &type, err);
    check(r == FIELD_OK || r == FIELD_BAD_TOKEN);
    if (r == FIELD_OK) {
        check(field_token_parse(in, size, &tok, err) == FIELD_OK);
        /* what opens seals again (under the primary) and opens the same */
        struct field_rule_spec spec = {"$.x", tok.deterministic};
        struct field_rules *rules = NULL;
        check(field_rules_compile(&spec, 1, &rules, err) == 0);
        check(field_seal(ks, rules, 0, type, (const uint8_t *)val.data, val.len, &again, err) ==
              FIELD_OK);
        check(field_open(ks, again.data, again.len, &back, &type2, err) == FIELD_OK);
        check(type2 == type && back.len == val.len &&
              (val.len == 0 || memcmp(back.data, val.data, val.len) == 0));
        field_rules_free(&rules);
    } else {
        check(val.len == 0);
    }
    strbuf_free(&val);
    strbuf_free(&again);
    strbuf_free(&back);
    return 0;
}
