#!/bin/bash
# scale-memory.sh - the memory of a 3-node deployment, Trivial vs Standby, at
# 50, 25 and 5 % active users (issue 16's scale figures; docs/evaluation.md
# "Three nodes"). The nodes are tests/integration/cluster-lib.sh's: network
# namespaces on one bridge, HAProxy in front (PROXY v2, round robin over the
# three routers), one redis; this script runs inside namespaces of its own
# (host_namespaces), so nothing it starts outlives it.
#
#   Trivial  each node runs one smartgrid-server per user of its third of
#            the users (user J on node (J-1)%3+1), always (restarted after
#            each logout), and a router with a static route per user (all
#            users, to whichever node serves them).
#   Standby  each node runs cluster-lib's two airlocks: a pool of
#            smartgrid-server instances (MIN_IDLE standing by, at most
#            U/3+2*MIN_IDLE) and a router on the shared redis directory.
#
# For each active ratio (Trivial and Standby one after the other, the first
# alternating) smartgrid-load drives U*ratio users in customer mode (one
# session of SESSION each, a request a second, 10 % writes, arriving over
# 5 s) through HAProxy, while a sampler sums, every 0.5 s and per node, the
# RSS of its smartgrid-server processes and of its airlocks. Prints one line
# per run: the mean per node and summed over the nodes.
#
#   usage: bench/scale-memory.sh [--users U] [--session DUR] [--quick] [--keep]
#
# --quick: 6 users, 50 and 25 %, sessions of 3 s (a smoke run).
# The settings go to the inner run (host_namespaces runs this script again)
# in the environment.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ "${AIRLOCK_TEST_INNER:-}" != 1 ]; then
    SM_USERS=150 SM_SESSION=20s SM_ACTIVE="50 25 5" SM_MIN_IDLE=2 T_KEEP=
    while [ $# -gt 0 ]; do
        case $1 in
        --users) SM_USERS=$2; shift 2 ;;
        --session) SM_SESSION=$2; shift 2 ;;
        --quick) SM_USERS=6 SM_SESSION=3s SM_ACTIVE="50 25"; shift ;;
        --keep) T_KEEP=1; shift ;;
        *) echo "usage: $0 [--users U] [--session DUR] [--quick] [--keep]" >&2; exit 2 ;;
        esac
    done
    "$ROOT/bench/deps.sh" >/dev/null
    make -C "$ROOT" >/dev/null
    export SM_USERS SM_SESSION SM_ACTIVE SM_MIN_IDLE T_KEEP AIRLOCK=$ROOT/build/airlock
fi
LOG_FD=2
. "$ROOT/tests/integration/lib.sh"
. "$ROOT/tests/integration/sg_lib.sh"
CL_MIN_IDLE=$SM_MIN_IDLE CL_MAX=$((SM_USERS / 3 + 2 * SM_MIN_IDLE))
. "$ROOT/tests/integration/cluster-lib.sh"
need python3
U=$SM_USERS
TPORT=21000 # Trivial: user J's server on its node's address, port TPORT+J

user_name() { printf 'user%04d' "$1"; }
node_of() { echo $((($1 - 1) % 3 + 1)); }

SYS_PIDS=()
sys_start() { # sys_start NAME COMMAND...: like start, in a process group, stopped by sys_stop
    local name=$1
    shift
    proc_start -g "$T/$name.log" "$@"
    SYS_PIDS+=("$LAST_PID")
}
sys_stop() {
    local p
    touch "$T/stop" # Trivial's loops stop restarting
    for p in "${SYS_PIDS[@]}"; do proc_stop "$p" || true; done
    SYS_PIDS=()
    rm -f "$T/stop"
}
# listening N FIRST LAST COUNT: COUNT ports FIRST..LAST listen in node N
listening() { [ "$(cl_in "$1" ss -Htln "sport >= :$2 and sport <= :$3" | wc -l)" -eq "$4" ]; }
routers_up() { for i in n1 n2 n3; do wait_until 30 cl_server_is "$i" UP; done; }

trivial_start() {
    local i j u n per=(0 0 0 0)
    rm -rf "$T/triv" && mkdir -p "$T/triv"
    for ((j = 1; j <= U; j++)); do
        u=$(user_name "$j") n=$(node_of "$j")
        per[n]=$((per[n] + 1))
        mkdir -p "$T/triv/$u" && cp "$SG/db/$u.db" "$T/triv/$u/"
        # shellcheck disable=SC2016 # the inner shell's arguments
        sys_start "triv-$u" nsenter --net="/proc/${CL_NS[$n]}/ns/net" -- bash -c \
            'while [ ! -e "$1" ]; do "${@:2}" >/dev/null 2>&1; done' _ "$T/stop" \
            "$SG_BIN/smartgrid-server" --cert "$SG/server.pem" --key "$SG/server.key" \
            --ca "$SG/ca.pem" --domain "$SG_DOMAIN" --listen "tcp:$(cl_ip "$n"):$((TPORT + j))" \
            --dir "$T/triv/$u"
    done
    for i in 1 2 3; do
        {
            echo "metrics: tcp:$(cl_ip "$i"):9101"
            echo "drain_timeout: 2s"
            echo "routers:"
            echo "  - name: grid"
            echo "    listen: tcp:$(cl_ip "$i"):8443"
            echo "    accept_proxy: v2"
            echo "    routes:"
            for ((j = 1; j <= U; j++)); do
                echo "      - {name: $(user_name "$j").grid.$SG_DOMAIN, target: tcp:$(cl_ip "$(node_of "$j")"):$((TPORT + j))}"
            done
        } >"$T/triv-r$i.yaml"
        sys_start "triv-r$i" nsenter --net="/proc/${CL_NS[$i]}/ns/net" -- "$AIRLOCK" run -c "$T/triv-r$i.yaml"
        wait_log "$T/triv-r$i.log" 'airlock running' 20 "$LAST_PID"
    done
    for i in 1 2 3; do wait_until 120 listening "$i" $((TPORT + 1)) $((TPORT + U)) "${per[i]}"; done
    routers_up
}

