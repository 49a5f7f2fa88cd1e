/* snp.h - AMD SEV-SNP attestation reports (docs/attestation.md). */
#ifndef AIRLOCK_ATTEST_SNP_H
#define AIRLOCK_ATTEST_SNP_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "attest/claims.h"

#define SNP_REPORT_LEN 1184

/* Verifies an ATTESTATION_REPORT (version 2 or later, exactly
 * SNP_REPORT_LEN bytes): its ECDSA P-384/SHA-384 signature by the VCEK
 * certificate vcek, which must be for this chip (hwID) and this reported TCB,
 * and chain through intermediates (the ASK; may be NULL) to a pinned root in
 * pol->roots (the ARK; required), all valid at pol->now; then the policy:
 * debug refused unless pol->allow_debug, the measurement, the minimum TCB,
 * REPORT_DATA. Fills *claims (on ATTEST_OK completely). Returns ATTEST_OK or
 * the failure with a one-line reason in err (ATTEST_ERR_MAX bytes). */
enum attest_result attest_snp_verify(const uint8_t *report, size_t len, X509 *vcek,
                                     STACK_OF(X509) * intermediates,
                                     const struct attest_policy *pol, struct attest_claims *claims,
                                     char *err);

#endif
