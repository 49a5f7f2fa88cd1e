#!/bin/bash
# t_demo: scripts/demo.sh (the standby gateway: host relay -> hvsock ->
# enclave airlock with relay, router, directory and a pool of
# smartgrid-server instances in a loopback-only namespace) runs with
# DEMO_SECONDS and the binaries under test:
#   - the load through the whole stack logs every user in and out, no errors;
#   - instances were recycled (more started than users) and standby ones wait;
#   - the load checks every instance's fresh (sim) attestation before it
#     sends a key;
#   - while it keeps running, the by-hand instructions it printed work:
#     `airlock attest verify --tls ... --fresh --sim-root` accepts the user's
#     instance (sim evidence, said so), then curl with a user's certificate,
#     pinned to the attested key, logs in, queries the day of data, logs out;
#     the pinned login refuses a server with a certificate of the same CA and
#     another key; another user's certificate is refused;
#   - it stops by itself cleanly: exit 0, no namespace, process or run
#     directory left behind.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
need curl openssl ip nsenter setsid python3
[ -x "$(dirname "$AIRLOCK")/smartgrid-server" ] || fail "smartgrid-server not built beside $AIRLOCK"
NS=airlock-t$$
ip netns add "$NS-probe" 2>/dev/null || skip "cannot create network namespaces here"
ip netns del "$NS-probe"

# if the demo fails half-way, do not leave its namespace and processes behind
leftovers() {
    local run
    run=$(sed -n 's/^== started (run dir \(.*\))$/\1/p' "$T/demo.out" 2>/dev/null)
    [ -z "$run" ] || pkill -KILL -f -- "$run" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
}
trap 'leftovers; cleanup' EXIT

PORT=$(free_port)
U0=$(free_uids 40)
DEMO_UIDS=$U0-$((U0 + 39)) DEMO_SECONDS=25 AIRLOCK=$AIRLOCK DEMO_NETNS=$NS DEMO_PORT=$PORT DEMO_USERS=6 \
    DEMO_LOAD_SECONDS=2 DEMO_METRICS_PORT=$(free_port) timeout -k 5 150 \
    bash "$ROOT/scripts/demo.sh" </dev/null >"$T/demo.out" 2>&1 &
DEMO=$!
out=$T/demo.out
for _ in $(seq 900); do
    grep -q '^Stopping by itself' "$out" 2>/dev/null && break
    running $DEMO || fail "demo ended early: $(tail -15 "$out")"
    sleep 0.1
done
grep -q '^Stopping by itself' "$out" || fail "demo did not get going in 90 s: $(tail -15 "$out")"

log "the load went through the whole stack"
grep -q '^  op=LOGIN ok=6 errors=0 ' "$out" || fail "LOGIN: $(grep 'op=' "$out")"
grep -q '^  op=LOGOUT ok=6 errors=0 ' "$out" || fail "LOGOUT: $(grep 'op=' "$out")"
grep -q '^  total users=6 errors=0 ' "$out" || fail "load errors: $(grep 'total' "$out")"
grep -qE '^  sessions assigned by the directory: +6 ' "$out" || fail "assigns"
started=$(sed -n 's/^  instances started during the load: *\([0-9]*\) .*/\1/p' "$out")
[ -n "$started" ] && [ "$started" -ge 6 ] || fail "instances recycled: '$started'"

log "the by-hand instructions work while it runs"
eval "$(sed -n '/paste these first/,/^then/p' "$out" | sed -n '2,4p')"
[ -n "${TLS:-}" ] && [ -n "${URL:-}" ] && [ -n "${K:-}" ] || fail "no instructions printed"
grep -q -- '--attest-sim-root' "$out" || fail "the load does not check attestation"
verify=$(sed -n 's/^  \(V=.*attest verify --tls .*\) &&$/\1/p' "$out")
pin=$(sed -n 's/^  \(PIN=.*\) &&$/\1/p' "$out")
[ -n "$verify" ] && [ -n "$pin" ] || fail "no attest verify and pin lines before the login"
grep -q '^  curl -s $TLS $PIN $URL/login ' "$out" || fail "the login does not pin the attested key"
eval "$verify" 2>"$T/verify.err" || fail "attest verify: $(cat "$T/verify.err")"
grep -q '"sim":true' <<<"$V" && grep -q '"fresh":true' <<<"$V" || fail "not fresh sim evidence: $V"
grep -q 'sim evidence' "$T/verify.err" || fail "does not say sim: $(cat "$T/verify.err")"
eval "$pin"
# a server with a certificate of the same CA for the name, and another key
# (what a man in the middle holding one would present), gets nothing
# through the pin, while the CA alone would have let the key go to it
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$U.grid.example" \
    -keyout "$T/mitm.key" -out "$T/mitm.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s\n' "$U.grid.example" >"$T/mitm.ext"
