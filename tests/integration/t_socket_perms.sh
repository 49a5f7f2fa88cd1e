#!/bin/bash
# t_socket_perms: the socket files airlock creates take the mode, owner and
# group they are given, never the umask's, and the control socket checks
# who connects. Under umask 000, with a real unprivileged user:
#   - control is 0600, the relay, logs.listen, log sink (hvsock) and metrics
#     sockets 0660: the user cannot connect to any of them, and cannot drain
#     an instance of a pool (root can);
#   - a control socket set to 0666, and an abstract one (no file, no mode),
#     answer the user "ERR permission denied" (SO_PEERCRED) and nothing is
#     drained; one given group G (mode 0660) lets a member of G in;
#   - SIGHUP applies a new mode and group to listeners that stay open;
#   - `airlock relay --socket-mode/--socket-group` does the same on the
#     command line; an unknown owner is refused before anything listens.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to create users"
need curl socat setpriv useradd
U=tsp$$ G=tspg$$
useradd --no-create-home --shell /usr/sbin/nologin --user-group "$U" ||
    skip "cannot create users here"
groupadd "$G" || { userdel "$U"; skip "cannot create groups here"; }
drop_users() {
    cleanup
    userdel "$U" 2>/dev/null || true
    groupdel "$U" 2>/dev/null || true # when userdel left the user's group
    groupdel "$G" 2>/dev/null || true
}
trap drop_users EXIT
UID_U=$(id -u "$U")
GID_G=$(getent group "$G" | cut -d: -f3)
# as_user [--groups]: runs a command as U (with G as a supplementary group
# when asked), nothing else
as_user() {
    local groups=(--clear-groups)
    [ "$1" = --in-group ] && { groups=(--groups "$GID_G"); shift; }
    setpriv --reuid "$U" --regid "$U" "${groups[@]}" -- "$@"
}
chmod 755 "$T" # U may reach the sockets; their own modes decide
umask 000

pool_setup
pool_conf "$CONF" "$P0" <<EOF
    min_idle: 1
    max: 2
relays:
  - name: app
    listen: unix:$T/app.sock
    target: tcp:127.0.0.1:9
logs:
  forward: hvsock:$T/vm.sock:9200
  listen: unix:$T/log.sock
log_sinks:
  - listen: hvsock:$T/vm.sock:9200
    file: $T/sink.log
EOF
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1
NAME=$(ctl instances | awk 'NR > 2 && $3 == "idle" && n == "" { n = $2 } END { print n }')
[ -n "$NAME" ] || fail "no idle instance: $(ctl instances)"

log "under umask 000: control 0600, the others 0660, all root's"
mode_is() { [ "$(stat -c '%a %U %G' "$1")" = "$2" ]; }
for s in ctl:600 app:660 log:660 vm:660; do
    mode_is "$T/${s%:*}.sock" "${s#*:} root root" ||
        fail "${s%:*}.sock: $(stat -c '%a %U %G' "$T/${s%:*}.sock"), expected ${s#*:} root root"
done

log "the user can connect to none of them, nor drain"
for s in ctl app log vm; do
    out=$(as_user socat -u /dev/null UNIX-CONNECT:"$T/$s.sock" 2>&1) && fail "$U connected to $s.sock"
    [[ $out == *"Permission denied"* ]] || fail "$s.sock: $out"
done
rc=0
as_user "$AIRLOCK" ctl -s "unix:$T/ctl.sock" drain "fa/$NAME" 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && [ "$(cat "$T/err")" = "airlock ctl: cannot connect to unix:$T/ctl.sock: Permission denied" ] ||
    fail "drain as $U: status $rc, $(cat "$T/err")"
ctl instances | has -E "^fa +$NAME +idle " || fail "$NAME is not idle any more: $(ctl instances)"
ctl drain "fa/$NAME" | has -x "drained fa/$NAME" || fail "root cannot drain"

