#!/bin/bash
# login-trace.sh - where the time of one LOGIN goes, Trivial against Standby
# (the two systems of bench/standby.sh, a few users): the syscalls of the
# load generator, the router, the pool's threads and the instance, taken by
# the kernel's syscall trace events (tracefs), one login at a time.
#
#   usage: bench/login-trace.sh [--logins N | --burst N] [--keep]   (root, tracefs)
#
# Each login is cut into phases by the first event of each step after the
# client's connect():
#   hello     the client's connect -> the router accepts (TCP_DEFER_ACCEPT:
#             when the ClientHello is in; the client loads its certificate
#             and key first, in both systems alike)
#   route     the router's accept -> its connect to the instance (Trivial:
#             a static route; Standby: the directory's assignment)
#   dial      -> the instance accepts
#   handshake -> the instance opens the user's database (the TLS handshake
#             and the login request; Standby: the user's certificate and key
#             are brought in meanwhile and read at the ClientHello)
#   login     -> the client has the answer (its LOGIN latency, less the above)
# Prints a markdown table of the medians (ms) over N logins (12) of each
# system, Standby first, then Trivial; each login half a second after the
# last one's logout, so that the teardown of a session (Standby: the state
# stored back, the directory wiped, a fresh instance started) does not fall
# on the next one. The machine should be idle: the point is the path, not
# the load. Events are told apart by process name and
# syscall (the database is the instance's first openat with O_RDWR), so the
# analysis is tied to smartgrid-server as it is.
#
# --burst N: the same two systems under load instead: N users arriving over
# 5 s, each in one 10 s session (a request a second, 10 % writes), as
# bench/standby.sh's 50 % active runs (N = 100: 20 logins a second), with
# the scheduler's events traced too. Logins overlap, so they are not cut
# from the client; per login, the instance's side is: its accept to its
# opening the database (the handshake and the LOGIN request), split into
# the instance's time on a core (run), waiting for a core (runnable) and
# asleep (waiting for the client, or for its state); and the router's side,
# its accept to its connect (route). Prints medians and 90th percentiles.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOGINS=12 KEEP= BURST=
while [ $# -gt 0 ]; do
    case $1 in
    --logins) LOGINS=$2; shift 2 ;;
    --burst) LOGINS=$2 BURST=1; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) echo "usage: bench/login-trace.sh [--logins N | --burst N] [--keep]" >&2; exit 2 ;;
    esac
done
LOG_FD=2
. "$ROOT/scripts/lib.sh"
is_root || die "login-trace.sh: needs root (tracefs)"
TR=/sys/kernel/tracing
[ -w "$TR/trace_marker" ] || die "login-trace.sh: no tracefs at $TR"
"$ROOT/bench/deps.sh" >/dev/null
make -C "$ROOT" >/dev/null
B=$ROOT/build
scratch_dir W login-trace "$KEEP"
EVENTS=(syscalls/sys_enter_connect syscalls/sys_exit_accept4 syscalls/sys_enter_openat)
[ -z "$BURST" ] || EVENTS+=(sched/sched_switch sched/sched_wakeup)
trace_events() { # trace_events 0|1
    local e
    for e in "${EVENTS[@]}"; do echo "$1" >"$TR/events/$e/enable"; done
}
at_exit 'echo 0 >/sys/kernel/tracing/tracing_on; trace_events 0; echo >/sys/kernel/tracing/trace'
echo 0 >"$TR/tracing_on"
echo >"$TR/trace"
echo $((BURST ? 131072 : 4096)) >"$TR/buffer_size_kb"
trace_events 1

GW=$(free_port)
P0=$(free_range $((LOGINS + 16)))
user_name() { printf 'user%04d' "$1"; }
"$B/smartgrid-provision" --out "$W/grid" --users "$LOGINS" --days 1 --domain example >/dev/null

