#!/bin/bash
# t_dgram_refused: a peer of a stream -> udp datagram relay that the relay
# refuses sees an orderly end, EOF, not a reset, even with more of its
# bytes unread: a bad frame (then 192 KiB more) on a tcp listener, a
# CONNECT line for another port (then 192 KiB more) on an hvsock listener
# (its unix socket, as a Firecracker or Cloud Hypervisor device). Before,
# the relay closed the stream with those bytes unread, which the kernel
# answers with a reset. The close is logged and counted once (end=bad_frame,
# end=bad_preamble). A refused stream waiting for its peer to close holds
# its place for a while at most and is the first a newcomer takes: with
# max_fds 6 (three streams), a silent stream and two refused streams whose
# peers never close, a newcomer takes a refused one's place, not the silent
# one's (which a newcomer of its peer takes first otherwise), and the
# refused streams' sockets close without their peers.
. "$(dirname "$0")/lib.sh"

need python3 ss curl
FLOOD=$ROOT/tests/tools/frame_flood.py

read -r M U D S <<<"$(free_ports 4)"
MPORT=$M
start echo python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    data, addr = s.recvfrom(65536)
    s.sendto(data, addr)' "$U"
wait_for bash -c "ss -Hluln 'sport = :$U' | grep -q ."
cat >"$T/airlock.yaml" <<EOF
metrics: tcp:127.0.0.1:$M
relays:
  - name: dns
    listen: tcp:127.0.0.1:$D
    target: udp:127.0.0.1:$U
  - name: dev
    listen: hvsock:$T/dev.sock:53
    target: udp:127.0.0.1:$U
  - name: small
    listen: tcp:127.0.0.1:$S
    target: udp:127.0.0.1:$U
    max_fds: 6
EOF
airlock_up al run -c "$T/airlock.yaml"
al=$LAST_PID
LOG=$T/al.log
sockets() { fd_kinds "$al" | cut -d' ' -f1; }
base=$(sockets)

# refused.py tcp:PORT|unix:PATH HEX [hold]: sends the bytes HEX, then 192
# KiB, and reads until the end; prints how it ended (eof, or the exception).
# With hold: after the EOF, holds the socket open (never closes it) until
# killed.
cat >"$T/refused.py" <<'PY'
import socket, sys, time
kind, _, where = sys.argv[1].partition(":")
if kind == "tcp":
    s = socket.create_connection(("127.0.0.1", int(where)), timeout=30)
else:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(where)
end = "eof"
try:
    s.sendall(bytes.fromhex(sys.argv[2]) + b"x" * (192 * 1024))
    while s.recv(4096):
        pass
except OSError as e:
    end = type(e).__name__
print(end, flush=True)
while len(sys.argv) > 3:
    time.sleep(60)
PY
refused() { python3 "$T/refused.py" "$@"; }
BAD_FRAME=a10200040000000700000000 # type 2: no frame type of this protocol
CONNECT_54=$(printf 'CONNECT 54\n' | od -An -tx1 | tr -d ' \n')

log "a bad frame, then 192 KiB: EOF"
end=$(refused "tcp:$D" "$BAD_FRAME")
[ "$end" = eof ] || fail "a bad frame: the peer saw $end, not an EOF"
wait_log "$LOG" "relay=dns conn=[0-9]+ peer=127\.0\.0\.1:[0-9]+ bad frame after 0 frames"
wait_log "$LOG" "close relay=dns conn=[0-9]+ client=127\.0\.0\.1:[0-9]+ .*end=bad_frame"

log "after good frames, a bad one: EOF"
GOOD3=$(python3 -c "
import struct, sys
f = struct.pack('>BBHI', 0xA1, 1, 4, 9) + b'ping'
sys.stdout.write((f * 3).hex())")
end=$(refused "tcp:$D" "$GOOD3$BAD_FRAME")
[ "$end" = eof ] || fail "a bad frame after good ones: the peer saw $end, not an EOF"
wait_log "$LOG" "bad frame after 3 frames"

log "an hvsock CONNECT line for another port, then 192 KiB: EOF"
end=$(refused "unix:$T/dev.sock" "$CONNECT_54")
[ "$end" = eof ] || fail "a bad CONNECT line: the peer saw $end, not an EOF"
wait_log "$LOG" "relay=dev conn=[0-9]+ bad hvsock CONNECT line"
wait_log "$LOG" "close relay=dev conn=[0-9]+ client=.* end=bad_preamble"

log "the relays still answer"
[ "$(timeout 10 python3 "$FLOOD" ask "$D" ping-d)" = ping-d ] || fail "relay dns does not answer"

log "max_fds 6 (three streams): a newcomer takes a refused stream's place, not a silent one's"
start silent python3 "$FLOOD" streams "$S" 1 "$T/silent.ready"
SILENT=$LAST_PID
wait_for test -e "$T/silent.ready"
for i in 1 2; do
    start "hold$i" python3 "$T/refused.py" "tcp:$S" "$BAD_FRAME" hold
done
wait_for eval '[ "$(cat "$T/hold1.log" "$T/hold2.log" | wc -l)" = 2 ]'
[ "$(cat "$T/hold1.log" "$T/hold2.log")" = "$(printf 'eof\neof')" ] ||
    fail "held: $(cat "$T/hold1.log" "$T/hold2.log")"
[ "$(timeout 10 python3 "$FLOOD" ask "$S" ping-s)" = ping-s ] || fail "a good stream was kept out by refused ones"
[ "$(grep -c "close relay=small .*end=bad_frame" "$LOG")" = 2 ] || fail "$(grep "close relay=small" "$LOG")"
grep -q "close relay=small .*end=evicted" "$LOG" && fail "evicted: the silent stream, or a refused one logged twice"

log "the refused streams' sockets close though their peers never do"
kill "$SILENT"
sockets_back() { [ "$(sockets)" = "$base" ]; }
wait_for sockets_back
for r in dns:bad_frame:2 dev:bad_preamble:1 small:bad_frame:2 small:evicted:0; do
    IFS=: read -r relay end n <<<"$r"
    got=$(metric airlock_connections_closed_total "relay=\"$relay\",end=\"$end\"" "$M")
    [ "$got" = "$n" ] || fail "relay $relay: $got closes end=$end, expected $n"
done
stop_clean "$al" al
! grep -Eq "runtime error|AddressSanitizer" "$LOG" || fail "sanitizer report in the log"
log "pass"
