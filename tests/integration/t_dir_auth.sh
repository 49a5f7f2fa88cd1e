#!/bin/bash
# t_dir_auth: the directory logs in to a redis-server that wants a password
# (requirepass) or an ACL user (user airlock on >PW ~airlock:* +@all), with
# the password read from a file of mode 0600 (redis_password_file; the user
# from redis_user). Proves: the right password (alone, or with the ACL user)
# gets assignments and activations; no password, a wrong one, a wrong user,
# each fails every assign with -EIO within 1.5 s and says why in one log line
# (WRONGPASS, NOAUTH) without the password; a password file others may read
# (0644), an empty one or a missing one stops the directory from starting,
# with the reason; the AUTH is sent again on every reconnect (the server
# drops every client; assigns succeed again); airlock itself takes the keys
# from YAML and refuses a password file of mode 0644 at startup. Sentinels
# with a password (requirepass; sentinel_password_file): the right one
# gets the master named and assignments from it; none, or a wrong one, each
# fails every assign with -EIO, said in one log line (NOAUTH; AUTH refused:
# WRONGPASS); a sentinel password file of mode 0644 stops the start.
. "$(dirname "$0")/lib.sh"
need redis-server redis-cli
DIRTOOL=$(dirname "$AIRLOCK")/tests/dirtool
[ -x "$DIRTOOL" ] || fail "build $DIRTOOL first"
export DIRTOOL_PORT_BASE=$(free_range 2)
SOCK=$T/redis.sock
PW="s3cret-$RANDOM-default"
ACLPW="s3cret-$RANDOM-acl"
umask 077
printf '%s\n' "$PW" >"$T/pw"
printf '%s\n' "$ACLPW" >"$T/aclpw"
SPW="s3cret-$RANDOM-sentinel"
printf '%s\n' "$SPW" >"$T/spw"
printf '%s\n' "wrong-$RANDOM" >"$T/wrongpw"
: >"$T/emptypw"
cp "$T/pw" "$T/openpw" && chmod 0644 "$T/openpw"

start redis redis-server --port 0 --unixsocket "$SOCK" --dir "$T" --save '' --appendonly no \
    --requirepass "$PW"
wait_for unix_up "$SOCK"
rcli() { REDISCLI_AUTH=$PW redis-cli -s "$SOCK" "$@"; }
rcli ACL SETUSER airlock on ">$ACLPW" '~airlock:*' '+@all' >/dev/null

