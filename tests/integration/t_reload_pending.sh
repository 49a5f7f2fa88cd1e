#!/bin/bash
# t_reload_pending: a reload decides for the connections that have not
# chosen their destination yet. Clients accepted before a reload name their
# destination after it: an egress relay checks a CONNECT against the
# allowlist of now (a destination taken off the list is refused, one added
# is reached) and a router picks the route of now for a ClientHello that
# comes whole only after the reload; a relay the reload removed allows and
# routes nothing more. A tunnel opened before both reloads keeps carrying
# bytes (established connections are not dropped).
. "$(dirname "$0")/lib.sh"
need socat python3

read -r EA EB SA SB EG RT M K <<<"$(free_ports 8)"
for p in "$EA" "$EB"; do
    start "echo$p" socat "TCP-LISTEN:$p,fork,reuseaddr,bind=127.0.0.1" EXEC:cat
done
# the router's targets: each says its name and reads what comes (the
# ClientHello) until the client goes, so that no write of it fails first
for x in A B; do
    p=S$x
    start "say$x" socat "TCP-LISTEN:${!p},bind=127.0.0.1,reuseaddr,fork" \
        SYSTEM:"echo from-$x; exec cat >/dev/null"
done
for p in "$EA" "$EB" "$SA" "$SB"; do wait_for tcp_up "$p"; done
CONF=$T/airlock.yaml CTL=$T/ctl.sock LOG=$T/air.log MPORT=$M

# write_conf EGRESS_PORT ROUTE_PORT [removed]: the egress relay allows
# 127.0.0.1:EGRESS_PORT, the router sends x.test to 127.0.0.1:ROUTE_PORT;
# "removed": neither is in the config (a relay "keep" always is)
write_conf() {
    {
        printf 'metrics: tcp:127.0.0.1:%s\ncontrol: unix:%s\n' "$M" "$CTL"
        printf 'relays:\n  - {name: keep, listen: "tcp:127.0.0.1:%s", target: "tcp:127.0.0.1:%s"}\n' "$K" "$EA"
        if [ "${3:-}" != removed ]; then
            printf '  - name: egress\n    listen: tcp:127.0.0.1:%s\n' "$EG"
            printf '    target: egress\n    egress_allow: ["127.0.0.1:%s"]\n' "$1"
            # (its clients hold their ClientHellos across the test's steps:
            # longer than the default 5 s on a busy machine)
            printf 'routers:\n  - name: rt\n    listen: tcp:127.0.0.1:%s\n    peek_timeout: 60s\n' "$RT"
            printf '    routes:\n      - {name: x.test, target: "tcp:127.0.0.1:%s"}\n' "$2"
        fi
    } >"$CONF.new"
    mv "$CONF.new" "$CONF"
}
reload() { "$AIRLOCK" ctl -s "unix:$CTL" reload >"$T/reload.out" || fail "reload: $(cat "$T/reload.out")"; }

# late NAME: a client of the egress relay that connects at once and sends
# its CONNECT only when given the port on its stdin; prints "connected",
# then the status line it gets; then, for each line "ping", what a ping
# through the tunnel brings back
late() {
    held "$1" python3 -c "
import socket, sys
s = socket.create_connection(('127.0.0.1', $EG))
print('connected', flush=True)
port = sys.stdin.readline().strip()
s.sendall(('CONNECT 127.0.0.1:%s HTTP/1.1\r\nHost: x\r\n\r\n' % port).encode())
s.settimeout(5)
head = b''
try:
    while b'\r\n\r\n' not in head:
        d = s.recv(1)
        if not d: break
        head += d
except OSError: pass
print(head.split(b'\r\n')[0].decode() or 'closed', flush=True)
for line in sys.stdin:
    s.sendall(b'ping\n')
    print(s.recv(64).decode().strip() or 'closed', flush=True)
"
    wait_log "$T/$1.out" '^connected$'
}
# accepted RELAY N: wait until RELAY has N connections open
accepted() { wait_for metric_is airlock_connections_open "relay=\"$1\"" "$2"; }
# split NAME: a router client whose ClientHello for x.test comes whole only
# on "held_say NAME rest"
split() {
    held "$1" python3 "$ROOT/tests/tools/hello_hold.py" "$RT" x.test --split
    wait_log "$T/$1.out" '^part sent$'
}

write_conf "$EA" "$SA"
airlock_up air run -c "$CONF"
AIR=$LAST_PID

log "before the reload: a tunnel to A, and x.test routed to A"
late tunnel
held_say tunnel "$EA"
wait_log "$T/tunnel.out" '^HTTP/1.1 200' 5
hold routed_before "$RT" x.test
wait_log "$T/routed_before.out" '^from-A$' 5

log "clients accepted before a reload that allows B only and routes x.test to B"
late to_a
late to_b
split routed
accepted egress 3
accepted rt 2
write_conf "$EB" "$SB"
reload
held_say to_a "$EA"
held_say to_b "$EB"
wait_log "$T/to_a.out" '^HTTP/1.1 403' 5
wait_log "$T/to_b.out" '^HTTP/1.1 200' 5
held_say routed rest
wait_log "$T/routed.out" '^from-B$' 5
! grep -q '^from-A$' "$T/routed.out" || fail "routed by the routes before the reload"

log "clients accepted before a reload that removes both relays"
late gone_b
split gone_rt
accepted egress 3 # the tunnel, to_b's, gone_b's
accepted rt 3
write_conf "$EB" "$SB" removed
reload
held_say gone_b "$EB"
wait_log "$T/gone_b.out" '^HTTP/1.1 403' 5
held_say gone_rt rest
wait_log "$T/gone_rt.out" '^eof$' 5
! grep -q '^from-B$' "$T/gone_rt.out" || fail "routed by a router the reload removed"
wait_log "$LOG" 'router refused relay=rt conn=.* reason=no_route' 5

log "the tunnel opened before both reloads still carries bytes"
held_say tunnel ping
wait_log "$T/tunnel.out" '^ping$' 5
for n in tunnel routed_before to_a to_b routed gone_b gone_rt; do unhold "$n"; done
stop_clean "$AIR" air
