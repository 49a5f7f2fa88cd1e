/* tdx_collateral.c - judging a TDX quote's platform, TDX module and
 * quoting enclave by Intel's collateral; see tdx_collateral.h. The steps are
 * those of Intel's Quote Verification Library and of the PCS API
 * documentation: the TCB Info of the PCK certificate's FMSPC, its first TCB
 * level that the PCK's SGX components and PCESVN and the TD report's
 * TEE_TCB_SVN all reach (a TDX 1.5 module: from TEE_TCB_SVN[2] on, the
 * module itself by its identity in the TCB Info; a TDX 1.5 report by its
 * TEE_TCB_SVN2 too, judged the same way), the QE Identity's first
 * level the QE's ISVSVN reaches; both signed by Intel's TCB signing key,
 * whose chain, like the PCK's, must not be revoked. */
#include "attest/tdx_collateral.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "attest/policy.h"
#include "attest/tdx.h"
#include "attest/trust.h"
#include "core/file.h"
#include "core/units.h"

#define SVN_COMPONENTS 16
#define FMSPC_LEN 6
#define PCE_ID_LEN 2
#define SIG_LEN 64 /* the JSON signatures: ECDSA P-256 r||s, in hex */
/* in the TD report body */
#define BODY_TEE_TCB_SVN 0
#define BODY_TEE_TCB_SVN2 584 /* TDX 1.5 */
#define SVN2_WHICH " by TEE_TCB_SVN2 (the module running now)"
#define BODY_MRSIGNERSEAM 64
#define BODY_SEAMATTRIBUTES 112
#define MRSIGNERSEAM_LEN 48
/* in the QE report (an SGX report body) */
#define QE_MISCSELECT 16
#define QE_ATTRIBUTES 48
#define QE_MRSIGNER 128
#define QE_ISVPRODID 256
#define QE_ISVSVN 258
#define QE_ATTRIBUTES_LEN 16
#define QE_MRSIGNER_LEN 32
/* the SGX extension of a PCK certificate (Intel's "PCK Certificate and
 * CRL Profile") and the parts of it read here */
#define OID_SGX "1.2.840.113741.1.13.1"
#define OID_SGX_TCB OID_SGX ".2"
#define OID_SGX_PCESVN OID_SGX_TCB ".17"
#define OID_SGX_PCE_ID OID_SGX ".3"
#define OID_SGX_FMSPC OID_SGX ".4"

/* One TCB level of a TCB Info: reached when every component is. */
struct tcb_level {
    uint8_t sgx[SVN_COMPONENTS], tdx[SVN_COMPONENTS];
    unsigned pcesvn;
    enum attest_tcb_status status;
    char date[24];
    char advisories[512];
};

/* A level of an enclave's or a module's ISVSVN (QE Identity, a TDX
 * module identity): reached when the ISVSVN is at least isvsvn. */
struct svn_level {
    unsigned isvsvn;
    enum attest_tcb_status status;
};

/* Who signed a TDX module and with which attributes. */
struct module_signer {
    uint8_t mrsigner[MRSIGNERSEAM_LEN], attributes[8], mask[8];
};

/* A TDX module identity of a TCB Info (TDX 1.5: "TDX_01", ...): the
 * module of that major version, and the levels of its ISVSVN. */
struct module_identity {
    unsigned version;
    struct module_signer signer;
    struct svn_level *levels;
    size_t nlevels;
};

struct tcb_info {
    uint8_t fmspc[FMSPC_LEN], pce_id[PCE_ID_LEN];
    time_t issued, next_update;
    struct module_signer module; /* tdxModule: a TDX 1.0 module's */
    struct tcb_level *levels;    /* in Intel's order: the highest first */
    size_t nlevels;
    struct module_identity *mods; /* tdxModuleIdentities, may be none */
    size_t nmods;
};

struct tdx_collateral {
    char dir[ATTEST_POLICY_PATH_MAX];
    struct file_stamp dir_stamp;
    struct tcb_info infos[TDX_COLLATERAL_TCB_INFOS];
    size_t ninfos;
    /* the QE Identity */
    time_t qe_issued, qe_next_update;
    uint8_t qe_mrsigner[QE_MRSIGNER_LEN];
    unsigned qe_prodid;
    uint8_t qe_misc[4], qe_misc_mask[4]; /* as Intel writes them: big-endian */
    uint8_t qe_attributes[QE_ATTRIBUTES_LEN], qe_attributes_mask[QE_ATTRIBUTES_LEN];
    struct svn_level *qe_levels;
    size_t nqe_levels;
    /* the signing key's chain (leaf first), the CRLs (each found by its
     * issuer's name) */
    STACK_OF(X509) * signer_chain;
    X509_CRL *crls[TDX_COLLATERAL_CRLS];
    size_t ncrls;
    /* every file read, to tell a change */
    struct file_stamp stamps[TDX_COLLATERAL_TCB_INFOS + TDX_COLLATERAL_CRLS + 2];
    char paths[TDX_COLLATERAL_TCB_INFOS + TDX_COLLATERAL_CRLS + 2][ATTEST_POLICY_PATH_MAX];
    size_t nfiles;
};

/* ---- reading the files */

/* Reads dir/name whole, stamping it for tdx_collateral_changed(). */
static int
read_file(struct tdx_collateral *col, const char *name, uint8_t **buf, size_t *len, char *err)
{
    char *path = col->paths[col->nfiles];
    size_t dlen = strlen(col->dir), nlen = strlen(name);

    if (dlen + 1 + nlen >= ATTEST_POLICY_PATH_MAX) {
        attest_fail(err, ATTEST_MALFORMED, "%s/%s: path too long", col->dir, name);
        return -ENAMETOOLONG;
    }
    memcpy(path, col->dir, dlen);
    path[dlen] = '/';
    memcpy(path + dlen + 1, name, nlen + 1);
    (void)file_stamp(path, &col->stamps[col->nfiles]);
    int ret = attest_file_read(path, false, TDX_COLLATERAL_FILE_MAX, buf, len, err);
    if (ret == 0)
        col->nfiles++;
    return ret;
}

