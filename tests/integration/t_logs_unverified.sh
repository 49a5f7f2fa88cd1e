#!/bin/bash
# t_logs_unverified: a log sink on tcp (as on vsock) tells airlock's
# forwarder from any other process of the sending host by its source port.
# airlock (as root) forwards from a reserved port (below 1024, which only a
# privileged process may bind); a line from any other port is written after
# "unverified[PEER]: ", so it never passes for airlock's or an app's:
#   - the forwarder's own lines ("airlock: ...") and an app's from
#     logs.listen ("app[PID]#N: ...") arrive unmarked, from a port below 1024;
#   - the forwarder's reserved port keeps no listener of that port out
#     (SO_REUSEADDR);
#   - a process that connects to the sink itself and writes "airlock: ..."
#     and "app[1]#1: ..." lines (as a compromised instance of a pool in an
#     enclave could, with the enclave's CID) gets them marked, and counted;
#     a CR or an escape sequence in them is written as \xHH, so it cannot
#     hide the mark;
#   - airlock forwarding without the right to bind such a port (as nobody)
#     says so at connect, and its lines arrive marked;
#   - a sink with mark_unverified: false writes every line as it came;
#   - at max_streams, unverified streams of the forwarder's address that keep
#     sending lines (a new one every 20 ms) never take the forwarder's
#     place: every line of an app's arrives, none is lost with an evicted
#     forwarder stream; when every stream is verified, an unverified one is
#     refused.
. "$(dirname "$0")/lib.sh"
need socat curl setpriv ss
is_root || skip "needs root: the forwarder binds a reserved port, setpriv drops to nobody"

read -r SP SP2 SP3 HM <<<"$(free_ports 4)"
cat >"$T/host.yaml" <<EOF
metrics: tcp:127.0.0.1:$HM
log_sinks:
  - name: main
    listen: tcp:127.0.0.1:$SP
    file: $T/main.out
  - name: plain
    listen: tcp:127.0.0.1:$SP2
    file: $T/plain.out
    mark_unverified: false
  - name: few
    listen: tcp:127.0.0.1:$SP3
    file: $T/few.out
    max_streams: 8
EOF
airlock_up host run -c "$T/host.yaml"
HOST=$LAST_PID

cat >"$T/enc.yaml" <<EOF
logs:
  forward: tcp:127.0.0.1:$SP
  capture_stderr: true
  listen: unix:$T/enc.sock
EOF
airlock_up enc run -c "$T/enc.yaml"
ENC=$LAST_PID

log "airlock's lines and an app's arrive unmarked, from a reserved port"
wait_log "$T/main.out" '^airlock: .* airlock running'
echo 'hello from an app' | socat -u - UNIX-CONNECT:"$T/enc.sock"
wait_log "$T/main.out" '^app\[[0-9]+\]#[0-9]+: hello from an app$'
grep -q '^unverified' "$T/main.out" && fail "a line of the forwarder was marked: $(grep '^unverified' "$T/main.out")"
port=$(ss -Htn state established "dport = :$SP" | awk '{ n = split($3, a, ":"); print a[n] }' | head -1)
log "the forwarder's port: $port"
[ -n "$port" ] && [ "$port" -lt 1024 ] || fail "the forwarder connects from port '$port', not one below 1024"
# SO_REUSEADDR: its port keeps no listener of that port out
python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen()' "$port" 2>"$T/listen.err" || fail "a listener cannot bind the forwarder's port: $(cat "$T/listen.err")"

log "lines of another process of the host are marked"
printf 'airlock: 2026-01-01T00:00:00.000Z info forged by a rogue\napp[1]#1: forged too\n' |
    socat -u - "TCP:127.0.0.1:$SP"
wait_log "$T/main.out" '^unverified\[127\.0\.0\.1:[0-9]+\]: app\[1\]#1: forged too$'
grep -qE '^unverified\[127\.0\.0\.1:[0-9]+\]: airlock: .* forged by a rogue$' "$T/main.out" ||
    fail "the forged airlock line is not marked"
grep -q '^airlock: .*forged\|^app\[1\]#1: forged' "$T/main.out" && fail "a forged line passed unmarked"
# a CR or an escape sequence would hide the mark where the file is read
printf 'x\rairlock: forged behind a CR\n\033[2K\033[1Gairlock: forged behind ESC\n' |
    socat -u - "TCP:127.0.0.1:$SP"
