#!/bin/bash
# t_metrics_hist: the duration histograms and the reload metrics.
# airlock_connection_duration_seconds{relay} counts each closed connection
# (its _count equals airlock_connections_closed_total summed over end), with
# cumulative buckets ending in +Inf = _count and a _sum that holds a
# connection kept open 0.3 s; airlock_connect_duration_seconds{relay} counts
# the connects that succeeded (none for a dead target). SIGHUP with a good,
# then a bad, then a good config moves airlock_reloads_total{result},
# airlock_last_reload_success and airlock_last_reload_timestamp_seconds, and
# the histograms survive the reloads. The exposition passes `promtool check
# metrics` when promtool is installed.
. "$(dirname "$0")/lib.sh"

need curl socat

read -r PE PA PX PDEAD PM < <(free_ports 5)
start echo socat TCP-LISTEN:"$PE",bind=127.0.0.1,reuseaddr,fork PIPE
wait_for tcp_up "$PE"
# conf IDLE: the config, with relay echo's idle_timeout IDLE (what reloads change)
conf() {
    cat >"$T/airlock.yaml" <<EOF
metrics: tcp:127.0.0.1:$PM
relays:
  - name: echo
    listen: tcp:127.0.0.1:$PA
    target: tcp:127.0.0.1:$PE
    idle_timeout: $1
  - name: dead
    listen: tcp:127.0.0.1:$PX
    target: tcp:127.0.0.1:$PDEAD
    connect_timeout: 2s
EOF
}
conf 60s
T0=$(date +%s)
start airlock "$AIRLOCK" run -c "$T/airlock.yaml"
AL=$LAST_PID
wait_for tcp_up "$PM"
wait_for tcp_up "$PA"
wait_for tcp_up "$PX"

scrape() { curl -sf "http://127.0.0.1:$PM/metrics" >"$T/m" || fail "GET /metrics failed"; }
# v NAME LABELS: a sample of the last scrape (empty when absent)
v() { awk -v k="$1{$2}" '$1 == k { print $2 }' "$T/m"; }
v0() { awk -v k="$1" '$1 == k { print $2 }' "$T/m"; }
# closed RELAY: airlock_connections_closed_total summed over end
closed() { awk -v r="relay=\"$1\"" 'index($1, "airlock_connections_closed_total{" r ",") == 1 { n += $2 } END { print n + 0 }' "$T/m"; }

# hist NAME RELAY: checks the histogram's shape in the last scrape (all the
# fixed buckets in order, cumulative, +Inf = _count); prints _count
hist() {
    local want="0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 30 60 300 +Inf"
    local got
    got=$(awk -v p="$1_bucket{relay=\"$2\",le=\"" 'index($1, p) == 1 { le = substr($1, length(p) + 1); sub(/"}$/, "", le); printf "%s ", le }' "$T/m")
    [ "$got" = "$want " ] || fail "$1{$2} buckets: '$got'"
    awk -v p="$1_bucket{relay=\"$2\"," 'index($1, p) == 1 { if ($2 + 0 < last) { print "not cumulative: " $0; exit 1 } last = $2 + 0 }' "$T/m" >&2 ||
        fail "$1{$2} buckets not cumulative"
    local inf count
    inf=$(v "$1_bucket" "relay=\"$2\",le=\"+Inf\"")
    count=$(v "$1_count" "relay=\"$2\"")
    [ -n "$count" ] && [ "$inf" = "$count" ] || fail "$1{$2}: +Inf bucket '$inf', _count '$count'"
    [ -n "$(v "$1_sum" "relay=\"$2\"")" ] || fail "$1{$2}: no _sum"
    echo "$count"
}

# settled RELAY N: N connections of RELAY closed (and counted in both places)
settled() {
    scrape
    [ "$(closed "$1")" = "$2" ] && [ "$(v airlock_connection_duration_seconds_count "relay=\"$1\"")" = "$2" ]
}

log "at start: empty histograms, no reloads, the start counted as a good load"
scrape
for r in echo dead; do
    [ "$(hist airlock_connection_duration_seconds $r)" = 0 ] || fail "connection histogram of $r not empty"
    [ "$(hist airlock_connect_duration_seconds $r)" = 0 ] || fail "connect histogram of $r not empty"
done
[ "$(v airlock_reloads_total 'result="ok"')" = 0 ] || fail "reloads ok not 0 at start"
[ "$(v airlock_reloads_total 'result="failed"')" = 0 ] || fail "reloads failed not 0 at start"
[ "$(v0 airlock_last_reload_success)" = 1 ] || fail "last_reload_success not 1 at start"
ts=$(v0 airlock_last_reload_timestamp_seconds)
[ "$ts" -ge "$T0" ] && [ "$ts" -le "$(date +%s)" ] || fail "last reload timestamp $ts, started at $T0"

