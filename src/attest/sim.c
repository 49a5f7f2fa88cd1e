/* sim.c - the software evidence provider (sim.h). */
#include "attest/sim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cbor.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "attest/nitro.h"
#include "attest/policy.h"
#include "attest/provider.h"
#include "core/file.h"

#define SIM_LEAF_LIFETIME (3 * 3600)
#define SIM_MODULE_ID "sim-airlock"
#define ES384_HALF 48
#define SIM_PCRS 16 /* as many as NSM reports, all zero */

static const uint8_t es384_protected[] = {0xa1, 0x01, 0x38, 0x22}; /* {1: -35} */

static bool
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    bool ok;

    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

X509 *
attest_sim_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, time_t from,
                time_t to, bool ca)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    BIGNUM *serial = BN_new();

    if (x == NULL || name == NULL || serial == NULL)
        goto fail;
    if (X509_set_version(x, X509_VERSION_3) != 1 || BN_rand(serial, 63, 0, 0) != 1 ||
        BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) == NULL ||
        ASN1_TIME_set(X509_getm_notBefore(x), from) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), to) == NULL ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_set_subject_name(x, name) != 1 ||
        X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name) != 1 ||
        X509_set_pubkey(x, key) != 1)
        goto fail;
    if (!add_ext(x, issuer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE") ||
        !add_ext(x, issuer, NID_key_usage,
                 ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature") ||
        !add_ext(x, issuer, NID_subject_key_identifier, "hash") ||
        (issuer != NULL && !add_ext(x, issuer, NID_authority_key_identifier, "keyid")))
        goto fail;
    if (X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha384()) <= 0)
        goto fail;
    BN_free(serial);
    X509_NAME_free(name);
    return x;
fail:
    BN_free(serial);
    X509_NAME_free(name);
    X509_free(x);
    return NULL;
}

int
attest_sim_root_generate(time_t now, EVP_PKEY **key, X509 **cert)
{
    *key = EVP_EC_gen("secp384r1");
    *cert = *key != NULL ? attest_sim_cert("airlock sim root", *key, NULL, NULL, now - 3600,
                                           now + 10L * 365 * 86400, true)
                         : NULL;
    if (*cert == NULL) {
        EVP_PKEY_free(*key);
        *key = NULL;
        return -ENOMEM;
    }
    return 0;
}

int
attest_sim_root_read(const char *path, EVP_PKEY **key, X509 **cert, char *why, size_t why_len)
{
    char *pem;
    size_t len;
    int rc = file_read_trusted(path, false, ATTEST_PEM_MAX, &pem, &len, why, why_len);
    BIO *bio;

    *key = NULL;
    *cert = NULL;
    if (rc != 0)
        return rc == -EFBIG ? -EINVAL : rc;
    if ((bio = BIO_new_mem_buf(pem, (int)len)) != NULL) {
        *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        BIO_free(bio);
    }
    if ((bio = BIO_new_mem_buf(pem, (int)len)) != NULL) {
        *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
    }
    OPENSSL_clear_free(pem, len);
    if (*key == NULL || *cert == NULL || X509_check_private_key(*cert, *key) != 1) {
        EVP_PKEY_free(*key);
        X509_free(*cert);
        *key = NULL;
        *cert = NULL;
        snprintf(why, why_len, "%s: not a sim root (key and certificate, PEM)", path);
        return -EINVAL;
    }
    return 0;
}

int
attest_sim_init(struct attest_sim *sim, EVP_PKEY *root_key, X509 *root, time_t now)
{
    memset(sim, 0, sizeof(*sim));
    if (EVP_PKEY_up_ref(root_key) != 1)
        return -ENOMEM;
    sim->root_key = root_key;
    if (X509_up_ref(root) != 1)
        goto fail;
    sim->root = root;
    if ((sim->key = EVP_EC_gen("secp384r1")) == NULL)
        goto fail;
    sim->leaf = attest_sim_cert("airlock sim enclave", sim->key, root, root_key, now - 60,
                                now + SIM_LEAF_LIFETIME, false);
    if (sim->leaf == NULL)
        goto fail;
    return 0;
fail:
    attest_sim_close(sim);
    return -ENOMEM;
}

