/* conf.c - a relay's settings: defaults and the rules that span keys; see
 * conf.h. Pure: the config file and the command line both end here. */
#include "relay/conf.h"

#include <string.h>

#define EXPECT_DATAGRAM "expected an integer from 1 to 65507 (the largest UDP payload)"
#define EXPECT_MAX_FLOWS "expected an integer from 1 to 65536"
#define EXPECT_MAXCONN "expected an integer from 0 to 10000000 (0: no limit)"
#define EXPECT_MAX_FDS                                                                             \
    "expected an integer from 2 to 1048576, or 0 (an eighth of the open files limit, at most "     \
    "4096)"
#define EXPECT_ABOVE_0 "expected a duration above 0 (250ms, 5s, 2m, 1h)"
#define MSG_UDP_PROXY "PROXY headers apply to stream relays, not to udp ones"

void
relay_conf_defaults(struct relay_conf *rc)
{
    memset(rc, 0, sizeof(*rc));
    rc->max_connections = 0;
    rc->max_unproven_per_client = UNPROVEN_PER_CLIENT_AUTO;
    rc->connect_timeout_ms = 5 * 1000;
    rc->idle_timeout_ms = 60 * 60 * 1000;
    rc->preamble_timeout_ms = 10 * 1000;
    rc->keepalive = true;
    rc->splice = true;
    rc->send_proxy = PROXY_NONE;
    rc->accept_proxy = PROXY_NONE;
    rc->max_datagram = 4096;
    rc->flow_idle_timeout_ms = 60 * 1000;
    rc->max_flows = CONF_MAX_FLOWS_DEFAULT;
    rc->balance = BALANCE_FIRST;
    rc->health.interval_ms = HEALTH_INTERVAL_DEFAULT;
    rc->health.timeout_ms = HEALTH_TIMEOUT_DEFAULT;
    rc->health.fall = HEALTH_FALL_DEFAULT;
    rc->health.rise = HEALTH_RISE_DEFAULT;
    rc->router.peek_timeout_ms = ROUTER_PEEK_TIMEOUT_DEFAULT;
    rc->router.max_hello = TLS_HELLO_DEFAULT;
    rc->tls.validity_ms = TLS_VALIDITY_DEFAULT * 1000;
    rc->tls.fresh_rate = TLS_FRESH_RATE_DEFAULT;
    rc->tls.handshake_timeout_ms = TLS_HANDSHAKE_TIMEOUT_DEFAULT;
    rc->verify.fresh = true;
    rc->verify.handshake_timeout_ms = TLS_HANDSHAKE_TIMEOUT_DEFAULT;
}

bool
relay_conf_is_dgram(const struct relay_conf *rc)
{
    return rc->listen.kind == EP_UDP || rc->target.kind == EP_UDP;
}

bool
relay_conf_has_unproven(const struct relay_conf *rc)
{
    return !relay_conf_is_dgram(rc) &&
           (rc->router.enabled || rc->tls.enabled || rc->egress || rc->accept_proxy != PROXY_NONE ||
            rc->listen.kind == EP_HVSOCK);
}

unsigned
relay_conf_per_client(const struct relay_conf *rc)
{
    if (!relay_conf_has_unproven(rc))
        return 0;
    if (rc->max_unproven_per_client != UNPROVEN_PER_CLIENT_AUTO)
        return rc->max_unproven_per_client;
    return unproven_per_client_default(rc->max_connections, rc->listen.kind,
                                       rc->accept_proxy != PROXY_NONE);
}

/* The compares below go field by field, strings by their text: a memcmp
 * of the whole would see the padding and whatever follows a string's NUL
 * (a config parsed into reused memory differs there), and would compare
 * pointers. A field added to one of these structs must be compared there:
 * these sizes (LP64 ABIs) fail the build until it is, and are then updated. */
#if defined(__x86_64__) || defined(__aarch64__)
_Static_assert(sizeof(struct relay_conf) == 58648, "relay_conf_equal(): compare the new field");
_Static_assert(sizeof(struct health_conf) == 16, "relay_conf_equal(): compare the new field");
_Static_assert(sizeof(struct router_conf) == 912, "router_conf_equal(): compare the new field");
_Static_assert(sizeof(struct relay_tls_conf) == 4120, "tls_conf_equal(): compare the new field");
_Static_assert(sizeof(struct relay_verify_conf) == 6328, "verify_conf_equal(): compare it");
#endif

static bool
router_conf_equal(const struct router_conf *a, const struct router_conf *b)
{
    return a->enabled == b->enabled && a->peek_timeout_ms == b->peek_timeout_ms &&
           a->max_hello == b->max_hello && route_table_equal(&a->table, &b->table);
}

