/* conf.c - an HTTP proxy's settings: defaults and the rules that span keys;
 * see conf.h. */
#include "http/conf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const http_route_method_names[HTTP_RM_COUNT] = {
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
};

void
http_proxy_conf_defaults(struct http_proxy_conf *pc)
{
    memset(pc, 0, sizeof(*pc));
    pc->max_header = 16 * 1024;
    pc->max_headers = 100;
    pc->max_body = 1024 * 1024;
    pc->max_response = 16 * 1024 * 1024;
    pc->header_timeout_ms = 10 * 1000;
    pc->body_timeout_ms = 30 * 1000;
    pc->idle_timeout_ms = 60 * 1000;
    pc->connect_timeout_ms = 5 * 1000;
    pc->response_timeout_ms = 60 * 1000;
    pc->max_unproven_per_client = UNPROVEN_PER_CLIENT_AUTO;
}

unsigned
http_proxy_per_client(const struct http_proxy_conf *pc)
{
    if (pc->max_unproven_per_client != UNPROVEN_PER_CLIENT_AUTO)
        return pc->max_unproven_per_client;
    return unproven_per_client_default(pc->max_connections, pc->listen.kind,
                                       pc->accept_proxy != PROXY_NONE);
}

void
http_route_conf_defaults(struct http_route_conf *rc)
{
    memset(rc, 0, sizeof(*rc));
    strcpy(rc->prefix, "/");
    strcpy(rc->content_type, "application/json");
}

static bool
stream_kind(enum ep_kind k)
{
    return k != EP_UDP;
}

/* A key of route i that does not fit the proxy's mode. */
static int
route_fault(struct conf_fault *f, size_t i, const char *key, const char *what)
{
    conf_fault(f, "routes", "routes[%zu].%s: %s", i, key, what);
    f->at_block = false;
    f->item = i;
    return -1;
}

static bool
backend_given(const struct http_proxy_conf *pc)
{
    return pc->backend.kind != EP_TCP || pc->backend.host[0] != '\0';
}

/* mode: outbound: destinations instead of a backend, and decrypt only. */
static int
outbound_check(const struct http_proxy_conf *pc, struct conf_fault *f)
{
#ifndef AIRLOCK_WITH_FIELD
    (void)pc;
    return conf_fault(f, "mode", HTTP_NO_FIELD);
#else
    if (backend_given(pc))
        return conf_fault(f, "backend",
                          "expected no backend in mode outbound: each route names its upstream");
    if (http_proxy_has_via(pc) &&
        (!stream_kind(pc->via.kind) || (pc->via.kind == EP_VSOCK && pc->via.cid == EP_CID_ANY)))
        return conf_fault(f, "via",
                          "expected the stream endpoint of an egress relay to connect "
                          "to (tcp, unix, vsock:CID:PORT, hvsock)");
    if (pc->n_egress_allow == 0)
        return conf_fault(f, "egress_allow",
                          "expected the destinations an outbound proxy may reach "
                          "(api.example.com:443, ...)");
    if (pc->n_routes == 0)
        return conf_fault(f, "routes", "expected routes, each with its upstream");
    for (size_t i = 0; i < pc->n_routes; i++) {
        const struct http_route_conf *rc = &pc->routes[i];
        if (rc->upstream.host[0] == '\0')
            return route_fault(f, i, "upstream",
                               "expected the destination of an outbound route "
                               "(https://api.example.com)");
        if (rc->n_rules > 0)
            return route_fault(f, i, "encrypt",
                               "expected no encrypt rules in mode outbound (its routes decrypt "
                               "tokens on the way out: decrypt: true)");
    }
    return 0;
#endif
}

