/* test_attest_tdx_collateral.c - the real TDX quote of
 * tests/fixtures/attestation/tsm judged by Intel's collateral
 * (tsm/tdx-collateral: TCB Info, QE Identity, the TCB signing chain and
 * the CRLs Intel's PCS served for it in June 2023; provenance in
 * tsm/README.md).
 *
 * As Intel published it, the collateral accepts the quote's chains and
 * CRLs and its FMSPC, and then finds no TCB level the platform reaches
 * (its TDX late microcode SVN, 4, is below every level's 5): Intel's
 * algorithm refuses it, and so does airlock. To prove the levels, the QE
 * Identity and the revocation checks both ways, the tests then sign edited
 * copies with a TCB signing key of a root generated here, pinned beside the
 * Intel root, as a PCCS of one's own could: the quote and its PCK chain stay
 * Intel's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "attest/sim.h"
#include "attest/tdx.h"
#include "attest/tdx_collateral.h"
#include "attest/trust.h"
#include "attest_util.h"
#include "tdx_sign.h"

#define COLLATERAL "tsm/tdx-collateral"

static uint8_t *quote;
static size_t quote_len;
static struct attest_claims claims;
static char err[ATTEST_ERR_MAX];
static time_t july; /* inside every window of the collateral */

static enum attest_result
verify_with(const char *dir, struct attest_policy *pol)
{
    struct tdx_collateral *col = NULL;
    char lerr[ATTEST_ERR_MAX];

    if (tdx_collateral_load(dir, &col, lerr) != 0)
        fail_msg("%s: %s", dir, lerr);
    pol->tdx_collateral = col;
    enum attest_result r = attest_tdx_verify(quote, quote_len, pol, &claims, err);
    tdx_collateral_free(col);
    return r;
}

static char *
fixture_text(const char *name)
{
    char path[256];
    size_t len;
    uint8_t *b;

    snprintf(path, sizeof(path), COLLATERAL "/%s", name);
    b = fixture(path, &len);
    char *s = malloc(len + 1);
    memcpy(s, b, len);
    s[len] = '\0';
    free(b);
    return s;
}

static void
write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_non_null(f = fopen(path, "wb"));
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void
copy_fixture(const char *dir, const char *name)
{
    char path[256];
    size_t len;
    uint8_t *b;

    snprintf(path, sizeof(path), COLLATERAL "/%s", name);
    b = fixture(path, &len);
    write_file(dir, name, b, len);
    free(b);
}

/* ---- Intel's collateral as published */

static void
test_intel_collateral(void **state)
{
    struct attest_policy pol = {.now = july};
    char dir[512];

    (void)state;
    snprintf(dir, sizeof(dir), "%s/" COLLATERAL, ATTEST_FIXTURES);
    assert_int_equal(verify_with(dir, &pol), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "no TCB level of the TCB Info matches the platform"));
    /* before the TCB Info was issued (the CRLs were in force) */
    pol.now = utc(2023, 6, 10, 0, 0, 0);
    assert_int_equal(verify_with(dir, &pol), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "the TCB Info is not current"));
    /* the PCK CRL is in force through its next update (07:27:52, RFC
     * 5280's inclusive end), so what refuses there is what refuses in July;
     * a second later, the CRL */
    pol.now = utc(2023, 7, 8, 7, 27, 52);
    assert_int_equal(verify_with(dir, &pol), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "no TCB level of the TCB Info matches the platform"));
    pol.now += 1;
    assert_int_equal(verify_with(dir, &pol), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "is not in force at the time given"));
    pol.now = utc(2023, 8, 1, 0, 0, 0);
    assert_int_equal(verify_with(dir, &pol), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "is not in force at the time given"));
}

/* A collateral directory with one of Intel's files changed, or left out:
 * refused at the load, with the file named. */
static void
check_load_refused(const char *name, const char *from, const char *to, const char *why)
{
    static const char *const files[] = {"tcb_info.json", "qe_identity.json", "tcb_chain.pem",
                                        "pck_crl_platform.der", "root_crl.der"};
    struct tdx_collateral *col = NULL;
    char dir[128], lerr[ATTEST_ERR_MAX];

    snprintf(dir, sizeof(dir), "%s/load", attest_tmpdir);
    mkdir(dir, 0700);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
        if (strcmp(files[i], name) != 0) {
            copy_fixture(dir, files[i]);
        } else if (from != NULL) {
            char *text = fixture_text(name), *at = strstr(text, from);
            assert_non_null(at);
            assert_int_equal(strlen(from), strlen(to));
            memcpy(at, to, strlen(to));
            write_file(dir, name, text, strlen(text));
            free(text);
        }
    }
    assert_int_not_equal(tdx_collateral_load(dir, &col, lerr), 0);
    assert_null(col);
    if (strstr(lerr, why) == NULL || (from != NULL && strstr(lerr, name) == NULL))
        fail_msg("%s: \"%s\", expected \"%s\"", name, lerr, why);
}

