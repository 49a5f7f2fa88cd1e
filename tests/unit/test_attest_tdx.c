/* test_attest_tdx.c - the real TDX quote v4 of tests/fixtures/attestation/tsm
 * (README.md there): the fields it carries, the quote signature, the QE
 * report's binding and signature, the PCK chain to the pinned Intel root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/sim.h"
#include "attest/tdx.h"
#include "attest/trust.h"
#include "attest_guarded.h"
#include "attest_util.h"

static const char mrtd[] = "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b"
                           "8dcd404bc10d5e119d7215cbb";
static const char report_data[] =
    "6c62dec1b8191749a31dab490be532a35944dea47caef1f980863993d9899545eb7406a38d1eed313b987a467dacea"
    "d6f0c87a6d766c66f6f29f8acb281f1113";

#define BODY 48 /* the TD report body follows the header */
#define SIG_DATA (48 + 584 + 4)
#define QE_REPORT (SIG_DATA + 64 + 64 + 6)
#define QE_AUTH (QE_REPORT + 384 + 64 + 2)

static uint8_t *quote;
static size_t quote_len;
static struct attest_claims claims;
static char err[ATTEST_ERR_MAX];

static enum attest_result
verify(const uint8_t *q, size_t len, const struct attest_policy *pol)
{
    return verify_guarded(ATTEST_KIND_TDX, q, len, NULL, NULL, pol, &claims, err);
}

static struct attest_policy
policy(void)
{
    return (struct attest_policy){.now = utc(2024, 1, 1, 0, 0, 0)};
}

static void
test_fields(void **state)
{
    (void)state;
    struct attest_policy pol = policy();
    uint8_t v[64];
    static const uint8_t zero[48];

    assert_int_equal(verify(quote, quote_len, &pol), ATTEST_OK);
    assert_int_equal(claims.kind, ATTEST_KIND_TDX);
    assert_int_equal(claims.version, 4);
    unhex("03000400", v, sizeof(v));
    assert_memory_equal(claims.tee_tcb_svn, v, 4);
    unhex("0000004000000000", v, sizeof(v));
    assert_memory_equal(claims.td_attributes, v, 8);
    assert_false(claims.debug);
    unhex(mrtd, v, sizeof(v));
    assert_memory_equal(claims.measurement, v, 48);
    assert_memory_equal(claims.rtmr[3], zero, 48);
    unhex(report_data, v, sizeof(v));
    assert_memory_equal(claims.report_data, v, 64);
}

static void
check_flip(size_t off, const char *why)
{
    struct attest_policy pol = policy();
    uint8_t *q = malloc(quote_len);

    memcpy(q, quote, quote_len);
    q[off] ^= 0x01;
    assert_int_equal(verify(q, quote_len, &pol), ATTEST_UNTRUSTED);
    assert_string_equal(err, why);
    free(q);
}

static void
test_flipped_bits(void **state)
{
    (void)state;
    check_flip(BODY + 136, "quote: signature does not verify");      /* MRTD */
    check_flip(BODY + 520 + 63, "quote: signature does not verify"); /* REPORTDATA */
    check_flip(BODY + 120, "quote: signature does not verify");      /* td_attributes */
    check_flip(SIG_DATA + 5, "quote: signature does not verify");    /* the signature */
    check_flip(SIG_DATA + 64 + 9, "quote: the attestation key is not a P-256 point");
    check_flip(QE_REPORT + 10, "QE report: signature does not verify");
    check_flip(QE_AUTH, "quote: the QE report does not bind the attestation key");

    /* one bit at a time through the signed part and the QE report */
    struct attest_policy pol = policy();
    uint8_t *q = malloc(quote_len);
    memcpy(q, quote, quote_len);
    for (size_t i = 0; i < QE_REPORT + 384 + 64; i += 7) {
        q[i] ^= (uint8_t)(1u << (i % 8));
        if (verify(q, quote_len, &pol) == ATTEST_OK)
            fail_msg("accepted with byte %zu altered", i);
        q[i] ^= (uint8_t)(1u << (i % 8));
    }
    free(q);
}

