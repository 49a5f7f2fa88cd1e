#!/bin/bash
# t_pool_state_drain: at drain_timeout, a session's store-back under way is
# awaited before the directory hears that its instance stopped. dave's
# database in his instance is a FUSE file whose reads are answered 3 s late,
# drain_timeout is 1 s:
#  - a reload that removes (here: renames) the pool: the pool is removed
#    only once dave's store-back has ended; the pool that replaces it then
#    serves dave what was stored. The removal at the deadline cut the
#    store-back off, unheard, and told the directory the instance stopped;
#  - the nodes of a cluster (a redis directory, one store): node n1 stops
#    (SIGTERM) while dave's session runs on it. dave, back at once on node
#    n2, is given an instance only once n1 has stored his session, and is
#    served it. When n1 stopped at the deadline, n2 could serve dave the
#    state from before the session, which the late store-back then
#    overwrote; a connection n1 relays is closed at the deadline, not
#    when the store-back ends;
#  - a second SIGTERM does not await it (logged); a built-in store-back
#    still ends before airlock exits.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to mount a FUSE file"
need redis-server
SLOW_MS=3000
pool_setup
pool_state_store
pool_conf "$CONF" "$P0" <<EOF
    min_idle: 1
    max: 4
    state: {store: $T/store, fetch: ["{user}.db"], store_back: ["{user}.db"], timeout: 10s}
EOF
sed -i -e 's/^drain_timeout: 10s$/drain_timeout: 1s/' \
    -e "s|^  backend: memory\$|&\n  assign_wait: 20s|" "$CONF"
at_exit growfile_umount

CTL=$T/ctl.sock
ctl() { "$AIRLOCK" ctl -s "unix:$CTL" "$@"; }
# slow_session POOL BYTES: dave logs in to an instance of POOL (on the
# airlock of $CTL), whose copy of his database then reads BYTES bytes, 3 s late
slow_session() {
    pool_at "$(assign_port dave "$1")"
    [ "$(app "$P" "login dave")" = "OK $(cat "$T/store/dave.db")" ] || fail "dave's login"
    start growfile "$GROWFILE" "$DIR/dave.db" --says "$2" --holds "$2" \
        --owner "$(stat -c %u:%g "$DIR")" --slow "$SLOW_MS"
    wait_for eval 'findmnt -rn -t fuse.growfile "$DIR/dave.db" >/dev/null'
}

log "a reload removes the pool while dave's store-back runs"
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1
slow_session fa 8
OLD=$NAME
sed -i 's/^  - name: fa$/  - name: fb/' "$CONF"
kill -HUP "$AL"
wait_log "$LOG" "pool=fa: drain_timeout reached" 10
wait_log "$LOG" "pool=fa removed\$" 10
grep -n "instance=$OLD hook=deprovision ok\|pool=fa removed\$" "$LOG" | head -1 |
    has "hook=deprovision ok" || fail "the pool was removed before dave's store-back had ended"
wait_log "$LOG" "pool=fb instance=.* ready" 10
pool_at "$(assign_port dave fb)"
[ "$(app "$P" "login dave")" = "OK $(growfile_reads 8)" ] ||
    fail "dave was not served what was stored: $(cat "$T/store/dave.db")"
[ "$(app "$P" logout)" = BYE ] || fail "dave's logout"
wait_log "$LOG" "instance=$NAME hook=deprovision ok" 10
growfile_umount
stop_clean "$AL" al

log "node n1 stops while dave's store-back runs; dave is back on node n2"
redis_unix
sed -i 's/^  - name: fb$/  - name: fa/' "$CONF"
# node_conf N: node N of the cluster: $T/N.yaml, pool fa on the store, its
# own metrics, control socket $T/N.sock, ports and directory
node_conf() {
    local p
    p=$(free_range 50)
    sed -e "s|127.0.0.1:$MPORT\$|127.0.0.1:$(free_port)|" -e "s|$T/ctl.sock|$T/$1.sock|" \
        -e "s|ports: .*|ports: $p-$((p + 49))|" -e "s|dir: $T/inst\$|dir: $T/inst-$1|" \
        -e "s|^  backend: memory\$|  backend: redis\n  redis: unix:$T/redis.sock\n  redis_password_file: $T/redis.pw\n  node: $1|" \
        "$CONF" >"$T/$1.yaml"
}
node_conf n1
node_conf n2
# n1 relays a connection to a backend that never answers, and never ends
read -r BP RP <<<"$(free_ports 2)"
start silent socat -t 100 "TCP-LISTEN:$BP,reuseaddr,fork" SYSTEM:"sleep 60"
wait_port "$BP"
printf 'relays:\n  - name: stuck\n    listen: tcp:127.0.0.1:%s\n    target: tcp:127.0.0.1:%s\n' \
    "$RP" "$BP" >>"$T/n1.yaml"
airlock_up n1 run -c "$T/n1.yaml"
N1=$LAST_PID
start client socat -t 100 -u "TCP:127.0.0.1:$RP" -
CLIENT=$LAST_PID
wait_log "$T/n1.log" "pool=fa instance=.* ready" 10
CTL=$T/n1.sock
slow_session fa 12
OLD=$NAME
airlock_up n2 run -c "$T/n2.yaml"
N2=$LAST_PID
wait_log "$T/n2.log" "pool=fa instance=.* ready" 10
wait_for eval '[ -n "$(ss -Htn state established "( sport = :$BP )")" ]'
kill -TERM "$N1"
wait_log "$T/n1.log" "drain deadline reached: closing 1 connections" 10
start_ns=$(date +%s%N)
CTL=$T/n2.sock
pool_at "$(assign_port dave)"
ms=$(elapsed_ms "$start_ns")
grep -q "instance=$OLD hook=deprovision ok" "$T/n1.log" ||
    fail "dave was given an instance on n2 ($ms ms after n1's deadline) before n1 had stored his session"
log "dave was given an instance on n2 $ms ms after n1's deadline, once n1 had stored his session"
[ "$(app "$P" "login dave")" = "OK $(growfile_reads 12)" ] ||
    fail "dave, on n2, was not served what n1 stored: $(cat "$T/store/dave.db")"
proc_reap "$N1" 20 || fail "n1 exited with status $?"
grep -n "instance=$OLD hook=deprovision ok\|close relay=stuck .*end=shutdown" "$T/n1.log" | head -1 |
    has "close relay=stuck" || fail "the relayed connection outlived the deadline: $(grep 'relay=stuck' "$T/n1.log")"
wait_exit "$CLIENT" 5
growfile_umount

log "a second SIGTERM does not await the store-back; it still ends before the exit"
start growfile "$GROWFILE" "$DIR/dave.db" --says 16 --holds 16 \
    --owner "$(stat -c %u:%g "$DIR")" --slow "$SLOW_MS"
wait_for eval 'findmnt -rn -t fuse.growfile "$DIR/dave.db" >/dev/null'
kill -TERM "$N2"
wait_log "$T/n2.log" "drain deadline reached: killing .* pool instances; awaiting 1 store-backs" 10
kill -TERM "$N2"
wait_log "$T/n2.log" "second stop signal: 1 store-backs not awaited" 10
proc_reap "$N2" 20 || fail "n2 exited with status $?"
[ "$(cat "$T/store/dave.db")" = "$(growfile_reads 16)" ] ||
    fail "the store-back did not end before the exit: $(cat "$T/store/dave.db")"
growfile_umount
log "ok"
