/* seal.c - secrets at rest; see seal.h. */
#include "broker/seal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "attest/policy.h"
#include "attest/trust.h"

static const char magic[16] = "airlock-seal-v1\n";

#define IV_LEN 12
#define TAG_LEN 16

static int
key_create(const char *path, uint8_t key[SEAL_KEY_LEN], char *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600), ret = 0;

    if (fd < 0) {
        ret = -errno;
        attest_fail(err, ATTEST_MALFORMED, "%s: %s", path, strerror(errno));
        return ret;
    }
    if (RAND_bytes(key, SEAL_KEY_LEN) != 1)
        ret = -EIO;
    else if (write(fd, key, SEAL_KEY_LEN) != SEAL_KEY_LEN)
        ret = errno != 0 ? -errno : -EIO;
    if (close(fd) != 0 && ret == 0)
        ret = -errno;
    if (ret != 0) {
        unlink(path);
        attest_fail(err, ATTEST_MALFORMED, "%s: cannot write the key: %s", path, strerror(-ret));
    }
    return ret;
}

int
seal_key_load(const char *path, bool create, uint8_t key[SEAL_KEY_LEN], char *err)
{
    struct stat st;
    uint8_t *buf;
    size_t n;
    int ret;

    if (create && lstat(path, &st) != 0 && errno == ENOENT)
        return key_create(path, key, err);
    /* the key opens every secret and makes the signing key: one that
     * others can read, or whose owner (another user) can read it or put a
     * key of their own in its place, is refused there */
    if ((ret = attest_file_read(path, true, SEAL_KEY_LEN, &buf, &n, err)) != 0)
        return ret;
    if (n != SEAL_KEY_LEN) {
        attest_fail(err, ATTEST_MALFORMED, "%s: expected 32 bytes", path);
        ret = -EINVAL;
    } else {
        memcpy(key, buf, SEAL_KEY_LEN);
    }
    seal_clear_free(buf, n);
    return ret;
}

EVP_PKEY *
seal_sign_key(const uint8_t key[SEAL_KEY_LEN])
{
    static const char info[] = "airlock-kb-sign-v1";
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, SEAL_KEY_LEN),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, sizeof(info) - 1),
        OSSL_PARAM_construct_end(),
    };
    uint8_t seed[32];
    EVP_PKEY *k = NULL;

    if (ctx != NULL && EVP_KDF_derive(ctx, seed, sizeof(seed), params) == 1)
        k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
    /* the seed is the private key */
    OPENSSL_cleanse(seed, sizeof(seed));
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return k;
}

void
seal_clear_free(uint8_t *p, size_t len)
{
    if (p != NULL)
        OPENSSL_cleanse(p, len);
    free(p);
}

/* AES-256-GCM one way or the other over in (len bytes) into out, with the
 * magic and name as AAD. */
static int
gcm(bool enc, const uint8_t key[SEAL_KEY_LEN], const char *name, const uint8_t iv[IV_LEN],
    const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[TAG_LEN])
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, ok;

    if (ctx == NULL)
        return -ENOMEM;
    ok = EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, iv, enc) == 1 &&
         EVP_CipherUpdate(ctx, NULL, &n, (const uint8_t *)magic, sizeof(magic)) == 1 &&
         EVP_CipherUpdate(ctx, NULL, &n, (const uint8_t *)name, (int)strlen(name)) == 1 &&
         (len == 0 || EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1) &&
         (enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1) &&
         EVP_CipherFinal_ex(ctx, out + n, &n) == 1 &&
         (!enc || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1);
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -EBADMSG;
}

