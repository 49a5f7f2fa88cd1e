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
#   - a drain asked on one node is carried out by the owner of the instance.
. "$(dirname "$0")/lib.sh"
need redis-server curl
[ -x "$FAKEAPP" ] || fail "build $FAKEAPP first"

start redis redis-server --port 0 --unixsocket "$T/redis.sock" --save '' --appendonly no
wait_for unix_up "$T/redis.sock"

# node NAME FIRST_PORT: the airlock of node NAME ($T/NAME.yaml, $T/NAME.log,
# control socket $T/NAME.sock), pool fa of two standby fakeapps
node() {
    cat >"$T/$1.yaml" <<EOF
log_level: debug
control: unix:$T/$1.sock
directory:
  backend: redis
  redis: unix:$T/redis.sock
  prefix: "t_dir_nodes$$:"
  node: $1
  reserve_timeout: 1m
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
    wait_log "$T/$owner.log" "instance=$name provision: fetched $u for $name"
    ! grep -q "instance=$name " "$T/$other.log" || fail "node $other heard of $name"
done

log "a drain asked on one node is done by the instance's owner"
ctl b drain fa/fa-a-1 >/dev/null || fail "drain fa-a-1 through b"
wait_log "$T/a.log" "instance=fa-a-1: drained by the directory"
ctl a drain fa/fa-b-2 >/dev/null || fail "drain fa-b-2 through a"
wait_log "$T/b.log" "instance=fa-b-2: drained by the directory"

log "ok"
