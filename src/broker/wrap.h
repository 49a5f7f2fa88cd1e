/* wrap.h - a released secret, wrapped to the requester's public key: a CMS
 * EnvelopedData (DER) with one KeyTransRecipientInfo (subjectKeyIdentifier,
 * RSAES-OAEP with SHA-256 and MGF1-SHA-256) and AES-256-CBC content, the
 * shape AWS KMS returns in CiphertextForRecipient, so one client
 * (CMS_decrypt) opens both.
 *
 * The broker signs each answer (wrap_sign()) with its Ed25519 key
 * (seal_sign_key()). The requester's key goes out in the clear, so anyone
 * on the path (the parent host that relays an enclave's connection) could
 * wrap a value of its own to it: the signature is how the requester tells
 * the broker's answer from such a one. */
#ifndef AIRLOCK_BROKER_WRAP_H
#define AIRLOCK_BROKER_WRAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define WRAP_KEY_BITS_MIN 2048
#define WRAP_SIG_LEN 64 /* bytes of an Ed25519 signature */

/* One answer of the broker, what its signature covers: the bytes
 * "airlock-kb-v1 SECRET\n" || name || "\n" || nonce || SHA-256(spki) || cms.
 * The name stops a host from passing off the release of another secret
 * (that the same requester may get) as this one; the nonce and the key tie
 * it to this exchange. */
struct wrap_answer {
    const char *name;     /* the secret's, as REQUESTed */
    const uint8_t *nonce; /* the challenge's bytes */
    size_t nonce_len;
    const uint8_t *spki; /* the requester's key, DER, as sent in ATTEST */
    size_t spki_len;
    const uint8_t *cms; /* the envelope, DER */
    size_t cms_len;
};

/* Parses a DER SubjectPublicKeyInfo of exactly len bytes that must be an
 * RSA key of at least WRAP_KEY_BITS_MIN bits. Returns the key (the caller
 * frees it) or NULL. */
EVP_PKEY *wrap_public_key(const uint8_t *der, size_t len);

/* Wraps len bytes of pt to pub into *der (malloc'd via OpenSSL: free with
 * OPENSSL_free), *der_len bytes. Returns 0 or -ENOMEM / -EIO. */
int wrap_secret(EVP_PKEY *pub, const uint8_t *pt, size_t len, uint8_t **der, size_t *der_len);

/* Opens a CMS EnvelopedData (DER or BER) of len bytes with key (the
 * private half). *pt is malloc'd (*pt_len bytes; wipe and free it).
 * Returns 0, or -EBADMSG when it does not open with this key. */
int wrap_open(EVP_PKEY *key, const uint8_t *der, size_t len, uint8_t **pt, size_t *pt_len);

/* Signs a with key (Ed25519) into sig. Returns 0, or -ENOMEM / -EIO. */
int wrap_sign(EVP_PKEY *key, const struct wrap_answer *a, uint8_t sig[WRAP_SIG_LEN]);

/* Whether sig (len bytes) is pub's signature of a. */
bool wrap_verify(EVP_PKEY *pub, const struct wrap_answer *a, const uint8_t *sig, size_t len);

#endif
