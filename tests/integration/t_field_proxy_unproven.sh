#!/bin/bash
# t_field_proxy_unproven: an HTTP proxy's clients that say too little hold
# no slot against others. At max_connections 4 a newcomer takes the place
# of the oldest connection without a whole request (head and body), or kept
# alive between two requests (airlock_http_connections_evicted_total); one
# whose request is whole (at the backend, its response going out) is never
# evicted:
#   - four connections with half a head each: curl is answered (before:
#     refused until header_timeout), and the oldest of the four is closed;
#   - the same after a reload that replaced the proxy (its counters and
#     unproven connections are handed on);
#   - four kept-alive connections, each answered once and silent since:
#     curl is answered, and the oldest of the four is closed;
#   - four connections with a whole head and part of the body (Content-Length:
#     100 and 10 bytes; and with none of it): curl is answered, the oldest of
#     the four is closed (before: refused for body_timeout);
#   - four connections whose requests wait at the backend (/slow): curl is
#     refused (airlock_http_connections_refused_total) and none of the four
#     is closed;
#   - out of file descriptors (a limit of 64, no max_connections), with the
#     proxy full of half heads: curl is still answered.
. "$(dirname "$0")/lib.sh"
need curl python3
ECHO=${HTTP_ECHO:-$(dirname "$AIRLOCK")/tests/http_echo}
[ -x "$ECHO" ] || skip "tests/http_echo not built"
need_field

read -r BACK FRONT M <<<"$(free_ports 3)"
start echo "$ECHO" "$BACK" "$T/backend.log"
wait_port "$BACK"

# conf [MAXCONN [TIMEOUT]]: the proxy, max_connections MAXCONN (none
# without), header_timeout TIMEOUT
conf() {
    cat >"$T/airlock.yaml" <<YAML
threads: 2
drain_timeout: 1s
metrics: tcp:127.0.0.1:$M
proxies:
  - name: api
    listen: tcp:127.0.0.1:$FRONT
    backend: tcp:127.0.0.1:$BACK
    header_timeout: ${2:-60s}
    body_timeout: 60s
    idle_timeout: 60s
${1:+    max_connections: $1}
YAML
}

# stallers NAME N TEXT: N connections sending TEXT then nothing
# (tests/tools/stall.py), each from its own address (127.0.1.1 and on: no
# client is at its max_unproven_per_client, by default 2); $T/NAME.ready
# when all are connected, a line "closed I" in $T/NAME.log for each the
# proxy closes
stallers() {
    start "$1" python3 -u "$ROOT/tests/tools/stall.py" "$FRONT" "$2" "$3" "$T/$1.ready" 127.0.1.1+
    wait_for test -e "$T/$1.ready"
}
opened() { [ "$(metric airlock_http_connections_open 'proxy="api"' "$M")" = "$1" ]; }
counted() { [ "$(metric "airlock_http_connections_$1_total" 'proxy="api"' "$M")" = "$2" ]; }
answered() { curl -sf -m 10 -o /dev/null -d '{"a":1}' "http://127.0.0.1:$FRONT/$1"; }

conf 4
airlock_up al run -c "$T/airlock.yaml"
AL=$LAST_PID

log "half heads: a newcomer takes the oldest one's place"
stallers half 4 'GET /half HTTP/1.1\r\nHost: x\r\nX-Slow: '
wait_for opened 4
answered first || fail "curl was not answered while half heads held max_connections"
wait_log "$T/half.log" '^closed 0'
grep -q '^closed [123]' "$T/half.log" && fail "more than the oldest half head was closed"
counted evicted 1 || fail "airlock_http_connections_evicted_total is not 1"
counted refused 0 || fail "a client was refused"
stop "$LAST_PID" || true # killed: 143
wait_for opened 0

log "after a reload that replaced the proxy, its earlier connections still give their places"
stallers again 4 'GET /again HTTP/1.1\r\nHost: x\r\nX-Slow: '
wait_for opened 4
conf 4 50s # a change: a new proxy takes over the listener and the counters
kill -HUP "$AL"
wait_log "$T/al.log" 'reloaded'
answered reloaded || fail "after the reload, curl was not answered while half heads held max_connections"
wait_log "$T/again.log" '^closed 0'
counted evicted 2 || fail "airlock_http_connections_evicted_total is not 2"
stop "$LAST_PID" || true # killed: 143
wait_for opened 0

log "kept-alive connections between requests: the same"
stallers kept 4 'GET /kept HTTP/1.1\r\nHost: x\r\n\r\n'
kept_answered() { [ "$(grep -c 'GET /kept' "$T/backend.log")" = 4 ]; }
wait_for kept_answered
wait_for opened 4
answered second || fail "curl was not answered while kept-alive connections held max_connections"
wait_log "$T/kept.log" '^closed 0'
counted evicted 3 || fail "airlock_http_connections_evicted_total is not 3"
stop "$LAST_PID" || true # killed: 143
wait_for opened 0

log "a whole head with a body that does not come: a newcomer takes the oldest one's place"
stallers body 4 'POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789'
wait_for opened 4
answered third || fail "curl was not answered while bodies that do not come held max_connections"
wait_log "$T/body.log" '^closed 0'
counted evicted 4 || fail "airlock_http_connections_evicted_total is not 4"
stop "$LAST_PID" || true # killed: 143
wait_for opened 0
stallers nobody 4 'POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n'
wait_for opened 4
answered fourth || fail "curl was not answered while announced bodies held max_connections"
wait_log "$T/nobody.log" '^closed 0'
counted evicted 5 || fail "airlock_http_connections_evicted_total is not 5"
stop "$LAST_PID" || true # killed: 143
wait_for opened 0

log "connections whose requests are at the backend are not evicted"
stallers slow 4 'POST /slow?ms=20000 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}'
wait_for opened 4
at_backend() { [ "$(grep -c 'POST /slow' "$T/backend.log")" = 4 ]; }
wait_for at_backend
answered fifth && fail "curl took the place of a connection in a request"
counted refused 1 || fail "airlock_http_connections_refused_total is not 1"
grep -q '^closed' "$T/slow.log" && fail "a connection in a request was closed"
counted evicted 5 || fail "a connection in a request was evicted"
stop "$LAST_PID" || true # killed: 143
stop_clean "$AL" al

log "out of file descriptors, a proxy full of half heads still answers"
conf
airlock_nofile limited 64 run -c "$T/airlock.yaml"
AL=$LAST_PID
start many python3 -u "$ROOT/tests/tools/stall.py" "$FRONT" 80 'GET / HTTP/1.1\r\nHost: ' "$T/many.ready"
wait_for test -e "$T/many.ready"
# airlock ran out of descriptors: it evicted some to accept the others
evicted_some() { grep -q '^closed' "$T/many.log"; }
wait_for evicted_some
answered last || fail "curl was not answered while half heads held every file descriptor"
stop_clean "$AL" limited
