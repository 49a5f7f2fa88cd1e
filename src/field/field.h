/* field.h - field encryption (docs/field-encryption.md): the JSON paths of
 * a route's rules, per-tenant keysets, tokens, and the one-pass JSON body
 * rewriter that replaces each matched scalar by a token (encrypt) or each
 * token by its value (decrypt).
 *
 * Uses core/ only (plus OpenSSL and, for keyset files, cJSON). Results name
 * why a body was refused and map to an HTTP status (field_status()). Every
 * err argument is a buffer of FIELD_ERR_MAX bytes that receives one line
 * for a person on failure; it never contains key material or plaintext. */
#ifndef AIRLOCK_FIELD_FIELD_H
#define AIRLOCK_FIELD_FIELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"

#define FIELD_ERR_MAX 256         /* one line for a person, NUL included */
#define FIELD_RULES_MAX 64        /* encrypt paths of one route */
#define FIELD_PATH_MAX 1024       /* characters of one path */
#define FIELD_SEGS_MAX 32         /* steps of one path ($ excluded) */
#define FIELD_DEPTH_MAX 128       /* JSON nesting the rewriter accepts */
#define FIELD_VALUE_MAX (1 << 20) /* bytes of one value that is encrypted */
#define FIELD_KEY_ID_MAX 32       /* characters of a key id: A-Z a-z 0-9 _ - */
#define FIELD_KEYS_MAX 256        /* keys in one keyset */

/* Why a body or token was refused. field_status() gives the HTTP status of
 * a refused request body; a response body that cannot be rewritten is the
 * backend's fault and is answered with 502 by the proxy. */
enum field_result {
    FIELD_OK,
    FIELD_MALFORMED,  /* not JSON (RFC 8259, UTF-8, no lone surrogates), or
                         nested deeper than FIELD_DEPTH_MAX: 400 */
    FIELD_NOT_SCALAR, /* an encrypt path matched an object or array: 422 */
    FIELD_TOO_LARGE,  /* a value to encrypt over FIELD_VALUE_MAX: 413 */
    FIELD_BAD_TOKEN,  /* a string in token form (it starts with "al", a version
                         number and ':', as "al1:") that does not parse, is of
                         another version, names a key the keyset lacks, or
                         fails authentication; never passed through: 400 */
    FIELD_INTERNAL,   /* out of memory, crypto library failure: 500 */
    FIELD_AMBIGUOUS,  /* encrypt: a member name that a rule's name differs from
                         only in case (ASCII, and the letters outside ASCII
                         that case-map to ASCII: ſ İ ı K), which a backend
                         that binds names without case would read as the
                         rule's: 422 */
    FIELD_BODY_LARGE, /* encrypt: the body with its fields encrypted would be
                         over the caller's bound (a token is some 60 bytes,
                         a value may be 1: "[1,1,...]" grows 30 times): 413 */
    FIELD_SHAPE,      /* encrypt: an array where a rule's next step is a name,
                         or a string, number or boolean where it is an index
                         or *, which a binder that wraps or unwraps arrays of
                         one would read as the rule's field: 422 */
};

/* The HTTP status of a request body refused with r (200 for FIELD_OK). */
int field_status(enum field_result r);

/* A short stable name of r for logs and metric labels: "ok", "malformed",
 * "not_scalar", "too_large", "bad_token", "internal", "ambiguous_name",
 * "body_too_large", "shape_mismatch". */
const char *field_result_name(enum field_result r);

/* ---- Rules: the encrypt paths of a route ------------------------------ */

/* One encrypt rule as configured. path: "$.card.number",
 * "$.patients[*].ssn", "$..email", "$['a.b'][0]" (grammar in
 * docs/field-encryption.md "Rules"). deterministic: AES-SIV instead of
 * AES-GCM, so that equal values give equal tokens (equality search; see
 * the leakage in the doc). */
struct field_rule_spec {
    const char *path;
    bool deterministic;
};

struct field_rules; /* compiled, immutable: may be shared by threads */

/* Compiles n (1..FIELD_RULES_MAX) rules, once per route at config time.
 * Returns 0 and *out (the caller frees it with field_rules_free()), or
 * -EINVAL with err naming the rule's index, the path and the position
 * where it is wrong, or -ENOMEM. */
int field_rules_compile(const struct field_rule_spec *specs, size_t n, struct field_rules **out,
                        char *err);

/* Frees *rules and sets it to NULL; safe on NULL and twice. */
void field_rules_free(struct field_rules **rules);

/* Checks one path's syntax (config check, fuzzing): 0 or -EINVAL + err. */
int field_path_check(const char *path, char *err);

/* ---- Keys: a tenant's keyset ------------------------------------------ */

/* A keyset: 256-bit keys with ids, one primary that encrypts, the others
 * only decrypt (rotation). It holds pre-keyed cipher contexts and a pool of
 * nonces, so it is used by one thread at a time: a proxy with several
 * workers loads one per worker. Key material is zeroed when freed. */
struct field_keyset;
struct file_stamp; /* core/file.h */

/* Loads a keyset file (JSON, docs/field-encryption.md "Keys"): a regular
 * file, not a symlink, owned by the effective uid or root, mode without
 * group/other bits (0600 or 0400). Returns 0 and *out, or -errno with err
 * (the path and what is wrong; never the keys). */
int field_keyset_load(const char *path, struct field_keyset **out, char *err);

