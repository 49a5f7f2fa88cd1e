#!/bin/bash
# t_pool_record: airlock killed (kill -9) while its instances have left what
# outlives them: a daemon in an instance's cgroup (pool fa), daemons of
# both instances of pool fb as their own uids and a directory in /tmp, and
# the instance directories. The same config file, changed meanwhile, starts
# the next airlock: pool fa is gone from it, pool fb has moved to another
# directory and its uids begin one higher, and it starts no instance before
# a user comes (min_idle 0). The record of where the pools ran (pool_record)
# has the next start remove all of it where no pool of the config runs now:
# the daemons die, and the cgroup, the directories and the files in /tmp go.
# Before, only a pool of the same name starting again in the same places
# removed them: the daemons lived on for good. And the uid fb still has is
# reaped at the start (its daemon dies), not at its next take, which with
# min_idle 0 may never come.
#  - another airlock (its own config file, so its own record: the default,
#    under /var/lib/airlock) with a pool of the same name fa in another
#    directory loses nothing, its instance and its daemon included;
#  - a second airlock on the same record is refused while the first runs;
#  - afterwards the record lists the places of this run only, and a clean
#    stop removes it.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to make cgroups and run instances as other uids"
[ "$(stat -f -c %T /sys/fs/cgroup)" = tmpfs ] && [ -d /sys/fs/cgroup/memory ] ||
    skip "needs the cgroup v1 memory hierarchy at /sys/fs/cgroup (this test's host)"
pool_setup
chmod 755 "$T" # the instances pass through to their directories
U0=$(free_uids 4)
OWNM=$(cg_own memory)
at_exit "cg_clean '$OWNM' '$(cg_own freezer)'"
at_exit 'kill -9 ${DA:-} ${DB:-} ${DB2:-} ${DZ:-} 2>/dev/null || true'
PB=$(free_range 50)
mkdir -m 700 "$T/rec"
REC=$T/rec/pools.record

# fb_conf DIR UIDS MIN_IDLE: pool fb (instances of uids of their own, no cgroup), on
# stdin's end
fb_conf() {
    cat <<EOF
  - name: fb
    command: [$FAKEAPP, --port, "{port}"]
    endpoint: "tcp:127.0.0.1:{port}"
    ports: $PB-$((PB + 49))
    dir: $1
    uids: $2
    min_idle: $3
    max: 2
    events:
      ready: "^WAITING_LOGIN$"
      login: "^LOGIN (.+)$"
pool_record: $REC
EOF
}
# the port of pool $1's first instance in log $2
port_of() { sed -n "s/.*pool=$1 instance=.* starting pid=[0-9]* port=\([0-9]*\)\$/\1/p" "$2" | head -1; }
# idle_of POOL [N]: POOL has N (1) idle instances
idle_of() { metric_is airlock_pool_instances "pool=\"$1\",state=\"idle\"" "${2:-1}"; }
# the port of pool $1's instance running as uid $2
port_as() {
    local p
    for p in $(sed -n "s/.*pool=$1 instance=.* starting pid=[0-9]* port=\([0-9]*\)\$/\1/p" "$LOG"); do
        [ "$(stat -c %u "/proc/$(pid_of_port "$p")" 2>/dev/null)" = "$2" ] && { echo "$p"; return; }
    done
}

log "another airlock, on its own config file, runs a pool fa of its own"
pool_conf "$T/z.yaml" "$(free_range 50)"
MZ=$(free_port)
sed -i "s|^metrics: .*|metrics: tcp:127.0.0.1:$MZ|; s|^control: .*|control: unix:$T/ctlz.sock|; s|^    dir: .*|    dir: $T/instz|" "$T/z.yaml"
airlock_up alz run -c "$T/z.yaml"
ALZ=$LAST_PID
wait_for eval 'MPORT=$MZ idle_of fa'
# (file by file: other tests' airlocks make and remove theirs meanwhile)
ZREC=
for f in /var/lib/airlock/pools-*.record; do
    ! grep -qx "dir fa $T/instz" "$f" 2>/dev/null || ZREC=$f
done
[ -n "$ZREC" ] || fail "no default record lists fa in $T/instz: $(ls /var/lib/airlock)"
at_exit "rm -f '$ZREC'"
PZ=$(port_of fa "$T/alz.log")
DZ=$(app "$PZ" daemon)
running "$DZ" || fail "no daemon of the other airlock's instance"

