#!/bin/bash
# t_router_sni: the router role with real TLS peers. Three openssl s_server
# backends with their own self-signed certificates (CN=alpha, CN=wild,
# CN=dflt) behind one airlock running three routers from a YAML config:
#   open:   routes alpha.test and *.wild.test, a default
#   strict: the same exact route, no default, peek_timeout 1s, max_hello 512B
#   proxy:  default only, send_proxy v2, to a raw capture listener
#   users:  directory pool "grid" for <key>.grid.example (memory directory,
#           no pool has reported yet)
# Proves, by the certificate that came back: openssl s_client and curl reach
# the backend their SNI names (exact, wildcard, mixed case), unknown names
# and ClientHellos without SNI go to the default, or are refused with an
# unrecognized_name alert; a ClientHello written one byte at a time still
# routes; garbage is closed at once, and so is a ClientHello that is not
# valid (a FIN: the client sees a close, not a reset); a silent client and a trickling one are
# closed by the peek timeout while another client is served; a ClientHello
# over max_hello is refused, and so at once is one under it in records that
# take more than twice max_hello on the wire; the upstream gets a PROXY v2 header followed by
# the client's ClientHello byte for byte; a directory route with no
# instance closes cleanly (end=no_instance, the reason logged) and names
# outside its domain get no route; metrics count each outcome; every
# connection's sockets are closed at the end; airlock router on the command
# line routes the same way.
. "$(dirname "$0")/lib.sh"
need openssl curl python3 xxd
TRICKLE=$ROOT/tests/tools/tls_trickle.py
CORPUS=$ROOT/tests/fuzz/corpus/tls_hello

read -r A W D OPEN STRICT PROXY CAP METRICS USERS CLI <<<"$(free_ports 10)"
tls_origin alpha "$A"
tls_origin wild "$W"
tls_origin dflt "$D"
# the capture: keeps what the router sends upstream, answers nothing
start capture python3 -c "
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $CAP)); s.listen(1); c, _ = s.accept(); c.settimeout(2); got = b''
try:
    while True:
        d = c.recv(65536)
        if not d: break
        got += d
except socket.timeout: pass
open('$T/captured.part', 'wb').write(got)
import os; os.rename('$T/captured.part', '$T/captured')
"
wait_for tcp_up "$CAP"

cat >"$T/airlock.yaml" <<YAML
metrics: tcp:127.0.0.1:$METRICS
routers:
  - name: open
    listen: tcp:127.0.0.1:$OPEN
    routes:
      - {name: alpha.test, target: tcp:127.0.0.1:$A}
      - {name: "*.wild.test", target: tcp:127.0.0.1:$W}
    default: tcp:127.0.0.1:$D
  - name: strict
    listen: tcp:127.0.0.1:$STRICT
    routes:
      - {name: alpha.test, target: tcp:127.0.0.1:$A}
    peek_timeout: 1s
    max_hello: 512B
  - name: proxy
    listen: tcp:127.0.0.1:$PROXY
    default: tcp:127.0.0.1:$CAP
    send_proxy: v2
  - name: users
    listen: tcp:127.0.0.1:$USERS
    directory: grid
    domain: grid.example
directory: {}
YAML
airlock_up al run -c "$T/airlock.yaml"
al=$LAST_PID
sockets0=$(fd_kinds "$al" | cut -d' ' -f1)

# subject PORT SNI: the CN of the certificate a TLS client gets through PORT
subject() {
    local name=(-servername "$2")
    [ "$2" = - ] && name=(-noservername)
    timeout 10 openssl s_client -connect "127.0.0.1:$1" "${name[@]}" </dev/null 2>/dev/null |
        openssl x509 -noout -subject 2>/dev/null | sed 's/.*CN *= *//'
}
expect_cn() { # PORT SNI CN
    local got
    got=$(subject "$1" "$2")
    [ "$got" = "$3" ] || fail "SNI $2 through port $1: got certificate '$got', expected CN=$3"
    log "SNI $2 -> CN=$got"
}

