/* claims.h - what an evidence verifier extracts (struct attest_claims) and
 * what it checks the evidence against (struct attest_policy), shared by the
 * Nitro, SEV-SNP and TDX verifiers (docs/attestation.md).
 *
 * Claims are plain values copied out of the evidence (fixed-size buffers, no
 * pointers into the input, nothing to free). The policy borrows the
 * certificates it names; the caller owns and frees them. */
#ifndef AIRLOCK_ATTEST_CLAIMS_H
#define AIRLOCK_ATTEST_CLAIMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#define ATTEST_ERR_MAX 256        /* one line for a person, NUL included */
#define ATTEST_BLOB_MAX 1024      /* Nitro user_data, nonce, public_key */
#define ATTEST_PCR_MAX 32         /* PCRs in one Nitro document */
#define ATTEST_PCR_LEN_MAX 64     /* bytes of one PCR / measurement */
#define ATTEST_MODULE_ID_MAX 256  /* bytes of a module_id, NUL excluded */
#define ATTEST_REPORT_DATA_LEN 64 /* SNP and TDX REPORT_DATA */
#define ATTEST_MEASUREMENT_LEN 48 /* SNP measurement, TDX MRTD and RTMRs */
#define ATTEST_RTMR_COUNT 4

enum attest_kind {
    ATTEST_KIND_NITRO,
    ATTEST_KIND_SNP,
    ATTEST_KIND_TDX,
};

/* "nitro", "snp" or "tdx". */
static inline const char *
attest_kind_name(enum attest_kind kind)
{
    return kind == ATTEST_KIND_SNP ? "snp" : kind == ATTEST_KIND_TDX ? "tdx" : "nitro";
}

/* The TCB status Intel's collateral gives a TDX platform (TCB Info) or its
 * quoting enclave (QE Identity: UpToDate, OutOfDate or Revoked only). */
enum attest_tcb_status {
    ATTEST_TCB_UP_TO_DATE,
    ATTEST_TCB_SW_HARDENING_NEEDED,
    ATTEST_TCB_CONFIGURATION_NEEDED,
    ATTEST_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED,
    ATTEST_TCB_OUT_OF_DATE,
    ATTEST_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED,
    ATTEST_TCB_REVOKED,
    ATTEST_TCB_STATUS_COUNT,
};

/* Intel's names ("UpToDate", ...), indexed by enum attest_tcb_status. */
static const char *const attest_tcb_status_names[ATTEST_TCB_STATUS_COUNT] = {
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
    "Revoked",
};

/* Why evidence was not accepted: decoding, trust (signature, chain, time),
 * or the caller's policy. Each comes with a one-line message. */
enum attest_result {
    ATTEST_OK,
    ATTEST_MALFORMED, /* not well-formed evidence of the expected kind */
    ATTEST_UNTRUSTED, /* signature, certificate chain or validity time */
    ATTEST_POLICY,    /* authentic, but the policy does not accept it */
};

/* A byte string that the evidence may leave out (null in Nitro). */
struct attest_blob {
    bool present;
    size_t len;
    uint8_t data[ATTEST_BLOB_MAX];
};

struct attest_pcr {
    unsigned index;
    size_t len;
    uint8_t value[ATTEST_PCR_LEN_MAX];
};

struct tdx_collateral;

