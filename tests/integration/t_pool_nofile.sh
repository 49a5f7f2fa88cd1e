#!/bin/bash
# t_pool_nofile: airlock raises its own soft open-files limit to the hard
# one (its relays hold thousands of sockets), but what it starts gets the
# soft limit airlock was given: a program that uses select() breaks past
# FD_SETSIZE (1024) fds, which is why the default soft limit is 1024. Runs
# airlock under 1024 soft / 4096 hard. Proves: airlock's own limit is
# raised (its log line and /proc/PID/limits), and its instance runs with
# 1024 soft and 4096 hard (before: 4096 soft, airlock's raised one).
. "$(dirname "$0")/lib.sh"

pool_setup
pool_conf "$CONF" "$P0" <<<'    min_idle: 1'
ulimit -Sn 1024
ulimit -Hn 4096
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1
grep -q "open files limit raised from 1024 to 4096" "$LOG" ||
    fail "airlock did not raise its own limit: $(grep 'open files' "$LOG")"
grep -Eq '^Max open files +4096 +4096 ' "/proc/$AL/limits" ||
    fail "airlock's limits: $(grep 'open files' "/proc/$AL/limits")"
pid=$(grep -m1 -o ' starting pid=[0-9]*' "$LOG" | cut -d= -f2)
limits=$(grep 'open files' "/proc/$pid/limits")
grep -Eq '^Max open files +1024 +4096 ' <<<"$limits" ||
    fail "the instance got airlock's raised limit: $limits (want 1024 soft, 4096 hard)"
stop_clean "$AL" al
log "ok: airlock runs with 4096 open files, its instance with 1024 (hard 4096)"
