#!/bin/bash
# t_pool_limits: each instance in a cgroup of its own (memory_max, cpu_max,
# cgroup:), against instances taken over by their users, all of one shared
# user (user: nobody), so that neither a uid of their own nor the uid
# reaper separates them.
#  - cgroup v1 (this host's hierarchies): an instance runs in its own
#    memory, cpu and pids cgroups with memory_max, cpu_max and
#    max_processes (1024 by default), root's, which it can neither write
#    (raise its limit) nor leave (move itself out);
#  - an instance whose user makes it allocate beyond memory_max is killed
#    by the kernel: its session ends (why=memory_limit, logged, counted),
#    another user's session on the pool goes on, a replacement starts, its
#    cgroups are removed;
#  - an instance whose child allocates beyond memory_max while the instance
#    itself stays small ends whole the same way (v1 has no memory.oom.group:
#    the kernel kills only the child, airlock hears the OOM through
#    cgroup.event_control and kills the rest; before, the session went on
#    without its child, and nothing was said);
#  - a daemon (double fork and setsid()) and a hopper (a daemon whose pid
#    changes every few ms) an instance left die when its session ends;
#  - airlock killed (kill -9): the daemon lives on in its cgroup, which
#    the next start kills and removes before it starts an instance;
#  - max_processes with user: nobody and a cgroup only: an instance's
#    fork bomb stops at its pids.max (EAGAIN), root's; another user's
#    instance still forks, airlock still starts instances;
#  - cgroup v2 (a cgroup2 mount over /sys/fs/cgroup in a mount namespace:
#    the controllers are v1's here, so only the kill is tried there): the
#    daemon dies with its session too;
#  - refused at check and run, naming the path: a parent that does not
#    exist, one airlock cannot write (a read-only mount, as systemd's
#    ProtectControlGroups=yes makes), a v2 parent without the memory or
#    the pids controller, no v1 pids hierarchy; max_processes without uids
#    nor a cgroup; and values out of bounds.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to make cgroups and run instances as nobody"
id nobody >/dev/null 2>&1 || skip "no user nobody"
need unshare setpriv
[ "$(stat -f -c %T /sys/fs/cgroup)" = tmpfs ] && [ -d /sys/fs/cgroup/memory ] && [ -d /sys/fs/cgroup/cpu ] &&
    [ -d /sys/fs/cgroup/pids ] ||
    skip "needs the cgroup v1 memory, cpu and pids hierarchies at /sys/fs/cgroup (this test's host)"
pool_setup
chmod 755 "$T" # the instances pass through to their directories
NOBODY=$(id -u nobody)

OWNM=$(cg_own memory)
OWNC=$(cg_own cpu)
OWNP=$(cg_own pids)
OWNF=$(cg_own freezer)
[ -d "$OWNM" ] && [ -d "$OWNC" ] && [ -d "$OWNP" ] || fail "no cgroup directories $OWNM $OWNC $OWNP"
at_exit "cg_clean '$OWNM' '$OWNC' '$OWNP' '$OWNF'"

pool_conf "$CONF" "$P0" --state-wait 0 <<EOF
    user: nobody
    min_idle: 1
    max_idle: 2
    max: 3
    memory_max: 64MiB
    cpu_max: 0.5
EOF
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1

log "each instance in cgroups of its own, with its limits, root's"
PA=$(assign_port dave)
[ "$(app "$PA" "login dave")" = NOSTATE ] || fail "dave's login"
PB=$(assign_port erin) # a pool without provisioning replaces an instance at its login
[ "$(app "$PB" "login erin")" = NOSTATE ] || fail "erin's login"
wait_log "$LOG" "login user=erin"
A=$(pid_of_port "$PA")
B=$(pid_of_port "$PB")
NAMEA=$(basename "$(readlink "/proc/$A/cwd")")
NAMEB=$(basename "$(readlink "/proc/$B/cwd")")
[ "$(stat -c %u "/proc/$A")" = "$NOBODY" ] || fail "A runs as $(stat -c %u "/proc/$A")"
CGA=$OWNM/airlock-$NAMEA
CPA=$OWNC/airlock-$NAMEA
PPA=$OWNP/airlock-$NAMEA
CGB=$OWNM/airlock-$NAMEB
[ "$(cat "$CGA/memory.limit_in_bytes")" = $((64 << 20)) ] || fail "A's memory limit: $(cat "$CGA/memory.limit_in_bytes")"
[ "$(cat "$CPA/cpu.cfs_quota_us") $(cat "$CPA/cpu.cfs_period_us")" = "50000 100000" ] ||
    fail "A's cpu quota: $(cat "$CPA/cpu.cfs_quota_us") $(cat "$CPA/cpu.cfs_period_us")"
