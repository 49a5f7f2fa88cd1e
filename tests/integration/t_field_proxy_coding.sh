#!/bin/bash
# t_field_proxy_coding: bodies the proxy cannot read as the JSON document
# are refused on routes that rewrite them, whatever their coding is called:
#   - a JSON response to decrypt with a content coding (gzip, deflate, br,
#     x-gzip, "gzip, gzip", a second line): 502 bad_response, logged, never
#     its tokens opened under the coding's label (until 2026-12-06 a body
#     labelled gzip that was plain JSON went to the client opened, still
#     labelled gzip), nor a compressed body passed on; "identity" in any
#     case, or an empty list, is no coding (opened);
#   - a JSON 206 (a part of the document) to decrypt: 502 (a range that is a
#     token alone was opened, its Content-Range no longer the bytes');
#     a decrypt route sends the backend neither Range nor Accept-Encoding,
#     other routes pass both, and pass coded responses on as they are;
#   - a request body with a content coding (gzip, x-gzip, deflate, br,
#     "gzip, gzip", quoted "identity") on a route that seals fields: 415,
#     nothing reaches the backend; "IDENTITY" is sealed;
#   - a JSON response to decrypt by another name (a +json type such as
#     application/problem+json, the route's own content_type) is opened, a
#     tampered token in it is 502 bad_token (until 2026-12-07 both passed
#     unopened, the tampered token to the client); one whose charset is not
#     UTF-8 is 502 bad_response, never passed on unopened.
. "$(dirname "$0")/lib.sh"
need curl socat python3
ECHO=${HTTP_ECHO:-$(dirname "$AIRLOCK")/tests/http_echo}
[ -x "$ECHO" ] || skip "tests/http_echo not built"
need_field

read -r BACK FRONT HDRS HFRONT MPORT <<<"$(free_ports 5)"
start echo "$ECHO" "$BACK" "$T/backend.log"
wait_port "$BACK"
heads_backend "$HDRS"
keyset_file "$T/keys.json" acme k1 k1
cat >"$T/airlock.yaml" <<EOF
metrics: tcp:127.0.0.1:$MPORT
proxies:
  - name: api
    listen: tcp:127.0.0.1:$FRONT
    backend: tcp:127.0.0.1:$BACK
    keyset: $T/keys.json
    routes:
      - {name: seal, path: /seal, encrypt: ["\$.ssn"]}
      - {name: pass, path: /rawpass}
      - {name: own, path: /rawown, content_type: text/json, decrypt: true}
      - {name: open, path: /raw, decrypt: true}
  - name: hdr
    listen: tcp:127.0.0.1:$HFRONT
    backend: tcp:127.0.0.1:$HDRS
    keyset: $T/keys.json
    routes:
      - {name: open, path: /open, decrypt: true}
EOF
airlock_up airlock run -c "$T/airlock.yaml"
AIRLOCK_PID=$LAST_PID
URL=http://127.0.0.1:$FRONT
PLAIN=123-45-6789

status_is() { head -1 "$T/resp" | has " $1 " || fail "$2: expected $1, got: $(head -1 "$T/resp")"; }
reason_is() { grep -q "\"error\":\"$1\"" "$T/resp" || fail "$2: expected reason $1: $(cat "$T/resp")"; }
# urlenc: stdin, every byte %XX
urlenc() { od -An -tx1 -v | tr -d ' \n' | sed 's/../%&/g'; }
# answer PATH RESPONSE: the backend answers RESPONSE (printf %b, then FILE
# $T/tail appended when given) as it is; curl's view in $T/resp
answer() {
    local q
    q=$({ printf '%b' "$2" && cat "${3:-/dev/null}"; } | urlenc)
    curl -sS -i --max-time 10 "$URL$1?resp=$q" >"$T/resp" 2>"$T/curl.err" ||
        fail "curl: $? $(cat "$T/curl.err")"
}
# type_answer PATH TYPE BODY [HEADERS]: a 200 response of Content-Type TYPE
# with HEADERS (each ending \r\n)
type_answer() {
    answer "$1" "HTTP/1.1 200 OK\r\nContent-Type: $2\r\n${4:-}Content-Length: ${#3}\r\n\r\n$3"
}
# json_answer PATH HEADERS BODY: a 200 JSON response with HEADERS
json_answer() { type_answer "$1" application/json "$3" "$2"; }
# refused WHAT: the answer is 502 bad_response, its tokens neither opened nor
# passed on; counted in n
refused() {
    status_is 502 "$1"
    reason_is bad_response "$1"
    grep -q "$TOK\|$PLAIN" "$T/resp" && fail "$1: passed on: $(cat "$T/resp")"
    n=$((n + 1))
}

