#!/bin/bash
# t_ctl_conns: `airlock ctl conns` lists the open relayed connections of
# every worker thread (threads: 2): relay, router or HTTP proxy, client (the
# PROXY v2 source when the relay accepts one), target (a router's: the route
# it chose; a proxy's: its backend), age and the bytes each way (a proxy's
# session does not count them: "-"), then a total
# line; closed connections leave the list; with more than 1000 open the
# table stops at 1000 lines and the total line still counts them all.
. "$(dirname "$0")/lib.sh"
need socat curl python3
read -r M PE PA PP PB PS PR PH PHB <<<"$(free_ports 9)"
CTL=$T/ctl.sock MPORT=$M
ctl() { "$AIRLOCK" ctl -s "unix:$CTL" "$@"; }

start echo socat "TCP-LISTEN:$PE,fork,reuseaddr,bind=127.0.0.1" EXEC:cat
wait_for tcp_up "$PE"
start http_echo "$(dirname "$AIRLOCK")/tests/http_echo" "$PHB" "$T/requests.log"
wait_for tcp_up "$PHB"
cat >"$T/airlock.yaml" <<YAML
threads: 2
metrics: tcp:127.0.0.1:$M
control: unix:$CTL
relays:
  - name: a
    listen: tcp:127.0.0.1:$PA
    target: tcp:127.0.0.1:$PE
  - name: p
    listen: tcp:127.0.0.1:$PP
    target: tcp:127.0.0.1:$PE
    accept_proxy: v2
  - name: b
    listen: tcp:127.0.0.1:$PB
    target: tcp:127.0.0.1:$PS
routers:
  - name: r
    listen: tcp:127.0.0.1:$PR
    routes:
      - {name: a.example, target: "tcp:127.0.0.1:$PE"}
proxies:
  - name: api
    listen: tcp:127.0.0.1:$PH
    backend: tcp:127.0.0.1:$PHB
YAML
airlock_up air run -c "$T/airlock.yaml"
AIR=$LAST_PID

ctl conns >"$T/none" || fail "conns with none open"
has -x 'total 0 connections' <"$T/none" || fail "no connections: $(cat "$T/none")"

log "three clients of a (on both threads), one of p behind a PROXY v2 header, one of r"
for i in 1 2 3; do
    held "c$i" socat - "TCP:127.0.0.1:$PA"
    held_say "c$i" "hello"
    wait_log "$T/c$i.out" '^hello$'
done
hold px "$PP" x.example --proxy 198.51.100.7
wait_for metric_is airlock_connections_open 'relay="p"' 1
hold rx "$PR" a.example
wait_for metric_is airlock_connections_open 'relay="r"' 1
held hx socat - "TCP:127.0.0.1:$PH" # a kept-alive session after its answer
held_say hx "$(printf 'GET /x HTTP/1.1\r\nHost: x\r\n\r')"
wait_log "$T/hx.out" '^HTTP/1.1 200'
ctl conns | tee "$T/conns"
has -E '^RELAY +CLIENT +TARGET +AGE +BYTES_IN +BYTES_OUT$' <"$T/conns" || fail "header"
[ "$(grep -cE "^a +127\.0\.0\.1:[0-9]+ +tcp:127\.0\.0\.1:$PE +[0-9]+s +6 +6$" "$T/conns")" = 3 ] ||
    fail "a's three connections (6 bytes each way)"
has -E "^p +198\.51\.100\.7:40000 +tcp:127\.0\.0\.1:$PE +[0-9]+s +[0-9]+ +[0-9]+$" <"$T/conns" ||
    fail "p's client is the PROXY header's source"
has -E "^r +127\.0\.0\.1:[0-9]+ +tcp:127\.0\.0\.1:$PE +[0-9]+s +[0-9]+ +[0-9]+$" <"$T/conns" ||
    fail "r's connection and the route it chose"
has -E "^api +127\.0\.0\.1 +tcp:127\.0\.0\.1:$PHB +[0-9]+s +- +-$" <"$T/conns" ||
    fail "the proxy's session"
tail -1 "$T/conns" | has -x 'total 6 connections' || fail "total line"

log "a closed connection leaves the list"
unhold c2
wait_for metric_is airlock_connections_open 'relay="a"' 2
ctl conns | tail -1 | has -x 'total 5 connections' || fail "after a close"

log "1005 connections: 1000 lines and the total"
cat >"$T/many.py" <<'PY'
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
srv = socket.socket()  # the target: accepts nothing, the backlog completes handshakes
srv.bind(("127.0.0.1", int(sys.argv[2])))
srv.listen(2048)
conns = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(1005)]
print("connected", flush=True)
sys.stdin.read()
PY
held many python3 "$T/many.py" "$PB" "$PS"
wait_log "$T/many.out" '^connected$' 30
wait_until 30 metric_is airlock_connections_open 'relay="b"' 1005
ctl conns >"$T/big" || fail "conns of 1010"
[ "$(wc -l <"$T/big")" = 1002 ] || fail "expected a header, 1000 lines and a total: $(wc -l <"$T/big")"
tail -1 "$T/big" | has -x 'total 1010 connections, 1000 shown' || fail "big total: $(tail -1 "$T/big")"
unhold many
wait_until 30 metric_is airlock_connections_open 'relay="b"' 0
ctl conns | tail -1 | has -x 'total 5 connections' || fail "after the crowd left"
for i in 1 3; do unhold "c$i"; done
unhold px
unhold rx
unhold hx
running "$AIR" || fail "airlock died"
stop_clean "$AIR" air
