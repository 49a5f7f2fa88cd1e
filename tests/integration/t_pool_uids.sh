#!/bin/bash
# t_pool_uids: one uid per instance (uids:), against instances taken over by
# their users.
#  - a process left running as a uid of the range (by an airlock that was
#    killed) dies when that uid is handed to an instance;
#  - two instances run as two uids, the lowest of the range (every thread of
#    airlock stays root); A can neither
#    read B's state, nor open /proc/B/mem, nor signal B; what A leaves in
#    /tmp, /var/tmp, /dev/shm, /run/lock (and in another's directory there
#    that A may write in: a root-owned 1777 one), SysV shared memory and its
#    user keyring is removed before its uid serves anyone again; a POSIX
#    message queue too where /dev/mqueue is mounted, and where it is not
#    (nothing would find the queue) A can make none; a setuid copy of a
#    program that A leaves gives B (or anyone the pool runs) nothing: it
#    runs as B (no_new_privs);
#  - an instance forks at most max_processes - 1 more processes (a fork
#    bomb stops there: RLIMIT_NPROC of its uid);
#  - an instance that takes away the reaper's right to clear its keyring
#    (its own user keyring made read-only) costs its uid: it serves no one
#    again;
#  - what an instance started outside its process group and session (a
#    double fork + setsid() daemon, a daemon whose pid changes every few
#    ms) dies when its session ends: at logout, at a crash, and when airlock
#    stops (here past its drain deadline, the instances ignoring SIGTERM):
#    no process of any uid of the range outlives airlock.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run instances as other uids"
need setpriv
pool_setup
chmod 755 "$T" # the instances pass through to their directories
mkdir -p "$T/store"
echo "state-of-dave" >"$T/store/dave.db"
echo "state-of-erin" >"$T/store/erin.db"
U0=$(free_uids 4)
U3=$((U0 + 3))
pool_conf "$CONF" "$P0" --ignore-term <<EOF
    min_idle: 2
    max: 3
    uids: $U0-$U3
    max_processes: 20
    stop_grace: 30s
    provision:
      command: [sh, -c, 'cp "\$1" "\$2.t" && chown "\$3:\$4" "\$2.t" && mv "\$2.t" "\$2"',
                p, "$T/store/{user}.db", "{dir}/{user}.db", "{uid}", "{gid}"]
EOF
sed -i 's/^drain_timeout: .*/drain_timeout: 2s/' "$CONF"

log "a leftover process of uid $U0 dies when an instance gets that uid"
start leftover setpriv --reuid="$U0" --regid="$U0" --clear-groups sleep 1000
LEFT=$LAST_PID
wait_for eval '[ "$(stat -c %u "/proc/$LEFT" 2>/dev/null)" = "$U0" ]'
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 2
wait_for eval '! running "$LEFT"'

pid_on() { ss -Htlnp "sport = :$1" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1; }

log "two instances, two uids of the range"
PA=$(assign_port dave)
PB=$(assign_port erin)
A=$(pid_on "$PA")
B=$(pid_on "$PB")
UA=$(stat -c %u "/proc/$A")
UB=$(stat -c %u "/proc/$B")
[ "$(printf '%s\n' "$UA" "$UB" | sort -n | tr '\n' ' ')" = "$U0 $((U0 + 1)) " ] ||
    fail "instances as $UA and $UB, not $U0 and $((U0 + 1)): $(ps -o pid,uid,cmd --ppid "$AL")"
