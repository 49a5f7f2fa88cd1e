/* json.c - the JSON body rewriter: one pass over the body in memory that
 * validates it strictly (RFC 8259: UTF-8, escapes, surrogate pairs, number
 * grammar, nothing after the value) and copies it to the output byte for
 * byte, except for the values it replaces: on encrypt the scalars the
 * rules' automaton reaches, on decrypt and rewrap the strings in token form.
 *
 * The rules run as a set of states per nesting level (field_int.h): a
 * member or element's set follows from its parent's by the step each state
 * waits for, and a level whose set is empty is only validated and copied. */
#include <locale.h>
#include <pthread.h>
#include <string.h>
#include <wctype.h>

#include <openssl/crypto.h>

#include "core/utf8.h"
#include "field/field_int.h"

enum rw_mode { RW_ENCRYPT, RW_DECRYPT, RW_REWRAP, RW_SCAN /* field_json_member() */ };

struct rw {
    const char *in;
    size_t len, pos;
    size_t copied; /* in[0..copied) is in out already */
    struct strbuf *out;
    size_t mark, max_out; /* out[mark..] is this body's: at most max_out bytes (0: any) */
    const struct field_rules *rules; /* RW_ENCRYPT */
    struct field_keyset *ks;
    enum rw_mode mode;
    unsigned nfields;
    uint64_t *sets;  /* [FIELD_DEPTH_MAX + 1][rules->nwords] */
    bool ctor_value; /* RW_ENCRYPT: the value next read is a member "constructor"'s */
    char *err;
};

static enum field_result
malformed(struct rw *rw, const char *what)
{
    return field_fail(rw->err, FIELD_MALFORMED, "malformed JSON at byte %zu: %s", rw->pos, what);
}

int
field_status(enum field_result r)
{
    static const int status[] = {
        [FIELD_OK] = 200,        [FIELD_MALFORMED] = 400,  [FIELD_NOT_SCALAR] = 422,
        [FIELD_TOO_LARGE] = 413, [FIELD_BAD_TOKEN] = 400,  [FIELD_INTERNAL] = 500,
        [FIELD_AMBIGUOUS] = 422, [FIELD_BODY_LARGE] = 413, [FIELD_SHAPE] = 422};
    return (unsigned)r < sizeof(status) / sizeof(status[0]) ? status[r] : 500;
}

const char *
field_result_name(enum field_result r)
{
    static const char *const name[] = {[FIELD_OK] = "ok",
                                       [FIELD_MALFORMED] = "malformed",
                                       [FIELD_NOT_SCALAR] = "not_scalar",
                                       [FIELD_TOO_LARGE] = "too_large",
                                       [FIELD_BAD_TOKEN] = "bad_token",
                                       [FIELD_INTERNAL] = "internal",
                                       [FIELD_AMBIGUOUS] = "ambiguous_name",
                                       [FIELD_BODY_LARGE] = "body_too_large",
                                       [FIELD_SHAPE] = "shape_mismatch"};
    return (unsigned)r < sizeof(name) / sizeof(name[0]) ? name[r] : "internal";
}

int
field_utf8_check(const uint8_t *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_seq_len(s + i, len - i);
        if (n == 0)
            return -1;
        i += n;
    }
    return 0;
}

static void
skip_ws(struct rw *rw)
{
    while (rw->pos < rw->len) {
        char c = rw->in[rw->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return;
        rw->pos++;
    }
}

static int
hex4(const char *s, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16;
        if (d == 16)
            return -1;
        *v = *v << 4 | d;
    }
    return 0;
}

/* A string at in[pos] == '"': validated, pos past its closing quote;
 * [*s, *s + *n) its raw content, *esc whether it has escapes. */
