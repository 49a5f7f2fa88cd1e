/* allow.h - client allowlists: CIDRs for tcp peers, CIDs for vsock peers.
 *
 * Parsing is pure. An empty list allows everyone. */
#ifndef AIRLOCK_NET_ALLOW_H
#define AIRLOCK_NET_ALLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/units.h"
#include "net/endpoint.h"
#include "proto/parse.h"

#define CONF_ALLOW_MAX 64 /* the rules of one list (allow, proxy_from) */

enum allow_kind { ALLOW_V4, ALLOW_V6, ALLOW_CID };

struct allow_rule {
    enum allow_kind kind;
    uint8_t addr[16]; /* V4: first 4 bytes; network byte order; host bits zero */
    uint8_t prefix;   /* V4: 0-32, V6: 0-128 */
    uint32_t cid;     /* CID */
};

/* Parses "10.0.0.0/8", "192.0.2.7" (a /32), "[2001:db8::]/32", "2001:db8::1",
 * or "cid:16" into *rule. Returns PARSE_OK or PARSE_INVALID with *err set to a
 * static message. */
enum parse_result allow_parse(const char *s, struct allow_rule *rule, const char **err);

/* Returns 1 when the peer address sa (AF_INET, AF_INET6 - IPv4-mapped IPv6
 * addresses match IPv4 rules - or AF_VSOCK) matches one of the n rules, or
 * when n is 0; 0 otherwise. */
int allow_match(const struct allow_rule *rules, size_t n, const struct sockaddr *sa);

/* Returns true when a and b are the same rule (the bits of the prefix, not
 * the bytes after them or the padding). */
bool allow_rule_equal(const struct allow_rule *a, const struct allow_rule *b);

/* Returns true when the first n rules of a and of b are the same, each by
 * allow_rule_equal() (n is bounded by CONF_ALLOW_MAX). */
bool allow_rules_equal(const struct allow_rule *a, const struct allow_rule *b, size_t n);

/* Whether the n rules of list key suit a listener of kind: none on unix
 * and hvsock, cid:N on vsock, CIDRs on tcp and udp. Returns 0, or -1 with
 * *f naming key (with the rule at fault as item, or the list as a whole). */
int allow_check(enum ep_kind kind, const struct allow_rule *rules, size_t n, const char *key,
                struct conf_fault *f);

/* Checks proxy_from, the peers whose PROXY v2 headers a listener of kind
 * believes (relays, routers and HTTP proxies alike): at most
 * CONF_ALLOW_MAX rules, given only with accept_proxy, suited to the
 * listener (allow_check()). Returns 0, or -1 with *f. */
int allow_proxy_from_check(enum ep_kind kind, bool accept_proxy, const struct allow_rule *rules,
                           size_t n, struct conf_fault *f);

#endif
