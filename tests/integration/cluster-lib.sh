# cluster-lib.sh - a cluster of three airlock nodes in network namespaces,
# for t_cluster*.sh (docs/cluster.md); source it after lib.sh and sg_lib.sh,
# first thing: it runs the test again inside its own network, mount and pid
# namespaces (host_namespaces), so that whatever it starts dies with it.
#
#   test's "host" namespace                       node namespaces n1 n2 n3
#   curl (users) -> HAProxy 127.0.0.1:8443          10.231.0.11 / .12 / .13
#     send-proxy-v2, health checks ----bridge clbr----> airlock: router :8443
#   redis 10.231.0.1:6379  <--------------------------  (accept_proxy v2),
#   store $SG/db: every user's encrypted state,         directory (redis,
#     the same directory for every node (the             node: nI), pool grid
#     volume a provisioner would attach)                 of smartgrid-server
#                                                        on 10.231.0.1I:{port}
#
# The addresses exist only inside the test's namespaces. Every user's name is
# <user>.grid.example; HAProxy spreads the TLS connections across the three
# routers, each router asks the shared directory, which hands out instances
# of any node (the pools share the name grid; instance names grid-nI-N).
need ip haproxy redis-server redis-cli nsenter socat
host_namespaces

CL_NET=10.231.0
# each node's pool: CL_MIN_IDLE standby instances, at most CL_MAX (bench/scale-memory.sh
# sizes them for its users)
CL_MIN_IDLE=${CL_MIN_IDLE:-2} CL_MAX=${CL_MAX:-6}
CL_REDIS=$CL_NET.1:6379
CL_PREFIX="cl:"
SG_PORT=8443 # HAProxy's, where sg_curl connects
declare -A CL_NS=() CL_PID=()

