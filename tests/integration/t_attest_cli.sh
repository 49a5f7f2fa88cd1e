#!/bin/bash
# t_attest_cli: `airlock attest verify` on the real fixtures: exit 0 and one
# JSON object (module_id, timestamp, digest, pcrs, user_data, nonce,
# public_key) for a valid document, raw CBOR or base64; exit 1 with a
# one-line reason for an expired, altered or foreign-rooted one or a policy it
# does not meet; exit 2 on usage errors. SNP and TDX likewise; sim evidence
# from `airlock attest get` verifies only with --sim-root.
. "$(dirname "$0")/lib.sh"

F=$ROOT/tests/fixtures/attestation
ANJUNA=$F/nitro/anjuna-full-2024-01-24.cbor
EVER=$F/nitro/evervault-beta-2022-10-13.cbor
PCR0=f4d48b81a460c9916d1e685119074bf24660afd3e34fae9fca0a0d28d9d5599936332687e6f66fc890ac8cf150142d8b
command -v jq >/dev/null || skip "jq is not installed"

# run WANT ARGS...: airlock attest ARGS exits WANT; stdout in $T/out, stderr in $T/err
run() {
    local want=$1 rc=0
    shift
    timeout 20 "$AIRLOCK" attest "$@" >"$T/out" 2>"$T/err" || rc=$?
    [ "$rc" = "$want" ] || fail "attest $* exited $rc, expected $want: $(head -3 "$T/err")"
}
# refused ARGS...: exit 1, exactly one line on stderr, nothing on stdout
refused() {
    run 1 "$@"
    [ "$(wc -l <"$T/err")" = 1 ] || fail "attest $*: not one line: $(cat "$T/err")"
    [ ! -s "$T/out" ] || fail "attest $*: printed claims although refused"
}

log "a valid document: one JSON object with the fields scripts rely on"
# the Anjuna document is of a debug-mode enclave (PCR0-2 zero)
run 0 verify --at 2024-01-24T19:00:00Z --allow-debug "$ANJUNA"
[ "$(wc -l <"$T/out")" = 1 ] || fail "not one line of JSON"
jq -e '.module_id == "i-0e4fe5de7ee5abe78-enc018d3cadd7d66279" and .timestamp == 1706120065635
    and .digest == "SHA384" and (.pcrs | length) == 16 and (.pcrs["0"] | length) == 96
    and .user_data == "48656c6c6f20576f726c64210a" and .nonce == "4e6f6e63650a"
    and (.public_key | startswith("30820122")) and .debug == true' "$T/out" >/dev/null ||
    fail "claims: $(cat "$T/out")"

log "base64 input (wrapped lines), a PCR policy it meets, an offset in --at"
base64 "$EVER" >"$T/ever.b64"
run 0 verify --at 2022-10-13T12:00:00+02:00 --pcr 0=$PCR0 "$T/ever.b64"
jq -e '.user_data == null and .public_key == null and .nonce != null and .pcrs["0"] == "'$PCR0'"
    and .debug == false' \
    "$T/out" >/dev/null || fail "evervault claims: $(cat "$T/out")"
base64 -w0 "$EVER" | run 0 verify --at 2022-10-13T10:00:00.5Z -

log "the window's ends: valid through the leaf's notAfter (21:14:17, RFC 5280), not after"
run 0 verify --at 2024-01-24T18:14:14Z --allow-debug "$ANJUNA"
run 0 verify --at 2024-01-24T21:14:17Z --allow-debug "$ANJUNA"

log "refusals: expired, not yet valid, altered, another root, policies not met"
refused verify --at 2024-01-24T21:14:18Z "$ANJUNA"
grep -q "expired" "$T/err" || fail "expiry reason: $(cat "$T/err")"
refused verify --at 2024-01-24T18:14:13Z "$ANJUNA"
cp "$ANJUNA" "$T/flipped"
printf '\x01' | dd of="$T/flipped" bs=1 seek=4700 conv=notrunc status=none
refused verify --at 2024-01-24T19:00:00Z "$T/flipped"
grep -q "signature" "$T/err" || fail "flip reason: $(cat "$T/err")"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:secp384r1 -nodes -subj /CN=other \
    -keyout "$T/other.key" -out "$T/other.pem" -days 36500 2>/dev/null
