#!/bin/bash
# t_dir_sentinel: the directory on a redis master with a replica, watched by
# three redis sentinels (down-after-milliseconds 1000, failover-timeout
# 3000), all on loopback. airlock (control socket and metrics) asks the
# sentinels for the master (sentinels:, sentinel_master:) and waits for one
# replica after each assignment (min_replicas_acked: 1).
# Proves: users get assignments through the sentinels' master; after a
# graceful failover (SENTINEL FAILOVER: the old master lives on, demoted
# to a replica) and then after kill -9 of the new master, the directory
# follows each time to the master the sentinels name, says so in one log
# line naming the old and new master and in airlock_dir_failovers_total;
# every assignment acknowledged before a failover is still there after it
# (the ledger: each user gets the same instance again), no instance is held
# by two users, and new users get assignments from the new master.
. "$(dirname "$0")/lib.sh"
need redis-server redis-cli curl
DIRTOOL=$(dirname "$AIRLOCK")/tests/dirtool
[ -x "$DIRTOOL" ] || fail "build $DIRTOOL first"
export DIRTOOL_PORT_BASE=$(free_range 8)
read -r P1 P2 S1 S2 S3 M <<<"$(free_ports 6)"
NAME=t_dir_sentinel_$$

declare -A REDIS_PID
redis_node() { # PORT [replicaof PORT]
    # --dir: a replica's full sync writes dump.rdb there (not in the cwd,
    # where the next redis-server started would load it)
    start "redis-$1" redis-server --port "$1" --bind 127.0.0.1 --dir "$T" --save '' \
        --appendonly no --dbfilename "dump-$1.rdb" --repl-diskless-sync-delay 0 \
        ${2:+--replicaof 127.0.0.1 $2}
    REDIS_PID[$1]=$LAST_PID
    # its own line: not another test's server on a port taken since free_ports
    wait_log "$T/redis-$1.log" 'Ready to accept connections' 10 "$LAST_PID"
}
redis_node "$P1"
redis_node "$P2" "$P1"
link_up() { redis-cli -p "$1" INFO replication | has 'master_link_status:up'; }
# master PORT has a replica that acknowledges its writes (what WAIT asks).
# Twice: right after a full sync a replica acknowledges what its snapshot
# holds, but a write made after it only once the master streams to it
# (after the replica's first REPLCONF ACK, up to a second later)
probe() { [ "$(printf 'SET t_dir_sentinel_probe 1\nWAIT 1 200\n' | redis-cli -p "$1" | tail -1)" = 1 ]; }
replica_acks() { probe "$1" && probe "$1"; }
wait_for link_up "$P2"
for s in "$S1" "$S2" "$S3"; do
    cat >"$T/sentinel-$s.conf" <<CONF
port $s
bind 127.0.0.1
dir $T
sentinel monitor $NAME 127.0.0.1 $P1 2
sentinel down-after-milliseconds $NAME 1000
sentinel failover-timeout $NAME 3000
sentinel parallel-syncs $NAME 1
CONF
    start "sentinel-$s" redis-server "$T/sentinel-$s.conf" --sentinel
    wait_log "$T/sentinel-$s.log" "\\+monitor master $NAME" 10 "$LAST_PID"
done
# sentinel S knows FIELD of the master to be VALUE
sentinel_says() {
    redis-cli -p "$1" SENTINEL master "$NAME" | awk -v k="$2" 'p == 1 { print } $0 == k { p++ }' |
        has -x "$3"
}
# the three have found each other and the replica (they can agree on a failover)
for s in "$S1" "$S2" "$S3"; do
    wait_until 30 sentinel_says "$s" num-other-sentinels 2
    wait_until 30 sentinel_says "$s" num-slaves 1
done

cat >"$T/airlock.yaml" <<YAML
metrics: tcp:127.0.0.1:$M
control: unix:$T/ctl.sock
directory:
  backend: redis
  sentinels: [tcp:127.0.0.1:$S1, tcp:127.0.0.1:$S2, tcp:127.0.0.1:$S3]
  sentinel_master: $NAME
  min_replicas_acked: 1
  reserve_timeout: 5m
  pending_share: 100
