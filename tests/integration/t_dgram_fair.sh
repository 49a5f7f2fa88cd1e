#!/bin/bash
# t_dgram_fair: one client of a datagram relay cannot take another's
# answer by opening flows. Every enclave client shares the one stream of
# udp:127.0.0.1:P -> unix:$T/d.sock (enclave side) and unix:$T/d.sock ->
# udp:127.0.0.1:U (host side), whose host side holds max_flows (256) flows:
#   - a client asks "slow" (the server holds that answer back until it has
#     answered 300 others); 300 one-shot clients, each from its own port,
#     ask and get their answer at once. The slow client gets its answer:
#     full tables give up answered flows first (before: the least recently
#     used, the slow client's flow in flight, went and its answer was lost;
#     airlock_datagram_flows_evicted_waiting_total counts such evictions).
#   - 300 clients send queries the server never answers: the answered flows
#     go first, then the oldest waiting ones (the stream side cannot tell
#     clients apart), counted as evicted while waiting.
. "$(dirname "$0")/lib.sh"
need python3 curl
read -r P U M <<<"$(free_ports 3)"

# the target: answers "fast" and "release" at once, "slow" once it has
# answered 300 fast ones, "mute" never
start target python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
held, fast = [], 0
while True:
    data, addr = s.recvfrom(65536)
    if data.startswith(b"slow"):
        held.append(addr)
    elif data.startswith(b"fast"):
        s.sendto(b"reply:" + data, addr)
        fast += 1
    if fast >= 300:
        for a in held:
            s.sendto(b"reply:slow", a)
        held, fast = [], 0' "$U"
wait_for bash -c "ss -Hluln 'sport = :$U' | grep -q ."
cat >"$T/airlock.yaml" <<EOF
threads: 1
metrics: tcp:127.0.0.1:$M
relays:
  - name: dns-host
    listen: unix:$T/d.sock
    target: udp:127.0.0.1:$U
  - name: dns-enclave
    listen: udp:127.0.0.1:$P
    target: unix:$T/d.sock
EOF
airlock al run -c "$T/airlock.yaml"
AL=$LAST_PID
wait_log "$T/al.log" "relay=dns-enclave conn=[0-9]+ stream to unix:$T/d.sock up"

m() { metric "$1" "relay=\"$2\"" "$M"; }

log "a slow query in flight, 300 one-shot clients answered at once"
python3 - "$P" >"$T/ask.out" 2>&1 <<'PY' || fail "clients: $(cat "$T/ask.out")"
import socket, sys
to = ("127.0.0.1", int(sys.argv[1]))
def sock():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(10)
    return s
slow = sock()
slow.sendto(b"slow", to)
done = []  # kept open: each client has a port of its own
for i in range(300):
    c = sock()
    c.sendto(b"fast-%d" % i, to)
    assert c.recvfrom(65536)[0] == b"reply:fast-%d" % i, "fast client %d" % i
    done.append(c)
try:
    print(slow.recvfrom(65536)[0].decode())
except socket.timeout:
    print("slow: no answer")
PY
evicted=$(m airlock_datagram_flows_evicted_total dns-host)
waiting=$(m airlock_datagram_flows_evicted_waiting_total dns-host)
log "slow client: $(cat "$T/ask.out"); host side: $evicted flows evicted, $waiting waiting"
[ "$evicted" = 45 ] || fail "$evicted flows evicted (301 flows, max_flows 256)"
grep -qx 'reply:slow' "$T/ask.out" || fail "the slow client lost its answer: $(cat "$T/ask.out")"
[ "$waiting" = 0 ] || fail "$waiting flows evicted while waiting for an answer"

log "300 clients whose queries stay unanswered: answered flows go first"
# in groups of 20, each relayed before the next (none lost to a full
# socket buffer)
python3 - "$P" "$M" <<'PY' || fail "the host side did not relay the 300 queries"
import socket, sys, time, urllib.request
def relayed():
    with urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[2]) as r:
        for line in r.read().decode().splitlines():
            if line.startswith('airlock_datagrams_in_total{relay="dns-host"} '):
                return int(line.split()[1])
clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for i in range(300)]
for i, c in enumerate(clients):
    c.sendto(b"mute-%d" % i, ("127.0.0.1", int(sys.argv[1])))
    deadline = time.time() + 10
    while (i + 1) % 20 == 0 and relayed() < 301 + i + 1:
        assert time.time() < deadline, "%d of %d relayed" % (relayed() - 301, i + 1)
        time.sleep(0.05)
PY
# 256 answered flows make room for the first 256, the oldest waiting for the
# other 44
waiting=$(m airlock_datagram_flows_evicted_waiting_total dns-host)
[ "$waiting" = 44 ] || fail "$waiting flows evicted while waiting, not 44"
[ "$(m airlock_datagram_flows dns-host)" = 256 ] || fail "not max_flows (256) flows open"
stop_clean "$AL" al
log ok
