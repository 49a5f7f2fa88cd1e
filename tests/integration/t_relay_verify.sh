#!/bin/bash
# t_relay_verify: a relay with verify: lets an unmodified plaintext client
# reach an attested service (a tls: relay) only when the service's RA-TLS
# evidence is bound to its TLS key and meets the policy:
#   - client -> verify: relay -> tls: relay -> backend works, half-close
#     both ways, bytes intact;
#   - refused (end=attest_refused or tls_failed, the reason on the close
#     line, counted) with nothing of the client's reaching any backend: a
#     PCR the evidence does not have, no sim root, a plain TLS server, a
#     man in the middle that re-terminates TLS with valid sim evidence of
#     its own root, and one that copies the real certificate's extension
#     onto its own key (with fresh evidence asked for, and without);
#   - fresh evidence over fresh_evidence_rate is refused and counted, and a
#     client that does not ask for it gets the certificate's evidence; one
#     client address gets a quarter of the rate (fresh_evidence_rate 4: 1 of
#     6 ClientHellos from 127.0.0.1 served, then 1 of 2 from 127.0.0.2; a
#     client's share refills in a second; before, one client took the whole
#     bucket from the others).
. "$(dirname "$0")/lib.sh"
need openssl socat

# one call: ports of two calls may overlap
read -r REC ENC ENC_HALF NORATE PLAIN MITM1 MITM1_UP MITM2 HALF_BACK \
    GOOD PCR NOSIM TOPLAIN TOMITM1 TOMITM2F TOMITM2C NR_FRESH NR_CERT HALF M_ENC M_CLI SHARE \
    <<<"$(free_ports 22)"
"$AIRLOCK" attest get --provider sim --sim-root "$T/sim.pem" >/dev/null 2>&1 ||
    fail "cannot make the sim root"
"$AIRLOCK" attest get --provider sim --sim-root "$T/mitm-sim.pem" >/dev/null 2>&1 ||
    fail "cannot make the man in the middle's sim root"

# the backend echoes and records what each connection brought
mkdir "$T/rec"
start rec socat TCP-LISTEN:"$REC",bind=127.0.0.1,reuseaddr,fork \
    SYSTEM:"tee \$(mktemp -p $T/rec)"
wait_port "$REC"

cat >"$T/enclave.yaml" <<EOF
metrics: tcp:127.0.0.1:$M_ENC
relays:
  - {name: enc, listen: "tcp:127.0.0.1:$ENC", target: "tcp:127.0.0.1:$REC",
     tls: {provider: sim, sim_root: $T/sim.pem}}
  - {name: half, listen: "tcp:127.0.0.1:$ENC_HALF", target: "tcp:127.0.0.1:$HALF_BACK",
     tls: {provider: sim, sim_root: $T/sim.pem}}
  - {name: share, listen: "tcp:127.0.0.1:$SHARE", target: "tcp:127.0.0.1:$REC",
     tls: {provider: sim, sim_root: $T/sim.pem, fresh_evidence_rate: 4}}
  - {name: norate, listen: "tcp:127.0.0.1:$NORATE", target: "tcp:127.0.0.1:$REC",
     tls: {provider: sim, sim_root: $T/sim.pem, fresh_evidence_rate: 0}}
EOF
airlock_up enclave run -c "$T/enclave.yaml"
ENCLAVE=$LAST_PID

# a man in the middle with genuine-looking evidence of its own sim root: it
# terminates TLS and goes on to the real service through a verify: relay
cat >"$T/mitm.yaml" <<EOF
relays:
  - {name: mitm, listen: "tcp:127.0.0.1:$MITM1", target: "tcp:127.0.0.1:$MITM1_UP",
     tls: {provider: sim, sim_root: $T/mitm-sim.pem}}
  - {name: up, listen: "tcp:127.0.0.1:$MITM1_UP", target: "tcp:127.0.0.1:$ENC",
     verify: {policy: {sim_root: $T/sim.pem, any_image: true}}}
EOF
airlock_up mitm run -c "$T/mitm.yaml"

# a plain TLS server in front of the backend
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/plain.key" \
    -out "$T/plain.crt" -subj /CN=plain -days 1 2>/dev/null
start plain socat OPENSSL-LISTEN:"$PLAIN",bind=127.0.0.1,reuseaddr,fork,cert="$T/plain.crt",key="$T/plain.key",verify=0 \
    TCP:127.0.0.1:"$REC"
