#!/bin/bash
# t_reload_failed: a reload that fails ("reload failed, keeping the running
# config") leaves the running relays exactly as they were. Each relay of
# the new file is built and listening before any running one is touched:
#   - a relay moved to another port stays on its own: the old port serves,
#     the new one does not listen (before: the old socket accepted and
#     nothing served it, the new one served, and a later reload back
#     adopted the wrong socket);
#   - a unix listener keeps its mode (before: the rejected file's 0666 was
#     set on the running socket, any local user could connect);
#   - a stream -> udp relay's open streams stay (before: closed,
#     end=shutdown).
# Then the same changes without the relay that cannot listen: applied.
. "$(dirname "$0")/lib.sh"
need socat python3

read -r P1 P2 PD PBUSY ECHO <<<"$(free_ports 5)"
CONF=$T/airlock.yaml CTL=$T/ctl.sock LOG=$T/air.log
start echo socat TCP-LISTEN:"$ECHO",bind=127.0.0.1,reuseaddr,fork PIPE
start busy socat TCP-LISTEN:"$PBUSY",bind=127.0.0.1,reuseaddr,fork PIPE
wait_port "$ECHO"
wait_port "$PBUSY"

# the udp target: answers each datagram with "re:" and the datagram
start udp python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    data, addr = s.recvfrom(65536)
    s.sendto(b"re:" + data, addr)' "$PD"

# config PORT MODE IDLE [busy]: relay move on PORT, a unix relay of MODE, a
# stream -> udp relay with idle_timeout IDLE, and with "busy" a relay on a
# port another process holds; written in one rename
config() {
    {
        printf 'control: unix:%s\nrelays:\n' "$CTL"
        printf '  - {name: move, listen: "tcp:127.0.0.1:%s", target: "tcp:127.0.0.1:%s"}\n' "$1" "$ECHO"
        printf '  - {name: sock, listen: {endpoint: "unix:%s", mode: "%s"}, target: "tcp:127.0.0.1:%s"}\n' \
            "$T/r.sock" "$2" "$ECHO"
        printf '  - {name: dns, listen: "tcp:127.0.0.1:%s", target: "udp:127.0.0.1:%s", idle_timeout: %s}\n' \
            "$PD" "$PD" "$3"
        [ "${4:-}" != busy ] ||
            printf '  - {name: busy, listen: "tcp:127.0.0.1:%s", target: "tcp:127.0.0.1:%s"}\n' "$PBUSY" "$ECHO"
    } >"$CONF.new"
    mv "$CONF.new" "$CONF"
}
echoes() { [ "$(printf 'hi\n' | timeout 5 socat -t 2 - "TCP:127.0.0.1:$1" 2>/dev/null)" = hi ]; }
reload() {
    local rc=0
    "$AIRLOCK" ctl -s "unix:$CTL" reload >"$T/reload.out" 2>&1 || rc=$?
    return $rc
}

config "$P1" 0600 60s
airlock_up air run -c "$CONF"
AIR=$LAST_PID
echoes "$P1" || fail "relay move does not serve on $P1"
[ "$(stat -c %a "$T/r.sock")" = 600 ] || fail "the socket's mode: $(stat -c %a "$T/r.sock")"

# a stream of the datagram relay, open across the reloads: a frame each
# way now, another after each reload (flow 7)
mkfifo "$T/say"
cat >"$T/stream.py" <<'PY'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
for line in sys.stdin:
    payload = line.strip().encode()
    s.sendall(struct.pack(">BBHI", 0xA1, 0x01, len(payload), 7) + payload)
    head = b""
    while len(head) < 8:
        chunk = s.recv(8 - len(head))
        if not chunk:
            print("closed", flush=True)
            sys.exit(0)
        head += chunk
    (n,) = struct.unpack(">H", head[2:4])
    body = b""
    while len(body) < n:
        body += s.recv(n - len(body))
    print(body.decode(), flush=True)
PY
python3 "$T/stream.py" "$PD" <"$T/say" >"$T/stream.out" 2>&1 &
STREAM=$!
exec 7>"$T/say"
ask() { printf '%s\n' "$1" >&7; wait_for grep -qx "$2" "$T/stream.out"; }
ask one "re:one" || fail "no answer on the datagram stream: $(cat "$T/stream.out")"

log "a reload that fails: move to $P2, mode 0666, another idle_timeout, a relay on a busy port"
config "$P2" 0666 61s busy
reload && fail "the reload was applied: $(cat "$T/reload.out")"
grep -q "reload failed, keeping the running config: relay=busy: cannot listen" "$T/reload.out" ||
    fail "the reload said: $(cat "$T/reload.out")"
echoes "$P1" || fail "relay move no longer serves on $P1 after the failed reload"
tcp_refused "$P2" || fail "the rejected file's port $P2 listens"
[ "$(stat -c %a "$T/r.sock")" = 600 ] ||
    fail "the failed reload changed the socket's mode to $(stat -c %a "$T/r.sock")"
ask two "re:two" || fail "the datagram stream did not survive the failed reload: $(cat "$T/stream.out")"
grep -q "close relay=dns" "$LOG" && fail "a stream of relay dns was closed: $(grep 'close relay=dns' "$LOG")"

log "the same changes without the busy relay: applied"
config "$P2" 0666 61s
reload || fail "the reload: $(cat "$T/reload.out")"
echoes "$P2" || fail "relay move does not serve on $P2"
tcp_refused "$P1" || fail "the old port $P1 still listens"
[ "$(stat -c %a "$T/r.sock")" = 666 ] || fail "the socket's mode: $(stat -c %a "$T/r.sock")"
log "and back to $P1"
config "$P1" 0600 60s
reload || fail "the reload: $(cat "$T/reload.out")"
echoes "$P1" || fail "relay move does not serve on $P1"
tcp_refused "$P2" || fail "port $P2 still listens"
exec 7>&-
wait "$STREAM" 2>/dev/null || true
running "$AIR" || fail "airlock exited"
stop_clean "$AIR" air
log ok