static int
inbound_check(const struct http_proxy_conf *pc, struct conf_fault *f)
{
    if (!backend_given(pc))
        return conf_fault(f, "backend", "missing from proxy '%s': %s", pc->name, EP_EXPECT);
    if (pc->n_egress_allow > 0)
        return conf_fault(f, "egress_allow", "expected egress_allow in mode outbound only");
    if (pc->ca_file[0] != '\0')
        return conf_fault(f, "ca_file", "expected ca_file in mode outbound only");
    if (http_proxy_has_via(pc))
        return conf_fault(f, "via", "expected via in mode outbound only");
    for (size_t i = 0; i < pc->n_routes; i++)
        if (pc->routes[i].upstream.host[0] != '\0')
            return route_fault(f, i, "upstream",
                               "expected upstream in mode outbound only (an inbound proxy has "
                               "one backend)");
    return 0;
}

int
http_proxy_conf_check(const struct http_proxy_conf *pc, struct conf_fault *f)
{
    if (!stream_kind(pc->listen.kind) || pc->listen.kind == EP_HVSOCK)
        return conf_fault(f, "listen",
                          "expected a tcp, unix or vsock endpoint (an hvsock device speaks its "
                          "CONNECT line first: put a relay in front)");
    if ((pc->mode == HTTP_OUTBOUND ? outbound_check(pc, f) : inbound_check(pc, f)) != 0 ||
        allow_proxy_from_check(pc->listen.kind, pc->accept_proxy != PROXY_NONE, pc->proxy_from,
                               pc->n_proxy_from, f) != 0)
        return -1;
    if (pc->max_unproven_per_client != UNPROVEN_PER_CLIENT_AUTO && pc->max_connections > 0 &&
        pc->max_unproven_per_client > pc->max_connections)
        return conf_fault(f, "max_unproven_per_client", "expected at most max_connections (%u)",
                          pc->max_connections);
    if (!stream_kind(pc->backend.kind))
        return conf_fault(f, "backend", "expected a stream endpoint (tcp, unix, vsock, hvsock)");
    if (pc->backend.kind == EP_VSOCK && pc->backend.cid == EP_CID_ANY)
        return conf_fault(f, "backend", "expected a CID to connect to, not any");
    for (size_t i = 0; i < pc->n_routes; i++) {
        const struct http_route_conf *rc = &pc->routes[i];
        if ((rc->n_rules > 0 || rc->decrypt) && rc->keyset[0] == '\0' && pc->keyset[0] == '\0') {
            f->at_block = false;
            conf_fault(f, "routes",
                       "expected a keyset: route '%s' encrypts or decrypts; give keyset: in the "
                       "route or the proxy",
                       rc->name);
            f->item = i;
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(pc->routes[j].name, rc->name) == 0) {
                conf_fault(f, "routes", "expected unique route names; routes[%zu] is already '%s'",
                           j, rc->name);
                f->item = i;
                return -1;
            }
        /* the first route that matches takes a request: behind one whose
         * prefix and methods take all of its requests, a route's rules never
         * run ("/" before "/pay": its fields would all pass in plaintext) */
        for (size_t j = 0; j < i && (rc->n_rules > 0 || rc->decrypt); j++) {
            const struct http_route_conf *rj = &pc->routes[j];
            if (strncasecmp(rc->prefix, rj->prefix, strlen(rj->prefix)) == 0 &&
                (rj->methods == 0 || (rc->methods != 0 && (rc->methods & ~rj->methods) == 0))) {
                conf_fault(f, "routes",
                           "expected a route some request reaches: routes[%zu] ('%s') comes "
                           "first and takes every request route '%s' would, whose rules would "
                           "never run",
                           j, rj->name, rc->name);
                f->item = i;
                return -1;
            }
        }
    }
    return 0;
}

/* Replaces, in out[0..*len), each letter whose simple case mapping is an
 * ASCII letter by that letter (http_path_normalize()). */
static void
fold_to_ascii(char *out, size_t *len)
{
    static const struct {
        const char *utf8;
        char ascii;
    } folds[] = {
        {"\xc5\xbf", 's'},     /* U+017F long s: upper case S */
        {"\xc4\xb1", 'i'},     /* U+0131 dotless i: upper case I */
        {"\xc4\xb0", 'i'},     /* U+0130 I with dot: lower case i */
        {"\xe2\x84\xaa", 'k'}, /* U+212A Kelvin sign: lower case k */
    };
    size_t o = 0;

    for (size_t i = 0; i < *len;) {
        size_t k = 0;
        while (k < sizeof(folds) / sizeof(folds[0]) &&
               strncmp(out + i, folds[k].utf8, strlen(folds[k].utf8)) != 0)
            k++;
        if (k < sizeof(folds) / sizeof(folds[0])) {
            out[o++] = folds[k].ascii;
            i += strlen(folds[k].utf8);
        } else {
            out[o++] = out[i++];
        }
    }
    *len = o;
}

