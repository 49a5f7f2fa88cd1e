#!/bin/bash
# t_pool_port_squat: an instance that binds ports of its pool's range that
# are not its own. Instances share the host's network namespace, and before
# this one such instance could keep every start failing (each fresh
# instance found its port taken, exited, and the pool backed off) for as
# long as its session lasted, and wait there for the connections meant for
# the instance that would have had the port. Now the pool asks the kernel
# who holds a port before it gives it (sock_diag, net/sockdiag.h):
#   - a port held by a process that is no instance (a root listener on the
#     range's first port): skipped, nothing stopped, no failed start;
#   - dave's instance (uids: one uid per instance) listens on every free
#     port of the range: at the next start it is stopped (why=took_port,
#     SIGKILL, airlock_pool_took_ports_total; every process of its uid
#     reaped, dave's session over), the port is not given, and a fresh
#     instance starts once its ports are free; erin's instance, started
#     before, is untouched. The squatter holds its ports with sockets
#     connected to themselves (bound, not listening);
#   - so is grace's, whose squatter's main thread exited while a thread of
#     it holds the sockets: /proc/PID/fd of that zombie leader is empty
#     (before, its sockets were taken for orphans no process holds);
#   - a reload moves pool fa's range and gives its old one to a new pool fb:
#     fa's instances on their old ports are not taken for squatters, fb
#     starts on a port nobody holds.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run instances as other uids"
need python3
pool_setup
chmod 755 "$T" # the instances pass through to their directories
U0=$(free_uids 4)
pool_conf "$CONF" "$P0" --state-wait 0 <<EOF
    min_idle: 1
    max: 4
    uids: $U0-$((U0 + 3))
EOF
sed -i "s/^    ports: .*/    ports: $P0-$((P0 + 5))/" "$CONF"

