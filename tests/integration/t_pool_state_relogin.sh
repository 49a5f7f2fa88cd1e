#!/bin/bash
# t_pool_state_relogin: a user who comes back while the state of their last
# session is still being stored back gets that state, never the one before
# it (which the next store-back would then write over: the session's work
# lost). The directory keeps the user's key until the pool reports the
# instance stopped, after the store-back, so the user's next assign waits
# (within assign_wait) for it. The instances ignore SIGTERM, so a drained
# session's process lives its stop_grace (3 s) and the store-back waits
# that long:
#  - built-in provisioning (state:): a drained session and a logout, the
#    user back at once, is served the saved state (after a logout the
#    application exits by itself and the store-back usually ends before the
#    user is back: the common path, kept so that the wait does not break it);
#  - another user is not held up by that store-back (served within 2 s);
#  - provision and deprovision hooks (the deprovision hook takes 1 s): the
#    same after a logout;
#  - the redis directory: a drained session, the user back at once (the
#    stop rings the doorbell: the waiting assign goes on);
#  - redis restarted empty (no persistence) while a session drains: the
#    resync holds the user's key again, the user waits all the same.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run instances as other uids"
pool_setup
pool_state_store

# up [hooks|redis]: airlock with pool fa of three instances, state: built
# in, or (hooks) the same by provision and deprovision hooks that copy with
# cp (the deprovision after a second), or (redis) on the redis directory;
# the instances' stop_grace is $GRACE (3s)
up() {
    local prov
    if [ "${1:-}" = hooks ]; then
        prov="    provision: {command: [sh, -c, 'cp $T/store/\$0.db \$1/\$0.db.t && chown --reference=\$1 \$1/\$0.db.t && mv \$1/\$0.db.t \$1/\$0.db', '{user}', '{dir}']}
    deprovision: {command: [sh, -c, 'sleep 1 && cp \$1/\$0.db $T/store/\$0.db.t && mv $T/store/\$0.db.t $T/store/\$0.db', '{user}', '{dir}']}"
    else
        prov="    state: {store: $T/store, fetch: [\"{user}.db\"], store_back: [\"{user}.db\"], timeout: 30s}"
    fi
    pool_conf "$CONF" "$P0" --ignore-term <<EOF
    min_idle: 2
    max: 3
    stop_grace: ${GRACE:-3s}
    uids: $U0-$((U0 + 2))
$prov
EOF
    sed -i "s|^  backend: memory\$|&\n  assign_wait: 10s|" "$CONF" # a slow machine's store-back
    [ "${1:-}" != redis ] ||
        sed -i "s|^  backend: memory\$|  backend: redis\n  redis: unix:$T/redis.sock\n  redis_password_file: $T/redis.pw\n  prefix: \"relogin$$:\"|" "$CONF"
    airlock_up al run -c "$CONF"
    AL=$LAST_PID
    wait_for settled 2
}

# session USER TEXT: USER logs in on the instance reserved ($P) and saves TEXT
session() {
    pool_assign "$1"
    out=$(app "$P" "login $1")
    [[ $out == OK* ]] || fail "$1 not served: $out"
    [ "$(app "$P" "save $2")" = OK ] || fail "save $2"
}

# back USER WANT: USER's next login, at once, on another instance: served WANT
back() {
    local t0 old=$NAME out
    t0=$(date +%s%N)
    pool_assign "$1"
    [ "$NAME" != "$old" ] || fail "$1 was given the instance of the session that ends"
    out=$(app "$P" "login $1" 20)
    [ "$out" = "OK $2" ] || fail "$1 came back and was served '$out', not '$2'"
    log "$1 waited $((($(date +%s%N) - t0) / 1000000)) ms for the store-back"
}

log "state: a drained session, its user back within the grace; another user is not held up"
up
session dave dave-v2
old=$NAME
ctl drain "fa/$NAME" >/dev/null || fail "drain fa/$NAME"
t0=$(date +%s%N)
port=$(assign_port frank)
[ "$(app "$port" "login frank")" = "OK state-of-frank" ] || fail "frank not served"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 2000 ] || fail "frank waited $ms ms behind dave's store-back"
NAME=$old
back dave dave-v2
log "state: a logout, its user back within the grace"
session erin erin-v2
[ "$(app "$P" logout)" = BYE ] || fail "logout"
back erin erin-v2
stop_clean "$AL" al

log "hooks: a logout, its user back within the grace"
: >"$LOG"
up hooks
session dave dave-v3
[ "$(app "$P" logout)" = BYE ] || fail "logout"
back dave dave-v3
stop_clean "$AL" al

log "redis directory: a drained session, its user back within the grace"
need redis-server redis-cli
redis_unix
REDIS=$LAST_PID
: >"$LOG"
up redis
session dave dave-v4
ctl drain "fa/$NAME" >/dev/null || fail "drain fa/$NAME"
back dave dave-v4
stop_clean "$AL" al

log "redis restarted empty while a session drains: the resync holds its user again"
: >"$LOG"
GRACE=8s up redis
session dave dave-v5
ctl drain "fa/$NAME" >/dev/null || fail "drain fa/$NAME"
wait_for eval '[ "$(redis-cli -s "$T/redis.sock" HGET "relogin$$:i:fa:$NAME" skey)" = dave ]'
stop "$REDIS" || true
redis_unix
REDIS=$LAST_PID
wait_log "$LOG" 'instances reported again to redis'
# the one node has reported again: end the hold a redis that lost its data
# puts on keys it does not know (14 s, for nodes not back yet; longer than
# assign_wait here), as an operator who knows every node is back may
redis-cli -s "$T/redis.sock" DEL "relogin$$:recovering" >/dev/null
! grep -q "instance=$NAME stopped" "$LOG" || fail "$NAME stopped before the resync: nothing to hold"
back dave dave-v5
stop_clean "$AL" al
log "ok"
