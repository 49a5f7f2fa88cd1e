/* policy.h - the attestation policy block of the config (docs/attestation.md):
 *
 *   policy:
 *     type: nitro            # nitro (default; sim documents are nitro-format) | snp | tdx
 *     pcrs: {0: HEX, 8: HEX} # nitro: each must be present and equal
 *     measurement: HEX       # snp measurement / tdx MRTD (48 bytes)
 *     roots: PATH            # PEM of pinned roots (snp: the ARK and ASK, required);
 *                            #   default: the type's built-in root
 *     sim_root: PATH         # nitro: accept sim evidence anchored at this root
 *     any_image: false       # accept every image: no pcrs or measurement pinned
 *     allow_debug: false     # snp, tdx: accept debug guests
 *     min_tcb: HEX           # snp: 8 bytes, as reported_tcb prints (2-5 reserved: 0);
 *                            #   every TCB of the report must reach it
 *     vmpl: N                # snp: the report's VMPL must be N (0-3)
 *     collateral: DIR        # tdx: Intel's collateral (tdx_collateral.h): judge the TCB
 *     tcb_status: [UpToDate] # tdx with collateral: the TCB statuses accepted
 *
 * The key broker's secrets and the relay's verify: take it. Parsing fills
 * the settings (pure: policy_conf.c, in every build); loading the
 * certificates the paths name and verifying evidence need OpenSSL
 * (policy.c, only where attestation is built in). */
#ifndef AIRLOCK_ATTEST_POLICY_H
#define AIRLOCK_ATTEST_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "attest/claims.h"
#include "core/file.h"
#include "core/units.h"

#define ATTEST_POLICY_PATH_MAX 1024 /* roots and sim_root, NUL included */
#define ATTEST_PEM_MAX (1024 * 1024)

struct attest_policy_conf {
    enum attest_kind type; /* ATTEST_KIND_NITRO unless given */
    size_t npcrs;
    struct attest_pcr pcrs[ATTEST_PCR_MAX]; /* distinct indexes */
    bool has_measurement;
    uint8_t measurement[ATTEST_MEASUREMENT_LEN];
    unsigned rtmrs_pinned; /* tdx: bit i: rtmrs[i] given */
    uint8_t rtmrs[ATTEST_RTMR_COUNT][ATTEST_MEASUREMENT_LEN];
    char roots[ATTEST_POLICY_PATH_MAX];    /* "": the type's built-in root */
    char sim_root[ATTEST_POLICY_PATH_MAX]; /* "": sim evidence refused */
    bool any_image;                        /* no image pinned, and that is meant */
    bool allow_debug;
    bool has_min_tcb;
    uint8_t min_tcb[8];
    bool has_vmpl;
    unsigned vmpl;
    char collateral[ATTEST_POLICY_PATH_MAX]; /* "": the TCB is not judged */
    unsigned tcb_status_ok;                  /* bit 1 << enum attest_tcb_status; 0: UpToDate */
    /* Owned, filled by attest_policy_conf_load(): the self-signed
     * certificates of roots (pinned) and the others (SNP's ASK), the sim
     * root. NULL until loaded. */
    STACK_OF(X509) * root_certs;
    STACK_OF(X509) * intermediates;
    X509 *sim_cert;
    struct tdx_collateral *tdx; /* collateral's, loaded */
    /* the files', taken before they were read (attest_policy_files_changed) */
    struct file_stamp roots_stamp, sim_stamp;
};

/* ---- policy_conf.c: pure, every build */

/* Zeroes pc: type nitro, nothing pinned beyond the built-in root. */
void attest_policy_conf_defaults(struct attest_policy_conf *pc);

/* Returns true when a and b are the same settings, field by field (paths
 * by their text); the certificates loaded from them (root_certs,
 * intermediates, sim_cert) and the files' stamps are their holder's, not
 * compared (attest_policy_files_changed() tells a rewritten file). */
bool attest_policy_conf_equal(const struct attest_policy_conf *a,
                              const struct attest_policy_conf *b);

/* The RTMRs that pin a TD's image, with its MRTD (the firmware that
 * measures them): 1, the kernel (or the boot loader), and 2, its command
 * line and initrd (TDVF; what a boot loader measures in PCR 8 and 9 goes
 * there too). */
#define ATTEST_TDX_IMAGE_RTMRS (1u << 1 | 1u << 2)

/* The rules that span keys (an image pinned unless any_image, snp needs
 * roots, min_tcb zero where reserved, tcb_status needs collateral).
 * Returns 0, or -1 with *f naming the key at fault. */
int attest_policy_conf_check(const struct attest_policy_conf *pc, struct conf_fault *f);

