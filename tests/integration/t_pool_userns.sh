#!/bin/bash
# t_pool_userns: an instance cannot make a process of its uid unkillable.
# In a user and mount namespace of its own, an instance could mount a FUSE
# filesystem it serves itself and have a thread of it ask that filesystem
# for a name it never answers: the thread waits uninterruptibly, SIGKILL or
# not, and holds the server's fd open, so neither ever ends. Its main
# thread gone, the reaper took the process for a zombie: the uid served the
# next user with it still there (with it the main thread, the reaper would
# never end, nor the session). Instances get no user namespace (EPERM):
# after the logout no thread of the uid is left, and the uid may serve again.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run instances as other uids"
[ -c /dev/fuse ] || skip "no /dev/fuse"
STUCK=$(dirname "$AIRLOCK")/tests/fuse_stuck
[ -x "$STUCK" ] || fail "no $STUCK"
# should the instance get its namespace after all (the defect), its stuck
# thread must not outlive the test: FUSE connections made meanwhile are
# aborted by the kernel after this many seconds (the setting is restored)
TMO=/proc/sys/fs/fuse/max_request_timeout
if [ -w "$TMO" ]; then
    at_exit "echo $(cat "$TMO") >$TMO"
    echo 10 >"$TMO"
fi
pool_one_uid
airlock_up al run -c "$CONF"
wait_for settled 1

# every thread (not only the processes) of uid $1 that is not a zombie nor
# of an instance started after the first $LINES lines of the log
uid_threads() {
    ps -eLo pid=,lwp=,ruid=,suid=,stat= | awk -v u="$1" -v new=" $(started_since "$LINES" | tr '\n' ' ')" \
        '($3 == u || $4 == u) && $5 !~ /^Z/ && index(new, " " $1 " ") == 0 { print $2 }'
}

P=$(assign_port dave)
NAME=$(basename "$(readlink "/proc/$(ss -Htlnp "sport = :$P" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)/cwd")")
[ "$(app "$P" "login dave")" != "" ] || fail "no answer to the login"
[ "$(app "$P" "sh $STUCK mnt >stuck.out 2>&1 &")" != "" ] || fail "sh"
wait_for eval "[ -s '$T/inst/$NAME/stuck.out' ]"
out=$(cat "$T/inst/$NAME/stuck.out")
log "fuse_stuck: $out"
[ "$out" = "ERR unshare: Operation not permitted" ] || fail "the instance got a user namespace: $out"
LINES=$(wc -l <"$LOG")
[ "$(app "$P" logout)" = BYE ] || fail "logout"
wait_log "$LOG" "instance=$NAME wiped"
[ -z "$(uid_threads "$U0")" ] || fail "threads of uid $U0 outlived the session: $(ps -eLo pid,lwp,ruid,stat,wchan:24,cmd | awk -v u="$U0" '$3 == u')"
! grep -q "not used again" "$LOG" || fail "uid $U0 is not used again: $(grep "not used again" "$LOG")"
log "ok"
