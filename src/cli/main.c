/* main.c - the airlock command line: relay, run, check, version. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/attest.h"
#include "cli/config.h"
#include "cli/control.h"
#include "cli/runtime.h"
#include "core/log.h"
#include "net/transport.h"
#include "pool/pool.h"
#include "proto/ctl.h"

#define AIRLOCK_VERSION "0.1.0"

#ifdef AIRLOCK_WITH_ATTEST
#define USAGE_ATTEST                                                                               \
    "       airlock attest verify|get ...           check attestation evidence, or make\n"         \
    "                                               sim evidence (airlock attest --help)\n"
#else /* the static build: no libcbor.a in Debian */
#define USAGE_ATTEST ""
#endif

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: airlock relay LISTEN TARGET [options]   relay one endpoint to another\n"
            "       airlock router LISTEN --route NAME=TARGET ... [options]\n"
            "                                               route TLS by server name (SNI)\n"
            "       airlock run -c FILE                     run every relay of a config file\n"
            "       airlock check -c FILE                   validate a config file and exit\n"
            "       airlock ctl [-s ENDPOINT] sessions|instances|drain [POOL/]NAME\n"
            "       airlock ctl [-s ENDPOINT] assign POOL KEY\n"
            "                                               ask a running airlock (its control:\n"
            "                                               socket, default " CONTROL_DEFAULT ");\n"
            "                                               assign reserves an instance for KEY\n"
            "                                               as a router does\n" USAGE_ATTEST
            "       airlock version\n"
            "\n"
            "endpoints: tcp:HOST:PORT  udp:HOST:PORT  unix:/path  vsock:CID:PORT  "
            "hvsock:/path:PORT\n"
            "  (udp on one side and a stream on the other: a datagram relay)\n"
            "TARGET egress: the destination is chosen per connection (PROXY v2 header or\n"
            "HTTP CONNECT) and checked against --egress-allow rules\n"
            "\n"
            "relay options:\n"
            "  --name NAME              relay name in logs and metrics (default relay1)\n"
            "  --allow RULE             allow a client CIDR (tcp) or cid:N (vsock); repeatable\n"
            "  --max-connections N      refuse connections above N (default: no limit)\n"
            "  --connect-timeout DUR    default 5s\n"
            "  --idle-timeout DUR       default 1h; 0 disables\n"
            "  --no-keepalive           no TCP keepalive towards peers\n"
            "  --no-splice              copy through buffers instead of splice()\n"
            "  --send-proxy v2          send a PROXY v2 header to the target\n"
            "  --accept-proxy v2        require a PROXY v2 header from clients\n"
            "  --original-dst           with --send-proxy v2: send the destination a client\n"
            "                           had before iptables REDIRECT\n"
            "  --egress-allow RULE      TARGET egress: allow DEST:PORTS (api.example.com:443,\n"
            "                           *.example.com:443, 198.51.100.0/24:80-90); repeatable\n"
            "  --threads N              event loops (default: one per core)\n"
            "  --metrics ENDPOINT       serve Prometheus metrics on ENDPOINT\n"
            "  --log-level LEVEL        error, warn, info (default) or debug\n"
            "  --drain-timeout DUR      how long SIGTERM waits for connections (default 30s)\n"
            "  --max-datagram N         datagram relays: drop larger datagrams (default 4096)\n"
            "  --flow-idle-timeout DUR  datagram relays: forget idle flows (default 60s)\n"
            "  --max-flows N            stream -> udp relays: flows (sockets) per stream\n"
            "                           (default 256)\n"
            "  --max-fds N              stream -> udp relays: fds of all streams and flows\n"
            "                           (default 0: an eighth of the open files limit)\n"
            "  --dns-allow NAME         stream -> udp relays: answer REFUSED to DNS queries\n"
            "                           for other names (example.com, *.example.org); repeatable\n"
            "  --socket-mode MODE       the socket files of unix and hvsock listeners (LISTEN,\n"
            "                           --metrics): octal mode (default 0660), whatever the umask\n"
            "  --socket-owner USER      ... their owner (default: airlock's user)\n"
            "  --socket-group GROUP     ... their group (default: airlock's group)\n"
            "\n"
            "router options (and the relay options above that are not for egress or udp):\n"
            "  --route NAME=TARGET      send server name NAME (www.example.com, or *.example.com\n"
            "                           for any name below it) to TARGET; repeatable\n"
            "  --default TARGET         for other names and ClientHellos without one (else:\n"
            "                           an unrecognized_name alert and close)\n"
            "  --peek-timeout DUR       the ClientHello must come within DUR (default 5s)\n"
            "  --max-hello SIZE         largest ClientHello accepted (default 16KiB, max 32KiB)\n"
            "  --directory POOL         route <key>.<domain> to key's instance of POOL, as the\n"
            "                           session directory assigns it (sticky per key)\n"
            "  --domain NAME            with --directory: the names it takes (grid.example)\n"
            "  --redis ENDPOINT         with --directory: the redis directory other routers and\n"
            "                           pools share (default: this process only)\n");
}

