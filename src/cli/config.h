/* config.h - the YAML configuration (libyaml) and its defaults.
 *
 *   threads: 2                      # event loops; default: one per core
 *   log_level: info                 # error | warn | info | debug
 *   metrics: tcp:127.0.0.1:9100     # Prometheus text on any endpoint
 *   drain_timeout: 30s              # SIGTERM: how long to wait for connections (default)
 *   resolver_threads: 4             # threads looking up target names (1-64; default 4)
 *   resolver_queue: 256             # names waiting for one of them (1-65536; default
 *                                   #   256); beyond, connections to new names fail at
 *                                   #   once (airlock_resolver_rejected_total)
 *   relays:
 *     - name: web                   # unique; default relay<N> (1-based)
 *       listen: tcp:0.0.0.0:8443
 *       target: vsock:16:8443
 *       allow: [10.0.0.0/8, cid:16] # see net/allow.h; tcp and vsock listeners
 *       max_connections: 10000      # 0: no limit (default)
 *       connect_timeout: 5s         # more than 0
 *       idle_timeout: 1h            # 0: none
 *       keepalive: true             # TCP keepalive on tcp sockets
 *       splice: true                # zero-copy where both ends allow it
 *       send_proxy: v2              # or none
 *       accept_proxy: v2            # or none
 *       original_dst: false         # tcp listener, send_proxy v2: send the address
 *                                   # a connection had before iptables REDIRECT
 *     - name: egress                # the enclave's outbound calls, on the host
 *       listen: vsock:any:8080
 *       target: egress              # destination chosen per connection, from a
 *                                   # PROXY v2 header or an HTTP CONNECT request
 *       egress_allow:               # required; see net/egress.h
 *         - api.example.com:443     # a host name, resolved here (DNS TTL)
 *         - "*.s3.amazonaws.com:443"
 *         - 198.51.100.0/24:80-90   # a CIDR with a port range
 *         - 10.1.2.3:5432           # private addresses only when listed
 *   logs:                           # enclave side: forward log lines out
 *     forward: vsock:3:9200         # where lines go: any stream endpoint (required)
 *     capture_stderr: true          # airlock's own lines too (still also to stderr)
 *     listen: unix:/run/airlock/log.sock  # apps connect here and write lines (not hvsock)
 *     buffer: 1MiB                  # bounded; full: new lines dropped and counted
 *     line_max: 16KiB               # longer lines are cut and marked " [cut]"
 *     max_streams: 256              # apps connected at once, 1-4096; one more takes
 *                                   #   the place of the least recently active stream
 *                                   #   of the peer (uid, address) holding the most
 *     idle_timeout: 0               # close an app silent this long; 0: never (default)
 *     allow: [cid:16]               # tcp or vsock listen only, as for relays
 *   log_sinks:                      # host side: append forwarded lines to files
 *     - name: enclave16             # unique; default sink<N> (1-based)
 *       listen: vsock:any:9200
 *       file: /var/log/enclave.log  # O_APPEND; SIGHUP reopens it (logrotate)
 *       line_max: 64KiB             # longer lines are cut and marked " [cut]"
 *       allow: [cid:16]             # the enclave(s) that may send; tcp: CIDRs
 *       max_streams: 256            # as for logs:
 *       idle_timeout: 1h            # default; 0: never (the forwarder reconnects)
 *     - name: dns                   # a datagram relay: udp on one side, a
 *       listen: vsock:any:53        #   stream (tcp, unix, vsock, hvsock) on the other
 *       target: udp:10.0.0.2:53
 *       max_datagram: 4096          # bytes, 1-65507; larger datagrams are dropped
 *       flow_idle_timeout: 60s      # a flow (client address / flow id) unused this long
 *                                   #   is forgotten; more than 0
 *       dns_allow: [example.com, "*.example.org"]  # stream -> udp relays only:
 *                                   #   other names are answered REFUSED
 *       max_flows: 256              # stream -> udp relays only: flows per stream, each a
 *                                   #   socket; when full, the stream's least recently
 *                                   #   used flow goes (1-65536)
 *       max_fds: 0                  # stream -> udp relays only: file descriptors of all
 *                                   #   its streams (at most half; more are refused) and
 *                                   #   flow sockets (the other half, shared fairly by
 *                                   #   the streams: a new flow evicts an old one); 0:
 *                                   #   an eighth of the open files limit, 2 to 4096
 *
 *   routers:                        # TLS by server name (SNI), never terminated
 *     - name: edge                  # unique among relays and routers; default router<N>
 *       listen: tcp:0.0.0.0:443     # a stream endpoint
 *       routes:                     # exact names first, then the longest *.suffix
 *         - {name: www.example.com, target: tcp:10.0.0.5:443}
 *         - {name: "*.example.org", target: vsock:16:443}
 *       directory: grid             # then <key>.<domain>: key's instance of this
 *       domain: grid.example        #   pool, from the directory (needs directory:);
 *                                   #   without domain, any name's first label
 *       default: tcp:10.0.0.9:443   # the rest and ClientHellos without SNI; none:
 *                                   #   unrecognized_name alert and close
 *       peek_timeout: 5s            # the whole ClientHello must come in time
 *       max_hello: 16KiB            # 512B-32KiB; larger ClientHellos are refused
 *       # and of the relay keys: allow, max_connections, connect_timeout,
 *       # idle_timeout, keepalive, splice, send_proxy, accept_proxy
 *   directory:                      # the session directory (router, pools, ctl)
 *     backend: memory               # or redis (shared by routers and pools
 *                                   #   in other processes and machines)
 *     redis: tcp:127.0.0.1:6379     # backend redis: tcp or unix endpoint
 *     prefix: "airlock:"            # redis key prefix (default)
 *     reserve_timeout: 10s          # a reserved instance whose user does not
 *                                   #   log in by then goes back to idle
 *     session_ttl: 1h               # a session not assigned for this long ends;
 *                                   #   0: sessions end only by the pool's report
 *     assign_wait: 5s               # how long a new user waits for an idle
 *                                   #   instance; 0: refused at once
 *   control: unix:/run/airlock/ctl.sock  # airlock ctl (sessions, instances,
 *                                   #   drain); any stream endpoint; needs directory:
 *   pools:                          # standby instances (docs/pool.md)
 *     - name: grid                  # 1-40 characters; default pool<N>
 *       command: [/usr/bin/app, --port, "{port}", --dir, "{dir}"]  # required
 *       launcher: [gramine-sgx]     # optional argv prefix (TEE runtime)
 *       endpoint: "tcp:127.0.0.1:{port}"  # reported to the directory; required
 *       ports: 20000-20999          # required when {port} is used; at least max
 *       dir: /var/lib/airlock/grid  # instance directories DIR/NAME-N; required
 *       uids: 61000-61999           # one uid (and gid) per instance, the lowest free
 *                                   #   one; at least max; no account may use them
 *       group: smartgrid            # with uids: the gid of every instance (a name or
 *                                   #   a number; not root's); default gid = uid
 *       user: nobody                # or one shared run-as user (must exist; does not
 *                                   #   isolate instances from each other); default
 *                                   #   airlock's
 *       min_idle: 1                 # starting or idle, at least (default 1)
 *       max: 10                     # in total, at most (default 10, up to 1024)
 *       max_idle: 1                 # idle above it trimmed after cooldown (default min_idle)
 *       cooldown: 60s
 *       start_timeout: 30s          # no ready line by then: killed, backoff
 *       stop_grace: 5s              # SIGTERM, then SIGKILL
 *       restart_backoff: 250ms      # doubling up to restart_backoff_max (30s)
 *       restart_backoff_max: 30s
 *       events:                     # POSIX extended regexes on output lines
 *         ready: "^WAITING_LOGIN$"  # required
 *         login: "^LOGIN (.+)$"     # required; group 1 is the user
 *         logout: "^LOGOUT$"        # optional
 *       provision:                  # optional; {user} {dir} {instance} {port} {uid} {gid}
 *         command: [fetch, "{user}", "{dir}"]
 *         timeout: 30s
 *       deprovision:                # optional, same form
 *         command: [store, "{user}", "{dir}"]
 *         timeout: 30s
 *
 * Listeners (relays' and routers' listen, metrics, control, logs.listen,
 * log_sinks' listen) take an endpoint or a mapping
 *     {endpoint: unix:/run/airlock/m.sock, mode: "0640", owner: airlock, group: prom}
 * for the socket file of a unix or hvsock listener: its mode (octal; 0660
 * by default, 0600 for control) and its owner and group (names or numbers;
 * airlock's own by default), in place as the file appears, whatever the
 * umask. Not for tcp, vsock or abstract (unix:@name) listeners. A unix
 * control socket also checks its peers (SO_PEERCRED): root, airlock's user,
 * the socket's owner and members of its group only.
 *
 * Sizes: an integer with unit B, KiB, MiB or GiB (a bare integer is bytes).
 * relays may be left out when routers, logs, log_sinks, directory or pools is given.
 * Durations: an integer with unit ms, s, m or h (a bare integer is seconds).
 * Unknown keys, duplicate keys, duplicate relay names or listen endpoints, a
 * second YAML document and values of the wrong type are all errors, and so
 * are nesting deeper than 64 levels, more than 256 anchors and aliases and
 * more than 16 directives (libyaml would take quadratic time over them).
 *
 * Datagram relays: udp -> stream (the enclave side: a UDP listener, one
 * stream to the target) or stream -> udp (the host side). udp -> udp is
 * refused, and so are send_proxy and accept_proxy. allow takes CIDRs on a
 * udp listener. connect_timeout applies to the udp side's stream,
 * max_connections and idle_timeout (no frame either way) to the streams a
 * stream listener accepts; splice does not apply. max_datagram,
 * flow_idle_timeout and dns_allow are refused on stream relays, max_flows and
 * max_fds on all but stream -> udp relays.
 *
 * An egress relay takes neither send_proxy nor accept_proxy (it reads a
 * PROXY v2 header by itself, and its destinations are arbitrary servers). */
