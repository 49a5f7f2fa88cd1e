#!/bin/bash
# t_router_release_outage: a client that leaves while redis is down still
# gives its reservation back, once redis is back (reserve_timeout is 10 min
# here, so only the release can end it in time):
#  - dave and erin send their ClientHellos; dave's (slow) provisioning hook
#    starts;
#  - redis dies (kill -9; it keeps its data in an append-only file), dave
#    leaves meanwhile: his release cannot reach it;
#  - redis is back (restarted on its file): the release is made then, the
#    reservation withdrawn, the hook killed, the instance recycled without
#    storing back, and the pool back to its standby count;
#  - erin, who stayed connected through the outage, keeps hers and logs in.
. "$(dirname "$0")/lib.sh"
need python3 redis-server
pool_setup
RPORT=$(free_port)
mkdir -p "$T/store"
for u in dave erin; do echo "state-of-$u" >"$T/store/$u.db"; done
pool_conf "$CONF" "$P0" <<EOF2
    min_idle: 2
    max: 4
    max_idle: 2
    # dave's hook outlasts the test, erin's is done at once
    provision:
      command: [sh, -c, 'case "\$4" in dave) sleep 600;; esac && cp "\$1" "\$2.tmp" && mv "\$2.tmp" "\$2" && touch "\$3"', provision, "$T/store/{user}.db", "{dir}/{user}.db", "$T/hooked-{user}", "{user}"]
      timeout: 10m
    deprovision:
      command: [cp, "{dir}/{user}.db", "$T/store/{user}.db"]
      timeout: 5s
$(grid_router)
EOF2
dir_settings "$CONF" redis "reserve_timeout: 10m" "assign_wait: 1s"
redis_aof
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 2

reserved() { sed -n "s/.* instance=\([^ ]*\) reserved user=$1: provisioning ahead/\1/p" "$LOG" | tail -1; }
standby() { [ "$(pool_metric idle)" = 2 ] && [ "$(pool_metric starting)" = 0 ]; }
released() {
    [ "$(curl -sf "http://127.0.0.1:$MPORT/metrics" |
        awk '$1 == "airlock_dir_released_total" { print $2 }')" = "$1" ]
}

log "dave and erin send their ClientHellos"
hold dave "$RPORT" dave.grid.test
wait_log "$LOG" "reserved user=dave: provisioning ahead"
ID=$(reserved dave)
hold erin "$RPORT" erin.grid.test
wait_log "$LOG" "reserved user=erin: provisioning ahead"
IE=$(reserved erin)
wait_log "$LOG" "instance=$IE hook=provision ok"

log "redis dies; dave leaves meanwhile"
kill -9 "$REDIS"
wait_exit "$REDIS"
wait_log "$LOG" "directory: redis unreachable"
unhold dave
wait_log "$LOG" "close relay=grid .* sni=dave.grid.test "
# the directory takes requests in order: this one comes after the release
ctl instances >/dev/null 2>&1 && fail "the directory answered without redis"

log "redis is back: dave's reservation is withdrawn, the hook killed, the instance recycled"
redis_aof
wait_log "$LOG" "instance=$ID: reservation for dave withdrawn, its clients left" 30
wait_log "$LOG" "instance=$ID stopped why=recycle" 30
wait_for released 1
grep -q "instance=$ID hook=deprovision" "$LOG" && fail "dave's unused state was stored back"
[ ! -e "$T/hooked-dave" ] || fail "dave's hook ran to its end"
[ "$(cat "$T/store/dave.db")" = state-of-dave ] || fail "dave's store changed"
wait_until 30 standby

log "erin, connected through the outage, keeps her reservation and logs in"
hold_send erin "login erin"
wait_log "$T/erin.out" "^OK state-of-erin$"
wait_log "$LOG" "instance=$IE login user=erin provisioned=ahead"
unhold erin
stop_clean "$AL" al
log "ok"
