#!/bin/bash
# t_dir_redis_squat: a pool's instance poses as the directory's redis.
# The instances share the host's network: while redis is down (a crash, a
# restart), an instance may bind its port and wait. Until 2026-12-06
# airlock's reconnect sent it AUTH and the password within a second, and
# with it the instance could rewrite the directory (other users'
# reservations, endpoints). Now airlock asks the kernel whose socket the
# server end of a connection to this machine is (sock_diag) and sends
# nothing to a server of a uid without an account (the instances' uids
# have none): the squatter sees connections, never a byte. Once it is gone
# (its session ended) and redis is back on the port (root's), the
# directory works again.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run instances as other uids"
need redis-server
[ -x /usr/bin/python3 ] || skip "no /usr/bin/python3 (the instances' uids run it)"
pool_setup
chmod 755 "$T" # the instances pass through to their directories
U0=$(free_uids 4)
RP=$(free_port)
redis_password
redis_up() {
    start redis redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no \
        --requirepass "$REDISCLI_AUTH"
    RED=$LAST_PID
    wait_for tcp_up "$RP"
}
redis_up
pool_conf "$CONF" "$P0" --state-wait 0 <<EOF
    min_idle: 1
    max: 3
    uids: $U0-$((U0 + 3))
EOF
sed -i "s|^  backend: memory\$|  backend: redis\n  redis: tcp:127.0.0.1:$RP\n  redis_password_file: $T/redis.pw\n  prefix: \"t$$:\"|" "$CONF"
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1
PA=$(assign_port dave)
app "$PA" "login dave" >/dev/null
wait_log "$LOG" "instance=fa-1 login user=dave"
A=$(ss -Htlnp "sport = :$PA" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
UA=$(stat -c %u "/proc/$A")

log "dave's instance waits for redis's port; redis goes down"
OUT=$T/captured
: >"$OUT"
chmod 666 "$OUT"
[ "$(app "$PA" "sh /usr/bin/python3 $ROOT/tests/tools/fake_redis.py $RP $OUT; echo ok")" = "OK ok" ] ||
    fail "no fake redis"
kill -9 "$RED"
wait_for eval '[ "$(ss -Htlnp "sport = :$RP" | grep -c python3)" = 1 ]'
wait_until 30 eval '[ "$(grep -c "^conn$" "$OUT")" -ge 3 ]'
! grep -q "AUTH\|$REDISCLI_AUTH" "$OUT" || fail "airlock sent the fake redis: $(tr -c '[:print:]' ' ' <"$OUT")"
[ "$(grep -cv "^conn$" "$OUT")" = 0 ] || fail "airlock sent the fake redis: $(tr -c '[:print:]' ' ' <"$OUT")"
wait_log "$LOG" "directory: 127.0.0.1:$RP is served by uid $UA, which has no account .* refused, nothing sent"

log "dave's session ends (the squatter with it); redis is back: the directory works"
[ "$(app "$PA" logout)" = BYE ] || fail "logout"
wait_until 30 eval '[ -z "$(uid_procs "$UA")" ]'
redis_up
wait_until 30 eval 'ctl assign fa erin >/dev/null 2>&1'
running "$AL" || fail "airlock died"
