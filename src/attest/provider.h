/* provider.h - evidence providers behind one interface: report data in,
 * evidence out (docs/attestation.md). Providers:
 *   nitro  the Nitro Secure Module (/dev/nsm): a Nitro attestation document
 *   tsm    Linux configfs-tsm: an SEV-SNP report or a TDX quote
 *   sim    software documents in the Nitro format, refused by every
 *          verifier unless its policy trusts the sim root (sim.h)
 * A provider blocks for as long as its device takes; it keeps no state
 * between calls. */
#ifndef AIRLOCK_ATTEST_PROVIDER_H
#define AIRLOCK_ATTEST_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/claims.h"
#include "attest/sim.h"

#define ATTEST_TSM_DIR "/sys/kernel/config/tsm/report"
#define ATTEST_NSM_DEVICE "/dev/nsm"

/* What the evidence is to carry (all borrowed). report_data: at most
 * ATTEST_REPORT_DATA_LEN bytes, NULL for none (tsm: zeros; nitro and sim:
 * user_data null). nonce and public_key: nitro and sim only, at most
 * ATTEST_BLOB_MAX bytes each, NULL for none. */
struct attest_request {
    const uint8_t *report_data;
    size_t report_data_len;
    const uint8_t *nonce;
    size_t nonce_len;
    const uint8_t *public_key;
    size_t public_key_len;
};

/* Fresh evidence. data (len bytes) is malloc'd and owned by the caller:
 * release with attest_evidence_free(). */
struct attest_evidence {
    const char *provider;  /* the provider's name (static) */
    enum attest_kind kind; /* what verifies it: nitro (also sim), snp, tdx */
    bool sim;              /* software evidence, not hardware */
    uint8_t *data;
    size_t len;
};

/* Where the providers find their device (borrowed; NULL: the default). */
struct attest_provider_conf {
    const char *tsm_dir;          /* the configfs-tsm report directory */
    bool tsm_privlevel_set;       /* write privlevel (else the kernel's default) */
    unsigned tsm_privlevel;       /* SEV-SNP VMPL, 0..3 */
    const char *nsm_device;       /* the NSM character device */
    const struct attest_sim *sim; /* the sim provider signs with it; required for sim */
};

struct attest_provider {
    const char *name;
    bool takes_nonce; /* nonce and public_key are fields of its evidence */
    /* Fills *ev from req (checked by attest_provider_get). Returns 0, or
     * -errno with a one-line reason in err (ATTEST_ERR_MAX bytes) and *ev
     * holding nothing to free. */
    int (*get)(const struct attest_provider_conf *conf, const struct attest_request *req,
               struct attest_evidence *ev, char *err);
};

extern const struct attest_provider attest_provider_nitro, attest_provider_tsm, attest_provider_sim;

/* The provider called name ("nitro", "tsm", "sim"), or NULL. */
const struct attest_provider *attest_provider_find(const char *name);

/* Can p carry req (sizes, fields it has)? Returns 0, or -EINVAL with a
 * one-line reason in err (ATTEST_ERR_MAX bytes). */
int attest_request_check(const struct attest_provider *p, const struct attest_request *req,
                         char *err);

/* Asks p for evidence carrying req. Returns 0 with *ev filled (free it with
 * attest_evidence_free), or -errno with a one-line reason in err
 * (ATTEST_ERR_MAX bytes): -EINVAL for a request the provider cannot carry
 * (attest_request_check), else the provider's failure. */
int attest_provider_get(const struct attest_provider *p, const struct attest_provider_conf *conf,
                        const struct attest_request *req, struct attest_evidence *ev, char *err);

/* Frees the evidence's data; idempotent. */
void attest_evidence_free(struct attest_evidence *ev);

/* For the providers: formats a one-line reason into err (ATTEST_ERR_MAX
 * bytes) and returns e (a -errno), as `return attest_provider_fail(...)`. */
int attest_provider_fail(char *err, int e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