static bool
tls_conf_equal(const struct relay_tls_conf *a, const struct relay_tls_conf *b)
{
    return a->enabled == b->enabled &&
           strncmp(a->provider, b->provider, sizeof(a->provider)) == 0 &&
           strncmp(a->sim_root, b->sim_root, sizeof(a->sim_root)) == 0 &&
           a->validity_ms == b->validity_ms && a->fresh_rate == b->fresh_rate &&
           a->handshake_timeout_ms == b->handshake_timeout_ms;
}

static bool
verify_conf_equal(const struct relay_verify_conf *a, const struct relay_verify_conf *b)
{
    return a->enabled == b->enabled &&
           strncmp(a->server_name, b->server_name, sizeof(a->server_name)) == 0 &&
           a->fresh == b->fresh && a->handshake_timeout_ms == b->handshake_timeout_ms &&
           attest_policy_conf_equal(&a->policy, &b->policy);
}

bool
relay_conf_equal(const struct relay_conf *a, const struct relay_conf *b)
{
    if (strncmp(a->name, b->name, sizeof(a->name)) != 0 ||
        !endpoint_conf_equal(&a->listen, &b->listen) ||
        !endpoint_conf_equal(&a->target, &b->target) || a->n_targets != b->n_targets ||
        a->balance != b->balance || a->health.interval_ms != b->health.interval_ms ||
        a->health.timeout_ms != b->health.timeout_ms || a->health.fall != b->health.fall ||
        a->health.rise != b->health.rise || a->n_allow != b->n_allow ||
        a->max_connections != b->max_connections ||
        a->max_unproven_per_client != b->max_unproven_per_client ||
        a->connect_timeout_ms != b->connect_timeout_ms ||
        a->idle_timeout_ms != b->idle_timeout_ms ||
        a->preamble_timeout_ms != b->preamble_timeout_ms || a->keepalive != b->keepalive ||
        a->splice != b->splice || a->send_proxy != b->send_proxy ||
        a->accept_proxy != b->accept_proxy || a->n_proxy_from != b->n_proxy_from ||
        a->original_dst != b->original_dst || a->egress != b->egress ||
        a->n_egress_allow != b->n_egress_allow || a->max_datagram != b->max_datagram ||
        a->flow_idle_timeout_ms != b->flow_idle_timeout_ms || a->max_flows != b->max_flows ||
        a->max_fds != b->max_fds || a->n_dns_allow != b->n_dns_allow ||
        !router_conf_equal(&a->router, &b->router) || !tls_conf_equal(&a->tls, &b->tls) ||
        !verify_conf_equal(&a->verify, &b->verify))
        return false;
    /* the counts are bounded by the parser; the bounds here keep a
     * hand-made struct from reading past the arrays */
    for (size_t i = 0; i < a->n_targets && i < CONF_TARGETS_MAX; i++)
        if (!endpoint_conf_equal(&a->targets[i], &b->targets[i]))
            return false;
    if (!allow_rules_equal(a->allow, b->allow, a->n_allow) ||
        !allow_rules_equal(a->proxy_from, b->proxy_from, a->n_proxy_from))
        return false;
    for (size_t i = 0; i < a->n_egress_allow && i < CONF_EGRESS_MAX; i++)
        if (!egress_rule_equal(&a->egress_allow[i], &b->egress_allow[i]))
            return false;
    for (size_t i = 0; i < a->n_dns_allow && i < CONF_DNS_ALLOW_MAX; i++)
        if (strncmp(a->dns_allow[i], b->dns_allow[i], DNS_PATTERN_MAX) != 0)
            return false;
    return true;
}

const char *
relay_conf_dgram_only(const struct relay_conf *rc)
{
    return relay_conf_is_dgram(rc) ? NULL
                                   : "applies to datagram relays (a udp listen or target) only";
}

/* the flows of the udp side are memory only: its table is bounded apart */
const char *
relay_conf_stream_side_only(const struct relay_conf *rc)
{
    if (rc->target.kind == EP_UDP && rc->listen.kind != EP_UDP)
        return NULL;
    return "applies to stream -> udp relays only (the host side, which opens a socket per flow)";
}

const char *
relay_conf_unproven_only(const struct relay_conf *rc)
{
    return relay_conf_has_unproven(rc)
               ? NULL
               : "expected only where connections are unproven for a while: routers, tls: "
                 "listeners, relays with accept_proxy, an hvsock listener or target: egress";
}

const char *
relay_conf_targets_only(const struct relay_conf *rc)
{
    return rc->n_targets > 0 ? NULL : "applies to relays with targets: (several endpoints) only";
}

