#!/bin/bash
# t_pool_port_squat_fds: an instance that takes a port of its pool's range
# (t_pool_port_squat) and makes finding it expensive does not hold
# airlock's loop. The holder of a socket is found by reading every
# process's /proc/PID/fd, and the instance decides how many there are: here
# 100 processes of 10,000 fds each, and 20 sockets on one port held by a
# process read last. Until 2026-12-06 the search ran on the main loop when
# a port was to be given, once per socket: the next start held every relay
# for about two minutes. Now the ports held come from the kernel's dump at
# once (the start goes on), and their holders are searched on a pool thread
# in one pass for all the sockets: the relay answers throughout, and the
# squatter is still found and stopped (why=took_port).
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run instances as other uids"
need socat
[ -x /usr/bin/python3 ] || skip "no /usr/bin/python3 (the instances' uids run it)"
pool_setup
chmod 755 "$T" # the instances pass through to their directories
U0=$(free_uids 4)
read -r RL ECHO <<<"$(free_ports 2)"
pool_conf "$CONF" "$P0" --state-wait 0 <<EOF
    min_idle: 1
    max: 3
    uids: $U0-$((U0 + 3))
relays:
  - listen: tcp:127.0.0.1:$RL
    target: tcp:127.0.0.1:$ECHO
EOF
pool_echo_up "$ECHO"
echo_ok() { [ "$(echo hello | timeout 5 socat -t 5 - "TCP:127.0.0.1:$RL")" = hello ]; }
echo_ok || fail "the relay does not answer"

PA=$(assign_port dave)
app "$PA" "login dave" >/dev/null
wait_for settled 1
A=$(ss -Htlnp "sport = :$PA" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
UA=$(stat -c %u "/proc/$A")
SQ=$((P0 + 40))
log "dave's instance (uid $UA) takes port $SQ behind a million fds"
[ "$(app "$PA" "sh /usr/bin/python3 $ROOT/tests/tools/port_squat_fds.py $SQ 20 100 10000; echo ok")" = "OK ok" ] ||
    fail "no squatter"
wait_until 120 eval '[ "$(ss -Htln "sport = :$SQ" | wc -l)" = 20 ]'
wait_until 120 eval '[ "$(uid_procs "$UA" | wc -l)" -ge 102 ]'

log "erin's login: the next start looks for who holds the ports; the relay answers meanwhile"
PB=$(assign_port erin)
app "$PB" "login erin" >/dev/null
n=0
while ! grep -q "uid=$UA holds port $SQ, not its own" "$LOG"; do
    echo_ok || fail "the relay did not answer within 5 s while the pool looked for who holds port $SQ"
    n=$((n + 1))
    [ "$n" -lt 600 ] || fail "the squatter was not found"
    sleep 0.2
done
log "the relay answered $n times while the holder was looked for"
wait_log "$LOG" "instance=fa-1 stopping why=took_port"
wait_until 60 eval '[ -z "$(uid_procs "$UA")" ]'
[ "$(ss -Htln "sport = :$SQ" | wc -l)" = 0 ] || fail "port $SQ still held"
metric_is airlock_pool_took_ports_total 'pool="fa"' 1 || fail "took_ports not counted"
running "$AL" || fail "airlock died"
