/* nitro.c - verification of AWS Nitro Enclaves attestation documents.
 *
 * A document is a COSE_Sign1 (RFC 8152) [protected, unprotected, payload,
 * signature] whose payload is a CBOR map (definite length from older NSM
 * versions, indefinite from newer ones). The signature covers the
 * Sig_structure ["Signature1", protected, h'', payload] built here from the
 * protected and payload byte strings exactly as received: re-encoding the
 * decoded payload would change an indefinite-length map into a definite one
 * and break the signature. Decoding is strict: every field's type and size is
 * checked before anything is copied into the claims. */
#include "attest/nitro.h"

#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <openssl/evp.h>

#include "attest/trust.h"

#define COSE_TAG_SIGN1 18
#define COSE_HDR_ALG 1
#define COSE_HDR_CRIT 2
#define COSE_ALG_ES384 (-35)
#define ES384_HALF 48 /* bytes of r and of s */
#define SHA384_LEN 48
#define CBOR_DEPTH_MAX 8 /* the document nests 4 deep (tag, array, map, map) */

/* clang-format off */
const char attest_nitro_aws_root_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTEL\n"
    "MAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYD\n"
    "VQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4\n"
    "MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQL\n"
    "DANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEG\n"
    "BSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb\n"
    "48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZE\n"
    "h8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkF\n"
    "R+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYC\n"
    "MQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPW\n"
    "rfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6N\n"
    "IwLz3/Y=\n"
    "-----END CERTIFICATE-----\n";
/* clang-format on */

/* What the payload holds besides the claims: the certificates (slices into
 * the decoded payload item, which outlives their use). */
struct nitro_certs {
    cbor_item_t *leaf; /* byte string */
    cbor_item_t *bundle[NITRO_CABUNDLE_MAX];
    size_t nbundle;
};

bool
attest_cbor_is_bytes(const cbor_item_t *it)
{
    return cbor_isa_bytestring(it) && cbor_bytestring_is_definite(it);
}

bool
attest_cbor_is_text(const cbor_item_t *it, const char *s)
{
    size_t n = strlen(s);

    return cbor_isa_string(it) && cbor_string_is_definite(it) && cbor_string_length(it) == n &&
           memcmp(cbor_string_handle(it), s, n) == 0;
}

/* The length of the well-formed CBOR item at the start of p[0..len), every
 * declared length within the bytes present and nesting at most depth deep,
 * or 0. libcbor allocates a container of the size its head declares before
 * reading the entries, so a 5-byte input could ask for gigabytes: nothing
 * reaches cbor_load() before this walk has bounded it by the input. */
static size_t
cbor_check(const uint8_t *p, size_t len, unsigned depth)
{
    uint8_t major, info;
    uint64_t arg;
    size_t off = 1, n;

    if (len == 0 || depth == 0)
        return 0;
    major = p[0] >> 5;
    info = p[0] & 31;
    arg = info;
    if (info >= 24 && info <= 27) {
        n = (size_t)1 << (info - 24);
        if (len - 1 < n)
            return 0;
        arg = 0;
        for (size_t i = 0; i < n; i++)
            arg = arg << 8 | p[1 + i];
        off += n;
    } else if (info >= 28 && info <= 30) {
        return 0;
    } else if (info == 31) {
        /* Indefinite-length arrays and maps (newer NSM payloads); byte and
         * text strings must be definite, as the verifier requires anyway. */
        if (major != 4 && major != 5)
            return 0;
        for (size_t items = 0;; items++) {
            if (off >= len)
                return 0;
            if (p[off] == 0xff)
                return major == 5 && items % 2 != 0 ? 0 : off + 1;
            if ((n = cbor_check(p + off, len - off, depth - 1)) == 0)
                return 0;
            off += n;
        }
    }
    switch (major) {
    case 0: /* unsigned */
    case 1: /* negative */
    case 7: /* simple values and floats: the head is all */
        return off;
    case 2: /* byte string */
    case 3: /* text string */
        return arg <= len - off ? off + (size_t)arg : 0;
    case 4: /* array */
    case 5: /* map */
        /* each entry takes at least one byte: this bounds the loop */
        if (arg > len - off)
            return 0;
        for (uint64_t i = 0; i < (major == 5 ? 2 * arg : arg); i++) {
            if ((n = cbor_check(p + off, len - off, depth - 1)) == 0)
                return 0;
            off += n;
        }
        return off;
    default: /* 6: tag */
        return (n = cbor_check(p + off, len - off, depth - 1)) != 0 ? off + n : 0;
    }
}

