/* tls_hello.c - the server name of a TLS ClientHello; see tls_hello.h.
 * Pure: no syscalls, no allocation. RFC 8446 4.1.2 (ClientHello), 5.1
 * (records), RFC 6066 3 (server_name), RFC 8701 (GREASE: unknown values,
 * skipped like any other), draft-ietf-tls-esni (ECH). */
#include "proto/tls_hello.h"

#include <string.h>

#define REC_HANDSHAKE 22
#define HS_CLIENT_HELLO 1
#define EXT_SERVER_NAME 0
#define NAME_TYPE_HOST 0
#define EXT_SEEN_MAX 64 /* distinct extensions checked for duplicates */

/* A bounds-checked reader over the joined ClientHello. */
struct cur {
    const uint8_t *p, *end;
};

static bool
take(struct cur *c, size_t n, const uint8_t **out)
{
    if ((size_t)(c->end - c->p) < n)
        return false;
    *out = c->p;
    c->p += n;
    return true;
}

static bool
u8(struct cur *c, size_t *v)
{
    const uint8_t *b;

    if (!take(c, 1, &b))
        return false;
    *v = b[0];
    return true;
}

static bool
u16(struct cur *c, size_t *v)
{
    const uint8_t *b;

    if (!take(c, 2, &b))
        return false;
    *v = (size_t)b[0] << 8 | b[1];
    return true;
}

/* A sub-reader over the next n bytes. */
static bool
vec(struct cur *c, size_t n, struct cur *sub)
{
    const uint8_t *b;

    if (!take(c, n, &b))
        return false;
    sub->p = b;
    sub->end = b + n;
    return true;
}

static enum parse_result
invalid(struct tls_hello *h, const char *why)
{
    h->step = TLS_HELLO_DONE;
    h->result = PARSE_INVALID;
    h->err = why;
    return PARSE_INVALID;
}

enum parse_result
tls_host_parse(const uint8_t *name, size_t len, char *out, const char **why)
{
    size_t label = 0;

    *why = NULL;
    if (len == 0 || len > TLS_HOST_MAX)
        *why = "server name empty or longer than 253 bytes";
    for (size_t i = 0; i < len && *why == NULL; i++) {
        uint8_t ch = name[i];
        if (ch == '.') {
            if (label == 0 || name[i - 1] == '-')
                *why = "server name has an empty label or one ending in '-'";
            label = 0;
            out[i] = '.';
            continue;
        }
        if (ch == '-' && label == 0)
            *why = "server name has a label starting with '-'";
        else if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || ch == '-'))
            *why = "server name holds a byte that is not a letter, digit, '-' or '.'";
        else if (++label > 63)
            *why = "server name has a label longer than 63 bytes";
        out[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    }
    if (*why == NULL && (label == 0 || name[len - 1] == '-'))
        *why = "server name ends in '.' or '-'";
    if (*why != NULL)
        return PARSE_INVALID;
    out[len] = '\0';
    return PARSE_OK;
}

static enum parse_result
server_name(struct tls_hello *h, struct cur *ext)
{
    struct cur list;
    size_t n, type, len;
    const uint8_t *name;

    if (!u16(ext, &n) || !vec(ext, n, &list) || ext->p != ext->end || n == 0)
        return invalid(h, "malformed server_name extension");
    while (list.p < list.end) {
        if (!u8(&list, &type) || !u16(&list, &len) || !take(&list, len, &name))
            return invalid(h, "malformed server_name list");
        if (type != NAME_TYPE_HOST)
            continue; /* no other type is defined; skipped as RFC 6066 asks */
        const char *why;
        if (h->has_sni)
            return invalid(h, "two host names in server_name");
        if (tls_host_parse(name, len, h->host, &why) != PARSE_OK)
            return invalid(h, why);
        h->host_len = len;
        h->has_sni = true;
    }
    return PARSE_OK;
}

/* Parses the ClientHello body at hs[4..4+len). */
static enum parse_result
client_hello(struct tls_hello *h, size_t len)
{
    struct cur c = {h->hs + 4, h->hs + 4 + len}, exts;
    const uint8_t *b;
    size_t n, seen_n = 0;
    uint16_t seen[EXT_SEEN_MAX];

    if (!u16(&c, &n) || (n >> 8) != 3)
        return invalid(h, "ClientHello version is not TLS");
    h->hello_version = (uint16_t)n;
    if (!take(&c, 32, &b))
        return invalid(h, "ClientHello too short for its random");
    if (!u8(&c, &n) || n > 32 || !take(&c, n, &b))
        return invalid(h, "bad session id");
    if (!u16(&c, &n) || n < 2 || n % 2 != 0 || !take(&c, n, &b))
        return invalid(h, "bad cipher suites");
    if (!u8(&c, &n) || n < 1 || !take(&c, n, &b))
        return invalid(h, "bad compression methods");
    if (c.p == c.end)
        return PARSE_OK; /* TLS 1.0-1.2 allow a hello without extensions: no SNI */
    if (!u16(&c, &n) || !vec(&c, n, &exts) || c.p != c.end)
        return invalid(h, "extensions do not fill the ClientHello exactly");
    while (exts.p < exts.end) {
        size_t type;
        struct cur ext;
        if (!u16(&exts, &type) || !u16(&exts, &n) || !vec(&exts, n, &ext))
            return invalid(h, "an extension overruns the ClientHello");
        for (size_t i = 0; i < seen_n; i++)
            if (seen[i] == type)
                return invalid(h, "an extension appears twice");
        if (seen_n == EXT_SEEN_MAX)
            return invalid(h, "more than 64 extensions");
        seen[seen_n++] = (uint16_t)type;
        if (type == EXT_SERVER_NAME && server_name(h, &ext) != PARSE_OK)
            return PARSE_INVALID;
        if (type == TLS_EXT_ECH)
            h->has_ech = true;
    }
    return PARSE_OK;
}

