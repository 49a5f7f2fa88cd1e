#!/bin/bash
# t_pool_forged_login: an instance may log in only the user the directory
# reserved it for. Every instance may run its user's code and print any
# line, so a login line is checked against the directory (dir_activate);
# with the memory and with the redis directory:
#  - an idle instance that prints "LOGIN alice" (nobody reserved it) is
#    killed at once: alice is never provisioned there, nothing is stored
#    back, alice has no session, and her ClientHello through the router
#    reserves another instance;
#  - an instance reserved (and provisioned ahead) for bob that claims carol
#    is killed: carol is never provisioned, bob's state is not stored back,
#    bob's next request gets a fresh instance;
#  - an instance in dave's session that claims erin is killed without
#    storing dave's state back (a second "LOGIN dave" is only ignored);
#  - each is one warn line (instance, claimed and reserved user) and one
#    count of airlock_pool_forged_logins_total; a legitimate session (frank)
#    still provisions and stores back.
. "$(dirname "$0")/lib.sh"
need redis-server python3

# hello NAME PORT USER: a ClientHello for USER.grid.test through the router,
# held open as NAME (a client that leaves would give the reservation back)
hello() { hold "$1" "$2" "$3.grid.test"; }
# reserved_at USER: the instance the log shows reserved for USER last
reserved_at() { sed -n "s/.* instance=\([^ ]*\) reserved user=$1: provisioning ahead/\1/p" "$LOG" | tail -1; }
name_of_port() { sed -n "s/.* instance=\([^ ]*\) starting pid=[0-9]* port=$1\$/\1/p" "$LOG" | tail -1; }
gone() { ! running "$1"; }
forged() { metric airlock_pool_forged_logins_total 'pool="fa"' "$MPORT"; }

