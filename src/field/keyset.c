/* keyset.c - a tenant's keys (docs/field-encryption.md "Keys"): the file,
 * the keys derived from each key (one for GCM, two for SIV, so that no key
 * serves two algorithms), the contexts keyed once, the nonce pool. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "core/file.h"
#include "field/field_int.h"

#define KEYSET_FILE_MAX (1 << 20)
#define KEYSET_READS 3 /* reads of a file that changes while it is read */
#define MASTER_LEN 32

/* key_len bytes of HKDF-SHA256(master, info) into out: 0 or -1. */
static int
derive(const uint8_t master[MASTER_LEN], const char *info, uint8_t *out, size_t out_len)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)master, MASTER_LEN),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info)),
        OSSL_PARAM_construct_end(),
    };
    int rc = kc != NULL && EVP_KDF_derive(kc, out, out_len, p) == 1 ? 0 : -1;
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    return rc;
}

static void
key_close(struct field_key *k)
{
    EVP_CIPHER_CTX_free(k->gcm_enc);
    EVP_CIPHER_CTX_free(k->gcm_dec);
    EVP_CIPHER_CTX_free(k->ctr);
    EVP_MAC_CTX_free(k->cmac);
    OPENSSL_cleanse(k, sizeof(*k));
}

/* Keys k from the 32 bytes of master: its contexts, S2V's first block. */
static int
key_open(struct field_key *k, const uint8_t master[MASTER_LEN])
{
    uint8_t gcm[32], siv[64];
    static const uint8_t zero[16];
    size_t n = 0;
    int rc = -1;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "CMAC", NULL);
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, "AES-256-CBC", 0),
        OSSL_PARAM_construct_end(),
    };

    k->gcm_enc = EVP_CIPHER_CTX_new();
    k->gcm_dec = EVP_CIPHER_CTX_new();
    k->ctr = EVP_CIPHER_CTX_new();
    k->cmac = mac ? EVP_MAC_CTX_new(mac) : NULL;
    if (k->gcm_enc == NULL || k->gcm_dec == NULL || k->ctr == NULL || k->cmac == NULL)
        goto fail;
    if (derive(master, "airlock field v1 aes-256-gcm", gcm, sizeof(gcm)) != 0 ||
        derive(master, "airlock field v1 aes-256-siv", siv, sizeof(siv)) != 0)
        goto fail;
    if (!EVP_EncryptInit_ex2(k->gcm_enc, EVP_aes_256_gcm(), gcm, NULL, NULL) ||
        !EVP_DecryptInit_ex2(k->gcm_dec, EVP_aes_256_gcm(), gcm, NULL, NULL) ||
        !EVP_EncryptInit_ex2(k->ctr, EVP_aes_256_ctr(), siv + 32, NULL, NULL) ||
        !EVP_MAC_init(k->cmac, siv, 32, p) || !EVP_MAC_update(k->cmac, zero, 16) ||
        !EVP_MAC_final(k->cmac, k->s2v_zero, &n, 16) || n != 16)
        goto fail;
    rc = 0;
fail:
    OPENSSL_cleanse(gcm, sizeof(gcm));
    OPENSSL_cleanse(siv, sizeof(siv));
    EVP_MAC_free(mac);
    return rc;
}

static bool
id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > FIELD_KEY_ID_MAX)
        return false;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static int
unhex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return -1;
    for (size_t i = 0; i < 2 * n; i++) {
        int c = s[i], v = c >= '0' && c <= '9'   ? c - '0'
                          : c >= 'a' && c <= 'f' ? c - 'a' + 10
                          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                 : -1;
        if (v < 0)
            return -1;
        out[i / 2] = (uint8_t)(i % 2 ? out[i / 2] | v : v << 4);
    }
    return 0;
}

/* Wipes every string under node: the keys, wherever a malformed file put
 * them. */
static void
wipe_strings(cJSON *node)
{
    cJSON *c;

    cJSON_ArrayForEach(c, node)
    {
        if (cJSON_IsString(c))
            OPENSSL_cleanse(c->valuestring, strlen(c->valuestring));
        wipe_strings(c);
    }
}

/* The strings of the parsed document are wiped before it is freed. */
static void
doc_free(cJSON *doc)
{
    wipe_strings(doc);
    cJSON_Delete(doc);
}

