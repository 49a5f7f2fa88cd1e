#!/bin/bash
# t_field_proxy_ops: the HTTP proxy role as an operator sees it:
#   - SIGHUP with changed routes: the new rules apply to the next connection
#     at once (the listener adopted: no refused connect), the counters of a
#     route go on; a connection kept alive between two requests goes on
#     under the new rules (before, under the old ones for as long as its
#     client kept it busy), so does one opened before the reload that sent
#     nothing yet, and one inside a request finishes it on the old settings;
#   - SIGHUP with the config unchanged and its keyset file changed (a key
#     added and made primary: renamed over it, or rewritten in place): the
#     file is read again, new tokens are sealed under the new key; with
#     nothing changed, the proxy is left as it is;
#   - a storm of clients that give up inside a head or a body, and of
#     requests to a backend that fails, leaves no file descriptor behind;
#   - SIGTERM: an in-flight request still gets its answer (Connection:
#     close), then airlock exits 0 (no leak under the sanitizers).
. "$(dirname "$0")/lib.sh"

ECHO=${HTTP_ECHO:-$(dirname "$AIRLOCK")/tests/http_echo}
[ -x "$ECHO" ] || skip "tests/http_echo not built"
need_field

read -r BACK FRONT METRICS <<<"$(free_ports 3)"
start echo "$ECHO" "$BACK" "$T/backend.log"
wait_port "$BACK"
keyset_file "$T/keys.json" t k1 k1
# config PATHS: the proxy with a route encrypting PATHS (a YAML flow list)
config() {
    cat >"$T/airlock.yaml" <<EOF
threads: 2
drain_timeout: 20s
metrics: tcp:127.0.0.1:$METRICS
proxies:
  - name: api
    listen: tcp:127.0.0.1:$FRONT
    backend: tcp:127.0.0.1:$BACK
    keyset: $T/keys.json
    routes:
      - name: pay
        path: /
        encrypt: $1
EOF
}
config '["$.a"]'
airlock_up airlock run -c "$T/airlock.yaml"
pid=$LAST_PID
last_body() { tail -1 "$T/backend.log" | sed 's/.* body=//'; }
post() { curl -sf --max-time 10 -H 'Content-Type: application/json' -d "$1" "http://127.0.0.1:$FRONT/" >/dev/null; }

post '{"a":"A1","b":"B1"}' || fail "post"
last_body | has '"a":"al1:' || fail "a not encrypted: $(last_body)"
last_body | has '"b":"B1"' || fail "b changed: $(last_body)"

log "a reload: new rules for the next request, on new and kept-alive connections alike"
# a client that sends one request, waits for the reload, then a second on the same connection
mkfifo "$T/ka.in"
timeout 30 "$NETPEER" connect "tcp:127.0.0.1:$FRONT" <"$T/ka.in" >"$T/ka.out" &
ka=$!
exec 3>"$T/ka.in"
req() { printf 'POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%b\r\n%s' "${#1}" "$2" "$1"; }
req '{"a":"K1","b":"K2"}' "" >&3
wait_for grep -q 'K2' "$T/backend.log"
# one that says nothing until after the reload
mkfifo "$T/fresh.in"
timeout 30 "$NETPEER" connect "tcp:127.0.0.1:$FRONT" <"$T/fresh.in" >"$T/fresh.out" &
fresh=$!
exec 4>"$T/fresh.in"
wait_for eval '[ "$(metric airlock_http_connections_open "proxy=\"api\"" "$METRICS")" = 2 ]'
# and one whose request is at the backend during the reload
curl -sS -i --max-time 20 -H 'Content-Type: application/json' -d '{"a":"S1","b":"S2"}' \
    "http://127.0.0.1:$FRONT/slow?ms=1500" >"$T/slow.out" 2>&1 &
slow=$!
wait_for grep -q 'S2' "$T/backend.log"
config '["$.b"]'
kill -HUP "$pid"
wait_log "$T/airlock.log" 'proxy=api changed'
post '{"a":"A2","b":"B2"}' || fail "post after the reload"
last_body | has '"a":"A2"' || fail "a still encrypted after the reload: $(last_body)"
last_body | has '"b":"al1:' || fail "b not encrypted after the reload: $(last_body)"
req '{"a":"K3","b":"K4"}' 'Connection: close\r\n' >&3
exec 3>&-
req '{"a":"F1","b":"F2"}' 'Connection: close\r\n' >&4
exec 4>&-
wait "$fresh" || fail "the client that waited: status $?"
grep -q 'HTTP/1.1 200' "$T/fresh.out" || fail "the client that waited: $(cat "$T/fresh.out")"
grep 'F1' "$T/backend.log" | has '"a":"F1"' && grep 'F1' "$T/backend.log" | has '"b":"al1:' ||
    fail "a connection opened before the reload had the old rules: $(grep F1 "$T/backend.log")"