static void
test_load_refused(void **state)
{
    (void)state;
    /* a changed level, status or identity breaks Intel's signature */
    check_load_refused("tcb_info.json", "\"pcesvn\":11", "\"pcesvn\":10", "not signed");
    check_load_refused("tcb_info.json", "\"tcbStatus\":\"OutOfDate\"",
                       "\"tcbStatus\":\"UpToDate\"\x20", "not signed");
    check_load_refused("qe_identity.json", "\"isvsvn\":4", "\"isvsvn\":3", "not signed");
    check_load_refused("tcb_info.json", "{\"tcbInfo\"", "{\"tcbInfX\"", "\"tcbInfo\" object");
    check_load_refused("tcb_chain.pem", "MII", "XII", "TCB signing chain");
    check_load_refused("qe_identity.json", NULL, NULL, "No such file");
    check_load_refused("tcb_info.json", NULL, NULL, "no TCB Info");
}

/* ---- edited copies, signed by a TCB signing key of a root made here */

struct signer {
    EVP_PKEY *root_key, *key;
    X509 *root, *cert, *intel_root;
    STACK_OF(X509) * roots; /* Intel's root and the one made here */
};

static struct signer sg;

/* The signature of text by the signing key made here, in hex. */
static void
sign_hex(const char *text, size_t len, char hex[129])
{
    uint8_t rs[64];

    sign_p256(sg.key, (const uint8_t *)text, len, rs);
    for (int i = 0; i < 64; i++)
        snprintf(hex + 2 * i, 3, "%02x", rs[i]);
}

/* Replaces the first from in s (malloc'd) by to; returns the new string. */
static char *
replace(char *s, const char *from, const char *to)
{
    char *at = strstr(s, from);

    if (at == NULL)
        fail_msg("\"%s\" not in the collateral", from);
    size_t head = (size_t)(at - s), n = strlen(s) - strlen(from) + strlen(to);
    char *out = malloc(n + 1);
    memcpy(out, s, head);
    strcpy(out + head, to);
    strcat(out, at + strlen(from));
    free(s);
    return out;
}

/* Intel's JSON file name with its signed member edited (edits: pairs of
 * from, to, applied in turn, NULL after the last) and signed again by the
 * key made here. */
static void
write_signed(const char *dir, const char *name, const char *member, const char *const *edits)
{
    char *text = fixture_text(name), hex[129], *out, *end;

    /* the member's value: from after {"member": to before ,"signature" */
    assert_non_null(end = strstr(text, ",\"signature\":\""));
    *end = '\0';
    char *value = strdup(text + strlen(member) + 4);
    for (size_t i = 0; edits != NULL && edits[i] != NULL; i += 2)
        value = replace(value, edits[i], edits[i + 1]);
    sign_hex(value, strlen(value), hex);
    size_t n = strlen(value) + strlen(member) + 200;
    out = malloc(n);
    snprintf(out, n, "{\"%s\":%s,\"signature\":\"%s\"}", member, value, hex);
    write_file(dir, name, out, strlen(out));
    free(out);
    free(value);
    free(text);
}

/* Intel's tcb_info.json with a forged member put first: under the key
 * spelt with an escape (which a JSON parser reads as "tcbInfo"), or under
 * the key itself (given twice). The forged levels would let the platform
 * pass as UpToDate. */
