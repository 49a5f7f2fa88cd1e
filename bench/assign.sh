#!/bin/bash
# assign.sh - the session directory's assign latency (p50 / p99), memory
# backend against redis (a redis-server on a unix socket and one on tcp,
# started here). dirtool (tests/tools/dirtool.c) registers N idle
# instances, then runs CYCLES cycles of: assign a new key (timed: from the
# request to its answer on the caller's loop), report it active, draining,
# idle. Backends run interleaved for ROUNDS rounds; medians are printed.
#
#   usage: bench/assign.sh [--rounds N] [--instances N] [--cycles N] [--build DIR]
#
# The numbers go into docs/benchmarks.md by hand, with this command line.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ROUNDS=3 N=64 CYCLES=5000 BUILD=$ROOT/build
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --instances) N=$2; shift 2 ;;
    --cycles) CYCLES=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--instances N] [--cycles N] [--build DIR]" >&2; exit 2 ;;
    esac
done
. "$HERE/lib.sh"
DIRTOOL=$(dirtool_build "$BUILD")
scratch_dir W airlock-bench-assign
PORT=$(free_port)
proc_start "$W/unix.log" redis-server --port 0 --unixsocket "$W/r.sock" --save '' --appendonly no
proc_start "$W/tcp.log" redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no
wait_socket "$W/r.sock"
wait_port "$PORT"

declare -A BACKEND=([memory]=memory [redis-unix]="unix:$W/r.sock" [redis-tcp]="tcp:127.0.0.1:$PORT")
ORDER=(memory redis-unix redis-tcp)
for r in $(seq "$ROUNDS"); do
    for b in "${ORDER[@]}"; do
        "$DIRTOOL" bench "${BACKEND[$b]}" "bench$r:" "$N" "$CYCLES" 2>/dev/null |
            sed -n "s/.*assign_p50_us=\([0-9]*\) assign_p99_us=\([0-9]*\).*/$b \1 \2/p" >>"$W/results"
    done
    ORDER=("${ORDER[@]:1}" "${ORDER[0]}") # rotate, so no backend always goes first
done
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
printf '%-11s %12s %12s   (%s rounds, %s instances, %s cycles each)\n' backend p50_us p99_us \
    "$ROUNDS" "$N" "$CYCLES"
for b in memory redis-unix redis-tcp; do
    p50=$(awk -v b="$b" '$1 == b { print $2 }' "$W/results" | median)
    p99=$(awk -v b="$b" '$1 == b { print $3 }' "$W/results" | median)
    printf '%-11s %12s %12s\n' "$b" "$p50" "$p99"
done
