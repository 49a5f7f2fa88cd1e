#!/bin/bash
# t_pool_give_busy: handing a provisioning hook's files to an instance's uid
# does not hold airlock's loop, whatever the instance put in its directory.
# The login is confirmed while the hook still runs, so the instance (taken
# over by its user) fills its directory with 100,000 names meanwhile; when
# the hook ends, airlock hands over what the hook made at the top of the
# directory. The walk stops after 4096 entries (logged; airlock walked the
# whole directory on its loop before: about 1 s here for these, 4 s for
# 400,000), off airlock's loop: a metrics request made every 50 ms
# meanwhile is answered in under 2 s (a loose bound, for a busy machine);
# the session still ends and is wiped.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run instances as other uids"
pool_setup
chmod 755 "$T"
U0=$(free_uids 2)
pool_conf "$CONF" "$P0" --state-wait 0 <<EOF2
    min_idle: 1
    max: 2
    uids: $U0-$((U0 + 1))
    provision:
      command: [sh, -c, 'touch "\$1/from-hook" && while [ ! -e "\$1/go" ]; do sleep 0.1; done',
                p, "{dir}"]
      timeout: 60s
EOF2
airlock_up al run -c "$CONF"
wait_for settled 1

P=$(assign_port dave)
[ "$(app "$P" "login dave")" = NOSTATE ] || fail "no login" # the hook makes no state
wait_log "$LOG" "login user=dave provisioned=running"
[ "$(app "$P" "files 100000" 120)" = OK ] || fail "the instance could not make its files"
DIR=$(readlink "/proc/$(pid_of_port "$P")/cwd")

# the slowest of the metrics requests made every 50 ms, in ms, until the hook is done
start probe bash -c '
    max=0
    while ! grep -q "hook=provision ok" "$1"; do
        s=$(date +%s%N)
        curl -sf -m 30 -o /dev/null "http://127.0.0.1:$2/metrics" || exit 1
        ms=$((($(date +%s%N) - s) / 1000000))
        [ "$ms" -gt "$max" ] && max=$ms
        echo "$max" >"$3.t" && mv "$3.t" "$3"
        sleep 0.05
    done' _ "$LOG" "$MPORT" "$T/slowest"
PROBE=$LAST_PID
wait_for test -s "$T/slowest"
touch "$DIR/go" # the hook ends
wait_log "$LOG" "hook=provision ok"
wait_for eval '! running "$PROBE"'
SLOWEST=$(cat "$T/slowest")
log "slowest metrics request while the hook's files were handed over: $SLOWEST ms"
[ "$SLOWEST" -lt 2000 ] || fail "airlock's loop was held $SLOWEST ms"
grep -q "more than 4096 entries at the top of its directory after the provisioning hook" "$LOG" ||
    fail "the walk of the instance's directory was not bounded"

[ "$(app "$P" logout)" = BYE ] || fail "logout"
wait_log "$LOG" "wiped entries=" 120
log "ok"
