#!/bin/bash
# t_cluster_redis: the cluster of cluster-lib.sh when its redis directory
# fails (docs/cluster.md). Each case prints what it did, then checks the
# users' committed state in the store; the ledger (sampled every 50 ms all
# along) never has a key on two instances.
#   1. redis killed and started again empty (no persistence) while every
#      user is logged in: while it is away a connection is refused at once
#      (HAProxy's checks of the routers' /readyz take them out); once it is
#      back every node reports its instances again, every session is on the
#      same instance as before, and the users go on and commit.
#   2. a node (user0001's) cut off from redis (iptables DROP in its
#      namespace): it notices within seconds, its router's /readyz says why
#      and HAProxy takes it out; the users go on through the other routers
#      (sessions on its instances too: they reach them across the bridge)
#      and commit; once it has not swept for 2 s the directory stops handing
#      out its idle instances, and users not on it start new sessions,
#      served by the nodes that reach redis only; its users are not given a
#      second instance while it cannot say their sessions ended. Healed, it
#      reports what happened meanwhile and every user logs in again with
#      their committed state.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"
. "$(dirname "$0")/cluster-lib.sh"
need iptables
iptables -L OUTPUT >/dev/null 2>&1 || skip "iptables unusable here"

USERS="user0001 user0002 user0003 user0004 user0005 user0006"
cl_up 6
cl_ledger_watch
log "every user commits one session first"
for u in $USERS; do cl_session "$u"; done
declare -A TOK=() WANT=()
for u in $USERS; do WANT[$u]=1; done

# all_in: every user logs in and writes (sessions left open, tokens in TOK)
all_in() {
    local u
    for u in $USERS; do
        cl_login "$u"
        cl_write "$u"
        TOK[$u]=$SG_TOKEN
        WANT[$u]=$((WANT[$u] + 1))
    done
}
# finish USER: writes once more in the open session and logs out: committed
finish() {
    SG_TOKEN=${TOK[$1]}
    cl_write "$1"
    cl_logout "$1"
    WANT[$1]=$((WANT[$1] + 1))
    wait_until 20 cl_alarms_are "$1" "${WANT[$1]}" ||
        fail "$1: $(cl_alarms "$1") alarms in the store, expected ${WANT[$1]}"
}
ledger_is() { [ "$(cl_ledger | sort)" = "$(cat "$1")" ]; }
routers_are() { cl_server_is n1 "$1" && cl_server_is n2 "$1" && cl_server_is n3 "$1"; }

log "== 1. redis killed and started again, empty, while every user is logged in"
all_in
cl_ledger | sort >"$T/ledger.before"
kill -9 "${CL_PID[redis]}"
wait_exit "${CL_PID[redis]}" 10
log "redis killed"
wait_until 10 routers_are DOWN || fail "HAProxy still routes to a router without redis"
t0=$(date +%s%N)
code=$(sg_post user0001 /login "{\"key\":\"$(sg_key user0001)\"}")
ms=$(elapsed_ms "$t0")
log "a login meanwhile: HTTP $code after $ms ms"
{ [ "$code" = 000 ] && [ "$ms" -lt 5000 ]; } || fail "a login without redis: HTTP $code after $ms ms"
cl_redis redis2
log "redis started again, empty"
wait_until 20 ledger_is "$T/ledger.before" ||
    fail "the sessions were not restored: $(cl_ledger | sort) (before: $(cat "$T/ledger.before"))"
log "every node reported its instances again: every session on the same instance"
wait_until 10 routers_are UP || fail "HAProxy did not take the routers back"
for u in $USERS; do finish "$u"; done
log "the users went on and committed"
for u in $USERS; do cl_session "$u" && WANT[$u]=$((WANT[$u] + 1)); done
log "and start new sessions"
cl_ledger_check

