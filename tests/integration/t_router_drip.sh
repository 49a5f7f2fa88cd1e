#!/bin/bash
# t_router_drip: ClientHellos that come a byte per segment cost the router
# about what they cost their senders. 20 clients (distinct addresses) each
# send a ClientHello of ~4.9 KiB framed as 1-byte TLS records (~30 KiB on
# the wire, under twice max_hello) one byte per send() with TCP_NODELAY, all
# at once. Every one is routed, and the upstream (a capture) gets each
# byte for byte. The router's CPU time (user + system, /proc: a cost, not a
# deadline) over the whole run stays under 3 times the senders'. Peeking
# at the whole queue again at every segment made the kernel walk it from
# its head for each segment it copied: ~30 s of the router's CPU for the
# senders' ~4 s (ASan build), with both worker loops busy, so that another
# client waited 13 s for an answer. The router's fds are back to their
# baseline afterwards.
. "$(dirname "$0")/lib.sh"
need python3
CLIENTS=20
read -r R CAP <<<"$(free_ports 2)"
mkdir "$T/cap"
# the capture: each connection's bytes in $T/cap/N once it closed
start capture python3 -c "
import os, socket, threading
def serve(c, n):
    got = b''
    while True:
        d = c.recv(65536)
        if not d: break
        got += d
    open('$T/cap/%d.part' % n, 'wb').write(got)
    os.rename('$T/cap/%d.part' % n, '$T/cap/%d' % n)
    c.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $CAP)); s.listen(64); n = 0
while True:
    c, _ = s.accept(); n += 1
    threading.Thread(target=serve, args=(c, n), daemon=True).start()
"
wait_for tcp_up "$CAP"
cat >"$T/airlock.yaml" <<YAML
routers:
  - name: drip
    listen: tcp:127.0.0.1:$R
    routes:
      - {name: api.example.org, target: tcp:127.0.0.1:$CAP}
    peek_timeout: 120s
YAML
airlock_up al run -c "$T/airlock.yaml"
al=$LAST_PID
fds0=$(fd_count "$al")
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

log "$CLIENTS clients send a ClientHello in 1-byte records, a byte per segment"
a=$(cpu "$al")
sender=$(timeout 300 python3 "$ROOT/tests/tools/hello_drip.py" "$R" "$CLIENTS" \
    "$ROOT/tests/fuzz/corpus/tls_hello/openssl_tls13" "$T/sent")
b=$(cpu "$al")
wait_ends "$T/al.log" eof "$CLIENTS"
[ "$(ls "$T/cap" | grep -vc part)" = "$CLIENTS" ] || fail "$(ls "$T/cap" | wc -l) captures"
for f in "$T"/cap/*; do
    cmp -s "$f" "$T/sent" || fail "the upstream got $(stat -c %s "$f") bytes, not the $(stat -c %s "$T/sent") sent"
done
router=$(awk -v t=$((b - a)) -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')
log "router CPU ${router}s, senders' ${sender}s"
awk -v r="$router" -v s="$sender" 'BEGIN { exit !(r <= 3 * s) }' ||
    fail "the router spent ${router}s of CPU on ClientHellos its senders sent in ${sender}s"
wait_for sh -c "[ \$(ls /proc/$al/fd | wc -l) -le $fds0 ]"
stop_clean "$al" al
log "ok"
