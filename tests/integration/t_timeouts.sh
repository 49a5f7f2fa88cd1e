#!/bin/bash
# t_timeouts: the relay's timers close what they must and only that:
#   - idle_timeout (1 s) closes a connection on which nothing moves, within
#     the timeout plus a margin (end=idle_timeout);
#   - it leaves alone connections that stay busy for 3 s, whether the client
#     or the server is the one talking (end=eof);
#   - connect_timeout (1 s) closes the client of a target that never answers
#     the SYN (a listener whose accept queue is full drops further SYNs),
#     with end=connect_timeout, counted in airlock_connect_errors_total.
. "$(dirname "$0")/lib.sh"

read -r SERVER FRONT <<<"$(free_ports 2)"
airlock_up idle relay "tcp:127.0.0.1:$FRONT" "tcp:127.0.0.1:$SERVER" --idle-timeout 1s
idle_pid=$LAST_PID

# client_ms ARGS...: runs a netpeer client; prints how long it took (ms).
client_ms() {
    local t0
    t0=$(date +%s%N)
    timeout 15 "$NETPEER" connect "$@" || fail "client $*: status $?"
    elapsed_ms "$t0" >"$T/ms"
}

log "an idle connection is closed after 1 s"
timeout 15 "$NETPEER" listen "tcp:127.0.0.1:$SERVER" --no-shut </dev/null >/dev/null &
srv=$!
wait_for tcp_up "$SERVER"
client_ms "tcp:127.0.0.1:$FRONT" --no-shut </dev/null >/dev/null
ms=$(cat "$T/ms")
log "closed after $ms ms"
[ "$ms" -ge 900 ] && [ "$ms" -le 4000 ] || fail "idle connection closed after $ms ms, not about 1000"
wait "$srv" || fail "server: status $?"
wait_ends "$T/idle.log" idle_timeout 1 # the client saw the close before the line

slow_lines() { for i in $(seq 1 10); do echo "line $i"; sleep 0.3; done; }
seq_lines() { for i in $(seq 1 10); do echo "line $i"; done; }

log "a connection on which the client talks every 0.3 s for 3 s stays open"
timeout 15 "$NETPEER" listen "tcp:127.0.0.1:$SERVER" --no-shut </dev/null >"$T/server.got" &
srv=$!
wait_for tcp_up "$SERVER"
slow_lines | client_ms "tcp:127.0.0.1:$FRONT" >/dev/null
wait "$srv" || fail "server: status $?"
[ "$(cat "$T/server.got")" = "$(seq_lines)" ] || fail "the server did not get every line"
log "took $(cat "$T/ms") ms"

log "a connection on which the server talks every 0.3 s for 3 s stays open"
slow_lines | timeout 15 "$NETPEER" listen "tcp:127.0.0.1:$SERVER" >/dev/null &
srv=$!
wait_for tcp_up "$SERVER"
client_ms "tcp:127.0.0.1:$FRONT" --no-shut </dev/null >"$T/client.got"
wait "$srv" || fail "server: status $?"
[ "$(cat "$T/client.got")" = "$(seq_lines)" ] || fail "the client did not get every line"
log "took $(cat "$T/ms") ms"
wait_ends "$T/idle.log" eof 2
[ "$(ends "$T/idle.log" idle_timeout)" = 1 ] || fail "a busy connection hit the idle timeout"
stop_clean "$idle_pid" idle

log "connect timeout: a target that drops SYNs"
read -r HOLE FRONT M <<<"$(free_ports 3)"
start hole "$NETPEER" blackhole "tcp:127.0.0.1:$HOLE"
wait_for grep -q ready "$T/hole.log"
airlock_up ctimeout relay "tcp:127.0.0.1:$FRONT" "tcp:127.0.0.1:$HOLE" --connect-timeout 1s \
    --metrics "tcp:127.0.0.1:$M"
ct_pid=$LAST_PID
client_ms "tcp:127.0.0.1:$FRONT" --no-shut </dev/null >/dev/null
ms=$(cat "$T/ms")
log "closed after $ms ms"
[ "$ms" -ge 900 ] && [ "$ms" -le 4000 ] || { cat "$T/ctimeout.log" >&2; fail "closed after $ms ms, not about 1000"; }
wait_ends "$T/ctimeout.log" connect_timeout 1
[ "$(metric airlock_connect_errors_total 'relay="relay1"' "$M")" = 1 ] ||
    fail "airlock_connect_errors_total is not 1"
stop_clean "$ct_pid" ctimeout
log "pass"
