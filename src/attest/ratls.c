/* ratls.c - attested TLS: tagged evidence in a certificate extension and in
 * the TLS 1.3 fresh-evidence exchange (ratls.h).
 *
 * The outer structure (tag, array of two byte strings) is read by hand: it
 * is fixed, and slices into the caller's buffer are what the verifier needs
 * (the claims' exact bytes are hashed into the report data). Only the
 * claims map goes through libcbor, after attest_cbor_decode() bounded it. */
#include "attest/ratls.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "attest/nitro.h"
#include "attest/sim.h"
#include "attest/snp.h"
#include "attest/tdx.h"
#include "attest/trust.h"

#define CLAIM_PUBKEY_HASH "pubkey-hash"
#define CLAIM_NONCE "nonce"
/* [1 (sha-256 in IANA's Named Information registry), bstr .size 32] */
static const uint8_t hash_prefix[] = {0x82, 0x01, 0x58, 0x20};
/* map head, "pubkey-hash", its value, "nonce", its value (heads included) */
#define CLAIMS_MAX (1 + 12 + 2 + sizeof(hash_prefix) + RATLS_HASH_LEN + 6 + 2 + RATLS_NONCE_MAX)
#define TDX_TEE_TYPE 0x81

/* ---- encoding and parsing */

/* Reads the head of a definite CBOR item at p[0..len): its major type and
 * argument. Returns the head's length, or 0 when it is not one. */
static size_t
cbor_head_read(const uint8_t *p, size_t len, uint8_t *major, uint64_t *arg)
{
    uint8_t info;
    size_t n;

    if (len == 0)
        return 0;
    *major = p[0] >> 5;
    info = p[0] & 31;
    if (info < 24) {
        *arg = info;
        return 1;
    }
    if (info > 27 || len - 1 < (n = (size_t)1 << (info - 24)))
        return 0;
    *arg = 0;
    for (size_t i = 0; i < n; i++)
        *arg = *arg << 8 | p[1 + i];
    return 1 + n;
}

/* A definite byte string at p[0..len) into *out (a slice); returns its
 * whole length, or 0. */
static size_t
cbor_bytes_read(const uint8_t *p, size_t len, const uint8_t **out, size_t *out_len)
{
    uint8_t major;
    uint64_t arg;
    size_t h = cbor_head_read(p, len, &major, &arg);

    if (h == 0 || major != 2 || arg > len - h)
        return 0;
    *out = p + h;
    *out_len = (size_t)arg;
    return h + (size_t)arg;
}

/* Writes a head of major type major and n bytes of p after it. */
static size_t
cbor_put(uint8_t *out, uint8_t major, const void *p, size_t n)
{
    size_t h = attest_cbor_head(out, major, n);

    memcpy(out + h, p, n);
    return h + n;
}

static enum attest_result
parse_claims(struct ratls_tagged *t, char *err)
{
    cbor_item_t *m = attest_cbor_decode(t->claims, t->claims_len, "ratls claims", err);
    enum attest_result r = ATTEST_MALFORMED;

    if (m == NULL)
        return ATTEST_MALFORMED;
    if (!cbor_isa_map(m)) {
        attest_fail(err, r, "ratls claims: not a map");
        goto out;
    }
    struct cbor_pair *pairs = cbor_map_handle(m);
    for (size_t i = 0; i < cbor_map_size(m); i++) {
        const cbor_item_t *v = pairs[i].value;
        size_t n = attest_cbor_is_bytes(v) ? cbor_bytestring_length(v) : 0;
        const uint8_t *b = n > 0 ? cbor_bytestring_handle(v) : NULL;
        if (attest_cbor_is_text(pairs[i].key, CLAIM_PUBKEY_HASH)) {
            if (t->has_pubkey_hash || n != sizeof(hash_prefix) + RATLS_HASH_LEN ||
                memcmp(b, hash_prefix, sizeof(hash_prefix)) != 0) {
                attest_fail(err, r, "ratls claims: pubkey-hash is not one [1 (sha-256), 32 bytes]");
                goto out;
            }
            memcpy(t->pubkey_hash, b + sizeof(hash_prefix), RATLS_HASH_LEN);
            t->has_pubkey_hash = true;
        } else if (attest_cbor_is_text(pairs[i].key, CLAIM_NONCE)) {
            if (t->has_nonce || n < RATLS_NONCE_MIN || n > RATLS_NONCE_MAX) {
                attest_fail(err, r, "ratls claims: nonce is not one byte string of %d to %d bytes",
                            RATLS_NONCE_MIN, RATLS_NONCE_MAX);
                goto out;
            }
            memcpy(t->nonce, b, n);
            t->nonce_len = n;
            t->has_nonce = true;
        }
    }
    r = ATTEST_OK;
out:
    cbor_decref(&m);
    return r;
}

