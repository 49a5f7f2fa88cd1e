#!/bin/bash
# t_proxy_bad_header: a client that sends a listener with accept_proxy v2
# something other than a PROXY v2 header (an HTTP request, then 192 KiB
# more, as a client pointed at the wrong port does) sees an orderly end:
# EOF, not a reset; and the listener logs a line naming that client (its
# address and port) and why. For a relay, a field-encryption proxy and
# smartgrid-server --accept-proxy v2; and for a relay's hvsock listener
# given a wrong CONNECT line. Before, each closed the socket with the
# client's bytes unread, which the kernel answers with a reset (the relay
# only peeks at them: always; the proxy and smartgrid-server read a part);
# and the lines did not name the client. Afterwards every socket is closed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"
need python3

read -r PP P S M <<<"$(free_ports 4)"
start server socat TCP-LISTEN:"$S",bind=127.0.0.1,reuseaddr,fork SYSTEM:"echo never"
cat >"$T/airlock.yaml" <<EOF
metrics: tcp:127.0.0.1:$M
relays:
  - name: pp
    listen: tcp:127.0.0.1:$PP
    target: tcp:127.0.0.1:$S
    accept_proxy: v2
  - name: dev
    listen: hvsock:$T/dev.sock:5000
    target: tcp:127.0.0.1:$S
EOF
if has_field; then
    keyset_file "$T/keys.json" acme k1 k1
    cat >>"$T/airlock.yaml" <<EOF
proxies:
  - name: api
    listen: tcp:127.0.0.1:$P
    backend: tcp:127.0.0.1:$S
    keyset: $T/keys.json
    accept_proxy: v2
    routes:
      - {name: seal, path: /seal, encrypt: ["\$.ssn"]}
EOF
fi
airlock_up al run -c "$T/airlock.yaml"
al=$LAST_PID
LOG=$T/al.log
sockets() { fd_kinds "$al" | cut -d' ' -f1; }
base=$(sockets)

# bad tcp:PORT|unix:PATH FIRST: sends the line FIRST, then 192 KiB, and
# reads until the end; prints how it ended (eof, or the exception) and the
# client's own port ("-" on a unix socket)
bad() {
    python3 - "$1" "$2" <<'PY'
import socket, sys
kind, _, where = sys.argv[1].partition(":")
if kind == "tcp":
    s = socket.create_connection(("127.0.0.1", int(where)), timeout=30)
    port = str(s.getsockname()[1])
else:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(where)
    port = "-"
end = "eof"
try:
    s.sendall(sys.argv[2].encode() + b"\r\n" + b"x" * (192 * 1024))
    while s.recv(4096):
        pass
except OSError as e:
    end = type(e).__name__
print(end, port)
PY
}

# expect_eof WHERE FIRST: bad() ended with EOF; the client's port in $CPORT
expect_eof() {
    local end
    read -r end CPORT <<<"$(bad "$1" "$2")"
    [ "$end" = eof ] || fail "$1, sent '$2': the client saw $end, not an EOF"
}

log "a relay with accept_proxy v2"
expect_eof "tcp:$PP" 'GET / HTTP/1.1'
wait_log "$LOG" "relay=pp conn=[0-9]+ client=127\.0\.0\.1:$CPORT bad PROXY v2 header: bad signature"
wait_log "$LOG" "close relay=pp conn=[0-9]+ client=127\.0\.0\.1:$CPORT .*end=bad_preamble"

log "a relay's hvsock listener given a CONNECT line for another port"
expect_eof "unix:$T/dev.sock" 'CONNECT 5001'
wait_log "$LOG" "relay=dev conn=[0-9]+ bad hvsock CONNECT line"

if has_field; then
    log "a field-encryption proxy with accept_proxy v2"
    expect_eof "tcp:$P" 'POST /seal HTTP/1.1'
    wait_log "$LOG" "http proxy=api conn=[0-9]+ client=127\.0\.0\.1:$CPORT bad PROXY v2 header: bad signature"
fi

log "smartgrid-server --accept-proxy v2"
sg_one_user sg "$T/inst" --accept-proxy v2
expect_eof "tcp:$SG_PORT" 'GET / HTTP/1.1'
wait_log "$T/sg.log" \
    "connection refused reason=bad_proxy_header client=127\.0\.0\.1:$CPORT error=\"bad signature\""

sockets_back() { [ "$(sockets)" = "$base" ]; }
wait_for sockets_back # every lingering socket closed
stop_clean "$al" al
! grep -Eq "runtime error|AddressSanitizer" "$LOG" || fail "sanitizer report in the log"
log "pass"
