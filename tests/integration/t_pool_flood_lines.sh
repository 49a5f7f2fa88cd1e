#!/bin/bash
# t_pool_flood_lines: an instance that floods its output with short lines
# (empty ones: 4096 to a pipe read of 4096 bytes) does not hold airlock's
# loop. Every line is logged and matched against the event rules, so the
# output is read in slices bounded in lines as well as in bytes: a relay
# answers as fast during the flood as before it (until 2026-12-06 a slice
# was 64 KiB of newlines, 65,536 lines, and each connection through a relay
# waited 0.4 s on average, up to 3 s). The instance's events are still
# seen during the flood (a forged login line gets it killed).
. "$(dirname "$0")/lib.sh"

need socat python3
pool_setup
read -r RL ECHO <<<"$(free_ports 2)"
pool_conf "$CONF" "$P0" <<EOF
    min_idle: 1
    max: 2
relays:
  - listen: tcp:127.0.0.1:$RL
    target: tcp:127.0.0.1:$ECHO
EOF
pool_echo_up "$ECHO"

# probe: the median and the worst time in ms of 15 connections through the
# relay, each one line echoed
probe() {
    python3 - "$RL" <<'PY'
import socket, sys, time
ts = []
for i in range(15):
    t = time.monotonic()
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
    s.sendall(b"ping\n")
    got = b""
    while not got.endswith(b"\n"):
        b = s.recv(16)
        if not b:
            break
        got += b
    s.close()
    ts.append((time.monotonic() - t) * 1000)
    time.sleep(0.02)
ts.sort()
print("%d %d" % (ts[len(ts) // 2], ts[-1]))
PY
}
read -r before worst_before <<<"$(probe)"
log "before the flood: median $before ms, worst $worst_before ms"

P=$(assign_port dave)
app "$P" "login dave" 1 >/dev/null || true # no state here: only its login line matters
wait_log "$LOG" "instance=fa-1 login user=dave"
# stderr of fakeapp's shell: the pipe to airlock
[ "$(app "$P" "sh yes '' >&2 & echo flooding")" = "OK flooding" ] || fail "no flood"
wait_for eval '[ "$(grep -c "instance=fa-1 out=\"\"$" "$LOG")" -gt 100000 ]'
read -r during worst <<<"$(probe)"
log "during the flood: median $during ms, worst $worst ms ($(grep -c "instance=fa-1 out=\"\"$" "$LOG") lines so far)"
[ "$during" -lt $((before + 100)) ] ||
    fail "a relay answered in $during ms (median) while an instance flooded its output, $before ms before"

log "its events are still seen during the flood: a forged login line gets it killed"
[ "$(app "$P" "sh echo LOGIN erin >&2; echo sent")" = "OK sent" ] || fail "no login line"
wait_log "$LOG" "instance=fa-1 forged login user=erin reserved=dave: killed"
wait_log "$LOG" "instance=fa-1 stopped why=forged_login"
running "$AL" || fail "airlock died"
