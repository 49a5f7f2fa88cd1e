/* test_attest_ratls.c - attested TLS (src/attest/ratls.c): certificates
 * issued with the sim provider verify, and each binding (key, nonce,
 * policy, time, sim root) refuses what it must; the fresh-evidence
 * extension over real TLS 1.3 handshakes (a socketpair); the three real
 * RA-TLS certificates of tests/fixtures/attestation/ratls are parsed and
 * their DICE binding checked, and their SGX quotes reported as evidence
 * airlock cannot verify (it has no SGX verifier: nothing more is claimed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "attest/ratls.h"
#include "attest/sim.h"
#include "attest_util.h"
#include "guard.h"

#define SGX_REPORT_DATA_OFF 368 /* quote v3: 48-byte header, report body offset 320 */
#define SGX_MRENCLAVE_OFF 112

static time_t now;
static EVP_PKEY *root_key;
static X509 *root;
static struct attest_sim sim;
static struct ratls_source src;
static struct attest_claims claims;
static char err[ATTEST_ERR_MAX];

static int
setup(void **state)
{
    (void)state;
    now = time(NULL);
    if (attest_sim_root_generate(now, &root_key, &root) != 0 ||
        attest_sim_init(&sim, root_key, root, now) != 0)
        return -1;
    src = (struct ratls_source){.provider = &attest_provider_sim, .conf = {.sim = &sim}};
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    attest_sim_close(&sim);
    EVP_PKEY_free(root_key);
    X509_free(root);
    return 0;
}

static struct attest_policy
trusting(time_t at)
{
    return (struct attest_policy){.now = at, .sim_root = root};
}

static void
one_line(enum attest_result r)
{
    if (r != ATTEST_OK && (err[0] == '\0' || strchr(err, '\n') != NULL))
        fail_msg("refusal %d without a one-line reason", r);
}

static enum attest_result
verify_cert(X509 *x, const struct attest_policy *pol, const uint8_t *nonce, size_t n)
{
    err[0] = '\0';
    enum attest_result r = ratls_verify_cert(x, pol, nonce, n, &claims, err);
    one_line(r);
    return r;
}

static void
issue(EVP_PKEY **key, X509 **cert, unsigned validity)
{
    err[0] = '\0';
    if (ratls_issue(&src, now, validity, key, cert, err) != 0)
        fail_msg("ratls_issue: %s", err);
}

static void
test_issue_verify(void **state)
{
    EVP_PKEY *key;
    X509 *cert;
    struct attest_policy pol = trusting(now);

    (void)state;
    issue(&key, &cert, 3600);
    assert_int_equal(X509_check_private_key(cert, key), 1);
    assert_int_equal(verify_cert(cert, &pol, NULL, 0), ATTEST_OK);
    assert_true(claims.sim);
    assert_int_equal(claims.kind, ATTEST_KIND_NITRO);
    assert_true(claims.user_data.present && claims.user_data.len == RATLS_HASH_LEN);
    assert_int_equal(ratls_cert_expires(cert), now + 3600);
    /* notBefore through notAfter, inclusive (RFC 5280); refused a second
     * either side */
    pol.now = now - 60;
    assert_int_equal(verify_cert(cert, &pol, NULL, 0), ATTEST_OK);
    pol.now = now + 3600;
    assert_int_equal(verify_cert(cert, &pol, NULL, 0), ATTEST_OK);
    pol.now = now - 61;
    assert_int_equal(verify_cert(cert, &pol, NULL, 0), ATTEST_UNTRUSTED);
    pol.now = now + 3601;
    assert_int_equal(verify_cert(cert, &pol, NULL, 0), ATTEST_UNTRUSTED);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* The certificate cannot outlive the evidence's signing certificate (the
 * sim leaf, 3 h): asked for a day, it ends with the leaf. */
