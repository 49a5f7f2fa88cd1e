#!/bin/bash
# t_field_cli: `airlock field` on real files: encrypt leaves no plaintext and
# decrypt gives the document back with its types; after a rotation (a new
# primary key) old tokens still decrypt, rewrap moves every token to the new
# key, and a keyset without the old key then refuses old tokens but reads
# the rewrapped ones; a tampered token, a malformed body, a path that
# matches an object and a keyset file others can read are refused with one
# line on stderr and nothing on stdout.
. "$(dirname "$0")/lib.sh"
"$AIRLOCK" field --help >/dev/null 2>&1 || skip "airlock built without field encryption"
command -v jq >/dev/null || skip "jq is not installed"

# keyset FILE PRIMARY ID=HEX...: a keyset file, mode 0600
keyset() {
    local file=$1 primary=$2 keys="" sep=""
    shift 2
    for kv in "$@"; do
        keys+="$sep{\"id\": \"${kv%%=*}\", \"key\": \"${kv#*=}\"}"
        sep=", "
    done
    (umask 077 && printf '{"tenant": "t_field_cli", "primary": "%s", "keys": [%s]}\n' \
        "$primary" "$keys" >"$file")
}
# run WANT ARGS...: airlock field ARGS exits WANT; stdout in $T/out, stderr in $T/err
run() {
    local want=$1 rc=0
    shift
    timeout 20 "$AIRLOCK" field "$@" >"$T/out" 2>"$T/err" || rc=$?
    [ "$rc" = "$want" ] || fail "field $* exited $rc, expected $want: $(head -3 "$T/err")"
}
refused() {
    run 1 "$@"
    [ "$(wc -l <"$T/err")" = 1 ] || fail "field $*: not one line: $(cat "$T/err")"
    [ ! -s "$T/out" ] || fail "field $*: printed output although refused"
}

K1=$(openssl rand -hex 32)
K2=$(openssl rand -hex 32)
keyset "$T/v1.json" k1 "k1=$K1"
keyset "$T/v2.json" k2 "k1=$K1" "k2=$K2"
keyset "$T/v3.json" k2 "k2=$K2"
cat >"$T/doc.json" <<'JSON'
{"card": {"number": "4111 1111 1111 1111", "cvc": 737},
 "patients": [{"ssn": "078-05-1120", "ok": true}, {"ssn": "219-09-9999", "ok": false}],
 "contact": {"email": "ann@example.org"}, "email": "ann@example.org", "note": "caf\u00e9"}
JSON
PATHS=(--path '$.card.number' --path '$.card.cvc' --path '$.patients[*].ssn'
    --path '$.patients[*].ok' --deterministic '$..email')

log "encrypt: no plaintext left, structure and other values unchanged"
run 0 encrypt --keys "$T/v1.json" "${PATHS[@]}" "$T/doc.json"
cp "$T/out" "$T/old.json"
for secret in 4111 737 078-05 219-09 ann@example true false; do
    ! grep -q "$secret" "$T/old.json" || fail "plaintext $secret in $(cat "$T/old.json")"
done
jq -e '.note == "café" and (.card.number | startswith("al1:k1:s:")) and
    (.card.cvc | startswith("al1:k1:n:")) and (.patients[1].ok | startswith("al1:k1:b:")) and
    .email == .contact.email and (.email | startswith("al1:k1:S:"))' "$T/old.json" >/dev/null ||
    fail "encrypted: $(cat "$T/old.json")"

log "decrypt (stdin): the document again, types restored"
run 0 decrypt --keys "$T/v1.json" - <"$T/old.json"
jq -e --slurpfile want "$T/doc.json" '. == $want[0]' "$T/out" >/dev/null ||
    fail "decrypted: $(cat "$T/out")"

log "rotation: old tokens decrypt under the new keyset; rewrap moves them to k2"
run 0 decrypt --keys "$T/v2.json" "$T/old.json"
jq -e --slurpfile want "$T/doc.json" '. == $want[0]' "$T/out" >/dev/null || fail "after rotation"
run 0 rewrap --keys "$T/v2.json" "$T/old.json"
cp "$T/out" "$T/new.json"
! grep -q 'al1:k1:' "$T/new.json" || fail "rewrap left k1 tokens: $(cat "$T/new.json")"
[ "$(grep -o 'al1:k2:' "$T/new.json" | wc -l)" = 8 ] || fail "rewrap: $(cat "$T/new.json")"
refused decrypt --keys "$T/v3.json" "$T/old.json"
grep -q "which the keyset lacks (bad_token)" "$T/err" || fail "$(cat "$T/err")"
run 0 decrypt --keys "$T/v3.json" "$T/new.json"
jq -e --slurpfile want "$T/doc.json" '. == $want[0]' "$T/out" >/dev/null || fail "rewrapped"

log "refusals: tampered token, malformed JSON, a path to an object, readable keys"
tok=$(grep -o 'al1:k2:s:[^"]*' "$T/new.json" | head -1)
c=A
[ "${tok:30:1}" != A ] || c=B # one character of the payload, changed
sed "s|$tok|${tok:0:30}$c${tok:31}|" "$T/new.json" >"$T/bad.json"
refused decrypt --keys "$T/v3.json" "$T/bad.json"
grep -q "fails authentication (bad_token)" "$T/err" || fail "$(cat "$T/err")"
printf '{"card": {"number": "4111",}}' >"$T/malformed.json"
refused encrypt --keys "$T/v1.json" "${PATHS[@]}" "$T/malformed.json"
grep -q "malformed JSON at byte 27" "$T/err" || fail "$(cat "$T/err")"
refused encrypt --keys "$T/v1.json" --path '$.card' "$T/doc.json"
grep -q "(not_scalar)" "$T/err" || fail "$(cat "$T/err")"
chmod 0644 "$T/v1.json"
refused decrypt --keys "$T/v1.json" "$T/old.json"
grep -q "lets others read the keys" "$T/err" || fail "$(cat "$T/err")"
grep -q "$K1" "$T/err" && fail "key material on stderr"
run 2 encrypt --keys "$T/v2.json" --path '$.a[' "$T/doc.json"
grep -q "path 1 (\$.a\[): at character 5" "$T/err" || fail "$(cat "$T/err")"
run 2 decrypt "$T/old.json"
log "ok"
