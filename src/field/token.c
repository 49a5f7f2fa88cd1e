/* token.c - the token format (docs/field-encryption.md "Tokens"):
 *
 *   al1:<key id>:<type>:<rule>:<base64url(nonce | ciphertext | tag)>
 *
 * "al" (airlock) and the version form a URI-scheme-like prefix that needs no
 * escaping in JSON, URLs or SQL and is rare at the start of real data; key
 * id, type letter (s n b; upper case for deterministic) and the rule's id
 * (base64url of 6 bytes of SHA-256 of its path) follow, and everything up to
 * the last ':' is the associated data, so none of it can be changed or moved
 * to another key, type or rule without failing authentication. A string
 * that starts with the prefix of any version is a token: it authenticates
 * or the body is refused, it is never passed on as it is. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "field/field_int.h"

#define RULE_B64 8 /* base64url characters of the 6-byte rule id */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url value of each byte, -1 for the others */
static const int8_t b64val_of[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1, -1, 0,  1,  2,  3,  4,  5,  6,
    7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, 63,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
    49, 50, 51, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

static size_t
b64_len(size_t n)
{
    return (n * 4 + 2) / 3;
}

/* base64url without padding of in[0..n) at out (b64_len(n) characters). */
static void
b64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = b64url[v >> 18];
        *out++ = b64url[v >> 12 & 63];
        *out++ = b64url[v >> 6 & 63];
        *out++ = b64url[v & 63];
    }
    if (n - i == 1) {
        *out++ = b64url[in[i] >> 2];
        *out++ = b64url[(in[i] & 3) << 4];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];
        *out++ = b64url[v >> 10];
        *out++ = b64url[v >> 4 & 63];
        *out++ = b64url[(v & 15) << 2];
    }
}

/* Decodes s[0..n) (canonical base64url without padding: unused bits zero)
 * into out; returns the byte count, or -1. */
static long
b64_decode(const char *s, size_t n, uint8_t *out)
{
    const uint8_t *u = (const uint8_t *)s;
    size_t i = 0, o = 0;

    if (n % 4 == 1)
        return -1;
    for (; i + 4 <= n; i += 4) {
        int a = b64val_of[u[i]], b = b64val_of[u[i + 1]], c = b64val_of[u[i + 2]],
            d = b64val_of[u[i + 3]];
        if ((a | b | c | d) < 0)
            return -1;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
    }
    if (n - i >= 2) {
        int a = b64val_of[u[i]], b = b64val_of[u[i + 1]];
        int c = n - i == 3 ? b64val_of[u[i + 2]] : 0;
        if ((a | b | c) < 0)
            return -1;
        out[o++] = (uint8_t)(a << 2 | b >> 4);
        if (n - i == 3) {
            out[o++] = (uint8_t)((b & 15) << 4 | c >> 2);
            if (c & 3)
                return -1;
        } else if (b & 15) {
            return -1;
        }
    }
    return (long)o;
}

static const char type_letter[] = {
    [FIELD_T_STRING] = 's', [FIELD_T_NUMBER] = 'n', [FIELD_T_BOOL] = 'b'};

/* The length of the "al<digits>:" prefix at s, or 0. */
static size_t
prefix_len(const char *s, size_t len)
{
    size_t i = 2;
    if (len < 4 || s[0] != 'a' || s[1] != 'l')
        return 0;
    while (i < len && i < 5 && s[i] >= '0' && s[i] <= '9')
        i++;
    return i > 2 && i < len && s[i] == ':' ? i + 1 : 0;
}

bool
field_token_claimed(const char *s, size_t len)
{
    return prefix_len(s, len) != 0;
}

/* The length of s[i..) up to the next ':' (or to len when there is none). */
static size_t
part(const char *s, size_t len, size_t i)
{
    const char *c = memchr(s + i, ':', len - i);
    return c ? (size_t)(c - s) - i : len - i;
}

enum field_result
field_token_parse(const char *s, size_t len, struct field_token *tok, char *err)
{
    size_t p = prefix_len(s, len), i, n;
    uint8_t rule[RULE_B64];

    if (p == 0)
        return field_fail(err, FIELD_BAD_TOKEN, "not a token");
    if (p != strlen(FIELD_TOKEN_PREFIX) || memcmp(s, FIELD_TOKEN_PREFIX, p) != 0)
        return field_fail(err, FIELD_BAD_TOKEN, "token of an unsupported version %.*s", (int)p - 1,
                          s);
    *tok = (struct field_token){.kid = s + p};
    n = part(s, len, p);
    if (n < 1 || n > FIELD_KEY_ID_MAX || p + n == len)
        return field_fail(err, FIELD_BAD_TOKEN, "token: bad key id");
    for (size_t k = 0; k < n; k++)
        if (b64val_of[(unsigned char)s[p + k]] < 0)
            return field_fail(err, FIELD_BAD_TOKEN, "token: bad key id");
    tok->kid_len = n;
    i = p + n + 1;
    if (part(s, len, i) != 1 || i + 1 == len)
        return field_fail(err, FIELD_BAD_TOKEN, "token: bad type");
    const char *t = memchr(type_letter, s[i] | 0x20, sizeof(type_letter));
    if (t == NULL)
        return field_fail(err, FIELD_BAD_TOKEN, "token: bad type");
    tok->type = (enum field_type)(t - type_letter);
    tok->deterministic = s[i] >= 'A' && s[i] <= 'Z';
    i += 2;
    if (part(s, len, i) != RULE_B64 || i + RULE_B64 == len ||
        b64_decode(s + i, RULE_B64, rule) != FIELD_RULE_ID_LEN)
        return field_fail(err, FIELD_BAD_TOKEN, "token: bad rule id");
    memcpy(tok->rule, rule, FIELD_RULE_ID_LEN);
    i += RULE_B64 + 1;
    tok->header_len = i;
    tok->payload = s + i;
    tok->payload_len = len - i;
    size_t min = b64_len(field_aead_overhead(tok->deterministic));
    if (tok->payload_len < min || tok->payload_len > b64_len(FIELD_VALUE_MAX + 28) ||
        memchr(tok->payload, ':', tok->payload_len) != NULL)
        return field_fail(err, FIELD_BAD_TOKEN, "token: bad payload length");
    for (size_t k = 0; k < tok->payload_len; k++)
        if (b64val_of[(unsigned char)tok->payload[k]] < 0)
            return field_fail(err, FIELD_BAD_TOKEN, "token: payload is not base64url");
    return FIELD_OK;
}

