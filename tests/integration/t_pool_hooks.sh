#!/bin/bash
# t_pool_hooks: a provisioning hook that fails or times out means the user
# is never served without their state: the instance's process group is
# killed at once (the client's login gets no answer), the session ends in
# the directory, a fresh instance takes its place (min_idle is 1 and
# max_idle 3: the pool settles at 2 idle), the failure is counted by hook
# and reason. A hook that outlives its timeout is killed with its children.
# A failed deprovisioning hook is counted too, and the directory is still
# wiped. (The hooks run at the reservation, ahead of the login: airlock ctl
# assign reserves as a router does.)
. "$(dirname "$0")/lib.sh"

pool_setup
mkdir -p "$T/store"
echo "state-of-carol" >"$T/store/carol.db"
# provision: users named slow* hang (with a child), fail* fail, the others
# get their state; deprovision fails for carol
cat >"$T/provision.sh" <<EOF
#!/bin/sh
case \$1 in
slow*) sleep 30 & echo \$! >"$T/hook-child.pid"; wait ;;
fail*) echo "no state for \$1"; exit 3 ;;
esac
cp "$T/store/\$1.db" "\$2/\$1.db.tmp" && mv "\$2/\$1.db.tmp" "\$2/\$1.db"
EOF
chmod +x "$T/provision.sh"
pool_conf "$CONF" "$P0" --state-wait 3000 <<EOF
    min_idle: 1
    max: 3
    max_idle: 3
    provision:
      command: ["$T/provision.sh", "{user}", "{dir}"]
      timeout: 500ms
    deprovision:
      command: [sh, -c, "exit 1"]
      timeout: 5s
EOF
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for metric_is airlock_pool_instances 'pool="fa",state="idle"' 1
hook_failures() { metric airlock_pool_hook_failures_total "pool=\"fa\",hook=\"$1\",reason=\"$2\"" "$MPORT"; }
# assign_pid USER: reserves an instance for USER (as assign_port does) and
# sets P to its port and PID to its pid, found by the instance's name: a
# failing hook kills it at once, and the instance replacing it may already
# have logged a start on the same port.
assign_pid() {
    local a name
    a=$(ctl assign fa "$1") || fail "airlock ctl assign fa $1 failed"
    P=${a##*:}
    name=${a#fa/}
    name=${name%% *}
    PID=$(sed -n "s/.* instance=$name starting pid=\([0-9]*\) .*/\1/p" "$LOG" | head -1)
}

log "a failing provisioning hook: killed, never served, replaced"
assign_pid failuser
[ -n "$PID" ] || fail "no instance started on port $P in the log"
out=$(app "$P" "login failuser")
[ -z "$out" ] || fail "the user was answered without their state: '$out'"
wait_log "$LOG" "hook=provision failed reason=exit"
wait_log "$LOG" "provision=\"no state for failuser"
wait_exit_any() { ! running "$1"; }
wait_for wait_exit_any "$PID"
wait_for metric_is airlock_pool_hook_failures_total 'pool="fa",hook="provision",reason="exit"' 1
wait_for settled 2
[ "$(dir_sessions)" = 0 ] || fail "the session was not ended in the directory"

log "a provisioning hook that hangs: killed after its timeout with its child"
start=$(date +%s%N)
assign_pid slowuser
[ -n "$PID" ] || fail "no instance started on port $P in the log"
out=$(app "$P" "login slowuser")
[ -z "$out" ] || fail "the user was answered without their state: '$out'"
ms=$(elapsed_ms "$start")
[ "$ms" -lt 2900 ] || fail "the client waited ${ms} ms: the instance was not killed at the hook's timeout"
wait_log "$LOG" "hook=provision failed reason=timeout"
wait_for wait_exit_any "$PID"
wait_for test -s "$T/hook-child.pid"
wait_for wait_exit_any "$(cat "$T/hook-child.pid")"
[ "$(hook_failures provision timeout)" = 1 ] || fail "timeout not counted"
wait_for settled 2

log "a failing deprovisioning hook: counted, the directory is still wiped"
P=$(assign_port carol)
[ "$(app "$P" "login carol")" = "OK state-of-carol" ] || fail "carol not served"
DIRC=$(app "$P" cwd | cut -d' ' -f1)
app "$P" logout >/dev/null
wait_log "$LOG" "hook=deprovision failed reason=exit"
wait_for metric_is airlock_pool_hook_failures_total 'pool="fa",hook="deprovision",reason="exit"' 1
[ ! -e "$DIRC" ] || fail "$DIRC not wiped"
wait_for settled 2
no_zombies "$AL" || fail "zombies: $(ps -o pid,stat,cmd --ppid "$AL")"
stop_clean "$AL" al
log "ok"