static void
check_forged_first(const char *key, enum attest_result want, const char *why)
{
    char dir[128], *intel = fixture_text("tcb_info.json");
    struct tdx_collateral *col = NULL;
    char lerr[ATTEST_ERR_MAX];

    snprintf(dir, sizeof(dir), "%s/forged", attest_tmpdir);
    mkdir(dir, 0700);
    copy_fixture(dir, "qe_identity.json");
    copy_fixture(dir, "tcb_chain.pem");
    copy_fixture(dir, "pck_crl_platform.der");
    copy_fixture(dir, "root_crl.der");
    /* Intel's member, every level lowered to the platform's and UpToDate */
    char *forged = strdup(intel + strlen("{\"tcbInfo\":"));
    *strstr(forged, ",\"signature\":\"") = '\0';
    for (int i = 0; i < 2; i++) {
        forged =
            replace(forged, "{\"svn\":5,\"category\":\"BIOS\"", "{\"svn\":0,\"category\":\"BIOS\"");
        forged = replace(forged, "{\"svn\":5,\"category\":\"OS/VMM\",\"type\":\"SGX",
                         "{\"svn\":0,\"category\":\"OS/VMM\",\"type\":\"SGX");
        forged = replace(forged, "{\"svn\":3,\"category\":\"BIOS\"}",
                         "{\"svn\":0,\"category\":\"BIOS\"}");
        forged = replace(forged, "{\"svn\":3,\"category\":\"OS/VMM\",\"type\":\"SEAMLDR",
                         "{\"svn\":0,\"category\":\"OS/VMM\",\"type\":\"SEAMLDR");
        forged = replace(forged, "{\"svn\":5,\"category\":\"OS/VMM\",\"type\":\"TDX Late",
                         "{\"svn\":0,\"category\":\"OS/VMM\",\"type\":\"TDX Late");
    }
    forged = replace(forged, "\"OutOfDate\"", "\"UpToDate\"");
    size_t n = strlen(key) + strlen(forged) + strlen(intel) + 8;
    char *body = malloc(n);
    snprintf(body, n, "{\"%s\":%s,%s", key, forged, intel + 1);
    write_file(dir, "tcb_info.json", body, strlen(body));
    free(body);
    free(forged);
    free(intel);
    if (want == ATTEST_MALFORMED) { /* refused at the load */
        assert_int_not_equal(tdx_collateral_load(dir, &col, lerr), 0);
        assert_non_null(strstr(lerr, why));
        return;
    }
    struct attest_policy pol = {.now = july};
    assert_int_equal(verify_with(dir, &pol), want);
    assert_non_null(strstr(err, why));
}

static void
test_forged_member(void **state)
{
    (void)state;
    /* the signed bytes decide, not what a parse of the body picks */
    check_forged_first("tcb\\u0049nfo", ATTEST_UNTRUSTED,
                       "no TCB level of the TCB Info matches the platform");
    check_forged_first("tcbInfo", ATTEST_MALFORMED, "not signed by the TCB signing key");
}

/* DIR/name: a CRL of issuer (signed by its key), in force a day either
 * side of at, listing revoked (may be NULL). */
static void
write_crl(const char *dir, const char *name, X509 *issuer, EVP_PKEY *issuer_key, time_t at,
          X509 *revoked)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *from = ASN1_TIME_set(NULL, at - 86400), *to = ASN1_TIME_set(NULL, at + 86400);
    unsigned char *der = NULL;

    assert_int_equal(X509_CRL_set_version(crl, 1), 1);
    assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)), 1);
    X509_CRL_set1_lastUpdate(crl, from);
    X509_CRL_set1_nextUpdate(crl, to);
    if (revoked != NULL) {
        X509_REVOKED *r = X509_REVOKED_new();
        X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(revoked));
        X509_REVOKED_set_revocationDate(r, from);
        X509_CRL_add0_revoked(crl, r);
    }
    assert_true(X509_CRL_sign(crl, issuer_key, EVP_sha256()) > 0);
    int n = i2d_X509_CRL(crl, &der);
    assert_true(n > 0);
    write_file(dir, name, der, (size_t)n);
    OPENSSL_free(der);
    ASN1_TIME_free(from);
    ASN1_TIME_free(to);
    X509_CRL_free(crl);
}

/* DIR/tcb_chain.pem: the signing certificate made here and its root. */
static void
write_chain(const char *dir)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem;

    PEM_write_bio_X509(bio, sg.cert);
    PEM_write_bio_X509(bio, sg.root);
    long n = BIO_get_mem_data(bio, &pem);
    write_file(dir, "tcb_chain.pem", pem, (size_t)n);
    BIO_free(bio);
}

/* A directory of Intel's CRLs, the chain of the key made here and its
 * root's CRL (listing revoked, may be NULL), and tcb_info.json and
 * qe_identity.json with their edits (write_signed) signed again. */
