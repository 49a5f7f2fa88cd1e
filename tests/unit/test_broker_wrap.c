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
        wipe_watch(pthread_self(), MARKER);
        if (wrap_secret(pub, secret, sizeof(secret), &der, &len) != 0) {
            ERR_print_errors_fp(stderr);
            fail_msg("wrap_secret failed");
        }
        OPENSSL_free(der);
        wipe_unwatch();
        if (wipe_leaks + wipe_moved > 0)
            fail_msg("round %d: %d blocks freed and %d moved holding the secret", round,
                     atomic_load(&wipe_leaks), atomic_load(&wipe_moved));
    }
    /* the requester's side (airlock attest --secret) opens it: only the
     * copy it hands back, which its caller wipes, holds the secret */
    assert_int_equal(wrap_secret(pub, secret, sizeof(secret), &der, &len), 0);
    wipe_watch(pthread_self(), MARKER);
    assert_int_equal(wrap_open(k, der, len, &pt, &n), 0);
    assert_int_equal(n, sizeof(secret));
    assert_memory_equal(pt, secret, n);
    explicit_bzero(pt, n);
    free(pt);
    wipe_unwatch();
    assert_int_equal(wipe_leaks, 0);
    assert_int_equal(wipe_moved, 0);
    OPENSSL_free(der);
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
