#!/bin/bash
# t_std_fds_closed: a daemon started with fds 0, 1 and 2 closed (`<&- >&-
# 2>&-`, as some supervisors and scripts do) has /dev/null there, so its log
# lines and its output reach no socket of its own:
#  - airlock relays connections (debug lines for each) and each client reads
#    exactly the server's bytes; its fds 0-2 are /dev/null (before: the
#    loop's epoll and eventfd descriptors took them, and every log line was
#    written into those);
#  - smartgrid-server: a user logs in, writes and logs out over TLS (the
#    server exits with 0 then); its fds 0-2 are /dev/null (before: its listening socket and an accepted client
#    took them, and the client read the server's log lines in place of its
#    TLS records: the login failed).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"

# closed NAME COMMAND...: start(), with fds 0, 1 and 2 closed
closed() {
    local name=$1
    shift
    start "$name" bash -c 'exec "$@" <&- >&- 2>&-' _ "$@"
}

# std_fds_null PID: fail unless fds 0, 1 and 2 of PID are /dev/null
std_fds_null() {
    local fd l
    for fd in 0 1 2; do
        l=$(readlink "/proc/$1/fd/$fd") || fail "fd $fd of $1 is not open"
        [ "$l" = /dev/null ] || fail "fd $fd of $1 is $l, not /dev/null"
    done
}

read -r L S <<<"$(free_ports 2)"
gen_data payload 65536 >"$T/payload"
want=$(sha256 <"$T/payload")
start server socat TCP-LISTEN:"$S",bind=127.0.0.1,reuseaddr,fork SYSTEM:"cat '$T/payload'"
wait_for tcp_up "$S"

log "airlock with its standard fds closed relays whole"
closed al "$AIRLOCK" relay "tcp:127.0.0.1:$L" "tcp:127.0.0.1:$S" --log-level debug
al=$LAST_PID
wait_for tcp_up "$L"
for i in 1 2 3; do
    got=$(timeout 10 socat -t 5 -u "TCP:127.0.0.1:$L" - | sha256)
    [ "$got" = "$want" ] || fail "client $i did not read exactly the server's bytes"
done
std_fds_null "$al"
stop_clean "$al" al

log "smartgrid-server with its standard fds closed serves a login"
sg_provision 1
U=user0001
mkdir -p "$T/inst"
cp "$SG/db/$U.db" "$T/inst/"
SG_PORT=$(free_port)
closed sg "$SG_BIN/smartgrid-server" --listen "tcp:127.0.0.1:$SG_PORT" --dir "$T/inst" \
    --cert "$SG/server.pem" --key "$SG/server.key" --ca "$SG/ca.pem" --log-level debug
sg=$LAST_PID
wait_for tcp_up "$SG_PORT"
sg_login "$U"
std_fds_null "$sg"
sg_write_logout "$U" # and the server exits
wait_exit "$sg"
[ "$EXIT_STATUS" = 0 ] || fail "smartgrid-server exited with status $EXIT_STATUS"
log "pass"
