/* wrap.c - CMS EnvelopedData to an RSA public key; see wrap.h. */
#include "broker/wrap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

EVP_PKEY *
wrap_public_key(const uint8_t *der, size_t len)
{
    const uint8_t *p = der;
    EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)len);

    if (k != NULL && (p != der + len || EVP_PKEY_get_base_id(k) != EVP_PKEY_RSA ||
                      EVP_PKEY_get_bits(k) < WRAP_KEY_BITS_MIN)) {
        EVP_PKEY_free(k);
        k = NULL;
    }
    return k;
}

/* CMS names a recipient by a certificate; the requester has a bare key.
 * This certificate only carries the key and its subject key identifier
 * (SHA-1 of the key, as RFC 5280 4.2.1.2 method 1 and KMS do) into
 * CMS_add1_recipient_cert(); it never leaves this function. OpenSSL reads
 * the identifier only from a complete certificate, so it is signed, by a
 * throwaway key. */
static X509 *
carrier_cert(EVP_PKEY *pub)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    ASN1_OCTET_STRING *skid = ASN1_OCTET_STRING_new();
    EVP_PKEY *signer = EVP_EC_gen("P-256");
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned md_len;

    if (x == NULL || name == NULL || skid == NULL || signer == NULL ||
        X509_set_version(x, X509_VERSION_3) != 1 ||
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const uint8_t *)"recipient", -1, -1,
                                   0) != 1 ||
        X509_set_subject_name(x, name) != 1 || X509_set_issuer_name(x, name) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), 60) == NULL || X509_set_pubkey(x, pub) != 1 ||
        X509_pubkey_digest(x, EVP_sha1(), md, &md_len) != 1 ||
        ASN1_OCTET_STRING_set(skid, md, (int)md_len) != 1 ||
        X509_add1_ext_i2d(x, NID_subject_key_identifier, skid, 0, X509V3_ADD_DEFAULT) != 1 ||
        X509_sign(x, signer, EVP_sha256()) <= 0) {
        X509_free(x);
        x = NULL;
    }
    EVP_PKEY_free(signer);
    ASN1_OCTET_STRING_free(skid);
    X509_NAME_free(name);
    return x;
}

/* The secret goes straight into the CMS content's cipher BIO, not through
 * CMS_final(): that copies its input through a BIO_f_buffer() whose
 * buffer (a copy of the secret in clear) OpenSSL frees without wiping.
 * What else holds it in clear here (the cipher BIO's context and the
 * EVP_CIPHER_CTX, the content key) OpenSSL wipes when it frees them. */
int
wrap_secret(EVP_PKEY *pub, const uint8_t *pt, size_t len, uint8_t **der, size_t *der_len)
{
    X509 *x = carrier_cert(pub);
    CMS_ContentInfo *cms = NULL;
    CMS_RecipientInfo *ri;
    EVP_PKEY_CTX *pctx;
    BIO *content = NULL;
    size_t written = 0;
    int ret = -ENOMEM, n;

    *der = NULL;
    if (x == NULL)
        goto fail;
    cms = CMS_encrypt(NULL, NULL, EVP_aes_256_cbc(), CMS_BINARY | CMS_PARTIAL);
    ret = -EIO;
    if (cms == NULL ||
        (ri = CMS_add1_recipient_cert(cms, x, CMS_KEY_PARAM | CMS_USE_KEYID)) == NULL ||
        (pctx = CMS_RecipientInfo_get0_pkey_ctx(ri)) == NULL ||
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) <= 0 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0 ||
        (content = CMS_dataInit(cms, NULL)) == NULL ||
        (len > 0 && (BIO_write_ex(content, pt, len, &written) != 1 || written != len)) ||
        BIO_flush(content) != 1 || CMS_dataFinal(cms, content) != 1 ||
        (n = i2d_CMS_ContentInfo(cms, der)) <= 0)
        goto fail;
    *der_len = (size_t)n;
    ret = 0;
fail:
    BIO_free_all(content);
    CMS_ContentInfo_free(cms);
    X509_free(x);
    return ret;
}

int
wrap_open(EVP_PKEY *key, const uint8_t *der, size_t len, uint8_t **pt, size_t *pt_len)
{
    BIO *in = BIO_new_mem_buf(der, (int)len), *out = BIO_new(BIO_s_secmem());
    CMS_ContentInfo *cms = NULL;
    BUF_MEM *mem;
    int ret = -ENOMEM;

    if (in == NULL || out == NULL)
        goto fail;
    ret = -EBADMSG;
    /* no certificate: every recipient is tried with the key. Without
     * CMS_DEBUG_DECRYPT a key that opens none would decrypt the content
     * under a random key (a defence for PKCS#1 v1.5 that OAEP does not
     * need) and could hand back garbage instead of an error. */
    if ((cms = d2i_CMS_bio(in, NULL)) == NULL ||
        CMS_decrypt(cms, key, NULL, NULL, out, CMS_BINARY | CMS_DEBUG_DECRYPT) != 1 ||
        BIO_get_mem_ptr(out, &mem) != 1)
        goto fail;
    ret = -ENOMEM;
    if ((*pt = malloc(mem->length + 1)) == NULL)
        goto fail;
    if (mem->length > 0) /* an empty secret has no data pointer */
        memcpy(*pt, mem->data, mem->length);
    *pt_len = mem->length;
    ret = 0;
fail:
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    BIO_free(out);
    return ret;
}

static const char sig_magic[] = "airlock-kb-v1 SECRET\n";

/* The bytes a's signature covers (see wrap.h), malloc'd, *len bytes; NULL
 * when out of memory. Ed25519 signs a whole message, not a digest fed in
 * parts, so they are put together first. */
static uint8_t *
answer_bytes(const struct wrap_answer *a, size_t *len)
{
    size_t m = sizeof(sig_magic) - 1, n = strlen(a->name);
    uint8_t *b = malloc(m + n + 1 + a->nonce_len + SHA256_DIGEST_LENGTH + a->cms_len), *p = b;

    if (b == NULL)
        return NULL;
    memcpy(p, sig_magic, m);
    p += m;
    memcpy(p, a->name, n);
    p += n;
    *p++ = '\n';
    memcpy(p, a->nonce, a->nonce_len);
    p += a->nonce_len;
    SHA256(a->spki, a->spki_len, p);
    p += SHA256_DIGEST_LENGTH;
    memcpy(p, a->cms, a->cms_len);
    *len = (size_t)(p - b) + a->cms_len;
    return b;
}

int
wrap_sign(EVP_PKEY *key, const struct wrap_answer *a, uint8_t sig[WRAP_SIG_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t len = 0, sig_len = WRAP_SIG_LEN;
    uint8_t *b = answer_bytes(a, &len);
    int ret = 0;

    if (ctx == NULL || b == NULL)
        ret = -ENOMEM;
    else if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1 ||
             EVP_DigestSign(ctx, sig, &sig_len, b, len) != 1 || sig_len != WRAP_SIG_LEN)
        ret = -EIO;
    free(b);
    EVP_MD_CTX_free(ctx);
    return ret;
}

bool
wrap_verify(EVP_PKEY *pub, const struct wrap_answer *a, const uint8_t *sig, size_t len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t n = 0;
    uint8_t *b = answer_bytes(a, &n);
    bool ok = ctx != NULL && b != NULL && len == WRAP_SIG_LEN &&
              EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) == 1 &&
              EVP_DigestVerify(ctx, sig, len, b, n) == 1;

    free(b);
    EVP_MD_CTX_free(ctx);
    return ok;
}