static enum field_result
scan_string(struct rw *rw, const char **s, size_t *n, bool *esc)
{
    const uint8_t *in = (const uint8_t *)rw->in;
    size_t start = ++rw->pos;

    *esc = false;
    for (;;) {
        if (rw->pos >= rw->len)
            return malformed(rw, "unterminated string");
        uint8_t c = in[rw->pos];
        if (c == '"')
            break;
        if (c < 0x20)
            return malformed(rw, "control character in a string");
        if (c >= 0x80) {
            size_t k = utf8_seq_len(in + rw->pos, rw->len - rw->pos);
            if (k == 0)
                return malformed(rw, "not UTF-8");
            rw->pos += k;
            continue;
        }
        rw->pos++;
        if (c != '\\')
            continue;
        *esc = true;
        if (rw->pos >= rw->len)
            return malformed(rw, "unterminated string");
        c = in[rw->pos++];
        if (c != 'u') {
            if (strchr("\"\\/bfnrt", c) == NULL || c == '\0')
                return malformed(rw, "unknown escape");
            continue;
        }
        unsigned u, lo;
        if (rw->len - rw->pos < 4 || hex4(rw->in + rw->pos, &u) != 0)
            return malformed(rw, "\\u needs four hex digits");
        rw->pos += 4;
        if (u >= 0xdc00 && u <= 0xdfff)
            return malformed(rw, "lone low surrogate");
        if (u >= 0xd800 && u <= 0xdbff) {
            if (rw->len - rw->pos < 6 || in[rw->pos] != '\\' || in[rw->pos + 1] != 'u' ||
                hex4(rw->in + rw->pos + 2, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)
                return malformed(rw, "lone high surrogate");
            rw->pos += 6;
        }
    }
    *s = rw->in + start;
    *n = rw->pos - start;
    rw->pos++;
    return FIELD_OK;
}

static size_t
put_utf8(uint8_t *o, unsigned u)
{
    if (u < 0x80) {
        o[0] = (uint8_t)u;
        return 1;
    }
    if (u < 0x800) {
        o[0] = (uint8_t)(0xc0 | u >> 6);
        o[1] = (uint8_t)(0x80 | (u & 63));
        return 2;
    }
    if (u < 0x10000) {
        o[0] = (uint8_t)(0xe0 | u >> 12);
        o[1] = (uint8_t)(0x80 | (u >> 6 & 63));
        o[2] = (uint8_t)(0x80 | (u & 63));
        return 3;
    }
    o[0] = (uint8_t)(0xf0 | u >> 18);
    o[1] = (uint8_t)(0x80 | (u >> 12 & 63));
    o[2] = (uint8_t)(0x80 | (u >> 6 & 63));
    o[3] = (uint8_t)(0x80 | (u & 63));
    return 4;
}

/* Decodes the validated raw content s[0..n) into the keyset's scratch
 * (emptied first): the string's characters as UTF-8. */
static enum field_result
decode(struct rw *rw, const char *s, size_t n, const uint8_t **d, size_t *dn)
{
    struct strbuf *sb = &rw->ks->scratch;
    strbuf_truncate(sb, 0);
    uint8_t *o = (uint8_t *)strbuf_room(sb, n);
    size_t k = 0;

    if (o == NULL)
        return field_fail(rw->err, FIELD_INTERNAL, "out of memory");
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\') {
            o[k++] = (uint8_t)s[i++];
            continue;
        }
        char c = s[i + 1];
        i += 2;
        if (c != 'u') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            o[k++] = (uint8_t)to[strchr(from, c) - from];
            continue;
        }
        unsigned u, lo;
        hex4(s + i, &u);
        i += 4;
        if (u >= 0xd800 && u <= 0xdbff) {
            hex4(s + i + 2, &lo);
            i += 6;
            u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
        }
        k += put_utf8(o + k, u);
    }
    sb->len = k;
    *d = o;
    *dn = k;
    return FIELD_OK;
}

/* Copies in[copied..pos) to the output: what precedes a replaced value. */
static void
flush_to(struct rw *rw, size_t pos)
{
    strbuf_append(rw->out, rw->in + rw->copied, pos - rw->copied);
    rw->copied = pos;
}

