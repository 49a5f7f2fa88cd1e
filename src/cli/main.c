/* main.c - the airlock command line: relay, run, check, version. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/attest.h"
#include "cli/config.h"
#include "cli/control.h"
#include "cli/field.h"
#include "cli/hostcheck.h"
#include "cli/process.h"
#include "cli/runtime.h"
#include "core/closest.h"
#include "core/log.h"
#include "http/proxy.h"
#include "net/transport.h"
#include "pool/pool.h"
#include "proto/ctl.h"
#ifdef AIRLOCK_WITH_ATTEST
#include "broker/broker.h"
#endif

#ifdef AIRLOCK_WITH_ATTEST
#define USAGE_ATTEST                                                                               \
    "       airlock attest verify|get ...           check attestation evidence, or make\n"         \
    "                                               sim evidence (airlock attest --help)\n"
#else /* the static build: no libcbor.a in Debian */
#define USAGE_ATTEST ""
#endif

#ifdef AIRLOCK_WITH_FIELD
#define USAGE_FIELD                                                                                \
    "       airlock field encrypt|decrypt|rewrap ...\n"                                            \
    "                                               JSON field tokens (airlock field --help)\n"
#else /* the static build: no libcjson.a in Debian */
#define USAGE_FIELD ""
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
            "       airlock ctl [-s ENDPOINT] reload|conns|stats|config\n"
            "                                               ask a running airlock (its control:\n"
            "                                               socket, default " CONTROL_DEFAULT ");\n"
            "                                               assign reserves an instance for KEY\n"
            "                                               as a router does; reload waits for\n"
            "                                               the outcome\n" USAGE_ATTEST USAGE_FIELD
            "       airlock version | --version             version, git commit and build date\n"
            "\n"
            "endpoints: tcp:HOST:PORT  udp:HOST:PORT  unix:/path  vsock:CID:PORT  "
            "hvsock:/path:PORT\n"
            "  (udp on one side and a stream on the other: a datagram relay)\n"
            "TARGET egress: the destination is chosen per connection (PROXY v2 header or\n"
            "HTTP CONNECT) and checked against --egress-allow rules\n"
            "\n"
            "relay options (each --KEY is the key KEY of a relay in a config file, '-' for '_';\n"
            "--KEY=VALUE works too; --no-KEY for a true-or-false key):\n"
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
            "  --log-format FORMAT      text (default), logfmt or json\n"
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

/* Prints each of errs ("airlock: " first), then how many there are when
 * more than one. Returns their number. */
static size_t
errors_print(const struct config_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        fprintf(stderr, "airlock: %s\n", errs->e[i].msg);
    if (errs->total > errs->n)
        fprintf(stderr, "%zu errors (the first %zu shown)\n", errs->total, errs->n);
    else if (errs->total > 1)
        fprintf(stderr, "%zu errors\n", errs->total);
    return errs->total;
}

/* What a config alone cannot tell: the user and group a listener's socket
 * file is to get exist on this machine. Adds "WHERE: KEY.owner: ..." to
 * errs for each that does not. */
static void
perm_missing(const char *where, const char *key, const struct endpoint *ep,
             struct config_errors *errs)
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
            config_error_add(errs, SIZE_MAX, "%s: %s.%s: no such %s '%s' on this machine", where,
                             key, i == 0 ? "owner" : "group", what[i], name[i]);
        else if (rc != 0)
            config_error_add(errs, SIZE_MAX, "%s: %s.%s: cannot look up %s '%s': %s", where, key,
                             i == 0 ? "owner" : "group", what[i], name[i], strerror(-rc));
    }
}

typedef void (*listener_fn)(const char *where, const char *key, const struct endpoint *ep,
                            struct config_errors *errs);

/* Calls fn for every listener of cfg, with its key in the file. */
static void
listeners_each(const struct config *cfg, listener_fn fn, const char *where,
               struct config_errors *errs)
{
    char key[64];
    size_t routers = 0;

    for (size_t i = 0; i < cfg->n_relays; i++) {
        bool router = cfg->relays[i].router.enabled;
        snprintf(key, sizeof(key), "%s[%zu].listen", router ? "routers" : "relays",
                 router ? routers++ : i);
        fn(where, key, &cfg->relays[i].listen, errs);
    }
    for (size_t i = 0; i < cfg->n_sinks; i++) {
        snprintf(key, sizeof(key), "log_sinks[%zu].listen", i);
        fn(where, key, &cfg->sinks[i].listen, errs);
    }
    for (size_t i = 0; i < cfg->n_proxies; i++) {
        snprintf(key, sizeof(key), "proxies[%zu].listen", i);
        fn(where, key, &cfg->proxies[i].listen, errs);
    }
    if (cfg->has_metrics)
        fn(where, "metrics", &cfg->metrics, errs);
    if (cfg->has_control)
        fn(where, "control", &cfg->control, errs);
    if (cfg->logs.has_listen)
        fn(where, "logs.listen", &cfg->logs.listen, errs);
    if (cfg->broker.enabled)
        fn(where, "broker.listen", &cfg->broker.listen, errs);
}

