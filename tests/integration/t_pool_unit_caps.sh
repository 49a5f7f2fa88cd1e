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
#    first session that made one);
#  - an instance that listens on ports of the range not its own, from a
#    process that made itself non-dumpable (its /proc/PID/fd is root's), is
#    found and stopped (why=took_port, as in t_pool_port_squat with all
#    capabilities): root needs CAP_SYS_PTRACE to read another uid's
#    /proc/PID/fd, and without it airlock found no squatter, ever;
#  - so airlock without CAP_SYS_PTRACE refuses a pool with uids: and
#    ports: (check and run say why), rather than run it with that defense
#    off.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run instances as other uids"
need setpriv python3
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

log "without CAP_SYS_PTRACE a pool with uids: and ports: is refused"
for cmd in check run; do
    # (the timeout only ends an airlock that took it)
    out=$(timeout 30 setpriv --bounding-set "$UNIT_CAPS,-sys_ptrace" -- "$AIRLOCK" $cmd -c "$CONF" 2>&1) &&
        fail "airlock $cmd took the pool without CAP_SYS_PTRACE: $out"
    has "pools\[0\]\.uids: .*CAP_SYS_PTRACE" <<<"$out" || fail "airlock $cmd says: $out"
done

log "an instance that squats ports of the range from a non-dumpable process is stopped"
U1=$(free_uids 3)
pool_conf "$CONF" "$P0" --state-wait 0 <<EOF
    min_idle: 1
    max: 3
    uids: $U1-$((U1 + 2))
EOF
sed -i "s/^    ports: .*/    ports: $P0-$((P0 + 3))/" "$CONF"
rm -f "$LOG"
airlock_caps al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1
PD=$(assign_port dave)
[ "$(app "$PD" "login dave")" = NOSTATE ] || fail "dave not served"
wait_for settled 1
UD=$(app "$PD" "sh id -u")
UD=${UD#OK }
# squat.py PORT...: listens on each free PORT of 127.0.0.1, non-dumpable
cat >"$T/squat.py" <<'PY'
import ctypes, socket, sys, time
ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE
held = []
for p in sys.argv[1:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", int(p)))
        s.listen(1)
        held.append(s)
    except OSError:
        s.close()
time.sleep(600)
PY
chmod 644 "$T/squat.py"
ports=$(seq "$P0" $((P0 + 3)) | tr '\n' ' ')
[ "$(app "$PD" "sh /usr/bin/python3 $T/squat.py $ports >/dev/null 2>&1 & echo squatting")" = "OK squatting" ] ||
    fail "the squatter did not start"
# dave and the idle instance hold a port each; the two others are the squatter's
squatted() {
    local p n=0
    for p in $ports; do
        [ "$p" != "$PD" ] && ss -Htlne "sport = :$p" | has " uid:$UD " && n=$((n + 1))
    done
    [ "$n" = 2 ]
}
wait_for squatted
S=$(pgrep -u "$UD" -f "^/usr/bin/python3 $T/squat.py")
[ "$(stat -c %u "/proc/$S/fd")" = 0 ] || fail "the squatter is dumpable: its /proc/$S/fd is not root's"
# frank takes the idle instance: the pool starts a fresh one, which needs a port
PF=$(assign_port frank)
[ "$(app "$PF" "login frank")" = NOSTATE ] || fail "frank not served"
wait_log "$LOG" "uid=$UD holds port [0-9]+, not its own \(port $PD\): stopped"
wait_log "$LOG" "stopping why=took_port"
wait_for eval '! running "$S"'
wait_for settled 1
stop_clean "$AL" al
log "ok"
