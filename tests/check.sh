#!/bin/bash
# check.sh BUILD_DIR - runs every test: unit and fuzz-corpus replays (meson),
# integration tests with real peers, and the vsock chain in the test VM.
# Ends with one line "N passed, N failed, N skipped"; exits 1 if any failed.
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build-test}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac
export AIRLOCK=$BUILD/airlock
# the sanitizers must not let a leak at exit pass unnoticed, nor ignore errors
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

passed=0 failed=0 skipped=0
failures=()

record() { # name status seconds
    case $2 in
    0) passed=$((passed + 1)); printf 'PASS %-40s %4ss\n' "$1" "$3" ;;
    77) skipped=$((skipped + 1)); printf 'SKIP %-40s %4ss\n' "$1" "$3" ;;
    *) failed=$((failed + 1)); failures+=("$1"); printf 'FAIL %-40s %4ss (status %s)\n' "$1" "$3" "$2" ;;
    esac
}

echo "== unit and fuzz-corpus tests (meson)"
if meson test -C "$BUILD" --print-errorlogs >"$BUILD/meson-test.out" 2>&1; then :; fi
while read -r status name; do
    case $status in
    OK) record "$name" 0 - ;;
    SKIP) record "$name" 77 - ;;
    *) record "$name" 1 - ;;
    esac
done < <(sed -n 's/^ *[0-9]*\/[0-9]* \(.*\) \+\(OK\|FAIL\|SKIP\|TIMEOUT\|ERROR\) .*$/\2 \1/p' "$BUILD/meson-test.out" |
    awk '{s=$1; $1=""; gsub(/^ +| +$/, ""); sub(/^airlock:/, ""); gsub(/ \/ /, "/"); print s, $0}')
grep -q 'FAIL\|ERROR\|TIMEOUT' "$BUILD/meson-test.out" && sed -n '/^---/,$p' "$BUILD/meson-test.out" | head -80

echo "== integration tests"
for t in tests/integration/t_*.sh; do
    name=integration/$(basename "$t" .sh)
    start=$(date +%s)
    log=$BUILD/$(basename "$t" .sh).log
    timeout -k 5 300 bash "$t" >"$log" 2>&1
    status=$?
    record "$name" "$status" $(($(date +%s) - start))
    if [ "$status" != 0 ] && [ "$status" != 77 ]; then
        tail -60 "$log" | sed 's/^/    | /' # the end of its logs too (lib.sh)
    elif [ "$status" = 77 ]; then
        grep -m1 '^SKIP' "$log" | sed 's/^/    /'
    fi
done

echo "== vsock in the test VM"
start=$(date +%s)
tests/vm/run.sh >"$BUILD/vm.log" 2>&1
status=$?
record vm/vsock_chain "$status" $(($(date +%s) - start))
if [ "$status" = 77 ]; then
    grep -m1 '^SKIP' "$BUILD/vm.log" | sed 's/^/    /'
elif [ "$status" != 0 ]; then
    tail -30 "$BUILD/vm.log" | sed 's/^/    | /'
fi

echo
[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