/* Room for every error of a config; NULL (after a message) when there is
 * none. */
static struct config_errors *
errors_new(void)
{
    struct config_errors *errs = calloc(1, sizeof(*errs));

    if (errs == NULL)
        fprintf(stderr, "airlock: out of memory\n");
    return errs;
}

/* Builds a one-relay (or one-router) config from the command line. */
static int
cmd_relay(int argc, char **argv, bool router)
{
    struct config_errors *errs;
    struct config cfg;
    char err[512];

    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
    if (config_args(argc, argv, router, &cfg, err, sizeof(err)) != 0) {
        if (err[0] == '\0')
            usage(stderr);
        else
            fprintf(stderr, "airlock %s: %s\n", router ? "router" : "relay", err);
        return 2;
    }
    if ((errs = errors_new()) == NULL) {
        config_free(&cfg);
        return 2;
    }
    listeners_each(&cfg, perm_missing, "command line", errs);
    size_t n = errors_print(errs);
    free(errs);
    if (n > 0) {
        config_free(&cfg);
        return 2;
    }
    return runtime_run(&cfg, NULL);
}

/* Whether the directory of path (at KEY of the file at where) is
 * missing, which fails run. The directories airlock.service has systemd
 * make before airlock starts (RuntimeDirectory=, StateDirectory=,
 * LogsDirectory=) only get a note: a check before the first start is
 * right to pass. */
static void
dir_missing(const char *where, const char *key, const char *path, struct config_errors *errs)
{
    static const char *const unit_dirs[] = {"/run/airlock", "/var/lib/airlock", "/var/log/airlock"};
    const char *slash = strrchr(path, '/');
    char dir[EP_PATH_MAX > CONF_FILE_PATH_MAX ? EP_PATH_MAX : CONF_FILE_PATH_MAX];
    struct stat st;

    if (slash == NULL)
        return; /* airlock's working directory */
    snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return;
    for (size_t i = 0; i < sizeof(unit_dirs) / sizeof(unit_dirs[0]); i++)
        if (strcmp(dir, unit_dirs[i]) == 0) {
            fprintf(stderr,
                    "airlock: note: %s: %s: no directory %s yet (airlock.service has "
                    "systemd make it)\n",
                    where, key, dir);
            return;
        }
    config_error_add(errs, SIZE_MAX, "%s: %s: no directory %s", where, key, dir);
}

/* A listener's socket file: run binds it in its directory, which must be
 * there, and replaces only a stale socket, nothing else. */
static void
socket_file_fault(const char *path, const char *key, const struct endpoint *ep,
                  struct config_errors *errs)
{
    struct stat st;

    if ((ep->kind != EP_UNIX && ep->kind != EP_HVSOCK) || ep->path[0] == '@')
        return;
    if (lstat(ep->path, &st) == 0 && !S_ISSOCK(st.st_mode))
        config_error_add(errs, SIZE_MAX, "%s: %s: %s exists and is not a socket", path, key,
                         ep->path);
    else
        dir_missing(path, key, ep->path, errs);
}

/* What run would fail on in the file system: the directories of the
 * listeners' socket files, of the log sinks' files, of the pools'
 * directories and of the pool record. */
static void
files_missing(const struct config *cfg, const char *path, struct config_errors *errs)
{
    char key[64];

    listeners_each(cfg, socket_file_fault, path, errs);
    for (size_t i = 0; i < cfg->n_sinks; i++) {
        snprintf(key, sizeof(key), "log_sinks[%zu].file", i);
        dir_missing(path, key, cfg->sinks[i].file, errs);
    }
    for (size_t i = 0; i < cfg->n_pools; i++) {
        /* the pool's own directory is made, not the one it is in */
        snprintf(key, sizeof(key), "pools[%zu].dir", i);
        dir_missing(path, key, cfg->pools[i].dir, errs);
    }
    if (cfg->pool_record[0] != '\0')
        dir_missing(path, "pool_record", cfg->pool_record, errs);
}

