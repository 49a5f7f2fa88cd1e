#!/bin/bash
# t_router_directory: routers that send each user (<user>.grid.example) to
# the instance the session directory assigns, on a real redis-server.
# dirtool registers instances i0 and i1 of pool "p" (two free ports),
# served by socat (a TLS listener that forks per connection) with
# certificates CN=i0 and CN=i1.
# Proves: alice and bob get different instances and keep them across
# reconnects while a connection of theirs holds the reservation (sticky, by
# the certificate that comes back); carol, with both taken, waits
# assign_wait (1s) and is closed cleanly (end=no_instance); a client that
# leaves while waiting cancels its request (the directory counts it
# cancelled, the close comes at once). Then two airlock processes on the
# same redis race for a fresh pool of three instances with 3,000 new users
# (from one address: no per-client bound there): no instance is ever
# assigned to two users, and all the others are refused.
. "$(dirname "$0")/lib.sh"
need redis-server openssl python3 socat
DIRTOOL=$(dirname "$AIRLOCK")/tests/dirtool
[ -x "$DIRTOOL" ] || fail "build $DIRTOOL first"
CORPUS=$ROOT/tests/fuzz/corpus/tls_hello
SOCK=$T/redis.sock
# dirtool's instance iN is at tcp:127.0.0.1:(DIRTOOL_PORT_BASE + N)
IP=$(free_range 3)
export DIRTOOL_PORT_BASE=$IP

start redis redis-server --port 0 --unixsocket "$SOCK" --save '' --appendonly no
wait_for unix_up "$SOCK"
for i in 0 1; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
        -subj "/CN=i$i" -keyout "$T/i$i.key" -out "$T/i$i.crt" 2>/dev/null
    start "s_i$i" socat "OPENSSL-LISTEN:$((IP + i)),bind=127.0.0.1,reuseaddr,fork,cert=$T/i$i.crt,key=$T/i$i.key,verify=0" \
        SYSTEM:"echo i$i"
    wait_for tcp_up "$((IP + i))"
done
"$DIRTOOL" register "unix:$SOCK" e2e: 2 2>"$T/dirtool.log" || fail "dirtool register failed"

read -r R1 R2 R3 M1 <<<"$(free_ports 4)"
# router.yaml NAME PORT PREFIX WAIT PER_CLIENT [METRICS]
router_yaml() {
    cat <<YAML
${6:+metrics: tcp:127.0.0.1:$6}
directory:
  backend: redis
  redis: unix:$SOCK
  prefix: "$3"
  reserve_timeout: 60s
  assign_wait: $4
  max_pending_per_client: $5
routers:
  - name: $1
    listen: tcp:127.0.0.1:$2
    directory: p
    domain: grid.example
YAML
}
router_yaml users "$R1" e2e: 1s 2 "$M1" >"$T/users.yaml"
airlock_up users run -c "$T/users.yaml"
users=$LAST_PID

cn() { # SNI: the CN of the certificate that comes back through the router
    timeout 10 openssl s_client -connect "127.0.0.1:$R1" -servername "$1" </dev/null 2>/dev/null |
        openssl x509 -noout -subject 2>/dev/null | sed 's/.*CN *= *//'
}

log "alice and bob get an instance each, and keep it when they reconnect"
hold alice "$R1" alice.grid.example
hold bob "$R1" bob.grid.example
a=$(cn alice.grid.example)
b=$(cn bob.grid.example)
log "alice -> $a, bob -> $b"
case $a in i0 | i1) ;; *) fail "alice got '$a'" ;; esac
case $b in i0 | i1) ;; *) fail "bob got '$b'" ;; esac
[ "$a" != "$b" ] || fail "alice and bob share instance $a"
for k in 1 2; do
    [ "$(cn alice.grid.example)" = "$a" ] || fail "alice moved off $a on reconnect $k"
    [ "$(cn BOB.grid.example)" = "$b" ] || fail "bob moved off $b on reconnect $k"
