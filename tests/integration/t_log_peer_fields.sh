#!/bin/bash
# t_log_peer_fields: words a peer chose, with a space, "level=error", a
# newline and a quote in them, are one field of the log line that names
# them, never fields (or a line) of their own. airlock logs in json here
# (log_format), and every line must parse into its keys with none of the
# peer's ("forged", or "level" twice, which json lines rename "_level"):
#  - a redis that refuses AUTH with those words (tests/tools/liar_redis.py):
#    `directory: redis unreachable why="..."`;
#  - a sentinel that names a master host with those words: refused, not
#    dialled nor named (`why="sentinel ...: the master it names is not a
#    host and port"`);
#  - a real redis holding an event of the pool's whose instance name has
#    those words: dropped (`an event with an over-long or bad field
#    dropped`), not logged as `dir pool=fa instance=NAME`;
#  - a pool's provisioning hook leaves a file of that name that cannot be
#    handed to the instance's uid (immutable): `chown name="..."`.
# Before, each went into the line as it was: the json lines had keys
# "_level" and "forged".
. "$(dirname "$0")/lib.sh"
need python3 redis-server redis-cli
WORDS='x level=error\nforged=1 "q'

# lines LOG MSG_REGEX KEY WANT: every line of LOG is one json object without
# a key of the peer's words; at least one whose msg matches MSG_REGEX has
# KEY (absent: no such key) with WANT in its value
lines() {
    python3 - "$@" <<'PY' || fail "$1: $(cat "$1")"
import json, re, sys
path, msg, key, want = sys.argv[1:]
hits = 0
for line in open(path, encoding="utf-8"):
    obj = json.loads(line)
    assert "forged" not in obj and "_level" not in obj, "a field of the peer's: " + line
    assert list(obj)[:3] == ["ts", "level", "msg"], line
    if re.search(msg, obj["msg"]) and (key == "absent" or want in obj.get(key, "")):
        hits += 1
assert hits > 0, "no line: msg ~ %s with %s ~ %s" % (msg, key, want)
PY
}

read -r FR MP <<<"$(free_ports 2)"
(umask 077 && printf 'pw\n' >"$T/pw")
start liar python3 "$ROOT/tests/tools/liar_redis.py" "$FR" "$WORDS"
wait_log "$T/liar.log" '^ready$'

log "a redis that refuses AUTH with words of its own"
cat >"$T/auth.yaml" <<EOF
log_format: json
metrics: tcp:127.0.0.1:$MP
directory:
  backend: redis
  redis: tcp:127.0.0.1:$FR
  redis_password_file: $T/pw
EOF
airlock_up auth run -c "$T/auth.yaml"
wait_log "$T/auth.log" 'redis unreachable' 10
stop_clean "$LAST_PID" auth
lines "$T/auth.log" '^directory: redis unreachable' why 'WRONGPASS x level=error?forged=1 ?q'

log "a sentinel that names a master host with words of its own"
cat >"$T/sentinel.yaml" <<EOF
log_format: json
metrics: tcp:127.0.0.1:$MP
directory:
  backend: redis
  sentinels: [tcp:127.0.0.1:$FR]
  sentinel_master: grid
EOF
airlock_up sentinel run -c "$T/sentinel.yaml"
wait_log "$T/sentinel.log" 'redis unreachable' 10
stop_clean "$LAST_PID" sentinel
lines "$T/sentinel.log" '^directory: redis unreachable' why \
    "sentinel tcp:127.0.0.1:$FR: the master it names is not a host and port"

log "an event of the pool's in redis whose instance name has words of its own"
pool_setup
pool_conf "$CONF" "$P0" <<EOF
    min_idle: 1
    max: 2
EOF
redis_unix
dir_settings "$CONF" redis
sed -i '1i log_format: json' "$CONF"
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1
redis-cli -s "$T/redis.sock" LPUSH "t$$:ev:fa" "$(printf 'idle\tx level=error\nforged=1 "q\ttcp:127.0.0.1:1')" >/dev/null
wait_log "$LOG" 'an event with an over-long or bad field dropped' 10
stop_clean "$AL" al
lines "$LOG" '^directory: pool fa: an event with an over-long or bad field dropped' absent -

log "a provisioning hook's file that cannot be handed over, named with words of its own"
if ! { touch "$T/attr" && chattr +i "$T/attr" 2>/dev/null && chattr -i "$T/attr"; }; then
    log "no immutable files here (chattr): that case is not run"
    log "pass"
    exit 0
fi
chmod 755 "$T" # the instances pass through to their directories
U0=$(free_uids 2)
NAME=$(printf 'x level=error\nforged=1 "q')
pool_conf "$CONF" "$P0" <<EOF
    min_idle: 1
    max: 2
    uids: $U0-$((U0 + 1))
    provision:
      command: [sh, -c, 'touch "\$1/\$2" && chattr +i "\$1/\$2"', p, "{dir}", "x level=error\nforged=1 \"q"]
EOF
sed -i '1i log_format: json' "$CONF"
: >"$LOG"
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1
assign_port dave >/dev/null
wait_log "$LOG" 'chown' 10
find "$T/inst" -name "$NAME" -exec chattr -i {} + # so that the wipe can remove it
stop_clean "$AL" al
lines "$LOG" 'chown' name 'x level=error?forged=1 ?q'
log "pass"
