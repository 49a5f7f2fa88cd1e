/* trust.c - signatures and certificate chains for the evidence verifiers. */
#include "attest/trust.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/units.h"

enum attest_result
attest_fail(char *err, enum attest_result r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, ATTEST_ERR_MAX, fmt, ap);
    va_end(ap);
    return r;
}

static bool
key_on_group(EVP_PKEY *key, const char *group)
{
    char name[64];

    return EVP_PKEY_is_a(key, "EC") &&
           EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name),
                                          NULL) == 1 &&
           strcmp(name, group) == 0;
}

enum attest_result
attest_ecdsa_verify(EVP_PKEY *key, const char *group, const EVP_MD *md, const uint8_t *msg,
                    size_t len, const uint8_t *r, const uint8_t *s, size_t n, bool little_endian,
                    const char *what, char *err)
{
    enum attest_result res = ATTEST_UNTRUSTED;
    ECDSA_SIG *sig = NULL;
    BIGNUM *br = NULL, *bs = NULL;
    EVP_MD_CTX *mctx = NULL;
    uint8_t *der = NULL;
    int der_len;

    if (!key_on_group(key, group))
        return attest_fail(err, ATTEST_UNTRUSTED, "%s: the key is not ECDSA %s", what, group);
    br = little_endian ? BN_lebin2bn(r, (int)n, NULL) : BN_bin2bn(r, (int)n, NULL);
    bs = little_endian ? BN_lebin2bn(s, (int)n, NULL) : BN_bin2bn(s, (int)n, NULL);
    sig = ECDSA_SIG_new();
    mctx = EVP_MD_CTX_new();
    if (br == NULL || bs == NULL || sig == NULL || mctx == NULL)
        goto fail;
    if (ECDSA_SIG_set0(sig, br, bs) != 1)
        goto fail;
    br = bs = NULL; /* owned by sig now */
    der_len = i2d_ECDSA_SIG(sig, &der);
    if (der_len <= 0)
        goto fail;
    if (EVP_DigestVerifyInit(mctx, NULL, md, NULL, key) != 1)
        goto fail;
    if (EVP_DigestVerify(mctx, der, (size_t)der_len, msg, len) == 1)
        res = ATTEST_OK;
fail:
    if (res != ATTEST_OK)
        attest_fail(err, res, "%s: signature does not verify", what);
    OPENSSL_free(der);
    EVP_MD_CTX_free(mctx);
    ECDSA_SIG_free(sig);
    BN_free(br);
    BN_free(bs);
    return res;
}

bool
attest_time_within(const ASN1_TIME *from, const ASN1_TIME *until, time_t now)
{
    /* -1, 0, 1: before, at, after now; -2: unreadable */
    int a = from != NULL ? ASN1_TIME_cmp_time_t(from, now) : -2;
    int b = until != NULL ? ASN1_TIME_cmp_time_t(until, now) : -2;

    return (a == -1 || a == 0) && (b == 0 || b == 1);
}

/* OpenSSL takes a certificate for expired in its notAfter second
 * (X509_cmp_time() has no "equal": openssl#15124), a second RFC 5280
 * counts in: that refusal alone is overruled. */
static int
chain_time_cb(int ok, X509_STORE_CTX *ctx)
{
    X509 *x = X509_STORE_CTX_get_current_cert(ctx);
    time_t now = X509_VERIFY_PARAM_get_time(X509_STORE_CTX_get0_param(ctx));

    if (ok || X509_STORE_CTX_get_error(ctx) != X509_V_ERR_CERT_HAS_EXPIRED || x == NULL ||
        !attest_time_within(X509_get0_notBefore(x), X509_get0_notAfter(x), now))
        return ok;
    X509_STORE_CTX_set_error(ctx, X509_V_OK);
    return 1;
}

enum attest_result
attest_chain_verify(X509 *leaf, STACK_OF(X509) * untrusted, STACK_OF(X509) * anchors, time_t now,
                    X509 **top, char *err)
{
    enum attest_result res = ATTEST_UNTRUSTED;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();

    if (store == NULL || ctx == NULL) {
        attest_fail(err, res, "certificate chain: out of memory");
        goto fail;
    }
    for (int i = 0; i < sk_X509_num(anchors); i++)
        if (X509_STORE_add_cert(store, sk_X509_value(anchors, i)) != 1) {
            attest_fail(err, res, "certificate chain: cannot add root %d", i);
            goto fail;
        }
    if (X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1) {
        attest_fail(err, res, "certificate chain: out of memory");
        goto fail;
    }
    /* The evidence is checked as of the caller's time, never the clock's. */
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), now);
    X509_STORE_CTX_set_verify_cb(ctx, chain_time_cb);
    if (X509_verify_cert(ctx) != 1) {
        int e = X509_STORE_CTX_get_error(ctx);
        attest_fail(err, res, "certificate chain: %s (certificate %d from the leaf)",
                    X509_verify_cert_error_string(e), X509_STORE_CTX_get_error_depth(ctx));
        goto fail;
    }
    if (top != NULL) {
        STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
        X509 *last = sk_X509_value(chain, sk_X509_num(chain) - 1);
        *top = NULL;
        for (int i = 0; i < sk_X509_num(anchors); i++)
            if (X509_cmp(sk_X509_value(anchors, i), last) == 0)
                *top = sk_X509_value(anchors, i);
    }
    res = ATTEST_OK;