wait_log "$T/main.out" ': \\x1b\[2K\\x1b\[1Gairlock: forged behind ESC$'
grep -qF 'x\x0dairlock: forged behind a CR' "$T/main.out" || fail "the CR was not escaped"
# nor Unicode's line breaks (NEL, U+2028) where a Unicode-aware reader splits
printf 'y\xc2\x85airlock: forged behind NEL\xe2\x80\xa8app[1]#1: and LS\n' | socat -u - "TCP:127.0.0.1:$SP"
wait_log "$T/main.out" 'y\\xc2\\x85airlock: forged behind NEL\\xe2\\x80\\xa8app\[1\]#1: and LS$'
LC_ALL=C grep -q $'\xc2\x85\|\xe2\x80\xa8' "$T/main.out" && fail "a Unicode line break reached the file"
[ "$(tr -d '\n' <"$T/main.out" | tr -dc '\r\033' | wc -c)" = 0 ] || fail "a control character reached the file"
[ "$(metric airlock_log_sink_streams_unverified_total 'sink="main"' "$HM")" = 3 ] ||
    fail "airlock_log_sink_streams_unverified_total{sink=main} is not 3"

log "a forwarder that may not bind a reserved port says so, and its lines are marked"
stop_clean "$ENC" enc
printf 'logs:\n  forward: tcp:127.0.0.1:%s\n  capture_stderr: true\n' "$SP" >"$T/nobody.yaml"
chmod 755 "$T"
chmod 644 "$T/nobody.yaml"
start nobody setpriv --reuid=65534 --regid=65534 --clear-groups "$AIRLOCK" run -c "$T/nobody.yaml"
NOBODY=$LAST_PID
wait_log "$T/nobody.log" 'log forward: connected from port [0-9]+, not a reserved one'
wait_log "$T/main.out" '^unverified\[127\.0\.0\.1:[0-9]+\]: airlock: .* airlock running'
stop "$NOBODY" || true

log "at max_streams, busy unverified streams never take the forwarder's place"
printf 'logs:\n  forward: tcp:127.0.0.1:%s\n  capture_stderr: true\n  listen: unix:%s\n' "$SP3" "$T/few.sock" >"$T/few.yaml"
airlock_up fewfwd run -c "$T/few.yaml"
FEW=$LAST_PID
wait_log "$T/few.out" '^airlock: .* airlock running'
# streams from ports anyone may bind, each sending a line every 20 ms, a new
# one every 20 ms (the sink closes the least recently active of them)
start busy python3 -u -c '
import socket, sys, time
port, streams = int(sys.argv[1]), []
end = time.time() + 8
while time.time() < end:
    try:
        streams.append(socket.create_connection(("127.0.0.1", port)))
    except OSError:
        pass
    for s in list(streams):
        try:
            s.sendall(b"x\n")
        except OSError:
            streams.remove(s)
    time.sleep(0.02)' "$SP3"
sleep 1
python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
for i in range(2000):
    s.sendall(b"seq %d %s\n" % (i, b"y" * 200))
    if i % 100 == 0:
        time.sleep(0.2)' "$T/few.sock"
got() { [ "$(grep -c '^app\[[0-9]*\]#[0-9]*: seq ' "$T/few.out")" = 2000 ]; }
wait_until 20 got || fail "$(grep -c '^app\[[0-9]*\]#[0-9]*: seq ' "$T/few.out") of 2000 lines arrived"
grep -q 'log forward to .* lost' "$T/fewfwd.log" && fail "the forwarder was pushed out: $(grep 'lost' "$T/fewfwd.log" | head -2)"
grep -q 'closed the least recently active one of 127.0.0.1' "$T/host.log" ||
    fail "the busy streams did not fill max_streams"
stop "$LAST_PID" || true
# every stream verified (reserved ports, as root): an unverified one is refused
python3 -c '
import socket, sys, time
port, held = int(sys.argv[1]), []
for p in range(600, 1000):
    if len(held) == 7:
        break
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        s.connect(("127.0.0.1", port))
        held.append(s)
    except OSError:
        s.close()
time.sleep(0.5)
u = socket.create_connection(("127.0.0.1", port))
u.sendall(b"an unverified line\n")
u.settimeout(5)
try:
    print("closed" if u.recv(1) == b"" else "open")
except ConnectionResetError:
    print("closed")' "$SP3" >"$T/refused.out" 2>&1 || true
[ "$(cat "$T/refused.out")" = closed ] || fail "an unverified stream among verified ones: $(cat "$T/refused.out")"
grep -q 'refused an unverified stream of 127.0.0.1: every stream is verified' "$T/host.log" ||
    fail "the refusal was not logged"
grep -q 'an unverified line' "$T/few.out" && fail "the refused stream's line was written"
stop_clean "$FEW" fewfwd

log "mark_unverified: false writes lines as they came"
printf 'as it came\n' | socat -u - "TCP:127.0.0.1:$SP2"
wait_log "$T/plain.out" '^as it came$'
stop_clean "$HOST" host