/* Formats "DIR/FILE: why" into err and returns -EINVAL. */
static int __attribute__((format(printf, 4, 5)))
bad(const struct tdx_collateral *col, const char *name, char *err, const char *fmt, ...)
{
    char why[ATTEST_ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    attest_fail(err, ATTEST_MALFORMED, "%s/%s: %s", col->dir, name, why);
    return -EINVAL;
}

/* The end of the JSON value that starts at text[i] (valid JSON: cJSON
 * parsed it first), or len when it runs past the text. */
static size_t
value_end(const char *text, size_t len, size_t i)
{
    size_t depth = 0;

    do {
        if (i >= len)
            return len;
        if (text[i] == '"') {
            for (i++; i < len && text[i] != '"'; i++)
                if (text[i] == '\\')
                    i++;
        } else if (text[i] == '{' || text[i] == '[') {
            depth++;
        } else if (text[i] == '}' || text[i] == ']') {
            depth--;
        } else if (depth == 0) {
            while (i + 1 < len && strchr(",}] \t\r\n", text[i + 1]) == NULL)
                i++;
        }
        i++;
    } while (depth > 0);
    return i;
}

static size_t
skip_space(const char *text, size_t len, size_t i)
{
    while (i < len && strchr(" \t\r\n", text[i]) != NULL)
        i++;
    return i;
}

/* The bytes of the value of the top-level member name of the JSON object
 * text: Intel signs them as they stand in the body, so they are taken from
 * it, never serialised again. False when there is no such member. */
static bool
member_span(const char *text, size_t len, const char *name, const char **start, size_t *n)
{
    size_t i = skip_space(text, len, 0), nlen = strlen(name);

    if (i >= len || text[i] != '{')
        return false;
    for (i = skip_space(text, len, i + 1); i < len && text[i] == '"';) {
        size_t key = i + 1, key_end = value_end(text, len, i) - 1;
        i = skip_space(text, len, key_end + 1);
        if (i >= len || text[i] != ':')
            return false;
        size_t v = skip_space(text, len, i + 1), v_end = value_end(text, len, v);
        if (v_end > len)
            return false;
        if (key_end - key == nlen && memcmp(text + key, name, nlen) == 0) {
            *start = text + v;
            *n = v_end - v;
            return true;
        }
        i = skip_space(text, len, v_end);
        if (i < len && text[i] == ',')
            i = skip_space(text, len, i + 1);
    }
    return false;
}

/* The signed member of an Intel JSON body ({"NAME": {...}, "signature":
 * HEX}): checks the signature by the TCB signing key over the member's
 * bytes, and returns what those very bytes parse to (free with
 * cJSON_Delete), never a member the body's parse picks: a key spelt with
 * escapes ("tcb\u0049nfo") or given twice would make them differ, and
 * unsigned content would decide. NULL after a message. */
static cJSON *
signed_member(const struct tdx_collateral *col, const char *file, const char *text, size_t len,
              const char *name, char *err)
{
    cJSON *root = cJSON_ParseWithLength(text, len), *member = NULL;
    const cJSON *sig;
    const char *span;
    size_t span_len, sig_len;
    uint8_t rs[SIG_LEN];
    char why[ATTEST_ERR_MAX];
    EVP_PKEY *key = X509_get0_pubkey(sk_X509_value(col->signer_chain, 0));

    if (root == NULL || !member_span(text, len, name, &span, &span_len)) {
        bad(col, file, err, "expected Intel's JSON with a \"%s\" object", name);
    } else if (!cJSON_IsString(sig = cJSON_GetObjectItemCaseSensitive(root, "signature")) ||
               units_hex(sig->valuestring, rs, sizeof(rs), &sig_len) != 0 ||
               sig_len != sizeof(rs)) {
        bad(col, file, err, "expected a \"signature\" of 64 bytes of hex");
    } else if (key == NULL ||
               attest_ecdsa_verify(key, "prime256v1", EVP_sha256(), (const uint8_t *)span, span_len,
                                   rs, rs + SIG_LEN / 2, SIG_LEN / 2, false, name,
                                   why) != ATTEST_OK) {
        bad(col, file, err, "not signed by the TCB signing key of tcb_chain.pem");
    } else if (!cJSON_IsObject(member = cJSON_ParseWithLength(span, span_len))) {
        cJSON_Delete(member);
        member = NULL;
        bad(col, file, err, "expected Intel's JSON with a \"%s\" object", name);
    }
    cJSON_Delete(root);
    return member;
}

/* Reads hex of exactly n bytes from o's member name. */
static bool
hex_member(const cJSON *o, const char *name, uint8_t *out, size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    size_t len;

    return cJSON_IsString(v) && units_hex(v->valuestring, out, n, &len) == 0 && len == n;
}

static bool
time_member(const cJSON *o, const char *name, time_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    return cJSON_IsString(v) && attest_time_parse(v->valuestring, out);
}

/* An integer member in [0, max]. */
static bool
uint_member(const cJSON *o, const char *name, unsigned max, unsigned *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > max ||
        v->valuedouble != (double)(unsigned)v->valuedouble)
        return false;
    *out = (unsigned)v->valuedouble;
    return true;
}

static bool
status_member(const cJSON *o, enum attest_tcb_status *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "tcbStatus");

    for (int i = 0; cJSON_IsString(v) && i < ATTEST_TCB_STATUS_COUNT; i++) {
        if (strcmp(v->valuestring, attest_tcb_status_names[i]) == 0) {
            *out = (enum attest_tcb_status)i;
            return true;
        }
    }
    return false;
}