fail:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return res;
}

enum attest_result
attest_signer_check(X509 *x, const char *what, char *err)
{
    uint32_t flags = X509_get_extension_flags(x);

    /* a CA's key is vouched for to sign certificates: what it signs as
     * evidence is not what its issuer certified (NSM leaves, VCEKs, PCK and
     * TCB signing certificates are end entities) */
    if ((flags & EXFLAG_CA) != 0)
        return attest_fail(err, ATTEST_UNTRUSTED, "%s: a CA certificate, not an end entity", what);
    if ((flags & EXFLAG_KUSAGE) != 0 && (X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE) == 0)
        return attest_fail(err, ATTEST_UNTRUSTED,
                           "%s: its key usage does not allow digital signatures", what);
    return ATTEST_OK;
}

X509 *
attest_x509_der(const uint8_t *der, size_t len)
{
    const uint8_t *p = der;
    X509 *x;

    if (len == 0 || len > INT32_MAX)
        return NULL;
    x = d2i_X509(NULL, &p, (long)len);
    if (x != NULL && p != der + len) {
        X509_free(x);
        return NULL;
    }
    return x;
}

STACK_OF(X509) * attest_x509_pem(const char *pem, size_t len)
{
    STACK_OF(X509) *sk = NULL;
    BIO *bio = NULL;
    X509 *x;

    if (len > INT32_MAX)
        return NULL;
    sk = sk_X509_new_null();
    bio = BIO_new_mem_buf(pem, (int)len);
    if (sk == NULL || bio == NULL)
        goto fail;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
        if (sk_X509_push(sk, x) == 0) {
            X509_free(x);
            goto fail;
        }
    /* The loop ends at the end of the buffer (no start line) or at a
     * certificate that does not parse: only the first is acceptable. */
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_REASON(e) != PEM_R_NO_START_LINE || sk_X509_num(sk) == 0)
        goto fail;
    ERR_clear_error();
    BIO_free(bio);
    return sk;
fail:
    ERR_clear_error();
    BIO_free(bio);
    sk_X509_pop_free(sk, X509_free);
    return NULL;
}

bool
attest_blob_equal(const struct attest_blob *b, const uint8_t *data, size_t len)
{
    return b->present && b->len == len && (len == 0 || memcmp(b->data, data, len) == 0);
}

enum attest_result
attest_policy_fits(const struct attest_policy *pol, enum attest_kind kind, char *err)
{
#define KIND(k) (1u << (k))
    static const char *const names[] = {
        [ATTEST_KIND_NITRO] = "nitro", [ATTEST_KIND_SNP] = "snp", [ATTEST_KIND_TDX] = "tdx"};
    const unsigned all = KIND(ATTEST_KIND_NITRO) | KIND(ATTEST_KIND_SNP) | KIND(ATTEST_KIND_TDX);
    /* each pin of the policy, and the kinds of evidence that carry it */
    const struct {
        bool pinned;
        const char *what;
        unsigned kinds;
    } pins[] = {
        {pol->npcrs > 0, "PCRs", KIND(ATTEST_KIND_NITRO)},
        {pol->nonce.present, "a nonce", KIND(ATTEST_KIND_NITRO)},
        {pol->public_key.present, "a public key", KIND(ATTEST_KIND_NITRO)},
        {pol->user_data.present, "user data", all},
        {pol->measurement.present, "a measurement", KIND(ATTEST_KIND_SNP) | KIND(ATTEST_KIND_TDX)},
        {pol->rtmrs_pinned != 0, "RTMRs", KIND(ATTEST_KIND_TDX)},
        {pol->min_tcb_present, "a minimum TCB", KIND(ATTEST_KIND_SNP)},
        {pol->vmpl_present, "a VMPL", KIND(ATTEST_KIND_SNP)},
    };
#undef KIND

    if ((unsigned)kind >= sizeof(names) / sizeof(names[0]))
        return attest_fail(err, ATTEST_POLICY, "policy: unknown evidence kind");
    for (size_t i = 0; i < sizeof(pins) / sizeof(pins[0]); i++)
        if (pins[i].pinned && (pins[i].kinds & 1u << kind) == 0)
            return attest_fail(err, ATTEST_POLICY,
                               "policy: pins %s, which %s evidence does not carry (refused, not "
                               "ignored)",
                               pins[i].what, names[kind]);
    return ATTEST_OK;
}

