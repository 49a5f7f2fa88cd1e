#!/bin/bash
# t_metrics: GET /metrics serves valid Prometheus text whose counters follow
# known traffic (open, total, refused, connect errors, bytes each way, closes
# by end); other paths get 404, other methods 405, a request with a NUL
# byte 400, an oversized head 431; bytes after the head never cut the answer
# off with a reset; garbage, oversized and silent requests are closed without
# disturbing the relay; metrics on a unix: endpoint work too.
. "$(dirname "$0")/lib.sh"

command -v socat >/dev/null || skip "socat not installed"
command -v curl >/dev/null || skip "curl not installed"

PE=$(free_port) # echo backend
PA=$(free_port) # relay echo
PD=$(free_port) # relay deny (allowlist excludes loopback)
PX=$(free_port) # relay dead (target has no listener)
PDEAD=$(free_port)
PY=$(free_port) # relay asym
PYB=$(free_port) # its backend: reads 5 bytes, answers 11
PM=$(free_port) # metrics
PU=$(free_port) # second process, metrics on unix:

start echo socat TCP-LISTEN:"$PE",bind=127.0.0.1,reuseaddr,fork PIPE
start asym socat TCP-LISTEN:"$PYB",bind=127.0.0.1,reuseaddr,fork SYSTEM:"head -c 5 >/dev/null; echo 0123456789"
wait_for tcp_up "$PE"
wait_for tcp_up "$PYB"
cat >"$T/airlock.yaml" <<EOF
metrics: tcp:127.0.0.1:$PM
relays:
  - name: echo
    listen: tcp:127.0.0.1:$PA
    target: tcp:127.0.0.1:$PE
  - name: deny
    listen: tcp:127.0.0.1:$PD
    target: tcp:127.0.0.1:$PE
    allow: [10.0.0.0/8]
  - name: dead
    listen: tcp:127.0.0.1:$PX
    target: tcp:127.0.0.1:$PDEAD
    connect_timeout: 2s
  - name: asym
    listen: tcp:127.0.0.1:$PY
    target: tcp:127.0.0.1:$PYB
EOF
start airlock "$AIRLOCK" run -c "$T/airlock.yaml"
AL=$LAST_PID
wait_for tcp_up "$PM"
wait_for tcp_up "$PA"

URL=http://127.0.0.1:$PM/metrics
FAMILIES="airlock_connections_open:gauge airlock_connections_total:counter
airlock_connections_refused_total:counter airlock_connect_errors_total:counter
airlock_bytes_in_total:counter airlock_bytes_out_total:counter
airlock_connections_closed_total:counter"
SAMPLE_RE='[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? -?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?'