static int
fail_einval(char *err, const char *msg)
{
    snprintf(err, FIELD_ERR_MAX, "%s", msg);
    return -EINVAL;
}

/* A name that two members of one object of node share, or NULL: cJSON
 * keeps both and finds the first, so "primary" given twice (a rotation
 * that added a line and kept the old one) would quietly keep the old key. */
static const char *
duplicate_member(const cJSON *node)
{
    const cJSON *a, *b;
    const char *d;

    cJSON_ArrayForEach(a, node)
    {
        if (cJSON_IsObject(node))
            for (b = a->next; b != NULL; b = b->next)
                if (strcmp(a->string, b->string) == 0)
                    return a->string;
        if ((d = duplicate_member(a)) != NULL)
            return d;
    }
    return NULL;
}

/* Whether text[0..len) holds a NUL, raw or escaped (\u0000): cJSON's
 * strings end there, so what followed would be quietly dropped. */
static bool
has_nul(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\0')
            return true;
        if (text[i] == '\\' && i + 1 < len) {
            if (text[i + 1] == 'u' && i + 5 < len && strncmp(text + i + 2, "0000", 4) == 0)
                return true;
            i++; /* the escaped character */
        }
    }
    return false;
}

int
field_keyset_parse(const char *text, size_t len, struct field_keyset **out, char *err)
{
    struct field_keyset *ks = NULL;
    uint8_t master[MASTER_LEN];
    uint8_t(*digests)[SHA256_DIGEST_LENGTH] = NULL; /* of the keys so far: none twice */
    int rc = -EINVAL;
    const char *end = NULL, *dup;
    cJSON *doc = cJSON_ParseWithLengthOpts(text, len, &end, false);
    cJSON *tenant = cJSON_GetObjectItemCaseSensitive(doc, "tenant");
    cJSON *primary = cJSON_GetObjectItemCaseSensitive(doc, "primary");
    cJSON *keys = cJSON_GetObjectItemCaseSensitive(doc, "keys"), *k;

    if (!cJSON_IsObject(doc)) {
        rc = fail_einval(err, "not a JSON object");
        goto fail;
    }
    while (end < text + len && strchr(" \t\r\n", *end) != NULL)
        end++;
    if (end != text + len) {
        rc = fail_einval(err, "text after the JSON object");
        goto fail;
    }
    if (has_nul(text, len)) {
        rc = fail_einval(err, "a NUL (\\u0000) in a string");
        goto fail;
    }
    if ((dup = duplicate_member(doc)) != NULL) {
        snprintf(err, FIELD_ERR_MAX, "\"%.40s\" is given twice in one object", dup);
        goto fail;
    }
    if (!cJSON_IsString(tenant) || !id_ok(tenant->valuestring)) {
        rc = fail_einval(err, "\"tenant\": expected a name of 1-32 characters A-Z a-z 0-9 _ -");
        goto fail;
    }
    if (!cJSON_IsString(primary)) {
        rc = fail_einval(err, "\"primary\": expected the id of one of the keys");
        goto fail;
    }
    int nkeys = cJSON_GetArraySize(keys);
    if (!cJSON_IsArray(keys) || nkeys < 1 || nkeys > FIELD_KEYS_MAX) {
        rc = fail_einval(err, "\"keys\": expected a list of 1-256 {\"id\", \"key\"} objects");
        goto fail;
    }
    ks = calloc(1, sizeof(*ks));
    digests = calloc((size_t)nkeys, sizeof(*digests));
    if (ks == NULL || digests == NULL ||
        (ks->keys = calloc((size_t)nkeys, sizeof(*ks->keys))) == NULL) {
        rc = -ENOMEM;
        snprintf(err, FIELD_ERR_MAX, "out of memory");
        goto fail;
    }
    snprintf(ks->tenant, sizeof(ks->tenant), "%s", tenant->valuestring);
    ks->primary = SIZE_MAX;
    cJSON_ArrayForEach(k, keys)
    {
        cJSON *id = cJSON_GetObjectItemCaseSensitive(k, "id");
        cJSON *hex = cJSON_GetObjectItemCaseSensitive(k, "key");
        size_t i = ks->nkeys;
        if (!cJSON_IsString(id) || !id_ok(id->valuestring)) {
            snprintf(err, FIELD_ERR_MAX, "keys[%zu].id: expected 1-32 characters A-Z a-z 0-9 _ -",
                     i);
            goto fail;
        }
        if (field_keyset_find(ks, id->valuestring, strlen(id->valuestring)) != NULL) {
            snprintf(err, FIELD_ERR_MAX, "keys[%zu].id: %s is there twice", i, id->valuestring);
            goto fail;
        }
        if (!cJSON_IsString(hex) || unhex(hex->valuestring, master, MASTER_LEN) != 0) {
            snprintf(err, FIELD_ERR_MAX, "keys[%zu].key (%s): expected 64 hex digits (32 bytes)", i,
                     id->valuestring);
            goto fail;
        }
        /* all zero (a placeholder left in), or one key under two ids: no
         * key of its own */
        static const uint8_t zero[MASTER_LEN];
        if (CRYPTO_memcmp(master, zero, MASTER_LEN) == 0) {
            snprintf(err, FIELD_ERR_MAX, "keys[%zu].key (%s): all zero: expected 32 random bytes",
                     i, id->valuestring);
            goto fail;
        }
        SHA256(master, MASTER_LEN, digests[i]);
        for (size_t j = 0; j < i; j++)
            if (CRYPTO_memcmp(digests[i], digests[j], sizeof(digests[i])) == 0) {
                snprintf(err, FIELD_ERR_MAX, "keys[%zu].key (%s): the same key as keys[%zu] (%s)",
                         i, id->valuestring, j, ks->keys[j].id);
                goto fail;
            }
        snprintf(ks->keys[i].id, sizeof(ks->keys[i].id), "%s", id->valuestring);
        ks->nkeys++;
        if (key_open(&ks->keys[i], master) != 0) {
            rc = -EIO;
            snprintf(err, FIELD_ERR_MAX, "keys[%zu] (%s): the crypto library failed", i,
                     id->valuestring);
            goto fail;
        }
        if (strcmp(id->valuestring, primary->valuestring) == 0)
            ks->primary = i;
    }
    if (ks->primary == SIZE_MAX) {
        /* echoed only when it is an id: a key pasted there is not */
        if (id_ok(primary->valuestring))
            snprintf(err, FIELD_ERR_MAX, "\"primary\": no key has the id %s", primary->valuestring);
        else
            fail_einval(err, "\"primary\": expected the id of one of the keys (1-32 characters "
                             "A-Z a-z 0-9 _ -)");
        goto fail;
    }
    OPENSSL_cleanse(master, sizeof(master));
    doc_free(doc);
    free(digests);
    *out = ks;
    return 0;
fail:
    OPENSSL_cleanse(master, sizeof(master));
    if (digests != NULL)
        OPENSSL_cleanse(digests, (size_t)cJSON_GetArraySize(keys) * sizeof(*digests));
    free(digests);
    doc_free(doc);
    field_keyset_free(&ks);
    return rc;
}