/* The same n times from one read of the file (out[0..n), all from the same
 * bytes: a file replaced or rewritten meanwhile cannot give two of them
 * other keys), and in *stamp (may be NULL) the stamp of the file those
 * bytes are: a file that changed while it was read is read again, up to 3
 * times, then -EAGAIN. On failure none of out[] is left. */
int field_keyset_load_n(const char *path, struct field_keyset **out, size_t n,
                        struct file_stamp *stamp, char *err);

/* The same from text in memory (no file checks): tests and fuzzers. */
int field_keyset_parse(const char *text, size_t len, struct field_keyset **out, char *err);

/* Frees *ks (zeroing its keys) and sets it to NULL; safe on NULL, twice. */
void field_keyset_free(struct field_keyset **ks);

/* The tenant's name and the primary key's id (borrowed from ks). */
const char *field_keyset_tenant(const struct field_keyset *ks);
const char *field_keyset_primary(const struct field_keyset *ks);

/* ---- Bodies ------------------------------------------------------------ */

/* Validates the JSON body in[0..len) and appends to out a copy in which
 * every scalar a rule matches (string, number, true/false; null stays
 * null) is replaced by a token string under the keyset's primary key, every
 * other byte (whitespace, escapes, number text) copied unchanged. Every
 * occurrence of a duplicate key is matched. *nfields (may be NULL) is set to
 * the number of values encrypted. What is appended may be at most max_out
 * bytes (0: no bound), checked as it grows (FIELD_BODY_LARGE). On failure
 * nothing is appended (out->len is restored) and err says why; FIELD_OK
 * with 0 fields copies the body. */
enum field_result field_encrypt_body(const struct field_rules *rules, struct field_keyset *ks,
                                     const char *in, size_t len, size_t max_out, struct strbuf *out,
                                     unsigned *nfields, char *err);

/* Validates the JSON body and appends to out a copy in which every string
 * value in token form is replaced by the value it encrypts, restored to
 * its JSON type (a string comes back as a JSON string of the same
 * characters, a number as its exact text, true/false). Member names are
 * left alone. A token that fails is FIELD_BAD_TOKEN (nothing appended). */
enum field_result field_decrypt_body(struct field_keyset *ks, const char *in, size_t len,
                                     struct strbuf *out, unsigned *nfields, char *err);

/* Like field_decrypt_body(), but each token is re-encrypted under the
 * primary key (same type, mode and rule) instead of decrypted: rotation's
 * rewrap (`airlock field rewrap`). Tokens already under the primary are
 * re-encrypted too (a new nonce). */
enum field_result field_rewrap_body(struct field_keyset *ks, const char *in, size_t len,
                                    struct strbuf *out, unsigned *nfields, char *err);

/* The members named name[] (compared decoded: "\u005fmethod" is
 * "_method") of the JSON object in[0..len), its top level only: *count of
 * them, and for each in turn its value appended to value, a string's
 * decoded characters (nothing for another kind, or for a string with U+0000
 * in it) and a NUL. A body that is
 * not an object has none. What it reads is validated (FIELD_MALFORMED with
 * err); ks lends its scratch. */
enum field_result field_json_member(struct field_keyset *ks, const char *in, size_t len,
                                    const char *name, struct strbuf *value, unsigned *count,
                                    char *err);

/* ---- Tokens ------------------------------------------------------------ */

/* al1:<key id>:<type>:<rule>:<base64url(nonce | ciphertext | tag)>
 * (docs/field-encryption.md "Tokens"). */
#define FIELD_TOKEN_PREFIX "al1:"

enum field_type {
    FIELD_T_STRING, /* 's' ('S' deterministic) */
    FIELD_T_NUMBER, /* 'n' ('N') */
    FIELD_T_BOOL,   /* 'b' ('B') */
};

/* A parsed token: slices into the caller's text, nothing to free. */
struct field_token {
    const char *kid;
    size_t kid_len;
    enum field_type type;
    bool deterministic;
    uint8_t rule[6];     /* the rule id: first bytes of SHA-256(path) */
    const char *payload; /* base64url, no padding */
    size_t payload_len;
    size_t header_len; /* bytes of "al1:kid:t:rule:", the associated data */
};

/* True when s[0..len) claims to be a token (starts with "al", 1-3 digits
 * and ':'): such a string must then parse and authenticate. */
bool field_token_claimed(const char *s, size_t len);

/* Parses (does not decrypt) the token s[0..len): FIELD_OK and *tok, or
 * FIELD_BAD_TOKEN with err. */
enum field_result field_token_parse(const char *s, size_t len, struct field_token *tok, char *err);

/* Appends to out (the bare token text, no quotes) the token of the value
 * v[0..len) of the given type under rule index `rule` of rules: for a
 * string v is its decoded UTF-8, for a number its exact JSON text, for a
 * boolean "true" or "false". */
enum field_result field_seal(struct field_keyset *ks, const struct field_rules *rules, size_t rule,
                             enum field_type type, const uint8_t *v, size_t len, struct strbuf *out,
                             char *err);

/* Decrypts the token s[0..len) and appends its value to out (the decoded
 * bytes, as field_seal() took them); *type receives its type. */
enum field_result field_open(struct field_keyset *ks, const char *s, size_t len, struct strbuf *out,
                             enum field_type *type, char *err);

#endif
