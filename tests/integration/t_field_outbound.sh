#!/bin/bash
# t_field_outbound: a proxy in mode outbound, the enclave's own calls to a
# third party (nginx with TLS from a CA the test makes, in front of
# tests/tools/http_echo, which logs each body as it arrived):
#   - an allowed destination gets the tokens of the application's request
#     opened (plaintext values, types restored), over TLS airlock verified
#     (SNI and Host are the upstream's; by name and by address literal); a
#     response over max_response comes back streamed, intact;
#   - a destination outside egress_allow gets nothing (403): by name before
#     any token is opened, by address (a name allowed whose address is not)
#     before any connect;
#   - a certificate from another CA, or for another host name, gets nothing
#     (502, the handshake fails before a byte of the request);
#   - through an egress relay (via: a relay with target: egress, HTTP
#     CONNECT), the same: values over verified TLS, and a destination the
#     relay's own list refuses gets nothing (403);
#   - a tampered token is refused (400), never forwarded;
#   - an absolute-form request target goes on in origin form with the
#     upstream's Host: its authority never names another virtual host of
#     the upstream's server (nginx serves the target's authority over Host);
#     one with userinfo or another scheme is 400;
#   - the failures are counted by reason; `airlock check` refuses bad
#     outbound configs; the example of docs/field-encryption.md checks.
. "$(dirname "$0")/lib.sh"
need openssl nginx curl socat
ECHO=${HTTP_ECHO:-$(dirname "$AIRLOCK")/tests/http_echo}
[ -x "$ECHO" ] || skip "tests/http_echo not built"
need_field

read -r BACK WEB WRONG DENY OUT OUT2 OUT3 EG METRICS <<<"$(free_ports 9)"

# a CA, a certificate for localhost and 127.0.0.1, one for another name,
# and a second CA that signed none of them
cert() { # NAME CN SAN CA
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$1.key" \
        -out "$T/$1.csr" -subj "/CN=$2" 2>/dev/null
    openssl x509 -req -in "$T/$1.csr" -CA "$T/$4.pem" -CAkey "$T/$4.key" -CAcreateserial \
        -out "$T/$1.pem" -days 2 -extfile <(printf 'subjectAltName=%s\n' "$3") 2>/dev/null
}
for ca in ca otherca; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$ca.key" \
        -out "$T/$ca.pem" -days 2 -subj "/CN=t_field_outbound $ca" 2>/dev/null
done
cert web localhost "DNS:localhost,IP:127.0.0.1" ca
cert wrong other.example "DNS:other.example" ca

start echo "$ECHO" "$BACK" "$T/third.log"
wait_port "$BACK"
server() { # PORT CERT LOG
    printf '    server {\n        listen 127.0.0.1:%s ssl;\n' "$1"
    printf '        ssl_certificate %s;\n        ssl_certificate_key %s;\n' "$T/$2.pem" "$T/$2.key"
    printf '        access_log %s seen;\n' "$T/$3"
    printf '        location / { proxy_pass http://127.0.0.1:%s; }\n    }\n' "$BACK"
}
{
    printf 'daemon off;\npid %s;\nerror_log %s;\nevents {}\nhttp {\n' "$T/nginx.pid" "$T/nginx.err"
    printf "    log_format seen 'sni=\$ssl_server_name host=\$host \$request';\n"
    for d in client_body proxy fastcgi uwsgi scgi; do printf '    %s_temp_path %s;\n' "$d" "$T"; done
    server "$WEB" web web.log
    server "$WRONG" wrong wrong.log
    printf '}\n'
} >"$T/nginx.conf"
touch "$T/web.log" "$T/wrong.log" "$T/third.log"
start nginx nginx -c "$T/nginx.conf"
wait_port "$WEB"
wait_port "$WRONG"
# a destination that must get nothing: every byte it receives is kept
start deny socat TCP-LISTEN:"$DENY",bind=127.0.0.1,reuseaddr,fork OPEN:"$T/deny.bytes",creat,append
wait_port "$DENY"

keyset_file "$T/keys.json" acme k1 k1
cat >"$T/airlock.yaml" <<YAML
metrics: tcp:127.0.0.1:$METRICS
relays:
  - name: egress                   # the host's egress relay, with a list of its own
    listen: tcp:127.0.0.1:$EG
    target: egress
    egress_allow: ["localhost:$WEB", "127.0.0.1:$WEB"]
