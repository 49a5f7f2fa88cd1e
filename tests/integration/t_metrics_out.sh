#!/bin/bash
# t_metrics_out: an enclave's metrics reach Prometheus on the host. The
# "enclave" is a network namespace with only loopback; its airlock serves
# metrics on hvsock:$T/vm.sock:9100 (the device face of vsock:any:9100) and
# relays one app; a host relay tcp:127.0.0.1:P -> hvsock:$T/vm.sock:9100 (in
# production: -> vsock:16:9100) exposes them on a host TCP port, where curl
# scrapes the enclave's own counters, and they follow traffic inside the
# enclave. The same with unix: as the stand-in. A wrong port in the CONNECT
# line, or none, is refused without an answer.
. "$(dirname "$0")/lib.sh"
need curl socat
loopback_netns airlock-mo

read -r HP HU APP <<<"$(free_ports 3)"
cat >"$T/enclave.yaml" <<EOF
metrics: hvsock:$T/vm.sock:9100
drain_timeout: 2s
relays:
  - name: app
    listen: unix:$T/app.sock
    target: tcp:127.0.0.1:$APP
EOF
cat >"$T/enclave2.yaml" <<EOF
metrics: unix:$T/m2.sock
drain_timeout: 2s
relays:
  - name: other
    listen: unix:$T/other.sock
    target: tcp:127.0.0.1:$APP
EOF
cat >"$T/host.yaml" <<EOF
drain_timeout: 2s
relays:
  - name: enclave-metrics
    listen: tcp:127.0.0.1:$HP
    target: hvsock:$T/vm.sock:9100
  - name: enclave2-metrics
    listen: tcp:127.0.0.1:$HU
    target: unix:$T/m2.sock
EOF
# ns_airlock_up NAME ARGS...: airlock ARGS... inside $NS, up and serving
ns_airlock_up() {
    local name=$1
    shift
    start "$name" ip netns exec "$NS" "$AIRLOCK" "$@"
    wait_log "$T/$name.log" 'airlock running'
}
# the app inside the enclave: answers one line per connection
start app ip netns exec "$NS" socat TCP-LISTEN:"$APP",bind=127.0.0.1,reuseaddr,fork SYSTEM:"echo hello"
ns_airlock_up enclave run -c "$T/enclave.yaml"
ENC=$LAST_PID
ns_airlock_up enclave2 run -c "$T/enclave2.yaml"
ENC2=$LAST_PID
airlock_up host run -c "$T/host.yaml"
HOST=$LAST_PID
[ "$(ip netns identify "$ENC")" = "$NS" ] || fail "enclave airlock not in $NS"
! ip netns exec "$NS" curl -s -m 2 "http://127.0.0.1:$HP/metrics" >/dev/null ||
    fail "the enclave reaches the host's loopback"

log "scrape the enclave through the host port"
scrape() { curl -sf -m 5 "http://127.0.0.1:$1/metrics"; }
scrape "$HP" >"$T/m0" || fail "no metrics on the host port"
grep -q '^# TYPE airlock_connections_total counter$' "$T/m0" || fail "not Prometheus text: $(head -3 "$T/m0")"
grep -qx 'airlock_connections_total{relay="app"} 0' "$T/m0" || fail "enclave counters missing: $(grep total "$T/m0")"
! grep -q 'relay="enclave-metrics"' "$T/m0" || fail "got the host relay's own metrics"

log "enclave traffic shows in the scraped counters"
for i in 1 2 3; do
    [ "$(timeout 5 socat -t 2 - UNIX-CONNECT:"$T/app.sock" </dev/null)" = hello ] || fail "app through the enclave relay"
done
v=
for _ in $(seq 1 50); do
    v=$(scrape "$HP" | awk '$1 == "airlock_connections_closed_total{relay=\"app\",end=\"eof\"}" { print $2 }')
    [ "$v" = 3 ] && break
    sleep 0.1
done
[ "$v" = 3 ] || fail "closed eof = '$v' through the host port, expected 3"
scrape "$HP" >"$T/m1" && grep -qx 'airlock_bytes_out_total{relay="app"} 18' "$T/m1" || fail "bytes_out not 18"

log "twenty scrapes in a row, each a fresh relayed connection"
for i in $(seq 1 20); do scrape "$HP" >/dev/null || fail "scrape $i failed"; done
[ "$(metric airlock_connections_total 'relay="app"' "$HP")" = 3 ] || fail "scrapes changed app counters"
[ "$(metric airlock_connections_closed_total 'relay="enclave-metrics",end="eof"' "$HP")" = "" ] ||
    fail "host relay metrics leaked into the enclave's"

log "unix: as the stand-in works the same"
scrape "$HU" >"$T/m2" && grep -qx 'airlock_connections_total{relay="other"} 0' "$T/m2" || fail "unix stand-in scrape"

log "a CONNECT line for another port, or none, is refused unanswered"
out=$(printf 'CONNECT 9101\nGET /metrics HTTP/1.0\r\n\r\n' | timeout 8 socat -t 7 - UNIX-CONNECT:"$T/vm.sock" || true)
[ -z "$out" ] || fail "wrong port answered: $(echo "$out" | head -2)"
out=$(printf 'GET /metrics HTTP/1.0\r\n\r\n' | timeout 8 socat -t 7 - UNIX-CONNECT:"$T/vm.sock" || true)
[ -z "$out" ] || fail "no CONNECT line, still answered: $(echo "$out" | head -2)"
out=$(printf 'CONNECT 9100\nGET /metrics HTTP/1.0\r\n\r\n' | timeout 8 socat -t 7 - UNIX-CONNECT:"$T/vm.sock")
[ "$(echo "$out" | head -1)" = "OK 9100" ] || fail "device answer: $(echo "$out" | head -1)"
echo "$out" | sed -n 2p | has '^HTTP/1.1 200' || fail "no HTTP answer after OK"
scrape "$HP" >/dev/null || fail "metrics broken after bad clients"

stop_clean "$HOST" host
stop_clean "$ENC" enclave
stop_clean "$ENC2" enclave2
log ok