[ "$(cat "$PPA/pids.max")" = 1024 ] || fail "A's pids limit (max_processes' default): $(cat "$PPA/pids.max")"
grep -qx "$A" "$CGA/cgroup.procs" && grep -qx "$A" "$CPA/cgroup.procs" && grep -qx "$A" "$PPA/cgroup.procs" ||
    fail "A is not in its cgroups"
grep -qx "$B" "$CGB/cgroup.procs" || fail "B is not in its cgroup"
[ "$(stat -c '%u %a' "$CGA")" = "0 755" ] || fail "A's cgroup: $(stat -c '%u %a' "$CGA")"

log "the instance cannot raise its limit, nor leave its cgroup"
for f in "$CGA/memory.limit_in_bytes" "$CGA/memory.memsw.limit_in_bytes" "$CPA/cpu.cfs_quota_us" \
    "$PPA/pids.max" "$OWNM/cgroup.procs" "$OWNC/cgroup.procs" "$OWNP/cgroup.procs" "$CGA/cgroup.procs"; do
    got=$(app "$PA" "sh (echo -1 >$f) 2>&1 && echo written")
    [[ $got == *"Permission denied"* ]] || fail "the instance wrote $f: $got"
done
got=$(app "$PA" "sh mkdir $CGA/sub 2>&1 && echo made")
[[ $got == *"Permission denied"* ]] || fail "the instance made a cgroup in its own: $got"
[ "$(cat "$CGA/memory.limit_in_bytes")" = $((64 << 20)) ] || fail "A's limit changed"
grep -qx "$A" "$CGA/cgroup.procs" || fail "A left its cgroup"

# memory_killed NAME N: instance NAME ended at memory_max (one process
# killed by the kernel), logged and counted: the N-th of the pool
memory_killed() {
    wait_log "$LOG" "instance=$1 stopped why=memory_limit"
    grep -q "instance=$1: killed by its memory limit memory_max=$((64 << 20)) oom_kills=1" "$LOG" ||
        fail "no line saying why: $(grep "instance=$1" "$LOG" | tail -5)"
    metric_is airlock_pool_memory_kills_total 'pool="fa"' "$2" ||
        fail "memory_kills: $(metric airlock_pool_memory_kills_total 'pool="fa"' "$MPORT")"
}

log "A allocates beyond memory_max: the kernel kills it, its session ends, the pool goes on"
STARTS=$(grep -c " starting pid=" "$LOG")
got=$(app "$PA" "alloc 256" 30)
[ -z "$got" ] || fail "A allocated 256 MiB with memory_max 64MiB: $got"
memory_killed "$NAMEA" 1
wait_for cg_gone "$CGA"
wait_for cg_gone "$CPA"
wait_for cg_gone "$PPA"
running "$A" && fail "A is still running"
wait_for settled 2
[ "$(grep -c " starting pid=" "$LOG")" -gt "$STARTS" ] || fail "no replacement started"
[ "$(app "$PB" "save erin-was-here")" = OK ] || fail "erin's session did not go on"
running "$B" || fail "B died with A"

log "a child of D allocates beyond memory_max, D itself stays small: the whole instance ends (v1: no memory.oom.group)"
PD=$(assign_port grace)
[ "$(app "$PD" "login grace")" = NOSTATE ] || fail "grace's login"
D=$(pid_of_port "$PD")
NAMED=$(basename "$(readlink "/proc/$D/cwd")")
CGD=$OWNM/airlock-$NAMED
# the kernel kills the largest process of the cgroup: dd, with its 256 MiB buffer
app "$PD" "sh dd if=/dev/zero of=/dev/null bs=256M count=1 2>&1 | tail -1" 30 >/dev/null
memory_killed "$NAMED" 2
wait_for eval '! running "$D"'
wait_for cg_gone "$CGD"
[ "$(app "$PB" "save erin-was-here")" = OK ] || fail "erin's session did not go on"
wait_for settled 2

