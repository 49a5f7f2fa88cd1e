/* aead.c - the two ciphers of tokens over a key's pre-keyed contexts: per
 * field only the nonce (GCM) or nothing (SIV) is set, no key schedule, no
 * allocation.
 *
 * AES-SIV is RFC 5297's S2V + CTR built here on a pre-keyed AES-CMAC and
 * AES-CTR, not OpenSSL's "AES-256-SIV" cipher: that one cannot be re-used
 * without setting its key again (a re-init without key keeps the S2V state
 * of the previous message, so the associated data of the next one would be
 * ignored), and setting the key costs ~3 us per field, a third of the speed
 * asked for. tests/unit/test_field.c checks that both give the same bytes. */
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>

#include "field/field_int.h"

#define GCM_NONCE 12
#define TAG 16

size_t
field_aead_overhead(bool det)
{
    return det ? TAG : GCM_NONCE + TAG;
}

/* RFC 5297 dbl(): multiplication by x in GF(2^128). */
static void
dbl(uint8_t b[16])
{
    uint8_t carry = b[0] >> 7;
    for (int i = 0; i < 15; i++)
        b[i] = (uint8_t)(b[i] << 1 | b[i + 1] >> 7);
    b[15] = (uint8_t)(b[15] << 1 ^ (carry ? 0x87 : 0));
}

static int
cmac(EVP_MAC_CTX *mc, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, uint8_t out[16])
{
    size_t n = 0;
    if (!EVP_MAC_init(mc, NULL, 0, NULL) || !EVP_MAC_update(mc, a, alen))
        return -1;
    if (blen > 0 && !EVP_MAC_update(mc, b, blen))
        return -1;
    return EVP_MAC_final(mc, out, &n, 16) && n == 16 ? 0 : -1;
}

/* S2V(K1, aad, p) with the one associated-data component tokens have. */
static int
s2v(struct field_key *key, const uint8_t *aad, size_t aad_len, const uint8_t *p, size_t len,
    uint8_t v[16])
{
    uint8_t d[16], t[16];

    memcpy(d, key->s2v_zero, 16);
    dbl(d);
    if (aad_len > sizeof(key->aad) || aad_len != key->aad_len ||
        memcmp(aad, key->aad, aad_len) != 0) {
        if (cmac(key->cmac, aad, aad_len, NULL, 0, key->aad_mac) != 0)
            return -1;
        key->aad_len = aad_len <= sizeof(key->aad) ? aad_len : SIZE_MAX; /* SIZE_MAX: none */
        if (aad_len <= sizeof(key->aad))
            memcpy(key->aad, aad, aad_len);
    }
    for (int i = 0; i < 16; i++)
        d[i] ^= key->aad_mac[i];
    if (len >= 16) { /* T = p xorend D */
        for (int i = 0; i < 16; i++)
            t[i] = p[len - 16 + i] ^ d[i];
        return cmac(key->cmac, p, len - 16, t, 16, v);
    }
    dbl(d); /* T = dbl(D) xor pad(p) */
    memset(t, 0, 16);
    memcpy(t, p, len);
    t[len] = 0x80;
    for (int i = 0; i < 16; i++)
        t[i] ^= d[i];
    return cmac(key->cmac, t, 16, NULL, 0, v);
}

/* CTR(K2, Q, in) with Q = V with bits 63 and 31 cleared (RFC 5297 2.6). */
static int
siv_ctr(struct field_key *key, const uint8_t v[16], const uint8_t *in, size_t len, uint8_t *out)
{
    uint8_t q[16];
    int n = 0;

    memcpy(q, v, 16);
    q[8] &= 0x7f;
    q[12] &= 0x7f;
    if (len == 0)
        return 0;
    if (!EVP_EncryptInit_ex(key->ctr, NULL, NULL, NULL, q) ||
        !EVP_EncryptUpdate(key->ctr, out, &n, in, (int)len))
        return -1;
    return (size_t)n == len ? 0 : -1;
}

int
field_aead_seal(struct field_keyset *ks, struct field_key *key, bool det, const uint8_t *aad,
                size_t aad_len, const uint8_t *p, size_t len, uint8_t *out)
{
    int n = 0;

    if (len > FIELD_VALUE_MAX)
        return -1;
    if (det) {
        if (s2v(key, aad, aad_len, p, len, out) != 0)
            return -1;
        return siv_ctr(key, out, p, len, out + TAG);
    }
    EVP_CIPHER_CTX *c = key->gcm_enc;
    if (field_keyset_nonce(ks, out) != 0 || !EVP_EncryptInit_ex(c, NULL, NULL, NULL, out) ||
        !EVP_EncryptUpdate(c, NULL, &n, aad, (int)aad_len))
        return -1;
    if (len > 0 && !EVP_EncryptUpdate(c, out + GCM_NONCE, &n, p, (int)len))
        return -1;
    if (!EVP_EncryptFinal_ex(c, out + GCM_NONCE + len, &n) ||
        !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, TAG, out + GCM_NONCE + len))
        return -1;
    return 0;
}

int
field_aead_open(struct field_key *key, bool det, const uint8_t *aad, size_t aad_len,
                const uint8_t *c, size_t len, uint8_t *out)
{
    uint8_t v[16];
    int n = 0;

    if (len < field_aead_overhead(det))
        return -1;
    size_t plen = len - field_aead_overhead(det);
    if (det) {
        if (siv_ctr(key, c, c + TAG, plen, out) != 0 || s2v(key, aad, aad_len, out, plen, v) != 0 ||
            CRYPTO_memcmp(v, c, TAG) != 0)
            goto fail;
        return 0;
    }
    EVP_CIPHER_CTX *d = key->gcm_dec;
    if (!EVP_DecryptInit_ex(d, NULL, NULL, NULL, c) ||
        !EVP_CIPHER_CTX_ctrl(d, EVP_CTRL_AEAD_SET_TAG, TAG, (void *)(c + GCM_NONCE + plen)) ||
        !EVP_DecryptUpdate(d, NULL, &n, aad, (int)aad_len))
        goto fail;
    if (plen > 0 && !EVP_DecryptUpdate(d, out, &n, c + GCM_NONCE, (int)plen))
        goto fail;
    if (EVP_DecryptFinal_ex(d, out + plen, &n) != 1)
        goto fail;
    return 0;
fail:
    OPENSSL_cleanse(out, plen);
    return -1;
}
