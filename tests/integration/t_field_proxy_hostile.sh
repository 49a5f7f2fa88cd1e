#!/bin/bash
# t_field_proxy_hostile: the HTTP proxy against heads and bodies made to be
# read one way by the proxy and another by its peer. Each is refused with a
# clear status (never a crash, never the plaintext of an encrypted field at
# the backend), or passed on with one meaning only:
#   - obs-fold (a header value over two lines) in a request: 400, nothing
#     reaches the backend (it was a second, smuggled request); in a
#     response: 502; whitespace before a colon or the first header likewise;
#   - a path at the buffer's edge does not overflow it (ASan), a path over
#     HTTP_REQ_PATH_MAX is 414, "/pay/" is not "/pay//";
#   - path parameters: "/;/pay" and "/pay;x=1" are /pay (encrypted),
#     "/x/..;/pay" (.. to a servlet container, a name to others) is 400;
#   - a last segment ".", "%2e", "..", or ";" keeps the '/' before it
#     (RFC 3986 5.2.4, Node's URL): "/v2/pay/." is the route /v2/pay/'s;
#     a body to "/v2/pay" (Express serves it at a route "/v2/pay/"), which
#     no route takes, is 400;
#   - a request target with a '#' ("/x#/../pay": /x to the parser, /pay to
#     a backend that cleans the whole target), a tab, a control or a byte
#     over 0x7f, an escape of an escape ("/%2570ay": /pay to a backend that
#     decodes twice): 400, nothing reaches the backend; the letters whose case
#     mappings are ASCII ("/kid%C5%BF", "/k%C4%B0ds": /kids to .NET and Java without
#     case) match the route of that ASCII letter (encrypted);
#   - a 304, 204 or 1xx with a Content-Length has no body (no 504 waiting
#     for one); a HEAD response over max_response keeps one Content-Length;
#   - a route prefix that is not normalized ("/v1//pay", "%XX") is refused
#     at check (no request would match it: its rules would never run), and
#     so is one not in ASCII ("/café": /CAF%C3%89 would pass it by);
#   - JSON member names with U+0000, or a rule's name in another case
#     (Unicode's: "grÖße" for "größe"), "__proto__" and
#     "constructor"."prototype" (JavaScript copies their members into
#     another object): 400 malformed_json and 422 ambiguous_name, never
#     forwarded;
#   - an array where a rule expects an object ({"card":[{"number":..}]}, a
#     body [{"card":..}]), a scalar where it expects an array ({"a":"x"}
#     under $.a[*]): 422 shape_mismatch (a binder that wraps or unwraps
#     arrays of one reads them as the rule's field), never forwarded;
#   - a Content-Type whose charset is not UTF-8 (utf-7: "+AG4-umber" is
#     "number" to a backend that honours it): 415;
#   - Content-Encoding over several headers or codings ("gzip, identity"):
#     415; two Content-Type or Host headers, a transfer coding other than
#     chunked: 400; a response with another transfer coding: 502;
#   - max_header above libhttp-parser's 80 KiB takes effect (431, not 400);
#     a hop-by-hop name of 64+ characters in Connection is dropped;
#   - an HTTP/1.1 request without Host: 400; an HTTP/1.0 one goes on (as
#     HTTP/1.1) with the backend's host and port as its Host; an
#     absolute-form target goes on in origin form with its authority as
#     the Host (RFC 9112 3.2.2), one with userinfo or another scheme is 400;
#   - a body on the path of a route that encrypts it, by a method the route
#     does not take (PATCH, DELETE, one the config cannot name), is 405 with
#     Allow, never passed on in plaintext; without a body it goes on; a
#     later route of the path that takes the method and seals every field
#     of the first ("acct-put") takes it; an earlier route of the path that
#     seals nothing ("users-get") does not take a body a later one would
#     seal (405), only requests without one; nor does a method-override
#     header (X-HTTP-Method-Override: PUT on a POST) pass a body the
#     overriding method's route seals and the route taken does not (405);
#     neither does a query parameter "_method" (as PHP and decoders read
#     its name: "%5Fmethod", ".method", "_method[]") nor a member "_method"
#     of the JSON body (Laravel reads both; 405);
#     a path-override header (X-Original-URL, X-Rewrite-URL) is 400, never
#     forwarded, with a body or without;
#   - a body of many one-byte values that encryption would grow 30 times is
#     413 body_too_large once it would pass 4 x max_body (+64 KiB), never
#     forwarded; one that stays under goes on;
#   - a backend connection an NTLM or Negotiate handshake went over (a
#     challenge in the response, credentials in the request) is never pooled
#     for another client's session, which the backend would serve as the
#     one that authenticated; another one is.
. "$(dirname "$0")/lib.sh"
need curl socat
ECHO=${HTTP_ECHO:-$(dirname "$AIRLOCK")/tests/http_echo}
[ -x "$ECHO" ] || skip "tests/http_echo not built"
need_field

