#!/bin/bash
# t_pool_port_squat_hidden: an instance that holds ports of its pool's range
# with sockets that no fd table shows. t_pool_port_squat has the squatter
# hold its sockets open; a listening socket lives on, its fd closed, as
# long as anything holds it. Before, the pool looked for the holder in the
# fd tables only, found none, took the sockets for orphans and only skipped
# their ports: one session took every free port of the range and the pool
# started no instance until it ended (nobody else served). Now
#   - dave's squatter maps its sockets, heidi's too and then its main
#     thread exits (its /proc/PID/maps is empty then, its threads' is not),
#     and grace's registers them in an io_uring: found there
#     (/proc/PID/maps, the io_uring's fdinfo) and stopped as any squatter
#     (why=took_port);
#   - ivan's sends its sockets into judy's unix socket, which never
#     receives them (in flight): no file of /proc shows their holder, and
#     neither judy (who may not know, as here) nor ivan (their creator's
#     uid may be an earlier session's) is blamed: their ports are only
#     skipped, and the pool starts its next instance on a free one;
# erin's instance, started first, holds nothing hidden and is untouched all
# through.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run instances as other uids"
need python3
pool_setup
chmod 755 "$T" # the instances pass through to their directories
U0=$(free_uids 5)
pool_conf "$CONF" "$P0" --state-wait 0 <<EOF
    min_idle: 1
    max: 5
    uids: $U0-$((U0 + 4))
EOF
LAST=$((P0 + 6))
sed -i "s/^    ports: .*/    ports: $P0-$LAST/" "$CONF"
ports=$(seq "$P0" "$LAST" | tr '\n' ' ')
SOCK="airlock-test-hidden-$$"

# hide.py map|map-thread|uring|keep|send NAME PORT...: what a squatter runs
# (as the instance's uid). map, uring: listens on each PORT of 127.0.0.1
# that is free and keeps the socket by a mapping or an io_uring's registered
# files, its fd closed; map-thread: map, then its main thread exits while
# another runs on. keep: listens on the abstract unix socket NAME, takes one
# connection and never reads it. send: the listeners sent (SCM_RIGHTS) to
# keep's connection, their fds closed.
cat >"$T/hide.py" <<'PY'
import array, ctypes, socket, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
mode, name = sys.argv[1], "\0" + sys.argv[2]
if mode == "keep":
    l = socket.socket(socket.AF_UNIX)
    l.bind(name)
    l.listen(1)
    c, _ = l.accept()
    time.sleep(600)
if mode == "send":
    out = socket.socket(socket.AF_UNIX)
    out.connect(name)
ring = libc.syscall(425, 8, (ctypes.c_char * 120)()) if mode == "uring" else -1
for p in sys.argv[3:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", int(p)))
        s.listen(1)
    except OSError:
        s.close()
        continue
    if mode.startswith("map"):
        assert libc.mmap(None, 4096, 1, 1, s.fileno(), 0) not in (None, 2**64 - 1)
    elif mode == "uring":
        assert libc.syscall(427, ring, 2, (ctypes.c_int * 1)(s.fileno()), 1) == 0
        ring = libc.syscall(425, 8, (ctypes.c_char * 120)()) # one file per ring
    else:
        out.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [s.fileno()]))])
    s.close()
if mode == "map-thread":
    threading.Thread(target=time.sleep, args=(600,)).start()
    libc.syscall(60, 0) # exit: this thread only
