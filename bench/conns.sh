#!/bin/bash
# conns.sh - many concurrent idle connections through one airlock relay, with
# traffic on a few of them: what each connection costs (memory, fds) and that
# nothing below max_connections is refused. Not a test: it prints numbers.
#
#   usage: bench/conns.sh [N [ACTIVE [SECONDS]]]
#
#   N        connections held open [10000, or what the hard RLIMIT_NOFILE
#            allows: airlock needs 2 fds per connection and about 300 more]
#   ACTIVE   of them carry a 64-byte ping-pong [100]
#   SECONDS  of that traffic [10]
#
# Method: benchtool echo is the target; airlock (release build, make) runs one
# relay to it with max_connections N (threads: one per core); benchtool hold
# opens the N connections through it, one byte each way on each, then runs
# the ping-pong on ACTIVE of them while the rest stay idle, and finally
# checks that all N are still open. airlock's RSS, PSS and open fds are read
# from /proc before and after; its metrics tell refusals and local errors.
# Runs well under 2 minutes. AIRLOCK_BENCH_KEEP=1 keeps the work dir.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
. "$HERE/lib.sh"

N=${1:-10000}
ACTIVE=${2:-100}
SECS=${3:-10}

bench_build
bench_init conns
HARD=$(ulimit -Hn)
# 2 fds per connection, plus the listeners, loops and spare pipes (<= 300)
if [ $((2 * N + 300)) -gt "$HARD" ]; then
    n=$(((HARD - 300) / 2 / 50 * 50))
    log "the open files limit here is $HARD: $n connections instead of $N (2 fds each in airlock)"
    N=$n
fi

read -r ECHO P M <<<"$(free_ports 3)"
cat >"$WORK/airlock.yaml" <<EOF
metrics: tcp:127.0.0.1:$M
relays:
  - name: conns
    listen: tcp:127.0.0.1:$P
    target: tcp:127.0.0.1:$ECHO
    max_connections: $N
EOF
start echo "$BT" echo "$ECHO"
wait_port "$ECHO"
start airlock "$AIRLOCK" run -c "$WORK/airlock.yaml"
wait_port "$P"
AL=${PGIDS[airlock]}

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$AL/status"; }
pss() { awk '/^Pss:/ { print $2 }' "/proc/$AL/smaps_rollup"; }
fds() { ls "/proc/$AL/fd" | wc -l; }
metric() { curl -sf -m 5 "http://127.0.0.1:$M/metrics" | awk -v k="$1" '$1 == k { s += $2 } END { print s + 0 }'; }
metric_sum() { curl -sf -m 5 "http://127.0.0.1:$M/metrics" | awk -v k="$1" 'index($1, k "{") == 1 { s += $2 } END { print s + 0 }'; }

rss0=$(rss) pss0=$(pss) fds0=$(fds)
log "airlock before: RSS $rss0 KiB, PSS $pss0 KiB, $fds0 fds"
t0=$(date +%s%N)
start hold "$BT" hold "$P" "$N" "$ACTIVE" "$SECS" 64 "$WORK/ready" "$WORK/go"
poll_until 120 test -s "$WORK/ready" || die "benchtool hold did not establish its connections"
est_ms=$((($(date +%s%N) - t0) / 1000000))
log "$(cat "$WORK/ready") in $est_ms ms"
rss1=$(rss) pss1=$(pss) fds1=$(fds)
log "airlock with $N idle connections: RSS $rss1 KiB, PSS $pss1 KiB, $fds1 fds"
touch "$WORK/go"
poll_until $((SECS + 60)) test -s "$WORK/ready.done" || die "benchtool hold did not finish its traffic"
rss2=$(rss) fds2=$(fds)
result=$(cat "$WORK/ready.done")
open=$(metric 'airlock_connections_open{relay="conns"}')
refused=$(metric 'airlock_connections_refused_total{relay="conns"}')
local_errors=$(metric_sum airlock_local_errors_total)
stop hold
stop airlock
stop echo

per_rss=$(((rss1 - rss0) * 1024 / N))
per_pss=$(((pss1 - pss0) * 1024 / N))
per_fds=$(awk -v a="$fds1" -v b="$fds0" -v n="$N" 'BEGIN { printf "%.2f", (a - b) / n }')
warned=$(grep -c 'open files limit .* is below' "$LOGS/airlock.log" || true)
cat <<EOF

bench/conns.sh $N $ACTIVE $SECS   ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, open files limit $HARD)
connections held              $N (established in $est_ms ms)
memory per idle connection    $per_rss bytes RSS, $per_pss bytes PSS
open fds per connection       $per_fds
airlock after traffic         RSS $rss2 KiB, $fds2 fds, $open connections open
traffic on $ACTIVE of them    $result
refused by airlock            $refused (max_connections $N)
local errors                  $local_errors
max_connections warning       $([ "$warned" -gt 0 ] && echo "logged (the limit cannot hold 6 fds per connection)" || echo none)
EOF
