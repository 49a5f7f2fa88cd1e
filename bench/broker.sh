#!/bin/bash
# broker.sh - the key broker's release latency (p50 / p99): N sequential
# fetches, then N fetches from C concurrent requesters, each
# `airlock attest fetch-secret --provider sim` against `airlock run` with a
# broker: block on loopback. Two numbers per run:
#   release   the broker's own time per release, from its log (us=): from
#             the ATTEST line read to the SECRET line queued (verify the
#             evidence, bind it, read and open the sealed secret, wrap it,
#             sign the answer)
#   fetch     the requester's wall time per fetch-secret process (process
#             start, an RSA-2048 key, the exchange, sim evidence signed,
#             the answer's signature checked)
#
#   usage: bench/broker.sh [--fetches N] [--concurrency C] [--build DIR]
#
# The numbers go into docs/benchmarks.md by hand, with this command line.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
N=200 C=8 BUILD=$ROOT/build
while [ $# -gt 0 ]; do
    case $1 in
    --fetches) N=$2; shift 2 ;;
    --concurrency) C=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    *) echo "usage: $0 [--fetches N] [--concurrency C] [--build DIR]" >&2; exit 2 ;;
    esac
done
[ -x "$BUILD/airlock" ] || { [ "$BUILD" = "$ROOT/build" ] && make -C "$ROOT" >/dev/null; }
A=$BUILD/airlock
. "$ROOT/scripts/lib.sh"
scratch_dir W airlock-bench-broker

"$A" attest get --provider sim --sim-root "$W/sim.pem" >/dev/null 2>&1
openssl x509 -in "$W/sim.pem" -out "$W/simcert.pem"
mkdir "$W/secrets"
head -c 32 /dev/urandom | "$A" attest seal --key-file "$W/k" --dir "$W/secrets" db-key 2>/dev/null
"$A" attest broker-key --key-file "$W/k" >"$W/k.pub"
PORT=$(free_port)
cat >"$W/airlock.yaml" <<EOC
broker:
  listen: tcp:127.0.0.1:$PORT
  dir: $W/secrets
  key_file: $W/k
  max_connections: 256
  secrets:
    - {name: db-key, policy: {sim_root: $W/simcert.pem, any_image: true}}
EOC
proc_start "$W/broker.log" "$A" run -c "$W/airlock.yaml"
wait_log "$W/broker.log" 'airlock running' 10

# one_fetch: one fetch-secret, its wall time in microseconds on stdout
one_fetch() {
    local t0=$(date +%s%N)
    "$A" attest fetch-secret --broker "tcp:127.0.0.1:$PORT" --broker-key "$W/k.pub" --provider sim \
        --sim-root "$W/sim.pem" db-key >/dev/null
    echo $((($(date +%s%N) - t0) / 1000))
}
export -f one_fetch
export A PORT W
pct() { sort -n | awk -v p="$1" '{ v[NR] = $1 } END { i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; print v[i] }'; }
# report NAME FETCH_FILE: p50 and p99 of the releases logged since the mark, and of the fetches
report() {
    tail -n +"$MARK" "$W/broker.log" | sed -n 's/.*released secret=db-key .* us=\([0-9]*\)$/\1/p' >"$W/rel"
    [ "$(wc -l <"$W/rel")" -ge "$N" ] || { echo "only $(wc -l <"$W/rel") releases logged" >&2; exit 1; }
    printf '%-22s release p50 %6s us p99 %6s us   fetch p50 %7s us p99 %7s us\n' "$1" \
        "$(pct 50 <"$W/rel")" "$(pct 99 <"$W/rel")" "$(pct 50 <"$2")" "$(pct 99 <"$2")"
}
MARK=$(($(wc -l <"$W/broker.log") + 1))
for _ in $(seq "$N"); do one_fetch; done >"$W/seq"
report "sequential ($N)" "$W/seq"
MARK=$(($(wc -l <"$W/broker.log") + 1))
seq "$N" | xargs -P "$C" -I{} bash -c one_fetch >"$W/conc"
report "concurrent ($N, $C at once)" "$W/conc"
grep -c 'refused' "$W/broker.log" | sed 's/^/refusals: /'