/* Replaces in[start..pos) by a token of v under rule r. */
static enum field_result
encrypt_value(struct rw *rw, size_t start, size_t r, enum field_type type, const uint8_t *v,
              size_t n)
{
    const struct field_rule *ru = &rw->rules->rule[r];
    flush_to(rw, start);
    strbuf_append(rw->out, "\"", 1);
    enum field_result res =
        field_token_seal(rw->ks, ru->id, ru->deterministic, type, v, n, rw->out, rw->err);
    strbuf_append(rw->out, "\"", 1);
    rw->copied = rw->pos;
    rw->nfields++;
    /* what is left of the input is copied at most as it is: stop at once */
    if (res == FIELD_OK && rw->max_out > 0 &&
        rw->out->len - rw->mark + (rw->len - rw->pos) > rw->max_out)
        return field_fail(rw->err, FIELD_BODY_LARGE,
                          "the body with its fields encrypted would be over %zu bytes",
                          rw->max_out);
    return res;
}

static bool
number_ok(const char *s, size_t n, size_t *used)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return false;
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    *used = i;
    return true;
}

/* Appends the JSON string of the UTF-8 text p[0..n). */
static enum field_result
put_string(struct rw *rw, const uint8_t *p, size_t n)
{
    if (field_utf8_check(p, n) != 0)
        return field_fail(rw->err, FIELD_BAD_TOKEN, "token: decrypted string is not UTF-8");
    strbuf_append(rw->out, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= 0x20 && p[i] != '"' && p[i] != '\\')
            continue;
        strbuf_append(rw->out, p + run, i - run);
        run = i + 1;
        static const char raw[] = "\"\\\b\f\n\r\t", esc[] = "\"\\bfnrt";
        const char *e = memchr(raw, p[i], sizeof(raw) - 1);
        if (e != NULL)
            strbuf_printf(rw->out, "\\%c", esc[e - raw]);
        else
            strbuf_printf(rw->out, "\\u%04x", p[i]);
    }
    strbuf_append(rw->out, p + run, n - run);
    strbuf_append(rw->out, "\"", 1);
    return FIELD_OK;
}

/* A string value in token form (in[start..pos)): decrypted and restored to
 * its type, or re-encrypted under the primary key. */
static enum field_result
open_token(struct rw *rw, size_t start, const char *s, size_t n)
{
    struct strbuf *pl = &rw->ks->plain;
    enum field_type type;
    struct field_token tok;
    size_t used = 0;

    strbuf_truncate(pl, 0);
    enum field_result r = field_open(rw->ks, s, n, pl, &type, rw->err);
    if (r != FIELD_OK)
        return r;
    flush_to(rw, start);
    rw->copied = rw->pos;
    rw->nfields++;
    const uint8_t *p = (const uint8_t *)pl->data;
    if (rw->mode == RW_REWRAP) {
        field_token_parse(s, n, &tok, rw->err);
        strbuf_append(rw->out, "\"", 1);
        r = field_token_seal(rw->ks, tok.rule, tok.deterministic, type, p, pl->len, rw->out,
                             rw->err);
        strbuf_append(rw->out, "\"", 1);
    } else if (type == FIELD_T_STRING) {
        r = put_string(rw, p, pl->len);
    } else if (type == FIELD_T_NUMBER ? number_ok(pl->data, pl->len, &used) && used == pl->len
                                      : (pl->len == 4 && memcmp(p, "true", 4) == 0) ||
                                            (pl->len == 5 && memcmp(p, "false", 5) == 0)) {
        strbuf_append(rw->out, p, pl->len);
    } else {
        r = field_fail(rw->err, FIELD_BAD_TOKEN, "token: decrypted value is not of its type");
    }
    strbuf_truncate(pl, 0);
    return r;
}

/* The rule whose last step the set has reached (the first in order), or
 * SIZE_MAX. */
static size_t
matched_rule(const struct field_rules *rules, const uint64_t *set)
{
    size_t best = SIZE_MAX;
    for (size_t w = 0; set != NULL && w < rules->nwords; w++)
        for (uint64_t x = set[w]; x != 0; x &= x - 1) {
            size_t b = w * 64 + (size_t)__builtin_ctzll(x);
            size_t r = rules->state_rule[b];
            if (rules->state_step[b] == rules->rule[r].nsteps && r < best)
                best = r;
        }
    return best;
}