# cl_ip N: node N's address.
cl_ip() { echo "$CL_NET.1$1"; }
# cl_in N COMMAND...: runs COMMAND in node N's network namespace.
cl_in() { nsenter --net="/proc/${CL_NS[$1]}/ns/net" -- "${@:2}"; }
# rcli ARGS...: redis-cli on the cluster's redis.
rcli() { redis-cli -h "$CL_NET.1" -p 6379 "$@"; }
# cl_ctl N ARGS...: airlock ctl on node N's pool airlock.
cl_ctl() { "$AIRLOCK" ctl -s "unix:$T/n$1/ctl.sock" "${@:2}"; }
# cl_metric N NAME{LABELS}: one value of the metrics of node N's pool airlock.
cl_metric() { cl_in "$1" curl -sf http://127.0.0.1:9100/metrics | awk -v k="$2" '$1 == k { print $2 }'; }

own_netns() { [ "$(readlink "/proc/$1/ns/net")" != "$(readlink /proc/self/ns/net)" ]; }

# cl_net: the bridge and the three node namespaces, each on its veth pair.
cl_net() {
    local i pid
    ip link add clbr type bridge
    ip addr add "$CL_NET.1/24" dev clbr
    ip link set clbr up
    for i in 1 2 3; do
        start "ns-n$i" unshare --net sleep 100000
        pid=$LAST_PID
        wait_for own_netns "$pid"
        CL_NS[$i]=$pid
        ip link add "cl-n$i" type veth peer name eth0 netns "$pid"
        ip link set "cl-n$i" master clbr up
        cl_in "$i" ip link set lo up
        cl_in "$i" ip addr add "$(cl_ip "$i")/24" dev eth0
        cl_in "$i" ip link set eth0 up
    done
}

# cl_redis [NAME]: the directory's redis on the host side of the bridge
# (no persistence: a restart loses everything, the nodes report again),
# with redis_password's password (the instances reach that address too);
# its log is $T/NAME.log (default redis).
cl_redis() {
    local name=${1:-redis}
    redis_password
    start "$name" redis-server --bind "$CL_NET.1" --port 6379 --protected-mode no --save '' \
        --appendonly no --dir "$T" --requirepass "$REDISCLI_AUTH"
    CL_PID[redis]=$LAST_PID
    wait_log "$T/$name.log" 'Ready to accept connections' 10 "$LAST_PID"
}

# cl_users N: N users (user0001...) with certificates and a day of data each,
# their state in the store $SG/db, readable for the instances where needed.
cl_users() {
    sg_provision "$1"
    # the instances (uids of their own) pass through to their directories
    # and read the clients' CA; the store is root's (the hooks run as root)
    chmod 711 "$T" "$SG"
    chmod 644 "$SG/ca.pem"
    chmod 700 "$SG/db" "$SG/users"
}

# cl_node N: node N's two airlocks in its namespace, as a DaemonSet (pool)
# and a Deployment (router) would run them: "pN" with the directory (node
# nN) and the pool grid of CL_MIN_IDLE (2) standby smartgrid instances (at most CL_MAX, 6),
# control socket $T/nN/ctl.sock, metrics 127.0.0.1:9100; "rN" with the
# router (PROXY v2 from HAProxy), metrics on the node's address :9101 (HAProxy
# checks its /readyz). Logs $T/pN.log,
# $T/rN.log.
cl_node() {
    cl_pool "$1"
    cl_router "$1"
}
# cl_dir_yaml: the directory block every airlock of the cluster has.
cl_dir_yaml() {
    cat <<EOF
directory:
  backend: redis
  redis: tcp:$CL_REDIS
  redis_password_file: $T/redis.pw
  prefix: "$CL_PREFIX"
  reserve_timeout: 10s
  assign_wait: 5s
  # every user of the test connects from 127.0.0.1 (HAProxy passes it on),
  # and t_cluster_redis reserves every idle instance at once
  max_pending_per_client: 0
  pending_share: 100
EOF
}
cl_pool() {
    local i=$1 u0
    mkdir -p "$T/n$i"
    chmod 711 "$T/n$i"
    [ -n "${CL_UIDS[$i]:-}" ] || CL_UIDS[$i]=$(free_uids $((CL_MAX + 4)))
    u0=${CL_UIDS[$i]}
    {
        echo "log_level: debug"
        echo "metrics: tcp:127.0.0.1:9100"
        echo "control: unix:$T/n$i/ctl.sock"
        echo "drain_timeout: 5s"
        cl_dir_yaml
        echo "  node: n$i"
        POOL_ADDR=$(cl_ip "$i") POOL_UIDS=$u0-$((u0 + CL_MAX + 3)) "$ROOT/apps/smartgrid/pool-yaml.sh" \
            "$SG_BIN" "$SG" "$SG/db" "$T/n$i/inst" 20000-$((20000 + CL_MAX + 3)) "$CL_MIN_IDLE" \
            "$CL_MAX" "$CL_MIN_IDLE" 60s "$SG_DOMAIN"
    } >"$T/n$i/pool.yaml"
    "$AIRLOCK" check -c "$T/n$i/pool.yaml" >/dev/null || fail "node $i: airlock check failed"
    # a restart: the earlier run's log aside (its lines would match the waits)
    [ ! -e "$T/p$i.log" ] || mv "$T/p$i.log" "$T/p$i.log.$(date +%s%N)"
    start "p$i" nsenter --net="/proc/${CL_NS[$i]}/ns/net" -- "$AIRLOCK" run -c "$T/n$i/pool.yaml"
    CL_PID[p$i]=$LAST_PID
    wait_log "$T/p$i.log" 'airlock running' 20 "$LAST_PID"
}
cl_router() {
    local i=$1
    {
        echo "log_level: debug"
        echo "metrics: tcp:$(cl_ip "$i"):9101"
        echo "drain_timeout: 2s"
        cl_dir_yaml
        cat <<EOF
routers:
  - name: grid
    listen: tcp:$(cl_ip "$i"):8443
    accept_proxy: v2
    send_proxy: v2
    directory: grid
    domain: grid.$SG_DOMAIN
EOF
    } >"$T/n$i/router.yaml"
    "$AIRLOCK" check -c "$T/n$i/router.yaml" >/dev/null || fail "node $i: airlock check failed"
    [ ! -e "$T/r$i.log" ] || mv "$T/r$i.log" "$T/r$i.log.$(date +%s%N)"
    start "r$i" nsenter --net="/proc/${CL_NS[$i]}/ns/net" -- "$AIRLOCK" run -c "$T/n$i/router.yaml"
    CL_PID[r$i]=$LAST_PID
    wait_log "$T/r$i.log" 'airlock running' 20 "$LAST_PID"
}
declare -A CL_UIDS=()

# cl_haproxy: HAProxy on 127.0.0.1:8443 spreading TLS connections (TCP mode,
# round robin) over the three routers with PROXY v2; health checks ask each
# router's /readyz (its metrics listener, :9101) every 300 ms: a router that
# is gone, or whose directory cannot reach redis, is down after 2 failures.
# Its admin socket is $T/haproxy.sock.
cl_haproxy() {
    cat >"$T/haproxy.cfg" <<EOF
global
    stats socket $T/haproxy.sock level admin
    log stdout format raw daemon info
defaults
    mode tcp
    log global
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 2
    option redispatch
frontend tls
    bind 127.0.0.1:8443
    default_backend routers
backend routers
    balance roundrobin
    option httpchk GET /readyz
    default-server send-proxy-v2 check port 9101 inter 300ms fall 2 rise 2
    server n1 $(cl_ip 1):8443
    server n2 $(cl_ip 2):8443
    server n3 $(cl_ip 3):8443
EOF
    haproxy -c -f "$T/haproxy.cfg" >/dev/null || fail "haproxy refused its config"
    start haproxy haproxy -db -f "$T/haproxy.cfg"
    CL_PID[haproxy]=$LAST_PID
    wait_for tcp_up 8443
}

# cl_server_state NAME: UP or DOWN, router NAME (n1..n3) as HAProxy's health
# checks see it; cl_server_is NAME STATE.
cl_server_state() {
    echo "show servers state routers" | socat - "UNIX-CONNECT:$T/haproxy.sock" |
        awk -v s="$1" '$4 == s { print ($6 == 2 ? "UP" : "DOWN") }'
}
cl_server_is() { [ "$(cl_server_state "$1")" = "$2" ]; }

# cl_idle N: the directory has at least N idle instances.
cl_idle() { [ "$(rcli SCARD "${CL_PREFIX}idle:grid")" -ge "$1" ]; }

# cl_up: the whole cluster, every router UP at HAProxy, 6 standby instances.
cl_up() {
    cl_net
    cl_redis
    cl_users "${1:-6}"
    local i
    for i in 1 2 3; do cl_node "$i"; done
    cl_haproxy
    for i in n1 n2 n3; do wait_until 20 cl_server_is "$i" UP || fail "router $i not UP"; done
    wait_until 30 cl_idle $((3 * CL_MIN_IDLE)) ||
        fail "not $((3 * CL_MIN_IDLE)) idle instances: $(rcli SMEMBERS "${CL_PREFIX}idle:grid")"
    log "cluster up: 3 nodes, redis, HAProxy; $((3 * CL_MIN_IDLE)) standby instances"
}

# ---- the ledger: which key is on which instance

# cl_ledger: "KEY NAME STATE" for every instance reserved or active, one
# atomic snapshot of the directory (one script).
cl_ledger() {
    rcli EVAL "
local out = {}
for _, n in ipairs(redis.call('SMEMBERS', ARGV[1] .. 'pool:grid')) do
  local h = redis.call('HMGET', ARGV[1] .. 'i:grid:' .. n, 'key', 'state')
  if h[2] == 'reserved' or h[2] == 'active' then out[#out + 1] = h[1] .. ' ' .. n .. ' ' .. h[2] end
end
return out" 0 "$CL_PREFIX"
}

# cl_ledger_watch: samples the ledger every 50 ms until the test ends; a key
# on two instances at once goes to $T/ledger.bad (cl_ledger_check). A sample
# while redis is away counts nothing (under set -e its failure ended the
# sampler, silently, at a test's first redis restart).
cl_ledger_watch() {
    (
        while [ -d "$T" ]; do
            if cl_ledger >"$T/ledger.now" 2>/dev/null; then
                awk 'seen[$1]++ { print "key " $1 " on two instances at once" }' "$T/ledger.now" \
                    >>"$T/ledger.bad"
                echo >>"$T/ledger.samples"
            fi
            sleep 0.05
        done
    ) &
    PIDS+=($!)
}
# cl_ledger_check: fails when the watcher saw a key on two instances.
cl_ledger_check() {
    [ ! -s "$T/ledger.bad" ] || fail "the ledger: $(sort -u "$T/ledger.bad" | head -5)"
    log "ledger: no key was ever on two instances ($(wc -l <"$T/ledger.samples") samples)"
}

# ---- users

# cl_alarms USER: how many alarms USER's committed state (in the store) holds.
cl_alarms() { sg_sql "$1" "$SG/db/$1.db" "SELECT count(*) FROM alarms;"; }
cl_alarms_are() { [ "$(cl_alarms "$1")" = "$2" ]; }

# cl_node_of USER: the node (1-3) of the instance the directory has USER on.
cl_node_of() {
    local n
    n=$(cl_ledger | awk -v u="$1" '$1 == u { print $2 }')
    n=${n#grid-n}
    echo "${n%%-*}"
}

# cl_login USER: logs USER in through HAProxy (SG_TOKEN); retries for up to
# 20 s while the cluster routes around a failure (a refused connection or
# handshake, a 503 while the state is not there yet).
cl_login() {
    local code="" t
    for t in $(seq 40); do
        SG_TOKEN=
        code=$(sg_post "$1" /login "{\"key\":\"$(sg_key "$1")\"}")
        [ "$code" = 200 ] && break
        sleep 0.5
    done
    [ "$code" = 200 ] || fail "login of $1 through HAProxy: HTTP $code $(cat "$T/body" 2>/dev/null)"
    SG_TOKEN=$(sed -n 's/.*"token":"\([0-9a-f]*\)".*/\1/p' "$T/body")
}

# cl_write USER: one alarm into USER's session (HTTP 200 expected).
cl_write() {
    local code
    code=$(sg_post "$1" /write '{"alarms":[{"metric":"power","threshold":3}]}')
    [ "$code" = 200 ] || fail "write of $1: HTTP $code $(cat "$T/body" 2>/dev/null)"
}

# cl_logout USER: ends USER's session; the pool stores the state back.
cl_logout() {
    local code
    code=$(sg_post "$1" /logout '')
    [ "$code" = 200 ] || fail "logout of $1: HTTP $code"
    SG_TOKEN=
}

# cl_session USER: login, one write, logout, and waits until the store holds
# the write (committed): USER's alarms in the store go up by one.
cl_session() {
    local before
    before=$(cl_alarms "$1")
    cl_login "$1"
    cl_write "$1"
    cl_logout "$1"
    wait_until 20 cl_alarms_are "$1" $((before + 1)) ||
        fail "$1's write was not committed: $(cl_alarms "$1") alarms, expected $((before + 1))"
}

# cl_count FILE REGEX: how many lines of FILE match (0 when none).
cl_count() { grep -cE "$2" "$1" || true; }
# cl_more FILE REGEX N: FILE has more than N such lines (for wait_until).
cl_more() { [ "$(cl_count "$1" "$2")" -gt "$3" ]; }
