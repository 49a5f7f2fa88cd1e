#!/bin/bash
# t_smartgrid_slot_flood: once a user logged in, the router passes every
# ClientHello naming the user on to the user's instance, so anyone can hold
# its handshake slots; the instances of apps/smartgrid/pool-yaml.sh count
# them by the client's address that the router's PROXY v2 header names
# (--accept-proxy v2, send_proxy: v2):
#  - user0001 logs in through the router (127.0.0.1);
#  - a connection straight to the instance without a PROXY header is
#    refused (bad_proxy_header), and so is one with a header from a local
#    process of another uid than airlock's (proxy_peer: a neighbouring
#    instance could name any address; before, it was believed);
#  - user0001 starts a handshake on a slow link: ClientHello sent, the
#    server's answer read, its certificate not sent yet (tls_pause.py);
#  - meanwhile 16 ClientHellos naming user0001 from 127.0.0.2, one every
#    50 ms, each left at "waiting for the client certificate": they push out
#    each other (8 closed), not the user's handshake, which then completes
#    and is answered 200 (before, the first newcomer took its slot: the
#    handshake that got as far and was idle the longest).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"
need python3 setpriv
[ -x /usr/bin/python3 ] || skip "no /usr/bin/python3 (uid 65534 runs it)"
sg_provision 1
U=user0001
read -r R MPORT <<<"$(free_ports 2)"
P0=$(free_range 4)
cp -r "$SG/db" "$T/store"
{
    cat <<EOC
log_level: info
metrics: tcp:127.0.0.1:$MPORT
directory:
  backend: memory
EOC
    sg_router "$R"
    "$ROOT/apps/smartgrid/pool-yaml.sh" "$SG_BIN" "$SG" "$T/store" "$T/inst" \
        "$P0-$((P0 + 3))" 1 2 1 1s example
} >"$T/al.yaml"
# a handshake timeout no slow machine reaches: a close before it is an eviction
sed -i 's|--domain, example|&, --handshake-timeout, 60s|' "$T/al.yaml"
airlock_up al run -c "$T/al.yaml"
LOG=$T/al.log
idle() { [ "$(metric airlock_pool_instances 'pool="grid",state="idle"' "$MPORT")" -ge 1 ]; }
wait_for idle
SG_PORT=$R
sg_login $U

log "a connection to the instance without a PROXY header is refused"
# the login's connection is closed when the client is done: its line follows
wait_log "$LOG" 'close relay=grid .* target=tcp:127\.0\.0\.1:[0-9]+ '
port=$(sed -n "s/.*close relay=grid .* target=tcp:127.0.0.1:\([0-9]*\) .*/\1/p" "$LOG" | tail -1)
[ -n "$port" ] || fail "no connection of the user to its instance logged"
hold bare "$port" "$U.grid.example"
wait_log "$T/bare.out" '^eof$'
wait_log "$LOG" 'connection refused reason=bad_proxy_header'

log "a PROXY header from a local process of another uid (a neighbouring instance's) is refused"
held stranger setpriv --reuid=65534 --regid=65534 --clear-groups \
    /usr/bin/python3 "$ROOT/tests/tools/hello_hold.py" "$port" "$U.grid.example" --proxy 10.9.9.9
wait_log "$T/stranger.out" '^eof$'
SPID=$LAST_PID
# it goes (a FIN), the instance's linger sees it and closes: its slot is free again
unhold stranger
wait_until 10 sh -c "! kill -0 $SPID 2>/dev/null" || fail "the refused connection was never closed"
wait_log "$LOG" 'connection refused reason=proxy_peer client=127\.0\.0\.1:[0-9]+ uid=65534'
! grep -q 'client=10\.9\.9\.9' "$LOG" || fail "the stranger's header was believed"

log "the user's slow handshake, and 16 ClientHellos naming the user from another address"
held user python3 "$ROOT/tests/tools/tls_pause.py" "$R" "$U.grid.example" "$SG/ca.pem" \
    "$SG/users/$U.pem" "$SG/users/$U.key" "$SG_TOKEN"
wait_log "$T/user.out" '^paused$'
HELLO=$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); from hello_hold import client_hello
print("".join("\\x%02x" % b for b in client_hello(sys.argv[2])))' "$ROOT/tests/tools" "$U.grid.example")
start flood python3 "$ROOT/tests/tools/stall.py" "$R" 16 "$HELLO" "$T/ready" 127.0.0.2
cut() { [ "$(grep -c '^closed' "$T/flood.log")" -ge 8 ]; }
wait_for cut
held_say user go
wait_log "$T/user.out" '^(HTTP|eof)'
grep -q '^HTTP/1.1 200' "$T/user.out" || fail "the user's handshake was cut: $(cat "$T/user.out")"
# the instance's lines reach airlock's log as the pool reads its output
wait_log "$LOG" 'reason=handshake_slots_full user=- client=127\.0\.0\.2 '
! grep -q 'reason=handshake_slots_full user=- client=127.0.0.1 ' "$LOG" ||
    fail "a connection of the user's address was evicted"
log "ok"
