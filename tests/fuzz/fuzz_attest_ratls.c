/* fuzz_attest_ratls.c - libFuzzer harness for the RA-TLS tagged-evidence
 * parser (the value of a certificate's 2.23.133.5.4.9 extension, or of the
 * fresh-evidence TLS extension): any input is refused with a one-line
 * reason or parsed into slices that stay inside it, never crashes. */
#include <stdint.h>
#include <string.h>

#include "attest/ratls.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ratls_tagged t;
    char err[ATTEST_ERR_MAX] = "";

    enum attest_result r = ratls_parse(data, size, &t, err);
    check(r == ATTEST_OK || (err[0] != '\0' && strchr(err, '\n') == NULL));
    if (r != ATTEST_OK)
        return 0;
    check(t.evidence >= data && t.evidence + t.evidence_len <= data + size);
    check(t.claims >= data && t.claims + t.claims_len <= data + size);
    check(!t.has_nonce || (t.nonce_len >= RATLS_NONCE_MIN && t.nonce_len <= RATLS_NONCE_MAX));
    (void)ratls_format(t.evidence, t.evidence_len);
    return 0;
}
