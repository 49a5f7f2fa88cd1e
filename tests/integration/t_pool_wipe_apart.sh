#!/bin/bash
# t_pool_wipe_apart: the wipe of an instance directory of many files (its
# user filled it, on purpose or not) holds back neither the next user's
# store-back nor the next wipe (built-in provisioning, state:):
#  - erin fills her instance's directory with $FILES files and logs out;
#  - dave logs in on another instance, saves, logs out: his state is stored
#    back while erin's directory is still being removed; when store-backs
#    and wipes shared one thread, his waited for her wipe, and a wipe longer
#    than the state's timeout had it given up (while it still ran: his next
#    login could be served the state before it, which his next store-back
#    then wrote over);
#  - his directory is wiped while hers still is;
#  - dave, back, is served what he saved.
. "$(dirname "$0")/lib.sh"

FILES=${FILES:-120000}
pool_setup
pool_state_store
pool_conf "$CONF" "$P0" <<EOF
    min_idle: 2
    max: 3
    state: {store: $T/store, fetch: ["{user}.db"], store_back: ["{user}.db"], timeout: 30s}
EOF
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 2

pool_assign erin
[ "$(app "$P" "login erin")" = "OK state-of-erin" ] || fail "erin's login was not served"
log "erin makes $FILES files in $NAME"
[ "$(app "$P" "files $FILES" 300)" = OK ] || fail "files"
ERIN=$NAME
INODE=$(stat -c %i "$DIR")
aside() { find "$T/inst" -mindepth 1 -maxdepth 1 -name '.wipe-*' -inum "$INODE" | has .; }
left() { ls -f "$(find "$T/inst" -maxdepth 1 -inum "$INODE")" 2>/dev/null | wc -l; }
[ "$(app "$P" logout)" = BYE ] || fail "erin's logout"
wait_for aside

pool_assign dave
[ "$(app "$P" "login dave")" = "OK state-of-dave" ] || fail "dave's login was not served"
[ "$(app "$P" "save dave-v2")" = OK ] || fail "dave's save"
[ "$(app "$P" logout)" = BYE ] || fail "dave's logout"
wait_log "$LOG" "instance=$NAME hook=deprovision ok" 60
aside || fail "dave's state was stored back only once erin's directory was wiped"
log "dave's state stored back while $(left) entries of erin's directory were left"
wait_log "$LOG" "instance=$NAME wiped entries=" 60
aside || fail "dave's directory was wiped only once erin's was"
log "dave's directory wiped while $(left) entries of erin's were left"
[ "$(cat "$T/store/dave.db")" = dave-v2 ] || fail "the store has dave's $(cat "$T/store/dave.db")"

pool_assign dave
[ "$(app "$P" "login dave")" = "OK dave-v2" ] || fail "dave, back, was not served what he saved"
wait_log "$LOG" "instance=$ERIN wiped entries=" 120
aside && fail "erin's directory is still there after its wipe"
stop_clean "$AL" al
log "ok"
