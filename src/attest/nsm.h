/* nsm.h - the nitro provider's messages to the Nitro Secure Module
 * (docs/attestation.md): the Attestation request it sends and the response
 * it decodes, apart from the device so that both are tested here. */
#ifndef AIRLOCK_ATTEST_NSM_H
#define AIRLOCK_ATTEST_NSM_H

#include <stddef.h>
#include <stdint.h>

#include "attest/provider.h"

#define NSM_REQUEST_MAX 0x1000 /* the driver's limits */
#define NSM_RESPONSE_MAX 0x3000

/* Encodes the Attestation request for req into out (cap bytes): user_data
 * is the report data; absent fields are null. Returns its length, or 0 when
 * it does not fit. */
size_t attest_nsm_encode(const struct attest_request *req, uint8_t *out, size_t cap);

/* Decodes an NSM response of len bytes. Returns 0 with *doc (malloc'd, the
 * caller frees it) holding the *doc_len bytes of the attestation document,
 * or with a one-line reason in err (ATTEST_ERR_MAX bytes): -EIO when the NSM
 * answered an Error (named in err), -EPROTO when the response is not a
 * well-formed Attestation or Error response. */
int attest_nsm_decode(const uint8_t *resp, size_t len, uint8_t **doc, size_t *doc_len, char *err);

#endif
