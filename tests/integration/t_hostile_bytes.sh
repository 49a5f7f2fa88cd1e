#!/bin/bash
# t_hostile_bytes: malformed input at every kind of listener at once never
# crashes airlock nor disturbs another connection. One airlock holds a
# relay with accept_proxy, a plain relay, an attested TLS relay (sim
# provider), an egress relay, a datagram relay pair (udp -> unix -> udp), a
# router with static routes and one on the directory with a pool of
# fakeapp instances, a log sink, two field-encryption proxies (one in front
# of a backend that answers every request with a malformed response), the
# key broker, the metrics endpoint and the control socket. hostile_bytes.py
# sends 2500 connections (datagrams on udp) of mutated messages and random
# bytes, in random pieces, half-closed or reset, spread over them (a fixed
# seed). Meanwhile a bystander holds one connection through the plain relay
# and echoes a line every 20 ms, and asks a question through the datagram
# pair with each. Then: airlock runs, /healthz answers, no sanitizer spoke,
# the bystander got every echo and every answer, the field proxy still
# encrypts a field, the pool is back to its idle instances with nothing
# reserved, and the fds airlock holds come back to where they were (flows,
# streams and reservations expire; nothing leaks).
. "$(dirname "$0")/lib.sh"
need python3 curl openssl
need_field
ECHO=${HTTP_ECHO:-$(dirname "$AIRLOCK")/tests/http_echo}
[ -x "$ECHO" ] || skip "tests/http_echo not built"
read -r ORIGIN BACK FRONT MPORT PROXIED CALM ROUTER EGRESS DNS ATLS BROKER HBACK HFRONT GRID <<<"$(free_ports 14)"
P0=$(free_range 20)

# the origin: echoes tcp and udp on one port
start origin python3 -c '
import socket, sys, threading
port = int(sys.argv[1])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", port))
def udp():
    while True:
        data, addr = u.recvfrom(65536)
        u.sendto(data, addr)
threading.Thread(target=udp, daemon=True).start()
t = socket.create_server(("127.0.0.1", port), backlog=128)
def serve(c):
    with c:
        while data := c.recv(65536):
            c.sendall(data)
while True:
    threading.Thread(target=serve, args=(t.accept()[0],), daemon=True).start()' "$ORIGIN"
start echo "$ECHO" "$BACK" "$T/backend.log"
wait_port "$ORIGIN"
wait_port "$BACK"
keyset_file "$T/keys.json" acme k1 k1
"$AIRLOCK" attest get --provider sim --sim-root "$T/sim.pem" >/dev/null 2>&1 || fail "no sim root"
openssl x509 -in "$T/sim.pem" -out "$T/simcert.pem"
token=$(echo '{"n":"4111"}' | "$AIRLOCK" field encrypt --keys "$T/keys.json" --path '$.n' |
    sed 's/.*"n":"\([^"]*\)".*/\1/') || fail "no token"
start hostile python3 "$(dirname "$0")/hostile_bytes.py" serve 11 "$HBACK" "$token"
wait_port "$HBACK"
mkdir "$T/secrets"
printf 'a secret' | "$AIRLOCK" attest seal --key-file "$T/bk.key" --dir "$T/secrets" db-key 2>/dev/null ||
    fail "cannot seal"
cat >"$T/airlock.yaml" <<YAML
threads: 2
metrics: tcp:127.0.0.1:$MPORT
directory: {backend: memory, reserve_timeout: 2s}
control: unix:$T/ctl.sock
relays:
  - name: proxied
    listen: tcp:127.0.0.1:$PROXIED
    target: tcp:127.0.0.1:$ORIGIN
    accept_proxy: v2
  - name: calm
    listen: tcp:127.0.0.1:$CALM
    target: tcp:127.0.0.1:$ORIGIN
  - name: attested
    listen: tcp:127.0.0.1:$ATLS
    target: tcp:127.0.0.1:$ORIGIN
    tls: {provider: sim, sim_root: $T/sim.pem}
  - name: egress
    listen: tcp:127.0.0.1:$EGRESS
    target: egress
    egress_allow: [127.0.0.1:$ORIGIN]
  - name: dns
    listen: udp:127.0.0.1:$DNS
    target: unix:$T/dns.sock
    flow_idle_timeout: 2s
  - name: dns-out
    listen: unix:$T/dns.sock
    target: udp:127.0.0.1:$ORIGIN
    flow_idle_timeout: 2s
    idle_timeout: 5s
routers:
  - name: edge
    listen: tcp:127.0.0.1:$ROUTER
    routes:
      - {name: www.example.com, target: tcp:127.0.0.1:$ORIGIN}
      - {name: "*.example.org", target: tcp:127.0.0.1:$ORIGIN}
  - name: grid
    listen: tcp:127.0.0.1:$GRID
    directory: fa
    domain: grid.test
