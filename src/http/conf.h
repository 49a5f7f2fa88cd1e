/* conf.h - the settings of one HTTP reverse proxy (an entry of proxies:),
 * their defaults, bounds and the rules that span several of them. The keys
 * and their forms are described in cli/config.h and docs/field-encryption.md. */
#ifndef AIRLOCK_HTTP_CONF_H
#define AIRLOCK_HTTP_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "core/units.h"
#include "net/allow.h"
#include "net/egress.h"
#include "net/endpoint.h"
#include "net/unproven.h"
#include "proto/proxy_v2.h"

#define HTTP_PROXIES_MAX 64
#define HTTP_ROUTES_MAX 32
#define HTTP_RULES_MAX 32 /* encrypt paths of one route (at most FIELD_RULES_MAX) */
#define HTTP_PATH_MAX 256
#define HTTP_PREFIX_MAX 256
#define HTTP_REQ_PATH_MAX 4096 /* a request's path (as sent, up to '?'): over it, 414 */
#define HTTP_MAX_HEADER_LIMIT (1024 * 1024) /* the largest max_header */
#define HTTP_CTYPE_MAX 128
#define HTTP_FILE_MAX 4096
#define HTTP_MAXCONN_MAX 10000000u
#define HTTP_EGRESS_MAX 64 /* egress_allow rules of an outbound proxy */
#define HTTP_NO_FIELD                                                                              \
    "field encryption is not in this build (the static build: no libcjson.a); routes here can "    \
    "only pass requests through"

/* What a proxy stands in front of (mode:). */
enum http_mode {
    HTTP_INBOUND, /* a backend of the enclave's: request fields encrypted, response tokens opened */
    HTTP_OUTBOUND, /* the enclave's own calls to third parties: request tokens opened, sent
                      over TLS airlock originates and verifies, to allowed destinations only */
};

/* Which methods a route takes: a bit per method (enum http_route_method). */
enum http_route_method {
    HTTP_RM_GET = 1 << 0,
    HTTP_RM_HEAD = 1 << 1,
    HTTP_RM_POST = 1 << 2,
    HTTP_RM_PUT = 1 << 3,
    HTTP_RM_PATCH = 1 << 4,
    HTTP_RM_DELETE = 1 << 5,
    HTTP_RM_OPTIONS = 1 << 6,
};
#define HTTP_RM_COUNT 7

/* The methods' names: http_route_method_names[i] is bit 1 << i. */
extern const char *const http_route_method_names[HTTP_RM_COUNT];

/* A route: the requests it takes (methods, path prefix) and what is done
 * to their bodies. */
struct http_route_conf {
    char name[CONF_NAME_MAX];
    unsigned methods;                  /* 0: any */
    char prefix[HTTP_PREFIX_MAX];      /* the path starts with it ("/": all) */
    char content_type[HTTP_CTYPE_MAX]; /* a body must be of this media type; "" none required */
    struct http_rule_conf {
        char path[HTTP_PATH_MAX];
        bool deterministic;
    } rules[HTTP_RULES_MAX]; /* JSON paths sealed in request bodies (encrypt, deterministic) */
    size_t n_rules;
    bool decrypt;               /* inbound: tokens in responses are opened; outbound: in requests */
    char keyset[HTTP_FILE_MAX]; /* "": the proxy's */
    struct endpoint upstream;   /* outbound: the destination (tcp: host and port); host "": none */
};

struct http_proxy_conf {
    char name[CONF_NAME_MAX];
    struct endpoint listen;
    enum http_mode mode;
    struct endpoint backend;          /* inbound only; host "" (tcp): not given */
    unsigned max_connections;         /* 0: no limit */
    unsigned max_unproven_per_client; /* UNPROVEN_PER_CLIENT_AUTO: http_proxy_per_client() */
    enum proxy_mode accept_proxy;     /* connections begin with a PROXY v2 header */
    size_t max_header;                /* bytes of a request head */
    unsigned max_headers;             /* header lines of a request */
    size_t max_body;                  /* bytes of a request body (after de-chunking) */
    size_t max_response;              /* bytes of a response body read whole (else streamed) */
    unsigned header_timeout_ms;       /* a started request head must be whole within it */
    unsigned body_timeout_ms;         /* the body, from the end of the head */
    unsigned idle_timeout_ms;         /* a kept-alive connection waits this long for a request */
    unsigned connect_timeout_ms;      /* the backend: over it, 504 */
    unsigned response_timeout_ms;     /* the backend's whole response: over it, 504 */
    char keyset[HTTP_FILE_MAX];       /* the routes' keyset file unless they name one */
    char ca_file[HTTP_FILE_MAX];      /* outbound: CAs upstreams are verified with; "": system's */
    struct endpoint via; /* outbound: an egress relay upstreams are reached through (HTTP
                            CONNECT); host "" (tcp): upstreams are dialled directly */
    struct egress_rule egress_allow[HTTP_EGRESS_MAX]; /* outbound: the destinations allowed */
    size_t n_egress_allow;
    /* with accept_proxy: the peers whose headers are believed (the fronts);
     * another is refused at accept. None: any peer (as a relay's) */
    struct allow_rule proxy_from[CONF_ALLOW_MAX];
    size_t n_proxy_from;
    struct http_route_conf *routes; /* owned; n_routes */
    size_t n_routes;
};

