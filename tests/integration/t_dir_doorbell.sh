#!/bin/bash
# t_dir_doorbell: the redis directory's doorbell (docs/directory.md). Node a
# runs pool fa (fakeapps) on a redis directory; node b, without a pool,
# reserves its instances (ctl assign), as a router on another machine does.
# Proves:
#   - every airlock subscribes its doorbell (PUBSUB NUMSUB of PREFIX bell:NODE
#     and PREFIX bell) and says so in airlock_dir_doorbell;
#   - an instance that becomes idle rings PREFIX bell, a reservation rings
#     the owner's PREFIX bell:a (a subscriber of the test hears both);
#   - node a picks reservations up at a ring, not only at its tick: of ten,
#     airlock_dir_doorbell_changes_total counts some (the tick, every 100
#     ms, may take one first, never all ten), and each reaches its
#     provisioning hook;
#   - a doorbell connection the server drops is said in the log and
#     subscribed again; reservations reach the pool meanwhile (the tick);
#   - an ACL user without the channels (resetchannels; Redis 7 default):
#     reservations work as before (the scripts' PUBLISH fails quietly),
#     airlock_dir_doorbell is 0 and one warning says that changes come at
#     the tick.
. "$(dirname "$0")/lib.sh"
need redis-server redis-cli curl
[ -x "$FAKEAPP" ] || fail "build $FAKEAPP first"

P="t_dir_doorbell$$:"
redis_unix
rcli() { redis-cli -s "$T/redis.sock" "$@"; }
subscribers() { rcli PUBSUB NUMSUB "$1" | sed -n 2p; }
# rang CHANNEL: the test's subscriber got a message on CHANNEL (redis-cli
# prints each reply's elements on lines of their own: message, channel, payload)
rang() { awk -v ch="$1" 'prev == "message" && $0 == ch { found = 1 } { prev = $0 } END { exit !found }' "$T/rings"; }

# a subscriber of the test, on both channels, from before any airlock
rcli SUBSCRIBE "${P}bell" "${P}bell:a" >"$T/rings" 2>"$T/rings.err" &
SUB=$!
at_exit "kill $SUB 2>/dev/null || true"
wait_until 10 eval '[ "$(subscribers "${P}bell")" = 1 ]' || fail "the test's subscriber is not up"

# node NAME [YAML...]: the airlock of node NAME ($T/NAME.yaml, $T/NAME.log,
# control socket $T/NAME.sock, metrics on $T/NAME.metrics), with YAML
# added to its directory: block
node() {
    local name=$1
    shift
    {
        cat <<EOF
log_level: debug
control: unix:$T/$name.sock
metrics: unix:$T/$name.metrics
directory:
  backend: redis
  redis: unix:$T/redis.sock
  redis_password_file: $T/redis.pw
  prefix: "$P"
  node: $name
  reserve_timeout: 1m
  pending_share: 100
  max_pending_per_client: 0
EOF
        printf '%s\n' "$@"
    } >"$T/$name.yaml"
}
ctl() { "$AIRLOCK" ctl -s "unix:$T/$1.sock" "${@:2}"; }
dir_metric() {
    curl -sf --unix-socket "$T/$1.metrics" http://x/metrics | awk -v k="$2" '$1 == k { print $2 }'
}