/* Whether target: was given: egress, or an endpoint (a zeroed one, tcp
 * without a host, is none that endpoint_parse() makes). */
static bool
relay_conf_has_target(const struct relay_conf *rc)
{
    return rc->egress || rc->target.kind != EP_TCP || rc->target.host[0] != '\0';
}

/* target: or targets: (not both), each of targets: once. Routers have
 * neither: they route. */
static int
relay_targets_check(const struct relay_conf *rc, struct conf_fault *f)
{
    bool has_target = relay_conf_has_target(rc);

    if (rc->router.enabled)
        return 0;
    if (has_target && rc->n_targets > 0)
        return conf_fault(f, "targets",
                          "expected target: or targets:, not both (target: is the form for one)");
    if (rc->n_targets > CONF_TARGETS_MAX)
        return conf_fault(f, "targets", "expected 1-%d endpoints", CONF_TARGETS_MAX);
    for (size_t i = 1; i < rc->n_targets; i++)
        for (size_t j = 0; j < i; j++)
            if (endpoint_equal(&rc->targets[i], &rc->targets[j])) {
                conf_fault(f, "targets",
                           "expected each endpoint once, not a duplicate of targets[%zu]", j);
                f->item = i;
                return -1;
            }
    if (rc->n_targets > 0 && rc->listen.kind == EP_UDP)
        return conf_fault(f, "targets", "applies to stream relays, not to a udp listener");
    if (rc->health.timeout_ms == 0 || rc->health.interval_ms == 0)
        return conf_fault(f, "health", "expected an interval and a timeout above 0");
    if (rc->health.fall < 1 || rc->health.fall > HEALTH_COUNT_MAX || rc->health.rise < 1 ||
        rc->health.rise > HEALTH_COUNT_MAX)
        return conf_fault(f, "health", "expected fall and rise from 1 to %d", HEALTH_COUNT_MAX);
    return 0;
}

int
relay_tls_conf_check(const struct relay_tls_conf *t, struct conf_fault *f)
{
    if (strcmp(t->provider, "sim") != 0 && strcmp(t->provider, "nitro") != 0 &&
        strcmp(t->provider, "tsm") != 0)
        return conf_fault(f, "provider", "expected nitro, tsm or sim (the evidence source)");
    if ((strcmp(t->provider, "sim") == 0) != (t->sim_root[0] != '\0'))
        return conf_fault(f, "sim_root",
                          "expected the sim root's file with provider: sim (and only with it)");
    if (t->validity_ms < TLS_VALIDITY_MIN * 1000 || t->validity_ms > TLS_VALIDITY_MAX * 1000u)
        return conf_fault(f, "validity", "expected a duration from 3s to 168h");
    if (t->handshake_timeout_ms == 0)
        return conf_fault(f, "handshake_timeout", EXPECT_ABOVE_0);
    return 0;
}

/* The rules between tls:, verify: and the relay's other keys. */
static int
relay_tls_fits(const struct relay_conf *rc, struct conf_fault *f)
{
    if (rc->tls.enabled && rc->verify.enabled)
        return conf_fault(f, "verify",
                          "expected tls: or verify:, not both (chain two relays to terminate "
                          "and re-originate attested TLS)");
    if (!rc->tls.enabled && !rc->verify.enabled)
        return 0;
    const char *key = rc->tls.enabled ? "tls" : "verify";
    if (relay_conf_is_dgram(rc) || rc->egress)
        return conf_fault(f, key, "applies to stream relays with an endpoint target");
    /* RA-TLS evidence carries no VCEK: an SNP policy would refuse every
     * connection, so it is refused here, where a person reads why */
    if (rc->verify.enabled && rc->verify.policy.type == ATTEST_KIND_SNP)
        return conf_fault(f, "verify",
                          "expected policy type nitro or tdx: SEV-SNP evidence needs its VCEK, "
                          "which RA-TLS evidence does not carry");
    if (rc->verify.enabled && rc->send_proxy != PROXY_NONE)
        return conf_fault(f, "send_proxy",
                          "expected none with verify: a PROXY header would go into the TLS "
                          "stream's plaintext, which the other end does not expect");
    return 0;
}