static const char *
own_collateral(const char *const *tcb_edits, const char *const *qe_edits, X509 *revoked)
{
    static char dir[128];

    snprintf(dir, sizeof(dir), "%s/own", attest_tmpdir);
    mkdir(dir, 0700);
    copy_fixture(dir, "pck_crl_platform.der");
    copy_fixture(dir, "root_crl.der");
    write_crl(dir, "root_crl_own.der", sg.root, sg.root_key, july, revoked);
    write_chain(dir);
    write_signed(dir, "tcb_info.json", "tcbInfo", tcb_edits);
    write_signed(dir, "qe_identity.json", "enclaveIdentity", qe_edits);
    return dir;
}

/* The SGX components of a level up to the eighth: Intel's two levels ask
 * for 5, 5, 2, 2, 3, 1, 0, 3, which the platform (3, 3, 2, 2, 2, 1, 0, 2)
 * does not reach; its PCESVN (11) does. */
#define SGX(a, b, e, h)                                                                            \
    "{\"svn\":" #a ",\"category\":\"BIOS\",\"type\":\"Early Microcode Update\"},{\"svn\":" #b      \
    ",\"category\":\"OS/VMM\",\"type\":\"SGX Late Microcode Update\"},{\"svn\":2,\"category\":"    \
    "\"OS/VMM\",\"type\":\"TXT SINIT\"},{\"svn\":2,\"category\":\"BIOS\"},{\"svn\":" #e            \
    ",\"category\":\"BIOS\"},{\"svn\":1,\"category\":\"BIOS\"},{\"svn\":0},{\"svn\":" #h ","
/* The TDX components of a level up to its late microcode SVN: 5 in both
 * levels, the platform's is 4. */
#define TDX_SVN(n)                                                                                 \
    "\"tdxtcbcomponents\":[{\"svn\":3,\"category\":\"OS/VMM\",\"type\":\"TDX Module\"},"           \
    "{\"svn\":0,\"category\":\"OS/VMM\",\"type\":\"TDX Module\"},{\"svn\":" #n ","
#define INTEL_SGX SGX(5, 5, 3, 3)
#define PLATFORM_SGX SGX(3, 3, 2, 2)

/* the first level lowered to the platform's: reached */
static const char *const reached[] = {INTEL_SGX, PLATFORM_SGX, TDX_SVN(5), TDX_SVN(4), NULL};
/* both levels' SGX components lowered, the first level's TDX ones not:
 * the second (OutOfDate) reached */
static const char *const second[] = {INTEL_SGX,  PLATFORM_SGX, INTEL_SGX,  PLATFORM_SGX,
                                     TDX_SVN(5), "@",          TDX_SVN(5), TDX_SVN(4),
                                     "@",        TDX_SVN(5),   NULL};

static enum attest_result
judged(const char *dir, unsigned ok)
{
    struct attest_policy pol = {.now = july, .roots = sg.roots, .tcb_status_ok = ok};

    memset(&claims, 0, sizeof(claims));
    return verify_with(dir, &pol);
}

static void
test_levels(void **state)
{
    const char *dir;

    (void)state;
    /* the platform reaches the first level: UpToDate */
    dir = own_collateral(reached, NULL, NULL);
    if (judged(dir, 0) != ATTEST_OK)
        fail_msg("%s", err);
    assert_true(claims.tcb_judged);
    assert_int_equal(claims.tcb_status, ATTEST_TCB_UP_TO_DATE);
    assert_int_equal(claims.qe_status, ATTEST_TCB_UP_TO_DATE);
    assert_string_equal(claims.tcb_date, "2023-02-15T00:00:00Z");
    assert_string_equal(claims.advisories, "");

    /* the second, OutOfDate with its advisories: refused by default,
     * accepted where the policy lists OutOfDate */
    dir = own_collateral(second, NULL, NULL);
    assert_int_equal(judged(dir, 0), ATTEST_POLICY);
    assert_non_null(strstr(err, "the platform's TCB is OutOfDate (advisories: INTEL-SA-00106,"));
    assert_int_equal(claims.tcb_status, ATTEST_TCB_OUT_OF_DATE);
    assert_int_equal(judged(dir, 1u << ATTEST_TCB_UP_TO_DATE | 1u << ATTEST_TCB_OUT_OF_DATE),
                     ATTEST_OK);
    assert_non_null(strstr(claims.advisories, "INTEL-SA-00477"));
    /* the platform's PCESVN below the level's */
    static const char *const pcesvn[] = {INTEL_SGX,        PLATFORM_SGX,     TDX_SVN(5), TDX_SVN(4),
                                         "\"pcesvn\":11,", "\"pcesvn\":99,", NULL};
    dir = own_collateral(pcesvn, NULL, NULL);
    assert_int_equal(judged(dir, 0), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "no TCB level of the TCB Info matches the platform"));
    /* its SGX components below the level's (the TDX ones reach it) */
    static const char *const sgx_below[] = {TDX_SVN(5), TDX_SVN(4), NULL};
    assert_int_equal(judged(own_collateral(sgx_below, NULL, NULL), 0), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "no TCB level of the TCB Info matches the platform"));
}

