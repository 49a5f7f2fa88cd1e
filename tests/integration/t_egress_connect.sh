#!/bin/bash
# t_egress_connect: the enclave's outbound HTTPS through an HTTP CONNECT
# proxy, checked against the host's allowlist.
#
#   "enclave" netns (lo only)                       "host" netns (lo only)
#   curl, HTTPS_PROXY=http://127.0.0.1:3128
#     -> airlock tcp:127.0.0.1:3128 -> unix:$T/egress.sock (stand-in for vsock)
#                                    -> airlock unix:$T/egress.sock -> egress
#                                         -> openssl s_server 127.0.0.1:$TLS
#                                            (svc.egress.test, self-signed)
#
# The host side runs in private network, mount and pid namespaces: its
# /etc/hosts maps svc.egress.test to 127.0.0.1 and other.egress.test to
# 127.0.0.2, its resolv.conf points at 127.0.0.1:53 where nothing answers.
# Proves: curl reaches the allowed name and sees its certificate and body;
# a name not listed gets 403 not_allowed_name, a listed name at another
# port 403 not_allowed_port, a listed name that resolves to an unlisted
# loopback address 403 private_address (DNS rebinding), an unlisted
# loopback literal 403 private_address, an unresolvable listed name 502
# resolve_failed; a PROXY v2 header with an authority TLV goes to that name;
# a GET gets 405, garbage 400, a broken PROXY header a plain
# close - each logged and counted, while a tunnel held open through all of
# it keeps working, and the host relay's sockets return to their count.
. "$(dirname "$0")/lib.sh"

need openssl curl socat nsenter python3
host_namespaces

resolv_conf 1
printf '127.0.0.1 localhost\n127.0.0.1 svc.egress.test echo.egress.test\n127.0.0.2 other.egress.test\n' >"$T/hosts"
mount --bind "$T/hosts" /etc/hosts

read -r TLS ECHO M <<<"$(free_ports 3)"
mkdir -p "$T/www"
TOKEN=egress-ok-$$-$RANDOM
echo "$TOKEN" >"$T/www/hello.txt"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=svc.egress.test -addext subjectAltName=DNS:svc.egress.test \
    -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null || fail "openssl req failed"
start tls bash -c "cd '$T/www' && exec openssl s_server -accept 127.0.0.1:$TLS \
    -cert '$T/cert.pem' -key '$T/key.pem' -WWW"
start echo socat TCP-LISTEN:"$ECHO",bind=127.0.0.1,reuseaddr,fork PIPE
wait_for tcp_up "$TLS"
wait_for tcp_up "$ECHO"

cat >"$T/host.yaml" <<EOF
metrics: tcp:127.0.0.1:$M
relays:
  - name: egress
    listen: unix:$T/egress.sock
    target: egress
    egress_allow:
      - svc.egress.test:$TLS
      - other.egress.test:$TLS
      - nosuch.egress.test:$TLS
      - echo.egress.test:$ECHO
      - 127.0.0.1:$TLS      # loopback is refused unless a CIDR opens it
      - 127.0.0.1:$ECHO
EOF
airlock_up host run -c "$T/host.yaml"
host=$LAST_PID
LOG=$T/host.log
sockets() { fd_kinds "$1" | cut -d' ' -f1; }
host_sockets=$(sockets "$host")

# the enclave: a network namespace with nothing but lo, and its relay
start enclave unshare --net bash -c "ip link set lo up && exec '$AIRLOCK' relay \
    tcp:127.0.0.1:3128 'unix:$T/egress.sock' --name enclave"
enclave=$LAST_PID
enc() { nsenter --net="/proc/$enclave/ns/net" "$@"; }
wait_for grep -q 'airlock running' "$T/enclave.log"
enc ip -o link | has -v ' lo:' && fail "the enclave namespace has more than lo"

denied() { metric airlock_egress_denied_total "relay=\"egress\",reason=\"$1\"" "$M"; }
# via_curl URL: the CONNECT status curl saw (000 when none)
via_curl() {
    enc env HTTPS_PROXY=http://127.0.0.1:3128 curl -s -o /dev/null --max-time 10 \
        --cacert "$T/cert.pem" -w '%{http_connect}' "$1" || true
}
# raw LINE: what the proxy answers a hand-written request (sent as printf %b),
# read until it closes. The client's side stays open meanwhile: one that
# closes it before its tunnel is dropped at once, lookup and all
# (docs/architecture.md), and would race its own answer.
raw() {
    printf '%b' "$1" | enc timeout 5 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", 3128), timeout=5)
s.sendall(sys.stdin.buffer.read())
while True:
    try:
        d = s.recv(4096)
    except OSError:
        break
    if not d:
        break
    sys.stdout.buffer.write(d)
' | tr -d '\r'
}

