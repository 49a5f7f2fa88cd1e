#!/bin/bash
# t_smartgrid_unauth: the whole path (router, memory directory with its
# default bounds, a pool of smartgrid-server instances whose built-in
# provisioning copies the user's database in) under clients that never present a
# certificate, all from 127.0.0.1 like the real user:
#  - 8 openssl s_client without a certificate, at once, naming real users:
#    each instance refuses the handshake, the reservations are withdrawn at
#    once, the instances recycled and the store is untouched;
#  - 6 ClientHellos for 6 other users that then stay silent:
#    max_pending_per_client (2) of them at a time reserve an instance, the
#    others wait and some are refused;
#  - meanwhile the real user0001, from the same address, logs in, writes
#    and queries (waiting at most for the silent ones' handshake timeout:
#    the newest waiting request is served first);
#  - the silent clients are closed by their instances, their reservations
#    withdrawn; the pool is back to its standby instances.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"
need python3
sg_provision 8
read -r R MPORT <<<"$(free_ports 2)"
P0=$(free_range 20)
cp -r "$SG/db" "$T/store"
sha_store() { cat "$T/store/"*.db | sha256; }
STORE_SHA=$(sha_store)
{
    cat <<EOF
log_level: debug
metrics: tcp:127.0.0.1:$MPORT
directory:
  backend: memory
EOF
    sg_router "$R"
    "$ROOT/apps/smartgrid/pool-yaml.sh" "$SG_BIN" "$SG" "$T/store" "$T/inst" \
        "$P0-$((P0 + 19))" 3 4 3 1s example
} >"$T/al.yaml"
airlock_up al run -c "$T/al.yaml"
AL=$LAST_PID
LOG=$T/al.log
idle() {
    [ "$(metric airlock_pool_instances 'pool="grid",state="idle"' "$MPORT")" -ge "$1" ] &&
        [ "$(metric airlock_pool_instances 'pool="grid",state="starting"' "$MPORT")" = 0 ]
}
wait_for idle 3
released_total() {
    curl -sf "http://127.0.0.1:$MPORT/metrics" | awk '$1 == "airlock_dir_released_total" { print $2 }'
}
outcome() { metric airlock_dir_assigns_total "outcome=\"$1\"" "$MPORT"; }

log "8 handshakes without a certificate, at once"
pids=()
for i in $(seq 8); do
    timeout 20 openssl s_client -connect "127.0.0.1:$R" -servername "user000$((i % 3 + 1)).grid.example" \
        -CAfile "$SG/ca.pem" </dev/null >"$T/nocert$i.log" 2>&1 &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
closes() { [ "$(grep -c "close relay=grid " "$LOG")" -ge 8 ]; }
wait_for closes
wait_for idle 3
grep -q "login user=" "$LOG" && fail "a client without a certificate logged in"
[ "$(sha_store)" = "$STORE_SHA" ] || fail "the store changed"

log "6 silent ClientHellos, and the real user from the same address"
before=$(released_total)
mark=$(wc -l <"$LOG")
for i in $(seq 6); do hold "s$i" "$R" "user000$((i + 2)).grid.example"; done
SG_PORT=$R
sg_login user0001
code=$(sg_post user0001 /write '{"alarms":[{"metric":"power","threshold":3}]}')
[ "$code" = 200 ] || fail "write: HTTP $code $(cat "$T/body")"
code=$(sg_curl user0001 user0001 '/query_avg?metric=power')
[ "$code" = 200 ] || fail "query: HTTP $code $(cat "$T/body")"
silent=$(tail -n +"$mark" "$LOG" | grep -Ec "router assigned relay=grid conn=[0-9]+ sni=user000[3-8]" || true)
[ "$silent" -lt 6 ] || fail "every silent client got an instance"

log "the silent clients are closed by their instances, the reservations withdrawn"
for i in $(seq 6); do wait_log "$T/s$i.out" '^eof$'; done
refused=$(($(outcome client_limit) + $(outcome pending_limit) + $(outcome none_free)))
[ "$refused" -ge 1 ] || fail "no silent client was refused"
grew() { [ "$(released_total)" -gt "$before" ]; }
wait_for grew
grep -q "login user=user000[2-8]" "$LOG" && fail "a silent client logged in"
[ "$(cat "$T"/store/user000[2-8].db | sha256)" = "$(cat "$SG"/db/user000[2-8].db | sha256)" ] ||
    fail "their stored state changed"
wait_for idle 3
stop_clean "$AL" al
log "ok"
