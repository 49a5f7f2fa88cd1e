#!/bin/bash
# t_pool_isolation: what an instance can see, with a uid of its own (uids:)
# and with the legacy shared user (user: nobody).
#  - its fds are 0 (/dev/null), 1 and 2 (one pipe to airlock) and its own
#    listener: none of airlock's sockets (a relay listener, metrics, the
#    signalfd, epoll...) leaks into it, checked in /proc/PID/fd;
#  - it runs as its uid (the lowest of the range) or the run-as user, in its
#    own session and process group, in its own directory (mode 0700, owned
#    by it), and the provisioned state is its own: the hook gets {uid} and
#    {gid} and hands the file over before renaming it into place (a file
#    that appeared still owned by root was the flake of this test: the
#    instance read it before airlock's chown after the hook);
#  - what the hook left without handing it over is handed over by airlock;
#  - the wipe after logout never follows a symlink the instance planted
#    (the target outside keeps its file), and the group's children die with
#    the instance.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run instances as other users"
id nobody >/dev/null 2>&1 || skip "no user nobody"
pool_setup
chmod 755 "$T" # the instances pass through to their directories
mkdir -p "$T/outside" "$T/store"
echo precious >"$T/outside/keep"
echo "state-of-dave" >"$T/store/dave.db"

# isolation MODE RUN_AS_YAML UID GID: one airlock, one instance, all the checks.
isolation() {
    local mode=$1 run_as=$2 want_uid=$3 want_gid=$4 RL P PID AL fds inode cwd name CHILD
    RL=$(free_port)
    pool_conf "$CONF" "$P0" <<EOF
    min_idle: 1
    max: 2
    $run_as
    provision:
      command: [sh, -c, 'cp "\$1" "\$2.t" && chown "\$3:\$4" "\$2.t" && mv "\$2.t" "\$2" && echo raw >"\$5"',
                p, "$T/store/{user}.db", "{dir}/{user}.db", "{uid}", "{gid}", "{dir}/raw"]
relays:
  - listen: tcp:127.0.0.1:$RL
    target: tcp:127.0.0.1:9
EOF
    : >"$LOG"
    airlock_up al run -c "$CONF"
    AL=$LAST_PID
    wait_for settled 1
    P=$(idle_port "$LOG")
    PID=$(pgrep -P "$AL")
    [ "$(echo "$PID" | wc -w)" = 1 ] || fail "$mode: expected one instance: $PID"

    log "$mode: fds of the instance: 0 1 2 and its own listener"
    fds=$(ls "/proc/$PID/fd" | sort -n | tr '\n' ' ')
    [ "$fds" = "0 1 2 3 " ] || fail "instance fds: $fds ($(ls -l "/proc/$PID/fd"))"
    [ "$(readlink "/proc/$PID/fd/0")" = /dev/null ] || fail "stdin is $(readlink "/proc/$PID/fd/0")"
    [[ $(readlink "/proc/$PID/fd/1") == pipe:* ]] || fail "stdout is $(readlink "/proc/$PID/fd/1")"
    [ "$(readlink "/proc/$PID/fd/1")" = "$(readlink "/proc/$PID/fd/2")" ] || fail "stdout and stderr differ"
    inode=$(readlink "/proc/$PID/fd/3")
    ss -Htlne "sport = :$P" | has "ino:${inode//[^0-9]/}" || fail "fd 3 ($inode) is not its listener on $P"
    for f in /proc/"$AL"/fd/*; do
        l=$(readlink "$f") || continue
        [[ $l == socket:* ]] || continue
        [ "$l" != "$inode" ] || fail "airlock's $l is shared with the instance"
    done

    log "$mode: user, session, process group, directory"
    [ "$(app "$P" id)" = "$want_uid $want_gid" ] || fail "runs as $(app "$P" id), not $want_uid $want_gid"
    [ "$(awk '/^Groups:/ { print $2 }' "/proc/$PID/status")" = "$want_gid" ] ||
        fail "groups: $(grep ^Groups: "/proc/$PID/status")"
    [ "$(stat -c %u "/proc/$PID")" = "$want_uid" ] || fail "runs as $(stat -c %u "/proc/$PID")"
    read -r pgid sid < <(ps -o pgid=,sid= -p "$PID")
    [ "$pgid" = "$PID" ] && [ "$sid" = "$PID" ] || fail "pgid $pgid sid $sid, pid $PID"
    cwd=$(readlink "/proc/$PID/cwd")
    name=$(basename "$cwd")
    [[ $cwd == "$T/inst/"* ]] || fail "cwd $cwd"
    [ "$(stat -c '%a %u %g' "$cwd")" = "700 $want_uid $want_gid" ] ||
        fail "directory: $(stat -c '%a %u %g' "$cwd")"
    [ "$(app "$P" cwd)" = "$cwd 700" ] || fail "the instance sees: $(app "$P" cwd)"
    [ "$(assign_port dave)" = "$P" ] || fail "$mode: dave was not reserved the one idle instance"
    [ "$(app "$P" "login dave")" = "OK state-of-dave" ] || fail "dave not served"
    [ "$(stat -c %u "$cwd/dave.db")" = "$want_uid" ] || fail "the state is owned by $(stat -c %u "$cwd/dave.db")"
    [ "$(app "$P" "save v2")" = OK ] || fail "the instance cannot write its state"
    wait_log "$LOG" "instance=$name hook=provision ok"
    [ "$(stat -c %u "$cwd/raw")" = "$want_uid" ] || fail "what the hook left is owned by $(stat -c %u "$cwd/raw")"

    log "$mode: planted symlink and a child: the wipe keeps the target, the child dies"
    [ "$(app "$P" "link $T/outside")" = OK ] || fail "link"
    CHILD=$(app "$P" child)
    running "$CHILD" || fail "no child"
    [ "$(app "$P" logout)" = BYE ] || fail "logout"
    wait_log "$LOG" "instance=$name stopped why=logout"
    [ ! -e "$cwd" ] || fail "$cwd still there"
    wait_log "$LOG" "instance=$name wiped"
    [ "$(cat "$T/outside/keep")" = precious ] || fail "the wipe followed the symlink"
    [ -z "$(ls -A "$T/inst" | grep -v "^fa-")" ] || fail "left in $T/inst: $(ls -A "$T/inst")"
    wait_for test ! -e "/proc/$CHILD/stat"
    stop_clean "$AL" al
}

U0=$(free_uids 3)
isolation uids "uids: $U0-$((U0 + 1))" "$U0" "$U0"
isolation uids+group "$(printf 'uids: %s-%s\n    group: "%s"' "$U0" $((U0 + 1)) $((U0 + 2)))" "$U0" "$((U0 + 2))"
isolation user "user: nobody" "$(id -u nobody)" "$(id -g nobody)"
log "ok"
