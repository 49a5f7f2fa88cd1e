#!/bin/bash
# t_pool_login_unconfirmed: a session that ends while the directory still
# checks its login line (redis paused: the answer waits for it) keeps what
# it wrote, once the login is confirmed; never when it is not:
#  - a crash after the login line and a save: the store gets the save once
#    redis is back and confirms the login. Before, nothing was stored back
#    (the login was never confirmed) and the save was lost;
#  - a logout (the application prints LOGOUT and exits): the same;
#  - a logout line from an application that stays up: the session ends once
#    the login is confirmed (why=logout), its save stored back. Before, the
#    line was ignored and the session went on until the application exited;
#  - redis away past assign_wait: the login cannot be checked, so nothing is
#    stored back (the store keeps what it had), logged;
#  - in every case the directory ends the session: no session is left.
. "$(dirname "$0")/lib.sh"
need redis-server redis-cli
pool_setup
WAIT_MS=10000
mkdir -p "$T/store"
for u in ann bob cid dee; do echo "state-of-$u" >"$T/store/$u.db"; done
pool_conf "$CONF" "$P0" --state-wait 3000 <<EOF
    min_idle: 2
    max: 4
    provision:
      command: [sh, -c, 'cp "$T/store/\$0.db" "\$1/\$0.db"', "{user}", "{dir}"]
      timeout: 5s
    deprovision:
      command: [sh, -c, 'cp "\$1/\$0.db" "$T/store/\$0.db"', "{user}", "{dir}"]
      timeout: 5s
EOF
dir_settings "$CONF" redis "assign_wait: ${WAIT_MS}ms"
redis_aof
at_exit "kill -CONT $REDIS 2>/dev/null || true"
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 2

# login USER: USER is reserved an instance (NAME, on port P), their state
# brought in; redis is paused, and USER logs in: the login is being checked
login() {
    pool_assign "$1"
    wait_log "$LOG" "instance=$NAME hook=provision ok"
    kill -STOP "$REDIS"
    [ "$(app "$P" "login $1")" = "OK state-of-$1" ] || fail "$1 not served"
    wait_log "$LOG" "instance=$NAME state=verifying"
    [ "$(app "$P" "save $1-v2")" = OK ] || fail "$1: save"
}
# ended: the instance is gone and its login still unanswered
ended() {
    wait_log "$LOG" "instance=$NAME exited"
    grep -q "instance=$NAME login user=" "$LOG" && fail "the login was answered with redis paused"
    [ "$(cat "$T/store/$1.db")" = "state-of-$1" ] || fail "stored back before the answer"
}
# stored USER: once redis is back, the login is confirmed, the save stored
stored() {
    kill -CONT "$REDIS"
    wait_log "$LOG" "instance=$NAME login user=$1 confirmed after its end" 30
    wait_log "$LOG" "instance=$NAME stopped" 10
    grep -q "instance=$NAME hook=deprovision ok" "$LOG" || fail "the state was not stored back"
    [ "$(cat "$T/store/$1.db")" = "$1-v2" ] || fail "the store holds: $(cat "$T/store/$1.db")"
}

log "a crash before the login is confirmed: the save is stored back once it is"
login ann
app "$P" crash >/dev/null
ended ann
stored ann

log "a logout and exit before the login is confirmed: the same"
login bob
[ "$(app "$P" logout)" = BYE ] || fail "bob: logout"
ended bob
stored bob

log "a logout line, the application still up: the session ends once the login is confirmed"
login cid
[[ $(app "$P" 'sh echo LOGOUT >/proc/$PPID/fd/1') == OK* ]] || fail "cid: the logout line"
wait_log "$LOG" "instance=$NAME out=\"LOGOUT\""
kill -CONT "$REDIS"
wait_log "$LOG" "instance=$NAME login user=cid provisioned=ahead" 30
wait_log "$LOG" "instance=$NAME stopping why=logout"
wait_log "$LOG" "instance=$NAME stopped" 10
[ "$(cat "$T/store/cid.db")" = cid-v2 ] || fail "the store holds: $(cat "$T/store/cid.db")"

log "redis away past assign_wait: the login cannot be checked, nothing is stored back"
login dee
app "$P" crash >/dev/null
ended dee
wait_log "$LOG" "instance=$NAME: login of dee not verified: directory: .*: nothing stored back" \
    $((WAIT_MS / 1000 + 20))
wait_log "$LOG" "instance=$NAME stopped" 10
grep -q "instance=$NAME hook=deprovision" "$LOG" && fail "a deprovision hook ran"
[ "$(cat "$T/store/dee.db")" = state-of-dee ] || fail "the store holds: $(cat "$T/store/dee.db")"
kill -CONT "$REDIS"

keys() { redis-cli -s "$T/redis.sock" --scan --pattern "t$$:k:fa:*"; }
no_keys() { [ -z "$(keys)" ]; }
wait_until 20 no_keys || fail "sessions left in the directory: $(keys)"
for st in verifying stopping deprovisioning wiping; do
    wait_for metric_is airlock_pool_instances "pool=\"fa\",state=\"$st\"" 0
done
no_zombies "$AL" || fail "zombies: $(ps -o pid,stat,cmd --ppid "$AL")"
stop_clean "$AL" al
log "ok"
