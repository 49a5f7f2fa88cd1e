#!/bin/bash
# t_pool_state_names: the names of a pool's state: (fetch_optional, fetch,
# store_back) each name one user's file. Before, any names were taken, and
# with fetch_optional ["{user}"] beside fetch ["{user}.db"] a user named
# "dave.db" was brought dave's database ("dave.db", dave's "{user}.db") and
# read it; a name stored back without {user} ("shared.db") is every user's;
# a fixed name fetched for all ("ca.pem") is the "{user}.pem" of a user
# "ca", whose store-back writes it. Now airlock check, run and a reload
# refuse a name stored back without {user}, and two names that one user's
# name can make another user's; the usual sets are taken ("{user}.crt",
# "{user}.key", "{user}.db" and its -wal and -shm, a shared "ca.pem").
. "$(dirname "$0")/lib.sh"

pool_setup
chmod 755 "$T"
mkdir -m 700 "$T/store"
pool_conf "$CONF" "$P0" <<EOF
    state:
      store: $T/store
      fetch_optional: ["{user}.crt", "{user}.key", "ca.pem"]
      fetch: ["{user}.db"]
      store_back: ["{user}.db", "{user}.db-wal", "{user}.db-shm"]
EOF
"$AIRLOCK" check -c "$CONF" >"$T/good.out" 2>&1 || fail "the usual names were refused: $(cat "$T/good.out")"
MEET="may name one file for two users"
# names FETCH_OPTIONAL FETCH STORE_BACK: the sed expression that sets them
names() { printf 's|^      fetch_optional: .*|      fetch_optional: [%s]|; s|^      fetch: .*|      fetch: [%s]|; s|^      store_back: .*|      store_back: [%s]|' "$1" "$2" "$3"; }

log "a user's name that makes one name another user's"
check_refuses "$CONF" "$(names '"{user}"' '"{user}.db"' '"{user}.db"')" \
    'pools[0].state.fetch: "{user}.db" and "{user}" '"$MEET"
check_refuses "$CONF" "$(names '"{user}.key", "{user}.pub.key"' '"{user}.db"' '"{user}.db"')" \
    'pools[0].state.fetch_optional: "{user}.pub.key" and "{user}.key" '"$MEET"
check_refuses "$CONF" "$(names '"ca.pem"' '"{user}.db"' '"{user}.db", "{user}.pem"')" \
    'pools[0].state.store_back: "{user}.pem" and "ca.pem" '"$MEET"
check_refuses "$CONF" "$(names '"{user}.crt"' '"{user}.db"' '"{user}.db", "db-{user}"')" \
    'pools[0].state.store_back: "db-{user}" and "{user}.crt" '"$MEET"

log "a name stored back without {user}"
check_refuses "$CONF" "$(names '"{user}.crt"' '"{user}.db"' '"{user}.db", "shared.db"')" \
    'pools[0].state.store_back: expected names with {user}, not "shared.db"'

log "run and a reload refuse them too"
sed "$(names '"{user}"' '"{user}.db"' '"{user}.db"')" "$CONF" >"$T/meet.yaml"
"$AIRLOCK" run -c "$T/meet.yaml" >"$T/run.log" 2>&1 && fail "airlock run took names two users share"
has -F "$MEET" <"$T/run.log" || fail "airlock run said: $(tail -3 "$T/run.log")"
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1
cp "$T/meet.yaml" "$CONF"
kill -HUP "$AL"
wait_log "$LOG" "reload failed, keeping the running config: .*$MEET"
stop_clean "$AL" al
