/* test_attest_nitro.c - Nitro attestation documents: the two real documents
 * of tests/fixtures/attestation/nitro (README.md there) verify inside their
 * window and nowhere else, and every alteration, foreign root, policy
 * mismatch and truncation is refused. Documents of the sim provider cover
 * the indefinite-length payload map and chains an attacker builds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attest/nitro.h"
#include "attest/sim.h"
#include "attest/trust.h"
#include "attest_guarded.h"
#include "attest_util.h"

#define ANJUNA "nitro/anjuna-full-2024-01-24.cbor"
#define EVERVAULT "nitro/evervault-beta-2022-10-13.cbor"

static const char evervault_pcr0[] = "f4d48b81a460c9916d1e685119074bf24660afd3e34fae9fca0a0d28d9d55"
                                     "99936332687e6f66fc890ac8cf150142d8b";
static const char evervault_pcr1[] = "bcdf05fefccaa8e55bf2c8d6dee9e79bbff31e34bf28a99aa19e6b29c37ee"
                                     "80b214a414b7607236edf26fcb78654e63f";
static const char evervault_pcr2[] = "d8f114da658de5481f8d9ec73907feb553560787522f705c92d7d96beed8e"
                                     "15e2aa611984e098c576832c292e8dc469a";
static const char evervault_pcr8[] = "8790eb3cce6c83d07e84b126dc61ca923333d6f66615c4a79157de48c5ab2"
                                     "418bdc60746ea7b7afbff03a1c6210201cb";

/* The windows where each document's whole chain is valid (README.md). */
static time_t anjuna_from, anjuna_to, evervault_from, evervault_to;

static struct attest_claims claims;
static char err[ATTEST_ERR_MAX];

static enum attest_result
verify(const uint8_t *doc, size_t len, const struct attest_policy *pol)
{
    return verify_guarded(ATTEST_KIND_NITRO, doc, len, NULL, NULL, pol, &claims, err);
}

/* The Anjuna document is of a debug-mode enclave (PCR0-2 zero): the
 * policies here allow that, except test_debug_mode's. */
static struct attest_policy
at(time_t now)
{
    return (struct attest_policy){.now = now, .allow_debug = true};
}

static void
set_pcr(struct attest_policy *pol, unsigned idx, const char *hex)
{
    struct attest_pcr *p = &pol->pcrs[pol->npcrs++];

    p->index = idx;
    p->len = unhex(hex, p->value, sizeof(p->value));
}

static void
set_blob(struct attest_blob *b, const void *data, size_t len)
{
    b->present = true;
    b->len = len;
    memcpy(b->data, data, len);
}

static const struct attest_pcr *
pcr(unsigned idx)
{
    for (size_t i = 0; i < claims.npcrs; i++)
        if (claims.pcrs[i].index == idx)
            return &claims.pcrs[i];
    return NULL;
}

static void
test_anjuna_claims(void **state)
{
    (void)state;
    size_t len;
    uint8_t *doc = fixture(ANJUNA, &len);
    struct attest_policy pol = at(utc(2024, 1, 24, 19, 0, 0));

    assert_int_equal(verify(doc, len, &pol), ATTEST_OK);
    assert_string_equal(claims.module_id, "i-0e4fe5de7ee5abe78-enc018d3cadd7d66279");
    assert_int_equal(claims.timestamp_ms, 1706120065635ULL);
    assert_string_equal(claims.digest, "SHA384");
    assert_int_equal(claims.npcrs, 16);
    assert_false(claims.sim);
    assert_true(attest_blob_equal(&claims.user_data, (const uint8_t *)"Hello World!\n", 13));
    assert_true(attest_blob_equal(&claims.nonce, (const uint8_t *)"Nonce\n", 6));
    assert_true(claims.public_key.present);
    const uint8_t *p = claims.public_key.data;
    EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)claims.public_key.len);
    assert_non_null(k);
    assert_true(EVP_PKEY_is_a(k, "RSA"));
    assert_int_equal(EVP_PKEY_get_bits(k), 2048);
    EVP_PKEY_free(k);
    /* a debug-mode enclave: PCR0 all zero */
    static const uint8_t zero[48];
    assert_non_null(pcr(0));
    assert_memory_equal(pcr(0)->value, zero, 48);
    free(doc);
}

