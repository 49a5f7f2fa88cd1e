#!/bin/bash
# relay.sh - airlock against no proxy, HAProxy, nginx stream and socat, on
# loopback, in one go. Installs its peers (bench/deps.sh), builds airlock
# (make) and bench/benchtool.c, runs every workload interleaved and prints a
# table; a full run (no --quick, no --only) also rewrites docs/benchmarks.md.
#
#   usage: bench/relay.sh [--rounds N] [--quick] [--only W[,W...]] [--docs|--no-docs]
#
#   workloads (W): bulk redis http churn latency memory scaling vsock
#   --rounds N   rounds of every comparison [5; --quick: 1; memory: at most 3,
#                it hardly varies]
#   --quick      short smoke run (~3 min): 1 round, short durations, fewer
#                idle connections; does not touch docs/benchmarks.md
#   --only W     only these workloads (comma-separated); no docs either
#   --docs       write docs/benchmarks.md even with --quick/--only
#   --no-docs    never write it
#
# Method: each workload starts its server (iperf3, redis, an nginx origin or
# benchtool's echo server) and the four proxies (each its own listener, all
# to the same server); then, for each round, it measures every system once
# (direct first in round 1; the order rotates by one each round), so that
# every system sees the same noise. Medians per system over the rounds, and
# ratios to "direct" (no proxy) measured in the same run. Nothing is pinned:
# load generator, proxy and server share the 2 cores the way the scheduler
# likes. Environment: AIRLOCK_BENCH_KEEP=1 keeps the work dir (logs, raw
# results).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CMDLINE="bench/relay.sh${*:+ $*}"

ROUNDS=""
QUICK=0
ONLY=""
DOCS=auto
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --rounds=*) ROUNDS=${1#*=}; shift ;;
    --quick) QUICK=1; shift ;;
    --only) ONLY=$2; shift 2 ;;
    --only=*) ONLY=${1#*=}; shift ;;
    --docs) DOCS=yes; shift ;;
    --no-docs) DOCS=no; shift ;;
    -h | --help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "relay.sh: unknown argument $1" >&2; sed -n '6,16p' "$0" >&2; exit 2 ;;
    esac
done
ALL_WORKLOADS="bulk redis http churn latency memory scaling vsock"
WORKLOADS=${ONLY//,/ }
[ -n "$WORKLOADS" ] || WORKLOADS=$ALL_WORKLOADS
for w in $WORKLOADS; do
    case " $ALL_WORKLOADS " in *" $w "*) ;; *) echo "relay.sh: unknown workload $w" >&2; exit 2 ;; esac
done
if [ "$DOCS" = auto ]; then
    if [ $QUICK = 0 ] && [ -z "$ONLY" ]; then DOCS=yes; else DOCS=no; fi
fi

# ---------------------------------------------------------------- sizes
if [ $QUICK = 1 ]; then
    ROUNDS=${ROUNDS:-1}
    DUR=2              # seconds per iperf3 / wrk / churn run
    DUR_LAT=2          # seconds of ping-pong
    DUR_SCALE=1.5      # seconds per concurrency level
    REDIS_N=30000      # requests per redis-benchmark test, no pipelining
    REDIS_NP=300000    # with -P 16
    IDLE_N=2000        # idle connections per proxy
    IDLE_N_SOCAT=300   # socat forks a process per connection
    VM_MIB=32 VM_ITERS=500
else
    # more, shorter rounds: the machine's noise comes in bursts of seconds to
    # tens of seconds, and a median over 5 rounds rides them out better than
    # one over 3 longer ones
    ROUNDS=${ROUNDS:-5}
    DUR=3
    DUR_LAT=3
    DUR_SCALE=1.2
    REDIS_N=60000
    REDIS_NP=600000
    IDLE_N=10000
    IDLE_N_SOCAT=1000
    VM_MIB=32 VM_ITERS=500
fi
SCALE_CONNS="1 10 100 1000"
SCALE_SIZE=4096
CHURN_PAR=16
SYSTEMS="direct airlock haproxy nginx socat"
PROXIES="airlock haproxy nginx socat"

# ---------------------------------------------------------------- setup
. "$HERE/lib.sh"
bench_build
[ -x "$AIRLOCK" ] || die "no $AIRLOCK after make"
# what was built (now: others may commit while the benchmark runs)
AIRLOCK_REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src meson.build 2>/dev/null || echo '+uncommitted src changes'), built $(date -u '+%H:%M UTC')"

bench_init relay