# take listen|connect|zombie PORT...: takes each PORT of 127.0.0.1 that is
# free, by listening, or by binding and connecting to itself (a connected
# socket holds its port as well as a listener; zombie: connected, then the
# main thread exits and another holds them), then sleeps (what the squatter
# runs; here as root, "a process that is no instance"). SO_REUSEADDR, so
# that the TIME_WAIT its connected sockets leave does not hold the ports
# for 60 s more (docs/pool.md: not seen; fakeapp binds with it too)
TAKE='import ctypes, os, socket, sys, threading, time
held = []
for p in sys.argv[2:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", int(p)))
        if sys.argv[1] == "listen":
            s.listen(1)
        else:
            s.connect(("127.0.0.1", int(p)))
        held.append(s)
    except OSError:
        s.close()
if sys.argv[1] == "zombie":
    # connected, then held by a thread while the main thread exits alone
    threading.Thread(target=time.sleep, args=(600,)).start()
    ctypes.CDLL(None).syscall({"x86_64": 60, "aarch64": 93}[os.uname().machine], 0)
time.sleep(600)'
# holder PORT: the uid of a socket on PORT (ss says none for root)
holder() { ss -Htane "sport = :$1" | sed -n 's/.* uid:\([0-9]*\) .*/\1/p' | head -1; }
pid_on() { ss -Htlnp "sport = :$1" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1; }

log "a port held by a process that is no instance is skipped"
start rootheld python3 -c "$TAKE" listen "$P0"
wait_for eval '[ -n "$(ss -Htan "sport = :$P0")" ]'
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1
PE=$(assign_port erin)
[ "$PE" != "$P0" ] || fail "an instance was given port $P0, which root holds"
[ "$(app "$PE" "login erin")" = NOSTATE ] || fail "erin not served"
wait_for settled 1
[ "$(metric airlock_pool_restarts_total 'pool="fa"' "$MPORT")" = 0 ] ||
    fail "a start failed: $(grep -E 'exit|stopping' "$LOG" | tail -3)"

log "an instance that holds ports of the range, not its own, is stopped"
PD=$(assign_port dave)
[ "$(app "$PD" "login dave")" = NOSTATE ] || fail "dave not served"
wait_for settled 1
D=$(pid_on "$PD")
UD=$(stat -c %u "/proc/$D")
E=$(pid_on "$PE")
ports=$(seq "$P0" $((P0 + 5)) | tr '\n' ' ')
printf '%s\n' "$TAKE" >"$T/squat.py"
chmod 644 "$T/squat.py"
[ "$(app "$PD" "sh /usr/bin/python3 $T/squat.py connect $ports >/dev/null 2>&1 & echo squatting")" = "OK squatting" ] ||
    fail "the squatter did not start"
# root has the first port, erin, dave and the idle instance three others:
# the two left are now dave's
# squatted UID PORT N: uid UID holds N ports of the range besides its own PORT
squatted() {
    local p n=0
    for p in $ports; do [ "$p" != "$2" ] && [ "$(holder "$p")" = "$1" ] && n=$((n + 1)); done
    [ "$n" = "$3" ]
}
wait_for squatted "$UD" "$PD" 2
# the next start: frank takes the idle instance, a fresh one is started
PF=$(assign_port frank)
[ "$(app "$PF" "login frank")" = NOSTATE ] || fail "frank not served"
wait_log "$LOG" "pool=fa instance=[^ ]* uid=$UD holds port [0-9]+, not its own \(port $PD\): stopped"
wait_log "$LOG" "stopping why=took_port"
[ "$(metric airlock_pool_took_ports_total 'pool="fa"' "$MPORT")" = 1 ] ||
    fail "airlock_pool_took_ports_total is $(metric airlock_pool_took_ports_total 'pool="fa"' "$MPORT")"
wait_for eval '! running "$D"'
wait_for eval '[ -z "$(uid_procs "$UD")" ]'
wait_for settled 1
# (uid $UD may serve a fresh instance by now: the squatter itself is gone)
pgrep -f "$T/squat.py" >/dev/null && fail "the squatter outlived its session"
grep -q "starting pid=[0-9]* port=$P0\$" "$LOG" && fail "an instance was started on root's port $P0"
[ -n "$(ss -Htan "sport = :$P0")" ] && [ -z "$(holder "$P0")" ] ||
    fail "root's listener on $P0 was disturbed"
running "$E" || fail "erin's instance was stopped"
[ "$(app "$PE" "sh id -u")" = "OK $(stat -c %u "/proc/$E")" ] || fail "erin's instance does not answer"

log "a squatter whose main thread exited (its /proc/PID/fd is empty, a thread holds the sockets) is found too"
[ "$(app "$PF" logout)" = BYE ] || fail "frank's logout"
wait_for settled 1
PG=$(assign_port grace)
[ "$(app "$PG" "login grace")" = NOSTATE ] || fail "grace not served"
wait_for settled 1
UG=$(stat -c %u "/proc/$(pid_on "$PG")")
[ "$(app "$PG" "sh /usr/bin/python3 $T/squat.py zombie $ports >/dev/null 2>&1 & echo squatting")" = "OK squatting" ] ||
    fail "the squatter did not start"
# root, erin, grace and the idle instance hold four ports: the two left are grace's
wait_for squatted "$UG" "$PG" 2
wait_for eval '[ -n "$(ps -eo ruid=,stat=,nlwp= | awk -v u="$UG" '\''$1 == u && $2 ~ /^Z/ && $3 > 1'\'')" ]'
PH=$(assign_port heidi)
[ "$(app "$PH" "login heidi")" = NOSTATE ] || fail "heidi not served"
wait_log "$LOG" "pool=fa instance=[^ ]* uid=$UG holds port [0-9]+, not its own \(port $PG\): stopped"
[ "$(metric airlock_pool_took_ports_total 'pool="fa"' "$MPORT")" = 2 ] ||
    fail "airlock_pool_took_ports_total is $(metric airlock_pool_took_ports_total 'pool="fa"' "$MPORT")"
wait_for eval '[ -z "$(uid_procs "$UG")" ]'
wait_for settled 1
running "$E" || fail "erin's instance was stopped"

log "a reload moves the range: instances on their old ports are not taken for squatters"
U1=$(free_uids 4)
mkdir -p "$T/instb"
sed -i "s/^    ports: .*/    ports: $((P0 + 10))-$((P0 + 15))/" "$CONF"
cat >>"$CONF" <<EOF
  - name: fb
    command: [$FAKEAPP, --port, "{port}", --state-wait, "0"]
    endpoint: "tcp:127.0.0.1:{port}"
    ports: $P0-$((P0 + 5))
    dir: $T/instb
    min_idle: 1
    max: 2
    uids: $U1-$((U1 + 3))
    events:
      ready: "^WAITING_LOGIN$"
      login: "^LOGIN (.+)$"
      logout: "^LOGOUT$"
EOF
kill -HUP "$AL"
wait_log "$LOG" "reloaded"
fb_idle() { metric_is airlock_pool_instances 'pool="fb",state="idle"' 1; }
wait_for fb_idle
[ "$(metric airlock_pool_took_ports_total 'pool="fa"' "$MPORT")" = 2 ] ||
    fail "an instance on its own port was taken for a squatter: $(grep 'holds port' "$LOG")"
running "$E" || fail "erin's instance was stopped by the reload"
stop_clean "$AL" al