PA=$(free_range 16)
node a "pools:
  - name: fa
    command: [$FAKEAPP, --port, \"{port}\"]
    endpoint: \"tcp:127.0.0.1:{port}\"
    ports: $PA-$((PA + 15))
    dir: $T/inst-a
    min_idle: 3
    max: 14
    events:
      ready: \"^WAITING_LOGIN\$\"
      login: \"^LOGIN (.+)\$\"
      logout: \"^LOGOUT\$\"
    provision:
      command: [/bin/sh, -c, \"echo fetched {user} for {instance}\"]"
node b
for n in a b; do airlock_up "$n" run -c "$T/$n.yaml"; done

log "both airlocks subscribe their doorbells"
wait_until 10 eval '[ "$(subscribers "${P}bell")" = 3 ]' ||
    fail "not three subscribers of ${P}bell: $(subscribers "${P}bell")"
[ "$(subscribers "${P}bell:a")" = 2 ] || fail "not two subscribers of ${P}bell:a"
[ "$(subscribers "${P}bell:b")" = 1 ] || fail "not one subscriber of ${P}bell:b"
for n in a b; do
    grep -qF "directory: redis doorbell subscribed (${P}bell:$n, ${P}bell)" "$T/$n.log" ||
        fail "node $n did not log its doorbell"
    [ "$(dir_metric "$n" airlock_dir_doorbell)" = 1 ] || fail "node $n: airlock_dir_doorbell not 1"
done
idle3() { [ "$(rcli SCARD "${P}idle:fa")" -ge 3 ]; }
wait_until 30 idle3 || fail "pool fa has not 3 idle instances"
wait_until 10 rang "${P}bell" || fail "no instance that became idle rang ${P}bell"

log "ten reservations through node b: each rings a, a picks them up at a ring"
for i in $(seq 10); do
    wait_until 30 idle3 || fail "pool fa has not 3 idle instances again"
    got=$(ctl b assign fa "user$i") || fail "assign user$i: $got"
    name=${got#fa/}
    name=${name%% *}
    wait_log "$T/a.log" "instance=$name provision=\"fetched user$i for $name\""
done
wait_until 10 rang "${P}bell:a" || fail "no reservation rang ${P}bell:a"
rung=$(dir_metric a airlock_dir_doorbell_changes_total)
log "of 10 reservations, $rung picked up at a ring"
[ "${rung:-0}" -ge 1 ] || fail "node a picked no reservation up at a ring"

log "the server drops the doorbells: logged, subscribed again, reservations go on"
rcli CLIENT KILL TYPE pubsub >/dev/null
wait_log "$T/a.log" "directory: the redis doorbell was lost \\(closed\\)"
resubscribed() { [ "$(grep -c "redis doorbell subscribed" "$T/$1.log")" -ge 2 ]; }
wait_until 10 resubscribed a || fail "node a did not subscribe again"
wait_until 10 resubscribed b || fail "node b did not subscribe again"
[ "$(subscribers "${P}bell:a")" = 1 ] || fail "node a's doorbell is not back"
got=$(ctl b assign fa user-after) || fail "assign after the doorbells came back: $got"
name=${got#fa/}
name=${name%% *}
wait_log "$T/a.log" "instance=$name provision=\"fetched user-after for $name\""

log "an ACL user without the channels: no doorbell, reservations as before"
umask 077
printf 'pw-%s\n' "$RANDOM$RANDOM" >"$T/pw"
rcli ACL SETUSER nochan on ">$(cat "$T/pw")" resetchannels "~${P}*" '+@all' >/dev/null
node c "  redis_user: nochan"
sed -i "s|redis_password_file: .*|redis_password_file: $T/pw|" "$T/c.yaml"
airlock_up c run -c "$T/c.yaml"
wait_log "$T/c.log" "directory: no redis doorbell why=\"SUBSCRIBE refused: NOPERM"
wait_log "$T/c.log" "changes are picked up every 100 ms"
[ "$(dir_metric c airlock_dir_doorbell)" = 0 ] || fail "node c: airlock_dir_doorbell not 0"
wait_until 30 idle3 || fail "pool fa has not 3 idle instances"
got=$(ctl c assign fa user-nochan) || fail "assign as the ACL user without channels: $got"
name=${got#fa/}
name=${name%% *}
wait_log "$T/a.log" "instance=$name provision=\"fetched user-nochan for $name\""
[ "$(grep -c "no redis doorbell" "$T/c.log")" = 1 ] || fail "node c warned more than once"
log "ok"
