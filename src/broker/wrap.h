/* wrap.h - a released secret, wrapped to the requester's public key: a CMS
 * EnvelopedData (DER) with one KeyTransRecipientInfo (subjectKeyIdentifier,
 * RSAES-OAEP with SHA-256 and MGF1-SHA-256) and AES-256-CBC content, the
 * shape AWS KMS returns in CiphertextForRecipient, so one client
 * (CMS_decrypt) opens both. */
#ifndef AIRLOCK_BROKER_WRAP_H
#define AIRLOCK_BROKER_WRAP_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define WRAP_KEY_BITS_MIN 2048

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

#endif