static void
test_evervault_claims(void **state)
{
    (void)state;
    size_t len;
    uint8_t *doc = fixture(EVERVAULT, &len);
    struct attest_policy pol = at(utc(2022, 10, 13, 10, 0, 0));
    uint8_t v[48];

    assert_int_equal(verify(doc, len, &pol), ATTEST_OK);
    assert_int_equal(claims.timestamp_ms, 1665651482136ULL);
    assert_int_equal(claims.npcrs, 16);
    unhex(evervault_pcr0, v, sizeof(v));
    assert_memory_equal(pcr(0)->value, v, 48);
    unhex(evervault_pcr8, v, sizeof(v));
    assert_memory_equal(pcr(8)->value, v, 48);
    assert_true(claims.nonce.present);
    assert_false(claims.user_data.present);
    assert_false(claims.public_key.present);
    free(doc);
}

/* Valid from the first second of the window to the last, the first
 * notAfter itself (RFC 5280 4.1.2.5: notBefore through notAfter,
 * inclusive); refused one second either side. */
static void
check_window(const char *name, time_t from, time_t to)
{
    size_t len;
    uint8_t *doc = fixture(name, &len);
    struct attest_policy pol;

    pol = at(from);
    assert_int_equal(verify(doc, len, &pol), ATTEST_OK);
    pol = at(to - 1);
    assert_int_equal(verify(doc, len, &pol), ATTEST_OK);
    pol = at(to);
    if (verify(doc, len, &pol) != ATTEST_OK)
        fail_msg("%s: refused at its last second: %s", name, err);
    pol = at(from - 1);
    assert_int_equal(verify(doc, len, &pol), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "not yet valid"));
    pol = at(to + 1);
    assert_int_equal(verify(doc, len, &pol), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "expired"));
    free(doc);
}

static void
test_window(void **state)
{
    (void)state;
    check_window(ANJUNA, anjuna_from, anjuna_to);
    check_window(EVERVAULT, evervault_from, evervault_to);
}

/* Both fixtures: 84 44 a1013822 a0 59 LLLL <payload> 58 60 <signature>. */
static size_t
payload_offset(const uint8_t *doc, size_t *plen)
{
    assert_int_equal(doc[7], 0x59);
    *plen = (size_t)doc[8] << 8 | doc[9];
    return 10;
}

static void
check_flips(const char *name, time_t now)
{
    size_t len, plen;
    uint8_t *doc = fixture(name, &len);
    struct attest_policy pol = at(now);
    size_t off = payload_offset(doc, &plen);

    /* the signature: its first and last bytes */
    doc[len - 1] ^= 0x01;
    assert_int_equal(verify(doc, len, &pol), ATTEST_UNTRUSTED);
    doc[len - 1] ^= 0x01;
    doc[len - 96] ^= 0x80;
    assert_int_equal(verify(doc, len, &pol), ATTEST_UNTRUSTED);
    doc[len - 96] ^= 0x80;
    /* one bit at a time across the payload: never accepted */
    for (size_t i = off; i < off + plen; i += 11) {
        doc[i] ^= (uint8_t)(1u << (i % 8));
        if (verify(doc, len, &pol) == ATTEST_OK)
            fail_msg("%s: accepted with bit %zu of byte %zu flipped", name, i % 8, i);
        doc[i] ^= (uint8_t)(1u << (i % 8));
    }
    assert_int_equal(verify(doc, len, &pol), ATTEST_OK);
    free(doc);
}

static void
test_flipped_bits(void **state)
{
    (void)state;
    check_flips(ANJUNA, anjuna_from + 60);
    check_flips(EVERVAULT, evervault_from + 60);
}

static void
test_flipped_pcr(void **state)
{
    (void)state;
    size_t len;
    uint8_t *doc = fixture(EVERVAULT, &len), v[48];
    struct attest_policy pol = at(evervault_from + 60);

    unhex(evervault_pcr0, v, sizeof(v));
    uint8_t *p = memmem(doc, len, v, sizeof(v));
    assert_non_null(p);
    p[47] ^= 0x04;
    assert_int_equal(verify(doc, len, &pol), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "signature"));
    free(doc);
}