enum attest_result
attest_report_policy(const struct attest_policy *pol, const struct attest_claims *c,
                     const char *debug_what, const char *measurement_what, char *err)
{
    uint8_t want[ATTEST_REPORT_DATA_LEN] = {0};
    enum attest_result r = attest_policy_fits(pol, c->kind, err);

    if (r != ATTEST_OK)
        return r;
    if (c->debug && !pol->allow_debug)
        return attest_fail(err, ATTEST_POLICY, "policy: %s", debug_what);
    if (pol->measurement.present &&
        !attest_blob_equal(&pol->measurement, c->measurement, sizeof(c->measurement)))
        return attest_fail(err, ATTEST_POLICY, "policy: %s does not match", measurement_what);
    if (!pol->user_data.present)
        return ATTEST_OK;
    if (pol->user_data.len > sizeof(want))
        return attest_fail(err, ATTEST_POLICY, "policy: report_data is at most %zu bytes",
                           sizeof(want));
    memcpy(want, pol->user_data.data, pol->user_data.len);
    if (memcmp(want, c->report_data, sizeof(want)) != 0)
        return attest_fail(err, ATTEST_POLICY, "policy: report_data does not match");
    return ATTEST_OK;
}

bool
attest_hex(const char *s, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = strlen(s);

    if (n % 2 != 0 || n / 2 > cap)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    for (size_t i = 0; i < n / 2; i++) {
        char byte[3] = {s[2 * i], s[2 * i + 1], '\0'};
        out[i] = (uint8_t)strtoul(byte, NULL, 16);
    }
    *len = n / 2;
    return true;
}

int
attest_pcr_arg(const char *s, struct attest_pcr *p)
{
    const char *eq = strchr(s, '=');
    char index[4] = "";
    uint64_t idx;

    if (eq == NULL || (size_t)(eq - s) >= sizeof(index))
        return -EINVAL;
    memcpy(index, s, (size_t)(eq - s));
    if (units_uint(index, ATTEST_PCR_MAX - 1, &idx) != 0 ||
        !attest_hex(eq + 1, p->value, sizeof(p->value), &p->len) || p->len == 0)
        return -EINVAL;
    p->index = (unsigned)idx;
    return 0;
}

/* Whether s begins with the shape of tmpl: 'd' a digit, 'T' a date-time
 * separator (T, t or a space), anything else itself. */
static bool
shaped(const char *s, const char *tmpl)
{
    for (; *tmpl != '\0'; s++, tmpl++) {
        bool ok = *tmpl == 'd'   ? isdigit((unsigned char)*s)
                  : *tmpl == 'T' ? *s == 'T' || *s == 't' || *s == ' '
                                 : *s == *tmpl;
        if (!ok)
            return false;
    }
    return true;
}

/* Every field of exactly its digits: strptime alone takes "1" for "01"
 * and a sign. */
bool
attest_time_parse(const char *s, time_t *out)
{
    struct tm tm = {0};
    const char *p = s + 19;
    int oh = 0, om = 0, sign = 1;

    if (!shaped(s, "dddd-dd-ddTdd:dd:dd") || strptime(s, "%Y-%m-%d", &tm) == NULL ||
        strptime(s + 11, "%H:%M:%S", &tm) == NULL)
        return false;
    if (*p == '.' && isdigit((unsigned char)p[1])) {
        do
            p++;
        while (isdigit((unsigned char)*p));
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && shaped(p + 1, "dd:dd")) {
        sign = *p == '-' ? -1 : 1;
        oh = (p[1] - '0') * 10 + (p[2] - '0');
        om = (p[4] - '0') * 10 + (p[5] - '0');
        if (oh > 23 || om > 59)
            return false;
        p += 6;
    } else {
        return false;
    }
    if (*p != '\0')
        return false;
    /* strptime takes any day up to 31 in any month: a day the month does
     * not have (February 30) is no date, not the one timegm() moves it to
     * (the day alone: 23:59:60, a leap second, is a time) */
    struct tm day = {.tm_year = tm.tm_year, .tm_mon = tm.tm_mon, .tm_mday = tm.tm_mday};
    (void)timegm(&day);
    if (day.tm_mday != tm.tm_mday || day.tm_mon != tm.tm_mon)
        return false;
    *out = timegm(&tm) - sign * (oh * 3600 + om * 60);
    return true;
}
