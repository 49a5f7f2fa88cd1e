#!/bin/bash
# t_dir_redis_hold: while a router's redis is away, a new client is held
# within assign_wait, as one waiting for an idle instance is, not refused
# (docs/directory.md, "While redis is away"):
#  - redis dies (kill -9; its data in an append-only file) and a new user's
#    ClientHello comes meanwhile: held; redis is back, and the user gets an
#    instance and logs in. Before, the router refused it at once (-EIO);
#  - a user logs in while redis is away: the instance's login is checked
#    with the directory (activation) once redis is back, within assign_wait,
#    and the session goes on. Before, the check failed at once and the
#    instance was killed (why=unverified);
#  - redis stays away past assign_wait: three users from one address; the
#    oldest gives its place to the third at once (max_pending_per_client,
#    as among waiters), the other two are refused when assign_wait runs out
#    (reason=directory_unavailable, outcome="unavailable"), not before;
#    an operator's listing and drain fail at once, saying redis is away;
#  - redis comes back empty (no data: the directory lost it) while a new
#    user waits: the request then waits for the nodes to report again
#    (P recovering, outcome "storing" until then), as a new key does, and is
#    served once that wait is over (cut short here);
#  - redis comes back empty between a user's reservation and the check of
#    their login (held meanwhile): the pool's airlock reports the instance
#    again as the reservation withdrawn for that user (not idle, which
#    would give it to anyone), so the login goes on there. Before, it was
#    reported idle, and the login was killed as forged.
. "$(dirname "$0")/lib.sh"
need python3 redis-server redis-cli
pool_setup
RPORT=$(free_port)
WAIT_MS=8000
pool_conf "$CONF" "$P0" --state-wait 0 <<EOF2
    min_idle: 2
    max: 4
$(grid_router)
EOF2
dir_settings "$CONF" redis "assign_wait: ${WAIT_MS}ms"
PREFIX=t$$:
# count REGEX: the lines of airlock's log that match
count() { grep -Ec -- "$1" "$LOG" || true; }
more() { [ "$(count "$1")" -gt "$2" ]; }
# redis_down: kills redis, returns once airlock noticed
redis_down() {
    local n
    n=$(count 'directory: redis unreachable')
    kill -9 "$REDIS"
    wait_exit "$REDIS"
    poll_until 10 more 'directory: redis unreachable' "$n" || fail "airlock did not notice redis gone"
}
redis_aof
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 2

