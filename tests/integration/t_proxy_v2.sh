#!/bin/bash
# t_proxy_v2: PROXY protocol v2 end to end. curl (from 127.0.0.2, a chosen
# port) -> relay "front" (send_proxy v2) -> unix -> relay "back"
# (accept_proxy v2, send_proxy v2: passes the header on) -> nginx with
# "listen ... proxy_protocol", which answers with the client address it
# learnt: it must be curl's, not a relay's. Also, on the accept_proxy relay:
#   - a header that arrives in pieces is waited for and passed on whole;
#   - garbage instead of a header is closed at once (end=bad_preamble)
#     while a request in flight through the same relay is unaffected;
#   - a header whose length field says more than 4096 bytes is closed at
#     once (end=bad_preamble), not after the timeout;
#   - a client that sends nothing is closed after the relay's
#     preamble_timeout, 3 s here (end=preamble_timeout);
#   - allow judges the client the header names, not the front that sent
#     it, and the close line names that client (before: the front's
#     address was judged and logged, so allow could not keep a client out
#     behind a load balancer).
. "$(dirname "$0")/lib.sh"
command -v nginx >/dev/null || skip "nginx not installed (scripts/deps.sh)"

read -r NGINX FRONT LPORT GUARD <<<"$(free_ports 4)"
mkdir -p "$T/nginx/tmp"
cat >"$T/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
user root;
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $T/nginx/tmp/body;
    proxy_temp_path $T/nginx/tmp/proxy;
    fastcgi_temp_path $T/nginx/tmp/fastcgi;
    uwsgi_temp_path $T/nginx/tmp/uwsgi;
    scgi_temp_path $T/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$NGINX proxy_protocol;
        location / { return 200 "\$proxy_protocol_addr:\$proxy_protocol_port\n"; }
    }
}
EOF
start nginx nginx -p "$T/nginx" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log"
wait_for tcp_up "$NGINX"
airlock_up back relay "unix:$T/pp.sock" "tcp:127.0.0.1:$NGINX" --name back \
    --accept-proxy v2 --send-proxy v2 --preamble-timeout 3s --log-level debug
back=$LAST_PID
airlock_up front relay "tcp:127.0.0.1:$FRONT" "unix:$T/pp.sock" --name front --send-proxy v2
front=$LAST_PID

log "a silent client of the accept_proxy relay, timed in the background"
t0=$(date +%s%N)
(timeout 20 "$NETPEER" connect "unix:$T/pp.sock" --no-shut </dev/null && elapsed_ms "$t0" >"$T/silent.ms") &
silent=$!

log "nginx learns curl's address through both relays"
got=$(curl -sS --max-time 10 --interface 127.0.0.2 --local-port "$LPORT" "http://127.0.0.1:$FRONT/") ||
    fail "curl through the chain failed"
log "nginx says: $got"
[ "$got" = "127.0.0.2:$LPORT" ] || fail "nginx learnt '$got', not 127.0.0.2:$LPORT"
wait_log "$T/back.log" "relay=back conn=[0-9]* proxy header from=unix:- client=127.0.0.2:$LPORT"

log "a hand-made header for 203.0.113.7:4242, sent in three pieces"
# signature, v2 PROXY, TCP over IPv4, 12 address bytes: 203.0.113.7:4242 -> 127.0.0.1:443
hdr='\r\n\r\n\0\r\nQUIT\n\041\021\0\014\313\0\161\007\177\0\0\001\020\222\001\273'
got=$({
    printf "${hdr:0:24}"
    sleep 0.3
    printf "${hdr:24}"
    sleep 0.3
    printf 'GET / HTTP/1.0\r\n\r\n'
} | timeout 10 socat -t 5 - "UNIX-CONNECT:$T/pp.sock" | tr -d '\r' | tail -1)
[ "$got" = 203.0.113.7:4242 ] || fail "the hand-made header gave '$got'"

log "a request in flight while garbage hits the accept_proxy relay"
exec 3<>"/dev/tcp/127.0.0.1/$FRONT"
printf 'GET / HTTP/1.1\r\nHost: test\r\n' >&3
inflight() { ss -Htn state established "dport = :$FRONT" | awk '{ sub(/.*:/, "", $3); print $3 }'; }
has_inflight() { [ -n "$(inflight)" ]; }
wait_for has_inflight
port=$(inflight)
wait_for grep -q "relay=back conn=[0-9]* proxy header from=unix:- client=127.0.0.1:$port" "$T/back.log"
garbage=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 5 socat -t 5 - "UNIX-CONNECT:$T/pp.sock") ||
    fail "the garbage client was not closed at once"
