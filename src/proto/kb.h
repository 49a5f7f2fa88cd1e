/* kb.h - the key broker's messages (docs/attestation.md, "Key broker").
 *
 * One exchange per connection, each message one line ended by '\n':
 *
 *   requester                          broker
 *   REQUEST NAME                 ->
 *                                <-    CHALLENGE NONCE
 *   ATTEST EVIDENCE PUBKEY [VCEK] ->
 *                                <-    SECRET CMS SIG    or    REFUSED REASON
 *
 * NAME is a secret's name (1-63 characters A-Z a-z 0-9 _ . -); NONCE,
 * EVIDENCE, PUBKEY (DER SubjectPublicKeyInfo), VCEK (DER, SEV-SNP only),
 * CMS (DER EnvelopedData) and SIG (the broker's Ed25519 signature over
 * NAME, NONCE, PUBKEY and CMS: broker/wrap.h) are lower- or upper-case
 * hex; REASON is one word
 * of the same characters as NAME, then optionally a space and printable
 * ASCII text. Words are separated by one space. The broker may send
 * REFUSED at any step. Pure: no syscalls, no allocation. */
#ifndef AIRLOCK_PROTO_KB_H
#define AIRLOCK_PROTO_KB_H

#include <stddef.h>
#include <stdint.h>

#include "proto/parse.h"

#define KB_NAME_MAX 63  /* characters of a secret's name */
#define KB_NONCE_MIN 16 /* bytes of a challenge nonce */
#define KB_NONCE_MAX 64
#define KB_FIELDS_MAX 3 /* hex fields of one message */

enum kb_verb { KB_REQUEST, KB_CHALLENGE, KB_ATTEST, KB_SECRET, KB_REFUSED };

/* A slice of the caller's input. */
struct kb_slice {
    const char *p; /* NULL: absent */
    size_t len;
};

/* A parsed message; every slice points into the caller's input. */
struct kb_msg {
    enum kb_verb verb;
    struct kb_slice name;               /* REQUEST: the secret; REFUSED: the reason word */
    struct kb_slice text;               /* REFUSED: the text after the reason, if any */
    struct kb_slice hex[KB_FIELDS_MAX]; /* CHALLENGE: nonce; ATTEST: evidence, pubkey,
                                           vcek (optional); SECRET: cms, sig */
    size_t nhex;
};

/* Parses the message at in[0..len) of at most max bytes (newline
 * included; "\r\n" accepted). Returns PARSE_OK with *msg and *used (the
 * bytes of the line, newline included); PARSE_AGAIN while no newline
 * arrived and len < max; PARSE_INVALID with *why (a static message) for
 * anything else, a line of max bytes or more without newline included. */
enum parse_result kb_parse(const char *in, size_t len, size_t max, struct kb_msg *msg, size_t *used,
                           const char **why);

/* Decodes hex slice s into out (cap bytes); returns the byte count, or 0
 * when it does not fit (kb_parse() checked the digits). */
size_t kb_unhex(struct kb_slice s, uint8_t *out, size_t cap);

/* Writes len bytes of in as lower-case hex (2 * len characters, no NUL)
 * to out. */
void kb_hex(char *out, const uint8_t *in, size_t len);

#endif
