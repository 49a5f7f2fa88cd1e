#!/bin/bash
# t_ctl_dial: `airlock ctl` connects through the same dialer as the relays:
# a control socket named by host name (tcp:localhost:PORT, in /etc/hosts
# everywhere) answers, and a name that cannot be used, or nothing
# listening, gives one line saying why and exit status 1. A command line
# far over the bound (100 KB) gets its ERR over tcp every time: the answer
# is sent, then what the client sent is read until it closes (before, the
# close with it unread was a reset, which dropped the answer 9 times in 10).
. "$(dirname "$0")/lib.sh"
need ss socat
read -r C DEAD <<<"$(free_ports 2)"
cat >"$T/airlock.yaml" <<YAML
directory:
  backend: memory
control: tcp:127.0.0.1:$C
YAML
airlock_up air run -c "$T/airlock.yaml"
AIR=$LAST_PID

log "a control socket named by host name"
out=$("$AIRLOCK" ctl -s "tcp:localhost:$C" sessions 2>&1) || fail "ctl by name: $out"
[ "$(head -1 <<<"$out")" = "0 sessions" ] || fail "ctl by name answered: $out"

log "nothing listening: the reason connect(2) gave"
rc=0
"$AIRLOCK" ctl -s "tcp:localhost:$DEAD" sessions 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && [ "$(cat "$T/err")" = "airlock ctl: cannot connect to tcp:localhost:$DEAD: Connection refused" ] ||
    fail "no server: status $rc, $(cat "$T/err")"

log "an over-long command gets its answer"
head -c 100000 /dev/zero | tr '\0' x >"$T/long.in"
for i in 1 2 3 4 5; do
    timeout 5 socat - "TCP:127.0.0.1:$C" <"$T/long.in" >"$T/long.out" 2>/dev/null || true
    grep -q '^ERR command line too long' "$T/long.out" || fail "over-long command, try $i: '$(cat "$T/long.out")'"
done

stop_clean "$AIR" air
log "ok"
