#!/bin/bash
# t_pool_session: the life of a pool instance with real processes.
#  - min_idle instances start in their own 0700 directories, with no signal
#    blocked or ignored, and report ready;
#  - a user is reserved an instance (airlock ctl assign, as a router does),
#    whose provisioning hook brings the state in: the app finds the user's state
#    (copied from a store, renamed into place at once) and serves it; the session's change is stored back
#    by the deprovisioning hook after logout; the directory is wiped; the
#    instance was replaced when it was taken, so nothing starts at the
#    logout (max_idle is the reserve: a start above it would only be trimmed);
#  - a crash mid-session ends the session in the directory (deprovision still
#    runs, the state is saved), the instance is replaced; metrics count it all;
#  - airlock ctl drain of a session: the pool recycles the instance;
#  - SIGTERM leaves no instance behind and airlock exits 0.
. "$(dirname "$0")/lib.sh"

pool_setup
mkdir -p "$T/store"
echo "state-of-alice-v1" >"$T/store/alice.db"
echo "state-of-bob-v1" >"$T/store/bob.db"
pool_conf "$CONF" "$P0" <<EOF
    min_idle: 2
    max: 4
    max_idle: 2
    cooldown: 500ms
    provision:
      command: [sh, -c, 'cp "\$1" "\$2.tmp" && mv "\$2.tmp" "\$2"', provision, "$T/store/{user}.db", "{dir}/{user}.db"]
      timeout: 5s
    deprovision:
      command: [cp, "{dir}/{user}.db", "$T/store/{user}.db"]
      timeout: 5s
EOF
"$AIRLOCK" check -c "$CONF" | has "ok (0 relays, 1 pools, directory memory, control socket)" || fail "check: $("$AIRLOCK" check -c "$CONF" 2>&1)"
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for metric_is airlock_pool_instances 'pool="fa",state="idle"' 2
[ "$(ls "$T/inst" | wc -l)" = 2 ] || fail "expected 2 instance directories: $(ls "$T/inst")"
for d in "$T"/inst/*; do
    [ "$(stat -c %a "$d")" = 700 ] || fail "$d: mode $(stat -c %a "$d"), not 700"
done
# airlock blocks the signals it reads from a signalfd and ignores SIGPIPE:
# an instance starts with neither (an exec keeps both)
for pid in $(pgrep -P "$AL"); do
    grep -E '^Sig(Blk|Ign):' "/proc/$pid/status" | grep -qv ':\s*0*$' &&
        fail "instance $pid inherited airlock's signals: $(grep -E '^Sig(Blk|Ign):' "/proc/$pid/status")"
done

log "login alice: the provisioning hook brings her state before she is served"
PA=$(assign_port alice)
out=$(app "$PA" "login alice")
[ "$out" = "OK state-of-alice-v1" ] || fail "alice was served: '$out'"
wait_log "$LOG" "login user=alice"
wait_log "$LOG" "hook=provision ok"
wait_for metric_is airlock_pool_instances 'pool="fa",state="active"' 1
[ "$(dir_sessions)" = 1 ] || fail "the directory has $(dir_sessions) sessions, not 1"
ctl sessions | has "alice" || fail "airlock ctl sessions: $(ctl sessions)"
metric_is airlock_dir_instances 'state="active"' 1 || fail "the directory has no active instance"
DIRA=$(app "$PA" cwd | cut -d' ' -f1)
PIDA=$(app "$PA" pid | cut -d' ' -f1)
[ "$(app "$PA" "save state-of-alice-v2")" = OK ] || fail "save"
out=$(app "$PA" logout)
[ "$out" = BYE ] || fail "logout: '$out'"
wait_log "$LOG" "instance=[^ ]+ stopped why=logout"
[ "$(cat "$T/store/alice.db")" = "state-of-alice-v2" ] || fail "state not stored back: $(cat "$T/store/alice.db")"
[ ! -e "$DIRA" ] || fail "instance directory $DIRA not wiped: $(ls -la "$DIRA")"
running "$PIDA" && fail "alice's process $PIDA still runs"
log "nothing starts at the logout: the reserve (2) stands, nothing to trim"
wait_for metric_is airlock_pool_instances 'pool="fa",state="wiping"' 0
sleep 0.7 # beyond the cooldown: a start owed to the logout would be up and trimmed
metric_is airlock_pool_instances 'pool="fa",state="idle"' 2 || fail "idle: $(pool_metric idle)"
[ "$(metric airlock_pool_starts_total 'pool="fa"' "$MPORT")" = 3 ] ||
    fail "starts: $(metric airlock_pool_starts_total 'pool="fa"' "$MPORT"), expected 2 + alice's replacement"
grep -q "stopped why=trim" "$LOG" && fail "an instance was trimmed"

log "bob logs in, then his instance crashes mid-session"
PB=$(assign_port bob)
[ "$(app "$PB" "login bob")" = "OK state-of-bob-v1" ] || fail "bob not served"
app "$PB" "save state-of-bob-v2" >/dev/null
app "$PB" crash >/dev/null
wait_log "$LOG" "exited signal=6"
wait_log "$LOG" "instance=[^ ]+ stopped why=exit"
[ "$(cat "$T/store/bob.db")" = "state-of-bob-v2" ] || fail "bob's state not stored back after the crash"
wait_for metric_is airlock_pool_instances 'pool="fa",state="idle"' 2
metric_is airlock_pool_instances 'pool="fa",state="active"' 0 || fail "an instance is still active"
[ "$(dir_sessions)" = 0 ] || fail "the directory still has $(dir_sessions) sessions after the crash"
ctl sessions | has "bob" && fail "bob's session is still listed: $(ctl sessions)"
wait_for metric_is airlock_dir_instances 'state="idle"' 2
starts=$(metric airlock_pool_starts_total 'pool="fa"' "$MPORT")
[ "$starts" = 4 ] || fail "starts: $starts, expected 3 + bob's replacement"
[ "$(ls "$T/inst" | wc -l)" = 2 ] || fail "leftover directories: $(ls "$T/inst")"
[ "$(metric airlock_pool_ready_seconds_count 'pool="fa"' "$MPORT")" -ge 4 ] || fail "time to ready not counted"

log "an operator drains alice's new session: the pool recycles the instance"
PA=$(assign_port alice)
[ "$(app "$PA" "login alice")" = "OK state-of-alice-v2" ] || fail "alice not served her stored state"
wait_log "$LOG" "login user=alice"
NAME=$(ctl sessions | awk '/alice/ { for (i = 1; i <= NF; i++) if ($i ~ /^fa-/) print $i }')
[ -n "$NAME" ] || fail "no session of alice listed: $(ctl sessions)"
ctl drain "fa/$NAME" >/dev/null || fail "drain fa/$NAME failed"
wait_log "$LOG" "instance=$NAME: drained by the directory"
wait_log "$LOG" "instance=$NAME stopped why=recycle"
wait_for settled 2

log "SIGTERM: every instance goes, airlock exits 0"
KIDS=$(pgrep -P "$AL" || true)
[ -n "$KIDS" ] || fail "no instance processes found"
stop_clean "$AL" al
for p in $KIDS; do running "$p" && fail "instance $p survived SIGTERM"; done
[ -z "$(ls "$T/inst")" ] || fail "directories left after SIGTERM: $(ls "$T/inst")"
log "ok"
