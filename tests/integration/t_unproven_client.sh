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
#   - behind a load balancer (accept_proxy: v2, every connection from
#     127.0.0.1) a client is the source its PROXY header names: a router
#     with max_connections 8 holds 4 partial ClientHellos whose headers name
#     127.0.0.9, closes the fifth after its header (end=denied), and holds
#     one whose header names 127.0.0.10.
. "$(dirname "$0")/lib.sh"
need openssl python3 socat xxd

read -r A R P ECHO M <<<"$(free_ports 5)"
tls_origin alpha "$A"
start echo socat TCP-LISTEN:"$ECHO",bind=127.0.0.1,reuseaddr,fork PIPE
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
  - name: q
    listen: tcp:127.0.0.1:$P
    routes:
      - {name: alpha.test, target: tcp:127.0.0.1:$A}
    accept_proxy: v2
    peek_timeout: 60s
    max_connections: 8
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

log "behind a load balancer, a client is the source its PROXY header names"
# proxied SRC: a PROXY v2 header (TCP over IPv4, 127.0.0.SRC:12345 ->
# 127.0.0.1:443), then the first bytes of a ClientHello
proxied() { printf '%s' "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x7f\x00\x00\x$1\x7f\x00\x00\x01\x30\x39\x01\xbb$HELLO"; }
start q9 python3 -u "$ROOT/tests/tools/stall.py" "$P" 5 "$(proxied 09)" "$T/q9.ready"
Q9=$LAST_PID
wait_for test -e "$T/q9.ready"
wait_log "$T/q9.log" '^closed 4'
wait_log "$T/al.log" 'refused relay=q client=127\.0\.0\.9:12345 reason=max_unproven_per_client'
[ "$(metric airlock_connections_closed_total 'relay="q",end="denied"' "$M")" = 1 ] ||
    fail "the fifth was not closed with end=denied"
start q10 python3 -u "$ROOT/tests/tools/stall.py" "$P" 1 "$(proxied 0a)" "$T/q10.ready"
Q10=$LAST_PID
wait_for test -e "$T/q10.ready"
wait_for opened q 5
sleep 0.5
grep -q '^closed' "$T/q10.log" && fail "a client whose header names another source was refused"
grep -q '^closed [0-3]' "$T/q9.log" && fail "a held partial ClientHello was closed"
stop "$Q9" || true
stop "$Q10" || true
stop_clean "$AL" al