log "SIGHUP: a new mode and group for the listeners that stay"
sed -i "s|^    listen: unix:$T/app.sock|    listen: {endpoint: \"unix:$T/app.sock\", mode: \"0640\", group: $G}|
    s|^  listen: unix:$T/log.sock|  listen: {endpoint: \"unix:$T/log.sock\", mode: \"0606\"}|" "$CONF"
"$AIRLOCK" check -c "$CONF" >/dev/null || fail "config: $("$AIRLOCK" check -c "$CONF" 2>&1)"
kill -HUP "$AL"
wait_log "$LOG" 'reloaded'
mode_is "$T/app.sock" "640 root $G" || fail "app.sock after reload: $(stat -c '%a %U %G' "$T/app.sock")"
mode_is "$T/log.sock" "606 root root" || fail "log.sock after reload: $(stat -c '%a %U %G' "$T/log.sock")"
printf 'from the user\n' | as_user socat -u - UNIX-CONNECT:"$T/log.sock" || fail "0606 refused $U"
wait_for grep -q 'from the user$' "$T/sink.log"
stop_clean "$AL" al

log "the control socket checks who connects: 0666 and abstract sockets"
# ctl_conf CONTROL: a config with a memory directory and that control value
ctl_conf() { printf 'directory: {backend: memory}\ncontrol: %s\n' "$1" >"$T/ctl.yaml"; }
# refused ENDPOINT: U connects but gets "permission denied", root is served
refused() {
    local rc=0
    as_user "$AIRLOCK" ctl -s "$1" instances 2>"$T/err" || rc=$?
    [ "$rc" = 1 ] && grep -Eq "^airlock ctl: permission denied \(uid=$UID_U pid=[0-9]+\)$" "$T/err" ||
        fail "$U on $1: status $rc, $(cat "$T/err")"
    "$AIRLOCK" ctl -s "$1" instances | has -x '0 instances' || fail "root on $1"
}
ctl_conf "{endpoint: \"unix:$T/c.sock\", mode: \"0666\"}"
airlock_up c1 run -c "$T/ctl.yaml"
mode_is "$T/c.sock" "666 root root" || fail "c.sock: $(stat -c '%a %U %G' "$T/c.sock")"
refused "unix:$T/c.sock"
grep -q "ctl refused: permission denied (uid=$UID_U " "$T/c1.log" || fail "no refusal logged"
# anyone who may connect makes refusals at will: a line a second, not one each
as_user /usr/bin/python3 -c '
import socket, sys
refused = 0
for i in range(300):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(sys.argv[1])
        refused += s.recv(100).startswith(b"ERR permission denied")
    except OSError:
        pass
    s.close()
print(refused)' "$T/c.sock" >"$T/refused" 2>&1 || fail "the refused connects failed: $(cat "$T/refused")"
[ "$(cat "$T/refused")" -ge 100 ] || fail "only $(cat "$T/refused") of 300 connects were refused"
n=$(grep -c "ctl refused: permission denied" "$T/c1.log")
[ "$n" -le 4 ] || fail "$n refusal lines for $(cat "$T/refused") refusals"
stop_clean "$LAST_PID" c1
ctl_conf "unix:@tsp$$-ctl"
airlock_up c2 run -c "$T/ctl.yaml"
refused "unix:@tsp$$-ctl"
stop_clean "$LAST_PID" c2

log "a control socket given a group: its members may, others may not"
ctl_conf "{endpoint: \"unix:$T/c.sock\", mode: \"0660\", group: $G}"
airlock_up c3 run -c "$T/ctl.yaml"
mode_is "$T/c.sock" "660 root $G" || fail "c.sock: $(stat -c '%a %U %G' "$T/c.sock")"
as_user --in-group "$AIRLOCK" ctl -s "unix:$T/c.sock" instances | has -x '0 instances' ||
    fail "a member of $G was refused"
rc=0
as_user "$AIRLOCK" ctl -s "unix:$T/c.sock" instances 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && grep -q "cannot connect to unix:$T/c.sock: Permission denied" "$T/err" || fail "not in $G: $(cat "$T/err")"
stop_clean "$LAST_PID" c3

log "airlock relay: 0660 by default, --socket-mode and --socket-group"
airlock_up r1 relay "unix:$T/r.sock" tcp:127.0.0.1:9 --metrics "unix:$T/m.sock"
mode_is "$T/r.sock" "660 root root" && mode_is "$T/m.sock" "660 root root" ||
    fail "relay sockets: $(stat -c '%n %a' "$T/r.sock" "$T/m.sock")"
# into a file first: grep -q leaving early would fail curl's write (pipefail)
curl -sf --unix-socket "$T/m.sock" http://x/metrics >"$T/m.txt" && grep -q '^airlock_connections_total' "$T/m.txt" ||
    fail "metrics over the unix socket"
stop_clean "$LAST_PID" r1
airlock_up r2 relay "unix:$T/r.sock" tcp:127.0.0.1:9 --socket-mode 0600 --socket-group "$G"
mode_is "$T/r.sock" "600 root $G" || fail "r.sock: $(stat -c '%a %U %G' "$T/r.sock")"
stop_clean "$LAST_PID" r2
rc=0
timeout 10 "$AIRLOCK" relay "unix:$T/r.sock" tcp:127.0.0.1:9 --socket-owner "nouser$$" 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q "no such user 'nouser$$'" "$T/err" || fail "unknown owner: $rc $(cat "$T/err")"
[ ! -e "$T/r.sock" ] || fail "a refused command line listened"
log ok