refused verify --at 2024-01-24T19:00:00Z --root "$T/other.pem" "$ANJUNA"
grep -q "certificate chain" "$T/err" || fail "root reason: $(cat "$T/err")"
run 0 verify --at 2024-01-24T19:00:00Z --allow-debug --root "$F/nitro/aws-nitro-enclaves-root-g1.pem" "$ANJUNA"
refused verify --at 2022-10-13T10:00:00Z --pcr 0=${PCR0%??}00 "$EVER"
grep -qx "airlock attest: invalid: policy: PCR 0 does not match" "$T/err" || fail "$(cat "$T/err")"
refused verify --at 2024-01-24T19:00:00Z --allow-debug --nonce 00 "$ANJUNA"
grep -q "nonce" "$T/err" || fail "nonce reason: $(cat "$T/err")"
refused verify --at 2024-01-24T19:00:00Z --allow-debug --user-data 48656c6c6f "$ANJUNA"
run 0 verify --at 2024-01-24T19:00:00Z --allow-debug --user-data 48656c6c6f20576f726c64210a \
    --nonce 4e6f6e63650a "$ANJUNA"
# a debug-mode enclave runs whatever its parent chose: refused without
# --allow-debug, also when only the PCRs of the parent (3, 4) are pinned
P3=$(jq -r '.pcrs["3"]' "$T/out")
P4=$(jq -r '.pcrs["4"]' "$T/out")
refused verify --at 2024-01-24T19:00:00Z "$ANJUNA"
grep -qx "airlock attest: invalid: policy: a debug-mode enclave (PCR0 all zero)" "$T/err" ||
    fail "debug reason: $(cat "$T/err")"
refused verify --at 2024-01-24T19:00:00Z --pcr 3="$P3" --pcr 4="$P4" "$ANJUNA"
grep -q "debug-mode enclave" "$T/err" || fail "debug reason with PCR3/4: $(cat "$T/err")"
refused verify --type tdx "$ANJUNA"
head -c 100 "$ANJUNA" >"$T/short"
refused verify "$T/short"

log "usage errors: exit 2"
run 2 verify
run 2 verify --at yesterday "$ANJUNA"
# every field of exactly its digits: a signed or short one is no time
for at in "2024-01-24T20:14:20+-1:-5" "2024-1-24T19:00:00Z" "2024-01-24T19:00:00+1:00" \
    "2024-01-24T19:00:00.Z" "2024-01-24T19:00:00+01:00x" "2024-02-30T19:00:00Z" \
    "2023-02-29T19:00:00Z" "2024-04-31T19:00:00Z"; do
    run 2 verify --at "$at" --allow-debug "$ANJUNA"
done
run 2 verify --pcr 40=00 "$ANJUNA"
run 2 verify --nonce xyz "$ANJUNA"
run 2 verify --type sgx "$ANJUNA"
run 2 verify "$T/does-not-exist"
run 2 frobnicate
run 2 verify --type snp "$F/tsm/snp-milan-report-go-sev-guest.bin" # no --vcek, no --root

log "SEV-SNP: debug refused by default, accepted with --allow-debug"
SNP=(--type snp --at 2023-01-01T00:00:00Z --root "$F/tsm/snp-milan-ask-ark.pem"
    --vcek "$F/tsm/snp-milan-vcek-go-sev-guest.der")
refused verify "${SNP[@]}" "$F/tsm/snp-milan-report-go-sev-guest.bin"
grep -q "debug" "$T/err" || fail "snp reason: $(cat "$T/err")"
run 0 verify "${SNP[@]}" --allow-debug "$F/tsm/snp-milan-report-go-sev-guest.bin"
jq -e '.measurement == "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01"
    and .reported_tcb == "0200000000000544" and .debug == true' "$T/out" >/dev/null ||
    fail "snp claims: $(cat "$T/out")"