/* How many unproven connections (no whole request yet) one client may hold
 * at once, 0: no bound: max_unproven_per_client, or when it is not set
 * unproven_per_client_default() (as a relay's). With accept_proxy a client
 * is the source its header names; without, the peer (behind a tls: relay
 * that sends no header, the relay: every client is one). */
unsigned http_proxy_per_client(const struct http_proxy_conf *pc);

/* An encrypted request body may grow to this many times max_body (and 64
 * KiB): 413 body_too_large beyond (docs/field-encryption.md). */
#define HTTP_SEALED_GROWTH 4

/* Fills *pc with the defaults: max_header 16KiB, max_headers 100, max_body
 * 1MiB, max_response 16MiB, header_timeout 10s, body_timeout 30s,
 * idle_timeout 60s, connect_timeout 5s, response_timeout 60s, no routes. */
void http_proxy_conf_defaults(struct http_proxy_conf *pc);

enum http_path_result {
    HTTP_PATH_OK,
    HTTP_PATH_INVALID,  /* 400 */
    HTTP_PATH_TOO_LONG, /* 414 */
};

/* Decodes %XX, drops empty and "." segments, path parameters (";..." to the
 * segment's end) and resolves ".." in the path p[0..n) into out
 * (HTTP_REQ_PATH_MAX + 2 bytes); a path whose last segment is empty, ".",
 * ".." or parameters only ends with '/' (RFC 3986 5.2.4: "/a/." and
 * "/a/b/.." are "/a/"): routes match what the backend will see,
 * however the client spells it, and a route's prefix must be its own
 * normal form. HTTP_PATH_INVALID for a bad escape, a NUL, a backslash, an
 * encoded '/' (which backends read differently), or a "." or ".." segment
 * with parameters ("..;x": ".." to Tomcat or Jetty, a name to others, so no
 * one reading of it is safe), or an escape that decodes to another one
 * ("%2570": /pay to a backend that decodes twice); HTTP_PATH_TOO_LONG for a path over
 * HTTP_REQ_PATH_MAX bytes. The four letters whose case mappings are ASCII
 * (U+017F long s, U+0131 dotless i, U+0130 I with dot, U+212A Kelvin sign)
 * come out as that ASCII letter: a backend that compares without case by
 * Unicode's mappings (.NET's OrdinalIgnoreCase, Java's equalsIgnoreCase)
 * reads "/ſsn" as "/ssn", and so must the routes, which compare ASCII
 * without case. */
enum http_path_result http_path_normalize(const char *p, size_t n, char *out, size_t size);

/* Fills *rc with a route's defaults: any method, prefix "/", content type
 * application/json, no rules. */
void http_route_conf_defaults(struct http_route_conf *rc);

/* Checks one proxy's settings that span keys: stream endpoints, a keyset
 * for each route with rules; inbound: a backend, no upstreams; outbound: no
 * backend, egress_allow, an upstream and no encrypt rules on each route.
 * Returns 0, or -1 with *f naming the key. */
int http_proxy_conf_check(const struct http_proxy_conf *pc, struct conf_fault *f);

/* Checks one route: its paths (field_path_check()), a content type when it
 * has rules (default application/json is set by the caller). Returns 0 or
 * -1 with *f. */
int http_route_conf_check(const struct http_route_conf *rc, struct conf_fault *f);

/* Parses an outbound route's destination, "https://HOST[:PORT]" (port 443
 * by default; an IPv6 address in brackets) or "HOST:PORT", into *ep (tcp).
 * Returns 0, or -1 with *why (static) saying what was expected. */
int http_upstream_parse(const char *s, struct endpoint *ep, const char **why);

/* Writes up's authority, "HOST:PORT" (an IPv6 address in brackets), into
 * buf (len bytes); without ":PORT" when it is 443 and !port_always. */
void http_upstream_authority(const struct endpoint *up, bool port_always, char *buf, size_t len);

/* Whether an outbound proxy reaches its upstreams through an egress relay. */
bool http_proxy_has_via(const struct http_proxy_conf *pc);

/* Whether a and b are the same settings (a reload keeps such a proxy):
 * field by field, strings by their text, routes by content. */
bool http_proxy_conf_equal(const struct http_proxy_conf *a, const struct http_proxy_conf *b);

/* Frees what pc owns (its routes); safe twice. */
void http_proxy_conf_free(struct http_proxy_conf *pc);

/* The keyset file route i of pc uses (its own, else the proxy's), NULL
 * when it needs no keys (no rules, no decrypt). */
const char *http_route_keyset(const struct http_proxy_conf *pc, size_t i);

#endif
