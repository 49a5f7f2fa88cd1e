#!/bin/sh
# vsock_chain.sh - real-vsock relay chain test; runs INSIDE the test VM
# (busybox sh, as root), started by tests/vm/run.sh through tests/vm/vm.sh.
#
#   usage: vsock_chain.sh [airlock|socat] [LOG_LEVEL] [BYTES]
#
#   client -> tcp:127.0.0.1:6000 -> [relay, "host side"] -> vsock:1:5000
#          -> [relay vsock:any:5000, "enclave side"] -> tcp:127.0.0.1:7000 -> server
#
# The relays are airlock (default; two passes: splice, then --no-splice; then
# a datagram relay pair and log forwarding over vsock) or
# socat (one pass; checks the test itself). Client and server are both vmpeer
# (vmpeer.c), which checks each case on both ends of the connection.
# Prints "PASS pass/name" or "FAIL pass/name: why" per case; exits 1 if any
# failed, 77 if the guest has no vsock loopback transport.

MODE=${1:-airlock}
LOG_LEVEL=${2:-info}
BYTES=${3:-33554432}
ENTRY=6000 EXIT=7000 VPORT=5000
FAILS=0
PASS_NAME='' HOST_PID='' ENCLAVE_PID=''

pass() { echo "PASS $PASS_NAME/$1${2:+ ($2)}"; }
fail() { echo "FAIL $PASS_NAME/$1: $2"; FAILS=$((FAILS + 1)); PASS_FAILED=1; }

alive() {  # running and not a zombie
    [ -n "$1" ] && [ -r "/proc/$1/stat" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat")" != Z ]
}
# fdkinds PID: "SOCKETS PIPES OTHER", counts of the process's open fds
fdkinds() {
    ns=0 np=0 no=0
    for f in "/proc/$1/fd/"*; do
        case $(readlink "$f") in
        socket:*) ns=$((ns + 1)) ;;
        pipe:*) np=$((np + 1)) ;;
        ?*) no=$((no + 1)) ;;
        esac
    done
    echo "$ns $np $no"
}
MAX_PIPE_FDS=32  # a bounded cache of spare pipes is fine; a per-connection leak is not
# fd_ok BEFORE... NOW...: same sockets and other fds, pipes under the bound
fd_ok() { [ "$1 $3" = "$4 $6" ] && [ "$5" -le $MAX_PIPE_FDS ]; }

# peer CASE [BYTES]: one vmpeer run through the chain; prints its report line
peer() { c=$1; shift; vmpeer "$c" "$ENTRY" "$EXIT" "$@" 2>&1; }

# run_case NAME CASE [BYTES]: one vmpeer run is one test case
run_case() {
    name=$1; shift
    if out=$(peer "$@"); then pass "$name" "$out"; else fail "$name" "$out"; fi
}

start_relays() {  # start_relays [RELAY_OPTION...]
    case $MODE in
    airlock)
        airlock relay "vsock:any:$VPORT" "tcp:127.0.0.1:$EXIT" --log-level "$LOG_LEVEL" "$@" \
            </dev/null >"/tmp/$PASS_NAME-enclave.log" 2>&1 &
        ENCLAVE_PID=$!
        airlock relay "tcp:127.0.0.1:$ENTRY" "vsock:1:$VPORT" --log-level "$LOG_LEVEL" "$@" \
            </dev/null >"/tmp/$PASS_NAME-host.log" 2>&1 &
        HOST_PID=$!
        ;;
    socat)
        # -t 30: by default socat closes both ways 0.5 s after the first EOF,
        # which breaks half-close for any reply slower than that.
        socat -t 30 "VSOCK-LISTEN:$VPORT,reuseaddr,fork" "TCP:127.0.0.1:$EXIT" \
            </dev/null >"/tmp/$PASS_NAME-enclave.log" 2>&1 &
        ENCLAVE_PID=$!
        socat -t 30 "TCP-LISTEN:$ENTRY,bind=127.0.0.1,reuseaddr,fork" "VSOCK-CONNECT:1:$VPORT" \
            </dev/null >"/tmp/$PASS_NAME-host.log" 2>&1 &
        HOST_PID=$!
        ;;
    esac
}

