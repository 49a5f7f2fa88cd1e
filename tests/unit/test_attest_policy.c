/* test_attest_policy.c - the policy block's loading (attest/policy.c):
 * certificates from the files it names (bad files refused with the path),
 * fill, and verification under it of the real fixtures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "attest/policy.h"
#include "attest/sim.h"
#include "attest/trust.h"
#include "attest_util.h"

#define ANJUNA "nitro/anjuna-full-2024-01-24.cbor"
#define SNP_REPORT "tsm/snp-milan-report-go-sev-guest.bin"

static char path_buf[128];

static const char *
tmp(const char *name)
{
    snprintf(path_buf, sizeof(path_buf), "%s/%s", attest_tmpdir, name);
    return path_buf;
}

static void
write_cert(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
}

static int
setup(void **state)
{
    (void)state;
    return tmpdir_make("test_attest_policy");
}

static enum attest_result
verify_file(const struct attest_policy_conf *pc, const struct attest_policy *pol, const char *name,
            X509 *vcek, struct attest_claims *c, char *err)
{
    size_t len;
    uint8_t *ev = fixture(name, &len);
    enum attest_result r = attest_policy_verify(pc, pol, ev, len, vcek, c, err);

    free(ev);
    return r;
}

/* Nitro: the pinned AWS root from roots:, PCRs from the block. */
static void
test_nitro_pcrs(void **state)
{
    struct attest_policy_conf pc;
    struct attest_policy pol;
    struct attest_claims *c = calloc(1, sizeof(*c));
    char err[ATTEST_ERR_MAX] = "";
    time_t now = utc(2024, 1, 24, 19, 0, 0);

    (void)state;
    attest_policy_conf_defaults(&pc);
    snprintf(pc.roots, sizeof(pc.roots), "%s/nitro/aws-nitro-enclaves-root-g1.pem",
             ATTEST_FIXTURES);
    assert_int_equal(attest_policy_conf_load(&pc, err), 0);
    assert_int_equal(sk_X509_num(pc.root_certs), 1);
    attest_policy_conf_fill(&pc, now, &pol);
    assert_ptr_equal(pol.roots, pc.root_certs);
    /* the document is of a debug-mode enclave: allow_debug from the block */
    assert_int_equal(verify_file(&pc, &pol, ANJUNA, NULL, c, err), ATTEST_POLICY);
    pc.allow_debug = true;
    attest_policy_conf_fill(&pc, now, &pol);
    assert_int_equal(verify_file(&pc, &pol, ANJUNA, NULL, c, err), ATTEST_OK);
    /* the document's own PCR 0 passes; one flipped bit does not */
    pc.pcrs[0] = c->pcrs[0];
    pc.npcrs = 1;
    attest_policy_conf_fill(&pc, now, &pol);
    assert_int_equal(verify_file(&pc, &pol, ANJUNA, NULL, c, err), ATTEST_OK);
    pc.pcrs[0].value[0] ^= 1;
    attest_policy_conf_fill(&pc, now, &pol);
    assert_int_equal(verify_file(&pc, &pol, ANJUNA, NULL, c, err), ATTEST_POLICY);
    /* a sim root alone does not make hardware evidence untrusted, but a
     * policy pinned to another root refuses the AWS chain */
    snprintf(pc.roots, sizeof(pc.roots), "%s/tsm/snp-milan-ask-ark.pem", ATTEST_FIXTURES);
    pc.npcrs = 0;
    assert_int_equal(attest_policy_conf_load(&pc, err), 0);
    attest_policy_conf_fill(&pc, now, &pol);
    assert_int_equal(verify_file(&pc, &pol, ANJUNA, NULL, c, err), ATTEST_UNTRUSTED);
    attest_policy_conf_free(&pc);
    attest_policy_conf_free(&pc); /* idempotent */
    assert_null(pc.root_certs);
    free(c);
}

