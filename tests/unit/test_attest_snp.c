/* test_attest_snp.c - the real SEV-SNP report of tests/fixtures/attestation/tsm
 * (README.md there) with its VCEK and the AMD Milan ASK/ARK: its fields, its
 * signature and chain, and the policy (the report allows debugging: refused by
 * default). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/x509v3.h>

#include "attest/sim.h"
#include "attest/snp.h"
#include "attest/trust.h"
#include "attest_guarded.h"
#include "attest_util.h"

static const char measurement[] = "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b"
                                  "6bdf8a9ece31a5a608eb0cf2e4872b01";

static uint8_t *report;
static size_t report_len;
static X509 *vcek;
static STACK_OF(X509) * ask, *ark;
static struct attest_claims claims;
static char err[ATTEST_ERR_MAX];

static enum attest_result
verify(const uint8_t *r, size_t len, const struct attest_policy *pol)
{
    return verify_guarded(ATTEST_KIND_SNP, r, len, vcek, ask, pol, &claims, err);
}

static struct attest_policy
policy(void)
{
    return (struct attest_policy){.now = utc(2023, 1, 1, 0, 0, 0), .roots = ark};
}

static int
setup(void **state)
{
    (void)state;
    size_t len;
    uint8_t *der = fixture("tsm/snp-milan-vcek-go-sev-guest.der", &len);
    vcek = attest_x509_der(der, len);
    char *pem = (char *)fixture("tsm/snp-milan-ask-ark.pem", &len);
    STACK_OF(X509) *both = attest_x509_pem(pem, len);

    report = fixture("tsm/snp-milan-report-go-sev-guest.bin", &report_len);
    if (vcek == NULL || both == NULL || sk_X509_num(both) != 2)
        return -1;
    ask = sk_X509_new_null();
    ark = sk_X509_new_null();
    sk_X509_push(ask, sk_X509_value(both, 0));
    sk_X509_push(ark, sk_X509_value(both, 1));
    sk_X509_free(both);
    free(der);
    free(pem);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    sk_X509_pop_free(ask, X509_free);
    sk_X509_pop_free(ark, X509_free);
    X509_free(vcek);
    free(report);
    return 0;
}

static void
test_debug_refused_by_default(void **state)
{
    (void)state;
    struct attest_policy pol = policy();

    assert_int_equal(verify(report, report_len, &pol), ATTEST_POLICY);
    assert_string_equal(err, "policy: the guest policy allows debugging");
    assert_true(claims.debug);
    pol.allow_debug = true;
    assert_int_equal(verify(report, report_len, &pol), ATTEST_OK);
}

static void
test_fields(void **state)
{
    (void)state;
    struct attest_policy pol = policy();
    uint8_t v[64] = {0};

    pol.allow_debug = true;
    assert_int_equal(verify(report, report_len, &pol), ATTEST_OK);
    assert_int_equal(claims.kind, ATTEST_KIND_SNP);
    assert_int_equal(claims.version, 2);
    assert_int_equal(claims.guest_svn, 0);
    assert_int_equal(claims.snp_policy, 0xb0000);
    assert_int_equal(claims.vmpl, 0);
    unhex(measurement, v, sizeof(v));
    assert_memory_equal(claims.measurement, v, 48);
    memset(v, 0, sizeof(v));
    unhex("0102030405", v, sizeof(v));
    assert_memory_equal(claims.report_data, v, 64);
    unhex("0200000000000544", v, sizeof(v));
    assert_memory_equal(claims.reported_tcb, v, 8);
    unhex("3ac3fe21", v, sizeof(v));
    assert_memory_equal(claims.chip_id, v, 4);
    assert_false(claims.sim);
}

static void
test_flipped_bits(void **state)
{
    (void)state;
    struct attest_policy pol = policy();
    uint8_t *r = malloc(report_len);

    pol.allow_debug = true;
    memcpy(r, report, report_len);
    /* the signed part and the used bytes of r and s: never accepted */
    for (size_t i = 0; i < 0x2a0 + 144; i += 5) {
        r[i] ^= (uint8_t)(1u << (i % 8));
        if (verify(r, report_len, &pol) == ATTEST_OK)
            fail_msg("accepted with byte %zu altered", i);
        r[i] ^= (uint8_t)(1u << (i % 8));
    }
    r[0x90] ^= 1; /* the measurement */
    assert_int_equal(verify(r, report_len, &pol), ATTEST_UNTRUSTED);
    assert_string_equal(err, "report: signature does not verify");
    r[0x90] ^= 1;
    r[0x1a0] ^= 1; /* chip_id: the VCEK is not this chip's */
    assert_int_equal(verify(r, report_len, &pol), ATTEST_UNTRUSTED);
    assert_string_equal(err, "VCEK: not issued for this chip_id");
    r[0x1a0] ^= 1;
    r[0x2a0 + 71] ^= 1; /* a high byte of r, which P-384 leaves zero */
    assert_int_equal(verify(r, report_len, &pol), ATTEST_UNTRUSTED);
    r[0x2a0 + 71] ^= 1;
    assert_int_equal(verify(r, report_len, &pol), ATTEST_OK);
    free(r);
}

