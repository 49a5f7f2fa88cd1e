#!/bin/bash
# t_field_proxy_stream: responses no rule rewrites are not bound by
# max_response: past it they are streamed (tests/tools/http_echo echoes the
# request's body back, with its length, chunked, or ended by closing):
#   - 1 MiB through a proxy with max_response 64KiB, on a route without
#     decrypt and on a path no route takes: intact, with the backend's
#     Content-Length; chunked and EOF-ended answers are sent chunked (an
#     HTTP/1.0 client: ended by closing); the client connection is kept
#     for the next request;
#   - a route with decrypt still reads its responses whole: over
#     max_response is a 502;
#   - a backend that closes inside a streamed response leaves the client a
#     response cut short (never complete), counted as backend_closed.
. "$(dirname "$0")/lib.sh"
need curl socat
ECHO=${HTTP_ECHO:-$(dirname "$AIRLOCK")/tests/http_echo}
[ -x "$ECHO" ] || skip "tests/http_echo not built"
need_field

read -r BACK FRONT CUT CUTF METRICS <<<"$(free_ports 5)"
start echo "$ECHO" "$BACK" "$T/backend.log"
wait_port "$BACK"
# a backend that promises 1 MB and closes after 200 KB
printf '#!/bin/sh\nhead -c 40 >/dev/null\nprintf "HTTP/1.1 200 OK\\r\\nContent-Length: 1000000\\r\\n\\r\\n"\nhead -c 200000 /dev/zero\n' >"$T/cut.sh"
chmod +x "$T/cut.sh"
start cut socat TCP-LISTEN:"$CUT",bind=127.0.0.1,reuseaddr,fork EXEC:"$T/cut.sh"
wait_port "$CUT"
keyset_file "$T/keys.json" acme k1 k1
cat >"$T/airlock.yaml" <<YAML
metrics: tcp:127.0.0.1:$METRICS
proxies:
  - name: api
    listen: tcp:127.0.0.1:$FRONT
    backend: tcp:127.0.0.1:$BACK
    keyset: $T/keys.json
    max_body: 4MiB
    max_response: 64KiB
    idle_timeout: 1s               # kept backend connections go soon (the fd count below)
    routes:
      - name: files
        path: /files
      - name: dec
        path: /dec
        decrypt: true
  - name: cut
    listen: tcp:127.0.0.1:$CUTF
    backend: tcp:127.0.0.1:$CUT
    max_response: 64KiB
YAML
airlock_up airlock run -c "$T/airlock.yaml"
PID=$LAST_PID
base=$(fd_count "$PID")
gen_data big $((1 << 20)) >"$T/big"
want=$(sha256sum <"$T/big")

# get PATH [CURL ARGS]: POSTs the big file; head in $T/head, body in $T/body
get() {
    local path=$1
    shift
    curl -sS -D "$T/head" -o "$T/body" --max-time 30 -H 'Content-Type: application/octet-stream' \
        --data-binary @"$T/big" "$@" "http://127.0.0.1:$FRONT$path" || fail "curl $path: status $?"
}
intact() { [ "$(sha256sum <"$T/body")" = "$want" ] || fail "$1: the body did not come intact"; }

log "1 MiB over max_response 64KiB, on a route without decrypt: intact, with its length"
get /files/a
head -1 "$T/head" | has ' 200 ' || fail "status: $(head -1 "$T/head")"
has -ix 'Content-Length: 1048576.' <"$T/head" || fail "no length: $(cat "$T/head")"
intact /files
log "on a path no route takes"
get /other
intact /other

log "chunked and EOF-ended answers are sent on chunked"
for p in /chunked /eof; do
    get "$p"
    has -ix 'Transfer-Encoding: chunked.' <"$T/head" || fail "$p not chunked: $(cat "$T/head")"
    intact "$p"
done
log "an HTTP/1.0 client: ended by closing"
get /chunked --http1.0
has -ix 'Connection: close.' <"$T/head" || fail "HTTP/1.0: $(cat "$T/head")"
has -i 'Transfer-Encoding' <"$T/head" && fail "HTTP/1.0 got chunked"
intact "HTTP/1.0"

log "the client's connection is kept after a streamed response"
curl -sS -v -o /dev/null -o "$T/body" --max-time 30 -H 'Content-Type: application/octet-stream' \
    --data-binary @"$T/big" "http://127.0.0.1:$FRONT/files/1" "http://127.0.0.1:$FRONT/files/2" \
    2>"$T/curl.err" || fail "curl twice: $?"
has 'Re-using existing connection' <"$T/curl.err" || fail "not kept: $(cat "$T/curl.err")"
intact "the second"

log "a route with decrypt reads its responses whole: over max_response is a 502"
code=$(curl -sS -o "$T/body" -w '%{http_code}' --max-time 30 -H 'Content-Type: application/json' \
    --data-binary @"$T/big" "http://127.0.0.1:$FRONT/dec") || fail "curl /dec: $?"
[ "$code" = 502 ] && has bad_response <"$T/body" || fail "/dec: $code $(head -c 200 "$T/body")"

log "a backend closing inside a streamed response: the client's is cut short"
rc=0
curl -sS -o "$T/body" --max-time 30 -d x "http://127.0.0.1:$CUTF/" 2>"$T/curl.err" || rc=$?
[ "$rc" = 18 ] || fail "expected a partial transfer (curl 18), got $rc: $(cat "$T/curl.err")"
[ "$(metric airlock_http_failures_total 'proxy="cut",reason="backend_closed"' "$METRICS")" = 1 ] ||
    fail "not counted as backend_closed"
log "no fd left behind; a clean exit (the sanitizers find no leak)"
fds_back() { [ "$(fd_count "$PID")" -le "$base" ]; }
wait_for fds_back || fail "fds: $(fd_count "$PID"), $base before"
stop_clean "$PID" airlock
log ok