log "TDX: the quote verifies to the pinned Intel root; MRTD policy"
run 0 verify --type tdx --at 2024-01-01T00:00:00Z "$F/tsm/tdx-quote-v4-spr-e4-go-tdx-guest.dat"
jq -e '.mrtd == "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7215cbb"
    and (.rtmrs | length) == 4 and .debug == false' "$T/out" >/dev/null || fail "tdx: $(cat "$T/out")"
R1=$(jq -r '.rtmrs[1]' "$T/out")
R2=$(jq -r '.rtmrs[2]' "$T/out")
refused verify --type tdx --at 2024-01-01T00:00:00Z --measurement "$(printf '%096d' 0)" \
    "$F/tsm/tdx-quote-v4-spr-e4-go-tdx-guest.dat"
# the MRTD is the TD's firmware: what it booted is in RTMR 1 and 2, pinned by --rtmr
run 0 verify --type tdx --at 2024-01-01T00:00:00Z --rtmr 1="$R1" --rtmr 2="$R2" --rtmr 3="$(printf '%096d' 0)" \
    "$F/tsm/tdx-quote-v4-spr-e4-go-tdx-guest.dat"
refused verify --type tdx --at 2024-01-01T00:00:00Z --rtmr 1="$R1" --rtmr 2="${R2%?}0" \
    "$F/tsm/tdx-quote-v4-spr-e4-go-tdx-guest.dat"
grep -qx "airlock attest: invalid: policy: RTMR 2 does not match" "$T/err" || fail "rtmr: $(cat "$T/err")"
for r in "4=$R1" "1=${R1%??}" "1=$R1 --rtmr 1=$R1" "x=$R1" "=$R1"; do
    run 2 verify --type tdx --at 2024-01-01T00:00:00Z --rtmr $r "$F/tsm/tdx-quote-v4-spr-e4-go-tdx-guest.dat"
done

log "an option the type cannot check: exit 2, one line naming it, never a pass"
TDX=(--type tdx --at 2024-01-01T00:00:00Z)
TDXQ=$F/tsm/tdx-quote-v4-spr-e4-go-tdx-guest.dat
ZERO48=$(printf '%096d' 0)
# unfit WANTED-IN-MESSAGE ARGS...: exit 2, one line on stderr naming the option
unfit() {
    local opt=$1
    shift
    run 2 verify "$@"
    [ "$(wc -l <"$T/err")" = 1 ] && grep -q -- "$opt" "$T/err" || fail "attest $*: $(cat "$T/err")"
    [ ! -s "$T/out" ] || fail "attest $*: printed claims"
}
unfit --measurement --at 2024-01-24T19:00:00Z --measurement "$ZERO48" "$ANJUNA"
unfit --min-tcb --at 2024-01-24T19:00:00Z --min-tcb ffffffffffffffff "$ANJUNA"
unfit --min-tcb --at 2024-01-24T19:00:00Z --min-tcb 0000000000000000 "$ANJUNA"
unfit --min-tcb "${TDX[@]}" --min-tcb ffffffffffffffff "$TDXQ"
unfit --min-tcb "${TDX[@]}" --min-tcb 0000000000000000 "$TDXQ"
unfit --vmpl "${TDX[@]}" --vmpl 0 "$TDXQ"
unfit --vmpl --at 2024-01-24T19:00:00Z --vmpl 0 "$ANJUNA"
unfit --rtmr --at 2024-01-24T19:00:00Z --rtmr 1="$ZERO48" "$ANJUNA"
unfit --rtmr "${SNP[@]}" --allow-debug --rtmr 1="$ZERO48" "$F/tsm/snp-milan-report-go-sev-guest.bin"
run 2 verify "${SNP[@]}" --vmpl 4 "$F/tsm/snp-milan-report-go-sev-guest.bin"
for o in "--pcr 0=00" "--nonce 00" "--public-key 00" "--sim-root $T/none.pem"; do
    unfit "${o%% *}" "${TDX[@]}" $o "$TDXQ"
    unfit "${o%% *}" "${SNP[@]}" --allow-debug $o "$F/tsm/snp-milan-report-go-sev-guest.bin"
