#!/bin/bash
# t_unproven_client: one client that opens connections faster than others
# finish their handshakes cannot push those out (max_unproven_per_client,
# net/unproven.h). Before the bound, a newcomer at max_connections took
# the place of the oldest unproven connection, whoever opened it:
#   - a router with max_connections 8 (so, by default, 4 unproven
#     connections per client): a real TLS client from 127.0.0.2 writes its
#     ClientHello 16 bytes every 300 ms; meanwhile 127.0.0.1 opens 30
#     connections that send part of a hello and stall. 4 of them are held,
#     the others refused (reason=max_unproven_per_client), and the slow
#     client's handshake completes through the router (before: it was the
#     oldest unproven connection, evicted at the flood's 9th);
#   - the counts are given back: once the stallers are gone, and as each
#     connection is proven, 127.0.0.1 is served again, 10 TLS clients one
#     after another;
#   - a PROXY relay (no default: behind a load balancer every client has
#     its address) with max_unproven_per_client 2: the third partial header
#     from 127.0.0.1 is refused, one from 127.0.0.3 is held.
. "$(dirname "$0")/lib.sh"
need openssl python3 socat xxd

read -r A R P ECHO M <<<"$(free_ports 5)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj "/CN=alpha" -keyout "$T/alpha.key" -out "$T/alpha.crt" 2>/dev/null
start s_alpha openssl s_server -accept "127.0.0.1:$A" -cert "$T/alpha.crt" -key "$T/alpha.key" -www -quiet
start echo socat TCP-LISTEN:"$ECHO",bind=127.0.0.1,reuseaddr,fork PIPE
wait_for tcp_up "$A"
wait_for tcp_up "$ECHO"

cat >"$T/airlock.yaml" <<YAML
threads: 2
metrics: tcp:127.0.0.1:$M
routers:
  - name: r
    listen: tcp:127.0.0.1:$R
    routes:
      - {name: alpha.test, target: tcp:127.0.0.1:$A}
    peek_timeout: 60s
    max_connections: 8
relays:
  - name: p
    listen: tcp:127.0.0.1:$P
    target: tcp:127.0.0.1:$ECHO
    accept_proxy: v2
    preamble_timeout: 60s
    max_connections: 8
    max_unproven_per_client: 2
YAML
airlock_up al run -c "$T/airlock.yaml"
AL=$LAST_PID

opened() { [ "$(metric airlock_connections_open "relay=\"$1\"" "$M")" = "$2" ]; }
refused() { [ "$(grep -c "refused relay=$1 client=$2:.* reason=max_unproven_per_client" "$T/al.log")" -ge 1 ]; }
# the first bytes of a ClientHello (a record of 512 bytes, a hello of 508)
HELLO='\x16\x03\x01\x02\x00\x01\x00\x01\xfc'

log "a flood from one address does not push out another client's handshake"
start slow python3 "$ROOT/tests/tools/tls_trickle.py" 127.0.0.1 "$R" alpha.test \
    --bind 127.0.0.2 --step 16 --delay 0.3
SLOW=$LAST_PID
wait_for opened r 1
start flood python3 -u "$ROOT/tests/tools/stall.py" "$R" 30 "$HELLO" "$T/flood.ready" 127.0.0.1
FLOOD=$LAST_PID
wait_for test -e "$T/flood.ready"
# 26 of the 30 closed at once, 4 held, the slow client among the 5 open
closed() { [ "$(grep -c '^closed' "$T/flood.log")" = 26 ]; }
wait_for closed
opened r 5 || fail "$(metric airlock_connections_open 'relay="r"' "$M") connections open, not 5"
refused r 127.0.0.1 || fail "the flood was not refused with reason=max_unproven_per_client"
gone() { ! kill -0 "$1" 2>/dev/null; }
wait_until 30 gone "$SLOW"
grep -qx "$(openssl x509 -in "$T/alpha.crt" -outform DER | xxd -p | tr -d '\n')" "$T/slow.log" ||
    fail "the slow client's handshake did not complete: $(tail -3 "$T/slow.log")"
grep -q 'relay=r .*client=127.0.0.2:.*end=evicted' "$T/al.log" &&
    fail "the slow client was evicted"
[ "$(grep -c '^closed' "$T/flood.log")" = 26 ] || fail "a held staller was closed"

log "the counts are given back"
stop "$FLOOD" || true
wait_for opened r 0
for i in $(seq 10); do
    printf 'GET / HTTP/1.0\r\n\r\n' |
        timeout 10 openssl s_client -connect "127.0.0.1:$R" -servername alpha.test -quiet \
            2>/dev/null | grep -q 's_server' || fail "TLS client $i from 127.0.0.1 was not served"
done

log "a PROXY relay with max_unproven_per_client 2"
PARTIAL='\r\n\r\n\x00\r'
start p1 python3 -u "$ROOT/tests/tools/stall.py" "$P" 3 "$PARTIAL" "$T/p1.ready" 127.0.0.1
P1=$LAST_PID
wait_for test -e "$T/p1.ready"
wait_log "$T/p1.log" '^closed 2'
refused p 127.0.0.1 || fail "the third partial header was not refused"
start p3 python3 -u "$ROOT/tests/tools/stall.py" "$P" 1 "$PARTIAL" "$T/p3.ready" 127.0.0.3
P3=$LAST_PID
wait_for test -e "$T/p3.ready"
wait_for opened p 3
sleep 0.5
grep -q '^closed' "$T/p3.log" && fail "a client from another address was refused"
grep -q '^closed [01]' "$T/p1.log" && fail "a held partial header was closed"
stop "$P1" || true
stop "$P3" || true
stop_clean "$AL" al
