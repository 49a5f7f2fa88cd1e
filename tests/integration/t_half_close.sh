#!/bin/bash
# t_half_close: a half-close passes through a chain of two relays
# (tcp -> unix -> tcp) in both directions, with splice and with buffers:
#   - a client that shuts down its write side after 1 MiB still gets the
#     whole 4 MiB reply that the server sends only after reading EOF;
#   - a server that sends 2 MiB and shuts down first still gets the 1 MiB
#     that the client sends only after reading that EOF.
# Both connections end with end=eof on both relays.
. "$(dirname "$0")/lib.sh"

gen_data request $((1 << 20)) >"$T/request"
gen_data reply $((4 << 20)) >"$T/reply"
gen_data banner $((2 << 20)) >"$T/banner"

for mode in splice no-splice; do
    opts=()
    [ "$mode" = no-splice ] && opts=(--no-splice)
    read -r SERVER FRONT <<<"$(free_ports 2)"
    airlock_up "back-$mode" relay "unix:$T/$mode.sock" "tcp:127.0.0.1:$SERVER" --name back "${opts[@]}"
    back=$LAST_PID
    airlock_up "front-$mode" relay "tcp:127.0.0.1:$FRONT" "unix:$T/$mode.sock" --name front "${opts[@]}"
    front=$LAST_PID

    log "$mode: the client half-closes first, the server replies after EOF"
    timeout 10 "$NETPEER" listen "tcp:127.0.0.1:$SERVER" --after-eof <"$T/reply" >"$T/server.got" &
    srv=$!
    wait_for tcp_up "$SERVER"
    timeout 10 "$NETPEER" connect "tcp:127.0.0.1:$FRONT" <"$T/request" >"$T/client.got" ||
        fail "$mode: client: status $?"
    wait "$srv" || fail "$mode: server: status $?"
    cmp -s "$T/server.got" "$T/request" || fail "$mode: the server did not get the request"
    cmp -s "$T/client.got" "$T/reply" || fail "$mode: the client did not get the whole reply"

    log "$mode: the server half-closes first, the client sends after EOF"
    timeout 10 "$NETPEER" listen "tcp:127.0.0.1:$SERVER" <"$T/banner" >"$T/server.got" &
    srv=$!
    wait_for tcp_up "$SERVER"
    timeout 10 "$NETPEER" connect "tcp:127.0.0.1:$FRONT" --after-eof <"$T/request" >"$T/client.got" ||
        fail "$mode: client: status $?"
    wait "$srv" || fail "$mode: server: status $?"
    cmp -s "$T/client.got" "$T/banner" || fail "$mode: the client did not get the banner"
    cmp -s "$T/server.got" "$T/request" || fail "$mode: the server did not get the late request"

    stop_clean "$front" "front-$mode"
    stop_clean "$back" "back-$mode"
    for l in "front-$mode" "back-$mode"; do
        [ "$(ends "$T/$l.log" eof)" = 2 ] || { cat "$T/$l.log" >&2; fail "$l: not 2 connections with end=eof"; }
        grep -q "bytes_in=$((1 << 20)) bytes_out=$((4 << 20)) end=eof" "$T/$l.log" ||
            fail "$l: the first connection was not counted whole"
    done
done
log "pass"