static void
test_identities(void **state)
{
    static const char *const qe_svn5[] = {"\"isvsvn\":4", "\"isvsvn\":5", NULL};
    static const char *const qe_signer[] = {"\"mrsigner\":\"DC9E", "\"mrsigner\":\"DC9F", NULL};
    static const char *const qe_old[] = {"\"tcbStatus\":\"UpToDate\"",
                                         "\"tcbStatus\":\"OutOfDate\"", NULL};
    static const char *const module[] = {INTEL_SGX,  PLATFORM_SGX,          TDX_SVN(5),
                                         TDX_SVN(4), "\"mrsigner\":\"0000", "\"mrsigner\":\"0100",
                                         NULL};
    static const char *const fmspc[] = {INTEL_SGX,
                                        PLATFORM_SGX,
                                        TDX_SVN(5),
                                        TDX_SVN(4),
                                        "\"fmspc\":\"50806f000000\"",
                                        "\"fmspc\":\"50806f000001\"",
                                        NULL};

    (void)state;
    /* the quoting enclave's ISVSVN (4) below the only level listed */
    assert_int_equal(judged(own_collateral(reached, qe_svn5, NULL), 0), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "ISVSVN 4 is below every level"));
    /* another quoting enclave's signer */
    assert_int_equal(judged(own_collateral(reached, qe_signer, NULL), 0), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "not of the TD quoting enclave Intel names"));
    /* the quoting enclave OutOfDate: refused unless listed */
    assert_int_equal(judged(own_collateral(reached, qe_old, NULL), 0), ATTEST_POLICY);
    assert_non_null(strstr(err, "the quoting enclave's TCB is OutOfDate"));
    /* the TDX module signed by another than the TCB Info says */
    assert_int_equal(judged(own_collateral(module, NULL, NULL), 0), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "the TDX module is not signed as the TCB Info says"));
    /* a TCB Info of another platform model */
    assert_int_equal(judged(own_collateral(fmspc, NULL, NULL), 0), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "no TCB Info for the platform's FMSPC 50806f000000"));
    /* signed, but of a comparison of levels this does not know */
    static const char *const type1[] = {"\"tcbType\":0", "\"tcbType\":1", NULL};
    struct tdx_collateral *col = NULL;
    char lerr[ATTEST_ERR_MAX];
    assert_int_not_equal(tdx_collateral_load(own_collateral(type1, NULL, NULL), &col, lerr), 0);
    assert_non_null(strstr(lerr, "expected tcbType 0"));
}

static void
test_revoked(void **state)
{
    const char *dir;
    char path[256];

    (void)state;
    /* the TCB signing certificate on its root's CRL */
    assert_int_equal(judged(own_collateral(reached, NULL, sg.cert), 0), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "the TCB signing certificate is revoked"));
    /* no CRL of the root made here */
    dir = own_collateral(reached, NULL, NULL);
    snprintf(path, sizeof(path), "%s/root_crl_own.der", dir);
    unlink(path);
    assert_int_equal(judged(dir, 0), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "no CRL of the CA of the TCB signing certificate"));
    /* the PCK CA's CRL missing */
    dir = own_collateral(reached, NULL, NULL);
    snprintf(path, sizeof(path), "%s/pck_crl_platform.der", dir);
    unlink(path);
    assert_int_equal(judged(dir, 0), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "no CRL of the CA of the PCK certificate"));
    /* the key made here, not pinned: only the Intel root is */
    struct attest_policy pol = {.now = july};
    assert_int_equal(verify_with(own_collateral(reached, NULL, NULL), &pol), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "the TCB signing chain does not end at the Intel SGX Root CA"));
}

/* ---- a TDX 1.5 quote: the version 5 fixture under a PCK chain made here */

#define V5_SIG (48 + 6 + 648 + 4)
#define V5_QE_REPORT (V5_SIG + 64 + 64 + 6)
#define V5_QE_AUTH (V5_QE_REPORT + 384 + 64 + 2)
#define V5_TEE_TCB_SVN2 (48 + 6 + 584)