log "== 2. a node cut off from redis"
all_in
# the node cut off: user0001's (so that it has users); Q: another one
N=$(cl_node_of user0001)
Q=$((N % 3 + 1))
log "node n$N, with iptables -A OUTPUT -d $CL_NET.1 -p tcp --dport 6379 -j DROP in its namespace"
cl_ledger | sort >"$T/ledger.before"
onN=$(awk -v N="$N" 'index($2, "grid-n" N "-") == 1 { print $1 }' "$T/ledger.before" | xargs)
log "users on n$N's instances: $onN"
down='directory: redis unreachable'
pN=$(cl_count "$T/p$N.log" "$down")
rN=$(cl_count "$T/r$N.log" "$down")
cl_in "$N" iptables -A OUTPUT -d "$CL_NET.1" -p tcp --dport 6379 -j DROP
t0=$(date +%s%N)
wait_until 10 cl_more "$T/r$N.log" "$down" "$rN" || fail "n$N's router did not notice"
log "n$N's router noticed after $(elapsed_ms "$t0") ms"
wait_until 10 cl_more "$T/p$N.log" "$down" "$pN" || fail "n$N's pool did not notice"
log "n$N's pool noticed after $(elapsed_ms "$t0") ms"
ready=$(cl_in "$N" curl -s "http://$(cl_ip "$N"):9101/readyz")
log "n$N's router /readyz: $ready"
[[ $ready == *"directory: redis unreachable"* ]] || fail "n$N's /readyz: $ready"
wait_until 10 cl_server_is "n$N" DOWN || fail "HAProxy still routes to n$N"
log "HAProxy took n$N's router out"
for u in $USERS; do finish "$u"; done
log "every user went on through the other routers and committed (n$N's too: its instances store back)"
nN_alive() { [ "$(rcli EXISTS "${CL_PREFIX}alive:n$N")" = 1 ]; }
wait_until 10 eval '! nN_alive' || fail "n$N still counts as alive in the directory"
rcli SMEMBERS "${CL_PREFIX}idle:grid" >"$T/idle"
idle=$(grep -c . "$T/idle")
nNidle=$(grep -c "^grid-n$N-" "$T/idle" || true)
log "n$N has not swept for 2 s; the directory has $idle idle instances, $nNidle of them n$N's"
[ "$nNidle" -gt 0 ] || fail "n$N has no idle instance in the directory to test with"
# reserve as many as are idle, through n2's control socket, for keys that
# are nobody's: one of n$N's would never be provisioned (n$N cannot hear of
# the reservation: a user's login would wait for its certificate until
# smartgrid gives up); the others' provisioning fails (no such user)
for k in $(seq "$idle"); do
    got=$(cl_ctl "$Q" assign grid "t_cluster_probe$k" 2>&1) || break
    case $got in grid/grid-n"$N"-*) fail "an idle instance of n$N was handed out: $got" ;; esac
done
log "$((k - 1)) reserved, none of n$N's, then none left to hand out"
[ "$k" -gt 1 ] || fail "no instance of another node could be reserved"
for u in $USERS; do
    case " $onN " in *" $u "*) continue ;; esac
    cl_session "$u"
    WANT[$u]=$((WANT[$u] + 1))
done
log "the users not on n$N start new sessions on the nodes that reach redis"
for u in $onN; do
    code=$(sg_curl "$u" "$u" /login --max-time 3 -X POST --data-binary "{\"key\":\"$(sg_key "$u")\"}")
    log "$u (its session ended on n$N, which cannot tell redis yet): HTTP $code"
    [ "$code" != 200 ] || fail "$u got a second instance while n$N could not report"
done
cl_in "$N" iptables -D OUTPUT -d "$CL_NET.1" -p tcp --dport 6379 -j DROP
log "healed"
wait_until 20 cl_server_is "n$N" UP || fail "HAProxy did not take n$N back"
for u in $USERS; do cl_session "$u" && WANT[$u]=$((WANT[$u] + 1)); done
log "every user logs in again"
for u in $USERS; do
    [ "$(cl_alarms "$u")" = "${WANT[$u]}" ] || fail "$u: $(cl_alarms "$u") alarms, expected ${WANT[$u]}"
done
log "every user's store holds every committed write"
cl_ledger_check
log "ok"
