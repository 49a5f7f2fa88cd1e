/* tdx.c - Intel TDX quote verification, versions 4 and 5 (Intel TDX DCAP
 * Quoting Library API, "Quote Format"): header (48 bytes); version 4: the TD
 * report body (584); version 5: the body's type (2: TDX 1.0, 584 bytes; 3:
 * TDX 1.5, 648: the same fields, then TEE_TCB_SVN2 and MRSERVICETD) and size
 * (4 bytes), then the body; then the signature data length (4) and the ECDSA
 * quote signature data, over everything before that length. Integers are
 * little-endian; ECDSA r||s and the P-256 key (x||y) are big-endian. */
#include "attest/tdx.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "attest/tdx_collateral.h"
#include "attest/trust.h"

#define HEADER_LEN 48
#define BODY_LEN 584    /* TDX 1.0 */
#define BODY_LEN_15 648 /* TDX 1.5 */
#define BODY_TYPE_10 2  /* version 5's body types */
#define BODY_TYPE_15 3
#define DESCRIPTOR_LEN 6 /* version 5: the body's type and size */
#define ATT_KEY_ECDSA_P256 2
#define TEE_TYPE_TDX 0x81
#define CERT_QE_REPORT 6
#define CERT_PCK_CHAIN 5
#define QE_REPORT_LEN 384
#define QE_REPORT_DATA_OFF 320
/* Offsets in the QE report (an SGX report body). */
#define QE_MISCSELECT 16
#define QE_ATTRIBUTES 48
#define QE_MRSIGNER 128
#define QE_ISVPRODID 256
#define QE_ISVSVN 258
#define P256_SIG_LEN 64
#define P256_KEY_LEN 64
#define TD_ATTR_DEBUG 0x01 /* td_attributes bit 0 */

/* Offsets in the TD report body. */
#define BODY_TEE_TCB_SVN 0
#define BODY_TD_ATTRIBUTES 120
#define BODY_MRTD 136
#define BODY_RTMR0 328
#define BODY_TEE_TCB_SVN2 584 /* TDX 1.5 */
#define BODY_MRSERVICETD 600
#define BODY_REPORT_DATA 520

const uint8_t attest_tdx_intel_root_sha256[32] = {
    0x44, 0xa0, 0x19, 0x6b, 0x2b, 0x99, 0xf8, 0x89, 0xb8, 0xe1, 0x49, 0xe9, 0x5b, 0x80, 0x7a, 0x35,
    0x0e, 0x74, 0x24, 0x96, 0x43, 0x99, 0xe8, 0x85, 0xa7, 0xcb, 0xb8, 0xcc, 0xfa, 0xb6, 0x74, 0xd3,
};

/* Intel's TD quoting enclave, as Intel publishes its identity (PCS
 * "Enclave Identity" TD_QE, version 2, TCB evaluation data numbers 14 to
 * 18): its signer, product id 2, MISCSELECT 0 (mask FFFFFFFF), the first 8
 * bytes of ATTRIBUTES under mask FBFFFFFFFFFFFFFF equal to 11000000 00000000
 * (INIT and PROVISIONKEY set, DEBUG clear, MODE64BIT either), and ISVSVN 4,
 * the lowest level listed (UpToDate; lower ones are not listed: revoked). */
