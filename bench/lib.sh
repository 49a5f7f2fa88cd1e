# lib.sh - helpers shared by bench/relay.sh and bench/router.sh; source it.
# They use the caller's $LOGS (log directory), $BT (benchtool), $SYSTEMS
# (the compared systems, in order), the associative array PGIDS and die().

# bench_build NAME: log and die (messages as NAME.sh), the packages
# (bench/deps.sh) and the release build; sets START_TS and AIRLOCK
bench_build() {
    BENCH_NAME=$1
    START_TS=$(date +%s)
    "$HERE/deps.sh"
    log "building airlock (make)"
    make -s -C "$ROOT" >/dev/null || die "make failed"
    AIRLOCK=$ROOT/build/airlock
}
log() { printf '[%4ss] %s\n' $(($(date +%s) - START_TS)) "$*" >&2; }
die() { echo "$BENCH_NAME.sh: $*" >&2; exit 1; }

# bench_init NAME: the work directory $WORK (logs in $LOGS, an empty
# $RESULTS), benchtool built as $BT, and at exit every process group in
# PGIDS killed and $WORK removed (AIRLOCK_BENCH_KEEP=1 keeps it)
bench_init() {
    BENCH_NAME=$1
    WORK=$(mktemp -d "/tmp/airlock-bench-$1.XXXXXX")
    LOGS=$WORK/logs
    mkdir -p "$LOGS"
    RESULTS=$WORK/results.tsv
    : >"$RESULTS"
    declare -gA PGIDS=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    cc -std=c17 -O2 -Wall -Wextra -o "$WORK/benchtool" "$HERE/benchtool.c" || die "cannot build benchtool"
    BT=$WORK/benchtool
}
bench_cleanup() {
    local g
    for g in "${PGIDS[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
    if [ "${AIRLOCK_BENCH_KEEP:-0}" = 1 ]; then
        echo "$BENCH_NAME.sh: work dir kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}

# start NAME CMD...: run CMD in its own session/process group; PGIDS[NAME]
start() {
    local name=$1
    shift
    setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 &
    PGIDS[$name]=$!
}
stop() {  # stop NAME: SIGTERM the group, SIGKILL after 3 s
    local name=$1 g=${PGIDS[$1]:-} i st
    [ -n "$g" ] || return 0
    kill -TERM -- "-$g" 2>/dev/null || true
    for i in $(seq 30); do  # until the leader is gone (or a zombie: it is our child)
        st=$(cut -d' ' -f3 "/proc/$g/stat" 2>/dev/null) || break
        [ "$st" = Z ] && break
        sleep 0.1
    done
    kill -KILL -- "-$g" 2>/dev/null || true
    wait "$g" 2>/dev/null || true
    unset "PGIDS[$name]"
}
waitport() { "$BT" waitport "$1" 10 || die "nothing listens on port $1 (see $LOGS)"; }

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
