#!/bin/bash
# t_broker: the key broker end to end with sim evidence. Secrets sealed
# with `airlock attest seal` are released by `airlock run` (broker:) to
# `airlock attest fetch-secret` only when the policy accepts the evidence:
# a PCR the evidence does not have is refused, sim evidence is refused
# where the policy names no sim_root, evidence for another challenge (a
# replay), evidence bound to another key and a challenge answered after
# nonce_ttl are refused, garbage, oversized
# and slow clients neither crash the broker nor hold up a good fetch, and
# every release and refusal is a log line and a counter with its reason
# (never the secret). Every SECRET is signed with the key `airlock attest
# broker-key` prints (openssl verifies it), and fetch-secret takes no other:
# a host on the path that answers in the broker's place (broker_fake.py)
# with a secret wrapped to the requester's key, unsigned or signed by a key
# of its own, gets nothing written.
. "$(dirname "$0")/lib.sh"
need xxd openssl curl python3

SIM=$T/sim.pem
"$AIRLOCK" attest get --provider sim --sim-root "$SIM" >/dev/null 2>&1 || fail "no sim root"
openssl x509 -in "$SIM" -out "$T/simcert.pem"
mkdir "$T/secrets"
seal() { printf "%s" "$2" | "$AIRLOCK" attest seal --key-file "$T/bk.key" --dir "$T/secrets" "$1" 2>"$T/seal.err" || fail "seal $1: $(cat "$T/seal.err")"; }
seal db-key 'db-password-1'
seal pcr-key 'pcr-secret-2'
seal hw-key 'hw-secret-3'
[ "$(stat -c %a "$T/bk.key")" = 600 ] || fail "the at-rest key is not 0600"
! grep -rq 'db-password-1' "$T/secrets" || fail "a sealed file holds the plaintext"

log "broker-key: the public key of the signing key, from the at-rest key"
"$AIRLOCK" attest broker-key --key-file "$T/bk.key" >"$T/bk.pub" 2>"$T/err" || fail "broker-key: $(cat "$T/err")"
openssl pkey -pubin -in "$T/bk.pub" -noout -text | grep -q ED25519 || fail "not an Ed25519 key: $(cat "$T/bk.pub")"
rc=0
"$AIRLOCK" attest broker-key --key-file "$T/nokey" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && [ ! -s "$T/out" ] || fail "broker-key of a missing key file: $rc: $(cat "$T/err")"
[ ! -e "$T/nokey" ] || fail "broker-key created a key file"
rc=0
"$AIRLOCK" attest broker-key >/dev/null 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && [ "$(wc -l <"$T/err")" = 1 ] || fail "broker-key without --key-file: $rc: $(cat "$T/err")"

PORT=$(free_port)
MPORT=$(free_port)
FF=$(printf 'ff%.0s' $(seq 48))
cat >"$T/airlock.yaml" <<EOC
metrics: tcp:127.0.0.1:$MPORT
broker:
  listen: tcp:127.0.0.1:$PORT
  dir: $T/secrets
  key_file: $T/bk.key
  max_connections: 8
  timeout: 6s
  nonce_ttl: 3s
  secrets:
    - {name: db-key, policy: {sim_root: $T/simcert.pem, any_image: true}}
    - {name: pcr-key, policy: {sim_root: $T/simcert.pem, pcrs: {0: $FF}}}
    - {name: hw-key, policy: {any_image: true}}
EOC
"$AIRLOCK" check -c "$T/airlock.yaml" >/dev/null || fail "check refused the config"
log "check loads what the broker names: a missing key file, a missing root are refused"
sed "s|key_file: .*|key_file: $T/nokey|" "$T/airlock.yaml" >"$T/bad.yaml"
"$AIRLOCK" check -c "$T/bad.yaml" 2>"$T/err" && fail "check accepted a missing key file"
grep -q "broker: key_file: $T/nokey: No such file or directory" "$T/err" || fail "$(cat "$T/err")"
# owner-only means this user's (or root's): another user could read it or put a key in its place
cp "$T/bk.key" "$T/other.key"
chown 65534 "$T/other.key"
sed "s|key_file: .*|key_file: $T/other.key|" "$T/airlock.yaml" >"$T/bad.yaml"
"$AIRLOCK" check -c "$T/bad.yaml" 2>"$T/err" && fail "check accepted a key file of another user"
grep -q "broker: key_file: $T/other.key: uid 65534, mode 0600: others than airlock's user (uid 0) and root may change it" "$T/err" ||
    fail "$(cat "$T/err")"