/* Reads file, an Intel JSON body ({"NAME": {...}, "signature": HEX}), and
 * returns its signed member (signed_member: what the signed bytes parse
 * to), its "id" and "version" as expected. NULL after a message, with *ret
 * the -errno (cJSON_Delete *root in either case: the member, or NULL). */
static const cJSON *
read_signed(struct tdx_collateral *col, const char *file, const char *name, const char *id,
            unsigned version, cJSON **root, int *ret, char *err)
{
    const cJSON *o, *i;
    uint8_t *text;
    size_t len;
    unsigned v;

    *root = NULL;
    if ((*ret = read_file(col, file, &text, &len, err)) != 0)
        return NULL;
    o = *root = signed_member(col, file, (const char *)text, len, name, err);
    free(text);
    *ret = -EINVAL;
    if (o == NULL)
        return NULL;
    i = cJSON_GetObjectItemCaseSensitive(o, "id");
    if (!cJSON_IsString(i) || strcmp(i->valuestring, id) != 0 ||
        !uint_member(o, "version", 65535, &v) || v != version) {
        bad(col, file, err, "expected \"id\": \"%s\" of version %u", id, version);
        return NULL;
    }
    *ret = 0;
    return o;
}

/* A non-empty tcbLevels array of {tcb: {isvsvn}, tcbStatus} into *out (n
 * of them, the caller frees). Returns 0, or -errno after a message. */
static int
svn_levels(const struct tdx_collateral *col, const char *file, const cJSON *levels,
           struct svn_level **out, size_t *n, char *err)
{
    const cJSON *l;

    *n = 0;
    if (!cJSON_IsArray(levels) || cJSON_GetArraySize(levels) == 0)
        return bad(col, file, err, "expected tcbLevels");
    if ((*out = calloc((size_t)cJSON_GetArraySize(levels), sizeof(**out))) == NULL) {
        attest_fail(err, ATTEST_MALFORMED, "out of memory");
        return -ENOMEM;
    }
    cJSON_ArrayForEach(l, levels)
    {
        struct svn_level *q = &(*out)[*n];
        if (!uint_member(cJSON_GetObjectItemCaseSensitive(l, "tcb"), "isvsvn", 65535, &q->isvsvn) ||
            !status_member(l, &q->status))
            return bad(col, file, err, "tcbLevels[%zu]: expected tcb.isvsvn and a known tcbStatus",
                       *n);
        (*n)++;
    }
    return 0;
}

/* The status of the first level (Intel lists the highest first) that svn
 * reaches; false when it reaches none. */
static bool
svn_status(const struct svn_level *levels, size_t n, unsigned svn, enum attest_tcb_status *out)
{
    for (size_t l = 0; l < n; l++) {
        if (svn >= levels[l].isvsvn) {
            *out = levels[l].status;
            return true;
        }
    }
    return false;
}

static bool
module_signer(const cJSON *o, struct module_signer *out)
{
    return hex_member(o, "mrsigner", out->mrsigner, MRSIGNERSEAM_LEN) &&
           hex_member(o, "attributes", out->attributes, 8) &&
           hex_member(o, "attributesMask", out->mask, 8);
}

/* The tdxModuleIdentities of a TCB Info (none: TDX 1.0 only). */
static int
module_identities(const struct tdx_collateral *col, const char *file, const cJSON *ids,
                  struct tcb_info *t, char *err)
{
    const cJSON *m, *id;
    uint8_t version;
    size_t vlen;

    if (ids == NULL)
        return 0;
    if (!cJSON_IsArray(ids) ||
        (t->mods = calloc((size_t)cJSON_GetArraySize(ids) + 1, sizeof(*t->mods))) == NULL)
        return bad(col, file, err, "expected tdxModuleIdentities to be a list");
    cJSON_ArrayForEach(m, ids)
    {
        struct module_identity *mi = &t->mods[t->nmods];
        id = cJSON_GetObjectItemCaseSensitive(m, "id");
        if (!cJSON_IsString(id) || strlen(id->valuestring) != 6 ||
            strncmp(id->valuestring, "TDX_", 4) != 0 ||
            units_hex(id->valuestring + 4, &version, 1, &vlen) != 0 ||
            !module_signer(m, &mi->signer))
            return bad(col, file, err,
                       "tdxModuleIdentities[%zu]: expected id TDX_XX, mrsigner, attributes, "
                       "attributesMask",
                       t->nmods);
        mi->version = version;
        t->nmods++;
        int ret = svn_levels(col, file, cJSON_GetObjectItemCaseSensitive(m, "tcbLevels"),
                             &mi->levels, &mi->nlevels, err);
        if (ret != 0)
            return ret;
    }
    return 0;
}

/* The 16 "svn" of a components array. */
static bool
components(const cJSON *a, uint8_t out[SVN_COMPONENTS])
{
    const cJSON *e;
    int i = 0;

    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != SVN_COMPONENTS)
        return false;
    cJSON_ArrayForEach(e, a)
    {
        unsigned svn;
        if (!uint_member(e, "svn", 255, &svn))
            return false;
        out[i++] = (uint8_t)svn;
    }
    return true;
}

