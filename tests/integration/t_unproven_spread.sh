#!/bin/bash
# t_unproven_spread: a relay with accept_proxy: v2, max_connections 4 and
# two worker threads, full of partial PROXY headers (four stallers, on
# both threads); then four newcomers that connect first, each on a claim
# of a staller's place, and send their whole headers only once all four
# are in. Proves: every newcomer is relayed (echo) in the place of a
# staller: the four stallers are closed, airlock_connections_closed_total
# {end=evicted} is 4, nobody is refused. Before, the claims all went to
# one thread, whose newcomers then evicted each other (or were refused)
# while the other thread's stallers kept their places.
. "$(dirname "$0")/lib.sh"
need python3 socat

read -r P ECHO M <<<"$(free_ports 3)"
start echo socat TCP-LISTEN:"$ECHO",bind=127.0.0.1,reuseaddr,fork PIPE
wait_for tcp_up "$ECHO"
cat >"$T/airlock.yaml" <<YAML
threads: 2
metrics: tcp:127.0.0.1:$M
relays:
  - name: p
    listen: tcp:127.0.0.1:$P
    target: tcp:127.0.0.1:$ECHO
    accept_proxy: v2
    preamble_timeout: 60s
    max_connections: 4
YAML
airlock_up al run -c "$T/airlock.yaml"
opened() { [ "$(metric airlock_connections_open 'relay="p"' "$M")" = "$1" ]; }

log "four stallers, then four newcomers waiting with claims"
start stallers python3 -u "$ROOT/tests/tools/stall.py" "$P" 4 '\r\n\r\n\x00\r' "$T/stallers.ready" 127.0.1.1+
wait_for test -e "$T/stallers.ready"
wait_for opened 4
cat >"$T/newcomers.py" <<'PY'
import os, socket, struct, sys, time
port, ready, go = int(sys.argv[1]), sys.argv[2], sys.argv[3]
socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(4)]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.05)
for i, s in enumerate(socks):  # v2 PROXY, TCP over IPv4 from 127.0.3.(i+1)
    addrs = socket.inet_aton("127.0.3.%d" % (i + 1)) + socket.inet_aton("127.0.0.1")
    s.sendall(b"\r\n\r\n\x00\r\nQUIT\n\x21\x11" + struct.pack("!H", 12) + addrs +
              struct.pack("!HH", 12345, 80) + b"ping%d\n" % i)
for i, s in enumerate(socks):
    try:
        got = s.recv(16).decode(errors="replace").strip()
    except OSError:
        got = ""
    print("newcomer", i, got or "closed")
PY
start newcomers python3 -u "$T/newcomers.py" "$P" "$T/newcomers.ready" "$T/go"
wait_for test -e "$T/newcomers.ready"
wait_for opened 8

log "their headers: each takes a staller's place"
touch "$T/go"
answered() { [ "$(grep -c '^newcomer' "$T/newcomers.log")" = 4 ]; }
wait_for answered
for i in 0 1 2 3; do
    has -x "newcomer $i ping$i" <"$T/newcomers.log" ||
        fail "newcomer $i was not relayed: $(grep "^newcomer $i " "$T/newcomers.log")"
done
stallers_closed() { [ "$(grep -c '^closed' "$T/stallers.log")" = 4 ]; }
wait_for stallers_closed
evicted=$(metric airlock_connections_closed_total 'relay="p",end="evicted"' "$M")
[ "$evicted" = 4 ] || fail "airlock_connections_closed_total{end=evicted} is $evicted, not 4"
! grep -q 'refused relay=p' "$T/al.log" || fail "refused: $(grep 'refused relay=p' "$T/al.log")"
log "ok"
