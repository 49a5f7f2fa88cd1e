/* addr.c - number and address pieces of endpoints and rules; see addr.h.
 *
 * Pure: no syscalls, no allocation. inet_pton() is plain libc string code. */
#include "net/addr.h"

#include <arpa/inet.h>
#include <string.h>

bool
addr_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

bool
addr_parse_decimal(const char *p, size_t len, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;

    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!addr_is_digit(p[i]))
            return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
        if (v > max)
            return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* inet_pton() wants a NUL-terminated string, so the slice is copied first. The longest
 * valid IPv6 text is 45 bytes; anything longer than the buffer is invalid anyway. */
bool
addr_parse_ip(int af, const char *p, size_t len, void *addr)
{
    char tmp[64];

    if (len == 0 || len >= sizeof(tmp))
        return false;
    memcpy(tmp, p, len);
    tmp[len] = '\0';
    return inet_pton(af, tmp, addr) == 1;
}

bool
addr_prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
    unsigned bytes = prefix / 8, bits = prefix % 8;

    if (memcmp(a, b, bytes) != 0)
        return false;
    if (bits == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - bits));
    return (a[bytes] & mask) == (b[bytes] & mask);
}
