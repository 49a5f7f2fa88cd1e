#!/bin/bash
# field.sh - field encryptions per second per core (issue 15: >= 1,000,000
# for 16-256 byte values): bench/fieldbench.c, built here with -O2 against
# src/field/, runs on one thread for SECONDS per measurement, ROUNDS times;
# the median of each row is printed.
#
#   usage: bench/field.sh [--seconds N] [--rounds N]
#
# The numbers go into docs/benchmarks.md ("Field encryption") by hand.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SECS=1 ROUNDS=3
while [ $# -gt 0 ]; do
    case $1 in
    --seconds) SECS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds N] [--rounds N]" >&2; exit 2 ;;
    esac
done
. "$ROOT/scripts/lib.sh"
scratch_dir W airlock-bench-field
cc -std=c17 -O2 -D_GNU_SOURCE -Wall -Wextra -I"$ROOT/src" $(pkg-config --cflags libcjson) \
    -o "$W/fieldbench" "$HERE/fieldbench.c" "$ROOT"/src/field/*.c "$ROOT/src/core/strbuf.c" \
    -lcjson -lcrypto || die "cannot build fieldbench"
for r in $(seq "$ROUNDS"); do
    "$W/fieldbench" "$SECS" >"$W/round.$r"
done
# the median of each numeric column, row by row
head -1 "$W/round.1"
rows=$(wc -l <"$W/round.1")
for i in $(seq 2 "$rows"); do
    for r in $(seq "$ROUNDS"); do sed -n "${i}p" "$W/round.$r"; done |
        sort -k3,3n | sed -n "$(((ROUNDS + 1) / 2))p"
done
echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"\
    "load average $(cut -d' ' -f1-3 /proc/loadavg), $(openssl version)"