cbor_item_t *
attest_cbor_decode(const uint8_t *p, size_t len, const char *what, char *err)
{
    struct cbor_load_result res;
    size_t n = cbor_check(p, len, CBOR_DEPTH_MAX);

    if (n == 0) {
        attest_fail(err, ATTEST_MALFORMED, "%s: not well-formed CBOR", what);
        return NULL;
    }
    if (n != len) {
        attest_fail(err, ATTEST_MALFORMED, "%s: %zu bytes after the CBOR item", what, len - n);
        return NULL;
    }
    cbor_item_t *it = cbor_load(p, len, &res);

    if (it == NULL) {
        attest_fail(err, ATTEST_MALFORMED, "%s: not CBOR (error %d at byte %zu)", what,
                    (int)res.error.code, res.error.position);
        return NULL;
    }
    if (res.read != len) {
        cbor_decref(&it);
        attest_fail(err, ATTEST_MALFORMED, "%s: %zu bytes after the CBOR item", what,
                    len - res.read);
        return NULL;
    }
    return it;
}

/* A null or absent optional byte string stays !present. */
static enum attest_result
get_blob(const cbor_item_t *v, const char *key, struct attest_blob *b, char *err)
{
    if (cbor_is_null(v))
        return ATTEST_OK;
    if (!attest_cbor_is_bytes(v))
        return attest_fail(err, ATTEST_MALFORMED, "payload: %s is not a byte string or null", key);
    if (cbor_bytestring_length(v) > ATTEST_BLOB_MAX)
        return attest_fail(err, ATTEST_MALFORMED, "payload: %s is %zu bytes, at most %d", key,
                           cbor_bytestring_length(v), ATTEST_BLOB_MAX);
    b->present = true;
    b->len = cbor_bytestring_length(v);
    memcpy(b->data, cbor_bytestring_handle(v), b->len);
    return ATTEST_OK;
}

static enum attest_result
get_pcrs(const cbor_item_t *v, struct attest_claims *c, char *err)
{
    uint32_t seen = 0;

    if (!cbor_isa_map(v))
        return attest_fail(err, ATTEST_MALFORMED, "payload: pcrs is not a map");
    if (cbor_map_size(v) == 0 || cbor_map_size(v) > ATTEST_PCR_MAX)
        return attest_fail(err, ATTEST_MALFORMED, "payload: %zu pcrs, 1 to %d expected",
                           cbor_map_size(v), ATTEST_PCR_MAX);
    struct cbor_pair *pairs = cbor_map_handle(v);
    for (size_t i = 0; i < cbor_map_size(v); i++) {
        const cbor_item_t *k = pairs[i].key, *val = pairs[i].value;
        if (!cbor_isa_uint(k) || cbor_get_int(k) >= ATTEST_PCR_MAX)
            return attest_fail(err, ATTEST_MALFORMED, "payload: a PCR index is not 0 to %d",
                               ATTEST_PCR_MAX - 1);
        unsigned idx = (unsigned)cbor_get_int(k);
        if (seen & (1u << idx))
            return attest_fail(err, ATTEST_MALFORMED, "payload: PCR %u appears twice", idx);
        seen |= 1u << idx;
        /* The digest is SHA384 (checked by the caller), so is every PCR. */
        if (!attest_cbor_is_bytes(val) || cbor_bytestring_length(val) != SHA384_LEN)
            return attest_fail(err, ATTEST_MALFORMED,
                               "payload: PCR %u is not a byte string of %d bytes", idx, SHA384_LEN);
        struct attest_pcr *p = &c->pcrs[c->npcrs++];
        p->index = idx;
        p->len = SHA384_LEN;
        memcpy(p->value, cbor_bytestring_handle(val), SHA384_LEN);
    }
    return ATTEST_OK;
}

static enum attest_result
get_cabundle(const cbor_item_t *v, struct nitro_certs *certs, char *err)
{
    if (!cbor_isa_array(v))
        return attest_fail(err, ATTEST_MALFORMED, "payload: cabundle is not an array");
    if (cbor_array_size(v) == 0 || cbor_array_size(v) > NITRO_CABUNDLE_MAX)
        return attest_fail(err, ATTEST_MALFORMED, "payload: cabundle has %zu entries, 1 to %d",
                           cbor_array_size(v), NITRO_CABUNDLE_MAX);
    cbor_item_t **items = cbor_array_handle(v);
    for (size_t i = 0; i < cbor_array_size(v); i++) {
        if (!attest_cbor_is_bytes(items[i]) || cbor_bytestring_length(items[i]) == 0)
            return attest_fail(err, ATTEST_MALFORMED,
                               "payload: cabundle[%zu] is not a non-empty byte string", i);
        certs->bundle[i] = items[i];
    }
    certs->nbundle = cbor_array_size(v);
    return ATTEST_OK;
}