stop_relays() {  # SIGKILL whatever is left
    for p in $HOST_PID $ENCLAVE_PID; do
        alive "$p" && kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    HOST_PID='' ENCLAVE_PID=''
}

show_logs() {
    for side in host enclave; do
        echo "---- $PASS_NAME: $side-side relay log (last 25 lines) ----"
        tail -n 25 "/tmp/$PASS_NAME-$side.log"
    done
}

# run_pass NAME [RELAY_OPTION...]: the whole chain test with one relay setup
run_pass() {
    PASS_NAME=$1; shift
    PASS_FAILED=0
    start_relays "$@"

    # Ready when a byte makes it through the whole chain both ways (up to 20 s).
    i=0
    until out=$(peer ping); do
        i=$((i + 1))
        if [ $i -ge 40 ] || ! alive "$HOST_PID" || ! alive "$ENCLAVE_PID"; then
            fail ready "the chain never carried a byte: $out"
            show_logs; stop_relays; return
        fi
        sleep 0.5
    done
    pass ready "$out"
    FD0_HOST=$(fdkinds "$HOST_PID"); FD0_ENCLAVE=$(fdkinds "$ENCLAVE_PID")

    # (a) integrity: BYTES of pseudo-random data each way at once
    run_case integrity xfer "$BYTES"
    # (b) half-close: the client shuts down its write side, the reply still arrives
    run_case half-close halfclose
    # (c) resets: an RST on either end ends the connection on the other end
    run_case reset-from-client rst-client
    run_case reset-from-server rst-server
    # (d) the relays survived all that and still serve a new connection
    if ! alive "$HOST_PID"; then
        fail still-serving "the host-side relay died"
    elif ! alive "$ENCLAVE_PID"; then
        fail still-serving "the enclave-side relay died"
    else
        run_case still-serving xfer 1048576
    fi

    # No fd leak after 16 more connections and resets: sockets and other fds
    # come back to their count after the first connection; pipes (a relay may
    # keep spare ones for splice) stay under MAX_PIPE_FDS.
    storm=0
    for _ in 1 2; do
        for c in rst-client rst-server "xfer 65536" halfclose rst-client rst-server "xfer 65536" "xfer 65536"; do
            # shellcheck disable=SC2086 # "xfer 65536" is CASE BYTES
            peer $c >/dev/null || storm=$((storm + 1))
        done
    done
    [ $storm -eq 0 ] || fail storm "$storm of 16 further connections failed"
    i=0
    while :; do
        fh=$(fdkinds "$HOST_PID"); fe=$(fdkinds "$ENCLAVE_PID")
        # shellcheck disable=SC2086 # split "SOCKETS PIPES OTHER"
        if fd_ok $FD0_HOST $fh && fd_ok $FD0_ENCLAVE $fe; then
            pass no-fd-leak "sockets/pipes/other fds: host side $fh, enclave side $fe"
            break
        fi
        i=$((i + 1))
        if [ $i -ge 10 ]; then
            fail no-fd-leak "sockets/pipes/other fds: host side $fh (was $FD0_HOST), enclave side $fe (was $FD0_ENCLAVE)"
            ls -l "/proc/$HOST_PID/fd" "/proc/$ENCLAVE_PID/fd" 2>&1 | sed 's/^/  /'
            break
        fi
        sleep 0.5
    done

    # SIGTERM stops each relay within 5 s, cleanly (status 0, or 143 = killed
    # by that SIGTERM; anything else is a crash)
    for side in host enclave; do
        if [ $side = host ]; then pid=$HOST_PID; else pid=$ENCLAVE_PID; fi
        if ! alive "$pid"; then fail "sigterm-$side" "relay was not running"; continue; fi
        kill -TERM "$pid"
        (sleep 5; kill -KILL "$pid" 2>/dev/null) &
        watchdog=$!
        wait "$pid"; rc=$?
        kill "$watchdog" 2>/dev/null; wait "$watchdog" 2>/dev/null
        case $rc in
        0 | 143) pass "sigterm-$side" "exit status $rc" ;;
        137) fail "sigterm-$side" "still running 5 s after SIGTERM" ;;
        *) fail "sigterm-$side" "exit status $rc after SIGTERM$([ $rc -gt 128 ] && echo " (signal $((rc - 128)))")" ;;
        esac
    done
    stop_relays
    [ $PASS_FAILED -eq 0 ] || show_logs
}

