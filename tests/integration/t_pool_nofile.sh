#!/bin/bash
# t_pool_nofile: airlock raises its own soft open-files limit to the hard
# one (its relays hold thousands of sockets), but what it starts gets the
# soft limit airlock was given: a program that uses select() breaks past
# FD_SETSIZE (1024) fds, which is why the default soft limit is 1024. Runs
# airlock under 1024 soft / 4096 hard. Proves: airlock's own limit is
# raised (its log line and /proc/PID/limits), and the instance sees 1024
# soft and 4096 hard (before: 4096 soft, airlock's raised one).
. "$(dirname "$0")/lib.sh"

ulimit -Sn 1024
ulimit -Hn 4096
P0=$(free_range 10)
cat >"$T/p.yaml" <<EOF2
directory:
  backend: memory
pools:
  - name: fa
    command: [/bin/sh, -c, 'echo "NOFILE soft=\$(ulimit -Sn) hard=\$(ulimit -Hn)"; echo WAITING_LOGIN; exec sleep 300']
    endpoint: "tcp:127.0.0.1:{port}"
    ports: $P0-$((P0 + 9))
    dir: $T/inst
    events:
      ready: "^WAITING_LOGIN$"
      login: "^LOGIN (.+)$"
EOF2
airlock_up al run -c "$T/p.yaml"
AL=$LAST_PID
wait_log "$T/al.log" 'WAITING_LOGIN' 10 "$AL"
grep -q "open files limit raised from 1024 to 4096" "$T/al.log" ||
    fail "airlock did not raise its own limit: $(grep 'open files' "$T/al.log")"
grep -Eq '^Max open files +4096 +4096 ' "/proc/$AL/limits" ||
    fail "airlock's limits: $(grep 'open files' "/proc/$AL/limits")"
line=$(grep -m1 -o 'NOFILE soft=[0-9]* hard=[0-9]*' "$T/al.log")
[ "$line" = "NOFILE soft=1024 hard=4096" ] ||
    fail "the instance got airlock's raised limit: $line (want soft=1024 hard=4096)"
stop_clean "$AL" al
log "ok: airlock runs with 4096, its instance with $line"
