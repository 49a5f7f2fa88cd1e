/* conf.h - the settings of one relay or router (an entry of relays: or
 * routers:, or the command line of airlock relay / router), their defaults,
 * bounds and the rules that span several of them. The keys and their forms
 * are described in cli/config.h. */
#ifndef AIRLOCK_RELAY_CONF_H
#define AIRLOCK_RELAY_CONF_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "attest/policy.h"
#include "core/units.h"
#include "net/allow.h"
#include "net/egress.h"
#include "net/endpoint.h"
#include "net/unproven.h"
#include "proto/dns.h"
#include "proto/proxy_v2.h"
#include "router/route.h"

#define CONF_EGRESS_MAX 64
#define CONF_DNS_ALLOW_MAX 64
#define CONF_MAXCONN_MAX 10000000u
#define CONF_DATAGRAM_MAX 65507    /* the largest UDP payload */
#define CONF_MAX_FLOWS_DEFAULT 256 /* flows per stream of a stream -> udp relay */
#define CONF_MAX_FLOWS_MAX 65536
#define CONF_MAX_FDS_MAX 1048576
#define CONF_TARGETS_MAX 16 /* targets: of one relay */

/* Defaults and bounds of a relay's health checks (health:, targets: only). */
#define HEALTH_INTERVAL_DEFAULT 2000 /* ms between two checks of a target */
#define HEALTH_TIMEOUT_DEFAULT 1000  /* ms for one check's connect (and hvsock OK) */
#define HEALTH_FALL_DEFAULT 3        /* failed checks in a row that mark a target down */
#define HEALTH_RISE_DEFAULT 2        /* good checks in a row that mark it up again */
#define HEALTH_COUNT_MAX 100

/* How a relay with targets: picks one per connection, among the healthy. */
enum balance {
    BALANCE_FIRST,      /* the first in order: blue/green */
    BALANCE_LEAST_CONN, /* the fewest open connections; ties by order */
};

/* health: the active checks of a relay's targets: a connect (and, to an
 * hvsock target, the CONNECT/OK exchange) every interval. */
struct health_conf {
    unsigned interval_ms;
    unsigned timeout_ms;
    unsigned fall, rise;
};

/* Defaults and bounds of a router's settings. */
#define ROUTER_PEEK_TIMEOUT_DEFAULT 5000 /* ms */
/* a router's tcp listener accepts a silent client after this long
 * (TCP_DEFER_ACCEPT, relay.c); one that sends its hello is accepted then */
#define ROUTER_DEFER_ACCEPT_S 1
#define ROUTER_HELLO_MIN 512 /* bytes */
#define ROUTER_HELLO_MAX (32 * 1024)

/* What makes a relay a router (an entry of routers:): the upstream is
 * chosen per connection from the ClientHello's server name. */
struct router_conf {
    bool enabled;
    struct route_table table;
    unsigned peek_timeout_ms; /* the whole ClientHello must come within this */
    size_t max_hello;         /* bytes, ROUTER_HELLO_MIN..ROUTER_HELLO_MAX */
};

/* Defaults and bounds of an attested TLS listener (tls:, docs/attestation.md). */
#define TLS_VALIDITY_DEFAULT 3600        /* s: the certificate's lifetime */
#define TLS_VALIDITY_MIN 3               /* s: renewal at 2/3 needs a few seconds */
#define TLS_VALIDITY_MAX (7 * 24 * 3600) /* s */
#define TLS_FRESH_RATE_DEFAULT 20        /* fresh evidence per second and relay */
#define TLS_FRESH_RATE_MAX 100000
#define TLS_HANDSHAKE_TIMEOUT_DEFAULT 10000 /* ms */
#define TLS_PROVIDER_MAX 8                  /* "nitro", "tsm", "sim", incl. NUL */

/* tls: on a relay: airlock terminates TLS on the client side with a key
 * made in memory and a certificate carrying evidence of provider (RA-TLS),
 * and relays plaintext to the target. */
struct relay_tls_conf {
    bool enabled;
    char provider[TLS_PROVIDER_MAX];   /* attest/provider.h: nitro, tsm, sim */
    char sim_root[CONF_FILE_PATH_MAX]; /* sim: the root's key and certificate (PEM) */
    unsigned validity_ms;              /* the certificate's lifetime; renewed at 2/3 */
    unsigned fresh_rate;               /* fresh evidence (client nonces) per second; 0: none */
    unsigned handshake_timeout_ms;     /* the whole handshake must come within this */
};

/* verify: on a relay: airlock speaks TLS to the target, asks for fresh
 * evidence, and relays the plaintext client only once the server's
 * evidence is bound to its TLS key and meets policy. */
struct relay_verify_conf {
    bool enabled;
    char server_name[TLS_HOST_MAX + 1]; /* SNI; "": none */
    bool fresh;                         /* ask for evidence made for this connection */
    unsigned handshake_timeout_ms;      /* handshake and verification */
    struct attest_policy_conf policy;   /* settings only here; loaded by relay/tls.c */
};