enum payload_key {
    KEY_MODULE_ID,
    KEY_DIGEST,
    KEY_TIMESTAMP,
    KEY_PCRS,
    KEY_CERTIFICATE,
    KEY_CABUNDLE,
    KEY_PUBLIC_KEY,
    KEY_USER_DATA,
    KEY_NONCE,
    KEY_COUNT,
};

static const char *const payload_keys[KEY_COUNT] = {
    "module_id", "digest",     "timestamp", "pcrs",  "certificate",
    "cabundle",  "public_key", "user_data", "nonce",
};

static enum attest_result
get_field(enum payload_key key, const cbor_item_t *v, struct attest_claims *c,
          struct nitro_certs *certs, char *err)
{
    switch (key) {
    case KEY_MODULE_ID:
        if (!cbor_isa_string(v) || !cbor_string_is_definite(v) || cbor_string_length(v) == 0 ||
            cbor_string_length(v) > ATTEST_MODULE_ID_MAX ||
            memchr(cbor_string_handle(v), '\0', cbor_string_length(v)) != NULL)
            return attest_fail(err, ATTEST_MALFORMED,
                               "payload: module_id is not a text of 1 to %d bytes",
                               ATTEST_MODULE_ID_MAX);
        memcpy(c->module_id, cbor_string_handle(v), cbor_string_length(v));
        c->module_id[cbor_string_length(v)] = '\0';
        return ATTEST_OK;
    case KEY_DIGEST:
        if (!attest_cbor_is_text(v, "SHA384"))
            return attest_fail(err, ATTEST_MALFORMED, "payload: digest is not \"SHA384\"");
        strcpy(c->digest, "SHA384");
        return ATTEST_OK;
    case KEY_TIMESTAMP:
        if (!cbor_isa_uint(v) || cbor_get_int(v) == 0)
            return attest_fail(err, ATTEST_MALFORMED,
                               "payload: timestamp is not a positive integer");
        c->timestamp_ms = cbor_get_int(v);
        return ATTEST_OK;
    case KEY_PCRS:
        return get_pcrs(v, c, err);
    case KEY_CERTIFICATE:
        if (!attest_cbor_is_bytes(v) || cbor_bytestring_length(v) == 0)
            return attest_fail(err, ATTEST_MALFORMED,
                               "payload: certificate is not a non-empty byte string");
        certs->leaf = (cbor_item_t *)v;
        return ATTEST_OK;
    case KEY_CABUNDLE:
        return get_cabundle(v, certs, err);
    case KEY_PUBLIC_KEY:
        return get_blob(v, "public_key", &c->public_key, err);
    case KEY_USER_DATA:
        return get_blob(v, "user_data", &c->user_data, err);
    case KEY_NONCE:
        return get_blob(v, "nonce", &c->nonce, err);
    case KEY_COUNT:
        break;
    }
    return attest_fail(err, ATTEST_MALFORMED, "payload: unknown field");
}

/* Fills the claims and certs from the payload map. Keys other than the nine
 * of the NSM API are ignored (they are signed, and a newer NSM may add some);
 * each known key at most once, the first six required. */
static enum attest_result
parse_payload(const cbor_item_t *map, struct attest_claims *c, struct nitro_certs *certs, char *err)
{
    bool seen[KEY_COUNT] = {false};
    enum attest_result r;

    if (!cbor_isa_map(map))
        return attest_fail(err, ATTEST_MALFORMED, "payload: not a map");
    struct cbor_pair *pairs = cbor_map_handle(map);
    for (size_t i = 0; i < cbor_map_size(map); i++) {
        if (!cbor_isa_string(pairs[i].key) || !cbor_string_is_definite(pairs[i].key))
            return attest_fail(err, ATTEST_MALFORMED, "payload: a key is not a text");
        for (int k = 0; k < KEY_COUNT; k++) {
            if (!attest_cbor_is_text(pairs[i].key, payload_keys[k]))
                continue;
            if (seen[k])
                return attest_fail(err, ATTEST_MALFORMED, "payload: %s appears twice",
                                   payload_keys[k]);
            seen[k] = true;
            if ((r = get_field((enum payload_key)k, pairs[i].value, c, certs, err)) != ATTEST_OK)
                return r;
        }
    }
    for (int k = KEY_MODULE_ID; k <= KEY_CABUNDLE; k++)
        if (!seen[k])
            return attest_fail(err, ATTEST_MALFORMED, "payload: no %s", payload_keys[k]);
    return ATTEST_OK;
}

