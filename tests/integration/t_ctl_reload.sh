#!/bin/bash
# t_ctl_reload: a control socket without a directory: block. The directory's
# commands (sessions, instances, drain, assign) answer a clear error; stats
# shows the relay's counters (the numbers /metrics has); `airlock ctl
# reload` reloads as SIGHUP does and waits for the outcome: "reloaded
# (generation N)" and exit 0, or the log line's text and exit 1 (a broken
# file, each of its errors named; a listen endpoint in use); concurrent
# reloads are serialised (each gets its own generation) and the reload
# counters agree; a command the server would refuse (a typo: with "did you
# mean") exits 2 before any connect; while draining
# (SIGTERM, a connection still open) a reload is refused, saying why. A
# control socket that never answers: the request gives up (15 s), exit 1.
. "$(dirname "$0")/lib.sh"
need socat curl
read -r M PE PA PB PBUSY <<<"$(free_ports 5)"
CTL=$T/ctl.sock CONF=$T/airlock.yaml LOG=$T/air.log MPORT=$M
ctl() { "$AIRLOCK" ctl -s "unix:$CTL" "$@"; }

start echo socat "TCP-LISTEN:$PE,fork,reuseaddr,bind=127.0.0.1" EXEC:cat
wait_for tcp_up "$PE"
start busy socat "TCP-LISTEN:$PBUSY,fork,reuseaddr,bind=127.0.0.1" EXEC:cat
wait_for tcp_up "$PBUSY"

# write_conf [EXTRA_RELAY_LINES]: relay a, and what is given, in one rename
write_conf() {
    {
        printf 'metrics: tcp:127.0.0.1:%s\ncontrol: unix:%s\nrelays:\n' "$M" "$CTL"
        printf '  - name: a\n    listen: tcp:127.0.0.1:%s\n    target: tcp:127.0.0.1:%s\n' "$PA" "$PE"
        printf '%s\n' "$@"
    } >"$CONF.new"
    mv "$CONF.new" "$CONF"
}
relay_b() { printf '  - name: b\n    listen: tcp:127.0.0.1:%s\n    target: tcp:127.0.0.1:%s' "$1" "$PE"; }
echo_via() { [ "$(printf 'ping %s\n' "$1" | timeout 10 socat - "TCP:127.0.0.1:$1")" = "ping $1" ]; }

write_conf
"$AIRLOCK" check -c "$CONF" || fail "a control socket without a directory is refused"
airlock_up air run -c "$CONF"
AIR=$LAST_PID

log "the directory's commands: a clear error"
for cmd in sessions instances "drain x" "assign grid alice"; do
    rc=0
    # shellcheck disable=SC2086 # the words of the command
    ctl $cmd >"$T/out" 2>"$T/err" || rc=$?
    [ "$rc" = 1 ] || fail "$cmd: exit $rc"
    has "^airlock ctl: ${cmd%% *}: no directory: block in the config" <"$T/err" ||
        fail "$cmd: $(cat "$T/err")"
done

log "a command the server would refuse: a usage error (exit 2), told before any connect"
for cmd in "relaod:unknown command 'relaod' (did you mean 'reload'?)" \
    "sessoins:unknown command 'sessoins' (did you mean 'sessions'?)" \
    "frob now:unknown command (sessions, instances, drain NAME, assign POOL KEY, reload, conns, stats, config)" \
    "drain:drain: expected NAME or POOL/NAME (1-63 of A-Z a-z 0-9 _ . -)" \
    "assign grid:assign: expected POOL KEY (a pool name; a key of 1-127 of A-Z a-z 0-9 _ . @ -, not starting with - or .)" \
    "stats all:sessions, instances, reload, conns, stats and config take no argument"; do
    rc=0
    # shellcheck disable=SC2086 # the words of the command
    "$AIRLOCK" ctl -s "unix:$T/none.sock" ${cmd%%:*} >"$T/out" 2>"$T/err" || rc=$?
    [ "$rc" = 2 ] && [ "$(cat "$T/err")" = "airlock ctl: ${cmd#*:}" ] ||
        fail "ctl ${cmd%%:*}: exit $rc: $(cat "$T/err")"
done

log "stats: the relay's counters, as /metrics has them"
echo_via "$PA" || fail "relay a does not relay"
wait_for metric_is airlock_connections_closed_total 'relay="a",end="eof"' 1
ctl stats | tee "$T/stats"
head -1 "$T/stats" | has -x '1 relays, 0 pools, 0 proxies' || fail "stats: first line"
has -E '^RELAY +KIND +OPEN +TOTAL +REFUSED +CONNECT_ERRORS +BYTES_IN +BYTES_OUT$' <"$T/stats" ||
    fail "stats: the relays' header"