log "5 short connections and one held 0.3 s through echo, one to a dead target"
for i in 1 2 3 4 5; do
    [ "$(echo "hi$i" | timeout 10 socat -t 5 - TCP:127.0.0.1:"$PA")" = "hi$i" ] || fail "echo $i failed"
done
exec 5<>/dev/tcp/127.0.0.1/"$PA"
held_since=$(date +%s%N)
printf 'held\n' >&5
read -r -t 5 line <&5 || fail "no echo on the held connection"
[ "$line" = held ] || fail "held connection echoed '$line'"
# the duration under test, not a synchronisation: at least 0.3 s open
while [ $(($(date +%s%N) - held_since)) -lt 300000000 ]; do sleep 0.05; done
exec 5>&-
timeout 5 socat -t 2 - TCP:127.0.0.1:"$PX" </dev/null >/dev/null 2>&1 || true
wait_for settled echo 6
wait_for settled dead 1
scrape
[ "$(hist airlock_connection_duration_seconds echo)" = 6 ] || fail "connection _count of echo not 6"
[ "$(hist airlock_connect_duration_seconds echo)" = 6 ] || fail "connect _count of echo not 6"
[ "$(hist airlock_connection_duration_seconds dead)" = 1 ] || fail "connection _count of dead not 1"
[ "$(hist airlock_connect_duration_seconds dead)" = 0 ] || fail "a failed connect counted in the connect histogram"
# the held connection is above 0.25 s: not in that bucket, and in the sum
le=$(v airlock_connection_duration_seconds_bucket 'relay="echo",le="0.25"')
[ "$le" -le 5 ] || fail "le=0.25 holds $le of 6: the 0.3 s connection is in it"
awk -v s="$(v airlock_connection_duration_seconds_sum 'relay="echo"')" 'BEGIN { exit !(s >= 0.3 && s < 60) }' ||
    fail "connection _sum of echo $(v airlock_connection_duration_seconds_sum 'relay="echo"'), held one 0.3 s"
awk -v s="$(v airlock_connect_duration_seconds_sum 'relay="echo"')" 'BEGIN { exit !(s > 0 && s < 60) }' ||
    fail "connect _sum of echo $(v airlock_connect_duration_seconds_sum 'relay="echo"')"
cp "$T/m" "$T/m.traffic"

# reloaded OK FAILED: the counters show OK good and FAILED bad reloads
reloaded() {
    scrape
    [ "$(v airlock_reloads_total 'result="ok"')" = "$1" ] &&
        [ "$(v airlock_reloads_total 'result="failed"')" = "$2" ]
}
# reload_is OK FAILED SUCCESS: SIGHUP, wait for the counters, check the gauges
reload_is() {
    local before
    before=$(date +%s)
    kill -HUP "$AL"
    wait_for reloaded "$1" "$2"
    [ "$(v0 airlock_last_reload_success)" = "$3" ] || fail "last_reload_success $(v0 airlock_last_reload_success), expected $3"
    ts=$(v0 airlock_last_reload_timestamp_seconds)
    [ "$ts" -ge "$before" ] && [ "$ts" -le "$(date +%s)" ] || fail "last reload timestamp $ts, reload at $before"
}

log "a good reload, a bad one, a good one"
conf 30s
reload_is 1 0 1
printf 'relays: [\n' >"$T/airlock.yaml"
reload_is 1 1 0
conf 20s
reload_is 2 1 1
running "$AL" || fail "airlock died"
scrape
for h in connection connect; do
    grep "^airlock_${h}_duration_seconds" "$T/m.traffic" >"$T/h.before"
    grep "^airlock_${h}_duration_seconds" "$T/m" >"$T/h.after"
    cmp -s "$T/h.before" "$T/h.after" || fail "airlock_${h}_duration_seconds changed across reloads"
done

PROMTOOL=$(command -v promtool || echo /opt/airlock-test/bin/promtool)
if [ -x "$PROMTOOL" ]; then
    log "promtool check metrics"
    "$PROMTOOL" check metrics <"$T/m" >"$T/promtool.out" 2>&1 || {
        cat "$T/promtool.out" >&2
        fail "promtool check metrics found problems"
    }
fi

stop "$AL" || fail "airlock exited with $?"
! grep -Eq "ERROR|runtime error" "$T/airlock.log" || fail "sanitizer report in the log"
log "ok"
