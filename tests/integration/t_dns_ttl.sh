#!/bin/bash
# t_dns_ttl: a target given by host NAME is resolved through DNS, cached for
# the answer's TTL and re-resolved when it expires, so a moved service is
# followed; an unresolvable name closes the client (end=connect_failed) and
# the relay keeps serving.
#
# Runs in private network, mount and pid namespaces: dnsmasq answers on
# 127.0.0.1:53 of the new loopback (svc.test from an --addn-hosts file, TTL
# 2 s, nothing forwarded), /etc/resolv.conf is bind-mounted to point at it,
# backends listen on 127.0.0.2 and 127.0.0.3. Everything dies with the
# namespace.
. "$(dirname "$0")/lib.sh"

need dnsmasq socat
host_namespaces

resolv_conf 2
grep -qi 'svc\.test\|nosuch\.test' /etc/hosts && skip "svc.test is in /etc/hosts"

echo "127.0.0.2 svc.test" >"$T/hosts"
start dnsmasq dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --addn-hosts="$T/hosts" --local-ttl=2 --listen-address=127.0.0.1 --bind-interfaces \
    --port=53 --user=root --group=root --pid-file="$T/dnsmasq.pid" --log-queries \
    --log-facility=-
DNSMASQ=$LAST_PID
wait_for bash -c "ss -Hluln 'sport = :53' | grep -q ."

say_server backend1 7000 backend1 127.0.0.2
say_server backend2 7000 backend2 127.0.0.3
wait_for bash -c "ss -Htln 'sport = :7000' | grep -c . | grep -qx 2"

cat >"$T/airlock.yaml" <<EOF
log_level: debug
relays:
  - name: svc
    listen: tcp:127.0.0.1:6000
    target: tcp:svc.test:7000
  - name: bad
    listen: tcp:127.0.0.1:6001
    target: tcp:nosuch.test:7000
EOF
start airlock "$AIRLOCK" run -c "$T/airlock.yaml"
AL=$LAST_PID
LOG=$T/airlock.log
wait_for tcp_up 6000

ask() { timeout 5 socat -T 5 - TCP:127.0.0.1:"$1" </dev/null 2>/dev/null || true; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

log "svc.test -> 127.0.0.2: backend 1"
got=$(ask 6000)
t_first=$(now_ms)
[ "$got" = backend1 ] || fail "expected backend1, got '$got'"
grep -q "resolve host=svc.test addrs=1 ttl=[12]s" "$LOG" || fail "no resolve line with the DNS TTL: $(grep resolve "$LOG")"

log "svc.test moves to 127.0.0.3"
echo "127.0.0.3 svc.test" >"$T/hosts"
kill -HUP "$DNSMASQ"
t_moved=$(now_ms)
got=$(ask 6000)
if [ $(($(now_ms) - t_first)) -lt 900 ]; then
    # well inside the 2 s TTL of the first answer: still the cached address
    [ "$got" = backend1 ] || fail "the address was not cached for the TTL (got '$got')"
else
    log "machine slow: cache check skipped"
fi

log "after the TTL, new connections reach backend 2"
for i in $(seq 1 100); do
    got=$(ask 6000)
    [ "$got" = backend2 ] && break
    [ "$got" = backend1 ] || fail "expected backend1 or backend2, got '$got'"
    sleep 0.1
done
waited=$(($(now_ms) - t_moved))
[ "$got" = backend2 ] || fail "still backend1 ${waited} ms after the move (TTL 2 s)"
[ "$waited" -lt 5000 ] || fail "re-resolved only after ${waited} ms (TTL 2 s)"
log "followed the move after ${waited} ms"
for i in 1 2 3; do
    got=$(ask 6000)
    [ "$got" = backend2 ] || fail "connection $i after the move got '$got'"
done

log "an unresolvable name closes the client; the relay keeps serving"
bad_closes() { [ "$(grep -c 'close relay=bad .*end=connect_failed' "$LOG")" -ge "$1" ]; }
for i in 1 2; do # the second one meets the cached failure
    got=$(ask 6001)
    [ -z "$got" ] || fail "got '$got' through a relay to an unresolvable name"
    wait_for bad_closes "$i"
done
grep -q "resolve host=nosuch.test failed" "$LOG" || fail "no log line for the failed lookup"
[ "$(grep -c 'close relay=bad .*end=connect_failed' "$LOG")" = 2 ] || fail "expected 2 connect_failed closes"
running "$AL" || fail "airlock died"
[ "$(ask 6000)" = backend2 ] || fail "relay svc stopped serving after the failed lookups"

stop "$AL" || fail "airlock exited with $? after SIGTERM"
! grep -Eq "ERROR|runtime error" "$LOG" || fail "sanitizer report in the log"
log "ok"
