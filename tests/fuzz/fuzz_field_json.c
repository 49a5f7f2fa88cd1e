/* fuzz_field_json.c - libFuzzer harness for the JSON rewriter. The first
 * byte picks the rules. A body is valid or refused as a whole (nothing
 * appended); a valid body with rules that match nothing is copied byte for
 * byte, or refused for a name or a shape a backend could read as a rule's,
 * or for U+0000 in a name (which tell nothing of its validity); a body that
 * decrypts was valid JSON, and then its encryption decrypts too, to a body
 * whose encryption under the same rules encrypts as many fields. The
 * top-level members of a name (field_json_member()) are found in every valid
 * body, one value (and its NUL) each. */
#include <stdlib.h>
#include <string.h>

#include "field_keys.h"

static struct field_rules *
rules_for(unsigned pick)
{
    static struct field_rules *r[4];
    static const struct field_rule_spec specs[4][2] = {
        {{"$.nothing.here", false}, {"$[7]", false}},
        {{"$..a", false}, {"$.b[*]", true}},
        {{"$.*", true}, {"$[*]", false}},
        {{"$..*", false}, {"$", false}},
    };
    char err[FIELD_ERR_MAX];
    if (r[pick] == NULL)
        check(field_rules_compile(specs[pick], 2, &r[pick], err) == 0);
    return r[pick];
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct field_keyset *ks = fuzz_keyset();
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    struct strbuf copy = {0}, enc = {0}, dec = {0}, enc2 = {0}, dec2 = {0}, members = {0};
    char err[FIELD_ERR_MAX];
    unsigned n = 0, n2 = 0;

    /* rules that match nothing: a copy, or a refusal that appends nothing */
    enum field_result r = field_encrypt_body(rules_for(0), ks, in, len, 0, &copy, &n, err);
    check(r == FIELD_OK || r == FIELD_MALFORMED || r == FIELD_AMBIGUOUS || r == FIELD_SHAPE);
    check(r == FIELD_OK ? copy.len == len && n == 0 && (len == 0 || !memcmp(copy.data, in, len))
                        : copy.len == 0);
    /* (U+0000 in a member name is valid JSON, refused as malformed by
     * encryption only: a backend could read the name as a C string) */
    bool valid = r == FIELD_OK, invalid = r == FIELD_MALFORMED && !strstr(err, "U+0000");

    r = field_json_member(ks, in, len, "_method", &members, &n2, err);
    check(r == FIELD_OK || r == FIELD_MALFORMED);
    check(r == FIELD_OK || !valid);
    if (r == FIELD_OK) {
        size_t nuls = 0;
        for (size_t i = 0; i < members.len; i++)
            nuls += members.data[i] == '\0';
        check(nuls == n2);
    }

    r = field_decrypt_body(ks, in, len, &dec2, &n2, err);
    check(r == FIELD_OK || r == FIELD_MALFORMED || r == FIELD_BAD_TOKEN);
    check(r != FIELD_OK || !invalid);
    check(r == FIELD_OK || dec2.len == 0);
    bool decrypts = r == FIELD_OK;

    r = field_encrypt_body(rules_for(data[0] % 4), ks, in, len, 0, &enc, &n, err);
    /* (a refusal comes at the first fault: an object a rule matches may
     * come before the syntax error) */
    check(valid ? r != FIELD_MALFORMED : !invalid || r != FIELD_OK);
    check(r == FIELD_OK || enc.len == 0);
    if (r == FIELD_OK && decrypts) {
        check(field_decrypt_body(ks, enc.data, enc.len, &dec, &n2, err) == FIELD_OK);
        check(field_encrypt_body(rules_for(data[0] % 4), ks, dec.data, dec.len, 0, &enc2, &n2,
                                 err) == FIELD_OK);
        check(n2 == n);
    }
    strbuf_free(&copy);
    strbuf_free(&enc);
    strbuf_free(&dec);
    strbuf_free(&enc2);
    strbuf_free(&dec2);
    strbuf_free(&members);
    return 0;
}
