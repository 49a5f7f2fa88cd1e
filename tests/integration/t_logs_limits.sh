#!/bin/bash
# t_logs_limits: silent or hostile streams cannot shut the real log
# forwarder (or an app) out, and log listeners take allow, max_streams and
# idle_timeout.
#   - a peer (127.0.0.3) holding 300 silent streams on a log sink (default
#     max_streams 256) only ever displaces its own: the enclave airlock's
#     forwarder connects, stays connected through 300 more, and its lines
#     land in the file; every eviction is counted;
#   - the forwarder's own address keeps 200 streams warm with bytes and no
#     line while it opens more: a stream counts as active when a whole line
#     comes, so those displace each other and the forwarder keeps its
#     stream;
#   - allow: [127.0.0.2] refuses a stream from 127.0.0.1 (counted) and
#     takes one from 127.0.0.2;
#   - idle_timeout: 3s closes silent streams (counted), not one that writes
#     a line every 200 ms;
#   - logs.listen with max_streams 4: an unprivileged user holding 10
#     connections does not keep a root app out; on a tcp logs.listen, allow
#     and idle_timeout work the same.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to create users"
need curl socat setpriv useradd
U=tll$$
useradd --no-create-home --shell /usr/sbin/nologin --user-group "$U" ||
    skip "cannot create users here"
drop_user() {
    cleanup
    userdel "$U" 2>/dev/null || true
    groupdel "$U" 2>/dev/null || true # when userdel left the user's group
}
trap drop_user EXIT
chmod 755 "$T"

read -r SP AP IP HM EM LP EM2 <<<"$(free_ports 7)"
# m PORT KEY: one value from the metrics on PORT (KEY with its labels)
m() { curl -sf -m 5 "http://127.0.0.1:$1/metrics" | awk -v k="$2" '$1 == k { print $2 }'; }
m_is() { [ "$(m "$1" "$2")" = "$3" ]; }
cat >"$T/host.yaml" <<EOF
metrics: tcp:127.0.0.1:$HM
log_sinks:
  - name: main
    listen: tcp:127.0.0.1:$SP
    file: $T/sink-main.log
  - name: allowed
    listen: tcp:127.0.0.1:$AP
    allow: [127.0.0.2]
    file: $T/sink-allowed.log
  - name: idle
    listen: tcp:127.0.0.1:$IP
    idle_timeout: 3s
    file: $T/sink-idle.log
EOF
cat >"$T/enclave.yaml" <<EOF
metrics: tcp:127.0.0.1:$EM
logs:
  forward: tcp:127.0.0.1:$SP
  listen: {endpoint: "unix:$T/log.sock", mode: "0666"}
  max_streams: 4
EOF
cat >"$T/enclave2.yaml" <<EOF
metrics: tcp:127.0.0.1:$EM2
logs:
  forward: tcp:127.0.0.1:$SP
  listen: tcp:127.0.0.1:$LP
  allow: [127.0.0.2]
  idle_timeout: 2s
EOF
for f in host enclave enclave2; do
    "$AIRLOCK" check -c "$T/$f.yaml" >/dev/null || fail "$f: $("$AIRLOCK" check -c "$T/$f.yaml" 2>&1)"
done
airlock_up host run -c "$T/host.yaml"
HOST=$LAST_PID

log "300 silent streams from 127.0.0.3 on a sink of 256: they displace their own"
start hold1 "$NETPEER" hold 300 --from 127.0.0.3 "tcp:127.0.0.1:$SP"
wait_for m_is "$HM" 'airlock_log_sink_streams_evicted_total{sink="main"}' 44
m_is "$HM" 'airlock_log_sink_streams_open{sink="main"}' 256 || fail "open: $(m "$HM" 'airlock_log_sink_streams_open{sink="main"}')"

log "the forwarder connects anyway, and its lines arrive"
airlock_up enclave run -c "$T/enclave.yaml"
ENC=$LAST_PID
wait_for m_is "$EM" airlock_log_forward_connected 1
printf 'first line\n' | socat -u - UNIX-CONNECT:"$T/log.sock"
wait_for grep -q '^app\[[0-9]*\]#[0-9]*: first line$' "$T/sink-main.log"
m_is "$HM" 'airlock_log_sink_streams_evicted_total{sink="main"}' 45 ||
    fail "evicted: $(m "$HM" 'airlock_log_sink_streams_evicted_total{sink="main"}')"

