/* hash.h - FNV-1a, 64 bits: for buckets and names, never for secrets. */
#ifndef AIRLOCK_CORE_HASH_H
#define AIRLOCK_CORE_HASH_H

#include <stdint.h>

#define FNV64_START 14695981039346656037u

/* h (FNV64_START, or a seeded start) carried over the bytes of s. */
static inline uint64_t
fnv64(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        h = (h ^ *p) * 1099511628211u;
    return h;
}

#endif