/* The quote q (len bytes, its QE report signed again after) with the 16
 * bytes of TEE_TCB_SVN2 set to svn2 and signed by an attestation key made
 * here, which its QE report binds (REPORTDATA = SHA-256(key || auth
 * data)), as the quoting enclave would for a TD whose module reports it. */
static void
svn2_signed(uint8_t *q, const uint8_t svn2[16])
{
    EVP_PKEY *att = EVP_EC_gen("prime256v1");
    uint8_t point[65];
    size_t plen = sizeof(point);
    size_t auth_len = q[V5_QE_AUTH - 2] | (size_t)q[V5_QE_AUTH - 1] << 8;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned dlen = 0;

    memcpy(q + V5_TEE_TCB_SVN2, svn2, 16);
    assert_int_equal(
        EVP_PKEY_get_octet_string_param(att, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point), &plen),
        1);
    memcpy(q + V5_SIG + 64, point + 1, 64);
    assert_int_equal(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
    assert_int_equal(EVP_DigestUpdate(md, point + 1, 64), 1);
    assert_int_equal(EVP_DigestUpdate(md, q + V5_QE_AUTH, auth_len), 1);
    assert_int_equal(EVP_DigestFinal_ex(md, q + V5_QE_REPORT + 320, &dlen), 1);
    memset(q + V5_QE_REPORT + 352, 0, 32);
    sign_p256(att, q, V5_SIG - 4, q + V5_SIG);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(att);
}

/* The version 5 fixture (a TDX 1.5 report: module version 1, SVN 11) with
 * its certification data's PCK chain replaced by a PCK certificate and CA
 * of root (the PCK keeps the real certificate's SGX extension: its TCB,
 * FMSPC 90c06f000000, PCE ID) and its QE report signed again by that PCK:
 * what Intel's chain would vouch for, under a root the test can revoke
 * and date; with svn2 (not NULL), its TEE_TCB_SVN2 that, signed again
 * (svn2_signed()). *ca_out: the PCK CA, *ca_key_out its key. */
static uint8_t *
tdx15_quote(X509 *root, EVP_PKEY *root_key, time_t at, const uint8_t *svn2, X509 **ca_out,
            EVP_PKEY **ca_key_out, size_t *len)
{
    size_t qlen, auth_len;
    uint8_t *q5 = fixture("tsm/tdx-quote-v5-go-tdx-guest.dat", &qlen);
    const uint8_t *begin = memmem(q5 + V5_QE_AUTH, qlen - V5_QE_AUTH, "-----BEGIN", 10);
    STACK_OF(X509) *real = attest_x509_pem((const char *)begin, qlen - (size_t)(begin - q5));
    ASN1_OBJECT *sgx = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
    EVP_PKEY *ca_key = EVP_EC_gen("prime256v1"), *pck_key = EVP_EC_gen("prime256v1");
    X509 *ca = attest_sim_cert("Own PCK CA", ca_key, root, root_key, at - 86400, at + 86400, true);
    X509 *pck = attest_sim_cert("Own PCK", pck_key, ca, ca_key, at - 86400, at + 86400, false);
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem;

    assert_non_null(real);
    X509_EXTENSION *ext =
        X509_get_ext(sk_X509_value(real, 0), X509_get_ext_by_OBJ(sk_X509_value(real, 0), sgx, -1));
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(pck, ext, -1), 1);
    assert_true(X509_sign(pck, ca_key, EVP_sha256()) > 0);
    PEM_write_bio_X509(bio, pck);
    PEM_write_bio_X509(bio, ca);
    long pem_len = BIO_get_mem_data(bio, &pem);

    auth_len = q5[V5_QE_AUTH - 2] | (size_t)q5[V5_QE_AUTH - 1] << 8;
    size_t head = V5_QE_AUTH + auth_len;
    *len = head + 6 + (size_t)pem_len;
    uint8_t *q = malloc(*len);
    memcpy(q, q5, head);
    put_le(q + head, 5, 2);
    put_le(q + head + 2, (size_t)pem_len, 4);
    memcpy(q + head + 6, pem, (size_t)pem_len);
    put_le(q + 48 + 6 + 648, *len - (48 + 6 + 648 + 4), 4); /* signature data length */
    put_le(q + V5_QE_REPORT - 4, *len - V5_QE_REPORT, 4);   /* certification data size */
    if (svn2 != NULL)
        svn2_signed(q, svn2);
    sign_p256(pck_key, q + V5_QE_REPORT, 384, q + V5_QE_REPORT + 384);
    *ca_out = ca;
    *ca_key_out = ca_key;
    BIO_free(bio);
    X509_free(pck);
    EVP_PKEY_free(pck_key);
    ASN1_OBJECT_free(sgx);
    sk_X509_pop_free(real, X509_free);
    free(q5);
    return q;
}

