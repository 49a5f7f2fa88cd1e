/* config.h - the YAML configuration (libyaml) and its defaults.
 *
 *   threads: 2                      # event loops; default: one per core
 *   log_level: info                 # error | warn | info | debug
 *   log_format: text                # text | logfmt | json
 *   metrics: tcp:127.0.0.1:9100     # Prometheus text (/metrics), /healthz, /readyz; any endpoint
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
 *     - name: attested              # enclave side: terminate attested TLS (RA-TLS,
 *       listen: vsock:any:8443      #   docs/attestation.md), plaintext to the app
 *       target: tcp:127.0.0.1:8443
 *       tls:                        # not with verify:, send_proxy, egress or udp
 *         provider: nitro           # nitro | tsm | sim: the evidence source (required)
 *         sim_root: /etc/airlock/sim.pem  # sim only (required then): root key + cert
 *         validity: 1h              # certificate lifetime, 3s-168h; renewed at 2/3,
 *                                   #   never past the evidence's own expiry
 *         fresh_evidence_rate: 20/s # fresh evidence (client nonces) per second, as
 *                                   #   many at once; more: handshake_failure; 0: none
 *         handshake_timeout: 10s    # the whole handshake must come within it
 *     - name: to-enclave            # client side: an unmodified plaintext client
 *       listen: tcp:127.0.0.1:8443  #   reaches the attested service only once its
 *       target: tcp:10.0.0.5:443    #   evidence meets the policy
 *       verify:
 *         server_name: grid.example # SNI; default none
 *         fresh: true               # ask for evidence made for this connection (TLS 1.3)
 *         handshake_timeout: 10s
 *         policy: {type: nitro, pcrs: {0: HEX}}  # required; attest/policy.h
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
 *   control: unix:/run/airlock/ctl.sock  # airlock ctl (reload, conns, stats,
 *                                   #   config; with directory: sessions, instances,
 *                                   #   drain, assign); any stream endpoint
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
 *   proxies:                        # HTTP/1.1 reverse proxies (docs/field-encryption.md)
 *     - name: api                   # unique; default proxy<N>
 *       listen: tcp:127.0.0.1:8080  # a stream endpoint (or a listen mapping)
 *       backend: unix:/run/app.sock # required; tcp, unix, vsock, hvsock
 *       keyset: /etc/airlock/k.json # the routes' keyset unless they name one
 *       max_connections: 0          # 0: no limit
 *       max_header: 16KiB           # 1KiB-1MiB (431); max_headers: 100 (1-256)
 *       max_body: 1MiB              # request bodies (413); max_response: 16MiB (502)
 *       header_timeout: 10s         # and body_timeout: 30s (408), idle_timeout: 60s,
 *                                   #   connect_timeout: 5s, response_timeout: 60s (504)
 *       routes:                     # the first match: methods and a path prefix
 *         - {name: pay, methods: [POST], path: /pay, encrypt: ["$.card.number"],
 *            deterministic: ["$..email"], decrypt: true, content_type: application/json}
 *
 *   broker: ...                     # the key broker (broker/conf.h)
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
 * relays may be left out when routers, logs, log_sinks, directory, pools,
 * broker or proxies is given.
 * Durations: an integer with unit ms, s, m or h (a bare integer is seconds).
 * Unknown keys, duplicate keys, duplicate relay names or listen endpoints, a
 * second YAML document and values of the wrong type are all errors, and so
 * are nesting deeper than 64 levels, more than 256 anchors and aliases and
 * more than 16 directives (libyaml would take quadratic time over them).
 *
 * Each block is a table of keys walked by one function (cli/confmap.h);
 * the structs, defaults and cross-key rules are their modules':
 * relay/conf.h (relays, routers), relay/log_conf.h (logs, log_sinks),
 * dir/dir.h (directory), pool/conf.h (pools), broker/conf.h (broker),
 * attest/policy.h (its secrets' policy:) and http/conf.h (proxies). The options of airlock relay
 * and airlock router are the keys of a relay or router, the top level and
 * a listener mapping ("--idle-timeout 5s" is idle_timeout: 5s, "--no-splice"
 * splice: false, "--socket-mode" the listen mapping's mode), read by the
 * same setters and checked by the same rules (config_args()).
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

#include "broker/conf.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "dir/dir.h"
#include "http/conf.h"
#include "net/endpoint.h"
#include "pool/conf.h"
#include "relay/conf.h"
#include "relay/log_conf.h"

struct config {
    unsigned threads; /* 0: one per online core */
    enum log_level log_level;
    enum log_format log_format; /* LOG_FMT_TEXT (0) unless set */
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
    struct http_proxy_conf *proxies; /* owned; n_proxies entries */
    size_t n_proxies;
    unsigned resolver_threads; /* 0: the default (net/resolve.h) */
    unsigned resolver_queue;   /* 0: the default */
    struct broker_conf broker; /* broker_conf_defaults() unless given */
    char *text;                /* the file as parsed (config_dump()), owned; NULL: from arguments */
    size_t text_len;
};

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

/* Builds a one-relay (router: one-router) config from the arguments of
 * airlock relay / router (argv[0] is the command): LISTEN and TARGET (a
 * router: LISTEN) and --KEY VALUE, --KEY=VALUE, --KEY / --no-KEY (true,
 * false) options, KEY a key of the relay or router, of the top level, or
 * socket-mode, socket-owner, socket-group (LISTEN's and --metrics' socket
 * file), with '-' for '_'. Returns 0 (free with config_free()), or -1 with
 * "--KEY 'VALUE': what was expected" in err ("" when the arguments do not
 * have the shape of a command: the caller shows the usage) and *cfg
 * zeroed. */
int config_args(int argc, char **argv, bool router, struct config *cfg, char *err, size_t errlen);

/* Appends the effective config cfg (parsed from a file) to out as YAML:
 * every key of every block in table order, defaults filled in; the file
 * holds no secret values (passwords and keys are files: paths only).
 * config_parse() accepts the result. Returns 0, or -1 with err saying why
 * (a config from the command line has no file). See cli/confdump.h. */
int config_dump(const struct config *cfg, struct strbuf *out, char *err, size_t errlen);

/* Releases what cfg owns and zeroes it; safe to call twice. */
void config_free(struct config *cfg);

#endif
