/* fuzz_dns.c - libFuzzer harness for the DNS question parser.
 *
 * A parsed question must hold a well-formed name (lowercase, labels of 1-63
 * allowed bytes, 253 characters at most) that spells the input's labels;
 * the error reply built from it must be a response carrying the question,
 * which the parser then refuses as a response. abort() on any disagreement. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/dns.h"

static int
lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dns_question q;
    const char *err = NULL;
    uint8_t out[DNS_HDR_LEN + 256 + 4];
    enum parse_result r = dns_parse_query(data, size, &q, &err);

    if (r == PARSE_INVALID) {
        check(err != NULL);
        return 0;
    }
    if (r == PARSE_AGAIN)
        return 0;
    check(q.end <= size && q.end >= DNS_HDR_LEN + 5);
    size_t n = strlen(q.name);
    check(n <= DNS_NAME_MAX);
    check(n == 0 || (q.name[0] != '.' && q.name[n - 1] != '.' && strstr(q.name, "..") == NULL));

    /* the labels on the wire spell the name, case aside */
    size_t p = DNS_HDR_LEN, i = 0;
    while (data[p] != 0) {
        size_t l = data[p++];
        check(l >= 1 && l <= 63);
        if (i > 0)
            check(q.name[i++] == '.');
        for (size_t k = 0; k < l; k++)
            check(q.name[i++] == lower(data[p++]));
    }
    check(i == n && p + 5 == q.end);
    check(dns_name_match(q.name, q.name));

    size_t m = dns_error_reply(data, size, &q, DNS_RCODE_REFUSED, out, sizeof(out));
    check(m == q.end);
    check(memcmp(out + DNS_HDR_LEN, data + DNS_HDR_LEN, q.end - DNS_HDR_LEN) == 0);
    check((out[3] & 0x0F) == DNS_RCODE_REFUSED && out[0] == data[0] && out[1] == data[1]);
    check(dns_parse_query(out, m, &q, &err) == PARSE_INVALID);
    return 0;
}
