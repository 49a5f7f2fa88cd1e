#!/bin/bash
# t_relay_targets: a relay with targets: (two hvsock devices, the unix-socket
# stand-ins of enclaves on CIDs 16 and 17: blue A and green B), checked by
# health: and picked by balance:
#   - first: every connection goes to A; A killed: the next connection goes
#     to B at once (its connect to A failed: it tries the next healthy target
#     once), A is marked down (log, airlock_relay_target_up 0); a connection
#     held through B is unaffected; A back: marked up after rise checks and
#     new connections go to A again, the held one still works;
#   - a reload to least_conn keeps the targets' state: with the held
#     connection on B, three more land A, A, B (ties go by order); a reload
#     while B is down keeps it down (up 0 at once, not after fall checks);
#   - a device that accepts and resets (no OK line) is marked down and its
#     connections fail over to B;
#   - all down: connections are closed at once ("no healthy target"),
#     /readyz 503 "relay=bg no healthy target".
. "$(dirname "$0")/lib.sh"
need socat curl python3

read -r PL PM <<<"$(free_ports 2)"
A="hvsock:$T/a.sock:5000"
B="hvsock:$T/b.sock:5000"
# conf BALANCE: the config, with health checks every 1s (fall 3, rise 2)
conf() {
    cat >"$T/airlock.yaml" <<EOF
metrics: tcp:127.0.0.1:$PM
drain_timeout: 2s
relays:
  - name: bg
    listen: tcp:127.0.0.1:$PL
    targets: ["$A", "$B"]
    balance: $1
    health: {interval: 1s, timeout: 2s, fall: 3, rise: 2}
EOF
}
# a device: answers the CONNECT line with OK, says its name, then echoes
cat >"$T/dev.sh" <<'EOF'
read -r line; echo "OK 5000"; echo "$1"; exec cat
EOF
# device NAME: starts it on $T/NAME.sock; its pid in $DEV_NAME
device() {
    rm -f "$T/$1.sock"
    start "dev-$1" socat UNIX-LISTEN:"$T/$1.sock",fork SYSTEM:"sh $T/dev.sh $1"
    printf -v "DEV_$1" %s "$LAST_PID"
    wait_for unix_up "$T/$1.sock"
}
# resetter NAME: a device that accepts and closes without reading: a reset
resetter() {
    rm -f "$T/$1.sock"
    start "reset-$1" python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(64)
while True:
    c, _ = s.accept()
    c.close()
' "$T/$1.sock"
    RESETTER=$LAST_PID
    wait_for unix_up "$T/$1.sock"
}
# ask: one connection that sends nothing; prints what the device said
ask() { timeout 20 socat -t 15 - TCP:127.0.0.1:"$PL" </dev/null 2>/dev/null || true; }
up() { metric airlock_relay_target_up "relay=\"bg\",target=\"$1\"" "$PM"; }
open_to() { metric airlock_relay_target_connections "relay=\"bg\",target=\"$1\"" "$PM"; }
open_is() { [ "$(open_to "$1")" = "$2" ]; }
# client NAME DEVICE: a held connection (in this shell), which DEVICE must
# answer; its pid in CPID[NAME] (a device started later holds its FIFO too:
# it ends by its pid)
declare -A CPID=()
client() {
    held "$1" socat -t 15 - TCP:127.0.0.1:"$PL"
    CPID[$1]=$LAST_PID
    wait_log "$T/$1.out" '^[ab]$' 10
    [ "$(head -1 "$T/$1.out")" = "$2" ] || fail "client $1 is not on ${2^^}: $(cat "$T/$1.out")"
}
readyz() { curl -s "http://127.0.0.1:$PM/readyz" || true; }
readyz_is() { [ "$(readyz)" = "$1" ]; }
RELOADS=0
reload() {
    conf "$1"
    kill -HUP "$RELAY"
    RELOADS=$((RELOADS + 1))
    poll_until 10 eval '[ "$(grep -c "reloaded" "$T/relay.log")" -ge $RELOADS ]' ||
        fail "no reload"
}

device a
device b
conf first
airlock_up relay run -c "$T/airlock.yaml"
RELAY=$LAST_PID

log "first: all to A"
for i in 1 2 3; do [ "$(ask)" = a ] || fail "connection $i did not go to A"; done
[ "$(up "$A")" = 1 ] && [ "$(up "$B")" = 1 ] || fail "targets not up: A $(up "$A") B $(up "$B")"
[ "$(metric airlock_relay_target_connections_total "relay=\"bg\",target=\"$A\"" "$PM")" = 3 ] ||
    fail "A's connections_total is not 3"
expect_ready() { poll_until 10 readyz_is ready || fail "/readyz: $(readyz)"; }
expect_ready

log "A killed: new connections go to B, A marked down"
stop "$DEV_a" || true
[ "$(ask)" = b ] || fail "the connection after A died did not go to B"
has "target=$A failed, trying target=$B" <"$T/relay.log" || fail "no failover line"
wait_log "$T/relay.log" "relay=bg target=$A down" 20 "$RELAY"
[ "$(up "$A")" = 0 ] || fail "A's up is $(up "$A") after its down line"
client h b
held_say h ping
wait_log "$T/h.out" '^ping$' 10
[ "$(ask)" = b ] || fail "a connection while A is down did not go to B"

log "A back: up after rise checks, new connections to A; the held one unaffected"
device a
wait_log "$T/relay.log" "relay=bg target=$A up" 20 "$RELAY"
[ "$(ask)" = a ] || fail "a connection after A came back did not go to A"
held_say h ping2
wait_log "$T/h.out" '^ping2$' 10

log "reload to least_conn keeps the targets' connections: A, A, B"
reload least_conn
client l1 a # B holds one
client l2 a # a tie goes to the first
client l3 b # A holds two, B one
open_is "$A" 2 && open_is "$B" 2 || fail "open: A $(open_to "$A") B $(open_to "$B"), expected 2 2"
held_say h ping3
wait_log "$T/h.out" '^ping3$' 10
for c in h l1 l2 l3; do kill "${CPID[$c]}"; done
poll_until 10 open_is "$A" 0 || fail "A's connections did not go back to 0"
poll_until 10 open_is "$B" 0 || fail "B's connections did not go back to 0"

log "a reload keeps a down target down"
stop "$DEV_b" || true
wait_log "$T/relay.log" "relay=bg target=$B down" 20 "$RELAY"
reload first
[ "$(up "$B")" = 0 ] || fail "B is up again right after the reload"
[ "$(ask)" = a ] || fail "a connection after the reload did not go to A"
device b
wait_log "$T/relay.log" "relay=bg target=$B up" 20 "$RELAY"

log "a device that accepts and resets: down, its connections fail over to B"
stop "$DEV_a" || true
resetter a
for i in 1 2 3; do [ "$(ask)" = b ] || fail "connection $i did not fail over to B"; done
poll_until 20 eval '[ "$(grep -c "relay=bg target=$A down" "$T/relay.log")" -ge 2 ]' ||
    fail "the resetting device was not marked down"
[ "$(ask)" = b ] || fail "a connection after A's reset did not go to B"
expect_ready

log "all down: refused at once, /readyz 503"
stop "$RESETTER" || true
stop "$DEV_b" || true
poll_until 20 readyz_is "relay=bg no healthy target" || fail "/readyz: $(readyz)"
[ "$(ask)" = "" ] || fail "a connection with every target down got an answer"
wait_log "$T/relay.log" "relay=bg conn=[0-9]* no healthy target: all 2 are down" 10 "$RELAY"

stop_clean "$RELAY" relay
