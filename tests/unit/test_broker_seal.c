/* test_broker_seal.c - the key broker's secrets at rest (broker/seal.c:
 * tampering, another name or key, the key file's rules) and wrapped for a
 * requester (broker/wrap.c: the real KMS-shaped CMS fixture opens, a
 * round trip, keys refused) and signed (the signing key derived as
 * documented, an answer bound to its name, nonce, key and envelope). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "attest_util.h"
#include "broker/seal.h"
#include "broker/wrap.h"

static int
setup(void **state)
{
    (void)state;
    return tmpdir_make("test_broker_seal");
}

static const uint8_t key_a[SEAL_KEY_LEN] = {1, 2, 3};
static const uint8_t key_b[SEAL_KEY_LEN] = {1, 2, 4};

/* Any changed byte, another name, another key, a cut: refused. */
static void
test_seal_tamper(void **state)
{
    const char secret[] = "postgres://u:p@db/prod";
    uint8_t *blob, *pt;
    size_t len, n;

    (void)state;
    assert_int_equal(
        seal_encrypt(key_a, "db", (const uint8_t *)secret, strlen(secret), &blob, &len), 0);
    assert_int_equal(len, strlen(secret) + SEAL_OVERHEAD);
    assert_int_equal(seal_decrypt(key_a, "db", blob, len, &pt, &n), 0);
    assert_int_equal(n, strlen(secret));
    assert_memory_equal(pt, secret, n);
    seal_clear_free(pt, n);
    for (size_t i = 0; i < len; i++) {
        blob[i] ^= 0x01;
        assert_int_equal(seal_decrypt(key_a, "db", blob, len, &pt, &n), -EBADMSG);
        blob[i] ^= 0x01;
    }
    assert_int_equal(seal_decrypt(key_a, "db2", blob, len, &pt, &n), -EBADMSG);
    assert_int_equal(seal_decrypt(key_b, "db", blob, len, &pt, &n), -EBADMSG);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(seal_decrypt(key_a, "db", blob, cut, &pt, &n), -EBADMSG);
    free(blob);
    /* an empty secret is a secret */
    assert_int_equal(seal_encrypt(key_a, "e", (const uint8_t *)"", 0, &blob, &len), 0);
    assert_int_equal(seal_decrypt(key_a, "e", blob, len, &pt, &n), 0);
    assert_int_equal(n, 0);
    seal_clear_free(pt, n);
    free(blob);
    uint8_t *big = calloc(1, SEAL_SECRET_MAX + 1);
    assert_int_equal(seal_encrypt(key_a, "big", big, SEAL_SECRET_MAX + 1, &blob, &len), -EINVAL);
    free(big);
}

/* Files: written and read back; a sealed file renamed to another secret's
 * name does not open; the key file's size and mode are checked. */
