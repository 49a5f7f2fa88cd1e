/* utf8.h - the one UTF-8 check of the tree (log lines in json/logfmt, JSON
 * strings of field encryption), and the one way text is written inside a
 * JSON string (log lines, strbuf_json_string()). */
#ifndef AIRLOCK_CORE_UTF8_H
#define AIRLOCK_CORE_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

#define UTF8_JSON_CHAR_MAX 6 /* the most bytes utf8_json_char() writes */

/* The character at s[0..n) (n >= 1) as the inside of a JSON string, into
 * out (UTF8_JSON_CHAR_MAX bytes, no NUL): quotes, backslashes and control
 * bytes (DEL too) escaped, valid UTF-8 as it is, a byte that starts no
 * UTF-8 sequence as U+FFFD. Returns the bytes written; *used gets the
 * bytes of s they stand for. */
static inline size_t
utf8_json_char(const uint8_t *s, size_t n, char *out, size_t *used)
{
    static const char raw[] = "\"\\\n\t\r", esc[] = "\"\\ntr";
    size_t k = utf8_seq_len(s, n);
    const char *e = s[0] != '\0' ? memchr(raw, s[0], sizeof(raw) - 1) : NULL;

    *used = k > 0 ? k : 1;
    if (k == 0) {
        memcpy(out, "\\ufffd", 6);
        return 6;
    }
    if (e != NULL) {
        out[0] = '\\';
        out[1] = esc[e - raw];
        return 2;
    }
    if (s[0] < 0x20 || s[0] == 0x7f) {
        char u[7];
        snprintf(u, sizeof(u), "\\u%04x", s[0]);
        memcpy(out, u, 6);
        return 6;
    }
    memcpy(out, s, k);
    return k;
}

#endif