void
tls_hello_init(struct tls_hello *h, uint8_t *buf, size_t cap)
{
    memset(h, 0, sizeof(*h));
    h->hs = buf;
    h->cap = cap;
    h->step = TLS_HELLO_RECORD_HEADER;
    h->result = PARSE_AGAIN;
}

/* Checks the record header bytes present so far; starts the fragment when
 * all five are there. */
static enum parse_result
record_header(struct tls_hello *h)
{
    const uint8_t *r = h->hdr;

    if (r[0] != REC_HANDSHAKE)
        return invalid(h, h->wire == 1 ? "not a TLS handshake record (not TLS?)"
                                       : "a record that is not a handshake inside the ClientHello");
    if (h->hdr_len >= 2 && r[1] != 3)
        return invalid(h, "record version is not TLS");
    if (h->hdr_len >= 3 && r[2] > 4)
        return invalid(h, "record version is not TLS 1.0-1.3");
    if (h->hdr_len < 5)
        return PARSE_AGAIN;
    size_t len = (size_t)r[3] << 8 | r[4];
    if (len == 0 || len > TLS_RECORD_MAX)
        return invalid(h, "record length 0 or over 16384");
    if (h->record_version == 0)
        h->record_version = (uint16_t)(r[1] << 8 | r[2]);
    h->frag_left = len;
    h->hdr_len = 0;
    h->step = TLS_HELLO_FRAGMENT;
    return PARSE_AGAIN;
}

/* Checks the handshake header as its bytes arrive; parses the body once it
 * is all there. */
static enum parse_result
handshake(struct tls_hello *h)
{
    if (h->hs[0] != HS_CLIENT_HELLO)
        return invalid(h, "the first handshake message is not a ClientHello");
    if (h->hs_len < 4)
        return PARSE_AGAIN;
    size_t len = (size_t)h->hs[1] << 16 | (size_t)h->hs[2] << 8 | h->hs[3];
    if (len > h->cap - 4)
        return invalid(h, "ClientHello larger than the limit (max_hello)");
    if (h->hs_len < 4 + len)
        return PARSE_AGAIN;
    if (client_hello(h, len) != PARSE_OK)
        return PARSE_INVALID;
    h->step = TLS_HELLO_DONE;
    h->result = PARSE_OK;
    return PARSE_OK;
}

/* The handshake message's length, once its header is there: what the
 * fragments may still add; else enough for the header. */
static size_t
hs_want(const struct tls_hello *h)
{
    if (h->hs_len < 4)
        return 4 - h->hs_len;
    return 4 + ((size_t)h->hs[1] << 16 | (size_t)h->hs[2] << 8 | h->hs[3]) - h->hs_len;
}

enum parse_result
tls_hello_feed(struct tls_hello *h, const uint8_t *data, size_t len, size_t *used)
{
    size_t off = 0;
    enum parse_result r = PARSE_AGAIN;

    if (h->step == TLS_HELLO_DONE)
        return h->result;
    while (off < len && r == PARSE_AGAIN) {
        if (h->step == TLS_HELLO_RECORD_HEADER) {
            h->hdr[h->hdr_len++] = data[off++];
            h->wire++;
            r = record_header(h);
        } else {
            /* fragment bytes: up to the record's end, and no further than the
             * handshake message (checked byte by byte while its header comes) */
            size_t n = len - off, want = hs_want(h);
            if (n > h->frag_left)
                n = h->frag_left;
            if (n > want)
                n = want;
            if (h->hs_len < 4 && n > 1)
                n = 1;
            memcpy(h->hs + h->hs_len, data + off, n);
            h->hs_len += n;
            h->frag_left -= n;
            h->wire += n;
            off += n;
            r = handshake(h);
            if (r == PARSE_AGAIN && h->frag_left == 0)
                h->step = TLS_HELLO_RECORD_HEADER;
        }
        /* as soon as it is known: a caller that offers no more than the
         * limit (the router reads no more) would otherwise wait for nothing */
        if (r == PARSE_AGAIN && h->wire >= 2 * h->cap)
            return invalid(h, "ClientHello records larger than twice the limit (max_hello)");
    }
    if (r == PARSE_OK && used != NULL)
        *used = off;
    return r;
}