read -r BACK FRONT BIG HDRS <<<"$(free_ports 4)"
start echo "$ECHO" "$BACK" "$T/backend.log"
wait_port "$BACK"
heads_backend "$HDRS"
keyset_file "$T/keys.json" acme k1 k1
cat >"$T/airlock.yaml" <<EOF
threads: 2
proxies:
  - name: api
    listen: tcp:127.0.0.1:$FRONT
    backend: tcp:127.0.0.1:$BACK
    keyset: $T/keys.json
    max_response: 64KiB
    max_body: 256KiB
    response_timeout: 8s
    routes:
      - name: pay
        methods: [POST, PUT]
        path: /pay
        encrypt: ["\$.card.number", "\$['größe']"]
      - name: bulk
        path: /bulk
        encrypt: ["\$.a[*]"]
      - name: kids
        path: /kids
        encrypt: ["\$.card.number"]
      - name: slash
        path: /v2/pay/
        encrypt: ["\$.card.number"]
      - {name: acct-post, methods: [POST], path: /acct, encrypt: ["\$.ssn"]}
      - {name: acct-put, methods: [PUT], path: /acct, encrypt: ["\$.email", "\$.ssn"]}
      - {name: half-post, methods: [POST], path: /half, encrypt: ["\$.ssn"]}
      - {name: half-put, methods: [PUT], path: /half, encrypt: ["\$.email"]}
      - {name: users-get, methods: [GET], path: /users, decrypt: true}
      - {name: users-write, methods: [POST, PUT], path: /users, encrypt: ["\$.ssn"]}
  - name: big
    listen: tcp:127.0.0.1:$BIG
    backend: tcp:127.0.0.1:$HDRS
    max_header: 512KiB
EOF
airlock_up airlock run -c "$T/airlock.yaml"
URL=http://127.0.0.1:$FRONT
PLAIN=4111111111111111
CARD="{\"card\":{\"number\":\"$PLAIN\"}}"

status_is() { head -1 "$T/resp" | has " $1 " || fail "$2: expected $1, got: $(head -1 "$T/resp")"; }
reason_is() { grep -q "\"error\":\"$1\"" "$T/resp" || fail "$2: expected reason $1: $(cat "$T/resp")"; }
backend_lines() { wc -l <"$T/backend.log"; }
# raw REQUEST: sent as it is; the answer (to the proxy's close) in $T/resp
raw() { printf '%b' "$1" | timeout 15 socat -t 15 - "TCP:127.0.0.1:$FRONT" >"$T/resp" || fail "socat: $?"; }
# urlenc TEXT: every byte %XX
urlenc() { printf '%b' "$1" | od -An -tx1 -v | tr -d ' \n' | sed 's/../%&/g'; }
# answer RESPONSE [CURL ARGS]: the backend answers RESPONSE as it is; curl's view in $T/resp
answer() {
    local resp=$1
    shift
    curl -sS -i --max-time 5 "$@" "$URL/raw?resp=$(urlenc "$resp")" >"$T/resp" 2>"$T/curl.err" ||
        fail "curl: $? $(cat "$T/curl.err")"
}

log "obs-fold and whitespace in a request head: 400, nothing reaches the backend"
n=$(backend_lines)
for h in 'X-A: a\r\n b' 'X-A: a\r\n\tb' 'X-A:\r\n b' ' X-A: a' 'X-A : a'; do
    raw "POST /pay HTTP/1.1\r\nHost: x\r\n$h\r\nContent-Type: application/json\r\nContent-Length: ${#CARD}\r\n\r\n$CARD"
    status_is 400 "$h"
    reason_is bad_request "$h"
    grep -qi '^Connection: close' "$T/resp" || fail "$h: the connection was kept"
done
[ "$(backend_lines)" = "$n" ] || fail "a folded request reached the backend: $(tail -2 "$T/backend.log")"
grep -q "$PLAIN" "$T/backend.log" && fail "plaintext reached the backend"

