#!/bin/bash
# t_pool_preload: the pool brings a user's state in as soon as the router's
# directory reserves an instance for them, before the login line:
#  - a ClientHello for alice.grid.test reserves an idle instance; its
#    provisioning hook runs at once; alice's login (a line command on the
#    same connection, after the hello) then finds her state without waiting
#    for a hook (the log says provisioned=ahead); her session outlives the
#    connection;
#  - a login of carol on the instance reserved (and provisioned) for bob
#    is forged: it is killed at once, carol is not served and bob's stored
#    state is not overwritten (no deprovisioning of state nobody used);
#  - a reservation that is never used (dave, whose client stays connected
#    without a login) goes back after reserve_timeout: the instance is
#    recycled, its directory wiped, and dave's stored state untouched.
# The clients hold their connections (tests/tools/hello_hold.py): one that
# leaves gives its reservation back at once (t_router_release).
. "$(dirname "$0")/lib.sh"

need python3
pool_setup
RPORT=$(free_port)
mkdir -p "$T/store"
for u in alice bob dave; do echo "state-of-$u" >"$T/store/$u.db"; done
pool_conf "$CONF" "$P0" <<EOF
    min_idle: 3
    max: 6
    max_idle: 3
    provision:
      command: [sh, -c, 'cp "\$1" "\$2.tmp" && mv "\$2.tmp" "\$2"', provision, "$T/store/{user}.db", "{dir}/{user}.db"]
      timeout: 5s
    deprovision:
      command: [cp, "{dir}/{user}.db", "$T/store/{user}.db"]
      timeout: 5s
$(grid_router)
EOF
sed -i 's/^  backend: memory$/  backend: memory\n  reserve_timeout: 1500ms/' "$CONF"
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for metric_is airlock_pool_instances 'pool="fa",state="idle"' 3

# hello USER: a ClientHello for USER.grid.test through the router, held
# open (the instance is fakeapp: it reads line commands after the hello)
hello() { hold "$1" "$RPORT" "$1.grid.test"; }
# reserved USER: the instance reserved for USER (from the log)
reserved() { sed -n "s/.* instance=\([^ ]*\) reserved user=$1: provisioning ahead/\1/p" "$LOG" | tail -1; }

log "alice's ClientHello: her state comes in before her login"
hello alice
wait_log "$LOG" "reserved user=alice: provisioning ahead"
IA=$(reserved alice)
wait_log "$LOG" "instance=$IA hook=provision ok"
grep -q "instance=$IA login" "$LOG" && fail "a login before the test sent one"
DIRA=$T/inst/$IA
[ "$(cat "$DIRA/alice.db" 2>/dev/null)" = state-of-alice ] || fail "alice's state not in $DIRA"
hold_send alice "login alice"
wait_log "$T/alice.out" "^OK state-of-alice$"
wait_log "$LOG" "instance=$IA login user=alice provisioned=ahead"
[ "$(grep -c "instance=$IA hook=provision ok" "$LOG")" = 1 ] || fail "the hook ran twice"
unhold alice
wait_log "$T/alice.out" "^eof$"
ctl sessions | has " active  *alice " || fail "alice not active: $(ctl sessions)"

log "carol logs in where bob's state was brought: stopped, bob's state untouched"
hello bob
wait_log "$LOG" "reserved user=bob: provisioning ahead"
IB=$(reserved bob)
wait_log "$LOG" "instance=$IB hook=provision ok"
hold_send bob "login carol"
wait_log "$LOG" "instance=$IB forged login user=carol reserved=bob: killed"
wait_log "$LOG" "instance=$IB stopped why=forged_login"
wait_log "$T/bob.out" "^eof$"
grep -q "^OK" "$T/bob.out" && fail "carol was served on bob's instance: $(cat "$T/bob.out")"
grep -q "instance=$IB hook=deprovision" "$LOG" && fail "bob's unused state was stored back"
[ "$(cat "$T/store/bob.db")" = state-of-bob ] || fail "bob's store changed: $(cat "$T/store/bob.db")"
[ ! -e "$T/inst/$IB" ] || fail "$IB's directory not wiped"

log "dave never logs in: the reservation goes back, the instance is recycled"
hello dave
wait_log "$LOG" "reserved user=dave: provisioning ahead"
ID=$(reserved dave)
wait_log "$LOG" "instance=$ID: reservation for dave withdrawn before a login: recycled"
wait_log "$LOG" "instance=$ID stopped why=recycle"
[ ! -e "$T/inst/$ID" ] || fail "$ID's directory not wiped"
grep -q "instance=$ID hook=deprovision" "$LOG" && fail "dave's unused state was stored back"
[ "$(cat "$T/store/dave.db")" = state-of-dave ] || fail "dave's store changed"
idle_3() { [ "$(metric airlock_pool_instances 'pool="fa",state="idle"' "$MPORT")" -ge 3 ]; }
wait_for idle_3 # min_idle holds through all of it
stop_clean "$AL" al
[ -z "$(ls "$T/inst")" ] || fail "directories left after SIGTERM: $(ls "$T/inst")"
log "ok"
