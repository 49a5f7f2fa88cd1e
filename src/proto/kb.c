/* kb.c - the key broker's messages; see kb.h. */
#include "proto/kb.h"

#include <string.h>

#include "core/units.h"

struct verb {
    const char *word;
    enum kb_verb verb;
    size_t min_hex, max_hex; /* hex fields; REQUEST and REFUSED take a name instead */
};

static const struct verb verbs[] = {
    {"REQUEST", KB_REQUEST, 0, 0}, {"CHALLENGE", KB_CHALLENGE, 1, 1}, {"ATTEST", KB_ATTEST, 2, 3},
    {"SECRET", KB_SECRET, 2, 2},   {"REFUSED", KB_REFUSED, 0, 0},
};

static int
name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

/* The length of the word at s[0..len) (up to a space or the end). */
static size_t
word_len(const char *s, size_t len)
{
    const char *sp = memchr(s, ' ', len);

    return sp != NULL ? (size_t)(sp - s) : len;
}

static const char *
parse_name(struct kb_slice *out, const char *s, size_t len)
{
    if (len == 0 || len > KB_NAME_MAX)
        return "expected a name of 1-63 characters";
    for (size_t i = 0; i < len; i++)
        if (!name_char(s[i]))
            return "expected a name of characters A-Z a-z 0-9 _ . -";
    out->p = s;
    out->len = len;
    return NULL;
}

static const char *
parse_hex(struct kb_slice *out, const char *s, size_t len)
{
    if (len == 0 || len % 2 != 0)
        return "expected an even number of hex digits";
    for (size_t i = 0; i < len; i++)
        if (units_hex_digit(s[i]) < 0)
            return "expected hex digits";
    out->p = s;
    out->len = len;
    return NULL;
}

/* The words after the verb, at s[0..len): a name (and text), or hex fields. */
static const char *
parse_args(const struct verb *v, const char *s, size_t len, struct kb_msg *msg)
{
    size_t w;
    const char *why;

    if (v->verb == KB_REQUEST || v->verb == KB_REFUSED) {
        w = word_len(s, len);
        if ((why = parse_name(&msg->name, s, w)) != NULL)
            return why;
        if (w == len)
            return NULL;
        if (v->verb == KB_REQUEST)
            return "expected REQUEST NAME";
        msg->text.p = s + w + 1;
        msg->text.len = len - w - 1;
        for (size_t i = 0; i < msg->text.len; i++)
            if ((unsigned char)msg->text.p[i] < 0x20 || (unsigned char)msg->text.p[i] >= 0x7f)
                return "expected printable text after the reason";
        return NULL;
    }
    for (;;) {
        if (msg->nhex == v->max_hex)
            return "too many fields";
        w = word_len(s, len);
        if ((why = parse_hex(&msg->hex[msg->nhex++], s, w)) != NULL)
            return why;
        if (w == len)
            break;
        s += w + 1;
        len -= w + 1;
    }
    if (msg->nhex < v->min_hex)
        return "missing fields";
    if (v->verb == KB_CHALLENGE &&
        (msg->hex[0].len < 2 * KB_NONCE_MIN || msg->hex[0].len > 2 * KB_NONCE_MAX))
        return "expected a nonce of 16-64 bytes";
    return NULL;
}

enum parse_result
kb_parse(const char *in, size_t len, size_t max, struct kb_msg *msg, size_t *used, const char **why)
{
    const char *nl = memchr(in, '\n', len < max ? len : max);
    size_t n, w;

    memset(msg, 0, sizeof(*msg));
    if (nl == NULL)
        return len < max ? PARSE_AGAIN : parse_verdict(why, "message too long");
    *used = (size_t)(nl - in) + 1;
    n = *used - 1;
    if (n > 0 && in[n - 1] == '\r')
        n--;
    w = word_len(in, n);
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        if (strlen(verbs[i].word) != w || memcmp(in, verbs[i].word, w) != 0)
            continue;
        msg->verb = verbs[i].verb;
        if (w == n)
            return parse_verdict(why, "missing fields");
        return parse_verdict(why, parse_args(&verbs[i], in + w + 1, n - w - 1, msg));
    }
    return parse_verdict(why, "unknown message");
}

size_t
kb_unhex(struct kb_slice s, uint8_t *out, size_t cap)
{
    if (s.len / 2 > cap || s.len % 2 != 0)
        return 0;
    for (size_t i = 0; i < s.len / 2; i++) {
        int hi = units_hex_digit(s.p[2 * i]), lo = units_hex_digit(s.p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return s.len / 2;
}

void
kb_hex(char *out, const uint8_t *in, size_t len)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
}