static bool
parse_tcb_level(const cJSON *l, struct tcb_level *out)
{
    const cJSON *tcb = cJSON_GetObjectItemCaseSensitive(l, "tcb");
    const cJSON *date = cJSON_GetObjectItemCaseSensitive(l, "tcbDate");
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(l, "advisoryIDs"), *id;
    const cJSON *list = cJSON_IsArray(ids) ? ids : NULL; /* none listed: none */

    if (!components(cJSON_GetObjectItemCaseSensitive(tcb, "sgxtcbcomponents"), out->sgx) ||
        !components(cJSON_GetObjectItemCaseSensitive(tcb, "tdxtcbcomponents"), out->tdx) ||
        !uint_member(tcb, "pcesvn", 65535, &out->pcesvn) || !status_member(l, &out->status) ||
        !cJSON_IsString(date) || strlen(date->valuestring) >= sizeof(out->date))
        return false;
    strcpy(out->date, date->valuestring);
    out->advisories[0] = '\0';
    cJSON_ArrayForEach(id, list)
    {
        size_t used = strlen(out->advisories);
        if (!cJSON_IsString(id))
            return false;
        snprintf(out->advisories + used, sizeof(out->advisories) - used, "%s%s",
                 used > 0 ? "," : "", id->valuestring);
    }
    return true;
}

static void
tcb_info_free(struct tcb_info *t)
{
    for (size_t i = 0; i < t->nmods; i++)
        free(t->mods[i].levels);
    free(t->mods);
    free(t->levels);
}

static int
load_tcb_info(struct tdx_collateral *col, const char *file, char *err)
{
    struct tcb_info *t = &col->infos[col->ninfos];
    const cJSON *module, *levels, *l;
    cJSON *root;
    int ret;
    const cJSON *o = read_signed(col, file, "tcbInfo", "TDX", 3, &root, &ret, err);

    if (o == NULL)
        goto out;
    ret = -EINVAL;
    module = cJSON_GetObjectItemCaseSensitive(o, "tdxModule");
    levels = cJSON_GetObjectItemCaseSensitive(o, "tcbLevels");
    if (!hex_member(o, "fmspc", t->fmspc, FMSPC_LEN) ||
        !hex_member(o, "pceId", t->pce_id, PCE_ID_LEN) ||
        !time_member(o, "issueDate", &t->issued) ||
        !time_member(o, "nextUpdate", &t->next_update) || !module_signer(module, &t->module) ||
        !cJSON_IsArray(levels) || cJSON_GetArraySize(levels) == 0) {
        bad(col, file, err,
            "expected fmspc, pceId, issueDate, nextUpdate, tdxModule and tcbLevels");
        goto out;
    }
    /* tcbType 0: levels compared component by component, as here; another
     * type would mean another comparison, which this does not know */
    unsigned type;
    if (!uint_member(o, "tcbType", 65535, &type) || type != 0) {
        bad(col, file, err, "expected tcbType 0 (the only comparison of TCB levels known)");
        goto out;
    }
    if ((t->levels = calloc((size_t)cJSON_GetArraySize(levels), sizeof(*t->levels))) == NULL) {
        ret = -ENOMEM;
        attest_fail(err, ATTEST_MALFORMED, "out of memory");
        goto out;
    }
    cJSON_ArrayForEach(l, levels)
    {
        if (!parse_tcb_level(l, &t->levels[t->nlevels])) {
            bad(col, file, err,
                "tcbLevels[%zu]: expected 16 SGX and 16 TDX components, "
                "pcesvn, tcbDate and a known tcbStatus",
                t->nlevels);
            goto out;
        }
        t->nlevels++;
    }
    if ((ret = module_identities(
             col, file, cJSON_GetObjectItemCaseSensitive(o, "tdxModuleIdentities"), t, err)) != 0)
        goto out;
    ret = -EINVAL;
    for (size_t i = 0; i < col->ninfos; i++)
        if (memcmp(col->infos[i].fmspc, t->fmspc, FMSPC_LEN) == 0) {
            bad(col, file, err, "a second TCB Info of the same FMSPC");
            goto out;
        }
    col->ninfos++;
    ret = 0;
out:
    if (ret != 0) {
        tcb_info_free(t);
        memset(t, 0, sizeof(*t));
    }
    cJSON_Delete(root);
    return ret;
}

static int
load_qe_identity(struct tdx_collateral *col, char *err)
{
    static const char file[] = "qe_identity.json";
    const cJSON *levels;
    cJSON *root;
    int ret;
    const cJSON *o = read_signed(col, file, "enclaveIdentity", "TD_QE", 2, &root, &ret, err);

    if (o == NULL)
        goto out;
    ret = -EINVAL;
    levels = cJSON_GetObjectItemCaseSensitive(o, "tcbLevels");
    if (!time_member(o, "issueDate", &col->qe_issued) ||
        !time_member(o, "nextUpdate", &col->qe_next_update) ||
        !hex_member(o, "mrsigner", col->qe_mrsigner, QE_MRSIGNER_LEN) ||
        !uint_member(o, "isvprodid", 65535, &col->qe_prodid) ||
        !hex_member(o, "miscselect", col->qe_misc, 4) ||
        !hex_member(o, "miscselectMask", col->qe_misc_mask, 4) ||
        !hex_member(o, "attributes", col->qe_attributes, QE_ATTRIBUTES_LEN) ||
        !hex_member(o, "attributesMask", col->qe_attributes_mask, QE_ATTRIBUTES_LEN)) {
        bad(col, file, err,
            "expected issueDate, nextUpdate, mrsigner, isvprodid, miscselect, "
            "attributes (and masks) and tcbLevels");
        goto out;
    }
    ret = svn_levels(col, file, levels, &col->qe_levels, &col->nqe_levels, err);
out:
    cJSON_Delete(root);
    return ret;
}

static int
load_crl(struct tdx_collateral *col, const char *file, X509_CRL **out, char *err)
{
    uint8_t *der;
    size_t len;
    int ret = read_file(col, file, &der, &len, err);

    if (ret != 0)
        return ret;
    const unsigned char *p = der;
    *out = d2i_X509_CRL(NULL, &p, (long)len);
    if (*out == NULL || p != der + len) {
        X509_CRL_free(*out);
        *out = NULL;
        ret = bad(col, file, err, "expected one CRL in DER");
    }
    free(der);
    return ret;
}

