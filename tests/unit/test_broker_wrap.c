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
#include "wipe_watch.h"

#define MARKER "WRAPPED-SECRET-MARKER-51d0"
#define SECRET_LEN (20 * 1024 + 7)

static uint8_t secret[SECRET_LEN];

/* Wraps len bytes of the secret to pub and opens them with k, both
 * watched: only the copy wrap_open() hands back, which its caller (airlock
 * attest fetch-secret) wipes, holds the secret. */
static void
wrap_round(EVP_PKEY *pub, EVP_PKEY *k, size_t len)
{
    uint8_t *der = NULL, *pt = NULL;
    size_t der_len, n;

    wipe_watch(pthread_self(), MARKER);
    if (wrap_secret(pub, secret, len, &der, &der_len) != 0) {
        ERR_print_errors_fp(stderr);
        fail_msg("wrap_secret failed");
    }
    assert_int_equal(wrap_open(k, der, der_len, &pt, &n), 0);
    assert_int_equal(n, len);
    assert_memory_equal(pt, secret, n);
    explicit_bzero(pt, n);
    free(pt);
    OPENSSL_free(der);
    wipe_unwatch();
    if (wipe_leaks + wipe_moved > 0)
        fail_msg("%zu bytes: %d blocks freed and %d moved holding the secret", len,
                 atomic_load(&wipe_leaks), atomic_load(&wipe_moved));
}

/* Secrets of every shape: empty, smaller than a block of the cipher and
 * than a BIO copy's chunk, larger than several. */
static void
test_wrap_wipes(void **state)
{
    EVP_PKEY *k = EVP_RSA_gen(2048), *pub;
    uint8_t *spki = NULL;
    int slen = i2d_PUBKEY(k, &spki);

    (void)state;
    for (size_t i = 0; i < sizeof(secret); i++)
        secret[i] = (uint8_t)MARKER[i % strlen(MARKER)];
    assert_true(slen > 0);
    assert_non_null(pub = wrap_public_key(spki, (size_t)slen));
    wrap_round(pub, k, 0);
    wrap_round(pub, k, strlen(MARKER));
    wrap_round(pub, k, sizeof(secret));
    wrap_round(pub, k, sizeof(secret));
    OPENSSL_free(spki);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(k);
}

int
main(void)
{
    /* before OpenSSL allocates anything */
    if (wipe_watch_openssl() != 0)
        return 1;

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrap_wipes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
