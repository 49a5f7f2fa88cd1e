#!/bin/bash
# t_ctl_slow_reader: a control client that asks for an answer larger than
# the socket takes at once (`config` of a router with 2000 routes of long names) and never
# reads it is closed after the control timeout, with a log line saying how
# much of the answer it took: it holds neither the answer nor the
# connection. airlock keeps answering others meanwhile and after, and a
# client that reads gets the whole answer.
. "$(dirname "$0")/lib.sh"
need python3
CTL=$T/ctl.sock
read -r M R <<<"$(free_ports 2)"
{
    echo "metrics: tcp:127.0.0.1:$M"
    echo "control: unix:$CTL"
    echo "routers:"
    echo "  - name: big"
    echo "    listen: tcp:127.0.0.1:$R"
    echo "    routes:"
    long=$(printf 'a%.0s' {1..60})
    for ((i = 1; i <= 2000; i++)); do
        echo "      - {name: user$i.$long.$long.$long.example, target: \"tcp:127.0.0.1:9\"}"
    done
} >"$T/airlock.yaml"
airlock_up air run -c "$T/airlock.yaml"
AIR=$LAST_PID
ctl() { "$AIRLOCK" ctl -s "unix:$CTL" "$@"; }

ctl config >"$T/full.yaml" || fail "ctl config failed"
full=$(wc -c <"$T/full.yaml")
[ "$full" -gt 400000 ] || fail "the answer ($full bytes) should not fit the socket buffers"

# the slow reader: sends the command, waits until airlock gave up on it,
# then reads what was sent before the close
python3 - "$CTL" "$T/air.log" >"$T/slow.out" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(sys.argv[1])
s.sendall(b"config\n")
deadline = time.time() + 60
while b"answer not taken" not in open(sys.argv[2], "rb").read():
    if time.time() > deadline:
        print("never closed")
        sys.exit(1)
    time.sleep(0.1)
got = 0
while True:
    b = s.recv(65536)
    if not b:
        break
    got += len(b)
print(got)
PY
slow=$!
ctl stats >/dev/null || fail "airlock did not answer another client while one is slow"
wait "$slow" || fail "the slow reader was never closed: $(cat "$T/slow.out")"
got=$(cat "$T/slow.out")
[ "$got" -lt "$full" ] || fail "the slow reader got the whole answer ($got bytes): not closed"
wait_log "$T/air.log" "ctl answer not taken in [0-9]+ ms: closed \([0-9]+ of [0-9]+ bytes sent\)"
ctl config | cmp -s - "$T/full.yaml" || fail "a reading client no longer gets the whole answer"
stop_clean "$AIR" air
echo PASS