pools:
  - name: fa
    command: [$FAKEAPP, --port, "{port}"]
    endpoint: "tcp:127.0.0.1:{port}"
    ports: $P0-$((P0 + 19))
    dir: $T/inst
    min_idle: 2
    max: 10
    events: {ready: "^WAITING_LOGIN\$", login: "^LOGIN (.+)\$", logout: "^LOGOUT\$"}
log_sinks:
  - name: sink
    listen: unix:$T/sink.sock
    file: $T/sink.out
broker:
  listen: tcp:127.0.0.1:$BROKER
  dir: $T/secrets
  key_file: $T/bk.key
  secrets:
    - {name: db-key, policy: {sim_root: $T/simcert.pem, any_image: true}}
proxies:
  - name: api
    listen: tcp:127.0.0.1:$FRONT
    backend: tcp:127.0.0.1:$BACK
    keyset: $T/keys.json
    routes:
      - {name: pay, path: /pay, encrypt: ["\$.card.number"]}
  - name: hostile
    listen: tcp:127.0.0.1:$HFRONT
    backend: tcp:127.0.0.1:$HBACK
    keyset: $T/keys.json
    response_timeout: 1s
    routes:
      - {name: pay, path: /pay, encrypt: ["\$.card.number"], decrypt: true}
YAML
airlock airlock run -c "$T/airlock.yaml"
pid=$LAST_PID
for p in "$MPORT" "$PROXIED" "$CALM" "$ATLS" "$ROUTER" "$EGRESS" "$FRONT" "$BROKER" "$HFRONT" "$GRID"; do wait_port "$p"; done
wait_for curl -sf "http://127.0.0.1:$MPORT/readyz" -o /dev/null
wait_for settled 2
# one answer through the datagram pair first: its stream is up before the count
python3 -c '
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(10)
u.connect(("127.0.0.1", int(sys.argv[1])))
u.send(b"warm")
assert u.recv(100) == b"warm"' "$DNS" || fail "no answer through the datagram pair"
fds0=$(fd_count "$pid")

# the bystander: one line echoed through the calm relay, one datagram
# answered through the pair, every 20 ms until told to stop
start bystander python3 -c '
import os, socket, sys, time
tcp = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.connect(("127.0.0.1", int(sys.argv[2])))
udp.settimeout(10)
n = 0
while not os.path.exists(sys.argv[3]):
    line = b"line %d\n" % n
    tcp.sendall(line)
    got = b""
    while len(got) < len(line):
        got += tcp.recv(len(line) - len(got))
    assert got == line, (got, line)
    udp.send(b"ask %d" % n)
    assert udp.recv(100) == b"ask %d" % n
    n += 1
    time.sleep(0.02)
print("echoed", n)' "$CALM" "$DNS" "$T/stop"
bystander=$LAST_PID

python3 "$(dirname "$0")/hostile_bytes.py" send 7 2500 "tcp:$PROXIED" "tcp:$CALM" "tcp:$ROUTER" \
    "tcp:$EGRESS" "udp:$DNS" "unix:$T/dns.sock" "unix:$T/sink.sock" "tcp:$FRONT" "tcp:$MPORT" \
    "unix:$T/ctl.sock" "tcp:$ATLS" "tcp:$BROKER" "http:$HFRONT" "http:$HFRONT" "tcp:$GRID" "tcp:$GRID" \
    >"$T/hostile.out" 2>&1 || fail "a listener stopped accepting: $(tail -3 "$T/hostile.out")"
touch "$T/stop"
wait_exit "$bystander"
kill -0 "$pid" || fail "airlock is gone"
curl -sf "http://127.0.0.1:$MPORT/healthz" -o /dev/null || fail "/healthz does not answer"
! grep -E "Sanitizer|runtime error" "$T/airlock.log" || fail "a sanitizer spoke"
grep -q "^echoed [1-9]" "$T/bystander.log" || fail "the bystander was disturbed: $(tail -3 "$T/bystander.log")"
curl -sf -X POST -H 'Content-Type: application/json' --data '{"card":{"number":"4111"}}' \
    "http://127.0.0.1:$FRONT/pay" -o /dev/null || fail "the field proxy no longer answers"
grep -q '"number":"4111"' "$T/backend.log" && fail "the field proxy forwarded plaintext"
wait_until 30 settled 2 || fail "the pool did not settle: $(curl -s "http://127.0.0.1:$MPORT/metrics" |
    grep airlock_pool_instances)"
metric_is airlock_pool_instances 'pool="fa",state="reserved"' 0 || fail "instances stay reserved"
wait_until 30 fds_at_most "$pid" "$fds0" || fail "airlock holds $(fd_count "$pid") fds, $fds0 before"
echo "PASS t_hostile_bytes: $(cat "$T/hostile.out"); bystander $(cat "$T/bystander.log")"