static void
test_policy(void **state)
{
    (void)state;
    struct attest_policy pol = policy();

    pol.measurement.present = true;
    pol.measurement.len = unhex(mrtd, pol.measurement.data, sizeof(pol.measurement.data));
    pol.user_data.present = true;
    pol.user_data.len = unhex(report_data, pol.user_data.data, sizeof(pol.user_data.data));
    assert_int_equal(verify(quote, quote_len, &pol), ATTEST_OK);
    pol.user_data.data[63] ^= 1;
    assert_int_equal(verify(quote, quote_len, &pol), ATTEST_POLICY);
    assert_string_equal(err, "policy: report_data does not match");
    pol.user_data.present = false;
    pol.measurement.data[0] ^= 1;
    assert_int_equal(verify(quote, quote_len, &pol), ATTEST_POLICY);
    assert_string_equal(err, "policy: MRTD does not match");
}

/* A TDX quote carries no PCRs, Nitro nonce or public key, and no SEV-SNP
 * TCB: a policy that pins one is refused, whatever its value (min_tcb was
 * ignored). */
static void
test_unfit_policy(void **state)
{
    (void)state;
    struct attest_policy pol;

    pol = policy();
    pol.min_tcb_present = true;
    memset(pol.min_tcb, 0xff, sizeof(pol.min_tcb));
    assert_int_equal(verify(quote, quote_len, &pol), ATTEST_POLICY);
    assert_non_null(strstr(err, "pins a minimum TCB, which tdx evidence does not carry"));
    assert_int_equal(attest_tdx_verify(quote, quote_len, &pol, &claims, err), ATTEST_POLICY);
    memset(pol.min_tcb, 0, sizeof(pol.min_tcb));
    assert_int_equal(verify(quote, quote_len, &pol), ATTEST_POLICY);
    pol = policy();
    pol.vmpl_present = true; /* VMPL 0: an SNP notion */
    assert_int_equal(verify(quote, quote_len, &pol), ATTEST_POLICY);
    assert_non_null(strstr(err, "pins a VMPL, which tdx evidence does not carry"));
    pol = policy();
    pol.npcrs = 1;
    assert_int_equal(verify(quote, quote_len, &pol), ATTEST_POLICY);
    assert_non_null(strstr(err, "pins PCRs"));
    pol = policy();
    pol.nonce.present = true;
    assert_int_equal(verify(quote, quote_len, &pol), ATTEST_POLICY);
    assert_non_null(strstr(err, "pins a nonce"));
    pol = policy();
    pol.public_key.present = true;
    assert_int_equal(verify(quote, quote_len, &pol), ATTEST_POLICY);
    assert_non_null(strstr(err, "pins a public key"));
}

static void
test_time_and_roots(void **state)
{
    (void)state;
    struct attest_policy pol = policy();
    EVP_PKEY *key;
    X509 *other;

    pol.now = utc(2022, 9, 20, 13, 20, 31); /* the PCK leaf's notBefore */
    assert_int_equal(verify(quote, quote_len, &pol), ATTEST_OK);
    pol.now -= 1;
    assert_int_equal(verify(quote, quote_len, &pol), ATTEST_UNTRUSTED);
    pol.now = utc(2029, 9, 20, 13, 20, 32);
    assert_int_equal(verify(quote, quote_len, &pol), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "expired"));
    pol = policy();
    assert_int_equal(attest_sim_root_generate(pol.now, &key, &other), 0);
    pol.roots = sk_X509_new_null();
    sk_X509_push(pol.roots, other);
    assert_int_equal(verify(quote, quote_len, &pol), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "certificate chain"));
    sk_X509_pop_free(pol.roots, X509_free);
    EVP_PKEY_free(key);
}

static void
test_truncated(void **state)
{
    (void)state;
    struct attest_policy pol = policy();

    for (size_t i = 0; i < SIG_DATA + 4299; i++)
        if (verify(quote, i, &pol) == ATTEST_OK)
            fail_msg("prefix of %zu bytes accepted", i);
    uint8_t *q = malloc(quote_len);
    memcpy(q, quote, quote_len);
    q[0] = 3; /* version 3 */
    assert_int_equal(verify(q, quote_len, &pol), ATTEST_MALFORMED);
    q[0] = 4;
    q[SIG_DATA - 4 + 3] = 0x7f; /* signature data longer than the quote */
    assert_int_equal(verify(q, quote_len, &pol), ATTEST_MALFORMED);
    free(q);
}

int
main(void)
{
    quote = fixture("tsm/tdx-quote-v4-spr-e4-go-tdx-guest.dat", &quote_len);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),    cmocka_unit_test(test_flipped_bits),
        cmocka_unit_test(test_policy),    cmocka_unit_test(test_time_and_roots),
        cmocka_unit_test(test_truncated), cmocka_unit_test(test_unfit_policy),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    free(quote);
    return failed;
}