static void
test_other_root(void **state)
{
    (void)state;
    size_t len;
    uint8_t *doc = fixture(ANJUNA, &len);
    struct attest_policy pol = at(anjuna_from + 60);
    EVP_PKEY *key;
    X509 *root;

    assert_int_equal(attest_sim_root_generate(anjuna_from, &key, &root), 0);
    pol.roots = sk_X509_new_null();
    sk_X509_push(pol.roots, root);
    assert_int_equal(verify(doc, len, &pol), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "certificate chain"));
    /* the same root as a sim root does not help either */
    pol.sim_root = root;
    assert_int_equal(verify(doc, len, &pol), ATTEST_UNTRUSTED);
    /* the AWS root given explicitly, as --root does */
    sk_X509_pop_free(pol.roots, X509_free);
    pol.roots = attest_x509_pem(attest_nitro_aws_root_pem, strlen(attest_nitro_aws_root_pem));
    pol.sim_root = NULL;
    assert_int_equal(verify(doc, len, &pol), ATTEST_OK);
    sk_X509_pop_free(pol.roots, X509_free);
    EVP_PKEY_free(key);
    free(doc);
}

static void
test_pcr_policy(void **state)
{
    (void)state;
    size_t len;
    uint8_t *doc = fixture(EVERVAULT, &len);
    struct attest_policy pol = at(evervault_from + 60);

    set_pcr(&pol, 0, evervault_pcr0);
    set_pcr(&pol, 1, evervault_pcr1);
    set_pcr(&pol, 2, evervault_pcr2);
    set_pcr(&pol, 8, evervault_pcr8);
    assert_int_equal(verify(doc, len, &pol), ATTEST_OK);
    pol.pcrs[3].value[0] ^= 1; /* PCR8 */
    assert_int_equal(verify(doc, len, &pol), ATTEST_POLICY);
    assert_string_equal(err, "policy: PCR 8 does not match");
    pol.pcrs[3].value[0] ^= 1;
    pol.pcrs[3].len = 32; /* the right prefix, the wrong length */
    assert_int_equal(verify(doc, len, &pol), ATTEST_POLICY);
    pol.npcrs = 0;
    set_pcr(&pol, 20, evervault_pcr0); /* the document has PCRs 0 to 15 */
    assert_int_equal(verify(doc, len, &pol), ATTEST_POLICY);
    assert_string_equal(err, "policy: PCR 20 is not in the document");
    free(doc);
}

static void
test_data_policy(void **state)
{
    (void)state;
    size_t len;
    uint8_t *doc = fixture(ANJUNA, &len);
    struct attest_policy pol = at(anjuna_from + 60);

    set_blob(&pol.user_data, "Hello World!\n", 13);
    set_blob(&pol.nonce, "Nonce\n", 6);
    assert_int_equal(verify(doc, len, &pol), ATTEST_OK);
    set_blob(&pol.nonce, "Nonce", 5);
    assert_int_equal(verify(doc, len, &pol), ATTEST_POLICY);
    assert_string_equal(err, "policy: nonce does not match");
    set_blob(&pol.nonce, "Nonce\n", 6);
    set_blob(&pol.user_data, "Hello World?\n", 13);
    assert_int_equal(verify(doc, len, &pol), ATTEST_POLICY);
    assert_string_equal(err, "policy: user_data does not match");
    pol.user_data.present = false;
    set_blob(&pol.public_key, "not the key", 11);
    assert_int_equal(verify(doc, len, &pol), ATTEST_POLICY);
    free(doc);

    doc = fixture(EVERVAULT, &len);
    pol = at(evervault_from + 60);
    set_blob(&pol.user_data, "", 0); /* expected empty, the document has null */
    assert_int_equal(verify(doc, len, &pol), ATTEST_POLICY);
    assert_string_equal(err, "policy: user_data is absent");
    free(doc);
}

/* Every strict prefix, and the whole with a byte more, is refused. */
static void
check_prefixes(const char *name)
{
    size_t len;
    uint8_t *doc = fixture(name, &len);
    struct attest_policy pol = at(utc(2024, 1, 24, 19, 0, 0));

    for (size_t i = 0; i < len; i++)
        if (verify(doc, i, &pol) == ATTEST_OK)
            fail_msg("%s: prefix of %zu bytes accepted", name, i);
    uint8_t *more = malloc(len + 1);
    memcpy(more, doc, len);
    more[len] = 0x00;
    assert_int_equal(verify(more, len + 1, &pol), ATTEST_MALFORMED);
    free(more);
    free(doc);
}

static void
test_truncated(void **state)
{
    (void)state;
    check_prefixes(ANJUNA);
    check_prefixes(EVERVAULT);
}