log "obs-fold in a response head: 502"
answer 'HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok'
status_is 502 "response obs-fold"
reason_is bad_response "response obs-fold"
answer 'HTTP/1.1 200 OK\r\nX-A : a\r\nContent-Length: 2\r\n\r\nok'
status_is 502 "response space before colon"

log "long paths: no overflow at the buffer's edge, 414 past it, /pay/ stays /pay/"
for len in 1020 1021 1022 1023 1024 4093 4094; do
    p=/$(head -c "$len" /dev/zero | tr '\0' a)/
    curl -sS -i --max-time 5 "$URL$p" >"$T/resp" || fail "path of $len: curl $? (crashed?)"
    status_is 200 "path of $((len + 2))"
done
p=/$(head -c 4096 /dev/zero | tr '\0' a)
curl -sS -i --max-time 5 "$URL$p" >"$T/resp" || fail "curl: $?"
status_is 414 "path of 4097"
reason_is uri_too_long "path of 4097"
# the long path, then .. back to /pay: refused whole, never truncated into another path
p=/$(head -c 5000 /dev/zero | tr '\0' a)/../pay
curl -sS -i --max-time 5 --path-as-is -H 'Content-Type: application/json' --data-binary "$CARD" \
    "$URL$p" >"$T/resp" || fail "curl: $?"
status_is 414 "long path to /pay"
for p in /pay/ /pay// /x/../pay/; do
    curl -sS -i --max-time 5 --path-as-is -H 'Content-Type: application/json' --data-binary "$CARD" \
        "$URL$p" >"$T/resp" || fail "curl: $?"
    status_is 200 "$p"
done
grep -q "$PLAIN" "$T/backend.log" && fail "plaintext reached the backend"

log "route prefixes no request is matched as are refused at check"
for p in /v1//pay /v1/./pay /v1/../pay /caf%C3%A9 /café /pay/ /a%2Fb '/a?b' '/a#b'; do
    sed "s|path: /pay\$|path: '$p'|" "$T/airlock.yaml" >"$T/prefix.yaml"
    if [ "$p" = /pay/ ]; then
        "$AIRLOCK" check -c "$T/prefix.yaml" >/dev/null 2>&1 || fail "a normalized prefix $p is refused"
    else
        "$AIRLOCK" check -c "$T/prefix.yaml" >"$T/check.out" 2>&1 && fail "prefix $p: not refused"
        grep -q "routes\[0\].path: expected a path prefix" "$T/check.out" || fail "prefix $p: $(cat "$T/check.out")"
    fi
done

# sealed_at PATH: the card posted to PATH is answered, and reaches the backend encrypted
sealed_at() {
    curl -sS -i --max-time 5 --path-as-is -H 'Content-Type: application/json' --data-binary "$CARD" \
        "$URL$1" >"$T/resp" || fail "curl: $?"
    status_is 200 "$1"
    tail -1 "$T/backend.log" | has "$PLAIN" && fail "$1: plaintext reached the backend"
    tail -1 "$T/backend.log" | has '"al1:k1:' || fail "$1: not encrypted: $(tail -1 "$T/backend.log")"
}

log "path parameters: matched without them; a dot segment with them is refused"
for p in '/;/pay' '/pay;jsessionid=1' '/PAY;a=b/' '/x;y/../pay' '/%3B/pay' '/pa%79;x'; do
    sealed_at "$p"
done
n=$(backend_lines)
for p in '/x/..;/pay' '/x/..;a=b/pay' '/x/.;/../pay' '/x/..%3B/pay' '/x/%2e%2e;/pay'; do
    curl -sS -i --max-time 5 --path-as-is -H 'Content-Type: application/json' --data-binary "$CARD" \
        "$URL$p" >"$T/resp" || fail "curl: $?"
    status_is 400 "$p"
done
[ "$(backend_lines)" = "$n" ] || fail "a path with a dot segment with parameters reached the backend"

log "a last segment '.', '..' or ';' keeps its '/' (RFC 3986 5.2.4): /v2/pay/ takes it"
for p in '/v2/pay/' '/v2/pay/.' '/v2/pay/%2e' '/v2/pay/x/..' '/v2/pay/x/%2E%2E' '/v2/pay/;' \
    '/v2/pay/;a=b' '/V2/PAY/.'; do
    sealed_at "$p"