openssl x509 -req -in "$T/mitm.csr" -CA "$G/ca.pem" -CAkey "$G/ca.key" -CAserial "$T/mitm.srl" -CAcreateserial -days 1 \
    -extfile "$T/mitm.ext" -out "$T/mitm.crt" 2>/dev/null || fail "cannot issue the mitm certificate"
MITM=$(free_port)
start mitm openssl s_server -accept "127.0.0.1:$MITM" -cert "$T/mitm.crt" -key "$T/mitm.key" -www -quiet
wait_for tcp_up "$MITM"
murl=https://$U.grid.example:$MITM
mres="--resolve $U.grid.example:$MITM:127.0.0.1"
# shellcheck disable=SC2086
curl -sS $TLS $mres -o /dev/null "$murl/" || fail "the CA does not accept the mitm certificate"
rc=0
# shellcheck disable=SC2086
curl -sS $TLS $PIN $mres -o /dev/null "$murl/login" -d "{\"key\":\"$K\"}" 2>"$T/mitm.err" || rc=$?
[ "$rc" = 90 ] || fail "the pinned login went to another key: curl exit $rc: $(cat "$T/mitm.err")"
# shellcheck disable=SC2086
login=$(curl -sS $TLS $PIN "$URL/login" -d "{\"key\":\"$K\"}") || fail "login: $login"
tok=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' <<<"$login") ||
    fail "no token: $login"
# shellcheck disable=SC2086
avg=$(curl -sS $TLS $PIN -H "Authorization: Bearer $tok" "$URL/query_avg?metric=power")
python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["count"] == 5760, d' <<<"$avg" ||
    fail "query_avg: $avg"
ctl=$(sed -n 's|^  \(.*airlock ctl -s [^ ]*\) sessions$|\1|p' "$out")
$ctl sessions | has " active  *$U " || fail "no active session for $U: $($ctl sessions)"
# shellcheck disable=SC2086
curl -sS $TLS $PIN -H "Authorization: Bearer $tok" -X POST "$URL/logout" | has 'logged out' ||
    fail "logout"
rc=0
# shellcheck disable=SC2086
curl -s --cacert "$G/ca.pem" --cert "$G/users/user0002.pem" --key "$G/users/user0002.key" \
    --resolve "$U.grid.example:$PORT:127.0.0.1" "$URL/login" -d '{}' >"$T/other" || rc=$?
[ "$rc" != 0 ] && ! grep -q token "$T/other" || fail "another user's certificate was served"

log "stopped by itself cleanly, nothing left behind"
rc=0
wait $DEMO || rc=$?
[ "$rc" = 0 ] || fail "demo exited with $rc: $(tail -15 "$out")"
grep -q '^demo stopped cleanly' "$out" || fail "no clean stop: $(tail -8 "$out")"
for what in "host relay" "enclave airlock"; do
    grep -q "^  $what (pid [0-9]*) stopped" "$out" || fail "$what did not stop cleanly"
done
! ip netns list | has -w -- "$NS" || fail "namespace $NS left behind"
run=$(sed -n 's/^  run dir \(.*\) removed$/\1/p' "$out")
[ -n "$run" ] || fail "run dir not reported removed"
[ ! -e "$run" ] || fail "run dir $run left behind"
! pgrep -f -- "$run" >/dev/null || fail "processes using $run left: $(pgrep -af -- "$run")"
log "ok"
