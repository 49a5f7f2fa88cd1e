#!/bin/bash
# t_pool_state_parallel: a user's state that is slow to come in (built-in
# provisioning, state:) holds back no other user's login. erin's database
# in the store is a FUSE file whose every read is answered 3 s late (as a
# large state or a slow disk would be), so her fetch takes 6 s:
#  - dave's login, reserved after erin's, is answered with his state while
#    erin's is still being read; when the fetches ran one at a time, his
#    waited for hers;
#  - then frank's, while erin's still is;
#  - erin's login is served with her state once it is in.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to mount a FUSE file"
SLOW_MS=3000
ERIN_STATE=$(growfile_reads 16)
pool_setup
pool_state_store
pool_conf "$CONF" "$P0" --state-wait 30000 <<EOF
    min_idle: 3
    max: 3
    state:
      store: $T/store
      fetch: ["{user}.db"]
      store_back: ["{user}.db"]
      timeout: 30s
EOF
"$GROWFILE" "$T/store/erin.db" --says ${#ERIN_STATE} --holds ${#ERIN_STATE} --owner 0:0 \
    --slow "$SLOW_MS" &
at_exit growfile_umount
wait_for eval 'findmnt -rn -t fuse.growfile "$T/store/erin.db" >/dev/null'
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 3

start_ns=$(date +%s%N)
PE=$(assign_port erin)
app "$PE" "login erin" 40 >"$T/erin.out" &
ERIN=$!
wait_log "$LOG" "reserved user=erin: provisioning ahead"
log "erin's state is being read; dave logs in"
PD=$(assign_port dave)
[ "$(app "$PD" "login dave" 20)" = "OK state-of-dave" ] || fail "dave's login was not served"
ms=$(elapsed_ms "$start_ns")
[ ! -s "$T/erin.out" ] || fail "erin's state came in before dave's login was answered (in $ms ms)"
[ "$ms" -lt "$((2 * SLOW_MS))" ] ||
    fail "dave's login took $ms ms: it waited for erin's state (read in $((2 * SLOW_MS)) ms or more)"
log "dave logged in $ms ms after erin's reservation, her state still coming in"
PF=$(assign_port frank)
[ "$(app "$PF" "login frank" 20)" = "OK state-of-frank" ] || fail "frank's login was not served"
[ ! -s "$T/erin.out" ] || fail "erin's state came in before frank's login was answered"
wait "$ERIN"
[ "$(cat "$T/erin.out")" = "OK $ERIN_STATE" ] || fail "erin's login: $(cat "$T/erin.out")"
ms=$(elapsed_ms "$start_ns")
[ "$ms" -ge "$((2 * SLOW_MS))" ] || fail "erin's state came in after $ms ms: it was not read slowly"
log "erin logged in after $ms ms, with her state"
stop_clean "$AL" al
log "ok"
