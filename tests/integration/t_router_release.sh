#!/bin/bash
# t_router_release: a client that leaves before its instance saw the login
# gives its reservation back at once (reserve_timeout is 60 s here), with
# the memory directory and again with redis:
#  - dave sends a ClientHello and leaves while his (slow) provisioning hook
#    runs: the reservation is withdrawn, the hook is killed (it never
#    finishes, its process group is gone), the instance is recycled without
#    storing back (dave's store untouched, the directory wiped), and the pool
#    is back to its standby count;
#  - erin connects twice (the second connection finds her reservation:
#    sticky); the first leaving does not withdraw it, the second logs in on
#    it, and her session outlives that connection too.
. "$(dirname "$0")/lib.sh"
need python3 redis-server
pool_setup
RPORT=$(free_port)
SOCK=$T/redis.sock
mkdir -p "$T/store"
for u in dave erin; do echo "state-of-$u" >"$T/store/$u.db"; done

# conf BACKEND: the pool, a router on $RPORT and the directory on BACKEND
conf() {
    pool_conf "$CONF" "$P0" <<EOF
    min_idle: 2
    max: 4
    max_idle: 2
    provision:
      command: [sh, -c, 'sleep 2 && cp "\$1" "\$2.tmp" && mv "\$2.tmp" "\$2" && touch "\$3"', provision, "$T/store/{user}.db", "{dir}/{user}.db", "$T/hooked-{user}"]
      timeout: 10s
    deprovision:
      command: [cp, "{dir}/{user}.db", "$T/store/{user}.db"]
      timeout: 5s
$(grid_router)
EOF
    dir_settings "$CONF" "$1" "reserve_timeout: 60s" "assign_wait: 1s"
}

# reserved USER: the instance reserved for USER (from the log)
reserved() { sed -n "s/.* instance=\([^ ]*\) reserved user=$1: provisioning ahead/\1/p" "$LOG" | tail -1; }
# router_closed USER N: the router logged N closes of USER's connections
router_closed() { [ "$(grep -c "close relay=grid .* sni=$1.grid.test " "$LOG")" = "$2" ]; }
released_total() {
    curl -sf "http://127.0.0.1:$MPORT/metrics" | awk '$1 == "airlock_dir_released_total" { print $2 }'
}
released() { [ "$(released_total)" = "$1" ]; }
# standby: the reserve of 2 idle and none starting
standby() { [ "$(pool_metric idle)" = 2 ] && [ "$(pool_metric starting)" = 0 ]; }

redis_unix

for backend in memory redis; do
    log "== $backend directory"
    rm -rf "$T/hooked-"* "$T/inst"
    : >"$T/al.log"
    conf "$backend"
    airlock_up al run -c "$CONF"
    AL=$LAST_PID
    wait_for settled 2

    log "dave leaves while his state is brought in: withdrawn, the hook killed, recycled"
    hold dave "$RPORT" dave.grid.test
    wait_log "$LOG" "reserved user=dave: provisioning ahead"
    ID=$(reserved dave)
    unhold dave
    wait_log "$LOG" "instance=$ID: reservation for dave withdrawn, its clients left"
    wait_log "$LOG" "instance=$ID stopped why=recycle"
    wait_for released 1
    grep -q "instance=$ID hook=provision ok" "$LOG" && fail "dave's hook finished"
    grep -q "instance=$ID hook=deprovision" "$LOG" && fail "dave's unused state was stored back"
    [ ! -e "$T/hooked-dave" ] || fail "dave's hook ran to its end"
    pgrep -f "$T/hooked-dave" >/dev/null && fail "dave's hook still runs: $(pgrep -af "$T/hooked-dave")"
    [ "$(cat "$T/store/dave.db")" = state-of-dave ] || fail "dave's store changed"
    [ ! -e "$T/inst/$ID" ] || fail "$ID's directory not wiped"
    wait_for standby

    log "erin on two connections: the first leaving keeps her reservation"
    hold erin1 "$RPORT" erin.grid.test
    wait_log "$LOG" "reserved user=erin: provisioning ahead"
    IE=$(reserved erin)
    hold erin2 "$RPORT" erin.grid.test
    assigned_twice() { [ "$(grep -c "router assigned .* sni=erin.grid.test instance=$IE" "$LOG")" = 2 ]; }
    wait_for assigned_twice
    unhold erin1
    wait_for router_closed erin 1
    # the directory handles requests in order: this listing comes after the release
    ctl instances | has -E "^fa +$IE +reserved +erin " || fail "erin's reservation went: $(ctl instances)"
    wait_log "$LOG" "instance=$IE hook=provision ok"
    hold_send erin2 "login erin"
    wait_log "$T/erin2.out" "^OK state-of-erin$"
    wait_log "$LOG" "instance=$IE login user=erin provisioned=ahead"
    unhold erin2
    wait_for router_closed erin 2
    ctl sessions | has " active  *erin " || fail "erin's session ended with her connection: $(ctl sessions)"
    released 1 || fail "released $(released_total), not 1"
    grep -q "reservation for erin withdrawn" "$LOG" && fail "erin's reservation was withdrawn"
    stop_clean "$AL" al
done
log "ok"