static locale_t fold_locale_c_utf8;

static void
fold_locale_open(void)
{
    fold_locale_c_utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

locale_t
field_fold_locale(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, fold_locale_open);
    return fold_locale_c_utf8;
}

/* The next character of s[*i..n), folded by Unicode's simple case mappings
 * (to upper case, then lower: 'K', 'k' and the Kelvin sign fold alike, as do
 * 'S', 's' and the long s, or 'Ö' and 'ö'), the way case-insensitive compares
 * (.NET's OrdinalIgnoreCase, Java's equalsIgnoreCase, Go's encoding/json)
 * take two characters for one. A byte that starts no UTF-8 sequence is
 * itself. */
static unsigned
fold_next(const uint8_t *s, size_t n, size_t *i)
{
    size_t k = utf8_seq_len(s + *i, n - *i);
    unsigned c = s[*i];

    if (c < 0x80 || k == 0) {
        (*i)++;
        return c >= 'A' && c <= 'Z' ? c + 32 : c;
    }
    c &= 0xff >> (k + 1);
    for (size_t j = 1; j < k; j++)
        c = c << 6 | (s[*i + j] & 0x3f);
    *i += k;
    locale_t l = field_fold_locale();
    return (unsigned)towlower_l(towupper_l((wint_t)c, l), l);
}

/* Whether a[0..an) and b[0..bn) are the same name once folded (fold_next). */
static bool
fold_equal(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t i = 0, j = 0;

    while (i < an && j < bn)
        if (fold_next(a, an, &i) != fold_next(b, bn, &j))
            return false;
    return i == an && j == bn;
}

/* The set of a member named name[0..n) (name != NULL) or of element idx of
 * an array, from its parent's set; NULL when no state survives. *ambiguous
 * is set (to why) when a rule's name step that the member did not match equals its
 * name once folded (fold_equal), or when an index step faces a member named
 * by that index, or a name step naming an index faces that element. */
static const uint64_t *
step_set(const struct field_rules *rules, const uint64_t *parent, uint64_t *child,
         const uint8_t *name, size_t n, size_t idx, const char **ambiguous)
{
    bool any = false;
    memset(child, 0, rules->nwords * sizeof(*child));
    for (size_t w = 0; w < rules->nwords; w++)
        for (uint64_t x = parent[w]; x != 0; x &= x - 1) {
            size_t b = w * 64 + (size_t)__builtin_ctzll(x);
            const struct field_rule *ru = &rules->rule[rules->state_rule[b]];
            size_t k = rules->state_step[b];
            if (k == ru->nsteps)
                continue;
            const struct field_step *st = &ru->steps[k];
            bool hit = st->kind == STEP_ANY ||
                       (st->kind == STEP_NAME && name != NULL && st->name_len == n &&
                        memcmp(st->name, name, n) == 0) ||
                       (st->kind == STEP_INDEX && name == NULL && st->index == idx);
            if (!hit && st->kind == STEP_NAME && name != NULL &&
                fold_equal((const uint8_t *)st->name, st->name_len, name, n))
                *ambiguous = "differs from a rule's only in case";
            /* JavaScript and PHP read o[0] and o["0"] alike: an index step
             * facing a member "0", or a name step "0" facing element 0 */
            if (!hit && ((st->kind == STEP_INDEX && name != NULL &&
                          field_name_index((const char *)name, n) == st->index) ||
                         (st->kind == STEP_NAME && name == NULL && st->name_index == (int64_t)idx)))
                *ambiguous = name != NULL ? "names an index a rule takes"
                                          : "is an index a rule names as a member";
            if (st->descent) {
                child[w] |= 1ull << (b % 64);
                any = true;
            }
            if (hit) {
                child[(b + 1) / 64] |= 1ull << ((b + 1) % 64);
                any = true;
            }
        }
    return any ? child : NULL;
}

static enum field_result value(struct rw *rw, unsigned depth, const uint64_t *set);

/* Whether the steps of ru from k on are all indexes or *: a scalar there
 * is the rule's field once read as an array of one (or, in JavaScript, a
 * character of a string by its index). */