log "pool fa (a cgroup each) and pool fb (a uid each), and what their instances leave"
{
    printf '    memory_max: 64MiB\n    min_idle: 1\n    max: 2\n'
    fb_conf "$T/instb" "$U0-$((U0 + 1))" 2
} | pool_conf "$CONF" "$P0"
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for idle_of fa
wait_for idle_of fb 2
grep -qx "dir fa $T/inst" "$REC" || fail "the record does not list fa's directory: $(cat "$REC")"
grep -qx "dir fb $T/instb" "$REC" || fail "the record does not list fb's directory: $(cat "$REC")"
grep -qx "cgroup fa 0 [01] $OWNM" "$REC" || fail "the record does not list fa's cgroups: $(cat "$REC")"
grep -qx "uid $U0" "$REC" || fail "the record does not list uid $U0: $(cat "$REC")"
PA=$(port_of fa "$LOG")
PB1=$(port_as fb "$U0")
PB2=$(port_as fb $((U0 + 1)))
[ -n "$PB1" ] && [ -n "$PB2" ] || fail "no instances of fb as $U0 and $((U0 + 1))"
A=$(pid_of_port "$PA")
B=$(pid_of_port "$PB1")
B2=$(pid_of_port "$PB2")
NAMEA=$(basename "$(readlink "/proc/$A/cwd")")
DA=$(app "$PA" daemon)
DB=$(app "$PB1" daemon)
DB2=$(app "$PB2" daemon)
running "$DA" && running "$DB" && running "$DB2" || fail "no daemons"
grep -qx "$DA" "$OWNM/airlock-$NAMEA/cgroup.procs" || fail "fa's daemon is not in its cgroup"
LEFT=/tmp/airlock-record-$$
[ "$(app "$PB1" "sh mkdir $LEFT && echo secret > $LEFT/f && echo made")" = "OK made" ] || fail "fb's file"
[ "$(stat -c %u "$LEFT/f")" = "$U0" ] || fail "$LEFT/f is not uid $U0's"

log "a second airlock on the same record is refused while the first runs"
sed "s|^metrics: .*|metrics: tcp:127.0.0.1:$(free_port)|; s|^control: .*|control: unix:$T/ctl2.sock|" "$CONF" >"$T/pool2.yaml"
! "$AIRLOCK" run -c "$T/pool2.yaml" >"$T/al2.log" 2>&1 || fail "a second airlock ran on $REC"
grep -q "pool_record: $REC: held by another airlock run from this config" "$T/al2.log" ||
    fail "no reason given: $(cat "$T/al2.log")"

log "airlock killed: its instances die with it, the daemons and the files do not"
kill -9 "$AL"
wait_exit "$AL" || true
wait_for eval '! running "$A" && ! running "$B" && ! running "$B2"' # PR_SET_PDEATHSIG
running "$DA" && running "$DB" && running "$DB2" || fail "a daemon died with airlock (nothing to test)"
mv "$LOG" "$T/al-killed.log"

log "the same file without pool fa, pool fb moved: the next start removes what they left"
# fb's uids now begin at $((U0 + 1)), and it starts no instance before a user comes
fb_conf "$T/instb2" "$((U0 + 1))-$((U0 + 3))" 0 | pool_conf "$CONF" "$P0"
sed -i '/^pools:$/,/^  - name: fb$/{/^pools:$/!{/^  - name: fb$/!d}}' "$CONF"
! grep -q "name: fa" "$CONF" || fail "the config still has pool fa: $(cat "$CONF")"
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for eval '! running "$DA"'
wait_for eval '! running "$DB"'
# uid $((U0 + 1)) is fb's still: reaped at the start, not at its next take (none comes)
wait_for eval '! running "$DB2"'
wait_log "$LOG" "pool=fb uid=$((U0 + 1)): reaped before its first use"
wait_for cg_gone "$OWNM/airlock-$NAMEA"
wait_for test ! -e "$LEFT"
wait_for eval '[ -z "$(ls -A "$T/inst")" ] && [ -z "$(ls -A "$T/instb")" ]'
wait_log "$LOG" "pool record: removed [0-9]* cgroups an earlier airlock left .instances fa-N."
wait_log "$LOG" "pool record: uid $U0: removed [0-9]* entries an earlier airlock's sessions left"
! grep "pool record" "$LOG" | grep -q "cannot\|ignored" || fail "$(grep "pool record" "$LOG")"
metric_is airlock_pool_instances 'pool="fb",state="starting"' 0 && idle_of fb 0 ||
    fail "fb started an instance with min_idle 0"
grep -qx "dir fb $T/instb2" "$REC" || fail "the record does not list fb's new directory: $(cat "$REC")"
! grep -q "^dir fa \|^cgroup \|^dir fb $T/instb\$\|^uid $U0\$" "$REC" ||
    fail "the record still lists the places of the killed airlock: $(cat "$REC")"

log "the other airlock lost nothing"
running "$DZ" || fail "the other airlock's daemon was killed"
[ -n "$(app "$PZ" id)" ] || fail "the other airlock's instance is gone"
[ -n "$(ls -A "$T/instz")" ] || fail "the other airlock's instance directory was wiped"
kill "$DZ"

log "a clean stop leaves nothing to sweep: the records go"
stop_clean "$AL" al
stop_clean "$ALZ" alz
[ ! -e "$REC" ] && [ ! -e "$ZREC" ] || fail "a record stays after a clean stop: $(ls "$REC" "$ZREC" 2>&1)"
log "ok"
