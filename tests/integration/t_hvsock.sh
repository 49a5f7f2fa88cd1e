#!/bin/bash
# t_hvsock: the hybrid-vsock pair (the unix-socket face of Firecracker and
# Cloud Hypervisor vsock), without any VM:
#   redis-cli -> relay tcp -> hvsock:dev.sock:5000 -> relay listening on
#   hvsock:dev.sock:5000 -> tcp redis
# carries commands and a 1 MiB value, with both CONNECT/OK handshakes. And:
#   - on the listening side, "CONNECT 5001" (a port it does not serve) is
#     closed unanswered (end=bad_preamble); a right CONNECT line sent in one
#     write with the payload, or in two pieces, gets "OK 5000" then the
#     payload's answer;
#   - on the connecting side, a device that answers "NO" fails the
#     connection (end=connect_failed); one that answers "OK 50", then
#     "00" and its first payload bytes in one write loses none of them; one
#     that never answers meets connect_timeout (end=connect_timeout).
. "$(dirname "$0")/lib.sh"
command -v redis-server >/dev/null || skip "redis-server not installed"

read -r REDIS FRONT NO BANNER MUTE M <<<"$(free_ports 6)"
cat >"$T/airlock.yaml" <<EOF
metrics: tcp:127.0.0.1:$M
drain_timeout: 2s
relays:
  - name: front
    listen: tcp:127.0.0.1:$FRONT
    target: hvsock:$T/dev.sock:5000
  - name: device
    listen: hvsock:$T/dev.sock:5000
    target: tcp:127.0.0.1:$REDIS
  - name: no
    listen: tcp:127.0.0.1:$NO
    target: hvsock:$T/no.sock:5000
  - name: banner
    listen: tcp:127.0.0.1:$BANNER
    target: hvsock:$T/banner.sock:5000
  - name: mute
    listen: tcp:127.0.0.1:$MUTE
    target: hvsock:$T/mute.sock:5000
    connect_timeout: 1s
EOF
# fake devices: each reads the CONNECT line, then answers its way
cat >"$T/no.sh" <<EOF
read -r line; echo "\$line" >>$T/no.got; echo NO
EOF
cat >"$T/banner.sh" <<'EOF'
read -r line; printf 'OK 50'; sleep 0.3; printf '00\nBANNER\n'; sleep 1
EOF
echo 'sleep 10' >"$T/mute.sh"
for d in no banner mute; do
    start "fake-$d" socat UNIX-LISTEN:"$T/$d.sock",fork SYSTEM:"sh $T/$d.sh"
done
start redis redis-server --port "$REDIS" --bind 127.0.0.1 --save '' --appendonly no
wait_for tcp_up "$REDIS"
for d in no banner mute; do wait_for unix_up "$T/$d.sock"; done
airlock_up relay run -c "$T/airlock.yaml"
relay=$LAST_PID
cli() { timeout 20 redis-cli -p "$FRONT" "$@"; }

log "redis through the hvsock pair"
[ "$(cli PING)" = PONG ] || fail "PING through the hvsock pair"
gen_data big $((1 << 20)) >"$T/big"
[ "$(cli -x SET big <"$T/big")" = OK ] || fail "SET of 1 MiB"
cli --raw GET big >"$T/got" && truncate -s -1 "$T/got"
cmp -s "$T/got" "$T/big" || fail "the 1 MiB value came back different"

log "the device socket refuses a CONNECT to another port"
got=$(printf 'CONNECT 5001\n' | timeout 5 socat -t 5 - "UNIX-CONNECT:$T/dev.sock") ||
    fail "the wrong-port client was not closed at once"
[ -z "$got" ] || fail "the wrong-port client got an answer: $got"
wait_ends "$T/relay.log" bad_preamble 1 # the client saw the close first
grep -q "relay=device conn=[0-9]* bad hvsock CONNECT line" "$T/relay.log" ||
    fail "no 'bad hvsock CONNECT line' warning"

log "a CONNECT line and its payload in one write"
got=$(printf 'CONNECT 5000\nPING\r\n' | timeout 5 socat -t 5 - "UNIX-CONNECT:$T/dev.sock" | tr -d '\r')
[ "$got" = "$(printf 'OK 5000\n+PONG')" ] || fail "CONNECT + PING gave: $got"

log "a CONNECT line in two pieces"
got=$({
    printf 'CONN'
    sleep 0.3
    printf 'ECT 5000\nPING\r\n'
} | timeout 5 socat -t 5 - "UNIX-CONNECT:$T/dev.sock" | tr -d '\r')
[ "$got" = "$(printf 'OK 5000\n+PONG')" ] || fail "CONNECT in pieces + PING gave: $got"

log "a device that answers NO"
t0=$(date +%s%N)
timeout 5 "$NETPEER" connect "tcp:127.0.0.1:$NO" --no-shut </dev/null >/dev/null || fail "client of 'no': status $?"
ms=$(elapsed_ms "$t0")
[ "$ms" -lt 2000 ] || fail "the client of a refusing device was closed after $ms ms"
[ "$(cat "$T/no.got")" = "CONNECT 5000" ] || fail "the device got '$(cat "$T/no.got")', not CONNECT 5000"
wait_ends "$T/relay.log" connect_failed 1
grep -q "relay=no conn=[0-9]* hvsock target refused port 5000" "$T/relay.log" || fail "no refusal logged"

log "a device that sends its OK line in two pieces, the second with payload"
got=$(timeout 5 "$NETPEER" connect "tcp:127.0.0.1:$BANNER" </dev/null) || fail "client of 'banner': status $?"
[ "$got" = BANNER ] || fail "the client got '$got', not BANNER"

log "a device that never answers"
t0=$(date +%s%N)
timeout 5 "$NETPEER" connect "tcp:127.0.0.1:$MUTE" --no-shut </dev/null >/dev/null ||
    fail "client of 'mute': status $?"
ms=$(elapsed_ms "$t0")
[ "$ms" -ge 900 ] && [ "$ms" -le 4000 ] || fail "closed after $ms ms, not about 1000"
wait_ends "$T/relay.log" connect_timeout 1

[ "$(metric airlock_connect_errors_total 'relay="no"' "$M")" = 1 ] || fail "connect_errors{no} is not 1"
[ "$(metric airlock_connect_errors_total 'relay="mute"' "$M")" = 1 ] || fail "connect_errors{mute} is not 1"
[ "$(ends "$T/relay.log" error)" = 0 ] || fail "connections ended with end=error"
stop_clean "$relay" relay
log "pass"