# nor a key file, nor a root, that others may change, or that a name on the way lets them swap
mkdir -m 0777 "$T/open"
cp -p "$T/bk.key" "$T/open/bk.key"
sed "s|key_file: .*|key_file: $T/open/bk.key|" "$T/airlock.yaml" >"$T/bad.yaml"
"$AIRLOCK" check -c "$T/bad.yaml" 2>"$T/err" && fail "check accepted a key file in a directory all may write"
grep -q "broker: key_file: $T/open/bk.key: the directory open on its way (uid 0, mode 0777) may be changed by others" "$T/err" ||
    fail "$(cat "$T/err")"
cp "$T/simcert.pem" "$T/opencert.pem"
for how in "chmod 0666" "chown 65534"; do
    $how "$T/opencert.pem"
    sed "s|sim_root: $T/simcert.pem, any_image|sim_root: $T/opencert.pem, any_image|" "$T/airlock.yaml" >"$T/bad.yaml"
    "$AIRLOCK" check -c "$T/bad.yaml" 2>"$T/err" && fail "check accepted a sim_root after $how"
    grep -q "broker: secret 'db-key': policy: $T/opencert.pem: uid [0-9]*, mode 06[46]6: others than airlock's user" "$T/err" ||
        fail "$how: $(cat "$T/err")"
done
ln -s "$T" "$T/link"
sed "s|sim_root: $T/simcert.pem, any_image|sim_root: $T/link/simcert.pem, any_image|" "$T/airlock.yaml" >"$T/bad.yaml"
"$AIRLOCK" check -c "$T/bad.yaml" >/dev/null || fail "check refused a root through a link of root's"
chown -h 65534 "$T/link"
"$AIRLOCK" check -c "$T/bad.yaml" 2>"$T/err" && fail "check accepted a root through a link of another user"
grep -q "policy: $T/link/simcert.pem: the link link on its way (uid 65534" "$T/err" || fail "$(cat "$T/err")"
sed "s|sim_root: $T/simcert.pem, any_image: true}}$|sim_root: $T/none.pem, any_image: true}}|" "$T/airlock.yaml" >"$T/bad.yaml"
"$AIRLOCK" check -c "$T/bad.yaml" 2>"$T/err" && fail "check accepted a missing sim_root"
grep -q "broker: secret 'db-key': policy: $T/none.pem: No such file or directory" "$T/err" ||
    fail "$(cat "$T/err")"
airlock_up broker run -c "$T/airlock.yaml"
PID=$LAST_PID
LOG=$T/broker.log

# fetch WANT NAME ARGS...: fetch-secret exits WANT; stdout in $T/out, stderr in $T/err
fetch() {
    local want=$1 name=$2 rc=0
    shift 2
    timeout 30 "$AIRLOCK" attest fetch-secret --broker "tcp:127.0.0.1:$PORT" --broker-key "$T/bk.pub" \
        --provider sim --sim-root "$SIM" "$@" "$name" >"$T/out" 2>"$T/err" || rc=$?
    [ "$rc" = "$want" ] || fail "fetch $name exited $rc, expected $want: $(cat "$T/err")"
}

log "usage errors exit 2 with one line: without --broker-key too"
for args in "--broker udp:127.0.0.1:$PORT --broker-key $T/bk.pub --provider sim --sim-root $SIM db-key" \
    "--broker tcp:127.0.0.1:$PORT --broker-key $T/bk.pub --provider sim db-key" \
    "--broker tcp:127.0.0.1:$PORT --broker-key $T/bk.pub --provider sim --sim-root $SIM bad/name" \
    "--broker-key $T/bk.pub --provider sim --sim-root $SIM db-key" \
    "--broker tcp:127.0.0.1:$PORT --broker-key $T/bk.key --provider sim --sim-root $SIM db-key" \
    "--broker tcp:127.0.0.1:$PORT --provider sim --sim-root $SIM db-key"; do
    rc=0
    # shellcheck disable=SC2086
    "$AIRLOCK" attest fetch-secret $args >/dev/null 2>"$T/err" || rc=$?
    [ "$rc" = 2 ] && [ "$(wc -l <"$T/err")" = 1 ] || fail "fetch-secret $args: $rc: $(cat "$T/err")"
