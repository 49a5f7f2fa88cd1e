#!/bin/bash
# t_pool_state_builtin: built-in provisioning (a pool's state:, no hook
# process): airlock copies a user's files from the store into the instance
# directory at the reservation and back after the session, against a hostile
# instance (its own uid) that plants things at the names:
#  - fetch: dave.db is a symlink to a root-only file, dave.crt a symlink to a
#    directory: both are replaced, neither target changes; the user gets
#    dave.db, dave.crt and dave.key (optional; erin has none) as regular files
#    of the instance's uid, mode 0600, before the login is answered;
#  - store refused (reason="state", the store keeps the user's state, the
#    next session gets it): dave.db a symlink to a root-only file, a named
#    pipe (at once, no timeout), a hard link, a file of another uid (root's);
#  - fetch refused: a directory at dave.db fails the provisioning (the
#    instance is recycled, the login is not served), the store is intact;
#  - normal path: erin's state comes in, what she saved goes back (root's,
#    0600, synced), nothing else is left in the store;
#  - store refused above max_file_size (64KiB here), the store keeps the
#    user's state and the next session gets it: a sparse file of 1 TiB (at
#    once: nothing is copied), a file one byte above the bound, a file
#    that holds more than its size says (a FUSE file of the instance's uid,
#    read as it is copied); a file of exactly the bound is stored;
#  - a crash while reserved stores nothing (what the instance wrote before
#    any login stays out of the store); a crash after the login stores back
#    what the session had;
#  - a reload whose store is not a directory, or one that others may write
#    (mode 0777), is refused, naming each store: the running one stays in
#    use, and a pool it adds with such a store is not started.
# The store is a small tmpfs of its own: a bound that does not hold fails
# the test rather than filling the machine's disk.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run instances as other uids"
pool_setup
mkdir "$T/store"
mount -t tmpfs -o size=32m,mode=0755 airlock-test-state "$T/store" || skip "cannot mount a tmpfs"
at_exit "umount -l $(printf %q "$T/store")"
pool_state_store
mkdir -p "$T/victim-dir"
# one instance at a time: the one the test picks (and plants in) is the one
# a reservation gets
pool_conf "$CONF" "$P0" <<EOF
    min_idle: 1
    max: 1
    uids: $U0-$((U0 + 2))
    state:
      store: $T/store
      fetch_optional: ["{user}.crt", "{user}.key"]
      fetch: ["{user}.db"]
      store_back: ["{user}.db"]
      max_file_size: 64KiB
      timeout: 30s
EOF
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1
failures() { metric airlock_pool_hook_failures_total "pool=\"fa\",hook=\"$1\",reason=\"$2\"" "$MPORT"; }


# logout_stored: the session of the picked instance ends; its store-back is over
logout_stored() {
    [ "$(app "$P" logout)" = BYE ] || fail "logout"
    wait_log "$LOG" "instance=$NAME stopped"
}

store_is() { [ "$(cat "$T/store/$1")" = "$2" ] || fail "the store holds $1: $(cat "$T/store/$1")"; }

# as_instance COMMAND...: COMMAND as the picked instance's uid (its user at work)
as_instance() { setpriv --reuid="$UID_" --regid="$UID_" --clear-groups "$@"; }

log "fetch over planted links"
pool_pick
[ "$(app "$P" "symlink dave.db $T/victim")" = OK ] || fail "symlink"
[ "$(app "$P" "symlink dave.crt $T/victim-dir")" = OK ] || fail "symlink"
pool_reserve dave
out=$(app "$P" "login dave")
[ "$out" = "OK state-of-dave" ] || fail "dave not served: $out"
has "instance=$NAME login user=dave" <"$LOG" || fail "no login line"
[ "$(cat "$T/victim")" = victim ] || fail "the fetch wrote through a planted link: $(cat "$T/victim")"
[ -z "$(ls -A "$T/victim-dir")" ] || fail "the fetch wrote into a linked directory: $(ls -A "$T/victim-dir")"
for f in dave.db dave.crt dave.key; do
    [ -f "$DIR/$f" ] && [ ! -L "$DIR/$f" ] || fail "$f is not a regular file: $(ls -l "$DIR/$f")"
    [ "$(stat -c '%u %h %a' "$DIR/$f")" = "$UID_ 1 600" ] ||
        fail "$f: $(stat -c '%u %h %a' "$DIR/$f"), not $UID_ 1 600"
