#!/bin/bash
# t_pool_fetch_served: a login confirmed while its provisioning hook is
# still running has been served (the hook wrote the state, then lingers for
# LINGER seconds before it exits): when the session ends first, the hook is
# let finish and what the session wrote is stored back:
#  - a logout while the hook lingers: the store gets the session's save,
#    after the provisioning hook's "ok";
#  - a crash while the hook lingers: the same;
#  - a hook that lingers then fails: nothing is stored back (the store keeps
#    what it had), the failure is counted;
#  - a hook that lingers past its timeout: killed, counted, nothing stored.
. "$(dirname "$0")/lib.sh"

LINGER=3
pool_setup
mkdir -p "$T/store"
for u in ann bob cid dee; do echo "state-of-$u" >"$T/store/$u.db"; done
# provision USER DIR: the state arrives at once; the hook exits LINGER s
# later, with status 1 for cid, and for dee not before its timeout
cat >"$T/provision.sh" <<EOF
#!/bin/sh
cp "$T/store/\$1.db" "\$2/\$1.db.tmp" && mv "\$2/\$1.db.tmp" "\$2/\$1.db" || exit 1
case \$1 in
cid) sleep $LINGER; exit 1 ;;
dee) exec sleep 30 ;;
esac
sleep $LINGER
EOF
chmod +x "$T/provision.sh"
pool_conf "$CONF" "$P0" --state-wait 3000 <<EOF
    min_idle: 1
    max: 3
    provision:
      command: ["$T/provision.sh", "{user}", "{dir}"]
      timeout: $((LINGER + 2))s
    deprovision:
      command: [sh, -c, 'cp "\$1/\$0.db" "$T/store/\$0.db"', "{user}", "{dir}"]
      timeout: 5s
EOF
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1
hook_failures() { metric airlock_pool_hook_failures_total "pool=\"fa\",hook=\"$1\",reason=\"$2\"" "$MPORT"; }

# session USER END: USER logs in while the hook lingers, saves, then ends
# the session with END (logout or crash); prints the instance's name
session() {
    local a name
    a=$(ctl assign fa "$1") || fail "airlock ctl assign fa $1 failed"
    P=${a##*:}
    name=${a#fa/}
    NAME=${name%% *}
    [ "$(app "$P" "login $1")" = "OK state-of-$1" ] || fail "$1 not served"
    # confirmed by the directory while the hook lingers (an end before the
    # answer is t_pool_login_unconfirmed's)
    wait_log "$LOG" "instance=$NAME login user=$1 "
    [ "$(app "$P" "save $1-v2")" = OK ] || fail "$1: save"
    app "$P" "$2" >/dev/null
    wait_log "$LOG" "instance=$NAME (exited|stopping)"
    grep -q "instance=$NAME hook=provision \(ok\|failed\)" "$LOG" &&
        log "(the hook ended before the session: the race was not hit)"
    return 0
}

log "a logout while the fetch lingers: the session's state is stored back"
session ann logout
wait_log "$LOG" "instance=$NAME stopped" $((LINGER + 10))
grep -q "instance=$NAME hook=provision ok" "$LOG" || fail "the provisioning hook did not finish"
grep -q "instance=$NAME hook=deprovision ok" "$LOG" || fail "the state was not stored back"
[ "$(cat "$T/store/ann.db")" = ann-v2 ] || fail "the store holds: $(cat "$T/store/ann.db")"

log "a crash while the fetch lingers: the same"
session bob crash
wait_log "$LOG" "instance=$NAME stopped" $((LINGER + 10))
[ "$(cat "$T/store/bob.db")" = bob-v2 ] || fail "the store holds: $(cat "$T/store/bob.db")"

log "a fetch that fails after the session ended: nothing stored back"
session cid logout
wait_log "$LOG" "instance=$NAME stopped" $((LINGER + 10))
grep -q "instance=$NAME hook=provision failed reason=exit" "$LOG" || fail "the failure is not logged"
[ "$(hook_failures provision exit)" = 1 ] || fail "the failure is not counted"
[ "$(cat "$T/store/cid.db")" = state-of-cid ] || fail "the store holds: $(cat "$T/store/cid.db")"

log "a fetch that outlives its timeout after the session ended: killed, nothing stored back"
session dee logout
wait_log "$LOG" "instance=$NAME stopped" $((LINGER + 15))
grep -q "instance=$NAME hook=provision failed reason=timeout" "$LOG" || fail "the timeout is not logged"
[ "$(hook_failures provision timeout)" = 1 ] || fail "the timeout is not counted"
[ "$(cat "$T/store/dee.db")" = state-of-dee ] || fail "the store holds: $(cat "$T/store/dee.db")"
pgrep -f "sleep 30" -P "$AL" >/dev/null && fail "the hook outlived its timeout"

for st in provisioning stopping deprovisioning wiping; do
    wait_for metric_is airlock_pool_instances "pool=\"fa\",state=\"$st\"" 0
done
[ "$(dir_sessions)" = 0 ] || fail "sessions left in the directory"
no_zombies "$AL" || fail "zombies: $(ps -o pid,stat,cmd --ppid "$AL")"
stop_clean "$AL" al
log "ok"
