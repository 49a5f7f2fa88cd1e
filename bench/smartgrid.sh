#!/bin/bash
# smartgrid.sh - the smartgrid reference application alone (no airlock):
# what one user's session costs on this machine.
#
#   usage: bench/smartgrid.sh [--rounds N] [--fleet USERS]
#
#   --rounds N      rounds of the one-user measures (10)
#   --fleet USERS   instead: USERS servers at once, one per user, behind
#                   HAProxy routing on the TLS SNI (req.ssl_sni, no TLS
#                   termination), driven by one smartgrid-load in customer
#                   mode (10 s sessions, a request every 1 s, write ratio
#                   0.2, 2 s ramp-up); prints its summary and the servers'
#                   summed RSS and PSS idle and in session. A baseline for the
#                   airlock router and pool (issue 8).
#
# Builds the release build (make), provisions one user with 1 day of
# 15-second samples (5760 rows, ending now) and then, per round, starts a
# fresh smartgrid-server, puts the database in place and measures:
#   - LOGIN: smartgrid-load's latency from connect to the answer: TCP
#     connect, mutual-TLS handshake, opening the SQLCipher database, token;
#   - LONG_WRITE of 12 h (2880 rows, one transaction) (meter mode);
#   - QUERY_AVG over the last 12 h (2880 of the rows; customer mode, 40
#     queries, write ratio 0), in a second fresh server;
#   - the server's RSS (VmRSS) and PSS (shared library pages divided among
#     their users) idle (after WAITING_LOGIN) and in a session (after a
#     login, then 20 queries over all time).
# Prints one markdown table: medians over the rounds (latencies: of every
# operation of every round; p95 beside). Nothing is pinned; on a shared
# machine numbers are noisy. Environment: SG_BENCH_KEEP=1 keeps the work dir.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=10
FLEET=0
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --fleet) FLEET=$2; shift 2 ;;
    *) echo "usage: bench/smartgrid.sh [--rounds N] [--fleet USERS]" >&2; exit 2 ;;
    esac
done

. "$ROOT/scripts/lib.sh"
make -C "$ROOT" >/dev/null
B=$ROOT/build
scratch_dir W smartgrid-bench "${SG_BENCH_KEEP:-}"
SRV_PID=
FLEET_PIDS=()

"$B/smartgrid-provision" --out "$W/p" --users $((FLEET > 0 ? FLEET : 1)) --days 1 >/dev/null
U=user0001
KEY=$(awk -F, -v u=$U '$1 == u { print $2 }' "$W/p/keys.csv")

# server NAME: a fresh server with the database in place; sets PORT, SRV_PID.
server() {
    rm -rf "$W/$1" "$W/$1.log" && mkdir -p "$W/$1" && cp "$W/p/db/$U.db" "$W/$1/"
    PORT=$(free_port)
    proc_start "$W/$1.log" "$B/smartgrid-server" --listen "tcp:127.0.0.1:$PORT" --dir "$W/$1" \
        --cert "$W/p/server.pem" --key "$W/p/server.key" --ca "$W/p/ca.pem"
    SRV_PID=$LAST_PID
    wait_log "$W/$1.log" WAITING_LOGIN 5 "$SRV_PID"
}

# stop_server: the server exits by itself after LOGOUT; after a failed run
# it is still waiting for its user
stop_server() {
    poll_until 5 exited "$SRV_PID" || true
    proc_stop "$SRV_PID" || true
    SRV_PID=
}

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
# PSS: shared library pages divided among the processes that map them
pss_kib() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup"; }

load() { "$B/smartgrid-load" --connect "tcp:127.0.0.1:$PORT" --certs "$W/p" "$@"; }

curl_sg() {
    curl -sf --cacert "$W/p/ca.pem" --cert "$W/p/users/$U.pem" --key "$W/p/users/$U.key" \
        --resolve "$U.grid.example:$PORT:127.0.0.1" "$@"
}

