#!/bin/bash
# t_fd_storm: 5,000 connections that end badly leave no file descriptor
# behind. netpeer storm spreads them over five relays of one process (splice,
# buffers, a unix listener, a target that refuses, a PROXY v2 listener that
# gets garbage) and ends them in turn by close at once, RST at once, half a
# request then close, the same then RST, a full round trip, a 4 MiB reply
# aborted after its first bytes (the rest still in flight in the relay);
# every 97th is held open until the idle timeout (1 s) closes it. Afterwards:
#   - every connection is accounted for (total = closed = close lines
#     logged, none open);
#   - the relay holds exactly as many sockets and other fds as before, and
#     no new pipe except whole pairs in the workers' spare cache, which is
#     bounded (WORKER_SPARE_PIPES = 64 pairs per worker). Its size depends on
#     how many pumps held data at once, so it is not compared exactly with
#     the warm-up round's (which is printed); a leak would be far above the
#     bound: over a thousand connections are aborted with data in flight.
. "$(dirname "$0")/lib.sh"
command -v redis-server >/dev/null || skip "redis-server not installed"

read -r REDIS M DEAD A B C P <<<"$(free_ports 7)"
THREADS=2 SPARE_PIPES=64
cat >"$T/airlock.yaml" <<EOF
threads: $THREADS
metrics: tcp:127.0.0.1:$M
drain_timeout: 2s
relays:
  - name: splice
    listen: tcp:127.0.0.1:$A
    target: tcp:127.0.0.1:$REDIS
    idle_timeout: 1s
  - name: buffers
    listen: tcp:127.0.0.1:$B
    target: tcp:127.0.0.1:$REDIS
    idle_timeout: 1s
    splice: false
  - name: unix
    listen: unix:$T/storm.sock
    target: tcp:127.0.0.1:$REDIS
    idle_timeout: 1s
  - name: refused
    listen: tcp:127.0.0.1:$C
    target: tcp:127.0.0.1:$DEAD
  - name: proxy
    listen: tcp:127.0.0.1:$P
    target: tcp:127.0.0.1:$REDIS
    accept_proxy: v2
EOF
start redis redis-server --port "$REDIS" --bind 127.0.0.1 --save '' --appendonly no
wait_for tcp_up "$REDIS"
# "GET big" in the storm: 4 MiB that the client never reads, so that an
# abort finds bytes still in the relay's pipes and buffers
gen_data big $((4 << 20)) | redis-cli -p "$REDIS" -x SET big >/dev/null
airlock_up relay run -c "$T/airlock.yaml"
relay=$LAST_PID
ADDRS=("tcp:127.0.0.1:$A" "tcp:127.0.0.1:$B" "unix:$T/storm.sock" "tcp:127.0.0.1:$C"
    "tcp:127.0.0.1:$P")
read -r s0 p0 o0 <<<"$(fd_kinds "$relay")"
log "baseline: $s0 sockets, $p0 pipes, $o0 other"

# sum NAME: a metric summed over every relay.
sum() { curl -sf "http://127.0.0.1:$M/metrics" | awk -v n="$1" 'index($1, n "{") == 1 { s += $2 } END { print s + 0 }'; }
none_open() { [ "$(sum airlock_connections_open)" = 0 ]; }

# storm N ARGS...: N connections; then waits until none is open.
storm() {
    local t0
    t0=$(date +%s%N)
    timeout 120 "$NETPEER" storm "$@" "${ADDRS[@]}" || fail "netpeer storm failed"
    wait_for none_open
    log "$1 connections in $(elapsed_ms "$t0") ms"
}

storm 250
read -r s1 p1 o1 <<<"$(fd_kinds "$relay")"
log "after the warm-up: $s1 sockets, $p1 pipes, $o1 other"

storm 5000 --hold-every 97 --hold-ms 1500
read -r s2 p2 o2 <<<"$(fd_kinds "$relay")"
log "after the storm: $s2 sockets, $p2 pipes, $o2 other"
grep 'close relay=' "$T/relay.log" | sed 's/.* end=//' | sort | uniq -c | sed 's/^/#/'

total=$(sum airlock_connections_total) closed=$(sum airlock_connections_closed_total)
log "connections: total=$total closed=$closed refused=$(sum airlock_connections_refused_total)"
[ "$total" = 5250 ] || fail "the relays accepted $total connections, not 5250"
[ "$closed" = 5250 ] || fail "the relays closed $closed connections, not 5250"
# the counters move before a worker logs its close line
close_lines() { [ "$(grep -c 'close relay=' "$T/relay.log")" = 5250 ]; }
wait_for close_lines
[ "$(ends "$T/relay.log" idle_timeout)" -gt 0 ] || fail "no held connection met the idle timeout"
[ "$(ends "$T/relay.log" connect_failed)" -gt 0 ] || fail "no connect_failed"
[ "$(ends "$T/relay.log" bad_preamble)" -gt 0 ] || fail "no bad_preamble"
[ "$(ends "$T/relay.log" reset)" -gt 0 ] || fail "no reset"
[ "$(ends "$T/relay.log" error)" = 0 ] || fail "connections ended with end=error"

log "the relay still serves clean replies (spare pipes hold no stale bytes)"
for r in "tcp:127.0.0.1:$A" "unix:$T/storm.sock"; do
    if [ "${r%%:*}" = tcp ]; then where=(-p "${r##*:}"); else where=(-s "${r#unix:}"); fi
    out=$(timeout 60 redis-benchmark "${where[@]}" -n 20000 -c 200 -t set,get -d 100 -q 2>&1) ||
        fail "redis-benchmark through $r failed: $out"
    echo "$out" | tr '\r' '\n' | grep -iE 'error|protocol|reset' && fail "redis-benchmark through $r: errors"
    for _ in $(seq 1 20); do
        [ "$(timeout 10 redis-cli "${where[@]}" PING)" = PONG ] || fail "a PING through $r went wrong"
    done
done

[ "$s2" = "$s0" ] || fail "$((s2 - s0)) sockets leaked ($s0 before, $s2 after)"
[ "$o2" = "$o0" ] || fail "$((o2 - o0)) other fds leaked ($o0 before, $o2 after)"
[ $(((p2 - p0) % 2)) = 0 ] || fail "an odd number of new pipe ends ($p0 -> $p2): half a pipe leaked"
[ $((p2 - p0)) -le $((THREADS * SPARE_PIPES * 2)) ] || fail "$((p2 - p0)) pipe ends leaked"

stop_clean "$relay" relay
log "pass"