proxies:
  - name: out
    mode: outbound
    listen: tcp:127.0.0.1:$OUT
    keyset: $T/keys.json
    ca_file: $T/ca.pem
    response_timeout: 5s
    max_response: 64KiB
    egress_allow: ["localhost:$WEB", "127.0.0.1:$WEB", "localhost:$WRONG", "127.0.0.1:$WRONG",
                   "localhost:$DENY"]
    routes:
      - name: pay
        path: /v1
        upstream: https://localhost:$WEB
        decrypt: true
      - name: byip
        path: /ip
        upstream: https://127.0.0.1:$WEB/
        decrypt: true
      - name: plain
        path: /plain
        upstream: localhost:$WEB
      - name: denied
        path: /denied
        upstream: https://127.0.0.2:$DENY
        decrypt: true
      - name: unlisted
        path: /unlisted
        upstream: https://elsewhere.example:443
        decrypt: true
      - name: rebind
        path: /rebind
        upstream: https://localhost:$DENY
        decrypt: true
      - name: wrongname
        path: /wrong
        upstream: https://localhost:$WRONG
        decrypt: true
  - name: otherca
    mode: outbound
    listen: tcp:127.0.0.1:$OUT2
    keyset: $T/keys.json
    ca_file: $T/otherca.pem
    egress_allow: ["localhost:$WEB", "127.0.0.1:$WEB"]
    routes:
      - path: /
        upstream: https://localhost:$WEB
        decrypt: true
  - name: via
    mode: outbound
    listen: tcp:127.0.0.1:$OUT3
    keyset: $T/keys.json
    ca_file: $T/ca.pem
    via: tcp:127.0.0.1:$EG
    egress_allow: ["localhost:$WEB", "localhost:$WRONG"]
    routes:
      - {name: pay, path: /v1, upstream: "https://localhost:$WEB", decrypt: true}
      - {name: other, path: /wrong, upstream: "https://localhost:$WRONG", decrypt: true}
YAML
"$AIRLOCK" check -c "$T/airlock.yaml" >"$T/check.out" 2>&1 || fail "the config: $(cat "$T/check.out")"
airlock_up airlock run -c "$T/airlock.yaml"
PID=$LAST_PID
base=$(fd_count "$PID")
wait_log "$T/airlock.log" "route unlisted: upstream elsewhere.example is not in egress_allow" ||
    fail "no warning for a route outside egress_allow"

PLAIN_DOC='{"card":{"number":"4111111111111111","cvv":123},"vip":true,"ssn":"078-05-1120","amount":12.50}'
"$AIRLOCK" field encrypt --keys "$T/keys.json" --path '$.card.number' --path '$.card.cvv' \
    --path '$.vip' --path '$.ssn' <<<"$PLAIN_DOC" >"$T/tok.json" || fail "field encrypt"