static void
test_capped_by_evidence(void **state)
{
    EVP_PKEY *key;
    X509 *cert;
    struct attest_policy pol = trusting(0);

    (void)state;
    issue(&key, &cert, 86400);
    assert_int_equal(ratls_cert_expires(cert), ratls_cert_expires(sim.leaf));
    /* inside the window: fine; after the evidence expired: refused */
    pol.now = ratls_cert_expires(cert);
    assert_int_equal(verify_cert(cert, &pol, NULL, 0), ATTEST_OK);
    pol.now = ratls_cert_expires(cert) + 1;
    assert_int_equal(verify_cert(cert, &pol, NULL, 0), ATTEST_UNTRUSTED);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* The extension of a genuine certificate copied onto a certificate for
 * another key (an attacker's) does not vouch for that key. */
static void
test_copied_extension_refused(void **state)
{
    EVP_PKEY *key, *other = EVP_EC_gen("P-256");
    X509 *cert, *forged;
    struct attest_policy pol = trusting(now);

    (void)state;
    issue(&key, &cert, 3600);
    forged = attest_sim_cert("airlock ratls", other, NULL, NULL, now - 60, now + 3600, false);
    assert_non_null(forged);
    X509_EXTENSION *ext = X509_get_ext(cert, X509_get_ext_count(cert) - 1);
    assert_int_equal(X509_add_ext(forged, ext, -1), 1);
    assert_true(X509_sign(forged, other, EVP_sha256()) > 0);
    assert_int_equal(verify_cert(forged, &pol, NULL, 0), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "another key"));
    X509_free(forged);
    EVP_PKEY_free(other);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* An extension oid (critical or not) of value val[0..len) added to cert,
 * signed again with key. */
static void
add_ext(X509 *cert, EVP_PKEY *key, const char *oid, bool critical, const void *val, size_t len)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();

    assert_int_equal(ASN1_OCTET_STRING_set(os, val, (int)len), 1);
    X509_EXTENSION *ext = X509_EXTENSION_create_by_OBJ(NULL, obj, critical, os);
    assert_int_equal(X509_add_ext(cert, ext, -1), 1);
    assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(obj);
}

/* The RA-TLS extension is taken critical or not, and only once; another
 * critical extension nothing here processes refuses the certificate
 * (RFC 5280), a non-critical one is ignored. */
static void
test_extensions(void **state)
{
    struct attest_policy pol = trusting(now);
    EVP_PKEY *key;
    X509 *cert, *x;
    const uint8_t *p;
    size_t len;

    (void)state;
    issue(&key, &cert, 3600);
    assert_int_equal(ratls_cert_extension(cert, &p, &len), 0);
    uint8_t *val = malloc(len);
    memcpy(val, p, len);
    add_ext(cert, key, "1.3.6.1.4.1.99999.1", false, "\x05\x00", 2);
    assert_int_equal(verify_cert(cert, &pol, NULL, 0), ATTEST_OK);

    x = X509_dup(cert);
    add_ext(x, key, "1.3.6.1.4.1.99999.2", true, "\x05\x00", 2);
    assert_int_equal(verify_cert(x, &pol, NULL, 0), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "critical extension 1.3.6.1.4.1.99999.2"));
    X509_free(x);

    x = X509_dup(cert);
    add_ext(x, key, RATLS_OID, false, val, len);
    assert_int_equal(verify_cert(x, &pol, NULL, 0), ATTEST_MALFORMED);
    assert_non_null(strstr(err, "several"));
    X509_free(x);

    ASN1_OBJECT *obj = OBJ_txt2obj(RATLS_OID, 1);
    X509_EXTENSION_free(X509_delete_ext(cert, X509_get_ext_by_OBJ(cert, obj, -1)));
    ASN1_OBJECT_free(obj);
    add_ext(cert, key, RATLS_OID, true, val, len);
    assert_int_equal(verify_cert(cert, &pol, NULL, 0), ATTEST_OK);
    free(val);
    X509_free(cert);
    EVP_PKEY_free(key);
}

