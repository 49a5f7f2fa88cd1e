#!/bin/bash
# t_pool_state_lock: one pool of one airlock per state store (an exclusive
# flock of the store directory, taken when the pool starts, held for its
# life):
#  - a second airlock whose pool has the store of a running one does not
#    start (it says so) and sweeps nothing: the temporary a store-back of
#    the first one may be writing stays;
#  - a config with two pools on one store is refused (airlock check);
#  - a reload that adds a pool on the running pool's store under another
#    path (a bind mount) does not start it; the running pool keeps it;
#  - a reload that moves the pool to another store releases the first one
#    (logged), which a second airlock then takes (and sweeps);
#  - a reload moving the pool to a store another airlock holds keeps the
#    running store;
#  - once an airlock stopped, another one takes its store;
#  - the nodes of one cluster (a redis directory, node:) share a store and
#    do not sweep it; an airlock that is not a node is refused on it.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to bind-mount a store"
pool_setup
need redis-server
S=$T/store
mkdir -m 0700 "$S" "$T/store3"
mkdir "$T/store-bind"
mount --bind "$S" "$T/store-bind" || skip "cannot bind-mount"
at_exit "umount -l $(printf %q "$T/store-bind")"
tmp=.dave.db.0123456789abcdef
declare -A NODE_PID=()
pool_conf "$CONF" "$P0" <<EOF
    min_idle: 1
    state:
      store: $S
      fetch: ["{user}.db"]
      store_back: ["{user}.db"]
EOF
# CONF2: another airlock's pool fb (its own metrics, control socket,
# ports, directory) on the store $S
MPORT2=$(free_port)
P2=$(free_range 50)
sed -e "s|127.0.0.1:$MPORT\$|127.0.0.1:$MPORT2|" -e "s|$T/ctl.sock|$T/ctl2.sock|" \
    -e "s|name: fa|name: fb|" -e "s|ports: .*|ports: $P2-$((P2 + 49))|" \
    -e "s|dir: $T/inst\$|dir: $T/inst2|" "$CONF" >"$T/pool2.yaml"
CONF2=$T/pool2.yaml

airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_log "$LOG" "pool=fa: state.store: removed 0 temporary files left in $S\$"
printf 'in flight\n' >"$S/$tmp"

log "a second airlock on the store does not start, and sweeps nothing"
rc=0
timeout 60 "$AIRLOCK" run -c "$CONF2" >"$T/al2.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "the second airlock: status $rc: $(tail -5 "$T/al2.log")"
has "pool=fb: state.store: $S is in use by another pool (of this airlock or another process): one pool per store" <"$T/al2.log" ||
    fail "no reason given: $(tail -5 "$T/al2.log")"
[ -e "$S/$tmp" ] || fail "the second airlock swept the first one's temporary"

log "a config with two pools on one store is refused"
cp "$CONF" "$T/two.yaml"
sed -n '/^  - name: fb$/,$p' "$CONF2" >>"$T/two.yaml"
rc=0
"$AIRLOCK" check -c "$T/two.yaml" >"$T/check.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "two pools on one store accepted"
has "pools\[1\]\.state\.store: expected a store of its own; pools\[0\] uses $S (one pool per store)" <"$T/check.out" ||
    fail "not said: $(cat "$T/check.out")"

log "a reload adding a pool on the store under another path does not start it"
cp "$CONF" "$T/pool.yaml.1"
sed -n '/^  - name: fb$/,$p' "$CONF2" | sed "s|store: $S\$|store: $T/store-bind|" >>"$CONF"
kill -HUP "$AL"
wait_log "$LOG" "pool=fb: state.store: $T/store-bind is in use by another pool"
wait_log "$LOG" "pool=fb: cannot start"
[ -e "$S/$tmp" ] || fail "the added pool swept the store"

log "a reload moving the pool to another store releases the first one"
sed "s|store: $S\$|store: $T/store3|" "$T/pool.yaml.1" >"$CONF"
kill -HUP "$AL"
wait_log "$LOG" "pool=fa: state.store: released $S\$"
airlock_up al2 run -c "$CONF2"
AL2=$LAST_PID
wait_log "$T/al2.log" "pool=fb: state.store: removed 1 temporary files left in $S\$"
[ ! -e "$S/$tmp" ] || fail "the store's new airlock did not sweep it"

log "a reload moving the pool to a store another airlock holds keeps the running one"
sed "s|store: $T/store3\$|store: $S|" -i "$CONF"
kill -HUP "$AL"
wait_log "$LOG" "pool=fa: state.store: $S is in use by another pool .*; sessions keep the running provisioning"

log "once the first airlock stopped, another one takes its store"
stop_clean "$AL" al
sed -e "s|$T/ctl2.sock|$T/ctl.sock|" -e "s|name: fb|name: fc|" -e "s|store: $S\$|store: $T/store3|" \
    -e "s|127.0.0.1:$MPORT2\$|127.0.0.1:$MPORT|" -e "s|dir: $T/inst2\$|dir: $T/inst3|" \
    -e "s|ports: .*|ports: $P0-$((P0 + 49))|" "$CONF2" >"$T/pool3.yaml"
airlock_up al3 run -c "$T/pool3.yaml"
AL3=$LAST_PID
wait_log "$T/al3.log" "pool=fc: state.store: removed 0 temporary files left in $T/store3\$"
stop_clean "$AL3" al3
stop_clean "$AL2" al2

log "the nodes of a cluster share a store; an airlock that is not a node is refused on it"
redis_unix
mkdir -m 0700 "$T/store4"
printf 'in flight\n' >"$T/store4/$tmp"
# node_conf FILE NAME [NODE]: pool fb on $T/store4, its own metrics, control
# socket, ports and directory; with NODE a node of the cluster (redis)
node_conf() {
    local m p
    m=$(free_port)
    p=$(free_range 50)
    sed -e "s|127.0.0.1:$MPORT2\$|127.0.0.1:$m|" -e "s|$T/ctl2.sock|$T/ctl-$2.sock|" \
        -e "s|ports: .*|ports: $p-$((p + 49))|" -e "s|dir: $T/inst2\$|dir: $T/inst-$2|" \
        -e "s|store: $S\$|store: $T/store4|" "$CONF2" >"$1"
    [ -z "${3:-}" ] || sed -i "s|^  backend: memory\$|  backend: redis\n  redis: unix:$T/redis.sock\n  redis_password_file: $T/redis.pw\n  node: $3|" "$1"
}
for n in n1 n2; do
    node_conf "$T/$n.yaml" "$n" "$n"
    airlock_up "$n" run -c "$T/$n.yaml"
    NODE_PID[$n]=$LAST_PID
    wait_log "$T/$n.log" "pool=fb: state.store: shared by the nodes of a cluster, not swept"
done
[ -e "$T/store4/$tmp" ] || fail "a node swept the store the other nodes write"
node_conf "$T/alone.yaml" alone
rc=0
timeout 60 "$AIRLOCK" run -c "$T/alone.yaml" >"$T/alone.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "an airlock that is not a node: status $rc: $(tail -5 "$T/alone.log")"
has "pool=fb: state.store: $T/store4 is in use by another pool" <"$T/alone.log" ||
    fail "no reason given: $(tail -5 "$T/alone.log")"
for n in n1 n2; do stop_clean "${NODE_PID[$n]}" "$n"; done
log ok
