/* test_cli_attest.c - `airlock attest seal` (cli/attest.c) leaves no copy
 * of the secret it seals in the memory it gives back: sealed, or refused
 * (over the input limit, or over a secret's).
 *
 * free() and realloc() are wrapped and OpenSSL's allocations hooked
 * (wipe_watch.h): a block given back, or moved, while it holds the marker
 * is a leak. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/attest.h"
#include "wipe_watch.h"

#define MARKER "SEALED-SECRET-MARKER-04c7"

static char dir[] = "/tmp/test_cli_attest.XXXXXX";
static char key[64], secret[64];

static int
setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(key, sizeof(key), "%s/key", dir);
    snprintf(secret, sizeof(secret), "%s/secret", dir);
    return 0;
}

static int
teardown(void **state)
{
    char path[96];

    (void)state;
    unlink(key);
    unlink(secret);
    snprintf(path, sizeof(path), "%s/db.sealed", dir);
    unlink(path);
    return rmdir(dir);
}

/* Seals the secret file as "db" while watching: want is the exit status. */
static void
seal_watched(int want)
{
    char *argv[] = {"attest", "seal", "--key-file", key, "--dir", dir, "db", secret, NULL};

    wipe_watch(pthread_self(), MARKER);
    assert_int_equal(cmd_attest(8, argv), want);
    wipe_unwatch();
    assert_int_equal(wipe_leaks, 0);
    assert_int_equal(wipe_moved, 0);
}

static void
test_seal_wipes(void **state)
{
    (void)state;
    assert_int_equal(wipe_marker_file(secret, MARKER, 4000, false), 0);
    seal_watched(0);
    /* over a secret's 64 KiB, then over the input limit */
    assert_int_equal(wipe_marker_file(secret, MARKER, 100 * 1024, false), 0);
    seal_watched(1);
    assert_int_equal(wipe_marker_file(secret, MARKER, 2 << 20, false), 0);
    seal_watched(1);
}

int
main(void)
{
    /* before OpenSSL allocates anything */
    if (wipe_watch_openssl() != 0)
        return 1;

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seal_wipes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
