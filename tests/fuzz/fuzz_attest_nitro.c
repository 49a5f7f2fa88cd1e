/* fuzz_attest_nitro.c - libFuzzer harness for the Nitro attestation document
 * verifier: any input is refused or accepted with a one-line reason, never
 * crashes, and is only accepted inside its validity window (checked at the
 * time of the seed documents, so mutations keep reaching the crypto). */
#include <stdint.h>
#include <string.h>

#include "attest/nitro.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct attest_claims claims;
    struct attest_policy pol = {.now = 1706123000}; /* 2024-01-24 19:03:20 UTC */
    char err[ATTEST_ERR_MAX] = "";

    enum attest_result r = attest_nitro_verify(data, size, &pol, &claims, err);
    check(r == ATTEST_OK || (err[0] != '\0' && strchr(err, '\n') == NULL));
    check(r != ATTEST_OK || claims.npcrs <= ATTEST_PCR_MAX);
    return 0;
}