done

log "a good fetch: to stdout, and to a file (0600)"
fetch 0 db-key
[ "$(cat "$T/out")" = db-password-1 ] || fail "released '$(cat "$T/out")'"
fetch 0 db-key --out "$T/db.secret"
[ "$(cat "$T/db.secret")" = db-password-1 ] || fail "--out holds '$(cat "$T/db.secret")'"
[ "$(stat -c %a "$T/db.secret")" = 600 ] || fail "--out is not 0600"
wait_log "$LOG" 'released secret=db-key peer=127.0.0.1:[0-9]* type=nitro sim=yes module_id="sim-'

log "a broker key others may change pins nothing: fetch-secret takes none (exit 2)"
cp "$T/bk.pub" "$T/open.pub"
chmod 0666 "$T/open.pub"
fetch 2 db-key --broker-key "$T/open.pub"
grep -q "$T/open.pub: uid 0, mode 0666: others than airlock's user" "$T/err" || fail "$(cat "$T/err")"

log "a sealed secret another user may change: refused (sealed), released once it is airlock's again"
chown 65534 "$T/secrets/db-key.sealed"
fetch 1 db-key
wait_log "$LOG" "broker: secret=db-key: $T/secrets/db-key.sealed: uid 65534, mode 0600: others than airlock's user"
chown 0 "$T/secrets/db-key.sealed"
chmod 0622 "$T/secrets/db-key.sealed"
fetch 1 db-key
chmod 0600 "$T/secrets/db-key.sealed"
fetch 0 db-key
[ "$(cat "$T/out")" = db-password-1 ] || fail "released '$(cat "$T/out")'"

log "a PCR the evidence does not have: refused (policy)"
fetch 1 pcr-key
grep -q 'refused: policy' "$T/err" || fail "pcr-key: $(cat "$T/err")"
wait_log "$LOG" 'refused secret=pcr-key reason=policy .*type=nitro sim=yes'

log "sim evidence where the policy names no sim_root: refused (untrusted)"
fetch 1 hw-key
grep -q 'refused: untrusted' "$T/err" || fail "hw-key: $(cat "$T/err")"
fetch 1 no-such-key
grep -q 'refused: unknown_secret' "$T/err" || fail "no-such-key: $(cat "$T/err")"

# A requester by hand: its key pair, evidence for a challenge and a key.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/a.key" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/b.key" 2>/dev/null
for k in a b; do
    openssl pkey -in "$T/$k.key" -pubout -out "$T/$k.pub"
    openssl pkey -in "$T/$k.key" -pubout -outform DER | xxd -p | tr -d '\n' >"$T/$k.hex"
done
# evidence NONCE PUB: sim evidence carrying NONCE and the key PUB, in hex
evidence() {
    "$AIRLOCK" attest get --provider sim --sim-root "$SIM" --nonce "$1" --public-key "$2" 2>/dev/null |
        base64 -d | xxd -p | tr -d '\n'
}
# challenge FD: REQUEST db-key on FD, the nonce of the answer on stdout
challenge() {
    local verb nonce
    printf 'REQUEST db-key\n' >&"$1"
    read -r -t 10 verb nonce <&"$1" || fail "no challenge"
    [ "$verb" = CHALLENGE ] || fail "answer '$verb $nonce'"
    printf '%s' "$nonce"
}
answer() {
    local line
    read -r -t 10 line <&"$1" || fail "no answer"
    printf '%s' "$line"
}