/* The protected header must say ES384 and ask for nothing we do not do. */
static enum attest_result
check_protected(const cbor_item_t *bstr, char *err)
{
    enum attest_result r = ATTEST_MALFORMED;
    cbor_item_t *hdr = attest_cbor_decode(cbor_bytestring_handle(bstr),
                                          cbor_bytestring_length(bstr), "protected header", err);
    bool alg = false;

    if (hdr == NULL)
        return ATTEST_MALFORMED;
    if (!cbor_isa_map(hdr)) {
        attest_fail(err, r, "protected header: not a map");
        goto fail;
    }
    struct cbor_pair *pairs = cbor_map_handle(hdr);
    for (size_t i = 0; i < cbor_map_size(hdr); i++) {
        const cbor_item_t *k = pairs[i].key, *v = pairs[i].value;
        if (cbor_isa_uint(k) && cbor_get_int(k) == COSE_HDR_CRIT) {
            attest_fail(err, r, "protected header: critical parameters are not supported");
            goto fail;
        }
        if (!cbor_isa_uint(k) || cbor_get_int(k) != COSE_HDR_ALG)
            continue;
        /* -35 is the negative integer with argument 34 (-1 - 34). */
        if (alg || !cbor_isa_negint(v) || cbor_get_int(v) != (uint64_t)(-1 - COSE_ALG_ES384)) {
            attest_fail(err, r, "protected header: algorithm is not ES384 (-35)");
            goto fail;
        }
        alg = true;
    }
    if (!alg) {
        attest_fail(err, r, "protected header: no algorithm");
        goto fail;
    }
    r = ATTEST_OK;
fail:
    cbor_decref(&hdr);
    return r;
}

size_t
attest_cbor_head(uint8_t *out, uint8_t major, uint64_t n)
{
    size_t len;

    if (n < 24) {
        out[0] = (uint8_t)(major << 5 | n);
        return 1;
    }
    len = n <= 0xff ? 1 : n <= 0xffff ? 2 : n <= 0xffffffffu ? 4 : 8;
    out[0] = (uint8_t)(major << 5 | (len == 1 ? 24 : len == 2 ? 25 : len == 4 ? 26 : 27));
    for (size_t i = 0; i < len; i++)
        out[1 + i] = (uint8_t)(n >> (8 * (len - 1 - i)));
    return 1 + len;
}

uint8_t *
attest_nitro_sig_structure(const uint8_t *prot, size_t plen, const uint8_t *payload, size_t dlen,
                           size_t *out_len)
{
    static const char ctx[] = "Signature1";
    uint8_t *b = malloc(1 + 9 + sizeof(ctx) + 9 + plen + 1 + 9 + dlen);
    size_t n = 0;

    if (b == NULL)
        return NULL;
    n += attest_cbor_head(b + n, 4, 4);
    n += attest_cbor_head(b + n, 3, sizeof(ctx) - 1);
    memcpy(b + n, ctx, sizeof(ctx) - 1);
    n += sizeof(ctx) - 1;
    n += attest_cbor_head(b + n, 2, plen);
    memcpy(b + n, prot, plen);
    n += plen;
    n += attest_cbor_head(b + n, 2, 0);
    n += attest_cbor_head(b + n, 2, dlen);
    memcpy(b + n, payload, dlen);
    *out_len = n + dlen;
    return b;
}

/* A debug-mode enclave's NSM reports PCR0-2 as zeros: it runs whatever
 * image its parent chose, and its console is the parent's to read. Its
 * other PCRs (3: the parent's IAM role, 4: the parent instance) are set, so
 * a policy pinning only those would accept it. PCR0, the image, is never
 * zero otherwise. */
static bool
debug_mode(const struct attest_claims *c)
{
    for (size_t i = 0; i < c->npcrs; i++)
        if (c->pcrs[i].index == 0) {
            for (size_t j = 0; j < c->pcrs[i].len; j++)
                if (c->pcrs[i].value[j] != 0)
                    return false;
            return true;
        }
    return true; /* no PCR0: nothing to say it is not */
}

