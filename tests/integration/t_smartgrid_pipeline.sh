#!/bin/bash
# t_smartgrid_pipeline: a logged-in client that pipelines requests and reads
# no answer holds a bounded amount of the server's memory: the server stops
# reading that connection's requests while 64 KiB of its answers wait, so the
# client soon cannot send more (what it sent then waits in the kernel's
# socket buffers). Before, the server read every request and kept every
# answer: all 100,000 were sent. Then the client reads, and gets one answer
# for each request it sent: none is lost.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"
need python3
sg_one_user srv "$T/inst" --max-body 16KiB
SRV=$LAST_PID
sg_login $U

# the client: sends up to N pipelined requests (for a path that is not
# there: an answer costs the server little) until the server stops taking
# them (nothing sent for 1 s), writes how many it sent to a file and waits
# for a line on a fifo; then reads the answers and prints how many it got
mkfifo "$T/go"
python3 - "$SG_PORT" "$U.grid.$SG_DOMAIN" "$SG/ca.pem" "$SG/users/$U.pem" "$SG/users/$U.key" \
    "$SG_TOKEN" "$T/sent" "$T/go" >"$T/client.out" 2>"$T/client.err" <<'PY' &
import select, socket, ssl, sys
port, host, ca, cert, key, token, flag, go = sys.argv[1:9]
N = 100000
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
raw = socket.create_connection(("127.0.0.1", int(port)))
raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s = ctx.wrap_socket(raw, server_hostname=host)
s.setblocking(False)
req = (f"GET /nothing-here HTTP/1.1\r\nHost: {host}\r\n"
       f"Authorization: Bearer {token}\r\n\r\n").encode()
sent = 0
while sent < N:
    try:
        s.send(req)  # whole or not at all (OpenSSL writes no part of a record)
        sent += 1
    except ssl.SSLWantWriteError:
        if not select.select([], [s], [], 1)[1]:
            break
open(flag, "w").write(f"{sent}\n")
open(go).readline()
s.setblocking(True)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)  # a small window reads slowly
buf, off, answers = b"", 0, 0
while answers < sent:
    b = s.recv(1 << 20)
    if not b:
        break
    buf = buf[off:] + b
    off = 0
    while True:
        head_end = buf.find(b"\r\n\r\n", off)
        if head_end < 0:
            break
        head = buf[off:head_end].decode()
        length = int([l.split(":")[1] for l in head.split("\r\n")
                      if l.lower().startswith("content-length:")][0])
        if len(buf) < head_end + 4 + length:
            break
        assert head.startswith("HTTP/1.1 404"), head.splitlines()[0]
        off = head_end + 4 + length
        answers += 1
print(answers)
PY
CLIENT=$!
wait_until 120 test -s "$T/sent" || fail "the client never wrote how many it sent: $(cat "$T/client.err")"
sent=$(cat "$T/sent")
echo go >"$T/go"
wait "$CLIENT" || fail "the client failed: $(cat "$T/client.err")"
log "sent before the server stopped reading: $sent of 100000"
[ "$sent" -lt 100000 ] || fail "the server read all 100000 requests of a client that reads no answer"
[ "$(cat "$T/client.out")" = "$sent" ] || fail "answers read: $(cat "$T/client.out") of $sent"
running "$SRV" || fail "the server exited"
log ok