enum attest_result
ratls_parse(const uint8_t *p, size_t len, struct ratls_tagged *t, char *err)
{
    uint8_t major;
    uint64_t arg;
    size_t n, off;

    memset(t, 0, sizeof(*t));
    if (len > RATLS_EXT_MAX)
        return attest_fail(err, ATTEST_MALFORMED,
                           "ratls: tagged evidence of %zu bytes (at most %d)", len, RATLS_EXT_MAX);
    if ((n = cbor_head_read(p, len, &major, &arg)) == 0 || major != 6)
        return attest_fail(err, ATTEST_MALFORMED, "ratls: the evidence is not a CBOR tag");
    if (arg != RATLS_TAG && (arg < RATLS_TAG_CF_BASE || arg > RATLS_TAG_CF_LAST))
        return attest_fail(err, ATTEST_MALFORMED, "ratls: CBOR tag %llu is not tagged evidence",
                           (unsigned long long)arg);
    t->tag = arg;
    off = n;
    if ((n = cbor_head_read(p + off, len - off, &major, &arg)) == 0 || major != 4 || arg != 2)
        return attest_fail(err, ATTEST_MALFORMED, "ratls: not a definite array of two");
    off += n;
    if ((n = cbor_bytes_read(p + off, len - off, &t->evidence, &t->evidence_len)) == 0)
        return attest_fail(err, ATTEST_MALFORMED, "ratls: the evidence is not a byte string");
    off += n;
    if ((n = cbor_bytes_read(p + off, len - off, &t->claims, &t->claims_len)) == 0)
        return attest_fail(err, ATTEST_MALFORMED, "ratls: the claims are not a byte string");
    off += n;
    if (off != len)
        return attest_fail(err, ATTEST_MALFORMED, "ratls: %zu bytes after the tagged evidence",
                           len - off);
    return parse_claims(t, err);
}

enum ratls_format
ratls_format(const uint8_t *ev, size_t len)
{
    /* COSE_Sign1: an array of four, untagged or with tag 18 */
    if (len >= 2 && (ev[0] == 0x84 || (ev[0] == 0xd2 && ev[1] == 0x84)))
        return RATLS_FMT_NITRO;
    /* SEV-SNP: a fixed-size report starting with its version (2 or later, LE) */
    if (len == SNP_REPORT_LEN && ev[0] >= 2 && ev[1] == 0 && ev[2] == 0 && ev[3] == 0)
        return RATLS_FMT_SNP;
    /* Intel quotes: version (LE16), attestation key type, TEE type (LE32) */
    if (len >= 8) {
        unsigned version = ev[0] | (unsigned)ev[1] << 8;
        uint32_t tee = ev[4] | (uint32_t)ev[5] << 8 | (uint32_t)ev[6] << 16 | (uint32_t)ev[7] << 24;
        if ((version == 4 || version == 5) && tee == TDX_TEE_TYPE)
            return RATLS_FMT_TDX;
        if ((version == 3 || version == 4) && tee == 0)
            return RATLS_FMT_SGX;
    }
    return RATLS_FMT_UNKNOWN;
}

/* ---- keys, certificates, times */

static void
sha256(const uint8_t *p, size_t len, uint8_t out[RATLS_HASH_LEN])
{
    EVP_Digest(p, len, out, NULL, EVP_sha256(), NULL);
}

int
ratls_spki_hash(X509 *cert, uint8_t out[RATLS_HASH_LEN])
{
    uint8_t *der = NULL;
    int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);

    if (n <= 0)
        return -EINVAL;
    sha256(der, (size_t)n, out);
    OPENSSL_free(der);
    return 0;
}