static bool
only_elements(const struct field_rule *ru, size_t k)
{
    while (k < ru->nsteps && ru->steps[k].kind != STEP_NAME)
        k++;
    return k == ru->nsteps;
}

/* The value at in[pos] against what the steps its states wait for expect.
 * A binder may read a value of another kind than the field's (Jackson's
 * ACCEPT_SINGLE_VALUE_AS_ARRAY reads a value as an array of it, and
 * UNWRAP_SINGLE_VALUE_ARRAYS an array of one as its element): so an array
 * where a rule's next step is a name is refused, and so is a string, number
 * or boolean where it is an index or * and only indexes or * follow; an
 * object where it is [0] or * with steps after it is read as the array's
 * element too (its states also go on past that step: $.a[*].b takes
 * {"a":{"b":1}}). Descent steps expect nothing: they look at any depth. own
 * is the value's state set (rw->sets' level of its depth), set as
 * step_set() left it. */
static enum field_result
shape(struct rw *rw, uint64_t *own)
{
    const struct field_rules *rules = rw->rules;
    char c = rw->in[rw->pos];
    bool scalar = c != '\0' && strchr("\"tf-0123456789", c) != NULL; /* not null */

    for (size_t w = 0; w < rules->nwords; w++)
        for (uint64_t x = own[w]; x != 0; x &= x - 1) {
            size_t b = w * 64 + (size_t)__builtin_ctzll(x), r = rules->state_rule[b];
            const struct field_rule *ru = &rules->rule[r];
            size_t k = rules->state_step[b];
            if (k == ru->nsteps || ru->steps[k].descent)
                continue;
            const struct field_step *st = &ru->steps[k];
            if (st->kind == STEP_NAME ? c == '[' : scalar && only_elements(ru, k))
                return field_fail(rw->err, FIELD_SHAPE,
                                  "path %zu expects %s at byte %zu: a backend could read "
                                  "this value as the rule's",
                                  r + 1, st->kind == STEP_NAME ? "an object" : "an array", rw->pos);
            if (c == '{' && k + 1 < ru->nsteps &&
                (st->kind == STEP_ANY || (st->kind == STEP_INDEX && st->index == 0))) {
                own[(b + 1) / 64] |= 1ull << ((b + 1) % 64);
                if ((b + 1) / 64 == w)
                    x |= 1ull << ((b + 1) % 64);
            }
        }
    return FIELD_OK;
}

/* Where the state sets of a container's members at depth + 1 go. */
static uint64_t *
child_sets(struct rw *rw, unsigned depth)
{
    return rw->rules ? rw->sets + (size_t)(depth + 1) * rw->rules->nwords : NULL;
}

/* Steps past an opening bracket: true (and past close) when the container
 * is empty. */
static bool
opens_empty(struct rw *rw, char close)
{
    rw->pos++;
    skip_ws(rw);
    if (rw->pos < rw->len && rw->in[rw->pos] == close) {
        rw->pos++;
        return true;
    }
    return false;
}