enum http_path_result
http_path_normalize(const char *p, size_t n, char *out, size_t size)
{
    size_t o = 0;
    bool dir = false; /* the last segment names a directory: "", ".", "..", ";x" */

    /* out gets at most a '/' and a byte per byte of p, and its NUL */
    if (n > HTTP_REQ_PATH_MAX || size < HTTP_REQ_PATH_MAX + 2)
        return HTTP_PATH_TOO_LONG;
    for (size_t i = 0; i < n;) {
        /* one segment: from a '/' to the next */
        size_t seg = o;
        bool param = false;
        if (o + 1 >= size)
            return HTTP_PATH_TOO_LONG;
        out[o++] = '/';
        while (i < n && p[i] == '/')
            i++;
        while (i < n && p[i] != '/') {
            char c = p[i++];
            if (c == '%') {
                if (i + 1 >= n || !isxdigit((unsigned char)p[i]) ||
                    !isxdigit((unsigned char)p[i + 1]))
                    return HTTP_PATH_INVALID;
                char hex[3] = {p[i], p[i + 1], 0};
                c = (char)strtol(hex, NULL, 16);
                i += 2;
                /* an encoded separator is a segment to one backend and two
                 * to another: refused rather than guessed */
                if (c == '\0' || c == '/' || c == '\\')
                    return HTTP_PATH_INVALID;
            } else if (c == '\\') {
                return HTTP_PATH_INVALID;
            }
            /* "/pay;jsessionid=x" is /pay to a servlet container: the
             * parameters (raw or encoded ';') are not part of the name */
            if (c == ';')
                param = true;
            if (param)
                continue;
            if (o + 1 >= size)
                return HTTP_PATH_TOO_LONG;
            out[o++] = c;
        }
        size_t sl = o - seg - 1;
        bool dot = sl == 1 && out[seg + 1] == '.';
        bool dotdot = sl == 2 && out[seg + 1] == '.' && out[seg + 2] == '.';
        if (param && (dot || dotdot))
            return HTTP_PATH_INVALID;
        /* RFC 3986 5.2.4 keeps the '/' before a last "." or "..": "/a/b/.." is "/a/" */
        dir = sl == 0 || dot || dotdot;
        if (sl == 0 || dot) {
            o = seg;
        } else if (dotdot) {
            o = seg;
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
        }
    }
    if (o == 0 || dir) {
        if (o + 1 >= size)
            return HTTP_PATH_TOO_LONG;
        out[o++] = '/';
    }
    /* a '%' here was "%25": with two hex digits after it, a backend (or a
     * hop before it) that decodes twice reads another path, "/%2570ay" as
     * /pay (Spring Security's firewall refuses "%25" for that reason) */
    for (size_t i = 0; i + 2 < o; i++)
        if (out[i] == '%' && isxdigit((unsigned char)out[i + 1]) &&
            isxdigit((unsigned char)out[i + 2]))
            return HTTP_PATH_INVALID;
    out[o] = '\0';
    fold_to_ascii(out, &o);
    out[o] = '\0';
    return HTTP_PATH_OK;
}