/* A measurement or a minimum TCB is not in a Nitro document: a policy that
 * pins one is refused, whatever its value (it used to be ignored). */
static void
test_unfit_policy(void **state)
{
    (void)state;
    size_t len;
    uint8_t *doc = fixture(ANJUNA, &len);
    struct attest_policy pol = at(anjuna_from + 60);
    static const uint8_t zero[ATTEST_MEASUREMENT_LEN];

    assert_int_equal(verify(doc, len, &pol), ATTEST_OK);
    set_blob(&pol.measurement, zero, sizeof(zero));
    assert_int_equal(verify(doc, len, &pol), ATTEST_POLICY);
    assert_non_null(strstr(err, "pins a measurement, which nitro evidence does not carry"));
    assert_int_equal(attest_nitro_verify(doc, len, &pol, &claims, err), ATTEST_POLICY);
    pol = at(anjuna_from + 60);
    pol.min_tcb_present = true;
    memset(pol.min_tcb, 0, sizeof(pol.min_tcb)); /* even the lowest TCB */
    assert_int_equal(verify(doc, len, &pol), ATTEST_POLICY);
    assert_non_null(strstr(err, "pins a minimum TCB, which nitro evidence does not carry"));
    pol = at(anjuna_from + 60);
    pol.vmpl_present = true;
    assert_int_equal(verify(doc, len, &pol), ATTEST_POLICY);
    assert_non_null(strstr(err, "pins a VMPL, which nitro evidence does not carry"));
    pol = at(anjuna_from + 60);
    pol.rtmrs_pinned = 1u << 1;
    assert_int_equal(verify(doc, len, &pol), ATTEST_POLICY);
    assert_non_null(strstr(err, "pins RTMRs, which nitro evidence does not carry"));
    free(doc);
}

/* A debug-mode enclave runs whatever image its parent chose: refused unless
 * allow_debug, also under a policy that pins only the PCRs the parent
 * sets (3: its IAM role, 4: the instance), which such an enclave carries. */
static void
test_debug_mode(void **state)
{
    (void)state;
    size_t len, elen;
    uint8_t *doc = fixture(ANJUNA, &len), *ev = fixture(EVERVAULT, &elen);
    struct attest_policy pol = {.now = anjuna_from + 60};
    struct attest_pcr pcr3, pcr4;

    assert_int_equal(verify(doc, len, &pol), ATTEST_POLICY);
    assert_string_equal(err, "policy: a debug-mode enclave (PCR0 all zero)");
    pol.allow_debug = true;
    assert_int_equal(verify(doc, len, &pol), ATTEST_OK);
    assert_true(claims.debug);
    pcr3 = *pcr(3);
    pcr4 = *pcr(4);
    pol = (struct attest_policy){.now = anjuna_from + 60, .npcrs = 2, .pcrs = {pcr3, pcr4}};
    assert_int_equal(verify(doc, len, &pol), ATTEST_POLICY);
    assert_string_equal(err, "policy: a debug-mode enclave (PCR0 all zero)");
    pol.allow_debug = true;
    assert_int_equal(verify(doc, len, &pol), ATTEST_OK);
    /* an enclave that is not in debug mode needs no permission */
    pol = (struct attest_policy){.now = evervault_from + 60};
    assert_int_equal(verify(ev, elen, &pol), ATTEST_OK);
    assert_false(claims.debug);
    free(doc);
    free(ev);
}

static void
test_garbage(void **state)
{
    (void)state;
    struct attest_policy pol = at(anjuna_from + 60);
    uint8_t buf[512];
    unsigned seed = 14;

    for (size_t n = 1; n <= sizeof(buf); n += 3) {
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)rand_r(&seed);
        assert_int_not_equal(verify(buf, n, &pol), ATTEST_OK);
        buf[0] = 0x84; /* an array of four, then garbage */
        assert_int_not_equal(verify(buf, n, &pol), ATTEST_OK);
    }
}