done
[ "$(app "$P" "read dave.crt")" = "OK cert-of-dave" ] || fail "the instance cannot read its certificate"
[ "$(app "$P" "read dave.key")" = "OK key-of-dave" ] || fail "the instance cannot read its key"
[ -z "$(ls -A "$DIR" | grep '^\.')" ] || fail "temporary files left: $(ls -A "$DIR")"

n=0
refused() { # [WHY]: what the store-back of dave's session must refuse (saying WHY)
    n=$((n + 1))
    logout_stored
    [ "$(failures deprovision state)" = $n ] || fail "refusal $n not counted: $(failures deprovision state)"
    [ "$(failures deprovision timeout)" = 0 ] || fail "a store-back timed out"
    has "instance=$NAME state=deprovision: .*dave.db${1:+.*$1}" <"$LOG" || fail "the refusal is not logged"
    store_is dave.db state-of-dave
    pool_pick
    pool_reserve dave
    [ "$(app "$P" "login dave")" = "OK state-of-dave" ] || fail "dave's next session: $(app "$P" "read dave.db")"
}

log "store refuses a symlink to a root-only file"
[ "$(app "$P" "symlink dave.db $T/secret")" = OK ] || fail "symlink"
refused
log "store refuses a named pipe, at once"
[ "$(app "$P" "fifo dave.db")" = OK ] || fail "fifo"
refused
log "store refuses a hard link"
[ "$(app "$P" "save hard")" = OK ] || fail "save"
[ "$(app "$P" "hardlink dave.db2 dave.db")" = OK ] || fail "hardlink"
refused
log "store refuses a file of another uid"
rm -f "$DIR/dave.db"
printf 'roots\n' >"$DIR/dave.db"
refused
log "store refuses a sparse file of 1 TiB, above max_file_size, at once"
as_instance truncate -s 1T "$DIR/dave.db"
refused "1099511627776 bytes, more than max_file_size (65536 bytes)"
log "store refuses a file one byte above max_file_size"
head -c 65537 /dev/zero | as_instance dd of="$DIR/dave.db" status=none
refused "65537 bytes, more than max_file_size"
log "store refuses a file that holds more than its size says, as it is copied"
at_exit growfile_umount
# over dave.db, the instance's: 1 KiB by its size, 1 MiB when read
start growfile "$GROWFILE" "$DIR/dave.db" --says 1024 --holds 1048576 --owner "$UID_:$UID_"
wait_for eval '[ "$(stat -c %s "$DIR/dave.db")" = 1024 ]'
refused "it grew while it was copied, more than max_file_size"
growfile_umount
logout_stored
[ "$(failures deprovision state)" = $n ] || fail "a plain store-back failed"

log "fetch refuses to replace a directory: recycled, not served"
pool_pick
[ "$(app "$P" "mkdir dave.db")" = OK ] || fail "mkdir"
pool_reserve dave
wait_log "$LOG" "instance=$NAME stopping why=hook_failed"
[ "$(failures provision state)" = 1 ] || fail "the failed fetch is not counted: $(failures provision state)"
out=$(app "$P" "login dave" 5)
[[ $out != "OK"* ]] || fail "served after a failed fetch: $out"
wait_log "$LOG" "instance=$NAME stopped"
store_is dave.db state-of-dave

log "normal path: in before the login, back after it"
pool_pick
pool_reserve erin
[ "$(app "$P" "login erin")" = "OK state-of-erin" ] || fail "erin not served"
[ ! -e "$DIR/erin.crt" ] || fail "an optional file from nowhere"
[ "$(app "$P" "save erin-v2")" = OK ] || fail "save"
logout_stored
store_is erin.db erin-v2
[ "$(stat -c '%u %h %a' "$T/store/erin.db")" = "0 1 600" ] ||
    fail "stored as $(stat -c '%u %h %a' "$T/store/erin.db")"
