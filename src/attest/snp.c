/* snp.c - AMD SEV-SNP attestation report verification.
 *
 * Layout: AMD SEV-SNP firmware ABI specification, ATTESTATION_REPORT
 * (table 21 in revision 1.55). Integers are little-endian; the signature's r
 * and s are 72-byte little-endian fields of which P-384 uses 48. */
#include "attest/snp.h"

#include <string.h>

#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "attest/trust.h"

#define OFF_VERSION 0x00
#define OFF_GUEST_SVN 0x04
#define OFF_POLICY 0x08
#define OFF_VMPL 0x30
#define OFF_CURRENT_TCB 0x38
#define OFF_SIG_ALGO 0x34
#define OFF_REPORT_DATA 0x50
#define OFF_MEASUREMENT 0x90
#define OFF_HOST_DATA 0xc0
#define OFF_REPORTED_TCB 0x180
#define OFF_CHIP_ID 0x1a0
#define OFF_COMMITTED_TCB 0x1e0
#define OFF_LAUNCH_TCB 0x1f0
#define OFF_SIGNATURE 0x2a0 /* the signed bytes are those before it */
#define SIG_FIELD_LEN 72
#define SIG_ALGO_ECDSA_P384_SHA384 1
#define POLICY_DEBUG (1ULL << 19)

/* The VCEK's extensions (AMD "Versioned Chip Endorsement Key" spec). */
#define OID_BL_SPL "1.3.6.1.4.1.3704.1.3.1"
#define OID_TEE_SPL "1.3.6.1.4.1.3704.1.3.2"
#define OID_SNP_SPL "1.3.6.1.4.1.3704.1.3.3"
#define OID_UCODE_SPL "1.3.6.1.4.1.3704.1.3.8"
#define OID_HWID "1.3.6.1.4.1.3704.1.4"

static uint32_t
le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t
le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* The value of the extension oid of x, or NULL. */
static const ASN1_OCTET_STRING *
ext_data(X509 *x, const char *oid)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    int i = obj != NULL ? X509_get_ext_by_OBJ(x, obj, -1) : -1;

    ASN1_OBJECT_free(obj);
    return i < 0 ? NULL : X509_EXTENSION_get_data(X509_get_ext(x, i));
}

/* A VCEK is issued per chip and per TCB: it must name this report's. */
static enum attest_result
check_vcek_binding(X509 *vcek, const struct attest_claims *c, char *err)
{
    static const struct {
        const char *oid, *name;
        int tcb_byte;
    } spl[] = {
        {OID_BL_SPL, "bootloader", 0},
        {OID_TEE_SPL, "tee", 1},
        {OID_SNP_SPL, "snp", 6},
        {OID_UCODE_SPL, "microcode", 7},
    };
    const ASN1_OCTET_STRING *hwid = ext_data(vcek, OID_HWID);

    if (hwid == NULL || ASN1_STRING_length(hwid) != (int)sizeof(c->chip_id) ||
        memcmp(ASN1_STRING_get0_data(hwid), c->chip_id, sizeof(c->chip_id)) != 0)
        return attest_fail(err, ATTEST_UNTRUSTED, "VCEK: not issued for this chip_id");
    for (size_t i = 0; i < sizeof(spl) / sizeof(spl[0]); i++) {
        const ASN1_OCTET_STRING *d = ext_data(vcek, spl[i].oid);
        const uint8_t *p = d != NULL ? ASN1_STRING_get0_data(d) : NULL;
        ASN1_INTEGER *v = p != NULL ? d2i_ASN1_INTEGER(NULL, &p, ASN1_STRING_length(d)) : NULL;
        long got = v != NULL ? ASN1_INTEGER_get(v) : -1;
        ASN1_INTEGER_free(v);
        if (got != c->reported_tcb[spl[i].tcb_byte])
            return attest_fail(err, ATTEST_UNTRUSTED,
                               "VCEK: issued for %s SPL %ld, the report has %u", spl[i].name, got,
                               c->reported_tcb[spl[i].tcb_byte]);
    }
    return ATTEST_OK;
}

