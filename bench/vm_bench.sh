#!/bin/sh
# vm_bench.sh - the vsock part of bench/relay.sh; runs INSIDE the test VM
# (busybox sh, as root), started through tests/vm/vm.sh with airlock and
# vsockbench (static) in /t and socat baked into the image.
#
#   usage: vm_bench.sh [ROUNDS] [MIB] [ITERS]
#
# Systems, measured interleaved (the order rotates each round):
#   raw-vsock  vsockbench client -> vsock:1:5001 -> vsockbench server (no relay)
#   raw-tcp    vsockbench client -> tcp:127.0.0.1:7000 -> server (no relay)
#   airlock    client -> tcp:6100 -> [airlock] -> vsock:1:5100 -> [airlock] -> tcp:7000
#   socat      client -> tcp:6200 -> [socat]   -> vsock:1:5200 -> [socat]   -> tcp:7000
# Workloads: bulk (MIB MiB one way, Gbit/s) and ping-pong (64-byte messages,
# ITERS round trips, p50/p99 in microseconds).
# Prints one "RESULT ROUND SYSTEM METRIC VALUE" line per measurement.
# The guest is emulated (TCG): only ratios between these systems mean anything.

ROUNDS=${1:-3}
MIB=${2:-128}
ITERS=${3:-2000}
SYSTEMS="raw-vsock raw-tcp airlock socat"

if [ ! -d /sys/module/vsock_loopback ]; then
    echo "SKIP vsock: the guest kernel has no vsock_loopback"
    exit 77
fi
for b in vsockbench airlock socat; do
    command -v $b >/dev/null || { echo "FAIL setup: $b not in PATH"; exit 1; }
done
echo "vm_bench: kernel=$(uname -r) cpus=$(nproc) rounds=$ROUNDS mib=$MIB iters=$ITERS"

vsockbench server vsock 5001 >/tmp/server-vsock.log 2>&1 &
vsockbench server tcp 7000 >/tmp/server-tcp.log 2>&1 &
airlock relay vsock:any:5100 tcp:127.0.0.1:7000 --log-level warn >/tmp/airlock-b.log 2>&1 &
airlock relay tcp:127.0.0.1:6100 vsock:1:5100 --log-level warn >/tmp/airlock-a.log 2>&1 &
# nodelay: like airlock, HAProxy and nginx; -t 30: do not cut half-closed
# connections after 0.5 s
socat -t 30 VSOCK-LISTEN:5200,reuseaddr,fork TCP:127.0.0.1:7000,nodelay \
    >/tmp/socat-b.log 2>&1 &
socat -t 30 TCP-LISTEN:6200,bind=127.0.0.1,reuseaddr,fork,nodelay,backlog=128 VSOCK-CONNECT:1:5200 \
    >/tmp/socat-a.log 2>&1 &

# client SYSTEM TEST...: run one vsockbench client test against SYSTEM
client() {
    sys=$1
    shift
    case $sys in
    raw-vsock) vsockbench client vsock 5001 "$@" ;;
    raw-tcp) vsockbench client tcp 7000 "$@" ;;
    airlock) vsockbench client tcp 6100 "$@" ;;
    socat) vsockbench client tcp 6200 "$@" ;;
    esac
}

# ready: a small transfer makes it through every system
for sys in $SYSTEMS; do
    i=0
    until client "$sys" tput 1 >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -ge 40 ]; then
            echo "FAIL setup: $sys never carried a byte"
            for f in /tmp/*.log; do echo "---- $f"; tail -n 10 "$f"; done
            exit 1
        fi
        sleep 0.5
    done
done
echo "vm_bench: all systems ready"

r=1
while [ $r -le "$ROUNDS" ]; do
    # rotate the order: round 1 starts with the first system, round 2 with the second, ...
    set -- $SYSTEMS
    k=1
    while [ $k -lt $r ]; do
        first=$1
        shift
        set -- "$@" "$first"
        k=$((k + 1))
    done
    for sys in "$@"; do
        out=$(client "$sys" tput "$MIB" 2>&1)
        v=$(echo "$out" | sed -n 's/.*= \([0-9.]*\) Gbit\/s.*/\1/p')
        if [ -n "$v" ]; then echo "RESULT $r $sys bulk_gbps $v"; else echo "ERROR $r $sys tput: $out"; fi
        out=$(client "$sys" pingpong "$ITERS" 64 2>&1)
        p50=$(echo "$out" | sed -n 's/.* p50 \([0-9.]*\),.*/\1/p')
        p99=$(echo "$out" | sed -n 's/.* p99 \([0-9.]*\) us.*/\1/p')
        if [ -n "$p50" ]; then
            echo "RESULT $r $sys pp_p50_us $p50"
            echo "RESULT $r $sys pp_p99_us $p99"
        else
            echo "ERROR $r $sys pingpong: $out"
        fi
    done
    r=$((r + 1))
done
echo "vm_bench: done"
exit 0
