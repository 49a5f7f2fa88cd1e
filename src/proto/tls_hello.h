/* tls_hello.h - the server name (SNI) of a TLS ClientHello, read without
 * terminating TLS.
 *
 * Resumable: the connection owns a struct tls_hello and feeds it the bytes
 * it received, in pieces of any size (one byte at a time works). The
 * ClientHello may span several TLS records; their fragments are joined in a
 * buffer the caller provides (its size is the largest handshake message
 * accepted). Record versions TLS 1.0-1.3 (0x0300-0x0304 on the wire), GREASE
 * values, padding and unknown extensions are accepted as they are. With
 * Encrypted Client Hello (extension 0xfe0d) the server_name seen is the
 * outer one, which is what routing uses (the inner one is encrypted for the
 * backend). Pure: no syscalls, no allocation, never reads past what it is
 * given. */
#ifndef AIRLOCK_PROTO_TLS_HELLO_H
#define AIRLOCK_PROTO_TLS_HELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/parse.h"

#define TLS_HOST_MAX 253        /* longest DNS name, without the NUL */
#define TLS_RECORD_MAX 16384    /* largest plaintext record fragment (2^14) */
#define TLS_EXT_ECH 0xfe0d      /* encrypted_client_hello */
#define TLS_HELLO_DEFAULT 16384 /* default handshake size limit (bytes) */

enum tls_hello_step {
    TLS_HELLO_RECORD_HEADER, /* reading a 5-byte record header */
    TLS_HELLO_FRAGMENT,      /* copying a record's fragment */
    TLS_HELLO_DONE,          /* PARSE_OK or PARSE_INVALID was returned */
};

struct tls_hello {
    /* set by tls_hello_init() */
    uint8_t *hs; /* the handshake message joined from fragments */
    size_t cap;  /* its size: the largest ClientHello accepted */
    /* progress */
    enum tls_hello_step step;
    uint8_t hdr[5];
    size_t hdr_len;
    size_t frag_left; /* bytes of the current record still to come */
    size_t hs_len;    /* bytes in hs */
    size_t wire;      /* bytes consumed in all (records and headers) */
    enum parse_result result;
    /* results, valid after PARSE_OK */
    bool has_sni;
    bool has_ech;
    char host[TLS_HOST_MAX + 1]; /* lowercase, NUL-terminated; "" without SNI */
    size_t host_len;
    uint16_t record_version; /* of the first record */
    uint16_t hello_version;  /* legacy_version of the ClientHello */
    const char *err;         /* after PARSE_INVALID: why (a static string) */
};

/* Starts h over with buf[0..cap) as the handshake buffer (owned by the
 * caller, kept until h is done with). cap bounds the ClientHello's size
 * (the handshake message, header included); at least 64. */
void tls_hello_init(struct tls_hello *h, uint8_t *buf, size_t cap);

/* Feeds the next len bytes the client sent (len may be 0). Returns
 * PARSE_AGAIN while the ClientHello is incomplete and valid so far;
 * PARSE_OK when it is complete and valid (h->has_sni, h->host, h->has_ech
 * are then set; *used, if not NULL, is how many of these bytes belong to
 * it, the rest following it); PARSE_INVALID with h->err when the bytes are
 * not a ClientHello (another record type first, a bad version or length, a
 * record or message over the limits, malformed extensions, a server name
 * that is not a valid DNS host name). Each header byte is checked as soon
 * as it is there, so a peer speaking another protocol fails on its first
 * byte. Once PARSE_OK or PARSE_INVALID is returned, every later call
 * returns the same and consumes nothing. */
enum parse_result tls_hello_feed(struct tls_hello *h, const uint8_t *data, size_t len,
                                 size_t *used);

/* Checks a host name name[0..len) (RFC 1123 labels: letters, digits and
 * inner hyphens, 1-63 bytes each, 253 in all, no trailing dot) and writes it
 * lowercased and NUL-terminated to out (TLS_HOST_MAX + 1 bytes). Returns
 * PARSE_OK, or PARSE_INVALID with *why naming the fault (out is then
 * unspecified). */
enum parse_result tls_host_parse(const uint8_t *name, size_t len, char *out, const char **why);

#endif
