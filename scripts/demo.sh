#!/bin/bash
# demo.sh - the enclave picture on one machine (run by `make demo`).
#
#   redis-cli ──tcp:127.0.0.1:16379──▶ host relay ──hvsock:RUN/enclave.sock:6379──┐
#                                      (host)                                      │
#   ┌─ network namespace airlock-demo: only lo, like an enclave without a NIC ─────┤
#   │  redis-server tcp:127.0.0.1:6379 ◀── enclave relay ◀─────────────────────────┘
#   └──────────────────────────────────────────────────────────────────────────────
#
# The "enclave" is a network namespace with nothing but loopback; an
# unmodified redis-server runs in it. Its only way out is the hybrid vsock
# face (a unix socket in the shared filesystem, as Firecracker and Cloud
# Hypervisor expose vsock), served by the enclave-side relay. The host-side
# relay turns a host TCP port into that vsock channel and serves metrics.
# The demo runs a few redis commands and a short redis-benchmark through the
# chain, prints the metrics, then waits: Ctrl-C or SIGTERM stops everything
# (relays drained, redis stopped, namespace deleted, run directory removed).
#
# Needs root (network namespaces). Environment:
#   AIRLOCK            binary to run (default: build/airlock)
#   DEMO_SECONDS       stop by itself after that many seconds (default: wait)
#   DEMO_NETNS         namespace name (default: airlock-demo)
#   DEMO_PORT          host port of the redis relay (default: 16379)
#   DEMO_METRICS_PORT  host relay metrics port (default: 9100)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
AIRLOCK=${AIRLOCK:-$ROOT/build/airlock}
NETNS=${DEMO_NETNS:-airlock-demo}
PORT=${DEMO_PORT:-16379}
MPORT=${DEMO_METRICS_PORT:-9100}
SECONDS_TO_RUN=${DEMO_SECONDS:-}

