#!/bin/bash
# t_pool_state_timeout: a store-back (built-in provisioning, state:) past
# the state's timeout is awaited, never given up: the session ends when it
# has ended. dave's database in his instance is a FUSE file whose reads are
# answered 3 s late, so his store-back outlives its timeout (1 s):
#  - meanwhile frank is given an instance, and airlock answers at once
#    (its metrics) while the instance started to replace his (a clone that
#    shares airlock's memory until its exec, the loop waiting) inherits the
#    FUSE file the store-back is reading: when the clone closed it before
#    its exec, the close waited for the FUSE server, and airlock's loop
#    with it, for the rest of the 3 s read;
#  - frank's store-back is not held back by dave's: when the store-backs
#    ran on one thread, his waited for dave's;
#  - the timeout is logged, and nothing is counted as a failure;
#  - dave, back right after the timeout, waits until the store-back has
#    ended, then is served what it stored, which the store holds.
#    When the session ended at the timeout, dave was served the state from
#    before the session at once, and the store-back, still running, stored
#    the session's over it seconds later: his next store-back wrote over
#    that in turn, a session lost.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to mount a FUSE file"
SLOW_MS=3000
SESSION_STATE=$(growfile_reads 8) # what dave's session wrote, as the store-back reads it
pool_setup
pool_state_store
pool_conf "$CONF" "$P0" <<EOF
    min_idle: 2
    max: 4
    state: {store: $T/store, fetch: ["{user}.db"], store_back: ["{user}.db"], timeout: 1s}
EOF
sed -i "s|^  backend: memory\$|&\n  assign_wait: 20s|" "$CONF" # dave back waits for the store-back
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 2
failures() { metric airlock_pool_hook_failures_total "pool=\"fa\",hook=\"deprovision\",reason=\"$1\"" "$MPORT"; }

pool_assign dave
[ "$(app "$P" "login dave")" = "OK state-of-dave" ] || fail "dave's login was not served"
at_exit growfile_umount
start growfile "$GROWFILE" "$DIR/dave.db" --says ${#SESSION_STATE} --holds ${#SESSION_STATE} \
    --owner "$(stat -c %u:%g "$DIR")" --slow "$SLOW_MS"
wait_for eval 'findmnt -rn -t fuse.growfile "$DIR/dave.db" >/dev/null'
[ "$(app "$P" logout)" = BYE ] || fail "dave's logout"
OLD=$NAME
P=$(assign_port frank)
sleep 0.3 # frank's instance's replacement starts (replace_delay, 50 ms)
start_ns=$(date +%s%N)
curl -sf -m 10 "http://127.0.0.1:$MPORT/metrics" >/dev/null || fail "no metrics"
ms=$(elapsed_ms "$start_ns")
[ "$ms" -lt 1000 ] || fail "airlock answered in $ms ms: its loop waited for the FUSE file"
log "airlock answered in $ms ms while dave's state was being read"
[ "$(app "$P" "login frank")" = "OK state-of-frank" ] || fail "frank's login was not served"
pool_at "$P"
[ "$(app "$P" "save frank-v2")" = OK ] || fail "frank's save"
[ "$(app "$P" logout)" = BYE ] || fail "frank's logout"
wait_log "$LOG" "instance=$NAME hook=deprovision ok" 10
! grep -q "instance=$OLD hook=deprovision ok" "$LOG" ||
    fail "frank's store-back ended only once dave's had"
[ "$(cat "$T/store/frank.db")" = frank-v2 ] || fail "the store has frank's $(cat "$T/store/frank.db")"
log "frank's state was stored back while dave's was still being read"
wait_log "$LOG" "instance=$OLD state=deprovision: past its timeout .1000 ms., awaited" 10
start_ns=$(date +%s%N)
log "the store-back is past its timeout; dave is back"
pool_assign dave
ms=$(elapsed_ms "$start_ns")
grep -q "instance=$OLD hook=deprovision ok" "$LOG" ||
    fail "dave was given an instance ($ms ms after the timeout) before his store-back had ended"
log "dave was given an instance $ms ms after the timeout, once the store-back had ended"
[ "$(app "$P" "login dave")" = "OK $SESSION_STATE" ] || fail "dave, back, was not served what was stored"
[ "$(cat "$T/store/dave.db")" = "$SESSION_STATE" ] || fail "the store has: $(cat "$T/store/dave.db")"
[ -z "$(ls -A "$T/store" | grep '^\.')" ] || fail "temporary files left: $(ls -A "$T/store")"
for reason in timeout state; do
    [ "$(failures $reason)" = 0 ] || fail "store-backs counted as failed for reason=$reason"
done
growfile_umount
stop_clean "$AL" al
log "ok"