int
ratls_cert_extension(X509 *cert, const uint8_t **p, size_t *len)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(RATLS_OID, 1);
    int i = obj != NULL ? X509_get_ext_by_OBJ(cert, obj, -1) : -1;
    int again = i >= 0 ? X509_get_ext_by_OBJ(cert, obj, i) : -1;

    ASN1_OBJECT_free(obj);
    if (i < 0)
        return -ENOENT;
    if (again >= 0)
        return -EINVAL;
    ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(X509_get_ext(cert, i));
    *p = ASN1_STRING_get0_data(os);
    *len = (size_t)ASN1_STRING_length(os);
    return 0;
}

static time_t
asn1_time(const ASN1_TIME *t)
{
    struct tm tm;

    return t != NULL && ASN1_TIME_to_tm(t, &tm) == 1 ? timegm(&tm) : 0;
}

time_t
ratls_cert_expires(X509 *cert)
{
    return asn1_time(X509_get0_notAfter(cert));
}

/* The notAfter of the certificate that signed a Nitro (or sim) document;
 * 0 when the document does not show one. */
static time_t
nitro_not_after(const uint8_t *doc, size_t len)
{
    char err[ATTEST_ERR_MAX];
    cbor_item_t *cose = attest_cbor_decode(doc, len, "document", err), *arr = NULL, *pl = NULL;
    time_t t = 0;

    if (cose == NULL)
        return 0;
    arr = cbor_isa_tag(cose) ? cbor_tag_item(cose) : cbor_incref(cose);
    if (!cbor_isa_array(arr) || cbor_array_size(arr) != 4 ||
        !attest_cbor_is_bytes(cbor_array_handle(arr)[2]))
        goto out;
    cbor_item_t *payload = cbor_array_handle(arr)[2];
    if ((pl = attest_cbor_decode(cbor_bytestring_handle(payload), cbor_bytestring_length(payload),
                                 "payload", err)) == NULL ||
        !cbor_isa_map(pl))
        goto out;
    struct cbor_pair *pairs = cbor_map_handle(pl);
    for (size_t i = 0; i < cbor_map_size(pl); i++) {
        if (!attest_cbor_is_text(pairs[i].key, "certificate") ||
            !attest_cbor_is_bytes(pairs[i].value))
            continue;
        X509 *leaf = attest_x509_der(cbor_bytestring_handle(pairs[i].value),
                                     cbor_bytestring_length(pairs[i].value));
        t = leaf != NULL ? ratls_cert_expires(leaf) : 0;
        X509_free(leaf);
        break;
    }
out:
    if (pl != NULL)
        cbor_decref(&pl);
    cbor_decref(&arr);
    cbor_decref(&cose);
    return t;
}

/* ---- issuing */

/* Tagged evidence from src for the key whose SPKI hashes to hash, with the
 * nonce when nonce_len > 0: *out (malloc'd, the caller frees it) of *len
 * bytes; *sim and *not_after (when not NULL) say whether it is sim and when
 * its signing certificate expires (0: unknown). Returns 0 or -errno with a
 * one-line reason in err. */
static int
make_evidence(const struct ratls_source *src, const uint8_t hash[RATLS_HASH_LEN],
              const uint8_t *nonce, size_t nonce_len, uint8_t **out, size_t *len, bool *sim,
              time_t *not_after, char *err)
{
    uint8_t claims[CLAIMS_MAX], rd[RATLS_HASH_LEN], pk[sizeof(hash_prefix) + RATLS_HASH_LEN];
    struct attest_evidence ev = {0};
    size_t clen = attest_cbor_head(claims, 5, nonce_len > 0 ? 2 : 1);
    int e;

    memcpy(pk, hash_prefix, sizeof(hash_prefix));
    memcpy(pk + sizeof(hash_prefix), hash, RATLS_HASH_LEN);
    clen += cbor_put(claims + clen, 3, CLAIM_PUBKEY_HASH, strlen(CLAIM_PUBKEY_HASH));
    clen += cbor_put(claims + clen, 2, pk, sizeof(pk));
    if (nonce_len > 0) {
        clen += cbor_put(claims + clen, 3, CLAIM_NONCE, strlen(CLAIM_NONCE));
        clen += cbor_put(claims + clen, 2, nonce, nonce_len);
    }
    sha256(claims, clen, rd);
    struct attest_request req = {.report_data = rd, .report_data_len = sizeof(rd)};
    if ((e = attest_provider_get(src->provider, &src->conf, &req, &ev, err)) != 0)
        return e;
    /* tag, array head, two byte-string heads of at most 9 bytes each */
    uint8_t *b = malloc(9 + 1 + 9 + ev.len + 9 + clen);
    if (b == NULL) {
        attest_evidence_free(&ev);
        return attest_provider_fail(err, -ENOMEM, "ratls: out of memory");
    }
    *len = attest_cbor_head(b, 6, RATLS_TAG);
    *len += attest_cbor_head(b + *len, 4, 2);
    *len += cbor_put(b + *len, 2, ev.data, ev.len);
    *len += cbor_put(b + *len, 2, claims, clen);
    *out = b;
    if (sim != NULL)
        *sim = ev.sim;
    if (not_after != NULL)
        *not_after = ev.kind == ATTEST_KIND_NITRO ? nitro_not_after(ev.data, ev.len) : 0;
    attest_evidence_free(&ev);
    return 0;
}