# fleet: USERS servers behind HAProxy (SNI), one smartgrid-load run
fleet() {
    local i u p rss_idle=0 rss_session=0 pss_idle=0 pss_session=0 hp pid ports
    tools_missing haproxy >/dev/null || die "fleet: haproxy not installed (bench/deps.sh)"
    read -r hp ports <<<"$(free_ports $((FLEET + 1)))"
    read -r -a ports <<<"$ports"
    {
        printf 'global\n    maxconn %d\ndefaults\n    mode tcp\n' $((FLEET * 2 + 100))
        printf '    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n'
        printf 'frontend fe\n    bind 127.0.0.1:%d\n    tcp-request inspect-delay 5s\n' "$hp"
        printf '    tcp-request content accept if { req_ssl_hello_type 1 }\n'
        printf "    use_backend be_%%[req.ssl_sni,field(1,'.')]\n"
    } >"$W/haproxy.cfg"
    for i in $(seq "$FLEET"); do
        u=$(printf 'user%04d' "$i")
        mkdir -p "$W/fleet/$u" && cp "$W/p/db/$u.db" "$W/fleet/$u/"
        p=${ports[i - 1]}
        proc_start "$W/fleet/$u.log" "$B/smartgrid-server" --listen "tcp:127.0.0.1:$p" \
            --dir "$W/fleet/$u" --cert "$W/p/server.pem" --key "$W/p/server.key" --ca "$W/p/ca.pem"
        FLEET_PIDS+=("$LAST_PID")
        printf 'backend be_%s\n    server s 127.0.0.1:%d\n' "$u" "$p" >>"$W/haproxy.cfg"
    done
    proc_start "$W/haproxy.log" haproxy -f "$W/haproxy.cfg"
    for i in $(seq "$FLEET"); do
        wait_log "$W/fleet/$(printf 'user%04d' "$i").log" WAITING_LOGIN 10 "${FLEET_PIDS[i - 1]}"
    done
    wait_port "$hp"
    for pid in "${FLEET_PIDS[@]}"; do
        rss_idle=$((rss_idle + $(rss_kib "$pid")))
        pss_idle=$((pss_idle + $(pss_kib "$pid")))
    done
    PORT=$hp
    load --mode customer --duration 10s --frequency 1s --write-ratio 0.2 --ramp-up 2s \
        --csv "$W/fleet.csv" >"$W/fleet.out" &
    sleep 8 # every session open, none closed yet
    for pid in "${FLEET_PIDS[@]}"; do
        rss_session=$((rss_session + $(rss_kib "$pid")))
        pss_session=$((pss_session + $(pss_kib "$pid")))
    done
    wait $! || true
    cat "$W/fleet.out"
    echo "servers=$FLEET rss_idle_mib=$((rss_idle / 1024)) rss_session_mib=$((rss_session / 1024))" \
        "pss_idle_mib=$((pss_idle / 1024)) pss_session_mib=$((pss_session / 1024))"
    echo "logged_out=$(grep -lx LOGOUT "$W"/fleet/*.log | wc -l) ($(nproc) cores, $(date -u +%Y-%m-%d))"
}

if [ "$FLEET" -gt 0 ]; then
    fleet
    exit 0
fi

: >"$W/ops.csv"
for r in $(seq "$ROUNDS"); do
    server meter
    load --mode meter --hours 12 --csv "$W/m$r.csv" >/dev/null || true # counted below
    stop_server
    server cust
    load --mode customer --duration 2s --frequency 50ms --write-ratio 0 --query-window 12h \
        --csv "$W/c$r.csv" >/dev/null || true
    stop_server
    tail -n +2 -q "$W/m$r.csv" "$W/c$r.csv" >>"$W/ops.csv"
    # memory: idle, then in a session
    server mem
    echo "idle $(rss_kib "$SRV_PID") $(pss_kib "$SRV_PID")" >>"$W/rss"
    tok=$(curl_sg -X POST -d "{\"key\":\"$KEY\"}" "https://$U.grid.example:$PORT/login" |
        sed 's/.*"token":"\([0-9a-f]*\)".*/\1/')
    for _ in $(seq 20); do
        curl_sg -H "Authorization: Bearer $tok" "https://$U.grid.example:$PORT/query_avg?metric=power" >/dev/null
    done
    echo "session $(rss_kib "$SRV_PID") $(pss_kib "$SRV_PID")" >>"$W/rss"
    curl_sg -H "Authorization: Bearer $tok" -X POST "https://$U.grid.example:$PORT/logout" >/dev/null
    stop_server
done

# median and p95 of a column of numbers on stdin
stats() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) { print "- -"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    i = int(NR * 0.95 + 0.999); printf "%.2f %.2f\n", m, v[i] }'; }

errors=$(awk -F, '$5 != 200' "$W/ops.csv" | wc -l)
echo "| measure | median | p95 | n |"
echo "|---|---|---|---|"
for op in LOGIN LONG_WRITE QUERY_AVG LOGOUT; do
    n=$(awk -F, -v o=$op '$2 == o && $5 == 200' "$W/ops.csv" | wc -l)
    read -r med p95 < <(awk -F, -v o=$op '$2 == o && $5 == 200 { print $4 }' "$W/ops.csv" | stats)
    echo "| $op latency (ms) | $med | $p95 | $n |"
done
for k in idle session; do
    read -r med p95 < <(awk -v k=$k '$1 == k { print $2 / 1024 }' "$W/rss" | stats)
    echo "| server RSS $k (MiB) | $med | $p95 | $ROUNDS |"
    read -r med p95 < <(awk -v k=$k '$1 == k { print $3 / 1024 }' "$W/rss" | stats)
    echo "| server PSS $k (MiB) | $med | $p95 | $ROUNDS |"
done
echo
echo "rounds=$ROUNDS failed_operations=$errors ($(nproc) cores, $(date -u +%Y-%m-%d))"
