/* policy_conf.c - the policy block's settings: defaults and the rules that
 * span keys; see policy.h. Pure: no OpenSSL calls, so the static build
 * (no attestation) still parses and refuses the block by itself. */
#include "attest/policy.h"

#include <errno.h>
#include <string.h>

void
attest_policy_conf_defaults(struct attest_policy_conf *pc)
{
    memset(pc, 0, sizeof(*pc));
    pc->type = ATTEST_KIND_NITRO;
}

int
attest_policy_conf_check(const struct attest_policy_conf *pc, struct conf_fault *f)
{
    /* the SNP verifier has no built-in AMD root: the ARK is pinned here */
    if (pc->type == ATTEST_KIND_SNP && pc->roots[0] == '\0')
        return conf_fault(f, "roots", "expected the PEM file of the ARK and ASK for type snp");
    if (pc->type == ATTEST_KIND_TDX && pc->tcb_status_ok != 0 && pc->collateral[0] == '\0')
        return conf_fault(f, "tcb_status",
                          "expected collateral too: without it the TCB is not judged");
    /* reported_tcb's bytes 2 to 5 are reserved: nothing to hold them to */
    if (pc->type == ATTEST_KIND_SNP && pc->has_min_tcb &&
        (pc->min_tcb[2] | pc->min_tcb[3] | pc->min_tcb[4] | pc->min_tcb[5]))
        return conf_fault(f, "min_tcb",
                          "expected zero in bytes 2 to 5 (reserved in reported_tcb: not checked)");
    /* a TD's MRTD measures its initial memory, the firmware (TDVF): the
     * kernel, initrd and command line the firmware boots are measured into
     * RTMRs, which the host's own image would pass unpinned; and RTMRs are
     * only what the firmware says, pinned by the MRTD */
    if (pc->type == ATTEST_KIND_TDX && !pc->any_image && pc->has_measurement &&
        (pc->rtmrs_pinned & ATTEST_TDX_IMAGE_RTMRS) != ATTEST_TDX_IMAGE_RTMRS)
        return conf_fault(f, "rtmrs",
                          "missing: expected RTMR 1 and 2 pinned too (the kernel, its command "
                          "line and initrd: the MRTD measures only the TD's firmware), or "
                          "any_image: true to accept every tdx enclave of this firmware");
    if (pc->type == ATTEST_KIND_TDX && !pc->any_image && !pc->has_measurement)
        return conf_fault(f, "measurement",
                          "missing: expected the image to pin (measurement, the TD's firmware, "
                          "and rtmrs 1 and 2, what it boots), or any_image: true to accept every "
                          "tdx enclave, whoever launched it");
    if (pc->any_image && pc->rtmrs_pinned != 0)
        return conf_fault(f, "any_image", "expected no rtmrs with any_image: true");
    /* without a pin, any enclave of the type passes: for snp and tdx a
     * guest the host itself launched, for nitro any account's enclave */
    if (pc->npcrs == 0 && !pc->has_measurement && !pc->any_image)
        return conf_fault(f, pc->type == ATTEST_KIND_NITRO ? "pcrs" : "measurement",
                          "missing: expected the image to pin (%s), or any_image: true to "
                          "accept every %s enclave, whoever launched it",
                          pc->type == ATTEST_KIND_NITRO ? "pcrs" : "measurement",
                          attest_kind_name(pc->type));
    /* tdx: the firmware alone may be pinned (any image it boots) */
    if (pc->any_image && (pc->npcrs > 0 || (pc->has_measurement && pc->type != ATTEST_KIND_TDX)))
        return conf_fault(f, "any_image", "expected no pcrs or measurement with any_image: true");
    return 0;
}

const char *
attest_policy_nitro_only(const struct attest_policy_conf *pc)
{
    return pc->type == ATTEST_KIND_NITRO ? NULL : "applies to type nitro only";
}

const char *
attest_policy_report_only(const struct attest_policy_conf *pc)
{
    return pc->type != ATTEST_KIND_NITRO ? NULL : "applies to types snp and tdx only";
}

const char *
attest_policy_snp_only(const struct attest_policy_conf *pc)
{
    return pc->type == ATTEST_KIND_SNP ? NULL : "applies to type snp only";
}

const char *
attest_policy_tdx_only(const struct attest_policy_conf *pc)
{
    return pc->type == ATTEST_KIND_TDX ? NULL : "applies to type tdx only";
}

int
attest_tcb_status_add(const char *s, unsigned *ok)
{
    for (int i = 0; i < ATTEST_TCB_STATUS_COUNT; i++) {
        if (strcmp(s, attest_tcb_status_names[i]) == 0 && i != ATTEST_TCB_REVOKED) {
            *ok |= 1u << i;
            return 0;
        }
    }
    return -EINVAL;
}

int
attest_policy_type_parse(const char *s, enum attest_kind *kind)
{
    static const enum attest_kind kinds[] = {ATTEST_KIND_NITRO, ATTEST_KIND_SNP, ATTEST_KIND_TDX};

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(s, attest_kind_name(kinds[i])) == 0) {
            *kind = kinds[i];
            return 0;
        }
    }
    return -EINVAL;
}

/* attest_policy_conf_equal() compares each setting: a new one must be
 * added there, and these sizes (LP64 ABIs) with it. */
#if defined(__x86_64__) || defined(__aarch64__)
_Static_assert(sizeof(struct attest_policy_conf) == 6064, "attest_policy_conf_equal(): compare it");
_Static_assert(sizeof(struct attest_pcr) == 80, "attest_policy_conf_equal(): compare it");
#endif

bool
attest_policy_conf_equal(const struct attest_policy_conf *a, const struct attest_policy_conf *b)
{
    if (a->type != b->type || a->npcrs != b->npcrs || a->has_measurement != b->has_measurement ||
        a->any_image != b->any_image || a->allow_debug != b->allow_debug ||
        a->has_min_tcb != b->has_min_tcb || a->has_vmpl != b->has_vmpl ||
        (a->has_vmpl && a->vmpl != b->vmpl) || a->tcb_status_ok != b->tcb_status_ok ||
        strncmp(a->collateral, b->collateral, sizeof(a->collateral)) != 0 ||
        strncmp(a->roots, b->roots, sizeof(a->roots)) != 0 ||
        strncmp(a->sim_root, b->sim_root, sizeof(a->sim_root)) != 0)
        return false;
    if (a->has_measurement && memcmp(a->measurement, b->measurement, sizeof(a->measurement)) != 0)
        return false;
    if (a->rtmrs_pinned != b->rtmrs_pinned)
        return false;
    for (size_t i = 0; i < ATTEST_RTMR_COUNT; i++)
        if ((a->rtmrs_pinned & 1u << i) != 0 &&
            memcmp(a->rtmrs[i], b->rtmrs[i], sizeof(a->rtmrs[i])) != 0)
            return false;
    if (a->has_min_tcb && memcmp(a->min_tcb, b->min_tcb, sizeof(a->min_tcb)) != 0)
        return false;
    for (size_t i = 0; i < a->npcrs && i < ATTEST_PCR_MAX; i++)
        if (a->pcrs[i].index != b->pcrs[i].index || a->pcrs[i].len != b->pcrs[i].len ||
            a->pcrs[i].len > ATTEST_PCR_LEN_MAX ||
            memcmp(a->pcrs[i].value, b->pcrs[i].value, a->pcrs[i].len) != 0)
            return false;
    return true;
}
