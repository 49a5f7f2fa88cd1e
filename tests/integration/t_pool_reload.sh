#!/bin/bash
# t_pool_reload: SIGHUP and SIGTERM with sessions in flight.
#  - SIGHUP with a bigger pool (min_idle 1 -> 3): the new idle instances
#    start, the active session keeps its process and its connection;
#  - SIGHUP with a smaller pool (max 4 -> 2, min_idle 1): idle instances go,
#    the active one stays;
#  - a reload whose new dir cannot be made: the rest applied, the pool keeps
#    its running dir, and `airlock ctl reload` says so ("reloaded FILE in
#    part", exit 1);
#  - SIGTERM: instances that ignore SIGTERM get SIGKILL after stop_grace,
#    the children in their process groups die too, no process is left and
#    airlock exits 0 well within drain_timeout.
. "$(dirname "$0")/lib.sh"

pool_setup
conf() { # MIN_IDLE MAX
    pool_conf "$CONF" "$P0" --state-wait 0 --ignore-term <<EOF
    min_idle: $1
    max: $2
    max_idle: $1
    cooldown: 200ms
    stop_grace: 300ms
EOF
}
conf 1 4
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1
P=$(idle_port "$LOG")
# a session whose connection stays open across the reloads (fakeapp serves
# one connection at a time: everything for it goes over this one)
exec 5<>"/dev/tcp/127.0.0.1/$P"
ask() { echo "$1" >&5 && IFS= read -r a <&5 && echo "$a"; }
PID=$(ask pid | cut -d' ' -f1)
[ "$(assign_port erin)" = "$P" ] || fail "erin was not reserved the one idle instance"
[ "$(ask "login erin")" = NOSTATE ] || fail "login"
wait_log "$LOG" "login user=erin"
CHILD=$(ask child)

log "SIGHUP: min_idle 3"
conf 3 4
kill -HUP "$AL"
wait_log "$LOG" "reloaded"
wait_for settled 3
metric_is airlock_pool_instances 'pool="fa",state="active"' 1 || fail "the session is gone"
a=$(ask pid)
[ "${a%% *}" = "$PID" ] || fail "the session's process changed: $a, was $PID"

log "SIGHUP: max 2, min_idle 1"
conf 1 2
kill -HUP "$AL"
wait_for settled 1
metric_is airlock_pool_instances 'pool="fa",state="active"' 1 || fail "the session is gone"
a=$(ask pid)
[ "${a%% *}" = "$PID" ] || fail "the session's process changed: $a"
[ "$(grep -c 'stopping why=trim' "$LOG")" = 2 ] || fail "expected 2 trims"

log "a dir that cannot be made: kept, and the reload says so"
sed -i "s|dir: $T/inst\$|dir: $T/no-such/inst|; s|max: 2\$|max: 3|" "$CONF"
rc=0
ctl reload >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 1 ] || fail "reload: exit $rc: $(cat "$T/out" "$T/err")"
has -x "airlock ctl: reloaded $CONF in part (generation 4), not applied: pool=fa: dir: new instances keep their directories in $T/inst" <"$T/err" ||
    fail "reload said: $(cat "$T/err")"
has -F "pool=fa reconfigured min_idle=1 max=3" <"$LOG" || fail "the rest was not applied"
metric_is airlock_reloads_total 'result="partial"' 1 || fail "not counted as partial"
[ ! -e "$T/no-such" ] || fail "made $T/no-such"

log "SIGTERM: SIGKILL after stop_grace for instances that ignore SIGTERM"
KIDS="$(pgrep -P "$AL" | tr '\n' ' ') $CHILD"
start=$(date +%s%N)
stop_clean "$AL" al
ms=$(elapsed_ms "$start")
log "airlock stopped in $ms ms"
[ "$ms" -lt 5000 ] || fail "stopping took $ms ms (stop_grace is 300 ms)"
grep -q "exited signal=9" "$LOG" || fail "no instance needed SIGKILL (does --ignore-term work?)"
for p in $KIDS; do
    wait_for test ! -e "/proc/$p/stat"
done
exec 5<&-
log "ok"
