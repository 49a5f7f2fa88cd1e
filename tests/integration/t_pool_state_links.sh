#!/bin/bash
# t_pool_state_links: the smartgrid state hooks (smartgrid-state, run as
# root) against an instance that plants links in its directory.
#  - fetch: the instance planted USER.db.tmp.<pid> -> a root-only file for
#    every pid the hook may get (what a hook writing "$to.tmp.$$" would
#    follow): the file keeps its content; the user gets USER.db, USER.crt
#    and USER.key as regular files of the instance's uid, mode 0600;
#  - store: the instance replaced USER.db with a symlink to a root-only
#    file: nothing is stored (the hook refuses), the store keeps the user's
#    state, and the next session gets that state, not the file;
#  - store: a named pipe in place of USER.db fails the hook at once (no
#    hang until the timeout);
#  - store of a real file works: the store gets it (root's, 0600).
# The hook is apps/smartgrid/state-hook.sh running the smartgrid-state built
# beside $AIRLOCK; STATE_HOOK overrides it (fetch|store STORE USER DIR).
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run instances as other uids"
export SMARTGRID_STATE=$(dirname "$AIRLOCK")/smartgrid-state
[ -x "$SMARTGRID_STATE" ] || fail "no $SMARTGRID_STATE"
HOOK=${STATE_HOOK:-$ROOT/apps/smartgrid/state-hook.sh}
pool_setup
pool_state_store
# one instance at a time: the one the test picks (and plants in) is the one
# a reservation gets
pool_conf "$CONF" "$P0" <<EOF
    min_idle: 1
    max: 1
    uids: $U0-$((U0 + 2))
    provision:
      command: [$HOOK, fetch, $T/store, "{user}", "{dir}"]
      timeout: 30s
    deprovision:
      command: [$HOOK, store, $T/store, "{user}", "{dir}"]
      timeout: 30s
EOF
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1
failures() { metric airlock_pool_hook_failures_total "pool=\"fa\",hook=\"deprovision\",reason=\"$1\"" "$MPORT"; }


log "fetch through planted temporary names"
pool_pick
out=$(app "$P" "plant dave.db.tmp. $T/victim" 120)
[[ $out == "OK "* ]] && [ "${out#OK }" -gt 0 ] || fail "plant: $out"
log "$NAME planted ${out#OK } links"
pool_reserve dave
out=$(app "$P" "login dave")
wait_log "$LOG" "instance=$NAME hook=provision (ok|failed)"
[ "$(cat "$T/victim")" = victim ] || fail "the hook wrote through a planted link: $(cat "$T/victim")"
[ "$out" = "OK state-of-dave" ] || fail "dave not served: $out"
for f in dave.db dave.crt dave.key; do
    [ -f "$DIR/$f" ] && [ ! -L "$DIR/$f" ] || fail "$f is not a regular file: $(ls -l "$DIR/$f")"
    [ "$(stat -c '%u %a' "$DIR/$f")" = "$UID_ 600" ] || fail "$f: $(stat -c '%u %a' "$DIR/$f"), not $UID_ 600"
done
[ "$(app "$P" "read dave.crt")" = "OK cert-of-dave" ] || fail "the instance cannot read its certificate"
[ "$(app "$P" "read dave.key")" = "OK key-of-dave" ] || fail "the instance cannot read its key"

log "store through a symlink to a root-only file"
[ "$(app "$P" "symlink dave.db $T/secret")" = OK ] || fail "symlink"
[ "$(app "$P" logout)" = BYE ] || fail "logout"
wait_log "$LOG" "instance=$NAME stopped"
[ "$(cat "$T/store/dave.db")" = state-of-dave ] || fail "the store holds: $(cat "$T/store/dave.db")"
[ "$(failures exit)" = 1 ] || fail "the refusal is not a failed hook: $(failures exit)"
pool_pick
pool_reserve dave
[ "$(app "$P" "login dave")" = "OK state-of-dave" ] || fail "dave's next session: $(app "$P" "read dave.db")"

log "store of a named pipe fails at once"
[ "$(app "$P" "fifo dave.db")" = OK ] || fail "fifo"
[ "$(app "$P" logout)" = BYE ] || fail "logout"
wait_log "$LOG" "instance=$NAME stopped"
[ "$(failures exit)" = 2 ] && [ "$(failures timeout)" = 0 ] ||
    fail "failures: exit $(failures exit), timeout $(failures timeout)"
[ "$(cat "$T/store/dave.db")" = state-of-dave ] || fail "the store holds: $(cat "$T/store/dave.db")"

log "store of the state itself"
pool_pick
pool_reserve erin
[ "$(app "$P" "login erin")" = "OK state-of-erin" ] || fail "erin not served"
[ "$(app "$P" "save erin-v2")" = OK ] || fail "save"
[ "$(app "$P" logout)" = BYE ] || fail "logout"
wait_log "$LOG" "instance=$NAME stopped"
[ "$(cat "$T/store/erin.db")" = erin-v2 ] || fail "the store holds: $(cat "$T/store/erin.db")"
[ "$(stat -c '%u %a' "$T/store/erin.db")" = "0 600" ] || fail "stored as $(stat -c '%u %a' "$T/store/erin.db")"
[ -z "$(ls -A "$T/store" | grep -v '^\(dave\|erin\|frank\)\.\(db\|crt\|key\)$')" ] || fail "left in the store: $(ls -A "$T/store")"
stop_clean "$AL" al
log "ok"