die() {
    echo "demo: $*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || die "needs root to create a network namespace (try: sudo make demo)"
[ -x "$AIRLOCK" ] || die "no airlock binary at $AIRLOCK (run: make)"
for tool in redis-server redis-cli redis-benchmark curl ip nsenter setsid ss; do
    command -v "$tool" >/dev/null || die "$tool not found (run: scripts/deps.sh)"
done
[ -z "$SECONDS_TO_RUN" ] || [[ $SECONDS_TO_RUN =~ ^[0-9]+$ ]] || die "DEMO_SECONDS must be a whole number"
for p in "$PORT" "$MPORT"; do
    ! ss -Htln "sport = :$p" | grep -q . ||
        die "port $p is in use (set DEMO_PORT / DEMO_METRICS_PORT, or stop what uses it)"
done
! ip netns list | grep -qw -- "$NETNS" ||
    die "namespace $NETNS exists already: another demo running? (ip netns del $NETNS)"

RUN=$(mktemp -d /tmp/airlock-demo.XXXXXX)
NS_MADE=0
REDIS_PID="" ENCLAVE_PID="" HOST_PID="" SLEEP_PID=""
STATUS=0

# running PID: alive and not a zombie
running() {
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}

# halt NAME PID SIGNAL SECONDS: signal PID, wait for it, SIGKILL after SECONDS
halt() {
    local name=$1 pid=$2 i rc=0
    [ -n "$pid" ] || return 0
    kill "-$3" "$pid" 2>/dev/null || true
    for ((i = 0; i < $4 * 10; i++)); do
        running "$pid" || break
        sleep 0.1
    done
    if running "$pid"; then
        echo "  $name (pid $pid) did not stop in $4 s: killed"
        kill -KILL "$pid" 2>/dev/null || true
        STATUS=1
    fi
    wait "$pid" 2>/dev/null || rc=$?
    if [ "$rc" = 0 ]; then
        echo "  $name (pid $pid) stopped"
    else
        echo "  $name (pid $pid) exited with status $rc"
        STATUS=1
    fi
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ "$rc" = 0 ] || STATUS=$rc
    echo
    echo "== stopping"
    [ -z "$SLEEP_PID" ] || kill "$SLEEP_PID" 2>/dev/null || true
    # the host side first (stops accepting, drains), then the enclave side
    halt "host relay" "$HOST_PID" TERM 5
    halt "enclave relay" "$ENCLAVE_PID" TERM 5
    halt "redis-server" "$REDIS_PID" TERM 10
    if [ "$NS_MADE" = 1 ]; then
        ip netns del "$NETNS" && echo "  namespace $NETNS deleted" || STATUS=1
    fi
    rm -rf "$RUN" && echo "  run dir $RUN removed"
    [ "$STATUS" = 0 ] && echo "demo stopped cleanly" || echo "demo stopped, with errors"
    exit "$STATUS"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# wait_until SECONDS COMMAND...: polls COMMAND every 0.1 s
wait_until() {
    local i n=$(($1 * 10))
    shift
    for ((i = 0; i < n; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "timed out waiting for: $*"
}
in_ns() { ip netns exec "$NETNS" "$@"; }
# ns_daemon CMD...: CMD in the namespace, in its own session (so that a Ctrl-C
# reaches only this script, which stops the children in order); nsenter and
# setsid exec without forking, so $! is CMD's pid
ns_daemon() { exec nsenter --net="/run/netns/$NETNS" setsid "$@"; }
redis_up() { [ "$(in_ns redis-cli -p 6379 ping 2>/dev/null)" = PONG ]; }
tcp_up() { ss -Htln "sport = :$1" | grep -q .; }
# alive PID COMM NAME LOG: PID is a running COMM
alive() {
    running "$1" || die "$3 exited at start: $(tail -3 "$4" 2>/dev/null)"
    [ "$(cat "/proc/$1/comm")" = "$2" ] || die "pid $1 is $(cat "/proc/$1/comm"), not $2"
}

echo "== starting the enclave: network namespace $NETNS with loopback only"
ip netns add "$NETNS"
NS_MADE=1
ip -n "$NETNS" link set lo up

ns_daemon redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no \
    --dir "$RUN" --logfile "$RUN/redis.log" --daemonize no </dev/null &
REDIS_PID=$!
wait_until 10 redis_up
alive "$REDIS_PID" redis-server redis-server "$RUN/redis.log"

ns_daemon "$AIRLOCK" relay "hvsock:$RUN/enclave.sock:6379" tcp:127.0.0.1:6379 --name enclave \
    --metrics "unix:$RUN/enclave-metrics.sock" --drain-timeout 2s --threads 1 \
    </dev/null 2>"$RUN/enclave-relay.log" &
ENCLAVE_PID=$!
wait_until 10 test -S "$RUN/enclave.sock"
alive "$ENCLAVE_PID" "$(basename "$AIRLOCK" | cut -c1-15)" "enclave relay" "$RUN/enclave-relay.log"

setsid "$AIRLOCK" relay "tcp:127.0.0.1:$PORT" "hvsock:$RUN/enclave.sock:6379" --name host \
    --metrics "tcp:127.0.0.1:$MPORT" --drain-timeout 2s </dev/null 2>"$RUN/host-relay.log" &
HOST_PID=$!
wait_until 10 tcp_up "$PORT"
wait_until 10 tcp_up "$MPORT"
alive "$HOST_PID" "$(basename "$AIRLOCK" | cut -c1-15)" "host relay" "$RUN/host-relay.log"

cat <<EOF

== started (run dir $RUN)
  namespace      $NETNS: the enclave, no network but loopback
  redis-server   pid $REDIS_PID in $NETNS: tcp:127.0.0.1:6379 (unmodified)
  enclave relay  pid $ENCLAVE_PID in $NETNS: hvsock:$RUN/enclave.sock:6379 -> tcp:127.0.0.1:6379
                 metrics unix:$RUN/enclave-metrics.sock
  host relay     pid $HOST_PID on the host: tcp:127.0.0.1:$PORT -> hvsock:$RUN/enclave.sock:6379
                 metrics tcp:127.0.0.1:$MPORT

== the enclave's network: loopback only, no routes
\$ ip -n $NETNS addr
EOF
ip -n "$NETNS" addr
echo "\$ ip -n $NETNS route   (empty)"
ip -n "$NETNS" route
echo "\$ ip netns identify $REDIS_PID"
ip netns identify "$REDIS_PID"

echo
echo "== a client on the host talks to redis in the enclave through the chain"
cli() {
    echo "\$ redis-cli -p $PORT $*"
    redis-cli -p "$PORT" "$@"
}
cli ping
cli set airlock:greeting "hello from the enclave"
cli get airlock:greeting
cli incr airlock:visits
cli info server | grep -E '^(redis_version|process_id|tcp_port):' | tr -d '\r'
echo "  (process_id is the redis-server pid in $NETNS, $REDIS_PID)"

echo
echo "\$ redis-benchmark -p $PORT -q -n 5000 -c 8 -t ping,set,get"
redis-benchmark -p "$PORT" -q -n 5000 -c 8 -t ping,set,get 2>&1 | tr '\r' '\n' |
    grep 'requests per second' | sed 's/^/  /'

echo
echo "== metrics of the host relay (curl -s http://127.0.0.1:$MPORT/metrics)"
curl -sf "http://127.0.0.1:$MPORT/metrics" | grep -v '^#' | sed 's/^/  /'
echo "== metrics of the enclave relay, out of the enclave over a unix socket"
curl -sf --unix-socket "$RUN/enclave-metrics.sock" http://enclave/metrics | grep -v '^#' |
    grep -E 'open|total\{relay="enclave"\}|bytes' | sed 's/^/  /'

cat <<EOF

== try it by hand (in another terminal)
  redis-cli -p $PORT                     # redis in the enclave, through both relays
  curl http://127.0.0.1:$MPORT/metrics     # host relay metrics
  curl --unix-socket $RUN/enclave-metrics.sock http://x/metrics
  ip netns exec $NETNS redis-cli ping   # inside the enclave
  tail -f $RUN/host-relay.log $RUN/enclave-relay.log $RUN/redis.log
EOF
if [ -n "$SECONDS_TO_RUN" ]; then
    echo "Stopping by itself in $SECONDS_TO_RUN s (DEMO_SECONDS); Ctrl-C stops it sooner."
    sleep "$SECONDS_TO_RUN" &
else
    echo "Ctrl-C (or SIGTERM) stops everything."
    sleep infinity &
fi
SLEEP_PID=$!
wait "$SLEEP_PID" || true
SLEEP_PID=""
