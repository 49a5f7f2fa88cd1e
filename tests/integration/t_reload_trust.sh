#!/bin/bash
# t_reload_trust: a trust file rewritten in place (same path, same inode,
# other content) and a reload: what airlock trusts follows the file, never
# the copy it read at start, and a reload that cannot apply it says so:
#   - a verify: relay's policy sim_root rewritten to another root: its
#     client is refused (end=attest_refused) after the reload (before: the
#     old root was trusted until a restart, and the reload said
#     "reloaded");
#   - a tls: relay's sim_root rewritten to that root: after the enclave's
#     reload its evidence is anchored there, and the client is served again;
#   - an outbound HTTP proxy's ca_file rewritten to another CA: the
#     upstream, whose certificate the old CA signed, is refused (502);
#   - the broker's policy file (the same sim_root) rewritten: the reload
#     answer says that the running broker is kept until the next start.
. "$(dirname "$0")/lib.sh"
need openssl socat curl

read -r ECHO ENC CLI WEB OUT BK <<<"$(free_ports 6)"
for r in a b; do
    "$AIRLOCK" attest get --provider sim --sim-root "$T/sim-$r.pem" >/dev/null 2>&1 ||
        fail "cannot make sim root $r"
    openssl x509 -in "$T/sim-$r.pem" -out "$T/sim-$r.crt"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ca-$r.key" \
        -out "$T/ca-$r.pem" -days 2 -subj "/CN=t_reload_trust CA $r" 2>/dev/null
done
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/web.key" \
    -out "$T/web.csr" -subj "/CN=localhost" 2>/dev/null
openssl x509 -req -in "$T/web.csr" -CA "$T/ca-a.pem" -CAkey "$T/ca-a.key" -CAcreateserial \
    -out "$T/web.pem" -days 2 -extfile <(printf 'subjectAltName=DNS:localhost\n') 2>/dev/null
cp "$T/sim-a.pem" "$T/enclave-root.pem"
cp "$T/sim-a.crt" "$T/trust.pem"
cp "$T/ca-a.pem" "$T/ca.pem"
mkdir "$T/secrets"
printf s3cret | "$AIRLOCK" attest seal --key-file "$T/bk.key" --dir "$T/secrets" s >/dev/null 2>&1 ||
    fail "cannot seal"

start echo socat TCP-LISTEN:"$ECHO",bind=127.0.0.1,reuseaddr,fork PIPE
start web openssl s_server -accept "127.0.0.1:$WEB" -cert "$T/web.pem" -key "$T/web.key" -www -quiet
wait_port "$ECHO"
wait_port "$WEB"
cat >"$T/enclave.yaml" <<EOF
control: unix:$T/enclave.sock
relays:
  - {name: enc, listen: "tcp:127.0.0.1:$ENC", target: "tcp:127.0.0.1:$ECHO",
     tls: {provider: sim, sim_root: $T/enclave-root.pem}}
EOF
cat >"$T/client.yaml" <<EOF
control: unix:$T/client.sock
relays:
  - {name: cli, listen: "tcp:127.0.0.1:$CLI", target: "tcp:127.0.0.1:$ENC",
     verify: {policy: {sim_root: $T/trust.pem, any_image: true}}}
proxies:
  - name: out
    mode: outbound
    listen: tcp:127.0.0.1:$OUT
    ca_file: $T/ca.pem
    egress_allow: ["localhost:$WEB", "127.0.0.1:$WEB"]
    routes:
      - {path: /, upstream: "https://localhost:$WEB"}
broker:
  listen: tcp:127.0.0.1:$BK
  dir: $T/secrets
  key_file: $T/bk.key
  secrets:
    - {name: s, policy: {sim_root: $T/trust.pem, any_image: true}}
EOF
airlock_up enclave run -c "$T/enclave.yaml"
airlock_up client run -c "$T/client.yaml"
# reload NAME: ctl reload of that airlock; its answer in $T/NAME.reload
reload() {
    local rc=0
    "$AIRLOCK" ctl -s "unix:$T/$1.sock" reload >"$T/$1.reload" 2>&1 || rc=$?
    return $rc
}
through() { printf 'ping\n' | timeout 10 socat -t 5 - "TCP:127.0.0.1:$CLI" 2>/dev/null; }
web() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$OUT/" || true; }

log "at start: the client reaches the enclave, the proxy its upstream"
[ "$(through)" = ping ] || fail "the verify: relay does not reach the tls: relay"
[ "$(web)" = 200 ] || fail "the outbound proxy does not reach its upstream"

log "the verify: relay's sim_root rewritten to root b: refused after the reload; the broker's kept, and said so"
cat "$T/sim-b.crt" >"$T/trust.pem"
reload client && fail "the reload said all was applied: $(cat "$T/client.reload")"
grep -q "broker: the running one kept until the next start" "$T/client.reload" ||
    fail "the reload answer does not name the broker: $(cat "$T/client.reload")"
[ -z "$(through)" ] || fail "the client still trusts root a, taken out of its sim_root file"
wait_log "$T/client.log" "close relay=cli .*end=attest_refused"

log "the tls: relay's sim_root rewritten to root b: served again after the enclave's reload"
cat "$T/sim-b.pem" >"$T/enclave-root.pem"
reload enclave || fail "the enclave's reload: $(cat "$T/enclave.reload")"
[ "$(through)" = ping ] || fail "the enclave's evidence is not anchored at root b after its reload"

log "the outbound proxy's ca_file rewritten to another CA: its upstream is refused"
cat "$T/ca-b.pem" >"$T/ca.pem"
reload client || true
[ "$(web)" = 502 ] || fail "the upstream signed by the CA taken out of ca_file is still trusted"
log ok
