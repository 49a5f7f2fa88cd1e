/* fuzz_kb.c - libFuzzer harness for the key broker's message parser.
 *
 * A message that parses must parse the same from a copy of just its line,
 * its slices must lie inside that line and hold no space, hex slices only
 * hex digits of even length, and every shorter prefix must be AGAIN;
 * otherwise the result must be AGAIN (no newline within the bound) or
 * INVALID with a message. abort() on any disagreement. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/kb.h"

#define MAX 4096

static int
inside(struct kb_slice s, const char *base, size_t len)
{
    return s.p >= base && s.p + s.len <= base + len && memchr(s.p, ' ', s.len) == NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data, *why = NULL;
    struct kb_msg m, again;
    size_t used = 0, used2 = 0;
    enum parse_result r = kb_parse(in, size, MAX, &m, &used, &why);

    if (r == PARSE_AGAIN) {
        check(size < MAX && memchr(in, '\n', size) == NULL);
        return 0;
    }
    if (r == PARSE_INVALID) {
        check(why != NULL);
        return 0;
    }
    check(used >= 1 && used <= size && used <= MAX && in[used - 1] == '\n');
    check(m.nhex <= KB_FIELDS_MAX);
    for (size_t i = 0; i < m.nhex; i++) {
        uint8_t out[MAX / 2];
        check(inside(m.hex[i], in, used) && m.hex[i].len > 0 && m.hex[i].len % 2 == 0);
        check(kb_unhex(m.hex[i], out, sizeof(out)) == m.hex[i].len / 2);
    }
    if (m.verb == KB_REQUEST || m.verb == KB_REFUSED)
        check(m.nhex == 0 && inside(m.name, in, used) && m.name.len >= 1 &&
              m.name.len <= KB_NAME_MAX);
    else
        check(m.nhex >= 1 && m.name.p == NULL);
    check(kb_parse(in, used, MAX, &again, &used2, &why) == PARSE_OK && used2 == used);
    check(again.verb == m.verb && again.nhex == m.nhex);
    check(kb_parse(in, used - 1, MAX, &again, &used2, &why) == PARSE_AGAIN);
    return 0;
}