int
http_route_conf_check(const struct http_route_conf *rc, struct conf_fault *f)
{
    if (rc->prefix[0] != '/')
        return conf_fault(f, "path", "expected a path prefix starting with '/'");
    /* requests are matched without their path parameters: a ';' never matches */
    if (strchr(rc->prefix, ';') != NULL)
        return conf_fault(f, "path",
                          "expected a path prefix without ';' (path parameters are "
                          "not part of the path routes match)");
    if (strpbrk(rc->prefix, "?#") != NULL)
        return conf_fault(f, "path", "expected a path prefix without a query or fragment");
    /* routes compare case in ASCII only: a backend that folds Unicode reads
     * /CAF%C3%89 as /café, which the prefix /café would not take */
    for (const char *c = rc->prefix; *c != '\0'; c++)
        if ((unsigned char)*c >= 0x80)
            return conf_fault(f, "path",
                              "expected a path prefix in ASCII (routes compare case in ASCII "
                              "only, a backend may fold it in all of Unicode: give the ASCII "
                              "part before it)");
    /* requests are matched once normalized: a prefix that is not would
     * take none of them, and its rules would never run */
    char norm[HTTP_REQ_PATH_MAX + 2];
    if (http_path_normalize(rc->prefix, strlen(rc->prefix), norm, sizeof(norm)) != HTTP_PATH_OK)
        return conf_fault(f, "path",
                          "expected a path prefix requests may have (requests with a backslash, "
                          "a bad %%XX escape, or an escaped '/', '\\' or NUL, are refused)");
    if (strcmp(norm, rc->prefix) != 0)
        return conf_fault(f, "path",
                          "expected a path prefix as requests are matched: without empty, '.' "
                          "or '..' segments or %%XX escapes (requests for it are matched as "
                          "'%.100s')",
                          norm);
    for (size_t i = 0; i < rc->n_rules; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(rc->rules[i].path, rc->rules[j].path) == 0) {
                conf_fault(f, rc->rules[i].deterministic ? "deterministic" : "encrypt",
                           "expected each path once; %s is given twice", rc->rules[i].path);
                return -1;
            }
#ifndef AIRLOCK_WITH_FIELD
    if (rc->decrypt)
        return conf_fault(f, "decrypt", HTTP_NO_FIELD);
#endif
    if (rc->n_rules > 0 && rc->content_type[0] == '\0')
        return conf_fault(f, "content_type", "expected the media type of the bodies encrypted");
    return 0;
}

int
http_upstream_parse(const char *s, struct endpoint *ep, const char **why)
{
    static const char scheme[] = "https://";
    char text[EP_HOST_MAX + 16];
    size_t n;

    *why = "expected https://HOST[:PORT] or HOST:PORT (TLS; an IPv6 address in brackets)";
    if (strncmp(s, scheme, sizeof(scheme) - 1) == 0) {
        s += sizeof(scheme) - 1;
        n = strlen(s);
        if (n > 0 && s[n - 1] == '/')
            n--;
        /* a port is given when the last ':' follows the host (after a ']') */
        const char *colon = memrchr(s, ':', n), *bracket = memrchr(s, ']', n);
        bool port = colon != NULL && (bracket == NULL || colon > bracket) &&
                    (s[0] == '[' || memchr(s, ':', (size_t)(colon - s)) == NULL);
        if (n == 0 || memchr(s, '/', n) != NULL ||
            snprintf(text, sizeof(text), "tcp:%.*s%s", (int)n, s, port ? "" : ":443") >=
                (int)sizeof(text))
            return -1;
    } else if (snprintf(text, sizeof(text), "tcp:%s", s) >= (int)sizeof(text)) {
        return -1;
    }
    if (endpoint_parse(text, ep, why) != PARSE_OK || ep->kind != EP_TCP || ep->port == 0) {
        *why = "expected https://HOST[:PORT] or HOST:PORT (TLS; an IPv6 address in brackets)";
        return -1;
    }
    return 0;
}

void
http_upstream_authority(const struct endpoint *up, bool port_always, char *buf, size_t len)
{
    bool v6 = strchr(up->host, ':') != NULL;

    if (port_always || up->port != 443)
        snprintf(buf, len, "%s%s%s:%u", v6 ? "[" : "", up->host, v6 ? "]" : "", (unsigned)up->port);
    else
        snprintf(buf, len, "%s%s%s", v6 ? "[" : "", up->host, v6 ? "]" : "");
}

