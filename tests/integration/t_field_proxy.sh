#!/bin/bash
# t_field_proxy: the HTTP proxy role (proxies:) in front of a real backend
# (tests/tools/http_echo, which logs each body as it arrived and echoes it
# back), with curl, socat and a byte-at-a-time client:
#   - a route's encrypt paths reach the backend only as tokens, and its
#     decrypt: true brings them back as they were (types restored), for JSON
#     bodies sent whole, chunked, one byte per write, behind 100-continue;
#   - pipelined requests are answered in order; keep-alive reuses the
#     client's and the backend's connections;
#   - a body the rules cannot be applied to (malformed JSON, a non-scalar
#     match, another content type, over max_body) is refused with a 4xx and
#     never reaches the backend; a body the rules match nothing in passes
#     unchanged; a route-less path passes through;
#   - a token the backend sends back that does not open is a 502, never
#     passed through; backend down 502, slow 504, closing inside its response
#     502 with the client's connection closed (no truncated answer);
#   - X-Forwarded-For, limits (431, 408), and the metrics.
. "$(dirname "$0")/lib.sh"

ECHO=${HTTP_ECHO:-$(dirname "$AIRLOCK")/tests/http_echo}
TRICKLE=${HTTP_TRICKLE:-$(dirname "$AIRLOCK")/tests/http_trickle}
[ -x "$ECHO" ] && [ -x "$TRICKLE" ] || skip "tests/http_echo, tests/http_trickle not built"
need_field

read -r BACK FRONT DEAD METRICS HOLE SLOWC <<<"$(free_ports 6)"
start echo "$ECHO" "$BACK" "$T/backend.log"
wait_port "$BACK"

keyset_file "$T/keys.json" acme k2 k1 k2
cat >"$T/airlock.yaml" <<EOF
threads: 2
metrics: tcp:127.0.0.1:$METRICS
proxies:
  - name: api
    listen: tcp:127.0.0.1:$FRONT
    backend: tcp:127.0.0.1:$BACK
    keyset: $T/keys.json
    max_body: 64KiB
    header_timeout: 1s
    response_timeout: 2s
    routes:
      - name: pay
        methods: [POST, PUT]
        path: /pay
        encrypt: ["\$.card.number", "\$.card.cvv", "\$.vip", "\$.patients[*].ssn"]
        deterministic: ["\$..email"]
        decrypt: true
      - name: back
        path: /json
        decrypt: true
      - name: slow
        path: /slow
        encrypt: ["\$.card.number"]
  - name: down
    listen: tcp:127.0.0.1:$DEAD
    backend: tcp:127.0.0.1:1
  - name: hole
    listen: tcp:127.0.0.1:$SLOWC
    backend: tcp:127.0.0.1:$HOLE
    connect_timeout: 1s
EOF
# a backend whose accept queue is full: connects to it hang (connect_timeout)
start hole "$NETPEER" blackhole "tcp:127.0.0.1:$HOLE"
wait_log "$T/hole.log" ready
airlock_up airlock run -c "$T/airlock.yaml"
URL=http://127.0.0.1:$FRONT

# post PATH BODY [CURL ARGS...]: the response (head and body) in $T/resp;
# the body's type is $CT (application/json).
post() {
    local path=$1 body=$2
    shift 2
    curl -sS -i --path-as-is --max-time 10 -H "Content-Type: ${CT:-application/json}" --data-binary "$body" "$@" \
        "$URL$path" >"$T/resp" || fail "curl $path: status $?"
}
status_is() { head -1 "$T/resp" | has " $1 " || fail "expected $1, got: $(head -1 "$T/resp")"; }
body_is() {
    local got
    got=$(sed '1,/^\r$/d' "$T/resp")
    [ "$got" = "$1" ] || fail "expected body $1, got $got"
}
backend_lines() { wc -l <"$T/backend.log"; }
last_body() { tail -1 "$T/backend.log" | sed 's/.* body=//'; }
PLAIN='4111111111111111'

