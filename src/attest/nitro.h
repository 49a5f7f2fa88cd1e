/* nitro.h - AWS Nitro Enclaves attestation documents (docs/attestation.md). */
#ifndef AIRLOCK_ATTEST_NITRO_H
#define AIRLOCK_ATTEST_NITRO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cbor.h>

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

/* Bounded CBOR helpers the Nitro document and NSM message decoders share. */

/* Decodes exactly len bytes as one CBOR item, after checking that every
 * declared length fits in the input and nesting is at most 8 deep (libcbor
 * allocates what a head declares). Returns the item (the caller decrefs it),
 * or NULL with a one-line reason naming what in err (ATTEST_ERR_MAX bytes). */
cbor_item_t *attest_cbor_decode(const uint8_t *p, size_t len, const char *what, char *err);

/* Is it a definite byte string? */
bool attest_cbor_is_bytes(const cbor_item_t *it);

/* Is it a definite text string equal to s? */
bool attest_cbor_is_text(const cbor_item_t *it, const char *s);

/* Writes the CBOR head of a major type with argument n into out (at most 9
 * bytes); returns its length. */
size_t attest_cbor_head(uint8_t *out, uint8_t major, uint64_t n);

/* The AWS Nitro Enclaves root G1 (PEM), the default pinned root. */
extern const char attest_nitro_aws_root_pem[];

#endif
