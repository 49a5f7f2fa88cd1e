/* utf8.h - the one UTF-8 check of the tree (log lines in json/logfmt, JSON
 * strings of field encryption). */
#ifndef AIRLOCK_CORE_UTF8_H
#define AIRLOCK_CORE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The length of the UTF-8 sequence at s[0..n) (n >= 1): 1 for ASCII, 2-4
 * for a valid multi-byte sequence, 0 when it is not one (overlong forms,
 * surrogates, past U+10FFFF, cut short). */
static inline size_t
utf8_seq_len(const uint8_t *s, size_t n)
{
    uint8_t lo = 0x80, hi = 0xbf; /* bounds of the second byte */
    size_t len;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        lo = s[0] == 0xe0 ? 0xa0 : 0x80;
        hi = s[0] == 0xed ? 0x9f : 0xbf;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        lo = s[0] == 0xf0 ? 0x90 : 0x80;
        hi = s[0] == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

#endif
