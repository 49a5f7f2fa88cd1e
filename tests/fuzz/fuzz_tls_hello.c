/* fuzz_tls_hello.c - libFuzzer harness for the ClientHello SNI parser.
 *
 * Feeds the input whole and again in pieces whose sizes come from the
 * input's bytes: both must give the same result, the same host name and
 * the same count of bytes used; a name that parses is lowercase DNS text.
 * abort() on any disagreement.
 *
 * Seed corpus (tests/fuzz/corpus/tls_hello): ClientHellos captured on
 * loopback from openssl s_client (-tls1_2 and -tls1_3 with -servername,
 * -noservername) and curl by a listener that kept the client's first
 * bytes. browser_grease_ech is the curl capture with what Chrome adds put
 * in by hand (Chrome itself is not in Debian): a GREASE cipher suite
 * (0x2a2a), GREASE extensions (0x0a0a empty first, 0xdada last), an outer
 * encrypted_client_hello (0xfe0d: type outer, HPKE KDF 1 / AEAD 1, config
 * id, a 32-byte enc and a 144-byte payload) and padding; split_records is
 * the TLS 1.3 capture re-framed as records of 1, 100 and the rest bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/tls_hello.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t a_buf[4096], b_buf[4096];
    struct tls_hello a, b;
    size_t a_used = 0, off = 0, i = 0;
    enum parse_result ra, rb = PARSE_AGAIN;

    tls_hello_init(&a, a_buf, sizeof(a_buf));
    ra = tls_hello_feed(&a, data, size, &a_used);

    tls_hello_init(&b, b_buf, sizeof(b_buf));
    while (off < size && rb == PARSE_AGAIN) {
        size_t k = 1 + data[i++ % size] % 7, used = 0;
        if (k > size - off)
            k = size - off;
        rb = tls_hello_feed(&b, data + off, k, &used);
        off += rb == PARSE_OK ? used : k;
    }
    check(ra == rb);
    check(ra != PARSE_INVALID || (a.err != NULL && b.err != NULL));
    if (ra != PARSE_OK)
        return 0;
    check(a_used == off && a_used <= size);
    check(a.has_sni == b.has_sni && a.has_ech == b.has_ech && a.host_len == b.host_len);
    check(strcmp(a.host, b.host) == 0 && strlen(a.host) == a.host_len);
    for (size_t j = 0; j < a.host_len; j++)
        check((a.host[j] >= 'a' && a.host[j] <= 'z') || (a.host[j] >= '0' && a.host[j] <= '9') ||
              a.host[j] == '-' || a.host[j] == '.');
    return 0;
}