int
ratls_issue(const struct ratls_source *src, time_t now, unsigned validity_s, EVP_PKEY **key,
            X509 **cert, char *err)
{
    uint8_t hash[RATLS_HASH_LEN], *der = NULL, *tagged = NULL;
    size_t len = 0;
    time_t until = now + (time_t)validity_s, ev_until = 0;
    bool sim = false;
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = NULL;
    ASN1_OBJECT *obj = OBJ_txt2obj(RATLS_OID, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext = NULL;
    int n, e = -ENOMEM;

    *key = NULL;
    *cert = NULL;
    if (k == NULL || obj == NULL || os == NULL || (n = i2d_PUBKEY(k, &der)) <= 0) {
        attest_provider_fail(err, e, "ratls: cannot make a P-256 key");
        goto fail;
    }
    sha256(der, (size_t)n, hash);
    if ((e = make_evidence(src, hash, NULL, 0, &tagged, &len, &sim, &ev_until, err)) != 0)
        goto fail;
    if (ev_until != 0 && ev_until < until)
        until = ev_until;
    if (until <= now) {
        e = attest_provider_fail(err, -EINVAL, "ratls: the evidence has expired");
        goto fail;
    }
    e = -ENOMEM;
    x = attest_sim_cert(sim ? "airlock ratls (sim evidence)" : "airlock ratls", k, NULL, NULL,
                        now - 60, until, false);
    if (x == NULL || ASN1_OCTET_STRING_set(os, tagged, (int)len) != 1 ||
        (ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os)) == NULL ||
        X509_add_ext(x, ext, -1) != 1 || X509_sign(x, k, EVP_sha256()) <= 0) {
        attest_provider_fail(err, e, "ratls: cannot make the certificate");
        goto fail;
    }
    *key = k;
    *cert = x;
    k = NULL;
    x = NULL;
    e = 0;
fail:
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(obj);
    OPENSSL_free(der);
    free(tagged);
    X509_free(x);
    EVP_PKEY_free(k);
    return e;
}

/* ---- verifying */

/* Can evidence of format f be held to pol? Only when it is of pol's type,
 * and a policy that pins what the format does not carry must not pass by
 * being ignored: the fields of another kind (attest_policy_fits()), and
 * user_data, which RA-TLS evidence spends on the hash of its claims. */
static enum attest_result
format_fits(const struct attest_policy *pol, enum ratls_format f, char *err)
{
    enum attest_kind kind = f == RATLS_FMT_NITRO ? ATTEST_KIND_NITRO : ATTEST_KIND_TDX;

    switch (f) {
    case RATLS_FMT_NITRO:
    case RATLS_FMT_TDX:
        /* the evidence chose its verifier by its format: a policy that pins
         * nothing of another type's would be met by any of its evidence */
        if (kind != pol->kind)
            return attest_fail(err, ATTEST_POLICY, "ratls: %s evidence, the policy is for %s",
                               attest_kind_name(kind), attest_kind_name(pol->kind));
        if (pol->user_data.present)
            return attest_fail(err, ATTEST_POLICY,
                               "ratls: the policy pins user data, and RA-TLS evidence carries the "
                               "hash of its claims there (refused, not ignored)");
        return attest_policy_fits(pol, kind, err);
    case RATLS_FMT_SNP:
        return attest_fail(err, ATTEST_UNTRUSTED,
                           "ratls: SEV-SNP evidence needs its VCEK, which the RA-TLS evidence "
                           "does not carry: not supported");
    case RATLS_FMT_SGX:
        return attest_fail(err, ATTEST_UNTRUSTED,
                           "ratls: SGX quote: airlock has no SGX verifier, not verified");
    case RATLS_FMT_UNKNOWN:
        break;
    }
    return attest_fail(err, ATTEST_MALFORMED, "ratls: evidence of an unknown format");
}

