#!/bin/bash
# router.sh - the SNI router: airlock router against HAProxy routing on
# req.ssl_sni, and against no proxy at all, on loopback. TLS is never
# terminated by either router; the origin is nginx https (2 workers, full
# handshakes: no session cache, no tickets).
#
#   usage: bench/router.sh [--rounds N] [--threads N] [--quick] [--no-cost]
#
#   bulk     curl downloads a 512 MiB file over TLS (one connection, SNI
#            bench.test): MB/s
#   rate     bench/tlsrate.c: new TLS connections per second (full
#            handshake, one small HTTP request, close) from 4 processes
#   cost     after the timed rounds, untimed: COST_N connections (the rate
#            workload, counted) through each router, three times: plain
#            (CPU time and context switches of the router's threads, from
#            /proc/PID/task/*/schedstat and status), under strace -c -f
#            (syscalls by kind), and, for airlock, under perf record -g
#            (the share of its CPU in the ClientHello peek and the route)
#   --rounds N  rounds [5; --quick: 1]
#   --threads N threads of each router (airlock --threads, HAProxy
#               nbthread) [one per core, airlock's default]
#   --quick     short smoke run (~1 min)
#   --no-cost   skip the cost pass
#
# Method as bench/relay.sh: every system once per round, the order rotating
# by one each round, so each sees the same noise; medians over the rounds and
# ratios to "direct" measured in the same run. Prints a markdown table for
# docs/benchmarks.md. AIRLOCK_BENCH_KEEP=1 keeps the work dir.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CMDLINE="bench/router.sh${*:+ $*}"
ROUNDS="" QUICK=0 COST=1 THREADS=$(nproc)
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --no-cost) COST=0; shift ;;
    -h | --help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "router.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ $QUICK = 1 ]; then
    ROUNDS=${ROUNDS:-1} DUR=2 BIG_MIB=128 COST_N=400
else
    ROUNDS=${ROUNDS:-5} DUR=4 BIG_MIB=512 COST_N=3000
fi
SYSTEMS="direct airlock haproxy"
. "$HERE/lib.sh"
bench_build
bench_init router
mkdir -p "$WORK/www"
chmod 755 "$WORK" "$WORK/www" # nginx workers run as nobody
cc -std=gnu17 -O2 -Wall -Wextra -o "$WORK/tlsrate" "$HERE/tlsrate.c" -lssl -lcrypto ||
    die "cannot build tlsrate"

rec() {  # rec METRIC SYSTEM VALUE
    if [ -n "$3" ]; then printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; else log "  no value for $1 / $2"; fi
}

# ---------------------------------------------------------------- setup
declare -A PPORT=()
read -r TARGET 'PPORT[airlock]' 'PPORT[haproxy]' <<<"$(free_ports 3)"
PPORT[direct]=$TARGET
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench.test \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
head -c $((BIG_MIB * 1024 * 1024)) /dev/zero >"$WORK/www/big"
fill "$HERE/conf/nginx-tls-origin.conf.in" "$WORK/nginx.conf" TARGET="$TARGET" DIR="$WORK"
start origin nginx -p "$WORK" -e "$WORK/nginx.err" -c "$WORK/nginx.conf"
# a table of a few names, the benchmarked one not first
start airlock "$AIRLOCK" router "tcp:127.0.0.1:${PPORT[airlock]}" --log-level warn --threads "$THREADS" \
    --route "other.bench.test=tcp:127.0.0.1:$TARGET" --route "*.wild.test=tcp:127.0.0.1:$TARGET" \
    --route "bench.test=tcp:127.0.0.1:$TARGET"
fill "$HERE/conf/haproxy-sni.cfg.in" "$WORK/haproxy.cfg" LISTEN="${PPORT[haproxy]}" TARGET="$TARGET" \
    THREADS="$THREADS"
start haproxy haproxy -db -f "$WORK/haproxy.cfg"
for s in $SYSTEMS; do wait_port "${PPORT[$s]}"; done

# ---------------------------------------------------------------- rounds
for ((r = 1; r <= ROUNDS; r++)); do
    for s in $(order "$r"); do
        p=${PPORT[$s]}
        v=$(curl -sk --resolve "bench.test:$p:127.0.0.1" "https://bench.test:$p/big" -o /dev/null \
            -w '%{speed_download}' 2>>"$LOGS/curl.log") || v=""
        rec bulk "$s" "$(awk -v b="$v" 'BEGIN { if (b > 0) printf "%.0f", b / 1e6 }')"
        out=$("$WORK/tlsrate" "$p" bench.test "$DUR" 4)
        echo "$s $out" >>"$LOGS/tlsrate.log"
        case $out in *" errors=0") ;; *) log "  $s: tlsrate reported errors: $out" ;; esac
        rec rate "$s" "$(sed -n 's/^conns_per_s=\([0-9]*\) .*/\1/p' <<<"$out")"
    done
    log "round $r done"
done

# ---------------------------------------------------------------- report
med() {  # med METRIC SYSTEM
    awk -F'\t' -v m="$1" -v s="$2" '$1 == m && $2 == s { print $3 }' "$RESULTS" | sort -n |
        awk '{ v[++n] = $1 } END { if (n) print (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b > 0) printf "%.2fx", a / b; else printf "-" }'; }