curl -sS --max-time 10 -H 'Content-Type: application/json' --data-binary "{\"ssn\":\"$PLAIN\"}" \
    "$URL/seal" >"$T/sealed" || fail "curl: $?"
TOK=$(sed -n 's/.*"ssn":"\(al1:[^"]*\)".*/\1/p' "$T/sealed")
[ -n "$TOK" ] || fail "no token: $(cat "$T/sealed")"
DOC="{\"a\":\"$TOK\"}"

log "a JSON response to decrypt with a content coding: 502, never opened under its label"
n=0
for ce in 'gzip' 'deflate' 'br' 'x-gzip' 'compress' 'gzip, gzip' 'identity, gzip' 'GZIP' \
    '"identity"' 'identity\r\nContent-Encoding: gzip'; do
    json_answer /raw "Content-Encoding: $ce\r\n" "$DOC"
    refused "Content-Encoding: $ce"
done
# the body really compressed: refused too, not passed on
printf '%s' "$DOC" | gzip -c >"$T/doc.gz"
answer /raw "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: $(file_size "$T/doc.gz")\r\n\r\n" "$T/doc.gz"
refused "a gzip body"
coded_logged() { [ "$(grep -c 'response refused: the body has a content coding' "$T/airlock.log")" = "$1" ]; }
poll_until 10 coded_logged "$n" || fail "not each refusal logged: $(grep -c 'response refused' "$T/airlock.log") of $n"

log "identity in any case, or no coding listed: opened"
for ce in 'identity' 'IDENTITY' 'Identity ' ''; do
    json_answer /raw "Content-Encoding: $ce\r\n" "$DOC"
    status_is 200 "Content-Encoding: '$ce'"
    grep -q "{\"a\":\"$PLAIN\"}" "$T/resp" || fail "'$ce': not opened: $(cat "$T/resp")"
done

log "a part of a JSON document to decrypt (206): 502; another type passes as it is"
answer /raw "HTTP/1.1 206 Partial Content\r\nContent-Type: application/json\r\nContent-Range: bytes 5-$((5 + ${#TOK} + 1))/300\r\nContent-Length: $((${#TOK} + 2))\r\n\r\n\"$TOK\""
status_is 502 "a 206 of a token"
reason_is bad_response "a 206 of a token"
grep -q "$PLAIN" "$T/resp" && fail "206: opened: $(cat "$T/resp")"
answer /raw "HTTP/1.1 206 Partial Content\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-$((${#TOK} - 1))/300\r\nContent-Length: ${#TOK}\r\n\r\n$TOK"
status_is 206 "a 206 of text"
grep -q "$TOK" "$T/resp" || fail "206 text: not as it was: $(cat "$T/resp")"

log "a route that does not decrypt passes coded responses as they are"
answer /rawpass "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: $(file_size "$T/doc.gz")\r\n\r\n" "$T/doc.gz"
status_is 200 "gzip on /rawpass"
grep -qi '^Content-Encoding: gzip' "$T/resp" || fail "gzip on /rawpass: $(cat "$T/resp")"

log "a decrypt route asks for neither a coding nor a range"
rm -f "$T"/head.*
curl -sS --max-time 10 -H 'Accept-Encoding: gzip' -H 'Range: bytes=0-3' -H 'X-Mark: open' \
    "http://127.0.0.1:$HFRONT/open" >/dev/null || fail "curl: $?"