static int
load_signer(struct tdx_collateral *col, char *err)
{
    static const char file[] = "tcb_chain.pem";
    uint8_t *pem;
    size_t len;
    int ret = read_file(col, file, &pem, &len, err);

    if (ret != 0)
        return ret;
    if ((col->signer_chain = attest_x509_pem((const char *)pem, len)) == NULL)
        ret = bad(col, file, err, "expected the PEM certificates of the TCB signing chain");
    free(pem);
    return ret;
}

static bool
named(const char *name, const char *prefix, const char *suffix)
{
    size_t n = strlen(name), p = strlen(prefix), s = strlen(suffix);

    return n >= p + s && strncmp(name, prefix, p) == 0 && strcmp(name + n - s, suffix) == 0;
}

/* The tcb_info*.json, pck_crl*.der and root_crl*.der files of the
 * directory, in name order (so that a failure names the same file each
 * time). */
static int
load_listed(struct tdx_collateral *col, char *err)
{
    struct dirent **names = NULL;
    int n = scandir(col->dir, &names, NULL, alphasort), ret = 0;

    if (n < 0) {
        attest_fail(err, ATTEST_MALFORMED, "%s: %s", col->dir, strerror(errno));
        return -errno;
    }
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (ret == 0 && named(name, "tcb_info", ".json")) {
            ret =
                col->ninfos < TDX_COLLATERAL_TCB_INFOS
                    ? load_tcb_info(col, name, err)
                    : bad(col, name, err, "more than %d TCB Info files", TDX_COLLATERAL_TCB_INFOS);
        } else if (ret == 0 &&
                   (named(name, "pck_crl", ".der") || named(name, "root_crl", ".der"))) {
            ret = col->ncrls < TDX_COLLATERAL_CRLS
                      ? load_crl(col, name, &col->crls[col->ncrls++], err)
                      : bad(col, name, err, "more than %d CRL files", TDX_COLLATERAL_CRLS);
        }
        free(names[i]);
    }
    free(names);
    if (ret == 0 && col->ninfos == 0)
        ret = bad(col, "tcb_info*.json", err, "no TCB Info");
    return ret;
}

int
tdx_collateral_load(const char *dir, struct tdx_collateral **out, char *err)
{
    struct tdx_collateral *col = calloc(1, sizeof(*col));
    int ret;

    *out = NULL;
    if (col == NULL) {
        attest_fail(err, ATTEST_MALFORMED, "out of memory");
        return -ENOMEM;
    }
    if (strlen(dir) >= sizeof(col->dir)) {
        free(col);
        attest_fail(err, ATTEST_MALFORMED, "%.64s...: path too long", dir);
        return -ENAMETOOLONG;
    }
    strcpy(col->dir, dir);
    (void)file_stamp(dir, &col->dir_stamp);
    if ((ret = load_signer(col, err)) != 0 || (ret = load_qe_identity(col, err)) != 0 ||
        (ret = load_listed(col, err)) != 0) {
        tdx_collateral_free(col);
        return ret;
    }
    *out = col;
    return 0;
}

bool
tdx_collateral_changed(const struct tdx_collateral *col)
{
    if (!file_stamp_same(col->dir, &col->dir_stamp))
        return true;
    for (size_t i = 0; i < col->nfiles; i++)
        if (!file_stamp_same(col->paths[i], &col->stamps[i]))
            return true;
    return false;
}

void
tdx_collateral_free(struct tdx_collateral *col)
{
    if (col == NULL)
        return;
    for (size_t i = 0; i < col->ninfos; i++)
        tcb_info_free(&col->infos[i]);
    free(col->qe_levels);
    sk_X509_pop_free(col->signer_chain, X509_free);
    for (size_t i = 0; i < col->ncrls; i++)
        X509_CRL_free(col->crls[i]);
    free(col);
}

/* ---- the PCK certificate's SGX extension */

/* What the PCK certificate says of its platform. */
struct pck_tcb {
    uint8_t sgx[SVN_COMPONENTS];
    unsigned pcesvn;
    uint8_t fmspc[FMSPC_LEN], pce_id[PCE_ID_LEN];
    unsigned found; /* bits: 1 << component (0-15), 16 pcesvn, 17 fmspc, 18 pce id */
};

#define PCK_FOUND_ALL 0x7ffffu

/* The elements of one DER SEQUENCE; NULL if it is not one. */
static STACK_OF(ASN1_TYPE) * sequence(const unsigned char *der, long len)
{
    const unsigned char *p = der;
    STACK_OF(ASN1_TYPE) *seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, len);

    if (seq != NULL && p != der + len) {
        sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
        return NULL;
    }
    return seq;
}

/* One {OID, value} pair of the extension: its OID in dotted form, its
 * value; false if the element is not such a pair. */
static bool
pair(const ASN1_TYPE *t, STACK_OF(ASN1_TYPE) * *seq, char *oid, size_t oid_len,
     const ASN1_TYPE **value)
{
    *seq = t->type == V_ASN1_SEQUENCE ? sequence(t->value.sequence->data, t->value.sequence->length)
                                      : NULL;
    if (*seq == NULL || sk_ASN1_TYPE_num(*seq) != 2)
        return false;
    const ASN1_TYPE *o = sk_ASN1_TYPE_value(*seq, 0);
    *value = sk_ASN1_TYPE_value(*seq, 1);
    return o->type == V_ASN1_OBJECT && OBJ_obj2txt(oid, (int)oid_len, o->value.object, 1) > 0;
}