done
wait_log "$T/users.log" "router assigned relay=users conn=[0-9]+ sni=alice.grid.example instance=$a"

log "carol: no free instance within assign_wait (1s): a clean close"
t0=$(date +%s%N)
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$R1" -servername carol.grid.example </dev/null 2>&1) &&
    fail "carol was served"
ms=$(elapsed_ms "$t0")
log "carol closed after $ms ms"
[ "$ms" -ge 900 ] && [ "$ms" -lt 5000 ] || fail "carol closed after $ms ms, not after assign_wait"
grep -qi "reset" <<<"$out" && fail "carol saw a reset: $out"
wait_log "$T/users.log" "router refused relay=users conn=[0-9]+ sni=carol.grid.example reason=no_free_instance"
wait_log "$T/users.log" "close relay=users conn=[0-9]+ client=[^ ]+ sni=carol.grid.example .*end=no_instance"

log "dave leaves while waiting: the request is cancelled, the close is at once"
timeout 0.3 openssl s_client -connect "127.0.0.1:$R1" -servername dave.grid.example </dev/null >/dev/null 2>&1 || true
wait_log "$T/users.log" "close relay=users conn=[0-9]+ client=[^ ]+ sni=dave.grid.example target=- duration_ms=[0-9]+ .*end=eof"
ms=$(sed -n 's/.*sni=dave.grid.example target=[^ ]* duration_ms=\([0-9]*\) .*/\1/p' "$T/users.log")
[ "$ms" -lt 900 ] || fail "dave's connection lasted $ms ms: not cancelled"
# (the metric is read again at each poll)
cancelled_once() { [ "$(metric airlock_dir_assigns_total 'outcome="cancelled"' "$M1")" = 1 ]; }
wait_for cancelled_once
[ "$(metric airlock_connections_closed_total 'relay="users",end="no_instance"' "$M1")" = 1 ] ||
    fail "no_instance count is not 1"
stop_clean "$users" users

log "two routers on one redis race for three instances with 3000 new users"
"$DIRTOOL" register "unix:$SOCK" race: 3 2>>"$T/dirtool.log" || fail "dirtool register failed"
router_yaml race1 "$R2" race: 0 0 >"$T/race1.yaml"
router_yaml race2 "$R3" race: 0 0 >"$T/race2.yaml"
airlock_up race1 run -c "$T/race1.yaml"
r1=$LAST_PID
airlock_up race2 run -c "$T/race2.yaml"
r2=$LAST_PID
out=$(timeout 120 python3 "$ROOT/tests/tools/sni_storm.py" "$CORPUS/curl" 3000 32 "$R2" "$R3") ||
    fail "the storm failed"
log "storm: $out"
cat "$T/race1.log" "$T/race2.log" >"$T/race.log"
assigned=$(grep -c "router assigned" "$T/race.log" || true)
refused=$(grep -c "end=no_instance\$" "$T/race.log" || true)
log "assigned $assigned, refused $refused"
grep "router assigned" "$T/race.log" | sed 's/.*sni=\([^ ]*\) instance=\(.*\)/\2 \1/' | sort -u >"$T/pairs"
cut -d' ' -f1 "$T/pairs" | sort | uniq -d >"$T/twice"
[ -s "$T/twice" ] && fail "instances assigned to two users: $(cat "$T/twice"): $(cat "$T/pairs")"
[ "$assigned" = 3 ] || fail "$assigned assignments for 3 instances: $(cat "$T/pairs")"
[ $((assigned + refused)) = 3000 ] || fail "assigned $assigned + refused $refused is not 3000"
# both took part (which one wins the first instances is up to the scheduler)
grep -q "end=no_instance\$" "$T/race1.log" && grep -q "end=no_instance\$" "$T/race2.log" ||
    fail "both routers did not take part"
stop_clean "$r1" race1
stop_clean "$r2" race2