static const uint8_t td_qe_mrsigner[32] = {
    0xdc, 0x9e, 0x2a, 0x7c, 0x6f, 0x94, 0x8f, 0x17, 0x47, 0x4e, 0x34, 0xa7, 0xfc, 0x43, 0xed, 0x03,
    0x0f, 0x7c, 0x15, 0x63, 0xf1, 0xba, 0xbd, 0xdf, 0x63, 0x40, 0xc8, 0x2e, 0x0e, 0x54, 0xa8, 0xc5,
};
static const uint8_t td_qe_attributes[8] = {0x11, 0, 0, 0, 0, 0, 0, 0};
static const uint8_t td_qe_attributes_mask[8] = {0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
#define TD_QE_ISVPRODID 2
#define TD_QE_MIN_ISVSVN 4

/* A bounded reader over the signature data. */
struct cursor {
    const uint8_t *p;
    size_t left;
};

static const uint8_t *
take(struct cursor *c, size_t n)
{
    const uint8_t *p = c->p;

    if (n > c->left)
        return NULL;
    c->p += n;
    c->left -= n;
    return p;
}

static unsigned
u16le(const uint8_t *p)
{
    return (unsigned)(p[0] | p[1] << 8);
}

static bool
take_u16(struct cursor *c, uint16_t *v)
{
    const uint8_t *p = take(c, 2);

    if (p != NULL)
        *v = (uint16_t)u16le(p);
    return p != NULL;
}

static bool
take_u32(struct cursor *c, uint32_t *v)
{
    const uint8_t *p = take(c, 4);

    if (p != NULL)
        *v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return p != NULL;
}

/* What the signature data holds (slices into the quote). */
struct tdx_sig {
    const uint8_t *sig, *att_key, *qe_report, *qe_sig, *qe_auth, *pem;
    size_t qe_auth_len, pem_len;
};

/* The signature data after the signed_len bytes that it signs. */
static enum attest_result
parse_sig(const uint8_t *quote, size_t len, size_t signed_len, struct tdx_sig *s, char *err)
{
    struct cursor c = {quote + signed_len, len - signed_len};
    uint32_t sig_len, cert_len, pck_len;
    uint16_t type, auth_len;

    if (!take_u32(&c, &sig_len) || sig_len > c.left)
        return attest_fail(err, ATTEST_MALFORMED, "quote: signature data is truncated");
    c.left = sig_len; /* what follows the signature data is not ours */
    if ((s->sig = take(&c, P256_SIG_LEN)) == NULL ||
        (s->att_key = take(&c, P256_KEY_LEN)) == NULL || !take_u16(&c, &type) ||
        !take_u32(&c, &cert_len) || cert_len > c.left)
        return attest_fail(err, ATTEST_MALFORMED, "quote: signature data is truncated");
    if (type != CERT_QE_REPORT)
        return attest_fail(err, ATTEST_MALFORMED,
                           "quote: certification data type %u, QE report (6) expected", type);
    c.left = cert_len;
    if ((s->qe_report = take(&c, QE_REPORT_LEN)) == NULL ||
        (s->qe_sig = take(&c, P256_SIG_LEN)) == NULL || !take_u16(&c, &auth_len) ||
        (s->qe_auth = take(&c, auth_len)) == NULL || !take_u16(&c, &type) ||
        !take_u32(&c, &pck_len) || (s->pem = take(&c, pck_len)) == NULL)
        return attest_fail(err, ATTEST_MALFORMED, "quote: QE certification data is truncated");
    if (type != CERT_PCK_CHAIN)
        return attest_fail(err, ATTEST_MALFORMED,
                           "quote: QE certification data type %u, PCK chain (5) expected", type);
    s->qe_auth_len = auth_len;
    s->pem_len = pck_len;
    return ATTEST_OK;
}

/* The attestation key: a raw P-256 point x||y. NULL if it is not one. */
static EVP_PKEY *
p256_key(const uint8_t xy[P256_KEY_LEN])
{
    uint8_t point[1 + P256_KEY_LEN] = {0x04};
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *key = NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)),
        OSSL_PARAM_construct_end(),
    };

    memcpy(point + 1, xy, P256_KEY_LEN);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
        key = NULL;
    EVP_PKEY_CTX_free(ctx);
    return key;
}

