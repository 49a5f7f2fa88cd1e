#!/bin/bash
# t_attest_get: `airlock attest get --provider tsm` end to end: the provider
# makes a report in a directory that behaves like configfs-tsm (fake_tsm, a
# FUSE file system serving the real SEV-SNP report / TDX quote as outblob:
# NOT the kernel), prints it in base64, and `airlock attest verify --type
# snp|tdx` accepts it with the report data asked for. A concurrent writer
# (generation jump) and a missing provider attribute are refused with one
# line and exit 1; the report directory is gone every time.
. "$(dirname "$0")/lib.sh"

F=$ROOT/tests/fixtures/attestation/tsm
FAKE_TSM=${FAKE_TSM:-$(dirname "$AIRLOCK")/tests/fake_tsm}
[ -x "$FAKE_TSM" ] || skip "fake_tsm is not built (libfuse3-dev)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
MNT=$T/tsm
mkdir "$MNT"
at_exit "umount -l $(printf %q "$MNT") 2>/dev/null"

is_fuse() { [ "$(stat -f -c %t "$MNT")" = 65735546 ]; }
not_fuse() { ! is_fuse; }
# fake OUTBLOB ARGS...: (re)mounts fake_tsm serving OUTBLOB
fake() {
    if [ -n "${FAKE_PID:-}" ]; then
        stop "$FAKE_PID" || true # libfuse exits 8 on SIGTERM
        wait_for not_fuse
    fi
    : >"$T/fake.log"
    start fake_tsm env ASAN_OPTIONS=detect_leaks=0 "$FAKE_TSM" "$MNT" --outblob "$@" --log "$T/fake.log"
    FAKE_PID=$LAST_PID
    wait_for is_fuse || fail "fake_tsm did not mount: $(cat "$T/fake_tsm.log")"
}
# get WANT ARGS...: airlock attest get --provider tsm ARGS exits WANT
get() {
    local want=$1 rc=0
    shift
    timeout 20 "$AIRLOCK" attest get --provider tsm --tsm-dir "$MNT" "$@" >"$T/out" 2>"$T/err" || rc=$?
    [ "$rc" = "$want" ] || fail "get $* exited $rc, expected $want: $(cat "$T/err")"
    [ -z "$(ls -A "$MNT")" ] || fail "report directory left behind: $(ls -A "$MNT")"
    grep -q '^rmdir airlock-' "$T/fake.log" || fail "no rmdir: $(cat "$T/fake.log")"
}

log "SEV-SNP: fresh report in base64, verified with the report data asked for"
fake "$F/snp-milan-report-go-sev-guest.bin" --provider sev_guest
get 0 --user-data 0102030405
grep -qx "airlock attest: snp evidence from provider tsm (verify --type snp)" "$T/err" || fail "$(cat "$T/err")"
grep -qx "inblob 0102030405$(printf '%0118d' 0)" "$T/fake.log" || fail "inblob: $(cat "$T/fake.log")"
SNP=(--type snp --at 2023-01-01T00:00:00Z --root "$F/snp-milan-ask-ark.pem"
    --vcek "$F/snp-milan-vcek-go-sev-guest.der" --allow-debug)
"$AIRLOCK" attest verify "${SNP[@]}" --user-data 0102030405 "$T/out" >"$T/claims" ||
    fail "verify refused the provider's report"
jq -e '.type == "snp" and (.report_data | startswith("0102030405000000"))' "$T/claims" >/dev/null ||
    fail "claims: $(cat "$T/claims")"
if "$AIRLOCK" attest verify "${SNP[@]}" --user-data 0102030406 "$T/out" 2>/dev/null; then
    fail "verify accepted other report data"
fi

log "TDX, with privlevel: the quote verifies to the Intel root with its REPORTDATA"
RD=6c62dec1b8191749a31dab490be532a35944dea47caef1f980863993d9899545eb7406a38d1eed313b987a467dacead6f0c87a6d766c66f6f29f8acb281f1113
fake "$F/tdx-quote-v4-spr-e4-go-tdx-guest.dat" --provider tdx_guest
get 0 --user-data $RD --privlevel 1
grep -qx "privlevel 1" "$T/fake.log" || fail "privlevel: $(cat "$T/fake.log")"
"$AIRLOCK" attest verify --type tdx --at 2024-01-01T00:00:00Z --user-data $RD "$T/out" >"$T/claims" ||
    fail "verify refused the provider's quote"
jq -e '.type == "tdx" and .report_data == "'$RD'"' "$T/claims" >/dev/null || fail "$(cat "$T/claims")"

log "refusals: another writer, no provider attribute, a request tsm cannot carry"
fake "$F/snp-milan-report-go-sev-guest.bin" --provider sev_guest --race
get 1 --user-data 01
grep -qx "airlock attest get: tsm: generation went from 0 to 2 over our 1 write(s): another writer changed the request" \
    "$T/err" || fail "$(cat "$T/err")"
[ ! -s "$T/out" ] || fail "printed evidence although refused"
fake "$F/snp-milan-report-go-sev-guest.bin"
get 1
grep -qx "airlock attest get: tsm: provider: No such file or directory" "$T/err" || fail "$(cat "$T/err")"
: >"$T/fake.log"
timeout 20 "$AIRLOCK" attest get --provider tsm --tsm-dir "$MNT" --nonce 00 >/dev/null 2>"$T/err" && fail "nonce accepted"
grep -q "no nonce" "$T/err" || fail "$(cat "$T/err")"
[ ! -s "$T/fake.log" ] || fail "a refused request touched the report directory"
timeout 20 "$AIRLOCK" attest get --provider tsm --tsm-dir "$MNT" --privlevel 9 2>/dev/null && fail "privlevel 9"
timeout 20 "$AIRLOCK" attest get --provider sim --tsm-dir "$MNT" --sim-root "$T/s.pem" 2>/dev/null &&
    fail "--tsm-dir accepted for sim"
log "ok"
