#!/bin/bash
# t_pool_start: an instance that never prints its ready line is killed after
# start_timeout and restarted with exponential backoff (restart_backoff,
# twice that, ... up to restart_backoff_max; the next start waits it out,
# read from the log's timestamps); restarts are counted; no zombie is left.
# Then a config whose instances do become ready (SIGHUP): the backoff ends
# and min_idle is reached.
. "$(dirname "$0")/lib.sh"

pool_setup
settings='    min_idle: 1
    max: 2
    start_timeout: 200ms
    restart_backoff: 100ms
    restart_backoff_max: 800ms'
pool_conf "$CONF" "$P0" --no-ready <<<"$settings"
airlock_up al run -c "$CONF"
AL=$LAST_PID
count_starts() { [ "$(grep -c ' starting pid=' "$LOG")" -ge "$1" ]; }
wait_for count_starts 6
wait_log "$LOG" "not ready within 200 ms: killed"
wait_log "$LOG" "restart backoff ms=800"

# each failed start sets the backoff (its line names it: 100, 200, 400,
# 800, 800) and the next start waits that long after it, read from the
# log's timestamps. Measured from the backoff line, not from the start
# before: a start's line is written once its exec is under way, which a
# busy machine delays, while its start_timeout counts from the loop turn
# that started it
mapfile -t pairs < <(grep -E ' (restart backoff ms=|instance=fa-[0-9]+ starting pid=)' "$LOG" |
    awk '{ split(substr($1, 12, 12), t, ":"); ms = (t[1] * 3600 + t[2] * 60 + t[3]) * 1000 }
         / restart backoff ms=/ { sub(/.*ms=/, ""); b = $0; at = ms; next }
         at != "" { print b, int(ms - at); at = "" }' | head -5)
log "backoff and the wait after it (ms): ${pairs[*]}"
want=(100 200 400 800 800)
[ ${#pairs[@]} -eq 5 ] || fail "expected 5 restarts after a backoff, got ${#pairs[@]}"
for i in 0 1 2 3 4; do
    read -r b g <<<"${pairs[$i]}"
    w=${want[$i]}
    [ "$b" -eq "$w" ] || fail "backoff $i is $b ms, expected $w (not exponential or not capped)"
    [ "$g" -ge $((w - 20)) ] && [ "$g" -le $((w + 600)) ] ||
        fail "start $i came $g ms after its backoff of $w ms"
done
r=$(metric airlock_pool_restarts_total 'pool="fa"' "$MPORT")
[ "$r" -ge 5 ] || fail "restarts: $r"
metric_is airlock_pool_instances 'pool="fa",state="idle"' 0 || fail "an instance that never got ready is idle"
# instances keep failing and being killed: one may be a zombie for the
# moment before airlock reaps it; none may stay one
poll_until 10 no_zombies "$AL" || fail "zombies: $(ps -o pid,stat,cmd --ppid "$AL")"

log "instances that get ready (SIGHUP): min_idle is reached, the backoff ends"
pool_conf "$CONF" "$P0" --ready-after 50 <<<"$settings"
kill -HUP "$AL"
wait_log "$LOG" "reloaded"
wait_for settled 1
wait_log "$LOG" "ready ms="
stop_clean "$AL" al
log "ok"
