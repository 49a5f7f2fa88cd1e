/* fuzz_endpoint.c - libFuzzer harness for endpoint_parse() and endpoint_format().
 *
 * Any input must parse or be rejected with a message; anything accepted must format to
 * text that parses back to the same endpoint and formats identically (a fixed point). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "net/endpoint.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The parser takes a C string; an exact-size heap copy lets ASan catch over-reads. */
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';

    struct endpoint ep, back;
    const char *err = NULL;
    enum parse_result r = endpoint_parse(s, &ep, &err);
    if (r != PARSE_OK) {
        if (r != PARSE_INVALID || err == NULL || err[0] == '\0')
            abort();
        free(s);
        return 0;
    }
    if (err != NULL)
        abort();

    char text[512], again[512];
    size_t n = endpoint_format(&ep, text, sizeof(text));
    if (n >= sizeof(text) || n != strlen(text))
        abort();
    if (endpoint_parse(text, &back, &err) != PARSE_OK)
        abort();
    if (!endpoint_equal(&ep, &back) || !endpoint_equal(&back, &ep))
        abort();
    if (endpoint_format(&back, again, sizeof(again)) != n || strcmp(text, again) != 0)
        abort();
    /* Truncated output keeps the full length and stays terminated. */
    char small[8];
    if (endpoint_format(&ep, small, sizeof(small)) != n || strlen(small) != (n < 8 ? n : 7))
        abort();

    free(s);
    return 0;
}
