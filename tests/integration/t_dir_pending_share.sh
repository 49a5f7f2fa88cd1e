#!/bin/bash
# t_dir_pending_share: pending_share is a share of the instances a newcomer
# could have (idle, reserved, recycling), not of the pool: sessions do not
# widen it. Six instances, four in sessions, two idle, pending_share 50,
# with the memory directory and with redis:
#  - a reservation nobody logged in with takes one of the two idle ones;
#  - a second waits and is refused (outcome pending_limit): half of the
#    two is taken. Before, the share was half of all six: the second got
#    the last idle instance, and a third client of any address would have
#    found none (unauthenticated clients held every instance not in a
#    session);
#  - once the first logs in, the second gets the last idle instance.
. "$(dirname "$0")/lib.sh"
need redis-server
pool_setup
redis_unix

outcome() { metric airlock_dir_assigns_total "outcome=\"$1\"" "$MPORT"; }
# session USER: USER is reserved an instance and logs in
session() {
    pool_assign "$1"
    app "$P" "login $1" >/dev/null
    wait_log "$LOG" "instance=$NAME login user=$1 "
}

for backend in memory redis; do
    log "== $backend directory"
    rm -rf "$T/inst"
    : >"$LOG"
    pool_conf "$CONF" "$P0" --state-wait 0 <<EOF
    min_idle: 6
    max: 6
    max_idle: 6
EOF
    dir_settings "$CONF" "$backend" "reserve_timeout: 60s" "assign_wait: 1s" "pending_share: 50"
    airlock_up al run -c "$CONF"
    AL=$LAST_PID
    wait_for settled 6
    for u in ann bob cid dee; do session "$backend$u"; done
    wait_for settled 2

    assign_port "${backend}x1" >/dev/null
    ctl assign fa "${backend}x2" >"$T/x2.out" 2>&1 &&
        fail "$backend: a second reservation of two idle instances: $(cat "$T/x2.out")"
    grep -q "fa's pending_share taken all through assign_wait" "$T/x2.out" ||
        fail "$backend: $(cat "$T/x2.out")"
    [ "$(outcome pending_limit)" = 1 ] || fail "$backend: pending_limit $(outcome pending_limit)"

    session "${backend}x1"
    assign_port "${backend}x2" >/dev/null
    stop_clean "$AL" al
done
log "ok"