bool
http_proxy_has_via(const struct http_proxy_conf *pc)
{
    return pc->via.kind != EP_TCP || pc->via.host[0] != '\0';
}

/* The compares below go field by field, strings by their text: a memcmp
 * would see padding and what follows a NUL. A field added to one of these
 * structs must be compared there: these sizes (LP64 ABIs) fail the build
 * until it is, and are then updated. */
#if defined(__x86_64__) || defined(__aarch64__)
_Static_assert(sizeof(struct http_proxy_conf) == 29608, "http_proxy_conf_equal()");
_Static_assert(sizeof(struct http_route_conf) == 13304, "http_route_conf_equal()");
_Static_assert(sizeof(struct http_rule_conf) == 257, "http_route_conf_equal()");
#endif

static bool
http_route_conf_equal(const struct http_route_conf *a, const struct http_route_conf *b)
{
    if (strncmp(a->name, b->name, sizeof(a->name)) != 0 || a->methods != b->methods ||
        strncmp(a->prefix, b->prefix, sizeof(a->prefix)) != 0 ||
        strncmp(a->content_type, b->content_type, sizeof(a->content_type)) != 0 ||
        a->n_rules != b->n_rules || a->decrypt != b->decrypt ||
        strncmp(a->keyset, b->keyset, sizeof(a->keyset)) != 0 ||
        !endpoint_conf_equal(&a->upstream, &b->upstream))
        return false;
    for (size_t i = 0; i < a->n_rules && i < HTTP_RULES_MAX; i++)
        if (strncmp(a->rules[i].path, b->rules[i].path, sizeof(a->rules[i].path)) != 0 ||
            a->rules[i].deterministic != b->rules[i].deterministic)
            return false;
    return true;
}

bool
http_proxy_conf_equal(const struct http_proxy_conf *a, const struct http_proxy_conf *b)
{
    if (strncmp(a->name, b->name, sizeof(a->name)) != 0 ||
        !endpoint_conf_equal(&a->listen, &b->listen) || a->mode != b->mode ||
        !endpoint_conf_equal(&a->backend, &b->backend) ||
        a->max_connections != b->max_connections ||
        a->max_unproven_per_client != b->max_unproven_per_client ||
        a->accept_proxy != b->accept_proxy || a->n_proxy_from != b->n_proxy_from ||
        !allow_rules_equal(a->proxy_from, b->proxy_from, a->n_proxy_from) ||
        a->max_header != b->max_header || a->max_headers != b->max_headers ||
        a->max_body != b->max_body || a->max_response != b->max_response ||
        a->header_timeout_ms != b->header_timeout_ms || a->body_timeout_ms != b->body_timeout_ms ||
        a->idle_timeout_ms != b->idle_timeout_ms ||
        a->connect_timeout_ms != b->connect_timeout_ms ||
        a->response_timeout_ms != b->response_timeout_ms ||
        strncmp(a->keyset, b->keyset, sizeof(a->keyset)) != 0 ||
        strncmp(a->ca_file, b->ca_file, sizeof(a->ca_file)) != 0 ||
        !endpoint_conf_equal(&a->via, &b->via) || a->n_egress_allow != b->n_egress_allow ||
        a->n_routes != b->n_routes)
        return false;
    for (size_t i = 0; i < a->n_egress_allow && i < HTTP_EGRESS_MAX; i++)
        if (!egress_rule_equal(&a->egress_allow[i], &b->egress_allow[i]))
            return false;
    for (size_t i = 0; i < a->n_routes; i++)
        if (!http_route_conf_equal(&a->routes[i], &b->routes[i]))
            return false;
    return true;
}

void
http_proxy_conf_free(struct http_proxy_conf *pc)
{
    free(pc->routes);
    pc->routes = NULL;
    pc->n_routes = 0;
}

const char *
http_route_keyset(const struct http_proxy_conf *pc, size_t i)
{
    const struct http_route_conf *rc = &pc->routes[i];

    if (rc->n_rules == 0 && !rc->decrypt)
        return NULL;
    return rc->keyset[0] != '\0' ? rc->keyset : pc->keyset;
}