# Open files: the hard limit is what we get (raising it needs CAP_SYS_RESOURCE).
NOFILE_HARD=$(ulimit -Hn)
[ "$NOFILE_HARD" = unlimited ] && NOFILE_HARD=1048576
ulimit -n "$NOFILE_HARD"
# A proxy holds 2 sockets per relayed connection, in one process (airlock,
# HAProxy), and maybe a splice pipe (2 more fds) on each connection that has
# carried data: keep 10,000 idle connections, or fewer if the limit says so
# (4 fds per connection must fit).
max_idle=$(((NOFILE_HARD - 1200) / 4 / 100 * 100))
[ "$IDLE_N" -le "$max_idle" ] || IDLE_N=$max_idle
# HAProxy sizes its fd needs up front: 2 per connection plus 2 per pipe
# (maxpipes, by default maxconn / 4): fit both under the limit.
HAPROXY_MAXCONN=$((IDLE_N + 100))
HAPROXY_MAXPIPES=$((HAPROXY_MAXCONN / 4))
max_pipes=$(((NOFILE_HARD - 200 - 2 * HAPROXY_MAXCONN) / 2))
[ "$HAPROXY_MAXPIPES" -le "$max_pipes" ] || HAPROXY_MAXPIPES=$max_pipes

# ---------------------------------------------------------------- ports
# Listeners go below the ephemeral range (free_ports), so that the
# benchmark's own client connections (tens of thousands) never take a port a
# proxy is about to bind.
declare -A PPORT=()   # system -> the port its clients connect to
TARGET=0
new_ports() {
    local s ports i=1
    read -r -a ports <<<"$(free_ports $((1 + $(wc -w <<<"$PROXIES"))))"
    TARGET=${ports[0]}
    PPORT[direct]=$TARGET
    for s in $PROXIES; do PPORT[$s]=${ports[i]}; i=$((i + 1)); done
}

# ---------------------------------------------------------------- processes
# start, stop, fill and order: bench/lib.sh; wait_port: scripts/lib.sh

start_proxy() {  # start_proxy SYSTEM LISTEN_PORT TARGET_PORT
    local sys=$1 lp=$2 tp=$3 d=$WORK/$1-$2
    mkdir -p "$d"
    case $sys in
    airlock)
        start airlock "$AIRLOCK" relay "tcp:127.0.0.1:$lp" "tcp:127.0.0.1:$tp" --log-level warn ;;
    haproxy)
        local splice='    option splice-auto'
        [ "$HAPROXY_SPLICE" = always ] && splice='    option splice-request\n    option splice-response'
        fill "$HERE/conf/haproxy.cfg.in" "$d/haproxy.cfg" LISTEN="$lp" TARGET="$tp" MAXCONN="$HAPROXY_MAXCONN" \
            MAXPIPES="$HAPROXY_MAXPIPES" SPLICE="$splice"
        start haproxy haproxy -db -f "$d/haproxy.cfg" ;;
    nginx)
        fill "$HERE/conf/nginx-stream.conf.in" "$d/nginx.conf" LISTEN="$lp" TARGET="$tp" DIR="$d" \
            NOFILE="$NOFILE_HARD" WCONN="$((NOFILE_HARD - 100))"
        start nginx nginx -p "$d" -e "$d/nginx-stream.err" -c "$d/nginx.conf" ;;
    socat)
        start socat socat "TCP-LISTEN:$lp,bind=127.0.0.1,reuseaddr,fork,backlog=4096,nodelay" \
            "TCP:127.0.0.1:$tp,nodelay" ;;
    esac
}
start_proxies() {  # all four, to TARGET
    local s
    for s in $PROXIES; do start_proxy "$s" "${PPORT[$s]}" "$TARGET"; done
    for s in $PROXIES; do wait_port "${PPORT[$s]}"; done
}
stop_proxies() { local s; for s in $PROXIES; do stop "$s"; done; }

start_echo() { start echo "$BT" echo "$TARGET"; wait_port "$TARGET"; }

rec() {  # rec METRIC SYSTEM ROUND VALUE
    if [ -n "$4" ]; then
        printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"
    else
        log "  no value for $1 / $2 / round $3"
    fi
}
kv() {  # kv KEY TEXT: value of KEY=value in TEXT
    printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | tail -n1
}