static void
read_tcb(const ASN1_TYPE *v, struct pck_tcb *out)
{
    STACK_OF(ASN1_TYPE) *tcb = v->type == V_ASN1_SEQUENCE
                                   ? sequence(v->value.sequence->data, v->value.sequence->length)
                                   : NULL;

    for (int i = 0; i < sk_ASN1_TYPE_num(tcb); i++) {
        STACK_OF(ASN1_TYPE) * kv;
        const ASN1_TYPE *val;
        char oid[64], *end;
        unsigned long comp = 0;
        /* OID_SGX_TCB.N, N a whole number (not N.M, N followed by more) */
        if (pair(sk_ASN1_TYPE_value(tcb, i), &kv, oid, sizeof(oid), &val) &&
            val->type == V_ASN1_INTEGER &&
            strncmp(oid, OID_SGX_TCB ".", strlen(OID_SGX_TCB) + 1) == 0 &&
            (comp = strtoul(oid + strlen(OID_SGX_TCB) + 1, &end, 10), *end == '\0')) {
            long n = ASN1_INTEGER_get(val->value.integer);
            if (comp >= 1 && comp <= SVN_COMPONENTS && n >= 0 && n <= 255) {
                out->sgx[comp - 1] = (uint8_t)n;
                out->found |= 1u << (comp - 1);
            } else if (strcmp(oid, OID_SGX_PCESVN) == 0 && n >= 0 && n <= 65535) {
                out->pcesvn = (unsigned)n;
                out->found |= 1u << 16;
            }
        }
        sk_ASN1_TYPE_pop_free(kv, ASN1_TYPE_free);
    }
    sk_ASN1_TYPE_pop_free(tcb, ASN1_TYPE_free);
}

static bool
octets(const ASN1_TYPE *v, uint8_t *out, size_t n)
{
    if (v->type != V_ASN1_OCTET_STRING || (size_t)v->value.octet_string->length != n)
        return false;
    memcpy(out, v->value.octet_string->data, n);
    return true;
}

/* Reads the SGX extension of the PCK certificate; false if a part is
 * missing. */
static bool
pck_tcb_read(X509 *pck, struct pck_tcb *out)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(OID_SGX, 1);
    int idx = obj != NULL ? X509_get_ext_by_OBJ(pck, obj, -1) : -1;
    ASN1_OCTET_STRING *data = idx >= 0 ? X509_EXTENSION_get_data(X509_get_ext(pck, idx)) : NULL;
    STACK_OF(ASN1_TYPE) *ext = data != NULL ? sequence(data->data, data->length) : NULL;

    memset(out, 0, sizeof(*out));
    for (int i = 0; i < sk_ASN1_TYPE_num(ext); i++) {
        STACK_OF(ASN1_TYPE) * kv;
        const ASN1_TYPE *val;
        char oid[64];
        if (pair(sk_ASN1_TYPE_value(ext, i), &kv, oid, sizeof(oid), &val)) {
            if (strcmp(oid, OID_SGX_TCB) == 0)
                read_tcb(val, out);
            else if (strcmp(oid, OID_SGX_FMSPC) == 0 && octets(val, out->fmspc, FMSPC_LEN))
                out->found |= 1u << 17;
            else if (strcmp(oid, OID_SGX_PCE_ID) == 0 && octets(val, out->pce_id, PCE_ID_LEN))
                out->found |= 1u << 18;
        }
        sk_ASN1_TYPE_pop_free(kv, ASN1_TYPE_free);
    }
    sk_ASN1_TYPE_pop_free(ext, ASN1_TYPE_free);
    ASN1_OBJECT_free(obj);
    return out->found == PCK_FOUND_ALL;
}

/* ---- judging */

static bool
within(time_t now, time_t from, time_t until)
{
    return now >= from && now <= until;
}

/* The CRL of cert's issuer (found by its name, verified by issuer) is in
 * force at now and does not list cert. what names cert in err. */
static enum attest_result
not_revoked(const struct tdx_collateral *col, X509 *issuer, X509 *cert, time_t now,
            const char *what, char *err)
{
    X509_CRL *crl = NULL;
    X509_REVOKED *entry;
    EVP_PKEY *key = X509_get0_pubkey(issuer);

    for (size_t i = 0; i < col->ncrls && crl == NULL; i++)
        if (X509_NAME_cmp(X509_CRL_get_issuer(col->crls[i]), X509_get_issuer_name(cert)) == 0)
            crl = col->crls[i];
    if (crl == NULL)
        return attest_fail(err, ATTEST_UNTRUSTED, "collateral: no CRL of the CA of %s", what);
    if (key == NULL || X509_CRL_verify(crl, key) != 1)
        return attest_fail(err, ATTEST_UNTRUSTED, "collateral: the CRL for %s is not its CA's",
                           what);
    if (!attest_time_within(X509_CRL_get0_lastUpdate(crl), X509_CRL_get0_nextUpdate(crl), now))
        return attest_fail(err, ATTEST_UNTRUSTED,
                           "collateral: the CRL for %s is not in force at the time given "
                           "(fetch it again)",
                           what);
    if (X509_CRL_get0_by_cert(crl, &entry, cert) == 1)
        return attest_fail(err, ATTEST_UNTRUSTED, "collateral: %s is revoked", what);
    return ATTEST_OK;
}

/* Both chains reach a root at now, and no certificate of them is revoked
 * (the PCK by its CA's CRL, that CA and the TCB signing certificate by
 * their roots'). */
