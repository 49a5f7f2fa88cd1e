#!/bin/bash
# standby.sh - the evaluation of the dissertation (../shared/seeds/001, ch. 5)
# on this machine: Trivial vs Standby, and On-demand for the cold start.
#
#   usage: bench/standby.sh [--users U] [--session DUR] [--quick] [--keep]
#                           [--launcher native|qemu] [--min-idle K] [--steady]
#
#   Trivial    one smartgrid-server per user, always running (restarted
#              after each logout), each with its user's database in place;
#              an airlock router with one static SNI route per user.
#   Standby    an airlock router on the directory and a pool of
#              smartgrid-server instances: min_idle standing by, grown and
#              recycled by the pool, the user's encrypted database brought in
#              by airlock (state:) at the reservation, stored back at LOGOUT.
#   On-demand  a fresh smartgrid-server started when the user arrives: the
#              time to its ready line plus its LOGIN (measured directly,
#              without a router: a lower bound of what a router would see).
#
# For every active-user ratio (50 %, 25 %, 5 % of U), write ratio (0, 10,
# 50 %) and request interval (short 1 s, long 5 s), Trivial and Standby run
# one after the other (their order alternates): smartgrid-load drives the
# active users in customer mode (each one session of --session, arriving
# over a 5 s ramp-up), while a sampler sums the RSS of every
# smartgrid-server process every 0.5 s; CPU is the cpuacct cgroup of the
# system (airlock, instances, hooks; not the load generator). One more run
# each in meter mode (25 % of the users, one LONG_WRITE of 12 h each).
#
# Writes docs/evaluation/results.csv, logins.csv (every LOGIN's latency),
# ondemand.csv, PNG and SVG plots
# (gnuplot) and the tables between the markers in docs/evaluation.md.
# --quick: active 50 % and 5 %, write 10 %, short interval, 10 s sessions.
# --launcher qemu: every smartgrid-server (Trivial's, the pool's, On-demand's)
# in its own small qemu guest (bench/qemu-instance.sh: TCG, 96 MiB, 1 vCPU),
# like an enclave that boots in seconds; memory is then the RSS of the qemu
# processes. Its defaults fit this 2-core machine (docs/evaluation.md): 20
# users, min_idle 4, write 10 %, short interval, results in
# docs/evaluation/qemu/ and between the results-qemu markers.
# --min-idle K: Standby's reserve (default 4); its results go apart, to
# docs/evaluation/LAUNCHER-min_idleK/ and the results-LAUNCHER-min_idleK markers.
# --steady: sessions that begin as others end. Every run drives all U users,
# the active ratio of them at a time (smartgrid-load --concurrency): after
# the first wave, each logout is followed by the next user's login, so
# Trivial's restart after a logout meets a login as Standby's replacement
# start does. 10 s sessions, write 10 %, short interval, no meter runs;
# logins.csv keeps only the LOGINs that begin after the run's first LOGOUT
# (the steady state). Results in docs/evaluation/CONFIG-steady/ and the
# results-CONFIG-steady markers.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
USERS=200
SESSION=20s
RAMP=5s
MIN_IDLE=4
ACTIVE="50 25 5"
WRITES="0 10 50"
INTERVALS="1s 5s"
ONDEMAND_USERS=30
KEEP=
LAUNCHER=native
SET_USERS='' SET_SESSION='' SET_MIN_IDLE='' QUICK='' STEADY=''
while [ $# -gt 0 ]; do
    case $1 in
    --users) SET_USERS=$2; shift 2 ;;
    --session) SET_SESSION=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --keep) KEEP=1; shift ;;
    --launcher) LAUNCHER=$2; shift 2 ;;
    --min-idle) SET_MIN_IDLE=$2; shift 2 ;;
    --steady) STEADY=1; shift ;;
    *) echo "usage: bench/standby.sh [--users U] [--session DUR] [--quick] [--keep] [--launcher native|qemu] [--min-idle K] [--steady]" >&2; exit 2 ;;
    esac
done
LAUNCH=() # the argv prefix of every smartgrid-server
SAMPLE=(-x smartgrid-serve) # pgrep arguments: the processes whose RSS is the memory
BOOT=60 START_TIMEOUT=10s LOAD_TIMEOUT=30s OUT_SUB=
case $LAUNCHER in
native) ;;
qemu)
    # 20 always-running guests for Trivial (idle: well under 1 % of a core
    # each, about 230 MiB of RSS), a reserve of 4 booting in a few seconds
    # a client waits longer than the directory's assign_wait (START_TIMEOUT):
    # the directory answers a user it has no instance for, not the client's
    # own timeout
    LAUNCH=("$ROOT/bench/qemu-instance.sh") BOOT=600 START_TIMEOUT=120s LOAD_TIMEOUT=150s OUT_SUB=/qemu
    USERS=20 ACTIVE="50 25 5" WRITES=10 INTERVALS=1s ONDEMAND_USERS=10
    ;;