#ifndef AIRLOCK_CLI_CONFIG_H
#define AIRLOCK_CLI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/log.h"
#include "dir/dir.h"
#include "net/allow.h"
#include "net/egress.h"
#include "net/endpoint.h"
#include "proto/dns.h"
#include "router/route.h"

#define CONF_NAME_MAX 64
#define CONF_ALLOW_MAX 64
#define CONF_EGRESS_MAX 64
#define CONF_SINKS_MAX 64
#define CONF_FILE_PATH_MAX 4096

/* Defaults and bounds of the log settings (bytes). */
#define LOG_BUFFER_DEFAULT (1024 * 1024)
#define LOG_BUFFER_MIN (64 * 1024)
#define LOG_BUFFER_MAX (1024 * 1024 * 1024)
#define LOG_LINE_DEFAULT (16 * 1024)
#define LOG_SINK_LINE_DEFAULT (64 * 1024)
#define LOG_LINE_MIN 256
#define LOG_LINE_MAX (1024 * 1024)
#define CONF_DNS_ALLOW_MAX 64
#define CONF_DATAGRAM_MAX 65507    /* the largest UDP payload */
#define CONF_MAX_FLOWS_DEFAULT 256 /* flows per stream of a stream -> udp relay */
#define CONF_MAX_FLOWS_MAX 65536
#define CONF_MAX_FDS_MAX 1048576
#define CONF_RESOLVER_THREADS_MAX 64
#define CONF_RESOLVER_QUEUE_MAX 65536

