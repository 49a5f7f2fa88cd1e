#!/bin/bash
# t_pool_state_sweep: at a pool's start airlock removes from its state store
# the temporaries of store-backs that a crash cut short (regular files of
# airlock's uid named .NAME.<16 hex digits>, NAME of the shape of one of the
# pool's state files), and nothing else: a file of another uid, a symlink
# (and its target), a directory, names of other shapes (15 or 17 digits,
# capitals, no leading dot, a NAME no template makes, a NAME starting with a
# dot), the users' files. A reload that does not start the pool sweeps
# nothing.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to plant a file of another uid"
pool_setup
S=$T/store
mkdir -m 0700 "$S"
hex=0123456789abcdef
gone=(".dave.db.$hex" ".erin.db.fedcba9876543210" ".dave.crt.$hex" ".x.y.db.$hex")
stay=("dave.db" "dave.db.$hex" ".dave.db.${hex%f}" ".dave.db.${hex}0" ".dave.db.0123456789ABCDEF"
    ".dave.txt.$hex" ".db.$hex" "...db.$hex" ".other.db.$hex" ".link.db.$hex" ".dir.db.$hex")
for f in "${gone[@]}" "${stay[@]:0:8}"; do printf '%s\n' "$f" >"$S/$f"; done
printf 'other\n' >"$S/.other.db.$hex"
chown "$(free_uids 1)" "$S/.other.db.$hex"
printf 'victim\n' >"$T/victim"
ln -s "$T/victim" "$S/.link.db.$hex"
mkdir "$S/.dir.db.$hex"
: >"$S/.dir.db.$hex/.dave.db.$hex"

pool_conf "$CONF" "$P0" <<EOF
    min_idle: 1
    state:
      store: $S
      fetch_optional: ["{user}.crt"]
      fetch: ["{user}.db"]
      store_back: ["{user}.db"]
EOF
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_log "$LOG" "pool=fa: state.store: removed ${#gone[@]} temporary files left in $S\$"
for f in "${gone[@]}"; do [ ! -e "$S/$f" ] || fail "$f was left"; done
for f in "${stay[@]}"; do [ -e "$S/$f" ] || [ -L "$S/$f" ] || fail "$f was removed"; done
[ "$(cat "$T/victim")" = victim ] || fail "the link's target changed"
[ -e "$S/.dir.db.$hex/.dave.db.$hex" ] || fail "the sweep went into a directory"

log "a reload that keeps the pool sweeps nothing"
printf 'new\n' >"$S/.frank.db.$hex"
sed -i 's/min_idle: 1$/min_idle: 2/' "$CONF"
kill -HUP "$AL"
wait_log "$LOG" "reloaded $CONF: .*generation 2"
[ -e "$S/.frank.db.$hex" ] || fail "the reload swept the store"
[ "$(grep -c 'temporary files left' "$LOG")" = 1 ] || fail "swept again: $(grep 'temporary files left' "$LOG")"
stop_clean "$AL" al
log ok