[ "$(app "$PA" id)" = "$UA $UA" ] && [ "$(app "$PB" id)" = "$UB $UB" ] || fail "ids: $(app "$PA" id), $(app "$PB" id)"
# an instance is started sharing airlock's memory until its exec: its switch
# of uid must be its own, not every thread's of airlock
for t in /proc/"$AL"/task/*; do
    awk '/^(Uid|Gid):/ { if ($2 || $3 || $4 || $5) bad = 1 } END { exit bad }' "$t/status" ||
        fail "airlock's thread $(basename "$t") changed ids: $(grep -E '^(Uid|Gid):' "$t/status")"
done
DIRB=$(readlink "/proc/$B/cwd")
NAMEA=$(basename "$(readlink "/proc/$A/cwd")")
[ "$(stat -c '%u %a' "$DIRB")" = "$UB 700" ] || fail "B's directory: $(stat -c '%u %a' "$DIRB")"
[ "$(app "$PA" "login dave")" = "OK state-of-dave" ] || fail "dave not served"
[ "$(app "$PB" "login erin")" = "OK state-of-erin" ] || fail "erin not served"

log "A cannot reach B: its state, its memory, its signals"
[[ $(app "$PA" "read $DIRB/erin.db") == "ERR Permission denied" ]] || fail "A reads B's state: $(app "$PA" "read $DIRB/erin.db")"
[[ $(app "$PA" "read $T/store/erin.db") == OK* ]] || fail "the test's store should be readable"
[[ $(app "$PA" "open /proc/$B/mem") == ERR* ]] || fail "A opens /proc/B/mem"
[[ $(app "$PA" "open /proc/$B/environ") == ERR* ]] || fail "A opens /proc/B/environ"
[[ $(app "$PA" "signal $B") == "ERR Operation not permitted" ]] || fail "A signals B: $(app "$PA" "signal $B")"
[[ $(app "$PA" "signal $A") == OK ]] || fail "A cannot even signal itself"

log "what A leaves outside its directory (/tmp, /var/tmp, /dev/shm, /run/lock, SysV IPC, keys, message queues) goes before its uid is used again"
SHARED="/tmp /var/tmp /dev/shm"
[ -d /run/lock ] && [ "$(stat -c %a /run/lock)" = 1777 ] && SHARED="$SHARED /run/lock"
STICKY=/tmp/t_pool_uids-sticky-$$ # like /tmp/.X11-unix: root's, everyone's to write in
mkdir -m 1777 "$STICKY"
at_exit "rm -rf '$STICKY'"
SHARED="$SHARED $STICKY"
for d in $SHARED; do
    [ "$(app "$PA" "write $d/t_pool_uids-$$ dave-was-here")" = OK ] || fail "A cannot write in $d"
    [ "$(stat -c %u "$d/t_pool_uids-$$")" = "$UA" ] || fail "$d/t_pool_uids-$$ is not A's"
done
# a setuid copy of a program made by A would run as A for whoever runs it:
# for B now, and for B against A's uid's next user
SUID=$STICKY/t_pool_uids-suid-$$
[ "$(app "$PA" "sh cp /usr/bin/id $SUID && chmod 4755 $SUID && echo made")" = "OK made" ] ||
    fail "A cannot copy a program"
[ "$(stat -c '%u %a' "$SUID")" = "$UA 4755" ] || fail "A's copy: $(stat -c '%u %a' "$SUID")"
if findmnt -n -o OPTIONS -T "$STICKY" | grep -qw nosuid; then
    log "$STICKY is on a nosuid mount: the setuid bit is not tried"
else
    got=$(app "$PB" "sh $SUID -u")
    [ "$got" = "OK $UB" ] || fail "B ran A's setuid program as '$got', not as its own uid $UB"
fi
SHM=$(app "$PA" shm)
[[ $SHM == "OK "* ]] || fail "A cannot make a shared memory segment: $SHM"
SHM=${SHM#OK }
awk -v id="$SHM" '$2 == id' /proc/sysvipc/shm | has . || fail "no segment $SHM"
[ "$(app "$PA" "key t_pool_uids dave-key")" = OK ] || fail "A cannot add a key"
[ "$(app "$PA" keys)" = "OK 1" ] || fail "A's user keyring: $(app "$PA" keys)"
MQ=$(app "$PA" "mq t_pool_uids-$$")
if [ "$(stat -f -c %T /dev/mqueue 2>/dev/null)" = mqueue ]; then
    [ "$MQ" = OK ] && [ -e "/dev/mqueue/t_pool_uids-$$" ] || fail "A cannot make a message queue: $MQ"
else
    # nothing lists the queues without /dev/mqueue: A gets none
    [ "$MQ" = "ERR Too many open files" ] || fail "A made a message queue nothing can wipe: $MQ"
fi
# the keys in uid $1's user keyring, read as that uid
uid_keys() {
    setpriv --reuid="$1" --regid="$1" --clear-groups /usr/bin/python3 -c '
import ctypes, platform
nr = {"x86_64": 250, "aarch64": 219}[platform.machine()]  # keyctl(2)
n = ctypes.CDLL(None, use_errno=True).syscall(nr, 11, -4, None, 0)  # KEYCTL_READ, @u
print(n // 4 if n >= 0 else "ERR %d" % ctypes.get_errno())'
}

log "logout: A's daemons die with its session"
D=$(app "$PA" daemon)
running "$D" || fail "no daemon"
[ "$(ps -o sid= -p "$D" | tr -d ' ')" != "$A" ] || fail "the daemon did not leave A's session"
[ "$(app "$PA" hopper)" = OK ] || fail "no hopper"
[ "$(uid_procs "$UA" | wc -l)" -ge 2 ] || fail "A and its daemon: $(uid_procs "$UA")"
LINES=$(wc -l <"$LOG")
[ "$(app "$PA" logout)" = BYE ] || fail "logout"
wait_for eval '! running "$D"'
# (once wiped, uid $UA may serve a fresh instance: it is none of A's)
wait_for eval '[ -z "$(uid_procs "$UA" | grep -vxF -f <(started_since "$LINES"))" ]'
wait_log "$LOG" "instance=$NAMEA wiped"
[ ! -e "$SUID" ] || fail "A's setuid program outlived its session"
for d in $SHARED; do
    [ ! -e "$d/t_pool_uids-$$" ] || { rm -f "$d/t_pool_uids-$$"; fail "$d/t_pool_uids-$$ of uid $UA outlived its session"; }
done
! awk -v id="$SHM" '$2 == id' /proc/sysvipc/shm | has . || { ipcrm -m "$SHM"; fail "segment $SHM of uid $UA outlived its session"; }
[ ! -e "/dev/mqueue/t_pool_uids-$$" ] || { rm -f "/dev/mqueue/t_pool_uids-$$"; fail "message queue of uid $UA outlived its session"; }
[ "$(uid_keys "$UA")" = 0 ] || fail "uid $UA's user keyring outlived its session: $(uid_keys "$UA") keys"

log "crash: B's daemon dies too; B forks up to max_processes; B's keyring, locked, cannot be cleared: its uid is not used again"
D=$(app "$PB" daemon)
running "$D" || fail "no daemon of B"
[ "$(app "$PB" "key t_pool_uids erin-key")" = OK ] || fail "B cannot add a key"
[ "$(app "$PB" keylock)" = OK ] || fail "B cannot lock its keyring"
FORKED=$(app "$PB" "procs 40")
[[ $FORKED == "OK "* ]] && [ "${FORKED#OK }" -lt 20 ] || fail "B, with max_processes 20, forked: $FORKED"
[ "$(uid_procs "$UB" | wc -l)" = 20 ] || fail "uid $UB runs $(uid_procs "$UB" | wc -l) processes, not max_processes (20)"
app "$PB" crash >/dev/null || true
wait_for eval '! running "$D"'
wait_for eval '[ -z "$(uid_procs "$UB")" ]'
wait_log "$LOG" "uid=$UB: no process left, but keys or SysV IPC objects of the uid are; the uid is not used again"
for i in $(seq 4); do # fresh instances take the lowest free uid, never $UB
    wait_for settled 2
    [ -z "$(uid_procs "$UB")" ] || fail "uid $UB, with keys left, serves again"
    P=$(idle_port "$LOG")
    N=$(basename "$(readlink "/proc/$(pid_on "$P")/cwd")")
    [ "$(app "$P" logout)" = BYE ] || fail "logout"
    wait_log "$LOG" "instance=$N exited" # idle_port no longer names it
done
wait_for settled 2

log "airlock stops (instances ignore SIGTERM; drain deadline): no process of the range is left"
wait_for eval '[ -n "$(idle_port "$LOG")" ]'
P=$(idle_port "$LOG")
D=$(app "$P" daemon)
running "$D" || fail "no daemon"
[ "$(app "$P" hopper)" = OK ] || fail "no hopper"
stop_clean "$AL" al
grep -q "drain deadline reached: killing" "$LOG" || fail "the instances did not wait for the deadline"
running "$D" && fail "a daemon outlived airlock"
for ((u = U0; u <= U3; u++)); do
    [ -z "$(uid_procs "$u")" ] || fail "processes of uid $u outlived airlock: $(ps -o pid,uid,cmd -p "$(uid_procs "$u" | tr '\n' ',')0")"
done
[ -z "$(ls -A "$T/inst")" ] || fail "left in $T/inst: $(ls -A "$T/inst")"
log "ok"
