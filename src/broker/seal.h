/* seal.h - the key broker's secrets at rest: AES-256-GCM under one
 * at-rest key, the secret's name bound as additional data, so a sealed
 * file renamed to another secret's name does not open (docs/attestation.md,
 * "Key broker").
 *
 * A sealed file DIR/NAME.sealed is "airlock-seal-v1\n" (16 bytes), a
 * 12-byte random IV, the ciphertext, the 16-byte tag; the AAD is the magic
 * and NAME. The key file holds exactly 32 bytes, readable by its owner only.
 *
 * The same key also yields the broker's signing key (seal_sign_key()), so
 * a broker has one secret to keep, and nothing new to provision. */
#ifndef AIRLOCK_BROKER_SEAL_H
#define AIRLOCK_BROKER_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "attest/claims.h"

#define SEAL_KEY_LEN 32
#define SEAL_SECRET_MAX (64 * 1024) /* bytes of one secret */
#define SEAL_OVERHEAD (16 + 12 + 16)

/* Reads the at-rest key from path, a secret (attest_file_read(): regular,
 * not a symlink, of this user or root, no access for group or others,
 * nothing on its way others may change), exactly 32 bytes. With create, a missing file is
 * made (O_EXCL, 0600) with a fresh random key. Returns 0, or -errno with a
 * one-line reason in err (ATTEST_ERR_MAX bytes). */
int seal_key_load(const char *path, bool create, uint8_t key[SEAL_KEY_LEN], char *err);

/* The broker's Ed25519 signing key: HKDF-SHA256 of the at-rest key (no
 * salt, info "airlock-kb-sign-v1") is its 32-byte seed. The label keeps it
 * independent of the AES key, and requesters check answers with its public
 * half (airlock attest broker-key). Returns the key (the caller frees it
 * with EVP_PKEY_free) or NULL. */
EVP_PKEY *seal_sign_key(const uint8_t key[SEAL_KEY_LEN]);

/* Seals len bytes (at most SEAL_SECRET_MAX) of pt for name into *out
 * (malloc'd, *out_len = len + SEAL_OVERHEAD bytes). Returns 0, -EINVAL or
 * -ENOMEM. */
int seal_encrypt(const uint8_t key[SEAL_KEY_LEN], const char *name, const uint8_t *pt, size_t len,
                 uint8_t **out, size_t *out_len);

/* Opens a sealed blob for name into *pt (malloc'd, *pt_len bytes; free it
 * with seal_clear_free()). Returns 0, -EBADMSG when it is not a sealed
 * file, was sealed for another name or key, or was changed; -ENOMEM. */
int seal_decrypt(const uint8_t key[SEAL_KEY_LEN], const char *name, const uint8_t *in, size_t len,
                 uint8_t **pt, size_t *pt_len);

/* Reads and opens DIR/NAME.sealed. Returns 0 (*pt as seal_decrypt()), or
 * -errno with a one-line reason in err. */
int seal_read(const char *dir, const char *name, const uint8_t key[SEAL_KEY_LEN], uint8_t **pt,
              size_t *pt_len, char *err);

/* Seals pt for name into DIR/NAME.sealed (mode 0600): written to a new
 * temporary file, then renamed over any older one. Returns 0, or -errno with
 * a one-line reason in err. */
int seal_write(const char *dir, const char *name, const uint8_t key[SEAL_KEY_LEN],
               const uint8_t *pt, size_t len, char *err);

/* Wipes and frees len bytes at p; NULL is harmless. */
void seal_clear_free(uint8_t *p, size_t len);

#endif