/* out = SHA-256(a || b); false if OpenSSL cannot. */
static bool
sha256_two(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, uint8_t out[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(ctx, a, alen) == 1 && EVP_DigestUpdate(ctx, b, blen) == 1 &&
              EVP_DigestFinal_ex(ctx, out, NULL) == 1;

    EVP_MD_CTX_free(ctx);
    return ok;
}

/* The PCK signs the reports of any enclave its platform lets ask (one with
 * the PROVISIONKEY attribute, which the host grants): only the report of
 * Intel's TD quoting enclave vouches for an attestation key. */
static enum attest_result
check_qe_identity(const uint8_t *qe, char *err)
{
    static const uint8_t zero[4];

    if (memcmp(qe + QE_MRSIGNER, td_qe_mrsigner, sizeof(td_qe_mrsigner)) != 0 ||
        u16le(qe + QE_ISVPRODID) != TD_QE_ISVPRODID)
        return attest_fail(err, ATTEST_UNTRUSTED,
                           "quote: the QE report is not of Intel's TD quoting enclave "
                           "(MRSIGNER, ISVPRODID %u)",
                           u16le(qe + QE_ISVPRODID));
    for (size_t i = 0; i < sizeof(td_qe_attributes); i++)
        if ((qe[QE_ATTRIBUTES + i] & td_qe_attributes_mask[i]) != td_qe_attributes[i])
            return attest_fail(err, ATTEST_UNTRUSTED,
                               "quote: the quoting enclave's ATTRIBUTES are not Intel's "
                               "(a debug enclave?)");
    if (memcmp(qe + QE_MISCSELECT, zero, sizeof(zero)) != 0)
        return attest_fail(err, ATTEST_UNTRUSTED,
                           "quote: the quoting enclave's MISCSELECT is not Intel's");
    if (u16le(qe + QE_ISVSVN) < TD_QE_MIN_ISVSVN)
        return attest_fail(err, ATTEST_UNTRUSTED,
                           "quote: the quoting enclave's ISVSVN %u is below %u (revoked)",
                           u16le(qe + QE_ISVSVN), TD_QE_MIN_ISVSVN);
    return ATTEST_OK;
}

enum attest_result
attest_tdx_chain_verify(X509 *leaf, STACK_OF(X509) * others, const struct attest_policy *pol,
                        const char *what, X509 **root, char *err)
{
    enum attest_result r = ATTEST_UNTRUSTED;
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    STACK_OF(X509) *anchors = pol->roots != NULL ? NULL : sk_X509_new_null();

    if (untrusted == NULL || (pol->roots == NULL && anchors == NULL)) {
        attest_fail(err, r, "out of memory");
        goto fail;
    }
    for (int i = 0; i < sk_X509_num(others); i++) {
        X509 *x = sk_X509_value(others, i);
        uint8_t md[32];
        unsigned mdlen = 0;
        if (x == leaf)
            continue;
        if (anchors != NULL && X509_digest(x, EVP_sha256(), md, &mdlen) == 1 &&
            mdlen == sizeof(md) && memcmp(md, attest_tdx_intel_root_sha256, sizeof(md)) == 0) {
            if (sk_X509_push(anchors, x) == 0)
                goto fail;
        } else if (sk_X509_push(untrusted, x) == 0) {
            goto fail;
        }
    }
    if (anchors != NULL && sk_X509_num(anchors) == 0) {
        attest_fail(err, r, "%s does not end at the Intel SGX Root CA", what);
        goto fail;
    }
    r = attest_chain_verify(leaf, untrusted, anchors != NULL ? anchors : pol->roots, pol->now, root,
                            err);
    if (r != ATTEST_OK) { /* say which chain */
        char why[ATTEST_ERR_MAX];
        snprintf(why, sizeof(why), "%s", err);
        attest_fail(err, r, "%s: %s", what, why);
    }
fail:
    sk_X509_free(anchors);
    sk_X509_free(untrusted);
    return r;
}

/* The header (an ECDSA P-256 quote of a TD, version 4 or 5) and where the
 * TD report body is: *body, and the length of what the quote's signature
 * covers (header, version 5's body descriptor, body). Sets c->version and
 * c->tdx15. */
static enum attest_result
parse_body(const uint8_t *quote, size_t len, struct attest_claims *c, const uint8_t **body,
           size_t *signed_len, char *err)
{
    if (len < HEADER_LEN + BODY_LEN + 4 || len > TDX_QUOTE_MAX)
        return attest_fail(err, ATTEST_MALFORMED, "quote: %zu bytes, %d to %d expected", len,
                           HEADER_LEN + BODY_LEN + 4, TDX_QUOTE_MAX);
    c->version = u16le(quote);
    if ((c->version != 4 && c->version != 5) || u16le(quote + 2) != ATT_KEY_ECDSA_P256 ||
        quote[4] != TEE_TYPE_TDX || quote[5] != 0 || quote[6] != 0 || quote[7] != 0)
        return attest_fail(err, ATTEST_MALFORMED,
                           "quote: not a TDX ECDSA P-256 quote of version 4 or 5");
    if (c->version == 4) {
        *body = quote + HEADER_LEN;
        *signed_len = HEADER_LEN + BODY_LEN;
        return ATTEST_OK;
    }
    unsigned type = u16le(quote + HEADER_LEN);
    uint32_t size;
    struct cursor d = {quote + HEADER_LEN + 2, 4};
    take_u32(&d, &size);
    if (!((type == BODY_TYPE_10 && size == BODY_LEN) ||
          (type == BODY_TYPE_15 && size == BODY_LEN_15)))
        return attest_fail(err, ATTEST_MALFORMED,
                           "quote: body type %u of %u bytes, TDX 1.0 (2, 584) or 1.5 (3, 648) "
                           "expected",
                           type, (unsigned)size);
    *body = quote + HEADER_LEN + DESCRIPTOR_LEN;
    *signed_len = HEADER_LEN + DESCRIPTOR_LEN + size;
    if (*signed_len + 4 > len)
        return attest_fail(err, ATTEST_MALFORMED, "quote: %zu bytes, at least %zu expected", len,
                           *signed_len + 4);
    c->tdx15 = type == BODY_TYPE_15;
    return ATTEST_OK;
}

enum attest_result
attest_tdx_verify(const uint8_t *quote, size_t len, const struct attest_policy *pol,
                  struct attest_claims *c, char *err)
{
    enum attest_result r;
    struct tdx_sig s = {0};
    STACK_OF(X509) *chain = NULL;
    EVP_PKEY *att_key = NULL;
    uint8_t bind[32];

    memset(c, 0, sizeof(*c));
    c->kind = ATTEST_KIND_TDX;
    const uint8_t *body = NULL; /* set by parse_body() */
    size_t signed_len = 0;
    if ((r = parse_body(quote, len, c, &body, &signed_len, err)) != ATTEST_OK)
        return r;
    memcpy(c->tee_tcb_svn, body + BODY_TEE_TCB_SVN, sizeof(c->tee_tcb_svn));
    memcpy(c->td_attributes, body + BODY_TD_ATTRIBUTES, sizeof(c->td_attributes));
    c->debug = (c->td_attributes[0] & TD_ATTR_DEBUG) != 0;
    memcpy(c->measurement, body + BODY_MRTD, sizeof(c->measurement));
    memcpy(c->rtmr, body + BODY_RTMR0, sizeof(c->rtmr));
    memcpy(c->report_data, body + BODY_REPORT_DATA, sizeof(c->report_data));
    if (c->tdx15) {
        memcpy(c->tee_tcb_svn2, body + BODY_TEE_TCB_SVN2, sizeof(c->tee_tcb_svn2));
        memcpy(c->mr_servicetd, body + BODY_MRSERVICETD, sizeof(c->mr_servicetd));
    }
    if ((r = parse_sig(quote, len, signed_len, &s, err)) != ATTEST_OK)
        return r;

    r = ATTEST_UNTRUSTED;
    if ((att_key = p256_key(s.att_key)) == NULL) {
        attest_fail(err, r, "quote: the attestation key is not a P-256 point");
        goto fail;
    }
    r = attest_ecdsa_verify(att_key, "prime256v1", EVP_sha256(), quote, signed_len, s.sig,
                            s.sig + P256_SIG_LEN / 2, P256_SIG_LEN / 2, false, "quote", err);
    if (r != ATTEST_OK)
        goto fail;
    /* The QE vouches for the attestation key through its report data. */
    static const uint8_t zero[32];
    if (!sha256_two(s.att_key, P256_KEY_LEN, s.qe_auth, s.qe_auth_len, bind) ||
        memcmp(s.qe_report + QE_REPORT_DATA_OFF, bind, sizeof(bind)) != 0 ||
        memcmp(s.qe_report + QE_REPORT_DATA_OFF + 32, zero, sizeof(zero)) != 0) {
        r = attest_fail(err, ATTEST_UNTRUSTED,
                        "quote: the QE report does not bind the attestation key");
        goto fail;
    }
    if ((chain = attest_x509_pem((const char *)s.pem, s.pem_len)) == NULL) {
        r = attest_fail(err, ATTEST_MALFORMED, "quote: the PCK chain is not PEM certificates");
        goto fail;
    }
    EVP_PKEY *pck = X509_get0_pubkey(sk_X509_value(chain, 0));
    if (pck == NULL) {
        r = attest_fail(err, ATTEST_UNTRUSTED, "quote: the PCK certificate has no usable key");
        goto fail;
    }
    r = attest_ecdsa_verify(pck, "prime256v1", EVP_sha256(), s.qe_report, QE_REPORT_LEN, s.qe_sig,
                            s.qe_sig + P256_SIG_LEN / 2, P256_SIG_LEN / 2, false, "QE report", err);
    if (r != ATTEST_OK)
        goto fail;
    if ((r = attest_tdx_chain_verify(sk_X509_value(chain, 0), chain, pol, "quote: the PCK chain",
                                     NULL, err)) != ATTEST_OK)
        goto fail;
    if ((r = attest_signer_check(sk_X509_value(chain, 0), "quote: the PCK certificate", err)) !=
        ATTEST_OK)
        goto fail;
    /* the quoting enclave and the platform's TCB by Intel's collateral, or
     * the enclave by the identity built in */
    r = pol->tdx_collateral != NULL
            ? tdx_collateral_judge(pol->tdx_collateral, chain, body, s.qe_report, pol, c, err)
            : check_qe_identity(s.qe_report, err);
    if (r != ATTEST_OK)
        goto fail;
    r = attest_report_policy(pol, c, "the TD is a debug TD", "MRTD", err);
    /* MRTD measures the TD's initial memory, its firmware: the kernel, initrd
     * and command line it boots are measured into the RTMRs */
    for (unsigned i = 0; r == ATTEST_OK && i < ATTEST_RTMR_COUNT; i++)
        if ((pol->rtmrs_pinned & 1u << i) != 0 &&
            memcmp(pol->rtmrs[i], c->rtmr[i], sizeof(c->rtmr[i])) != 0)
            r = attest_fail(err, ATTEST_POLICY, "policy: RTMR %u does not match", i);
fail:
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(att_key);
    return r;
}