static enum attest_result
judge_chains(const struct tdx_collateral *col, STACK_OF(X509) * chain,
             const struct attest_policy *pol, char *err)
{
    X509 *pck = sk_X509_value(chain, 0), *ca = sk_X509_value(chain, 1);
    X509 *signer = sk_X509_value(col->signer_chain, 0), *root = NULL, *pck_root = NULL;
    enum attest_result r;

    if ((r = attest_tdx_chain_verify(signer, col->signer_chain, pol,
                                     "collateral: the TCB signing chain", &root, err)) != ATTEST_OK)
        return r;
    if (X509_check_issued(root, signer) != X509_V_OK)
        return attest_fail(err, ATTEST_UNTRUSTED,
                           "collateral: the TCB signing certificate is not issued by the root");
    if ((r = attest_signer_check(signer, "collateral: the TCB signing certificate", err)) !=
        ATTEST_OK)
        return r;
    if (ca == NULL || X509_check_issued(ca, pck) != X509_V_OK ||
        attest_tdx_chain_verify(ca, chain, pol, "quote: the PCK chain", &pck_root, err) !=
            ATTEST_OK ||
        X509_check_issued(pck_root, ca) != X509_V_OK)
        return attest_fail(err, ATTEST_UNTRUSTED,
                           "quote: the PCK chain is not PCK, its CA, the root");
    if ((r = not_revoked(col, ca, pck, pol->now, "the PCK certificate", err)) != ATTEST_OK ||
        (r = not_revoked(col, pck_root, ca, pol->now, "the PCK CA", err)) != ATTEST_OK ||
        (r = not_revoked(col, root, signer, pol->now, "the TCB signing certificate", err)) !=
            ATTEST_OK)
        return r;
    return ATTEST_OK;
}

/* The TDX module signed by signer, its attributes under the mask. */
static enum attest_result
module_is(const struct module_signer *signer, const uint8_t *body, char *err)
{
    if (memcmp(body + BODY_MRSIGNERSEAM, signer->mrsigner, MRSIGNERSEAM_LEN) != 0)
        return attest_fail(err, ATTEST_UNTRUSTED,
                           "quote: the TDX module is not signed as the TCB Info says");
    for (size_t i = 0; i < sizeof(signer->mask); i++)
        if ((body[BODY_SEAMATTRIBUTES + i] & signer->mask[i]) != signer->attributes[i])
            return attest_fail(err, ATTEST_UNTRUSTED,
                               "quote: the TDX module's attributes are not the TCB Info's");
    return ATTEST_OK;
}

/* What the TCB Info says of one TEE_TCB_SVN: the platform's level, and a
 * TDX 1.5 module's by its identity. */
struct svn_judged {
    const struct tcb_level *level;
    bool module_judged;
    enum attest_tcb_status module;
};

/* A TDX 1.5 module (svn[1], its major version, above 0): the TCB Info's
 * identity of that version, and its level by svn[0]. which names svn in
 * err ("" for TEE_TCB_SVN). */
static enum attest_result
judge_module(const struct tcb_info *t, const uint8_t *body, const uint8_t *svn, const char *which,
             struct svn_judged *out, char *err)
{
    enum attest_result r;

    for (size_t i = 0; i < t->nmods; i++) {
        const struct module_identity *m = &t->mods[i];
        if (m->version != svn[1])
            continue;
        if ((r = module_is(&m->signer, body, err)) != ATTEST_OK)
            return r;
        if (!svn_status(m->levels, m->nlevels, svn[0], &out->module))
            return attest_fail(err, ATTEST_UNTRUSTED,
                               "quote: the TDX module's SVN %u%s is below every level of TDX_%02X",
                               svn[0], which, svn[1]);
        out->module_judged = true;
        return ATTEST_OK;
    }
    return attest_fail(err, ATTEST_UNTRUSTED,
                       "collateral: the TCB Info has no identity of the TDX module TDX_%02X%s",
                       svn[1], which);
}

/* The module and the first level of t that the PCK's components and svn
 * (16 bytes: of a TDX 1.5 module from its third byte, the first two are
 * judged by the module's identity) all reach. */
static enum attest_result
judge_svn(const struct tcb_info *t, const struct pck_tcb *pck, const uint8_t *body,
          const uint8_t *svn, const char *which, struct svn_judged *out, char *err)
{
    size_t from = svn[1] > 0 ? 2 : 0;
    enum attest_result r;

    memset(out, 0, sizeof(*out));
    r = from > 0 ? judge_module(t, body, svn, which, out, err) : module_is(&t->module, body, err);
    if (r != ATTEST_OK)
        return r;
    for (size_t l = 0; l < t->nlevels; l++) {
        const struct tcb_level *lv = &t->levels[l];
        bool reached = pck->pcesvn >= lv->pcesvn;
        for (size_t i = 0; i < SVN_COMPONENTS && reached; i++)
            reached = pck->sgx[i] >= lv->sgx[i] && (i < from || svn[i] >= lv->tdx[i]);
        if (reached) {
            out->level = lv;
            return ATTEST_OK;
        }
    }
    return attest_fail(err, ATTEST_UNTRUSTED,
                       "collateral: no TCB level of the TCB Info matches the platform%s", which);
}

/* The platform's TCB level: the TCB Info of its FMSPC, judged by
 * TEE_TCB_SVN and, of a TDX 1.5 report, by TEE_TCB_SVN2 too: the TDX
 * module running now, which made the report (a TD-preserving update
 * replaces the module the TD was launched under). */
