/* fuzz_attest_tdx.c - libFuzzer harness for the TDX quote verifier (versions
 * 4 and 5): any input is refused or accepted with a one-line reason, never
 * crashes; checked at a time inside the seed quotes' PCK chains, so
 * mutations keep reaching the signatures. */
#include <stdint.h>
#include <string.h>

#include "attest/tdx.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct attest_claims claims;
    struct attest_policy pol = {.now = 1704067200}; /* 2024-01-01 00:00:00 UTC */
    char err[ATTEST_ERR_MAX] = "";

    enum attest_result r = attest_tdx_verify(data, size, &pol, &claims, err);
    check(r == ATTEST_OK || (err[0] != '\0' && strchr(err, '\n') == NULL));
    return 0;
}
