/* tdx.h - Intel TDX quotes, versions 4 and 5 (docs/attestation.md). */
#ifndef AIRLOCK_ATTEST_TDX_H
#define AIRLOCK_ATTEST_TDX_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "attest/claims.h"

#define TDX_QUOTE_MAX 65536

/* SHA-256 of the DER of "CN=Intel SGX Root CA", the default pinned root. */
extern const uint8_t attest_tdx_intel_root_sha256[32];

/* Verifies a TDX ECDSA quote, version 4 or 5 (att_key_type 2, tee_type 0x81;
 * version 5 with a TDX 1.0 or 1.5 body) of len bytes: the quote signature
 * over header (version 5: and body descriptor) and TD report by the
 * embedded attestation key, the QE report's binding of that key (REPORTDATA = SHA-256(key || QE
 * auth data)), the QE report's signature by the PCK leaf of the embedded
 * chain, and that chain to the Intel SGX Root CA (pol->roots if given, else
 * the chain's own root when its SHA-256 is attest_tdx_intel_root_sha256), all
 * valid at pol->now; the QE report is of Intel's TD quoting enclave (its
 * published identity, built in: signer, product, attributes, lowest SVN);
 * with pol->tdx_collateral, the QE and the platform's TCB are judged by
 * Intel's collateral instead (tdx_collateral_judge); then the policy:
 * debug TDs refused unless pol->allow_debug, MRTD (pol->measurement),
 * REPORTDATA (pol->user_data, zero-padded). Fills
 * *claims (on ATTEST_OK completely). Returns ATTEST_OK or the failure with a
 * one-line reason in err (ATTEST_ERR_MAX bytes). */
enum attest_result attest_tdx_verify(const uint8_t *quote, size_t len,
                                     const struct attest_policy *pol, struct attest_claims *claims,
                                     char *err);

/* Verifies leaf through the other certificates of chain (leaf may be
 * among them) to the Intel SGX Root CA: one of pol->roots if given, else
 * the one of chain whose SHA-256 is attest_tdx_intel_root_sha256; all valid
 * at pol->now. On success *root (may be NULL) is the root reached. what
 * names the chain in err. Returns ATTEST_OK or ATTEST_UNTRUSTED. */
enum attest_result attest_tdx_chain_verify(X509 *leaf, STACK_OF(X509) * chain,
                                           const struct attest_policy *pol, const char *what,
                                           X509 **root, char *err);

#endif
