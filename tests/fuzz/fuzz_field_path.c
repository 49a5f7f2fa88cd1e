/* fuzz_field_path.c - libFuzzer harness for the encrypt path parser: a
 * path is accepted or refused with a message that says where; an accepted
 * one compiles into rules (alone and as the second of two, deterministic or
 * not) and those rules run over a fixed body without failing other than by
 * refusing a matched object or array, or a name or a shape a backend could
 * read as the rule's. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "field_keys.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char body[] = "{\"a\": {\"b\": [1, \"x\", true, null]}, \"a.b\": \"\\u00e9\", "
                               "\"\": [[{\"c\": -1.5e3}]]}";
    char *path = malloc(size + 1), err[FIELD_ERR_MAX];
    struct field_rules *rules = NULL;
    struct strbuf out = {0};

    check(path != NULL);
    memcpy(path, data, size);
    path[size] = '\0';
    err[0] = '\0';
    int rc = field_path_check(path, err);
    if (rc != 0) {
        check(rc == -EINVAL && strncmp(err, "at character ", 13) == 0);
        free(path);
        return 0;
    }
    struct field_rule_spec specs[2] = {{"$.zz", false}, {path, size % 2 == 0}};
    check(field_rules_compile(specs + 1, 1, &rules, err) == 0);
    field_rules_free(&rules);
    check(field_rules_compile(specs, 2, &rules, err) == 0);
    unsigned n = 0;
    enum field_result r =
        field_encrypt_body(rules, fuzz_keyset(), body, strlen(body), 0, &out, &n, err);
    check(r == FIELD_OK || r == FIELD_NOT_SCALAR || r == FIELD_AMBIGUOUS || r == FIELD_SHAPE);
    check(r == FIELD_OK ? out.len >= strlen(body) : out.len == 0 && n == 0);
    strbuf_free(&out);
    field_rules_free(&rules);
    free(path);
    return 0;
}
