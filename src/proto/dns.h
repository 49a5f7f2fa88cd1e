/* dns.h - the question of a DNS query (RFC 1035 4.1), for dns_allow.
 *
 * Only what an allowlist needs: the header of a standard query with exactly
 * one question, and that question's name, type and class. The name must be
 * plain: labels of 1-63 letters, digits, '-' or '_', 255 bytes at most on
 * the wire, no compression pointer (there is nothing before the question to
 * point at) and no other label type. A byte such as '.' inside a label would
 * print the same as a label boundary and let "x.allowed.com" in as a
 * subdomain of allowed.com while it is one label under com: such names are
 * refused. Pure: no syscalls, no allocation. */
#ifndef AIRLOCK_PROTO_DNS_H
#define AIRLOCK_PROTO_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "proto/parse.h"

#define DNS_HDR_LEN 12
#define DNS_NAME_MAX 253 /* longest name in text form, without the final dot */
#define DNS_PATTERN_MAX (2 + DNS_NAME_MAX + 1) /* "*." + name + NUL */
#define DNS_RCODE_FORMERR 1
#define DNS_RCODE_REFUSED 5

struct dns_question {
    uint16_t id;
    uint16_t qtype, qclass;
    char name[DNS_NAME_MAX + 1]; /* lowercase, dotted, no final dot; "" for the root */
    size_t end;                  /* offset just past the question in the message */
};

/* Parses the header and the one question of the DNS query msg[0..len).
 * PARSE_OK: *q is filled (name copied and lowercased). PARSE_AGAIN: a valid
 * prefix of a query, cut short (for a whole datagram that means malformed).
 * PARSE_INVALID: a response, an opcode other than QUERY, a question count
 * other than 1, or a bad name; *err (if err is not NULL) says which. Bytes
 * after the question (EDNS and other records) are not looked at. *q is
 * unspecified unless PARSE_OK. Never reads past msg[len). */
enum parse_result dns_parse_query(const uint8_t *msg, size_t len, struct dns_question *q,
                                  const char **err);

/* Returns 1 when name (as dns_parse_query() writes it) matches pattern, 0
 * otherwise. pattern is a lowercase name without final dot ("example.com":
 * that name only) or "*." and a name ("*.example.org": any name below it,
 * not example.org itself). */
int dns_name_match(const char *pattern, const char *name);

/* Checks one allowlist pattern s (NUL-terminated): a name ("example.com")
 * or "*." and a name ("*.example.org"), of labels as in a query (1-63
 * letters, digits, '-' or '_'; 253 characters at most), a final dot allowed.
 * On PARSE_OK writes its canonical form (lowercase, no final dot) to out,
 * which holds DNS_PATTERN_MAX bytes. PARSE_INVALID: *err says why. */
enum parse_result dns_pattern_parse(const char *s, char out[DNS_PATTERN_MAX], const char **err);

/* Writes an error response (rcode, e.g. DNS_RCODE_REFUSED) to the query
 * msg[0..len) into out: the query's id, opcode and RD flag, QR set, and the
 * question copied when q (from a PARSE_OK dns_parse_query() of msg) is not
 * NULL, none otherwise. Returns its length, or 0 (nothing written) when msg
 * is shorter than a header, is itself a response, or cap is too small. */
size_t dns_error_reply(const uint8_t *msg, size_t len, const struct dns_question *q, int rcode,
                       uint8_t *out, size_t cap);

#endif
