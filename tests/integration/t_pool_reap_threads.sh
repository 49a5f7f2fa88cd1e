#!/bin/bash
# t_pool_reap_threads: a process of an instance's uid whose main thread
# exited while another thread of it runs is not gone. /proc says
# "State: Z" for it (a zombie leader) and "Threads: 2", and that thread
# outlives SIGKILL while it waits uninterruptibly (here for a FUSE server
# of the test's, as root, that read its question and does not answer). The
# reaper took it for a zombie and gave the uid to the next user with the
# thread still running as that uid; now the uid waits until the thread is
# gone (the reaper's "processes left" line meanwhile), and only then is the
# instance wiped and its uid given back.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run instances as other uids and mount FUSE"
pool_one_uid
fuse_stuck_up
airlock_up al run -c "$CONF"
wait_for settled 1

# the threads of uid $1 that are not zombies (a zombie leader's live thread
# is one) nor of an instance started after the first $LINES lines of the
# log, with their process, state and what they wait in
LINES=0
uid_threads() {
    ps -eLo pid=,lwp=,ruid=,suid=,stat=,wchan:32= | awk -v u="$1" -v new=" $(started_since "$LINES" | tr '\n' ' ')" \
        '($3 == u || $4 == u) && $5 !~ /^Z/ && index(new, " " $1 " ") == 0'
}

P=$(assign_port dave)
[ "$(app "$P" "login dave")" = NOSTATE ] || fail "dave's login"
A=$(pid_of_port "$P")
NAME=$(basename "$(readlink "/proc/$A/cwd")")
[ "$(stat -c %u "/proc/$A")" = "$U0" ] || fail "the instance runs as $(stat -c %u "/proc/$A"), not $U0"
[ "$(app "$P" "sh $STUCK --ask $MNT >/dev/null 2>&1 & echo asking")" = "OK asking" ] || fail "sh"
wait_log "$T/fuse.log" "^OK$"
# the asker: a zombie leader of uid U0 (its main thread exited) with a thread asking
wait_for eval '[ -n "$(uid_zombie_leaders "$U0")" ]'
Z=$(uid_zombie_leaders "$U0")
grep -q "^Threads:[[:space:]]*2$" "/proc/$Z/status" || fail "the asker: $(grep -E 'State|Threads' "/proc/$Z/status")"
running "$Z" || fail "lib.sh's running takes the asker $Z for gone"

log "the session ends: the reaper SIGKILLs uid $U0, the asking thread lives on"
LINES=$(wc -l <"$LOG")
[ "$(app "$P" logout)" = BYE ] || fail "logout"
wait_for eval 'grep -q "instance=$NAME uid=$U0: processes left after\|instance=$NAME wiped" "$LOG"'
! grep -q "instance=$NAME wiped" "$LOG" ||
    fail "uid $U0 was given back with a thread of it running: $(uid_threads "$U0")"
uid_threads "$U0" | awk -v z="$Z" '$1 == z && $5 ~ /^D/' | grep -q . ||
    fail "the asker's thread is not waiting uninterruptibly (nothing tested): $(uid_threads "$U0")"

log "the FUSE server gone, the thread ends: the instance is wiped, the uid goes back"
stop "$FUSE" || true # killed: its status is 143
wait_log "$LOG" "instance=$NAME wiped"
[ -z "$(uid_threads "$U0")" ] || fail "threads of uid $U0 outlived the session: $(uid_threads "$U0")"
! grep -q "not used again" "$LOG" || fail "$(grep "not used again" "$LOG")"
wait_for settled 1
log "ok"
