/* ctl.c - see ctl.h. */
#include "proto/ctl.h"

#include <string.h>

static const char *const verbs[CTL_VERB_COUNT] = {
    [CTL_SESSIONS] = "sessions", [CTL_INSTANCES] = "instances", [CTL_DRAIN] = "drain",
    [CTL_ASSIGN] = "assign",     [CTL_RELOAD] = "reload",       [CTL_CONNS] = "conns",
    [CTL_STATS] = "stats",       [CTL_CONFIG] = "config",
};

const char *
ctl_verb_name(enum ctl_verb verb)
{
    return verb < CTL_VERB_COUNT ? verbs[verb] : "?";
}

int
ctl_needs_directory(enum ctl_verb verb)
{
    return verb <= CTL_ASSIGN;
}

static int
name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

/* Returns the length of the name at s[0..len) (stopping at '/' or the
 * end), or 0 when it is empty, too long or holds another character. */
static size_t
name_len(const char *s, size_t len)
{
    size_t n = 0;

    while (n < len && s[n] != '/') {
        if (!name_char(s[n]) || n == CTL_NAME_MAX)
            return 0;
        n++;
    }
    return n;
}

/* Returns 1 when s[0..len) is a key: see ctl.h. */
static int
key_ok(const char *s, size_t len)
{
    if (len == 0 || len > CTL_KEY_MAX || s[0] == '-' || s[0] == '.')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!name_char(s[i]) && s[i] != '@')
            return 0;
    return 1;
}

static int
word_is(const char *s, size_t len, const char *word)
{
    return len == strlen(word) && memcmp(s, word, len) == 0;
}

enum parse_result
ctl_parse(const char *in, size_t len, struct ctl_cmd *cmd, size_t *used, const char **why)
{
    const char *nl = memchr(in, '\n', len < CTL_LINE_MAX ? len : CTL_LINE_MAX);
    size_t line, verb;

    memset(cmd, 0, sizeof(*cmd));
    if (nl == NULL) {
        if (len < CTL_LINE_MAX)
            return PARSE_AGAIN;
        *why = "command line too long";
        return PARSE_INVALID;
    }
    *used = (size_t)(nl - in) + 1;
    line = (size_t)(nl - in);
    if (line > 0 && in[line - 1] == '\r')
        line--;
    for (verb = 0; verb < line && in[verb] != ' '; verb++)
        ;
    /* the commands without an argument */
    static const enum ctl_verb bare[] = {CTL_SESSIONS, CTL_INSTANCES, CTL_RELOAD,
                                         CTL_CONNS,    CTL_STATS,     CTL_CONFIG};
    for (size_t i = 0; i < sizeof(bare) / sizeof(bare[0]); i++) {
        if (!word_is(in, verb, verbs[bare[i]]))
            continue;
        if (verb != line) {
            *why = "sessions, instances, reload, conns, stats and config take no argument";
            return PARSE_INVALID;
        }
        cmd->verb = bare[i];
        return PARSE_OK;
    }
    const char *arg = in + verb + 1;
    size_t alen = verb < line ? line - verb - 1 : 0;
    if (word_is(in, verb, "assign")) {
        const char *sp = memchr(arg, ' ', alen);
        size_t plen = sp != NULL ? (size_t)(sp - arg) : alen;
        if (sp == NULL || plen == 0 || name_len(arg, plen) != plen ||
            !key_ok(sp + 1, alen - plen - 1)) {
            *why = "assign: expected POOL KEY (a pool name; a key of 1-127 of "
                   "A-Z a-z 0-9 _ . @ -, not starting with - or .)";
            return PARSE_INVALID;
        }
        cmd->verb = CTL_ASSIGN;
        cmd->pool = arg;
        cmd->pool_len = plen;
        cmd->key = sp + 1;
        cmd->key_len = alen - plen - 1;
        return PARSE_OK;
    }
    if (!word_is(in, verb, "drain")) {
        *why = "unknown command (sessions, instances, drain NAME, assign POOL KEY, reload, conns, "
               "stats, config)";
        return PARSE_INVALID;
    }
    size_t first = name_len(arg, alen);
    if (first == 0) {
        *why = "drain: expected NAME or POOL/NAME (1-63 of A-Z a-z 0-9 _ . -)";
        return PARSE_INVALID;
    }
    cmd->verb = CTL_DRAIN;
    if (first == alen) {
        cmd->name = arg;
        cmd->name_len = first;
        return PARSE_OK;
    }
    size_t second = name_len(arg + first + 1, alen - first - 1);
    if (second == 0 || first + 1 + second != alen) {
        *why = "drain: expected NAME or POOL/NAME (1-63 of A-Z a-z 0-9 _ . -)";
        return PARSE_INVALID;
    }
    cmd->pool = arg;
    cmd->pool_len = first;
    cmd->name = arg + first + 1;
    cmd->name_len = second;
    return PARSE_OK;
}