done
# the path without its last '/', which Express (non-strict routing, its
# default) serves at a route /v2/pay/, and no route of the proxy takes: a
# body there is 400, never forwarded; without one it goes on
n=$(backend_lines)
for p in '/v2/pay' '/V2/Pay?x=1' '/v2//pay' '/v2/pay;a=b' '/v2/x/../pay' '/v2/pa%79'; do
    curl -sS -i --max-time 5 --path-as-is -H 'Content-Type: application/json' --data-binary "$CARD" \
        "$URL$p" >"$T/resp" || fail "curl: $?"
    status_is 400 "$p"
    reason_is bad_request "$p"
done
[ "$(backend_lines)" = "$n" ] || fail "a body to /v2/pay reached the backend: $(tail -1 "$T/backend.log")"
curl -sS -i --max-time 5 "$URL/v2/pay" >"$T/resp" || fail "curl: $?"
status_is 200 "GET /v2/pay without a body"

log "request targets: '#', tabs, controls, raw non-ASCII, escapes of escapes are 400; ſ ı K match s i k"
n=$(backend_lines)
for p in '/x#/../pay' '/pay#' '/x\t/../pay' '/x\f/../pay' '/x\x7f/../pay' '/kid\xc5\xbf' \
    'http://x/y#/../../pay' '/%2570ay' '/p%2561y' '/x/..%252f..%252fpay'; do
    raw "POST $p HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${#CARD}\r\n\r\n$CARD"
    status_is 400 "$p"
done
[ "$(backend_lines)" = "$n" ] || fail "a target the backend may read as /pay reached it: $(tail -1 "$T/backend.log")"
for p in '/%E2%84%AAids' '/k%C4%B1ds' '/k%C4%B0ds' '/kid%C5%BF' '/%E2%84%AA%C4%B1d%C5%BF/x' '/K%C4%B0D%C5%BF'; do
    sealed_at "$p"
done

log "304, 204 and 1xx with a Content-Length have no body: no wait for one"
answer 'HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\nETag: "x"\r\n\r\n'
status_is 304 "304 with a length"
answer 'HTTP/1.1 304 Not Modified\r\nContent-Length: 1000000\r\n\r\n'
status_is 304 "304 with a length over max_response"
answer 'HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n'
status_is 204 "204 with a length"
grep -qi '^Content-Length' "$T/resp" && fail "204 with a Content-Length: $(cat "$T/resp")"
answer 'HTTP/1.1 100 Continue\r\nContent-Length: 3\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'
status_is 200 "100 with a length"
[ "$(sed '1,/^\r$/d' "$T/resp")" = ok ] || fail "100 with a length: $(cat "$T/resp")"
answer 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n'
status_is 502 "an unasked 101"
# and the connection serves the next request
curl -sS -v --max-time 5 "$URL/raw?resp=$(urlenc 'HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n')" \
    "$URL/next" >/dev/null 2>"$T/curl.err" || fail "curl: $?"
[ "$(grep -c '< HTTP/1.1 ' "$T/curl.err")" = 2 ] || fail "no second answer: $(cat "$T/curl.err")"
grep -q '< HTTP/1.1 504' "$T/curl.err" && fail "a 304 waited for a body"

log "a HEAD response over max_response: one Content-Length, no body"
answer 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n' -I
status_is 200 HEAD
[ "$(grep -ci '^Content-Length:' "$T/resp")" = 1 ] || fail "HEAD: Content-Length twice: $(cat "$T/resp")"
grep -qi '^Content-Length: 1000000' "$T/resp" || fail "HEAD: the backend's length: $(cat "$T/resp")"

log "JSON member names: U+0000 400, a rule's name in another case 422, never forwarded"
n=$(backend_lines)
post() {
    curl -sS -i --max-time 5 -H 'Content-Type: application/json' --data-binary "$1" "$URL/pay" >"$T/resp" ||
        fail "curl: $?"
}
for b in "{\"card\":{\"number\\u0000\":\"$PLAIN\"}}" "{\"card\\u0000\":{\"number\":\"$PLAIN\"}}" \
    "{\"card\":{\"number\\u0000x\":\"$PLAIN\"}}"; do
    post "$b"
    status_is 400 "$b"
    reason_is malformed_json "$b"
done
for b in "{\"card\":{\"NUMBER\":\"$PLAIN\"}}" "{\"Card\":{\"number\":\"$PLAIN\"}}" \
    "{\"card\":{\"Numb\\u0065r\":\"$PLAIN\"}}" "{\"card\":{\"number\":\"1\",\"nUmber\":\"$PLAIN\"}}" \
    "{\"grÖße\":\"$PLAIN\"}" "{\"GR\\u00d6\\u1e9eE\":\"$PLAIN\"}" \
    "{\"card\":{\"__proto__\":{\"number\":\"$PLAIN\"}}}" \
    "{\"card\":{},\"constructor\":{\"prototype\":{\"number\":\"$PLAIN\"}}}"; do
    post "$b"
    status_is 422 "$b"
    reason_is ambiguous_name "$b"
