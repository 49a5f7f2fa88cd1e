#!/bin/bash
# scale.sh - routers racing on one redis directory (issue 16's scale figures;
# docs/benchmarks.md "Routers racing on one redis"). One redis-server on
# loopback TCP, started here. For each round and each router count K (1, 2,
# 3; the order rotates every round): a fresh key prefix, the pools of three
# nodes (dirtool pool, node n1..n3, pool grid, N idle instances each, their
# directory saying every 100 ms that the node is alive), then K routers
# (dirtool router) that start together and, for SECONDS, assign new keys:
# each assign timed, the instance checked against a ledger in redis (SET NX:
# an instance given to a second key while the first holds it is a
# violation), activated for the key (the login) and reported draining and
# idle (the session ends). At the end each router assigns HOLD more keys
# and keeps them; the directory is then read in one script and must hold
# exactly those keys, each on its own instance, every other instance idle.
#
#   usage: bench/scale.sh [--rounds R] [--instances N] [--seconds S] [--hold H]
#                         [--build DIR] [--quick]
#
# --quick: 1 round of 1 s per count, 8 instances per node (a smoke run).
# Prints one line per round and count, then the medians over the rounds.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ROUNDS=3 N=64 SECONDS_EACH=10 HOLD=10 BUILD=$ROOT/build COUNTS="1 2 3"
usage() {
    echo "usage: $0 [--rounds R] [--instances N] [--seconds S] [--hold H] [--build DIR] [--quick]" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --instances) N=$2; shift 2 ;;
    --seconds) SECONDS_EACH=$2; shift 2 ;;
    --hold) HOLD=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --quick) ROUNDS=1 N=8 SECONDS_EACH=1 HOLD=2; shift ;;
    *) usage ;;
    esac
done
. "$HERE/lib.sh"
DIRTOOL=$(dirtool_build "$BUILD")
LOG_FD=2
scratch_dir W airlock-bench-scale "${AIRLOCK_BENCH_KEEP:-}"
PORT=$(free_port)
REDIS=tcp:127.0.0.1:$PORT
proc_start "$W/redis.log" redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no
wait_port "$PORT"
rcli() { redis-cli -p "$PORT" "$@"; }
idle_is() { [ "$(rcli SCARD "${1}idle:grid")" = "$2" ]; }

# check PREFIX K: the directory after K routers, in one script: "KEY NAME"
# of every instance reserved or active, and how many instances are idle
check() {
    local p=$1 k=$2 snap
    snap=$W/snap.$p
    rcli EVAL "
local out = {}
for _, n in ipairs(redis.call('SMEMBERS', ARGV[1] .. 'pool:grid')) do
  local h = redis.call('HMGET', ARGV[1] .. 'i:grid:' .. n, 'key', 'state')
  if h[2] == 'reserved' or h[2] == 'active' then
    out[#out + 1] = h[1] .. ' ' .. n .. ' ' .. h[2] .. ' ' ..
      (redis.call('GET', ARGV[1] .. 'k:grid:' .. h[1]) or '-')
  end
end
out[#out + 1] = 'idle ' .. redis.call('SCARD', ARGV[1] .. 'idle:grid')
return out" 0 "$p" >"$snap"
    # held: "held KEY NAME" lines of the routers; the directory must say the same
    sort "$W"/held.* >"$W/held"
    awk '$1 != "idle" { print "held", $1, $2 }' "$snap" | sort >"$W/dir"
    cmp -s "$W/held" "$W/dir" || die "$p: the directory does not hold what the routers kept: $(diff "$W/held" "$W/dir" | head -5)"
    awk '$1 != "idle" && ($3 != "active" || $4 != $2) { bad = 1 } END { exit bad }' "$snap" ||
        die "$p: a kept key not active on its instance: $(head -5 "$snap")"
    awk '$1 != "idle" { print $2 }' "$snap" | sort | uniq -d | has . &&
        die "$p: an instance holds two keys"
    [ "$(awk '$1 != "idle"' "$snap" | wc -l)" = $((k * HOLD)) ] || die "$p: not $((k * HOLD)) keys kept"
    [ "$(awk '$1 == "idle" { print $2 }' "$snap")" = $((3 * N - k * HOLD)) ] ||
        die "$p: not every other instance idle: $(tail -1 "$snap")"
}

# one R K: round R with K routers; appends "K per_s p50 p99" per router to results
one() {
    local r=$1 k=$2 p="sc$1.$2:" i start pools=() routers=() rc=0
    for i in 1 2 3; do
        DIRTOOL_POOL=grid DIRTOOL_NODE=n$i proc_start "$W/pool.$i.log" \
            "$DIRTOOL" pool "$REDIS" "$p" "$N" $((SECONDS_EACH + 60))
        pools+=("$LAST_PID")
    done
    wait_until 20 idle_is "$p" $((3 * N))
    rm -f "$W"/held.* "$W"/router.*
    start=$(($(date +%s%3N) + 500)) # every router connected by then
    for ((i = 1; i <= k; i++)); do
        DIRTOOL_POOL=grid "$DIRTOOL" router "$REDIS" "$p" "r$i" "$start" $((SECONDS_EACH * 1000)) \
            "$HOLD" >"$W/router.$i" 2>>"$W/routers.log" &
        routers+=($!)
    done
    for i in "${routers[@]}"; do wait "$i" || rc=1; done
    [ "$rc" = 0 ] || die "round $r, $k routers: $(cat "$W"/router.*)"
    for ((i = 1; i <= k; i++)); do grep '^held ' "$W/router.$i" >"$W/held.$i" || true; done
    check "$p" "$k"
    for i in "${pools[@]}"; do proc_stop "$i" || true; done # SIGTERM: 143
    cat "$W"/router.* | sed -n "s/^router=[^ ]* assigned=[0-9]* per_s=\([0-9]*\) assign_p50_us=\([0-9]*\) assign_p99_us=\([0-9]*\).*/$k \1 \2 \3/p" |
        tee -a "$W/results" | awk -v r="$r" '{ s += $2; if ($4 > m) m = $4; p = p " " $3 }
            END { printf "round %s, %s routers: %d assigns/s, p50%s us, p99 max %d us\n", r, NR, s, p, m }' >&2
}

read -r -a order <<<"$COUNTS"
for ((r = 1; r <= ROUNDS; r++)); do
    for k in "${order[@]}"; do one "$r" "$k"; done
    order=("${order[@]:1}" "${order[0]}") # rotate: no count always goes first
done

# per count: the aggregate assigns/s of each round (sum over its routers),
# the p50 (median over every router) and p99 (worst router) of each round;
# medians over the rounds
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
printf '%-8s %10s %8s %8s   (%s rounds of %s s, %s instances per node, 3 nodes)\n' routers \
    assigns/s p50_us p99_us "$ROUNDS" "$SECONDS_EACH" "$N"
for k in $COUNTS; do
    # results hold the rounds in order, k lines per round of count k
    awk -v k="$k" '$1 == k { n++; s += $2; if ($4 > m) m = $4
                       if (n == k) { print s, m; n = 0; s = 0; m = 0 } }' "$W/results" >"$W/agg.$k"
    rate=$(cut -d' ' -f1 "$W/agg.$k" | median)
    p99=$(cut -d' ' -f2 "$W/agg.$k" | median)
    p50=$(awk -v k="$k" '$1 == k { print $3 }' "$W/results" | median)
    printf '%-8s %10s %8s %8s\n' "$k" "$rate" "$p50" "$p99"
done
