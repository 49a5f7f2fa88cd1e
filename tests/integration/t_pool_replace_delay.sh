#!/bin/bash
# t_pool_replace_delay: the start that replaces an instance a user took
# waits replace_delay while another instance is idle (its start would
# compete with that user's login), and no longer:
#  - a login takes one of two idle instances: no start until a second login
#    takes the last idle one, then both owed starts at once (long before the
#    20 s delay);
#  - after a reload to 1500ms, a take is replaced 1.5 s later, not before.
. "$(dirname "$0")/lib.sh"

pool_setup
conf() {
    pool_conf "$CONF" "$P0" --state-wait 0 <<EOF
    min_idle: 2
    max: 10
    max_idle: 2
    cooldown: 60s
    replace_delay: $1
EOF
}
conf 20s
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 2

# login USER: reserves an idle instance for USER and logs USER in on it
login() {
    local p
    p=$(assign_port "$1")
    [ "$(app "$p" "login $1")" = NOSTATE ] || fail "login $1 on $p"
    wait_log "$LOG" "login user=$1"
}
# ms_of: the time of day in ms of each log line on stdin
ms_of() { awk '{ split(substr($1, 12, 12), t, /[:.]/); print ((t[1] * 60 + t[2]) * 60 + t[3]) * 1000 + t[4] }'; }
starts() { grep -c ' starting pid=' "$LOG"; }

log "u1 takes one of two idle instances: its replacement waits"
login u1
[ "$(starts)" = 2 ] || fail "a start at u1's login, with an instance still idle"
log "u2 takes the last idle one: both owed starts at once"
login u2
wait_for settled 2
[ "$(starts)" = 4 ] || fail "expected 4 starts, saw $(starts)"
third=$(grep -n ' starting pid=' "$LOG" | sed -n 3p | cut -d: -f1)
u2=$(grep -n 'out: LOGIN u2' "$LOG" | head -1 | cut -d: -f1)
[ "$third" -gt "$u2" ] || fail "the replacement of u1's instance started before u2 took the last idle one"

log "replace_delay 1500ms: a take is replaced 1.5 s later"
conf 1500ms
kill -HUP "$AL"
wait_log "$LOG" "pool=fa reconfigured"
login u3
wait_for settled 2
took=$(grep 'out: LOGIN u3' "$LOG" | head -1 | ms_of)
started=$(grep ' starting pid=' "$LOG" | sed -n 5p | ms_of)
[ -n "$started" ] || fail "u3's instance was not replaced"
gap=$((started - took))
log "u3's instance replaced $gap ms after its login line"
[ "$gap" -ge 1490 ] || fail "replaced $gap ms after the take, before replace_delay (1500 ms)"
stop_clean "$AL" al
log "ok"