# ---------------------------------------------------------------- workloads
HAPROXY_SPLICE=auto  # HAProxy's best splice mode per workload: always for bulk, auto otherwise
wl_bulk() {
    new_ports
    HAPROXY_SPLICE=always
    start iperf3 iperf3 -s -B 127.0.0.1 -p "$TARGET"
    wait_port "$TARGET"
    start_proxies
    local r s st out
    for ((r = 1; r <= ROUNDS; r++)); do
        for s in $(order $r); do
            for st in 1 4; do
                out=$(iperf3 -c 127.0.0.1 -p "${PPORT[$s]}" -t "$DUR" -P "$st" -f g 2>&1) || true
                echo "$out" >>"$LOGS/iperf3-client.log"
                rec "bulk$st" "$s" "$r" "$(echo "$out" | awk '/receiver/ { for (i = 2; i <= NF; i++) if ($i == "Gbits/sec") v = $(i - 1) } END { print v }')"
            done
        done
        log "  bulk round $r done"
    done
    stop_proxies
    stop iperf3
    HAPROXY_SPLICE=auto
}

wl_redis() {
    new_ports
    start redis redis-server --bind 127.0.0.1 --port "$TARGET" --save '' --appendonly no \
        --protected-mode no --daemonize no --maxclients 10000
    wait_port "$TARGET"
    start_proxies
    local r s p n out t
    for ((r = 1; r <= ROUNDS; r++)); do
        for s in $(order $r); do
            for p in 1 16; do
                n=$REDIS_N
                [ $p = 1 ] || n=$REDIS_NP
                out=$(redis-benchmark -h 127.0.0.1 -p "${PPORT[$s]}" -c 50 -n "$n" -P "$p" -t set,get --csv 2>&1) || true
                echo "$s P$p: $out" >>"$LOGS/redis-benchmark.log"
                for t in SET GET; do
                    local line
                    line=$(echo "$out" | tr -d '"' | grep "^$t,") || true
                    local lt=${t,,}
                    rec "redis_${lt}_p${p}_rps" "$s" "$r" "$(echo "$line" | cut -d, -f2)"
                    rec "redis_${lt}_p${p}_p50" "$s" "$r" "$(echo "$line" | cut -d, -f5)"
                    rec "redis_${lt}_p${p}_p99" "$s" "$r" "$(echo "$line" | cut -d, -f7)"
                done
            done
        done
        log "  redis round $r done"
    done
    stop_proxies
    stop redis
}

wl_http() {
    new_ports
    mkdir -p "$WORK/origin"
    fill "$HERE/conf/nginx-origin.conf.in" "$WORK/origin/nginx.conf" TARGET="$TARGET" DIR="$WORK/origin"
    start origin nginx -p "$WORK/origin" -e "$WORK/origin/nginx-origin.err" -c "$WORK/origin/nginx.conf"
    wait_port "$TARGET"
    start_proxies
    local r s out
    for ((r = 1; r <= ROUNDS; r++)); do
        for s in $(order $r); do
            out=$(wrk -t 2 -c 50 -d "${DUR}s" --latency "http://127.0.0.1:${PPORT[$s]}/" 2>&1) || true
            echo "$s: $out" >>"$LOGS/wrk.log"
            rec http_rps "$s" "$r" "$(echo "$out" | awk '/^Requests\/sec:/ { print $2 }')"
            rec http_p99 "$s" "$r" "$(echo "$out" | awk '$1 == "99%" {
                v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
                if (u == "ms") v *= 1000; else if (u == "s") v *= 1000000
                print v }')"
        done
        log "  http round $r done"
    done
    stop_proxies
    stop origin
}

wl_churn() {
    new_ports
    start_echo
    start_proxies
    local r s out
    for ((r = 1; r <= ROUNDS; r++)); do
        for s in $(order $r); do
            out=$("$BT" churn "${PPORT[$s]}" "$DUR" "$CHURN_PAR" 2>&1) || true
            echo "$s: $out" >>"$LOGS/churn.log"
            rec churn_cps "$s" "$r" "$(kv conn_per_s "$out")"
            rec churn_p99 "$s" "$r" "$(kv p99_us "$out")"
        done
        log "  churn round $r done"
    done
    stop_proxies
    stop echo
}

wl_latency() {
    new_ports
    start_echo
    start_proxies
    local r s out
    for ((r = 1; r <= ROUNDS; r++)); do
        for s in $(order $r); do
            out=$("$BT" pingpong "${PPORT[$s]}" 64 "$DUR_LAT" 2>&1) || true
            echo "$s: $out" >>"$LOGS/pingpong.log"
            rec pp_p50 "$s" "$r" "$(kv rtt_p50_us "$out")"
            rec pp_p99 "$s" "$r" "$(kv rtt_p99_us "$out")"
        done
        log "  latency round $r done"
    done
    stop_proxies
    stop echo
}