int
relay_conf_check(const struct relay_conf *rc, struct conf_fault *f)
{
    bool dgram = relay_conf_is_dgram(rc);

    if (relay_targets_check(rc, f) != 0)
        return -1;
    if (rc->listen.kind == EP_UDP && rc->target.kind == EP_UDP)
        return conf_fault(f, "target",
                          "expected a stream endpoint (tcp, unix, vsock, hvsock): a datagram "
                          "relay carries udp over a stream, udp to udp is not supported");
    if (dgram && rc->send_proxy != PROXY_NONE)
        return conf_fault(f, "send_proxy", MSG_UDP_PROXY);
    if (dgram && rc->accept_proxy != PROXY_NONE)
        return conf_fault(f, "accept_proxy", MSG_UDP_PROXY);
    if (rc->n_dns_allow > CONF_DNS_ALLOW_MAX)
        return conf_fault(f, "dns_allow", "expected at most %d names", CONF_DNS_ALLOW_MAX);
    if (rc->n_dns_allow > 0 && (rc->target.kind != EP_UDP || rc->listen.kind == EP_UDP))
        return conf_fault(f, "dns_allow",
                          "dns_allow applies to stream -> udp relays (the host side, in front "
                          "of the resolver)");
    if (rc->max_datagram < 1 || rc->max_datagram > CONF_DATAGRAM_MAX)
        return conf_fault(f, "max_datagram", EXPECT_DATAGRAM);
    if (rc->flow_idle_timeout_ms == 0)
        return conf_fault(f, "flow_idle_timeout", EXPECT_ABOVE_0);
    if (rc->max_flows < 1 || rc->max_flows > CONF_MAX_FLOWS_MAX)
        return conf_fault(f, "max_flows", EXPECT_MAX_FLOWS);
    if (rc->max_fds == 1 || rc->max_fds > CONF_MAX_FDS_MAX)
        return conf_fault(f, "max_fds", EXPECT_MAX_FDS);
    if (rc->target.kind == EP_VSOCK && rc->target.cid == EP_CID_ANY)
        return conf_fault(f, "target",
                          "expected the CID to connect to; vsock:any is for listeners");
    if (allow_check(rc->listen.kind, rc->allow, rc->n_allow, "allow", f) != 0 ||
        allow_proxy_from_check(rc->listen.kind, rc->accept_proxy != PROXY_NONE, rc->proxy_from,
                               rc->n_proxy_from, f) != 0)
        return -1;
    if (rc->n_egress_allow > 0 && !rc->egress)
        return conf_fault(f, "egress_allow", "egress_allow applies to relays with target: egress");
    if (rc->egress && (rc->n_egress_allow == 0 || rc->n_egress_allow > CONF_EGRESS_MAX))
        return conf_fault(f, "egress_allow",
                          "expected 1-%d rules for target: egress (an egress relay without "
                          "rules would refuse every destination)",
                          CONF_EGRESS_MAX);
    if (rc->egress && rc->send_proxy != PROXY_NONE)
        return conf_fault(f, "send_proxy",
                          "expected none for target: egress: its destinations are servers "
                          "outside, not airlock");
    if (rc->egress && rc->accept_proxy != PROXY_NONE)
        return conf_fault(f, "accept_proxy",
                          "expected none for target: egress: an egress relay recognises a "
                          "PROXY v2 header (or an HTTP CONNECT request) by itself");
    if (rc->original_dst && (rc->listen.kind != EP_TCP || rc->send_proxy != PROXY_V2 || rc->egress))
        return conf_fault(f, "original_dst",
                          "expected a tcp listener with send_proxy: v2 and an endpoint target: "
                          "the original destination of a redirected connection travels in the "
                          "PROXY header");
    if (rc->max_connections > CONF_MAXCONN_MAX)
        return conf_fault(f, "max_connections", EXPECT_MAXCONN);
    if (rc->max_unproven_per_client != UNPROVEN_PER_CLIENT_AUTO) {
        const char *why = relay_conf_unproven_only(rc);
        if (why != NULL)
            return conf_fault(f, "max_unproven_per_client", "%s", why);
        if (rc->max_connections > 0 && rc->max_unproven_per_client > rc->max_connections)
            return conf_fault(f, "max_unproven_per_client", "expected at most max_connections (%u)",
                              rc->max_connections);
    }
    if (rc->connect_timeout_ms == 0)
        return conf_fault(f, "connect_timeout", EXPECT_ABOVE_0);
    return relay_tls_fits(rc, f);
}

int
router_conf_check(const struct relay_conf *rc, struct conf_fault *f)
{
    const struct route_table *t = &rc->router.table;

    if (rc->listen.kind == EP_UDP)
        return conf_fault(f, "listen", EP_EXPECT_STREAM);
    if (t->n == 0 && !t->has_default && t->directory[0] == '\0')
        return conf_fault(f, NULL,
                          "expected at least one of routes:, directory:, default: in router '%s'",
                          rc->name);
    if (t->domain[0] != '\0' && t->directory[0] == '\0') {
        conf_fault(f, "domain", "applies to routers with a directory: pool only");
        f->at_block = true;
        return -1;
    }
    return relay_conf_check(rc, f);
}
