# lib.sh - helpers shared by the benchmarks that compare systems (relay.sh,
# router.sh) and conns.sh; source it. Starting, waiting and stopping are
# scripts/lib.sh's (free_ports, wait_port, die, ...). They use the caller's
# $HERE (bench/), $ROOT, $LOGS (log directory), $BT (benchtool) and $SYSTEMS
# (the compared systems, in order).
# shellcheck shell=bash disable=SC2034 # variables and optional arguments for the callers
STOP_GRACE=3 # a benchmarked server that does not stop on SIGTERM is killed
. "$ROOT/scripts/lib.sh"

# bench_build: log lines on stderr stamped with the seconds since now,
# the packages (bench/deps.sh) and the release build; sets START_TS and AIRLOCK
bench_build() {
    START_TS=$(date +%s)
    LOG_FD=2 LOG_T0=$START_TS
    "$HERE/deps.sh"
    log "building airlock (make)"
    make -s -C "$ROOT" >/dev/null || die "make failed"
    AIRLOCK=$ROOT/build/airlock
}

# dirtool_build BUILD: builds tests/tools/dirtool in the meson build BUILD,
# or brings it up to date (the release build $ROOT/build is made first when
# missing), and prints its path
dirtool_build() {
    [ "$1" = "$ROOT/build" ] && [ ! -f "$1/build.ninja" ] && make -C "$ROOT" >/dev/null
    [ -f "$1/tests/dirtool" ] || meson configure "$1" -Dtests=true >/dev/null 2>&1 || true
    ninja -C "$1" tests/dirtool >/dev/null || die "cannot build $1/tests/dirtool"
    echo "$1/tests/dirtool"
}

# bench_init NAME: the work directory /tmp/airlock-bench-NAME.* $WORK (logs in $LOGS, an empty
# $RESULTS; removed at exit unless AIRLOCK_BENCH_KEEP=1), benchtool built
# as $BT; at exit every process started is stopped
bench_init() {
    scratch_dir WORK "airlock-bench-$1" "${AIRLOCK_BENCH_KEEP:-}"
    LOGS=$WORK/logs
    mkdir -p "$LOGS"
    RESULTS=$WORK/results.tsv
    : >"$RESULTS"
    trap 'exit 130' INT TERM
    cc -std=c17 -O2 -Wall -Wextra -o "$WORK/benchtool" "$HERE/benchtool.c" || die "cannot build benchtool"
    BT=$WORK/benchtool
}

# start NAME CMD...: CMD in its own session and process group, its output
# appended to $LOGS/NAME.log; its pid (and group) is PGIDS[NAME]
declare -A PGIDS=()
start() {
    local name=$1
    shift
    proc_start -g -a "$LOGS/$name.log" "$@"
    PGIDS[$name]=$LAST_PID
}
stop() { # stop NAME: SIGTERM the group, SIGKILL after STOP_GRACE (3 s)
    proc_stop "${PGIDS[$1]:-}" || true
    unset "PGIDS[$1]"
}

fill() {  # fill TEMPLATE OUT key=value...
    local in=$1 out=$2 kv
    shift 2
    cp "$in" "$out"
    for kv in "$@"; do sed -i "s|@${kv%%=*}@|${kv#*=}|g" "$out"; done
}

# order R: the systems for round R, rotated by R-1
order() {
    local r=$1 sys n i
    read -r -a sys <<<"$SYSTEMS"
    n=${#sys[@]}
    for ((i = 0; i < n; i++)); do printf '%s ' "${sys[$(((i + r - 1) % n))]}"; done
}
