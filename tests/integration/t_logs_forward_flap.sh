#!/bin/bash
# t_logs_forward_flap: a log forward target that accepts and closes at once
# (a sink that flaps, or a port something else holds) is dialled ever less
# often, not every 100 ms: a stream that broke before it stayed up a
# second does not start the backoff again. Over 4 s it is dialled at most
# 10 times (the backoff, 100 ms doubling to 2 s, allows 6; before, about 40),
# and the forwarder says so once: one "connected" line and one warning for
# the whole streak, not one of each per dial.
. "$(dirname "$0")/lib.sh"

need python3
SINK=$(free_port)
start flapper python3 -c '
import socket, sys
ls = socket.create_server(("127.0.0.1", int(sys.argv[1])))
n = 0
while True:
    c, _ = ls.accept()
    c.close()
    n += 1
    open(sys.argv[2], "w").write("%d\n" % n)' "$SINK" "$T/accepts"
wait_for tcp_up "$SINK"
rm -f "$T/accepts"
cat >"$T/airlock.yaml" <<EOC
logs:
  forward: tcp:127.0.0.1:$SINK
  listen: unix:$T/log.sock
EOC
airlock_up al run -c "$T/airlock.yaml"
wait_for test -s "$T/accepts"
sleep 4 # the count of a time span: how often it is dialled in 4 s
n=$(cat "$T/accepts")
log "dialled $n times in about 4 s"
[ "$n" -le 10 ] || fail "dialled $n times in 4 s: the backoff starts again at each connect"
connected=$(grep -c "log forward to tcp:127.0.0.1:$SINK connected" "$T/al.log" || true)
warned=$(grep -c "warn log forward to tcp:127.0.0.1:$SINK" "$T/al.log" || true)
[ "$connected" = 1 ] && [ "$warned" = 1 ] ||
    fail "$connected connected lines and $warned warnings for one streak: $(cat "$T/al.log")"
log "ok"
