/* ratls.h - attested TLS (RA-TLS): evidence bound to a TLS key, in a
 * certificate extension or fresh in the handshake (docs/attestation.md,
 * "Attested TLS").
 *
 * Format (the CCC interoperable RA-TLS one): X.509 extension OID
 * 2.23.133.5.4.9 (TCG DICE tagged evidence) whose value is CBOR
 *     tag 60000 ([evidence: bstr, claims: bstr])
 * claims: a CBOR map {"pubkey-hash": h'8201 5820 <SHA-256(DER SPKI)>,
 * "nonce": bstr (fresh evidence only)}; the evidence's report data (Nitro
 * and sim: user_data; SNP/TDX: REPORT_DATA) is SHA-256(claims bytes). The
 * evidence kind is read from the evidence bytes themselves (their formats
 * have distinct, fixed headers).
 *
 * Fresh evidence: a client sends a nonce (16..64 bytes) in a TLS 1.3
 * ClientHello extension (type RATLS_TLS_EXT); the server answers with
 * tagged evidence whose claims carry that nonce and the pubkey-hash of the
 * certificate it presents, in the extensions of the leaf's CertificateEntry.
 * Works with any server certificate (self-signed RA-TLS or CA-issued). */
#ifndef AIRLOCK_ATTEST_RATLS_H
#define AIRLOCK_ATTEST_RATLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "attest/claims.h"
#include "attest/provider.h"

#define RATLS_OID "2.23.133.5.4.9"
#define RATLS_TAG 60000 /* the interoperable RA-TLS tag airlock writes */
/* RFC 9277 content-format tags (1668546817 + CoAP content format), the
 * IANA-registered form the DICE spec points at: accepted when reading */
#define RATLS_TAG_CF_BASE 1668546817u
#define RATLS_TAG_CF_LAST (RATLS_TAG_CF_BASE + 65535u)
#define RATLS_TLS_EXT 0xffa7u /* TLS ExtensionType, private-use range */
#define RATLS_NONCE_MIN 16
#define RATLS_NONCE_MAX 64
#define RATLS_HASH_LEN 32       /* SHA-256 */
#define RATLS_EXT_MAX (1 << 16) /* tagged evidence larger than this is refused */

struct ratls_source {
    const struct attest_provider *provider;
    struct attest_provider_conf conf;
};

/* What the evidence is, from its own header. */
enum ratls_format {
    RATLS_FMT_UNKNOWN,
    RATLS_FMT_NITRO, /* COSE_Sign1 (Nitro, or sim) */
    RATLS_FMT_SNP,   /* SEV-SNP report: needs a VCEK the extension does not carry */
    RATLS_FMT_TDX,   /* TDX quote v4 */
    RATLS_FMT_SGX,   /* SGX quote v3/v4: airlock has no SGX verifier */
};

/* Tagged evidence, parsed (ratls_parse): slices into the caller's buffer
 * and the two claims airlock reads. */
struct ratls_tagged {
    uint64_t tag;
    const uint8_t *evidence, *claims;
    size_t evidence_len, claims_len;
    bool has_pubkey_hash, has_nonce;
    uint8_t pubkey_hash[RATLS_HASH_LEN];
    uint8_t nonce[RATLS_NONCE_MAX];
    size_t nonce_len;
};

/* Parses len bytes of tagged evidence (the extension's value): tag 60000
 * or a content-format tag, a definite array of two definite byte strings,
 * the claims a map whose "pubkey-hash" (SHA-256 only) and "nonce" (16..64
 * bytes) appear at most once (other claims are ignored). Returns ATTEST_OK
 * or ATTEST_MALFORMED with a one-line reason in err (ATTEST_ERR_MAX). */
enum attest_result ratls_parse(const uint8_t *p, size_t len, struct ratls_tagged *t, char *err);

/* The format of evidence bytes (by their header). */
enum ratls_format ratls_format(const uint8_t *ev, size_t len);

/* The value of cert's extension RATLS_OID: 0 with *p (borrowed from cert)
 * and *len, -ENOENT when there is none, -EINVAL when there are several. */
int ratls_cert_extension(X509 *cert, const uint8_t **p, size_t *len);

/* SHA-256 of cert's DER SubjectPublicKeyInfo into out. Returns 0 or -EINVAL. */
int ratls_spki_hash(X509 *cert, uint8_t out[RATLS_HASH_LEN]);

/* Makes a fresh P-256 key in memory and a self-signed certificate for it,
 * valid from now - 60 s to now + validity_s, capped by the lifetime of the
 * evidence's own signing certificate (Nitro and sim), carrying src's
 * evidence for the key in the RATLS_OID extension. Returns 0 with *key and
 * *cert owned by the caller, or -errno with a one-line reason in err
 * (ATTEST_ERR_MAX bytes). Blocks as long as the provider takes. */
int ratls_issue(const struct ratls_source *src, time_t now, unsigned validity_s, EVP_PKEY **key,
                X509 **cert, char *err);

/* When a server must have replaced cert (its notAfter); 0 if unreadable. */
time_t ratls_cert_expires(X509 *cert);

/* Verifies cert's RA-TLS extension under pol: the claims' pubkey-hash is
 * this certificate's key, the claims' nonce equals nonce (when nonce is
 * not NULL), cert is valid at pol->now, and the evidence (report data =
 * SHA-256(claims)) verifies under pol by the verifier of its format. A
 * policy that pins what the format cannot carry refuses it: PCRs, nonce or
 * public key for TDX, a measurement for Nitro, a TCB for both
 * (attest_policy_fits()), user_data for every format (the report data is
 * the claims' hash, so pol must not pin it). Fills *claims. Returns ATTEST_OK or the failure with
 * a one-line reason in err (ATTEST_ERR_MAX bytes). */
enum attest_result ratls_verify_cert(X509 *cert, const struct attest_policy *pol,
                                     const uint8_t *nonce, size_t nonce_len,
                                     struct attest_claims *claims, char *err);

/* Registers the fresh-evidence extension on a server context: a client's
 * nonce is answered with src's evidence for the certificate the server
 * presents (the provider is called inside the handshake and blocks: a
 * caller on an event loop bounds how many run at once). src is borrowed
 * for the context's lifetime. Returns 0 or -EINVAL (already registered). */
int ratls_ctx_server(SSL_CTX *ctx, const struct ratls_source *src);

/* Registers the fresh-evidence extension on a client context. Returns 0
 * or -EINVAL. */
int ratls_ctx_client(SSL_CTX *ctx);

/* Before the handshake: ask the server for fresh evidence over nonce
 * (RATLS_NONCE_MIN..MAX bytes, copied). Returns 0, -EINVAL (length) or
 * -ENOMEM. */
int ratls_ssl_request_fresh(SSL *ssl, const uint8_t *nonce, size_t len);

/* After the handshake: when fresh evidence was requested, the server's
 * fresh evidence (required) bound to the peer certificate and the nonce;
 * else the peer certificate's extension (ratls_verify_cert). Fills
 * *claims; returns ATTEST_OK or the failure with a one-line reason. */
enum attest_result ratls_ssl_verify(SSL *ssl, const struct attest_policy *pol,
                                    struct attest_claims *claims, char *err);

/* Server side: why the last fresh evidence of ssl could not be made (the
 * handshake then failed with an internal_error alert), or NULL. */
const char *ratls_ssl_error(SSL *ssl);

#endif