[ -z "$(ls -A "$T/store" | grep -v '^\(dave\|erin\|frank\)\.\(db\|crt\|key\)$')" ] ||
    fail "left in the store: $(ls -A "$T/store")"

log "a file of exactly max_file_size is stored"
pool_pick
pool_reserve erin
[ "$(app "$P" "login erin")" = "OK erin-v2" ] || fail "erin not served"
{ printf 'erin-v3\n'; head -c $((65536 - 8)) /dev/zero; } >"$T/erin-v3"
as_instance dd of="$DIR/erin.db" status=none <"$T/erin-v3"
logout_stored
cmp -s "$T/store/erin.db" "$T/erin-v3" || fail "the store holds erin.db: $(stat -c %s "$T/store/erin.db") bytes"
[ "$(failures deprovision state)" = $n ] || fail "a file of the bound was refused: $(tail -3 "$LOG")"

log "a crash while reserved stores nothing; after the login, the session's state"
pool_pick
pool_reserve frank
wait_log "$LOG" "instance=$NAME hook=provision ok"
[ "$(app "$P" "write frank.db forged")" = OK ] || fail "write"
app "$P" crash >/dev/null
wait_log "$LOG" "instance=$NAME stopped"
store_is frank.db state-of-frank
pool_pick
pool_reserve frank
[ "$(app "$P" "login frank")" = "OK state-of-frank" ] || fail "frank not served"
[ "$(app "$P" "save frank-v2")" = OK ] || fail "save"
app "$P" crash >/dev/null
wait_log "$LOG" "instance=$NAME stopped"
store_is frank.db frank-v2
[ "$(failures provision state)" = 1 ] && [ "$(failures deprovision state)" = $n ] ||
    fail "failures: provision $(failures provision state), deprovision $(failures deprovision state)"

log "reload: a store that is not a directory, or of mode 0777, is refused: the running one stays in use, a new pool with one is not started"
sed -i "s|store: $T/store\$|store: $T/secret|" "$CONF"
cat >>"$CONF" <<EOF
  - name: fb
    command: [$FAKEAPP, --port, "{port}"]
    endpoint: "tcp:127.0.0.1:{port}"
    ports: $((P0 + 50))-$((P0 + 59))
    dir: $T/inst-fb
    events: {ready: "^WAITING_LOGIN$", login: "^LOGIN (.+)$"}
    state: {store: $T/no-such-store, fetch: ["{user}.db"]}
EOF
kill -HUP "$AL"
wait_log "$LOG" "reload failed, keeping the running config: $CONF: pools\[0\]\.state\.store: expected a directory, not $T/secret .Not a directory.; $CONF: pools\[1\]\.state\.store: expected a directory, not $T/no-such-store"
[ ! -e "$T/inst-fb" ] || fail "the pool that cannot start made its directory"
mkdir -m 0777 "$T/store-0777"
chmod 0777 "$T/store-0777" # past the umask
sed -i "s|store: $T/secret\$|store: $T/store-0777|" "$CONF"
kill -HUP "$AL"
wait_log "$LOG" "reload failed, keeping the running config: $CONF: pools\[0\]\.state\.store: $T/store-0777: expected a directory owned by airlock's user "
pool_pick
pool_reserve frank
[ "$(app "$P" "login frank")" = "OK frank-v2" ] || fail "frank not served after the reload"
[ "$(app "$P" "save frank-v3")" = OK ] || fail "save"
logout_stored
store_is frank.db frank-v3
[ "$(cat "$T/secret")" = root-secret ] || fail "the reload's store was written: $(cat "$T/secret")"
[ -z "$(ls -A "$T/store-0777")" ] || fail "the store of mode 0777 was written: $(ls -A "$T/store-0777")"
stop_clean "$AL" al
log "ok"
