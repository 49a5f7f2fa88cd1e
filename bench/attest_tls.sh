#!/bin/bash
# attest_tls.sh - new TLS handshakes per second on an attested listener
# (airlock relay with tls:, sim provider, the evidence cached in its
# certificate) against plain TLS termination (nginx stream, a P-256
# self-signed certificate), both relaying the plaintext to one nginx HTTP
# origin. Same key type (P-256), same protocol (TLS 1.3, the default
# cipher), same threads (2), full handshakes only (no resumption).
#
#   usage: bench/attest_tls.sh [--rounds N] [--quick]
#
#   rate        bench/tlsrate.c: full handshake, one small HTTP request,
#               close, from 4 processes, for DUR seconds
#   --rounds N  rounds [5; --quick: 1]
#   --quick     short smoke run (~20 s)
#
# Method as bench/router.sh: every system once per round, the order
# rotating each round; medians and the ratio to plain TLS measured in the
# same run. Prints a markdown table for docs/benchmarks.md.
# AIRLOCK_BENCH_KEEP=1 keeps the work dir.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CMDLINE="bench/attest_tls.sh${*:+ $*}"
ROUNDS="" QUICK=0
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "attest_tls.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ $QUICK = 1 ]; then ROUNDS=${ROUNDS:-1} DUR=2; else ROUNDS=${ROUNDS:-5} DUR=4; fi
SYSTEMS="plain attested"
. "$HERE/lib.sh"
bench_build
bench_init attest_tls
cc -std=gnu17 -O2 -Wall -Wextra -o "$WORK/tlsrate" "$HERE/tlsrate.c" -lssl -lcrypto ||
    die "cannot build tlsrate"

declare -A PPORT=()
read -r TARGET 'PPORT[plain]' 'PPORT[attested]' <<<"$(free_ports 3)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench.test \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
"$AIRLOCK" attest get --provider sim --sim-root "$WORK/sim.pem" >/dev/null 2>&1 ||
    die "cannot make the sim root"
fill "$HERE/conf/nginx-origin.conf.in" "$WORK/nginx-origin.conf" TARGET="$TARGET" DIR="$WORK"
start origin nginx -p "$WORK" -e "$WORK/nginx.err" -c "$WORK/nginx-origin.conf"
fill "$HERE/conf/nginx-stream-tls.conf.in" "$WORK/nginx-tls.conf" LISTEN="${PPORT[plain]}" \
    TARGET="$TARGET" DIR="$WORK"
start plain nginx -p "$WORK" -e "$WORK/nginx-tls.err" -c "$WORK/nginx-tls.conf"
cat >"$WORK/airlock.yaml" <<YAML
threads: 2
log_level: warn
relays:
  - listen: tcp:127.0.0.1:${PPORT[attested]}
    target: tcp:127.0.0.1:$TARGET
    tls: {provider: sim, sim_root: $WORK/sim.pem}
YAML
start attested "$AIRLOCK" run -c "$WORK/airlock.yaml"
for s in $SYSTEMS; do wait_port "${PPORT[$s]}"; done
wait_port "$TARGET"

for ((r = 1; r <= ROUNDS; r++)); do
    for s in $(order "$r"); do
        out=$("$WORK/tlsrate" "${PPORT[$s]}" bench.test "$DUR" 4)
        echo "$s $out" >>"$LOGS/tlsrate.log"
        case $out in *" errors=0") ;; *) log "  $s: tlsrate reported errors: $out" ;; esac
        v=$(sed -n 's/^conns_per_s=\([0-9]*\) .*/\1/p' <<<"$out")
        [ -n "$v" ] && printf 'rate\t%s\t%s\n' "$s" "$v" >>"$RESULTS"
    done
    log "round $r done"
done

med() {  # med SYSTEM
    awk -F'\t' -v s="$1" '$2 == s { print $3 }' "$RESULTS" | sort -n |
        awk '{ v[++n] = $1 } END { if (n) print (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b > 0) printf "%.2fx", a / b; else printf "-" }'; }
echo
echo "Command: \`$CMDLINE\` ($ROUNDS rounds, airlock $(git -C "$ROOT" rev-parse --short HEAD), $(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
echo "| listener | new TLS connections/s | vs plain TLS |"
echo "|----------|----------------------:|-------------:|"
p=$(med plain)
for s in $SYSTEMS; do
    c=$(med "$s")
    echo "| $s | ${c:--} | $(ratio "$c" "$p") |"
done
