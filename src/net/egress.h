/* egress.h - where an enclave may connect out: the destination allowlist of
 * a host-side egress relay and the checks it applies to each destination.
 *
 * A rule is DEST:PORTS, where DEST is
 *   api.example.com       one host name (case-insensitive, a trailing dot ignored)
 *   *.s3.amazonaws.com    any name below that suffix (not the suffix itself)
 *   198.51.100.0/24       a CIDR or one address; IPv6 in brackets: [2001:db8::]/32
 * and PORTS is a port (443), a range (80-90) or * (any port).
 *
 * A destination given as a host name must match a name rule before it is
 * resolved (so names outside the list are never even looked up); the
 * address it resolves to is then checked again (DNS rebinding). A destination
 * given as an address must match a CIDR rule. Special-purpose addresses -
 * private, loopback, link-local, shared (CGNAT), documentation, multicast,
 * reserved, "this network" - are refused whatever the name, unless a CIDR
 * rule at least as narrow as the special range itself lists them: 0.0.0.0/0
 * does not open 10.0.0.0/8, but 10.1.2.3 or 10.0.0.0/8 does. The cloud
 * metadata addresses (169.254.169.254, fd00:ec2::254) are their own range:
 * only a rule naming exactly that address opens them. IPv4-mapped IPv6
 * addresses are checked as the IPv4 address they carry.
 *
 * Pure: no syscalls, no allocation. */
#ifndef AIRLOCK_NET_EGRESS_H
#define AIRLOCK_NET_EGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proto/parse.h"

#define EGRESS_NAME_MAX 254 /* longest DNS name (253), plus NUL; same as EP_HOST_MAX */

enum egress_rule_kind { EGRESS_RULE_NAME, EGRESS_RULE_SUFFIX, EGRESS_RULE_V4, EGRESS_RULE_V6 };

struct egress_rule {
    enum egress_rule_kind kind;
    char name[EGRESS_NAME_MAX]; /* NAME: the name; SUFFIX: ".suffix"; lower case */
    uint8_t addr[16];           /* V4: first 4 bytes; network byte order */
    uint8_t prefix;             /* V4: 0-32, V6: 0-128 */
    uint16_t port_lo, port_hi;  /* 1-65535, lo <= hi */
};

/* The outcome of a check; every value but EGRESS_OK is a denial, with the
 * label egress_verdict_name() gives for logs and metrics. */
enum egress_verdict {
    EGRESS_OK,
    EGRESS_NOT_ALLOWED_NAME,    /* no name rule matches the name */
    EGRESS_NOT_ALLOWED_ADDRESS, /* no CIDR rule matches the address */
    EGRESS_NOT_ALLOWED_PORT,    /* the name or address matches, the port does not */
    EGRESS_PRIVATE_ADDRESS,     /* a special-purpose address no rule opens */
    EGRESS_RESOLVE_FAILED,      /* the allowed name did not resolve */
    EGRESS_BAD_DESTINATION,     /* no usable destination (bad name, family) */
    EGRESS_VERDICT_COUNT,
};

/* Returns "ok", "not_allowed_name", ... for v. */
const char *egress_verdict_name(enum egress_verdict v);

/* Parses the NUL-terminated rule s into *r. Returns PARSE_OK, or
 * PARSE_INVALID with *err (may be NULL) set to a static message saying what
 * was expected. *r is fully written on success, unspecified otherwise. */
enum parse_result egress_rule_parse(const char *s, struct egress_rule *r, const char **err);

/* Returns true when a and b are the same rule (names by their text, the
 * bits of a prefix, not what follows them). */
bool egress_rule_equal(const struct egress_rule *a, const struct egress_rule *b);

/* Checks that in[0..len) is a host name (labels of A-Z a-z 0-9 - _, 1-63
 * characters each, at most 253 in all, one trailing dot allowed, the last
 * label not all digits) and writes it to out (EGRESS_NAME_MAX bytes) in
 * lower case without the trailing dot. Returns PARSE_OK, or PARSE_INVALID
 * with *err (may be NULL) set. Never reads past in[len). */
enum parse_result egress_name_normalize(const char *in, size_t len, char *out, const char **err);

/* Checks a destination host name (normalized, see above) and port against
 * the n rules. Returns EGRESS_OK, EGRESS_NOT_ALLOWED_NAME or
 * EGRESS_NOT_ALLOWED_PORT. An EGRESS_OK name must still pass
 * egress_check_addr() with from_name set once it is resolved. */
enum egress_verdict egress_check_name(const struct egress_rule *rules, size_t n, const char *name,
                                      uint16_t port);

/* Checks a destination address and port (sa: AF_INET or AF_INET6 with its
 * port) against the n rules. from_name says the address is what an allowed
 * name resolved to: then only the special-purpose ranges are checked;
 * otherwise a CIDR rule must list the address and port. Returns EGRESS_OK
 * or the reason for the denial (EGRESS_BAD_DESTINATION for another
 * family). *range (may be NULL) is set to the label of the special range
 * the address is in ("loopback", "private", "metadata", ...) or NULL. */
enum egress_verdict egress_check_addr(const struct egress_rule *rules, size_t n,
                                      const struct sockaddr *sa, int from_name, const char **range);

#endif
