#!/bin/bash
# t_dgram_ports: a stream -> udp relay never hands a reply to the wrong
# flow. Each flow has its own socket; when a flow goes (evicted at
# max_flows, or idle), its socket's local port rests for 10 s before a new
# flow may have it. Before, the kernel could give the port straight to the
# next flow's socket, and the target's late reply to the old flow arrived
# there and went to the new flow's client (reproduced by a flood of source
# ports against a DNS relay: other clients' answers reached the attacker).
# In a network namespace whose ephemeral ports are one, then two:
#   - max_flows 1, a target that answers after 600 ms: flow 1 asks A, flow 2
#     asks B 200 ms later (flow 1 is evicted). With one port, flow 2 gets no
#     socket (its datagram is dropped, counted) and never A's answer (before:
#     flow 2 got "reply:A"); with two, flow 2 gets the other port and its
#     own answer only.
. "$(dirname "$0")/lib.sh"
need python3
is_root || skip "needs root for network namespaces"
loopback_netns airlock-dp
read -r S U M <<<"$(free_ports 3)"

# the target: answers each datagram after 600 ms with "reply:" and the datagram
start target ip netns exec "$NS" python3 -c '
import socket, sys, threading
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    data, addr = s.recvfrom(65536)
    threading.Timer(0.6, s.sendto, (b"reply:" + data, addr)).start()' "$U"
cat >"$T/airlock.yaml" <<EOF
threads: 1
metrics: tcp:127.0.0.1:$M
relays:
  - name: dns-out
    listen: tcp:127.0.0.1:$S
    target: udp:127.0.0.1:$U
    max_flows: 1
EOF
start airlock ip netns exec "$NS" "$AIRLOCK" run -c "$T/airlock.yaml"
wait_log "$T/airlock.log" 'airlock running'

# ask: flow 1 sends A, flow 2 sends B 200 ms later on one stream; prints
# each reply frame as "FLOW PAYLOAD" for 2 s
cat >"$T/ask.py" <<'PY'
import socket, struct, sys, time
def frame(flow, payload):
    return struct.pack(">BBHI", 0xA1, 0x01, len(payload), flow) + payload
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(frame(1, b"A"))
time.sleep(0.2)
s.sendall(frame(2, b"B"))
buf, deadline = b"", time.time() + 2
s.settimeout(0.2)
while time.time() < deadline:
    try:
        chunk = s.recv(65536)
    except socket.timeout:
        continue
    if not chunk:
        break
    buf += chunk
while len(buf) >= 8:
    (n,) = struct.unpack(">H", buf[2:4])
    (flow,) = struct.unpack(">I", buf[4:8])
    print(flow, buf[8:8 + n].decode())
    buf = buf[8 + n:]
PY
ask() { ip netns exec "$NS" python3 "$T/ask.py" "$S" >"$T/ask.out" 2>&1 || fail "ask: $(cat "$T/ask.out")"; }

log "one ephemeral port: the evicted flow's port is not the next flow's"
ip netns exec "$NS" sysctl -qw net.ipv4.ip_local_port_range="40000 40000"
ask
grep -q '^2 reply:A$' "$T/ask.out" && fail "flow 2 got flow 1's answer: $(cat "$T/ask.out")"
grep -q '^2 ' "$T/ask.out" && fail "flow 2 had a socket on the resting port: $(cat "$T/ask.out")"
[ "$(ip netns exec "$NS" curl -sf "http://127.0.0.1:$M/metrics" |
    awk '$1 ~ /^airlock_datagrams_dropped_total\{relay="dns-out",reason="error"\}$/ { print $2 }')" -ge 1 ] ||
    fail "the dropped datagram was not counted"

log "two ephemeral ports: the next flow gets the other one, and its own answer"
sleep "$((10 + 1))" # the one port rests no longer
ip netns exec "$NS" sysctl -qw net.ipv4.ip_local_port_range="40000 40001"
ask
grep -q '^2 reply:A$' "$T/ask.out" && fail "flow 2 got flow 1's answer: $(cat "$T/ask.out")"
grep -q '^2 reply:B$' "$T/ask.out" || fail "flow 2 did not get its answer: $(cat "$T/ask.out")"
log ok