/* RFC 5280: a certificate with a critical extension its user does not
 * process is refused. OpenSSL's chain check would do it; here nothing else
 * reads the certificate (its key is trusted through the evidence), so the
 * extensions OpenSSL knows and the RA-TLS one are the ones processed. */
static enum attest_result
check_critical(X509 *cert, char *err)
{
    ASN1_OBJECT *ratls = OBJ_txt2obj(RATLS_OID, 1);
    enum attest_result r = ATTEST_OK;
    char oid[80];

    if (ratls == NULL)
        return attest_fail(err, ATTEST_MALFORMED, "ratls: out of memory");
    for (int i = 0; i < X509_get_ext_count(cert) && r == ATTEST_OK; i++) {
        X509_EXTENSION *e = X509_get_ext(cert, i);
        ASN1_OBJECT *o = X509_EXTENSION_get_object(e);
        if (X509_EXTENSION_get_critical(e) == 0 || X509_supported_extension(e) ||
            OBJ_cmp(o, ratls) == 0)
            continue;
        OBJ_obj2txt(oid, sizeof(oid), o, 1);
        r = attest_fail(err, ATTEST_UNTRUSTED,
                        "ratls: the certificate has a critical extension %s, which is not "
                        "processed",
                        oid);
    }
    ASN1_OBJECT_free(ratls);
    return r;
}

/* Tagged evidence p[0..len) bound to cert's key (and to nonce when not
 * NULL), verified under pol. */
static enum attest_result
verify_tagged(const uint8_t *p, size_t len, X509 *cert, const struct attest_policy *pol,
              const uint8_t *nonce, size_t nonce_len, struct attest_claims *claims, char *err)
{
    struct ratls_tagged t;
    uint8_t hash[RATLS_HASH_LEN];
    struct attest_policy *bound;
    enum attest_result r;

    memset(claims, 0, sizeof(*claims));
    if ((r = check_critical(cert, err)) != ATTEST_OK)
        return r;
    if ((r = ratls_parse(p, len, &t, err)) != ATTEST_OK)
        return r;
    if (!t.has_pubkey_hash)
        return attest_fail(err, ATTEST_MALFORMED, "ratls: the claims have no pubkey-hash");
    if (ratls_spki_hash(cert, hash) != 0)
        return attest_fail(err, ATTEST_MALFORMED, "ratls: the certificate's key does not encode");
    if (memcmp(hash, t.pubkey_hash, sizeof(hash)) != 0)
        return attest_fail(err, ATTEST_UNTRUSTED,
                           "ratls: the evidence is bound to another key than the certificate's");
    if (nonce != NULL &&
        (!t.has_nonce || t.nonce_len != nonce_len || memcmp(t.nonce, nonce, nonce_len) != 0))
        return attest_fail(err, ATTEST_UNTRUSTED, "ratls: the evidence is not for our nonce");
    enum ratls_format f = ratls_format(t.evidence, t.evidence_len);
    if ((r = format_fits(pol, f, err)) != ATTEST_OK)
        return r;
    if ((bound = malloc(sizeof(*bound))) == NULL)
        return attest_fail(err, ATTEST_MALFORMED, "ratls: out of memory");
    /* the report data must be the hash of the claims, whatever pol says */
    *bound = *pol;
    bound->user_data.present = true;
    bound->user_data.len = RATLS_HASH_LEN;
    sha256(t.claims, t.claims_len, bound->user_data.data);
    if (f == RATLS_FMT_NITRO)
        r = attest_nitro_verify(t.evidence, t.evidence_len, bound, claims, err);
    else
        r = attest_tdx_verify(t.evidence, t.evidence_len, bound, claims, err);
    free(bound);
    /* the chain error alone would not tell a person why */
    if (r == ATTEST_UNTRUSTED && f == RATLS_FMT_NITRO && pol->sim_root == NULL &&
        strncmp(claims->module_id, "sim-", 4) == 0)
        r = attest_fail(err, r, "ratls: sim evidence, and no sim root is trusted");
    return r;
}

