#!/bin/bash
# t_attest_tls_verify: `airlock attest verify --tls HOST:PORT` against real
# TLS servers on loopback:
#  - smartgrid-server --attest-provider sim answers a nonce (--fresh or
#    --nonce HEX) with fresh sim evidence bound to the certificate it
#    already presents (the user's own, CA-issued one): exit 0, JSON with the
#    peer's pubkey_hash (= SHA-256 of that certificate's key), "fresh":true,
#    "sim":true, and stderr says sim;
#  - a PCR policy the evidence does not meet, no --sim-root, a --type it is
#    not: exit 1, one line;
#  - without a nonce the certificate itself must carry evidence, and the
#    CA-issued one carries none: exit 1 "no evidence";
#  - an `openssl s_server` with a plain certificate (the same key and
#    certificate: a man in the middle holding them has no evidence): exit 1
#    "no evidence", with and without a nonce;
#  - usage errors exit 2, among them a policy option the evidence cannot be
#    held to (--user-data: RA-TLS spends the user data on its claims;
#    --measurement, --min-tcb for nitro; --min-tcb, --sim-root for tdx);
#  - the server keeps serving its user throughout.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"

SIMROOT=$T/sim-root.pem
sg_provision 1
"$AIRLOCK" attest get --provider sim --sim-root "$SIMROOT" >/dev/null 2>&1 ||
    fail "cannot make the sim root"
SNI=user0001.grid.example

# tls WANT ARGS...: airlock attest verify --tls ARGS exits WANT; $T/out, $T/err
tls() {
    local want=$1 rc=0
    shift
    timeout 30 "$AIRLOCK" attest verify --tls "$@" >"$T/out" 2>"$T/err" || rc=$?
    [ "$rc" = "$want" ] || fail "verify --tls $* exited $rc, expected $want: $(cat "$T/err")"
    [ "$want" = 0 ] || [ "$(wc -l <"$T/err")" = 1 ] || fail "not one line: $(cat "$T/err")"
}

SG_OWN_CERT=1 sg_server srv "$T/inst" --attest-provider sim --sim-root "$SIMROOT"
sg_bring_in user0001 "$T/inst"
grep -q 'attestation provider=sim (sim evidence, not hardware)' "$T/srv.log" ||
    fail "the server does not say it attests with sim: $(cat "$T/srv.log")"
spki=$(openssl x509 -in "$T/inst/user0001.crt" -pubkey -noout | openssl pkey -pubin -outform DER |
    sha256sum | cut -d' ' -f1)

log "fresh evidence bound to the server's CA-issued certificate"
tls 0 "127.0.0.1:$SG_PORT" --sni "$SNI" --fresh --sim-root "$SIMROOT"
grep -q "\"pubkey_hash\":\"$spki\"" "$T/out" || fail "pubkey_hash is not the cert's: $(cat "$T/out")"
grep -q '"fresh":true' "$T/out" || fail "not fresh: $(cat "$T/out")"
grep -q '"sim":true' "$T/out" || fail "not marked sim: $(cat "$T/out")"
grep -q 'sim evidence' "$T/err" || fail "stderr does not say sim: $(cat "$T/err")"
tls 0 "127.0.0.1:$SG_PORT" --sni "$SNI" --nonce "$(printf '%032x' 7)" --sim-root "$SIMROOT" \
    --pcr "0=$(printf '0%.0s' {1..96})"
log "refused: a PCR policy not met, no sim root, another --type"
tls 1 "127.0.0.1:$SG_PORT" --sni "$SNI" --fresh --sim-root "$SIMROOT" \
    --pcr "0=$(printf 'ab%.0s' {1..48})"
grep -q 'invalid: .*PCR 0' "$T/err" || fail "not the PCR: $(cat "$T/err")"
tls 1 "127.0.0.1:$SG_PORT" --sni "$SNI" --fresh
grep -q 'invalid: .*sim' "$T/err" || fail "not refused as sim: $(cat "$T/err")"
tls 1 "127.0.0.1:$SG_PORT" --sni "$SNI" --fresh --type tdx
log "without a nonce: the CA-issued certificate carries no evidence"
tls 1 "127.0.0.1:$SG_PORT" --sni "$SNI" --sim-root "$SIMROOT"
grep -q 'invalid: ratls: no evidence' "$T/err" || fail "not 'no evidence': $(cat "$T/err")"

log "a plain TLS server with the same certificate and key: no evidence"
PLAIN=$(free_port)
start plain openssl s_server -accept "127.0.0.1:$PLAIN" -tls1_3 -cert "$T/inst/user0001.crt" \
    -key "$T/inst/user0001.key" -www -quiet
wait_for tcp_up "$PLAIN"
tls 1 "127.0.0.1:$PLAIN" --sni "$SNI" --fresh --sim-root "$SIMROOT"
grep -q 'invalid: ratls: no evidence: the server sent no fresh evidence' "$T/err" ||
    fail "not 'no fresh evidence': $(cat "$T/err")"
tls 1 "127.0.0.1:$PLAIN" --sni "$SNI" --sim-root "$SIMROOT"
grep -q 'invalid: ratls: no evidence' "$T/err" || fail "not 'no evidence': $(cat "$T/err")"

log "usage errors exit 2"
tls 2 "127.0.0.1:$SG_PORT" --nonce 0011 --sim-root "$SIMROOT"
tls 2 "127.0.0.1:$SG_PORT" --fresh --nonce "$(printf '%032x' 7)"
tls 2 "127.0.0.1:$SG_PORT" "$T/out"
tls 2 "not an endpoint"
tls 2 "127.0.0.1:$SG_PORT" --type snp --vcek "$SIMROOT" --root "$SIMROOT"
log "usage errors: a policy option the evidence cannot be held to (never ignored)"
# RA-TLS evidence carries the hash of its claims as its user data
tls 2 "127.0.0.1:$SG_PORT" --sni "$SNI" --fresh --sim-root "$SIMROOT" --user-data 00
grep -q -- '--user-data' "$T/err" || fail "not --user-data: $(cat "$T/err")"
tls 2 "127.0.0.1:$SG_PORT" --sni "$SNI" --fresh --sim-root "$SIMROOT" --measurement "$(printf '%096d' 0)"
tls 2 "127.0.0.1:$SG_PORT" --sni "$SNI" --fresh --sim-root "$SIMROOT" --min-tcb ffffffffffffffff
tls 2 "127.0.0.1:$SG_PORT" --sni "$SNI" --fresh --type tdx --min-tcb 0000000000000000
tls 2 "127.0.0.1:$SG_PORT" --sni "$SNI" --fresh --sim-root "$SIMROOT" --type tdx
CLOSED=$(free_port)
tls 1 "127.0.0.1:$CLOSED" --fresh --sim-root "$SIMROOT"

log "the server still serves its user"
sg_login user0001
log "ok"
