#!/bin/bash
# t_trust_e2e: the trust layer end to end with sim evidence, the way
# docs/nitro.md deploys it (sim stands in for the NSM; this machine has no
# TEE):
#   1. the enclave fetches its app's key from the broker (fetch-secret):
#      released under a policy its evidence meets, refused (policy) under one
#      pinning a PCR it does not have;
#   2. the app, started with that key, is served through an attested tls:
#      relay; a "parent" in between (socat, dumping both directions) carries
#      the bytes;
#   3. an unmodified client (curl) goes through a verify: relay: the answer
#      comes back when the evidence meets the policy; under a policy pinning
#      another PCR 0 the connection is refused before a byte of the request
#      leaves, and the app sees nothing;
#   4. the parent's dump holds no plaintext of the request, the answer or
#      the key: the host sees only ciphertext.
. "$(dirname "$0")/lib.sh"
need curl socat openssl
SIM=$T/sim.pem
"$AIRLOCK" attest get --provider sim --sim-root "$SIM" >/dev/null 2>&1 || fail "no sim root"
openssl x509 -in "$SIM" -out "$T/simcert.pem"
ZERO=$(printf '00%.0s' $(seq 48)) # the sim provider's PCRs
FF=$(printf 'ff%.0s' $(seq 48))
read -r BP APP ENC HOST CL CLX <<<"$(free_ports 6)"

log "1. key release: the broker holds the app's key"
head -c 32 /dev/urandom >"$T/bk.key"
chmod 600 "$T/bk.key"
mkdir "$T/secrets" "$T/enclave"
SECRET=app-key-$RANDOM$RANDOM
printf '%s' "$SECRET" | "$AIRLOCK" attest seal --key-file "$T/bk.key" --dir "$T/secrets" app-key 2>/dev/null
printf '%s' "$SECRET" | "$AIRLOCK" attest seal --key-file "$T/bk.key" --dir "$T/secrets" pinned-key 2>/dev/null
cat >"$T/broker.yaml" <<EOF
broker:
  listen: tcp:127.0.0.1:$BP
  dir: $T/secrets
  key_file: $T/bk.key
  secrets:
    - {name: app-key, policy: {sim_root: $T/simcert.pem, pcrs: {0: $ZERO}}}
    - {name: pinned-key, policy: {sim_root: $T/simcert.pem, pcrs: {0: $FF}}}
EOF
airlock_up broker run -c "$T/broker.yaml"
"$AIRLOCK" attest broker-key --key-file "$T/bk.key" >"$T/bk.pub" || fail "no broker key"
fetch() {
    "$AIRLOCK" attest fetch-secret --broker "tcp:127.0.0.1:$BP" --broker-key "$T/bk.pub" --provider sim \
        --sim-root "$SIM" "$@"
}
fetch --out "$T/enclave/app.key" app-key 2>"$T/fetch.err" || fail "app-key not released: $(cat "$T/fetch.err")"
[ "$(cat "$T/enclave/app.key")" = "$SECRET" ] || fail "the released key differs"
rc=0
fetch --out "$T/enclave/pinned.key" pinned-key 2>"$T/fetch.err" || rc=$?
[ "$rc" = 1 ] || fail "pinned-key: fetch-secret exited $rc, expected 1 (refused)"
[ ! -e "$T/enclave/pinned.key" ] || fail "a refused secret was written"
wait_log "$T/broker.log" "refused.*pinned-key.*policy|pinned-key.*refused.*policy"

log "2. the app, with its key, behind an attested tls: relay and a parent that dumps"
cat >"$T/app.sh" <<EOF
#!/bin/sh
# the app: reads the request head, answers with a proof that it holds the key
sed -u '/^\r\$/q' >>"$T/app.requests"
printf 'HTTP/1.0 200 OK\r\n\r\nkey sha256 %s\n' "\$(sha256sum <"$T/enclave/app.key" | cut -c1-16)"
EOF
chmod +x "$T/app.sh"
: >"$T/app.requests"
start app socat TCP-LISTEN:"$APP",bind=127.0.0.1,reuseaddr,fork EXEC:"$T/app.sh"
wait_port "$APP"
cat >"$T/enclave.yaml" <<EOF
relays:
  - {name: web, listen: "tcp:127.0.0.1:$ENC", target: "tcp:127.0.0.1:$APP",
     tls: {provider: sim, sim_root: $SIM}}
EOF
airlock_up enclave run -c "$T/enclave.yaml"
start parent socat -r "$T/up.dump" -R "$T/down.dump" TCP-LISTEN:"$HOST",bind=127.0.0.1,reuseaddr,fork \
    TCP:127.0.0.1:"$ENC"
PARENT=$LAST_PID
wait_port "$HOST"

log "3. the client verifies before it sends"
cat >"$T/client.yaml" <<EOF
relays:
  - {name: grid, listen: "tcp:127.0.0.1:$CL", target: "tcp:127.0.0.1:$HOST",
     verify: {policy: {sim_root: $T/simcert.pem, pcrs: {0: $ZERO}}}}
  - {name: pinned, listen: "tcp:127.0.0.1:$CLX", target: "tcp:127.0.0.1:$HOST",
     verify: {policy: {sim_root: $T/simcert.pem, pcrs: {0: $FF}}}}
EOF
airlock_up client run -c "$T/client.yaml"
want="key sha256 $(printf '%s' "$SECRET" | sha256sum | cut -c1-16)"
got=$(curl -sS -m 10 "http://127.0.0.1:$CL/meter?user=alice" 2>&1) || fail "through verify: $got"
[ "$got" = "$want" ] || fail "the app answered '$got', expected '$want'"
grep -q '^GET /meter?user=alice' "$T/app.requests" || fail "the app did not see the request"
: >"$T/app.requests"
rc=0
curl -sS -m 10 "http://127.0.0.1:$CLX/secret-request" >/dev/null 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "a client under a policy the evidence does not meet got an answer"
wait_log "$T/client.log" "close relay=pinned .*end=attest_refused"
grep -q "close relay=pinned .*reason=\"policy: PCR 0" "$T/client.log" || fail "no PCR reason: $(grep 'relay=pinned' "$T/client.log")"
[ ! -s "$T/app.requests" ] || fail "the app saw a request of a refused client: $(cat "$T/app.requests")"

log "4. the parent carried only ciphertext"
stop "$PARENT" || true
[ -s "$T/up.dump" ] && [ -s "$T/down.dump" ] || fail "the parent dumped nothing"
for plain in 'GET /meter' 'user=alice' 'secret-request' 'key sha256' "$SECRET" 'HTTP/1'; do
    ! grep -aqF -- "$plain" "$T/up.dump" "$T/down.dump" || fail "the parent saw '$plain' in clear"
done
log ok