/* "relay" or "router": the command, in messages */
static const char *cmd_name = "relay";

static int
bad_option(const char *opt, const char *value, const char *expected)
{
    fprintf(stderr, "airlock %s: %s '%s': expected %s\n", cmd_name, opt, value, expected);
    return 2;
}

/* For a parser's own message, which says what was expected or wrong. */
static int
bad_value(const char *opt, const char *value, const char *why)
{
    fprintf(stderr, "airlock %s: %s '%s': %s\n", cmd_name, opt, value, why);
    return 2;
}

/* --route NAME=TARGET */
static int
add_route(struct route_table *t, const char *arg)
{
    const char *eq = strchr(arg, '='), *why;
    char name[TLS_HOST_MAX + 1];
    struct route rt, *r = &rt;

    if (eq == NULL || (size_t)(eq - arg) >= sizeof(name))
        return bad_option("--route", arg, "NAME=TARGET");
    memcpy(name, arg, (size_t)(eq - arg));
    name[eq - arg] = '\0';
    if (route_name_parse(name, r->name, &why) != PARSE_OK)
        return bad_value("--route", arg, why);
    if (endpoint_parse(eq + 1, &r->target, &why) != PARSE_OK)
        return bad_value("--route", arg, why);
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->routes[i].name, r->name) == 0)
            return bad_option("--route", arg, "one route per name");
    if (route_table_add(t, r) != 0)
        return bad_option("--route", arg, "memory for one more route");
    return 0;
}

static int
parse_proxy_mode(const char *s, enum proxy_mode *mode)
{
    if (strcmp(s, "v2") == 0)
        *mode = PROXY_V2;
    else if (strcmp(s, "none") == 0)
        *mode = PROXY_NONE;
    else
        return -EINVAL;
    return 0;
}

static int
parse_uint(const char *s, unsigned max, unsigned *out)
{
    char *end;

    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max)
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

/* Fills *cfg and *rc (its one relay or router) from the command line.
 * Returns -1 to go on, or the exit status (a message was printed). *rc's
 * routes are the caller's to free either way. */