# dgram_pass: a datagram relay pair over real vsock (the enclave's DNS/NTP path)
#   vmpeer -> udp:127.0.0.1:6053 -> [relay] -> vsock:1:5053 -> [relay] -> udp:127.0.0.1:7053
dgram_pass() {
    PASS_NAME=dgram PASS_FAILED=0
    airlock relay vsock:any:5053 udp:127.0.0.1:7053 --log-level "$LOG_LEVEL" \
        </dev/null >/tmp/dgram-host.log 2>&1 &
    HOST_PID=$!
    airlock relay udp:127.0.0.1:6053 vsock:1:5053 --log-level "$LOG_LEVEL" \
        </dev/null >/tmp/dgram-enclave.log 2>&1 &
    ENCLAVE_PID=$!
    i=0
    until out=$(vmpeer udp 6053 7053 1 2>&1); do
        i=$((i + 1))
        if [ $i -ge 40 ]; then fail ready "no datagram got through: $out"; break; fi
        sleep 0.5
    done
    if [ $i -lt 40 ]; then
        if out=$(vmpeer udp 6053 7053 300 2>&1); then pass datagrams "$out"; else fail datagrams "$out"; fi
    fi
    stop_relays
    [ $PASS_FAILED -eq 0 ] || show_logs
}

# logs_pass: log lines out of the enclave over real vsock: the enclave-side
# airlock forwards its own lines (capture_stderr) to a host-side log sink,
# from a reserved port (below 1024), so the sink does not mark them.
logs_pass() {
    PASS_NAME=logs PASS_FAILED=0
    printf 'log_sinks:\n  - name: enclave\n    listen: vsock:any:9200\n    file: /tmp/enclave-lines.log\n' \
        >/tmp/sink.yaml
    printf 'logs:\n  forward: vsock:1:9200\n  capture_stderr: true\nrelays:\n  - name: marker\n    listen: tcp:127.0.0.1:6100\n    target: tcp:127.0.0.1:7100\n' \
        >/tmp/fwd.yaml
    airlock run -c /tmp/sink.yaml </dev/null >/tmp/logs-host.log 2>&1 &
    HOST_PID=$!
    airlock run -c /tmp/fwd.yaml </dev/null >/tmp/logs-enclave.log 2>&1 &
    ENCLAVE_PID=$!
    i=0
    until grep -q 'relay=marker listen=tcp:127.0.0.1:6100' /tmp/enclave-lines.log 2>/dev/null; do
        i=$((i + 1))
        if [ $i -ge 40 ]; then
            fail lines "the enclave's log lines did not reach the host's file"
            break
        fi
        sleep 0.5
    done
    [ $i -lt 40 ] && pass lines "$(grep -c '^airlock: ' /tmp/enclave-lines.log) lines of the enclave airlock in the host's file"
    # the sink marks lines of a stream from a port any process may bind
    if grep -q '^unverified' /tmp/enclave-lines.log; then
        fail reserved "the forwarder's lines are marked: it did not connect from a reserved vsock port"
    else
        pass reserved "the forwarder connected from a reserved vsock port"
    fi
    stop_relays
    [ $PASS_FAILED -eq 0 ] || show_logs
}

# ---------------------------------------------------------------- main
if [ ! -d /sys/module/vsock_loopback ]; then
    echo "SKIP vsock: the guest kernel has no vsock_loopback"
    exit 77
fi
command -v vmpeer >/dev/null || { echo "FAIL setup: vmpeer not in PATH"; exit 1; }
command -v "$MODE" >/dev/null || { echo "FAIL setup: $MODE not in PATH"; exit 1; }
echo "vsock_chain: relays=$MODE kernel=$(uname -r) cpus=$(nproc) bytes=$BYTES"

case $MODE in
airlock)
    run_pass splice
    run_pass copy --no-splice
    dgram_pass
    logs_pass
    ;;
socat)
    run_pass socat ;;
*)
    echo "FAIL setup: unknown relay mode '$MODE' (airlock|socat)"; exit 1 ;;
esac

echo "vsock_chain: $FAILS failed"
[ "$FAILS" -eq 0 ]
