#!/bin/bash
# t_dir_nodes: two airlocks ("machines" a and b, directory node: a / b) run a
# pool of the same name (fa, fakeapp) on one redis directory, as the nodes
# of a cluster do (docs/cluster.md). Proves:
#   - instance names are unique across the nodes (fa-a-N, fa-b-N): the
#     directory lists all four standby instances, each with its own node's
#     endpoint (with one name per pool, the nodes' fa-1 overwrote each other);
#   - a reservation made through node a's control socket reaches the node
#     that owns the instance, and only it: its provisioning hook runs ahead
#     of the login there for that user (the other node never hears of it);
#   - a drain asked on one node is carried out by the owner of the instance;
#   - a node that stops sweeping (SIGSTOP) has its idle instances passed
#     over 2 s later, and handed out again once it is back;
#   - kill -9 of a node's airlock: its instances die with it (they would
#     serve on, unreported); restarted, it forgets its earlier run's
#     instances in the directory (they held their users' keys);
#   - a second airlock given a node's name while that node's airlock runs
#     (a rolling update, a misconfiguration) does not take it: it forgets
#     none of the first one's instances (in use, their users would get a
#     second instance) and reports none of its own; once the first one is
#     gone, it takes the name.
. "$(dirname "$0")/lib.sh"
need redis-server curl
[ -x "$FAKEAPP" ] || fail "build $FAKEAPP first"

redis_unix

# node NAME FIRST_PORT: the airlock of node NAME ($T/NAME.yaml, $T/NAME.log,
# control socket $T/NAME.sock), pool fa of two standby fakeapps
node() {
    cat >"$T/$1.yaml" <<EOF
log_level: debug
control: unix:$T/$1.sock
directory:
  backend: redis
  redis: unix:$T/redis.sock
  redis_password_file: $T/redis.pw
  prefix: "t_dir_nodes$$:"
  node: $1
  reserve_timeout: 1m
  pending_share: 100
pools:
  - name: fa
    command: [$FAKEAPP, --port, "{port}"]
    endpoint: "tcp:127.0.0.1:{port}"
    ports: $2-$(($2 + 9))
    dir: $T/inst-$1
    min_idle: 2
    max: 4
    events:
      ready: "^WAITING_LOGIN$"
      login: "^LOGIN (.+)$"
      logout: "^LOGOUT$"
    provision:
      command: [/bin/sh, -c, "echo fetched {user} for {instance}"]
EOF
    "$AIRLOCK" check -c "$T/$1.yaml" >/dev/null || fail "airlock check refused $1.yaml"
    airlock_up "$1" run -c "$T/$1.yaml"
}
PA=$(free_range 10)
node a "$PA"
PB=$(free_range 10)
node b "$PB"
ctl() { "$AIRLOCK" ctl -s "unix:$T/$1.sock" "${@:2}"; }
idle_instances() { [ "$(ctl a instances | grep -c ' idle ')" = 4 ]; }
wait_until 30 idle_instances || fail "not 4 idle instances: $(ctl a instances)"

log "four standby instances, names unique across the nodes, each with its node's endpoint"
ctl a instances >"$T/instances"
cat "$T/instances"
for n in a b; do
    first=$PA
    [ $n = a ] || first=$PB
    for i in 1 2; do
        line=$(grep -E "(^| )fa-$n-$i " "$T/instances") || fail "no fa-$n-$i in the directory"
        port=$(grep -o 'tcp:127.0.0.1:[0-9]*' <<<"$line") || fail "no endpoint: $line"
        port=${port##*:}
        [ "$port" -ge "$first" ] && [ "$port" -le $((first + 9)) ] ||
            fail "fa-$n-$i has node $n's name but the endpoint $port"
    done
done

log "reservations through node a reach the owner of each instance, and only it"
declare -A HOLDER=()
for u in u1 u2 u3 u4; do
    got=$(ctl a assign fa "$u") || fail "assign $u"
    name=${got#fa/}
    name=${name%% *}
    [ -z "${HOLDER[$name]:-}" ] || fail "$name reserved for ${HOLDER[$name]} and $u"
    HOLDER[$name]=$u
    owner=${name#fa-}
    owner=${owner%%-*}
    other=a
    [ "$owner" = b ] || other=b
    wait_log "$T/$owner.log" "instance=$name provision=\"fetched $u for $name\""
    ! grep -q "instance=$name " "$T/$other.log" || fail "node $other heard of $name"
done

log "a drain asked on one node is done by the instance's owner"
ctl b drain fa/fa-a-1 >/dev/null || fail "drain fa-a-1 through b"
wait_log "$T/a.log" "instance=fa-a-1: drained by the directory"
ctl a drain fa/fa-b-2 >/dev/null || fail "drain fa-b-2 through a"
wait_log "$T/b.log" "instance=fa-b-2: drained by the directory"

rcli() { redis-cli -s "$T/redis.sock" "$@"; }
alive() { [ "$(rcli EXISTS "t_dir_nodes$$:alive:$1")" = 1 ]; }
idle_of() { rcli SMEMBERS "t_dir_nodes$$:idle:fa" | grep -c "^fa-$1-" || true; }
has_idle() { [ "$(idle_of "$1")" -gt 0 ]; }
log "a node that stops sweeping (frozen): its idle instances are passed over"
wait_until 20 has_idle b || fail "node b has no idle instance"
A_PID=$(pgrep -f -- "-c $T/a.yaml" | head -1)
B_PID=$(pgrep -f -- "-c $T/b.yaml" | head -1)
kill -STOP "$B_PID"
at_exit "kill -CONT $B_PID 2>/dev/null || true"
wait_until 10 eval '! alive b' || fail "node b still counts as alive"
n=$(rcli SCARD "t_dir_nodes$$:idle:fa")
log "node b frozen; $n idle instances, $(idle_of b) of them b's"
for k in $(seq "$n"); do
    got=$(ctl a assign fa "probe$k" 2>&1) || break
    case $got in fa/fa-b-*) fail "an idle instance of the frozen node b was handed out: $got" ;; esac
done
[ "$(idle_of b)" -gt 0 ] || fail "b's idle instances are gone"
kill -CONT "$B_PID"
wait_until 10 alive b || fail "node b does not count as alive again"
# node a (4 instances at most) may have started new idle ones meanwhile:
# after those, b's are the only idle instances left
for k in $(seq 6); do
    got=$(ctl a assign fa "probe-b$k") || fail "assign after b came back"
    case $got in fa/fa-b-*) break ;; esac
done
case $got in fa/fa-b-*) ;; *) fail "b is back, yet its idle instances were not handed out" ;; esac
log "back, its idle instances are handed out again: $got"