/* Reads st->st_size bytes of the file open at fd from its start into text
 * (KEYSET_FILE_MAX bytes): 0 and *len, or -errno. Fewer bytes are read of
 * a file that shrank meanwhile (its stamp tells). */
static int
read_whole(int fd, const struct stat *st, char *text, size_t *len)
{
    *len = 0;
    while (*len < (size_t)st->st_size) {
        ssize_t n = pread(fd, text + *len, (size_t)st->st_size - *len, (off_t)*len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        *len += (size_t)n;
    }
    return 0;
}

/* The checks of the file open at fd that st describes: 0, or -errno with
 * err. */
static int
file_fit(const char *path, const struct stat *st, char *err)
{
    if (st->st_uid != geteuid() && st->st_uid != 0) {
        snprintf(err, FIELD_ERR_MAX, "%s: owned by uid %u, expected %u or root", path,
                 (unsigned)st->st_uid, (unsigned)geteuid());
        return -EPERM;
    }
    if (st->st_mode & 077) {
        snprintf(err, FIELD_ERR_MAX, "%s: mode %04o lets others read the keys, expected 0600", path,
                 (unsigned)(st->st_mode & 07777));
        return -EPERM;
    }
    if (st->st_size > KEYSET_FILE_MAX) {
        snprintf(err, FIELD_ERR_MAX, "%s: larger than 1 MiB", path);
        return -EFBIG;
    }
    return 0;
}

int
field_keyset_load_n(const char *path, struct field_keyset **out, size_t n, struct file_stamp *stamp,
                    char *err)
{
    char line[FIELD_ERR_MAX];
    struct stat st, after;
    struct file_stamp before, now;
    char *text = NULL;
    size_t len = 0, wipe = 0;
    int rc, fd = file_open_regular(path, O_RDONLY | O_NOFOLLOW, 0, &st);

    memset(out, 0, n * sizeof(*out));
    if (fd < 0) {
        snprintf(err, FIELD_ERR_MAX, "%s: %s", path,
                 fd == -ELOOP ? "a symbolic link (name the keys' file itself)" : file_strerror(fd));
        return fd == -FILE_NOT_REGULAR ? -EPERM : fd;
    }
    rc = -ENOMEM;
    if ((text = malloc(KEYSET_FILE_MAX)) == NULL) {
        snprintf(err, FIELD_ERR_MAX, "%s: out of memory", path);
        goto fail;
    }
    /* the bytes parsed are those of one state of the file, the stamp's: a
     * file rewritten in place while it is read is read again */
    for (int reads = 1;; reads++) {
        if ((rc = file_fit(path, &st, err)) != 0)
            goto fail;
        file_stamp_stat(&st, &before);
        rc = read_whole(fd, &st, text, &len);
        wipe = len > wipe ? len : wipe;
        if (rc == 0 && fstat(fd, &after) != 0)
            rc = -errno;
        if (rc != 0) {
            snprintf(err, FIELD_ERR_MAX, "%s: read: %s", path, strerror(-rc));
            goto fail;
        }
        file_stamp_stat(&after, &now);
        if (file_stamp_equal(&before, &now) && len == (size_t)st.st_size)
            break;
        rc = -EAGAIN;
        if (reads == KEYSET_READS) {
            snprintf(err, FIELD_ERR_MAX, "%s: changed while it was read, %d times", path, reads);
            goto fail;
        }
        st = after;
    }
    for (size_t k = 0; k < n; k++)
        if ((rc = field_keyset_parse(text, len, &out[k], line)) != 0) {
            snprintf(err, FIELD_ERR_MAX, "%.100s: %.150s", path, line);
            goto fail;
        }
    if (stamp != NULL)
        *stamp = before;
fail:
    for (size_t k = 0; rc != 0 && k < n; k++)
        field_keyset_free(&out[k]);
    if (text != NULL)
        OPENSSL_cleanse(text, wipe);
    free(text);
    close(fd);
    return rc;
}

int
field_keyset_load(const char *path, struct field_keyset **out, char *err)
{
    return field_keyset_load_n(path, out, 1, NULL, err);
}

void
field_keyset_free(struct field_keyset **ksp)
{
    struct field_keyset *ks = *ksp;
    if (ks == NULL)
        return;
    for (size_t i = 0; i < ks->nkeys; i++)
        key_close(&ks->keys[i]);
    free(ks->keys);
    strbuf_free(&ks->scratch); /* wiped: decoded and decrypted values */
    strbuf_free(&ks->plain);
    OPENSSL_cleanse(ks, sizeof(*ks));
    free(ks);
    *ksp = NULL;
}

const char *
field_keyset_tenant(const struct field_keyset *ks)
{
    return ks->tenant;
}

const char *
field_keyset_primary(const struct field_keyset *ks)
{
    return ks->keys[ks->primary].id;
}

struct field_key *
field_keyset_find(struct field_keyset *ks, const char *id, size_t len)
{
    for (size_t i = 0; i < ks->nkeys; i++)
        if (strlen(ks->keys[i].id) == len && memcmp(ks->keys[i].id, id, len) == 0)
            return &ks->keys[i];
    return NULL;
}

int
field_keyset_nonce(struct field_keyset *ks, uint8_t n[12])
{
    if (ks->nonces_left == 0) {
        if (RAND_bytes(&ks->nonces[0][0], sizeof(ks->nonces)) != 1)
            return -1;
        ks->nonces_left = FIELD_NONCE_POOL;
    }
    ks->nonces_left--;
    memcpy(n, ks->nonces[ks->nonces_left], 12);
    OPENSSL_cleanse(ks->nonces[ks->nonces_left], 12);
    return 0;
}
