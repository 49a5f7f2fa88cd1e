#!/bin/bash
# t_cluster_chaos: the cluster of cluster-lib.sh (three nodes, each a pool
# airlock and a router airlock; redis; HAProxy) under failures of its nodes
# (docs/cluster.md). Each case prints what it did, then checks the users'
# committed state in the store; the ledger (sampled every 50 ms all along)
# never has a key on two instances.
#   1. kill -9 of one node's pool airlock while every user is logged in:
#      its instances die with it (no process of its uids is left); restarted
#      (as systemd or the kubelet would), it forgets its earlier instances in
#      the directory; its users log in again and get an instance with their
#      committed state (the write of the killed session was never committed:
#      it is not there); the other users' sessions went on untouched.
#   2. kill -9 of one router: HAProxy's health checks take it out, every
#      user is served through the other two; restarted, it serves again.
#   3. a slow link on one node (tc netem delay, or a 200 kbit/s token
#      bucket where the kernel has no netem): still correct, slower.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"
. "$(dirname "$0")/cluster-lib.sh"
need tc

USERS="user0001 user0002 user0003 user0004 user0005 user0006"
cl_up 6
cl_ledger_watch
log "every user commits one session first"
for u in $USERS; do cl_session "$u"; done

log "== 1. kill -9 of a node's pool airlock while every user is logged in"
declare -A TOK=()
for u in $USERS; do
    cl_login "$u"
    cl_write "$u"
    TOK[$u]=$SG_TOKEN
done
cl_ledger | sort >"$T/ledger.before"
cat "$T/ledger.before"
V=$(cl_node_of user0001)
[ -n "$V" ] || fail "user0001 is on no instance"
victims=$(awk -v n="grid-n$V-" 'index($2, n) == 1 { print $1 }' "$T/ledger.before" | xargs)
log "kill -9 of node n$V's pool airlock (pid ${CL_PID[p$V]}); its users: $victims"
kill -9 "${CL_PID[p$V]}"
wait_exit "${CL_PID[p$V]}" 10
u0=${CL_UIDS[$V]}
no_instances_left() {
    local u
    for u in $(seq "$u0" $((u0 + 9))); do [ -z "$(uid_procs "$u")" ] || return 1; done
}
wait_for no_instances_left || fail "instances of node n$V outlived their airlock: $(ps -eo pid,uid,args | awk -v a="$u0" '$2 >= a && $2 < a + 10')"
log "its instances died with it"
log "restarted by its supervisor"
cl_pool "$V"
wait_log "$T/p$V.log" "node n$V: [0-9]+ instances of its earlier run forgotten"
grep -o "node n$V: [0-9]* instances of its earlier run forgotten.*" "$T/p$V.log" | sed 's/^/  /'
for u in $victims; do
    cl_login "$u"
    on=$(cl_node_of "$u")
    cl_write "$u"
    cl_logout "$u"
    # committed: the first session's write and this one's; the killed
    # session's write was never stored back
    wait_until 20 cl_alarms_are "$u" 2 || fail "$u: $(cl_alarms "$u") alarms in the store, expected 2"
    log "$u logged in again, on node n$on, with the committed state"
done
for u in $USERS; do
    case " $victims " in *" $u "*) continue ;; esac
    SG_TOKEN=${TOK[$u]}
    cl_write "$u"
    cl_logout "$u"
    wait_until 20 cl_alarms_are "$u" 3 || fail "$u: $(cl_alarms "$u") alarms, expected 3"
done
log "the other users' sessions went on and were committed"
cl_ledger_check

log "== 2. kill -9 of router n2"
kill -9 "${CL_PID[r2]}"
wait_exit "${CL_PID[r2]}" 10
wait_until 10 cl_server_is n2 DOWN || fail "HAProxy still has n2: $(cl_server_state n2)"
log "HAProxy took n2 out"
for u in $USERS; do cl_session "$u"; done
log "every user served through n1 and n3"
cl_router 2
wait_until 10 cl_server_is n2 UP || fail "HAProxy did not take n2 back"
for u in $USERS; do cl_session "$u"; done
n=$(cl_count "$T/r2.log" "proxy header from=")
log "router n2 restarted: back in, $n connections through it"
[ "$n" -gt 0 ] || fail "the restarted router n2 got no connection"
cl_ledger_check

log "== 3. a slow link on node n3 (both directions)"
# netem delay where the kernel has it; else (this machine's kernel has no
# sch_netem) a token bucket at 200 kbit/s: every packet queues behind the
# ones before it, a TLS handshake takes a few hundred ms
slow="netem delay 100ms"
cl_in 3 tc qdisc add dev eth0 root $slow 2>/dev/null || slow="tbf rate 200kbit burst 1600 latency 2s"
cl_in 3 tc qdisc replace dev eth0 root $slow
tc qdisc add dev cl-n3 root $slow
log "tc qdisc $slow on n3's eth0 and on its peer"
big=$(head -c 15000 /dev/zero | tr '\0' x)
t0=$(date +%s%N)
cl_in 3 redis-cli -h "$CL_NET.1" ECHO "$big" | has -x "$big"
ms=$(elapsed_ms "$t0")
log "15 kB to redis and back from n3 take $ms ms"
[ "$ms" -ge 300 ] || fail "the slow link is not in effect: $ms ms"
t0=$(date +%s%N)
for u in $USERS; do cl_session "$u"; done
log "six sessions in $(elapsed_ms "$t0") ms, every write committed"
cl_in 3 tc qdisc del dev eth0 root
tc qdisc del dev cl-n3 root
for u in $USERS; do
    want=$((5 + 1))
    case " $victims " in *" $u "*) want=5 ;; esac
    [ "$(cl_alarms "$u")" = "$want" ] || fail "$u: $(cl_alarms "$u") alarms, expected $want"
done
log "every user's store holds every committed write, nothing more"
cl_ledger_check
log "ok"
