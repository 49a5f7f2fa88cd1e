/* sim.h - the software evidence provider: documents in the exact Nitro
 * format (COSE_Sign1, ES384, cabundle [root], leaf certificate) signed by a
 * local root, so every verification path runs without a TEE. The module_id
 * starts with "sim-"; no verifier accepts it unless its policy names the sim
 * root (attest_policy.sim_root). Not a security boundary. */
#ifndef AIRLOCK_ATTEST_SIM_H
#define AIRLOCK_ATTEST_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "attest/claims.h"

struct attest_sim {
    EVP_PKEY *root_key;
    X509 *root;
    EVP_PKEY *key; /* the leaf's, signs documents */
    X509 *leaf;
};

/* What one document says. pcrs: npcrs values of 48 bytes (SHA384); the
 * optional blobs are null when !present. indefinite: encode the payload map
 * with an indefinite length, as newer NSM versions do. */
struct attest_sim_request {
    uint64_t timestamp_ms;
    size_t npcrs;
    const struct attest_pcr *pcrs;
    const struct attest_blob *user_data, *nonce, *public_key;
    bool indefinite;
};

/* Makes a fresh self-signed P-384 root valid from now - 1 h for 10 years.
 * Returns 0 or -ENOMEM; the caller owns *key and *cert. */
int attest_sim_root_generate(time_t now, EVP_PKEY **key, X509 **cert);

/* Reads a sim root's key and certificate (PEM, both in one file, as
 * `airlock attest get --provider sim --sim-root FILE` writes it) with
 * file_read_trusted() (core/file.h: not a link, nothing on its way that
 * others than airlock's user and root may change). Not held to 0600: a
 * pool's instances share one sim root by design (the sim is no security
 * boundary), so others may read it, never change it. Returns 0 with *key and *cert owned by the
 * caller, -errno when the file cannot be opened or is refused (-ENOENT:
 * none; -EPERM: others may change it; -FILE_NOT_REGULAR), or
 * -EINVAL when it does not hold a matching key and certificate; on
 * failure why (why_len bytes) says "PATH: what is wrong". */
int attest_sim_root_read(const char *path, EVP_PKEY **key, X509 **cert, char *why, size_t why_len);

/* Prepares sim to sign with root_key/root (referenced, not taken over):
 * issues a leaf valid from now - 1 min to now + 3 h, as NSM's are. Returns 0
 * or -ENOMEM. Release with attest_sim_close(). */
int attest_sim_init(struct attest_sim *sim, EVP_PKEY *root_key, X509 *root, time_t now);

/* Idempotent; leaves every pointer NULL. */
void attest_sim_close(struct attest_sim *sim);

/* Signs a document for req. On success *doc (malloc'd, the caller frees it)
 * holds *len bytes of raw CBOR. Returns 0, -EINVAL (a field too long) or
 * -ENOMEM. */
int attest_sim_document(const struct attest_sim *sim, const struct attest_sim_request *req,
                        uint8_t **doc, size_t *len);

/* Issues a certificate for key with subject CN cn, signed by issuer_key as
 * issuer (NULL: self-signed), valid from..to, a CA or not. For the sim root
 * and leaf and for tests that need other chains. NULL on failure. */
X509 *attest_sim_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                      time_t from, time_t to, bool ca);

#endif