log "a tunnel held open through what follows (CONNECT to an echo server)"
coproc HELD { enc socat -t 30 - TCP:127.0.0.1:3128; }
held_pid=$HELD_PID # bash unsets HELD_PID once the coproc has exited
printf 'CONNECT 127.0.0.1:%s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n\r\n' "$ECHO" "$ECHO" >&"${HELD[1]}"
read -r -t 5 status <&"${HELD[0]}" || fail "no answer to the held CONNECT"
[ "${status%$'\r'}" = "HTTP/1.1 200 Connection established" ] || fail "held CONNECT: '$status'"
read -r -t 5 blank <&"${HELD[0]}"
[ "${blank%$'\r'}" = "" ] || fail "no empty line after the 200: '$blank'"
held_echo() {
    local line
    echo "$1" >&"${HELD[1]}"
    read -r -t 5 line <&"${HELD[0]}" || fail "no echo of $1 through the held tunnel"
    [ "$line" = "$1" ] || fail "echo of $1 gave '$line'"
}
held_echo first

log "curl inside the enclave reaches svc.egress.test through HTTPS_PROXY"
got=$(enc env HTTPS_PROXY=http://127.0.0.1:3128 curl -sS --max-time 10 --cacert "$T/cert.pem" \
    "https://svc.egress.test:$TLS/hello.txt") || fail "curl through the egress relay failed"
[ "$got" = "$TOKEN" ] || fail "curl got '$got', not the token"
subject=$(enc env HTTPS_PROXY=http://127.0.0.1:3128 curl -sS -v --max-time 10 \
    --cacert "$T/cert.pem" "https://svc.egress.test:$TLS/hello.txt" 2>&1 >/dev/null |
    grep -m1 'subject:') || fail "no certificate subject in curl -v"
[[ $subject == *CN=svc.egress.test* ]] || fail "certificate: $subject"
wait_log "$LOG" "close relay=egress conn=[0-9]+ client=unix:- dest=svc.egress.test:$TLS .*end=eof"
enc curl -s --max-time 3 "https://svc.egress.test:$TLS/" >/dev/null 2>&1 &&
    fail "the enclave reached the server without the proxy"

