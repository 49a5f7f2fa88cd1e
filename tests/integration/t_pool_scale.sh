#!/bin/bash
# t_pool_scale: autoscaling with real processes.
#  - a burst of logins takes the idle instance again and again: the pool
#    starts fresh ones (min_idle) until max, and never has more than max
#    (sampled all along from the metrics);
#  - the logouts are replaced by fresh instances only up to max_idle (each
#    was replaced when it was taken: a start above max_idle would only be
#    trimmed);
#  - a reload that lowers max_idle trims the idle ones above it once idle
#    for cooldown (not before);
#  - an idle instance that dies is replaced: min_idle is restored.
. "$(dirname "$0")/lib.sh"

pool_setup
pool_conf "$CONF" "$P0" --state-wait 0 <<EOF
    min_idle: 1
    max: 4
    max_idle: 2
    cooldown: 2500ms
EOF
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1

# sample the total number of instances every 50 ms (but those whose
# processes are gone and whose directory is still being wiped: max bounds
# what runs)
total() { curl -sf "http://127.0.0.1:$MPORT/metrics" |
    awk '$1 ~ /^airlock_pool_instances\{pool="fa"/ && $1 !~ /state="wiping"/ { n += $2 } END { print n + 0 }'; }
(while [ -d "$T" ]; do total >>"$T/totals"; sleep 0.05; done) 2>/dev/null &
PIDS+=($!)

log "a burst of 4 logins: scaled up to max 4, never above"
ports=()
for u in u1 u2 u3 u4; do
    p=$(assign_port "$u") # waits (assign_wait) for an idle instance
    [ "$(app "$p" "login $u")" = NOSTATE ] || fail "login $u on $p"
    wait_log "$LOG" "login user=$u"
    ports+=("$p")
done
wait_for metric_is airlock_pool_instances 'pool="fa",state="active"' 4
sleep 0.3 # the pool would start more now if it ignored max
metric_is airlock_pool_instances 'pool="fa",state="idle"' 0 || fail "idle above max"
metric_is airlock_pool_instances 'pool="fa",state="starting"' 0 || fail "starting above max"

log "logouts: replaced up to max_idle (2), no further"
starts=$(metric airlock_pool_starts_total 'pool="fa"' "$MPORT")
t_logout=$(date +%s%N) # before any instance that the reload may trim is idle
for p in "${ports[@]}"; do [ "$(app "$p" logout)" = BYE ] || fail "logout on $p"; done
wait_for settled 2
wait_for metric_is airlock_pool_instances 'pool="fa",state="stopping"' 0
wait_for metric_is airlock_pool_instances 'pool="fa",state="wiping"' 0
sleep 0.3 # a start owed for each logout would show now
settled 2 || fail "idle: $(pool_metric idle), starting: $(pool_metric starting)"
started=$(($(metric airlock_pool_starts_total 'pool="fa"' "$MPORT") - starts))
[ "$started" = 2 ] || fail "$started starts after 4 logouts with max_idle 2"

log "a reload to max_idle 1: the extra idle one is trimmed after cooldown, not before"
sed -i 's/^    max_idle: 2$/    max_idle: 1/' "$CONF"
hup_ms=$(elapsed_ms "$t_logout")
kill -HUP "$AL"
wait_for settled 1
ms=$(elapsed_ms "$t_logout")
log "trimmed by $ms ms after the logouts (the reload came $hup_ms ms after them)"
[ "$ms" -ge 2500 ] || fail "trimmed $ms ms after the logouts, before the cooldown (2500 ms)"
trims=$(grep -c 'stopping why=trim' "$LOG")
[ "$trims" = 1 ] || fail "expected 1 trim: $trims"
max_seen=$(sort -n "$T/totals" | tail -1)
log "most instances seen at once: $max_seen"
[ "$max_seen" -le 4 ] || fail "$max_seen instances at once, max is 4"
[ "$max_seen" -ge 4 ] || fail "never scaled to 4 (saw $max_seen)"

log "the idle instance dies: min_idle is restored"
p=$(idle_port "$LOG")
app "$p" crash >/dev/null
wait_log "$LOG" "exited signal=6"
wait_for settled 1
[ "$(ls "$T/inst" | wc -l)" = 1 ] || fail "directories: $(ls "$T/inst")"
no_zombies "$AL" || fail "zombies"
stop_clean "$AL" al
log "ok"