enum field_result
field_token_seal(struct field_keyset *ks, const uint8_t rule[FIELD_RULE_ID_LEN], bool det,
                 enum field_type type, const uint8_t *v, size_t len, struct strbuf *out, char *err)
{
    struct field_key *key = &ks->keys[ks->primary];
    size_t kid = strlen(key->id), clen = field_aead_overhead(det) + len;
    size_t hlen = strlen(FIELD_TOKEN_PREFIX) + kid + 3 + RULE_B64 + 1;

    if (len > FIELD_VALUE_MAX)
        return field_fail(err, FIELD_TOO_LARGE, "a value of %zu bytes (at most %d)", len,
                          FIELD_VALUE_MAX);
    /* header | base64 | (the binary ciphertext, encoded forward into base64) */
    char *h = strbuf_room(out, hlen + b64_len(clen) + clen);
    if (h == NULL)
        return field_fail(err, FIELD_INTERNAL, "out of memory");
    char *b = h + hlen;
    uint8_t *c = (uint8_t *)b + b64_len(clen);
    size_t pre = strlen(FIELD_TOKEN_PREFIX);
    memcpy(h, FIELD_TOKEN_PREFIX, pre);
    memcpy(h + pre, key->id, kid);
    h[pre + kid] = ':';
    h[pre + kid + 1] = (char)(det ? type_letter[type] - 0x20 : type_letter[type]);
    h[pre + kid + 2] = ':';
    b64_encode(rule, FIELD_RULE_ID_LEN, h + pre + kid + 3);
    h[hlen - 1] = ':';
    if (field_aead_seal(ks, key, det, (const uint8_t *)h, hlen, v, len, c) != 0)
        return field_fail(err, FIELD_INTERNAL, "the crypto library failed");
    b64_encode(c, clen, b);
    out->len += hlen + b64_len(clen);
    out->data[out->len] = '\0';
    return FIELD_OK;
}

enum field_result
field_seal(struct field_keyset *ks, const struct field_rules *rules, size_t rule,
           enum field_type type, const uint8_t *v, size_t len, struct strbuf *out, char *err)
{
    if (rule >= rules->n)
        return field_fail(err, FIELD_INTERNAL, "no rule %zu", rule);
    return field_token_seal(ks, rules->rule[rule].id, rules->rule[rule].deterministic, type, v, len,
                            out, err);
}

enum field_result
field_open(struct field_keyset *ks, const char *s, size_t len, struct strbuf *out,
           enum field_type *type, char *err)
{
    struct field_token tok;
    enum field_result r = field_token_parse(s, len, &tok, err);

    if (r != FIELD_OK)
        return r;
    struct field_key *key = field_keyset_find(ks, tok.kid, tok.kid_len);
    if (key == NULL)
        return field_fail(err, FIELD_BAD_TOKEN, "token under key %.*s, which the keyset lacks",
                          (int)tok.kid_len, tok.kid);
    size_t clen = tok.payload_len * 3 / 4, over = field_aead_overhead(tok.deterministic);
    /* plaintext | (the binary ciphertext) */
    uint8_t *p = (uint8_t *)strbuf_room(out, clen - over + clen);
    if (p == NULL)
        return field_fail(err, FIELD_INTERNAL, "out of memory");
    uint8_t *c = p + clen - over;
    long got = b64_decode(tok.payload, tok.payload_len, c);
    if (got < (long)over)
        return field_fail(err, FIELD_BAD_TOKEN, "token: payload is not base64url");
    if (field_aead_open(key, tok.deterministic, (const uint8_t *)s, tok.header_len, c, (size_t)got,
                        p) != 0)
        return field_fail(err, FIELD_BAD_TOKEN, "token under key %.*s fails authentication",
                          (int)tok.kid_len, tok.kid);
    out->len += (size_t)got - over;
    out->data[out->len] = '\0';
    *type = tok.type;
    return FIELD_OK;
}
