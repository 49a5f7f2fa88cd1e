#!/bin/bash
# t_dir_nodeless: a pool run without a node name on a redis directory
# (docs/directory.md) is one airlock process's, as a node's name is.
# Proves:
#   - kill -9 of its airlock: restarted, it forgets its earlier run's
#     instances (idle ones that no longer listen would be handed out; the
#     sessions of active ones would hold their users' keys until
#     session_ttl); a user of the earlier run is served by a live instance;
#   - a second airlock running the same pool without a node name, while the
#     first runs, takes nothing: it reports none of its instances (named
#     like the first one's, they would overwrite them) and forgets none,
#     and says why; a router-like airlock on the same redis without pools
#     is not held back; once the first stops, the second takes the pool.
. "$(dirname "$0")/lib.sh"
need redis-server redis-cli
[ -x "$FAKEAPP" ] || fail "build $FAKEAPP first"

redis_unix
pool_setup
pool_conf "$CONF" "$P0" <<'EOC'
    min_idle: 2
    max: 6
EOC
dir_settings "$CONF" redis "reserve_timeout: 1m"
rcli() { redis-cli -s "$T/redis.sock" "$@"; }
names() { rcli SMEMBERS "t$$:pool:fa" | sort; }
started() { sed -n 's/.* instance=\(fa-[0-9]*\) starting pid=.*/\1/p' "$1" | sort -u; }
login() { [ "$(app "$(assign_port "$1")" "login $1")" = NOSTATE ] || fail "login $1"; }

airlock_up al run -c "$CONF"
PID=$LAST_PID
wait_until 20 settled 2 || fail "the pool did not settle at 2 idle instances"
login alice
login bob
login carol
wait_until 20 settled 2 || fail "the pool did not settle again"
log "before: $(echo $(names))"
[ "$(names | wc -l)" = 5 ] || fail "5 instances expected: $(echo $(names))"

log "kill -9, restarted: the earlier run's instances are forgotten"
pids=$(sed -n 's/.* starting pid=\([0-9]*\) .*/\1/p' "$T/al.log")
kill -9 "$PID"
gone() {
    local p
    for p in $pids; do ! kill -0 "$p" 2>/dev/null || return 1; done
}
wait_for gone || fail "instances of the killed airlock are still running"
airlock_up al2 run -c "$CONF"
AL2_PID=$LAST_PID
wait_log "$T/al2.log" "directory: pool fa: 5 instances of its earlier run forgotten" 15
only_new() { [ -n "$(names)" ] && [ -z "$(comm -23 <(names) <(started "$T/al2.log"))" ]; }
wait_for only_new || fail "stale instances: $(comm -23 <(names) <(started "$T/al2.log"))"
[ -z "$(rcli GET "t$$:k:fa:carol")" ] || fail "carol's key still names an instance of the earlier run"
wait_until 20 settled 2 || fail "the restarted pool did not settle"
login carol
log "now: $(echo $(names)); carol is served by a live instance"

log "a second airlock running pool fa without a node name: it takes nothing"
kept=$(rcli GET "t$$:k:fa:carol")
[ -n "$kept" ] || fail "no key of carol's"
P1=$(free_range 50)
sed -e "s|$T/ctl.sock|$T/ctl2.sock|" -e "s|dir: $T/inst|dir: $T/inst2|" \
    -e "s|ports: $P0-$((P0 + 49))|ports: $P1-$((P1 + 49))|" \
    -e "s|tcp:127.0.0.1:$MPORT|tcp:127.0.0.1:$(free_port)|" "$CONF" >"$T/second.yaml"
grep -q "ports: $P1-" "$T/second.yaml" || fail "second.yaml has not its own ports"
airlock_up second run -c "$T/second.yaml"
SECOND_PID=$LAST_PID
wait_log "$T/second.log" \
    "redis unreachable why=\"pool fa \(run without a node name\) is held by another airlock process\"" 15
wait_log "$T/second.log" "instance=fa-[0-9]* ready" 15
sleep 1 # its reports, had any gone out, would be in redis by now
! grep -q "instances of its earlier run forgotten" "$T/second.log" ||
    fail "the second airlock forgot the first one's instances"
[ "$(rcli GET "t$$:k:fa:carol")" = "$kept" ] || fail "carol's session on $kept is gone"
for n in $(names); do
    ep=$(rcli HGET "t$$:i:fa:$n" ep)
    port=${ep##*:}
    [ "$port" -ge "$P0" ] && [ "$port" -le $((P0 + 49)) ] ||
        fail "$n has the second airlock's endpoint $ep"
done
log "the first one's instances stand: $(echo $(names))"

log "an airlock without pools on the same redis is not held back"
cat >"$T/router.yaml" <<EOF
control: unix:$T/ctl3.sock
directory:
  backend: redis
  redis: unix:$T/redis.sock
  redis_password_file: $T/redis.pw
  prefix: "t$$:"
EOF
airlock_up router run -c "$T/router.yaml"
got=$("$AIRLOCK" ctl -s "unix:$T/ctl3.sock" assign fa dave) || fail "assign through the third airlock"
port=${got##*:}
[ "$port" -ge "$P0" ] && [ "$port" -le $((P0 + 49)) ] || fail "dave was given $got"
[ "$(app "$port" "login dave")" = NOSTATE ] || fail "login dave"

log "the first stops: the second takes pool fa"
stop_clean "$AL2_PID" al2
second_runs() {
    local n
    [ -n "$(names)" ] || return 1
    for n in $(names); do
        [ "$(rcli HGET "t$$:i:fa:$n" ep | sed 's/.*://')" -ge "$P1" ] || return 1
    done
}
wait_until 20 second_runs || fail "after the first, the directory lists $(echo $(names))"
log "now the second's: $(echo $(names))"
log "ok"
