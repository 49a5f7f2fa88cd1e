#!/bin/bash
# t_field_proxy_client: an HTTP proxy behind a TLS relay knows its clients.
# A proxy's peer is the relay that terminates TLS in front of it (every
# client one address, 127.0.0.1); with accept_proxy: v2 each connection
# begins with a PROXY v2 header, which the tls: relay now sends (send_proxy,
# passing on the one its own front sent), and its source is the client:
#   - the chain front relay (send_proxy) -> tls: relay (accept_proxy,
#     send_proxy) -> proxy (accept_proxy): the backend's X-Forwarded-For is
#     the client's own address (127.0.0.2), not the relay's;
#   - a connection without a header (plain HTTP) is closed, logged, never
#     reaches the backend;
#   - max_unproven_per_client (half of max_connections with accept_proxy)
#     counts by that source: a client holding 2 connections without a
#     whole request is refused a third (reason=max_unproven_per_client),
#     while another client is served and the two are not closed; once one
#     of them sends its request, the client may open another; at
#     max_connections, that client's newcomers are refused before they take
#     anyone's place (before, each evicted another client's connection),
#     and newcomers that never send their header hold no place either: a
#     client with a whole request after four of them is served;
#   - set on a proxy without accept_proxy, it counts by the peer address.
. "$(dirname "$0")/lib.sh"
need curl openssl python3
ECHO=${HTTP_ECHO:-$(dirname "$AIRLOCK")/tests/http_echo}
[ -x "$ECHO" ] || skip "tests/http_echo not built"

read -r BACK FRONT TLS EDGE PLAIN FULL M <<<"$(free_ports 7)"
start echo "$ECHO" "$BACK" "$T/backend.log"
wait_port "$BACK"
"$AIRLOCK" attest get --provider sim --sim-root "$T/sim.pem" >/dev/null 2>&1 ||
    fail "cannot make the sim root"
cat >"$T/airlock.yaml" <<EOF
threads: 2
metrics: tcp:127.0.0.1:$M
relays:
  - name: edge
    listen: tcp:127.0.0.1:$EDGE
    target: tcp:127.0.0.1:$TLS
    send_proxy: v2
  - name: tls
    listen: tcp:127.0.0.1:$TLS
    target: tcp:127.0.0.1:$FRONT
    accept_proxy: v2
    send_proxy: v2
    tls: {provider: sim, sim_root: $T/sim.pem}
proxies:
  - name: api
    listen: tcp:127.0.0.1:$FRONT
    backend: tcp:127.0.0.1:$BACK
    accept_proxy: v2
    max_connections: 4
    header_timeout: 30s # the held connections wait longer than the test on a slow machine
    routes: [{path: /}]
  - name: full
    listen: tcp:127.0.0.1:$FULL
    backend: tcp:127.0.0.1:$BACK
    accept_proxy: v2
    max_connections: 4
    header_timeout: 30s # the held connections wait longer than the test on a slow machine
    routes: [{path: /}]
  - name: plain
    listen: tcp:127.0.0.1:$PLAIN
    backend: tcp:127.0.0.1:$BACK
    max_unproven_per_client: 2
    routes: [{path: /}]
EOF
airlock_up airlock run -c "$T/airlock.yaml"

log "through the chain, the backend's X-Forwarded-For is the client's address"
curl -sSk --max-time 10 --interface 127.0.0.2 "https://127.0.0.1:$EDGE/chain" -o /dev/null ||
    fail "curl through the chain: $?"
grep -q '^GET /chain conn=[0-9]* xff=127.0.0.2 ' "$T/backend.log" ||
    fail "not the client's address: $(grep /chain "$T/backend.log")"

log "a connection without a PROXY header is closed and logged"
n=$(wc -l <"$T/backend.log")
curl -sS --max-time 5 "http://127.0.0.1:$FRONT/bare" -o /dev/null 2>/dev/null &&
    fail "a request without a header was answered"
wait_for grep -q "http proxy=api conn=[0-9]* client=127.0.0.1:[0-9]* bad PROXY v2 header" "$T/airlock.log"
[ "$(wc -l <"$T/backend.log")" = "$n" ] || fail "it reached the backend"

