/* test_attest_tdx.c - the real TDX quotes of tests/fixtures/attestation/tsm
 * (README.md there), version 4 (TDX 1.0) and version 5 (a TDX 1.5 report):
 * the fields they carry, the quote signature, the QE report's binding and
 * signature, the PCK chain to the pinned Intel root; and the version 4
 * quote with its QE report changed and signed again by a PCK of a
 * generated root: only Intel's TD quoting enclave is believed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "attest/sim.h"
#include "attest/tdx.h"
#include "attest/trust.h"
#include "attest_guarded.h"
#include "attest_util.h"
#include "tdx_sign.h"

static const char mrtd[] = "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b"
                           "8dcd404bc10d5e119d7215cbb";
static const char report_data[] =
    "6c62dec1b8191749a31dab490be532a35944dea47caef1f980863993d9899545eb7406a38d1eed313b987a467dacea"
    "d6f0c87a6d766c66f6f29f8acb281f1113";

#define BODY 48 /* the TD report body follows the header */
#define SIG_DATA (48 + 584 + 4)
#define QE_REPORT (SIG_DATA + 64 + 64 + 6)
#define QE_AUTH (QE_REPORT + 384 + 64 + 2)
#define QE_SIG (QE_REPORT + 384)

static uint8_t *quote, *quote5;
static size_t quote_len, quote5_len;
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

/* The MRTD measures only the TD's firmware: what it boots is in RTMR 1 and
 * 2, which a policy pins besides (the real quote's, and one bit off). */
static void
test_rtmr_policy(void **state)
{
    (void)state;
    static const char *const rtmr[] = {
        "2927da70461cd63266f43230cc1849c03ef25ebe490062a801d8fcc80af42976823adf08f833c1e50b51779c"
        "6593f32a",
        "2c700b8ba9b85783f8be9fb9443647bdc0bb3c50747f06297cc6538c25a5f589c4b56d035c59107c6bc5800d"
        "b2cacb61",
        "8652f0caaba7e215ea442dc36a4499d8fec3362f3a0b2ca151cbe4b3e6466fe59c7368b3c2287fc7c3bf5c92"
        "4eb4424e",
    };
    struct attest_policy pol = policy();

    pol.measurement.present = true;
    pol.measurement.len = unhex(mrtd, pol.measurement.data, sizeof(pol.measurement.data));
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(unhex(rtmr[i], pol.rtmrs[i], sizeof(pol.rtmrs[i])), 48);
        pol.rtmrs_pinned |= 1u << i;
    }
    pol.rtmrs_pinned |= 1u << 3; /* RTMR 3: all zero here */
    assert_int_equal(verify(quote, quote_len, &pol), ATTEST_OK);
    for (unsigned i = 0; i < ATTEST_RTMR_COUNT; i++) {
        char want[64];
        pol.rtmrs[i][47] ^= 1; /* another kernel, command line, ... */
        assert_int_equal(verify(quote, quote_len, &pol), ATTEST_POLICY);
        snprintf(want, sizeof(want), "policy: RTMR %u does not match", i);
        assert_string_equal(err, want);
        pol.rtmrs[i][47] ^= 1;
    }
    /* the version 5 quote, of another TD: the MRTD aside, RTMR 0 differs */
    pol.measurement.present = false;
    pol.now = utc(2026, 6, 1, 0, 0, 0); /* its PCK certificate's time */
    assert_int_equal(verify(quote5, quote5_len, &pol), ATTEST_POLICY);
    assert_non_null(strstr(err, "does not match"));
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

/* The fixture with its QE report edited (edit NULL: as it is), signed by a
 * PCK key of a root generated here (set in pol->roots), the chain in its
 * certification data replaced by that PCK's certificate: what a host could
 * present whose own enclave got the platform's PCK to sign its report. */
static bool pck_is_ca; /* resigned(): the PCK certificate says CA:TRUE */

