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
#   2. node n1 cut off from redis (iptables DROP in its namespace): it
#      notices within seconds, its router's /readyz says why and HAProxy
#      takes it out; the users go on through the other routers (sessions
#      on n1's instances too: they reach them across the bridge) and commit;
#      once n1 has not swept for 2 s the directory stops handing out its
#      idle instances, and users not on n1 start new sessions, served by the
#      nodes that reach redis only; n1's users are not given a second
#      instance while n1 cannot say their sessions ended. Healed, n1 reports what happened meanwhile and
#      every user logs in again with their committed state.
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
[ "$code" = 000 ] && [ "$ms" -lt 3000 ] || fail "a login without redis: HTTP $code after $ms ms"
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

log "== 2. node n1 cut off from redis"
all_in
cl_ledger | sort >"$T/ledger.before"
on1=$(awk 'index($2, "grid-n1-") == 1 { print $1 }' "$T/ledger.before")
log "users on n1's instances: $(echo $on1)"
down='directory: redis unreachable'
p1=$(cl_count "$T/p1.log" "$down")
r1=$(cl_count "$T/r1.log" "$down")
cl_in 1 iptables -A OUTPUT -d "$CL_NET.1" -p tcp --dport 6379 -j DROP
t0=$(date +%s%N)
wait_until 10 cl_more "$T/r1.log" "$down" "$r1" || fail "n1's router did not notice"
log "n1's router noticed after $(elapsed_ms "$t0") ms"
wait_until 10 cl_more "$T/p1.log" "$down" "$p1" || fail "n1's pool did not notice"
log "n1's pool noticed after $(elapsed_ms "$t0") ms"
ready=$(cl_in 1 curl -s "http://$(cl_ip 1):9101/readyz")
log "n1's router /readyz: $ready"
[[ $ready == *"directory: redis unreachable"* ]] || fail "n1's /readyz: $ready"
wait_until 10 cl_server_is n1 DOWN || fail "HAProxy still routes to n1"
log "HAProxy took n1's router out"
for u in $USERS; do finish "$u"; done
log "every user went on through n2 and n3 and committed (n1's too: its instances store back)"
n1_alive() { [ "$(rcli EXISTS "${CL_PREFIX}alive:n1")" = 1 ]; }
wait_until 10 eval '! n1_alive' || fail "n1 still counts as alive in the directory"
rcli SMEMBERS "${CL_PREFIX}idle:grid" >"$T/idle"
idle=$(grep -c . "$T/idle")
n1idle=$(grep -c '^grid-n1-' "$T/idle" || true)
log "n1 has not swept for 2 s; the directory has $idle idle instances, $n1idle of them n1's"
[ "$n1idle" -gt 0 ] || fail "n1 has no idle instance in the directory to test with"
# reserve as many as are idle, through n2's control socket, for keys that
# are nobody's: one of n1's would never be provisioned (n1 cannot hear of
# the reservation: a user's login would wait for its certificate until
# smartgrid gives up); the others' provisioning fails (no such user)
for k in $(seq "$idle"); do
    got=$(cl_ctl 2 assign grid "t_cluster_probe$k" 2>&1) || break
    case $got in grid/grid-n1-*) fail "an idle instance of n1 was handed out: $got" ;; esac
done
log "$((k - 1)) reserved, none of n1's, then none left to hand out"
[ "$k" -gt 1 ] || fail "no instance of n2 or n3 could be reserved"
for u in $USERS; do
    case " $(echo $on1) " in *" $u "*) continue ;; esac
    cl_session "$u"
    WANT[$u]=$((WANT[$u] + 1))
done
log "the users not on n1 start new sessions on the nodes that reach redis"
for u in $on1; do
    code=$(sg_curl "$u" "$u" /login --max-time 3 -X POST --data-binary "{\"key\":\"$(sg_key "$u")\"}")
    log "$u (its session ended on n1, which cannot tell redis yet): HTTP $code"
    [ "$code" != 200 ] || fail "$u got a second instance while n1 could not report"
done
cl_in 1 iptables -D OUTPUT -d "$CL_NET.1" -p tcp --dport 6379 -j DROP
log "healed"
wait_until 20 cl_server_is n1 UP || fail "HAProxy did not take n1 back"
for u in $USERS; do cl_session "$u" && WANT[$u]=$((WANT[$u] + 1)); done
log "every user logs in again"
for u in $USERS; do
    [ "$(cl_alarms "$u")" = "${WANT[$u]}" ] || fail "$u: $(cl_alarms "$u") alarms, expected ${WANT[$u]}"
done
log "every user's store holds every committed write"
cl_ledger_check
log "ok"
