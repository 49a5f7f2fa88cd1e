#!/bin/bash
# t_ctl_config: `airlock ctl config` prints the effective config as YAML:
# every block of a running airlock (relays, an egress relay, a datagram
# relay, a router with routes, a log sink, a redis directory that logs in
# with a password file, the control and metrics sockets) with the defaults
# filled in (every top-level one docs/config.md gives); `airlock check` accepts it, and a second airlock started from
# it (on other ports) prints the same config again. The password file's
# path is shown, its content never. After a reload it shows the new config
# (its generation); after a failed reload, still the running one.
. "$(dirname "$0")/lib.sh"
need redis-server redis-cli curl
read -r M PA PU PR PS PE M2 <<<"$(free_ports 7)"
CTL=$T/ctl.sock CONF=$T/airlock.yaml RSOCK=$T/redis.sock PW=ctl-config-pw-7f3a9c
ctl() { "$AIRLOCK" ctl -s "unix:$CTL" "$@"; }

printf '%s\n' "$PW" >"$T/redis.pw"
chmod 600 "$T/redis.pw"
start redis redis-server --port 0 --unixsocket "$RSOCK" --save '' --appendonly no --requirepass "$PW"
wait_for unix_up "$RSOCK"

# conf [M A U R S CTL]: the config on these ports and control socket
conf() {
    cat <<YAML
metrics: tcp:127.0.0.1:$1
control: {endpoint: "unix:$6", mode: "0660"}
drain_timeout: 7s
relays:
  - name: web
    listen: tcp:127.0.0.1:$2
    target: tcp:127.0.0.1:$PE
    allow: [127.0.0.0/8, "::1"]
    idle_timeout: 90s
  - name: out
    listen: tcp:127.0.0.1:$5
    target: egress
    egress_allow: ["*.example.com:443", "198.51.100.0/24:80-90"]
  - name: dns
    listen: udp:127.0.0.1:$3
    target: tcp:127.0.0.1:$PE
routers:
  - name: sni
    listen: tcp:127.0.0.1:$4
    routes:
      - {name: a.example, target: "tcp:127.0.0.1:$PE"}
      - {name: "*.b.example", target: "unix:$T/b.sock"}
log_sinks:
  - listen: unix:$T/sink-$1.sock
    file: $T/sink-$1.log
directory:
  backend: redis
  redis: unix:$RSOCK
  redis_password_file: $T/redis.pw
YAML
}
conf "$M" "$PA" "$PU" "$PR" "$PS" "$CTL" >"$CONF"
airlock_up air run -c "$CONF"
AIR=$LAST_PID

ctl config >"$T/dump.yaml" || fail "ctl config failed"
cat "$T/dump.yaml"
head -1 "$T/dump.yaml" | has -x "# the effective config of $CONF (generation 1), defaults filled in" ||
    fail "the header line"
"$AIRLOCK" check -c "$T/dump.yaml" || fail "airlock check refuses the dump"
has -x '    connect_timeout: 5000ms' <"$T/dump.yaml" || fail "a default (connect_timeout) is missing"
has -x 'log_level: info' <"$T/dump.yaml" || fail "a default (log_level) is missing"
has -x '  session_ttl: 3600000ms' <"$T/dump.yaml" || fail "a directory default is missing"
has -x 'drain_timeout: 7000ms' <"$T/dump.yaml" || fail "drain_timeout as set"
# every top-level key docs/config.md gives a default is there
for k in $(awk '/^### Top level/ { on = 1; next } /^###/ { on = 0 }
    on && /^\| `[a-z_]+` \|/ && $0 ~ /\| `[^|]*` \| either/ { gsub(/[`| ]/, "", $2); print $2 }' \
    "$ROOT/docs/config.md"); do
    has "^$k: " <"$T/dump.yaml" || fail "the default of $k is missing"
done
has -x 'resolver_threads: 4' <"$T/dump.yaml" && has -x 'resolver_queue: 256' <"$T/dump.yaml" ||
    fail "the resolver's defaults"
has -x "  redis_password_file: $T/redis.pw" <"$T/dump.yaml" || fail "the password file's path"
! grep -q "$PW" "$T/dump.yaml" || fail "the password is printed"
has -x '    target: egress' <"$T/dump.yaml" || fail "the egress relay"
has '\*\.b\.example' <"$T/dump.yaml" || fail "the router's routes"

log "a second airlock from the dump (other ports) prints the same config"
sed -e "s/127.0.0.1:$M\"/127.0.0.1:$M2\"/" -e "s|$CTL|$T/ctl2.sock|" -e "s/127.0.0.1:$PA\"/127.0.0.1:$(free_port)\"/" \
    -e "s/127.0.0.1:$PU\"/127.0.0.1:$(free_port)\"/" -e "s/127.0.0.1:$PR\"/127.0.0.1:$(free_port)\"/" \
    -e "s/127.0.0.1:$PS\"/127.0.0.1:$(free_port)\"/" -e "s|sink-$M|sink-$M2|g" "$T/dump.yaml" >"$T/second.yaml"
airlock_up second run -c "$T/second.yaml"
SECOND=$LAST_PID
"$AIRLOCK" ctl -s "unix:$T/ctl2.sock" config | tail -n +2 >"$T/dump2.yaml"
diff <(tail -n +2 "$T/second.yaml") "$T/dump2.yaml" || fail "the dump of the dump differs"
stop_clean "$SECOND" second

log "after a reload: the new config; after a failed one: still the running one"
conf "$M" "$PA" "$PU" "$PR" "$PS" "$CTL" | sed 's/idle_timeout: 90s/idle_timeout: 45s/' >"$CONF.new"
mv "$CONF.new" "$CONF"
ctl reload | has -x 'reloaded (generation 2)' || fail "reload"
ctl config >"$T/dump3.yaml"
has -x '    idle_timeout: 45000ms' <"$T/dump3.yaml" || fail "the reloaded idle_timeout"
head -1 "$T/dump3.yaml" | has '(generation 2)' || fail "generation 2"
printf 'relays: [\n' >"$CONF"
! ctl reload 2>/dev/null || fail "a broken file reloaded"
ctl config | has -x '    idle_timeout: 45000ms' || fail "the running config after a failed reload"

running "$AIR" || fail "airlock died"
stop_clean "$AIR" air