log "300 more from 127.0.0.3: the forwarder keeps its stream"
start hold2 "$NETPEER" hold 300 --from 127.0.0.3 "tcp:127.0.0.1:$SP"
wait_for m_is "$HM" 'airlock_log_sink_streams_evicted_total{sink="main"}' 345
printf 'second line\n' | socat -u - UNIX-CONNECT:"$T/log.sock"
wait_for grep -q ': second line$' "$T/sink-main.log"
m_is "$EM" airlock_log_forward_errors_total 0 || fail "the forward stream broke: $(m "$EM" airlock_log_forward_errors_total)"
m_is "$EM" airlock_log_forward_connected 1 || fail "the forwarder is not connected"
m_is "$HM" 'airlock_log_sink_streams_open{sink="main"}' 256 || fail "open after the second wave"
grep -q 'log_sink=main: 256 streams (max_streams): closed the least recently active one of 127.0.0.3 for one of 127.0.0.3' "$T/host.log" ||
    fail "no eviction line"

log "streams of the forwarder's address kept warm without a line: the forwarder keeps its stream"
timeout 60 python3 - "$SP" <<'EOP' || fail "the warm streams could not be held"
import socket, sys, time
port = int(sys.argv[1])
def warm():
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"x")
    return s
held = [warm() for _ in range(200)]
end = time.time() + 3
while time.time() < end:
    for s in held:
        try:
            s.sendall(b"x")
        except OSError:
            pass
    held += [warm() for _ in range(5)]
    time.sleep(0.1)
EOP
printf 'third line\n' | socat -u - UNIX-CONNECT:"$T/log.sock"
wait_for grep -q ': third line$' "$T/sink-main.log"
m_is "$EM" airlock_log_forward_errors_total 0 ||
    fail "the forward stream was evicted: $(m "$EM" airlock_log_forward_errors_total) errors"

log "allow: a stream from 127.0.0.1 is refused, one from 127.0.0.2 taken"
"$NETPEER" hold 1 "tcp:127.0.0.1:$AP" >"$T/refused.out" # exits once closed
[ "$(tail -1 "$T/refused.out")" = "open 0" ] || fail "refused stream: $(cat "$T/refused.out")"
wait_for m_is "$HM" 'airlock_log_sink_streams_refused_total{sink="allowed"}' 1
grep -q 'log_sink=allowed: refused a stream of 127.0.0.1: not allowed' "$T/host.log" || fail "no refusal line"
printf 'from two\n' | socat -u - TCP:127.0.0.1:"$AP",bind=127.0.0.2
# from a port any process may bind: marked (t_logs_unverified.sh)
wait_for grep -qxE 'unverified\[127\.0\.0\.2:[0-9]+\]: from two' "$T/sink-allowed.log"
m_is "$HM" 'airlock_log_sink_streams_refused_total{sink="allowed"}' 1 || fail "127.0.0.2 refused"

log "idle_timeout 3s: silent streams closed, one writing every 200 ms kept"
start idle "$NETPEER" hold 3 "tcp:127.0.0.1:$IP"
(for i in $(seq 1 30); do echo "tick $i"; sleep 0.2; done) | socat -u - TCP:127.0.0.1:"$IP" &
TICKS=$!
wait_log "$T/idle.log" '^open 0$' 20
wait "$TICKS" || fail "the writing stream was cut"
wait_for m_is "$HM" 'airlock_log_sink_streams_idle_closed_total{sink="idle"}' 3
[ "$(grep -cE '^unverified\[127\.0\.0\.1:[0-9]+\]: tick [0-9]*$' "$T/sink-idle.log")" = 30 ] ||
    fail "ticks: $(grep -c ': tick' "$T/sink-idle.log") of 30"

log "logs.listen, max_streams 4: $U holds 10, a root app still gets in"
start hold3 setpriv --reuid "$U" --regid "$U" --clear-groups -- "$NETPEER" hold 10 "unix:$T/log.sock"
wait_for m_is "$EM" airlock_log_sources_evicted_total 6
printf 'root app\n' | socat -u - UNIX-CONNECT:"$T/log.sock"
wait_for grep -q ': root app$' "$T/sink-main.log"
m_is "$EM" airlock_log_sources_evicted_total 7 || fail "evicted: $(m "$EM" airlock_log_sources_evicted_total)"
grep -q "logs listen: 4 streams (max_streams): closed the least recently active one of uid $(id -u "$U") for one of uid $(id -u "$U")" "$T/enclave.log" ||
    fail "no eviction line on the enclave side"

log "a tcp logs.listen: allow and idle_timeout"
airlock_up enclave2 run -c "$T/enclave2.yaml"
ENC2=$LAST_PID
"$NETPEER" hold 1 "tcp:127.0.0.1:$LP" >"$T/refused2.out"
wait_for m_is "$EM2" airlock_log_sources_refused_total 1
start idle2 "$NETPEER" hold 2 --from 127.0.0.2 "tcp:127.0.0.1:$LP"
wait_log "$T/idle2.log" '^open 0$' 20
wait_for m_is "$EM2" airlock_log_sources_idle_closed_total 2
stop_clean "$ENC2" enclave2

running "$HOST" && running "$ENC" || fail "an airlock died"
stop_clean "$ENC" enclave
stop_clean "$HOST" host
log ok