static void
test_measurement_policy(void **state)
{
    (void)state;
    struct attest_policy pol = policy();

    pol.allow_debug = true;
    pol.measurement.present = true;
    pol.measurement.len = unhex(measurement, pol.measurement.data, sizeof(pol.measurement.data));
    assert_int_equal(verify(report, report_len, &pol), ATTEST_OK);
    pol.measurement.data[47] ^= 1;
    assert_int_equal(verify(report, report_len, &pol), ATTEST_POLICY);
    assert_string_equal(err, "policy: measurement does not match");
}

static void
test_tcb_and_report_data_policy(void **state)
{
    (void)state;
    struct attest_policy pol = policy();

    pol.allow_debug = true;
    pol.min_tcb_present = true;
    unhex("0200000000000544", pol.min_tcb, sizeof(pol.min_tcb));
    assert_int_equal(verify(report, report_len, &pol), ATTEST_OK);
    pol.min_tcb[6] = 6; /* snp SPL 6 > 5 */
    assert_int_equal(verify(report, report_len, &pol), ATTEST_POLICY);
    assert_string_equal(err, "policy: snp SPL 5 is below 6");
    /* a reserved byte pinned: not checked, so refused (it was ignored) */
    pol.min_tcb[6] = 5;
    pol.min_tcb[3] = 0xff;
    assert_int_equal(verify(report, report_len, &pol), ATTEST_POLICY);
    assert_non_null(strstr(err, "reserved byte 3"));
    pol.min_tcb_present = false;
    /* the fixture's report is from VMPL 0 */
    pol.vmpl_present = true;
    assert_int_equal(verify(report, report_len, &pol), ATTEST_OK);
    pol.vmpl = 2;
    assert_int_equal(verify(report, report_len, &pol), ATTEST_POLICY);
    assert_string_equal(err, "policy: the report is from VMPL 0, not 2");
    pol.vmpl_present = false;
    pol.user_data.present = true;
    pol.user_data.len = unhex("0102030405", pol.user_data.data, sizeof(pol.user_data.data));
    assert_int_equal(verify(report, report_len, &pol), ATTEST_OK);
    pol.user_data.data[4] = 6;
    assert_int_equal(verify(report, report_len, &pol), ATTEST_POLICY);
}

/* An SEV-SNP report carries no PCRs, Nitro nonce or public key: a policy
 * that pins one is refused. */
static void
test_unfit_policy(void **state)
{
    (void)state;
    struct attest_policy pol;

    pol = policy();
    pol.allow_debug = true;
    assert_int_equal(verify(report, report_len, &pol), ATTEST_OK);
    pol.npcrs = 1;
    assert_int_equal(verify(report, report_len, &pol), ATTEST_POLICY);
    assert_non_null(strstr(err, "pins PCRs, which snp evidence does not carry"));
    pol.npcrs = 0;
    pol.nonce.present = true;
    assert_int_equal(verify(report, report_len, &pol), ATTEST_POLICY);
    pol.nonce.present = false;
    pol.public_key.present = true;
    assert_int_equal(verify(report, report_len, &pol), ATTEST_POLICY);
    assert_non_null(strstr(err, "pins a public key"));
}

static void
test_time_and_roots(void **state)
{
    (void)state;
    struct attest_policy pol = policy();
    EVP_PKEY *key;
    X509 *other;

    pol.allow_debug = true;
    pol.now = utc(2022, 9, 24, 0, 55, 28); /* the VCEK's notBefore */
    assert_int_equal(verify(report, report_len, &pol), ATTEST_OK);
    pol.now -= 1;
    assert_int_equal(verify(report, report_len, &pol), ATTEST_UNTRUSTED);
    pol.now = utc(2029, 9, 24, 0, 55, 28); /* its notAfter: the last second (RFC 5280) */
    assert_int_equal(verify(report, report_len, &pol), ATTEST_OK);
    pol.now = utc(2029, 9, 24, 0, 55, 29);
    assert_int_equal(verify(report, report_len, &pol), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "expired"));
    pol = policy();
    pol.allow_debug = true;
    assert_int_equal(attest_sim_root_generate(pol.now, &key, &other), 0);
    pol.roots = sk_X509_new_null();
    sk_X509_push(pol.roots, other);
    assert_int_equal(verify(report, report_len, &pol), ATTEST_UNTRUSTED);
    sk_X509_pop_free(pol.roots, X509_free);
    EVP_PKEY_free(key);
    pol.roots = NULL;
    assert_int_equal(verify(report, report_len, &pol), ATTEST_UNTRUSTED);
    assert_string_equal(err, "no AMD root (ARK) given");
}

