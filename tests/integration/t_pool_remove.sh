#!/bin/bash
# t_pool_remove: a pool that a reload removes ends its sessions as airlock's
# own stop does: each session's state is stored back before the pool is
# gone. A pool that the same reload adds with the removed pool's store and
# ports (the pool renamed) starts once the old one is gone, and its user is
# served the state of the session that the rename ended.
#  - the reload is applied whole (exit 0);
#  - the removed pool's session is stored back (the store has what the
#    session saved), and the store's lock is let go before the new pool
#    takes it;
#  - the new pool starts by itself (no second reload), and serves the user
#    that state;
#  - a pool removed and put back by the next reload, while its sessions
#    still stop (they ignore SIGTERM until stop_grace): the new one starts
#    once the old one is gone; SIGTERM while a pool stops waits for it, and
#    airlock exits 0 (with the sanitizers: nothing leaked);
#  - a pool that stays, moved by the same reload onto the removed pool's
#    store and ports: the reload is whole, the pool keeps its running
#    settings until the removed one is gone, then serves from that store
#    (the state of the session the reload ended) and starts instances on
#    those ports, with no second reload.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run instances as other uids"
pool_setup
pool_state_store
# conf_fa [FAKEAPP_ARGS...]: $CONF with pool fa, its state built in
conf_fa() {
    pool_conf "$CONF" "$P0" "$@" <<EOF
    min_idle: 1
    max: 2
    stop_grace: 2s
    uids: $U0-$((U0 + 2))
    state: {store: $T/store, fetch: ["{user}.db"], store_back: ["{user}.db"], timeout: 30s}
EOF
}
# up: airlock on $CONF, its one idle instance up, dave's session on it
up() {
    airlock_up al run -c "$CONF"
    AL=$LAST_PID
    wait_for settled 1
    P=$(assign_port dave)
}
conf_fa
up
[ "$(app "$P" "login dave")" = "OK state-of-dave" ] || fail "dave not served"
[ "$(app "$P" "save dave-v2")" = OK ] || fail "save"

log "a reload renames pool fa to fb: fa's session is stored back, then fb starts"
sed -i 's/^  - name: fa$/  - name: fb/' "$CONF"
grep -q '^  - name: fb$' "$CONF" || fail "the pool was not renamed in $CONF"
ctl reload >"$T/out" 2>&1 || fail "reload: $(cat "$T/out")"
wait_log "$LOG" "pool=fb: starts once pool=fa, which has its name, store or ports, has stopped"
wait_log "$LOG" "pool=fa: state.store: released $T/store\$"
[ "$(cat "$T/store/dave.db")" = dave-v2 ] || fail "the session was not stored back: $(cat "$T/store/dave.db")"
wait_for metric_is airlock_pool_instances 'pool="fb",state="idle"' 1
grep -n "pool=fa: state.store: released\|pool=fb min_idle" "$LOG" | tail -1 |
    grep -q "pool=fb min_idle" || fail "fb started before fa let its store go"
P=$(assign_port dave fb)
out=$(app "$P" "login dave")
[ "$out" = "OK dave-v2" ] || fail "on fb, dave was served '$out', not the state of the session"
stop_clean "$AL" al

log "a pool removed, and put back while its session still stops"
: >"$LOG"
conf_fa --ignore-term
up
[ "$(app "$P" "login dave")" = "OK dave-v2" ] || fail "dave not served"
[ "$(app "$P" "save dave-v3")" = OK ] || fail "save"
sed -i 's/^  - name: fa$/  - name: fc/' "$CONF"
ctl reload >"$T/out" 2>&1 || fail "reload: $(cat "$T/out")"
conf_fa --ignore-term
ctl reload >"$T/out" 2>&1 || fail "second reload: $(cat "$T/out")"
wait_log "$LOG" "pool=fa: starts once pool=fa, which has its name, store or ports, has stopped"
wait_log "$LOG" "pool=fa removed\$"
wait_for settled 1
[ "$(cat "$T/store/dave.db")" = dave-v3 ] || fail "the session was not stored back: $(cat "$T/store/dave.db")"

log "SIGTERM while a pool stops: airlock waits for it and exits 0"
P=$(assign_port dave)
[ "$(app "$P" "login dave")" = "OK dave-v3" ] || fail "dave not served after the pool came back"
[ "$(app "$P" "save dave-v4")" = OK ] || fail "save"
sed -i 's/^  - name: fa$/  - name: fd/' "$CONF"
ctl reload >"$T/out" 2>&1 || fail "reload: $(cat "$T/out")"
wait_log "$LOG" "pool=fd: starts once pool=fa"
stop_clean "$AL" al
[ "$(cat "$T/store/dave.db")" = dave-v4 ] || fail "the session was not stored back at the stop: $(cat "$T/store/dave.db")"
! grep -q "pool=fd min_idle" "$LOG" || fail "fd started while airlock stopped"

log "a pool that stays moves onto the store and ports of a pool the reload removes"
: >"$LOG"
PK=$(free_range 10)
UK=$(free_uids 3)
mkdir -m 700 "$T/store2"
conf_fa
cat >>"$CONF" <<EOF
  - name: fk
    command: [$FAKEAPP, --port, "{port}"]
    endpoint: "tcp:127.0.0.1:{port}"
    ports: $PK-$((PK + 9))
    dir: $T/inst2
    events: {ready: "^WAITING_LOGIN$", login: "^LOGIN (.+)$", logout: "^LOGOUT$"}
    min_idle: 1
    max: 2
    uids: $UK-$((UK + 2))
    state: {store: $T/store2, fetch: ["{user}.db"], store_back: ["{user}.db"], timeout: 30s}
EOF
up
wait_for metric_is airlock_pool_instances 'pool="fk",state="idle"' 1
[ "$(app "$P" "login dave")" = "OK dave-v4" ] || fail "dave not served"
[ "$(app "$P" "save dave-v5")" = OK ] || fail "save"
# the next config: fa gone, fk on fa's ports and store, where dave's state is
pool_conf "$CONF" "$P0" <<EOF
    min_idle: 1
    max: 2
    uids: $UK-$((UK + 2))
    state: {store: $T/store, fetch: ["{user}.db"], store_back: ["{user}.db"], timeout: 30s}
EOF
sed -i 's/^  - name: fa$/  - name: fk/' "$CONF"
ctl reload >"$T/out" 2>&1 || fail "reload: $(cat "$T/out")"
wait_log "$LOG" "pool=fk: keeps its running settings until pool=fa, which has the store or ports"
wait_log "$LOG" "pool=fa: state.store: released $T/store\$"
wait_log "$LOG" "pool=fk reconfigured"
[ "$(cat "$T/store/dave.db")" = dave-v5 ] || fail "the session was not stored back: $(cat "$T/store/dave.db")"
P=$(assign_port dave fk)
out=$(app "$P" "login dave")
[ "$out" = "OK dave-v5" ] || fail "on fk, dave was served '$out', not the state of the session"
# the instance dave took is replaced on the new ports
wait_log "$LOG" "pool=fk instance=.* starting pid=[0-9]+ port=$P0"
sed -n '/pool=fk reconfigured/,$p' "$LOG" | grep -o "pool=fk instance=.* starting pid=.*" |
    awk -v lo="$P0" -v hi=$((P0 + 49)) '{ sub(/.*port=/, ""); if ($0 + 0 < lo || $0 + 0 > hi) bad = 1 }
        END { exit bad }' || fail "fk started an instance off its new ports"
stop_clean "$AL" al
log "ok"