in=$(metric airlock_bytes_in_total 'relay="a"' "$M")
out=$(metric airlock_bytes_out_total 'relay="a"' "$M")
[ "$in" -gt 0 ] || fail "no bytes counted"
has -E "^a +relay +0 +1 +0 +0 +$in +$out\$" <"$T/stats" || fail "stats: relay a's row"

log "reload: adds relay b, waits, says the generation"
write_conf "$(relay_b "$PB")"
ctl reload >"$T/out" || fail "reload failed: $(cat "$T/out")"
has -x 'reloaded (generation 2)' <"$T/out" || fail "reload said: $(cat "$T/out")"
echo_via "$PB" || fail "relay b does not serve right after the reload's answer"
has 'reloaded .*: 2 relays, 0 pools (generation 2)' <"$LOG" || fail "the log's reload line"

log "reload of a broken file: the log's text naming every error, exit 1, the running config kept"
printf 'relays:\n  - name: a\n    listen: tcp:127.0.0.1:%s\n    target: tcp:127.0.0.1:%s\n    idle_timout: 5s\n    splice: maybe\n' \
    "$PA" "$PA" >"$CONF"
rc=0
ctl reload >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 1 ] || fail "a broken file: exit $rc"
has -x "airlock ctl: reload failed, keeping the running config: $CONF:5: relays\[0\]: unknown key 'idle_timout' (did you mean 'idle_timeout'?); $CONF:6: relays\[0\].splice: expected true or false" <"$T/err" ||
    fail "broken file: $(cat "$T/err")"
grep -qF -- "$(sed 's/^airlock ctl: //' "$T/err")" "$LOG" || fail "not the log's text"
echo_via "$PB" || fail "relay b went away with a failed reload"

log "reload onto a listen endpoint in use: the reason, exit 1"
write_conf "$(relay_b "$PB")" "$(relay_b "$PBUSY" | sed 's/name: b/name: c/')"
rc=0
ctl reload >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 1 ] || fail "a busy port: exit $rc"
has -x "airlock ctl: reload failed, keeping the running config: relay=c: cannot listen on tcp:127.0.0.1:$PBUSY: Address already in use" <"$T/err" ||
    fail "busy port: $(cat "$T/err")"

log "five concurrent reloads: one at a time, a generation each"
write_conf "$(relay_b "$PB")"
pids=()
for i in 1 2 3 4 5; do
    ctl reload >"$T/r$i" 2>&1 &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent reload failed: $(cat "$T"/r*)"; done
cat "$T"/r[1-5] | sort | tee "$T/gens"
diff <(printf 'reloaded (generation %s)\n' 3 4 5 6 7) "$T/gens" || fail "generations"
metric_is airlock_reloads_total 'result="ok"' 6 || fail "reloads ok: $(metric airlock_reloads_total 'result="ok"' "$M")"
metric_is airlock_reloads_total 'result="failed"' 2 || fail "reloads failed"
curl -sf "http://127.0.0.1:$M/metrics" | has -x 'airlock_last_reload_success 1' || fail "last reload"
echo_via "$PA" && echo_via "$PB" || fail "relays after the reloads"
running "$AIR" || fail "airlock died"

log "a socket that never answers: the request is bounded"
start mute socat "UNIX-LISTEN:$T/mute.sock,fork" EXEC:'sleep 60'
wait_for unix_up "$T/mute.sock"
rc=0
t0=$(date +%s)
timeout 60 "$AIRLOCK" ctl -s "unix:$T/mute.sock" reload 2>"$T/err" || rc=$?
[ "$rc" = 1 ] || fail "a mute server: exit $rc"
has -x 'airlock ctl: no answer: Connection timed out' <"$T/err" || fail "mute: $(cat "$T/err")"
[ $(($(date +%s) - t0)) -le 30 ] || fail "the request was not bounded"

log "draining: no reload"
held hold socat - "TCP:127.0.0.1:$PA"
held_say hold "still here"
wait_log "$T/hold.out" '^still here$'
kill -TERM "$AIR"
wait_log "$LOG" 'draining 1 connections'
rc=0
ctl reload >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 1 ] || fail "a reload while draining: exit $rc"
has -x 'airlock ctl: reload: draining (stopping): not reloading' <"$T/err" || fail "draining: $(cat "$T/err")"
unhold hold
wait_exit "$AIR" 30
[ "$EXIT_STATUS" = 0 ] || fail "airlock exited with $EXIT_STATUS"