static void
test_policy(void **state)
{
    EVP_PKEY *key, *plain_key = EVP_EC_gen("P-256");
    X509 *cert, *plain;
    struct attest_policy pol = trusting(now);
    uint8_t nonce[16] = {1, 2, 3};

    (void)state;
    issue(&key, &cert, 3600);
    /* sim without the sim root: refused */
    pol.sim_root = NULL;
    assert_int_equal(verify_cert(cert, &pol, NULL, 0), ATTEST_UNTRUSTED);
    /* PCR 0 not met (the sim's are zero) */
    pol = trusting(now);
    pol.npcrs = 1;
    pol.pcrs[0] = (struct attest_pcr){.index = 0, .len = 48, .value = {0xab}};
    assert_int_equal(verify_cert(cert, &pol, NULL, 0), ATTEST_POLICY);
    /* PCR 0 met */
    memset(pol.pcrs[0].value, 0, sizeof(pol.pcrs[0].value));
    assert_int_equal(verify_cert(cert, &pol, NULL, 0), ATTEST_OK);
    /* evidence of another type than the policy's: refused, even by a
     * policy that pins nothing that type carries */
    pol = trusting(now);
    pol.kind = ATTEST_KIND_TDX;
    assert_int_equal(verify_cert(cert, &pol, NULL, 0), ATTEST_POLICY);
    assert_non_null(strstr(err, "nitro evidence, the policy is for tdx"));
    /* a measurement (SNP/TDX) pinned against nitro evidence: never ignored */
    pol = trusting(now);
    pol.measurement = (struct attest_blob){.present = true, .len = 48};
    assert_int_equal(verify_cert(cert, &pol, NULL, 0), ATTEST_POLICY);
    pol = trusting(now);
    pol.min_tcb_present = true;
    assert_int_equal(verify_cert(cert, &pol, NULL, 0), ATTEST_POLICY);
    /* user data pinned: RA-TLS spends it on the claims' hash, so it cannot
     * be held to the policy's (it was silently replaced) */
    pol = trusting(now);
    pol.user_data = (struct attest_blob){.present = true, .len = 4, .data = {'u', 's', 'e', 'r'}};
    assert_int_equal(verify_cert(cert, &pol, NULL, 0), ATTEST_POLICY);
    assert_non_null(strstr(err, "user data"));
    /* a nonce asked for, but the certificate's evidence has none */
    pol = trusting(now);
    assert_int_equal(verify_cert(cert, &pol, nonce, sizeof(nonce)), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "nonce"));
    /* a certificate without the extension: no evidence */
    plain = attest_sim_cert("plain", plain_key, NULL, NULL, now - 60, now + 3600, false);
    assert_int_equal(verify_cert(plain, &pol, NULL, 0), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "no evidence"));
    X509_free(plain);
    EVP_PKEY_free(plain_key);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* Every prefix of a valid extension (placed before a guard page) and a
 * few alterations are refused as malformed, never read past. */