done
unfit --vcek "${TDX[@]}" --vcek "$F/tsm/snp-milan-vcek-go-sev-guest.der" "$TDXQ"
unfit --min-tcb "${SNP[@]}" --allow-debug --min-tcb 0000ff0000000000 "$F/tsm/snp-milan-report-go-sev-guest.bin"
unfit --user-data "${TDX[@]}" --user-data "$(printf '%0130d' 0)" "$TDXQ" # 65 bytes
# what each type can check still passes or refuses on its merits
run 0 verify "${TDX[@]}" --measurement \
    6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7215cbb "$TDXQ"
run 0 verify "${SNP[@]}" --allow-debug --min-tcb 0200000000000544 "$F/tsm/snp-milan-report-go-sev-guest.bin"
refused verify "${SNP[@]}" --allow-debug --min-tcb ff000000000000ff "$F/tsm/snp-milan-report-go-sev-guest.bin"
run 0 verify "${SNP[@]}" --allow-debug --vmpl 0 "$F/tsm/snp-milan-report-go-sev-guest.bin"
refused verify "${SNP[@]}" --allow-debug --vmpl 1 "$F/tsm/snp-milan-report-go-sev-guest.bin"
grep -q "the report is from VMPL 0, not 1" "$T/err" || fail "snp vmpl reason: $(cat "$T/err")"

log "sim: fresh evidence verifies only against its root, and says sim"
run 0 get --provider sim --sim-root "$T/sim.pem" --nonce 0a0b --user-data 75736572
cp "$T/out" "$T/sim.b64"
grep -q "sim" "$T/err" || fail "get does not say sim"
refused verify "$T/sim.b64"
run 0 verify --sim-root "$T/sim.pem" --nonce 0a0b --user-data 75736572 "$T/sim.b64"
jq -e '.sim == true and (.module_id | startswith("sim-"))' "$T/out" >/dev/null || fail "sim: $(cat "$T/out")"
grep -q "sim" "$T/err" || fail "verify does not say sim"
refused verify --sim-root "$T/sim.pem" --nonce 0a0c "$T/sim.b64"
run 2 get --provider nitro --sim-root "$T/sim.pem"
run 2 get --provider sim --sim-root "$T/sim.pem" --user-data "$(printf '%0130d' 0)" # 65 bytes
run 1 get --provider nitro --nsm-device "$T/no-nsm"
grep -qx "airlock attest get: nitro: $T/no-nsm: No such file or directory" "$T/err" || fail "$(cat "$T/err")"
log "an option of another subcommand: exit 2 naming it, never ignored"
# foreign SUB OPT ARGS...: airlock attest SUB OPT ARGS exits 2, one line naming OPT
foreign() {
    local sub=$1 opt=$2
    shift 2
    run 2 "$sub" "$opt" "$@"
    [ "$(cat "$T/err")" = "airlock attest $sub: $opt is not an option of $sub" ] ||
        fail "attest $sub $opt $*: $(cat "$T/err")"
}
foreign verify --timeout 1s "$ANJUNA"
foreign verify --provider sim "$ANJUNA"
foreign verify --out "$T/claims" "$ANJUNA"
foreign get --pcr 0=$PCR0 --provider sim --sim-root "$T/sim.pem"
foreign get --at 2024-01-24T19:00:00Z --provider sim --sim-root "$T/sim.pem"
foreign get --allow-debug --provider sim --sim-root "$T/sim.pem"
foreign fetch-secret --nonce 00 --broker tcp:127.0.0.1:1 --broker-key "$T/none" --provider sim \
    --sim-root "$T/sim.pem" db-key
foreign fetch-secret --user-data 00 --broker tcp:127.0.0.1:1 --broker-key "$T/none" \
    --provider sim --sim-root "$T/sim.pem" db-key
foreign seal --provider sim --key-file "$T/seal.key" --dir "$T" db-key /dev/null
foreign broker-key --dir "$T" --key-file "$T/seal.key"
# two values for one PCR: no document meets both (the config refuses it too)
run 2 verify --at 2022-10-13T10:00:00Z --pcr 0=$PCR0 --pcr 0=${PCR0%??}00 "$EVER"
grep -qx "airlock attest: --pcr wants each PCR once" "$T/err" || fail "$(cat "$T/err")"
log "ok"
