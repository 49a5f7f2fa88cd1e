#!/bin/bash
# t_router_holders: a reservation before its login is held by whoever sends
# its user's name, so one address holds no more of its places than
# max_pending_per_client (2 here), and a newcomer from an address that
# holds fewer takes a place from the address that holds the most; with the
# memory directory and with redis (there the user comes through a second
# airlock's router on the same redis, and the place taken is a connection
# of the first one's):
#  - a stranger from 127.0.0.9 sends alice's name first and then again and
#    again, without a certificate or a login: its third connection is
#    refused (client_limit); alice, from 127.0.0.2, still reaches her
#    instance and logs in;
#  - a stranger from eight addresses (127.0.0.2-9, two each) takes all 16
#    places (DIR_HOLDERS_MAX) of bob's reservation; bob, from 127.0.0.10,
#    still gets one: the oldest connection of the stranger's is closed
#    (end=evicted, by the router that holds it), the address it came from,
#    holding one place now, is refused when it comes back (no churn: it
#    would not hold fewer than the most-holding one); bob logs in; redis
#    keeps no key of the holders.
. "$(dirname "$0")/lib.sh"
need python3 redis-server redis-cli
pool_setup
read -r RPORT R2 M2 <<<"$(free_ports 3)"
redis_unix

# n_assigned [LOG [USER]]: USER's (alice's) connections the router of LOG sent on
n_assigned() { grep -c "router assigned relay=grid[0-9]* conn=[0-9]* sni=${2:-alice}.grid.test " "${1:-$LOG}" || true; }
n_bob() { n_assigned "${1:-$LOG}" bob; }
n_refused() { metric airlock_dir_assigns_total 'outcome="client_limit"' "${1:-$MPORT}"; }
n_evicted() { metric airlock_connections_closed_total 'relay="grid",end="evicted"' "$MPORT"; }
closed() { grep -q '^eof$' "$T/$1.out"; }
# redis: the keys of the holders (hd:) and of the evicted (out:) left
holder_keys() { for k in hd out; do redis-cli -s "$T/redis.sock" --scan --pattern "t$$:$k:*"; done; }
no_holder_keys() { [ -z "$(holder_keys)" ]; }
n_closed() { grep -l '^eof$' "$T/$1"-s*.out 2>/dev/null | wc -l; }

# the second router (redis): another airlock on the same redis, routers only
r2_conf() {
    cat >"$T/r2.yaml" <<EOF
log_level: debug
metrics: tcp:127.0.0.1:$M2
directory:
  backend: memory
routers:
  - name: grid2
    listen: tcp:127.0.0.1:$R2
    directory: fa
    domain: grid.test
EOF
    dir_settings "$T/r2.yaml" redis "reserve_timeout: 60s" "assign_wait: 0s" \
        "max_pending_per_client: 2"
}

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
    alog=$LOG aport=$RPORT am=$MPORT
    if [ "$backend" = redis ]; then
        # before any client: it would inherit their FIFOs, and hold them
        r2_conf
        airlock_up r2 run -c "$T/r2.yaml"
        R2PID=$LAST_PID
        alog=$T/r2.log aport=$R2 am=$M2
    fi

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

    log "a stranger from eight addresses takes the 16 places of bob's reservation"
    n=0
    for a in 2 3 4 5 6 7 8 9; do
        for j in 1 2; do
            n=$((n + 1))
            hold "$backend-s$a-$j" "$RPORT" bob.grid.test --bind "127.0.0.$a"
            wait_for eval "[ \$(n_bob) -ge $n ] || closed $backend-s$a-$j"
        done
    done
    [ "$(n_bob)" = 16 ] || fail "$backend: the stranger holds $(n_bob) places, not 16"
    [ "$(n_closed "$backend")" = 0 ] || fail "$backend: a stranger's connection was closed"

    log "bob, from 127.0.0.10, takes the place of the stranger's oldest connection"
    b0=$(n_bob "$alog")
    hold "$backend-new" "$aport" bob.grid.test --bind 127.0.0.10
    wait_for eval '[ "$(n_bob "$alog")" -gt $b0 ] || closed '"$backend-new"
    [ "$(n_bob "$alog")" -gt "$b0" ] || fail "$backend: bob was refused ($(n_refused "$am") refusals)"
    wait_for closed "$backend-s2-1"
    wait_for eval '[ "$(n_evicted)" = 1 ]'
    [ "$(n_closed "$backend")" = 1 ] || fail "$backend: $(n_closed "$backend") strangers closed, not 1"

    log "the stranger's address that lost its place is refused when it comes back"
    before=$(n_refused)
    hold "$backend-s2-3" "$RPORT" bob.grid.test --bind 127.0.0.2
    wait_for closed "$backend-s2-3"
    [ "$(n_refused)" = $((before + 1)) ] || fail "$backend: 127.0.0.2 was not refused"
    closed "$backend-new" && fail "$backend: bob lost his place"
    [ "$(n_closed "$backend")" = 2 ] || fail "$backend: another stranger was closed"

    log "the stranger leaves, bob logs in"
    for a in 2 3 4 5 6 7 8 9; do
        for j in 1 2 3; do [ -z "${HOLD_FD[$backend-s$a-$j]:-}" ] || unhold "$backend-s$a-$j"; done
    done
    hold_send "$backend-new" "login bob"
    wait_log "$LOG" "login user=bob"
    unhold "$backend-new"
    # the session's connections are its user's: nothing of the holders is left
    [ "$backend" = memory ] || wait_for no_holder_keys || fail "left in redis: $(holder_keys)"
    [ "$backend" = memory ] || stop_clean "$R2PID" r2
    stop_clean "$AL" al
done
log "ok"