static void
test_parse_prefixes(void **state)
{
    EVP_PKEY *key;
    X509 *cert;
    const uint8_t *p;
    size_t len;
    struct ratls_tagged t;

    (void)state;
    issue(&key, &cert, 3600);
    assert_int_equal(ratls_cert_extension(cert, &p, &len), 0);
    for (size_t n = 0; n <= len; n++) {
        struct guard g;
        uint8_t *q = guard_copy(&g, p, n);
        err[0] = '\0';
        enum attest_result r = ratls_parse(q, n, &t, err);
        one_line(r);
        assert_int_equal(r, n == len ? ATTEST_OK : ATTEST_MALFORMED);
        guard_free(&g);
    }
    assert_int_equal(ratls_parse(p, len, &t, err), ATTEST_OK);
    assert_true(t.has_pubkey_hash && !t.has_nonce && t.tag == RATLS_TAG);
    assert_int_equal(ratls_format(t.evidence, t.evidence_len), RATLS_FMT_NITRO);
    uint8_t *copy = malloc(len);
    memcpy(copy, p, len);
    copy[2] ^= 1; /* tag 60001 */
    assert_int_equal(ratls_parse(copy, len, &t, err), ATTEST_MALFORMED);
    copy[2] ^= 1;
    copy[3] = 0x83; /* an array of three */
    assert_int_equal(ratls_parse(copy, len, &t, err), ATTEST_MALFORMED);
    free(copy);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* ---- TLS: a client and a server over a socketpair, stepped in turn */

struct pair {
    SSL_CTX *sctx, *cctx;
    SSL *s, *c;
};

static void
pair_open(struct pair *pr, X509 *cert, EVP_PKEY *key, bool server_ratls, bool client_ratls)
{
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    pr->sctx = SSL_CTX_new(TLS_server_method());
    pr->cctx = SSL_CTX_new(TLS_client_method());
    assert_int_equal(SSL_CTX_use_certificate(pr->sctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(pr->sctx, key), 1);
    if (server_ratls)
        assert_int_equal(ratls_ctx_server(pr->sctx, &src), 0);
    if (client_ratls)
        assert_int_equal(ratls_ctx_client(pr->cctx), 0);
    pr->s = SSL_new(pr->sctx);
    pr->c = SSL_new(pr->cctx);
    SSL_set_fd(pr->s, sv[0]);
    SSL_set_fd(pr->c, sv[1]);
    SSL_set_accept_state(pr->s);
    SSL_set_connect_state(pr->c);
}

/* Runs both handshakes to their end; returns 1 when both succeeded. */
static int
pair_handshake(struct pair *pr)
{
    int s = 0, c = 0;

    for (int i = 0; i < 100 && (s != 1 || c != 1); i++) {
        if (c != 1 && (c = SSL_do_handshake(pr->c)) <= 0 &&
            SSL_get_error(pr->c, c) != SSL_ERROR_WANT_READ)
            return 0;
        if (s != 1 && (s = SSL_do_handshake(pr->s)) <= 0 &&
            SSL_get_error(pr->s, s) != SSL_ERROR_WANT_READ)
            return 0;
    }
    return s == 1 && c == 1;
}

static void
pair_close(struct pair *pr)
{
    close(SSL_get_fd(pr->s));
    close(SSL_get_fd(pr->c));
    SSL_free(pr->s);
    SSL_free(pr->c);
    SSL_CTX_free(pr->sctx);
    SSL_CTX_free(pr->cctx);
}

static enum attest_result
ssl_verify(SSL *ssl, const struct attest_policy *pol)
{
    err[0] = '\0';
    enum attest_result r = ratls_ssl_verify(ssl, pol, &claims, err);
    one_line(r);
    return r;
}

/* Fresh evidence for a certificate that carries none (a CA-issued one in
 * real life): bound to it and to our nonce. */
static void
test_fresh_any_certificate(void **state)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = attest_sim_cert("server", key, NULL, NULL, now - 60, now + 3600, false);
    struct attest_policy pol = trusting(now);
    uint8_t nonce[32], other[32];
    struct pair pr;

    (void)state;
    memset(nonce, 0x5a, sizeof(nonce));
    memset(other, 0xa5, sizeof(other));
    pair_open(&pr, cert, key, true, true);
    assert_int_equal(ratls_ssl_request_fresh(pr.c, nonce, sizeof(nonce)), 0);
    assert_int_equal(pair_handshake(&pr), 1);
    assert_int_equal(SSL_version(pr.c), TLS1_3_VERSION);
    assert_int_equal(ssl_verify(pr.c, &pol), ATTEST_OK);
    assert_true(claims.sim);
    /* the same evidence checked against another nonce: refused */
    assert_int_equal(ratls_ssl_request_fresh(pr.c, other, sizeof(other)), 0);
    assert_int_equal(ssl_verify(pr.c, &pol), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "nonce"));
    /* and under a PCR policy it does not meet */
    assert_int_equal(ratls_ssl_request_fresh(pr.c, nonce, sizeof(nonce)), 0);
    pol.npcrs = 1;
    pol.pcrs[0] = (struct attest_pcr){.index = 4, .len = 48, .value = {1}};
    assert_int_equal(ssl_verify(pr.c, &pol), ATTEST_POLICY);
    pair_close(&pr);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* A server that does not speak the extension answers no evidence: the
 * client that asked for it refuses; its certificate's evidence is not a
 * substitute for fresh evidence. */
static void
test_fresh_missing(void **state)
{
    EVP_PKEY *key;
    X509 *cert;
    struct attest_policy pol = trusting(now);
    uint8_t nonce[16] = {9};
    struct pair pr;

    (void)state;
    issue(&key, &cert, 3600);
    pair_open(&pr, cert, key, false, true);
    assert_int_equal(ratls_ssl_request_fresh(pr.c, nonce, sizeof(nonce)), 0);
    assert_int_equal(pair_handshake(&pr), 1);
    assert_int_equal(ssl_verify(pr.c, &pol), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "no evidence"));
    pair_close(&pr);
    /* without a nonce the certificate's extension is what is verified */
    pair_open(&pr, cert, key, true, true);
    assert_int_equal(pair_handshake(&pr), 1);
    assert_int_equal(ssl_verify(pr.c, &pol), ATTEST_OK);
    pair_close(&pr);
    X509_free(cert);
    EVP_PKEY_free(key);
}

static void
test_nonce_bounds(void **state)
{
    uint8_t nonce[RATLS_NONCE_MAX + 1] = {0};
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = SSL_new(ctx);

    (void)state;
    assert_int_equal(ratls_ssl_request_fresh(ssl, nonce, RATLS_NONCE_MIN - 1), -EINVAL);
    assert_int_equal(ratls_ssl_request_fresh(ssl, nonce, RATLS_NONCE_MAX + 1), -EINVAL);
    assert_int_equal(ratls_ssl_request_fresh(ssl, nonce, RATLS_NONCE_MAX), 0);
    assert_int_equal(ratls_ctx_client(ctx), 0);
    assert_int_equal(ratls_ctx_client(ctx), -EINVAL); /* registered once */
    SSL_free(ssl);
    SSL_CTX_free(ctx);
}