enum proxy_mode { PROXY_NONE, PROXY_V2 };

/* Defaults and bounds of a router's settings. */
#define ROUTER_PEEK_TIMEOUT_DEFAULT 5000 /* ms */
#define ROUTER_HELLO_MIN 512             /* bytes */
#define ROUTER_HELLO_MAX (32 * 1024)

/* What makes a relay a router (an entry of routers:): the upstream is
 * chosen per connection from the ClientHello's server name. */
struct router_conf {
    bool enabled;
    struct route_table table;
    unsigned peek_timeout_ms; /* the whole ClientHello must come within this */
    size_t max_hello;         /* bytes, ROUTER_HELLO_MIN..ROUTER_HELLO_MAX */
};

struct relay_conf {
    char name[CONF_NAME_MAX];
    struct endpoint listen;
    struct endpoint target;
    struct allow_rule allow[CONF_ALLOW_MAX];
    size_t n_allow;
    unsigned max_connections;
    unsigned connect_timeout_ms;
    unsigned idle_timeout_ms;
    bool keepalive;
    bool splice;
    enum proxy_mode send_proxy;
    enum proxy_mode accept_proxy;
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
    struct router_conf router; /* routers: entries only; target is unused */
};

/* Who may hold one of the streams of a log listener (logs.listen, a log
 * sink's listen): see relay/streams.h. */