log "B's daemons die with B's session (one uid for all: only the cgroup tells them apart)"
D=$(app "$PB" daemon)
running "$D" || fail "no daemon"
[ "$(ps -o sid= -p "$D" | tr -d ' ')" != "$B" ] || fail "the daemon did not leave B's session"
[ "$(app "$PB" hopper)" = OK ] || fail "no hopper"
[ "$(wc -l <"$CGB/cgroup.procs")" -ge 3 ] || fail "B and its daemons: $(cat "$CGB/cgroup.procs")"
[ "$(app "$PB" logout)" = BYE ] || fail "logout"
wait_log "$LOG" "instance=$NAMEB stopped why=logout"
running "$D" && fail "B's daemon outlived its session"
cg_gone "$CGB" || fail "B's cgroup is left: $(cat "$CGB/cgroup.procs")"

log "the next user's instance, within its limit"
PC=$(assign_port frank)
[ "$(app "$PC" "login frank")" = NOSTATE ] || fail "frank's login"
C=$(pid_of_port "$PC")
NAMEC=$(basename "$(readlink "/proc/$C/cwd")")
[ "$(app "$PC" "alloc 16")" = OK ] || fail "frank cannot allocate 16 MiB under memory_max 64MiB"

log "airlock killed: the daemon lives on in its cgroup until the next start removes it"
D=$(app "$PC" daemon)
running "$D" || fail "no daemon of C"
kill -9 "$AL"
wait_exit "$AL" || true
wait_for eval '! running "$C"' # PR_SET_PDEATHSIG
running "$D" || fail "the daemon died with airlock (nothing to test)"
grep -qx "$D" "$OWNM/airlock-$NAMEC/cgroup.procs" || fail "the daemon is not in C's cgroup"
mv "$LOG" "$T/al-killed.log"
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_log "$LOG" "pool=fa: removed [0-9]* cgroups left by an earlier airlock"
wait_for eval '! running "$D"'
cg_gone "$OWNM/airlock-$NAMEC" || fail "C's cgroup is left"
cg_gone "$OWNC/airlock-$NAMEC" || fail "C's cpu cgroup is left"
! grep -q "cannot remove" "$LOG" || fail "$(grep "cannot remove" "$LOG")"
# the sweep ran before the first start (its line comes first)
[ "$(grep -n "removed [0-9]* cgroups left" "$LOG" | cut -d: -f1)" -lt "$(grep -n " starting pid=" "$LOG" | head -1 | cut -d: -f1)" ] ||
    fail "an instance started before the sweep ended"
wait_for settled 1

log "a reload's limits apply to the instances started from then on"
P=$(idle_port "$LOG")
OLD=$(basename "$(readlink "/proc/$(pid_of_port "$P")/cwd")")
sed -i 's/^    memory_max: 64MiB$/    memory_max: 96MiB/; s/^    cpu_max: 0.5$/    cpu_max: 1.25/' "$CONF"
kill -HUP "$AL"
wait_log "$LOG" "pool=fa reconfigured"
P=$(assign_port dave)
[ "$(app "$P" "login dave")" = NOSTATE ] || fail "dave's login after the reload"
wait_log "$LOG" "instance=$OLD login user=dave" # idle_port no longer names it
[ "$(cat "$OWNM/airlock-$OLD/memory.limit_in_bytes")" = $((64 << 20)) ] || fail "the running instance's limit changed"
wait_for eval '[ -n "$(idle_port "$LOG")" ]'
NEW=$(basename "$(readlink "/proc/$(pid_of_port "$(idle_port "$LOG")")/cwd")")
[ "$(cat "$OWNM/airlock-$NEW/memory.limit_in_bytes")" = $((96 << 20)) ] || fail "the new instance's limit: $(cat "$OWNM/airlock-$NEW/memory.limit_in_bytes")"
[ "$(cat "$OWNC/airlock-$NEW/cpu.cfs_quota_us")" = 125000 ] || fail "the new instance's cpu quota: $(cat "$OWNC/airlock-$NEW/cpu.cfs_quota_us")"
stop_clean "$AL" al
for c in "$OWNM"/airlock-fa-* "$OWNC"/airlock-fa-* "$OWNP"/airlock-fa-* "$OWNF"/airlock-fa-*; do
    [ ! -d "$c" ] || fail "a cgroup outlived airlock: $c"
done

log "max_processes, one user for all (no RLIMIT_NPROC per instance): a fork bomb stops at its cgroup's pids.max"
pool_conf "$CONF" "$P0" --state-wait 0 <<EOF
    user: nobody
    min_idle: 1
    max: 3
    cgroup: own
    max_processes: 16
