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
#   - the broker's policy file (the same sim_root) rewritten: after the
#     reload the broker releases the secret to evidence of the new root
#     only (before: the running broker kept the old root until a restart,
#     so a TDX collateral refreshed to revoke a platform, or a root taken
#     out, was not applied), its counters carried over; a broker whose file
#     no longer loads fails the reload, and the running one goes on.
. "$(dirname "$0")/lib.sh"
need openssl socat curl

read -r ECHO ENC CLI WEB OUT BK MET <<<"$(free_ports 7)"
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
cp "$T/sim-a.crt" "$T/bk-trust.pem"
cp "$T/ca-a.pem" "$T/ca.pem"
mkdir "$T/secrets"
printf s3cret | "$AIRLOCK" attest seal --key-file "$T/bk.key" --dir "$T/secrets" s >/dev/null 2>&1 ||
    fail "cannot seal"
"$AIRLOCK" attest broker-key --key-file "$T/bk.key" >"$T/bk.pub" 2>/dev/null || fail "broker-key"

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
metrics: tcp:127.0.0.1:$MET
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
    - {name: s, policy: {sim_root: $T/bk-trust.pem, any_image: true}}
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
# fetch ROOT: what the broker answers evidence of sim root ROOT (a, b)
fetch() {
    timeout 30 "$AIRLOCK" attest fetch-secret --broker "tcp:127.0.0.1:$BK" --broker-key "$T/bk.pub" \
        --provider sim --sim-root "$T/sim-$1.pem" s 2>&1 || true
}

log "at start: the client reaches the enclave, the proxy its upstream"
[ "$(through)" = ping ] || fail "the verify: relay does not reach the tls: relay"
[ "$(web)" = 200 ] || fail "the outbound proxy does not reach its upstream"
[ "$(fetch a)" = s3cret ] || fail "the broker does not release to root a: $(fetch a)"

log "the sim_root files rewritten to root b: the verify: relay and the broker follow them at the reload"
cat "$T/sim-b.crt" >"$T/trust.pem"
cat "$T/sim-b.crt" >"$T/bk-trust.pem"
reload client || fail "the reload: $(cat "$T/client.reload")"
[ -z "$(through)" ] || fail "the client still trusts root a, taken out of its sim_root file"
wait_log "$T/client.log" "close relay=cli .*end=attest_refused"
out=$(fetch a)
[[ $out == *"refused: untrusted"* ]] || fail "the broker still releases to root a: $out"
[ "$(fetch b)" = s3cret ] || fail "the broker does not release to root b: $(fetch b)"
curl -s "http://127.0.0.1:$MET/metrics" | has -x 'airlock_broker_releases_total{secret="s"} 2' ||
    fail "the releases before the reload are not counted: $(curl -s "http://127.0.0.1:$MET/metrics" | grep broker_releases)"

log "a broker file that no longer loads fails the reload; the running broker goes on"
echo "not a certificate" >"$T/bk-trust.pem"
reload client && fail "the reload took a policy file that does not load: $(cat "$T/client.reload")"
grep -q "broker: secret 's': policy: $T/bk-trust.pem" "$T/client.reload" ||
    fail "the reload answer: $(cat "$T/client.reload")"
[ "$(fetch b)" = s3cret ] || fail "the running broker stopped releasing: $(fetch b)"
cat "$T/sim-b.crt" >"$T/bk-trust.pem"

log "the tls: relay's sim_root rewritten to root b: served again after the enclave's reload"
cat "$T/sim-b.pem" >"$T/enclave-root.pem"
reload enclave || fail "the enclave's reload: $(cat "$T/enclave.reload")"
[ "$(through)" = ping ] || fail "the enclave's evidence is not anchored at root b after its reload"

log "the outbound proxy's ca_file rewritten to another CA: its upstream is refused"
cat "$T/ca-b.pem" >"$T/ca.pem"
reload client || true
[ "$(web)" = 502 ] || fail "the upstream signed by the CA taken out of ca_file is still trusted"
log ok
