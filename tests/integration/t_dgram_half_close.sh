#!/bin/bash
# t_dgram_half_close: the stream side of a datagram relay (stream -> udp)
# answers what a peer sent before it shut down its write side:
#   - a peer sends three queries and half-closes at once; the udp server
#     answers each 0.3 s later: all three answers arrive, then the end
#     (end=eof). Before: the relay closed at the peer's EOF, the answers
#     were lost;
#   - one flow whose query is never answered: the answered one arrives, and
#     the stream closes once the other flow is forgotten (flow_idle_timeout);
#   - a stream that ends inside a frame is refused with a line that says so
#     (end=bad_frame; before: end=eof, the partial frame silently dropped).
# Afterwards the relay's fds are back to their baseline.
. "$(dirname "$0")/lib.sh"

need python3 ss

read -r U D <<<"$(free_ports 2)"
# a udp server that answers each datagram 0.3 s later, except "never"
start udp python3 -c '
import socket, sys, threading
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    data, addr = s.recvfrom(65536)
    if data != b"never":
        threading.Timer(0.3, s.sendto, (data, addr)).start()' "$U"
wait_for bash -c "ss -Hluln 'sport = :$U' | grep -q ."

cat >"$T/airlock.yaml" <<EOF
drain_timeout: 1s
relays:
  - name: dns
    listen: tcp:127.0.0.1:$D
    target: udp:127.0.0.1:$U
    flow_idle_timeout: 1s
EOF
airlock_up al run -c "$T/airlock.yaml"
AL=$LAST_PID
base=$(fd_count "$AL")

# peer.py PAYLOAD...: one stream, a frame per payload (flow ids 1, 2, ...)
# in one write, then a half-close; prints each answer's flow id and
# payload, then "eof" at the end (within 30 s, else "open").
cat >"$T/peer.py" <<'EOF'
import socket, struct, sys

s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"".join(struct.pack(">BBHI", 0xA1, 1, len(p), i + 1) + p.encode()
                   for i, p in enumerate(sys.argv[2:])))
s.shutdown(socket.SHUT_WR)
s.settimeout(30)
buf = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        buf += d
        while len(buf) >= 8 and len(buf) >= 8 + struct.unpack(">H", buf[2:4])[0]:
            n = 8 + struct.unpack(">H", buf[2:4])[0]
            print(struct.unpack(">I", buf[4:8])[0], buf[8:n].decode())
            buf = buf[n:]
    print("eof")
except socket.timeout:
    print("open")
EOF

log "three queries, then a half-close: three answers, then the end"
got=$(timeout 60 python3 "$T/peer.py" "$D" one two three | sort)
[ "$got" = "$(printf '1 one\n2 two\n3 three\neof')" ] || fail "answers after the half-close: $got"
wait_ends "$T/al.log" eof 1

log "an answered flow and one never answered: the answer, then the end"
got=$(timeout 60 python3 "$T/peer.py" "$D" never answered | sort)
[ "$got" = "$(printf '2 answered\neof')" ] || fail "answers with one flow never answered: $got"
wait_ends "$T/al.log" eof 2

log "a stream that ends inside a frame is refused"
python3 -c '
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(struct.pack(">BBHI", 0xA1, 1, 10, 1) + b"half")
s.shutdown(socket.SHUT_WR)
s.settimeout(30)
while s.recv(65536):
    pass' "$D"
wait_ends "$T/al.log" bad_frame 1
grep -q "bad frame after 0 frames: the stream ended inside one (12 bytes of it)" "$T/al.log" ||
    fail "no line for the frame cut short"

poll_until 10 fds_at_most "$AL" "$base" || fail "$(fd_count "$AL") fds, $base before"
stop_clean "$AL" al
log "pass"
