#!/bin/bash
# t_pool_endpoint_name: with uids, an instance's socket is a file in its own
# directory. An abstract name (unix:@grid-{instance}) or a file elsewhere
# (unix:DIR/{instance}.sock, DIR writable by every instance, as the
# application itself needs) can be taken by another instance before the
# one it names starts: instance names are predictable. Before, airlock took
# such a pool: a process of another uid that listens on the names of the
# next instances makes each of their starts fail, and an application that
# carries on without its socket has the router send its users to that
# process. Now `airlock check` and `airlock run` refuse it, and a reload
# that brings one in is refused; unix:{dir}/app.sock is taken.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run instances as other uids"
pool_setup
chmod 755 "$T"
mkdir -m 1777 "$T/socks"
U0=$(free_uids 3)
pool_conf "$CONF" "$P0" <<EOF
    min_idle: 1
    max: 2
    uids: $U0-$((U0 + 2))
EOF
MSG="pools[0].endpoint: expected a socket file in the instance's directory ({dir}/NAME) with uids"
ep() { sed "s|^    endpoint: .*|    endpoint: \"$1\"|" "$CONF"; }

log "check refuses an abstract name, a file elsewhere, a way out of {dir}"
for bad in "unix:@fa-{instance}" "unix:$T/socks/{instance}.sock" "unix:{dir}/../{instance}.sock" \
    "hvsock:$T/socks/{instance}.sock:52"; do
    check_refuses "$CONF" "s|^    endpoint: .*|    endpoint: \"$bad\"|" "$MSG"
done
ep "unix:{dir}/app.sock" >"$T/good.yaml"
"$AIRLOCK" check -c "$T/good.yaml" >"$T/good.out" 2>&1 || fail "check refused unix:{dir}/app.sock: $(cat "$T/good.out")"
# without uids (one user for all, or airlock's) instances are not apart anyway
sed '/^    uids: /d' "$T/bad.yaml" >"$T/nouids.yaml"
"$AIRLOCK" check -c "$T/nouids.yaml" >"$T/nouids.out" 2>&1 || fail "check refused it without uids: $(cat "$T/nouids.out")"

log "run refuses it"
ep "unix:@fa-{instance}" >"$T/abstract.yaml"
"$AIRLOCK" run -c "$T/abstract.yaml" >"$T/run.log" 2>&1 && fail "airlock run took an abstract endpoint"
has -F "$MSG" <"$T/run.log" || fail "airlock run said: $(tail -3 "$T/run.log")"

log "a reload that brings one in is refused"
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1
ep "unix:$T/socks/{instance}.sock" >"$T/next.yaml"
cp "$T/next.yaml" "$CONF"
kill -HUP "$AL"
wait_log "$LOG" "reload failed, keeping the running config: .*$(printf '%s' "$MSG" | sed 's/[][(){}.*]/\\&/g')"
P=$(assign_port dave)
[ "$(app "$P" "login dave")" = NOSTATE ] || fail "dave not served on the running config"
stop_clean "$AL" al