YAML
"$AIRLOCK" check -c "$T/airlock.yaml" >/dev/null || fail "airlock check refused the config"
airlock_up air run -c "$T/airlock.yaml"
AIR=$LAST_PID
wait_log "$T/air.log" "directory: connected to redis master 127.0.0.1:$P1\$"
ctl() { "$AIRLOCK" ctl -s "unix:$T/ctl.sock" "$@"; }
export DIRTOOL_SENTINELS="tcp:127.0.0.1:$S1 tcp:127.0.0.1:$S2 tcp:127.0.0.1:$S3"
"$DIRTOOL" register "sentinels:$NAME" airlock: 8 2>"$T/register.log" ||
    fail "dirtool register through the sentinels: $(cat "$T/register.log")"

# ledger USER...: assigns each user and records the answer (acknowledged)
ledger() {
    local u a
    for u in "$@"; do
        a=$(ctl assign p "$u") || fail "assign $u: $(ctl assign p "$u" 2>&1)"
        echo "$u ${a%% *}" >>"$T/ledger"
    done
}
# every acknowledged assignment is still there (sticky), and no instance
# is held by two users
ledger_holds() {
    local u inst
    while read -r u inst; do
        a=$(ctl assign p "$u") || fail "after the failover, assign $u failed"
        [ "${a%% *}" = "$inst" ] || fail "$u had $inst before the failover, ${a%% *} after"
    done <"$T/ledger"
    [ "$(awk '{ print $2 }' "$T/ledger" | sort | uniq -d)" = "" ] ||
        fail "an instance held by two users: $(sort -k2 "$T/ledger")"
}
failovers_are() { [ "$(curl -sf "http://127.0.0.1:$M/metrics" |
    awk '$1 == "airlock_dir_failovers_total" { print $2 }')" = "$1" ]; }

ledger alice bob carol
log "ledger before: $(tr '\n' ' ' <"$T/ledger")"
failovers_are 0 || fail "a failover counted before any"

log "a graceful failover: SENTINEL FAILOVER; the old master becomes a replica"
redis-cli -p "$S1" SENTINEL FAILOVER "$NAME" | has -x OK || fail "SENTINEL FAILOVER refused"
wait_log "$T/air.log" "directory: redis master 127.0.0.1:$P1 failed over to 127.0.0.1:$P2 \\(sentinel master $NAME\\)" 30 "$AIR"
wait_for failovers_are 1
# min_replicas_acked: 1: answers wait for the demoted master to replicate
# the new one
wait_until 60 replica_acks "$P2"
ledger_holds
ledger dave erin

log "kill -9 the master"
kill -9 "${REDIS_PID[$P2]}"
wait_log "$T/air.log" "directory: redis master 127.0.0.1:$P2 failed over to 127.0.0.1:$P1 \\(sentinel master $NAME\\)" 30 "$AIR"
wait_for failovers_are 2
log "no replica left: nothing is acknowledged (-EIO) until one is back"
if ctl assign p zed 2>"$T/zed.err"; then fail "assigned without a replica to acknowledge"; fi
grep -q 'Input/output error' "$T/zed.err" || fail "zed: $(cat "$T/zed.err")"
wait_log "$T/air.log" 'a write reached 0 of 1 replicas within 500 ms: answered as failed'
redis_node "$P2" "$P1"
wait_until 60 replica_acks "$P1"
ledger_holds
ledger frank
ledger_holds
redis-cli -p "$P1" ROLE | sed -n 1p | has -x master || fail "127.0.0.1:$P1 is not the master"
log "ledger after: $(tr '\n' ' ' <"$T/ledger")"
grep -q 'redis unreachable' "$T/air.log" || fail "the outage was not logged"
running "$AIR" || fail "airlock died"
echo PASS
