#!/bin/bash
# t_pool_state_set: the store-back of one session is all or nothing, and
# bounded as a whole (state.max_session_size): the session's store_back
# files (dave.db, then dave.key) are copied to temporaries first and renamed
# into place only when all of them are; when one is refused or the session's
# files hold more than max_session_size (96KiB here, max_file_size 64KiB),
# the store keeps BOTH of the user's previous files (never this session's
# dave.db beside the last one's dave.key), no temporary stays, the refusal
# is logged and counted (reason="state"), and the next session gets the
# previous set. Refused: dave.key above max_file_size, dave.key a symlink,
# dave.key missing, two files of 60KiB each (120KiB, by their sizes before a
# byte is copied), dave.key holding more than its size says past what the
# session has left (a FUSE file, counted as copied), the store's
# filesystem full at dave.key (ENOSPC).
# Stored: two files of exactly 48KiB (the bound), then a normal set. The store is a small tmpfs of its own: a bound that does not
# hold fails the test rather than filling the machine's disk.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run instances as other uids"
pool_setup
mkdir "$T/store"
mount -t tmpfs -o size=8m,mode=0755 airlock-test-state-set "$T/store" || skip "cannot mount a tmpfs"
at_exit "umount -l $(printf %q "$T/store")"
pool_state_store
pool_conf "$CONF" "$P0" <<EOF
    uids: $U0-$((U0 + 2))
    min_idle: 1
    max: 1
    state:
      store: $T/store
      store_back: ["{user}.db", "{user}.key"]
      fetch_optional: ["{user}.key"]
      fetch: ["{user}.db"]
      max_file_size: 64KiB
      max_session_size: 96KiB
EOF
airlock_up al run -c "$CONF"
AL=$LAST_PID
failures() { metric airlock_pool_hook_failures_total "pool=\"fa\",hook=\"deprovision\",reason=\"state\"" "$MPORT"; }
as_instance() { setpriv --reuid="$UID_" --regid="$UID_" --clear-groups "$@"; }
# fill NAME BYTES: the instance writes NAME of BYTES bytes, starting "new-NAME"
fill() { { printf 'new-%s\n' "$1"; head -c $(($2 - 5 - ${#1})) /dev/zero; } | as_instance dd of="$DIR/$1" status=none; }

n=0
# session_refused WHY: dave's session (its files set up by the caller on the
# picked instance) ends; its store-back is refused saying WHY, the store
# keeps the previous set whole, and dave's next session is served from it
session_refused() {
    n=$((n + 1))
    [ "$(app "$P" logout)" = BYE ] || fail "logout"
    wait_log "$LOG" "instance=$NAME stopped"
    [ "$(failures)" = $n ] || fail "refusal $n not counted: $(failures)"
    has "instance=$NAME state=deprovision: $1" <"$LOG" || fail "the refusal is not logged: $(grep "instance=$NAME state=" "$LOG")"
    [ "$(cat "$T/store/dave.db")" = state-of-dave ] || fail "dave.db of the refused session stored: $(head -c 20 "$T/store/dave.db")"
    [ "$(cat "$T/store/dave.key")" = key-of-dave ] || fail "dave.key changed: $(head -c 20 "$T/store/dave.key")"
    [ -z "$(ls -A "$T/store" | grep '^\.')" ] || fail "temporaries left: $(ls -A "$T/store")"
    dave_in
}
# dave_in: dave is served on a fresh instance, from what the store holds
dave_in() {
    pool_pick
    pool_reserve dave
    [ "$(app "$P" "login dave")" = "OK $(head -1 "$T/store/dave.db")" ] || fail "dave's next session: $(app "$P" "read dave.db")"
}

dave_in
log "the second file above max_file_size: neither is stored"
fill dave.db 100
fill dave.key 65537
session_refused "dave.key refused: 65537 bytes, more than max_file_size .65536 bytes.$"
log "the second file a symlink: neither is stored"
fill dave.db 100
[ "$(app "$P" "symlink dave.key $T/victim")" = OK ] || fail "symlink"
session_refused "cannot open dave.key"
[ "$(cat "$T/victim")" = victim ] || fail "the victim changed"
log "the second file missing: neither is stored"
fill dave.db 100
rm -f "$DIR/dave.key"
session_refused "no state dave.key"
log "two files within max_file_size, together above max_session_size: neither is stored"
fill dave.db 61440
fill dave.key 61440
session_refused "dave.key refused: 61440 bytes with the 61440 bytes of the session's files before it, more than max_session_size .98304 bytes.$"
log "a second file that holds more than its size says, past what the session has left, as it is copied"
at_exit growfile_umount
fill dave.db 61440
fill dave.key 100
# over dave.key, the instance's: 1 KiB by its size (within the 36KiB left),
# 60 KiB (within max_file_size) when read
start growfile "$GROWFILE" "$DIR/dave.key" --says 1024 --holds 61440 --owner "$UID_:$UID_"
wait_for eval '[ "$(stat -c %s "$DIR/dave.key")" = 1024 ]'
session_refused "dave.key refused: it grew while it was copied, more than max_session_size .98304 bytes.$"
growfile_umount

log "the store's filesystem full at the second file (ENOSPC): neither is stored"
avail=$(df --output=avail -B1 "$T/store" | tail -1)
# 60KiB left: dave.db (40KiB) fits, dave.key (40KiB, within the bounds) not
head -c $((avail - 60 * 1024)) /dev/zero >"$T/store/filler"
fill dave.db 40960
fill dave.key 40960
session_refused "cannot copy dave.key: No space left on device"
rm "$T/store/filler"

log "two files of exactly max_session_size together are stored"
fill dave.db 49152
fill dave.key 49152
cp "$DIR/dave.db" "$T/db.sent"
cp "$DIR/dave.key" "$T/key.sent"
[ "$(app "$P" logout)" = BYE ] || fail "logout"
wait_log "$LOG" "instance=$NAME stopped"
cmp -s "$T/store/dave.db" "$T/db.sent" && cmp -s "$T/store/dave.key" "$T/key.sent" ||
    fail "the set at the bound was not stored: $(grep "instance=$NAME state=" "$LOG")"
[ "$(failures)" = $n ] || fail "the set at the bound was refused: $(failures)"

log "a normal session stores both"
dave_in
[ "$(app "$P" "save dave-v3")" = OK ] || fail "save"
printf 'key-v3\n' | as_instance dd of="$DIR/dave.key" status=none
[ "$(app "$P" logout)" = BYE ] || fail "logout"
wait_log "$LOG" "instance=$NAME stopped"
[ "$(cat "$T/store/dave.db")" = dave-v3 ] && [ "$(cat "$T/store/dave.key")" = key-v3 ] ||
    fail "the store holds $(cat "$T/store/dave.db") $(cat "$T/store/dave.key")"
[ -z "$(ls -A "$T/store" | grep '^\.')" ] || fail "temporaries left: $(ls -A "$T/store")"
[ "$(stat -c '%u %h %a' "$T/store/dave.key")" = "0 1 600" ] || fail "dave.key stored as $(stat -c '%u %h %a' "$T/store/dave.key")"
stop_clean "$AL" al
log ok