static void
test_truncated(void **state)
{
    (void)state;
    struct attest_policy pol = policy();
    uint8_t *more = calloc(1, report_len + 1);

    pol.allow_debug = true;
    for (size_t i = 0; i < report_len; i++)
        assert_int_equal(verify(report, i, &pol), ATTEST_MALFORMED);
    memcpy(more, report, report_len);
    assert_int_equal(verify(more, report_len + 1, &pol), ATTEST_MALFORMED);
    more[0] = 1; /* version 1 */
    assert_int_equal(verify(more, report_len, &pol), ATTEST_MALFORMED);
    free(more);
}

/* The fixture's report with the 8 bytes at off set to tcb, signed again
 * by a VCEK made here (the real one's chip and TCB extensions) under a
 * root made here: *own_vcek and *root (the caller frees them). */
static uint8_t *
resigned_tcb(size_t off, const char *tcb, X509 **own_vcek, STACK_OF(X509) * *root, time_t now)
{
    EVP_PKEY *root_key, *key = EVP_EC_gen("secp384r1");
    X509 *root_cert;
    uint8_t *r = malloc(report_len), der[128];
    size_t dlen = sizeof(der);
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    assert_int_equal(attest_sim_root_generate(now, &root_key, &root_cert), 0);
    *own_vcek = attest_sim_cert("Own VCEK", key, root_cert, root_key, now - 60, now + 3600, false);
    for (int i = 0; i < X509_get_ext_count(vcek); i++) {
        X509_EXTENSION *e = X509_get_ext(vcek, i);
        char txt[64];
        OBJ_obj2txt(txt, sizeof(txt), X509_EXTENSION_get_object(e), 1);
        if (strncmp(txt, "1.3.6.1.4.1.3704.1.", 19) == 0)
            assert_int_equal(X509_add_ext(*own_vcek, e, -1), 1);
    }
    assert_true(X509_sign(*own_vcek, root_key, EVP_sha384()) > 0);
    memcpy(r, report, report_len);
    unhex(tcb, r + off, 8);
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, key), 1);
    assert_int_equal(EVP_DigestSign(md, der, &dlen, r, 0x2a0), 1);
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
    assert_non_null(sig);
    assert_int_equal(BN_bn2lebinpad(ECDSA_SIG_get0_r(sig), r + 0x2a0, 72), 72);
    assert_int_equal(BN_bn2lebinpad(ECDSA_SIG_get0_s(sig), r + 0x2a0 + 72, 72), 72);
    *root = sk_X509_new_null();
    sk_X509_push(*root, root_cert);
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    EVP_PKEY_free(root_key);
    return r;
}

/* min_tcb holds every TCB the report carries: the one its VCEK is of
 * (reported_tcb, which the host may set below the others), the firmware's
 * now and committed (current_tcb, committed_tcb), and the one the guest
 * was launched under (launch_tcb, which an update since does not raise). */
static void
test_every_tcb(void **state)
{
    static const struct {
        size_t off;
        const char *name;
    } tcbs[] = {{0x38, "current_tcb"}, {0x1e0, "committed_tcb"}, {0x1f0, "launch_tcb"}};
    time_t now = utc(2023, 1, 1, 0, 0, 0);
    char why[96];

    (void)state;
    for (size_t i = 0; i < sizeof(tcbs) / sizeof(tcbs[0]); i++) {
        X509 *own;
        STACK_OF(X509) * root;
        struct attest_policy pol = {.now = now, .allow_debug = true, .min_tcb_present = true};
        unhex("0200000000000544", pol.min_tcb, sizeof(pol.min_tcb));
        /* as the fixture: accepted under the root made here */
        uint8_t *r = resigned_tcb(tcbs[i].off, "0200000000000544", &own, &root, now);
        pol.roots = root;
        if (attest_snp_verify(r, report_len, own, NULL, &pol, &claims, err) != ATTEST_OK)
            fail_msg("%s: %s", tcbs[i].name, err);
        free(r);
        X509_free(own);
        sk_X509_pop_free(root, X509_free);
        /* its snp SPL 4, below the policy's 5 */
        r = resigned_tcb(tcbs[i].off, "0200000000000444", &own, &root, now);
        pol.roots = root;
        assert_int_equal(attest_snp_verify(r, report_len, own, NULL, &pol, &claims, err),
                         ATTEST_POLICY);
        snprintf(why, sizeof(why), "policy: %s: snp SPL 4 is below 5", tcbs[i].name);
        assert_string_equal(err, why);
        free(r);
        X509_free(own);
        sk_X509_pop_free(root, X509_free);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_debug_refused_by_default),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_flipped_bits),
        cmocka_unit_test(test_measurement_policy),
        cmocka_unit_test(test_tcb_and_report_data_policy),
        cmocka_unit_test(test_every_tcb),
        cmocka_unit_test(test_unfit_policy),
        cmocka_unit_test(test_time_and_roots),
        cmocka_unit_test(test_truncated),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
