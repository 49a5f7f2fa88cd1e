#!/bin/bash
# t_pool_replace_delay: the start that replaces an instance a user took
# waits, while another instance is idle, for that user's login line and
# replace_after_login after it (its start would compete with the login), and
# never longer than replace_delay after the take:
#  - u1 reserves one of two idle instances: no start while its login is on
#    its way; its login line (confirmed): the start follows, long before the
#    20 s replace_delay;
#  - u2 then u3 reserve: the last idle one taken, both owed starts at once;
#  - after a reload to replace_delay 1500ms, u4 reserves and never logs in:
#    its instance is replaced 1.5 s after the reservation, not before;
#  - after a reload to replace_after_login 1500ms (replace_delay 20s), u5's
#    instance is replaced 1.5 s after its login line, not before.
. "$(dirname "$0")/lib.sh"

pool_setup
mkdir -m 0755 "$T/store"
# state: makes the pool see a reservation (it brings the state in then), the
# take before the login line
conf() {
    pool_conf "$CONF" "$P0" --state-wait 0 <<EOF
    min_idle: 2
    max: 10
    max_idle: 2
    cooldown: 60s
    replace_delay: $1
    replace_after_login: ${2:-20ms}
    state:
      store: $T/store
      fetch_optional: ["{user}.db"]
EOF
}
conf 20s
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 2

# login USER PORT: logs USER in on the instance PORT reserved for it
login() {
    [ "$(app "$2" "login $1")" = NOSTATE ] || fail "login $1 on $2"
    wait_log "$LOG" "login user=$1"
}
# ms_of: the time of day in ms of each log line on stdin
ms_of() { awk '{ split(substr($1, 12, 12), t, /[:.]/); print ((t[1] * 60 + t[2]) * 60 + t[3]) * 1000 + t[4] }'; }
starts() { grep -c ' starting pid=' "$LOG"; }
# replaced_after REGEX N WHAT: start N came about 1.5 s after the log line
# REGEX (WHAT), not at once: the delay counts from the loop turn's time,
# which a busy machine can put well before the line's own timestamp
replaced_after() {
    local took started
    took=$(grep "$1" "$LOG" | ms_of)
    started=$(grep ' starting pid=' "$LOG" | sed -n "$2p" | ms_of)
    [ -n "$started" ] || fail "no start $2 after $3"
    log "start $2 came $((started - took)) ms after $3"
    [ $((started - took)) -ge 1400 ] || fail "start $2 came before 1.5 s after $3"
}

log "u1 reserves one of two idle instances: its replacement waits for its login"
p1=$(assign_port u1)
sleep 1
[ "$(starts)" = 2 ] || fail "a start while u1's login was on its way, with an instance idle"
log "u1 logs in: its replacement follows"
login u1 "$p1"
wait_for settled 2
[ "$(starts)" = 3 ] || fail "expected 3 starts after u1's login, saw $(starts)"

log "u2 reserves, then u3 takes the last idle one: both owed starts at once"
p2=$(assign_port u2)
sleep 1
[ "$(starts)" = 3 ] || fail "a start while u2's login was on its way, with an instance idle"
p3=$(assign_port u3)
wait_for settled 2
[ "$(starts)" = 5 ] || fail "expected 5 starts, saw $(starts)"
login u2 "$p2"
login u3 "$p3"

log "replace_delay 1500ms: a reservation never followed by a login is replaced 1.5 s later"
conf 1500ms
kill -HUP "$AL"
wait_log "$LOG" "pool=fa reconfigured"
p4=$(assign_port u4)
wait_for settled 2
replaced_after 'reserved user=u4' 6 "u4's reservation"
login u4 "$p4" # no login left on its way

log "replace_after_login 1500ms: a login is replaced 1.5 s after its login line"
conf 20s 1500ms
kill -HUP "$AL"
reloaded_twice() { [ "$(grep -c 'pool=fa reconfigured' "$LOG")" = 2 ]; }
wait_for reloaded_twice
p5=$(assign_port u5)
login u5 "$p5"
wait_for settled 2
replaced_after 'login user=u5' 7 "u5's login line"
stop_clean "$AL" al
log "ok"
