/* guard.h - place parser input right before an unreadable page, so that
 * reading one byte past the end crashes the test (picohttpparser test.c). */
#ifndef AIRLOCK_TESTS_GUARD_H
#define AIRLOCK_TESTS_GUARD_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct guard {
    uint8_t *map;
    size_t map_len;
};

/* Copies len bytes of src so that they end exactly at a PROT_NONE page and
 * returns the copy; release with guard_free(). Aborts on failure. */
static inline uint8_t *
guard_copy(struct guard *g, const void *src, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data_pages = (len + page - 1) / page;

    g->map_len = (data_pages + 1) * page;
    g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED)
        abort();
    if (mprotect(g->map + data_pages * page, page, PROT_NONE) != 0)
        abort();
    uint8_t *p = g->map + data_pages * page - len;
    if (len > 0)
        memcpy(p, src, len);
    return p;
}

static inline void
guard_free(struct guard *g)
{
    munmap(g->map, g->map_len);
    g->map = NULL;
}

#endif