EOF
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1
PA=$(assign_port dave)
[ "$(app "$PA" "login dave")" = NOSTATE ] || fail "dave's login"
A=$(pid_of_port "$PA")
NAMEA=$(basename "$(readlink "/proc/$A/cwd")")
PPA=$OWNP/airlock-$NAMEA
[ "$(cat "$PPA/pids.max")" = 16 ] || fail "A's pids limit: $(cat "$PPA/pids.max")"
[ "$(stat -c '%u %a' "$PPA/pids.max")" = "0 644" ] || fail "A's pids.max: $(stat -c '%u %a' "$PPA/pids.max")"
grep -qx "$A" "$PPA/cgroup.procs" || fail "A is not in its pids cgroup"
got=$(app "$PA" "sh (echo max >$PPA/pids.max) 2>&1 && echo written")
[[ $got == *"Permission denied"* ]] || fail "the instance raised its pids.max: $got"
wait_for settled 1 # A's replacement
STARTS=$(grep -c " starting pid=" "$LOG")
FORKED=$(app "$PA" "procs 40")
[[ $FORKED == "OK "* ]] && [ "${FORKED#OK }" -lt 16 ] || fail "A, with max_processes 16, forked: $FORKED"
[ "$(cat "$PPA/pids.current")" -le 16 ] || fail "A's cgroup holds $(cat "$PPA/pids.current") processes"
PB=$(assign_port erin) # while A's cgroup is full: airlock starts erin's replacement
[ "$(app "$PB" "login erin")" = NOSTATE ] || fail "erin's login beside the fork bomb"
[ "$(app "$PB" "procs 4")" = "OK 4" ] || fail "erin's instance cannot fork beside the fork bomb"
wait_for eval '[ "$(grep -c " starting pid=" "$LOG")" -gt "$STARTS" ]'
wait_for settled 1
[ "$(app "$PA" logout)" = BYE ] || fail "A's logout"
wait_log "$LOG" "instance=$NAMEA stopped why=logout"
wait_for cg_gone "$PPA"
stop_clean "$AL" al

log "cgroup v2 (a cgroup2 mount in a mount namespace): the daemon dies with its session"
V2=/sys/fs/cgroup/unified
if [ "$(stat -f -c %T "$V2" 2>/dev/null)" != cgroup2fs ]; then
    log "no cgroup2 hierarchy at $V2: not tried"
else
    PARENT=t_pool_limits-$$
    mkdir "$V2/$PARENT"
    at_exit "cg_clean '$V2/$PARENT'; rmdir '$V2/$PARENT'"
    pool_conf "$CONF" "$P0" --state-wait 0 <<EOF
    user: nobody
    min_idle: 1
    max: 2
    cgroup: /$PARENT
    max_processes: 0
EOF
    : >"$LOG"
    start al unshare -m sh -c 'mount -t cgroup2 none /sys/fs/cgroup && exec "$@"' _ "$AIRLOCK" run -c "$CONF"
    AL=$LAST_PID
    wait_log "$LOG" 'airlock running' 10 "$AL"
    wait_for settled 1
    P=$(assign_port dave)
    [ "$(app "$P" "login dave")" = NOSTATE ] || fail "v2: login"
    I=$(pid_of_port "$P")
    NAME=$(basename "$(readlink "/proc/$I/cwd")")
    grep -qx "$I" "$V2/$PARENT/airlock-$NAME/cgroup.procs" || fail "v2: the instance is not in its cgroup"
    D=$(app "$P" daemon)
    running "$D" || fail "v2: no daemon"
    [ "$(app "$P" hopper)" = OK ] || fail "v2: no hopper"
    [ "$(app "$P" logout)" = BYE ] || fail "v2: logout"
    wait_log "$LOG" "instance=$NAME stopped why=logout"
    running "$D" && fail "v2: the daemon outlived its session"
    cg_gone "$V2/$PARENT/airlock-$NAME" || fail "v2: the cgroup is left: $(cat "$V2/$PARENT/airlock-$NAME/cgroup.procs")"
    stop_clean "$AL" al
    [ -z "$(ls -d "$V2/$PARENT"/airlock-* 2>/dev/null)" ] || fail "v2: cgroups outlived airlock: $(ls "$V2/$PARENT")"

    log "v2 without the memory controller: memory_max refused"
    sed -i "s|    cgroup: /$PARENT|    cgroup: /$PARENT\n    memory_max: 64MiB|" "$CONF"
    out=$(unshare -m sh -c 'mount -t cgroup2 none /sys/fs/cgroup && exec "$@"' _ "$AIRLOCK" check -c "$CONF" 2>&1) &&
        fail "v2: memory_max without the memory controller accepted: $out"
    [[ $out == *"pools[0].memory_max: /sys/fs/cgroup/$PARENT offers no memory controller"* ]] ||
        fail "v2: $out"

    log "v2 without the pids controller: max_processes (its default too) refused"
    sed -i '/^    memory_max: 64MiB$/d; /^    max_processes: 0$/d' "$CONF"
    out=$(unshare -m sh -c 'mount -t cgroup2 none /sys/fs/cgroup && exec "$@"' _ "$AIRLOCK" check -c "$CONF" 2>&1) &&
        fail "v2: max_processes without the pids controller accepted: $out"
    [[ $out == *"pools[0].max_processes: /sys/fs/cgroup/$PARENT offers no pids controller"* ]] ||
        fail "v2: $out"