done
[ "$(backend_lines)" = "$n" ] || fail "a look-alike name reached the backend: $(tail -1 "$T/backend.log")"
post "{\"card\":{\"number\":\"$PLAIN\",\"numbers\":\"1\"},\"NUMBER\":\"2\"}"
status_is 200 "other names"

log "shapes: an array where a rule expects an object, a scalar where it expects an array: 422"
n=$(backend_lines)
for b in "{\"card\":[{\"number\":\"$PLAIN\"}]}" "[{\"card\":{\"number\":\"$PLAIN\"}}]"; do
    post "$b"
    status_is 422 "$b"
    reason_is shape_mismatch "$b"
done
curl -sS -i --max-time 5 -H 'Content-Type: application/json' --data-binary "{\"a\":\"$PLAIN\"}" \
    "$URL/bulk" >"$T/resp" || fail "curl: $?"
status_is 422 "a scalar under \$.a[*]"
reason_is shape_mismatch "a scalar under \$.a[*]"
[ "$(backend_lines)" = "$n" ] || fail "a body of another shape reached the backend: $(tail -1 "$T/backend.log")"

log "Content-Encoding, Content-Type, Transfer-Encoding read over every header"
n=$(backend_lines)
hdr() { raw "POST /pay HTTP/1.1\r\nHost: x\r\n$1\r\nContent-Length: ${#CARD}\r\n\r\n$CARD"; }
hdr 'Content-Type: application/json\r\nContent-Encoding: gzip, identity'
status_is 415 "gzip, identity"
hdr 'Content-Type: application/json\r\nContent-Encoding: identity\r\nContent-Encoding: br'
status_is 415 "identity then br"
hdr 'Content-Type: application/json\r\nContent-Encoding: identity,\r\nContent-Encoding: x'
status_is 415 "identity, then x"
# a charset other than UTF-8 (a backend that honours utf-7 reads
# "+AG4-umber" as "number"), however it is spelled
for ct in 'application/json; charset=utf-7' 'application/json;charset="UTF-16"' \
    'application/json; charset = utf-7' 'application/json; charset=utf-8; charset=utf-7' \
    'application/json; charset="utf-8;"'; do
    hdr "Content-Type: $ct"
    status_is 415 "$ct"
done
hdr 'Content-Type: application/json\r\nContent-Type: text/plain'
status_is 400 "two Content-Type"
hdr 'Content-Type: application/json\r\nHost: y'
status_is 400 "two Host"
[ "$(backend_lines)" = "$n" ] || fail "a refused request reached the backend"
chunked() {
    raw "POST /pay HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n$1\r\n\r\n$(printf %x ${#CARD})\r\n$CARD\r\n0\r\n\r\n"
}
chunked 'Transfer-Encoding: gzip, chunked'
status_is 400 "gzip, chunked"
chunked 'Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked'
status_is 400 "gzip then chunked"
chunked 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked'
status_is 400 "chunked twice"
[ "$(backend_lines)" = "$n" ] || fail "a refused request reached the backend"
chunked 'Transfer-Encoding: chunked'
status_is 200 "chunked"
hdr 'Content-Type: application/json\r\nContent-Encoding: identity\r\nContent-Encoding: identity'
status_is 200 "identity twice"
for ct in 'application/json; charset=utf-8' 'application/json;charset="UTF-8"' \
    'application/json; v=1; charset=utf8'; do
    hdr "Content-Type: $ct"
    status_is 200 "$ct"
done
answer 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n'
status_is 502 "a response gzip, chunked"
grep -q "$PLAIN" "$T/backend.log" && fail "plaintext reached the backend"