echo
echo "Command: \`$CMDLINE\` ($ROUNDS rounds, $THREADS threads per router, airlock $(git -C "$ROOT" rev-parse --short HEAD), $(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
echo "| system | bulk over TLS, MB/s | vs direct | new TLS connections/s | vs direct |"
echo "|--------|--------------------:|----------:|----------------------:|----------:|"
bd=$(med bulk direct) rd=$(med rate direct)
for s in $SYSTEMS; do
    b=$(med bulk "$s") c=$(med rate "$s")
    echo "| $s | ${b:--} | $(ratio "$b" "$bd") | ${c:--} | $(ratio "$c" "$rd") |"
done

[ "$COST" = 1 ] || exit 0

# ---------------------------------------------------------------- cost per connection (untimed)
# runtime_ns PID: CPU time of all of PID's threads; switches PID: their
# context switches (each one a wakeup or a preemption)
runtime_ns() { cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
switches() {
    cat /proc/"$1"/task/*/status | awk '/^(non)?voluntary_ctxt_switches/ { s += $2 } END { print s }'
}
counted() {  # counted SYSTEM: COST_N connections through it
    local out
    out=$("$WORK/tlsrate" "${PPORT[$1]}" bench.test 0 4 "$COST_N")
    case $out in *" errors=0") ;; *) log "  $1: tlsrate reported errors: $out" ;; esac
}
# traced SYSTEM FILE CMD...: CMD attached to the system's process while
# COST_N connections go through it (once it is attached: strace says so,
# perf has written its header); CMD is stopped with SIGINT after
attached() { grep -q attached "$1.err" || [ -s "$1" ]; }
traced() {
    local s=$1 f=$2 pid
    shift 2
    rm -f "$f"
    "$@" -p "${PGIDS[$s]}" -o "$f" 2>"$f.err" &
    pid=$!
    poll_until 10 attached "$f" || die "$* did not attach: $(cat "$f.err")"
    counted "$s"
    kill -INT "$pid"
    wait "$pid" || true
}
log "cost pass: $COST_N connections per system and tool"
declare -A CPU=() CSW=()
for s in airlock haproxy; do
    pid=${PGIDS[$s]} t0=$(runtime_ns "${PGIDS[$s]}") c0=$(switches "${PGIDS[$s]}")
    counted "$s"
    CPU[$s]=$((($(runtime_ns "$pid") - t0) / COST_N / 1000))
    CSW[$s]=$(awk -v a="$(switches "$pid")" -v b="$c0" -v n="$COST_N" 'BEGIN { printf "%.1f", (a - b) / n }')
    traced "$s" "$WORK/strace.$s" strace -c -f
done
traced airlock "$WORK/perf.data" perf record -g -F 4999 --quiet
perf report -i "$WORK/perf.data" --stdio --children --sort sym -g none 2>/dev/null >"$WORK/perf.txt" || true
# share NAME...: the % of airlock's samples in (children of) these symbols
share() {
    awk -v names=" $* " '$1 ~ /%$/ && index(names, " " $NF " ") { s += $1 } END { printf "%.2f", s }' \
        "$WORK/perf.txt"
}
percall() {  # percall SYSTEM SYSCALL: calls per connection
    awk -v c="$2" -v n="$COST_N" '$NF == c && $4 ~ /^[0-9]+$/ { printf "%.1f", $4 / n; f = 1 }
        END { if (!f) printf "0" }' "$WORK/strace.$1"
}
echo
echo "Cost per connection, $COST_N connections of the rate workload each, untimed (\`strace -c -f\`,"
echo "\`perf record -g\`, /proc/PID/task/*/schedstat), $(date -u '+%Y-%m-%d %H:%M UTC'):"
echo
echo "| per connection | airlock | haproxy |"
echo "|----------------|--------:|--------:|"
echo "| CPU time of the router, µs | ${CPU[airlock]} | ${CPU[haproxy]} |"
echo "| context switches (wakeups) | ${CSW[airlock]} | ${CSW[haproxy]} |"
calls=$(cat "$WORK/strace.airlock" "$WORK/strace.haproxy" |
    awk '$4 ~ /^[0-9]+$/ && $NF !~ /^(total|syscall)$/ { print $NF }' | sort -u)
total() { awk -v n="$COST_N" '$NF == "total" { printf "%.1f", $4 / n }' "$WORK/strace.$1"; }
echo "| syscalls, all | $(total airlock) | $(total haproxy) |"
for c in $calls; do echo "| $c | $(percall airlock "$c") | $(percall haproxy "$c") |"; done
peek=$(share __x64_sys_recvfrom tls_hello_feed) route=$(share route_pick router_route)
echo
echo "airlock's peek (the recv(MSG_PEEK) syscall and the ClientHello parser): $peek % of its CPU, about"
echo "$(awk -v p="$peek" -v c="${CPU[airlock]}" 'BEGIN { printf "%.1f", p * c / 100 }') µs per connection;" \
    "the route lookup (route_pick): $route % of its CPU."
