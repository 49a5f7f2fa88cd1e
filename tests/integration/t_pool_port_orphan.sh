#!/bin/bash
# t_pool_port_orphan: a socket a session leaves behind on a port of the
# pool's range gets nobody stopped. dave's instance (its own uid UA) binds a
# free port of the range, connects to a peer that never reads, fills its
# send buffer and closes: the kernel keeps the socket (FIN-WAIT-1, still of
# uid UA) after dave's session ended and UA was wiped. The next instance of
# UA serves frank; at the next start the pool finds the port held. Proves:
# frank's instance is not stopped (before: `why=took_port`, SIGKILL, as the
# socket's uid was taken for its holder; now the process that has the
# socket open is, and none has), the port is skipped, and frank's session
# goes on.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (uids:)"
need python3 ss
pool_setup
chmod 755 "$T"
U0=$(free_uids 4)
pool_conf "$CONF" "$P0" --state-wait 0 <<EOF
    min_idle: 1
    max: 4
    uids: $U0-$((U0 + 3))
EOF
sed -i "s/^    ports: .*/    ports: $P0-$((P0 + 5))/" "$CONF"
SQ=$((P0 + 5)) SINK=$(free_port)
# a peer that accepts and never reads
start sink python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
held = []
while True:
    held.append(s.accept()[0])' "$SINK"
wait_for tcp_up "$SINK"
cat >"$T/orphan.py" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.connect(("127.0.0.1", int(sys.argv[2])))
s.setblocking(False)
try:
    while True:
        s.send(b"x" * 65536)
except BlockingIOError:
    pass
s.close()
print("left")
PY
chmod 644 "$T/orphan.py"
airlock_up al run -c "$CONF"
wait_for settled 1

log "dave's instance leaves a socket on port $SQ of the range, then logs out"
pool_assign dave
UA=$(stat -c %u "$DIR")
app "$P" "login dave" >/dev/null
[ "$(app "$P" "sh /usr/bin/python3 $T/orphan.py $SQ $SINK")" = "OK left" ] || fail "no socket left"
app "$P" logout >/dev/null
wait_log "$LOG" "instance=$NAME wiped"
orphan() { ss -Htan "sport = :$SQ" | grep -q .; }
orphan || fail "the orphaned socket is gone already: the test cannot tell"

log "the next instance of uid $UA serves frank; a start finds port $SQ held"
pool_assign erin
app "$P" "login erin" >/dev/null
wait_for settled 1
pool_pick
[ "$UID_" = "$UA" ] || skip "the idle instance did not get uid $UA back"
FRANK=$NAME FP=$P
pool_reserve frank
app "$FP" "login frank" >/dev/null
wait_log "$LOG" "instance=$FRANK login user=frank"
orphan || fail "the orphaned socket is gone before the start: the test cannot tell"
mark=$(wc -l <"$LOG")
pool_assign gina # its LOGIN starts a replacement, which asks who holds the range's ports
app "$P" "login gina" >/dev/null
wait_for settled 1
# the search runs off the loop: what it blames comes before its end
searched() { tail -n +"$mark" "$LOG" | has "pool=fa: the holders of [0-9]* sockets on its ports looked for"; }
wait_for searched
! tail -n +"$mark" "$LOG" | has "holds port $SQ" || fail "an instance was blamed for the orphan"
! grep -q "instance=$FRANK .*why=took_port" "$LOG" || fail "frank's instance was stopped"
[ -n "$(app "$FP" pid)" ] || fail "frank's session did not go on"
log "ok"