/* For the keys that apply to some types only: NULL when the key applies to
 * pc's type, else why not. _nitro: pcrs, sim_root; _report: measurement,
 * allow_debug (snp, tdx); _snp: min_tcb, vmpl; _tdx: collateral,
 * tcb_status. */
const char *attest_policy_nitro_only(const struct attest_policy_conf *pc);
const char *attest_policy_report_only(const struct attest_policy_conf *pc);
const char *attest_policy_snp_only(const struct attest_policy_conf *pc);
const char *attest_policy_tdx_only(const struct attest_policy_conf *pc);

/* Adds the TCB status named s (Intel's name: "UpToDate", "OutOfDate", ...)
 * to the set *ok. Returns 0, or -EINVAL for a name Intel does not use and
 * for "Revoked", which no policy accepts. */
int attest_tcb_status_add(const char *s, unsigned *ok);

/* Reads "nitro", "snp" or "tdx" into *kind; returns 0 or -EINVAL. */
int attest_policy_type_parse(const char *s, enum attest_kind *kind);

/* ---- policy.c: needs OpenSSL */

/* Loads the certificates pc's roots and sim_root name (regular files, PEM,
 * at most ATTEST_PEM_MAX bytes; roots must hold a self-signed certificate,
 * sim_root's first certificate is the sim root) and the collateral
 * directory (tdx_collateral_load). Idempotent over a loaded
 * pc (loads again). Returns 0, or -errno with "PATH: what is wrong" in err
 * (ATTEST_ERR_MAX bytes) and nothing loaded. */
int attest_policy_conf_load(struct attest_policy_conf *pc, char *err);

/* Whether a file a loaded pc read (roots, sim_root, collateral) is not the one it read
 * (rewritten, replaced, gone): a reload then loads it again, so that a root
 * taken out of the file is no longer trusted. */
bool attest_policy_files_changed(const struct attest_policy_conf *pc);

/* Frees what attest_policy_conf_load() loaded; idempotent. The settings
 * stay. */
void attest_policy_conf_free(struct attest_policy_conf *pc);

/* Fills *pol (zeroed first) from a loaded pc to verify as of now. pol
 * borrows pc's certificates: pc must outlive it. The caller adds the
 * expectations of one exchange (nonce, user_data, public_key). */
void attest_policy_conf_fill(const struct attest_policy_conf *pc, time_t now,
                             struct attest_policy *pol);

/* Reads the whole file at path, a file the trust layer rests on (a root,
 * collateral, a sealed secret; with secret, a key only airlock may read):
 * file_read_trusted(), so a file or a directory on its way that others
 * than airlock's user and root may change is refused, and so is a
 * symbolic link; at most max bytes. On success *out
 * (malloc'd, NUL-terminated past *len; the caller frees it) holds *len
 * bytes. Returns 0, or -errno with "PATH: what is wrong" in err
 * (ATTEST_ERR_MAX bytes). */
int attest_file_read(const char *path, bool secret, size_t max, uint8_t **out, size_t *len,
                     char *err);

/* Splits chain (borrowed) into its self-signed certificates (*roots) and
 * the others (*intermediates), both new stacks borrowing chain's
 * certificates (free with sk_X509_free). Returns 0, -ENOENT when there is no
 * self-signed certificate, or -ENOMEM; on failure both are NULL. */
int attest_certs_split(STACK_OF(X509) * chain, STACK_OF(X509) * *roots,
                       STACK_OF(X509) * *intermediates);

/* Verifies evidence (len bytes) of the given kind under pol with that
 * kind's verifier: nitro (and sim) documents, TDX quotes; SNP reports by
 * vcek (required for snp, else NULL) through intermediates (may be NULL)
 * to pol's roots. Fills *claims. Returns ATTEST_OK or the failure with a
 * one-line reason in err (ATTEST_ERR_MAX bytes). */
enum attest_result attest_verify(enum attest_kind kind, const uint8_t *evidence, size_t len,
                                 X509 *vcek, STACK_OF(X509) * intermediates,
                                 const struct attest_policy *pol, struct attest_claims *claims,
                                 char *err);

/* Verifies evidence (len bytes) of pc's type under pol (from
 * attest_policy_conf_fill() plus the caller's expectations): nitro (and sim)
 * documents, TDX quotes; SNP reports with vcek, the VCEK certificate
 * (required for snp, else NULL). Fills *claims. Returns ATTEST_OK or the
 * failure with a one-line reason in err (ATTEST_ERR_MAX bytes). */
enum attest_result attest_policy_verify(const struct attest_policy_conf *pc,
                                        const struct attest_policy *pol, const uint8_t *evidence,
                                        size_t len, X509 *vcek, struct attest_claims *claims,
                                        char *err);

#endif