log "a client holding 2 unproven connections is refused a third; others are served"
# clients NAME PORT SRC...: tests/tools/conn_hold.py held as NAME (lib.sh),
# once it said which of its connections are open
clients() {
    local name=$1
    shift
    held "$name" python3 "$ROOT/tests/tools/conn_hold.py" "$@"
    wait_until 10 lines_at_least "$T/$name.out" $(($# - 1))
}
lines_at_least() { [ "$(wc -l <"$1")" -ge "$2" ]; }
clients a "$FRONT" 10.1.1.1 10.1.1.1 10.1.1.1
[ "$(tr '\n' ' ' <"$T/a.out")" = "open open closed " ] ||
    fail "expected the third of 10.1.1.1's connections refused: $(cat "$T/a.out")"
wait_for grep -q "http proxy=api refused client=10.1.1.1:40000 reason=max_unproven_per_client" "$T/airlock.log"
clients b "$FRONT" 10.2.2.2
[ "$(cat "$T/b.out")" = open ] || fail "another client was refused: $(cat "$T/b.out")"
held_say b finish
wait_until 10 grep -q "HTTP/1.1 200" "$T/b.out" || fail "another client was not served: $(cat "$T/b.out")"
grep -q '^GET /held conn=[0-9]* xff=10.2.2.2 ' "$T/backend.log" ||
    fail "the header's source is not the client: $(grep /held "$T/backend.log")"
held_say a finish
wait_until 10 grep -q "HTTP/1.1 200" "$T/a.out" || fail "a held connection was closed: $(cat "$T/a.out")"
clients c "$FRONT" 10.1.1.1
[ "$(head -1 "$T/c.out")" = open ] || fail "a proven connection still counted: $(cat "$T/c.out")"

log "at max_connections, a client at its bound takes no one's place"
clients e "$FULL" 10.2.2.2 10.2.2.2
clients f "$FULL" 10.1.1.1 10.1.1.1
[ "$(cat "$T/e.out" "$T/f.out" | tr '\n' ' ')" = "open open open open " ] ||
    fail "four clients' connections: $(cat "$T/e.out" "$T/f.out")"
clients g "$FULL" 10.1.1.1 10.1.1.1 10.1.1.1
[ "$(tr '\n' ' ' <"$T/g.out")" = "closed closed closed " ] ||
    fail "a client at its bound got in: $(cat "$T/g.out")"
[ "$(metric airlock_http_connections_evicted_total 'proxy="full"' "$M")" = 0 ] ||
    fail "a client at its bound evicted others: $(metric airlock_http_connections_evicted_total 'proxy="full"' "$M")"
[ "$(metric airlock_http_connections_open 'proxy="full"' "$M")" = 4 ] ||
    fail "not the four connections: $(metric airlock_http_connections_open 'proxy="full"' "$M")"

python3 - "$FULL" "$M" >"$T/silent.out" <<'PY'
import socket, struct, sys, time, urllib.request
port = int(sys.argv[1])
silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
# until all four began (each holds a claim until then: a newcomer meanwhile finds none)
want = 'airlock_http_connections_open{proxy="full"} 8'
deadline = time.time() + 10
while time.time() < deadline:
    page = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[2]).read().decode()
    if want in page.splitlines():
        break
    time.sleep(0.05)
addr = socket.inet_aton("10.3.3.3") + socket.inet_aton("127.0.0.1") + struct.pack("!HH", 40000, port)
hdr = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", len(addr)) + addr
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(10)
s.sendall(hdr + b"GET /legit HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
try:
    print(s.recv(4096).split(b"\r\n")[0].decode() or "closed")
except OSError as e:
    print("error", e)
PY
grep -q '^HTTP/1.1 200' "$T/silent.out" ||
    fail "a client after four silent newcomers was not served: $(cat "$T/silent.out")"

log "set without accept_proxy, the bound counts by the peer's address"
clients d "$PLAIN" - - -
[ "$(tr '\n' ' ' <"$T/d.out")" = "open open closed " ] ||
    fail "expected the third connection from 127.0.0.1 refused: $(cat "$T/d.out")"
curl -sS --max-time 5 --interface 127.0.0.3 "http://127.0.0.1:$PLAIN/other" -o /dev/null ||
    fail "another address was refused: $?"
log ok