#define CONF_STREAMS_MAX 4096
#define LOG_STREAMS_DEFAULT 256
#define LOG_SINK_IDLE_DEFAULT (60 * 60 * 1000) /* ms; the forwarder reconnects */
struct stream_limits {
    struct allow_rule allow[CONF_ALLOW_MAX]; /* tcp: CIDRs, vsock: cid:N; empty: anyone */
    size_t n_allow;
    unsigned max_streams;     /* 1..CONF_STREAMS_MAX; more: the busiest peer's quietest goes */
    unsigned idle_timeout_ms; /* a stream silent this long is closed; 0: never */
};

/* The enclave side of log forwarding (the logs: block). */
struct log_conf {
    bool enabled; /* a logs: block is present */
    struct endpoint forward;
    bool capture_stderr;
    bool has_listen;
    struct endpoint listen;
    size_t buffer;               /* bytes, LOG_BUFFER_MIN..LOG_BUFFER_MAX */
    size_t line_max;             /* bytes, LOG_LINE_MIN..LOG_LINE_MAX, at most buffer / 4 */
    struct stream_limits limits; /* of the apps on listen; idle_timeout 0 by default */
};

/* One host-side log sink (an entry of log_sinks:). */
struct log_sink_conf {
    char name[CONF_NAME_MAX];
    struct endpoint listen;
    char file[CONF_FILE_PATH_MAX];
    size_t line_max;
    struct stream_limits limits; /* idle_timeout LOG_SINK_IDLE_DEFAULT by default */
};

/* Returns true when rc relays datagrams (its listen or target is udp). */
bool relay_conf_is_dgram(const struct relay_conf *rc);

struct config {
    unsigned threads; /* 0: one per online core */
    enum log_level log_level;
    bool has_metrics;
    struct endpoint metrics;
    unsigned drain_timeout_ms;
    struct relay_conf *relays; /* owned; n_relays entries */
    size_t n_relays;
    struct log_conf logs;
    struct log_sink_conf *sinks; /* owned; n_sinks entries */
    size_t n_sinks;
    bool has_directory;        /* a directory: block is present */
    struct dir_conf directory; /* dir_conf_defaults() unless given */
    bool has_control;
    struct endpoint control; /* the airlock ctl socket */
    struct pool_conf *pools; /* owned; n_pools entries */
    size_t n_pools;
    unsigned resolver_threads; /* 0: the default (net/resolve.h) */
    unsigned resolver_queue;   /* 0: the default */
};

/* Returns true when a and b are the same settings (routes compared by
 * content): a reload keeps such a relay as it is. */
bool relay_conf_equal(const struct relay_conf *a, const struct relay_conf *b);

/* Fills *rc with the defaults (connect_timeout 5s, idle_timeout 1h,
 * keepalive and splice on, no PROXY, no limit, empty allowlists,
 * max_datagram 4096, flow_idle_timeout 60s, max_flows 256, max_fds 0). */
void relay_conf_defaults(struct relay_conf *rc);

/* Checks one relay's settings that depend on each other (allow on a unix
 * listener, allow rules of the wrong kind for the listener, vsock CID "any"
 * as a target, udp to udp, settings of datagram relays on others, limits, egress and
 * original_dst settings). Returns 0, or -1 with
 * "KEY: what was expected" in err (no file or line: the caller adds them), e.g. "allow[1]: expected
 * a cid:N rule: ...". err may be NULL when errlen is 0. */
int relay_conf_check(const struct relay_conf *rc, char *err, size_t errlen);

/* Loads and checks the YAML file at path (at most 1 MiB; pipes work) into
 * *cfg (zeroed first). Returns 0, or -1 with err holding
 * "FILE:LINE: KEY: what was expected", LINE 1-based. On success the caller
 * frees with config_free(); on failure *cfg is left zeroed, owning nothing. */
int config_load(const char *path, struct config *cfg, char *err, size_t errlen);

/* Same as config_load() on the len bytes at text (no NUL needed); name is
 * used in messages. For tests and the fuzzer. err may be NULL when errlen
 * is 0. */