# dt NAME ARGS...: dirtool ARGS... with its output in $T/NAME.out and .err
dt() {
    local name=$1
    shift
    "$DIRTOOL" "$@" >"$T/$name.out" 2>"$T/$name.err"
}
no_secret() {
    ! grep -qF -e "$PW" -e "$ACLPW" -e "$SPW" "$T"/*.err "$T"/*.log 2>/dev/null ||
        fail "a password reached a log"
}

log "the password alone: the default user"
export DIRTOOL_REDIS_PASSWORD_FILE=$T/pw
dt reg register unix:$SOCK airlock: 1 || fail "register: $(cat "$T/reg.err")"
dt a1 assign unix:$SOCK airlock: alice || fail "assign with the password: $(cat "$T/a1.err")"
[ "$(cat "$T/a1.out")" = i0 ] || fail "alice got $(cat "$T/a1.out")"
dt act activate unix:$SOCK airlock: i0 alice || fail "activate: $(cat "$T/act.out")"
[ "$(cat "$T/act.out")" = active ] || fail "activate said $(cat "$T/act.out")"

# refused NAME WHY-REGEX ARGS...: assign at $BACKEND (the unix socket by
# default) fails with -ENOTCONN (unreachable; dirtool's assign_wait is 0)
# within 1.5 s, logged
refused() {
    local name=$1 why=$2 t0
    shift 2
    t0=$(date +%s%N)
    if dt "$name" assign "${BACKEND:-unix:$SOCK}" airlock: alice "$@"; then
        fail "$name: assigned $(cat "$T/$name.out")"
    fi
    [ "$(cat "$T/$name.out")" = "Transport endpoint is not connected" ] || fail "$name: $(cat "$T/$name.out")"
    [ "$(elapsed_ms "$t0")" -lt 1500 ] || fail "$name: took $(elapsed_ms "$t0") ms to fail"
    grep -Eq "$why" "$T/$name.err" || { cat "$T/$name.err" >&2; fail "$name: not logged: $why"; }
}
log "a wrong password, no password: refused at once, and said why"
DIRTOOL_REDIS_PASSWORD_FILE=$T/wrongpw refused wrong \
    'redis unreachable why="AUTH as default user refused: WRONGPASS'
DIRTOOL_REDIS_PASSWORD_FILE='' refused none 'NOAUTH'

log "an ACL user"
export DIRTOOL_REDIS_USER=airlock DIRTOOL_REDIS_PASSWORD_FILE=$T/aclpw
dt a2 assign unix:$SOCK airlock: alice || fail "assign as airlock: $(cat "$T/a2.err")"
[ "$(cat "$T/a2.out")" = i0 ] || fail "alice (sticky) got $(cat "$T/a2.out")"
DIRTOOL_REDIS_USER=mallory refused wrong_user 'AUTH as mallory refused: WRONGPASS'
DIRTOOL_REDIS_PASSWORD_FILE=$T/pw refused wrong_acl 'AUTH as airlock refused: WRONGPASS'

log "password files that are not safe or not there stop the start"
for f in openpw:'mode 0644 lets others read it' emptypw:'expected a password of 1-512 bytes' \
    nopw:'No such file'; do
    DIRTOOL_REDIS_PASSWORD_FILE=$T/${f%%:*} dt "bad_${f%%:*}" assign unix:$SOCK airlock: \
        alice && fail "started with ${f%%:*}"
    grep -q "redis_password_file $T/${f%%:*}: ${f#*:}" "$T/bad_${f%%:*}.err" ||
        fail "${f%%:*}: $(cat "$T/bad_${f%%:*}.err")"
done

log "AUTH again on every reconnect: the server drops every client"
start outage "$DIRTOOL" outage unix:$SOCK airlock:out: 5
OUT=$LAST_PID
wait_log "$T/outage.log" '^[0-9]+ 0 [0-9]+$'
n0=$(grep -Ec '^[0-9]+ 0 [0-9]+$' "$T/outage.log")
rcli CLIENT KILL USER airlock >/dev/null
wait_log "$T/outage.log" 'redis unreachable'
# an assign succeeds after the drop (the reconnect logged in as airlock again)
wait_until 10 eval '[ "$(awk "/redis unreachable/ { d = 1 } d && /^[0-9]+ 0 [0-9]+\$/" "$T/outage.log" | wc -l)" -ge 1 ]'
wait_exit "$OUT" 15
[ "$EXIT_STATUS" = 0 ] || { cat "$T/outage.log" >&2; fail "dirtool outage exited with $EXIT_STATUS"; }
[ "$(grep -c 'connected to redis' "$T/outage.log")" -ge 2 ] || fail "no reconnect logged"
[ "$n0" -ge 1 ] || fail "no assign before the drop"

unset DIRTOOL_REDIS_USER DIRTOOL_REDIS_PASSWORD_FILE
log "sentinels with a password: asked with AUTH, or refused and said why"
read -r RP SP <<<"$(free_ports 2)"
start redis-tcp redis-server --port "$RP" --bind 127.0.0.1 --dir "$T" --save '' --appendonly no \
    --requirepass "$PW"
wait_log "$T/redis-tcp.log" 'Ready to accept connections' 10 "$LAST_PID"
cat >"$T/sentinel.conf" <<CONF
port $SP
bind 127.0.0.1
dir $T
requirepass $SPW
sentinel monitor auth 127.0.0.1 $RP 1
sentinel auth-pass auth $PW
CONF
start sentinel redis-server "$T/sentinel.conf" --sentinel
wait_log "$T/sentinel.log" '\+monitor master auth' 10 "$LAST_PID"
export DIRTOOL_SENTINELS=tcp:127.0.0.1:$SP DIRTOOL_REDIS_PASSWORD_FILE=$T/pw BACKEND=sentinels:auth
DIRTOOL_SENTINEL_PASSWORD_FILE=$T/spw dt sreg register sentinels:auth airlock: 1 ||
    fail "register through the sentinel: $(cat "$T/sreg.err")"
DIRTOOL_SENTINEL_PASSWORD_FILE=$T/spw dt s1 assign sentinels:auth airlock: alice ||
    fail "assign through the sentinel: $(cat "$T/s1.err")"
[ "$(cat "$T/s1.out")" = i0 ] || fail "alice got $(cat "$T/s1.out") through the sentinel"
grep -q "connected to redis master 127.0.0.1:$RP" "$T/s1.err" || fail "$(cat "$T/s1.err")"
DIRTOOL_SENTINEL_PASSWORD_FILE=$T/wrongpw refused swrong \
    "sentinel tcp:127.0.0.1:$SP: AUTH refused: WRONGPASS"
refused snone "sentinel tcp:127.0.0.1:$SP: NOAUTH"
DIRTOOL_SENTINEL_PASSWORD_FILE=$T/openpw dt sopen assign sentinels:auth airlock: alice &&
    fail "started with a sentinel password file of mode 0644"
grep -q "sentinel_password_file $T/openpw: mode 0644 lets others read it" "$T/sopen.err" ||
    fail "sentinel password file 0644: $(cat "$T/sopen.err")"
unset DIRTOOL_SENTINELS DIRTOOL_REDIS_PASSWORD_FILE BACKEND

log "airlock: the keys in YAML; a password file of mode 0644 is refused at startup"
dir_yaml() {
    cat <<YAML
control: unix:$T/ctl-$1.sock
directory:
  backend: redis
  redis: unix:$SOCK
  redis_user: airlock
  redis_password_file: $2
YAML
}
dir_yaml ok "$T/aclpw" >"$T/ok.yaml"
airlock_up ok run -c "$T/ok.yaml"
OKPID=$LAST_PID
wait_log "$T/ok.log" 'directory: connected to redis'
"$AIRLOCK" ctl -s "unix:$T/ctl-ok.sock" instances >"$T/instances.txt" || fail "ctl instances"
grep -Eq '^p +i0 +active +alice ' "$T/instances.txt" ||
    fail "airlock's directory did not read redis as airlock: $(cat "$T/instances.txt")"
stop "$OKPID"
dir_yaml open "$T/openpw" >"$T/open.yaml"
if "$AIRLOCK" run -c "$T/open.yaml" >"$T/open.log" 2>&1; then
    fail "airlock started with a password file of mode 0644"
fi
grep -q "redis_password_file $T/openpw: mode 0644 lets others read it" "$T/open.log" ||
    fail "the refusal did not say why: $(cat "$T/open.log")"
no_secret
echo PASS