m() { curl -sf "http://127.0.0.1:$MPORT/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
tries() { m airlock_dir_assign_tries_total; }
outcome() { m "airlock_dir_assigns_total{outcome=\"$1\"}"; }
tried_after() { [ "$(tries)" -gt "$1" ] 2>/dev/null; }
# served USER: USER's held client got an instance (or was refused: false)
answered() { grep -q "router assigned relay=grid .* sni=$1.grid.test " "$LOG" || grep -qx eof "$T/$1.out"; }
served() {
    wait_until 30 answered "$1"
    ! grep -qx eof "$T/$1.out" || fail "$1 was refused: $(grep "sni=$1.grid.test" "$LOG" | tail -2)"
    hold_send "$1" "login $1"
    wait_log "$T/$1.out" '^NOSTATE$'
    wait_log "$LOG" "instance=[^ ]* login user=$1 "
    unhold "$1"
}
# arrives USER: USER's ClientHello while redis is away, tried by the directory
arrives() {
    local n
    n=$(tries)
    hold "$1" "$RPORT" "$1.grid.test"
    wait_for tried_after "$n"
}

log "redis dies; a new user arrives meanwhile and is held until it is back"
redis_down
arrives alice
redis_aof
served alice
log "alice was served once redis was back"

log "a login in flight while redis is away waits for it: the session goes on"
hold erin "$RPORT" erin.grid.test
wait_log "$LOG" "router assigned relay=grid .* sni=erin.grid.test "
redis_down
hold_send erin "login erin"
wait_log "$T/erin.out" '^NOSTATE$'
wait_log "$LOG" "dir activate pool=fa instance=[^ ]* key=erin: the backend is away"
redis_aof
wait_log "$LOG" "instance=[^ ]* login user=erin "
! grep -q "login of erin not verified" "$LOG" || fail "$(grep "login of erin not verified" "$LOG")"
hold_send erin "id"
wait_log "$T/erin.out" '^[0-9]* [0-9]*$'
unhold erin

log "redis stays away past assign_wait: refused then, with the reason"
redis_down
arrives carol1
arrives carol2
arrives carol3
# the address's oldest waiter makes room for its newest, at once
wait_log "$T/carol1.out" '^eof$' 10
wait_log "$T/carol2.out" '^eof$' 30
wait_log "$T/carol3.out" '^eof$' 30
for u in carol1 carol2 carol3; do unhold "$u"; done
[ "$(outcome client_limit)" = 1 ] || fail "client_limit: $(outcome client_limit)"
[ "$(outcome unavailable)" = 2 ] || fail "unavailable: $(outcome unavailable)"
[ "$(outcome error)" = 0 ] || fail "error: $(outcome error)"
grep -q "router refused relay=grid .* reason=directory_unavailable " "$LOG" ||
    fail "no router refusal with reason=directory_unavailable"
waited=$(sed -n 's/.*dir assign refused pool=fa client=[^ ]* reason=unavailable waited_ms=\([0-9]*\) .*/\1/p' "$LOG" | head -1)
[ -n "$waited" ] || fail "no directory refusal with reason=unavailable"
# the wait's timer runs on the directory loop's clock, read once per turn: a
# few ms behind the request's own
[ "$waited" -ge $((WAIT_MS - 100)) ] || fail "refused after $waited ms, before assign_wait ($WAIT_MS ms)"
log "refused after $waited ms"
# an operator's listing and drain say why they fail (before: Input/output error)
for cmd in instances "drain fa/fa-1"; do
    # shellcheck disable=SC2086 # the command's words
    ctl $cmd >"$T/ctl.out" 2>&1 && fail "ctl $cmd: $(cat "$T/ctl.out")"
    grep -q "directory unreachable (redis away): try again once it is back" "$T/ctl.out" ||
        fail "ctl $cmd: $(cat "$T/ctl.out")"
done
n=$(count 'directory: connected to redis')
redis_aof
poll_until 30 more 'directory: connected to redis' "$n" || fail "airlock did not connect to redis again"

log "redis comes back empty while a new user waits: it waits for the nodes, then is served"
redis_down
rm -rf "${T:?}"/rdata/*
arrives dave
redis_aof
wait_log "$LOG" "directory: redis lost the directory's data" 30
tried=$(tries)
# (not $n: poll_until's local n would hide it)
storing() { [ "$(redis-cli -s "$T/redis.sock" EXISTS "${PREFIX}recovering")" = 1 ] && tried_after "$tried"; }
wait_for storing
! grep -qx eof "$T/dave.out" || fail "dave was refused while the directory recovered"
redis-cli -s "$T/redis.sock" DEL "${PREFIX}recovering" >/dev/null
served dave
[ "$(outcome unavailable)" = 2 ] || fail "unavailable: $(outcome unavailable)"
[ "$(outcome storing)" = 0 ] || fail "storing: $(outcome storing)"

log "redis comes back empty between a reservation and its login: the login goes on there"
hold frank "$RPORT" frank.grid.test
wait_log "$LOG" "router assigned relay=grid .* sni=frank.grid.test "
X=$(sed -n 's/.*router assigned relay=grid .* sni=frank.grid.test instance=\([^ ]*\).*/\1/p' "$LOG" | tail -1)
wait_log "$LOG" "dir pool=fa instance=$X state=reserved"
redis_down
rm -rf "${T:?}"/rdata/*
hold_send frank "login frank"
wait_log "$T/frank.out" '^NOSTATE$'
wait_log "$LOG" "dir activate pool=fa instance=$X key=frank: the backend is away"
redis_aof
wait_log "$LOG" "instance=$X login user=frank "
! grep -q "forged login user=frank" "$LOG" || fail "$(grep "forged login user=frank" "$LOG")"
[ "$(redis-cli -s "$T/redis.sock" GET "${PREFIX}k:fa:frank")" = "$X" ] || fail "frank's key is not on $X"
[ "$(redis-cli -s "$T/redis.sock" SISMEMBER "${PREFIX}idle:fa" "$X")" = 0 ] || fail "$X is idle in redis"
hold_send frank "id"
wait_log "$T/frank.out" '^[0-9]* [0-9]*$'
unhold frank
stop_clean "$AL" al
log "ok"