struct attest_claims {
    enum attest_kind kind;
    bool sim;   /* anchored at the policy's sim root, not a hardware root */
    bool debug; /* SNP policy DEBUG / TDX td_attributes DEBUG / Nitro PCR0 all zero */
    /* Nitro */
    char module_id[ATTEST_MODULE_ID_MAX + 1];
    uint64_t timestamp_ms;
    char digest[16];
    size_t npcrs;
    struct attest_pcr pcrs[ATTEST_PCR_MAX]; /* in document order */
    struct attest_blob user_data, nonce, public_key;
    /* SEV-SNP and TDX */
    uint32_t version;
    uint8_t report_data[ATTEST_REPORT_DATA_LEN];
    uint8_t measurement[ATTEST_MEASUREMENT_LEN]; /* SNP measurement, TDX MRTD */
    /* SEV-SNP */
    uint32_t guest_svn, vmpl;
    uint64_t snp_policy;
    uint8_t reported_tcb[8]; /* as stored: bl, tee, 4 reserved, snp, microcode */
    uint8_t current_tcb[8], committed_tcb[8], launch_tcb[8]; /* the same layout */
    uint8_t chip_id[64];
    uint8_t host_data[32];
    /* TDX */
    uint8_t tee_tcb_svn[16];
    uint8_t td_attributes[8];
    uint8_t rtmr[ATTEST_RTMR_COUNT][ATTEST_MEASUREMENT_LEN];
    bool tdx15; /* a TDX 1.5 report (quote version 5, body type 3): the two below */
    uint8_t tee_tcb_svn2[16];
    uint8_t mr_servicetd[ATTEST_MEASUREMENT_LEN];
    /* TDX judged by collateral (pol->tdx_collateral): the platform's TCB
     * level and the quoting enclave's, and the advisories of the platform's
     * level (comma-separated, cut at the buffer's end) */
    bool tcb_judged;
    enum attest_tcb_status tcb_status, qe_status;
    bool module_judged; /* a TDX 1.5 module, by its identity in the TCB Info */
    enum attest_tcb_status module_status;
    /* a TDX 1.5 report judged by its TEE_TCB_SVN2 too (the module running
     * now, after TD-preserving updates): the platform's level and the
     * module's by that SVN */
    bool tcb2_judged;
    enum attest_tcb_status tcb_status2;
    bool module2_judged;
    enum attest_tcb_status module_status2;
    char tcb_date[24]; /* the level's tcbDate, as Intel writes it */
    char advisories[512];
};

/* The trust anchors and expectations one verification applies. A zeroed
 * policy (plus now and roots) accepts any authentic evidence but a debug
 * guest's (SNP, TDX; a Nitro enclave in debug mode, whose PCR0 is zero),
 * unless allow_debug. */
struct attest_policy {
    enum attest_kind kind;  /* RA-TLS: the evidence must be of this type (ratls.h) */
    time_t now;             /* verify as of this time; never read from the clock here */
    STACK_OF(X509) * roots; /* pinned roots (borrowed); NULL: the verifier's default */
    X509 *sim_root;         /* trusted sim root (borrowed), NULL: sim evidence refused */
    size_t npcrs;           /* Nitro: each listed PCR must be present and equal */
    struct attest_pcr pcrs[ATTEST_PCR_MAX];
    struct attest_blob nonce;       /* Nitro: when present, must equal the document's */
    struct attest_blob user_data;   /* Nitro user_data; SNP/TDX REPORT_DATA, zero-padded */
    struct attest_blob public_key;  /* Nitro: when present, must equal the document's */
    struct attest_blob measurement; /* SNP measurement / TDX MRTD, when present */
    bool allow_debug;               /* accept debug guests (Nitro: debug-mode enclaves) */
    bool min_tcb_present;           /* SNP: reported, current, committed and launch TCB
                                     * must each be at least min_tcb */
    uint8_t min_tcb[8];             /* same layout as attest_claims.reported_tcb */
    bool vmpl_present;              /* SNP: the report's VMPL must be vmpl */
    uint32_t vmpl;
    /* TDX: Intel's collateral (borrowed; tdx_collateral.h), NULL: not
     * judged; then the TCB statuses accepted of the platform and of its
     * quoting enclave (bit 1 << enum attest_tcb_status; 0: UpToDate only) */
    const struct tdx_collateral *tdx_collateral;
    unsigned tcb_status_ok;
    /* TDX: bit i: RTMR i must equal rtmrs[i] (the MRTD is the TD's firmware:
     * the kernel, initrd and command line it boots are measured there) */
    unsigned rtmrs_pinned;
    uint8_t rtmrs[ATTEST_RTMR_COUNT][ATTEST_MEASUREMENT_LEN];
};

#endif