*) echo "standby.sh: --launcher native or qemu" >&2; exit 2 ;;
esac
[ -z "$QUICK" ] || ACTIVE="50 5" WRITES=10 INTERVALS=1s SESSION=10s ONDEMAND_USERS=10
[ -z "$STEADY" ] || WRITES=10 INTERVALS=1s SESSION=10s ONDEMAND_USERS=10
USERS=${SET_USERS:-$USERS} SESSION=${SET_SESSION:-$SESSION} MIN_IDLE=${SET_MIN_IDLE:-$MIN_IDLE}
# the configuration's name: where its results go (docs/evaluation/NAME/, the
# "results-NAME" markers; native's own at the top)
CONFIG=$LAUNCHER
[ -z "$SET_MIN_IDLE" ] || CONFIG=$LAUNCHER-min_idle$MIN_IDLE OUT_SUB=/$CONFIG
[ -z "$STEADY" ] || CONFIG=$CONFIG-steady OUT_SUB=/$CONFIG

LOG_FD=2
STOP_GRACE=60 # airlock stops its pool's instances before it exits
. "$ROOT/scripts/lib.sh"
"$ROOT/bench/deps.sh" >/dev/null
make -C "$ROOT" >/dev/null
B=$ROOT/build
OUT=$ROOT/docs/evaluation$OUT_SUB
mkdir -p "$OUT"
scratch_dir W standby-bench "$KEEP"
[ "$LAUNCHER" != qemu ] || SAMPLE=(-f "^qemu-system-x86_64 .*path=$W/")
CG=/sys/fs/cgroup/cpuacct/airlock-standby-bench
# shellcheck disable=SC2016 # expanded at exit
at_exit '[ ! -d "$CG" ] || rmdir "$CG" 2>/dev/null || true'
GW=$(free_port)                                      # the router's port
P0=$(free_range $((USERS + 4 * MIN_IDLE)))          # the instances' ports
OD_PORT=$(free_port)                                 # on-demand's server
DOMAIN=example

