#!/bin/bash
# t_pool_unit_caps: a pool with uids: run by airlock with the capabilities
# dist/airlock.service leaves it (its CapabilityBoundingSet=, read from the
# unit, applied with setpriv), still as root, where the other pool tests
# run it with all of root's:
#  - the SysV shared memory segments, semaphore sets and message queues an
#    instance's uid made (one given away to root, its creator staying the
#    uid) are removed after its session, and the uid serves again: root
#    without CAP_SYS_ADMIN may not remove another uid's objects, so the
#    reaper removes them as the uid (a pool of one uid lost it to the
#    first session that made one).
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run instances as other uids"
need setpriv
pool_setup
chmod 755 "$T" # the instances pass through to their directories

# the unit's bounding set as setpriv takes it: -all,+setuid,+kill,...
UNIT_CAPS=-all$(sed -n 's/^CapabilityBoundingSet=//p' "$ROOT/dist/airlock.service" |
    tr ' ' '\n' | sed -n 's/^CAP_\(.*\)/,+\L\1/p' | tr -d '\n')
[ "$UNIT_CAPS" != -all ] || fail "no CapabilityBoundingSet= in dist/airlock.service"
# airlock_caps NAME ARGS...: airlock_up with the unit's capabilities
airlock_caps() {
    local name=$1
    shift
    start "$name" setpriv --bounding-set "$UNIT_CAPS" -- "$AIRLOCK" "$@"
    wait_log "$T/$name.log" 'airlock running' 10 "$LAST_PID"
}
# sysv_of UID: "TABLE ID" of each SysV object whose owner or creator is UID
sysv_of() {
    local t
    for t in shm sem msg; do
        awk -v t=$t -v u="$1" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i }
            NR > 1 && ($c["uid"] == u || $c["cuid"] == u) { print t, $2 }' /proc/sysvipc/$t
    done
}
# sysv_rm UID: removes them (what a failed run leaves)
sysv_rm() {
    local -A opt=([shm]=-m [sem]=-s [msg]=-q)
    sysv_of "$1" | while read -r t id; do ipcrm "${opt[$t]}" "$id" 2>/dev/null || true; done
}

log "SysV objects of an instance's uid go after its session; the uid serves again"
U0=$(free_uids 1)
at_exit "sysv_rm $U0"
pool_conf "$CONF" "$P0" --state-wait 0 <<EOF
    min_idle: 1
    max: 1
    uids: $U0-$U0
EOF
airlock_caps al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1
P=$(assign_port dave)
[ "$(app "$P" "login dave")" = NOSTATE ] || fail "dave not served"
[ "$(app "$P" "sh id -u")" = "OK $U0" ] || fail "the instance is not uid $U0: $(app "$P" "sh id -u")"
for what in shm sem msg "shm 0"; do
    got=$(app "$P" "$what")
    [[ $got == "OK "* ]] || fail "the instance cannot make a SysV object ($what): $got"
done
[ "$(sysv_of "$U0" | wc -l)" = 4 ] || fail "SysV objects of uid $U0: $(sysv_of "$U0" | tr '\n' ' ')"
NAME=$(basename "$(app "$P" cwd | awk '{ print $1 }')")
[ "$(app "$P" logout)" = BYE ] || fail "logout"
wait_log "$LOG" "instance=$NAME wiped"
kept=$(grep -E "instance=$NAME[: ].*(cannot|not used again)" "$LOG" || true)
[ -z "$kept" ] || fail "uid $U0 was kept: $kept"
[ -z "$(sysv_of "$U0")" ] || fail "SysV objects of uid $U0 outlived its session: $(sysv_of "$U0" | tr '\n' ' ')"
wait_for settled 1
[ -n "$(uid_procs "$U0")" ] || fail "uid $U0 serves no fresh instance"
stop_clean "$AL" al
log "ok"
