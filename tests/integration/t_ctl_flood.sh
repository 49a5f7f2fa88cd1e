#!/bin/bash
# t_ctl_flood: a control connection whose command is being run is never
# pushed out by newcomers, so the directory runs at most 32 of the control
# endpoint's requests at once. 32 assigns wait for an instance on a tcp
# control endpoint (none is free; assign_wait 10s: all 32 are waiting at
# once even on a loaded machine, and answered within the ctl client's 15 s);
# a 33rd connection is answered "busy" and closed at once, and every one of
# the 32 gets its answer. Before, each newcomer closed the oldest
# connection, waiting or not: its request still ran in the directory, so a
# flood of commands queued work without bound there (and stalled the
# routers' assigns behind it), and silent clients pushed out the
# operator's commands.
. "$(dirname "$0")/lib.sh"
need redis-server
DIRTOOL=$(dirname "$AIRLOCK")/tests/dirtool
SOCK=$T/redis.sock
C=$(free_port)

start redis redis-server --port 0 --unixsocket "$SOCK" --save '' --appendonly no
wait_for unix_up "$SOCK"
cat >"$T/airlock.yaml" <<YAML
directory:
  backend: redis
  redis: unix:$SOCK
  assign_wait: 10s
control: tcp:127.0.0.1:$C
YAML
airlock_up air run -c "$T/airlock.yaml"
DIRTOOL_POOL=full "$DIRTOOL" register "unix:$SOCK" airlock: 1 2>/dev/null
# alice takes the one instance and logs in (active: no reservation to time out)
inst=$(DIRTOOL_POOL=full "$DIRTOOL" assign "unix:$SOCK" airlock: alice 2>/dev/null) ||
    fail "cannot take the one instance"
DIRTOOL_POOL=full "$DIRTOOL" activate "unix:$SOCK" airlock: "${inst%% *}" alice >/dev/null 2>&1 ||
    fail "cannot activate $inst for alice"
ctl() { "$AIRLOCK" ctl -s "tcp:127.0.0.1:$C" "$@"; }

log "32 assigns wait for an instance"
for i in $(seq 32); do
    (
        rc=0
        ctl assign full "user$i" >"$T/a$i.out" 2>&1 || rc=$?
        echo "$rc" >"$T/a$i.rc"
    ) &
done
wait_for eval '[ "$(grep -c "ctl assign pool=full" "$T/air.log")" -ge 32 ]'

log "a 33rd connection is told it is busy and closed, and pushes none of them out"
rc=0
ctl instances >"$T/late.out" 2>&1 || rc=$?
[ "$rc" != 0 ] && grep -q "airlock ctl: busy: 32 commands are being run" "$T/late.out" ||
    fail "a 33rd command was served while 32 waited ($rc): $(cat "$T/late.out")"
for i in $(seq 32); do
    wait_until 30 test -s "$T/a$i.rc" || fail "assign $i has no answer after 30 s"
    [ "$(cat "$T/a$i.rc")" = 1 ] && grep -q "free within assign_wait" "$T/a$i.out" ||
        fail "assign $i was not answered: $(cat "$T/a$i.out")"
done
ctl instances >/dev/null || fail "no answer once the assigns were answered"
log ok