DOC=$(cat "$T/tok.json")
[ "$(grep -o '"al1:k1:' <<<"$DOC" | wc -l)" = 4 ] || fail "expected 4 tokens: $DOC"

# post PORT PATH BODY: the status in $code, the body in $T/resp
post() {
    code=$(curl -sS -o "$T/resp" -w '%{http_code}' --max-time 20 -H 'Content-Type: application/json' \
        --data-binary "$3" "http://127.0.0.1:$1$2") || fail "curl $2: status $?"
}
third_lines() { wc -l <"$T/third.log"; }
last_body() { tail -1 "$T/third.log" | sed 's/.* body=//'; }

log "an allowed destination gets the values, over verified TLS, with its own Host and SNI"
post "$OUT" /v1/charge "$DOC"
[ "$code" = 200 ] || fail "expected 200, got $code: $(cat "$T/resp")"
[ "$(last_body)" = "$PLAIN_DOC" ] || fail "the third party got $(last_body)"
tail -1 "$T/web.log" | has "^sni=localhost host=localhost POST /v1/charge " ||
    fail "nginx saw: $(tail -1 "$T/web.log")"
post "$OUT" /ip/x "$DOC"
[ "$code" = 200 ] || fail "by address: expected 200, got $code: $(cat "$T/resp")"
[ "$(last_body)" = "$PLAIN_DOC" ] || fail "by address, the third party got $(last_body)"
tail -1 "$T/web.log" | has "host=127.0.0.1 POST /ip/x " || fail "nginx saw: $(tail -1 "$T/web.log")"

log "an absolute-form target goes on in origin form, with the upstream's Host"
for target in http://evil.test/v1/charge HTTP://EVIL.TEST:1/v1/charge 'http://[::1]:9/v1/charge?a=1'; do
    code=$(curl -sS -o "$T/resp" -w '%{http_code}' --max-time 20 -H 'Content-Type: application/json' \
        --request-target "$target" --data-binary "$DOC" "http://127.0.0.1:$OUT/") || fail "curl: $?"
    [ "$code" = 200 ] || fail "$target: expected 200, got $code: $(cat "$T/resp")"
    tail -1 "$T/web.log" | has "^sni=localhost host=localhost POST /v1/charge[? ]" ||
        fail "$target: nginx saw: $(tail -1 "$T/web.log")"
done
n=$(third_lines)
for target in ftp://evil.test/v1/charge http://a@evil.test/v1/charge http:///v1/charge; do
    code=$(curl -sS -o "$T/resp" -w '%{http_code}' --max-time 20 -H 'Content-Type: application/json' \
        --request-target "$target" --data-binary "$DOC" "http://127.0.0.1:$OUT/") || fail "curl: $?"
    [ "$code" = 400 ] || fail "$target: expected 400, got $code: $(cat "$T/resp")"
done
[ "$(third_lines)" = "$n" ] || fail "a refused target reached the third party"

log "a route without decrypt passes tokens as they are (still over verified TLS)"
post "$OUT" /plain "$DOC"
[ "$code" = 200 ] && [ "$(last_body)" = "$DOC" ] || fail "plain route: $code $(last_body)"

log "a response over max_response comes through TLS streamed, intact"
gen_data big 300000 >"$T/big"
curl -sS -o "$T/big.back" --max-time 20 -H 'Content-Type: application/octet-stream' \
    --data-binary @"$T/big" "http://127.0.0.1:$OUT/plain/big" || fail "curl big: $?"
cmp -s "$T/big" "$T/big.back" || fail "the big response did not come back intact"

log "keep-alive: two requests on one application connection"
n=$(third_lines)
curl -sS -o /dev/null -o /dev/null --max-time 20 -H 'Content-Type: application/json' \
    --data-binary "$DOC" "http://127.0.0.1:$OUT/v1/a" "http://127.0.0.1:$OUT/v1/b" || fail "curl twice"
[ "$(third_lines)" = $((n + 2)) ] || fail "two requests: $(tail -2 "$T/third.log")"

log "destinations outside egress_allow get nothing: 403"
n=$(third_lines)
for path in /denied /unlisted /rebind; do
    post "$OUT" "$path" "$DOC"
    [ "$code" = 403 ] || fail "$path: expected 403, got $code: $(cat "$T/resp")"
    has destination_denied <"$T/resp" || fail "$path: $(cat "$T/resp")"
done
[ ! -s "$T/deny.bytes" ] || fail "the denied destination got bytes: $(cat "$T/deny.bytes")"
[ "$(third_lines)" = "$n" ] || fail "a denied request reached the third party"
grep -q "upstream 127.0.0.2 refused: private_address" "$T/airlock.log" ||
    fail "no log line for the address refused"
grep -q "upstream elsewhere.example refused: not_allowed_name" "$T/airlock.log" ||
    fail "no log line for the name refused"
# the name is allowed, its address only on another port
grep -q "upstream localhost refused: not_allowed_port address=127.0.0.1 range=loopback" \
    "$T/airlock.log" || fail "no log line for the allowed name's address"

log "a certificate for another name, or from another CA: 502, nothing sent"
post "$OUT" /wrong "$DOC"
[ "$code" = 502 ] || fail "wrong name: expected 502, got $code"
has upstream_unverified <"$T/resp" || fail "wrong name: $(cat "$T/resp")"
post "$OUT2" /v1 "$DOC"
[ "$code" = 502 ] || fail "other CA: expected 502, got $code"
has upstream_unverified <"$T/resp" || fail "other CA: $(cat "$T/resp")"
[ "$(third_lines)" = "$n" ] || fail "an unverified destination got the request"
[ ! -s "$T/wrong.log" ] || fail "nginx logged a request on the wrong name: $(cat "$T/wrong.log")"
grep -q "upstream localhost: certificate not verified: " "$T/airlock.log" || fail "no log line"

log "through an egress relay (via, HTTP CONNECT): the values arrive over verified TLS"
post "$OUT3" /v1/via "$DOC"
[ "$code" = 200 ] || fail "via: expected 200, got $code: $(cat "$T/resp")"
[ "$(last_body)" = "$PLAIN_DOC" ] || fail "via: the third party got $(last_body)"
tail -1 "$T/web.log" | has "^sni=localhost host=localhost POST /v1/via " ||
    fail "via: nginx saw: $(tail -1 "$T/web.log")"
log "a destination the egress relay refuses: 403, nothing sent"
n=$(third_lines)
post "$OUT3" /wrong "$DOC"
[ "$code" = 403 ] && has destination_denied <"$T/resp" || fail "via refused: $code $(cat "$T/resp")"
[ "$(third_lines)" = "$n" ] && [ ! -s "$T/wrong.log" ] || fail "the refused destination got it"
grep -q "upstream localhost via: CONNECT answered 403" "$T/airlock.log" || fail "no via log line"

log "a tampered token is refused, never forwarded"
tok=$(grep -o '"al1:k1:[^"]*"' <<<"$DOC" | head -1)
bad=${tok:0:20}$(tr 'A-Za-z' 'B-ZAb-za' <<<"${tok:20:4}")${tok:24}
post "$OUT" /v1 "${DOC/"$tok"/"$bad"}"
[ "$code" = 400 ] && has bad_token <"$T/resp" || fail "tampered: $code $(cat "$T/resp")"
[ "$(third_lines)" = "$n" ] || fail "a tampered token reached the third party"
post "$OUT" /nowhere "$DOC"
[ "$code" = 404 ] && has no_route <"$T/resp" || fail "no route: $code $(cat "$T/resp")"

log "metrics by reason"
m() { metric "$1" "$2" "$METRICS"; }
[ "$(m airlock_http_failures_total 'proxy="out",reason="destination_denied"')" = 3 ] || fail "denied"
[ "$(m airlock_http_failures_total 'proxy="out",reason="upstream_unverified"')" = 1 ] || fail "name"
[ "$(m airlock_http_failures_total 'proxy="otherca",reason="upstream_unverified"')" = 1 ] || fail "ca"
[ "$(m airlock_http_failures_total 'proxy="out",reason="bad_token"')" = 1 ] || fail "bad_token"
[ "$(m airlock_http_fields_decrypted_total 'proxy="out",route="pay"')" = 24 ] || fail "decrypted"

log "airlock check refuses bad outbound configs"
bad() { # MESSAGE PROXY-SETTINGS
    printf 'proxies:\n  - listen: tcp:127.0.0.1:1\n    keyset: %s\n%s\n' "$T/keys.json" "$2" >"$T/bad.yaml"
    "$AIRLOCK" check -c "$T/bad.yaml" >"$T/bad.out" 2>&1 && fail "accepted: $2"
    has -F "$1" <"$T/bad.out" || fail "for $2: $(cat "$T/bad.out")"
}
R='    routes: [{path: /, upstream: "https://api.example.com", decrypt: true}]'
A='    egress_allow: ["api.example.com:443"]'
M='    mode: outbound'
bad "backend: expected no backend in mode outbound" "$M
    backend: tcp:127.0.0.1:2
$A
$R"
bad "egress_allow: expected the destinations" "$M
$R"
bad "routes[0].upstream: expected the destination" "$M
$A
    routes: [{path: /, decrypt: true}]"
bad "routes[0].encrypt: expected no encrypt rules in mode outbound" "$M
$A
    routes: [{path: /, upstream: api.example.com:443, encrypt: [\$.a]}]"
bad "upstream: expected https://HOST[:PORT] or HOST:PORT" "$M
$A
    routes: [{path: /, upstream: \"http://api.example.com\"}]"
bad "upstream: expected https://HOST[:PORT] or HOST:PORT" "$M
$A
    routes: [{path: /, upstream: \"https://api.example.com/v1\"}]"
bad "upstream: expected https://HOST[:PORT] or HOST:PORT" "$M
$A
    routes: [{path: /, upstream: \"https://bad..example\"}]"
bad "mode: expected inbound or outbound" "    mode: sideways
$A
$R"
bad "routes[0].upstream: expected upstream in mode outbound only" "    backend: tcp:127.0.0.1:2
$R"
bad "egress_allow: expected egress_allow in mode outbound only" "    backend: tcp:127.0.0.1:2
$A"
bad "ca_file: $T/none.pem: No such file or directory" "$M
    ca_file: $T/none.pem
$A
$R"
bad "ca_file: $T/keys.json: expected PEM certificates" "$M
    ca_file: $T/keys.json
$A
$R"
bad "via: expected via in mode outbound only" "    backend: tcp:127.0.0.1:2
    via: tcp:127.0.0.1:3"
bad "via: expected a stream endpoint" "$M
    via: udp:127.0.0.1:3
$A
$R"

log "the example of docs/field-encryption.md checks"
awk '/^<!-- t_field_outbound -->/ { on = 1; next } on && /^```yaml/ { inb = 1; next }
     inb && /^```/ { exit } inb { print }' "$ROOT/docs/field-encryption.md" |
    sed "s|/etc/airlock/acme.json|$T/keys.json|; s|/etc/airlock/partner-ca.pem|$T/ca.pem|" >"$T/doc.yaml"
has 'mode: outbound' <"$T/doc.yaml" || fail "no outbound example in the doc"
"$AIRLOCK" check -c "$T/doc.yaml" >"$T/doc.out" 2>&1 || fail "the doc's example: $(cat "$T/doc.out")"
log "no fd left behind; a clean exit (the sanitizers find no leak)"
fds_back() { [ "$(fd_count "$PID")" -le "$base" ]; }
wait_for fds_back || fail "fds: $(fd_count "$PID"), $base before"
stop_clean "$PID" airlock
log ok
