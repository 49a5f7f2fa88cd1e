#!/bin/bash
# t_pool_isolation: what an instance can see.
#  - its fds are 0 (/dev/null), 1 and 2 (one pipe to airlock) and its own
#    listener: none of airlock's sockets (a relay listener, metrics, the
#    signalfd, epoll...) leaks into it, checked in /proc/PID/fd;
#  - it runs as the run-as user (nobody), in its own session and process
#    group, in its own directory (mode 0700, owned by that user), and the
#    provisioned state is handed to that user;
#  - the wipe after logout never follows a symlink the instance planted
#    (the target outside keeps its file), and the group's children die with
#    the instance.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run instances as nobody"
id nobody >/dev/null 2>&1 || skip "no user nobody"
pool_setup
RL=$(free_port)
chmod 755 "$T" # nobody passes through to its instance directory
mkdir -p "$T/outside" "$T/store"
echo precious >"$T/outside/keep"
echo "state-of-dave" >"$T/store/dave.db"
pool_conf "$CONF" "$P0" <<EOF
    min_idle: 1
    max: 2
    user: nobody
    provision:
      command: [sh, -c, 'cp "\$1" "\$2.tmp" && mv "\$2.tmp" "\$2"', p, "$T/store/{user}.db", "{dir}/{user}.db"]
relays:
  - listen: tcp:127.0.0.1:$RL
    target: tcp:127.0.0.1:9
EOF
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1
P=$(idle_port "$LOG")
PID=$(pgrep -P "$AL")
[ "$(echo "$PID" | wc -w)" = 1 ] || fail "expected one instance: $PID"

log "fds of the instance: 0 1 2 and its own listener"
fds=$(ls "/proc/$PID/fd" | sort -n | tr '\n' ' ')
[ "$fds" = "0 1 2 3 " ] || fail "instance fds: $fds ($(ls -l "/proc/$PID/fd"))"
[ "$(readlink "/proc/$PID/fd/0")" = /dev/null ] || fail "stdin is $(readlink "/proc/$PID/fd/0")"
[[ $(readlink "/proc/$PID/fd/1") == pipe:* ]] || fail "stdout is $(readlink "/proc/$PID/fd/1")"
[ "$(readlink "/proc/$PID/fd/1")" = "$(readlink "/proc/$PID/fd/2")" ] || fail "stdout and stderr differ"
inode=$(readlink "/proc/$PID/fd/3")
ss -Htlne "sport = :$P" | grep -q "ino:${inode//[^0-9]/}" || fail "fd 3 ($inode) is not its listener on $P"
for f in /proc/"$AL"/fd/*; do
    l=$(readlink "$f") || continue
    [[ $l == socket:* ]] || continue
    [ "$l" != "$inode" ] || fail "airlock's $l is shared with the instance"
done

log "user, session, process group, directory"
[ "$(stat -c %U "/proc/$PID")" = nobody ] || fail "runs as $(stat -c %U "/proc/$PID")"
read -r pgid sid < <(ps -o pgid=,sid= -p "$PID")
[ "$pgid" = "$PID" ] && [ "$sid" = "$PID" ] || fail "pgid $pgid sid $sid, pid $PID"
cwd=$(readlink "/proc/$PID/cwd")
[[ $cwd == "$T/inst/"* ]] || fail "cwd $cwd"
[ "$(stat -c '%a %U' "$cwd")" = "700 nobody" ] || fail "directory: $(stat -c '%a %U' "$cwd")"
[ "$(app "$P" cwd)" = "$cwd 700" ] || fail "the instance sees: $(app "$P" cwd)"
[ "$(assign_port dave)" = "$P" ] || fail "dave was not reserved the one idle instance"
[ "$(app "$P" "login dave")" = "OK state-of-dave" ] || fail "dave not served"
[ "$(stat -c %U "$cwd/dave.db")" = nobody ] || fail "the state is owned by $(stat -c %U "$cwd/dave.db")"
[ "$(app "$P" "save v2")" = OK ] || fail "the instance cannot write its state"

log "planted symlink and a child: the wipe keeps the target, the child dies"
[ "$(app "$P" "link $T/outside")" = OK ] || fail "link"
CHILD=$(app "$P" child)
running "$CHILD" || fail "no child"
[ "$(app "$P" logout)" = BYE ] || fail "logout"
wait_log "$LOG" "stopped why=logout"
[ ! -e "$cwd" ] || fail "$cwd not wiped"
[ "$(cat "$T/outside/keep")" = precious ] || fail "the wipe followed the symlink"
wait_for test ! -e "/proc/$CHILD/stat"
stop_clean "$AL" al
log "ok"
