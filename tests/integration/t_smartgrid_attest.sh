#!/bin/bash
# t_smartgrid_attest: smartgrid-load authenticates the server by attestation
# before it shares the user's database key (the dissertation's order):
#  - against smartgrid-server --attest-provider sim, with
#    --attest-sim-root: every connection gets fresh evidence bound to the
#    server's certificate, the session runs (LOGIN, LONG_WRITE, LOGOUT);
#  - under a PCR policy the evidence does not meet, without the sim root,
#    and against a server that does not attest: every LOGIN fails as
#    attest_fail and the key is never sent (the server logs no login:
#    neither "session open" nor "login failed");
#  - the server then still serves a client that does send the key.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"

LOAD=$SG_BIN/smartgrid-load
SIMROOT=$T/sim-root.pem
U=user0001
sg_provision 1
"$AIRLOCK" attest get --provider sim --sim-root "$SIMROOT" >/dev/null 2>&1 ||
    fail "cannot make the sim root"
ZERO=$(printf '0%.0s' {1..96})
OTHER=$(printf 'ab%.0s' {1..48})

# load NAME WANT ARGS...: one meter session of user0001; exit status WANT
load() {
    local name=$1 want=$2 rc=0
    shift 2
    timeout 60 "$LOAD" --connect "tcp:127.0.0.1:$SG_PORT" --certs "$SG" --users 1 --mode meter \
        --timeout 20s "$@" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
    [ "$rc" = "$want" ] || fail "load $name exited $rc, expected $want: $(cat "$T/$name.out" "$T/$name.err")"
}
# refused NAME ARGS...: the LOGIN fails as attest_fail, the key never left
refused() {
    local name=$1
    shift
    load "$name" 3 "$@"
    grep -q '^op=LOGIN ok=0 errors=1 ' "$T/$name.out" || fail "$name: $(cat "$T/$name.out")"
    grep -q '^error kind=attest_fail count=1$' "$T/$name.out" || fail "$name: $(cat "$T/$name.out")"
    grep -q 'attestation refused user=user0001 reason=' "$T/$name.err" ||
        fail "$name: no reason: $(cat "$T/$name.err")"
    ! grep -E 'session open|login failed' "$T/srv.log" || fail "$name: a login reached the server"
}

mkdir -p "$T/a" && cp "$SG/db/$U.db" "$T/a/"
sg_server srv "$T/a" --attest-provider sim --sim-root "$SIMROOT"
SRV=$LAST_PID
log "attesting server: a PCR policy it does not meet, no sim root: no key sent"
refused pcr --attest-sim-root "$SIMROOT" --attest-pcr "0=$OTHER"
grep -q 'PCR 0' "$T/pcr.err" || fail "not the PCR: $(cat "$T/pcr.err")"
refused nosim --attest-pcr "0=$ZERO"
log "attesting server, sim root trusted, PCRs met: the session runs"
load ok 0 --attest-sim-root "$SIMROOT" --attest-pcr "0=$ZERO" --attest-pcr "8=$ZERO"
for op in LOGIN LONG_WRITE LOGOUT; do
    grep -q "^op=$op ok=1 errors=0 " "$T/ok.out" || fail "no $op: $(cat "$T/ok.out")"
done
grep -q "session open user=$U" "$T/srv.log" || fail "no login: $(cat "$T/srv.log")"
wait_exit "$SRV" 10
[ "$EXIT_STATUS" = 0 ] || fail "server exit $EXIT_STATUS"

log "a server without attestation: no key sent, and it still serves a client that sends one"
mkdir -p "$T/p" && cp "$SG/db/$U.db" "$T/p/"
: >"$T/srv.log"
sg_server srv "$T/p"
refused plain --attest-sim-root "$SIMROOT"
grep -q 'no evidence' "$T/plain.err" || fail "not 'no evidence': $(cat "$T/plain.err")"
load plain_ok 0
grep -q "session open user=$U" "$T/srv.log" || fail "no login: $(cat "$T/srv.log")"
log "ok"