wait_for grep -qs 'X-Mark: open' "$T"/head.*
f=$(grep -l 'X-Mark: open' "$T"/head.*)
grep -qi '^Range:\|^Accept-Encoding:' "$f" && fail "sent to the backend: $(cat "$f")"
rm -f "$T"/head.*
curl -sS --max-time 10 -H 'Accept-Encoding: gzip' -H 'Range: bytes=0-3' -H 'X-Mark: other' \
    "http://127.0.0.1:$HFRONT/other" >/dev/null || fail "curl: $?"
wait_for grep -qs 'X-Mark: other' "$T"/head.*
f=$(grep -l 'X-Mark: other' "$T"/head.*)
grep -qi '^Range: bytes=0-3' "$f" && grep -qi '^Accept-Encoding: gzip' "$f" ||
    fail "not passed on another route: $(cat "$f")"

log "a request body with a content coding on a route that seals: 415, never forwarded"
lines=$(wc -l <"$T/backend.log")
for ce in 'gzip' 'x-gzip' 'deflate' 'br' 'gzip, gzip' 'identity, gzip' '"identity"'; do
    curl -sS -i --max-time 10 -H 'Content-Type: application/json' -H "Content-Encoding: $ce" \
        --data-binary "{\"ssn\":\"$PLAIN\"}" "$URL/seal" >"$T/resp" || fail "curl: $?"
    status_is 415 "request Content-Encoding: $ce"
    reason_is content_type "request Content-Encoding: $ce"
done
[ "$(wc -l <"$T/backend.log")" = "$lines" ] || fail "an encoded body reached the backend"
curl -sS -i --max-time 10 -H 'Content-Type: application/json' -H 'Content-Encoding: IDENTITY' \
    --data-binary "{\"ssn\":\"$PLAIN\"}" "$URL/seal" >"$T/resp" || fail "curl: $?"
status_is 200 "request Content-Encoding: IDENTITY"
grep -q "$PLAIN" "$T/backend.log" && fail "plaintext reached the backend: $(tail -1 "$T/backend.log")"

log "a JSON response by another name is opened, and its tokens must open"
c=${TOK:${#TOK}-10:1}
BAD=${TOK:0:${#TOK}-10}$([ "$c" = A ] && echo B || echo A)${TOK:${#TOK}-9}
for ct in 'application/problem+json' 'application/vnd.api+json; charset=utf-8' 'APPLICATION/LD+JSON'; do
    type_answer /raw "$ct" "$DOC"
    status_is 200 "$ct"
    grep -q "{\"a\":\"$PLAIN\"}" "$T/resp" || fail "$ct: not opened: $(cat "$T/resp")"
    type_answer /raw "$ct" "{\"a\":\"$BAD\"}"
    status_is 502 "$ct, a tampered token"
    reason_is bad_token "$ct, a tampered token"
done
type_answer /rawown 'text/json' "$DOC"
grep -q "{\"a\":\"$PLAIN\"}" "$T/resp" || fail "the route's content_type: not opened: $(cat "$T/resp")"
type_answer /raw 'text/json' "$DOC"
grep -q "$TOK" "$T/resp" || fail "another route's content_type: not as it was: $(cat "$T/resp")"
for cs in utf-16 utf-7 latin1 '"utf-16"'; do
    type_answer /raw "application/json; charset=$cs" "$DOC"
    refused "charset=$cs"
done
has_charset_line() { [ "$(grep -c "response refused: the body's charset is not UTF-8" "$T/airlock.log")" = 4 ]; }
poll_until 10 has_charset_line || fail "charset refusals not logged: $(grep 'response refused' "$T/airlock.log")"

bad_responses() { [ "$(metric airlock_http_failures_total 'proxy="api",reason="bad_response"' "$MPORT")" = "$1" ]; }
poll_until 10 bad_responses $((n + 1)) ||
    fail "bad_response not counted: $(metric airlock_http_failures_total 'proxy="api",reason="bad_response"' "$MPORT")"
stop_clean "$AIRLOCK_PID" airlock
log "PASS"