# logins SYSTEM: one login (and logout) per user, one after the other,
# traced; the trace in $W/SYSTEM.trace, the latencies in $W/SYSTEM-*.csv
logins() {
    local i
    echo 1 >"$TR/tracing_on"
    if [ -n "$BURST" ]; then
        "$B/smartgrid-load" --connect "tcp:127.0.0.1:$GW" --certs "$W/grid" \
            --keys "$W/grid/keys.csv" --domain example --mode customer --duration 10s \
            --frequency 1s --write-ratio 0.10 --users "$LOGINS" --ramp-up 5s \
            --csv "$W/$1-burst.csv" >"$W/$1-burst.out" 2>&1 ||
            die "$1: the load failed: $(tail -n 3 "$W/$1-burst.out")"
    fi
    for ((i = 1; i <= LOGINS && !BURST; i++)); do
        echo "login $1 $i" >"$TR/trace_marker"
        "$B/smartgrid-load" --connect "tcp:127.0.0.1:$GW" --certs "$W/grid" \
            --keys "$W/grid/keys.csv" --domain example --mode customer --duration 1s \
            --frequency 1s --users "$i-$i" --csv "$W/$1-$i.csv" >"$W/$1-$i.out" 2>&1 ||
            die "$1: the load of user $i failed: $(tail -n 3 "$W/$1-$i.out")"
        # the session's end (Standby: its state stored back, the directory
        # wiped, a fresh instance started) is over before the next login
        sleep 0.5
    done
    echo 0 >"$TR/tracing_on"
    cp "$TR/trace" "$W/$1.trace"
    echo >"$TR/trace"
}

log "standby: a pool of 4 standing by, the memory directory"
mkdir -p "$W/instances" && cp -r "$W/grid/db" "$W/store"
{
    cat <<EOF
threads: 1
directory:
  backend: memory
routers:
  - name: grid
    listen: tcp:127.0.0.1:$GW
    send_proxy: v2
    directory: grid
    domain: grid.example
EOF
    "$ROOT/apps/smartgrid/pool-yaml.sh" "$B" "$W/grid" "$W/store" "$W/instances" \
        "$P0-$((P0 + LOGINS + 15))" 4 $((LOGINS + 8)) 4 5s example
} >"$W/standby.yaml"
proc_start -g "$W/standby.log" "$B/airlock" run -c "$W/standby.yaml"
AL=$LAST_PID
ready4() { [ "$(grep -c ' ready ms=' "$W/standby.log")" -ge 4 ]; }
wait_until 30 ready4
logins standby
proc_stop "$AL"

log "trivial: a server per user, static routes"
{
    printf 'threads: 1\nrouters:\n  - name: grid\n    listen: tcp:127.0.0.1:%s\n    routes:\n' "$GW"
    for ((i = 1; i <= LOGINS; i++)); do
        echo "      - {name: $(user_name "$i").grid.example, target: tcp:127.0.0.1:$((P0 + i))}"
    done
} >"$W/trivial.yaml"
for ((i = 1; i <= LOGINS; i++)); do
    u=$(user_name "$i")
    mkdir -p "$W/trivial/$u" && cp "$W/grid/db/$u.db" "$W/trivial/$u/"
    proc_start -g "$W/trivial/$u.log" "$B/smartgrid-server" --cert "$W/grid/server.pem" \
        --key "$W/grid/server.key" --ca "$W/grid/ca.pem" --domain example \
        --listen "tcp:127.0.0.1:$((P0 + i))" --dir "$W/trivial/$u"
done
proc_start -g "$W/trivial.log" "$B/airlock" run -c "$W/trivial.yaml"
all_listening() { [ "$(cat "$W"/trivial/*.log | grep -c 'listening')" -ge "$LOGINS" ]; }
wait_until 30 all_listening
wait_port "$GW"
logins trivial

python3 - "$W" "$LOGINS" "$BURST" <<'EOF'
import csv, glob, re, statistics, sys
w, n, burst = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
EV = re.compile(r'\s*(.+?)-(\d+)\s+\[\d+\]\s+\S+\s+([\d.]+): (.*)')
PHASES = ["hello", "route", "dial", "handshake", "login", "total"]

def logins(system):
    """The phases (ms) of each login of system."""
    out, cur = [], None
    for line in open(f"{w}/{system}.trace"):
        m = EV.match(line)
        if not m:
            continue
        comm, _, ts, ev = m.group(1), m.group(2), float(m.group(3)) * 1000, m.group(4)
        if "tracing_mark_write: login" in ev:
            cur = {"user": int(ev.split()[-1])}
            out.append(cur)
        elif cur is None:
            continue
        elif comm == "smartgrid-load" and ev.startswith("sys_connect(") and "t0" not in cur:
            cur["t0"] = ts
        elif "t0" not in cur:
            continue
        elif comm.startswith("airlock") and ev.startswith("sys_accept4 -> 0x") \
                and not ev.startswith("sys_accept4 -> 0xffff") and "acc" not in cur:
            cur["acc"] = ts
        elif comm.startswith("airlock") and ev.startswith("sys_connect(") and "acc" in cur \
                and "dial" not in cur:
            cur["dial"] = ts
        elif comm == "smartgrid-serve" and ev.startswith("sys_accept4 -> 0x") \
                and not ev.startswith("sys_accept4 -> 0xffff") and "dial" in cur and "inst" not in cur:
            cur["inst"] = ts
        elif comm == "smartgrid-serve" and ev.startswith("sys_openat(") and "flags: 0x80002" in ev \
                and "inst" in cur and "db" not in cur:
            cur["db"] = ts
    rows = []
    for c in out:
        f = f"{w}/{system}-{c['user']}.csv"
        total = [float(r[3]) for r in csv.reader(open(f)) if len(r) > 4 and r[1] == "LOGIN"]
        if not total or not all(k in c for k in ("t0", "acc", "dial", "inst", "db")):
            continue
        t = [c["acc"] - c["t0"], c["dial"] - c["acc"], c["inst"] - c["dial"], c["db"] - c["inst"]]
        rows.append(t + [total[0] - (c["db"] - c["t0"]), total[0]])
    return rows