log "kill -9 of node a: its instances die with it; restarted, it forgets them"
a_pids=$(sed -n 's/.* starting pid=\([0-9]*\) .*/\1/p' "$T/a.log")
a_names() { rcli SMEMBERS "t_dir_nodes$$:pool:fa" | grep '^fa-a-' | sort; }
before=$(a_names)
log "node a's instances in the directory: $(echo $before)"
kill -9 "$A_PID"
a_gone() {
    local p
    for p in $a_pids; do ! kill -0 "$p" 2>/dev/null || return 1; done
}
wait_for a_gone || fail "instances of the killed node a are still running"
log "its instances died with it"
airlock_up a2 run -c "$T/a.yaml"
wait_log "$T/a2.log" "directory: node a: [0-9]+ instances of its earlier run forgotten"
# what the directory lists of node a is what its new run started, and
# nothing of the earlier run that this one has not started again
a2_names() { sed -n 's/.* instance=\(fa-a-[0-9]*\) starting pid=.*/\1/p' "$T/a2.log" | sort -u; }
only_new() { [ -n "$(a_names)" ] && [ -z "$(comm -23 <(a_names) <(a2_names))" ]; }
wait_for only_new || fail "stale instances of node a: $(comm -23 <(a_names) <(a2_names))"
log "now: $(echo $(a_names)); the earlier run's others are forgotten"

log "a second airlock given node a's name while a runs: it waits, takes nothing, until a is gone"
A2_PID=$LAST_PID
got=$(ctl a assign fa keep1) || fail "assign keep1" # a2 runs a.yaml
kept=${got#fa/}
kept=${kept%% *}
PC=$(free_range 10)
sed -e "s|$T/a.sock|$T/a3.sock|" -e "s|inst-a|inst-a3|" \
    -e "s|ports: $PA-$((PA + 9))|ports: $PC-$((PC + 9))|" "$T/a.yaml" >"$T/a3.yaml"
grep -q "ports: $PC-" "$T/a3.yaml" || fail "a3.yaml has not its own ports"
airlock_up a3 run -c "$T/a3.yaml"
A3_PID=$LAST_PID
sleep 2 # what a3 would have done by now, it did at its first connect
! grep -q "instances of its earlier run forgotten" "$T/a3.log" || fail "a3 forgot node a's instances in use"
[ "$(rcli GET "t_dir_nodes$$:k:fa:keep1")" = "$kept" ] || fail "keep1's reservation of $kept is gone"
[ -z "$(comm -23 <(a_names) <(a2_names))" ] || fail "a3 reported instances: $(comm -23 <(a_names) <(a2_names))"
has "directory: redis unreachable why=\"node a is held by another airlock process\"" <"$T/a3.log" ||
    fail "a3 does not say why it waits"
stop_clean "$A2_PID" a2
wait_log "$T/a3.log" "directory: connected to redis" 15
a3_names() { sed -n 's/.* instance=\(fa-a-[0-9]*\) starting pid=.*/\1/p' "$T/a3.log" | sort -u; }
wait_for eval '[ -n "$(a_names)" ] && [ -z "$(comm -23 <(a_names) <(a3_names))" ]' ||
    fail "after a2, the directory lists $(echo $(a_names)), not a3's $(echo $(a3_names))"
log "a2 gone, a3 took node a: $(echo $(a_names))"
log "ok"