log "evidence for another challenge (a replay) and evidence bound to another key: refused"
exec 5<>"/dev/tcp/127.0.0.1/$PORT" 6<>"/dev/tcp/127.0.0.1/$PORT"
N5=$(challenge 5)
N6=$(challenge 6)
[ "$N5" != "$N6" ] || fail "two challenges with the same nonce"
EV5=$(evidence "$N5" "$T/a.pub")
printf 'ATTEST %s %s\n' "$EV5" "$(cat "$T/a.hex")" >&6
A6=$(answer 6)
[[ $A6 == "REFUSED nonce "* ]] || fail "replayed evidence: '${A6:0:80}'"
# the same evidence on its own challenge, but naming another key
printf 'ATTEST %s %s\n' "$EV5" "$(cat "$T/b.hex")" >&5
A5=$(answer 5)
[[ $A5 == "REFUSED key "* ]] || fail "evidence bound to another key: '${A5:0:80}'"
exec 5>&- 6>&-
# and the evidence is good where it belongs: its challenge, its key
exec 5<>"/dev/tcp/127.0.0.1/$PORT"
N5=$(challenge 5)
printf 'ATTEST %s %s\n' "$(evidence "$N5" "$T/a.pub")" "$(cat "$T/a.hex")" >&5
A5=$(answer 5)
[[ $A5 == "SECRET "* ]] || fail "good evidence by hand: '${A5:0:80}'"
read -r _ CMS SIG <<<"$A5"
printf '%s' "$CMS" | xxd -r -p >"$T/cms.der"
openssl cms -decrypt -inform DER -in "$T/cms.der" -inkey "$T/a.key" -out "$T/cms.out" ||
    fail "openssl cms cannot open the released envelope"
[ "$(cat "$T/cms.out")" = db-password-1 ] || fail "the envelope holds '$(cat "$T/cms.out")'"
# what SIG covers, put together as docs/attestation.md says
{
    printf 'airlock-kb-v1 SECRET\ndb-key\n'
    printf '%s' "$N5" | xxd -r -p
    xxd -r -p "$T/a.hex" | openssl dgst -sha256 -binary
    cat "$T/cms.der"
} >"$T/signed"
printf '%s' "$SIG" | xxd -r -p >"$T/sig"
openssl pkeyutl -verify -pubin -inkey "$T/bk.pub" -rawin -in "$T/signed" -sigfile "$T/sig" >/dev/null ||
    fail "openssl does not verify the SECRET's signature with the broker-key"
exec 5>&-

log "a host that answers in the broker's place: unsigned, or signed by its own key: nothing written"
openssl genpkey -algorithm ed25519 -out "$T/host.key"
for fake in unsigned host-signed; do
    FP=$(free_port)
    mkdir "$T/$fake"
    key=()
    [ "$fake" = unsigned ] || key=("$T/host.key")
    start "$fake" python3 "$(dirname "$0")/broker_fake.py" "$FP" "$T/$fake" "${key[@]}"
    wait_log "$T/$fake.log" listening
    rc=0
    timeout 30 "$AIRLOCK" attest fetch-secret --broker "tcp:127.0.0.1:$FP" --broker-key "$T/bk.pub" \
        --provider sim --sim-root "$SIM" --out "$T/$fake.secret" db-key >"$T/out" 2>"$T/err" || rc=$?
    [ "$rc" = 1 ] || fail "$fake: fetch-secret exited $rc: $(cat "$T/err")"
    [ "$(cat "$T/err")" = "airlock attest fetch-secret: the answer is not signed by the broker's key" ] ||
        fail "$fake: $(cat "$T/err")"
    grep -q 'answered db-key' "$T/$fake.log" || fail "$fake: the fake did not answer: $(cat "$T/$fake.log")"
    # neither the file nor a temporary one on its way
    ! ls "$T" | grep -q "^$fake\.secret" || fail "$fake: --out was written: $(ls "$T")"
done
# the host's signature is well made: only its key is not the broker's
openssl pkey -in "$T/host.key" -pubout -out "$T/host.pub"
timeout 30 "$AIRLOCK" attest fetch-secret --broker "tcp:127.0.0.1:$FP" --broker-key "$T/host.pub" \
    --provider sim --sim-root "$SIM" db-key >"$T/out" 2>"$T/err" || fail "host.pub: $(cat "$T/err")"
