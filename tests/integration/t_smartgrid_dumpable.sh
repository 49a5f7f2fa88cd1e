#!/bin/bash
# t_smartgrid_dumpable: smartgrid-server makes itself non-dumpable first
# thing: another process of the same uid (a neighbour under a shared pool
# user, or the server's own descendants) cannot open its /proc/PID/mem or
# environ, while a process of that uid can open those of an ordinary
# program (the control: the check itself works).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run the server as another uid"
need setpriv
U=$(free_uids 1)
as_u() { setpriv --reuid="$U" --regid="$U" --clear-groups "$@"; }
sg_provision 1
chmod 755 "$T"
chgrp "$U" "$SG/server.key"
chmod 640 "$SG/server.key"
mkdir -m 700 "$T/inst"
chown "$U:$U" "$T/inst"
SG_PORT=$(free_port)
start server setpriv --reuid="$U" --regid="$U" --clear-groups "$SG_BIN/smartgrid-server" \
    --listen "tcp:127.0.0.1:$SG_PORT" --dir "$T/inst" --cert "$SG/server.pem" \
    --key "$SG/server.key" --ca "$SG/ca.pem"
SERVER=$LAST_PID
wait_log "$T/server.log" '^WAITING_LOGIN$'
[ "$(stat -c %u "/proc/$SERVER/status")" = 0 ] || fail "not owned by root: /proc/$SERVER is $(stat -c %u "/proc/$SERVER")'s"
start control setpriv --reuid="$U" --regid="$U" --clear-groups sleep 1000
CONTROL=$LAST_PID
wait_for eval '[ "$(stat -c %u "/proc/$CONTROL")" = "$U" ]'

for f in mem environ; do
    as_u sh -c "exec 3</proc/$CONTROL/$f" || fail "the control: uid $U cannot open /proc/$CONTROL/$f"
    as_u sh -c "exec 3</proc/$SERVER/$f" 2>/dev/null && fail "uid $U opens the server's /proc/$SERVER/$f"
done
[ "$(sg_curl user0001 user0001 /login -X POST -d '{}')" = 400 ] || fail "the server does not serve: $(cat "$T/body")"
log "ok"