static void
test_envelope(void **state)
{
    (void)state;
    size_t len;
    uint8_t *doc = fixture(ANJUNA, &len);
    uint8_t *tagged = malloc(len + 1);
    struct attest_policy pol = at(anjuna_from + 60);

    tagged[0] = 0xd2; /* tag 18, COSE_Sign1 */
    memcpy(tagged + 1, doc, len);
    if (verify(tagged, len + 1, &pol) != ATTEST_OK)
        fail_msg("tagged: %s", err);
    tagged[0] = 0xd1; /* tag 17, COSE_Mac0 */
    assert_int_equal(verify(tagged, len + 1, &pol), ATTEST_MALFORMED);
    free(tagged);
    doc[5] = 0x23; /* alg -36, ES512 */
    assert_int_equal(verify(doc, len, &pol), ATTEST_MALFORMED);
    assert_string_equal(err, "protected header: algorithm is not ES384 (-35)");
    doc[5] = 0x22;
    doc[0] = 0x83;
    assert_int_equal(verify(doc, len, &pol), ATTEST_MALFORMED);
    free(doc);
}

struct sim_fixture {
    EVP_PKEY *root_key;
    X509 *root;
    struct attest_sim sim;
};

static void
sim_setup(struct sim_fixture *f, time_t now)
{
    assert_int_equal(attest_sim_root_generate(now, &f->root_key, &f->root), 0);
    assert_int_equal(attest_sim_init(&f->sim, f->root_key, f->root, now), 0);
}

static void
sim_teardown(struct sim_fixture *f)
{
    attest_sim_close(&f->sim);
    attest_sim_close(&f->sim); /* idempotent */
    X509_free(f->root);
    EVP_PKEY_free(f->root_key);
}

static uint8_t *
sim_doc(struct sim_fixture *f, bool indefinite, const struct attest_blob *user_data,
        const struct attest_blob *nonce, size_t *len)
{
    static struct attest_pcr pcrs[16];
    struct attest_sim_request req = {
        .timestamp_ms = 1700000000123ULL,
        .npcrs = 16,
        .pcrs = pcrs,
        .user_data = user_data,
        .nonce = nonce,
        .indefinite = indefinite,
    };
    uint8_t *doc;

    for (unsigned i = 0; i < 16; i++) {
        pcrs[i].index = i;
        pcrs[i].len = 48;
        memset(pcrs[i].value, (int)i, 48);
    }
    assert_int_equal(attest_sim_document(&f->sim, &req, &doc, len), 0);
    return doc;
}

/* The sim provider's documents, definite and indefinite, verify only against
 * a policy that trusts its root; the claims round-trip. */
static void
test_sim_round_trip(void **state)
{
    (void)state;
    time_t now = utc(2025, 6, 1, 12, 0, 0);
    struct sim_fixture f;
    struct attest_blob ud = {0}, nonce = {0};

    sim_setup(&f, now);
    set_blob(&ud, "user", 4);
    set_blob(&nonce, "n0nce", 5);
    for (int indef = 0; indef <= 1; indef++) {
        size_t len, plen;
        uint8_t *doc = sim_doc(&f, indef, &ud, &nonce, &len);
        struct attest_policy pol = at(now);
        /* 84 44 a1013822 a0 59 LLLL payload: its first byte is the map's */
        size_t off = payload_offset(doc, &plen);
        assert_int_equal(doc[off], indef ? 0xbf : 0xa9);
        assert_int_equal(verify(doc, len, &pol), ATTEST_UNTRUSTED); /* sim refused by default */
        pol.sim_root = f.root;
        set_blob(&pol.user_data, "user", 4);
        set_blob(&pol.nonce, "n0nce", 5);
        set_pcr(&pol, 3,
                "030303030303030303030303030303030303030303030303"
                "030303030303030303030303030303030303030303030303");
        assert_int_equal(verify(doc, len, &pol), ATTEST_OK);
        assert_true(claims.sim);
        assert_int_equal(strncmp(claims.module_id, "sim-", 4), 0);
        assert_int_equal(claims.timestamp_ms, 1700000000123ULL);
        assert_int_equal(claims.npcrs, 16);
        assert_false(claims.public_key.present);
        doc[off + plen - 3] ^= 0x10; /* inside the last field (nonce) */
        assert_int_equal(verify(doc, len, &pol), ATTEST_UNTRUSTED);
        doc[off + plen - 3] ^= 0x10;
        pol.now = now + 4 * 3600; /* after the leaf's three hours */
        assert_int_equal(verify(doc, len, &pol), ATTEST_UNTRUSTED);
        free(doc);
    }
    sim_teardown(&f);
}

/* An attacker's root in cabundle[0] that signs its own chain is refused:
 * only the pinned root anchors a document. */
