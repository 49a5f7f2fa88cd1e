/* endpoint.c - parse and format the one endpoint syntax (DESIGN.md "Endpoint syntax").
 *
 * Pure: no syscalls, no allocation. inet_pton() and inet_ntop() are plain libc string code.
 * After one strlen() the parser only works on (pointer, length) slices, so it never reads
 * past the terminating NUL of the caller's string. */
#include "net/endpoint.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "net/addr.h"

#define VSOCK_NUM_MAX 4294967294u /* 4294967295 is VMADDR_PORT_ANY / VMADDR_CID_ANY */
#define DNS_NAME_MAX 253
#define DNS_LABEL_MAX 63

/* Error messages for tcp and udp differ only in the scheme, so one macro builds both tables. */
enum inet_err {
    IE_OK,
    IE_SYNTAX,
    IE_BRACKET,
    IE_UNBRACKETED,
    IE_V6,
    IE_V4,
    IE_NAME,
    IE_PORT,
    IE_COUNT,
};

/* clang-format off */
#define INET_ERRORS(s) {                                                                \
    [IE_OK] = NULL,                                                                     \
    [IE_SYNTAX] = s ": expected HOST:PORT",                                             \
    [IE_BRACKET] = s ": expected [IPV6]:PORT",                                          \
    [IE_UNBRACKETED] = s ": IPv6 address must be in brackets, as [::1]:PORT",           \
    [IE_V6] = s ": invalid IPv6 address",                                               \
    [IE_V4] = s ": invalid IPv4 address",                                               \
    [IE_NAME] = s ": host name may hold letters, digits, '-', '_' and '.', in labels "  \
                  "of 1-63 characters, at most 253 in all",                             \
    [IE_PORT] = s ": port must be 1-65535",                                             \
}
/* clang-format on */

static const char *const tcp_errors[IE_COUNT] = INET_ERRORS("tcp");
static const char *const udp_errors[IE_COUNT] = INET_ERRORS("udp");

static const struct scheme {
    const char *prefix;
    size_t len;
    enum ep_kind kind;
} schemes[] = {
    {"tcp:", 4, EP_TCP},     {"udp:", 4, EP_UDP},       {"unix:", 5, EP_UNIX},
    {"vsock:", 6, EP_VSOCK}, {"hvsock:", 7, EP_HVSOCK},
};

static bool
is_hex_digit(char c)
{
    return addr_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static char
ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Stores the address in the canonical text of inet_ntop() (lower case, "::" compressed),
 * so that equal addresses compare equal and format back the same way. */
static bool
store_ip(int af, const char *p, size_t len, char *host)
{
    struct in6_addr addr; /* large enough for either family */

    if (!addr_parse_ip(af, p, len, &addr))
        return false;
    return inet_ntop(af, &addr, host, EP_HOST_MAX) != NULL;
}

/* A last label that is all digits or 0x-hex would make getaddrinfo() fall back to
 * inet_aton(), which reads "127.1" or "0x7f.0.0.1" as 127.0.0.1. Such hosts must be strict
 * dotted-quad literals instead, so what the config says is what gets dialled. */
static bool
numeric_label(const char *p, size_t len)
{
    size_t i = 0;

    if (len >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        for (i = 2; i < len; i++)
            if (!is_hex_digit(p[i]))
                return false;
        return true;
    }
    for (i = 0; i < len; i++)
        if (!addr_is_digit(p[i]))
            return false;
    return true;
}

/* Checks a DNS name or IPv4 literal and stores it (names in lower case). */
static enum inet_err
store_host(const char *p, size_t len, char *host)
{
    size_t label = 0, last = 0;

    if (len == 0 || len > DNS_NAME_MAX)
        return IE_NAME;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (c == '.') {
            if (label == 0)
                return IE_NAME;
            label = 0;
            last = i + 1;
            continue;
        }
        if (!(addr_is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
              c == '_'))
            return IE_NAME;
        if (++label > DNS_LABEL_MAX)
            return IE_NAME;
    }
    if (label == 0)
        return IE_NAME; /* trailing dot */
    if (numeric_label(p + last, len - last))
        return store_ip(AF_INET, p, len, host) ? IE_OK : IE_V4;
    for (size_t i = 0; i < len; i++)
        host[i] = ascii_lower(p[i]);
    host[len] = '\0';
    return IE_OK;
}

