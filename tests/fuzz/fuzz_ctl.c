/* fuzz_ctl.c - libFuzzer harness for the control command parser.
 *
 * A command that parses must parse the same from a copy of just its line,
 * its slices must lie inside that line and hold no separator, and
 * every shorter prefix must be AGAIN; otherwise the result must be AGAIN (a
 * short input without newline) or INVALID with a message. abort() on any
 * disagreement. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/ctl.h"

static int
inside(const char *s, size_t n, const char *base, size_t len)
{
    return s >= base && s + n <= base + len;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data, *why = NULL;
    struct ctl_cmd cmd, again;
    size_t used = 0, used2 = 0;
    enum parse_result r = ctl_parse(in, size, &cmd, &used, &why);

    if (r == PARSE_AGAIN) {
        check(size < CTL_LINE_MAX && memchr(in, '\n', size) == NULL);
        return 0;
    }
    if (r == PARSE_INVALID) {
        check(why != NULL);
        return 0;
    }
    check(used >= 1 && used <= size && used <= CTL_LINE_MAX && in[used - 1] == '\n');
    if (cmd.verb == CTL_DRAIN) {
        check(cmd.name != NULL && cmd.name_len >= 1 && cmd.name_len <= CTL_NAME_MAX);
        check(inside(cmd.name, cmd.name_len, in, used));
        check(memchr(cmd.name, '/', cmd.name_len) == NULL);
        if (cmd.pool != NULL)
            check(inside(cmd.pool, cmd.pool_len, in, used) && cmd.pool_len >= 1);
        check(cmd.key == NULL);
    } else if (cmd.verb == CTL_ASSIGN) {
        check(cmd.name == NULL && cmd.pool != NULL && cmd.key != NULL);
        check(cmd.pool_len >= 1 && cmd.pool_len <= CTL_NAME_MAX);
        check(cmd.key_len >= 1 && cmd.key_len <= CTL_KEY_MAX);
        check(inside(cmd.pool, cmd.pool_len, in, used) && inside(cmd.key, cmd.key_len, in, used));
        check(memchr(cmd.pool, ' ', cmd.pool_len) == NULL &&
              memchr(cmd.key, ' ', cmd.key_len) == NULL);
    } else {
        check(cmd.name == NULL && cmd.pool == NULL && cmd.key == NULL);
    }
    check(ctl_parse(in, used, &again, &used2, &why) == PARSE_OK && used2 == used);
    check(again.verb == cmd.verb && again.name_len == cmd.name_len);
    check(ctl_parse(in, used - 1, &again, &used2, &why) == PARSE_AGAIN);
    return 0;
}