enum attest_result
ratls_verify_cert(X509 *cert, const struct attest_policy *pol, const uint8_t *nonce,
                  size_t nonce_len, struct attest_claims *claims, char *err)
{
    const uint8_t *p;
    size_t len;
    int e = ratls_cert_extension(cert, &p, &len);

    memset(claims, 0, sizeof(*claims));
    if (e == -ENOENT)
        return attest_fail(err, ATTEST_UNTRUSTED,
                           "ratls: no evidence: the certificate has no extension " RATLS_OID);
    if (e != 0)
        return attest_fail(err, ATTEST_MALFORMED,
                           "ratls: the certificate has several " RATLS_OID " extensions");
    if (!attest_time_within(X509_get0_notBefore(cert), X509_get0_notAfter(cert), pol->now))
        return attest_fail(err, ATTEST_UNTRUSTED,
                           "ratls: the certificate is not valid at the given time");
    return verify_tagged(p, len, cert, pol, nonce, nonce_len, claims, err);
}

/* ---- the fresh-evidence TLS extension */

/* What one SSL holds of the exchange (SSL ex_data, freed with the SSL). */
struct ratls_conn {
    uint8_t nonce[RATLS_NONCE_MAX]; /* client: asked for; server: received */
    size_t nonce_len;               /* 0: none */
    uint8_t *evidence;              /* client: the server's fresh tagged evidence */
    size_t evidence_len;
    char err[ATTEST_ERR_MAX]; /* server: why no evidence was made */
};

static int conn_idx = -1;
static pthread_once_t conn_once = PTHREAD_ONCE_INIT;

static void
conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    struct ratls_conn *c = ptr;

    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (c != NULL)
        free(c->evidence);
    free(c);
}

static void
conn_index(void)
{
    conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free);
}

static struct ratls_conn *
conn_get(SSL *ssl, bool create)
{
    struct ratls_conn *c;

    pthread_once(&conn_once, conn_index);
    if (conn_idx < 0)
        return NULL;
    c = SSL_get_ex_data(ssl, conn_idx);
    if (c == NULL && create && (c = calloc(1, sizeof(*c))) != NULL &&
        SSL_set_ex_data(ssl, conn_idx, c) != 1) {
        free(c);
        c = NULL;
    }
    return c;
}

/* Client: the nonce in the ClientHello. Server: fresh evidence for the
 * leaf certificate x, answering a nonce. The client's own Certificate
 * (mutual TLS) carries nothing. */
static int
ext_add(SSL *ssl, unsigned int type, unsigned int context, const unsigned char **out,
        size_t *outlen, X509 *x, size_t chainidx, int *al, void *arg)
{
    const struct ratls_source *src = arg;
    struct ratls_conn *c = conn_get(ssl, false);
    uint8_t hash[RATLS_HASH_LEN], *ev = NULL;
    size_t len = 0;

    (void)type;
    if (c == NULL || c->nonce_len == 0)
        return 0;
    if (context == SSL_EXT_CLIENT_HELLO && !SSL_is_server(ssl)) {
        *out = c->nonce;
        *outlen = c->nonce_len;
        return 1;
    }
    if (context != SSL_EXT_TLS1_3_CERTIFICATE || !SSL_is_server(ssl) || src == NULL ||
        chainidx != 0 || x == NULL)
        return 0;
    c->err[0] = '\0';
    if (ratls_spki_hash(x, hash) != 0) {
        snprintf(c->err, sizeof(c->err), "ratls: the certificate's key does not encode");
    } else if (make_evidence(src, hash, c->nonce, c->nonce_len, &ev, &len, NULL, NULL, c->err) ==
               0) {
        *out = ev;
        *outlen = len;
        return 1;
    }
    *al = SSL_AD_INTERNAL_ERROR;
    return -1;
}

