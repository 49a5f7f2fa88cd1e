/* field_keys.h - the keyset the field harnesses share: two keys, so that
 * tokens of the non-primary one decrypt too. */
#ifndef AIRLOCK_TESTS_FUZZ_FIELD_KEYS_H
#define AIRLOCK_TESTS_FUZZ_FIELD_KEYS_H

#include <string.h>

#include "field/field.h"
#include "fuzz.h"

static struct field_keyset *
fuzz_keyset(void)
{
    static struct field_keyset *ks;
    static const char text[] =
        "{\"tenant\": \"fuzz\", \"primary\": \"k2\", \"keys\": ["
        "{\"id\": \"k1\", \"key\": "
        "\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"},"
        "{\"id\": \"k2\", \"key\": "
        "\"2222222222222222222222222222222222222222222222222222222222222222\"}]}";
    char err[FIELD_ERR_MAX];
    if (ks == NULL)
        check(field_keyset_parse(text, strlen(text), &ks, err) == 0);
    return ks;
}

#endif
