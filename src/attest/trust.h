/* trust.h - what the evidence verifiers share: raw ECDSA signatures,
 * certificate chains checked at a given time, and their error messages. */
#ifndef AIRLOCK_ATTEST_TRUST_H
#define AIRLOCK_ATTEST_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "attest/claims.h"

/* Formats a one-line message into err (ATTEST_ERR_MAX bytes) and returns r,
 * so that a failure reads `return attest_fail(err, ATTEST_MALFORMED, ...)`. */
enum attest_result attest_fail(char *err, enum attest_result r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Verifies an ECDSA signature given as raw r and s of n bytes each (big-endian,
 * or little-endian as SEV-SNP stores them) over msg with digest md, by key,
 * which must be an EC key on the named group ("secp384r1", "prime256v1").
 * Returns ATTEST_OK or ATTEST_UNTRUSTED with err naming what (the "what"). */
enum attest_result attest_ecdsa_verify(EVP_PKEY *key, const char *group, const EVP_MD *md,
                                       const uint8_t *msg, size_t len, const uint8_t *r,
                                       const uint8_t *s, size_t n, bool little_endian,
                                       const char *what, char *err);

/* Whether now is within from..until, both included: RFC 5280 4.1.2.5 has
 * a certificate valid from notBefore through notAfter, inclusive, and a
 * CRL is taken in force the same way from thisUpdate through nextUpdate.
 * False when either is NULL or unreadable. */
bool attest_time_within(const ASN1_TIME *from, const ASN1_TIME *until, time_t now);

/* Verifies that leaf chains through untrusted (may be NULL) to one of anchors,
 * every certificate valid at now (attest_time_within()). On success *top (if not NULL) is the
 * anchor reached (borrowed from anchors). Returns ATTEST_OK or ATTEST_UNTRUSTED. */
enum attest_result attest_chain_verify(X509 *leaf, STACK_OF(X509) * untrusted,
                                       STACK_OF(X509) * anchors, time_t now, X509 **top, char *err);

/* Whether x may sign evidence: an end entity (not CA:TRUE) whose key usage,
 * when given, allows signatures. ATTEST_OK or ATTEST_UNTRUSTED naming what. */
enum attest_result attest_signer_check(X509 *x, const char *what, char *err);

/* Parses exactly len bytes of DER as one certificate; NULL if they are not. */
X509 *attest_x509_der(const uint8_t *der, size_t len);

/* Reads every certificate of a PEM buffer, in order; NULL if there is none or
 * one does not parse. Free with sk_X509_pop_free(sk, X509_free). */
STACK_OF(X509) * attest_x509_pem(const char *pem, size_t len);

/* Does evidence of this kind carry everything pol pins? PCRs, a nonce and a
 * public key are Nitro fields; a measurement is SEV-SNP's or TDX's MRTD; a
 * minimum TCB is SEV-SNP's reported_tcb; user_data (Nitro user_data, the
 * REPORT_DATA of SNP and TDX) every kind carries. A pin the evidence cannot
 * be held to is refused, never skipped: every verifier calls this before it
 * accepts. Permissions that do not apply (allow_debug for Nitro, a sim root
 * for SNP or TDX) change nothing and are not refused. Returns ATTEST_OK or
 * ATTEST_POLICY with err naming the first such pin. */
enum attest_result attest_policy_fits(const struct attest_policy *pol, enum attest_kind kind,
                                      char *err);

/* The policy checks SEV-SNP and TDX share: attest_policy_fits() for
 * c->kind, debug refused unless
 * pol->allow_debug (debug_what says what made it debug), the measurement
 * (named measurement_what), REPORT_DATA against pol->user_data zero-padded
 * to 64 bytes. Returns ATTEST_OK or ATTEST_POLICY. */
enum attest_result attest_report_policy(const struct attest_policy *pol,
                                        const struct attest_claims *c, const char *debug_what,
                                        const char *measurement_what, char *err);

/* Decodes the hex string s (even length, at most cap bytes) into out and
 * *len; false when it is not that. */
bool attest_hex(const char *s, uint8_t *out, size_t cap, size_t *len);

/* Parses a PCR given as "N=HEX" (N 0..31, 1..64 bytes of hex) into *p, as
 * the command lines take it. Returns 0 or -EINVAL. */
int attest_pcr_arg(const char *s, struct attest_pcr *p);

/* Parses an RFC 3339 time (2024-01-24T19:00:00Z, an optional fraction,
 * ignored: evidence is checked to the second, and Z or a +HH:MM / -HH:MM
 * offset) into *out; false when s is not one. */
bool attest_time_parse(const char *s, time_t *out);

/* Does the blob hold exactly these len bytes? */
bool attest_blob_equal(const struct attest_blob *b, const uint8_t *data, size_t len);

#endif