# scenario BACKEND: the whole story on a fresh airlock (memory, or redis)
scenario() {
    local backend=$1 rport
    pool_setup
    rport=$MPORT # not the metrics port, nor one of the instances'
    while [ "$rport" = "$MPORT" ] || { [ "$rport" -ge "$P0" ] && [ "$rport" -lt $((P0 + 50)) ]; }; do
        rport=$(free_port)
    done
    LOG=$T/al-$backend.log
    rm -rf "$T/store" "$T/inst" "$T"/*.users
    mkdir -p "$T/store"
    for u in alice bob carol dave erin frank; do echo "state-of-$u" >"$T/store/$u.db"; done
    pool_conf "$CONF" "$P0" --state-wait 3000 <<EOF
    min_idle: 3
    max: 8
    max_idle: 3
    provision:
      command: [sh, -c, 'echo "\$1" >>"$T/provisioned.users" && cp "$T/store/\$1.db" "\$2/\$1.db.tmp" && mv "\$2/\$1.db.tmp" "\$2/\$1.db"', p, "{user}", "{dir}"]
      timeout: 5s
    deprovision:
      command: [sh, -c, 'echo "\$1" >>"$T/deprovisioned.users" && cp "\$2/\$1.db" "$T/store/\$1.db"', d, "{user}", "{dir}"]
      timeout: 5s
routers:
  - name: grid
    listen: tcp:127.0.0.1:$rport
    directory: fa
    domain: grid.test
EOF
    if [ "$backend" = redis ]; then
        sed -i "s|^  backend: memory\$|  backend: redis\n  redis: unix:$T/redis.sock\n  redis_password_file: $T/redis.pw\n  prefix: \"forged$$:\"|" "$CONF"
    fi
    airlock_up "al-$backend" run -c "$CONF"
    local al=$LAST_PID
    wait_for settled 3

    log "$backend: an idle instance claims alice"
    local p x pid out
    p=$(idle_port "$LOG")
    x=$(name_of_port "$p")
    pid=$(pid_of_port "$p")
    [ -n "$x" ] && [ -n "$pid" ] || fail "no idle instance in the log"
    out=$(app "$p" "login alice")
    [ -z "$out" ] || fail "$backend: the forged login of alice was served: '$out'"
    wait_log "$LOG" "instance=$x forged login user=alice reserved=-: killed"
    wait_log "$LOG" "instance=$x stopped why=forged_login"
    wait_for gone "$pid"
    [ "$(forged)" = 1 ] || fail "$backend: forged logins counted: $(forged)"
    grep -q "instance=$x login user=" "$LOG" && fail "$backend: $x was made active"
    grep -q "instance=$x hook=" "$LOG" && fail "$backend: a hook ran for $x"
    ctl sessions | has alice && fail "$backend: alice has a session: $(ctl sessions)"
    hello "alice-$backend" "$rport" alice
    wait_log "$LOG" "reserved user=alice: provisioning ahead"
    [ "$(reserved_at alice)" != "$x" ] || fail "$backend: alice was sent to $x"
    unhold "alice-$backend"

    log "$backend: an instance reserved for bob claims carol"
    local z
    p=$(assign_port bob)
    z=$(name_of_port "$p")
    pid=$(pid_of_port "$p")
    wait_log "$LOG" "instance=$z hook=provision ok"
    out=$(app "$p" "login carol")
    [ -z "$out" ] || fail "$backend: carol was served on bob's instance: '$out'"
    wait_log "$LOG" "instance=$z forged login user=carol reserved=bob: killed"
    wait_log "$LOG" "instance=$z stopped why=forged_login"
    wait_for gone "$pid"
    [ "$(forged)" = 2 ] || fail "$backend: forged logins counted: $(forged)"
    grep -q "instance=$z hook=deprovision" "$LOG" && fail "$backend: bob's unused state was stored back"
    out=$(ctl assign fa bob)
    [ "${out%% *}" != "fa/$z" ] || fail "$backend: bob was sent to the killed instance again"

    log "$backend: dave's instance claims erin in the middle of his session"
    p=$(assign_port dave)
    pid=$(pid_of_port "$p")
    [ "$(app "$p" "login dave")" = "OK state-of-dave" ] || fail "$backend: dave not served"
    wait_log "$LOG" "login user=dave provisioned="
    [ "$(app "$p" "save dave-v2")" = OK ] || fail "save"
    [ "$(app "$p" "login dave")" = "OK dave-v2" ] || fail "$backend: a second login of dave"
    wait_log "$LOG" "login line of dave again: ignored"
    running "$pid" || fail "$backend: dave's instance died of his second login line"
    out=$(app "$p" "login erin")
    [ -z "$out" ] || fail "$backend: erin was served on dave's instance: '$out'"
    wait_log "$LOG" "forged login user=erin reserved=dave: killed"
    wait_for gone "$pid"
    [ "$(forged)" = 3 ] || fail "$backend: forged logins counted: $(forged)"
    ctl sessions | has dave && fail "$backend: dave's session did not end: $(ctl sessions)"

    log "$backend: frank's legitimate session is provisioned and stored back"
    p=$(assign_port frank)
    z=$(name_of_port "$p")
    [ "$(app "$p" "login frank")" = "OK state-of-frank" ] || fail "$backend: frank not served"
    [ "$(app "$p" "save frank-v2")" = OK ] || fail "save"
    [ "$(app "$p" logout)" = BYE ] || fail "logout"
    # the hook's end (it names the user before its copy)
    wait_log "$LOG" "instance=$z hook=deprovision ok"
    [ "$(cat "$T/store/frank.db")" = frank-v2 ] || fail "$backend: frank's state not stored back"

    log "$backend: no state of a forged login moved either way"
    [ "$(cat "$T/deprovisioned.users")" = frank ] || fail "$backend: stored back: $(cat "$T/deprovisioned.users")"
    grep -Eqx 'carol|erin' "$T/provisioned.users" && fail "$backend: provisioned: $(cat "$T/provisioned.users")"
    for u in alice bob carol dave erin; do
        [ "$(cat "$T/store/$u.db")" = "state-of-$u" ] || fail "$backend: $u's store changed: $(cat "$T/store/$u.db")"
    done
    [ "$(forged)" = 3 ] || fail "$backend: forged logins counted: $(forged)"
    stop_clean "$al" "al-$backend"
}

scenario memory
redis_unix
scenario redis
log "ok"
