#!/bin/bash
# t_router_bounds: clients nobody authenticated yet (a ClientHello, no
# login) hold a bounded part of the pool. Six instances, no provisioning
# hook, max_pending_per_client 2, pending_share 50 (3 of 6), assign_wait 1s:
#  - four held hellos from 127.0.0.1 get two reservations; the other two
#    wait and are closed (outcome client_limit);
#  - bob, from 127.0.0.2, still gets an instance and logs in;
#  - a third address gets the last of the pool's share, a fourth waits and
#    is closed (outcome pending_limit), although two instances are idle;
#  - the clients leave: their reservations are withdrawn at once and the
#    instances recycled (a stranger may have spoken to them: fresh
#    processes); what 127.0.0.1 left counts against it until instances are
#    idle again (so that it cannot churn the pool: reserve, leave, again),
#    then it gets a reservation again;
#  - behind a front relay (a router with accept_proxy: v2) the bound counts
#    the PROXY header's source, and an IPv6 source by its /64: two of three
#    sources in 2001:db8:1:2::/64 get one, 2001:db8:1:3::1 gets one too.
. "$(dirname "$0")/lib.sh"
need python3
pool_setup
read -r R1 R2 <<<"$(free_ports 2)"
pool_conf "$CONF" "$P0" --state-wait 0 <<EOF
    min_idle: 6
    max: 6
    max_idle: 6
routers:
  - name: grid
    listen: tcp:127.0.0.1:$R1
    directory: fa
    domain: grid.test
  - name: front
    listen: tcp:127.0.0.1:$R2
    accept_proxy: v2
    directory: fa
    domain: grid.test
EOF
sed -i 's/^  backend: memory$/&\n  reserve_timeout: 60s\n  assign_wait: 1s\n  max_pending_per_client: 2\n  pending_share: 50/' "$CONF"
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 6

outcome() { metric airlock_dir_assigns_total "outcome=\"$1\"" "$MPORT"; }
outcome_is() { [ "$(outcome "$1")" = "$2" ]; }
assigned() { grep -q "router assigned relay=$1 conn=[0-9]* sni=$2.grid.test " "$LOG"; }
n_reserved() { ctl instances | grep -c " reserved " || true; }
closed() { grep -q '^eof$' "$T/$1.out"; }

log "four hellos from 127.0.0.1: two reservations, two refused"
for u in a1 a2 a3 a4; do hold "$u" "$R1" "$u.grid.test"; done
wait_for outcome_is client_limit 2
got=0
for u in a1 a2 a3 a4; do
    if assigned grid "$u"; then
        got=$((got + 1))
        closed "$u" && fail "$u got an instance and was closed"
    else
        wait_for closed "$u"
    fi
done
[ "$got" = 2 ] || fail "127.0.0.1 got $got reservations, not 2"
[ "$(n_reserved)" = 2 ] || fail "reserved: $(ctl instances)"
wait_log "$LOG" "router refused relay=grid conn=[0-9]+ sni=a[1-4].grid.test reason=client_limit"

log "bob, from 127.0.0.2, gets an instance and logs in"
hold bob "$R1" bob.grid.test --bind 127.0.0.2
wait_for assigned grid bob
hold_send bob "login bob"
wait_log "$LOG" "login user=bob"
ctl sessions | has " active  *bob " || fail "bob is not active: $(ctl sessions)"

log "the pool's share: a third address gets the last pending slot, a fourth waits"
hold c3 "$R1" c3.grid.test --bind 127.0.0.3
wait_for assigned grid c3
hold d4 "$R1" d4.grid.test --bind 127.0.0.4
wait_for outcome_is pending_limit 1
wait_for closed d4
assigned grid d4 && fail "d4 got an instance beyond the pool's share"
dir_idle=$(metric airlock_dir_instances 'state="idle"' "$MPORT")
[ "$dir_idle" = 2 ] || fail "expected 2 idle instances in the directory, not $dir_idle"

log "they leave: withdrawn at once, the instances recycled, what they left counts"
starts=$(metric airlock_pool_starts_total 'pool="fa"' "$MPORT")
for u in a1 a2 a3 a4 c3; do unhold "$u"; done
withdrawn3() { [ "$(grep -c "withdrawn before a login: recycled" "$LOG")" = 3 ]; }
wait_for withdrawn3
wait_for settled 5
[ "$(metric airlock_pool_starts_total 'pool="fa"' "$MPORT")" = $((starts + 3)) ] ||
    fail "the instances strangers spoke to were not restarted"
hold a5 "$R1" a5.grid.test
wait_for assigned grid a5
unhold a5
wait_for settled 5

log "behind a front relay: the PROXY source counts, IPv6 by its /64"
for i in 1 2 3; do hold "p$i" "$R2" "p$i.grid.test" --proxy "2001:db8:1:2::${i}0"; done
wait_for outcome_is client_limit 3
got=0
for i in 1 2 3; do assigned front "p$i" && got=$((got + 1)); done
[ "$got" = 2 ] || fail "2001:db8:1:2::/64 got $got reservations, not 2"
hold q1 "$R2" q1.grid.test --proxy 2001:db8:1:3::1
wait_for assigned front q1
wait_log "$LOG" "dir assign refused pool=fa client=2001:db8:1:2::/64 reason=client_limit"
stop_clean "$AL" al
log "ok"
