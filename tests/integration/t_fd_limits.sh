#!/bin/bash
# t_fd_limits: airlock and the open files limit (RLIMIT_NOFILE).
#  - it raises the soft limit to the hard one at start, and logs it;
#  - it warns, at start and at a reload, when the relays' max_connections
#    cannot fit in the limit;
#  - out of file descriptors (hard limit 64, clients holding connections
#    through a relay to an echo server): the connects that fail for want of
#    an fd count as local errors (airlock_local_errors_total, reason
#    fd_limit), not as the target's connect errors; the process does not
#    spin meanwhile (its CPU time over 2 s stays low); once the clients
#    leave, the relay serves again;
#  - clients that connect to the metrics and tcp control endpoints and say
#    nothing (300 each, with 256 fds) hold at most 64 and 32 connections
#    there (the oldest closed): the relay and a scrape are served at once,
#    not once the idle ones time out.
. "$(dirname "$0")/lib.sh"

need socat python3 curl

read -r M P ECHO C <<<"$(free_ports 4)"
start echo python3 -c '
import asyncio, sys
async def echo(r, w):
    while data := await r.read(65536):
        w.write(data)
        await w.drain()
    w.close()
async def main():
    srv = await asyncio.start_server(echo, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    await srv.serve_forever()
asyncio.run(main())' "$ECHO"
wait_for tcp_up "$ECHO"

# conf MAXCONN: one relay to the echo server
conf() {
    cat >"$T/airlock.yaml.new" <<EOF
threads: 1
drain_timeout: 1s
metrics: tcp:127.0.0.1:$M
control: tcp:127.0.0.1:$C
relays:
  - name: hold
    listen: tcp:127.0.0.1:$P
    target: tcp:127.0.0.1:$ECHO
    max_connections: $1
EOF
    mv "$T/airlock.yaml.new" "$T/airlock.yaml"
}

# limited NAME SOFT HARD: airlock run with these open files limits
limited() {
    start "$1" bash -c "ulimit -Sn $2 && ulimit -Hn $3 && exec \"\$@\"" _ \
        "$AIRLOCK" run -c "$T/airlock.yaml"
    AL=$LAST_PID
    wait_log "$T/$1.log" 'airlock running'
}
soft_limit() { awk '/^Max open files/ { print $4 }' "/proc/$1/limits"; }
echoes() { [ "$(echo ping | timeout 5 socat -T 5 - TCP:127.0.0.1:"$P" 2>/dev/null)" = ping ]; }
m() { curl -sf -m 5 "http://127.0.0.1:$M/metrics" | awk -v k="$1{$2}" '$1 == k { print $2 }'; }

log "the soft limit is raised to the hard one"
HARD=$(ulimit -Hn)
conf 100
limited raise 256 "$HARD"
[ "$(soft_limit "$AL")" = "$HARD" ] || fail "soft limit $(soft_limit "$AL"), not the hard $HARD"
grep -q "open files limit raised from 256 to $HARD" "$T/raise.log" || fail "the raise is not logged"
grep -q 'open files limit .* is below' "$T/raise.log" && fail "a warning for limits that fit"
stop_clean "$AL" raise

log "max_connections that cannot fit: a warning at start and at a reload"
conf 1000
limited warn 256 256
grep -q 'open files limit 256 is below the [0-9]* file descriptors' "$T/warn.log" ||
    fail "no warning for max_connections 1000 with 256 files"
conf 10
kill -HUP "$AL"
wait_log "$T/warn.log" 'reloaded'
[ "$(grep -c 'is below the' "$T/warn.log")" = 1 ] || fail "a warning for limits that fit"
conf 5000
kill -HUP "$AL"
reloads() { [ "$(grep -c 'reloaded' "$T/warn.log")" = "$1" ]; }
wait_for reloads 2
[ "$(grep -c 'is below the' "$T/warn.log")" = 2 ] || fail "no warning at the reload"
stop_clean "$AL" warn

log "out of fds: local errors, not connect errors; no spin; recovery"
conf 0
limited exhaust 64 64
wait_for echoes
start clients python3 -c '
import socket, sys, time
socks = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(60)]
open(sys.argv[2], "w").close()
time.sleep(60)' "$P" "$T/clients"
CLIENTS=$LAST_PID
wait_for test -e "$T/clients"
wait_log "$T/exhaust.log" 'cannot connect to .*Too many open files|accept paused'
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
t0=$(ticks "$AL") s0=$(date +%s%N)
sleep 2 # a measurement window, not a synchronisation
used=$(($(ticks "$AL") - t0)) wall=$((($(date +%s%N) - s0) / 10000000))
log "out of fds: $used of $wall CPU ticks in 2 s"
[ $((used * 2)) -lt "$wall" ] || fail "airlock used $used of $wall ticks while out of fds (a spin?)"
kill "$CLIENTS"
none_open() { [ "$(m airlock_connections_open 'relay="hold"')" = 0 ]; }
wait_for none_open
wait_for echoes
local_fd=$(m airlock_local_errors_total 'relay="hold",reason="fd_limit"')
connect=$(m airlock_connect_errors_total 'relay="hold"')
log "local errors (fd_limit): $local_fd, connect errors: $connect"
[ "${local_fd:-0}" -gt 0 ] || fail "no local error counted while out of fds"
[ "$connect" = 0 ] || fail "$connect connect errors counted while out of fds (the target is fine)"
grep -q 'close relay=hold .* end=connect_failed' "$T/exhaust.log" &&
    fail "a connection out of fds ended with end=connect_failed"
stop_clean "$AL" exhaust

log "idle clients of metrics and ctl hold a bounded share of the fds"
conf 10
limited idle 256 256
start idlers python3 -c '
import socket, sys, time
held = []
for port in (int(sys.argv[1]), int(sys.argv[2])):
    for _ in range(300):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        held.append(s)
time.sleep(3) # the connects that found the listen queue full are retried
open(sys.argv[3], "w").close()
time.sleep(60)' "$M" "$C" "$T/idlers"
IDLERS=$LAST_PID
wait_for test -e "$T/idlers"
[ "$(echo ping | timeout 2 socat -T 2 - TCP:127.0.0.1:"$P" 2>/dev/null)" = ping ] ||
    fail "the relay is not served while idle clients hold metrics and ctl connections"
curl -sf -m 2 -o /dev/null "http://127.0.0.1:$M/metrics" || fail "no scrape beside the idle clients"
open_fds=$(ls "/proc/$AL/fd" | wc -l)
log "airlock's open fds: $open_fds"
[ "$open_fds" -lt 160 ] || fail "$open_fds fds open: the idle clients are not bounded"
kill "$IDLERS"
stop_clean "$AL" idle
log "pass"
