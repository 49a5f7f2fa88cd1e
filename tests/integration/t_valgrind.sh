#!/bin/bash
# t_valgrind: the release build (build/, next to the build under test) runs
# under valgrind --leak-check=full through a few hundred connections of every
# kind (redis round trips with splice, with buffers, through a PROXY v2
# send/accept pair; aborts, resets, a refusing target, PROXY v2 garbage, an
# allowlist refusal), then a SIGTERM
# whose 1 s drain deadline closes two connections still open: valgrind must
# report no error and no definitely lost block, and the process exit 0.
. "$(dirname "$0")/lib.sh"
command -v valgrind >/dev/null || skip "valgrind not installed"
command -v redis-server >/dev/null || skip "redis-server not installed"
RELEASE=$(cd "$(dirname "$AIRLOCK")/.." && pwd)/build
[ -x "$RELEASE/airlock" ] || skip "no release build at $RELEASE (meson setup build && ninja -C build)"
# bring it up to date with the sources (incremental, a few seconds at most)
ninja -C "$RELEASE" airlock >/dev/null 2>&1 || skip "ninja -C $RELEASE failed"

read -r REDIS M DEAD A C P Q <<<"$(free_ports 7)"
cat >"$T/airlock.yaml" <<EOF
threads: 2
metrics: tcp:127.0.0.1:$M
drain_timeout: 1s
relays:
  - name: splice
    listen: tcp:127.0.0.1:$A
    target: tcp:127.0.0.1:$REDIS
  - name: buffers
    listen: unix:$T/buffers.sock
    target: tcp:127.0.0.1:$REDIS
    splice: false
  - name: refused
    listen: tcp:127.0.0.1:$C
    target: tcp:127.0.0.1:$DEAD
  - name: sendproxy
    listen: tcp:127.0.0.1:$P
    target: unix:$T/proxy.sock
    send_proxy: v2
  - name: proxy
    listen: unix:$T/proxy.sock
    target: tcp:127.0.0.1:$REDIS
    accept_proxy: v2
  - name: private
    listen: tcp:127.0.0.1:$Q
    target: tcp:127.0.0.1:$REDIS
    allow: [10.0.0.0/8]
EOF
start redis redis-server --port "$REDIS" --bind 127.0.0.1 --save '' --appendonly no
wait_for tcp_up "$REDIS"
start valgrind valgrind --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
    --error-exitcode=99 --log-file="$T/valgrind.out" "$RELEASE/airlock" run -c "$T/airlock.yaml"
vg=$LAST_PID
up() { grep -q 'airlock running' "$T/valgrind.log"; }
wait_for up

log "redis round trips"
for i in $(seq 1 20); do
    [ "$(timeout 20 redis-cli -p "$A" PING)" = PONG ] || fail "PING $i through the splice relay"
done
[ "$(timeout 20 redis-cli -p "$P" PING)" = PONG ] || fail "PING through the PROXY v2 pair"
timeout 60 redis-benchmark -p "$A" -n 2000 -c 10 -t ping -q >/dev/null || fail "redis-benchmark failed"
log "aborts, resets, refusals and garbage"
timeout 120 "$NETPEER" storm 480 "tcp:127.0.0.1:$A" "unix:$T/buffers.sock" "tcp:127.0.0.1:$C" \
    "tcp:127.0.0.1:$P" "unix:$T/proxy.sock" "tcp:127.0.0.1:$Q" || fail "netpeer storm failed"

log "SIGTERM with two connections still open"
exec 3<>"/dev/tcp/127.0.0.1/$A" 4<>"/dev/tcp/127.0.0.1/$A"
printf 'PING\r\n' >&3
read -r -t 10 pong <&3 || fail "no PONG on the held connection"
[ "${pong%$'\r'}" = +PONG ] || fail "the held connection got $pong"
kill -TERM "$vg"
rc=0
wait "$vg" || rc=$?
exec 3>&- 4>&-
grep -q 'drain deadline reached: closing 2 connections' "$T/valgrind.log" ||
    fail "the drain deadline did not close the 2 held connections"
grep -E 'ERROR SUMMARY|definitely lost|All heap blocks' "$T/valgrind.out" | sed 's/^/# /'
[ "$rc" = 0 ] || { cat "$T/valgrind.out" >&2; fail "airlock under valgrind exited with $rc"; }
[ "$(ends "$T/valgrind.log" error)" = 0 ] || fail "connections ended with end=error"
[ "$(ends "$T/valgrind.log" shutdown)" = 2 ] || fail "not 2 connections with end=shutdown"
grep -q 'ERROR SUMMARY: 0 errors' "$T/valgrind.out" || fail "valgrind reported errors"
log "pass"
