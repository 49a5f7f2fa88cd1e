#!/bin/bash
# t_demo_relay: scripts/demo-relay.sh (the enclave picture: redis in a loopback-only
# network namespace, reached through host relay -> hvsock -> enclave relay)
# runs with DEMO_SECONDS and the binary under test, redis answers through the
# chain, and it stops by itself cleanly: exit 0, no namespace, process or run
# directory left behind.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
for tool in redis-server redis-cli redis-benchmark curl ip nsenter setsid; do
    command -v "$tool" >/dev/null || skip "$tool not installed"
done
NS=airlock-t$$
ip netns add "$NS-probe" 2>/dev/null || skip "cannot create network namespaces here"
ip netns del "$NS-probe"

# if the demo fails half-way, do not leave its namespace and processes behind
leftovers() {
    local pid
    for pid in $(grep -o ' pid [0-9]*' "$T/demo.out" 2>/dev/null | cut -d' ' -f3); do
        running "$pid" && kill -KILL "$pid" 2>/dev/null
    done
    ip netns del "$NS" 2>/dev/null || true
}
trap 'leftovers; cleanup' EXIT

rc=0
DEMO_SECONDS=3 AIRLOCK=$AIRLOCK DEMO_NETNS=$NS DEMO_PORT=$(free_port) \
    DEMO_METRICS_PORT=$(free_port) timeout -k 5 90 bash "$ROOT/scripts/demo-relay.sh" \
    </dev/null >"$T/demo.out" 2>&1 || rc=$?
out=$T/demo.out
[ "$rc" = 0 ] || fail "demo exited with $rc: $(tail -15 "$out")"

log "redis answered through the chain"
grep -A1 -- '-p [0-9]* ping$' "$out" | has -x PONG || fail "no PONG through the chain"
grep -A1 -- 'get airlock:greeting$' "$out" | has -x 'hello from the enclave' || fail "GET did not answer"
grep -q 'SET: .* requests per second' "$out" || fail "redis-benchmark did not run"
total=$(awk '$1 == "airlock_connections_total{relay=\"host\"}" { print $2 }' "$out")
[ -n "$total" ] && [ "$total" -gt 4 ] || fail "host relay metrics missing or not counting: '$total'"
grep -q 'airlock_connections_total{relay="enclave"} [1-9]' "$out" || fail "enclave relay metrics missing"

log "redis ran in the namespace, which had only loopback"
redis_pid=$(sed -n 's/^  redis-server   pid \([0-9]*\) .*/\1/p' "$out")
[ -n "$redis_pid" ] || fail "no redis pid printed"
grep -A1 "ip netns identify $redis_pid" "$out" | has -x "$NS" || fail "redis was not in $NS"
grep -qx "process_id:$redis_pid" "$out" || fail "the redis that answered is not the one in $NS"
ifaces=$(sed -n "/ip -n $NS addr/,/ip -n $NS route/p" "$out" | grep -E '^[0-9]+: ' | cut -d: -f2 | tr -d ' ')
[ "$ifaces" = lo ] || fail "the namespace had interfaces: $ifaces"

log "stopped cleanly, nothing left behind"
grep -q '^demo stopped cleanly' "$out" || fail "no clean stop: $(tail -8 "$out")"
for what in "host relay" "enclave relay" "redis-server"; do
    grep -q "^  $what (pid [0-9]*) stopped" "$out" || fail "$what did not stop cleanly"
done
! ip netns list | has -w -- "$NS" || fail "namespace $NS left behind"
for pid in $(grep -o ' pid [0-9]*' "$out" | cut -d' ' -f3 | sort -u); do
    running "$pid" && fail "pid $pid ($(cat "/proc/$pid/comm" 2>/dev/null)) left running"
done
run=$(sed -n 's/^  run dir \(.*\) removed$/\1/p' "$out")
[ -n "$run" ] || fail "run dir not reported removed"
[ ! -e "$run" ] || fail "run dir $run left behind"
! pgrep -f -- "$run" >/dev/null || fail "processes using $run left: $(pgrep -af -- "$run")"
log "ok"
