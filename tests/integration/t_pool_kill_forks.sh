#!/bin/bash
# t_pool_kill_forks: cgroup v1 with the freezer hierarchy: an instance
# whose user starts a fork loop in it (every process forks anew for ever,
# up to its pids.max, a killed one's place free at once) ends with its
# session, and the cgroups a killed airlock left it are removed at the next
# start: the reaper freezes the instance's freezer cgroup, kills every
# process in it and thaws it, each round, so that none forks while the
# others are being killed. Before, it killed what cgroup.procs listed while
# the rest forked into the freed places: a loop at full speed on every core
# (max_processes 1024) outran it for minutes, the session never ending; the
# loop here runs at nice 19 on one core, which the old kill catches too (it
# shares the machine): before, the instance had no freezer cgroup.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to make cgroups and run instances as nobody"
id nobody >/dev/null 2>&1 || skip "no user nobody"
[ "$(stat -f -c %T /sys/fs/cgroup)" = tmpfs ] && [ -d /sys/fs/cgroup/pids ] && [ -d /sys/fs/cgroup/freezer ] ||
    skip "needs the cgroup v1 pids and freezer hierarchies at /sys/fs/cgroup (this test's host)"
pool_setup
chmod 755 "$T" # the instances pass through to their directories

OWNP=$(cg_own pids)
OWNF=$(cg_own freezer)
at_exit "cg_clean '$OWNP' '$OWNF'"

pool_conf "$CONF" "$P0" --state-wait 0 <<EOF
    user: nobody
    min_idle: 1
    max: 2
    cgroup: own
    max_processes: 64
    cpu_max: 0.5
EOF
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1

# forking NAME PORT: the instance NAME on PORT, in its freezer cgroup, runs
# a fork loop that fills its pids.max
forking() {
    grep -qx "$(pid_of_port "$2")" "$OWNF/airlock-$1/cgroup.procs" || fail "$1 is not in its freezer cgroup"
    [ "$(app "$2" forks)" = OK ] || fail "no fork loop"
    wait_for eval "[ \"\$(cat '$OWNP/airlock-$1/pids.current')\" -ge 60 ]"
}
# gone NAME: the cgroups of the instance NAME are removed
gone() {
    cg_gone "$OWNP/airlock-$1" || fail "its pids cgroup is left: $(cat "$OWNP/airlock-$1/pids.current") processes"
    cg_gone "$OWNF/airlock-$1" || fail "its freezer cgroup is left"
}

log "a fork loop fills dave's instance's pids.max: the session ends all the same"
P=$(assign_port dave)
[ "$(app "$P" "login dave")" = NOSTATE ] || fail "dave's login"
NAME=$(basename "$(readlink "/proc/$(pid_of_port "$P")/cwd")")
forking "$NAME" "$P"
[ "$(app "$P" logout)" = BYE ] || fail "logout"
wait_until 60 grep -q "instance=$NAME stopped why=logout" "$LOG" ||
    fail "the session has not ended: $(cat "$OWNP/airlock-$NAME/pids.current") processes in its cgroup"
gone "$NAME"
wait_for settled 1

log "airlock killed with a fork loop in erin's instance: the next start removes its cgroups"
P=$(assign_port erin)
[ "$(app "$P" "login erin")" = NOSTATE ] || fail "erin's login"
NAME=$(basename "$(readlink "/proc/$(pid_of_port "$P")/cwd")")
forking "$NAME" "$P"
kill -9 "$AL"
wait_exit "$AL" || true
[ "$(cat "$OWNP/airlock-$NAME/pids.current")" -ge 60 ] || fail "the fork loop died with airlock (nothing to test)"
mv "$LOG" "$T/al-killed.log"
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_until 60 grep -q "pool=fa: removed [0-9]* cgroups left by an earlier airlock" "$LOG" ||
    fail "the cgroups are not removed: $(cat "$OWNP/airlock-$NAME/pids.current") processes in them"
! grep -q "cannot remove" "$LOG" || fail "$(grep "cannot remove" "$LOG")"
gone "$NAME"
wait_for settled 1
stop_clean "$AL" al
log "ok"