log "s_client: exact, wildcard (two levels), mixed case, unknown, no SNI"
expect_cn "$OPEN" alpha.test alpha
expect_cn "$OPEN" a.wild.test wild
expect_cn "$OPEN" x.y.wild.test wild
expect_cn "$OPEN" ALPHA.Test alpha
expect_cn "$OPEN" wild.test dflt
expect_cn "$OPEN" other.example dflt
expect_cn "$OPEN" - dflt
expect_cn "$STRICT" alpha.test alpha

log "curl with SNI, a whole HTTPS request through the router"
out=$(curl -skv --max-time 10 --resolve "api.wild.test:$OPEN:127.0.0.1" \
    "https://api.wild.test:$OPEN/" 2>&1) || fail "curl failed: $out"
grep -q "subject: CN=wild" <<<"$out" || fail "curl did not get CN=wild: $out"
grep -q "s_server" <<<"$out" || fail "curl got no page from s_server"

log "no route and no default: an unrecognized_name alert, then close"
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$STRICT" -servername nope.test </dev/null 2>&1) &&
    fail "the handshake for an unrouted name succeeded"
grep -qi "unrecognized name" <<<"$out" || fail "no unrecognized_name alert: $out"
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$STRICT" -noservername </dev/null 2>&1) &&
    fail "the handshake without SNI succeeded without a default"

log "one byte per write, 2 ms apart: still routed by its SNI"
der=$(timeout 20 python3 "$TRICKLE" 127.0.0.1 "$OPEN" alpha.test --step 1 --delay 0.002) ||
    fail "trickled handshake failed"
cn=$(xxd -r -p <<<"$der" | openssl x509 -inform der -noout -subject | sed 's/.*CN *= *//')
[ "$cn" = alpha ] || fail "trickled ClientHello reached CN=$cn"
# the close line names the target the name was routed to
wait_log "$T/al.log" "close relay=open conn=[0-9]+ client=[^ ]+ sni=alpha.test target=tcp:127.0.0.1:$A .*end=eof"

log "slowloris: a silent and a trickling client are cut at peek_timeout (1s) while others are served"
t0=$(date +%s%N)
(
    timeout 10 "$NETPEER" connect "tcp:127.0.0.1:$STRICT" --no-shut </dev/null >/dev/null 2>&1 || true
    elapsed_ms "$t0" >"$T/silent.ms"
) &
silent=$!
(
    timeout 10 python3 "$TRICKLE" 127.0.0.1 "$STRICT" alpha.test --file "$CORPUS/openssl_tls13" \
        --step 1 --delay 0.2 >/dev/null 2>&1 || true
    elapsed_ms "$t0" >"$T/trickle.ms"
) &
trickle=$!
expect_cn "$STRICT" alpha.test alpha
wait "$silent" "$trickle"
for f in silent trickle; do
    ms=$(cat "$T/$f.ms")
    log "$f client closed after $ms ms"
    [ "$ms" -ge 900 ] && [ "$ms" -lt 4000 ] || fail "$f client closed after $ms ms, not ~1s"
done

log "garbage: closed at once (for what it is, not at the peek timeout), nothing sent back"
printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >"$T/garbage"
got=$(timeout 5 python3 "$TRICKLE" 127.0.0.1 "$STRICT" - --file "$T/garbage" --step 100) ||
    fail "garbage client failed"
[ -z "$got" ] || fail "garbage got an answer: $got"
wait_log "$T/al.log" "bad ClientHello: not a TLS handshake record"

log "a ClientHello that is not valid (a name with a trailing dot): closed, not reset"
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$STRICT" -servername alpha.test. </dev/null 2>&1) &&
    fail "a ClientHello naming alpha.test. was routed"
wait_log "$T/al.log" "bad ClientHello: "
grep -qi "reset\|errno=104" <<<"$out" && fail "the client saw a reset: $out"

