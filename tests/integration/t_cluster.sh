#!/bin/bash
# t_cluster: three airlock nodes in network namespaces on one bridge, one
# redis directory, HAProxy in front with PROXY v2 (cluster-lib.sh,
# docs/cluster.md). Six users at once, two sessions each, through HAProxy:
# every login is served by an instance of some node with the user's state,
# every write is committed to the shared store at the logout; HAProxy spread
# the connections over the three routers; the routers learnt the clients'
# address from PROXY v2; the ledger (the directory's key -> instance, sampled
# every 50 ms) never had a key on two instances at once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"
. "$(dirname "$0")/cluster-lib.sh"

cl_up 6
cl_ledger_watch

log "six users at once, two sessions each (login, write, logout)"
user_run() {
    local T=$T/$1
    mkdir -p "$T"
    cl_session "$1"
    cl_session "$1"
}
pids=()
for u in user0001 user0002 user0003 user0004 user0005 user0006; do
    (user_run "$u") >"$T/$u.out" 2>&1 &
    pids+=($!)
done
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || fail "user $((i + 1)): $(tail -3 "$T/user000$((i + 1)).out")"
done

log "every write committed to the store"
for u in user0001 user0002 user0003 user0004 user0005 user0006; do
    [ "$(cl_alarms "$u")" = 2 ] || fail "$u: $(cl_alarms "$u") alarms in the store, expected 2"
done

log "where the sessions ran"
for i in 1 2 3; do
    logins=$(grep -c 'pool=grid instance=grid-n[0-9]*-[0-9]* login user=' "$T/p$i.log" || true)
    conns=$(grep -c "proxy header from=.* client=127.0.0.1:" "$T/r$i.log" || true)
    log "node n$i: $logins sessions on its instances, $conns connections through its router"
    [ "$conns" -gt 0 ] || fail "HAProxy sent no connection to router n$i"
done
total=$(cat "$T"/p?.log | grep -c 'pool=grid instance=grid-n[0-9]*-[0-9]* login user=')
[ "$total" = 12 ] || fail "$total logins on the nodes' instances, expected 12"
# a login line names the instance's own node: names are unique across nodes
for i in 1 2 3; do
    ! grep 'pool=grid instance=grid-' "$T/p$i.log" | grep -v "instance=grid-n$i-" | has . ||
        fail "node n$i logged another node's instance"
done
cl_ledger_check
log "ok"