static uint8_t *
resigned(void (*edit)(uint8_t *qe), struct attest_policy *pol, size_t *len)
{
    EVP_PKEY *root_key, *pck_key = EVP_EC_gen("prime256v1");
    X509 *root, *pck;
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem;

    assert_int_equal(attest_sim_root_generate(pol->now, &root_key, &root), 0);
    pck = attest_sim_cert("PCK", pck_key, root, root_key, pol->now - 60, pol->now + 60, pck_is_ca);
    assert_non_null(pck);
    assert_int_equal(PEM_write_bio_X509(bio, pck), 1);
    long pem_len = BIO_get_mem_data(bio, &pem);

    size_t auth_len = quote[QE_AUTH - 2] | (size_t)quote[QE_AUTH - 1] << 8;
    size_t head = QE_AUTH + auth_len; /* everything before the chain's type */
    *len = head + 6 + (size_t)pem_len;
    uint8_t *q = malloc(*len);
    memcpy(q, quote, head);
    put_le(q + head, 5, 2);
    put_le(q + head + 2, (size_t)pem_len, 4);
    memcpy(q + head + 6, pem, (size_t)pem_len);
    put_le(q + SIG_DATA - 4, *len - SIG_DATA, 4);   /* signature data length */
    put_le(q + QE_REPORT - 4, *len - QE_REPORT, 4); /* certification data size */
    if (edit != NULL)
        edit(q + QE_REPORT);
    sign_p256(pck_key, q + QE_REPORT, 384, q + QE_SIG);

    pol->roots = sk_X509_new_null();
    sk_X509_push(pol->roots, root);
    X509_free(pck);
    BIO_free(bio);
    EVP_PKEY_free(pck_key);
    EVP_PKEY_free(root_key);
    return q;
}

static void
mrsigner_other(uint8_t *qe)
{
    qe[128 + 31] ^= 1;
}

static void
prodid_sgx_qe(uint8_t *qe)
{
    qe[256] = 1; /* the SGX quoting enclave: same signer, product 1 */
}

static void
debug_enclave(uint8_t *qe)
{
    qe[48] |= 0x02; /* ATTRIBUTES.DEBUG */
}

static void
not_init(uint8_t *qe)
{
    qe[48] &= (uint8_t)~0x01; /* ATTRIBUTES.INIT clear */
}

static void
miscselect_set(uint8_t *qe)
{
    qe[16] = 1;
}

static void
svn_revoked(uint8_t *qe)
{
    qe[258] = 3;
    qe[259] = 0;
}

static void
svn_newer(uint8_t *qe)
{
    qe[258] = 0;
    qe[259] = 1; /* 256 */
}

static void
kss(uint8_t *qe)
{
    qe[48] |= 0x80; /* ATTRIBUTES.KSS: key separation and sharing */
}

static void
check_resigned(void (*edit)(uint8_t *qe), enum attest_result want, const char *why)
{
    struct attest_policy pol = policy();
    size_t len;
    uint8_t *q = resigned(edit, &pol, &len);

    assert_int_equal(verify(q, len, &pol), want);
    if (why != NULL)
        assert_non_null(strstr(err, why));
    sk_X509_pop_free(pol.roots, X509_free);
    free(q);
}

/* Only Intel's TD quoting enclave vouches for an attestation key: the PCK
 * signs the report of whatever enclave the platform lets ask. */