struct relay_conf {
    char name[CONF_NAME_MAX];
    struct endpoint listen;
    struct endpoint target;
    /* targets: several endpoints, each checked (health), one picked per
     * connection (balance); target is unused then */
    struct endpoint targets[CONF_TARGETS_MAX];
    size_t n_targets;
    enum balance balance;
    struct health_conf health;
    struct allow_rule allow[CONF_ALLOW_MAX];
    size_t n_allow;
    unsigned max_connections;
    unsigned max_unproven_per_client; /* UNPROVEN_PER_CLIENT_AUTO: see relay_conf_per_client() */
    unsigned connect_timeout_ms;
    unsigned idle_timeout_ms;
    unsigned preamble_timeout_ms; /* the hvsock line, PROXY header or CONNECT request */
    bool keepalive;
    bool splice;
    enum proxy_mode send_proxy;
    enum proxy_mode accept_proxy;
    /* with accept_proxy: the peers whose headers are believed (the fronts);
     * another is refused at accept. None: any peer */
    struct allow_rule proxy_from[CONF_ALLOW_MAX];
    size_t n_proxy_from;
    bool original_dst; /* send SO_ORIGINAL_DST as the PROXY destination */
    bool egress;       /* target: egress; target is unused */
    struct egress_rule egress_allow[CONF_EGRESS_MAX];
    size_t n_egress_allow;
    /* datagram relays (udp on one side) */
    unsigned max_datagram;
    unsigned flow_idle_timeout_ms;
    unsigned max_flows; /* stream -> udp: flows (sockets) per stream */
    unsigned max_fds;   /* stream -> udp: streams + flow sockets in all; 0: dgram_fd_budget() */
    char dns_allow[CONF_DNS_ALLOW_MAX][DNS_PATTERN_MAX]; /* canonical, see dns_pattern_parse() */
    size_t n_dns_allow;
    struct router_conf router;       /* routers: entries only; target is unused */
    struct relay_tls_conf tls;       /* attested TLS listener (enclave side) */
    struct relay_verify_conf verify; /* attested TLS to the target (client side) */
};

/* Fills *rc with the defaults (connect_timeout 5s, idle_timeout 1h,
 * keepalive and splice on, no PROXY, no limit, empty allowlists,
 * max_datagram 4096, flow_idle_timeout 60s, max_flows 256, max_fds 0;
 * balance first, health every 2s, timeout 1s, fall 3, rise 2;
 * routers: peek_timeout 5s, max_hello 16KiB). */
void relay_conf_defaults(struct relay_conf *rc);

/* Returns true when rc relays datagrams (its listen or target is udp). */
bool relay_conf_is_dgram(const struct relay_conf *rc);

/* Returns true when rc's connections are unproven for a while after their
 * accept (net/unproven.h): a router's until its ClientHello, a tls:
 * listener's until its handshake, a PROXY, hvsock or egress relay's until
 * its preamble. A plain relay's is proven at its start. */
bool relay_conf_has_unproven(const struct relay_conf *rc);

/* How many unproven connections one client may hold at once (0: no
 * bound): max_unproven_per_client where rc has unproven connections (a
 * router, a tls: listener, accept_proxy, an hvsock listener, target:
 * egress); when it is not set, unproven_per_client_default(). With
 * accept_proxy a client is the source its PROXY header names, counted from
 * the header on. */
unsigned relay_conf_per_client(const struct relay_conf *rc);

/* Returns true when a and b are the same settings: a reload keeps such a
 * relay as it is. Field by field, strings by their text and routes by
 * content (not padding, bytes after a NUL, or the loaded certificates). */
bool relay_conf_equal(const struct relay_conf *a, const struct relay_conf *b);

/* Checks one relay's settings that depend on each other (allow on a unix
 * listener, allow rules of the wrong kind for the listener, vsock CID "any"
 * as a target, udp to udp, settings of datagram relays on others, limits,
 * egress and original_dst settings, target: or targets: and no target
 * twice). Returns 0, or -1 with *f naming the
 * key (and the allow rule) at fault and what was expected. */
int relay_conf_check(const struct relay_conf *rc, struct conf_fault *f);

/* Checks a tls: block's own keys (provider, sim_root, bounds). Returns 0,
 * or -1 with *f. How it fits the relay's other keys (a stream relay to an
 * endpoint, no PROXY header into the plaintext) is relay_conf_check()'s. */
int relay_tls_conf_check(const struct relay_tls_conf *t, struct conf_fault *f);

/* Checks what a router (rc->router.enabled) needs beyond relay_conf_check():
 * a stream listener, something to route to, domain only with directory. */
int router_conf_check(const struct relay_conf *rc, struct conf_fault *f);

/* For the keys that apply to some relays only: NULL when they apply to rc,
 * else why not. _dgram: max_datagram, flow_idle_timeout; _stream_side:
 * max_flows, max_fds (stream -> udp relays). */
const char *relay_conf_dgram_only(const struct relay_conf *rc);
const char *relay_conf_stream_side_only(const struct relay_conf *rc);
/* max_unproven_per_client: relays whose connections are unproven for a
 * while only (relay_conf_has_unproven()). */
const char *relay_conf_unproven_only(const struct relay_conf *rc);
/* balance, health: relays with targets: only. */
const char *relay_conf_targets_only(const struct relay_conf *rc);

#endif
