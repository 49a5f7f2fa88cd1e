#!/bin/bash
# t_pool_leftovers: airlock killed (kill -9) with a session running leaves,
# as the session's uid, what its instance started outside its process
# group: a daemon (double fork + setsid()), and a thread waiting
# uninterruptibly (here for a FUSE server of the test's, as root, that read
# its question and does not answer), which outlives SIGKILL, and files in
# /tmp, /var/tmp and /dev/shm, which a session's end would wipe. The next
# airlock on the same config reaps a uid (kills every process of it and
# waits until none is left, as at a session's end) before it gives the uid
# to an instance: the daemon dies first, and the uid whose thread lives on
# serves nobody while the pool runs on its other uid; once the thread is
# gone, the files go too, and the uid serves again. Before, the child killed the leftovers of its
# uid (kill(-1, SIGKILL)) and went on at once: the new instance served the
# next user as that uid with the thread of the killed session still there.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run instances as other uids and mount FUSE"
pool_one_uid
U1=$((U0 + 1))
fuse_stuck_up
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1

# the uid of the instance idle on a port now
idle_uid() { stat -c %u "/proc/$(pid_of_port "$(idle_port "$LOG")")"; }

log "dave's session as uid $U0 leaves a daemon and a thread waiting for the FUSE server"
P=$(assign_port dave)
[ "$(app "$P" "login dave")" = NOSTATE ] || fail "dave's login"
A=$(pid_of_port "$P")
[ "$(stat -c %u "/proc/$A")" = "$U0" ] || fail "the instance runs as $(stat -c %u "/proc/$A"), not $U0"
# and files where every uid may write, which a session's end wipes
LEFT="/tmp/airlock-left-$$ /dev/shm/airlock-left-$$ /var/tmp/airlock-left-$$"
[ "$(app "$P" "sh for f in $LEFT; do mkdir \$f && echo dave > \$f/secret || exit; done; echo made")" = "OK made" ] ||
    fail "dave's files"
for f in $LEFT; do [ "$(stat -c %u "$f/secret")" = "$U0" ] || fail "$f/secret is not dave's uid's"; done
D=$(app "$P" daemon)
running "$D" || fail "no daemon"
# (without the instance's sockets: one on its port would get the next
# instance of the uid stopped for holding a port not its own, why=took_port)
[ "$(app "$P" "sh $STUCK --ask $MNT >/dev/null 2>&1 3<&- 4<&- 5<&- 6<&- 7<&- 8<&- 9<&- & echo asking")" = "OK asking" ] ||
    fail "sh"
wait_log "$T/fuse.log" "^OK$"
wait_for eval '[ -n "$(uid_zombie_leaders "$U0")" ]'
Z=$(uid_zombie_leaders "$U0")

log "airlock killed: the instance dies with it, the daemon and the waiting thread do not"
kill -9 "$AL"
wait_exit "$AL" || true
wait_for eval '! running "$A"' # PR_SET_PDEATHSIG
running "$D" || fail "the daemon died with airlock (nothing to test)"
running "$Z" || fail "the waiting thread died with airlock (nothing to test)"
mv "$LOG" "$T/al-killed.log"

log "the next airlock: the daemon dies, uid $U0 serves nobody while its thread lives, uid $U1 does"
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for eval '! running "$D"'
wait_for settled 1
[ "$(idle_uid)" = "$U1" ] ||
    fail "an instance serves as uid $(idle_uid) while a thread of the killed session runs as $U0: $(uid_procs "$U0")"
running "$Z" || fail "the thread is gone (nothing tested)"
wait_log "$LOG" "pool=fa uid=$U0: processes left by an earlier airlock after [0-9]* ms: killing again"
P=$(assign_port erin)
[ "$(stat -c %u "/proc/$(pid_of_port "$P")")" = "$U1" ] || fail "erin is not served as $U1"
[ "$(app "$P" "login erin")" = NOSTATE ] || fail "erin's login"
[ "$(app "$P" id)" = "$U1 $U1" ] || fail "erin's instance: $(app "$P" id)"
running "$Z" || fail "the thread is gone (nothing tested)"
grep " starting pid=" "$LOG" | while read -r line; do
    pid=$(sed 's/.* starting pid=\([0-9]*\).*/\1/' <<<"$line")
    [ "$(stat -c %u "/proc/$pid" 2>/dev/null)" != "$U0" ] || fail "an instance was started as $U0: $line"
done

log "the FUSE server gone, the thread ends: uid $U0 serves again"
stop "$FUSE" || true # killed: its status is 143
wait_log "$LOG" "pool=fa uid=$U0: the processes left by an earlier airlock are gone"
[ -z "$(uid_procs "$U0")" ] || fail "processes of uid $U0 left: $(uid_procs "$U0")"
[ "$(app "$P" logout)" = BYE ] || fail "erin's logout"
wait_log "$LOG" "instance=.* stopped why=logout"
wait_for settled 1
[ "$(idle_uid)" = "$U0" ] || fail "the instance after erin's runs as $(idle_uid), not $U0"
for f in $LEFT; do [ ! -e "$f" ] || fail "uid $U0 serves again with the killed session's $f there"; done
grep -q "pool=fa uid=$U0: removed 6 entries an earlier airlock's sessions left" "$LOG" ||
    fail "no line of the removal: $(grep "uid=$U0" "$LOG")"
! grep -q "not used again" "$LOG" || fail "$(grep "not used again" "$LOG")"
stop_clean "$AL" al
log "ok"
