#!/bin/bash
# t_broker_tsm: the key broker's SEV-SNP path. `airlock attest
# fetch-secret --provider tsm` writes the challenge's binding (nonce ||
# SHA-256(its key), 64 bytes) as the report data into a directory that
# behaves like configfs-tsm (fake_tsm, FUSE: NOT the kernel) and sends the
# report with its VCEK; the broker verifies the real SNP report (chain to
# the ARK of the secret's policy, debug allowed there) and then refuses
# it, because a recorded report cannot carry this challenge's nonce: the
# refusal is `nonce`, with the report's claims in the log, never a release.
# A policy without allow_debug refuses the same report as `policy`.
. "$(dirname "$0")/lib.sh"
need openssl

F=$ROOT/tests/fixtures/attestation/tsm
FAKE_TSM=${FAKE_TSM:-$(dirname "$AIRLOCK")/tests/fake_tsm}
[ -x "$FAKE_TSM" ] || skip "fake_tsm is not built (libfuse3-dev)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
MNT=$T/tsm
mkdir "$MNT" "$T/secrets"
at_exit "umount -l $(printf %q "$MNT") 2>/dev/null"
is_fuse() { [ "$(stat -f -c %t "$MNT")" = 65735546 ]; }
start fake_tsm env ASAN_OPTIONS=detect_leaks=0 "$FAKE_TSM" "$MNT" \
    --outblob "$F/snp-milan-report-go-sev-guest.bin" --provider sev_guest --log "$T/fake.log"
wait_for is_fuse || fail "fake_tsm did not mount: $(cat "$T/fake_tsm.log")"

printf 'snp-secret' | "$AIRLOCK" attest seal --key-file "$T/k" --dir "$T/secrets" snp-key 2>/dev/null
printf 'snp-secret' | "$AIRLOCK" attest seal --key-file "$T/k" --dir "$T/secrets" strict-key 2>/dev/null
PORT=$(free_port)
"$AIRLOCK" attest broker-key --key-file "$T/k" >"$T/k.pub" || fail "no broker key"
cat >"$T/airlock.yaml" <<EOC
broker:
  listen: tcp:127.0.0.1:$PORT
  dir: $T/secrets
  key_file: $T/k
  secrets:
    - {name: snp-key, policy: {type: snp, roots: $F/snp-milan-ask-ark.pem, allow_debug: true, any_image: true}}
    - {name: strict-key, policy: {type: snp, roots: $F/snp-milan-ask-ark.pem, any_image: true}}
EOC
airlock_up broker run -c "$T/airlock.yaml"
PID=$LAST_PID

fetch() {
    timeout 30 "$AIRLOCK" attest fetch-secret --broker "tcp:127.0.0.1:$PORT" --broker-key "$T/k.pub" \
        --provider tsm --tsm-dir "$MNT" --vcek "$F/snp-milan-vcek-go-sev-guest.der" "$1" >"$T/out" 2>"$T/err" &&
        fail "$1 released: $(cat "$T/out")"
    [ ! -s "$T/out" ] || fail "$1 printed something"
}
log "an authentic report for another challenge: refused (nonce)"
fetch snp-key
grep -q 'refused: nonce' "$T/err" || fail "$(cat "$T/err")"
grep -Eq "^inblob [0-9a-f]{128}$" "$T/fake.log" || fail "inblob: $(cat "$T/fake.log")"
! grep -q "^inblob 0\{128\}$" "$T/fake.log" || fail "the report data is all zeros"
wait_log "$T/broker.log" 'refused secret=snp-key reason=nonce .*type=snp debug=yes measurement='
log "a debug guest under a policy without allow_debug: refused (policy)"
fetch strict-key
grep -q 'refused: policy' "$T/err" || fail "$(cat "$T/err")"
wait_log "$T/broker.log" 'refused secret=strict-key reason=policy .*type=snp debug=yes'
! grep -q 'released' "$T/broker.log" || fail "a release"
stop_clean "$PID" broker
log "ok"