static void
ext_free(SSL *ssl, unsigned int type, unsigned int context, const unsigned char *out, void *arg)
{
    (void)ssl;
    (void)type;
    (void)arg;
    if (context == SSL_EXT_TLS1_3_CERTIFICATE) /* the client's nonce is not malloc'd */
        free((void *)out);
}

/* Server: the client's nonce. Client: the server's fresh evidence in the
 * leaf's CertificateEntry (OpenSSL refuses it unless we asked). */
static int
ext_parse(SSL *ssl, unsigned int type, unsigned int context, const unsigned char *in, size_t inlen,
          X509 *x, size_t chainidx, int *al, void *arg)
{
    struct ratls_conn *c;

    (void)type;
    (void)x;
    (void)arg;
    if (SSL_is_server(ssl)) {
        if (context != SSL_EXT_CLIENT_HELLO)
            return 1;
        if (inlen < RATLS_NONCE_MIN || inlen > RATLS_NONCE_MAX) {
            *al = SSL_AD_ILLEGAL_PARAMETER;
            return 0;
        }
        if ((c = conn_get(ssl, true)) == NULL) {
            *al = SSL_AD_INTERNAL_ERROR;
            return 0;
        }
        memcpy(c->nonce, in, inlen);
        c->nonce_len = inlen;
        return 1;
    }
    if (context != SSL_EXT_TLS1_3_CERTIFICATE || chainidx != 0)
        return 1;
    if ((c = conn_get(ssl, false)) == NULL || c->evidence != NULL || inlen == 0 ||
        inlen > RATLS_EXT_MAX || (c->evidence = malloc(inlen)) == NULL) {
        *al = SSL_AD_ILLEGAL_PARAMETER;
        return 0;
    }
    memcpy(c->evidence, in, inlen);
    c->evidence_len = inlen;
    return 1;
}

static int
ctx_register(SSL_CTX *ctx, const struct ratls_source *src)
{
    pthread_once(&conn_once, conn_index);
    if (conn_idx < 0)
        return -ENOMEM;
    return SSL_CTX_add_custom_ext(ctx, RATLS_TLS_EXT,
                                  SSL_EXT_TLS_ONLY | SSL_EXT_TLS1_3_ONLY | SSL_EXT_CLIENT_HELLO |
                                      SSL_EXT_TLS1_3_CERTIFICATE,
                                  ext_add, ext_free, (void *)src, ext_parse, NULL) == 1
               ? 0
               : -EINVAL;
}

int
ratls_ctx_server(SSL_CTX *ctx, const struct ratls_source *src)
{
    return src != NULL ? ctx_register(ctx, src) : -EINVAL;
}

int
ratls_ctx_client(SSL_CTX *ctx)
{
    return ctx_register(ctx, NULL);
}

int
ratls_ssl_request_fresh(SSL *ssl, const uint8_t *nonce, size_t len)
{
    struct ratls_conn *c;

    if (len < RATLS_NONCE_MIN || len > RATLS_NONCE_MAX)
        return -EINVAL;
    if ((c = conn_get(ssl, true)) == NULL)
        return -ENOMEM;
    memcpy(c->nonce, nonce, len);
    c->nonce_len = len;
    return 0;
}

enum attest_result
ratls_ssl_verify(SSL *ssl, const struct attest_policy *pol, struct attest_claims *claims, char *err)
{
    X509 *peer = SSL_get0_peer_certificate(ssl);
    struct ratls_conn *c = conn_get(ssl, false);

    memset(claims, 0, sizeof(*claims));
    if (peer == NULL)
        return attest_fail(err, ATTEST_UNTRUSTED, "ratls: the peer presented no certificate");
    if (c == NULL || c->nonce_len == 0)
        return ratls_verify_cert(peer, pol, NULL, 0, claims, err);
    if (c->evidence == NULL)
        return attest_fail(err, ATTEST_UNTRUSTED,
                           "ratls: no evidence: the server sent no fresh evidence for our nonce");
    return verify_tagged(c->evidence, c->evidence_len, peer, pol, c->nonce, c->nonce_len, claims,
                         err);
}

const char *
ratls_ssl_error(SSL *ssl)
{
    struct ratls_conn *c = conn_get(ssl, false);

    return c != NULL && c->err[0] != '\0' ? c->err : NULL;
}