/* Intel's TCB Info of February 2026 for that FMSPC, with TDX module
 * identities (TDX_01: SVN 6 UpToDate, 4 and 2 OutOfDate), edited and signed
 * again; the QE Identity's window moved to it. */
static const char *const qe_2026[] = {
    "\"issueDate\":\"2023-06-08T07:24:59Z\"", "\"issueDate\":\"2026-02-01T00:00:00Z\"",
    "\"nextUpdate\":\"2023-07-08T07:24:59Z\"", "\"nextUpdate\":\"2026-03-03T00:00:00Z\"", NULL};

static enum attest_result
judged15(const char *const *tcb_edits, const uint8_t *svn2, unsigned ok)
{
    time_t at = utc(2026, 2, 10, 0, 0, 0);
    struct signer saved = sg;
    X509 *ca;
    EVP_PKEY *ca_key;
    size_t len;
    char dir[128];
    struct tdx_collateral *col = NULL;
    char lerr[ATTEST_ERR_MAX];

    assert_int_equal(attest_sim_root_generate(at, &sg.root_key, &sg.root), 0);
    sg.key = EVP_EC_gen("prime256v1");
    sg.cert = attest_sim_cert("Own TCB Signing", sg.key, sg.root, sg.root_key, at - 86400,
                              at + 86400, false);
    uint8_t *q = tdx15_quote(sg.root, sg.root_key, at, svn2, &ca, &ca_key, &len);
    snprintf(dir, sizeof(dir), "%s/tdx15", attest_tmpdir);
    mkdir(dir, 0700);
    write_chain(dir);
    write_signed(dir, "tcb_info-90c06f000000.json", "tcbInfo", tcb_edits);
    write_signed(dir, "qe_identity.json", "enclaveIdentity", qe_2026);
    write_crl(dir, "root_crl.der", sg.root, sg.root_key, at, NULL);
    write_crl(dir, "pck_crl.der", ca, ca_key, at, NULL);
    if (tdx_collateral_load(dir, &col, lerr) != 0)
        fail_msg("%s", lerr);
    struct attest_policy pol = {
        .now = at, .roots = sk_X509_new_null(), .tdx_collateral = col, .tcb_status_ok = ok};
    sk_X509_push(pol.roots, sg.root);
    memset(&claims, 0, sizeof(claims));
    enum attest_result r = attest_tdx_verify(q, len, &pol, &claims, err);
    sk_X509_free(pol.roots);
    tdx_collateral_free(col);
    free(q);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    X509_free(sg.root);
    X509_free(sg.cert);
    EVP_PKEY_free(sg.key);
    EVP_PKEY_free(sg.root_key);
    sg = saved;
    return r;
}