/* HOST:PORT for tcp and udp. Returns IE_OK or the index of the error message. */
static enum inet_err
parse_inet(const char *p, size_t len, struct endpoint *ep)
{
    const char *end = p + len, *port;

    if (len > 0 && p[0] == '[') {
        const char *close = memchr(p, ']', len);
        if (close == NULL || end - close < 2 || close[1] != ':')
            return IE_BRACKET;
        if (!store_ip(AF_INET6, p + 1, (size_t)(close - p - 1), ep->host))
            return IE_V6;
        port = close + 2;
    } else {
        const char *colon = memchr(p, ':', len);
        if (colon == NULL)
            return IE_SYNTAX;
        if (memchr(colon + 1, ':', (size_t)(end - colon - 1)) != NULL) {
            /* Name the likely mistake: a bare IPv6 address, with or without a port. */
            struct in6_addr a;
            const char *last = colon;
            for (const char *q = colon; q < end; q++)
                if (*q == ':')
                    last = q;
            if (addr_parse_ip(AF_INET6, p, len, &a) ||
                addr_parse_ip(AF_INET6, p, (size_t)(last - p), &a))
                return IE_UNBRACKETED;
            return IE_SYNTAX;
        }
        if (colon == p)
            return IE_SYNTAX;
        enum inet_err e = store_host(p, (size_t)(colon - p), ep->host);
        if (e != IE_OK)
            return e;
        port = colon + 1;
    }
    if (!addr_parse_decimal(port, (size_t)(end - port), 65535, &ep->port) || ep->port == 0)
        return IE_PORT;
    return IE_OK;
}

enum path_err { PE_OK, PE_EMPTY, PE_LONG, PE_CHAR };

/* Paths of unix and hvsock endpoints: non-empty, fit sun_path with its NUL, and hold no
 * spaces or control characters (they would be invisible or ambiguous in config and logs). */
static enum path_err
store_path(const char *p, size_t len, char *path)
{
    if (len == 0)
        return PE_EMPTY;
    if (len > EP_PATH_MAX - 1)
        return PE_LONG;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p[i] <= ' ' || p[i] == 0x7f)
            return PE_CHAR;
    memcpy(path, p, len);
    path[len] = '\0';
    return PE_OK;
}

static const char *
parse_unix(const char *p, size_t len, struct endpoint *ep)
{
    if (len == 1 && p[0] == '@')
        return "unix: abstract socket name after '@' must not be empty";
    switch (store_path(p, len, ep->path)) {
    case PE_OK:
        return NULL;
    case PE_EMPTY:
        return "unix: expected /PATH or @NAME";
    case PE_LONG:
        return "unix: path must be at most 107 bytes";
    case PE_CHAR:
        break;
    }
    return "unix: path must not contain spaces or control characters";
}

static const char *
parse_vsock(const char *p, size_t len, struct endpoint *ep)
{
    const char *colon = memchr(p, ':', len);

    if (colon == NULL || colon == p)
        return "vsock: expected CID:PORT";
    size_t cid_len = (size_t)(colon - p);
    if (cid_len == 3 && memcmp(p, "any", 3) == 0)
        ep->cid = EP_CID_ANY;
    else if (!addr_parse_decimal(p, cid_len, VSOCK_NUM_MAX, &ep->cid))
        return "vsock: CID must be 0-4294967294 or \"any\"";
    if (!addr_parse_decimal(colon + 1, len - cid_len - 1, VSOCK_NUM_MAX, &ep->port))
        return "vsock: port must be 0-4294967294";
    return NULL;
}

/* The last colon separates the port, so the socket path itself may contain colons. */
static const char *
parse_hvsock(const char *p, size_t len, struct endpoint *ep)
{
    size_t colon = len;

    while (colon > 0 && p[colon - 1] != ':')
        colon--;
    if (colon <= 1)
        return "hvsock: expected /PATH:PORT";
    switch (store_path(p, colon - 1, ep->path)) {
    case PE_OK:
        break;
    case PE_EMPTY:
        return "hvsock: expected /PATH:PORT";
    case PE_LONG:
        return "hvsock: path must be at most 107 bytes";
    case PE_CHAR:
        return "hvsock: path must not contain spaces or control characters";
    }
    if (!addr_parse_decimal(p + colon, len - colon, VSOCK_NUM_MAX, &ep->port))
        return "hvsock: port must be 0-4294967294";
    return NULL;
}

enum parse_result
endpoint_parse(const char *s, struct endpoint *ep, const char **err)
{
    const char *msg = "expected tcp:HOST:PORT, udp:HOST:PORT, unix:PATH, vsock:CID:PORT or "
                      "hvsock:PATH:PORT";

    memset(ep, 0, sizeof(*ep));
    if (s == NULL)
        goto fail;
    size_t len = strlen(s);
    const struct scheme *sc = NULL;
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        if (len >= schemes[i].len && memcmp(s, schemes[i].prefix, schemes[i].len) == 0) {
            sc = &schemes[i];
            break;
        }
    }
    if (sc == NULL)
        goto fail;

    const char *rest = s + sc->len;
    size_t rest_len = len - sc->len;
    ep->kind = sc->kind;
    switch (sc->kind) {
    case EP_TCP:
    case EP_UDP: {
        enum inet_err e = parse_inet(rest, rest_len, ep);
        msg = (sc->kind == EP_TCP ? tcp_errors : udp_errors)[e];
        break;
    }
    case EP_UNIX:
        msg = parse_unix(rest, rest_len, ep);
        break;
    case EP_VSOCK:
        msg = parse_vsock(rest, rest_len, ep);
        break;
    case EP_HVSOCK:
        msg = parse_hvsock(rest, rest_len, ep);
        break;
    }
    if (msg != NULL)
        goto fail;
    if (err != NULL)
        *err = NULL;
    return PARSE_OK;

