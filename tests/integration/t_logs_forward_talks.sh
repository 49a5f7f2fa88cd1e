#!/bin/bash
# t_logs_forward_talks: a log forward target that sends bytes is not a log
# sink (a sink never talks): the forwarder drops the stream at its first
# byte, logs it, and dials again with backoff, while its loop (the one that
# accepts every listener) goes on: a peer that sends without pause held it
# as long as it sent. Metrics stay answered within 2 s, and a line written
# once the talker is gone (no stream up: a line written to a peer that
# then goes is lost, as documented) stays buffered and reaches a real sink
# put in its place.
. "$(dirname "$0")/lib.sh"

need curl python3
read -r M SINK <<<"$(free_ports 2)"
start talker python3 -c '
import socket, sys, time
ls = socket.create_server(("127.0.0.1", int(sys.argv[1])))
junk = b"x" * 65536
while True:
    c, _ = ls.accept()
    c.setblocking(False)
    end = time.time() + 30
    while time.time() < end:
        try:
            c.send(junk)
        except BlockingIOError:
            time.sleep(0.001)
        except OSError:
            break
    c.close()' "$SINK"
TALKER=$LAST_PID
wait_for tcp_up "$SINK"
cat >"$T/airlock.yaml" <<EOC
metrics: tcp:127.0.0.1:$M
logs:
  forward: tcp:127.0.0.1:$SINK
  listen: unix:$T/log.sock
EOC
airlock_up al run -c "$T/airlock.yaml"
wait_log "$T/al.log" "log forward to tcp:127.0.0.1:$SINK talked back"
for i in $(seq 10); do
    s=$(date +%s%N)
    curl -sf -m 10 -o /dev/null "http://127.0.0.1:$M/metrics" || fail "no metrics beside the talker"
    ms=$((($(date +%s%N) - s) / 1000000))
    [ "$ms" -lt 2000 ] || fail "a scrape took $ms ms: the forwarder's loop is held"
    sleep 0.2
done

log "a real sink in the talker's place gets a line buffered meanwhile"
kill "$TALKER"
wait_for eval '! tcp_up "$SINK"'
down() { curl -sf "http://127.0.0.1:$M/metrics" | has -x "airlock_log_forward_connected 0"; }
wait_for down # nothing listens: no stream can come up again
python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"kept for the sink\n")' \
    "$T/log.sock"
cat >"$T/sink.yaml" <<EOC
log_sinks:
  - name: s
    listen: tcp:127.0.0.1:$SINK
    file: $T/sink.out
EOC
airlock_up sink run -c "$T/sink.yaml"
wait_for grep -q "kept for the sink" "$T/sink.out"
log "ok"