int
seal_encrypt(const uint8_t key[SEAL_KEY_LEN], const char *name, const uint8_t *pt, size_t len,
             uint8_t **out, size_t *out_len)
{
    uint8_t *b;
    int ret;

    if (len > SEAL_SECRET_MAX)
        return -EINVAL;
    if ((b = malloc(len + SEAL_OVERHEAD)) == NULL)
        return -ENOMEM;
    memcpy(b, magic, sizeof(magic));
    if (RAND_bytes(b + sizeof(magic), IV_LEN) != 1) {
        free(b);
        return -EIO;
    }
    ret = gcm(true, key, name, b + sizeof(magic), pt, len, b + sizeof(magic) + IV_LEN,
              b + sizeof(magic) + IV_LEN + len);
    if (ret != 0) {
        free(b);
        return ret;
    }
    *out = b;
    *out_len = len + SEAL_OVERHEAD;
    return 0;
}

int
seal_decrypt(const uint8_t key[SEAL_KEY_LEN], const char *name, const uint8_t *in, size_t len,
             uint8_t **pt, size_t *pt_len)
{
    size_t n;
    uint8_t *b, tag[TAG_LEN];
    int ret;

    if (len < SEAL_OVERHEAD || len - SEAL_OVERHEAD > SEAL_SECRET_MAX ||
        memcmp(in, magic, sizeof(magic)) != 0)
        return -EBADMSG;
    n = len - SEAL_OVERHEAD;
    if ((b = malloc(n + 1)) == NULL)
        return -ENOMEM;
    memcpy(tag, in + len - TAG_LEN, TAG_LEN);
    if ((ret = gcm(false, key, name, in + sizeof(magic), in + sizeof(magic) + IV_LEN, n, b, tag)) !=
        0) {
        seal_clear_free(b, n + 1);
        return ret;
    }
    *pt = b;
    *pt_len = n;
    return 0;
}

int
seal_read(const char *dir, const char *name, const uint8_t key[SEAL_KEY_LEN], uint8_t **pt,
          size_t *pt_len, char *err)
{
    char path[4096 + 80];
    uint8_t *blob;
    size_t n;
    int ret;

    snprintf(path, sizeof(path), "%s/%s.sealed", dir, name);
    if ((ret = attest_file_read(path, false, SEAL_SECRET_MAX + SEAL_OVERHEAD, &blob, &n, err)) != 0)
        return ret;
    if ((ret = seal_decrypt(key, name, blob, n, pt, pt_len)) != 0)
        attest_fail(err, ATTEST_MALFORMED, "%s: %s", path,
                    ret == -EBADMSG ? "not sealed for this name and key, or changed"
                                    : strerror(-ret));
    free(blob);
    return ret;
}

int
seal_write(const char *dir, const char *name, const uint8_t key[SEAL_KEY_LEN], const uint8_t *pt,
           size_t len, char *err)
{
    char path[4096 + 80], tmp[4096 + 96];
    uint8_t *blob = NULL;
    size_t n = 0;
    int fd = -1, ret;

    snprintf(path, sizeof(path), "%s/%s.sealed", dir, name);
    snprintf(tmp, sizeof(tmp), "%s/.%s.sealed.%ld", dir, name, (long)getpid());
    if ((ret = seal_encrypt(key, name, pt, len, &blob, &n)) != 0) {
        attest_fail(err, ATTEST_MALFORMED, "%s: %s", name,
                    ret == -EINVAL ? "a secret is at most 64 KiB" : strerror(-ret));
        return ret;
    }
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
        ret = -errno;
        goto fail;
    }
    if (write(fd, blob, n) != (ssize_t)n) {
        ret = errno != 0 ? -errno : -EIO;
        goto fail;
    }
    ret = fsync(fd) != 0 ? -errno : 0;
    if (close(fd) != 0 && ret == 0)
        ret = -errno;
    fd = -1;
    if (ret != 0)
        goto fail;
    if (rename(tmp, path) != 0) {
        ret = -errno;
        goto fail;
    }
    free(blob);
    return 0;
fail:
    attest_fail(err, ATTEST_MALFORMED, "%s: %s", path, strerror(-ret));
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(blob);
    return ret;
}