void
attest_sim_close(struct attest_sim *sim)
{
    X509_free(sim->leaf);
    sim->leaf = NULL;
    EVP_PKEY_free(sim->key);
    sim->key = NULL;
    X509_free(sim->root);
    sim->root = NULL;
    EVP_PKEY_free(sim->root_key);
    sim->root_key = NULL;
}

/* A definite byte string holding the DER of x; NULL on failure. */
static cbor_item_t *
cert_bytes(X509 *x)
{
    uint8_t *der = NULL;
    int n = i2d_X509(x, &der);
    cbor_item_t *it = n > 0 ? cbor_build_bytestring(der, (size_t)n) : NULL;

    OPENSSL_free(der);
    return it;
}

static bool
put(cbor_item_t *map, const char *key, cbor_item_t *value)
{
    cbor_item_t *k = cbor_build_string(key);
    bool ok = k != NULL && value != NULL &&
              cbor_map_add(map, (struct cbor_pair){.key = k, .value = value});

    if (k != NULL)
        cbor_decref(&k);
    if (value != NULL)
        cbor_decref(&value);
    return ok;
}

static cbor_item_t *
blob_or_null(const struct attest_blob *b)
{
    return b != NULL && b->present ? cbor_build_bytestring(b->data, b->len) : cbor_new_null();
}

static cbor_item_t *
build_payload(const struct attest_sim *sim, const struct attest_sim_request *req)
{
    cbor_item_t *map = req->indefinite ? cbor_new_indefinite_map() : cbor_new_definite_map(9);
    cbor_item_t *pcrs = cbor_new_definite_map(req->npcrs);
    cbor_item_t *bundle = cbor_new_definite_array(1);
    if (map == NULL || pcrs == NULL || bundle == NULL)
        goto fail;
    for (size_t i = 0; i < req->npcrs; i++) {
        cbor_item_t *k = cbor_build_uint8((uint8_t)req->pcrs[i].index);
        cbor_item_t *v = cbor_build_bytestring(req->pcrs[i].value, req->pcrs[i].len);
        bool ok =
            k != NULL && v != NULL && cbor_map_add(pcrs, (struct cbor_pair){.key = k, .value = v});
        if (k != NULL)
            cbor_decref(&k);
        if (v != NULL)
            cbor_decref(&v);
        if (!ok)
            goto fail;
    }
    cbor_item_t *root = cert_bytes(sim->root);
    bool ok = root != NULL && cbor_array_push(bundle, root);
    if (root != NULL)
        cbor_decref(&root);
    if (!ok)
        goto fail;
    if (!put(map, "module_id", cbor_build_string(SIM_MODULE_ID)) ||
        !put(map, "digest", cbor_build_string("SHA384")) ||
        !put(map, "timestamp", cbor_build_uint64(req->timestamp_ms)) ||
        !put(map, "pcrs", cbor_incref(pcrs)) || !put(map, "certificate", cert_bytes(sim->leaf)) ||
        !put(map, "cabundle", cbor_incref(bundle)) ||
        !put(map, "public_key", blob_or_null(req->public_key)) ||
        !put(map, "user_data", blob_or_null(req->user_data)) ||
        !put(map, "nonce", blob_or_null(req->nonce)))
        goto fail;
    cbor_decref(&pcrs);
    cbor_decref(&bundle);
    return map;
fail:
    if (pcrs != NULL)
        cbor_decref(&pcrs);
    if (bundle != NULL)
        cbor_decref(&bundle);
    if (map != NULL)
        cbor_decref(&map);
    return NULL;
}

/* ES384 over the Sig_structure, as raw r||s (96 bytes). */
static int
sign(EVP_PKEY *key, const uint8_t *payload, size_t plen, uint8_t sig[2 * ES384_HALF])
{
    int ret = -ENOMEM;
    size_t tbs_len = 0, der_len = 0;
    uint8_t *tbs = attest_nitro_sig_structure(es384_protected, sizeof(es384_protected), payload,
                                              plen, &tbs_len);
    uint8_t der[256];
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    ECDSA_SIG *es = NULL;

    der_len = sizeof(der);
    if (tbs == NULL || mctx == NULL ||
        EVP_DigestSignInit(mctx, NULL, EVP_sha384(), NULL, key) != 1 ||
        EVP_DigestSign(mctx, der, &der_len, tbs, tbs_len) != 1)
        goto fail;
    const uint8_t *p = der;
    if ((es = d2i_ECDSA_SIG(NULL, &p, (long)der_len)) == NULL ||
        BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, ES384_HALF) != ES384_HALF ||
        BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + ES384_HALF, ES384_HALF) != ES384_HALF)
        goto fail;
    ret = 0;