/* A server whose provider fails aborts the handshake and says why. */
static void
test_fresh_provider_fails(void **state)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = attest_sim_cert("server", key, NULL, NULL, now - 60, now + 3600, false);
    struct ratls_source saved = src;
    uint8_t nonce[16] = {7};
    struct pair pr;

    (void)state;
    src.conf.sim = NULL; /* the sim provider has nothing to sign with */
    pair_open(&pr, cert, key, true, true);
    assert_int_equal(ratls_ssl_request_fresh(pr.c, nonce, sizeof(nonce)), 0);
    assert_int_equal(pair_handshake(&pr), 0);
    assert_non_null(ratls_ssl_error(pr.s));
    assert_non_null(strstr(ratls_ssl_error(pr.s), "sim"));
    pair_close(&pr);
    src = saved;
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* ---- the real RA-TLS certificates (README.md beside them) */

static X509 *
fixture_cert(const char *name)
{
    size_t n;
    uint8_t *pem = fixture(name, &n);
    BIO *b = BIO_new_mem_buf(pem, (int)n);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

    BIO_free(b);
    free(pem);
    assert_non_null(x);
    return x;
}

static void
check_fixture(const char *name, time_t inside, const char *mrenclave8)
{
    X509 *x = fixture_cert(name);
    const uint8_t *p;
    size_t len;
    struct ratls_tagged t;
    uint8_t spki[RATLS_HASH_LEN], claims_hash[RATLS_HASH_LEN], mr[4];
    struct attest_policy pol = {.now = inside};

    assert_int_equal(ratls_cert_extension(x, &p, &len), 0);
    assert_int_equal(ratls_parse(p, len, &t, err), ATTEST_OK);
    assert_int_equal(t.tag, RATLS_TAG);
    /* DICE binding: pubkey-hash = SHA-256(SPKI) ... */
    assert_true(t.has_pubkey_hash);
    assert_int_equal(ratls_spki_hash(x, spki), 0);
    assert_memory_equal(t.pubkey_hash, spki, sizeof(spki));
    /* ... and the quote's report_data[0..32] = SHA-256(claims bytes) */
    assert_int_equal(ratls_format(t.evidence, t.evidence_len), RATLS_FMT_SGX);
    assert_true(t.evidence_len > SGX_REPORT_DATA_OFF + RATLS_HASH_LEN);
    EVP_Digest(t.claims, t.claims_len, claims_hash, NULL, EVP_sha256(), NULL);
    assert_memory_equal(t.evidence + SGX_REPORT_DATA_OFF, claims_hash, RATLS_HASH_LEN);
    unhex(mrenclave8, mr, sizeof(mr));
    assert_memory_equal(t.evidence + SGX_MRENCLAVE_OFF, mr, sizeof(mr));
    /* the quote itself: airlock cannot verify SGX, and says so */
    assert_int_equal(verify_cert(x, &pol, NULL, 0), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "no SGX verifier"));
    X509_free(x);
}

static void
test_fixture_gramine(void **state)
{
    (void)state;
    check_fixture("ratls/gramine-cert.pem", utc(2024, 1, 1, 0, 0, 0), "0866e7ca");
}

static void
test_fixture_rats_tls(void **state)
{
    (void)state;
    check_fixture("ratls/rats-tls-cert.pem", utc(2023, 6, 1, 0, 0, 0), "38e1b40b");
    /* its extra claims (key_0, key_1) are ignored; expired now */
    X509 *x = fixture_cert("ratls/rats-tls-cert.pem");
    struct attest_policy pol = {.now = utc(2024, 2, 22, 17, 10, 23)};
    assert_int_equal(verify_cert(x, &pol, NULL, 0), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "not valid at the given time"));
    X509_free(x);
}

static void
test_fixture_intel_sgxsdk(void **state)
{
    (void)state;
    check_fixture("ratls/intel-sgxsdk-cert.pem", utc(2024, 1, 1, 0, 0, 0), "09e218a4");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issue_verify),
        cmocka_unit_test(test_capped_by_evidence),
        cmocka_unit_test(test_copied_extension_refused),
        cmocka_unit_test(test_extensions),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_parse_prefixes),
        cmocka_unit_test(test_fresh_any_certificate),
        cmocka_unit_test(test_fresh_missing),
        cmocka_unit_test(test_nonce_bounds),
        cmocka_unit_test(test_fresh_provider_fails),
        cmocka_unit_test(test_fixture_gramine),
        cmocka_unit_test(test_fixture_rats_tls),
        cmocka_unit_test(test_fixture_intel_sgxsdk),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
