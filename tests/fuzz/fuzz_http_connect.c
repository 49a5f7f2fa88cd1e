/* fuzz_http_connect.c - libFuzzer harness for the HTTP CONNECT head parser
 * (libhttp-parser and our wrapper) and the destination checks that follow
 * it on an egress relay.
 *
 * On PARSE_OK: the head length and host slice must lie inside the input,
 * the head alone must parse to the same result, and the host goes through
 * the name normalizer and the allowlist checks as on the data path.
 * abort() on any disagreement. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "net/egress.h"
#include "proto/http_connect.h"

#define MAX 4096

static void
destination(const char *host, size_t len, uint16_t port)
{
    static struct egress_rule rules[4];
    static int ready;
    char name[EGRESS_NAME_MAX], lit[64];
    struct sockaddr_storage ss;

    if (!ready) {
        const char *const text[] = {"api.example.com:443", "*.example.org:1-1000",
                                    "198.51.100.0/24:80-90", "[2001:db8::]/32:*"};
        for (size_t i = 0; i < 4; i++)
            check(egress_rule_parse(text[i], &rules[i], NULL) == PARSE_OK);
        ready = 1;
    }
    memset(&ss, 0, sizeof(ss));
    if (len < sizeof(lit)) {
        memcpy(lit, host, len);
        lit[len] = '\0';
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        if (inet_pton(AF_INET, lit, &sin->sin_addr) == 1) {
            sin->sin_family = AF_INET;
            sin->sin_port = htons(port);
            egress_check_addr(rules, 4, (struct sockaddr *)&ss, 0, NULL);
            return;
        }
        if (inet_pton(AF_INET6, lit, &sin6->sin6_addr) == 1) {
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons(port);
            egress_check_addr(rules, 4, (struct sockaddr *)&ss, 0, NULL);
            return;
        }
    }
    const char *err = NULL;
    if (egress_name_normalize(host, len, name, &err) != PARSE_OK) {
        check(err != NULL);
        return;
    }
    check(strlen(name) > 0 && strlen(name) <= 253);
    enum egress_verdict v = egress_check_name(rules, 4, name, port);
    check(v == EGRESS_OK || v == EGRESS_NOT_ALLOWED_NAME || v == EGRESS_NOT_ALLOWED_PORT);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_connect req, again;
    size_t head_len = 0, head2 = 0;
    const char *err = NULL;
    enum parse_result r = http_connect_parse(data, size, MAX, &req, &head_len, &err);

    if (r == PARSE_INVALID) {
        check(err != NULL);
        return 0;
    }
    if (r == PARSE_AGAIN) {
        check(size < MAX);
        return 0;
    }
    check(err == NULL);
    check(head_len > 0 && head_len <= size && head_len <= MAX);
    check(req.method != NULL);
    /* the head alone is the same request */
    check(http_connect_parse(data, head_len, MAX, &again, &head2, NULL) == PARSE_OK);
    check(head2 == head_len && again.is_connect == req.is_connect && again.port == req.port &&
          again.host_len == req.host_len);
    if (!req.is_connect) {
        check(req.host == NULL);
        return 0;
    }
    check(req.port > 0);
    check(req.host >= (const char *)data && req.host + req.host_len <= (const char *)data + size);
    destination(req.host, req.host_len, req.port);
    return 0;
}