log "a ClientHello over max_hello (the browser-like one, 741 bytes > 512B) is refused"
got=$(timeout 5 python3 "$TRICKLE" 127.0.0.1 "$STRICT" - --file "$CORPUS/browser_grease_ech" --step 1000)
[ -z "$got" ] || fail "oversized hello got an answer"
wait_log "$T/al.log" "bad ClientHello: ClientHello larger than the limit"

log "a ClientHello under max_hello in 1-byte records (6 bytes each: past twice the limit) is refused at once"
python3 - "$CORPUS/openssl_tls13" "$T/onebyte" <<'PY'
import sys
h = open(sys.argv[1], "rb").read()[5:]  # the handshake message of one record
open(sys.argv[2], "wb").write(b"".join(b"\x16\x03\x03\x00\x01" + h[i:i + 1] for i in range(len(h))))
PY
got=$(timeout 5 python3 "$TRICKLE" 127.0.0.1 "$STRICT" - --file "$T/onebyte" --step 100000)
[ -z "$got" ] || fail "a hello over the wire limit got an answer"
wait_log "$T/al.log" "bad ClientHello: ClientHello records larger than twice the limit"

log "send_proxy v2: the upstream gets the header, then the ClientHello unchanged"
timeout 5 python3 "$TRICKLE" 127.0.0.1 "$PROXY" - --file "$CORPUS/browser_grease_ech" --step 100 \
    >/dev/null 2>&1 || true
wait_for test -s "$T/captured"
sig=$(head -c 12 "$T/captured" | xxd -p)
[ "$sig" = 0d0a0d0a000d0a515549540a ] || fail "no PROXY v2 signature upstream: $sig"
hlen=$((16 + 0x$(head -c 16 "$T/captured" | tail -c 2 | xxd -p)))
tail -c +$((hlen + 1)) "$T/captured" | cmp - "$CORPUS/browser_grease_ech" ||
    fail "the ClientHello upstream differs from the one sent"
wait_log "$T/al.log" "close relay=proxy conn=[0-9]+ client=[^ ]+ sni=alice.grid.example "

log "directory route: no instance for alice (no pool reported): a clean close"
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$USERS" -servername alice.grid.example </dev/null 2>&1) &&
    fail "the handshake for alice succeeded without an instance"
wait_log "$T/al.log" "router refused relay=users conn=[0-9]+ sni=alice.grid.example reason=no_such_pool"
wait_log "$T/al.log" "close relay=users conn=[0-9]+ client=[^ ]+ sni=alice.grid.example .*end=no_instance"
grep -qi "reset" <<<"$out" && fail "the client saw a reset: $out"
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$USERS" -servername alice.other.example </dev/null 2>&1) &&
    fail "a name outside the domain was routed"
wait_log "$T/al.log" "close relay=users conn=[0-9]+ client=[^ ]+ sni=alice.other.example target=- .*end=no_route"

log "metrics count each outcome"
for e in no_route:2 peek_timeout:2 bad_hello:4; do
    got=$(metric airlock_connections_closed_total "relay=\"strict\",end=\"${e%%:*}\"" "$METRICS")
    [ "$got" = "${e#*:}" ] || fail "strict end=${e%%:*}: $got, expected ${e#*:}"
done
log "the same from the command line: airlock router"
"$AIRLOCK" router "tcp:127.0.0.1:$CLI" 2>"$T/cli.err" && fail "a router without routes started"
grep -q "expected at least one of routes:, directory:, default: in router" "$T/cli.err" ||
    fail "no message for a router without routes: $(cat "$T/cli.err")"
airlock_up cli router "tcp:127.0.0.1:$CLI" --route "*.wild.test=tcp:127.0.0.1:$W" \
    --default "tcp:127.0.0.1:$D" --peek-timeout 2s
cli=$LAST_PID
expect_cn "$CLI" b.wild.test wild
expect_cn "$CLI" alpha.test dflt
stop_clean "$cli" cli

log "every connection's sockets are closed again"
sockets_back() { [ "$(fd_kinds "$al" | cut -d' ' -f1)" = "$sockets0" ]; }
wait_for sockets_back
stop_clean "$al" al