int config_parse(const char *name, const char *text, size_t len, struct config *cfg, char *err,
                 size_t errlen);

/* Parses a duration ("250ms", "5s", "2m", "1h", "30") into *ms. Returns 0,
 * or -EINVAL (*ms untouched) for anything else, including signs, spaces,
 * compound forms like "1h30m" and values past UINT_MAX milliseconds. */
int config_duration(const char *s, unsigned *ms);

/* Parses a size ("1MiB", "512KiB", "4096", "64B", "1GiB") into *bytes.
 * Returns 0, or -EINVAL (*bytes untouched) for anything else, including
 * signs, spaces, other units and values past 2^40. */
int config_size(const char *s, size_t *bytes);

/* Parses an octal file mode ("0660", "600": 1-4 octal digits, 0001-0777)
 * into *mode. Returns 0 or -EINVAL (*mode untouched). */
int config_mode(const char *s, unsigned *mode);

/* Returns 0 when s can name a user or group (or be a uid or gid): 1-63
 * characters from A-Z a-z 0-9 _ . -, not starting with '-'; else -EINVAL. */
int config_account(const char *s);

/* Returns NULL when ep->perm may apply to ep (nothing set, or a listener
 * with a socket file), else a static message saying why not. */
const char *config_perm_check(const struct endpoint *ep);

/* Releases what cfg owns and zeroes it; safe to call twice. */
void config_free(struct config *cfg);

/* ---- pools (the pools: list; docs/pool.md) */

#define CONF_POOLS_MAX 16
#define CONF_ARGV_MAX 32   /* words of a command, launcher or hook */
#define CONF_ARG_MAX 512   /* bytes of one word or template, incl. NUL */
#define CONF_REGEX_MAX 512 /* bytes of one event rule, incl. NUL */
#define CONF_INSTANCES_MAX 1024
#define POOL_NAME_MAX 40 /* characters of a pool name: instance names are NAME-N */

/* An argv template: words with {port}, {dir}, {instance}, {uid}, {gid} (and
 * {user} in hooks). */
struct argv_conf {
    char arg[CONF_ARGV_MAX][CONF_ARG_MAX];
    size_t n; /* 0: not set */
};

/* A provisioning or deprovisioning hook. */
struct hook_conf {
    struct argv_conf command; /* n == 0: no hook */
    unsigned timeout_ms;      /* default 30s; more than 0 */
};

/* One pool of standby instances (an entry of pools:). */
struct pool_conf {
    char name[CONF_NAME_MAX];
    struct argv_conf launcher;           /* optional prefix (gramine-sgx, nitro-cli ...) */
    struct argv_conf command;            /* required */
    char endpoint[CONF_ARG_MAX];         /* template; required */
    unsigned port_min, port_max;         /* ports: A-B; 0-0 when not set */
    char dir[CONF_FILE_PATH_MAX];        /* base of the instance directories; required */
    char user[CONF_NAME_MAX];            /* run-as user; "" keeps airlock's */
    unsigned uid_min, uid_max;           /* uids: A-B, one per instance; 0-0 when not set */
    char group[CONF_NAME_MAX];           /* with uids: every instance's gid; "": gid = uid */
    unsigned min_idle;                   /* default 1 */
    unsigned max;                        /* default 10, at most CONF_INSTANCES_MAX */
    unsigned max_idle;                   /* default min_idle */
    unsigned cooldown_ms;                /* default 60s */
    unsigned start_timeout_ms;           /* default 30s; more than 0 */
    unsigned stop_grace_ms;              /* default 5s: SIGTERM, then SIGKILL */
    unsigned backoff_ms, backoff_max_ms; /* restart backoff; default 250ms, 30s */
    char ready[CONF_REGEX_MAX];          /* POSIX extended regexes; ready and login required */
    char login[CONF_REGEX_MAX];          /* one capture group: the user */
    char logout[CONF_REGEX_MAX];         /* "" : the process's exit ends the session */
    struct hook_conf provision, deprovision;
};

/* Returns the ports pc's instances can use (0 when it needs none). */
unsigned pool_conf_ports(const struct pool_conf *pc);

/* Returns the size of pc's uid range (0 without uids:). */
unsigned pool_conf_uids(const struct pool_conf *pc);

#endif