static enum attest_result
judge_platform(const struct tdx_collateral *col, const struct pck_tcb *pck, const uint8_t *body,
               const struct attest_policy *pol, struct attest_claims *c, char *err)
{
    const struct tcb_info *t = NULL;
    struct svn_judged j;
    enum attest_result r;

    for (size_t i = 0; i < col->ninfos && t == NULL; i++)
        if (memcmp(col->infos[i].fmspc, pck->fmspc, FMSPC_LEN) == 0)
            t = &col->infos[i];
    if (t == NULL)
        return attest_fail(err, ATTEST_UNTRUSTED,
                           "collateral: no TCB Info for the platform's FMSPC "
                           "%02x%02x%02x%02x%02x%02x",
                           pck->fmspc[0], pck->fmspc[1], pck->fmspc[2], pck->fmspc[3],
                           pck->fmspc[4], pck->fmspc[5]);
    if (memcmp(t->pce_id, pck->pce_id, PCE_ID_LEN) != 0)
        return attest_fail(err, ATTEST_UNTRUSTED,
                           "collateral: the TCB Info is of another PCE than the PCK's");
    if (!within(pol->now, t->issued, t->next_update))
        return attest_fail(err, ATTEST_UNTRUSTED,
                           "collateral: the TCB Info is not current at the time given "
                           "(fetch it again)");
    if ((r = judge_svn(t, pck, body, body + BODY_TEE_TCB_SVN, "", &j, err)) != ATTEST_OK)
        return r;
    c->tcb_status = j.level->status;
    c->module_judged = j.module_judged;
    c->module_status = j.module;
    snprintf(c->tcb_date, sizeof(c->tcb_date), "%s", j.level->date);
    snprintf(c->advisories, sizeof(c->advisories), "%s", j.level->advisories);
    if (!c->tdx15)
        return ATTEST_OK;
    if ((r = judge_svn(t, pck, body, body + BODY_TEE_TCB_SVN2, SVN2_WHICH, &j, err)) != ATTEST_OK)
        return r;
    c->tcb2_judged = true;
    c->tcb_status2 = j.level->status;
    c->module2_judged = j.module_judged;
    c->module_status2 = j.module;
    return ATTEST_OK;
}

/* The quoting enclave against the QE Identity, and its level. */
static enum attest_result
judge_qe(const struct tdx_collateral *col, const uint8_t *qe, const struct attest_policy *pol,
         struct attest_claims *c, char *err)
{
    unsigned isvsvn = (unsigned)(qe[QE_ISVSVN] | qe[QE_ISVSVN + 1] << 8);

    if (!within(pol->now, col->qe_issued, col->qe_next_update))
        return attest_fail(err, ATTEST_UNTRUSTED,
                           "collateral: the QE Identity is not current at the time given "
                           "(fetch it again)");
    if (memcmp(qe + QE_MRSIGNER, col->qe_mrsigner, QE_MRSIGNER_LEN) != 0 ||
        (unsigned)(qe[QE_ISVPRODID] | qe[QE_ISVPRODID + 1] << 8) != col->qe_prodid)
        return attest_fail(err, ATTEST_UNTRUSTED,
                           "quote: the QE report is not of the TD quoting enclave Intel names "
                           "(MRSIGNER, ISVPRODID)");
    /* MISCSELECT is a little-endian word in the report, big-endian hex in
     * the identity */
    for (size_t i = 0; i < 4; i++)
        if ((qe[QE_MISCSELECT + i] & col->qe_misc_mask[3 - i]) != col->qe_misc[3 - i])
            return attest_fail(err, ATTEST_UNTRUSTED,
                               "quote: the quoting enclave's MISCSELECT is not Intel's");
    for (size_t i = 0; i < QE_ATTRIBUTES_LEN; i++)
        if ((qe[QE_ATTRIBUTES + i] & col->qe_attributes_mask[i]) != col->qe_attributes[i])
            return attest_fail(err, ATTEST_UNTRUSTED,
                               "quote: the quoting enclave's ATTRIBUTES are not Intel's "
                               "(a debug enclave?)");
    if (!svn_status(col->qe_levels, col->nqe_levels, isvsvn, &c->qe_status))
        return attest_fail(err, ATTEST_UNTRUSTED,
                           "quote: the quoting enclave's ISVSVN %u is below every level Intel "
                           "lists",
                           isvsvn);
    return ATTEST_OK;
}

enum attest_result
tdx_collateral_judge(const struct tdx_collateral *col, STACK_OF(X509) * chain, const uint8_t *body,
                     const uint8_t *qe, const struct attest_policy *pol, struct attest_claims *c,
                     char *err)
{
    unsigned ok = pol->tcb_status_ok != 0 ? pol->tcb_status_ok : 1u << ATTEST_TCB_UP_TO_DATE;
    struct pck_tcb pck;
    enum attest_result r;

    if (!pck_tcb_read(sk_X509_value(chain, 0), &pck))
        return attest_fail(err, ATTEST_MALFORMED,
                           "quote: the PCK certificate has no SGX extension with its TCB, "
                           "FMSPC and PCE ID");
    if ((r = judge_chains(col, chain, pol, err)) != ATTEST_OK ||
        (r = judge_platform(col, &pck, body, pol, c, err)) != ATTEST_OK ||
        (r = judge_qe(col, qe, pol, c, err)) != ATTEST_OK)
        return r;
    c->tcb_judged = true;
    if (!(ok & 1u << c->tcb_status))
        return attest_fail(err, ATTEST_POLICY,
                           "policy: the platform's TCB is %s (advisories: %s), not accepted",
                           attest_tcb_status_names[c->tcb_status],
                           c->advisories[0] != '\0' ? c->advisories : "none");
    if (c->module_judged && !(ok & 1u << c->module_status))
        return attest_fail(err, ATTEST_POLICY, "policy: the TDX module's TCB is %s, not accepted",
                           attest_tcb_status_names[c->module_status]);
    if (c->tcb2_judged && !(ok & 1u << c->tcb_status2))
        return attest_fail(err, ATTEST_POLICY, "policy: the platform's TCB%s is %s, not accepted",
                           SVN2_WHICH, attest_tcb_status_names[c->tcb_status2]);
    if (c->module2_judged && !(ok & 1u << c->module_status2))
        return attest_fail(err, ATTEST_POLICY, "policy: the TDX module's TCB%s is %s, not accepted",
                           SVN2_WHICH, attest_tcb_status_names[c->module_status2]);
    if (!(ok & 1u << c->qe_status))
        return attest_fail(err, ATTEST_POLICY,
                           "policy: the quoting enclave's TCB is %s, not accepted",
                           attest_tcb_status_names[c->qe_status]);
    return ATTEST_OK;
}