fi

log "refused: a parent that does not exist, one airlock cannot write; bad values"
pool_conf "$CONF" "$P0" <<EOF
    user: nobody
    cgroup: /t_pool_limits-missing-$$
EOF
out=$("$AIRLOCK" check -c "$CONF" 2>&1) && fail "a missing parent accepted: $out"
[[ $out == *"pools[0].cgroup: /sys/fs/cgroup/pids/t_pool_limits-missing-$$: No such file or directory"* ]] ||
    fail "missing: $out"
out=$("$AIRLOCK" run -c "$CONF" 2>&1) && fail "run started with a missing parent: $out"
[[ $out == *"t_pool_limits-missing-$$: No such file or directory"* ]] || fail "run, missing: $out"
pool_conf "$CONF" "$P0" <<EOF
    user: nobody
    memory_max: 64MiB
EOF
"$AIRLOCK" check -c "$CONF" >/dev/null || fail "own cgroup refused: $("$AIRLOCK" check -c "$CONF" 2>&1)"
ro() { unshare -m sh -c 'mount -o remount,bind,ro "$1" && shift && exec "$@"' _ /sys/fs/cgroup/memory "$@"; }
out=$(ro "$AIRLOCK" check -c "$CONF" 2>&1) && fail "a read-only cgroup accepted: $out"
[[ $out == *"pools[0].cgroup: cannot make a cgroup in $OWNM: Read-only file system"* ]] || fail "read-only: $out"
out=$(ro "$AIRLOCK" run -c "$CONF" 2>&1) && fail "run started on a read-only cgroup: $out"
[[ $out == *"cannot make a cgroup in $OWNM: Read-only file system"* ]] || fail "run, read-only: $out"
log "refused: no v1 pids hierarchy with max_processes; max_processes without uids nor a cgroup"
pool_conf "$CONF" "$P0" <<EOF
    user: nobody
    cgroup: own
    max_processes: 16
EOF
out=$(unshare -m sh -c 'umount /sys/fs/cgroup/pids && exec "$@"' _ "$AIRLOCK" check -c "$CONF" 2>&1) &&
    fail "max_processes without a pids hierarchy accepted: $out"
[[ $out == *"pools[0].max_processes: no cgroup v1 hierarchy with the controller pids is mounted"* ]] ||
    fail "no pids hierarchy: $out"
sed -i '/^    cgroup: own$/d' "$CONF"
out=$("$AIRLOCK" check -c "$CONF" 2>&1) && fail "max_processes with user and no cgroup accepted: $out"
[[ $out == *"pools[0].max_processes: applies with uids (a limit per instance's uid) or a cgroup per instance"* ]] ||
    fail "max_processes alone: $out"
for bad in "memory_max: 12" "memory_max: 2TiB" "cpu_max: 0.001" "cpu_max: 1025" "cpu_max: 0" "cpu_max: 1.5.0" \
    "cgroup: relative/path" "cgroup: /a/../b" "cgroup: //a"; do
    pool_conf "$CONF" "$P0" <<EOF
    $bad
EOF
    out=$("$AIRLOCK" check -c "$CONF" 2>&1) && fail "accepted: $bad"
    [[ $out == *"pools[0].${bad%%:*}: expected"* ]] || fail "$bad: $out"
done
log "ok"