static void
test_tdx15(void **state)
{
    static const char *const module_gone[] = {"\"id\":\"TDX_01\"", "\"id\":\"TDX_02\"", NULL};
    static const char *const module_old[] = {
        "{\"isvsvn\":6},\"tcbDate\":\"2024-11-13T00:00:00Z\",\"tcbStatus\":\"UpToDate\"",
        "{\"isvsvn\":6},\"tcbDate\":\"2024-11-13T00:00:00Z\",\"tcbStatus\":\"OutOfDate\"", NULL};
    static const char *const module_signer[] = {"\"id\":\"TDX_01\",\"mrsigner\":\"0000",
                                                "\"id\":\"TDX_01\",\"mrsigner\":\"0100", NULL};

    (void)state;
    /* the platform's level from TEE_TCB_SVN's third byte on, the module
     * (version 1, SVN 11) by its identity: both UpToDate */
    if (judged15(NULL, NULL, 0) != ATTEST_OK)
        fail_msg("%s", err);
    assert_int_equal(claims.version, 5);
    assert_true(claims.tdx15);
    assert_int_equal(claims.tcb_status, ATTEST_TCB_UP_TO_DATE);
    assert_true(claims.module_judged);
    assert_int_equal(claims.module_status, ATTEST_TCB_UP_TO_DATE);
    /* no identity of module version 1 */
    assert_int_equal(judged15(module_gone, NULL, 0), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "no identity of the TDX module TDX_01"));
    /* the module's level OutOfDate: refused unless listed */
    assert_int_equal(judged15(module_old, NULL, 0), ATTEST_POLICY);
    assert_non_null(strstr(err, "the TDX module's TCB is OutOfDate"));
    assert_int_equal(
        judged15(module_old, NULL, 1u << ATTEST_TCB_UP_TO_DATE | 1u << ATTEST_TCB_OUT_OF_DATE),
        ATTEST_OK);
    /* the module signed by another than its identity says */
    assert_int_equal(judged15(module_signer, NULL, 0), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "the TDX module is not signed as the TCB Info says"));

    /* TEE_TCB_SVN2, the module running now (TD-preserving updates), is
     * judged as TEE_TCB_SVN is: the fixture's (SVN 13) UpToDate too */
    static const uint8_t svn2_same[16] = {0x0d, 0x01, 0x04};
    if (judged15(NULL, svn2_same, 0) != ATTEST_OK)
        fail_msg("%s", err);
    assert_true(claims.tcb2_judged);
    assert_int_equal(claims.tcb_status2, ATTEST_TCB_UP_TO_DATE);
    assert_true(claims.module2_judged);
    assert_int_equal(claims.module_status2, ATTEST_TCB_UP_TO_DATE);
    /* a module of SVN 4 running now: OutOfDate, refused unless listed */
    static const uint8_t svn2_old[16] = {0x04, 0x01, 0x04};
    assert_int_equal(judged15(NULL, svn2_old, 0), ATTEST_POLICY);
    if (strstr(err, "the TDX module's TCB by TEE_TCB_SVN2") == NULL ||
        strstr(err, "OutOfDate") == NULL)
        fail_msg("%s", err);
    assert_int_equal(
        judged15(NULL, svn2_old, 1u << ATTEST_TCB_UP_TO_DATE | 1u << ATTEST_TCB_OUT_OF_DATE),
        ATTEST_OK);
    assert_int_equal(claims.module_status2, ATTEST_TCB_OUT_OF_DATE);
    /* below every level of its module, of a module version the TCB Info
     * does not know, a platform below every level: refused */
    static const uint8_t svn2_low[16] = {0x01, 0x01, 0x04};
    assert_int_equal(judged15(NULL, svn2_low, 0), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "TEE_TCB_SVN2"));
    static const uint8_t svn2_v9[16] = {0x0d, 0x09, 0x04};
    assert_int_equal(judged15(NULL, svn2_v9, 0), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "TDX_09"));
    static const uint8_t svn2_mcu[16] = {0x0d, 0x01, 0x00};
    assert_int_equal(judged15(NULL, svn2_mcu, 0), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "TEE_TCB_SVN2"));
}

static int
setup(void **state)
{
    STACK_OF(X509) * intel;
    size_t len;
    uint8_t *pem = fixture(COLLATERAL "/tcb_chain.pem", &len);

    (void)state;
    july = utc(2023, 7, 1, 1, 0, 0);
    assert_non_null(intel = attest_x509_pem((const char *)pem, len));
    free(pem);
    sg.intel_root = sk_X509_pop(intel);
    sk_X509_pop_free(intel, X509_free);
    assert_int_equal(attest_sim_root_generate(july, &sg.root_key, &sg.root), 0);
    sg.key = EVP_EC_gen("prime256v1");
    sg.cert = attest_sim_cert("Own TCB Signing", sg.key, sg.root, sg.root_key, july - 86400,
                              july + 86400, false);
    assert_non_null(sg.cert);
    sg.roots = sk_X509_new_null();
    sk_X509_push(sg.roots, sg.intel_root);
    sk_X509_push(sg.roots, sg.root);
    return tmpdir_make("attest-tdx-collateral");
}

static int
teardown(void **state)
{
    sk_X509_free(sg.roots);
    X509_free(sg.intel_root);
    X509_free(sg.root);
    X509_free(sg.cert);
    EVP_PKEY_free(sg.key);
    EVP_PKEY_free(sg.root_key);
    return tmpdir_remove(state);
}

int
main(void)
{
    quote = fixture("tsm/tdx-quote-v4-spr-e4-go-tdx-guest.dat", &quote_len);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intel_collateral),
        cmocka_unit_test(test_load_refused),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_identities),
        cmocka_unit_test(test_revoked),
        cmocka_unit_test(test_forged_member),
        cmocka_unit_test(test_tdx15),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    free(quote);
    return failed;
}
