#!/bin/bash
# t_ctl_stats: `airlock ctl stats` shows the counters of a relay, a router
# and a pool, each the number /metrics has: the relays' section with their
# kind, the pool's instances by state (a column per state) and its starts.
. "$(dirname "$0")/lib.sh"
need socat
pool_setup
read -r PE PW PR <<<"$(free_ports 3)"
pool_conf "$CONF" "$P0" <<<'    min_idle: 2'
cat >>"$CONF" <<YAML
relays:
  - name: web
    listen: tcp:127.0.0.1:$PW
    target: tcp:127.0.0.1:$PE
routers:
  - name: sni
    listen: tcp:127.0.0.1:$PR
    routes:
      - {name: a.example, target: "tcp:127.0.0.1:$PE"}
YAML
start echo socat "TCP-LISTEN:$PE,fork,reuseaddr,bind=127.0.0.1" EXEC:cat
wait_for tcp_up "$PE"
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for metric_is airlock_pool_instances 'pool="fa",state="idle"' 2
[ "$(printf 'abc\n' | timeout 10 socat - "TCP:127.0.0.1:$PW")" = abc ] || fail "web does not relay"
hold h "$PR" a.example
wait_for metric_is airlock_connections_open 'relay="sni"' 1
wait_for metric_is airlock_connections_closed_total 'relay="web",end="eof"' 1

ctl stats | tee "$T/stats"
head -1 "$T/stats" | has -x '2 relays, 1 pools, 0 proxies' || fail "first line"
has -E "^web +relay +0 +1 +0 +0 +4 +4$" <"$T/stats" || fail "web's row"
in=$(metric airlock_bytes_in_total 'relay="sni"' "$MPORT")
has -E "^sni +router +1 +1 +0 +0 +$in +[0-9]+$" <"$T/stats" || fail "sni's row"
has -E '^POOL +STARTING +IDLE +RESERVED +VERIFYING +PROVISIONING +ACTIVE +STOPPING +DEPROVISIONING +WIPING +STARTS +RESTARTS$' \
    <"$T/stats" || fail "the pool's header"
starts=$(metric airlock_pool_starts_total 'pool="fa"' "$MPORT")
has -E "^fa +0 +2 +0 +0 +0 +0 +0 +0 +0 +$starts +0$" <"$T/stats" || fail "fa's row"
unhold h
stop_clean "$AL" al
