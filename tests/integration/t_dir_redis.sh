#!/bin/bash
# t_dir_redis: the session directory on a real redis-server (unix socket in
# the test's directory). The behaviour suite (test_dir) passes on it as it
# does on the memory backend, including a second handle seeing the first's
# reports and drains; two dirtool processes of two threads each race for a
# pool of two instances with 4,000 new keys and never get one instance for
# two keys at once (a ledger in redis, SET NX, proves it), and the same race
# between four threads on the memory backend; while redis is down every
# assign fails (-ENOTCONN: the tool's assign_wait is 0, nothing to wait
# for it in) within 1.5 s, and once a new, empty redis is back
# the directory reports its pool's instance again by itself (the pool
# reported it once, before the outage), knows the data was lost (a new key
# waits, -EINPROGRESS, for the nodes to report their sessions again: P
# recovering) and assigns succeed again once that is over. Another
# process can make an instance active only for the key it is reserved for;
# an assignment picks among the idle instances at random (not the same
# first one of a small set every time).
. "$(dirname "$0")/lib.sh"
need redis-server
BIN=$(dirname "$AIRLOCK")
TEST_DIR=$BIN/tests/test_dir
DIRTOOL=$BIN/tests/dirtool
[ -x "$TEST_DIR" ] && [ -x "$DIRTOOL" ] || fail "build $TEST_DIR and $DIRTOOL first"
SOCK=$T/redis.sock

redis_up() {
    start redis redis-server --port 0 --unixsocket "$SOCK" --save '' --appendonly no
    REDIS_PID=$LAST_PID
    wait_for unix_up "$SOCK"
}
redis_up

log "the behaviour suite against redis"
AIRLOCK_TEST_REDIS=unix:$SOCK "$TEST_DIR" >"$T/suite.log" 2>&1 || {
    cat "$T/suite.log" >&2
    fail "test_dir failed on redis"
}
grep -q '\[  PASSED  \] 22 test' "$T/suite.log" || fail "test_dir did not run all cases on redis"
grep -q 'SKIPPED' "$T/suite.log" && fail "a case was skipped on redis"

log "two processes race for two instances with 4000 new keys"
"$DIRTOOL" register "unix:$SOCK" race: 2 2>>"$T/dirtool.log"
# each reports what it won as the instance's pool would: a node of its own
# (a pool run without a node name is one process's)
DIRTOOL_NODE=a "$DIRTOOL" race "unix:$SOCK" race: a 1000 2 >"$T/a.out" 2>>"$T/dirtool.log" &
A=$!
DIRTOOL_NODE=b "$DIRTOOL" race "unix:$SOCK" race: b 1000 2 >"$T/b.out" 2>>"$T/dirtool.log" || {
    grep -m5 VIOLATION "$T/dirtool.log" >&2
    fail "process b: $(cat "$T/b.out")"
}
wait "$A" || { grep -m5 VIOLATION "$T/dirtool.log" >&2; fail "process a: $(cat "$T/a.out")"; }
log "a: $(cat "$T/a.out"); b: $(cat "$T/b.out")"
for f in "$T/a.out" "$T/b.out"; do
    # both must have won instances and lost races (there was contention)
    grep -Eq 'assigned=[1-9][0-9]* none_free=[1-9]' "$f" || fail "no contention: $(cat "$f")"
done

log "four threads race on the memory backend"
"$DIRTOOL" race memory race: m 1000 4 2 >"$T/m.out" 2>>"$T/dirtool.log" ||
    fail "memory race: $(cat "$T/m.out")"
grep -Eq 'assigned=[1-9][0-9]* none_free=[1-9]' "$T/m.out" || fail "no contention: $(cat "$T/m.out")"

log "activation from another process: only for the key the instance is reserved for"
"$DIRTOOL" register "unix:$SOCK" act: 2 2>>"$T/dirtool.log"
[ "$("$DIRTOOL" activate "unix:$SOCK" act: i0 mallory 2>>"$T/dirtool.log")" = "refused -" ] ||
    fail "an idle instance was activated"
inst=$("$DIRTOOL" assign "unix:$SOCK" act: alice 2>>"$T/dirtool.log")
[ "$("$DIRTOOL" activate "unix:$SOCK" act: "$inst" bob 2>>"$T/dirtool.log")" = "refused alice" ] ||
    fail "alice's reservation was activated for bob"
[ "$("$DIRTOOL" activate "unix:$SOCK" act: "$inst" alice 2>>"$T/dirtool.log")" = active ] ||
    fail "alice's reservation was not activated for her"
[ "$("$DIRTOOL" assign "unix:$SOCK" act: alice 2>>"$T/dirtool.log")" = "$inst" ] || fail "not sticky"

log "an assignment picks an idle instance at random, not the same one every time"
# 40 times: six instances reported idle, one key assigned; the instance it
# got is counted (at random: all six about equally; three or fewer distinct
# in 40 draws has a chance below 1e-10)
for i in $(seq 40); do
    "$DIRTOOL" register "unix:$SOCK" pick: 6 2>>"$T/dirtool.log"
    "$DIRTOOL" assign "unix:$SOCK" pick: "key$i" >>"$T/picks" 2>>"$T/dirtool.log" ||
        fail "assign key$i: $(tail -1 "$T/picks")"
done
sort "$T/picks" | uniq -c | tr '\n' ';'
echo
distinct=$(sort -u "$T/picks" | wc -l)
[ "$distinct" -ge 4 ] || fail "40 assignments went to $distinct instances of 6"

log "redis goes away and comes back"
start outage "$DIRTOOL" outage "unix:$SOCK" out: 6
OUT=$LAST_PID
wait_log "$T/outage.log" '^[0-9]+ 0 [0-9]+$'
kill "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null || true
sleep 2
redis_up
# the wait for the nodes (14 s) cut short: the test's one process reported already
wait_log "$T/outage.log" '^[0-9]+ -115 [0-9]+$' 10 "$OUT"
redis-cli -s "$SOCK" DEL "out:recovering" >/dev/null
wait_exit "$OUT" 15
[ "$EXIT_STATUS" = 0 ] || { cat "$T/outage.log" >&2; fail "dirtool outage exited with $EXIT_STATUS"; }
grep -E '^[0-9]+ -?[0-9]+ [0-9]+$' "$T/outage.log" >"$T/outage.txt"
cat "$T/outage.txt" | tr '\n' ';'
echo
down=$(awk '$2 == -107' "$T/outage.txt" | wc -l)
[ "$down" -ge 3 ] || fail "expected -ENOTCONN while redis was down, got $down"
slow=$(awk '$2 == -107 && $3 > 1500' "$T/outage.txt" | wc -l)
[ "$slow" = 0 ] || fail "$slow assigns took more than 1.5 s to fail"
# after the outage: a new key waits while the nodes report again, then
# succeeds (the directory reported i0 to the new server)
awk '$2 == -107 { seen = 1 } seen && $2 == -115 { held = 1 } held && $2 == 0 { ok = 1 }
    END { exit !ok }' "$T/outage.txt" || fail "no assign held, then succeeded, after redis came back"
grep -q 'redis unreachable' "$T/outage.log" || fail "the outage was not logged"
grep -c 'connected to redis' "$T/outage.log" | has '^[2-9]' || fail "no reconnect logged"
grep -q 'directory: 1 instances reported again to redis' "$T/outage.log" || fail "no resync logged"
echo PASS