fail:
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(mctx);
    free(tbs);
    return ret;
}

int
attest_sim_document(const struct attest_sim *sim, const struct attest_sim_request *req,
                    uint8_t **doc, size_t *len)
{
    int ret = -ENOMEM;
    cbor_item_t *payload = NULL, *cose = NULL;
    uint8_t *pbytes = NULL, sig[2 * ES384_HALF];
    size_t pcap = 0, plen;

    *doc = NULL;
    if (req->npcrs > ATTEST_PCR_MAX)
        return -EINVAL;
    for (size_t i = 0; i < req->npcrs; i++)
        if (req->pcrs[i].index >= ATTEST_PCR_MAX || req->pcrs[i].len != 48)
            return -EINVAL;
    if ((payload = build_payload(sim, req)) == NULL)
        goto fail;
    if ((plen = cbor_serialize_alloc(payload, &pbytes, &pcap)) == 0)
        goto fail;
    if ((ret = sign(sim->key, pbytes, plen, sig)) != 0)
        goto fail;
    ret = -ENOMEM;
    if ((cose = cbor_new_definite_array(4)) == NULL)
        goto fail;
    cbor_item_t *parts[4] = {
        cbor_build_bytestring(es384_protected, sizeof(es384_protected)),
        cbor_new_definite_map(0),
        cbor_build_bytestring(pbytes, plen),
        cbor_build_bytestring(sig, sizeof(sig)),
    };
    bool ok = true;
    for (int i = 0; i < 4; i++) {
        ok = ok && parts[i] != NULL && cbor_array_push(cose, parts[i]);
        if (parts[i] != NULL)
            cbor_decref(&parts[i]);
    }
    if (!ok)
        goto fail;
    size_t cap = 0;
    if ((*len = cbor_serialize_alloc(cose, doc, &cap)) == 0)
        goto fail;
    ret = 0;
fail:
    free(pbytes);
    if (cose != NULL)
        cbor_decref(&cose);
    if (payload != NULL)
        cbor_decref(&payload);
    return ret;
}

/* The sim provider: a fresh document from conf->sim, timestamped now, with
 * NSM's indefinite-length payload encoding. */
static int
sim_get(const struct attest_provider_conf *conf, const struct attest_request *req,
        struct attest_evidence *ev, char *err)
{
    struct attest_pcr pcrs[SIM_PCRS] = {0};
    struct attest_blob *blobs = calloc(3, sizeof(*blobs));
    struct timespec ts;
    int e;

    if (conf->sim == NULL || conf->sim->leaf == NULL) {
        free(blobs);
        return attest_provider_fail(err, -EINVAL, "sim: no sim root to sign with");
    }
    if (blobs == NULL)
        return attest_provider_fail(err, -ENOMEM, "sim: out of memory");
    const uint8_t *src[3] = {req->report_data, req->nonce, req->public_key};
    size_t len[3] = {req->report_data_len, req->nonce_len, req->public_key_len};
    for (int i = 0; i < 3; i++) {
        blobs[i].present = src[i] != NULL;
        blobs[i].len = len[i];
        if (src[i] != NULL)
            memcpy(blobs[i].data, src[i], len[i]);
    }
    for (unsigned i = 0; i < SIM_PCRS; i++) {
        pcrs[i].index = i;
        pcrs[i].len = 48;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    struct attest_sim_request sreq = {
        .timestamp_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000,
        .npcrs = SIM_PCRS,
        .pcrs = pcrs,
        .user_data = &blobs[0],
        .nonce = &blobs[1],
        .public_key = &blobs[2],
        .indefinite = true, /* as current NSM versions encode it */
    };
    e = attest_sim_document(conf->sim, &sreq, &ev->data, &ev->len);
    free(blobs);
    if (e != 0)
        return attest_provider_fail(err, e, "sim: cannot sign a document: %s", strerror(-e));
    ev->kind = ATTEST_KIND_NITRO;
    ev->sim = true;
    return 0;
}

const struct attest_provider attest_provider_sim = {
    .name = "sim",
    .takes_nonce = true,
    .get = sim_get,
};