log "max_header over 80 KiB takes effect; long hop-by-hop names are dropped"
{ printf 'X-Big: '; head -c 200000 /dev/zero | tr '\0' a; echo; } >"$T/h200k"
curl -sS -i --max-time 5 -H "@$T/h200k" "http://127.0.0.1:$BIG/" >"$T/resp" || fail "curl: $?"
status_is 200 "a 200 KB head under max_header 512KiB"
{ printf 'X-Big: '; head -c 600000 /dev/zero | tr '\0' a; echo; } >"$T/h600k"
curl -sS -i --max-time 5 -H "@$T/h600k" "http://127.0.0.1:$BIG/" >"$T/resp" || fail "curl: $?"
status_is 431 "a 600 KB head"
LONG=X-A-Header-Name-Longer-Than-Sixty-Four-Characters-That-Is-Hop-By-Hop
rm -f "$T"/head.*
curl -sS -i --max-time 5 -H "Connection: keep-alive" -H "Connection: $LONG, X-Short" -H "$LONG: 1" \
    -H "X-Short: 2" -H "X-Kept: 3" "http://127.0.0.1:$BIG/" >"$T/resp" || fail "curl: $?"
status_is 200 "hop-by-hop"
wait_for sh -c "cat '$T'/head.* 2>/dev/null | grep -q X-Kept"
cat "$T"/head.* | grep -qi "$LONG\|X-Short" && fail "a hop-by-hop header was forwarded: $(cat "$T"/head.*)"

log "a request line of another major version (HTTP/2.0, 9.9, 0.9) is 505, never forwarded"
n=$(backend_lines)
for v in 2.0 9.9 0.9; do
    raw "POST /open HTTP/$v\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${#CARD}\r\n\r\n$CARD"
    status_is 505 "HTTP/$v"
done
[ "$(backend_lines)" = "$n" ] || fail "a request of another HTTP version reached the backend"

log "Host: an HTTP/1.1 request without one is 400; an HTTP/1.0 one goes on with the backend's"
raw "GET /pay HTTP/1.1\r\n\r\n"
status_is 400 "HTTP/1.1 without Host"
rm -f "$T"/head.*
printf 'GET /old HTTP/1.0\r\n\r\n' | timeout 15 socat -t 15 - "TCP:127.0.0.1:$BIG" >"$T/resp" ||
    fail "socat: $?"
status_is 200 "HTTP/1.0 without Host"
wait_for sh -c "cat '$T'/head.* 2>/dev/null | grep -q '^GET /old'"
cat "$T"/head.* | tr -d '\r' | grep -qx "Host: 127.0.0.1:$HDRS" ||
    fail "HTTP/1.0 without Host went on without the backend's: $(cat "$T"/head.*)"
