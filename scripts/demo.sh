#!/bin/bash
# demo.sh - the standby gateway on one machine (run by `make demo`).
#
#   client (curl, openssl, smartgrid-load) with user0003's certificate,
#   SNI user0003.grid.example
#      │ tcp:127.0.0.1:8443
#      ▼
#   host relay ──hvsock:RUN/enclave.sock:8443──┐             (host: sees only TLS bytes)
#   ┌─ network namespace airlock-demo: only lo, like an enclave without a NIC ──────────┐
#   │  enclave airlock: relay ──▶ router tcp:127.0.0.1:8443 (reads the SNI only)       │
#   │                               │ dir_assign(grid, user0003): sticky or an idle one│
#   │                               ▼                                                  │
#   │  pool grid: smartgrid-server instances, min_idle 4 standing by, one user each;   │
#   │  reservation -> airlock copies user0003.db in (state:); LOGOUT -> stored back,   │
#   │  directory wiped, a fresh process takes its place                                │
#   └──────────────────────────────────────────────────────────────────────────────────┘
#
# It provisions users (CA, certificates, encrypted databases with a day of
# meter data), starts both airlocks, waits for the standby instances, drives
# a short load with smartgrid-load, prints what happened (sessions,
# instances started and recycled, a latency table), then keeps the stack
# running with instructions to try it by hand. Ctrl-C or SIGTERM stops
# everything (instances, airlocks, namespace, run directory).
#
# Needs root (network namespaces). Environment:
#   AIRLOCK            binary to run (default: build/airlock; the smartgrid
#                      binaries are taken from the same directory)
#   DEMO_SECONDS       stop by itself after that many seconds (default: wait)
#   DEMO_NETNS         namespace name (default: airlock-demo)
#   DEMO_PORT          host port of the gateway (default: 8443)
#   DEMO_METRICS_PORT  host relay metrics port (default: 9100)
#   DEMO_USERS         users provisioned (default: 12), all of them log in
#   DEMO_LOAD_SECONDS  length of each user's session in the load (default: 5)
#   DEMO_UIDS          FIRST-LAST: the instances run as uids FIRST+1..LAST, one
#                      each, with gid FIRST (default: 62000-62099); no account
#                      or process of this machine may use them
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
AIRLOCK=${AIRLOCK:-$ROOT/build/airlock}
BIN=$(dirname "$AIRLOCK")
NETNS=${DEMO_NETNS:-airlock-demo}
PORT=${DEMO_PORT:-8443}
MPORT=${DEMO_METRICS_PORT:-9100}
USERS=${DEMO_USERS:-12}
LOAD_SECONDS=${DEMO_LOAD_SECONDS:-5}
SECONDS_TO_RUN=${DEMO_SECONDS:-}
DEMO_UIDS=${DEMO_UIDS:-62000-62099}
GID=${DEMO_UIDS%-*}
DOMAIN=example
MIN_IDLE=4

. "$ROOT/scripts/demo-lib.sh"
for b in smartgrid-server smartgrid-provision smartgrid-load; do
    [ -x "$BIN/$b" ] || die "no $b beside $AIRLOCK (run: make)"
done
demo_begin curl openssl ip nsenter setsid ss -- "$PORT" "$MPORT"
ENCLAVE_PID="" HOST_PID=""

# the host side first (stops accepting, drains), then the enclave side
# (its pool stops every instance)
stop_all() {
    halt "host relay" "$HOST_PID" TERM 5
    halt "enclave airlock" "$ENCLAVE_PID" TERM 15
}