static void
test_qe_identity(void **state)
{
    (void)state;
    /* as it is, signed again: the new signature and chain are accepted */
    check_resigned(NULL, ATTEST_OK, NULL);
    check_resigned(svn_newer, ATTEST_OK, NULL);
    check_resigned(mrsigner_other, ATTEST_UNTRUSTED, "not of Intel's TD quoting enclave");
    check_resigned(prodid_sgx_qe, ATTEST_UNTRUSTED, "ISVPRODID 1");
    check_resigned(debug_enclave, ATTEST_UNTRUSTED, "ATTRIBUTES are not Intel's");
    check_resigned(not_init, ATTEST_UNTRUSTED, "ATTRIBUTES are not Intel's");
    check_resigned(kss, ATTEST_UNTRUSTED, "ATTRIBUTES are not Intel's");
    check_resigned(miscselect_set, ATTEST_UNTRUSTED, "MISCSELECT");
    check_resigned(svn_revoked, ATTEST_UNTRUSTED, "ISVSVN 3 is below 4");
    /* a CA's key vouches for certificates, not for a QE report */
    pck_is_ca = true;
    check_resigned(NULL, ATTEST_UNTRUSTED, "the PCK certificate: a CA certificate");
    pck_is_ca = false;
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

/* Version 5: the header, the body's type and size (3, TDX 1.5: 648 bytes),
 * the body; the signature over all three. */
#define V5_BODY (48 + 6)
#define V5_SIG_DATA (V5_BODY + 648 + 4)

static void
test_v5(void **state)
{
    struct attest_policy pol = {.now = utc(2026, 6, 1, 0, 0, 0)};
    uint8_t v[64];

    (void)state;
    assert_int_equal(verify(quote5, quote5_len, &pol), ATTEST_OK);
    assert_int_equal(claims.version, 5);
    assert_true(claims.tdx15);
    unhex("0b010400", v, sizeof(v));
    assert_memory_equal(claims.tee_tcb_svn, v, 4);
    unhex("0d010400", v, sizeof(v));
    assert_memory_equal(claims.tee_tcb_svn2, v, 4);
    unhex("7348651a34b2d2d3462822e3a750ec6110125f36757c78480bbfc69cc0d21fb001a1ced3ee19747dda8f750"
          "c3bc8f876",
          v, sizeof(v));
    assert_memory_equal(claims.measurement, v, 48);
    unhex("945eaacf5abc1f719d8666a942fda03d", v, sizeof(v));
    assert_memory_equal(claims.report_data, v, 16);
    /* the measurement pinned: the MRTD of the 1.5 body */
    pol.measurement.present = true;
    pol.measurement.len = 48;
    memcpy(pol.measurement.data, claims.measurement, 48);
    assert_int_equal(verify(quote5, quote5_len, &pol), ATTEST_OK);
    pol.measurement.data[0] ^= 1;
    assert_int_equal(verify(quote5, quote5_len, &pol), ATTEST_POLICY);
    /* before its PCK certificate */
    pol = (struct attest_policy){.now = utc(2026, 1, 1, 0, 0, 0)};
    assert_int_equal(verify(quote5, quote5_len, &pol), ATTEST_UNTRUSTED);

    uint8_t *q = malloc(quote5_len);
    pol.now = utc(2026, 6, 1, 0, 0, 0);
    /* every byte the signature covers (header, descriptor, body: the 1.5
     * fields too) and the QE report */
    memcpy(q, quote5, quote5_len);
    for (size_t i = 0; i < V5_SIG_DATA + 64 + 64 + 6 + 384 + 64; i += 5) {
        q[i] ^= (uint8_t)(1u << (i % 8));
        if (verify(q, quote5_len, &pol) == ATTEST_OK)
            fail_msg("version 5 accepted with byte %zu altered", i);
        q[i] ^= (uint8_t)(1u << (i % 8));
    }
    /* a descriptor that does not fit its body: type 2 (TDX 1.0) of 648 bytes */
    q[48] = 2;
    assert_int_equal(verify(q, quote5_len, &pol), ATTEST_MALFORMED);
    assert_non_null(strstr(err, "body type 2 of 648 bytes"));
    q[48] = 3;
    q[50] = 0x10; /* a size past the quote */
    q[51] = 0x27;
    assert_int_equal(verify(q, quote5_len, &pol), ATTEST_MALFORMED);
    q[50] = 0x88;
    q[51] = 0x02;
    q[0] = 6; /* version 6 */
    assert_int_equal(verify(q, quote5_len, &pol), ATTEST_MALFORMED);
    q[0] = 5;
    for (size_t i = 0; i < V5_SIG_DATA + 4300; i++)
        if (verify(q, i, &pol) == ATTEST_OK)
            fail_msg("version 5 prefix of %zu bytes accepted", i);
    free(q);
}

int
main(void)
{
    quote = fixture("tsm/tdx-quote-v4-spr-e4-go-tdx-guest.dat", &quote_len);
    quote5 = fixture("tsm/tdx-quote-v5-go-tdx-guest.dat", &quote5_len);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_flipped_bits),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_rtmr_policy),
        cmocka_unit_test(test_time_and_roots),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_unfit_policy),
        cmocka_unit_test(test_qe_identity),
        cmocka_unit_test(test_v5),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    free(quote);
    free(quote5);
    return failed;
}