for target in 'http://api.example/abs?q=1' 'HTTPS://[::1]:8443/abs?q=1'; do
    rm -f "$T"/head.*
    printf 'GET %s HTTP/1.1\r\nHost: other.example\r\n\r\n' "$target" |
        timeout 15 socat -t 15 - "TCP:127.0.0.1:$BIG" >"$T/resp" || fail "socat: $?"
    status_is 200 "$target"
    wait_for sh -c "cat '$T'/head.* 2>/dev/null | grep -q '^GET '"
    authority=${target#*://}
    authority=${authority%%/*}
    cat "$T"/head.* | tr -d '\r' | grep -qx 'GET /abs?q=1 HTTP/1.1' &&
        cat "$T"/head.* | tr -d '\r' | grep -qxF "Host: $authority" &&
        [ "$(cat "$T"/head.* | grep -ci '^Host:')" = 1 ] ||
        fail "$target went on as: $(cat "$T"/head.*)"
done
for target in 'ftp://api.example/abs' 'http://u:p@api.example/abs' 'http:///abs'; do
    raw "GET $target HTTP/1.1\r\nHost: x\r\n\r\n"
    status_is 400 "$target"
done

log "methods: a body on /pay by a method the route does not take is 405, never plaintext"
n=$(backend_lines)
for m in PATCH DELETE MERGE OPTIONS; do
    curl -sS -i --max-time 5 -X "$m" -H 'Content-Type: application/json' --data-binary "$CARD" \
        "$URL/pay" >"$T/resp" || fail "curl $m: $?"
    status_is 405 "$m with a body"
    tr -d '\r' <"$T/resp" | grep -qx "Allow: POST, PUT" || fail "$m: no Allow: $(cat "$T/resp")"
    reason_is method "$m with a body"
done
raw "PATCH /pay/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{}  \r\n0\r\n\r\n"
status_is 405 "chunked PATCH"
[ "$(backend_lines)" = "$n" ] || fail "a body by another method reached the backend"
grep -q "$PLAIN" "$T/backend.log" && fail "plaintext reached the backend"
curl -sS -i --max-time 5 -X DELETE "$URL/pay" >"$T/resp" || fail "curl DELETE: $?"
status_is 200 "DELETE without a body"
# a later route of the path for the method takes it when it seals every field the
# earlier one does, and only then
curl -sS -i --max-time 5 -X PUT -H 'Content-Type: application/json' \
    --data-binary "{\"ssn\":\"$PLAIN\",\"email\":\"e\"}" "$URL/acct" >"$T/resp" || fail "curl: $?"
status_is 200 "PUT on /acct (acct-put seals acct-post's fields)"
tail -1 "$T/backend.log" | has "$PLAIN" && fail "PUT /acct: plaintext reached the backend"
tail -1 "$T/backend.log" | has '"ssn":"al1:k1:' || fail "PUT /acct: not encrypted: $(tail -1 "$T/backend.log")"
n=$(backend_lines)
curl -sS -i --max-time 5 -X PUT -H 'Content-Type: application/json' \
    --data-binary "{\"ssn\":\"$PLAIN\"}" "$URL/half" >"$T/resp" || fail "curl: $?"
status_is 405 "PUT on /half (half-put does not seal half-post's \$.ssn)"
tr -d '\r' <"$T/resp" | grep -qx "Allow: POST" || fail "PUT /half: no Allow: $(cat "$T/resp")"
[ "$(backend_lines)" = "$n" ] || fail "PUT /half reached the backend"
# an earlier route of the path that takes the method but seals nothing lets
# no body by that a later route of the path seals for its methods
n=$(backend_lines)
curl -sS -i --max-time 5 -X GET -H 'Content-Type: application/json' \
    --data-binary "{\"ssn\":\"$PLAIN\"}" "$URL/users" >"$T/resp" || fail "curl: $?"
status_is 405 "GET on /users with a body (users-get seals nothing, users-write seals \$.ssn)"
tr -d '\r' <"$T/resp" | grep -qx "Allow: POST, PUT" || fail "GET /users: no Allow: $(cat "$T/resp")"
[ "$(backend_lines)" = "$n" ] || fail "GET /users with a body reached the backend"
curl -sS -i --max-time 5 "$URL/users" >"$T/resp" || fail "curl: $?"
status_is 200 "GET on /users without a body"
curl -sS -i --max-time 5 -H 'Content-Type: application/json' \
    --data-binary "{\"ssn\":\"$PLAIN\"}" "$URL/users" >"$T/resp" || fail "curl: $?"
status_is 200 "POST on /users"
tail -1 "$T/backend.log" | has '"ssn":"al1:k1:' || fail "POST /users: not encrypted: $(tail -1 "$T/backend.log")"
# a method-override header gives the body the other method's route: a backend
# with such middleware serves POST /half as PUT, whose route seals $.email
n=$(backend_lines)
for h in 'X-HTTP-Method-Override: PUT' 'x-http-method:  put ' 'X-Method-Override: MERGE'; do
    curl -sS -i --max-time 5 -H "$h" -H 'Content-Type: application/json' \
        --data-binary "{\"email\":\"$PLAIN\"}" "$URL/half" >"$T/resp" || fail "curl: $?"
    status_is 405 "POST /half with $h"
done
[ "$(backend_lines)" = "$n" ] || fail "an overridden POST /half reached the backend"
# so does a query parameter _method (method-override's methodOverride('_method'),
# Symfony and Laravel), however PHP or a decoder spells it, and a member
# _method of the JSON body (Laravel; method-override's req.body._method)
for q in '_method=PUT' 'a=1&_method=put' '%5Fmethod=PUT' '.method=PUT' '_method[]=PUT' \
    '_method=%50UT' '_method=MERGE' 'x=1;_method=PUT'; do
    curl -sS -i --max-time 5 -H 'Content-Type: application/json' \
        --data-binary "{\"email\":\"$PLAIN\"}" "$URL/half?$q" >"$T/resp" || fail "curl: $?"
    status_is 405 "POST /half?$q"
done
for b in '"_method":"PUT",' '"\u005fmethod":" put",' '"_method":"POST","_method":"PUT",' '"_method":1,'; do
    curl -sS -i --max-time 5 -H 'Content-Type: application/json' \
        --data-binary "{$b\"email\":\"$PLAIN\"}" "$URL/half" >"$T/resp" || fail "curl: $?"
    status_is 405 "POST /half with $b in the body"
done
[ "$(backend_lines)" = "$n" ] || fail "an overridden POST /half reached the backend"
grep -q "$PLAIN" "$T/backend.log" && fail "an overridden POST /half: plaintext reached the backend"
for q in '_method=POST' 'x_method=PUT' '_methods=PUT'; do
    curl -sS -i --max-time 5 -H 'Content-Type: application/json' \
        --data-binary "{\"ssn\":\"$PLAIN\",\"_method\":\"POST\",\"x\":{\"_method\":\"PUT\"}}" \
        "$URL/half?$q" >"$T/resp" || fail "curl: $?"
    status_is 200 "POST /half?$q (no other method)"
    tail -1 "$T/backend.log" | has "$PLAIN" && fail "POST /half?$q: plaintext reached the backend"
done
curl -sS -i --max-time 5 -X PUT -H 'X-HTTP-Method-Override: POST' -H 'Content-Type: application/json' \
    --data-binary "{\"ssn\":\"$PLAIN\",\"email\":\"e\"}" "$URL/acct" >"$T/resp" || fail "curl: $?"
status_is 200 "PUT /acct as POST (acct-put seals acct-post's fields)"
tail -1 "$T/backend.log" | has "$PLAIN" && fail "PUT /acct as POST: plaintext reached the backend"
# a path-override header would have a backend behind a rewriting front
# serve another path than the routes read (POST /open as /users): refused,
# with a body or without
n=$(backend_lines)
for h in 'X-Original-URL: /users' 'x-rewrite-url:/users?x=1'; do
    curl -sS -i --max-time 5 -H "$h" -H 'Content-Type: application/json' \
        --data-binary "{\"ssn\":\"$PLAIN\"}" "$URL/open" >"$T/resp" || fail "curl: $?"
    status_is 400 "POST /open with $h"
    reason_is bad_request "POST /open with $h"
    curl -sS -i --max-time 5 -H "$h" "$URL/open" >"$T/resp" || fail "curl: $?"
    status_is 400 "GET /open with $h"
done
[ "$(backend_lines)" = "$n" ] || fail "a request with a path-override header reached the backend"

log "growth: 256 KiB of one-byte values would be 7 MiB sealed: 413, never forwarded"
ones() { printf '{"a":[1'; head -c "$1" /dev/zero | tr '\0' '\n' | sed 's/^/,1/' | tr -d '\n'; printf ']}'; }
ones 131000 >"$T/ones.json"
n=$(backend_lines)
curl -sS -i --max-time 20 -H 'Content-Type: application/json' --data-binary "@$T/ones.json" \
    "$URL/bulk" >"$T/resp" || fail "curl: $?"
status_is 413 "a body that grows over the bound"
reason_is body_too_large "a body that grows over the bound"
[ "$(backend_lines)" = "$n" ] || fail "a body over the bound reached the backend"
ones 2000 >"$T/ones.json"
curl -sS -i --max-time 20 -H 'Content-Type: application/json' --data-binary "@$T/ones.json" \
    "$URL/bulk" >"$T/resp" || fail "curl: $?"
status_is 200 "a body under the bound"

log "a backend connection authenticated by NTLM or Negotiate serves its client alone"
# conn_of: the backend connection of the last request
conn_of() { tail -1 "$T/backend.log" | grep -o 'conn=[0-9]* '; }
# others: 6 client connections one after the other (both workers, 3 times)
others() { for i in 1 2 3 4 5 6; do curl -sf --max-time 5 "$URL/other$i" >/dev/null || fail "curl: $?"; done; }
for scheme in NTLM 'Negotiate oYH1MIHyoAMKAQ' 'Basic realm="x", NTLM'; do
    answer "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: $scheme\r\nContent-Length: 0\r\n\r\n"
    status_is 401 "$scheme"
    c=$(conn_of)
    others
    tail -6 "$T/backend.log" | grep -q "$c" && fail "the connection challenged with $scheme served another client"
done
curl -sf --max-time 5 -H 'Authorization: NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==' \
    "$URL/ntlm" >/dev/null || fail "curl: $?"
c=$(conn_of)
others
tail -6 "$T/backend.log" | grep -q "$c" && fail "the connection of NTLM credentials served another client"
# the same with Basic: the connection is pooled (else the checks above prove nothing)
answer 'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="NTLMish"\r\nContent-Length: 0\r\n\r\n'
c=$(conn_of)
others
tail -6 "$T/backend.log" | grep -q "$c" || fail "a Basic challenge's connection was not pooled"

stop_clean "$(pgrep -f "$AIRLOCK run -c $T/airlock.yaml" | head -1)" airlock
log "ok"