# mem_kb PGID: "RSS_KB PSS_KB FDS" summed over the processes of that group
mem_kb() {
    local g=$1 pids p files=() fds=0 n
    pids=$(ps -e -o pid=,pgid= | awk -v g="$g" '$2 == g { print $1 }')
    for p in $pids; do
        files+=("/proc/$p/smaps_rollup")
        n=$(find "/proc/$p/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l) || n=0
        fds=$((fds + n))
    done
    cat "${files[@]}" 2>/dev/null | awk -v f=$fds '$1 == "Rss:" { r += $2 } $1 == "Pss:" { p += $2 } END { print r + 0, p + 0, f }'
}

wl_memory() {
    new_ports
    start_echo
    local r s n before after ready est rounds=$((ROUNDS < 3 ? ROUNDS : 3))
    for ((r = 1; r <= rounds; r++)); do
        for s in $(order $r); do
            [ "$s" = direct ] && continue
            n=$IDLE_N
            [ "$s" = socat ] && n=$IDLE_N_SOCAT
            start_proxy "$s" "${PPORT[$s]}" "$TARGET"
            wait_port "${PPORT[$s]}"
            sleep 0.5
            before=$(mem_kb "${PGIDS[$s]}")
            ready=$WORK/idle.ready
            rm -f "$ready"
            start idle "$BT" idle "${PPORT[$s]}" "$n" "$ready"
            poll_until 150 test -s "$ready" || true # no value recorded then
            sleep 1
            after=$(mem_kb "${PGIDS[$s]}")
            est=$(kv established "$(cat "$ready" 2>/dev/null)")
            echo "$s round $r: n=$n $(cat "$ready" 2>/dev/null) before(rss kB, pss kB, fds)=$before after=$after" >>"$LOGS/memory.log"
            stop idle
            stop "$s"
            if [ -n "$est" ] && [ "$est" -gt 0 ]; then
                [ "$est" -eq "$n" ] || log "  memory: $s: only $est of $n connections established"
                # shellcheck disable=SC2086 # "RSS PSS FDS" before and after
                set -- $before $after
                rec mem_rss "$s" "$r" "$(((($4 - $1) * 1024) / est))"
                rec mem_pss "$s" "$r" "$(((($5 - $2) * 1024) / est))"
                rec mem_fds "$s" "$r" "$(awk -v a="$3" -v b="$6" -v n="$est" 'BEGIN { printf "%.2f", (b - a) / n }')"
            else
                rec mem_rss "$s" "$r" ""
            fi
        done
        log "  memory round $r done"
    done
    stop echo
}

wl_scaling() {
    new_ports
    start_echo
    start_proxies
    local r s c out
    for ((r = 1; r <= ROUNDS; r++)); do
        for s in $(order $r); do
            for c in $SCALE_CONNS; do
                out=$("$BT" load "${PPORT[$s]}" "$c" "$DUR_SCALE" "$SCALE_SIZE" 2>&1) || true
                echo "$s c=$c: $out" >>"$LOGS/scaling.log"
                rec "scale_c$c" "$s" "$r" "$(kv mbyte_per_s "$out")"
            done
        done
        log "  scaling round $r done"
    done
    stop_proxies
    stop echo
}

VM_NOTE=""
wl_vsock() {
    local vb="" vmsh out
    for f in "$HERE/vsockbench.c" "$ROOT/../shared/tools/vsockbench.c"; do
        [ -f "$f" ] && { vb=$f; break; }
    done
    if [ -x "$ROOT/tests/vm/vm.sh" ]; then vmsh=$ROOT/tests/vm/vm.sh
    elif [ -x "$ROOT/../shared/tools/vsock-vm.sh" ]; then vmsh=$ROOT/../shared/tools/vsock-vm.sh
    else vmsh=""; fi
    if [ -z "$vb" ] || [ -z "$vmsh" ]; then
        VM_NOTE="skipped: no vsockbench.c or no VM harness"
        log "  vsock: $VM_NOTE"
        return 0
    fi
    local bin=$WORK/vmbin
    mkdir -p "$bin"
    log "  vsock: static builds (build-static/, vsockbench)"
    if [ ! -f "$ROOT/build-static/build.ninja" ]; then
        meson setup "$ROOT/build-static" "$ROOT" -Dstatic=true -Dtests=false >"$LOGS/build-static.log" 2>&1 ||
            die "meson setup build-static failed (see $LOGS/build-static.log)"
    fi
    ninja -C "$ROOT/build-static" airlock >>"$LOGS/build-static.log" 2>&1 || die "static airlock build failed"
    cp "$ROOT/build-static/airlock" "$bin/"
    cc -O2 -static -Wall -o "$bin/vsockbench" "$vb" 2>>"$LOGS/build-static.log" || die "cannot build vsockbench -static"
    log "  vsock: booting the test VM ($(basename "$vmsh"))"
    set +e
    out=$(VM_EXTRA_DYN="socat" VM_APPEND="vsock_test_guest" VM_TIMEOUT=1200 \
        "$vmsh" "$bin" "$HERE/vm_bench.sh" "$ROUNDS" "$VM_MIB" "$VM_ITERS" 2>"$LOGS/vm.err")
    local rc=$?
    set -e
    echo "$out" >"$LOGS/vm.log"
    if [ $rc != 0 ]; then
        VM_NOTE="failed: the VM run exited $rc (see vm.log)"
        log "  vsock: $VM_NOTE"; tail -n 20 "$LOGS/vm.log" "$LOGS/vm.err" >&2
        return 0
    fi
    echo "$out" | awk '$1 == "RESULT" { printf "vm_%s\t%s\t%s\t%s\n", $4, $3, $2, $5 }' >>"$RESULTS"
    echo "$out" | grep '^ERROR' >&2 || true
    VM_NOTE="$(echo "$out" | grep -m1 '^vm_bench: kernel' | sed 's/^vm_bench: //')"
}

# ---------------------------------------------------------------- run
log "work dir $WORK; workloads: $WORKLOADS; rounds $ROUNDS$([ $QUICK = 1 ] && echo ' (quick)')"
for w in $WORKLOADS; do
    log "workload $w"
    "wl_$w"
done
END_TS=$(date +%s)
ELAPSED=$((END_TS - START_TS))

# ---------------------------------------------------------------- report
# medians.tsv: METRIC SYSTEM MEDIAN N
sort -k1,1 -k2,2 -k4,4g "$RESULTS" | awk -F'\t' '
    function flush() { if (n) { m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2; printf "%s\t%s\t%s\t%d\n", pm, ps, m, n } }
    { if ($1 != pm || $2 != ps) { flush(); n = 0; pm = $1; ps = $2 } v[++n] = $4 }
    END { flush() }' >"$WORK/medians.tsv"
# added per hop: per round, system minus direct (same round), then the median
awk -F'\t' '$1 == "pp_p50" { v[$2, $3] = $4; r[$3] = 1; s[$2] = 1 }
    END { for (x in s) if (x != "direct") for (k in r) if ((x, k) in v && ("direct", k) in v) print "pp_added", x, k, v[x, k] - v["direct", k] }' \
    OFS='\t' "$RESULTS" | sort -k2,2 -k4,4g | awk -F'\t' '
    function flush() { if (n) { m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2; printf "%s\t%s\t%s\t%d\n", "pp_added", ps, m, n } }
    { if ($2 != ps) { flush(); n = 0; ps = $2 } v[++n] = $4 }
    END { flush() }' >>"$WORK/medians.tsv"

med() {  # med METRIC SYSTEM -> median or empty
    awk -F'\t' -v m="$1" -v s="$2" '$1 == m && $2 == s { print $3 }' "$WORK/medians.tsv"
}
fmt() {  # fmt VALUE DECIMALS
    [ -n "$1" ] && LC_ALL=C printf "%.${2}f" "$1" || printf -- '-'
}
ratio() {  # ratio A B -> A/B with 2 decimals
    if [ -n "$1" ] && [ -n "$2" ] && awk -v b="$2" 'BEGIN { exit !(b != 0) }'; then
        awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
    fi
}

# METRIC|LABEL|UNIT|DECIMALS|BETTER(h/l)
ROWS="bulk1|bulk, iperf3, 1 stream|Gbit/s|2|h
bulk4|bulk, iperf3, 4 streams|Gbit/s|2|h
redis_get_p1_rps|redis GET, -c 50|req/s|0|h
redis_get_p1_p50|redis GET, -c 50, p50|ms|3|l
redis_get_p1_p99|redis GET, -c 50, p99|ms|3|l
redis_set_p1_rps|redis SET, -c 50|req/s|0|h
redis_set_p1_p50|redis SET, -c 50, p50|ms|3|l
redis_set_p1_p99|redis SET, -c 50, p99|ms|3|l
redis_get_p16_rps|redis GET, -c 50 -P 16|req/s|0|h
redis_get_p16_p50|redis GET, -c 50 -P 16, p50|ms|3|l
redis_get_p16_p99|redis GET, -c 50 -P 16, p99|ms|3|l
redis_set_p16_rps|redis SET, -c 50 -P 16|req/s|0|h
redis_set_p16_p50|redis SET, -c 50 -P 16, p50|ms|3|l
redis_set_p16_p99|redis SET, -c 50 -P 16, p99|ms|3|l
http_rps|HTTP, wrk -t2 -c50, nginx origin|req/s|0|h
http_p99|HTTP, wrk, p99|us|0|l
churn_cps|connection churn, $CHURN_PAR in parallel|conn/s|0|h
churn_p99|connection churn, p99 per connection|us|0|l
pp_p50|ping-pong 64 B, 1 connection, p50 RTT|us|1|l
pp_p99|ping-pong 64 B, p99 RTT|us|1|l
pp_added|latency added per hop (p50 - direct p50)|us|1|l
mem_rss|memory per idle established connection (RSS)|bytes|0|l
mem_pss|memory per idle established connection (PSS)|bytes|0|l
mem_fds|open files per idle established connection|fds|2|l
scale_c1|scaling: 4 KiB echo, 1 connection|MB/s|1|h
scale_c10|scaling: 4 KiB echo, 10 connections|MB/s|1|h
scale_c100|scaling: 4 KiB echo, 100 connections|MB/s|1|h
scale_c1000|scaling: 4 KiB echo, 1,000 connections|MB/s|1|h"

TABLE=$WORK/table.md
{
    echo "| workload | unit | direct | airlock | HAProxy | nginx | socat |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    while IFS='|' read -r m label unit dec _; do
        [ -n "$(awk -F'\t' -v m="$m" '$1 == m' "$WORK/medians.tsv")" ] || continue
        d=$(med "$m" direct)
        line="| $label | $unit |"
        for s in $SYSTEMS; do
            v=$(med "$m" "$s")
            cell=$(fmt "$v" "$dec")
            if [ "$s" != direct ] && [ -n "$v" ] && [ -n "$d" ] && [ "$m" != pp_added ]; then
                x=$(ratio "$v" "$d")
                [ -n "$x" ] && cell="$cell (${x}x)"
            fi
            [ "$s" = direct ] && [ "$m" = pp_added ] && cell="0"
            line="$line $cell |"
        done
        echo "$line"
    done <<<"$ROWS"
} >"$TABLE"

# vsock (emulated): ratios only
VMTABLE=$WORK/vmtable.md
: >"$VMTABLE"
if grep -q '^vm_' "$WORK/medians.tsv"; then
    {
        echo "| in the VM (emulated; ratios only) | raw vsock | raw tcp | airlock chain | socat chain | airlock / socat |"
        echo "|---|---:|---:|---:|---:|---:|"
        for m in bulk_gbps pp_p50_us pp_p99_us; do
            case $m in
            bulk_gbps) label="bulk, x raw vsock (higher is better)" ;;
            pp_p50_us) label="ping-pong 64 B p50 RTT, x raw vsock (lower is better)" ;;
            pp_p99_us) label="ping-pong 64 B p99 RTT, x raw vsock (lower is better)" ;;
            esac
            base=$(med "vm_$m" raw-vsock)
            line="| $label | 1.00x |"
            for s in raw-tcp airlock socat; do
                x=$(ratio "$(med "vm_$m" "$s")" "$base")
                line="$line ${x:--}${x:+x} |"
            done
            x=$(ratio "$(med "vm_$m" airlock)" "$(med "vm_$m" socat)")
            line="$line ${x:--}${x:+x} |"
            echo "$line"
        done
    } >"$VMTABLE"
