/* test_broker_wrap.c - wrapping a secret (broker/wrap.c wrap_secret())
 * leaves no copy of it in the memory it gives back.
 *
 * The secret passes through OpenSSL in clear (a memory BIO, the CMS
 * content, the cipher's buffers) before it is encrypted. Every allocation
 * OpenSSL makes goes through CRYPTO_set_mem_functions() hooks, and
 * airlock's own free() and realloc() are wrapped (-Wl,--wrap): a block
 * given back, or moved, while it holds the marker is a leak. The secret
 * is larger than a BIO copy's chunk (4 KiB), so it is moved in pieces,
 * and its length is not a multiple of the cipher's block. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "broker/wrap.h"

#define MARKER "WRAPPED-SECRET-MARKER-51d0"
#define SECRET_LEN (20 * 1024 + 7)

void __real_free(void *p);
void *__real_realloc(void *p, size_t n);
void __wrap_free(void *p);
void *__wrap_realloc(void *p, size_t n);

static int leaks, moved; /* freed, reallocated while holding the marker */
static bool watching;    /* counting: only while the secret is handled */

static bool
holds_marker(void *p)
{
    return watching && p != NULL &&
           memmem(p, malloc_usable_size(p), MARKER, strlen(MARKER)) != NULL;
}

void
__wrap_free(void *p)
{
    if (holds_marker(p))
        leaks++;
    __real_free(p);
}

void *
__wrap_realloc(void *p, size_t n)
{
    if (holds_marker(p))
        moved++;
    return __real_realloc(p, n);
}

static void *
crypto_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return malloc(n);
}

static void *
crypto_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return __wrap_realloc(p, n);
}

static void
crypto_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    __wrap_free(p);
}

static uint8_t secret[SECRET_LEN];

/* Wraps the secret to a fresh key, twice, and opens it again. */
static void
test_wrap_wipes(void **state)
{
    EVP_PKEY *k = EVP_RSA_gen(2048), *pub;
    uint8_t *spki = NULL, *der = NULL, *pt;
    int slen = i2d_PUBKEY(k, &spki);
    size_t len, n;

    (void)state;
    for (size_t i = 0; i < sizeof(secret); i++)
        secret[i] = (uint8_t)MARKER[i % strlen(MARKER)];
    assert_true(slen > 0);
    assert_non_null(pub = wrap_public_key(spki, (size_t)slen));
    for (int round = 0; round < 2; round++) {
        leaks = moved = 0;
        watching = true;
        if (wrap_secret(pub, secret, sizeof(secret), &der, &len) != 0) {
            ERR_print_errors_fp(stderr);
            fail_msg("wrap_secret failed");
        }
        OPENSSL_free(der);
        watching = false;
        if (leaks != 0 || moved != 0)
            fail_msg("round %d: %d blocks freed and %d moved holding the secret", round, leaks,
                     moved);
    }
    /* the requester's side (airlock attest --secret) opens it: only the
     * copy it hands back, which its caller wipes, holds the secret */
    assert_int_equal(wrap_secret(pub, secret, sizeof(secret), &der, &len), 0);
    leaks = moved = 0;
    watching = true;
    assert_int_equal(wrap_open(k, der, len, &pt, &n), 0);
    assert_int_equal(n, sizeof(secret));
    assert_memory_equal(pt, secret, n);
    explicit_bzero(pt, n);
    free(pt);
    watching = false;
    assert_int_equal(leaks, 0);
    assert_int_equal(moved, 0);
    OPENSSL_free(der);
    OPENSSL_free(spki);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(k);
}

int
main(void)
{
    /* before OpenSSL allocates anything */
    if (CRYPTO_set_mem_functions(crypto_malloc, crypto_realloc, crypto_free) != 1)
        return 1;

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrap_wipes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
