/* field_int.h - what the files of src/field/ share and nothing else sees:
 * compiled rules, a key's pre-keyed contexts, the token sealer. */
#ifndef AIRLOCK_FIELD_FIELD_INT_H
#define AIRLOCK_FIELD_FIELD_INT_H

#include <locale.h>
#include <stdio.h>

#include <openssl/evp.h>

#include "field/field.h"

#define FIELD_RULE_ID_LEN 6 /* bytes of SHA-256(path) a token names its rule by */
/* "al1:" key id ":" type ":" rule (8 base64url characters) ":" */
#define FIELD_HEADER_MAX (4 + FIELD_KEY_ID_MAX + 3 + 8 + 1)

enum field_step_kind {
    STEP_NAME,  /* .name, ['name'] */
    STEP_ANY,   /* .*, [*] */
    STEP_INDEX, /* [N] */
};

struct field_step {
    enum field_step_kind kind;
    bool descent; /* reached through "..": matches at any depth below */
    char *name;   /* STEP_NAME: decoded UTF-8, owned */
    size_t name_len;
    int64_t name_index; /* STEP_NAME: the index the name writes (field_name_index()) */
    uint32_t index;     /* STEP_INDEX */
};

struct field_rule {
    struct field_step *steps; /* owned */
    size_t nsteps;
    bool deterministic;
    uint8_t id[FIELD_RULE_ID_LEN];
    unsigned state; /* index of the state "no step matched yet" */
};

/* The rules of a route and their automaton: a state (rule r, k steps
 * matched) is one bit, numbered rules[r].state + k. */
struct field_rules {
    struct field_rule *rule; /* owned */
    size_t n;
    size_t nstates;
    size_t nwords;        /* uint64_t words of a state set */
    uint16_t *state_rule; /* owned, [nstates] */
    uint8_t *state_step;  /* owned, [nstates] */
};

/* One key of a keyset with its contexts, keyed once at load. */
struct field_key {
    char id[FIELD_KEY_ID_MAX + 1];
    EVP_CIPHER_CTX *gcm_enc, *gcm_dec; /* AES-256-GCM under the derived GCM key */
    EVP_MAC_CTX *cmac;                 /* AES-256-CMAC under SIV's first key (S2V) */
    EVP_CIPHER_CTX *ctr;               /* AES-256-CTR under SIV's second key */
    uint8_t s2v_zero[16];              /* CMAC(K1, 0^128): S2V's first block */
    /* the last token header S2V saw and its CMAC: the fields of one rule
     * share it, so a body's deterministic fields compute it once */
    uint8_t aad[FIELD_HEADER_MAX], aad_mac[16];
    size_t aad_len;
};

#define FIELD_NONCE_POOL 64 /* GCM nonces drawn from the RNG at once */

struct field_keyset {
    char tenant[FIELD_KEY_ID_MAX + 1];
    struct field_key *keys; /* owned, [nkeys] */
    size_t nkeys;
    size_t primary;
    uint8_t nonces[FIELD_NONCE_POOL][12];
    unsigned nonces_left;
    struct strbuf scratch; /* decoded strings; wiped after use */
    struct strbuf plain;   /* decrypted values; wiped after use */
};

/* The key named id[0..len), or NULL. */
struct field_key *field_keyset_find(struct field_keyset *ks, const char *id, size_t len);

/* Draws a fresh 96-bit GCM nonce into n: 0, or -1 when the RNG fails. */
int field_keyset_nonce(struct field_keyset *ks, uint8_t n[12]);

/* AES-256-GCM (random nonce, the nonce first) or AES-SIV (RFC 5297, the
 * synthetic IV first) of p[0..len) with associated data aad under key;
 * writes field_aead_overhead(det) + len bytes at out. 0 or -1. */
int field_aead_seal(struct field_keyset *ks, struct field_key *key, bool det, const uint8_t *aad,
                    size_t aad_len, const uint8_t *p, size_t len, uint8_t *out);

/* The reverse: c[0..len) is what field_aead_seal() wrote; writes
 * len - overhead bytes at out. 0, or -1 when it does not authenticate. */
int field_aead_open(struct field_key *key, bool det, const uint8_t *aad, size_t aad_len,
                    const uint8_t *c, size_t len, uint8_t *out);

size_t field_aead_overhead(bool det);

/* Seals v as a token of the given rule id and mode under the primary key,
 * appending the token text to out. */
enum field_result field_token_seal(struct field_keyset *ks, const uint8_t rule[FIELD_RULE_ID_LEN],
                                   bool det, enum field_type type, const uint8_t *v, size_t len,
                                   struct strbuf *out, char *err);

/* The array index name[0..n) writes in decimal as JavaScript and PHP write
 * an index ("0", "12"; not "00", "+1" or "1.0"), to which they take the
 * member of that name for the element (o[0] is o["0"]); -1 for a name that
 * writes none (or one past 18 digits, past any body's elements). */
int64_t field_name_index(const char *name, size_t n);

/* Checks that s[0..len) is valid UTF-8 (no overlong forms, no surrogates,
 * nothing past U+10FFFF): 0 or -1. */
int field_utf8_check(const uint8_t *s, size_t len);

/* Sets err (FIELD_ERR_MAX bytes) to the formatted line; the value is r. */
#define field_fail(err, r, ...) (snprintf((err), FIELD_ERR_MAX, __VA_ARGS__), (r))

/* The C.UTF-8 locale, whose case mappings fold member names (json.c), or
 * (locale_t)0 where it is not installed: rules are then refused
 * (field_rules_compile), since names could not be folded as backends do. */
locale_t field_fold_locale(void);

#endif