log "a name not listed: 403 not_allowed_name"
[ "$(via_curl "https://denied.egress.test:$TLS/")" = 403 ] || fail "denied.egress.test was not 403"
reply=$(raw 'CONNECT denied.egress.test:443 HTTP/1.1\r\nHost: denied.egress.test:443\r\n\r\n')
[ "$(head -1 <<<"$reply")" = "HTTP/1.1 403 Forbidden" ] || fail "raw denied CONNECT: $reply"
[ "$(tail -1 <<<"$reply")" = "egress denied: not_allowed_name" ] || fail "403 body: $reply"
grep -q "egress denied relay=egress conn=[0-9]* via=connect dest=denied.egress.test:$TLS addr=- range=- reason=not_allowed_name" "$LOG" ||
    fail "no log line for the denied name"
[ "$(denied not_allowed_name)" = 2 ] || fail "not_allowed_name count is $(denied not_allowed_name)"
grep -q "resolve host=denied.egress.test" "$LOG" && fail "a name not listed was resolved"

log "a listed name at another port: 403 not_allowed_port"
[ "$(via_curl "https://svc.egress.test:$ECHO/")" = 403 ] || fail "svc.egress.test:$ECHO not 403"
[ "$(denied not_allowed_port)" = 1 ] || fail "not_allowed_port count is $(denied not_allowed_port)"

log "a listed name that resolves to an unlisted loopback address: 403 private_address"
[ "$(via_curl "https://other.egress.test:$TLS/")" = 403 ] || fail "other.egress.test not 403"
grep -q "egress denied relay=egress conn=[0-9]* via=connect dest=other.egress.test:$TLS addr=127.0.0.2:$TLS range=loopback reason=private_address" "$LOG" ||
    fail "no private_address log line for other.egress.test"

log "an unlisted loopback literal: 403 private_address"
[ "$(via_curl "https://127.0.0.3:$TLS/")" = 403 ] || fail "127.0.0.3 not 403"
reply=$(raw "CONNECT [::1]:$TLS HTTP/1.1\\r\\n\\r\\n")
[ "$(head -1 <<<"$reply")" = "HTTP/1.1 403 Forbidden" ] || fail "[::1] CONNECT: $reply"
[ "$(denied private_address)" = 3 ] || fail "private_address count is $(denied private_address)"

log "an unresolvable listed name: 502 resolve_failed"
reply=$(raw "CONNECT nosuch.egress.test:$TLS HTTP/1.1\\r\\n\\r\\n")
[ "$(head -1 <<<"$reply")" = "HTTP/1.1 502 Bad Gateway" ] || fail "unresolvable: $reply"
[ "$(tail -1 <<<"$reply")" = "egress denied: resolve_failed" ] || fail "502 body: $reply"
[ "$(via_curl "https://nosuch.egress.test:$TLS/")" = 502 ] || fail "curl: unresolvable not 502"
grep -q "resolve host=nosuch.egress.test failed" "$LOG" || fail "no failed lookup logged"
[ "$(denied resolve_failed)" = 2 ] || fail "resolve_failed count is $(denied resolve_failed)"

log "a GET: 405; garbage: 400; both closed"
reply=$(raw 'GET http://svc.egress.test/ HTTP/1.1\r\nHost: svc.egress.test\r\n\r\n')
[ "$(head -1 <<<"$reply")" = "HTTP/1.1 405 Method Not Allowed" ] || fail "GET: $reply"
reply=$(raw '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n')
[ "$(head -1 <<<"$reply")" = "HTTP/1.1 400 Bad Request" ] || fail "garbage: $reply"
grep -q "relay=egress conn=[0-9]* bad HTTP request: " "$LOG" || fail "no log line for garbage"
grep -q "relay=egress conn=[0-9]* HTTP GET request: only CONNECT is served" "$LOG" ||
    fail "no log line for the GET"
big=$(head -c 5000 /dev/zero | tr '\0' a)
reply=$(raw "CONNECT svc.egress.test:$TLS HTTP/1.1\\r\\nX: $big\\r\\n\\r\\n")
[ "$(head -1 <<<"$reply")" = "HTTP/1.1 400 Bad Request" ] || fail "oversized: $reply"
grep -q "bad HTTP request: request head larger than the limit" "$LOG" || fail "no oversize log"

log "a broken PROXY v2 header straight to the egress relay: closed, logged"
got=$(printf '\r\n\r\n\0\r\nQUIT\n\x99garbage' | timeout 5 socat -t 5 - "UNIX-CONNECT:$T/egress.sock") ||
    fail "the PROXY garbage client was not closed"
[ -z "$got" ] || fail "PROXY garbage got an answer: $got"
wait_log "$LOG" "relay=egress conn=[0-9]+ client=unix:- bad PROXY v2 header: "

log "a PROXY v2 header whose authority TLV names the destination"
# v2 PROXY TCP4, 203.0.113.5:4242 -> 192.0.2.99:$ECHO (refused if used), then
# TLV 0x02 "echo.egress.test" (16 bytes): 12 + 3 + 16 = 31 address bytes
be16() { printf '\\x%02x\\x%02x' $(($1 >> 8)) $(($1 & 255)); }
hdr="\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x1f\xcb\x00\x71\x05\xc0\x00\x02\x63"
hdr="$hdr$(be16 4242)$(be16 "$ECHO")\x02\x00\x10echo.egress.test"
got=$({
    printf "$hdr"
    echo via-authority
} | timeout 5 socat -t 2 - "UNIX-CONNECT:$T/egress.sock") || fail "authority TLV client failed"
[ "$got" = via-authority ] || fail "through the authority TLV: '$got'"
wait_log "$LOG" "close relay=egress conn=[0-9]+ client=unix:- dest=echo.egress.test:$ECHO .*end=eof"

log "the held tunnel still works"
held_echo last
exec {HELD[1]}>&-
wait "$held_pid" 2>/dev/null || true

[ "$(metric airlock_egress_denied_total 'relay="egress",reason="not_allowed_address"' "$M")" = 0 ] ||
    fail "not_allowed_address counted"
running "$host" || fail "the host relay died"
sockets_back() { [ "$(sockets "$host")" = "$host_sockets" ]; }
wait_for sockets_back # every refused or finished connection closed its sockets
stop_clean "$enclave" enclave
stop_clean "$host" host
! grep -Eq "ERROR|runtime error" "$LOG" || fail "sanitizer report in the log"
[ -z "${SHOW_LOGS:-}" ] || cat "$LOG" "$T/enclave.log"
log "pass"
