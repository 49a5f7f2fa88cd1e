/* policy.c - loading a policy block's certificates and verifying evidence
 * under it; see policy.h. */
#include "attest/policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "attest/nitro.h"
#include "attest/snp.h"
#include "attest/tdx.h"
#include "attest/tdx_collateral.h"
#include "attest/trust.h"
#include "core/file.h"

int
attest_file_read(const char *path, bool secret, size_t max, uint8_t **out, size_t *len, char *err)
{
    char *buf, why[ATTEST_ERR_MAX];
    int ret = file_read_trusted(path, secret, max, &buf, len, why, sizeof(why));

    if (ret == -FILE_NOT_REGULAR || ret == -EFBIG) {
        attest_fail(err, ATTEST_MALFORMED, "%s: expected a regular file of at most %zu bytes", path,
                    max);
        return -EINVAL;
    }
    if (ret != 0) {
        attest_fail(err, ATTEST_MALFORMED, "%s", why);
        return ret;
    }
    *out = (uint8_t *)buf;
    return 0;
}

/* The certificates of a PEM file. */
static int
pem_load(const char *path, STACK_OF(X509) * *out, char *err)
{
    uint8_t *buf;
    size_t n;
    int ret = attest_file_read(path, false, ATTEST_PEM_MAX, &buf, &n, err);

    *out = NULL;
    if (ret != 0)
        return ret;
    if ((*out = attest_x509_pem((const char *)buf, n)) == NULL) {
        attest_fail(err, ATTEST_MALFORMED, "%s: no PEM certificate", path);
        ret = -EINVAL;
    }
    free(buf);
    return ret;
}

int
attest_certs_split(STACK_OF(X509) * chain, STACK_OF(X509) * *roots, STACK_OF(X509) * *intermediates)
{
    int ret = 0;

    *roots = sk_X509_new_null();
    *intermediates = sk_X509_new_null();
    if (*roots == NULL || *intermediates == NULL)
        ret = -ENOMEM;
    for (int i = 0; ret == 0 && i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);
        if (sk_X509_push(X509_check_issued(x, x) == X509_V_OK ? *roots : *intermediates, x) <= 0)
            ret = -ENOMEM;
    }
    if (ret == 0 && sk_X509_num(*roots) == 0)
        ret = -ENOENT;
    if (ret != 0) {
        sk_X509_free(*roots);
        sk_X509_free(*intermediates);
        *roots = NULL;
        *intermediates = NULL;
    }
    return ret;
}

void
attest_policy_conf_free(struct attest_policy_conf *pc)
{
    /* root_certs and intermediates split one loaded chain between them,
     * each certificate owned by exactly one of the two */
    sk_X509_pop_free(pc->root_certs, X509_free);
    sk_X509_pop_free(pc->intermediates, X509_free);
    X509_free(pc->sim_cert);
    tdx_collateral_free(pc->tdx);
    pc->root_certs = NULL;
    pc->intermediates = NULL;
    pc->sim_cert = NULL;
    pc->tdx = NULL;
}

int
attest_policy_conf_load(struct attest_policy_conf *pc, char *err)
{
    STACK_OF(X509) *chain = NULL, *sim = NULL;
    int ret;

    attest_policy_conf_free(pc);
    if (pc->roots[0] != '\0') {
        (void)file_stamp(pc->roots, &pc->roots_stamp);
        if ((ret = pem_load(pc->roots, &chain, err)) != 0)
            goto fail;
        if ((ret = attest_certs_split(chain, &pc->root_certs, &pc->intermediates)) != 0) {
            attest_fail(err, ATTEST_MALFORMED, "%s: %s", pc->roots,
                        ret == -ENOENT ? "no self-signed root certificate" : "out of memory");
            ret = ret == -ENOENT ? -EINVAL : ret; /* the file is there, its content wrong */
            goto fail;
        }
        sk_X509_free(chain); /* the certificates moved to the two stacks */
        chain = NULL;
    }
    if (pc->sim_root[0] != '\0') {
        (void)file_stamp(pc->sim_root, &pc->sim_stamp);
        if ((ret = pem_load(pc->sim_root, &sim, err)) != 0)
            goto fail;
        pc->sim_cert = sk_X509_shift(sim);
        sk_X509_pop_free(sim, X509_free);
    }
    if (pc->collateral[0] != '\0' &&
        (ret = tdx_collateral_load(pc->collateral, &pc->tdx, err)) != 0)
        goto fail;
    return 0;
fail:
    sk_X509_pop_free(chain, X509_free);
    attest_policy_conf_free(pc);
    return ret;
}

bool
attest_policy_files_changed(const struct attest_policy_conf *pc)
{
    return (pc->roots[0] != '\0' && !file_stamp_same(pc->roots, &pc->roots_stamp)) ||
           (pc->sim_root[0] != '\0' && !file_stamp_same(pc->sim_root, &pc->sim_stamp)) ||
           (pc->tdx != NULL && tdx_collateral_changed(pc->tdx));
}

void
attest_policy_conf_fill(const struct attest_policy_conf *pc, time_t now, struct attest_policy *pol)
{
    memset(pol, 0, sizeof(*pol));
    pol->kind = pc->type;
    pol->now = now;
    pol->roots = pc->root_certs;
    pol->sim_root = pc->sim_cert;
    pol->npcrs = pc->npcrs;
    memcpy(pol->pcrs, pc->pcrs, pc->npcrs * sizeof(pc->pcrs[0]));
    if (pc->has_measurement) {
        pol->measurement.present = true;
        pol->measurement.len = sizeof(pc->measurement);
        memcpy(pol->measurement.data, pc->measurement, sizeof(pc->measurement));
    }
    pol->rtmrs_pinned = pc->rtmrs_pinned;
    memcpy(pol->rtmrs, pc->rtmrs, sizeof(pol->rtmrs));
    pol->allow_debug = pc->allow_debug;
    pol->min_tcb_present = pc->has_min_tcb;
    memcpy(pol->min_tcb, pc->min_tcb, sizeof(pol->min_tcb));
    pol->vmpl_present = pc->has_vmpl;
    pol->vmpl = pc->vmpl;
    pol->tdx_collateral = pc->tdx;
    pol->tcb_status_ok = pc->tcb_status_ok;
}

enum attest_result
attest_verify(enum attest_kind kind, const uint8_t *evidence, size_t len, X509 *vcek,
              STACK_OF(X509) * intermediates, const struct attest_policy *pol,
              struct attest_claims *claims, char *err)
{
    switch (kind) {
    case ATTEST_KIND_NITRO:
        return attest_nitro_verify(evidence, len, pol, claims, err);
    case ATTEST_KIND_SNP:
        if (vcek == NULL)
            return attest_fail(err, ATTEST_MALFORMED, "snp evidence needs its VCEK certificate");
        return attest_snp_verify(evidence, len, vcek, intermediates, pol, claims, err);
    case ATTEST_KIND_TDX:
        return attest_tdx_verify(evidence, len, pol, claims, err);
    }
    return attest_fail(err, ATTEST_MALFORMED, "unknown evidence type");
}

enum attest_result
attest_policy_verify(const struct attest_policy_conf *pc, const struct attest_policy *pol,
                     const uint8_t *evidence, size_t len, X509 *vcek, struct attest_claims *claims,
                     char *err)
{
    return attest_verify(pc->type, evidence, len, vcek, pc->intermediates, pol, claims, err);
}