# a man in the middle with the real certificate's extension on its own key
openssl s_client -connect 127.0.0.1:"$ENC" </dev/null 2>/dev/null | openssl x509 >"$T/real.crt"
ext=$(openssl asn1parse -in "$T/real.crt" | grep -A1 ':2.23.133.5.4.9$' | tail -1 |
    sed -n 's/.*\[HEX DUMP\]://p')
[ -n "$ext" ] || fail "no RA-TLS extension in the real certificate"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/copy.key" \
    -out "$T/copy.crt" -subj /CN=copy -days 1 -addext "2.23.133.5.4.9=DER:$ext" 2>/dev/null ||
    fail "cannot make the certificate with the copied extension"
start copy socat OPENSSL-LISTEN:"$MITM2",bind=127.0.0.1,reuseaddr,fork,cert="$T/copy.crt",key="$T/copy.key",verify=0 \
    OPENSSL:127.0.0.1:"$ENC",verify=0
wait_port "$PLAIN"
wait_port "$MITM2"

pol_a="{sim_root: $T/sim.pem, any_image: true}"
cat >"$T/client.yaml" <<EOF
metrics: tcp:127.0.0.1:$M_CLI
relays:
  - {name: good, listen: "tcp:127.0.0.1:$GOOD", target: "tcp:127.0.0.1:$ENC",
     verify: {server_name: enclave.example, policy: $pol_a}}
  - {name: pcr, listen: "tcp:127.0.0.1:$PCR", target: "tcp:127.0.0.1:$ENC",
     verify: {policy: {sim_root: $T/sim.pem, pcrs: {0: "$(printf '11%.0s' {1..48})"}}}}
  - {name: nosim, listen: "tcp:127.0.0.1:$NOSIM", target: "tcp:127.0.0.1:$ENC",
     verify: {policy: {any_image: true}}}
  - {name: toplain, listen: "tcp:127.0.0.1:$TOPLAIN", target: "tcp:127.0.0.1:$PLAIN",
     verify: {policy: $pol_a}}
  - {name: tomitm1, listen: "tcp:127.0.0.1:$TOMITM1", target: "tcp:127.0.0.1:$MITM1",
     verify: {policy: $pol_a}}
  - {name: tomitm2f, listen: "tcp:127.0.0.1:$TOMITM2F", target: "tcp:127.0.0.1:$MITM2",
     verify: {policy: $pol_a}}
  - {name: tomitm2c, listen: "tcp:127.0.0.1:$TOMITM2C", target: "tcp:127.0.0.1:$MITM2",
     verify: {fresh: false, policy: $pol_a}}
  - {name: nrfresh, listen: "tcp:127.0.0.1:$NR_FRESH", target: "tcp:127.0.0.1:$NORATE",
     verify: {policy: $pol_a}}
  - {name: nrcert, listen: "tcp:127.0.0.1:$NR_CERT", target: "tcp:127.0.0.1:$NORATE",
     verify: {fresh: false, policy: $pol_a}}
  - {name: half, listen: "tcp:127.0.0.1:$HALF", target: "tcp:127.0.0.1:$ENC_HALF",
     verify: {policy: $pol_a}}
EOF
airlock_up client run -c "$T/client.yaml"
CLIENT=$LAST_PID

# say PORT TEXT: what comes back when a plaintext client sends TEXT there
say() { printf '%s\n' "$2" | timeout 10 socat -t 5 - TCP:127.0.0.1:"$1" 2>/dev/null || :; }

log "attested: the client's bytes go through and come back"
[ "$(say "$GOOD" hello-good)" = hello-good ] || fail "the good relay did not relay"
[ "$(say "$NR_CERT" hello-cert)" = hello-cert ] ||
    fail "the certificate's evidence was not accepted without a nonce"

log "half-close both ways through verify: -> tls:, bytes intact"
gen_data request $((1 << 20)) >"$T/request"
gen_data reply $((2 << 20)) >"$T/reply"
timeout 20 "$NETPEER" listen "tcp:127.0.0.1:$HALF_BACK" --after-eof <"$T/reply" >"$T/back.got" &
srv=$!
wait_for tcp_up "$HALF_BACK"
timeout 20 "$NETPEER" connect "tcp:127.0.0.1:$HALF" <"$T/request" >"$T/cli.got" ||
    fail "client: status $?"