static void
test_attacker_cabundle(void **state)
{
    (void)state;
    time_t now = utc(2024, 1, 24, 19, 0, 0);
    struct sim_fixture f;
    size_t len;

    sim_setup(&f, now);
    uint8_t *doc = sim_doc(&f, false, NULL, NULL, &len);
    struct attest_policy pol = at(now);
    assert_int_equal(verify(doc, len, &pol), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "certificate chain"));
    pol.roots = attest_x509_pem(attest_nitro_aws_root_pem, strlen(attest_nitro_aws_root_pem));
    assert_int_equal(verify(doc, len, &pol), ATTEST_UNTRUSTED);
    sk_X509_pop_free(pol.roots, X509_free);
    free(doc);
    sim_teardown(&f);
}

/* The leaf f's sim key signs documents with, replaced: issued by the root
 * with basicConstraints ca, and key usage ku (NULL: as attest_sim_cert()
 * gives it). */
static void
sim_leaf(struct sim_fixture *f, time_t now, bool ca, const char *ku)
{
    X509 *x = attest_sim_cert("leaf", f->sim.key, f->root, f->root_key, now - 60, now + 3600, ca);

    assert_non_null(x);
    if (ku != NULL) {
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage, ku);
        X509_EXTENSION_free(X509_delete_ext(x, X509_get_ext_by_NID(x, NID_key_usage, -1)));
        assert_int_equal(X509_add_ext(x, e, -1), 1);
        X509_EXTENSION_free(e);
        assert_true(X509_sign(x, f->root_key, EVP_sha384()) > 0);
    }
    X509_free(f->sim.leaf);
    f->sim.leaf = x;
}

/* Only an end entity's key signs evidence: a leaf the root made a CA, or
 * one whose key usage has no digitalSignature, chains and signs, and is
 * refused all the same. */
static void
test_signer_end_entity(void **state)
{
    (void)state;
    time_t now = utc(2025, 6, 1, 12, 0, 0);
    struct sim_fixture f;
    struct attest_policy pol = at(now);
    size_t len;
    uint8_t *doc;

    sim_setup(&f, now);
    pol.sim_root = f.root;
    doc = sim_doc(&f, false, NULL, NULL, &len);
    assert_int_equal(verify(doc, len, &pol), ATTEST_OK);
    free(doc);
    sim_leaf(&f, now, true, NULL);
    doc = sim_doc(&f, false, NULL, NULL, &len);
    assert_int_equal(verify(doc, len, &pol), ATTEST_UNTRUSTED);
    assert_non_null(strstr(err, "a CA certificate"));
    free(doc);
    static const char *const bad_ku[] = {"critical,keyCertSign", "critical,nonRepudiation",
                                         "keyEncipherment"};
    for (size_t i = 0; i < sizeof(bad_ku) / sizeof(bad_ku[0]); i++) {
        sim_leaf(&f, now, false, bad_ku[i]);
        doc = sim_doc(&f, false, NULL, NULL, &len);
        assert_int_equal(verify(doc, len, &pol), ATTEST_UNTRUSTED);
        assert_non_null(strstr(err, "key usage"));
        free(doc);
    }
    sim_leaf(&f, now, false, "digitalSignature,nonRepudiation"); /* as NSM's */
    doc = sim_doc(&f, false, NULL, NULL, &len);
    assert_int_equal(verify(doc, len, &pol), ATTEST_OK);
    free(doc);
    sim_teardown(&f);
}

int
main(void)
{
    anjuna_from = utc(2024, 1, 24, 18, 14, 14);
    anjuna_to = utc(2024, 1, 24, 21, 14, 17);
    evervault_from = utc(2022, 10, 13, 8, 57, 59);
    evervault_to = utc(2022, 10, 13, 11, 58, 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anjuna_claims),
        cmocka_unit_test(test_evervault_claims),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_flipped_bits),
        cmocka_unit_test(test_flipped_pcr),
        cmocka_unit_test(test_other_root),
        cmocka_unit_test(test_pcr_policy),
        cmocka_unit_test(test_data_policy),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_unfit_policy),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_envelope),
        cmocka_unit_test(test_debug_mode),
        cmocka_unit_test(test_sim_round_trip),
        cmocka_unit_test(test_attacker_cabundle),
        cmocka_unit_test(test_signer_end_entity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
