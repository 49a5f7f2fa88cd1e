#!/bin/bash
# t_log_peer_bytes: bytes a peer chose never end a log line or a row of
# `airlock ctl conns`. A unix socket client may bind any name, newlines and
# escapes included: clients of a stream relay and of a datagram relay whose
# names carry a newline and a forged line, an escape sequence, a carriage
# return and a space-separated "field". Proves: the text log (the default
# format) and the log sink's file (logs.capture_stderr forwards airlock's
# own lines) hold no forged line, the names are there with those bytes as
# \xNN, and `ctl conns` prints one row per connection, the name escaped the
# same way.
. "$(dirname "$0")/lib.sh"
need socat python3

read -r PE PU <<<"$(free_ports 2)"
start echo socat TCP-LISTEN:"$PE",bind=127.0.0.1,reuseaddr,fork EXEC:cat
wait_port "$PE"
cat >"$T/sink.yaml" <<YAML
log_sinks:
  - {name: enc, listen: "unix:$T/sink.sock", file: "$T/sink.out"}
YAML
cat >"$T/air.yaml" <<YAML
control: unix:$T/ctl.sock
logs: {forward: "unix:$T/sink.sock", capture_stderr: true}
relays:
  - {name: web, listen: "unix:$T/web.sock", target: "tcp:127.0.0.1:$PE"}
  - {name: dns, listen: "unix:$T/dns.sock", target: "udp:127.0.0.1:$PU"}
YAML
airlock_up sink run -c "$T/sink.yaml"
SINK=$LAST_PID
airlock_up air run -c "$T/air.yaml"
AIR=$LAST_PID

FORGED='2099-01-01T00:00:00.000Z error FORGED'
# client NAME SOCK ABSTRACT_NAME SEND: a client that binds ABSTRACT_NAME
# (python bytes escapes), connects to SOCK, sends SEND and holds the
# connection until unhold NAME
client() {
    held "$1" python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(b'\0' + b'$3')
s.connect('$2')
s.sendall(b'$4')
print('sent', flush=True)
sys.stdin.read()
"
    wait_log "$T/$1.out" '^sent$'
}

log "a stream relay's client named with a newline, an escape and a fake field"
client web "$T/web.sock" "x\n$FORGED\x1b[2J end=eof" 'ping\n'
conns() { "$AIRLOCK" ctl -s "unix:$T/ctl.sock" conns >"$T/conns" && grep -q '^web ' "$T/conns"; }
wait_for conns
[ "$(grep -c '^web ' "$T/conns")" = 1 ] || fail "one row for the one connection: $(cat "$T/conns")"
! grep -q '^2099' "$T/conns" || fail "a forged row in ctl conns: $(cat "$T/conns")"
grep -qF 'unix:@x\x0a2099-01-01T00:00:00.000Z\x20error\x20FORGED\x1b[2J\x20end=eof' "$T/conns" ||
    fail "the name, escaped: $(cat "$T/conns")"
unhold web

log "a datagram relay's client that sends a bad frame, named the same way"
client dns "$T/dns.sock" "y\n$FORGED\r" '\xff\xff\xff\xff\xff\xff\xff\xff'
unhold dns
wait_log "$T/air.log" 'close relay=dns ' 10
wait_log "$T/air.log" 'close relay=web ' 10
wait_log "$T/sink.out" 'close relay=dns ' 10
for f in "$T/air.log" "$T/sink.out"; do
    ! grep -a 'FORGED' "$f" | grep -av 'unix:@' || fail "$f: a forged line"
    grep -aqF 'unix:@x\x0a2099-01-01T00:00:00.000Z\x20error\x20FORGED\x1b[2J\x20end=eof' "$f" ||
        fail "$f: the stream client's name, escaped"
    grep -aqF 'unix:@y\x0a2099-01-01T00:00:00.000Z\x20error\x20FORGED\x0d' "$f" ||
        fail "$f: the datagram client's name, escaped"
done
stop_clean "$AIR" air
stop_clean "$SINK" sink