static enum attest_result
check_policy(const struct attest_policy *pol, const struct attest_claims *c, char *err)
{
    /* a measurement or a TCB: not in a Nitro document, so refused */
    enum attest_result r = attest_policy_fits(pol, ATTEST_KIND_NITRO, err);

    if (r != ATTEST_OK)
        return r;
    /* sim documents carry zeros too: sim roots are for tests and demos */
    if (c->debug && !c->sim && !pol->allow_debug)
        return attest_fail(err, ATTEST_POLICY, "policy: a debug-mode enclave (PCR0 all zero)");
    for (size_t i = 0; i < pol->npcrs; i++) {
        const struct attest_pcr *want = &pol->pcrs[i];
        const struct attest_pcr *got = NULL;
        for (size_t j = 0; j < c->npcrs; j++)
            if (c->pcrs[j].index == want->index)
                got = &c->pcrs[j];
        if (got == NULL)
            return attest_fail(err, ATTEST_POLICY, "policy: PCR %u is not in the document",
                               want->index);
        if (got->len != want->len || memcmp(got->value, want->value, got->len) != 0)
            return attest_fail(err, ATTEST_POLICY, "policy: PCR %u does not match", want->index);
    }
    const struct {
        const char *name;
        const struct attest_blob *want, *got;
    } blobs[] = {
        {"nonce", &pol->nonce, &c->nonce},
        {"user_data", &pol->user_data, &c->user_data},
        {"public_key", &pol->public_key, &c->public_key},
    };
    for (size_t i = 0; i < sizeof(blobs) / sizeof(blobs[0]); i++)
        if (blobs[i].want->present &&
            !attest_blob_equal(blobs[i].got, blobs[i].want->data, blobs[i].want->len))
            return attest_fail(err, ATTEST_POLICY, "policy: %s %s", blobs[i].name,
                               blobs[i].got->present ? "does not match" : "is absent");
    return ATTEST_OK;
}

/* The leaf through cabundle[1..] to a pinned root or the trusted sim root.
 * cabundle[0] claims to be the root: it is never added, so a document that
 * brings its own root chains to nothing we trust. */
static enum attest_result
check_chain(const struct nitro_certs *certs, const struct attest_policy *pol, X509 **leaf,
            struct attest_claims *c, char *err)
{
    enum attest_result r = ATTEST_MALFORMED;
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    STACK_OF(X509) *anchors = sk_X509_new_null(); /* borrows its certificates */
    STACK_OF(X509) *aws = NULL;
    X509 *top = NULL;

    if (untrusted == NULL || anchors == NULL) {
        attest_fail(err, r = ATTEST_UNTRUSTED, "out of memory");
        goto fail;
    }
    *leaf =
        attest_x509_der(cbor_bytestring_handle(certs->leaf), cbor_bytestring_length(certs->leaf));
    if (*leaf == NULL) {
        attest_fail(err, r, "payload: certificate is not one DER certificate");
        goto fail;
    }
    for (size_t i = 1; i < certs->nbundle; i++) {
        X509 *x = attest_x509_der(cbor_bytestring_handle(certs->bundle[i]),
                                  cbor_bytestring_length(certs->bundle[i]));
        if (x == NULL || sk_X509_push(untrusted, x) == 0) {
            X509_free(x);
            attest_fail(err, r, "payload: cabundle[%zu] is not a certificate", i);
            goto fail;
        }
    }
    r = ATTEST_UNTRUSTED;
    if (pol->roots == NULL && (aws = attest_x509_pem(attest_nitro_aws_root_pem,
                                                     strlen(attest_nitro_aws_root_pem))) == NULL) {
        attest_fail(err, r, "cannot load the AWS root");
        goto fail;
    }
    STACK_OF(X509) *roots = pol->roots != NULL ? pol->roots : aws;
    for (int i = 0; i < sk_X509_num(roots); i++)
        if (sk_X509_push(anchors, sk_X509_value(roots, i)) == 0) {
            attest_fail(err, r, "out of memory");
            goto fail;
        }
    if (pol->sim_root != NULL && sk_X509_push(anchors, pol->sim_root) == 0) {
        attest_fail(err, r, "out of memory");
        goto fail;
    }
    if ((r = attest_chain_verify(*leaf, untrusted, anchors, pol->now, &top, err)) != ATTEST_OK)
        goto fail;
    if ((r = attest_signer_check(*leaf, "certificate", err)) != ATTEST_OK)
        goto fail;
    c->sim = pol->sim_root != NULL && top == pol->sim_root;
fail:
    sk_X509_free(anchors);
    sk_X509_pop_free(aws, X509_free);
    sk_X509_pop_free(untrusted, X509_free);
    return r;
}

