#!/bin/bash
# t_field_proxy_from: an HTTP proxy with accept_proxy: v2 believes the PROXY
# header of its fronts only (proxy_from, as a relay's): a peer that is not
# one cannot name the sources of its choice, so it cannot escape
# max_unproven_per_client (2 here: half of max_connections) nor write
# X-Forwarded-For.
#  - from the front (127.0.0.1), a request whose header names 10.9.9.9 is
#    answered, and the backend's X-Forwarded-For is 10.9.9.9;
#  - 127.0.0.2, not a front, sends headers naming three sources, each with
#    a whole request: each connection is refused at accept (reason=
#    not_allowed, counted in airlock_http_connections_refused_total), and
#    none reaches the backend;
#  - the front's headers are still counted: a third unproven connection
#    of one source is refused (reason=max_unproven_per_client);
#  - airlock check refuses proxy_from without accept_proxy, a cid: rule on a
#    tcp listener, and any rule on a unix listener.
. "$(dirname "$0")/lib.sh"
need python3
ECHO=${HTTP_ECHO:-$(dirname "$AIRLOCK")/tests/http_echo}
[ -x "$ECHO" ] || skip "tests/http_echo not built"

read -r BACK FRONT M <<<"$(free_ports 3)"
start echo "$ECHO" "$BACK" "$T/backend.log"
wait_port "$BACK"
cat >"$T/airlock.yaml" <<EOF
metrics: tcp:127.0.0.1:$M
proxies:
  - name: api
    listen: tcp:127.0.0.1:$FRONT
    backend: tcp:127.0.0.1:$BACK
    accept_proxy: v2
    proxy_from: [127.0.0.1/32]
    max_connections: 4
    header_timeout: 30s # the held connections wait longer than the test on a slow machine
    routes: [{path: /}]
EOF
airlock_up airlock run -c "$T/airlock.yaml"

# request FROM SRC PATH: from address FROM, a PROXY v2 header naming SRC and
# a whole request for PATH; prints the answer's status line, or "closed"
# when the proxy ends the connection without one (a close or a reset)
request() {
    python3 - "$FRONT" "$@" <<PY
import socket, sys
sys.path.insert(0, "$ROOT/tests/tools")
from hello_hold import proxy_v2
port, frm, src, path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
hdr = proxy_v2(src, port)
s = socket.socket()
s.bind((frm, 0))
s.connect(("127.0.0.1", port))
s.settimeout(10)
try:
    s.sendall(hdr + ("GET %s HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n" % path).encode())
    print(s.recv(4096).split(b"\\r\\n")[0].decode() or "closed")
except (ConnectionResetError, BrokenPipeError):
    print("closed")
PY
}
refused() { metric airlock_http_connections_refused_total 'proxy="api"' "$M"; }
refused_is() { [ "$(refused)" = "$1" ]; }

log "from the front, the header names the client"
[ "$(request 127.0.0.1 10.9.9.9 /front)" = "HTTP/1.1 200 OK" ] || fail "the front was not answered"
grep -q '^GET /front conn=[0-9]* xff=10.9.9.9 ' "$T/backend.log" ||
    fail "not the header's source: $(grep /front "$T/backend.log")"

log "127.0.0.2 is no front: its headers are not believed, its connections refused"
for i in 1 2 3; do
    out=$(request 127.0.0.2 "10.0.0.$i" "/forged$i")
    [ "$out" = closed ] || fail "a stranger's header naming 10.0.0.$i was answered: $out"
done
wait_log "$T/airlock.log" "http proxy=api refused client=127.0.0.2:[0-9]+ reason=not_allowed"
grep -q /forged "$T/backend.log" && fail "a stranger's request reached the backend"
wait_for refused_is 3

log "the front's headers are counted: a third unproven connection of 10.1.1.1 is refused"
held a python3 "$ROOT/tests/tools/conn_hold.py" "$FRONT" 10.1.1.1 10.1.1.1 10.1.1.1
three() { [ "$(wc -l <"$T/a.out")" -ge 3 ]; }
wait_until 10 three || fail "the client did not say: $(cat "$T/a.out")"
[ "$(tr '\n' ' ' <"$T/a.out")" = "open open closed " ] ||
    fail "expected the third of 10.1.1.1's connections refused: $(cat "$T/a.out")"
wait_for refused_is 4 # its line may fall in the second of the stranger's (one a second)
unhold a

log "proxy_from needs accept_proxy, and rules of the listener's kind"
bad() { check_refuses "$T/airlock.yaml" "$@"; }
bad '/accept_proxy: v2/d' "proxy_from: applies with accept_proxy: v2"
bad 's|proxy_from: \[127.0.0.1/32\]|proxy_from: [cid:3]|' "cid: rules are for vsock listeners"
bad "s|listen: tcp:127.0.0.1:$FRONT|listen: unix:$T/api.sock|" \
    "restrict a unix socket with file permissions"
log ok
