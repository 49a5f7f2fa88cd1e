#!/bin/bash
# t_router_pool: the whole path in one airlock process: a router with a
# directory route, the memory directory, and a pool of TLS instances
# (tests/tools/tls_instance.py: ready line, "LOGIN <user>" from the first
# SNI it sees, "LOGOUT" and exit on request). Proves: alice reaches an idle
# instance, which logs her in (the pool reports her active); her reconnects
# reach the same instance (sticky); bob gets another one; after alice logs
# out, her instance is gone and her next connection gets a fresh instance;
# the TLS stays end to end (the router never terminates it).
. "$(dirname "$0")/lib.sh"
need openssl python3
read -r R MPORT <<<"$(free_ports 2)"
P0=$(free_range 20)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=grid \
    -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
cat >"$T/airlock.yaml" <<YAML
metrics: tcp:127.0.0.1:$MPORT
directory:
  backend: memory
pools:
  - name: grid
    command: [python3, "$ROOT/tests/tools/tls_instance.py", "{port}", "$T/cert.pem", "$T/key.pem", "{instance}"]
    endpoint: "tcp:127.0.0.1:{port}"
    ports: $P0-$((P0 + 19))
    dir: $T/inst
    min_idle: 2
    max: 4
    events:
      ready: "^WAITING_LOGIN$"
      login: "^LOGIN ([A-Za-z0-9_.@-]+)$"
      logout: "^LOGOUT$"
routers:
  - name: users
    listen: tcp:127.0.0.1:$R
    directory: grid
    domain: grid.example
YAML
airlock_up al run -c "$T/airlock.yaml"
al=$LAST_PID
idle2() { metric_is airlock_pool_instances 'pool="grid",state="idle"' 2; }
wait_for idle2

ask() { # USER LINE: the instance's answer through the router (s_client's
    # status is not: the instance closes without a close_notify)
    printf '%s\n' "$2" | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$R" \
        -servername "$1.grid.example" 2>/dev/null || true
}

log "alice logs in on an idle instance and stays there"
a=$(ask alice whoami)
log "alice: $a"
[[ $a == "grid-"*" alice" ]] || fail "alice got '$a'"
wait_log "$T/al.log" "login user=alice"
for i in 1 2 3; do
    [ "$(ask alice whoami)" = "$a" ] || fail "alice's reconnect $i reached another instance"
done

log "bob gets an instance of his own"
b=$(ask bob whoami)
log "bob: $b"
[[ $b == "grid-"*" bob" ]] || fail "bob got '$b'"
[ "${a% *}" != "${b% *}" ] || fail "alice and bob share ${a% *}"

log "alice logs out: her next connection is a fresh instance"
[ "$(ask alice logout)" = BYE ] || fail "alice's logout was not answered"
wait_log "$T/al.log" "instance=${a% *} stopped why=logout"
# 2 or 3 idle: bob's login may have started a replacement before alice's
# logout starts hers (max is 4), and the surplus waits for the cooldown
idle_ready() { [ "$(metric airlock_pool_instances 'pool="grid",state="idle"' "$MPORT")" -ge 2 ]; }
wait_for idle_ready
c=$(ask alice whoami)
log "alice again: $c"
[[ $c == "grid-"*" alice" ]] || fail "alice got '$c' after her logout"
[ "${c% *}" != "${a% *}" ] || fail "alice came back to the instance she left"
[ "$(ask bob whoami)" = "$b" ] || fail "bob lost his instance"
stop_clean "$al" al
