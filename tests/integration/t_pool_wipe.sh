#!/bin/bash
# t_pool_wipe: an instance directory of 150,000 files is wiped off the main
# loop, and its uid is not used again before the wipe is done.
#  - once the directory has left its place (renamed aside at the end of the
#    session), a relay of the same airlock accepts and relays a connection
#    while the files are still being removed (the directory, found by its
#    inode, still exists after the answer came back); when the wipe ran on
#    the main loop, nothing was accepted until it was over (1.5 s here);
#  - nor does it hold back another user's login: the user's state (the
#    pool's state:) comes in and the login is answered while the files are
#    still being removed; when the fetch ran on the wipe's thread, it waited
#    for the wipe to end;
#  - no process of the instance's uid runs while its directory exists; once
#    it is gone, the uid is handed out again (the lowest free one);
#  - the log says how many entries went;
#  - what an earlier airlock left in the base directory (an instance
#    directory of the pool, one renamed aside for wiping) is wiped at start,
#    with the directory's node name in the instances' names too.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run instances as other uids"
need socat
need redis-server
FILES=${FILES:-150000}
pool_setup
pool_state_store # and $U0
read -r RL ECHO <<<"$(free_ports 2)"
pool_conf "$CONF" "$P0" <<EOF
    min_idle: 2
    max: 2
    uids: $U0-$((U0 + 2))
    state:
      store: $T/store
      fetch: ["{user}.db"]
      store_back: ["{user}.db"]
relays:
  - listen: tcp:127.0.0.1:$RL
    target: tcp:127.0.0.1:$ECHO
EOF
start echo socat TCP-LISTEN:"$ECHO",bind=127.0.0.1,reuseaddr,fork PIPE
mkdir -p "$T/inst/fa-7/sub" "$T/inst/.wipe-1-1" "$T/inst/other-1"
touch "$T/inst/fa-7/sub/state.db" "$T/inst/.wipe-1-1/state.db"
chmod 711 "$T/inst"
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 2
wait_for tcp_up "$ECHO"
wait_log "$LOG" "pool=fa: wiping 2 directories left in $T/inst"
wait_for eval '[ "$(ls -A "$T/inst" | grep -v "^fa-[0-9]*$")" = other-1 ]'
[ ! -e "$T/inst/fa-7" ] || fail "fa-7 left"
rmdir "$T/inst/other-1"

# the port of the idle instance running as uid $1
port_of_uid() {
    local p
    for p in $(awk '/ starting pid=/ { for (i = 1; i <= NF; i++) if ($i ~ /^port=/) print substr($i, 6) }' "$LOG"); do
        [ "$(app "$p" id 2>/dev/null)" = "$1 $1" ] && { echo "$p"; return; }
    done
}
echo_ok() { [ "$(echo hello | timeout 10 socat -t 5 - "TCP:127.0.0.1:$RL")" = hello ]; }
echo_ok || fail "the relay does not answer"

PA=$(port_of_uid "$U0")
PB=$(port_of_uid $((U0 + 1)))
[ -n "$PA" ] && [ -n "$PB" ] || fail "no instances as $U0 and $((U0 + 1))"
A=$(ss -Htlnp "sport = :$PA" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
DIRA=$(readlink "/proc/$A/cwd")
NAME=$(basename "$DIRA")
INODE=$(stat -c %i "$DIRA")
log "$NAME (uid $U0) makes $FILES files"
[ "$(app "$PA" "files $FILES" 300)" = OK ] || fail "files"
[ "$(find "$DIRA" -maxdepth 1 -type f | wc -l)" = "$FILES" ] || fail "not $FILES files"
aside() { find "$T/inst" -mindepth 1 -maxdepth 1 -inum "$INODE" | has .; }

log "logout: the directory leaves its place, the relay answers while it is wiped"
[ "$(app "$PA" logout)" = BYE ] || fail "logout"
wait_for test ! -e "$DIRA"
start_ns=$(date +%s%N)
echo_ok || fail "the relay does not answer while the directory is wiped"
ms=$(elapsed_ms "$start_ns")
aside || fail "the wipe was over before the relay answered (in $ms ms): it ran on the main loop"
log "the relay answered in $ms ms while $(ls -f "$(find "$T/inst" -maxdepth 1 -inum "$INODE")" 2>/dev/null | wc -l) entries were left"
start_ns=$(date +%s%N)
PD=$(assign_port dave)
[ "$(app "$PD" "login dave")" = "OK state-of-dave" ] || fail "dave's login was not served"
ms=$(elapsed_ms "$start_ns")
aside || fail "dave's state came in only once the wipe was over (in $ms ms): it waited for the wipe"
log "dave logged in in $ms ms while $(ls -f "$(find "$T/inst" -maxdepth 1 -inum "$INODE")" 2>/dev/null | wc -l) entries were left"
[ -z "$(uid_procs "$U0")" ] || ! aside || fail "uid $U0 runs again before its directory is wiped: $(uid_procs "$U0")"
wait_log "$LOG" "instance=$NAME wiped entries=$((FILES + 1)) " 120
aside && fail "the directory is still there after the wipe"

log "the uid comes back after the wipe: the next fresh instance gets it"
[ "$(app "$PB" logout)" = BYE ] || fail "logout of B"
wait_for eval '[ -n "$(port_of_uid "$U0")" ]'
stop_clean "$AL" al
[ -z "$(ls -A "$T/inst")" ] || fail "left in $T/inst: $(ls -A "$T/inst")"

log "with the directory's node name the instances are fa-n1-N: those an earlier airlock left go too"
redis_unix
dir_settings "$CONF" redis "node: n1"
mkdir -p "$T/inst/fa-n1-9/sub" "$T/inst/fa-n2-1"
touch "$T/inst/fa-n1-9/sub/state.db"
airlock_up al2 run -c "$CONF"
AL2=$LAST_PID
wait_log "$T/al2.log" "pool=fa: wiping 1 directories left in $T/inst"
wait_for test ! -e "$T/inst/fa-n1-9"
wait_for eval '[ "$(ls "$T/inst" | grep -c "^fa-n1-[0-9]*$")" = 2 ]'
[ -d "$T/inst/fa-n2-1" ] || fail "another node's name was taken for this one's"
stop_clean "$AL2" al2
log "ok"
