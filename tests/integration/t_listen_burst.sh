#!/bin/bash
# t_listen_burst: a burst of connections to airlock's listeners is queued by
# the kernel whole, however slow airlock is to accept them: the control and
# metrics endpoints on tcp and a relay each complete 200 connections while
# airlock is stopped (SIGSTOP). Before, the control endpoint listened with a
# backlog of 16 and metrics with 64: the SYNs after those were dropped, and
# each of their clients waited a second for its retransmission. airlock
# then answers the control and metrics clients that come after the burst.
. "$(dirname "$0")/lib.sh"
need python3 curl

read -r C M R <<<"$(free_ports 3)"
cat >"$T/airlock.yaml" <<YAML
control: tcp:127.0.0.1:$C
metrics: tcp:127.0.0.1:$M
relays:
  - {name: r, listen: "tcp:127.0.0.1:$R", target: "tcp:127.0.0.1:9"}
YAML
airlock_up air run -c "$T/airlock.yaml"
AIR=$LAST_PID

n=200
max=$(cat /proc/sys/net/core/somaxconn)
[ "$max" -ge "$n" ] || skip "net.core.somaxconn is $max, below the burst of $n"

kill -STOP "$AIR"
# burst PORT: opens n connections at once, prints how many completed
# within half a second (the kernel completes a queued one at once; a
# dropped SYN is sent again only after a second)
burst() {
    python3 - "$1" "$n" <<'PY'
import selectors, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
sel = selectors.DefaultSelector()
socks = []
for _ in range(n):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", port))
    sel.register(s, selectors.EVENT_WRITE)
    socks.append(s)
done = 0
deadline = time.monotonic() + 0.5
while done < n and time.monotonic() < deadline:
    for key, _ in sel.select(max(0, deadline - time.monotonic())):
        sel.unregister(key.fileobj)
        if key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
            done += 1
print(done)
PY
}
for port in "$C:control" "$M:metrics" "$R:relay"; do
    got=$(burst "${port%%:*}")
    [ "$got" -eq "$n" ] ||
        { kill -CONT "$AIR"; fail "${port#*:}: $got of $n connections completed while airlock was stopped"; }
done
kill -CONT "$AIR"

"$AIRLOCK" ctl -s "tcp:127.0.0.1:$C" stats >/dev/null || fail "no control answer after the burst"
curl -sf "http://127.0.0.1:$M/metrics" | has '^airlock_' || fail "no metrics after the burst"
stop_clean "$AIR" air
echo PASS