time.sleep(600)
PY
chmod 644 "$T/hide.py"
# holder PORT: the uid of the listener on PORT (no process has it open: ss
# names none, only the socket's uid)
holder() { ss -Htlne "sport = :$1" | sed -n 's/.* uid:\([0-9]*\) .*/\1/p' | head -1; }
# squatted UID N: uid UID made N listeners on ports of the range that no fd
# table shows (their holder: none that ss finds)
squatted() {
    local p n=0
    for p in $ports; do
        [ "$(holder "$p")" = "$1" ] && ! ss -Htlnp "sport = :$p" | grep -q users: && n=$((n + 1))
    done
    [ "$n" = "$2" ]
}
no_procs() { [ -z "$(uid_procs "$1")" ]; }
uid_of_port() { stat -c %u "/proc/$(pid_of_port "$1")"; }
# name_of_port PORT: the name of the instance the log shows started on PORT last
# (a uid and a port serve one session after another: the name does not)
name_of_port() { sed -n "s/.* instance=\([^ ]*\) starting pid=[0-9]* port=$1\$/\1/p" "$LOG" | tail -1; }
# hide USER_PORT MODE ARGS...: that instance runs hide.py MODE $SOCK ARGS... in the background
hide() {
    [ "$(app "$1" "sh /usr/bin/python3 $T/hide.py $2 $SOCK ${*:3} >/dev/null 2>&1 & echo hiding")" = "OK hiding" ] ||
        fail "the squatter did not start"
}
# login USER: USER takes an instance and logs in; its port in $PU, uid in $UU
login() {
    PU=$(assign_port "$1")
    [ "$(app "$PU" "login $1")" = NOSTATE ] || fail "$1 not served"
    wait_for settled 1
    UU=$(uid_of_port "$PU")
}
# took UID PORT N: the next start (frank takes the idle instance) stops the
# instance of UID on PORT, the Nth taken; its processes go, frank logs out
took() {
    local p name
    name=$(name_of_port "$2")
    p=$(assign_port frank)
    [ "$(app "$p" "login frank")" = NOSTATE ] || fail "frank not served"
    wait_log "$LOG" "pool=fa instance=$name uid=$1 holds port [0-9]+, not its own \(port $2\): stopped"
    wait_for no_procs "$1"
    metric_is airlock_pool_took_ports_total 'pool="fa"' "$3" ||
        fail "airlock_pool_took_ports_total is $(metric airlock_pool_took_ports_total 'pool="fa"' "$MPORT")"
    [ "$(app "$p" logout)" = BYE ] || fail "frank's logout"
    wait_for settled 1
    running "$E" || fail "erin's instance was stopped"
}

airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1
login erin
E=$(pid_of_port "$PU")

n=0
for mode in map map-thread uring; do
    case $mode in map) user=dave ;; map-thread) user=heidi ;; uring) user=grace ;; esac
    log "$user's squatter keeps its listeners by $mode: stopped"
    login "$user"
    hide "$PU" "$mode" $ports
    # erin, $user and the idle instance hold three ports of seven
    wait_for squatted "$UU" 4
    n=$((n + 1))
    took "$UU" "$PU" "$n"
done

log "ivan's squatter sends its listeners to judy's, which never receives them: skipped"
login judy
PJ=$PU
login ivan
PI=$PU UI=$UU
hide "$PJ" keep
wait_for eval 'ss -Hxl | grep -q "@$SOCK"'
# erin, judy, ivan and the idle instance hold four ports of seven: ivan
# takes two of the three free, one is left for the next start
free=$(for p in $ports; do ss -Htan "sport = :$p" | grep -q . || echo "$p"; done | tr '\n' ' ')
[ "$(wc -w <<<"$free")" = 3 ] || fail "free ports: $free"
spare=$(awk '{ print $3 }' <<<"$free")
squat=$(awk '{ print $1, $2 }' <<<"$free")
hide "$PI" send $squat
wait_for squatted "$UI" 2
mark=$(wc -l <"$LOG")
p=$(assign_port frank) # the next start looks for the holders of the two
[ "$(app "$p" "login frank")" = NOSTATE ] || fail "frank not served"
wait_for settled 1
tail -n +"$((mark + 1))" "$LOG" | grep -Eq " starting pid=[0-9]+ port=$spare\$" ||
    fail "the next instance did not start on the free port $spare"
FRANK=$(name_of_port "$p")
[ "$(app "$p" logout)" = BYE ] || fail "frank's logout"
# frank's wipe is queued after the search (the store-backs' queue): it is over
wait_log "$LOG" "instance=$FRANK wiped"
! tail -n +"$((mark + 1))" "$LOG" | grep -Eq "not its own|why=took_port" || fail "an instance was stopped for the ports in flight"
metric_is airlock_pool_took_ports_total 'pool="fa"' 3 || fail "airlock_pool_took_ports_total moved"
running "$(pid_of_port "$PJ")" || fail "judy's instance, whose queue holds them, was stopped"
running "$(pid_of_port "$PI")" || fail "ivan's instance, which made them, was stopped"
running "$E" || fail "erin's instance was stopped"
squatted "$UI" 2 || fail "the ports in flight are not held any more: the test cannot tell"
stop_clean "$AL" al
