#!/bin/bash
# t_ctl: `airlock ctl` against a running airlock whose directory is a real
# redis-server, with instances reported by another process (dirtool): it
# lists instances and sessions (the reserved key shows), drains POOL/NAME
# and a NAME unique across pools (the pool's event list in redis gets the
# drain, so the pool's process hears of it), refuses an ambiguous or unknown
# NAME with a non-zero exit; assign POOL KEY reserves an idle instance for
# KEY as a router does (sticky), refusing an unknown pool (exit 1) and a
# malformed key (a usage error, exit 2). Malformed, over-long and silent
# commands sent to the socket get
# "ERR" and a close, and airlock keeps serving; the directory's metrics
# count the instances by state. A SCRIPT FLUSH on redis does not disturb it.
. "$(dirname "$0")/lib.sh"
need redis-server redis-cli socat
BIN=$(dirname "$AIRLOCK")
DIRTOOL=$BIN/tests/dirtool
SOCK=$T/redis.sock CTL=$T/ctl.sock
M=$(free_port)

start redis redis-server --port 0 --unixsocket "$SOCK" --save '' --appendonly no
wait_for unix_up "$SOCK"
cat >"$T/airlock.yaml" <<YAML
metrics: tcp:127.0.0.1:$M
directory:
  backend: redis
  redis: unix:$SOCK
control: unix:$CTL
YAML
"$AIRLOCK" check -c "$T/airlock.yaml"
airlock_up air run -c "$T/airlock.yaml"
AIR=$LAST_PID
ctl() { "$AIRLOCK" ctl -s "unix:$CTL" "$@"; }

DIRTOOL_POOL=grid "$DIRTOOL" register "unix:$SOCK" airlock: 4 2>/dev/null
DIRTOOL_POOL=other "$DIRTOOL" register "unix:$SOCK" airlock: 2 2>/dev/null
inst=$(DIRTOOL_POOL=grid "$DIRTOOL" assign "unix:$SOCK" airlock: alice 2>/dev/null)
log "alice got $inst"

ctl instances | tee "$T/instances.txt"
head -1 "$T/instances.txt" | has -x '6 instances' || fail "expected 6 instances"
grep -Eq "^grid +$inst +reserved +alice +[0-9]+s +tcp:127.0.0.1:2000[0-9]$" "$T/instances.txt" ||
    fail "alice's reservation is not listed"
[ "$(grep -c ' idle ' "$T/instances.txt")" = 5 ] || fail "expected 5 idle instances"
ctl sessions | tee "$T/sessions.txt"
head -1 "$T/sessions.txt" | has -x '1 sessions' || fail "expected 1 session"
grep -q "alice" "$T/sessions.txt" || fail "alice's session is not listed"

log "drain"
ctl drain "grid/$inst" | has -x "drained grid/$inst" || fail "drain grid/$inst"
redis-cli -s "$SOCK" LRANGE airlock:ev:grid 0 -1 | has "^draining	$inst	" ||
    fail "the pool's event list did not get the drain"
ctl sessions | sed -n 1p | has -x '0 sessions' || fail "alice's session did not end"
ctl instances | has -E "^grid +$inst +draining " || fail "$inst is not draining"
uniq=i2
[ "$inst" = i2 ] && uniq=i3 # i2 and i3 are only in grid
ctl drain $uniq | has -x "drained grid/$uniq" || fail "drain of a unique name"
rc=0; ctl drain i0 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && grep -q "2 pools have an instance i0" "$T/err" || fail "ambiguous name: $rc $(cat "$T/err")"
rc=0; ctl drain grid/nosuch 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && grep -q "no instance grid/nosuch" "$T/err" || fail "unknown instance: $rc"
rc=0; ctl drain 'bad name' 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q "drain: expected NAME or POOL/NAME" "$T/err" || fail "bad name: $rc"