[ "$(cat "$T/out")" = evil ] || fail "the fake's value: '$(cat "$T/out")'"

log "a challenge answered after nonce_ttl: refused (expired)"
exec 5<>"/dev/tcp/127.0.0.1/$PORT"
N5=$(challenge 5)
EV5=$(evidence "$N5" "$T/a.pub")
sleep 3.5 # past nonce_ttl (3s), within timeout (6s): a bound to exceed, not a wait for an event
printf 'ATTEST %s %s\n' "$EV5" "$(cat "$T/a.hex")" >&5
A5=$(answer 5)
[[ $A5 == "REFUSED expired "* ]] || fail "late evidence: '${A5:0:80}'"
exec 5>&-

log "garbage, an oversized message and slow clients do not hold up a good fetch"
exec 5<>"/dev/tcp/127.0.0.1/$PORT"
printf 'hello broker\n' >&5
A5=$(answer 5)
[[ $A5 == "REFUSED malformed "* ]] || fail "garbage: '$A5'"
exec 5>&-
head -c 70000 /dev/zero | tr '\0' 'A' >"$T/big"
exec 5<>"/dev/tcp/127.0.0.1/$PORT"
cat "$T/big" >&5 || true
A5=$(answer 5)
[[ $A5 == "REFUSED too_large "* ]] || fail "oversized: '$A5'"
exec 5>&-
exec 7<>"/dev/tcp/127.0.0.1/$PORT" 8<>"/dev/tcp/127.0.0.1/$PORT" 9<>"/dev/tcp/127.0.0.1/$PORT"
printf 'REQ' >&7
printf 'REQUEST db-key\n' >&8 # and never attests
fetch 0 db-key
[ "$(cat "$T/out")" = db-password-1 ] || fail "released '$(cat "$T/out")' next to slow clients"
wait_log "$LOG" 'refused secret=db-key reason=timeout' 10
timeouts() { [ "$(grep -c 'refused secret=- reason=timeout' "$LOG")" = 2 ]; }
wait_for timeouts
exec 7>&- 8>&- 9>&-

log "max_connections: eight stalled clients hold every slot; a fetch still goes through"
for fd in 10 11 12 13 14 15 16 17; do eval "exec $fd<>/dev/tcp/127.0.0.1/$PORT"; done
printf 'REQUEST db-key\n' >&17 # the newest stalls after its request
A17=$(answer 17)
[[ $A17 == "CHALLENGE "* ]] || fail "the eighth: '$A17'"
fetch 0 db-key # the oldest stalled one (fd 10) makes room
[ "$(cat "$T/out")" = db-password-1 ] || fail "released '$(cat "$T/out")' with every slot held"
A10=$(answer 10)
[[ $A10 == "REFUSED busy "* ]] || fail "the oldest stalled client was told '$A10', not busy"
wait_log "$LOG" 'refused secret=- reason=busy peer=127.0.0.1' 10
for fd in 10 11 12 13 14 15 16 17; do eval "exec $fd>&-"; done

log "metrics and logs: each reason counted, the secret never logged"
m() { metric "$1" "$2" "$MPORT"; }
[ "$(m airlock_broker_releases_total 'secret="db-key"')" -ge 5 ] ||
    fail "releases: $(curl -s "http://127.0.0.1:$MPORT/metrics" | grep broker)"
for want in 'db-key nonce' 'db-key key' 'db-key expired' 'pcr-key policy' 'hw-key untrusted' \
    '- unknown_secret' '- malformed' '- too_large' 'db-key timeout' '- timeout' '- busy' 'db-key sealed'; do
    set -- $want
    v=$(m airlock_broker_refusals_total "secret=\"$1\",reason=\"$2\"")
    [ "${v:-0}" -ge 1 ] || fail "no refusal counted for $want: $(curl -s "http://127.0.0.1:$MPORT/metrics" | grep broker)"
done
! grep -q 'db-password-1\|pcr-secret-2\|hw-secret-3' "$LOG" || fail "a secret in the log"
stop_clean "$PID" broker
log "ok"