/* After a member or element: past the ',' (*more) or the closing bracket. */
static enum field_result
next_item(struct rw *rw, char close, bool *more)
{
    skip_ws(rw);
    if (rw->pos < rw->len && (rw->in[rw->pos] == ',' || rw->in[rw->pos] == close)) {
        *more = rw->in[rw->pos++] == ',';
        return FIELD_OK;
    }
    return malformed(rw, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
}

/* Why JavaScript would read the members of the value of a member named
 * name[0..n) as another object's, or NULL. A body's "__proto__" is an own
 * member to JSON.parse, but Object.assign, a for-in copy or a deep merge
 * assigns it, and the value becomes the prototype of the object it is
 * copied into: {"card":{"__proto__":{"number":1}}} gives the copy of card a
 * number. A "prototype" in a "constructor" is Object.prototype to a deep
 * merge that follows constructor.prototype (lodash's defaultsDeep before
 * 4.17.12, CVE-2019-10744): its members become every object's. in_ctor:
 * the member is one of the value of a member "constructor". */
static const char *
proto_name(const uint8_t *name, size_t n, bool in_ctor)
{
    if (n == 9 && memcmp(name, "__proto__", 9) == 0)
        return "is __proto__ (a prototype to JavaScript's copies and merges)";
    if (in_ctor && n == 9 && memcmp(name, "prototype", 9) == 0)
        return "is constructor.prototype (Object.prototype to JavaScript's deep merges)";
    return NULL;
}

/* A member's name and its ':' (from the whitespace before the name); *cs
 * the state set of its value. in_ctor: the object is the value of a member
 * "constructor" (proto_name()). */
static enum field_result
member_name(struct rw *rw, const uint64_t *set, uint64_t *child, const uint64_t **cs, bool in_ctor)
{
    const char *s;
    size_t n;
    bool esc;
    enum field_result r;

    skip_ws(rw);
    if (rw->pos >= rw->len || rw->in[rw->pos] != '"')
        return malformed(rw, "expected a member name");
    if ((r = scan_string(rw, &s, &n, &esc)) != FIELD_OK)
        return r;
    /* a name with U+0000 is refused wherever it is: a backend reading names as C
     * strings takes "number\u0000x" for "number", which no rule would match */
    const uint8_t *name = (const uint8_t *)s;
    if (rw->mode == RW_ENCRYPT && esc) {
        if ((r = decode(rw, s, n, &name, &n)) != FIELD_OK)
            return r;
        if (memchr(name, '\0', n) != NULL)
            return malformed(rw, "U+0000 in a member name");
    }
    if (rw->mode == RW_ENCRYPT) {
        const char *proto = proto_name(name, n, in_ctor);
        if (proto != NULL)
            return field_fail(rw->err, FIELD_AMBIGUOUS,
                              "member name at byte %zu %s: a backend could read its members "
                              "as an object's",
                              rw->pos, proto);
        rw->ctor_value = n == 11 && memcmp(name, "constructor", 11) == 0;
    }
    if (set != NULL) { /* encrypt only */
        const char *ambiguous = NULL;
        *cs = step_set(rw->rules, set, child, name, n, 0, &ambiguous);
        if (ambiguous != NULL)
            return field_fail(rw->err, FIELD_AMBIGUOUS,
                              "member name at byte %zu %s: a backend could read it as the rule's",
                              rw->pos, ambiguous);
    }
    skip_ws(rw);
    if (rw->pos >= rw->len || rw->in[rw->pos] != ':')
        return malformed(rw, "expected ':'");
    rw->pos++;
    return FIELD_OK;
}

/* An object or array at in[pos]; set is its own state set, in_ctor whether
 * it is the value of a member "constructor". */
static enum field_result
container(struct rw *rw, unsigned depth, const uint64_t *set, bool in_ctor)
{
    char close = rw->in[rw->pos] == '{' ? '}' : ']';
    uint64_t *child = child_sets(rw, depth);
    enum field_result r;

    if (opens_empty(rw, close))
        return FIELD_OK;
    for (size_t idx = 0;; idx++) {
        const uint64_t *cs = NULL;
        bool more = false;
        if (close == '}' && (r = member_name(rw, set, child, &cs, in_ctor)) != FIELD_OK)
            return r;
        if (close == ']' && set != NULL) {
            const char *ambiguous = NULL;
            cs = step_set(rw->rules, set, child, NULL, 0, idx, &ambiguous);
            if (ambiguous != NULL)
                return field_fail(rw->err, FIELD_AMBIGUOUS,
                                  "element %zu at byte %zu %s: a backend could read it as the "
                                  "rule's",
                                  idx, rw->pos, ambiguous);
        }
        if ((r = value(rw, depth + 1, cs)) != FIELD_OK ||
            (r = next_item(rw, close, &more)) != FIELD_OK)
            return r;
        if (!more)
            return FIELD_OK;
    }
}

static enum field_result
string_value(struct rw *rw, size_t rule)
{
    size_t start = rw->pos, n;
    const char *s;
    const uint8_t *d;
    bool esc;
    enum field_result r = scan_string(rw, &s, &n, &esc);

    if (r != FIELD_OK)
        return r;
    d = (const uint8_t *)s;
    if ((rw->mode == RW_ENCRYPT && rule == SIZE_MAX) || rw->mode == RW_SCAN)
        return FIELD_OK;
    /* a token written with escapes is still a token (never passed on) */
    if (esc && (r = decode(rw, s, n, &d, &n)) != FIELD_OK)
        return r;
    if (rw->mode == RW_ENCRYPT)
        r = encrypt_value(rw, start, rule, FIELD_T_STRING, d, n);
    else if (field_token_claimed((const char *)d, n))
        r = open_token(rw, start, (const char *)d, n);
    strbuf_truncate(&rw->ks->scratch, 0);
    return r;
}

static enum field_result
value(struct rw *rw, unsigned depth, const uint64_t *set)
{
    size_t rule = rw->rules ? matched_rule(rw->rules, set) : SIZE_MAX;
    size_t start, used = 0;
    bool in_ctor = rw->ctor_value;
    enum field_result r;

    rw->ctor_value = false;
    if (depth > FIELD_DEPTH_MAX)
        return malformed(rw, "nested deeper than 128");
    skip_ws(rw);
    if (rw->pos >= rw->len)
        return malformed(rw, "expected a value");
    start = rw->pos;
    /* a set is rw->sets' level depth: the root's, or its container's child_sets() */
    if (set != NULL && (r = shape(rw, rw->sets + (size_t)depth * rw->rules->nwords)) != FIELD_OK)
        return r;
    switch (rw->in[rw->pos]) {
    case '{':
    case '[':
        if (rule != SIZE_MAX)
            return field_fail(rw->err, FIELD_NOT_SCALAR,
                              "path %zu matches an %s at byte %zu: only strings, numbers and "
                              "booleans are encrypted",
                              rule + 1, rw->in[rw->pos] == '{' ? "object" : "array", rw->pos);
        return container(rw, depth, set, in_ctor);
    case '"':
        return string_value(rw, rule);
    case 't':
    case 'f':
    case 'n': {
        static const char *const lit[] = {"true", "false", "null"};
        for (int i = 0; i < 3; i++) {
            size_t l = strlen(lit[i]);
            if (rw->len - rw->pos >= l && memcmp(rw->in + rw->pos, lit[i], l) == 0) {
                rw->pos += l;
                if (rule == SIZE_MAX || i == 2) /* null stays null */
                    return FIELD_OK;
                return encrypt_value(rw, start, rule, FIELD_T_BOOL, (const uint8_t *)lit[i], l);
            }
        }
        return malformed(rw, "unknown literal");
    }
    default:
        if (!number_ok(rw->in + rw->pos, rw->len - rw->pos, &used))
            return malformed(rw, "expected a value");
        rw->pos += used;
        if (rule == SIZE_MAX)
            return FIELD_OK;
        return encrypt_value(rw, start, rule, FIELD_T_NUMBER, (const uint8_t *)rw->in + start,
                             used);
    }
}

static enum field_result
rewrite(struct rw *rw, unsigned *nfields)
{
    size_t mark = rw->mark = rw->out->len;
    uint64_t *sets = NULL;
    enum field_result r;

    if (rw->rules != NULL) {
        sets = calloc((size_t)(FIELD_DEPTH_MAX + 2) * rw->rules->nwords, sizeof(*sets));
        if (sets == NULL) {
            r = field_fail(rw->err, FIELD_INTERNAL, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < rw->rules->n; i++)
            sets[rw->rules->rule[i].state / 64] |= 1ull << (rw->rules->rule[i].state % 64);
        rw->sets = sets;
    }
    r = value(rw, 0, sets);
    if (r == FIELD_OK) {
        skip_ws(rw);
        if (rw->pos != rw->len)
            r = malformed(rw, "more after the value");
    }
    if (r == FIELD_OK) {
        flush_to(rw, rw->len);
        if (rw->out->failed)
            r = field_fail(rw->err, FIELD_INTERNAL, "out of memory");
    }
done:
    free(sets);
    strbuf_truncate(&rw->ks->scratch, 0);
    if (r != FIELD_OK && rw->out->data != NULL) {
        /* what was appended may hold decrypted values */
        strbuf_truncate(rw->out, mark);
    }
    if (nfields != NULL)
        *nfields = r == FIELD_OK ? rw->nfields : 0;
    return r;
}

enum field_result
field_encrypt_body(const struct field_rules *rules, struct field_keyset *ks, const char *in,
                   size_t len, size_t max_out, struct strbuf *out, unsigned *nfields, char *err)
{
    struct rw rw = {.in = in,
                    .len = len,
                    .max_out = max_out,
                    .out = out,
                    .rules = rules,
                    .ks = ks,
                    .mode = RW_ENCRYPT,
                    .err = err};
    return rewrite(&rw, nfields);
}

enum field_result
field_decrypt_body(struct field_keyset *ks, const char *in, size_t len, struct strbuf *out,
                   unsigned *nfields, char *err)
{
    struct rw rw = {.in = in, .len = len, .out = out, .ks = ks, .mode = RW_DECRYPT, .err = err};
    return rewrite(&rw, nfields);
}

enum field_result
field_rewrap_body(struct field_keyset *ks, const char *in, size_t len, struct strbuf *out,
                  unsigned *nfields, char *err)
{
    struct rw rw = {.in = in, .len = len, .out = out, .ks = ks, .mode = RW_REWRAP, .err = err};
    return rewrite(&rw, nfields);
}

/* The value of a member named name (found), into out as decoded text and
 * a NUL: a string's characters, nothing for another kind or for a string
 * with U+0000 in it (whose NUL would end the value early in out). */
static enum field_result
member_value(struct rw *rw, bool found, struct strbuf *out)
{
    const char *s;
    const uint8_t *d;
    size_t n;
    bool esc;
    enum field_result r;

    skip_ws(rw);
    if (!found || rw->pos >= rw->len || rw->in[rw->pos] != '"')
        r = value(rw, 1, NULL);
    else if ((r = scan_string(rw, &s, &n, &esc)) == FIELD_OK) {
        d = (const uint8_t *)s;
        if (esc && (r = decode(rw, s, n, &d, &n)) != FIELD_OK)
            return r;
        if (memchr(d, '\0', n) == NULL)
            strbuf_append(out, d, n);
    }
    if (found)
        strbuf_append(out, "", 1);
    return r;
}

enum field_result
field_json_member(struct field_keyset *ks, const char *in, size_t len, const char *name,
                  struct strbuf *value, unsigned *count, char *err)
{
    struct rw rw = {.in = in, .len = len, .ks = ks, .mode = RW_SCAN, .err = err};
    size_t nlen = strlen(name);
    enum field_result r = FIELD_OK;
    bool more = true;

    *count = 0;
    skip_ws(&rw);
    if (rw.pos >= rw.len || rw.in[rw.pos] != '{' || opens_empty(&rw, '}'))
        return FIELD_OK;
    while (r == FIELD_OK && more) {
        const char *s;
        const uint8_t *d;
        size_t n;
        bool esc;
        skip_ws(&rw);
        if (rw.pos >= rw.len || rw.in[rw.pos] != '"') {
            r = malformed(&rw, "expected a member name");
            break;
        }
        if ((r = scan_string(&rw, &s, &n, &esc)) != FIELD_OK)
            break;
        d = (const uint8_t *)s;
        if (esc && (r = decode(&rw, s, n, &d, &n)) != FIELD_OK)
            break;
        bool found = n == nlen && memcmp(d, name, n) == 0;
        skip_ws(&rw);
        if (rw.pos >= rw.len || rw.in[rw.pos] != ':') {
            r = malformed(&rw, "expected ':'");
            break;
        }
        rw.pos++;
        *count += found;
        if ((r = member_value(&rw, found, value)) == FIELD_OK)
            r = next_item(&rw, '}', &more);
    }
    strbuf_truncate(&ks->scratch, 0);
    if (r == FIELD_OK && value->failed)
        r = field_fail(err, FIELD_INTERNAL, "out of memory");
    return r;
}