def under_load(system):
    """Per login under load: route, and the instance's accept -> database
    split into run, runnable and asleep (ms)."""
    inst, where, route, acc = {}, {}, [], None
    def account(pid, ts, now):
        d = inst.get(pid)
        if d is None or "acc" not in d or "db" in d:
            return
        old, since = where.get(pid, ("run", ts))
        d[old] += ts - max(since, d["acc"])
        where[pid] = (now, ts)
    for line in open(f"{w}/{system}.trace"):
        m = EV.match(line)
        if not m:
            continue
        comm, pid, ts, ev = m.group(1), int(m.group(2)), float(m.group(3)) * 1000, m.group(4)
        if ev.startswith("sched_switch:"):
            f = re.search(r"prev_pid=(\d+) .*prev_state=(\S+) ==> .*next_pid=(\d+)", ev)
            account(int(f.group(1)), ts, "runnable" if f.group(2).startswith("R") else "asleep")
            account(int(f.group(3)), ts, "run")
        elif ev.startswith("sched_wakeup:"):
            account(int(re.search(r" pid=(\d+)", ev).group(1)), ts, "runnable")
        elif comm.startswith("airlock") and ev.startswith("sys_accept4 -> 0x") \
                and not ev.startswith("sys_accept4 -> 0xffff"):
            acc = ts
        elif comm.startswith("airlock") and ev.startswith("sys_connect(") and acc is not None:
            route.append(ts - acc)
            acc = None
        elif comm == "smartgrid-serve" and ev.startswith("sys_accept4 -> 0x") \
                and not ev.startswith("sys_accept4 -> 0xffff") and pid not in inst:
            inst[pid] = {"acc": ts, "run": 0.0, "runnable": 0.0, "asleep": 0.0}
            where[pid] = ("run", ts)
        elif comm == "smartgrid-serve" and ev.startswith("sys_openat(") and "flags: 0x80002" in ev \
                and pid in inst and "db" not in inst[pid]:
            account(pid, ts, "run")
            inst[pid]["db"] = ts
    rows = [d for d in inst.values() if "db" in d]
    for d in rows:
        d["total"] = d["db"] - d["acc"]
    return route, rows

def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * q))] if v else float("nan")

if burst:
    res = {s: under_load(s) for s in ("standby", "trivial")}
    print("| ms, median / p90 (%d / %d logins) | Trivial | Standby |"
          % (len(res["trivial"][1]), len(res["standby"][1])))
    print("|---|---|---|")
    cell = lambda v: "%.2f / %.2f" % (pct(v, 0.5), pct(v, 0.9))
    login = {s: [float(r[3]) for r in csv.reader(open(f"{w}/{s}-burst.csv"))
                 if len(r) > 4 and r[1] == "LOGIN" and r[4] == "200"] for s in res}
    print("| LOGIN (the client's, whole) | %s | %s |" % (cell(login["trivial"]), cell(login["standby"])))
    print("| route (router's accept -> its connect) | %s | %s |"
          % (cell(res["trivial"][0]), cell(res["standby"][0])))
    for k in ("total", "run", "runnable", "asleep"):
        print("| instance: %s | %s | %s |" % ("accept -> database" if k == "total" else k,
              cell([d[k] for d in res["trivial"][1]]), cell([d[k] for d in res["standby"][1]])))
    sys.exit(0)

res = {s: logins(s) for s in ("standby", "trivial")}
print("| phase, ms (median of %s / %s logins) | Trivial | Standby |" % (len(res["trivial"]), len(res["standby"])))
print("|---|---|---|")
for i, p in enumerate(PHASES):
    med = {s: statistics.median(r[i] for r in res[s]) if res[s] else float("nan") for s in res}
    print("| %s | %.2f | %.2f |" % (p, med["trivial"], med["standby"]))
EOF