fi

# targets, computed from the medians
TARGETS=$WORK/targets.md
rx() { if [ -n "$1" ]; then echo "${1}x"; else echo "-"; fi; }
verdict() { awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN {
    if (a == "" || b == "") { print "NOT MEASURED"; exit }
    ok = (op == ">=") ? (a + 0 >= b + 0) : (op == "<=") ? (a + 0 <= b + 0) : (a + 0 < b + 0)
    print ok ? "MET" : "NOT MET" }'; }
{
    echo "| target | measured | verdict |"
    echo "|---|---|---|"
    tgt() {  # tgt TEXT MEASURED_TEXT VALUE OP BOUND
        echo "| $1 | $2 | $(verdict "$3" "$4" "$5") |"
    }
    for st in 1 4; do
        sn="1 stream"; [ $st = 1 ] || sn="$st streams"
        a=$(med "bulk$st" airlock) h=$(med "bulk$st" haproxy) d=$(med "bulk$st" direct)
        x=$(ratio "$a" "$h"); tgt "bulk, $sn: airlock >= 1.3x HAProxy" "$(rx "$x")" "$x" ">=" 1.3
        x=$(ratio "$a" "$d"); tgt "bulk, $sn: airlock >= 0.75x direct" "$(rx "$x")" "$x" ">=" 0.75
    done
    for p in 1 16; do
        b=1.1; [ $p = 16 ] && b=1.2
        for t in get set; do
            x=$(ratio "$(med "redis_${t}_p${p}_rps" airlock)" "$(med "redis_${t}_p${p}_rps" haproxy)")
            tgt "redis ${t^^} -P $p: airlock >= ${b}x HAProxy" "$(rx "$x")" "$x" ">=" "$b"
        done
    done
    a=$(med pp_added airlock) h=$(med pp_added haproxy)
    tgt "latency added per hop (p50): airlock <= HAProxy" "$(fmt "$a" 1) us vs $(fmt "$h" 1) us" "$a" "<=" "$h"
    a=$(med mem_rss airlock)
    tgt "airlock memory per idle established connection <= 2 KiB (2048 bytes, RSS)" "$(fmt "$a" 0) bytes" "$a" "<=" 2048
    x=$(ratio "$(med vm_bulk_gbps airlock)" "$(med vm_bulk_gbps socat)")
    tgt "VM: airlock chain bulk >= 2x socat chain" "$(rx "$x")" "$x" ">=" 2
    a=$(med vm_pp_p50_us airlock) s=$(med vm_pp_p50_us socat)
    x=$(ratio "$a" "$s")
    tgt "VM: airlock chain ping-pong p50 < socat chain" "$(rx "$x") socat's" "$a" "<" "$s"
} >"$TARGETS"

MACHINE="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(free -g | awk '/^Mem:/ { print $2 }') GiB, kernel $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
VERSIONS="airlock $AIRLOCK_REV, $(haproxy -v | head -n1 | awk '{ print "HAProxy " $3 }'), $(nginx -v 2>&1 | sed 's/.*nginx\//nginx /'), $(socat -V | awk '/socat version/ { print "socat " $3; exit }'), $(iperf3 --version | head -n1 | awk '{ print "iperf3 " $2 }'), $(redis-server --version | awk '{ print "redis " $3 }' | sed 's/v=//'), $(dpkg-query -W -f='wrk ${Version}' wrk)"
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')

# every measurement, round by round (to judge the noise)
RAW=$WORK/raw.md
{
    echo "| workload | unit | direct | airlock | HAProxy | nginx | socat |"
    echo "|---|---|---|---|---|---|---|"
    while IFS='|' read -r m label unit _ _; do
        [ "$m" = pp_added ] && continue
        [ -n "$(awk -F'\t' -v m="$m" '$1 == m' "$RESULTS")" ] || continue
        line="| $label | $unit |"
        for s in $SYSTEMS; do
            v=$(awk -F'\t' -v m="$m" -v s="$s" '$1 == m && $2 == s { printf "%s%s", sep, $4; sep = " / " }' \
                <(sort -t$'\t' -k3,3n "$RESULTS"))
            line="$line ${v:--} |"
        done
        echo "$line"
    done <<<"$ROWS"
} >"$RAW"

report() {
    echo "## Results"
    echo
    echo "- Command: \`$CMDLINE\` ($ROUNDS round(s), $ELAPSED s in all)"
    echo "- Machine: $MACHINE"
    echo "- Load on the machine: shared and noisy (other jobs run beside the benchmark); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- Versions: $VERSIONS"
    echo "- Date: $DATE"
    echo
    echo "Medians over the rounds; in brackets the ratio to direct (no proxy) measured in the same run."
    echo "Memory: delta of the proxy's processes over $IDLE_N idle connections ($IDLE_N_SOCAT for socat, one process each), per connection."
    echo
    cat "$TABLE"
    if [ -s "$VMTABLE" ]; then
        echo
        echo "vsock, tcp -> relay -> vsock -> relay -> tcp inside the qemu test VM ($VM_NOTE); emulated (TCG), so ratios only:"
        echo
        cat "$VMTABLE"
    elif [ -n "$VM_NOTE" ]; then
        echo
        echo "vsock: $VM_NOTE"
    fi
    echo
    echo "### Targets"
    echo
    cat "$TARGETS"
}

echo
report
echo
log "done in ${ELAPSED}s"

if [ "$DOCS" = yes ]; then
    DOC=$ROOT/docs/benchmarks.md
    NOTES=""
    if [ -f "$DOC" ]; then  # keep the hand-written notes at the end
        NOTES=$(sed -n '/^<!-- notes: kept by bench\/relay.sh -->$/,$p' "$DOC")
    fi
    {
        cat <<EOF
# Benchmarks

Produced by \`bench/relay.sh\`; everything above the notes is rewritten by each
full run. Run it with:

\`\`\`sh
bench/relay.sh              # full run, 5 rounds, ~15 minutes; rewrites this file
bench/relay.sh --quick      # smoke run, ~3 minutes; prints only
bench/relay.sh --only redis,latency --rounds 5
\`\`\`

It installs its peers from Debian (\`bench/deps.sh\`), builds airlock (\`make\`) and
\`bench/benchtool.c\`, and compares, on loopback, on every workload:

- **direct**: the client talks to the server itself (the baseline);
- **airlock** \`relay tcp:127.0.0.1:P tcp:127.0.0.1:T --log-level warn\` (default threads: one per core);
- **HAProxy** \`mode tcp\`, \`nbthread 2\`, splicing on (\`bench/conf/haproxy.cfg.in\`): \`option splice-request\` +
  \`option splice-response\` for bulk, \`option splice-auto\` for the rest, its better setting for each
  (splice-auto did not splice at all under iperf3 here, and ran at half the speed; always
  splicing costs it 15-25% on redis);
- **nginx** stream, \`worker_processes 2\` (\`bench/conf/nginx-stream.conf.in\`);
- **socat** \`TCP-LISTEN:P,fork,nodelay,backlog=4096 TCP:127.0.0.1:T,nodelay\` (a process per connection).

Method: each workload starts its server and the four proxies (one listener each, the
same target); then in each round it measures every system once, the order rotating by
one each round (A B C D E, B C D E A, ...), so that all systems see the same noise.
The tables give the median over the rounds and the ratio to direct measured in the same
run. Nothing is pinned: client, proxy and server share the two cores as the scheduler
decides (the same for every system).

| workload | how |
|---|---|
| bulk | \`iperf3 -t $DUR -P 1\` and \`-P 4\` through the proxy to \`iperf3 -s\`; receiver Gbit/s |
| redis | \`redis-benchmark -c 50 -t set,get\` with \`-n $REDIS_N\`, and with \`-P 16 -n $REDIS_NP\`; req/s, p50, p99 |
| HTTP | \`wrk -t 2 -c 50 -d ${DUR}s --latency\` to an nginx origin returning an 84-byte body from memory; req/s, p99 |
| churn | \`benchtool churn\`: $CHURN_PAR connections in flight, each connects, sends 16 bytes, reads the 16-byte echo, closes; $DUR s; connections/s |
| latency | \`benchtool pingpong\`: one connection, 64-byte request echoed back, $DUR_LAT s; p50/p99 RTT. Added per hop = proxy p50 - direct p50 of the same round, median over the rounds |
| memory | (3 rounds at most) \`benchtool idle\`: open N connections through a freshly started proxy to an echo sink, one byte each way on each (so each is established end to end), hold them; (sum of the proxy processes' RSS (and PSS) after - before) / N. N = 10,000, or what the open-files limit allows at 4 fds per connection in one process (room for a proxy that keeps a splice pipe on each connection, as airlock did before 02:00 UTC on 2026-11-22; here $IDLE_N), and $IDLE_N_SOCAT for socat (a process per connection). Also the proxy's open files per connection |
| scaling | \`benchtool load\`: 1, 10, 100, 1,000 connections, each a ping-pong of 4 KiB each way, $DUR_SCALE s after connecting; MB/s each way |
| vsock | \`bench/vm_bench.sh\` in the qemu test VM (\`tests/vm/vm.sh\`): \`vsockbench\` bulk ($VM_MIB MiB) and ping-pong (64 B, $VM_ITERS round trips) through tcp -> relay -> vsock -> relay -> tcp, with airlock and with socat as relays, and raw vsock; emulated, so ratios only |

EOF
        report
        echo
        echo "<details><summary>Every measurement, rounds in order (round 1 / 2 / ...)</summary>"
        echo
        cat "$RAW"
        echo
        echo "</details>"
        echo
        if [ -n "$NOTES" ]; then echo "$NOTES"; else echo "<!-- notes: kept by bench/relay.sh -->"; fi
    } >"$DOC.tmp"
    mv "$DOC.tmp" "$DOC"
    log "wrote $DOC"
fi
