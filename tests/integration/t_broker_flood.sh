#!/bin/bash
# t_broker_flood: a flood of connections does not take the key broker from
# requesters whose evidence takes its time. A requester that waits 300 ms
# between CHALLENGE and ATTEST (real NSM or TDX evidence takes hundreds of
# milliseconds) gets its secret, whole and alone on its connection, while:
#  - one address (the requester's own) opens ~1000 connections a second and
#    says nothing: only connections still waiting for their REQUEST line are
#    evicted, the oldest first, and those are closed after request_timeout;
#  - another address sends REQUEST and never attests, ~200 a second: it holds
#    at most max_per_peer challenged exchanges (half of max_connections), a
#    REQUEST of its own beyond that is refused busy, and a newcomer evicts
#    only connections that have not sent their REQUEST;
#  - both at once;
#  - every slot an exchange under way (two addresses at their share): a
#    REQUEST beyond a share, and then a newcomer, are refused busy;
#  - more newcomers than max_connections while the broker is still writing
#    a 64 KiB secret to a requester slow to read it: the answer is neither
#    evicted nor followed by a REFUSED.
# The busy refusals are counted and logged at most once a second; the
# broker's descriptors come back to their count before the flood.
. "$(dirname "$0")/lib.sh"
need xxd openssl python3

SIM=$T/sim.pem
"$AIRLOCK" attest get --provider sim --sim-root "$SIM" >/dev/null 2>&1 || fail "no sim root"
openssl x509 -in "$SIM" -out "$T/simcert.pem"
mkdir "$T/secrets"
printf 'db-password-1' | "$AIRLOCK" attest seal --key-file "$T/bk.key" --dir "$T/secrets" db-key \
    2>"$T/seal.err" || fail "seal: $(cat "$T/seal.err")"
head -c 65536 /dev/urandom >"$T/big"
"$AIRLOCK" attest seal --key-file "$T/bk.key" --dir "$T/secrets" big-key "$T/big" 2>"$T/seal.err" ||
    fail "seal big-key: $(cat "$T/seal.err")"
"$AIRLOCK" attest broker-key --key-file "$T/bk.key" >"$T/bk.pub" || fail "no broker key"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/a.key" 2>/dev/null
openssl pkey -in "$T/a.key" -pubout -out "$T/a.pub"
openssl pkey -in "$T/a.key" -pubout -outform DER | xxd -p | tr -d '\n' >"$T/a.hex"

PORT=$(free_port)
MPORT=$(free_port)
cat >"$T/airlock.yaml" <<EOC
metrics: tcp:127.0.0.1:$MPORT
broker:
  listen: tcp:127.0.0.1:$PORT
  dir: $T/secrets
  key_file: $T/bk.key
  max_connections: 16
  timeout: 6s
  request_timeout: 1s
  nonce_ttl: 3s
  secrets:
    - {name: db-key, policy: {sim_root: $T/simcert.pem, any_image: true}}
    - {name: big-key, policy: {sim_root: $T/simcert.pem, any_image: true}}
EOC
airlock_up broker run -c "$T/airlock.yaml"
PID=$LAST_PID
LOG=$T/broker.log
fds() { find "/proc/$PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }
FDS=$(fds)

# flood MODE [SECRET]: five slow rounds under that flood, each must get its secret
flood() {
    timeout 120 python3 "$(dirname "$0")/broker_flood.py" "$PORT" "$AIRLOCK" "$SIM" "$T/a.pub" \
        "$(cat "$T/a.hex")" 5 "$@" >"$T/flood.out" 2>&1 ||
        fail "flood $1: $(cat "$T/flood.out")"
    cat "$T/flood.out" >&2
}

log "no flood: five slow requesters, five secrets"
flood none
log "one address opens ~1000 silent connections a second: the slow requester still gets its secret"
flood stall
log "another address sends REQUEST and stalls, ~200 a second: it keeps to its share"
flood request
log "both floods at once"
flood stall,request

log "an answer part-way written (64 KiB, a requester slow to read) is never evicted or cut"
flood none big-key

log "busy refusals counted, logged at most once a second"
busy=$(metric airlock_broker_refusals_total 'secret="-",reason="busy"' "$MPORT")
[ "${busy:-0}" -ge 100 ] || fail "busy refusals counted: ${busy:-0}"
lines=$(grep -c 'reason=busy' "$LOG")
[ "$lines" -le 60 ] || fail "$lines busy log lines for $busy refusals"
grep -q 'busy refusals not logged in the last second' "$LOG" || fail "the unlogged ones are not told"
# the stalled requests beyond their address's share were refused at REQUEST
share=$(metric airlock_broker_refusals_total 'secret="db-key",reason="busy"' "$MPORT")
[ "${share:-0}" -ge 100 ] || fail "requests over max_per_peer refused: ${share:-0}"

log "the flood's connections end: request_timeout, then timeout; descriptors back"
back() { [ "$(fds)" -le "$FDS" ]; }
poll_until 15 back || fail "broker fds $(fds), $FDS before the flood"
log "every slot an exchange under way: a REQUEST over max_per_peer, then a newcomer, refused busy"
timeout 30 python3 - "$PORT" <<'EOP' || fail "exchanges under way were not kept"
import socket, sys
port = int(sys.argv[1])
held = []
def ask(src):
    s = socket.socket()
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(b"REQUEST db-key\n")
    f = s.makefile("rb")
    held.append((s, f))
    return f.readline().decode()
for _ in range(8):
    assert ask("127.0.0.2").startswith("CHALLENGE "), "a challenge within the share"
line = ask("127.0.0.2")
assert line.startswith("REFUSED busy 8 exchanges of this peer under way"), line
for _ in range(8):
    assert ask("127.0.0.3").startswith("CHALLENGE "), "another address's share"
s = socket.create_connection(("127.0.0.1", port))
line = s.makefile("rb").readline().decode()
assert line.startswith("REFUSED busy every connection is an exchange under way"), line
EOP
rc=0
timeout 30 "$AIRLOCK" attest fetch-secret --broker "tcp:127.0.0.1:$PORT" --broker-key "$T/bk.pub" \
    --provider sim --sim-root "$SIM" db-key >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 0 ] && [ "$(cat "$T/out")" = db-password-1 ] || fail "fetch after the flood: $(cat "$T/err")"
stop_clean "$PID" broker
log "ok"
