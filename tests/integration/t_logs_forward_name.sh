#!/bin/bash
# t_logs_forward_name: logs.forward takes a host name (tcp:logs.test:PORT),
# resolved through the relays' resolver (cached for the DNS TTL) at each
# connect attempt, so the forwarder follows a log host that moves; a name
# that does not resolve is logged and retried with backoff while lines are
# buffered, and they arrive once the name resolves again.
#
# Runs in private network, mount and pid namespaces: dnsmasq answers on
# 127.0.0.1:53 of the new loopback (logs.test from an --addn-hosts file,
# TTL 1 s, nothing forwarded), /etc/resolv.conf is bind-mounted to point at
# it; two sinks listen on 127.0.0.2 and 127.0.0.3. Everything dies with the
# namespace.
. "$(dirname "$0")/lib.sh"

need dnsmasq socat curl
host_namespaces

resolv_conf 2
grep -qi 'logs\.test' /etc/hosts && skip "logs.test is in /etc/hosts"

echo "127.0.0.2 logs.test" >"$T/hosts"
start dnsmasq dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --addn-hosts="$T/hosts" --local-ttl=1 --listen-address=127.0.0.1 --bind-interfaces \
    --port=53 --user=root --group=root --pid-file="$T/dnsmasq.pid" --log-facility=-
DNSMASQ=$LAST_PID
wait_for bash -c "ss -Hluln 'sport = :53' | grep -q ."
dns_hosts() { # LINE: what dnsmasq answers for logs.test from now on
    echo "$1" >"$T/hosts"
    kill -HUP "$DNSMASQ"
}

for s in a b; do
    ip=127.0.0.2
    [ "$s" = b ] && ip=127.0.0.3
    cat >"$T/sink_$s.yaml" <<EOF
drain_timeout: 2s
log_sinks:
  - name: $s
    listen: tcp:$ip:9200
    file: $T/$s.out
EOF
done
cat >"$T/enclave.yaml" <<EOF
metrics: tcp:127.0.0.1:9100
drain_timeout: 1s # at the end lines wait for a name that never resolves
logs:
  forward: tcp:logs.test:9200
  capture_stderr: true
  listen: unix:$T/log.sock
EOF
out=$("$AIRLOCK" check -c "$T/enclave.yaml" 2>&1) || fail "a host name in logs.forward refused: $out"
[ "$out" = "$T/enclave.yaml: ok (0 relays, logs forwarded)" ] || fail "check said: $out"

app_line() { # TEXT: one line an app writes to the log socket
    echo "$1" | socat -u - UNIX-CONNECT:"$T/log.sock"
}
emetric() { curl -sf "http://127.0.0.1:9100/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
connected() { [ "$(emetric airlock_log_forward_connected)" = 1 ]; }

log "logs.test -> 127.0.0.2: the lines go to sink a"
airlock_up sink_a run -c "$T/sink_a.yaml"
SINK_A=$LAST_PID
airlock_up enclave run -c "$T/enclave.yaml"
ENC=$LAST_PID
wait_for connected
app_line "first line by name"
wait_log "$T/a.out" '^app\[[0-9]+\]#1: first line by name$'
wait_log "$T/a.out" '^airlock: .*log forward to tcp:logs.test:9200 connected'

log "logs.test moves to 127.0.0.3 and sink a goes away: the lines follow to sink b"
airlock_up sink_b run -c "$T/sink_b.yaml"
SINK_B=$LAST_PID
dns_hosts "127.0.0.3 logs.test"
stop_clean "$SINK_A" sink_a
app_line "second line after the move"
wait_log "$T/b.out" '^app\[[0-9]+\]#2: second line after the move$' 20
! grep -q 'second line' "$T/a.out" || fail "sink a got a line after it stopped"

log "logs.test stops resolving: retried, lines buffered until it resolves again"
dns_hosts "# nothing"
stop_clean "$SINK_B" sink_b
wait_log "$T/enclave.log" 'resolve host=logs.test failed' 20
app_line "third line while the name is gone"
airlock_up sink_a2 run -c "$T/sink_a.yaml"
SINK_A=$LAST_PID
dns_hosts "127.0.0.2 logs.test"
wait_log "$T/a.out" '^app\[[0-9]+\]#3: third line while the name is gone$' 20
errors=$(emetric airlock_log_forward_errors_total)
[ "${errors:-0}" -ge 3 ] || fail "airlock_log_forward_errors_total = '$errors'"

log "reloaded to a name that never resolves: the first failure is logged, once"
sed -i 's/tcp:logs.test:9200/tcp:nosuch.test:9200/' "$T/enclave.yaml"
kill -HUP "$ENC"
wait_log "$T/enclave.log" 'log forward to tcp:nosuch.test:9200 name did not resolve'
lookups() { [ "$(grep -c 'resolve host=nosuch.test failed' "$T/enclave.log")" -ge 2 ]; }
wait_for lookups # the negative answer expired and was asked again
[ "$(grep -c 'nosuch.test:9200 name did not resolve' "$T/enclave.log")" = 1 ] ||
    fail "failures in a row logged more than once: $(grep 'log forward' "$T/enclave.log")"
running "$ENC" || fail "the enclave airlock died"

stop_clean "$ENC" enclave
stop_clean "$SINK_A" sink_a2
! grep -Eq "ERROR|runtime error" "$T"/*.log || fail "sanitizer report in a log"
log "ok"
