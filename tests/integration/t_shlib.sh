#!/bin/bash
# t_shlib: scripts/lib.sh, the shell library of the tests, benches and demos,
# with real processes:
#   - proc_stop: SIGTERM; one that ignores it is SIGKILLed after the grace
#     (STOP_KILLED, status 137); -g stops the whole process group, the
#     children it forked included; one stopped right after its start gets
#     the SIGTERM (not lost in the window before it has exec'd its command);
#     a child signalled in that window (it still has the script's EXIT
#     trap) does not clean up;
#   - wait_log with a PID gives up as soon as that process has exited;
#     wait_exit reaps and tells the exit status;
#   - at exit (die, SIGTERM), a script's processes are stopped and its
#     scratch directory removed; at_exit commands run after, last first;
#   - free_ports are distinct, free, and below the ephemeral range; no port
#     is given twice to one script, singly or in a free_range.
. "$(dirname "$0")/lib.sh"

need ss

log "proc_stop: SIGTERM, SIGKILL after the grace when it is ignored"
start polite sleep 1000
proc_stop "$LAST_PID" 5 && fail "sleep exited with 0 on SIGTERM"
[ "$STOP_KILLED" = 0 ] || fail "a process that stops on SIGTERM was SIGKILLed"
start deaf bash -c 'trap "" TERM; echo ready; while :; do sleep 0.1; done'
wait_log "$T/deaf.log" '^ready$'
rc=0
proc_stop "$LAST_PID" 1 || rc=$?
[ "$STOP_KILLED" = 1 ] && [ "$rc" = 137 ] || fail "deaf process: killed=$STOP_KILLED status=$rc"

log "proc_stop right after the start: the SIGTERM is not lost before the exec"
for i in $(seq 50); do
    start "quick$i" sleep 1000
    proc_stop "$LAST_PID" 5 || true
    [ "$STOP_KILLED" = 0 ] || fail "stop $i: the SIGTERM was lost, it was SIGKILLed"
done

log "a child signalled before it execs its command does not clean up for the script"
start sentinel sleep 1000
sentinel=$LAST_PID
for i in $(seq 30); do
    start "early$i" sleep 1000
    kill -TERM "$LAST_PID"
    proc_reap "$LAST_PID" 1 || true
done
[ -d "$T" ] && running "$sentinel" || fail "a stopped child ran the script's cleanup"

log "proc_start -g: proc_stop stops the group, forked children included"
proc_start -g "$T/group.log" bash -c 'sleep 1000 & echo "child $!"; wait'
leader=$LAST_PID
wait_log "$T/group.log" '^child [0-9]+$'
child=$(sed -n 's/^child //p' "$T/group.log")
running "$child" || fail "the group's child is not running"
proc_stop "$leader" 5 || true
poll_until 5 exited "$child" || fail "the group's child $child outlived proc_stop"

log "wait_log PID: gives up once PID has exited; wait_exit tells its status"
start short bash -c 'echo starting; exit 3'
pid=$LAST_PID
t0=$(date +%s%N)
out=$( (wait_log "$T/short.log" 'never' 30 "$pid") 2>&1) && fail "wait_log did not fail"
[ "$(elapsed_ms "$t0")" -lt 20000 ] || fail "wait_log waited for the timeout, not for the exit"
[[ $out == *"pid $pid exited before /never/"* ]] || fail "wait_log said: $out"
[[ $out == *starting* ]] || fail "wait_log did not show the end of the log: $out"
wait_exit "$pid" 10
[ "$EXIT_STATUS" = 3 ] || fail "wait_exit: status $EXIT_STATUS, expected 3"

log "at exit: processes stopped, scratch dir removed, at_exit last first"
cat >"$T/script.sh" <<EOS
set -euo pipefail
. '$ROOT/scripts/lib.sh'
scratch_dir W shlib-t
at_exit 'echo second >>"$T/order"'
at_exit 'echo first >>"$T/order"; [ -d "\$W" ] && echo dir-there >>"$T/order"'
proc_start "\$W/sleep.log" sleep 1000
echo "\$LAST_PID \$W" >"$T/script.out"
[ "\${1:-}" = die ] && die "as asked"
wait "\$LAST_PID"
EOS
for how in die term; do
    rm -f "$T/script.out" "$T/order"
    start "script-$how" bash "$T/script.sh" "$how"
    script=$LAST_PID
    wait_for test -s "$T/script.out"
    read -r spid sdir <"$T/script.out"
    [ "$how" = die ] || kill -TERM "$script"
    wait_exit "$script" 20
    [ "$EXIT_STATUS" != 0 ] || fail "$how: the script exited with 0"
    [ "$how" != die ] || has -x 'script.sh: as asked' "$T/script-die.log" ||
        fail "die: $(cat "$T/script-die.log")"
    poll_until 5 exited "$spid" || fail "$how: its process $spid outlived the script"
    [ ! -e "$sdir" ] || fail "$how: its scratch dir $sdir is left"
    [ "$(cat "$T/order")" = "$(printf 'first\ndir-there\nsecond')" ] ||
        fail "$how: at_exit order: $(cat "$T/order")"
done

log "free_ports: distinct, free, below the ephemeral range"
read -r -a ports <<<"$(free_ports 20)"
[ "$(printf '%s\n' "${ports[@]}" | sort -u | wc -l)" = 20 ] || fail "not distinct: ${ports[*]}"

log "free_port never gives a port twice, nor one of a free_range, before anything binds"
r=$(free_range 400) # 3 % of the ports or so: 300 ports given anew would fall in it
for i in $(seq 300); do
    p=$(free_port)
    [ "$p" -lt "$r" ] || [ "$p" -ge $((r + 400)) ] || fail "port $p of the range $r-$((r + 399)) given again"
    ports+=("$p")
done
[ "$(printf '%s\n' "${ports[@]}" | sort -u | wc -l)" = 320 ] || fail "a port was given twice"
eph=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range)
for p in "${ports[@]}"; do
    [ "$p" -lt "$eph" ] || fail "port $p is in the ephemeral range"
done
log "ok"
