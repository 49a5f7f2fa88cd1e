/* dns.c - the question of a DNS query; see dns.h.
 *
 *   0..1   id
 *   2      QR(1) OPCODE(4) AA TC RD
 *   3      RA Z(3) RCODE(4)
 *   4..5   QDCOUNT  6..7 ANCOUNT  8..9 NSCOUNT  10..11 ARCOUNT
 *   12..   QNAME (length-prefixed labels, a 0 byte last), QTYPE, QCLASS
 *
 * Pure: no syscalls, no allocation, never reads past msg[len). */
#include "proto/dns.h"

#include <string.h>

#define DNS_WIRE_NAME_MAX 255
#define DNS_LABEL_MAX 63
#define DNS_QR 0x80
#define DNS_OPCODE_MASK 0x78
#define DNS_RD 0x01

static int
label_byte_ok(uint8_t ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_';
}

enum parse_result
dns_parse_query(const uint8_t *msg, size_t len, struct dns_question *q, const char **err)
{
    const char *why;
    size_t p = DNS_HDR_LEN, out = 0;

    if (len >= 3 && (msg[2] & DNS_QR) != 0) {
        why = "a response, not a query";
        goto invalid;
    }
    if (len >= 3 && (msg[2] & DNS_OPCODE_MASK) != 0) {
        why = "opcode other than QUERY";
        goto invalid;
    }
    if ((len >= 5 && msg[4] != 0) || (len >= 6 && msg[5] != 1)) {
        why = "expected exactly one question";
        goto invalid;
    }
    if (len < DNS_HDR_LEN)
        return PARSE_AGAIN;
    for (;;) {
        if (p >= len)
            return PARSE_AGAIN;
        uint8_t l = msg[p];
        if ((l & 0xC0) == 0xC0) {
            why = "compression pointer in the question";
            goto invalid;
        }
        if ((l & 0xC0) != 0) {
            why = "reserved label type";
            goto invalid;
        }
        if (p - DNS_HDR_LEN + 1 + l > DNS_WIRE_NAME_MAX) {
            why = "name longer than 255 bytes";
            goto invalid;
        }
        p++;
        if (l == 0)
            break;
        if (out > 0)
            q->name[out++] = '.';
        for (size_t i = 0; i < l; i++, p++) {
            if (p >= len)
                return PARSE_AGAIN;
            if (!label_byte_ok(msg[p])) {
                why = "a byte other than a letter, digit, '-' or '_' in a label";
                goto invalid;
            }
            uint8_t ch = msg[p];
            q->name[out++] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
        }
    }
    if (len - p < 4)
        return PARSE_AGAIN;
    q->name[out] = '\0';
    q->id = (uint16_t)(msg[0] << 8 | msg[1]);
    q->qtype = (uint16_t)(msg[p] << 8 | msg[p + 1]);
    q->qclass = (uint16_t)(msg[p + 2] << 8 | msg[p + 3]);
    q->end = p + 4;
    return PARSE_OK;

invalid:
    if (err != NULL)
        *err = why;
    return PARSE_INVALID;
}

int
dns_name_match(const char *pattern, const char *name)
{
    if (pattern[0] == '*' && pattern[1] == '.') {
        const char *suffix = pattern + 1; /* ".example.org" */
        size_t ls = strlen(suffix), ln = strlen(name);
        return ln > ls && strcmp(name + ln - ls, suffix) == 0;
    }
    return strcmp(pattern, name) == 0;
}

enum parse_result
dns_pattern_parse(const char *s, char out[DNS_PATTERN_MAX], const char **err)
{
    size_t n = 0, label = 0, o = 0;
    const char *name = s;

    if (s[0] == '*' && s[1] == '.') {
        name = s + 2;
        out[o++] = '*';
        out[o++] = '.';
    }
    n = strlen(name);
    if (n > 0 && name[n - 1] == '.')
        n--; /* the root's final dot */
    if (n == 0) {
        *err = "expected a name such as example.com or *.example.com";
        return PARSE_INVALID;
    }
    if (n > DNS_NAME_MAX) {
        *err = "expected a name of at most 253 characters";
        return PARSE_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = (uint8_t)name[i];
        if (ch == '.') {
            if (label == 0) {
                *err = "expected a name without empty labels";
                return PARSE_INVALID;
            }
            label = 0;
        } else if (!label_byte_ok(ch)) {
            *err = "expected labels of letters, digits, '-' and '_' (\"*.\" only at the start)";
            return PARSE_INVALID;
        } else if (++label > DNS_LABEL_MAX) {
            *err = "expected labels of at most 63 characters";
            return PARSE_INVALID;
        }
        out[o++] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    }
    if (label == 0) {
        *err = "expected a name without empty labels";
        return PARSE_INVALID;
    }
    out[o] = '\0';
    return PARSE_OK;
}

size_t
dns_error_reply(const uint8_t *msg, size_t len, const struct dns_question *q, int rcode,
                uint8_t *out, size_t cap)
{
    size_t qlen = q != NULL ? q->end - DNS_HDR_LEN : 0;

    if (len < DNS_HDR_LEN || (msg[2] & DNS_QR) != 0 || (q != NULL && q->end > len) ||
        cap < DNS_HDR_LEN + qlen)
        return 0;
    memset(out, 0, DNS_HDR_LEN);
    out[0] = msg[0];
    out[1] = msg[1];
    out[2] = (uint8_t)(DNS_QR | (msg[2] & (DNS_OPCODE_MASK | DNS_RD)));
    out[3] = (uint8_t)(rcode & 0x0F);
    out[5] = q != NULL;
    if (qlen > 0)
        memcpy(out + DNS_HDR_LEN, msg + DNS_HDR_LEN, qlen);
    return DNS_HDR_LEN + qlen;
}
