# lib.sh - shared helpers for integration tests; source it first.
#
# Each test is a bash script t_NAME.sh that proves one behaviour with real
# binaries on loopback (or in network namespaces it makes itself). Exit 0:
# pass; 77: skip (print "SKIP why" first); anything else: fail.
# $AIRLOCK is the binary under test (tests/check.sh sets it).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
AIRLOCK=${AIRLOCK:-$ROOT/build-test/airlock}
NETPEER=${NETPEER:-$(dirname "$AIRLOCK")/tests/netpeer}
T=$(mktemp -d /tmp/airlock-test.XXXXXX)
PIDS=()

cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$T"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP $*"; exit 77; }
log() { echo "# $*"; }

# A free TCP port on 127.0.0.1 (ports 20000-45000, checked with ss).
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 25000))
        ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}

# wait_for COMMAND...: retries for up to 10 s.
wait_for() {
    local i
    for i in $(seq 1 100); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "timed out waiting for: $*"
}

tcp_up() { ss -Htln "sport = :$1" | grep -q .; }
unix_up() { [ -S "$1" ]; }

# start NAME COMMAND...: runs COMMAND in the background, output to $T/NAME.log;
# the pid is in $LAST_PID and killed at exit.
start() {
    local name=$1
    shift
    "$@" >"$T/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# airlock NAME ARGS...: starts airlock ARGS... like start().
airlock() {
    local name=$1
    shift
    start "$name" "$AIRLOCK" "$@"
}

fd_count() { ls "/proc/$1/fd" | wc -l; }

# stop PID: SIGTERM and wait; returns the exit status.
stop() {
    kill -TERM "$1" 2>/dev/null || true
    local rc=0
    wait "$1" || rc=$?
    return $rc
}

# metric NAME LABELS PORT: one value from the metrics endpoint.
metric() {
    curl -sf "http://127.0.0.1:$3/metrics" | awk -v k="$1{$2}" '$1 == k { print $2 }'
}