/* The broker's files (the at-rest key, the policies' certificates) load,
 * in a build that has attestation. */
static void
broker_missing(const struct config *cfg, const char *path, struct config_errors *errs)
{
    if (!cfg->broker.enabled)
        return;
#ifdef AIRLOCK_WITH_ATTEST
    char err[512];
    struct broker *b = broker_load(&cfg->broker, err, sizeof(err));
    if (b == NULL)
        config_error_add(errs, SIZE_MAX, "%s: %s", path, err);
    else
        broker_stop(b);
#else
    config_error_add(errs, SIZE_MAX,
                     "%s: broker: this airlock is built without attestation (the static "
                     "build); run the broker with the dynamic build",
                     path);
#endif
}

/* The long options of run, check and ctl: only --help (-c and -s are short). */
static const struct option help_opts[] = {
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* run -c FILE and check -c FILE */
static int
cmd_config(int argc, char **argv, int run)
{
    struct config_errors *errs;
    const char *path = NULL;
    struct config cfg;
    int opt;

    while ((opt = getopt_long(argc, argv, "c:h", help_opts, NULL)) != -1) {
        if (opt == 'c') {
            path = optarg;
        } else {
            if (opt != 'h')
                closest_option_hint(stderr, run ? "airlock run" : "airlock check", argv[optind - 1],
                                    help_opts);
            usage(opt == 'h' ? stdout : stderr);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (path == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    if ((errs = errors_new()) == NULL)
        return 1;
    /* what run would fail on, only once the file is valid: it is what
     * they are checked against */
    if (config_load_all(path, &cfg, errs) == 0) {
        config_host_faults(&cfg, path, errs);
        listeners_each(&cfg, perm_missing, path, errs);
        files_missing(&cfg, path, errs);
        broker_missing(&cfg, path, errs);
    }
    size_t n = errors_print(errs);
    free(errs);
    if (n > 0) {
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
        if (cfg.broker.enabled)
            printf(", broker (%zu secrets)", cfg.broker.n_secrets);
        if (cfg.n_proxies > 0)
            printf(", %zu proxies", cfg.n_proxies);
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

    while ((opt = getopt_long(argc, argv, "+s:h", help_opts, NULL)) != -1) {
        if (opt == 's') {
            server = optarg;
        } else {
            if (opt != 'h')
                closest_option_hint(stderr, "airlock ctl", argv[optind - 1], help_opts);
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
    /* what the server would refuse as a command is a usage error here,
     * told before any connect */
    size_t len = strlen(line), used;
    struct ctl_cmd cmd;
    line[len] = '\n';
    if (ctl_parse(line, len + 1, &cmd, &used, &why) != PARSE_OK) {
        const char *verbs[CTL_VERB_COUNT];
        bool known = false;
        for (int v = 0; v < CTL_VERB_COUNT; v++) {
            verbs[v] = ctl_verb_name((enum ctl_verb)v);
            known = known || strcmp(argv[optind], verbs[v]) == 0;
        }
        if (!known && closest_word(argv[optind], strlen(argv[optind]), verbs, CTL_VERB_COUNT))
            closest_unknown(stderr, "airlock ctl", "command", argv[optind], verbs, CTL_VERB_COUNT);
        else
            fprintf(stderr, "airlock ctl: %s\n", why);
        return 2;
    }
    line[len] = '\0';
    return control_client(&ep, line);
}

/* "airlock: unknown command 'CMD'", with the closest command if one is
 * near, and the usage. */
static void
unknown_command(const char *cmd)
{
    static const char *const cmds[] = {"relay", "router",  "run",       "check", "ctl",
                                       "field", "version", "--version", "help",  "--help",
#ifdef AIRLOCK_WITH_ATTEST
                                       "attest"
#endif
    };

    closest_unknown(stderr, "airlock", "command", cmd, cmds, sizeof(cmds) / sizeof(cmds[0]));
    usage(stderr);
}

int
main(int argc, char **argv)
{
    log_std_fds();
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
    if (strcmp(cmd, "field") == 0) {
#ifdef AIRLOCK_WITH_FIELD
        return cmd_field(argc, argv);
#else
        fprintf(stderr, "airlock field: not in this build (static: Debian has no libcjson.a)\n");
        return 2;
#endif
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        if (argc > 1) {
            bool help = strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0;
            usage(help ? stdout : stderr);
            return help ? 0 : 2;
        }
        printf("airlock %s (commit %s, built %s)\n", process_version, process_commit,
               process_build_date);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    unknown_command(cmd);
    return 2;
}
