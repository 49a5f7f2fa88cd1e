#!/bin/bash
# t_router_holders: a reservation before its login is held by whoever sends
# its user's name, so one address holds no more of its places than
# max_pending_per_client (2 here): a stranger from 127.0.0.9 sends
# alice's name first and then again and again, without a certificate or a
# login; its third connection is refused (client_limit), and alice, from
# 127.0.0.2, still reaches her instance (the 16 places of
# DIR_HOLDERS_MAX were the stranger's before: alice was refused) and logs
# in, with the memory directory and with redis.
. "$(dirname "$0")/lib.sh"
need python3 redis-server
pool_setup
RPORT=$(free_port)
redis_unix

n_assigned() { grep -c "router assigned relay=grid conn=[0-9]* sni=alice.grid.test " "$LOG"; }
n_refused() { metric airlock_dir_assigns_total 'outcome="client_limit"' "$MPORT"; }
closed() { grep -q '^eof$' "$T/$1.out"; }

for backend in memory redis; do
    log "== $backend directory"
    rm -rf "$T/inst"
    : >"$LOG"
    pool_conf "$CONF" "$P0" <<EOF
    min_idle: 3
    max: 3
    max_idle: 3
$(grid_router)
EOF
    dir_settings "$CONF" "$backend" "reserve_timeout: 60s" "assign_wait: 0s" \
        "max_pending_per_client: 2"
    airlock_up al run -c "$CONF"
    AL=$LAST_PID
    wait_for settled 3

    log "a stranger sends alice's name 16 times from one address"
    for i in $(seq 1 16); do
        hold "$backend-x$i" "$RPORT" alice.grid.test --bind 127.0.0.9
        wait_for eval "[ \$(n_assigned) -ge $i ] || closed $backend-x$i"
    done
    [ "$(n_assigned)" = 2 ] || fail "$backend: the stranger holds $(n_assigned) places, not 2"
    [ "$(n_refused)" = 14 ] || fail "$backend: $(n_refused) refusals, not 14"

    log "alice, from 127.0.0.2, reaches her instance and logs in"
    hold "$backend-alice" "$RPORT" alice.grid.test --bind 127.0.0.2
    wait_for eval '[ "$(n_assigned)" = 3 ] || closed '"$backend-alice"
    [ "$(n_assigned)" = 3 ] || fail "$backend: alice was refused"
    # the stranger leaves (fakeapp serves one connection at a time): alice
    # holds the reservation on her own and logs in
    for i in $(seq 1 16); do unhold "$backend-x$i"; done
    hold_send "$backend-alice" "login alice"
    wait_log "$LOG" "login user=alice"
    unhold "$backend-alice"
    stop_clean "$AL" al
done
log "ok"
