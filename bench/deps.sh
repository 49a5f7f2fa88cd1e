#!/bin/sh
# bench/deps.sh - install what the benchmarks need (Debian 12): what the
# project needs (scripts/deps.sh: compilers, redis, nginx, socat, iperf3, the
# vsock VM) plus the peers and tools only the benchmark uses. Idempotent.
#   peers:  haproxy, libnginx-mod-stream (nginx stream)
#   load:   wrk
#   misc:   linux-perf (profiles), gnuplot-nox (bench/standby.sh plots),
#           libssl-dev (bench/tlsrate.c, router.sh)
set -eu

"$(dirname "$0")/../scripts/deps.sh" haproxy libnginx-mod-stream wrk linux-perf gnuplot-nox libssl-dev
# The Debian packages start system-wide daemons; the benchmark runs its own
# instances on private ports, so stop the packaged ones (if systemd runs them).
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    for s in haproxy nginx redis-server; do
        $SUDO systemctl disable --now "$s" >/dev/null 2>&1 || true
    done
fi