wait "$srv" || fail "server: status $?"
cmp -s "$T/back.got" "$T/request" || fail "the backend did not get the request whole"
cmp -s "$T/cli.got" "$T/reply" || fail "the client did not get the reply whole"
timeout 20 "$NETPEER" listen "tcp:127.0.0.1:$HALF_BACK" <"$T/reply" >"$T/back.got" &
srv=$!
wait_for tcp_up "$HALF_BACK"
timeout 20 "$NETPEER" connect "tcp:127.0.0.1:$HALF" --after-eof <"$T/request" >"$T/cli.got" ||
    fail "client (after eof): status $?"
wait "$srv" || fail "server (after eof): status $?"
cmp -s "$T/cli.got" "$T/reply" || fail "the client did not get the server's data whole"
cmp -s "$T/back.got" "$T/request" || fail "the backend did not get the late request whole"

log "refusals: nothing of the client's reaches a backend"
# refused PORT RELAY END WHY: a secret sent there comes back as nothing, and
# RELAY's close line ends with END saying WHY
refused() {
    local got
    got=$(say "$1" "secret-$2")
    [ -z "$got" ] || fail "$2: the client got '$got'"
    wait_for grep -q "close relay=$2 .*end=$3\$" "$T/client.log" ||
        fail "$2: no close line with end=$3"
    grep "close relay=$2 .*end=$3\$" "$T/client.log" | has "reason=\"[^\"]*$4" ||
        fail "$2: the close line does not say '$4': $(grep "close relay=$2 " "$T/client.log")"
}
refused "$PCR" pcr attest_refused "PCR 0"
refused "$NOSIM" nosim attest_refused "no sim root is trusted"
refused "$TOPLAIN" toplain attest_refused "fresh evidence"
refused "$TOMITM1" tomitm1 attest_refused "certificate chain"
refused "$TOMITM2F" tomitm2f attest_refused "fresh evidence"
refused "$TOMITM2C" tomitm2c attest_refused "bound to another key"
refused "$NR_FRESH" nrfresh tls_failed "handshake failure"
! grep -rq secret "$T/rec" || fail "a refused client's bytes reached the backend"
grep -rq hello-good "$T/rec" || fail "the backend record is not working"
[ "$(metric airlock_connections_closed_total 'relay="tomitm1",end="attest_refused"' "$M_CLI")" = 1 ] ||
    fail "the refusal is not counted"
[ "$(metric airlock_tls_fresh_evidence_total 'relay="norate",result="refused"' "$M_ENC")" = 1 ] ||
    fail "the fresh evidence refused is not counted"
[ "$(metric airlock_tls_fresh_evidence_total 'relay="enc",result="served"' "$M_ENC")" -ge 3 ] ||
    fail "the fresh evidence served is not counted"

log "one client address gets a quarter of fresh_evidence_rate"
# hellos SRC N: N raw ClientHellos asking for fresh evidence, from SRC, at once
hellos() {
    python3 - "$SHARE" "$1" "$2" <<'PY'
import os, socket, struct, sys, time
port, src, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def ext(t, d): return struct.pack("!HH", t, len(d)) + d
exts = ext(0x002b, b"\x02\x03\x04") + ext(0x000a, b"\x00\x02\x00\x1d")
exts += ext(0x000d, b"\x00\x02\x04\x03") + ext(0x0033, b"\x00\x24\x00\x1d\x00\x20" + os.urandom(32))
exts += ext(0xffa7, b"\x20" + os.urandom(32))  # RA-TLS: fresh evidence for this nonce
body = b"\x03\x03" + os.urandom(32) + b"\x20" + os.urandom(32) + b"\x00\x02\x13\x01\x01\x00"
body += struct.pack("!H", len(exts)) + exts
hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
rec = b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs
socks = []
for _ in range(n):
    s = socket.socket()
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(rec)
    socks.append(s)
time.sleep(0.5)
PY
}
fresh() { metric airlock_tls_fresh_evidence_total "relay=\"share\",result=\"$1\"" "$M_ENC"; }
hellos 127.0.0.1 6
wait_for eval '[ "$(( $(fresh served) + $(fresh refused) ))" = 6 ]'
[ "$(fresh served)" = 1 ] || fail "one client got $(fresh served) of 6 fresh evidence (its share is 1)"
hellos 127.0.0.2 2
wait_for eval '[ "$(( $(fresh served) + $(fresh refused) ))" = 8 ]'
[ "$(fresh served)" = 2 ] || fail "another client got $(($(fresh served) - 1)) of 2 fresh evidence"

stop_clean "$CLIENT" client
stop_clean "$ENCLAVE" enclave
log "pass"
