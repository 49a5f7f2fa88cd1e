#!/bin/bash
# t_unproven_egress: an egress relay on a tcp listener bounds the unproven
# connections (no whole CONNECT request or PROXY header yet) one client
# holds: by default half of max_connections, as a router's and a tls:
# relay's. Before, only those two had a default: one address that opened
# connections faster than others finished their requests pushed them out
# (each newcomer at max_connections took the place of the oldest):
#   - max_connections 8 (so, by default, 4 per client): a client from
#     127.0.0.2 sends half a CONNECT request; meanwhile 127.0.0.1 opens 30
#     connections that send part of one and stall. 4 of them are held, the
#     others refused (reason=max_unproven_per_client), and the first
#     client's request, finished afterwards, gets its tunnel (before: it was
#     the oldest unproven connection, evicted at the flood's 8th);
#   - `airlock ctl config` shows the bound in force (4), not its absence.
. "$(dirname "$0")/lib.sh"
need python3 socat

read -r E ECHO M <<<"$(free_ports 3)"
start echo socat TCP-LISTEN:"$ECHO",bind=127.0.0.1,reuseaddr,fork PIPE
wait_for tcp_up "$ECHO"
cat >"$T/airlock.yaml" <<YAML
threads: 2
metrics: tcp:127.0.0.1:$M
control: {endpoint: "unix:$T/ctl.sock"}
relays:
  - name: out
    listen: tcp:127.0.0.1:$E
    target: egress
    egress_allow: [127.0.0.1:$ECHO]
    preamble_timeout: 60s
    max_connections: 8
YAML
airlock_up al run -c "$T/airlock.yaml"

opened() { [ "$(metric airlock_connections_open 'relay="out"' "$M")" = "$1" ]; }

log "a flood from one address does not push out another client's request"
# from 127.0.0.2, half a CONNECT request; the rest once $T/go exists; then
# the answer's status line and what the tunnel echoes of "ping"
cat >"$T/slow.py" <<'PY'
import os, socket, sys, time
port, echo, go = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket()
s.bind(("127.0.0.2", 0))
s.connect(("127.0.0.1", port))
s.sendall(b"CONNECT 127.0.0.1:%s HTTP/1.1\r\n" % echo.encode())
print("sent", flush=True)
while not os.path.exists(go):
    time.sleep(0.05)
s.settimeout(10)
try:
    s.sendall(b"Host: 127.0.0.1:%s\r\n\r\n" % echo.encode())
    status = s.recv(4096).split(b"\r\n")[0].decode()
    s.sendall(b"ping\n")
    print(status or "closed", s.recv(16).decode().strip() or "closed", flush=True)
except OSError as e:
    print("closed", e, flush=True)
PY
start slow python3 -u "$T/slow.py" "$E" "$ECHO" "$T/go"
wait_log "$T/slow.log" '^sent$'
wait_for opened 1
start flood python3 -u "$ROOT/tests/tools/stall.py" "$E" 30 'CONNECT 127.0.0.1:' "$T/flood.ready" \
    127.0.0.1
wait_for test -e "$T/flood.ready"
# 26 of the 30 closed at once, 4 held, the slow client among the 5 open
closed() { [ "$(grep -c '^closed' "$T/flood.log")" = 26 ]; }
wait_for closed
opened 5 || fail "$(metric airlock_connections_open 'relay="out"' "$M") connections open, not 5"
wait_log "$T/al.log" 'refused relay=out client=127\.0\.0\.1:[0-9]+ reason=max_unproven_per_client'
touch "$T/go"
wait_log "$T/slow.log" '^HTTP/1.1 200 Connection established ping$'
grep -q 'relay=out .*client=127.0.0.2:.*end=evicted' "$T/al.log" && fail "the slow client was evicted"
[ "$(grep -c '^closed' "$T/flood.log")" = 26 ] || fail "a held staller was closed"

log "airlock ctl config shows the bound in force"
"$AIRLOCK" ctl -s "unix:$T/ctl.sock" config >"$T/dump.yaml" || fail "ctl config failed"
has -x '    max_unproven_per_client: 4' <"$T/dump.yaml" ||
    fail "no max_unproven_per_client: 4 in: $(cat "$T/dump.yaml")"
log ok
