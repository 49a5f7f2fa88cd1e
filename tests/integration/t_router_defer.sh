#!/bin/bash
# t_router_defer: a router's tcp listener accepts a client once its first
# bytes arrive (TCP_DEFER_ACCEPT), so a client that connects and says
# nothing holds no connection slot meanwhile. A router with
# max_connections: 1 and one openssl s_server backend (CN=alpha):
#   - while a silent client is connected, a real TLS client is still routed
#     (before the deferred accept, the silent one took the only slot and the
#     TLS client was refused with reason=max_connections);
#   - a client that waits 1.5 s (longer than the deferral) before its
#     ClientHello is still routed: the kernel accepts it after the deferral
#     and the peek waits for the hello as before;
#   - a silent client is still closed by peek_timeout (end=peek_timeout).
# Each attempt of the first case starts a fresh silent client; a slow
# machine could let the deferral expire before the TLS client comes (the
# silent one is then accepted), so that case tries up to 5 times, and fails
# only if the TLS client is refused every time.
. "$(dirname "$0")/lib.sh"
need openssl python3 xxd
TRICKLE=$ROOT/tests/tools/tls_trickle.py

read -r A R L <<<"$(free_ports 3)"
tls_origin alpha "$A"
cat >"$T/airlock.yaml" <<YAML
routers:
  - name: defer
    listen: tcp:127.0.0.1:$R
    routes:
      - {name: alpha.test, target: tcp:127.0.0.1:$A}
    max_connections: 1
  - name: late
    listen: tcp:127.0.0.1:$L
    routes:
      - {name: alpha.test, target: tcp:127.0.0.1:$A}
    peek_timeout: 3s
YAML
airlock_up al run -c "$T/airlock.yaml"

# silent N PORT: a client that connects and sends nothing until killed;
# its file $T/silent.N appears once it is connected
silent() {
    start "silent$1" python3 -c "
import socket, time
s = socket.create_connection(('127.0.0.1', $2))
open('$T/silent.$1', 'w').close()
time.sleep(60)"
    wait_for test -e "$T/silent.$1"
}
# cn: the CN of the certificate a TLS client with SNI alpha.test gets
cn() {
    timeout 10 openssl s_client -connect "127.0.0.1:$R" -servername alpha.test </dev/null 2>/dev/null |
        openssl x509 -noout -subject 2>/dev/null | sed 's/.*CN *= *//'
}

log "a silent client does not take the only connection slot"
ok=0
for i in 1 2 3 4 5; do
    silent "$i" "$R"
    pid=$LAST_PID
    got=$(cn) || true # refused: no certificate
    stop "$pid" || true
    if [ "$got" = alpha ]; then
        ok=1
        break
    fi
    log "attempt $i: the TLS client got '$got' (the silent client was accepted first)"
    # the silent one was accepted: its slot is free again once it closed
    wait_ends "$T/al.log" bad_hello "$i"
done
[ "$ok" = 1 ] || fail "a silent client held the only slot: the TLS client was refused 5 times"

log "a ClientHello sent 1.5 s after the connect (after the deferral) is still routed"
der=$(timeout 15 python3 "$TRICKLE" 127.0.0.1 "$L" alpha.test --step 100000 --wait 1.5) ||
    fail "late client failed"
got=$(xxd -r -p <<<"$der" | openssl x509 -inform der -noout -subject | sed 's/.*CN *= *//')
[ "$got" = alpha ] || fail "late ClientHello reached CN=$got"

log "a silent client is still closed by peek_timeout"
silent late "$L"
wait_log "$T/al.log" "close relay=late conn=[0-9]+ .*end=peek_timeout" 20
log "ok"