[ -z "$garbage" ] || fail "the garbage got an answer: $garbage"
# the client saw the close; the relay's lines may still be on their way
wait_ends "$T/back.log" bad_preamble 1
grep -q "relay=back conn=[0-9]* client=unix:- bad PROXY v2 header: bad signature" "$T/back.log" ||
    fail "no 'bad signature' warning"
log "a client that shuts down inside the header is closed at once, not at the timeout"
t1=$(date +%s%N)
# an orderly end, not a reset (netpeer's status 3): what it sent is read first
st=0
printf '\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\x7f' | timeout 5 "$NETPEER" connect "unix:$T/pp.sock" || st=$?
[ "$st" = 0 ] || fail "the client cut short inside the header: status $st"
ms=$(elapsed_ms "$t1")
[ "$ms" -le 3000 ] || fail "the cut-short header was closed after $ms ms"
wait_for grep -q "bad PROXY v2 header: connection closed inside the header" "$T/back.log"
wait_ends "$T/back.log" bad_preamble 2
log "a header whose length cannot fit in 4096 bytes is closed at once, not at the timeout"
t1=$(date +%s%N)
st=0
printf '\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff' |
    timeout 5 "$NETPEER" connect "unix:$T/pp.sock" --no-shut || st=$?
[ "$st" = 0 ] || fail "the client of the too long header: status $st"
ms=$(elapsed_ms "$t1")
[ "$ms" -le 2000 ] || fail "the too long header was closed after $ms ms"
wait_for grep -q "bad PROXY v2 header: header larger than 4096 bytes" "$T/back.log"
wait_ends "$T/back.log" bad_preamble 3
printf 'Connection: close\r\n\r\n' >&3
reply=$(timeout 5 cat <&3) || fail "no reply to the request in flight"
exec 3>&-
echo "$reply" | tr -d '\r' | has -x "127.0.0.1:$port" ||
    fail "the request in flight got: $reply"

log "the silent client is closed after the preamble timeout"
wait "$silent" || fail "the silent client: status $?"
ms=$(cat "$T/silent.ms")
log "closed after $ms ms"
[ "$ms" -ge 2500 ] && [ "$ms" -le 7000 ] || fail "closed after $ms ms, not about 3000"
wait_ends "$T/back.log" preamble_timeout 1

log "allow judges the header's client: 203.0.113.7 in, 198.51.100.9 out (the front, 127.0.0.1, is neither)"
airlock_up guard relay "tcp:127.0.0.1:$GUARD" "tcp:127.0.0.1:$NGINX" --name guard \
    --accept-proxy v2 --send-proxy v2 --allow 203.0.113.0/24
guard=$LAST_PID
# hdr_for A B C D: the header above, for source A.B.C.D:4242
hdr_for() { printf '\r\n\r\n\0\r\nQUIT\n\041\021\0\014'"$(printf '\\%03o' "$@")"'\177\0\0\001\020\222\001\273'; }
got=$({
    hdr_for 203 0 113 7
    printf 'GET / HTTP/1.0\r\n\r\n'
} | timeout 10 socat -t 5 - "TCP:127.0.0.1:$GUARD" | tr -d '\r' | tail -1)
[ "$got" = 203.0.113.7:4242 ] || fail "the allowed client got '$got'"
wait_log "$T/guard.log" "close relay=guard conn=[0-9]* client=203.0.113.7:4242 .*end=eof"
# (closed at the header: socat's write of the request may find it closed)
got=$({
    hdr_for 198 51 100 9
    printf 'GET / HTTP/1.0\r\n\r\n'
} | timeout 10 socat -t 5 - "TCP:127.0.0.1:$GUARD" 2>/dev/null | tr -d '\r' | tail -1) || true
[ -z "$got" ] || fail "a client outside allow was served: $got"
wait_log "$T/guard.log" "refused relay=guard client=198.51.100.9:4242 reason=not_allowed"
wait_log "$T/guard.log" "close relay=guard conn=[0-9]* client=198.51.100.9:4242 .*end=denied"

stop_clean "$guard" guard
stop_clean "$front" front
stop_clean "$back" back
log "pass"