static int
relay_args(int argc, char **argv, bool router, struct config *cfg, struct relay_conf *rc)
{
    enum {
        OPT_NAME = 256,
        OPT_ALLOW,
        OPT_MAXCONN,
        OPT_CTIMEOUT,
        OPT_ITIMEOUT,
        OPT_NOKA,
        OPT_NOSPLICE,
        OPT_SENDPROXY,
        OPT_ACCEPTPROXY,
        OPT_THREADS,
        OPT_METRICS,
        OPT_LOGLEVEL,
        OPT_DRAIN,
        OPT_ORIGDST,
        OPT_EGRESS,
        OPT_MAXDGRAM,
        OPT_FLOWIDLE,
        OPT_DNSALLOW,
        OPT_ROUTE,
        OPT_DEFAULT,
        OPT_PEEKTIMEOUT,
        OPT_MAXHELLO,
        OPT_DIRECTORY,
        OPT_DOMAIN,
        OPT_REDIS,
        OPT_MAXFLOWS,
        OPT_MAXFDS,
        OPT_SOCKMODE,
        OPT_SOCKOWNER,
        OPT_SOCKGROUP,
    };
    static const struct option opts[] = {
        {"name", required_argument, NULL, OPT_NAME},
        {"allow", required_argument, NULL, OPT_ALLOW},
        {"max-connections", required_argument, NULL, OPT_MAXCONN},
        {"connect-timeout", required_argument, NULL, OPT_CTIMEOUT},
        {"idle-timeout", required_argument, NULL, OPT_ITIMEOUT},
        {"no-keepalive", no_argument, NULL, OPT_NOKA},
        {"no-splice", no_argument, NULL, OPT_NOSPLICE},
        {"send-proxy", required_argument, NULL, OPT_SENDPROXY},
        {"accept-proxy", required_argument, NULL, OPT_ACCEPTPROXY},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"metrics", required_argument, NULL, OPT_METRICS},
        {"log-level", required_argument, NULL, OPT_LOGLEVEL},
        {"drain-timeout", required_argument, NULL, OPT_DRAIN},
        {"original-dst", no_argument, NULL, OPT_ORIGDST},
        {"egress-allow", required_argument, NULL, OPT_EGRESS},
        {"max-datagram", required_argument, NULL, OPT_MAXDGRAM},
        {"flow-idle-timeout", required_argument, NULL, OPT_FLOWIDLE},
        {"dns-allow", required_argument, NULL, OPT_DNSALLOW},
        {"route", required_argument, NULL, OPT_ROUTE},
        {"default", required_argument, NULL, OPT_DEFAULT},
        {"peek-timeout", required_argument, NULL, OPT_PEEKTIMEOUT},
        {"max-hello", required_argument, NULL, OPT_MAXHELLO},
        {"directory", required_argument, NULL, OPT_DIRECTORY},
        {"domain", required_argument, NULL, OPT_DOMAIN},
        {"redis", required_argument, NULL, OPT_REDIS},
        {"max-flows", required_argument, NULL, OPT_MAXFLOWS},
        {"max-fds", required_argument, NULL, OPT_MAXFDS},
        {"socket-mode", required_argument, NULL, OPT_SOCKMODE},
        {"socket-owner", required_argument, NULL, OPT_SOCKOWNER},
        {"socket-group", required_argument, NULL, OPT_SOCKGROUP},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *err;
    char msg[512];
    struct ep_perm perm = {0};
    int opt;

    int dgram_opts = 0, router_opts = 0, stream_side_opts = 0;

    relay_conf_defaults(rc);
    dir_conf_defaults(&cfg->directory);
    cmd_name = router ? "router" : "relay";
    snprintf(rc->name, sizeof(rc->name), router ? "router1" : "relay1");
    rc->router.enabled = router;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case OPT_NAME:
            if (strlen(optarg) == 0 || strlen(optarg) >= sizeof(rc->name))
                return bad_option("--name", optarg, "1-63 characters");
            snprintf(rc->name, sizeof(rc->name), "%s", optarg);
            break;
        case OPT_ALLOW:
            if (rc->n_allow == CONF_ALLOW_MAX)
                return bad_option("--allow", optarg, "at most 64 rules");
            if (allow_parse(optarg, &rc->allow[rc->n_allow], &err) != PARSE_OK)
                return bad_value("--allow", optarg, err);
            rc->n_allow++;
            break;
        case OPT_MAXCONN:
            if (parse_uint(optarg, 10000000, &rc->max_connections) != 0)
                return bad_option("--max-connections", optarg, "a number up to 10000000");
            break;
        case OPT_CTIMEOUT:
            if (config_duration(optarg, &rc->connect_timeout_ms) != 0 ||
                rc->connect_timeout_ms == 0)
                return bad_option("--connect-timeout", optarg, "a duration like 5s or 500ms");
            break;
        case OPT_ITIMEOUT:
            if (config_duration(optarg, &rc->idle_timeout_ms) != 0)
                return bad_option("--idle-timeout", optarg, "a duration like 30s, 1h or 0");
            break;
        case OPT_NOKA:
            rc->keepalive = false;
            break;
        case OPT_NOSPLICE:
            rc->splice = false;
            break;
        case OPT_SENDPROXY:
            if (parse_proxy_mode(optarg, &rc->send_proxy) != 0)
                return bad_option("--send-proxy", optarg, "v2 or none");
            break;
        case OPT_ACCEPTPROXY:
            if (parse_proxy_mode(optarg, &rc->accept_proxy) != 0)
                return bad_option("--accept-proxy", optarg, "v2 or none");
            break;
        case OPT_THREADS:
            if (parse_uint(optarg, 256, &cfg->threads) != 0)
                return bad_option("--threads", optarg, "a number from 0 to 256");
            break;
        case OPT_METRICS:
            if (endpoint_parse(optarg, &cfg->metrics, &err) != PARSE_OK)
                return bad_value("--metrics", optarg, err);
            cfg->has_metrics = true;
            break;
        case OPT_LOGLEVEL:
            if (log_level_parse(optarg, &cfg->log_level) != 0)
                return bad_option("--log-level", optarg, "error, warn, info or debug");
            break;
        case OPT_DRAIN:
            if (config_duration(optarg, &cfg->drain_timeout_ms) != 0)
                return bad_option("--drain-timeout", optarg, "a duration like 30s");
            break;
        case OPT_ORIGDST:
            rc->original_dst = true;
            break;
        case OPT_EGRESS:
            if (rc->n_egress_allow == CONF_EGRESS_MAX)
                return bad_option("--egress-allow", optarg, "at most 64 rules");
            if (egress_rule_parse(optarg, &rc->egress_allow[rc->n_egress_allow], &err) != PARSE_OK)
                return bad_value("--egress-allow", optarg, err);
            rc->n_egress_allow++;
            break;
        case OPT_MAXDGRAM:
            if (parse_uint(optarg, CONF_DATAGRAM_MAX, &rc->max_datagram) != 0 ||
                rc->max_datagram == 0)
                return bad_option("--max-datagram", optarg, "a number from 1 to 65507");
            dgram_opts = 1;
            break;
        case OPT_FLOWIDLE:
            if (config_duration(optarg, &rc->flow_idle_timeout_ms) != 0 ||
                rc->flow_idle_timeout_ms == 0)
                return bad_option("--flow-idle-timeout", optarg, "a duration like 60s");
            dgram_opts = 1;
            break;
        case OPT_MAXFLOWS:
            if (parse_uint(optarg, CONF_MAX_FLOWS_MAX, &rc->max_flows) != 0 || rc->max_flows == 0)
                return bad_option("--max-flows", optarg, "a number from 1 to 65536");
            stream_side_opts = 1;
            break;
        case OPT_MAXFDS:
            if (parse_uint(optarg, CONF_MAX_FDS_MAX, &rc->max_fds) != 0 || rc->max_fds == 1)
                return bad_option("--max-fds", optarg, "0 or a number from 2 to 1048576");
            stream_side_opts = 1;
            break;
        case OPT_DNSALLOW:
            if (rc->n_dns_allow == CONF_DNS_ALLOW_MAX)
                return bad_option("--dns-allow", optarg, "at most 64 names");
            if (dns_pattern_parse(optarg, rc->dns_allow[rc->n_dns_allow], &err) != PARSE_OK)
                return bad_value("--dns-allow", optarg, err);
            rc->n_dns_allow++;
            break;
        case OPT_ROUTE:
            if (add_route(&rc->router.table, optarg) != 0)
                return 2;
            router_opts = 1;
            break;
        case OPT_DEFAULT:
            if (endpoint_parse(optarg, &rc->router.table.def, &err) != PARSE_OK)
                return bad_value("--default", optarg, err);
            rc->router.table.has_default = true;
            router_opts = 1;
            break;
        case OPT_PEEKTIMEOUT:
            if (config_duration(optarg, &rc->router.peek_timeout_ms) != 0 ||
                rc->router.peek_timeout_ms == 0)
                return bad_option("--peek-timeout", optarg, "a duration like 5s or 500ms");
            router_opts = 1;
            break;
        case OPT_MAXHELLO:
            if (config_size(optarg, &rc->router.max_hello) != 0 ||
                rc->router.max_hello < ROUTER_HELLO_MIN || rc->router.max_hello > ROUTER_HELLO_MAX)
                return bad_option("--max-hello", optarg, "a size from 512B to 32KiB");
            router_opts = 1;
            break;
        case OPT_DIRECTORY:
            if (strlen(optarg) == 0 || strlen(optarg) >= sizeof(rc->router.table.directory))
                return bad_option("--directory", optarg, "a pool name of 1-63 characters");
            snprintf(rc->router.table.directory, sizeof(rc->router.table.directory), "%s", optarg);
            cfg->has_directory = true;
            router_opts = 1;
            break;
        case OPT_DOMAIN:
            if (strncmp(optarg, "*.", 2) == 0 ||
                route_name_parse(optarg, rc->router.table.domain, &err) != PARSE_OK)
                return bad_option("--domain", optarg, "a DNS name like grid.example");
            router_opts = 1;
            break;
        case OPT_REDIS:
            if (endpoint_parse(optarg, &cfg->directory.redis, &err) != PARSE_OK ||
                (cfg->directory.redis.kind != EP_TCP && cfg->directory.redis.kind != EP_UNIX))
                return bad_option("--redis", optarg, "tcp:HOST:PORT or unix:/path");
            cfg->directory.backend = DIR_REDIS;
            router_opts = 1;
            break;
        case OPT_SOCKMODE:
            if (config_mode(optarg, &perm.mode) != 0)
                return bad_option("--socket-mode", optarg, "an octal mode from 0001 to 0777");
            break;
        case OPT_SOCKOWNER:
        case OPT_SOCKGROUP:
            if (config_account(optarg) != 0)
                return bad_option(opt == OPT_SOCKOWNER ? "--socket-owner" : "--socket-group",
                                  optarg, "a name or number (A-Z a-z 0-9 _ . -)");
            snprintf(opt == OPT_SOCKOWNER ? perm.owner : perm.group, EP_ID_MAX, "%s", optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (argc - optind != (router ? 1 : 2)) {
        usage(stderr);
        return 2;
    }
    if (endpoint_parse(argv[optind], &rc->listen, &err) != PARSE_OK)
        return bad_value("LISTEN", argv[optind], err);
    if (perm.mode != 0 || perm.owner[0] != '\0' || perm.group[0] != '\0') {
        struct endpoint *eps[2] = {&rc->listen, cfg->has_metrics ? &cfg->metrics : NULL};
        bool used = false;
        for (size_t i = 0; i < 2; i++) {
            if (eps[i] == NULL)
                continue;
            eps[i]->perm = perm;
            if (config_perm_check(eps[i]) == NULL)
                used = true;
            else
                memset(&eps[i]->perm, 0, sizeof(perm));
        }
        if (!used) {
            fprintf(stderr,
                    "airlock %s: --socket-mode, --socket-owner and --socket-group apply "
                    "to unix:/path and hvsock:/path:PORT listeners (LISTEN, --metrics)\n",
                    cmd_name);
            return 2;
        }
    }
    if (router) {
        if (rc->router.table.n == 0 && !rc->router.table.has_default && !cfg->has_directory) {
            fprintf(stderr, "airlock router: expected --route NAME=TARGET, --directory POOL or "
                            "--default TARGET\n");
            return 2;
        }
        if (!cfg->has_directory &&
            (rc->router.table.domain[0] != '\0' || cfg->directory.backend == DIR_REDIS)) {
            fprintf(stderr, "airlock router: --domain and --redis go with --directory\n");
            return 2;
        }
        bool udp = rc->router.table.has_default && rc->router.table.def.kind == EP_UDP;
        for (size_t i = 0; i < rc->router.table.n; i++)
            udp = udp || rc->router.table.routes[i].target.kind == EP_UDP;
        if (rc->n_egress_allow > 0 || dgram_opts || stream_side_opts || rc->n_dns_allow > 0 ||
            rc->listen.kind == EP_UDP || udp) {
            fprintf(stderr, "airlock router: egress, udp and DNS options are for relays\n");
            return 2;
        }
    } else if (router_opts) {
        fprintf(stderr, "airlock relay: the router options (--route, --default, --directory, "
                        "...) are for airlock router\n");
        return 2;
    } else if (strcmp(argv[optind + 1], "egress") == 0) {
        rc->egress = true;
    } else if (endpoint_parse(argv[optind + 1], &rc->target, &err) != PARSE_OK) {
        return bad_value("TARGET", argv[optind + 1], err);
    }
    if (relay_conf_check(rc, msg, sizeof(msg)) != 0) {
        fprintf(stderr, "airlock %s: %s\n", cmd_name, msg);
        return 2;
    }
    if (dgram_opts && !relay_conf_is_dgram(rc)) {
        fprintf(stderr, "airlock relay: --max-datagram and --flow-idle-timeout apply to "
                        "datagram relays (a udp LISTEN or TARGET) only\n");
        return 2;
    }
    if (stream_side_opts && (rc->target.kind != EP_UDP || rc->listen.kind == EP_UDP)) {
        fprintf(stderr, "airlock relay: --max-flows and --max-fds apply to stream -> udp relays "
                        "(a udp TARGET) only\n");
        return 2;
    }
    return -1;
}

/* What a config alone cannot tell: the user and group a listener's socket
 * file is to get exist on this machine. Prints the first that does not
 * ("airlock: WHERE: KEY.owner: ...") and returns 1; 0 when all do. */
static int
perm_missing(const char *where, const char *key, const struct endpoint *ep)
{
    static const char *const what[2] = {"user", "group"};
    const char *name[2] = {ep->perm.owner, ep->perm.group};
    uid_t uid;
    gid_t gid;

    for (int i = 0; i < 2; i++) {
        struct ep_perm one = {0};
        if (name[i][0] == '\0')
            continue;
        snprintf(i == 0 ? one.owner : one.group, EP_ID_MAX, "%s", name[i]);
        int rc = transport_perm_ids(&one, &uid, &gid);
        if (rc == -ENOENT)
            fprintf(stderr, "airlock: %s: %s.%s: no such %s '%s' on this machine\n", where, key,
                    i == 0 ? "owner" : "group", what[i], name[i]);
        else if (rc != 0)
            fprintf(stderr, "airlock: %s: %s.%s: cannot look up %s '%s': %s\n", where, key,
                    i == 0 ? "owner" : "group", what[i], name[i], strerror(-rc));
        if (rc != 0)
            return 1;
    }
    return 0;
}

/* perm_missing() for every listener of cfg. */
static int
perms_missing(const struct config *cfg, const char *where)
{
    char key[64];
    size_t routers = 0;

    for (size_t i = 0; i < cfg->n_relays; i++) {
        bool router = cfg->relays[i].router.enabled;
        snprintf(key, sizeof(key), "%s[%zu].listen", router ? "routers" : "relays",
                 router ? routers++ : i);
        if (perm_missing(where, key, &cfg->relays[i].listen))
            return 1;
    }
    for (size_t i = 0; i < cfg->n_sinks; i++) {
        snprintf(key, sizeof(key), "log_sinks[%zu].listen", i);
        if (perm_missing(where, key, &cfg->sinks[i].listen))
            return 1;
    }
    return (cfg->has_metrics && perm_missing(where, "metrics", &cfg->metrics)) ||
           (cfg->has_control && perm_missing(where, "control", &cfg->control)) ||
           (cfg->logs.has_listen && perm_missing(where, "logs.listen", &cfg->logs.listen));
}

/* Builds a one-relay (or one-router) config from the command line. */
static int
cmd_relay(int argc, char **argv, bool router)
{
    struct config cfg = {.log_level = LOG_LVL_INFO, .drain_timeout_ms = 30000};
    struct relay_conf rc;
    int status = relay_args(argc, argv, router, &cfg, &rc);

    if (status < 0 && (cfg.relays = malloc(sizeof(rc))) == NULL)
        status = 1;
    if (status >= 0) {
        route_table_free(&rc.router.table);
        return status;
    }
    cfg.relays[0] = rc;
    cfg.n_relays = 1;
    if (perms_missing(&cfg, "command line")) {
        config_free(&cfg);
        return 2;
    }
    return runtime_run(&cfg, NULL);
}

/* run -c FILE and check -c FILE */
static int
cmd_config(int argc, char **argv, int run)
{
    const char *path = NULL;
    struct config cfg;
    char err[512];
    int opt;

    while ((opt = getopt(argc, argv, "c:h")) != -1) {
        if (opt == 'c') {
            path = optarg;
        } else {
            usage(opt == 'h' ? stdout : stderr);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (path == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (config_load(path, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "airlock: %s\n", err);
        return 1;
    }
    /* what the file alone cannot tell: the run-as users exist here, the
     * uids are nobody's */
    for (size_t i = 0; i < cfg.n_pools; i++) {
        char why[256];
        if (pool_conf_check_host(&cfg.pools[i], why, sizeof(why)) == 0)
            continue;
        fprintf(stderr, "airlock: %s: pools[%zu].%s\n", path, i, why);
        config_free(&cfg);
        return 1;
    }
    if (perms_missing(&cfg, path)) {
        config_free(&cfg);
        return 1;
    }
    if (!run) {
        size_t routers = 0;
        for (size_t i = 0; i < cfg.n_relays; i++)
            routers += cfg.relays[i].router.enabled;
        printf("%s: ok (%zu relays", path, cfg.n_relays - routers);
        if (routers > 0)
            printf(", %zu routers", routers);
        if (cfg.n_pools > 0)
            printf(", %zu pools", cfg.n_pools);
        if (cfg.n_sinks > 0)
            printf(", %zu log sinks", cfg.n_sinks);
        if (cfg.logs.enabled)
            printf(", logs forwarded");
        if (cfg.has_directory)
            printf(", directory %s", cfg.directory.backend == DIR_REDIS ? "redis" : "memory");
        if (cfg.has_control)
            printf(", control socket");
        printf(")\n");
        config_free(&cfg);
        return 0;
    }
    return runtime_run(&cfg, path);
}

/* ctl [-s ENDPOINT] COMMAND [ARG [ARG]] */
static int
cmd_ctl(int argc, char **argv)
{
    struct endpoint ep;
    const char *server = CONTROL_DEFAULT, *why = NULL;
    char line[2 * CTL_LINE_MAX]; /* longer ones are the server's to refuse */
    int opt;

    while ((opt = getopt(argc, argv, "+s:h")) != -1) {
        if (opt == 's') {
            server = optarg;
        } else {
            usage(opt == 'h' ? stdout : stderr);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (optind >= argc || argc - optind > 3) {
        usage(stderr);
        return 2;
    }
    if (endpoint_parse(server, &ep, &why) != PARSE_OK || ep.kind == EP_UDP) {
        fprintf(stderr, "airlock ctl: -s '%s': expected a stream endpoint: %s\n", server,
                why ? why : "not udp");
        return 2;
    }
    line[0] = '\0';
    for (int i = optind; i < argc; i++)
        snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s%s", i > optind ? " " : "",
                 argv[i]);
    return control_client(&ep, line);
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    argc--;
    argv++;
    if (strcmp(cmd, "relay") == 0 || strcmp(cmd, "router") == 0)
        return cmd_relay(argc, argv, strcmp(cmd, "router") == 0);
    if (strcmp(cmd, "run") == 0)
        return cmd_config(argc, argv, 1);
    if (strcmp(cmd, "check") == 0)
        return cmd_config(argc, argv, 0);
    if (strcmp(cmd, "ctl") == 0)
        return cmd_ctl(argc, argv);
#ifdef AIRLOCK_WITH_ATTEST
    if (strcmp(cmd, "attest") == 0)
        return cmd_attest(argc, argv);
#endif
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("airlock %s\n", AIRLOCK_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "airlock: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