static void
test_seal_files(void **state)
{
    char err[ATTEST_ERR_MAX], path[128], other[128];
    uint8_t key[SEAL_KEY_LEN], again[SEAL_KEY_LEN], *pt;
    size_t n;
    struct stat st;

    (void)state;
    snprintf(path, sizeof(path), "%s/k", attest_tmpdir);
    assert_int_equal(seal_key_load(path, false, key, err), -ENOENT);
    assert_int_equal(seal_key_load(path, true, key, err), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(seal_key_load(path, true, again, err), 0); /* exists: read */
    assert_memory_equal(key, again, SEAL_KEY_LEN);
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(seal_key_load(path, false, again, err), -EPERM);
    assert_non_null(strstr(err, "expected 0600 or stricter"));
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(truncate(path, 31), 0);
    assert_int_equal(seal_key_load(path, false, again, err), -EINVAL);

    assert_int_equal(seal_write(attest_tmpdir, "one", key, (const uint8_t *)"1", 1, err), 0);
    assert_int_equal(seal_write(attest_tmpdir, "one", key, (const uint8_t *)"11", 2, err), 0);
    assert_int_equal(seal_read(attest_tmpdir, "one", key, &pt, &n, err), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(pt, "11", 2);
    seal_clear_free(pt, n);
    snprintf(path, sizeof(path), "%s/one.sealed", attest_tmpdir);
    snprintf(other, sizeof(other), "%s/two.sealed", attest_tmpdir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(rename(path, other), 0);
    assert_int_equal(seal_read(attest_tmpdir, "two", key, &pt, &n, err), -EBADMSG);
    assert_non_null(strstr(err, "two.sealed"));
    assert_int_equal(seal_read(attest_tmpdir, "one", key, &pt, &n, err), -ENOENT);
}

static EVP_PKEY *
fixture_key(void)
{
    size_t len;
    char *pem = (char *)fixture("nitro/kms-recipient-cms/enclave-test-rsa2048.key.pem", &len);
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);

    BIO_free(bio);
    free(pem);
    assert_non_null(k);
    return k;
}

/* The real KMS-shaped envelope (BER, indefinite lengths) opens. */
static void
test_wrap_fixture(void **state)
{
    size_t len, n;
    uint8_t *der = fixture("nitro/kms-recipient-cms/ciphertext-for-recipient.cms.der", &len), *pt;
    EVP_PKEY *k = fixture_key(), *other = EVP_RSA_gen(2048);

    (void)state;
    assert_int_equal(wrap_open(k, der, len, &pt, &n), 0);
    assert_int_equal(n, 12);
    assert_memory_equal(pt, "Hello, World", 12);
    seal_clear_free(pt, n);
    assert_int_equal(wrap_open(other, der, len, &pt, &n), -EBADMSG);
    der[len / 2] ^= 1;
    assert_int_equal(wrap_open(k, der, len - 1, &pt, &n), -EBADMSG);
    EVP_PKEY_free(other);
    EVP_PKEY_free(k);
    free(der);
}

/* What the broker makes, the requester opens; nobody else does. */
static void
test_wrap_round_trip(void **state)
{
    EVP_PKEY *k = EVP_RSA_gen(2048), *other = EVP_RSA_gen(2048), *pub, *ec;
    uint8_t *spki = NULL, *der = NULL, *pt;
    int slen = i2d_PUBKEY(k, &spki);
    size_t len, n;

    (void)state;
    assert_true(slen > 0);
    pub = wrap_public_key(spki, (size_t)slen);
    assert_non_null(pub);
    assert_null(wrap_public_key(spki, (size_t)slen - 1));
    if (wrap_secret(pub, (const uint8_t *)"s3cret", 6, &der, &len) != 0) {
        ERR_print_errors_fp(stderr);
        fail_msg("wrap_secret failed");
    }
    assert_int_equal(wrap_open(k, der, len, &pt, &n), 0);
    assert_int_equal(n, 6);
    assert_memory_equal(pt, "s3cret", 6);
    seal_clear_free(pt, n);
    assert_int_equal(wrap_open(other, der, len, &pt, &n), -EBADMSG);
    OPENSSL_free(der);
    OPENSSL_free(spki);
    /* an EC key or a short RSA key cannot take an RSA-OAEP envelope */
    spki = NULL;
    ec = EVP_EC_gen("P-256");
    slen = i2d_PUBKEY(ec, &spki);
    assert_null(wrap_public_key(spki, (size_t)slen));
    OPENSSL_free(spki);
    EVP_PKEY_free(ec);
    spki = NULL;
    ec = EVP_RSA_gen(1024);
    slen = i2d_PUBKEY(ec, &spki);
    assert_null(wrap_public_key(spki, (size_t)slen));
    OPENSSL_free(spki);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(other);
    EVP_PKEY_free(k);
}

/* The signing key is HKDF-SHA256 of the at-rest key with the documented
 * label: the public key of key bytes 0..31, as openssl computes it from the
 * same recipe (`openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt
 * hexkey:0001..1f -kdfopt info:airlock-kb-sign-v1 HKDF`, the seed as a raw
 * Ed25519 private key). */
static void
test_sign_key(void **state)
{
    static const uint8_t want[32] = {
        0x0b, 0xff, 0x75, 0xe5, 0x85, 0x36, 0xf2, 0xee, 0xa9, 0x51, 0x04,
        0x67, 0x27, 0xa4, 0xc0, 0xe1, 0xb8, 0xa3, 0xed, 0x77, 0x72, 0xab,
        0x7e, 0x64, 0x5c, 0xf4, 0x06, 0x49, 0x1b, 0xaa, 0xde, 0x5c,
    };
    uint8_t key[SEAL_KEY_LEN], pub[32];
    size_t n = sizeof(pub);
    EVP_PKEY *k;

    (void)state;
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)i;
    k = seal_sign_key(key);
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_ED25519);
    assert_int_equal(EVP_PKEY_get_raw_public_key(k, pub, &n), 1);
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(pub, want, sizeof(want));
    EVP_PKEY_free(k);
}

/* A signed answer verifies with the broker's key only, and only for the
 * name, nonce, requester's key and envelope it was signed for. */
static void
test_sign_answer(void **state)
{
    uint8_t key[SEAL_KEY_LEN] = {1}, nonce[32] = {2}, spki[40] = {3}, cms[100] = {4};
    uint8_t sig[WRAP_SIG_LEN];
    struct wrap_answer a = {.name = "db-key",
                            .nonce = nonce,
                            .nonce_len = sizeof(nonce),
                            .spki = spki,
                            .spki_len = sizeof(spki),
                            .cms = cms,
                            .cms_len = sizeof(cms)};
    EVP_PKEY *k = seal_sign_key(key), *other;

    (void)state;
    key[0] = 9;
    other = seal_sign_key(key);
    assert_non_null(k);
    assert_non_null(other);
    assert_int_equal(wrap_sign(k, &a, sig), 0);
    assert_true(wrap_verify(k, &a, sig, sizeof(sig)));
    assert_false(wrap_verify(other, &a, sig, sizeof(sig)));
    assert_false(wrap_verify(k, &a, sig, sizeof(sig) - 1));
    a.name = "db-kez"; /* another secret's release */
    assert_false(wrap_verify(k, &a, sig, sizeof(sig)));
    a.name = "db-key";
    nonce[31] ^= 1; /* another exchange */
    assert_false(wrap_verify(k, &a, sig, sizeof(sig)));
    nonce[31] ^= 1;
    spki[0] ^= 1; /* another requester's key */
    assert_false(wrap_verify(k, &a, sig, sizeof(sig)));
    spki[0] ^= 1;
    cms[99] ^= 1; /* another envelope */
    assert_false(wrap_verify(k, &a, sig, sizeof(sig)));
    cms[99] ^= 1;
    assert_true(wrap_verify(k, &a, sig, sizeof(sig)));
    sig[0] ^= 1;
    assert_false(wrap_verify(k, &a, sig, sizeof(sig)));
    EVP_PKEY_free(other);
    EVP_PKEY_free(k);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seal_tamper),  cmocka_unit_test(test_seal_files),
        cmocka_unit_test(test_wrap_fixture), cmocka_unit_test(test_wrap_round_trip),
        cmocka_unit_test(test_sign_key),     cmocka_unit_test(test_sign_answer),
    };
    return cmocka_run_group_tests(tests, setup, tmpdir_remove);
}
