#!/bin/bash
# t_cluster_redis_lost: the cluster of cluster-lib.sh when its redis comes
# back empty (no persistence) and one node reports again late: the node of
# user0001's open session is cut off from redis (iptables DROP in its
# namespace) while redis is killed and started again empty. The other
# nodes report their instances at once; the directory, which knows nothing
# of user0001 any more, must not hand user0001 another instance before the
# late node could report the session (docs/directory.md, "A redis that lost
# its data"). Before, the login got an instance of another node with the
# state before the session, and the session's node, healed, put its active
# session back: the user on two instances at once. Healed, the session is
# on its instance again and goes on; the users commit and start new ones.
# Then the same data lost without a lost connection (FLUSHALL, as a
# failover to a replica without the data, or an operator): every node
# notices at its next sweep and reports again; before, nothing was ever
# reported again (no idle instance, no session) until each airlock restarted.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"
. "$(dirname "$0")/cluster-lib.sh"
need iptables
iptables -L OUTPUT >/dev/null 2>&1 || skip "iptables unusable here"

cl_up 2
cl_ledger_watch
for u in user0001 user0002; do cl_session "$u"; done
cl_login user0001
cl_write user0001
TOK=$SG_TOKEN
N=$(cl_node_of user0001)
was=$(cl_ledger | awk '$1 == "user0001" { print $2 }')
log "user0001 logged in on $was (node n$N), one write not committed yet"

cut="OUTPUT -d $CL_NET.1 -p tcp --dport 6379 -j DROP"
cl_in "$N" iptables -A $cut
kill -9 "${CL_PID[redis]}"
wait_exit "${CL_PID[redis]}" 10
cl_redis redis2
log "n$N cut off from redis; redis killed and started again, empty"
# HAProxy routes to the other nodes' routers only (n$N's has no redis)
routes() {
    local i s
    for i in 1 2 3; do
        s=UP
        [ "$i" != "$N" ] || s=DOWN
        cl_server_is "n$i" "$s" || return 1
    done
}
wait_until 30 routes || fail "HAProxy does not route to the other nodes' routers only"
wait_until 30 cl_idle 1 || fail "no node reported its instances again"
log "the other nodes reported again: $(rcli SCARD "${CL_PREFIX}idle:grid") idle instances"
SG_TOKEN=
code=$(sg_curl user0001 user0001 /login --max-time 8 -X POST --data-binary \
    "{\"key\":\"$(sg_key user0001)\"}")
log "a login of user0001 meanwhile: HTTP $code"
[ "$code" != 200 ] || fail "user0001 got a second instance ($(cl_ledger | xargs)) while n$N could not report"

cl_in "$N" iptables -D $cut
log "n$N healed"
on_it() { [ "$(cl_ledger | awk '$1 == "user0001" { print $2 }')" = "$was" ]; }
wait_until 30 on_it || fail "user0001's session is not back on $was: $(cl_ledger | xargs)"
log "n$N reported again: user0001's session on $was"
SG_TOKEN=$TOK
cl_write user0001
cl_logout user0001
wait_until 20 cl_alarms_are user0001 3 || fail "user0001: $(cl_alarms user0001) alarms, expected 3"
log "user0001's session went on and committed"
for u in user0001 user0002; do cl_session "$u"; done
log "new sessions"

cl_login user0001
cl_write user0001
TOK=$SG_TOKEN
was=$(cl_ledger | awk '$1 == "user0001" { print $2 }')
declare -A seen=()
for i in 1 2 3; do seen[$i]=$(cl_count "$T/r$i.log" 'directory: connected to redis'); done
rcli FLUSHALL >/dev/null
log "user0001 logged in on $was; redis flushed"
wait_until 30 on_it || fail "user0001's session is not back on $was: $(cl_ledger | xargs)"
wait_until 30 cl_idle 1 || fail "no idle instance reported again"
log "user0001's session on $was again"
# each router notices the loss at its own next sweep and connects again: a
# request reaching one meanwhile (HAProxy's checks, 300 ms apart, miss the
# moment) waits for that, not refused (docs/directory.md, "While redis is
# away"); so no wait for every router here
cl_write user0001
cl_logout user0001
wait_until 20 cl_alarms_are user0001 6 || fail "user0001: $(cl_alarms user0001) alarms, expected 6"
cl_session user0002
for i in 1 2 3; do
    wait_until 30 cl_more "$T/r$i.log" 'directory: connected to redis' "${seen[$i]}" ||
        fail "router $i did not connect to redis again after the flush"
done
log "the session went on and committed, new ones start; every router connected again"
cl_ledger_check
log "ok"
