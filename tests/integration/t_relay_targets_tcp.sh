#!/bin/bash
# t_relay_targets_tcp: targets: on tcp (t_relay_targets has hvsock):
#   - least_conn spreads held connections A, B, A, B (ties go by order) and
#     the gauges say 2 and 2, then 0 and 0 once they end; their close lines
#     name their targets;
#   - a target that accepts and resets at once: each connection to it is
#     reset (the reset came after the connect was seen through) or fails
#     over to A (it came before); one held through A goes on;
#   - the health checks and the failed and reset connections leave no file
#     descriptor behind (the count comes back to its baseline);
#   - the target whose port closes is marked down by its checks alone (no
#     connection needed) and up again when something listens again.
. "$(dirname "$0")/lib.sh"
need socat curl python3

read -r PA PB PL PM <<<"$(free_ports 4)"
A="tcp:127.0.0.1:$PA"
B="tcp:127.0.0.1:$PB"
cat >"$T/airlock.yaml" <<EOF
metrics: tcp:127.0.0.1:$PM
drain_timeout: 2s
relays:
  - name: lc
    listen: tcp:127.0.0.1:$PL
    targets: [$A, $B]
    balance: least_conn
    health: {interval: 300ms, timeout: 2s, fall: 2, rise: 1}
EOF
# server NAME PORT: says NAME, then echoes; its pid in $LAST_PID
server() {
    start "srv-$1" socat TCP-LISTEN:"$2",bind=127.0.0.1,reuseaddr,fork SYSTEM:"echo $1; exec cat"
    wait_port "$2"
}
ask() { timeout 20 socat -t 15 - TCP:127.0.0.1:"$PL" </dev/null 2>/dev/null || true; }
open_to() { metric airlock_relay_target_connections "relay=\"lc\",target=\"$1\"" "$PM"; }
open_is() { [ "$(open_to "$1")" = "$2" ]; }
up_is() { [ "$(metric airlock_relay_target_up "relay=\"lc\",target=\"$1\"" "$PM")" = "$2" ]; }
declare -A CPID=()
client() { # NAME DEVICE: a held connection that DEVICE must answer
    held "$1" socat -t 15 - TCP:127.0.0.1:"$PL"
    CPID[$1]=$LAST_PID
    wait_log "$T/$1.out" '^[ab]$' 10
    [ "$(head -1 "$T/$1.out")" = "$2" ] || fail "client $1 is not on ${2^^}: $(cat "$T/$1.out")"
}

server a "$PA"
server b "$PB"
SRV_B=$LAST_PID
airlock_up relay run -c "$T/airlock.yaml"
RELAY=$LAST_PID
BASE=$(fd_count "$RELAY") # (a check in flight may add one: compared with -le)

log "least_conn: A, B, A, B"
client c1 a
client c2 b
client c3 a
client c4 b
open_is "$A" 2 && open_is "$B" 2 || fail "open: A $(open_to "$A") B $(open_to "$B"), expected 2 2"
for c in c1 c2 c3 c4; do kill "${CPID[$c]}"; done
poll_until 10 open_is "$A" 0 || fail "A's connections did not go back to 0"
poll_until 10 open_is "$B" 0 || fail "B's connections did not go back to 0"
# each close line names the target its connection went to
closes_to() { [ "$(grep -c "close relay=lc conn=[0-9]* client=[^ ]* target=$1 " "$T/relay.log")" = "$2" ]; }
poll_until 10 closes_to "$A" 2 && closes_to "$B" 2 ||
    fail "close lines: $(grep 'close relay=lc' "$T/relay.log")"

log "B's port closed: down by its checks alone (no connection tried it)"
stop "$SRV_B" || true
wait_log "$T/relay.log" "relay=lc target=$B down" 20 "$RELAY"
up_is "$B" 0 || fail "B not down in the metrics"

log "B accepts and resets: up again, its connections reset or fail over, A's go on"
start reset-b python3 -c '
import socket, struct, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
while True:
    c, _ = s.accept()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
' "$PB"
wait_port "$PB"
wait_log "$T/relay.log" "relay=lc target=$B up" 20 "$RELAY"
client h a # A holds one: least_conn sends the next ones to B
for i in 1 2 3 4; do
    # the reset comes before or after the connect is seen through: a reset
    # connection, or a failed connect that fails over to A
    out=$(ask)
    [ -z "$out" ] || [ "$out" = a ] || fail "connection $i got '$out'"
done
held_say h ping
wait_log "$T/h.out" '^ping$' 10
kill "${CPID[h]}"
poll_until 10 open_is "$A" 0 || fail "A's connections did not end"
poll_until 10 open_is "$B" 0 || fail "B's connections did not end"
running "$RELAY" || fail "airlock died"

log "no file descriptor left behind by checks, failures and resets"
poll_until 10 eval '[ "$(fd_count "$RELAY")" -le "$BASE" ]' ||
    fail "fds: $(fd_count "$RELAY"), baseline $BASE"

stop_clean "$RELAY" relay