log "malformed, over-long and silent commands"
start silent socat -u "UNIX-CONNECT:$CTL" STDOUT # sends nothing: times out after 5 s
SILENT=$LAST_PID
printf 'bogus\n' | timeout 5 socat - "UNIX-CONNECT:$CTL" >"$T/bogus" || true
grep -q '^ERR unknown command' "$T/bogus" || fail "garbage: $(cat "$T/bogus")"
head -c 3000 /dev/zero | tr "\\0" x | timeout 5 socat - "UNIX-CONNECT:$CTL" >"$T/long" 2>/dev/null || true
grep -q '^ERR command line too long' "$T/long" || fail "over-long: $(cat "$T/long")"
printf '\0\377\n' | timeout 5 socat - "UNIX-CONNECT:$CTL" >"$T/bin" || true
grep -q '^ERR' "$T/bin" || fail "binary: $(cat "$T/bin")"
wait_exit "$SILENT" 10
grep -q '^ERR timed out waiting for a command' "$T/silent.log" || fail "silent: $(cat "$T/silent.log")"
running "$AIR" || fail "airlock died"
ctl instances | sed -n 1p | has -x '6 instances' || fail "ctl after the bad commands"

log "redis forgets the scripts (SCRIPT FLUSH): EVAL takes over, then they are loaded again"
redis-cli -s "$SOCK" SCRIPT FLUSH >/dev/null
ctl instances | sed -n 1p | has -x '6 instances' || fail "ctl after SCRIPT FLUSH"
[ "$(redis-cli -s "$SOCK" INFO memory | grep -c '^number_of_cached_scripts:[1-9]')" = 1 ] ||
    fail "the scripts were not loaded again"

log "metrics"
sleep 1.2 # the counts refresh every second
[ "$(metric airlock_dir_instances 'state="draining"' "$M")" = 2 ] || fail "draining gauge"
[ "$(metric airlock_dir_instances 'state="idle"' "$M")" = 4 ] || fail "idle gauge"

log "assign: a router's request by hand"
a=$(ctl assign grid bob) || fail "assign grid bob"
[[ $a =~ ^grid/i[0-9]\ tcp:127\.0\.0\.1:2000[0-9]$ ]] || fail "assign answered '$a'"
[ "$(ctl assign grid bob)" = "$a" ] || fail "bob's reservation is not sticky"
n=${a%% *}
ctl sessions | has -E "^grid +${n#grid/} +reserved +bob " || fail "bob not reserved: $(ctl sessions)"
rc=0; ctl assign nosuch bob 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && grep -q "no pool nosuch" "$T/err" || fail "unknown pool: $rc $(cat "$T/err")"
rc=0; ctl assign grid -bob 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q "assign: expected POOL KEY" "$T/err" || fail "bad key: $rc $(cat "$T/err")"
running "$AIR" || fail "airlock died"

log "nothing listening: the reason connect(2) gave, not 'Success'"
# no_server ENDPOINT REASON: airlock ctl fails with exit 1 and that reason
no_server() {
    local rc=0
    "$AIRLOCK" ctl -s "$1" sessions 2>"$T/err" || rc=$?
    [ "$rc" = 1 ] && [ "$(cat "$T/err")" = "airlock ctl: cannot connect to $1: $2" ] ||
        fail "no server on $1: status $rc, $(cat "$T/err")"
}
no_server "unix:$T/none.sock" "No such file or directory"
no_server "tcp:127.0.0.1:$(free_port)" "Connection refused"
# a socket file whose listener is gone
socat UNIX-LISTEN:"$T/dead.sock",unlink-close=0 /dev/null &
DEAD=$!
wait_for unix_up "$T/dead.sock"
kill "$DEAD"
wait "$DEAD" 2>/dev/null || true
no_server "unix:$T/dead.sock" "Connection refused"
stop_clean "$AIR" air
[ -e "$CTL" ] && fail "the control socket file was left behind"
echo PASS
