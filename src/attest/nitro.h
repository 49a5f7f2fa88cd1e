/* nitro.h - AWS Nitro Enclaves attestation documents (docs/attestation.md). */
#ifndef AIRLOCK_ATTEST_NITRO_H
#define AIRLOCK_ATTEST_NITRO_H

#include <stddef.h>
#include <stdint.h>

#include "attest/claims.h"

#define NITRO_DOC_MAX 65536 /* larger input is refused before decoding */
#define NITRO_CABUNDLE_MAX 16

/* Verifies the attestation document doc (len bytes of raw CBOR: a COSE_Sign1,
 * untagged or with tag 18) against pol: ES384 signature by the leaf
 * certificate over the payload bytes as received, chain from the leaf
 * through cabundle[1..] to a pinned root (pol->roots, by default the AWS
 * Nitro Enclaves root G1; cabundle[0] is never trusted) or to pol->sim_root,
 * every certificate valid at pol->now, then the policy's PCRs, nonce,
 * user_data and public_key. Fills *claims as far as decoding got (on
 * ATTEST_OK: completely). Returns ATTEST_OK or the failure with a one-line
 * reason in err (ATTEST_ERR_MAX bytes). Does not keep pointers into doc. */
enum attest_result attest_nitro_verify(const uint8_t *doc, size_t len,
                                       const struct attest_policy *pol,
                                       struct attest_claims *claims, char *err);

/* The COSE Sig_structure ["Signature1", protected, h'', payload] around the
 * given byte strings, as the ES384 signature covers it. Returns a malloc'd
 * buffer of *out_len bytes (the caller frees it), or NULL. */
uint8_t *attest_nitro_sig_structure(const uint8_t *prot, size_t plen, const uint8_t *payload,
                                    size_t dlen, size_t *out_len);

/* The AWS Nitro Enclaves root G1 (PEM), the default pinned root. */
extern const char attest_nitro_aws_root_pem[];

#endif
