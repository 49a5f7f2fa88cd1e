#!/bin/bash
# t_refusals: what the relay refuses, it refuses at once and alone:
#   - an allowlist (10.0.0.0/8, 127.0.0.2) closes a client from 127.0.0.1
#     at once (reason=not_allowed) and serves one from 127.0.0.2;
#   - max_connections 2: the third connection is closed at once
#     (reason=max_connections, airlock_connections_refused_total), and a
#     slot freed is a slot usable again;
#   - a flood of 100 refused clients: each is counted, the log has a line a
#     second at most (quiet_before says how many went unlogged);
#   - a target that refuses connections: each client is closed at once
#     (end=connect_failed, airlock_connect_errors_total);
# while one connection held open through all of it keeps working. Three
# relays in one process (airlock run -c).
. "$(dirname "$0")/lib.sh"

read -r ECHO DEAD GOOD PRIV CLOSED M <<<"$(free_ports 6)"
cat >"$T/airlock.yaml" <<EOF
threads: 2
metrics: tcp:127.0.0.1:$M
drain_timeout: 2s
relays:
  - name: good
    listen: tcp:127.0.0.1:$GOOD
    target: tcp:127.0.0.1:$ECHO
    max_connections: 2
  - name: private
    listen: tcp:127.0.0.1:$PRIV
    target: tcp:127.0.0.1:$ECHO
    allow: [10.0.0.0/8, 127.0.0.2]
  - name: closed
    listen: tcp:127.0.0.1:$CLOSED
    target: tcp:127.0.0.1:$DEAD
EOF
start echo socat TCP-LISTEN:"$ECHO",bind=127.0.0.1,reuseaddr,fork PIPE
wait_for tcp_up "$ECHO"
airlock_up relay run -c "$T/airlock.yaml"
relay=$LAST_PID

# echo_on FD WORD: WORD comes back through the connection on FD.
echo_on() {
    local line
    echo "$2" >&"$1"
    read -r -t 5 line <&"$1" || fail "no echo of $2 on fd $1"
    [ "$line" = "$2" ] || fail "echo of $2 on fd $1 gave '$line'"
}

# closed_at_once ADDR: a client of ADDR is closed (EOF) within 2 s, having
# sent nothing.
closed_at_once() {
    local t0 ms
    t0=$(date +%s%N)
    timeout 5 "$NETPEER" connect "tcp:$1" --no-shut </dev/null >/dev/null || fail "client of $1: status $?"
    ms=$(elapsed_ms "$t0")
    [ "$ms" -lt 2000 ] || fail "client of $1 closed after $ms ms, not at once"
}

# open_is RELAY N: the relay has N connections open.
open_is() { [ "$(metric airlock_connections_open "relay=\"$1\"" "$M")" = "$2" ]; }

log "a connection held open through what follows"
exec 3<>"/dev/tcp/127.0.0.1/$GOOD"
echo_on 3 first

log "allowlist: 127.0.0.1 is refused at once, 127.0.0.2 is served"
closed_at_once "127.0.0.1:$PRIV"
# the refusal is logged after the close the client saw
wait_log "$T/relay.log" "refused relay=private client=127.0.0.1:[0-9]+ reason=not_allowed"
got=$(echo allowed | timeout 5 socat -t 2 - "TCP:127.0.0.1:$PRIV,bind=127.0.0.2")
[ "$got" = allowed ] || fail "a client from 127.0.0.2 was not served (got '$got')"

log "max_connections 2: the third connection is refused at once"
exec 4<>"/dev/tcp/127.0.0.1/$GOOD"
echo_on 4 second
closed_at_once "127.0.0.1:$GOOD"
wait_log "$T/relay.log" "refused relay=good client=127.0.0.1:[0-9]+ reason=max_connections"
[ "$(metric airlock_connections_refused_total 'relay="good"' "$M")" = 1 ] ||
    fail "airlock_connections_refused_total{relay=good} is not 1"
[ "$(metric airlock_connections_refused_total 'relay="private"' "$M")" = 1 ] ||
    fail "airlock_connections_refused_total{relay=private} is not 1"
log "a freed slot can be used again"
exec 4>&-
wait_for open_is good 1
exec 4<>"/dev/tcp/127.0.0.1/$GOOD"
echo_on 4 third
exec 4>&-

log "a flood of refused clients: each counted, a line a second at most"
t0=$(date +%s)
for _ in $(seq 1 100); do
    timeout 5 "$NETPEER" connect "tcp:127.0.0.1:$PRIV" --no-shut </dev/null >/dev/null || fail "flood: status $?"
done
wait_for eval '[ "$(metric airlock_connections_refused_total '"'"'relay="private"'"'"' "$M")" = 101 ]'
secs=$(($(date +%s) - t0 + 1))
lines=$(grep -c "refused relay=private " "$T/relay.log")
quiet=$(awk '/refused relay=private / { sub(/.*quiet_before=/, ""); n += $0 } END { print n + 0 }' "$T/relay.log")
log "101 refusals in ${secs} s: $lines lines, $quiet told as quiet_before"
[ "$lines" -le $((secs + 2)) ] || fail "$lines refusal lines in $secs s"
[ $((lines + quiet)) -le 101 ] || fail "$lines lines and $quiet quiet: more than the 101 refusals"

log "a target that refuses: 20 clients closed at once"
for _ in $(seq 1 20); do closed_at_once "127.0.0.1:$CLOSED"; done
wait_for open_is closed 0
wait_ends "$T/relay.log" connect_failed 20 # the gauge moves before the close line
[ "$(grep -c "connect to tcp:127.0.0.1:$DEAD failed: Connection refused" "$T/relay.log")" = 20 ] ||
    fail "not 20 'connect ... failed' lines"
[ "$(metric airlock_connect_errors_total 'relay="closed"' "$M")" = 20 ] ||
    fail "airlock_connect_errors_total{relay=closed} is not 20"

log "the held connection still works"
echo_on 3 last
exec 3>&-
wait_for open_is good 0
[ "$(metric airlock_connections_total 'relay="good"' "$M")" = 3 ] ||
    fail "airlock_connections_total{relay=good} is not 3"
[ "$(metric airlock_connections_refused_total 'relay="closed"' "$M")" = 0 ] ||
    fail "connect failures were counted as refusals"
stop_clean "$relay" relay
log "pass"
