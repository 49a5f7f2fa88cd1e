/* fuzz_lines.c - libFuzzer harness for the line splitter and the escape of
 * lines an instance or a peer wrote (proto/lines.h): the input, cut into
 * pieces its first byte chooses, comes out as lines no longer than the cap,
 * each escaped into text a reader takes as one line: no control byte but
 * TAB, only valid UTF-8, no C1 control, line or paragraph separator or bidi
 * control. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "proto/lines.h"

/* The length of the valid UTF-8 sequence at p[0..n), 0 when there is none. */
static size_t
utf8_seq(const uint8_t *p, size_t n, uint32_t *cp)
{
    size_t k = p[0] < 0x80             ? 1
               : (p[0] & 0xe0) == 0xc0 ? 2
               : (p[0] & 0xf0) == 0xe0 ? 3
               : (p[0] & 0xf8) == 0xf0 ? 4
                                       : 0;
    static const uint32_t lowest[5] = {0, 0, 0x80, 0x800, 0x10000};

    if (k == 0 || k > n)
        return 0;
    *cp = k == 1 ? p[0] : p[0] & (0x7f >> k);
    for (size_t i = 1; i < k; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        *cp = *cp << 6 | (p[i] & 0x3f);
    }
    if (*cp < lowest[k] || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
        return 0;
    return k;
}

static void
check_escaped(const struct line *l, size_t max)
{
    uint8_t out[256];
    struct line e = line_escape(l, out, max);
    uint32_t cp;

    check(e.data == l->data || e.len <= max);
    for (size_t i = 0, k; i < e.len; i += k) {
        check((k = utf8_seq(e.data + i, e.len - i, &cp)) != 0);
        check(cp >= 0x20 || cp == '\t');
        check(cp != 0x7f && !(cp >= 0x80 && cp <= 0x9f) && cp != 0x2028 && cp != 0x2029);
        check(!(cp >= 0x202a && cp <= 0x202e) && !(cp >= 0x2066 && cp <= 0x2069));
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t buf[64];
    struct line_split ls;
    struct line l;
    size_t piece, cap, max, used;

    if (size < 2)
        return 0;
    piece = data[0] % 16 + 1;
    cap = data[1] % sizeof(buf) + 1;
    max = (size_t)(data[0] >> 4) * 16 + 4;
    data += 2;
    size -= 2;
    line_split_init(&ls, buf, cap);
    for (size_t off = 0; off < size;) {
        size_t n = size - off < piece ? size - off : piece;
        while (n > 0 && line_next(&ls, data + off, n, &used, &l) == PARSE_OK) {
            check(l.len <= cap && used <= n);
            check(memchr(l.data, '\n', l.len) == NULL);
            check_escaped(&l, max);
            off += used;
            n -= used;
        }
        off += n;
    }
    if (line_flush(&ls, &l) == PARSE_OK) {
        check(l.len <= cap);
        check_escaped(&l, max);
    }
    return 0;
}
