#!/bin/bash
# t_router_churn: clients from many addresses, each within its
# max_pending_per_client, reserve an instance and leave before the login,
# one after another. Each withdrawn reservation costs its instance a
# recycle (a slow start here: 20 s), so it counts against the pool's
# pending_share until an instance of the pool is idle again, as it counts
# against its client: six addresses in a pool of six with pending_share 50
# recycle three instances, the other three stay idle (the next addresses
# are refused with pending_limit), with the memory directory and with redis.
. "$(dirname "$0")/lib.sh"
need python3 redis-server
pool_setup
RPORT=$(free_port)
redis_unix

assigned() { grep -q "router assigned relay=grid conn=[0-9]* sni=$1.grid.test " "$LOG"; }
outcome_is() { [ "$(metric airlock_dir_assigns_total "outcome=\"$1\"" "$MPORT")" = "$2" ]; }
closed() { grep -q '^eof$' "$T/$1.out"; }

# the first start is quick, every later one slow: a recycle takes 20 s
cat >"$T/app.sh" <<EOF
#!/bin/sh
if [ -e "$T/slow" ]; then exec "$FAKEAPP" --port "\$1" --ready-after 20000; fi
exec "$FAKEAPP" --port "\$1"
EOF
chmod +x "$T/app.sh"

for backend in memory redis; do
    log "== $backend directory"
    rm -rf "$T/inst" "$T/slow"
    : >"$LOG"
    pool_conf "$CONF" "$P0" <<EOF
    min_idle: 6
    max: 6
    max_idle: 6
$(grid_router)
EOF
    sed -i "s|command: \[$FAKEAPP, --port, \"{port}\"\]|command: [$T/app.sh, \"{port}\"]|" "$CONF"
    grep -q "app.sh" "$CONF" || fail "the pool's command was not replaced"
    dir_settings "$CONF" "$backend" "reserve_timeout: 60s" "assign_wait: 1s" \
        "max_pending_per_client: 1" "pending_share: 50"
    airlock_up al run -c "$CONF"
    AL=$LAST_PID
    wait_for settled 6
    touch "$T/slow"

    got=0
    for i in 1 2 3 4 5 6; do
        u=$backend$i
        hold "$u" "$RPORT" "$u.grid.test" --bind "127.0.0.$((10 + i))"
        wait_for eval "assigned $u || closed $u"
        assigned "$u" && got=$((got + 1))
        unhold "$u"
        wait_for closed "$u"
    done
    [ "$got" = 3 ] || fail "$backend: $got of 6 addresses reserved and left, not 3: $(ctl instances)"
    wait_for outcome_is pending_limit 3
    [ "$(metric airlock_dir_instances 'state="idle"' "$MPORT")" = 3 ] ||
        fail "$backend: the pool's share was churned: $(ctl instances)"
    stop_clean "$AL" al
done
log "ok"