GRID=$RUN/grid
CTL=unix:$RUN/ctl.sock
ctl() { "$AIRLOCK" ctl -s "$CTL" "$@"; }
enclave_metrics() { curl -sf --unix-socket "$RUN/enclave-metrics.sock" http://enclave/metrics; }
# metric NAME: its value in the enclave's metrics (labels included in NAME)
metric() { enclave_metrics | awk -v m="$1" '$1 == m { print $2 }'; }
idle_at_least() { [ "$(metric 'airlock_dir_instances{state="idle"}')" -ge "$1" ]; }
# settled: every instance of the pool is idle
settled() {
    enclave_metrics | awk '$1 ~ /^airlock_pool_instances[{]pool="grid",/ && $1 !~ /state="idle"/ { n += $2 }
        END { exit n != 0 }'
}

echo "== provisioning $USERS users (CA, server and client certificates, encrypted databases)"
"$BIN/smartgrid-provision" --out "$GRID" --users "$USERS" --days 1 --domain "$DOMAIN" |
    sed 's/^/  /'
mkdir -p "$RUN/instances"
# the instances (their own uids, group $GID) pass through the run directory
# to their own directories and read the server's key; nothing else of it
chmod 711 "$RUN" "$GRID"
chmod 700 "$GRID/db" "$GRID/users"
chgrp "$GID" "$GRID/server.key"
chmod 640 "$GRID/server.key"
# attestation: there is no TEE here, so the instances attest with the sim
# provider (documents in the Nitro format from a local sim root, which the
# clients are told to trust): it shows the order of things, it proves nothing
SIMROOT=$GRID/sim-root.pem
"$AIRLOCK" attest get --provider sim --sim-root "$SIMROOT" >/dev/null 2>&1
chgrp "$GID" "$SIMROOT"
chmod 640 "$SIMROOT"

cat >"$RUN/enclave.yaml" <<EOF
# the enclave's airlock: relay from the vsock face, router, directory, pool
threads: 1
metrics: unix:$RUN/enclave-metrics.sock
control: $CTL
drain_timeout: 5s
directory:
  backend: memory
  reserve_timeout: 10s
  session_ttl: 10m
  assign_wait: 5s
  # every client reaches the router through the enclave relay (one address),
  # and the demo's users all log in at once: no bound per address. A
  # deployment passes the client address on with PROXY v2 instead
  # (docs/pool.md).
  max_pending_per_client: 0
relays:
  - name: enclave
    listen: hvsock:$RUN/enclave.sock:8443
    target: tcp:127.0.0.1:8443
routers:
  - name: grid
    listen: tcp:127.0.0.1:8443
    send_proxy: v2 # the instances read it (pool-yaml.sh)
    directory: grid
    domain: grid.$DOMAIN
EOF
POOL_UIDS=$((GID + 1))-${DEMO_UIDS#*-} POOL_GROUP=$GID POOL_SIM_ROOT=$SIMROOT \
    "$ROOT/apps/smartgrid/pool-yaml.sh" "$BIN" "$GRID" "$GRID/db" "$RUN/instances" 20000-20099 \
    "$MIN_IDLE" 32 6 20s "$DOMAIN" >>"$RUN/enclave.yaml"
"$AIRLOCK" check -c "$RUN/enclave.yaml" | sed 's/^/  /'

make_enclave
ns_daemon "$RUN/enclave.log" "$AIRLOCK" run -c "$RUN/enclave.yaml"
ENCLAVE_PID=$LAST_PID
wait_socket "$RUN/enclave.sock"
alive "$ENCLAVE_PID" "$(airlock_comm)" "enclave airlock" "$RUN/enclave.log"

start_host_relay 8443

echo "  waiting for $MIN_IDLE standby instances"
wait_until 20 idle_at_least "$MIN_IDLE"

cat <<EOF

== started (run dir $RUN)
  namespace        $NETNS: the enclave, no network but loopback
  enclave airlock  pid $ENCLAVE_PID in $NETNS: relay hvsock:$RUN/enclave.sock:8443
                   -> router tcp:127.0.0.1:8443 (SNI <user>.grid.$DOMAIN -> directory)
                   -> pool grid (smartgrid-server, min_idle $MIN_IDLE, max 32)
                   metrics unix:$RUN/enclave-metrics.sock, control $CTL
  host relay       pid $HOST_PID on the host: tcp:127.0.0.1:$PORT -> hvsock:$RUN/enclave.sock:8443
                   metrics tcp:127.0.0.1:$MPORT
EOF
show_enclave_net "$ENCLAVE_PID"

echo
echo "== the standby instances (airlock ctl -s $CTL instances)"
ctl instances | sed 's/^/  /'
starts_before=$(metric 'airlock_pool_starts_total{pool="grid"}')

echo
echo "== $USERS users log in at once through the host relay, each for a ${LOAD_SECONDS} s session"
echo "   (a request every 500 ms, 20 % writes), then log out; every connection first checks"
echo "   the instance's fresh attestation (sim evidence) before it sends the user's key"
echo "\$ smartgrid-load --connect tcp:127.0.0.1:$PORT --mode customer --users $USERS --attest-sim-root ..."
load_rc=0
"$BIN/smartgrid-load" --connect "tcp:127.0.0.1:$PORT" --certs "$GRID" --keys "$GRID/keys.csv" \
    --attest-sim-root "$SIMROOT" \
    --domain "$DOMAIN" --mode customer --users "$USERS" --duration "${LOAD_SECONDS}s" \
    --frequency 500ms --write-ratio 0.2 --csv "$RUN/load.csv" >"$RUN/load.out" 2>&1 || load_rc=$?
sed 's/^/  /' "$RUN/load.out"
[ "$load_rc" = 0 ] || echo "  (smartgrid-load exited with $load_rc: see the errors above)"

echo
echo "== what happened"
# the last logouts: stored back, wiped, replaced (an instance that keeps
# failing would not settle: then the numbers as they are)
poll_until 30 settled || true
starts_after=$(metric 'airlock_pool_starts_total{pool="grid"}')
assigns=$(metric 'airlock_dir_assigns_total{outcome="reserved"}')
host_total=$(curl -sf "http://127.0.0.1:$MPORT/metrics" |
    awk '$1 == "airlock_connections_total{relay=\"host\"}" { print $2 }')
cat <<EOF
  connections through the host relay:       $host_total (it saw only TLS bytes)
  sessions assigned by the directory:       $assigns (an idle instance reserved per new user)
  instances started during the load:        $((starts_after - starts_before)) (replacements after each logout, and growth past $MIN_IDLE)
  instances started since the beginning:    $starts_after
EOF
echo "\$ airlock ctl instances"
ctl instances | sed 's/^/  /'
echo "\$ airlock ctl sessions"
ctl sessions | sed 's/^/  /'
echo "  pool and directory metrics:"
enclave_metrics | grep -E '^airlock_(pool_(instances|starts|restarts|hook_failures)|dir_(sessions|assigns))' |
    grep -v ' 0$' | sed 's/^/    /'

U=user0001
KEY=$(awk -F, -v u=$U '$1 == u { print $2 }' "$GRID/keys.csv")
cat <<EOF

== try it by hand (in another terminal); paste these first:
  G=$GRID U=$U K=$KEY
  TLS="--cacert \$G/ca.pem --cert \$G/users/\$U.pem --key \$G/users/\$U.key --resolve \$U.grid.$DOMAIN:$PORT:127.0.0.1"
  URL=https://\$U.grid.$DOMAIN:$PORT
first check that the server is an attested instance: fresh evidence over a random nonce,
bound to the certificate it presents (SIM evidence: this machine has no TEE, the sim root
stands in for the hardware vendor's and proves nothing), and only then send the key
(the key from keys.csv opens the user's encrypted database), to that attested key alone:
curl pins it, so a connection to anything else (a certificate of the same CA included)
fails before the key is sent; keep the token:
  V=\$($AIRLOCK attest verify --tls 127.0.0.1:$PORT --sni \$U.grid.$DOMAIN --fresh --sim-root \$G/sim-root.pem) &&
  PIN="--pinnedpubkey sha256//\$(printf %s "\$V" | sed -n 's/.*"pubkey_hash": *"\([0-9a-f]*\)".*/\\1/p' | tr a-f A-F | basenc --base16 -d | base64)" &&
  curl -s \$TLS \$PIN \$URL/login -d "{\"key\":\"\$K\"}"; echo
  T=...the token...
  curl -s \$TLS \$PIN -H "Authorization: Bearer \$T" "\$URL/query_avg?metric=power"; echo
  curl -s \$TLS \$PIN -H "Authorization: Bearer \$T" \$URL/write -d '{"alarms":[{"metric":"power","threshold":2.5}]}'; echo
  $AIRLOCK ctl -s $CTL sessions
  curl -s \$TLS \$PIN -H "Authorization: Bearer \$T" -X POST \$URL/logout; echo
another user's certificate for \$U's name is refused: the server aborts the TLS handshake
  curl -s --cacert \$G/ca.pem --cert \$G/users/user0002.pem --key \$G/users/user0002.key \\
       --resolve \$U.grid.$DOMAIN:$PORT:127.0.0.1 \$URL/login; echo "curl exit \$?"
and to look inside:
  $AIRLOCK ctl -s $CTL instances     # or: drain grid/NAME
  curl -s --unix-socket $RUN/enclave-metrics.sock http://x/metrics
  tail -f $RUN/enclave.log           # instance lines, hooks, sessions
EOF
demo_wait
