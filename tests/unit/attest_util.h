/* attest_util.h - what the attestation verifier tests share: reading the
 * fixtures (tests/fixtures/attestation, ATTEST_FIXTURES), UTC times, hex. */
#ifndef AIRLOCK_TESTS_ATTEST_UTIL_H
#define AIRLOCK_TESTS_ATTEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The whole file under ATTEST_FIXTURES; aborts when it cannot be read. */
static inline uint8_t *
fixture(const char *name, size_t *len)
{
    char path[512];
    FILE *f;
    uint8_t *b;
    long n;

    snprintf(path, sizeof(path), "%s/%s", ATTEST_FIXTURES, name);
    if ((f = fopen(path, "rb")) == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 ||
        fseek(f, 0, SEEK_SET) != 0 || (b = malloc((size_t)n)) == NULL ||
        fread(b, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", path);
        abort();
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static inline time_t
utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    return timegm(&tm);
}

/* Decodes hex into out (at most cap bytes); returns the length; aborts on bad hex. */
static inline size_t
unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2;

    if (strlen(hex) % 2 != 0 || n > cap)
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            abort();
        out[i] = (uint8_t)v;
    }
    return n;
}

/* A scratch directory /tmp/NAME.XXXXXX for a test group's files: made by
 * its setup, removed with everything in it by its teardown. */
static char attest_tmpdir[64];

static inline int
tmpdir_make(const char *name)
{
    snprintf(attest_tmpdir, sizeof(attest_tmpdir), "/tmp/%s.XXXXXX", name);
    return mkdtemp(attest_tmpdir) == NULL ? -1 : 0;
}

static inline int
tmpdir_remove(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", attest_tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