standby_start() {
    local i
    rcli FLUSHALL >/dev/null
    for i in 1 2 3; do
        cl_node "$i"
        SYS_PIDS+=("${CL_PID[p$i]}" "${CL_PID[r$i]}")
    done
    wait_until 60 cl_idle $((3 * CL_MIN_IDLE))
    routers_up
}

# sampler FILE (run it with &: it execs): every 0.5 s, per node n1 n2 n3: "instances kib airlocks kib"
# (smartgrid-server processes and airlocks in the node's network namespace)
sampler() {
    exec python3 - "$1" "${CL_NS[1]}" "${CL_NS[2]}" "${CL_NS[3]}" <<'EOF'
import os, sys, time
ns = {os.readlink("/proc/%s/ns/net" % p): i for i, p in enumerate(sys.argv[2:5])}
out = open(sys.argv[1], "a", buffering=1)
kinds = ("smartgrid-serve", "airlock")
while True:
    acc = [[0, 0, 0, 0] for _ in range(3)]
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % d) as f:
                comm = f.read().strip()
            if comm not in kinds:
                continue
            node = ns.get(os.readlink("/proc/%s/ns/net" % d))
            if node is None:
                continue
            with open("/proc/%s/status" % d) as f:
                rss = next((int(l.split()[1]) for l in f if l.startswith("VmRSS:")), 0)
        except (OSError, ValueError):
            continue  # gone meanwhile
        k = 2 * kinds.index(comm)
        acc[node][k] += 1
        acc[node][k + 1] += rss
    out.write(" ".join(str(v) for a in acc for v in a) + "\n")
    time.sleep(0.5)
EOF
}

# run SYSTEM ACTIVE%: one measured run; one result line on stdout
run() {
    local sys=$1 act=$2 n=$((U * $2 / 100)) tag=$1-$2 spid
    log "$sys: $act % active ($n of $U users)"
    "${sys}_start"
    sleep 2 # settle (not a synchronisation: the memory of a system at rest)
    sampler "$T/$tag.mem" &
    spid=$!
    : >"$T/$tag.csv"
    "$SG_BIN/smartgrid-load" --connect tcp:127.0.0.1:8443 --certs "$SG" --keys "$SG/keys.csv" \
        --domain "$SG_DOMAIN" --mode customer --duration "$SM_SESSION" --frequency 1s \
        --write-ratio 0.10 --users "$n" --ramp-up 5s --csv "$T/$tag.csv" >"$T/$tag.out" 2>&1 ||
        log "$sys: load errors: $(grep '^total' "$T/$tag.out")"
    { kill "$spid"; wait "$spid"; } 2>/dev/null || true
    sys_stop
    awk -v sys="$sys" -v act="$act" -v n="$n" '
        FILENAME ~ /\.mem$/ { k++; for (i = 1; i <= 12; i++) s[i] += $i; next }
        $2 == "LOGIN" && $5 == 200 { l[++nl] = $4 }
        END {
            for (i = 1; i <= 12; i++) s[i] /= k
            printf "%-8s %3s %% %4d", sys, act, n
            for (j = 0; j < 3; j++) printf " | %5.1f %6.1f %5.1f", s[4 * j + 1], s[4 * j + 2] / 1024, s[4 * j + 4] / 1024
            printf " | %6.1f %7.1f %6.1f", s[1] + s[5] + s[9], (s[2] + s[6] + s[10]) / 1024, (s[4] + s[8] + s[12]) / 1024
            # LOGIN p99 over every login of the run (ms)
            for (i = 2; i <= nl; i++) for (j = i; j > 1 && l[j - 1] > l[j]; j--) { t = l[j]; l[j] = l[j - 1]; l[j - 1] = t }
            printf " | %5d %6.1f\n", nl, nl ? l[int(0.99 * nl + 0.999999)] : 0
        }' "$T/$tag.mem" FS=, "$T/$tag.csv" | tee -a "$T/results"
}

cl_net
cl_redis redis
log "provisioning $U users"
cl_users "$U"
cl_haproxy
echo "U=$U users, sessions of $SM_SESSION, min_idle $CL_MIN_IDLE and max $CL_MAX per node;" \
    "per node n1 | n2 | n3: instances, their RSS MiB, airlock RSS MiB (means of 0.5 s samples);" \
    "then the three summed; logins, LOGIN p99 ms"
first=trivial second=standby
for act in $SM_ACTIVE; do
    run $first "$act"
    run $second "$act"
    t=$first first=$second second=$t
done
