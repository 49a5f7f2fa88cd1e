/* tdx_sign.h - what the TDX tests share to make quotes and collateral of
 * their own: signatures as Intel writes them, little-endian fields. Include
 * after cmocka.h. */
#ifndef AIRLOCK_TESTS_TDX_SIGN_H
#define AIRLOCK_TESTS_TDX_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

/* Signs data by key (P-256, SHA-256) as quotes and collateral carry it:
 * r || s, 32 bytes each, big-endian. */
static inline void
sign_p256(EVP_PKEY *key, const uint8_t *data, size_t len, uint8_t rs[64])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[80];
    size_t dlen = sizeof(der);

    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(EVP_DigestSign(md, der, &dlen, data, len), 1);
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
    assert_non_null(sig);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(sig), rs, 32), 32);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(sig), rs + 32, 32), 32);
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
}

/* Writes v as n little-endian bytes at p. */
static inline void
put_le(uint8_t *p, size_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

#endif