# stop_system: every process of the system under test, each started with
# proc_start -g: a trivial supervisor's group holds its server
stop_system() {
    touch "$W/stop" # trivial's supervisors stop restarting
    proc_stop_all
    rm -f "$W/stop"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
user_name() { printf 'user%04d' "$1"; }
# listening FIRST LAST N: N ports of FIRST..LAST have a listener
listening() { [ "$(ss -Htln "sport >= :$1 and sport <= :$2" | wc -l)" -eq "$3" ]; }
# in_cgroup LOG CMD...: proc_start -g of CMD in the benchmark's cpuacct cgroup
# (when there is one)
in_cgroup() {
    local log=$1
    shift
    # shellcheck disable=SC2016 # the inner shell's arguments
    proc_start -g "$log" bash -c '[ ! -d "$1" ] || echo $$ >"$1/tasks"; shift; exec "$@"' _ "$CG" "$@"
}
cpu_ns() { [ -d "$CG" ] && cat "$CG/cpuacct.usage" || echo 0; }
metric() {
    curl -sf --unix-socket "$W/metrics.sock" http://x/metrics | awk -v m="$1" '$1 == m { print $2 }'
}
idle_at_least() { [ "$(metric 'airlock_dir_instances{state="idle"}')" -ge "$1" ]; }

SERVER=("${LAUNCH[@]}" "$B/smartgrid-server" --cert "$W/grid/server.pem" --key "$W/grid/server.key"
    --ca "$W/grid/ca.pem" --domain "$DOMAIN")

log "provisioning $USERS users (1 day of 15-second samples each)"
[ "$LAUNCHER" != qemu ] || "${LAUNCH[@]}" --prepare "$B/smartgrid-server"
"$B/smartgrid-provision" --out "$W/grid" --users "$USERS" --days 1 --domain "$DOMAIN" >/dev/null
mkdir -p /sys/fs/cgroup/cpuacct 2>/dev/null && mkdir -p "$CG" 2>/dev/null ||
    log "no cpuacct cgroup here: CPU not measured"

# ---- the systems

# trivial_start LOG, standby_start LOG: start the system, airlock's log in LOG
trivial_start() {
    local i u port
    rm -rf "$W/trivial" && mkdir -p "$W/trivial"
    {
        echo "threads: 1"
        echo "routers:"
        echo "  - name: grid"
        echo "    listen: tcp:127.0.0.1:$GW"
        echo "    routes:"
        for ((i = 1; i <= USERS; i++)); do
            echo "      - {name: $(user_name $i).grid.$DOMAIN, target: tcp:127.0.0.1:$((P0 + i - 1))}"
        done
    } >"$W/trivial.yaml"
    for ((i = 1; i <= USERS; i++)); do
        u=$(user_name $i) port=$((P0 + i - 1))
        mkdir -p "$W/trivial/$u" && cp "$W/grid/db/$u.db" "$W/trivial/$u/"
        in_cgroup /dev/null bash -c 'while [ ! -e "$1" ]; do "${@:3}" >>"$2.out" 2>>"$2"; done' _ \
            "$W/stop" "$W/trivial/$u.log" "${SERVER[@]}" --listen "tcp:127.0.0.1:$port" --dir "$W/trivial/$u"
    done
    in_cgroup "$1" "$B/airlock" run -c "$W/trivial.yaml"
    wait_until 60 listening "$P0" $((P0 + USERS - 1)) "$USERS"
    wait_until "$BOOT" trivial_ready # a guest's port listens before it boots
    wait_until 10 listening "$GW" "$GW" 1
}

standby_start() {
    rm -rf "$W/instances" "$W/store" && mkdir -p "$W/instances" && cp -r "$W/grid/db" "$W/store"
    cat >"$W/standby.yaml" <<EOF
threads: 1
metrics: unix:$W/metrics.sock
directory:
  backend: memory
  reserve_timeout: 10s
  session_ttl: 10m
  # a user waits for an instance as long as a start may take: under a slow
  # launcher (qemu) a burst outruns the reserve, and a shorter wait would
  # refuse those users rather than measure how long they waited
  assign_wait: $START_TIMEOUT
  # the load generator is one address, and its users arrive at once: the
  # bounds on unauthenticated reservations would measure themselves
  max_pending_per_client: 0
  pending_share: 100
routers:
  - name: grid
    listen: tcp:127.0.0.1:$GW
    send_proxy: v2
    directory: grid
    domain: grid.$DOMAIN
EOF
    POOL_LAUNCHER="${LAUNCH[*]}" POOL_START_TIMEOUT=$START_TIMEOUT \
        "$ROOT/apps/smartgrid/pool-yaml.sh" "$B" "$W/grid" "$W/store" "$W/instances" \
        "$P0-$((P0 + USERS + 4 * MIN_IDLE - 1))" "$MIN_IDLE" $((USERS + 2 * MIN_IDLE)) "$MIN_IDLE" 5s \
        "$DOMAIN" >>"$W/standby.yaml"
    in_cgroup "$1" "$B/airlock" run -c "$W/standby.yaml"
    wait_until "$BOOT" idle_at_least "$MIN_IDLE"
}

trivial_ready() { [ "$(cat "$W"/trivial/*.out 2>/dev/null | grep -c '^WAITING_LOGIN$')" -ge "$USERS" ]; }

# sampler FILE: every 0.5 s, "ms instances rss_kib" of all smartgrid-server
# processes (or qemu processes)
sampler() {
    local p rss n kb
    while :; do
        rss=0 n=0
        for p in $(pgrep "${SAMPLE[@]}"); do
            kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || continue
            [ -n "$kb" ] || continue
            rss=$((rss + kb)) n=$((n + 1))
        done
        echo "$(now_ms) $n $rss"
        sleep 0.5
    done >"$1"
}

# run SYSTEM ACTIVE% WRITE% INTERVAL: one measured run (INTERVAL meter: meter
# mode, one LONG_WRITE of 12 h per user); appends to results.csv
run() {
    local sys=$1 act=$2 wr=$3 iv=$4 n=$((USERS * $2 / 100)) tag="$1-$2-$3-$4" c0 c1 spid mode users
    log "$sys: $act % active ($n users${STEADY:+ at a time, $USERS in all}), writes $wr %, a request every $iv"
    users=(--users "$n")
    [ -z "$STEADY" ] || users=(--users "$USERS" --concurrency "$n")
    "${sys}_start" "$W/$tag-airlock.log"
    sleep 2 # settle: every standby instance idle, trivial's all listening
    sampler "$W/$tag.mem" &
    spid=$!
    PIDS+=("$spid") # stopped at exit too: it would hold the bench lock's descriptor
    c0=$(cpu_ns)
    if [ "$iv" = meter ]; then
        mode=(--mode meter --hours 12)
    else
        mode=(--mode customer --duration "$SESSION" --frequency "$iv"
            --write-ratio "0.$(printf '%02d' "$wr")")
    fi
    "$B/smartgrid-load" --connect "tcp:127.0.0.1:$GW" --certs "$W/grid" --keys "$W/grid/keys.csv" \
        --domain "$DOMAIN" "${mode[@]}" "${users[@]}" --ramp-up "$RAMP" --timeout "$LOAD_TIMEOUT" --csv "$W/$tag.csv" \
        >"$W/$tag.out" 2>&1 || log "$sys: load errors: $(grep '^total' "$W/$tag.out")"
    c1=$(cpu_ns)
    # steady: only the LOGINs that begin after the first LOGOUT
    awk -F, -v k="$sys,$act,$wr,$iv" -v steady="$STEADY" '
        NR == FNR { if ($2 == "LOGOUT" && (first == "" || $3 < first)) first = $3; next }
        $2 == "LOGIN" && $5 == 200 && (!steady || $3 > first) { print k "," $4 }' \
        "$W/$tag.csv" "$W/$tag.csv" >>"$OUT/logins.csv"
    proc_stop "$spid" 1 || true
    stop_system
    awk -v sys="$sys" -v act="$act" -v wr="$wr" -v iv="$iv" -v cpu=$(((c1 - c0) / 1000000)) '
        FILENAME ~ /\.mem$/ { s += $3; c += $2; k++; if ($3 > m) m = $3; next }
        /^op=/ { split($0, f, /[ =]/); lat[f[2]] = f[8] "," f[10] "," f[12]; ok[f[2]] = f[4]; err[f[2]] = f[6] }
        /^total / { split($0, f, /[ =]/); errors = f[5] }
        END {
            for (op in lat)
                printf "%s,%s,%s,%s,%s,%s,%s,%s,%.1f,%.1f,%.1f,%.2f,%s\n", sys, act, wr, iv, op,
                    ok[op], err[op], lat[op], s / k / 1024, m / 1024, c / k, cpu / 1000, errors
        }' "$W/$tag.mem" "$W/$tag.out" >>"$OUT/results.csv"
}

# ---- the matrix, Trivial and Standby alternating first

echo "system,active_pct,write_pct,interval,op,ok,errors,p50_ms,p95_ms,p99_ms,mem_mean_mib,mem_max_mib,instances_mean,cpu_s,load_errors" \
    >"$OUT/results.csv"
echo "system,active_pct,write_pct,interval,login_ms" >"$OUT/logins.csv"
first=trivial second=standby
for act in $ACTIVE; do
    for wr in $WRITES; do
        for iv in $INTERVALS; do
            run $first "$act" "$wr" "$iv"
            run $second "$act" "$wr" "$iv"
            t=$first first=$second second=$t
        done
    done
done
[ -n "$STEADY" ] || for sys in trivial standby; do
    run $sys 25 100 meter
done

# ---- on-demand: a process started per arriving user

log "on-demand: $ONDEMAND_USERS users, each on a fresh server started when they arrive"
echo "user,ready_ms,login_ms,total_ms" >"$OUT/ondemand.csv"
mkdir -p "$W/od"
for ((i = 1; i <= ONDEMAND_USERS; i++)); do
    u=$(user_name $i)
    rm -rf "$W/od/$u" && mkdir -p "$W/od/$u" && cp "$W/grid/db/$u.db" "$W/od/$u/"
    rm -f "$W/od/fifo" && mkfifo "$W/od/fifo"
    t0=$(date +%s%N)
    "${SERVER[@]}" --listen "tcp:127.0.0.1:$OD_PORT" --dir "$W/od/$u" >"$W/od/fifo" 2>/dev/null &
    pid=$!
    PIDS+=("$pid") # stopped at exit
    read -r line <"$W/od/fifo" # WAITING_LOGIN
    t1=$(date +%s%N)
    [ "$line" = WAITING_LOGIN ] || { log "on-demand: '$line'"; exit 1; }
    "$B/smartgrid-load" --connect "tcp:127.0.0.1:$OD_PORT" --certs "$W/grid" --keys "$W/grid/keys.csv" \
        --domain "$DOMAIN" --mode customer --users "$i-$i" --duration 0s --csv "$W/od/$u.csv" \
        >/dev/null 2>&1 || true
    proc_reap "$pid" 10 || true # it exits after the LOGOUT; killed if it did not come
    login=$(awk -F, '$2 == "LOGIN" && $5 == 200 { print $4 }' "$W/od/$u.csv")
    [ -n "$login" ] || { log "on-demand: no LOGIN for $u"; continue; }
    awk -v u="$u" -v r=$(((t1 - t0) / 1000)) -v l="$login" \
        'BEGIN { printf "%s,%.2f,%.2f,%.2f\n", u, r / 1000, l, r / 1000 + l }' >>"$OUT/ondemand.csv"
done

# ---- tables and plots

"$ROOT/bench/standby-report.sh" "$OUT" "$USERS" "$SESSION" "$MIN_IDLE" "$CONFIG"
