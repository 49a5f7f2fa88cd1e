#!/bin/bash
# t_router_reserve_timeout: a reservation nobody logs in on, its client
# still connected and silent, with the memory directory and again with
# redis. Before, at reserve_timeout the instance went back to idle with the
# stranger's connection still on it, and the next user was given it: the
# stranger's bytes (and connection) reached that user's session. Now:
#  - x's ClientHello reserves an instance (no provisioning hook: nothing
#    is brought in), x stays connected and says nothing;
#  - at reserve_timeout (1 s) the reservation is withdrawn, the instance is
#    recycled: x's connection is closed with it, a fresh process takes its
#    place, and the pool is back to its standby count;
#  - the next user, bob, is served by a process x never spoke to.
. "$(dirname "$0")/lib.sh"
need python3 redis-server
pool_setup
RPORT=$(free_port)
SOCK=$T/redis.sock

# conf BACKEND: the pool, a router on $RPORT and the directory on BACKEND
conf() {
    pool_conf "$CONF" "$P0" --state-wait 0 <<EOF
    min_idle: 2
    max: 3
    max_idle: 2
$(grid_router)
EOF
    dir_settings "$CONF" "$1" "reserve_timeout: 1s"
}

redis_unix
wait_for test -S "$SOCK"

for backend in memory redis; do
    log "$backend: a silent client past reserve_timeout"
    conf "$backend"
    : >"$LOG"
    airlock_up al run -c "$CONF"
    AL=$LAST_PID
    wait_for settled 2
    hold x "$RPORT" x.grid.test
    wait_log "$LOG" "router assigned relay=grid conn=[0-9]+ sni=x.grid.test"
    X=$(sed -n 's/.*router assigned relay=grid conn=[0-9]* sni=x.grid.test instance=\([^ ]*\)$/\1/p' "$LOG" | head -1)
    [ -n "$X" ] || fail "no instance named for x: $(grep 'sni=x' "$LOG")"
    wait_log "$LOG" "instance=$X: reservation for x withdrawn before a login: recycled"
    wait_log "$LOG" "instance=$X stopped why=recycle"
    wait_log "$T/x.out" '^eof$'
    wait_for settled 2
    hold bob "$RPORT" bob.grid.test
    wait_log "$LOG" "router assigned relay=grid conn=[0-9]+ sni=bob.grid.test"
    grep -q "sni=bob.grid.test instance=$X\$" "$LOG" && fail "bob was given x's instance $X"
    unhold bob
    unhold x
    stop_clean "$AL" al
done
log "ok"