static enum attest_result
check_policy(const struct attest_policy *pol, const struct attest_claims *c, char *err)
{
    static const char *const tcb_names[8] = {"bootloader", "tee", NULL,  NULL,
                                             NULL,         NULL,  "snp", "microcode"};
    enum attest_result r =
        attest_report_policy(pol, c, "the guest policy allows debugging", "measurement", err);

    if (r != ATTEST_OK)
        return r;
    /* software at a less privileged VMPL of the same guest can ask for a
     * report of its own: only the one the policy names speaks for it */
    if (pol->vmpl_present && c->vmpl != pol->vmpl)
        return attest_fail(err, ATTEST_POLICY, "policy: the report is from VMPL %u, not %u",
                           c->vmpl, pol->vmpl);
    if (!pol->min_tcb_present)
        return ATTEST_OK;
    /* bytes 2 to 5 of reported_tcb are reserved: a minimum there is not
     * checked, so it is refused rather than ignored */
    for (int i = 0; i < 8; i++)
        if (tcb_names[i] == NULL && pol->min_tcb[i] != 0)
            return attest_fail(err, ATTEST_POLICY,
                               "policy: min_tcb pins reserved byte %d of reported_tcb, which is "
                               "not checked (refused, not ignored)",
                               i);
    /* reported_tcb is what the VCEK is of, and the host may set it below
     * the firmware's; the guest may have been launched under older
     * firmware than runs now: each TCB the report carries must reach it */
    const struct {
        const char *what;
        const uint8_t *tcb;
    } tcbs[] = {
        {"", c->reported_tcb},
        {"current_tcb: ", c->current_tcb},
        {"committed_tcb: ", c->committed_tcb},
        {"launch_tcb: ", c->launch_tcb},
    };
    for (size_t t = 0; t < sizeof(tcbs) / sizeof(tcbs[0]); t++)
        for (int i = 0; i < 8; i++)
            if (tcb_names[i] != NULL && tcbs[t].tcb[i] < pol->min_tcb[i])
                return attest_fail(err, ATTEST_POLICY, "policy: %s%s SPL %u is below %u",
                                   tcbs[t].what, tcb_names[i], tcbs[t].tcb[i], pol->min_tcb[i]);
    return ATTEST_OK;
}

enum attest_result
attest_snp_verify(const uint8_t *report, size_t len, X509 *vcek, STACK_OF(X509) * intermediates,
                  const struct attest_policy *pol, struct attest_claims *c, char *err)
{
    enum attest_result r;

    memset(c, 0, sizeof(*c));
    c->kind = ATTEST_KIND_SNP;
    if (len != SNP_REPORT_LEN)
        return attest_fail(err, ATTEST_MALFORMED, "report: %zu bytes, %d expected", len,
                           SNP_REPORT_LEN);
    c->version = le32(report + OFF_VERSION);
    if (c->version < 2)
        return attest_fail(err, ATTEST_MALFORMED, "report: version %u, 2 or later expected",
                           c->version);
    if (le32(report + OFF_SIG_ALGO) != SIG_ALGO_ECDSA_P384_SHA384)
        return attest_fail(err, ATTEST_MALFORMED,
                           "report: signature algorithm %u, not ECDSA P-384 SHA-384 (1)",
                           le32(report + OFF_SIG_ALGO));
    c->guest_svn = le32(report + OFF_GUEST_SVN);
    c->snp_policy = le64(report + OFF_POLICY);
    c->debug = (c->snp_policy & POLICY_DEBUG) != 0;
    c->vmpl = le32(report + OFF_VMPL);
    memcpy(c->report_data, report + OFF_REPORT_DATA, sizeof(c->report_data));
    memcpy(c->measurement, report + OFF_MEASUREMENT, sizeof(c->measurement));
    memcpy(c->host_data, report + OFF_HOST_DATA, sizeof(c->host_data));
    memcpy(c->reported_tcb, report + OFF_REPORTED_TCB, sizeof(c->reported_tcb));
    memcpy(c->current_tcb, report + OFF_CURRENT_TCB, sizeof(c->current_tcb));
    memcpy(c->committed_tcb, report + OFF_COMMITTED_TCB, sizeof(c->committed_tcb));
    memcpy(c->launch_tcb, report + OFF_LAUNCH_TCB, sizeof(c->launch_tcb));
    memcpy(c->chip_id, report + OFF_CHIP_ID, sizeof(c->chip_id));

    if (vcek == NULL)
        return attest_fail(err, ATTEST_UNTRUSTED, "no VCEK certificate given");
    if (pol->roots == NULL || sk_X509_num(pol->roots) == 0)
        return attest_fail(err, ATTEST_UNTRUSTED, "no AMD root (ARK) given");
    if ((r = attest_chain_verify(vcek, intermediates, pol->roots, pol->now, NULL, err)) !=
        ATTEST_OK)
        return r;
    if ((r = attest_signer_check(vcek, "VCEK", err)) != ATTEST_OK)
        return r;
    if ((r = check_vcek_binding(vcek, c, err)) != ATTEST_OK)
        return r;
    EVP_PKEY *key = X509_get0_pubkey(vcek);
    if (key == NULL)
        return attest_fail(err, ATTEST_UNTRUSTED, "VCEK: no usable public key");
    /* P-384 uses the low 48 bytes of each little-endian 72-byte field; the
     * rest must be zero, which reading all 72 bytes as one number checks. */
    r = attest_ecdsa_verify(key, "secp384r1", EVP_sha384(), report, OFF_SIGNATURE,
                            report + OFF_SIGNATURE, report + OFF_SIGNATURE + SIG_FIELD_LEN,
                            SIG_FIELD_LEN, true, "report", err);
    if (r != ATTEST_OK)
        return r;
    return check_policy(pol, c, err);
}