/* SNP: roots: holds the ARK (pinned) and the ASK (intermediate). */
static void
test_snp(void **state)
{
    struct attest_policy_conf pc;
    struct attest_policy pol;
    struct attest_claims *c = calloc(1, sizeof(*c));
    char err[ATTEST_ERR_MAX] = "";
    size_t len;
    uint8_t *der = fixture("tsm/snp-milan-vcek-go-sev-guest.der", &len);
    X509 *vcek = attest_x509_der(der, len);
    time_t now = utc(2023, 1, 1, 0, 0, 0);

    (void)state;
    attest_policy_conf_defaults(&pc);
    pc.type = ATTEST_KIND_SNP;
    pc.allow_debug = true; /* the fixture is a debug guest */
    snprintf(pc.roots, sizeof(pc.roots), "%s/tsm/snp-milan-ask-ark.pem", ATTEST_FIXTURES);
    assert_int_equal(attest_policy_conf_load(&pc, err), 0);
    assert_int_equal(sk_X509_num(pc.root_certs), 1);
    assert_int_equal(sk_X509_num(pc.intermediates), 1);
    attest_policy_conf_fill(&pc, now, &pol);
    assert_int_equal(verify_file(&pc, &pol, SNP_REPORT, vcek, c, err), ATTEST_OK);
    assert_int_equal(verify_file(&pc, &pol, SNP_REPORT, NULL, c, err), ATTEST_MALFORMED);
    assert_non_null(strstr(err, "VCEK"));
    /* the report's measurement passes, another one does not */
    pc.has_measurement = true;
    memcpy(pc.measurement, c->measurement, sizeof(pc.measurement));
    attest_policy_conf_fill(&pc, now, &pol);
    assert_int_equal(verify_file(&pc, &pol, SNP_REPORT, vcek, c, err), ATTEST_OK);
    pc.measurement[47] ^= 0x80;
    attest_policy_conf_fill(&pc, now, &pol);
    assert_int_equal(verify_file(&pc, &pol, SNP_REPORT, vcek, c, err), ATTEST_POLICY);
    /* a debug guest is refused unless the block allows it */
    pc.has_measurement = false;
    pc.allow_debug = false;
    attest_policy_conf_fill(&pc, now, &pol);
    assert_int_equal(verify_file(&pc, &pol, SNP_REPORT, vcek, c, err), ATTEST_POLICY);
    attest_policy_conf_free(&pc);
    X509_free(vcek);
    free(der);
    free(c);
}

/* Files that are missing, not regular, symlinks or without a root are
 * refused with their path, and nothing stays loaded. */
static void
test_load_errors(void **state)
{
    struct attest_policy_conf pc;
    char err[ATTEST_ERR_MAX] = "";
    EVP_PKEY *key = NULL;
    X509 *root = NULL, *leaf;
    time_t now = time(NULL);

    (void)state;
    attest_policy_conf_defaults(&pc);
    snprintf(pc.roots, sizeof(pc.roots), "%s", tmp("missing.pem"));
    assert_int_equal(attest_policy_conf_load(&pc, err), -ENOENT);
    assert_non_null(strstr(err, "missing.pem"));
    snprintf(pc.roots, sizeof(pc.roots), "%s", attest_tmpdir);
    assert_int_equal(attest_policy_conf_load(&pc, err), -EINVAL);
    assert_non_null(strstr(err, "regular file"));

    assert_int_equal(attest_sim_root_generate(now, &key, &root), 0);
    leaf = attest_sim_cert("leaf", key, root, key, now - 60, now + 60, false);
    assert_non_null(leaf);
    write_cert(tmp("leaf.pem"), leaf);
    snprintf(pc.roots, sizeof(pc.roots), "%s", tmp("leaf.pem"));
    assert_int_equal(attest_policy_conf_load(&pc, err), -EINVAL);
    assert_non_null(strstr(err, "no self-signed root"));
    assert_null(pc.root_certs);

    write_cert(tmp("root.pem"), root);
    char target[sizeof(path_buf)];
    snprintf(target, sizeof(target), "%s", tmp("root.pem"));
    assert_int_equal(symlink(target, tmp("link.pem")), 0);
    pc.roots[0] = '\0';
    snprintf(pc.sim_root, sizeof(pc.sim_root), "%s", tmp("link.pem"));
    assert_int_equal(attest_policy_conf_load(&pc, err), -ELOOP);
    snprintf(pc.sim_root, sizeof(pc.sim_root), "%s", tmp("root.pem"));
    assert_int_equal(attest_policy_conf_load(&pc, err), 0);
    assert_int_equal(X509_cmp(pc.sim_cert, root), 0);
    struct attest_policy pol;
    attest_policy_conf_fill(&pc, now, &pol);
    assert_ptr_equal(pol.sim_root, pc.sim_cert);
    assert_null(pol.roots);
    assert_int_equal(pol.now, now);
    attest_policy_conf_free(&pc);
    X509_free(leaf);
    X509_free(root);
    EVP_PKEY_free(key);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nitro_pcrs),
        cmocka_unit_test(test_snp),
        cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, setup, tmpdir_remove);
}