enum attest_result
attest_nitro_verify(const uint8_t *doc, size_t len, const struct attest_policy *pol,
                    struct attest_claims *c, char *err)
{
    enum attest_result r = ATTEST_MALFORMED;
    cbor_item_t *cose = NULL, *payload = NULL;
    struct nitro_certs certs = {0};
    uint8_t *tbs = NULL;
    size_t tbs_len = 0;
    X509 *leaf = NULL;
    EVP_PKEY *key;

    memset(c, 0, sizeof(*c));
    c->kind = ATTEST_KIND_NITRO;
    if (len == 0 || len > NITRO_DOC_MAX)
        return attest_fail(err, r, "document: %zu bytes, 1 to %d expected", len, NITRO_DOC_MAX);
    /* Tag 18 (COSE_Sign1) is optional; NSM sends the array untagged. The
     * tag is read here: libcbor 0.8 refuses a tagged top-level item. */
    if (doc[0] >> 5 == 6) {
        unsigned tag = doc[0] & 31;
        size_t head = 1;
        if (tag == 24 && len > 1) {
            tag = doc[1];
            head = 2;
        }
        if (tag != COSE_TAG_SIGN1)
            return attest_fail(err, r, "document: a tag other than COSE_Sign1 (18)");
        doc += head;
        len -= head;
    }
    if ((cose = attest_cbor_decode(doc, len, "document", err)) == NULL)
        return r;
    if (!cbor_isa_array(cose) || cbor_array_size(cose) != 4) {
        attest_fail(err, r, "document: not a COSE_Sign1 array of 4");
        goto fail;
    }
    cbor_item_t **parts = cbor_array_handle(cose);
    if (!attest_cbor_is_bytes(parts[0]) || !cbor_isa_map(parts[1]) ||
        !attest_cbor_is_bytes(parts[2]) || !attest_cbor_is_bytes(parts[3])) {
        attest_fail(err, r, "document: COSE_Sign1 parts are not [bstr, map, bstr, bstr]");
        goto fail;
    }
    if ((r = check_protected(parts[0], err)) != ATTEST_OK)
        goto fail;
    r = ATTEST_MALFORMED;
    if (cbor_bytestring_length(parts[3]) != 2 * ES384_HALF) {
        attest_fail(err, r, "document: signature is %zu bytes, ES384 needs %d",
                    cbor_bytestring_length(parts[3]), 2 * ES384_HALF);
        goto fail;
    }
    payload = attest_cbor_decode(cbor_bytestring_handle(parts[2]), cbor_bytestring_length(parts[2]),
                                 "payload", err);
    if (payload == NULL)
        goto fail;
    if ((r = parse_payload(payload, c, &certs, err)) != ATTEST_OK)
        goto fail;
    if ((r = check_chain(&certs, pol, &leaf, c, err)) != ATTEST_OK)
        goto fail;
    r = ATTEST_UNTRUSTED;
    tbs = attest_nitro_sig_structure(
        cbor_bytestring_handle(parts[0]), cbor_bytestring_length(parts[0]),
        cbor_bytestring_handle(parts[2]), cbor_bytestring_length(parts[2]), &tbs_len);
    if (tbs == NULL) {
        attest_fail(err, r, "out of memory");
        goto fail;
    }
    key = X509_get0_pubkey(leaf);
    if (key == NULL) {
        attest_fail(err, r, "certificate: no usable public key");
        goto fail;
    }
    const uint8_t *sig = cbor_bytestring_handle(parts[3]);
    r = attest_ecdsa_verify(key, "secp384r1", EVP_sha384(), tbs, tbs_len, sig, sig + ES384_HALF,
                            ES384_HALF, false, "document", err);
    if (r != ATTEST_OK)
        goto fail;
    c->debug = debug_mode(c);
    r = check_policy(pol, c, err);
fail:
    free(tbs);
    X509_free(leaf);
    if (payload != NULL)
        cbor_decref(&payload);
    cbor_decref(&cose);
    return r;
}