fail:
    if (err != NULL)
        *err = msg;
    return PARSE_INVALID;
}

/* Bounded lengths keep format and equal safe on a hand-built struct that lacks a NUL. */
static int
bounded_len(const char *s, size_t max)
{
    return (int)strnlen(s, max - 1);
}

size_t
endpoint_format(const struct endpoint *ep, char *buf, size_t len)
{
    int n = 0;

    switch (ep->kind) {
    case EP_TCP:
    case EP_UDP: {
        const char *scheme = ep->kind == EP_TCP ? "tcp" : "udp";
        int hl = bounded_len(ep->host, EP_HOST_MAX);
        if (memchr(ep->host, ':', (size_t)hl) != NULL)
            n = snprintf(buf, len, "%s:[%.*s]:%" PRIu32, scheme, hl, ep->host, ep->port);
        else
            n = snprintf(buf, len, "%s:%.*s:%" PRIu32, scheme, hl, ep->host, ep->port);
        break;
    }
    case EP_UNIX:
        n = snprintf(buf, len, "unix:%.*s", bounded_len(ep->path, EP_PATH_MAX), ep->path);
        break;
    case EP_VSOCK:
        if (ep->cid == EP_CID_ANY)
            n = snprintf(buf, len, "vsock:any:%" PRIu32, ep->port);
        else
            n = snprintf(buf, len, "vsock:%" PRIu32 ":%" PRIu32, ep->cid, ep->port);
        break;
    case EP_HVSOCK:
        n = snprintf(buf, len, "hvsock:%.*s:%" PRIu32, bounded_len(ep->path, EP_PATH_MAX), ep->path,
                     ep->port);
        break;
    default:
        if (len > 0)
            buf[0] = '\0';
        break;
    }
    return n < 0 ? 0 : (size_t)n;
}

/* Host names are case-insensitive; parsed names are already lower case, but a caller may
 * build a struct by hand. */
static bool
host_equal(const char *a, const char *b)
{
    for (size_t i = 0; i < EP_HOST_MAX; i++) {
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return false;
        if (a[i] == '\0')
            return true;
    }
    return true;
}

const char *
endpoint_perm_check(const struct endpoint *ep)
{
    bool set = ep->perm.mode != 0 || ep->perm.owner[0] != '\0' || ep->perm.group[0] != '\0';
    bool file = (ep->kind == EP_UNIX || ep->kind == EP_HVSOCK) && ep->path[0] != '@';

    if (set && !file)
        return "mode, owner and group apply to listeners with a socket file (unix:/path, "
               "hvsock:/path:PORT), not to network or abstract sockets";
    return NULL;
}

int
endpoint_equal(const struct endpoint *a, const struct endpoint *b)
{
    if (a->kind != b->kind)
        return 0;
    switch (a->kind) {
    case EP_TCP:
    case EP_UDP:
        return a->port == b->port && host_equal(a->host, b->host);
    case EP_UNIX:
        return strncmp(a->path, b->path, EP_PATH_MAX) == 0;
    case EP_VSOCK:
        return a->cid == b->cid && a->port == b->port;
    case EP_HVSOCK:
        return a->port == b->port && strncmp(a->path, b->path, EP_PATH_MAX) == 0;
    }
    return 0;
}

/* endpoint_conf_equal() compares each field of these: a field added to
 * either must be added there, and the size here with it (LP64 ABIs). */
#if defined(__x86_64__) || defined(__aarch64__)
_Static_assert(sizeof(struct endpoint) == 512, "compare the new field of struct endpoint");
_Static_assert(sizeof(struct ep_perm) == 132, "compare the new field of struct ep_perm");
#endif

bool
endpoint_conf_equal(const struct endpoint *a, const struct endpoint *b)
{
    return endpoint_equal(a, b) && a->nofollow == b->nofollow &&
           a->reserved_port == b->reserved_port && a->perm.mode == b->perm.mode &&
           strncmp(a->perm.owner, b->perm.owner, EP_ID_MAX) == 0 &&
           strncmp(a->perm.group, b->perm.group, EP_ID_MAX) == 0;
}
