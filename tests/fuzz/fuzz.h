/* fuzz.h - what every libFuzzer harness shares: the entry point and the
 * property check (a failed property aborts, which libFuzzer reports as a
 * crash with the input that caused it). */
#ifndef AIRLOCK_TESTS_FUZZ_H
#define AIRLOCK_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void
check(int ok)
{
    if (!ok)
        abort();
}

#endif
