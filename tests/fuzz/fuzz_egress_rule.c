/* fuzz_egress_rule.c - libFuzzer harness for the egress allowlist rule
 * parser (config input, so mostly a robustness check): a rule that parses
 * must allow what it names, at the ports it names. abort() otherwise. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "net/egress.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char s[1024];
    struct egress_rule r;
    const char *err = NULL;

    if (size >= sizeof(s))
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (egress_rule_parse(s, &r, &err) != PARSE_OK) {
        check(err != NULL);
        return 0;
    }
    check(err == NULL && r.port_lo >= 1 && r.port_lo <= r.port_hi);
    switch (r.kind) {
    case EGRESS_RULE_NAME:
        check(egress_check_name(&r, 1, r.name, r.port_lo) == EGRESS_OK);
        check(egress_check_name(&r, 1, r.name, r.port_hi) == EGRESS_OK);
        break;
    case EGRESS_RULE_SUFFIX: {
        char name[EGRESS_NAME_MAX + 2] = "a";
        check(r.name[0] == '.');
        if (strlen(r.name) + 2 <= EGRESS_NAME_MAX) {
            strcat(name, r.name);
            check(egress_check_name(&r, 1, name, r.port_lo) == EGRESS_OK);
        }
        check(egress_check_name(&r, 1, r.name + 1, r.port_lo) == EGRESS_NOT_ALLOWED_NAME);
        break;
    }
    case EGRESS_RULE_V4:
    case EGRESS_RULE_V6: {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        if (r.kind == EGRESS_RULE_V4) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
            check(r.prefix <= 32);
            sin->sin_family = AF_INET;
            memcpy(&sin->sin_addr, r.addr, 4);
            sin->sin_port = htons(r.port_hi);
        } else {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
            check(r.prefix <= 128);
            sin6->sin6_family = AF_INET6;
            memcpy(&sin6->sin6_addr, r.addr, 16);
            sin6->sin6_port = htons(r.port_hi);
        }
        /* the rule's own network address: allowed, unless it is a special
         * address the rule is too wide to open, or an IPv4-mapped one */
        enum egress_verdict v = egress_check_addr(&r, 1, (struct sockaddr *)&ss, 0, NULL);
        check(v == EGRESS_OK || v == EGRESS_PRIVATE_ADDRESS || v == EGRESS_NOT_ALLOWED_ADDRESS);
        break;
    }
    }
    return 0;
}
