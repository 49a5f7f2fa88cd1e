#!/bin/bash
# t_reset: a reset crosses the relay as a reset, never as a clean EOF:
#   - a client that aborts (SO_LINGER 0 close) makes the server's read fail
#     with ECONNRESET;
#   - a server that aborts makes the client's read fail with ECONNRESET;
#   - a server that aborts while the client is still sending 64 MiB makes
#     the client's send fail at once;
# with splice and with buffers, and each connection logs end=reset.
# (tcp -> tcp: unix sockets have no RST, see t_hvsock / the report.)
. "$(dirname "$0")/lib.sh"

for mode in splice no-splice; do
    opts=()
    [ "$mode" = no-splice ] && opts=(--no-splice)
    read -r SERVER FRONT <<<"$(free_ports 2)"
    airlock_up "relay-$mode" relay "tcp:127.0.0.1:$FRONT" "tcp:127.0.0.1:$SERVER" "${opts[@]}"
    relay=$LAST_PID

    log "$mode: the client resets after a round trip"
    printf 'hi\n' | timeout 10 "$NETPEER" listen "tcp:127.0.0.1:$SERVER" --no-shut >"$T/server.got" 2>"$T/server.err" &
    srv=$!
    wait_for tcp_up "$SERVER"
    printf 'ping\n' | timeout 10 "$NETPEER" connect "tcp:127.0.0.1:$FRONT" --rst --wait 3 >"$T/client.got" ||
        fail "$mode: client: status $?"
    rc=0
    wait "$srv" || rc=$?
    [ "$rc" = 3 ] || fail "$mode: the server saw no reset (status $rc: $(cat "$T/server.err"))"
    grep -q 'Connection reset by peer' "$T/server.err" || fail "$mode: server: $(cat "$T/server.err")"
    [ "$(cat "$T/client.got")" = hi ] || fail "$mode: the client did not get the greeting first"

    log "$mode: the server resets after a round trip"
    printf 'hello\n' | timeout 10 "$NETPEER" listen "tcp:127.0.0.1:$SERVER" --rst --wait 5 >/dev/null &
    srv=$!
    wait_for tcp_up "$SERVER"
    rc=0
    printf 'ping\n' | timeout 10 "$NETPEER" connect "tcp:127.0.0.1:$FRONT" --no-shut \
        >/dev/null 2>"$T/client.err" || rc=$?
    [ "$rc" = 3 ] || fail "$mode: the client saw no reset (status $rc: $(cat "$T/client.err"))"
    wait "$srv" || fail "$mode: server: status $?"

    log "$mode: the server resets while the client is sending"
    timeout 10 "$NETPEER" listen "tcp:127.0.0.1:$SERVER" --rst --wait 1000000 </dev/null >/dev/null &
    srv=$!
    wait_for tcp_up "$SERVER"
    rc=0
    gen_data bulk $((64 << 20)) | timeout 10 "$NETPEER" connect "tcp:127.0.0.1:$FRONT" \
        >/dev/null 2>"$T/client.err" || rc=$?
    [ "$rc" = 3 ] || fail "$mode: the sending client saw no reset (status $rc: $(cat "$T/client.err"))"
    wait "$srv" || fail "$mode: server: status $?"

    wait_ends "$T/relay-$mode.log" reset 3
    stop_clean "$relay" "relay-$mode"
done
log "pass"