# check_text FILE: the Prometheus text exposition format, as far as we use it
check_text() {
    local bad
    [ -s "$1" ] || fail "empty metrics body"
    [ "$(tail -c 1 "$1" | od -An -c | tr -d ' ')" = '\n' ] || fail "body does not end with a newline"
    bad=$(grep -vE "^(# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+|# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram)|$SAMPLE_RE)\$" "$1" || true)
    [ -z "$bad" ] || fail "lines not in the text format: $bad"
    # HELP then TYPE once per family, samples right after their TYPE line and
    # named like it, counters ending in _total
    bad=$(awk '
        $1 == "#" && $2 == "HELP" { if (seen_help[$3]++) print "second HELP for " $3; help = $3; next }
        $1 == "#" && $2 == "TYPE" {
            if ($3 != help) print "TYPE without HELP right before: " $3
            if (seen_type[$3]++) print "second TYPE for " $3
            fam = $3; type = $4
            if (type == "counter" && fam !~ /_total$/) print "counter without _total: " fam
            next }
        { name = $1; sub(/\{.*/, "", name)
          if (type == "histogram") sub(/_(bucket|sum|count)$/, "", name)
          if (name != fam) print "sample outside its family: " $0 }
    ' "$1")
    [ -z "$bad" ] || fail "metrics text: $bad"
    local f name type
    for f in $FAMILIES; do
        name=${f%%:*} type=${f#*:}
        grep -qx "# TYPE $name $type" "$1" || fail "no '# TYPE $name $type'"
        grep -q "^# HELP $name ." "$1" || fail "no HELP for $name"
    done
}

# value NAME LABELS: one sample from a fresh scrape (empty when absent)
value() { metric "$1" "$2" "$PM"; }

# expect NAME LABELS VALUE: waits up to 5 s for the sample to have VALUE
expect() {
    local v
    for _ in $(seq 1 50); do
        v=$(value "$1" "$2")
        [ "$v" = "$3" ] && return 0
        sleep 0.1
    done
    fail "$1{$2} = '$v', expected $3"
}

log "format of the first scrape"
curl -sfi "$URL" >"$T/resp" || fail "GET /metrics failed"
head -1 "$T/resp" | has '^HTTP/1.1 200' || fail "status: $(head -1 "$T/resp")"
grep -qi '^Content-Type: text/plain; version=0.0.4' "$T/resp" || fail "content type: $(grep -i content-type "$T/resp")"
curl -sf "$URL" >"$T/m0"
check_text "$T/m0"
for r in echo deny dead asym; do
    for f in $FAMILIES; do
        [ "${f%%:*}" = airlock_connections_closed_total ] && continue
        [ "$(value "${f%%:*}" "relay=\"$r\"")" = 0 ] || fail "${f%%:*}{relay=\"$r\"} not 0 at start"
    done
    for e in eof reset idle_timeout connect_failed shutdown; do
        [ "$(value airlock_connections_closed_total "relay=\"$r\",end=\"$e\"")" = 0 ] ||
            fail "closed_total{$r,$e} missing or not 0"
    done
done

log "10000 bytes each way through relay echo"
head -c 10000 /dev/urandom >"$T/data"
timeout 10 socat -t 5 - TCP:127.0.0.1:"$PA" <"$T/data" >"$T/echoed" || fail "echo client failed"
cmp -s "$T/data" "$T/echoed" || fail "echo through the relay corrupted"
expect airlock_connections_open 'relay="echo"' 0
expect airlock_connections_closed_total 'relay="echo",end="eof"' 1
expect airlock_connections_total 'relay="echo"' 1
expect airlock_bytes_in_total 'relay="echo"' 10000
expect airlock_bytes_out_total 'relay="echo"' 10000

log "5 bytes in, 11 out through relay asym"
[ "$(printf abcde | timeout 10 socat -t 5 - TCP:127.0.0.1:"$PY")" = 0123456789 ] || fail "asym exchange failed"
expect airlock_connections_closed_total 'relay="asym",end="eof"' 1
expect airlock_bytes_in_total 'relay="asym"' 5
expect airlock_bytes_out_total 'relay="asym"' 11

log "an open connection shows in the gauge"
exec 5<>/dev/tcp/127.0.0.1/"$PA"
printf 'ping\n' >&5
read -r -t 5 line <&5 || fail "no echo on the held connection"
[ "$line" = ping ] || fail "held connection echoed '$line'"
expect airlock_connections_open 'relay="echo"' 1
expect airlock_connections_total 'relay="echo"' 2
exec 5>&-
expect airlock_connections_open 'relay="echo"' 0
expect airlock_bytes_in_total 'relay="echo"' 10005
expect airlock_bytes_out_total 'relay="echo"' 10005

log "a refused client and a failed connect"
timeout 5 socat -t 2 - TCP:127.0.0.1:"$PD" </dev/null >/dev/null 2>&1 || true
expect airlock_connections_refused_total 'relay="deny"' 1
expect airlock_connections_total 'relay="deny"' 0
timeout 5 socat -t 2 - TCP:127.0.0.1:"$PX" </dev/null >/dev/null 2>&1 || true
expect airlock_connect_errors_total 'relay="dead"' 1
expect airlock_connections_closed_total 'relay="dead",end="connect_failed"' 1
expect airlock_connections_open 'relay="dead"' 0
[ "$(value airlock_connections_refused_total 'relay="echo"')" = 0 ] || fail "refused counted on the wrong relay"
curl -sf "$URL" >"$T/m1"
check_text "$T/m1"

log "other paths and methods"
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[ "$(code "http://127.0.0.1:$PM/")" = 404 ] || fail "/ is not 404"
[ "$(code "http://127.0.0.1:$PM/metricsfoo")" = 404 ] || fail "/metricsfoo is not 404"
[ "$(code "http://127.0.0.1:$PM/other")" = 404 ] || fail "/other is not 404"
[ "$(code -X POST "$URL")" = 405 ] || fail "POST is not 405"
[ "$(code "$URL?x=1")" = 200 ] || fail "/metrics?x=1 is not 200"

log "garbage, oversized and silent requests"
# a silent client does not hold up the others
exec 6<>/dev/tcp/127.0.0.1/"$PM"
[ "$(code "$URL")" = 200 ] || fail "a silent client blocks the metrics endpoint"
# a NUL byte before the end of the head (binary garbage, or in a header):
# 400 at once, closed
for req in '\x16\x03\x01\x00\xff\x01\r\n\r\n' 'GET /healthz HTTP/1.1\r\nX: \x00\r\n\r\n'; do
    printf %b "$req" | timeout 5 socat -t 4 - TCP:127.0.0.1:"$PM" >"$T/nul.out" 2>/dev/null ||
        fail "a request with a NUL byte: not answered and closed within 5 s"
    head -1 "$T/nul.out" | has '^HTTP/1.1 400 ' || fail "a request with a NUL byte: $(head -1 "$T/nul.out")"
done
# garbage gets an error status and the connection closed
exec 7<>/dev/tcp/127.0.0.1/"$PM"
printf '\x16\x03\x01\xff\x01garbage\r\n\r\n' >&7
timeout 5 cat <&7 >"$T/garbage.out" || fail "garbage request: connection not closed"
exec 7>&-
head -1 "$T/garbage.out" | has '^HTTP/1.1 4' || fail "garbage request answered: $(head -1 "$T/garbage.out")"
# an oversized request (no end of headers in its first 4095 bytes) is
# answered 431 and closed, however much more the client sends
rc=0
head -c 65536 /dev/zero | tr '\0' A | timeout 5 socat -t 4 - TCP:127.0.0.1:"$PM" >"$T/big.out" 2>/dev/null || rc=$?
[ "$rc" != 124 ] || fail "oversized request: connection not closed"
head -1 "$T/big.out" | has '^HTTP/1.1 431' || fail "oversized request: $(head -c 100 "$T/big.out")"
# an oversized header block after a valid request line, same
rc=0
{ printf 'GET /metrics HTTP/1.1\r\nX-Big: '; head -c 8192 /dev/zero | tr '\0' B; printf '\r\n\r\n'; } |
    timeout 5 socat -t 4 - TCP:127.0.0.1:"$PM" >"$T/big2.out" 2>/dev/null || rc=$?
[ "$rc" != 124 ] || fail "oversized headers: connection not closed"
head -1 "$T/big2.out" | has '^HTTP/1.1 431' || fail "oversized headers: $(head -c 100 "$T/big2.out")"
# what comes after the head (a body, a second request) is not read: the
# answer still arrives whole, never cut off by a reset when the endpoint
# closes with those bytes unread
for extra in 100 200000; do
    python3 - "$PM" "$extra" >"$T/tail.out" <<'EOF' || fail "a request with $extra bytes after its head: $(cat "$T/tail.out")"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET /healthz HTTP/1.1\r\n\r\n" + b"x" * int(sys.argv[2]))
got = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    got += b
print(got.decode())
sys.exit(0 if got.startswith(b"HTTP/1.1 200") and got.endswith(b"\r\n\r\nok\n") else 1)
EOF
done
exec 6>&-
# a flood of connects (three processes, each connecting and closing as fast
# as it can): at its 64 requests the endpoint lets the flooding address's go
# first, never a scrape's from another address
flooders=()
for k in 1 2 3; do
    start "flood$k" python3 -c '
import socket, sys, time
end = time.time() + 6
while time.time() < end:
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        pass
    s.close()' "$PM"
    flooders+=("$LAST_PID")
done
sleep 0.5
ok=0
for i in $(seq 40); do
    [ "$(code -m 3 --interface 127.0.0.2 "$URL")" = 200 ] && ok=$((ok + 1))
done
for p in "${flooders[@]}"; do stop "$p" || true; done
[ "$ok" = 40 ] || fail "$ok of 40 scrapes answered during a flood of connects from another address"
running "$AL" || fail "airlock died"
[ "$(code "$URL")" = 200 ] || fail "metrics endpoint disturbed"
timeout 10 socat -t 5 - TCP:127.0.0.1:"$PA" <"$T/data" >"$T/echoed2" || fail "echo client failed"
cmp -s "$T/data" "$T/echoed2" || fail "relay disturbed by the bad metrics requests"
expect airlock_connections_total 'relay="echo"' 3

log "one address holds 16 requests at once: its 17th takes its own oldest one's place"
# (one whose answer it never reads holds its place for 5 s: 64 of them shut out every
# probe; those being answered keep their places, and a 17th is then closed)
held m17 python3 "$ROOT/tests/tools/conn_hold.py" --gap 0 "$PM" $(printf -- '- %.0s' $(seq 17))
wait_until 15 eval '[ "$(wc -l <"$T/m17.out")" = 17 ]' || fail "the 17 connections: $(cat "$T/m17.out")"
[ "$(grep -c '^open$' "$T/m17.out")" = 16 ] && [ "$(head -1 "$T/m17.out")" = closed ] ||
    fail "expected the first of 17 closed: $(cat "$T/m17.out")"
[ "$(code -m 3 --interface 127.0.0.2 "$URL")" = 200 ] || fail "another address was not served"
unhold m17

log "metrics on a unix: endpoint"
start unix "$AIRLOCK" relay tcp:127.0.0.1:"$PU" tcp:127.0.0.1:"$PE" --name u --metrics unix:"$T/metrics.sock"
AU=$LAST_PID
wait_for unix_up "$T/metrics.sock"
wait_for tcp_up "$PU"
curl -sf --unix-socket "$T/metrics.sock" http://localhost/metrics >"$T/mu0" || fail "GET over unix: failed"
check_text "$T/mu0"
grep -qx 'airlock_connections_total{relay="u"} 0' "$T/mu0" || fail "unix: no u counter"
printf 'hello\n' | timeout 10 socat -t 5 - TCP:127.0.0.1:"$PU" >/dev/null
for _ in $(seq 1 50); do
    curl -sf --unix-socket "$T/metrics.sock" http://localhost/metrics >"$T/mu1"
    grep -qx 'airlock_bytes_in_total{relay="u"} 6' "$T/mu1" && break
    sleep 0.1
done
grep -qx 'airlock_connections_total{relay="u"} 1' "$T/mu1" || fail "unix: total did not move"
grep -qx 'airlock_bytes_in_total{relay="u"} 6' "$T/mu1" || fail "unix: bytes_in did not move"
[ "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$T/metrics.sock" http://localhost/x)" = 404 ] ||
    fail "unix: /x is not 404"

stop "$AU" || fail "airlock (unix metrics) exited with $?"
[ ! -e "$T/metrics.sock" ] || fail "metrics socket file left behind"
stop "$AL" || fail "airlock exited with $?"
! grep -Eq "ERROR|runtime error" "$T/airlock.log" "$T/unix.log" || fail "sanitizer report in a log"
log "ok"