wait "$ka" || fail "kept-alive client: status $?"
[ "$(grep -c 'HTTP/1.1 200' "$T/ka.out")" = 2 ] || fail "kept-alive client: $(cat "$T/ka.out")"
grep 'K3' "$T/backend.log" | has '"a":"K3"' && grep 'K3' "$T/backend.log" | has '"b":"al1:' ||
    fail "the kept-alive connection's request after the reload: $(grep K3 "$T/backend.log")"
wait "$slow" || fail "the request across the reload: curl $?"
grep -q 'HTTP/1.1 200' "$T/slow.out" || fail "the request across the reload: $(cat "$T/slow.out")"
grep 'S2' "$T/backend.log" | has '"a":"al1:' || fail "the request across the reload did not keep the old rules"
v=$(metric airlock_http_fields_encrypted_total 'proxy="api",route="pay"' "$METRICS")
[ "${v:-0}" -ge 3 ] || fail "the route's counter did not carry on: ${v:-none}"

log "rotation: the keyset file changes, the config does not; a reload reads it again"
# add_key ID MODE: a key ID added to the keyset file and made primary, the
# file renamed over (MODE rename) or rewritten in place (MODE inplace)
add_key() {
    python3 - "$T/keys.json" "$1" "$2" <<'PY'
import json, os, secrets, sys
path, kid, mode = sys.argv[1:]
ks = json.load(open(path))
ks["keys"].append({"id": kid, "key": secrets.token_hex(32)})
ks["primary"] = kid
if mode == "rename":
    fd = os.open(path + ".new", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, json.dumps(ks).encode())
    os.close(fd)
    os.rename(path + ".new", path)
else:
    with open(path, "r+") as f:
        f.write(json.dumps(ks))
        f.truncate()
PY
}
rekeyed() { [ "$(grep -c 'proxy=api changed (a keyset file changed)' "$T/airlock.log")" = "$1" ]; }
reloads() { grep -c 'reloaded .*(generation' "$T/airlock.log"; }
add_key k2 rename
kill -HUP "$pid"
wait_until 10 rekeyed 1 || fail "a keyset renamed over was not read again"
post '{"a":"A3","b":"B3"}' || fail "post after the rotation"
last_body | has '"b":"al1:k2:' || fail "b not sealed under the new primary k2: $(last_body)"
add_key k3 inplace
kill -HUP "$pid"
wait_until 10 rekeyed 2 || fail "a keyset rewritten in place was not read again"
post '{"a":"A4","b":"B4"}' || fail "post after the second rotation"
last_body | has '"b":"al1:k3:' || fail "b not sealed under the new primary k3: $(last_body)"
before=$(reloads)
kill -HUP "$pid"
wait_until 10 eval '[ "$(reloads)" -gt "$before" ]' || fail "no third reload"
[ "$(grep -c 'proxy=api changed' "$T/airlock.log")" = 3 ] ||
    fail "a reload with the config and the keyset unchanged replaced the proxy"

log "clients that give up and backends that fail leave no fd behind"
base=$(fd_count "$pid")
for i in $(seq 1 20); do
    printf 'POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a"' |
        timeout 10 socat -t 0 - "TCP:127.0.0.1:$FRONT" >/dev/null 2>&1 || true
    printf 'GET / HTTP/1.1\r\nHo' | timeout 10 socat -t 0 - "TCP:127.0.0.1:$FRONT" >/dev/null 2>&1 || true
    curl -s --max-time 10 "http://127.0.0.1:$FRONT/close" >/dev/null || true
    curl -s --max-time 10 "http://127.0.0.1:$FRONT/truncate" >/dev/null || true
done
fds_back() { [ "$(fd_count "$pid")" -le "$base" ]; }
wait_for fds_back || fail "fds: $(fd_count "$pid"), $base before"
v=$(metric airlock_http_connections_open 'proxy="api"' "$METRICS")
[ "$v" = 0 ] || fail "connections open: $v, expected 0"

log "SIGTERM: an in-flight request is answered, then a clean exit"
slow_before=$(grep -c "^POST /slow" "$T/backend.log")
curl -s -i --max-time 20 -H 'Content-Type: application/json' -d '{"b":"slow"}' \
    "http://127.0.0.1:$FRONT/slow?ms=1500" >"$T/slow" &
c=$!
wait_for eval '[ "$(grep -c "^POST /slow" "$T/backend.log")" -gt "$slow_before" ]'
kill -TERM "$pid"
wait "$c" || fail "in-flight client: status $?"
head -1 "$T/slow" | has ' 200 ' || fail "in-flight request: $(head -1 "$T/slow")"
grep -qi '^Connection: close' "$T/slow" || fail "no Connection: close while draining"
stop_clean "$pid" airlock
log "ok"