log "encrypt on the way in, decrypt on the way out, types restored"
DOC='{"card":{"number":"4111111111111111","cvv":123},"vip":true,"patients":[{"ssn":"078-05-1120"},{"ssn":"219-09-9999","email":"p@x.org"}],"email":"a@b.c","amount":12.50,"note":null}'
post /pay "$DOC"
status_is 200
body_is "$DOC"
# the values as JSON writes them: a bare 123 or true may well be in a token
last_body | has "$PLAIN\|078-05-1120\|219-09-9999\|p@x.org\|a@b.c\|\"cvv\":123\|\"vip\":true" &&
    fail "plaintext reached the backend: $(last_body)"
[ "$(last_body | grep -o '"al1:k2:' | wc -l)" = 7 ] || fail "expected 7 tokens: $(last_body)"
last_body | has '"amount":12.50,"note":null' || fail "other fields changed: $(last_body)"
tail -1 "$T/backend.log" | has 'xff=127.0.0.1 ' || fail "no X-Forwarded-For: $(tail -1 "$T/backend.log")"

log "deterministic paths give equal tokens for equal values"
post /pay '{"email":"same@x.org"}'
t1=$(last_body)
post /pay '{"email":"same@x.org"}'
[ "$(last_body)" = "$t1" ] || fail "deterministic tokens differ: $t1 / $(last_body)"

log "JSON forms: escapes, surrogate pairs, big numbers, nesting, duplicate keys, whitespace"
DOC2=' { "card" : { "number" : "41\u00e9\ud83d\ude00\"x" , "cvv" : 12345678901234567890123 } , "card" : {"number": "dup"} , "patients":[{"x":[[1]]},{"ssn":-1.5e+300}] } '
post /pay "$DOC2"
status_is 200
last_body | has '"dup"\|12345678901234567890123\|1.5e+300' && fail "plaintext reached the backend: $(last_body)"
sed '1,/^\r$/d' "$T/resp" >"$T/got"
grep -q '"cvv" : 12345678901234567890123 }' "$T/got" || fail "big number not restored: $(cat "$T/got")"
grep -q '"number": "dup"' "$T/got" || fail "duplicate key not restored: $(cat "$T/got")"
grep -q '"ssn":-1.5e+300' "$T/got" || fail "number not restored: $(cat "$T/got")"

log "a chunked upload is re-framed with Content-Length"
post /pay "$DOC" -H 'Transfer-Encoding: chunked'
status_is 200
body_is "$DOC"
tail -1 "$T/backend.log" | has 'len=[0-9]' || fail "no length"
last_body | has "$PLAIN" && fail "plaintext reached the backend"

log "Expect: 100-continue"
curl -sS -v --max-time 10 -H 'Content-Type: application/json' -H 'Expect: 100-continue' \
    --data-binary "$DOC" "$URL/pay" >"$T/resp.body" 2>"$T/curl.err" || fail "curl: $?"
grep -q '< HTTP/1.1 100 Continue' "$T/curl.err" || fail "no 100 Continue: $(cat "$T/curl.err")"
[ "$(cat "$T/resp.body")" = "$DOC" ] || fail "100-continue body: $(cat "$T/resp.body")"
n=$(backend_lines)
curl -sS -v --max-time 10 -H 'Content-Type: application/json' -H 'Expect: 100-continue' \
    -H 'Content-Length: 100000' --data-binary "$DOC" "$URL/pay" >/dev/null 2>"$T/curl.err" || true
grep -q '< HTTP/1.1 413' "$T/curl.err" || fail "no 413 for a Content-Length over max_body"
grep -q '< HTTP/1.1 100' "$T/curl.err" && fail "100 Continue for a body that is refused"
[ "$(backend_lines)" = "$n" ] || fail "a refused body reached the backend"

log "a body sent one byte per write"
printf 'POST /pay HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n' \
    "${#DOC}" "$DOC" >"$T/trickle.req"
timeout 60 "$TRICKLE" "$FRONT" "$T/trickle.req" >"$T/resp" || fail "trickle: $?"
status_is 200
body_is "$DOC"
last_body | has "$PLAIN" && fail "plaintext reached the backend"

log "pipelined requests are answered in order; keep-alive reuses both connections"
n=$(backend_lines)
{
    for i in 1 2 3; do
        b="{\"card\":{\"number\":\"$i$PLAIN\"}}"
        printf 'POST /pay HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' "${#b}" "$b"
    done
    printf 'GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n'
} | timeout 10 socat -t 10 - "TCP:127.0.0.1:$FRONT" >"$T/pipe" || fail "socat: $?"
[ "$(grep -ao 'HTTP/1.1 200' "$T/pipe" | wc -l)" = 4 ] || fail "expected 4 answers: $(cat "$T/pipe")"
[ "$(grep -ao '"number":"[0-9]*"' "$T/pipe" | tr -d '\n')" = "\"number\":\"1$PLAIN\"\"number\":\"2$PLAIN\"\"number\":\"3$PLAIN\"" ] ||
    fail "answers out of order: $(cat "$T/pipe")"
[ "$(tail -n +$((n + 1)) "$T/backend.log" | grep -o 'conn=[0-9]*' | sort -u | wc -l)" = 1 ] ||
    fail "the backend connection was not reused: $(tail -4 "$T/backend.log")"
curl -sS -v --max-time 10 "$URL/a" "$URL/b" >/dev/null 2>"$T/curl.err" || fail "curl: $?"
grep -q 'Re-using existing connection' "$T/curl.err" || fail "the client connection was not kept"
# one client connection after the other: each worker (threads: 2) keeps its backend connection
n=$(backend_lines)
for i in 1 2 3 4 5 6; do curl -sf --max-time 10 "$URL/seq$i" >/dev/null || fail "curl: $?"; done
used=$(tail -n +$((n + 1)) "$T/backend.log" | grep -o 'conn=[0-9]*' | sort -u | wc -l)
[ "$used" -le 2 ] || fail "6 client connections used $used backend connections: $(tail -6 "$T/backend.log")"

log "rules that match nothing, and paths without a route, pass unchanged"
post /pay '{"other":{"number":"4111"},"card":"x","patients":"y"}'
status_is 200
[ "$(last_body)" = '{"other":{"number":"4111"},"card":"x","patients":"y"}' ] || fail "changed: $(last_body)"
CT=text/plain post /elsewhere "{\"card\":{\"number\":\"$PLAIN\"}}"
status_is 200
last_body | has "$PLAIN" || fail "a route-less body was changed"

log "bodies the rules cannot be applied to are refused and never forwarded"
n=$(backend_lines)
post /pay '{"card":{"number":"4111' && status_is 400
grep -q '"error":"malformed_json"' "$T/resp" || fail "no reason: $(cat "$T/resp")"
post /pay '{"card":{"number":{"pan":"4111"}}}' && status_is 422
post /pay '{"card":[{"number":"4111"}]}' && status_is 422
grep -q '"error":"shape_mismatch"' "$T/resp" || fail "no reason: $(cat "$T/resp")"
CT=text/plain post /pay "{\"card\":{\"number\":\"$PLAIN\"}}" && status_is 415
CT='application/json; charset=utf-8' post /pay "{\"card\":{\"number\":\"$PLAIN\"}}" -X PUT && status_is 200
last_body | has "$PLAIN" && fail "a media type with parameters evaded the route"
post /pay "{\"card\":{\"number\":\"$PLAIN\"}}" -H 'Content-Encoding: gzip' && status_is 415
head -c 70000 /dev/zero | tr '\0' ' ' >"$T/big"
post /pay "@$T/big" && status_is 413
# not a method of the route: its fields would pass in plaintext
post /pay "{\"card\":{\"number\":\"$PLAIN\"}}" -X PATCH && status_is 405
[ "$(backend_lines)" = $((n + 1)) ] || fail "a refused body reached the backend: $(tail -3 "$T/backend.log")"
# the route is matched on the path the backend sees, however it is spelled
post /%70ay/../pay "{\"card\":{\"number\":\"$PLAIN\"}}"
status_is 200
last_body | has "$PLAIN" && fail "an encoded path evaded the route"
post /x//./../PAY/ "{\"card\":{\"number\":\"$PLAIN\"}}"
status_is 200
last_body | has "$PLAIN" && fail "a path spelled otherwise evaded the route"
n=$(backend_lines)
# "//x/pay": /x/pay to some backends, host x and path /pay to others
for p in '/x%2F..%2Fpay' '/x%5C..%5Cpay' '/pay%00' '/pa%y' '//x/pay' '//pay'; do
    post "$p" "{\"card\":{\"number\":\"$PLAIN\"}}"
    status_is 400
done
[ "$(backend_lines)" = "$n" ] || fail "a path with an encoded separator reached the backend"

log "a token that does not open is a 502, never passed through"
post '/json?body=%7B%22a%22%3A%22al1%3Ak2%3As%3AAAAAAAAA%3AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA%22%7D' '{}'
status_is 502
grep -q al1: "$T/resp" && fail "the token was passed through"
grep -q '"error":"bad_token"' "$T/resp" || fail "no reason: $(cat "$T/resp")"

log "backend down 502, slow 504, closing inside its response 502 and a closed connection"
curl -sS -i --max-time 10 "http://127.0.0.1:$DEAD/" >"$T/resp" || fail "curl: $?"
status_is 502
post '/slow?ms=4000' '{"a":1}'
status_is 504
for p in /truncate /close; do
    curl -sS -v --max-time 10 "$URL$p" "$URL/after" >"$T/resp" 2>"$T/curl.err" || true
    grep -q '< HTTP/1.1 502' "$T/curl.err" || fail "$p: no 502: $(cat "$T/curl.err")"
    grep -q 'Re-using existing connection' "$T/curl.err" && fail "$p: the client connection stayed"
    grep -q partial "$T/resp" && fail "$p: a truncated body was passed on"
done
curl -sS -i --max-time 10 "$URL/eof" -d 'until the end' >"$T/resp"
status_is 200
grep -q '^Content-Length: 13' "$T/resp" || fail "an EOF-ended body was not re-framed: $(cat "$T/resp")"
curl -sS -i --max-time 10 "$URL/chunked" -d 'in two chunks' >"$T/resp"
status_is 200
grep -q '^Content-Length: 13' "$T/resp" || fail "a chunked body was not re-framed: $(cat "$T/resp")"
grep -qi '^Transfer-Encoding' "$T/resp" && fail "Transfer-Encoding passed on: $(cat "$T/resp")"
body_is 'in two chunks'
curl -sS -i --max-time 10 "http://127.0.0.1:$SLOWC/" >"$T/resp" || fail "curl: $?"
status_is 504

log "limits: a head too large 431, a head that stalls 408"
curl -sS -i --max-time 10 -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' a)" "$URL/" >"$T/resp"
status_is 431
printf 'GET / HTTP/1.1\r\nHost: t\r\n' | timeout 10 "$NETPEER" connect "tcp:127.0.0.1:$FRONT" --no-shut \
    >"$T/resp" || fail "netpeer: $?"
status_is 408

log "metrics"
curl -sf "http://127.0.0.1:$METRICS/metrics" >"$T/metrics" || fail "no metrics"
v=$(awk '$1 == "airlock_http_fields_encrypted_total{proxy=\"api\",route=\"pay\"}" {print $2}' "$T/metrics")
[ "${v:-0}" -ge 20 ] || fail "fields encrypted: ${v:-none}"
v=$(awk '$1 == "airlock_http_fields_decrypted_total{proxy=\"api\",route=\"pay\"}" {print $2}' "$T/metrics")
[ "${v:-0}" -ge 7 ] || fail "fields decrypted: ${v:-none}"
for r in malformed_json not_scalar content_type body_too_large bad_token backend_down \
    backend_timeout backend_closed header_too_large header_timeout; do
    v=$(awk -v k="airlock_http_failures_total{proxy=\"api\",reason=\"$r\"}" '$1 == k {print $2}' "$T/metrics")
    [ "$r" = backend_down ] && v=$(awk -v k="airlock_http_failures_total{proxy=\"down\",reason=\"$r\"}" '$1 == k {print $2}' "$T/metrics")
    [ "${v:-0}" -ge 1 ] || fail "failures{reason=$r}: ${v:-none}"
done
grep -q '^airlock_http_request_duration_seconds_count{proxy="api"} [1-9]' "$T/metrics" ||
    fail "no latency histogram"
grep -q 'airlock_http_requests_total{proxy="api",route="pay",code="2xx"} [1-9]' "$T/metrics" ||
    fail "no requests by route"

stop_clean "$(pgrep -f "$AIRLOCK run -c $T/airlock.yaml" | head -1)" airlock
log "ok"
