#!/bin/bash
# demo-relay.sh - the relay pair alone, with redis in an "enclave" (make demo-relay).
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

. "$ROOT/scripts/demo-lib.sh"
demo_begin redis-server redis-cli redis-benchmark curl ip nsenter setsid ss -- "$PORT" "$MPORT"
REDIS_PID="" ENCLAVE_PID="" HOST_PID=""

# the host side first (stops accepting, drains), then the enclave side
stop_all() {
    halt "host relay" "$HOST_PID" TERM 5
    halt "enclave relay" "$ENCLAVE_PID" TERM 5
    halt "redis-server" "$REDIS_PID" TERM 10
}

redis_up() { [ "$(in_ns redis-cli -p 6379 ping 2>/dev/null)" = PONG ]; }
make_enclave

ns_daemon "$RUN/redis.out" redis-server --bind 127.0.0.1 --port 6379 --save '' \
    --appendonly no --dir "$RUN" --logfile "$RUN/redis.log" --daemonize no
REDIS_PID=$LAST_PID
wait_until 10 redis_up
alive "$REDIS_PID" redis-server redis-server "$RUN/redis.log"

ns_daemon "$RUN/enclave-relay.log" "$AIRLOCK" relay "hvsock:$RUN/enclave.sock:6379" \
    tcp:127.0.0.1:6379 --name enclave --metrics "unix:$RUN/enclave-metrics.sock" \
    --drain-timeout 2s --threads 1
ENCLAVE_PID=$LAST_PID
wait_socket "$RUN/enclave.sock"
alive "$ENCLAVE_PID" "$(airlock_comm)" "enclave relay" "$RUN/enclave-relay.log"

start_host_relay 6379

cat <<EOF

== started (run dir $RUN)
  namespace      $NETNS: the enclave, no network but loopback
  redis-server   pid $REDIS_PID in $NETNS: tcp:127.0.0.1:6379 (unmodified)
  enclave relay  pid $ENCLAVE_PID in $NETNS: hvsock:$RUN/enclave.sock:6379 -> tcp:127.0.0.1:6379
                 metrics unix:$RUN/enclave-metrics.sock
  host relay     pid $HOST_PID on the host: tcp:127.0.0.1:$PORT -> hvsock:$RUN/enclave.sock:6379
                 metrics tcp:127.0.0.1:$MPORT
EOF
show_enclave_net "$REDIS_PID"

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
demo_wait
