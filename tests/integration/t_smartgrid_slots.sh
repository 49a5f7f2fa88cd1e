#!/bin/bash
# t_smartgrid_slots: connections nobody authenticated cannot lock the user
# out of smartgrid-server (16 connection slots):
#  - 16 silent TCP connections and 3 stalled TLS handshakes are open; the
#    user still logs in, writes and queries (each new connection takes the
#    slot of the oldest handshake; only --max-handshakes may handshake);
#  - every one of them is closed: evicted, or after --handshake-timeout;
#  - a handshake on its way (its ClientHello sent) is never pushed out by
#    connections that say nothing or send part of a ClientHello: those
#    take each other's slots;
#  - an established connection of the user with no traffic closes after
#    --idle-timeout;
#  - when the user's own connections fill the established slots, a new one
#    of the user takes the slot of the one idle the longest.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"
need python3
sg_one_user srv "$T/inst" --handshake-timeout 2s --idle-timeout 3s
SRV=$LAST_PID

# keep NAME: a keep-alive connection of the user (its certificate) that
# sends one request and then stays idle; $KEEP_PID
keep() {
    held "$1" openssl s_client -quiet -crlf -connect "127.0.0.1:$SG_PORT" \
        -servername "$U.grid.example" -CAfile "$SG/ca.pem" -cert "$SG/users/$U.pem" \
        -key "$SG/users/$U.key"
    KEEP_PID=$LAST_PID
    held_say "$1" "GET /query_avg?metric=power HTTP/1.1"
    held_say "$1" "Host: $U.grid.example"
    if [ -n "${SG_TOKEN:-}" ]; then held_say "$1" "Authorization: Bearer $SG_TOKEN"; fi
    held_say "$1" ""
    wait_log "$T/$1.out" '^\{"'
}
# closed_within FD MS: the server closed the connection on FD within MS
closed_within() { timeout "$(($2 / 1000 + 1))" cat <&"$1" >/dev/null; }

log "16 silent connections and 3 stalled handshakes; the user works meanwhile"
SILENT=()
for _ in $(seq 16); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$SG_PORT"
    SILENT+=("$fd")
done
for i in 1 2 3; do hold "h$i" "$SG_PORT" "$U.grid.example"; done
sg_login $U
code=$(sg_post $U /write '{"alarms":[{"metric":"power","threshold":3}]}')
[ "$code" = 200 ] || fail "write: HTTP $code $(cat "$T/body")"
code=$(sg_curl $U $U '/query_avg?metric=power')
[ "$code" = 200 ] || fail "query: HTTP $code $(cat "$T/body")"

log "all of them are closed: evicted, or at the handshake timeout"
for fd in "${SILENT[@]}"; do closed_within "$fd" 5000 || fail "a silent connection stays open"; done
for i in 1 2 3; do wait_log "$T/h$i.out" '^eof$' 5; done
grep -q "connection closed reason=handshake_slots_full" "$T/srv.log" || fail "no eviction logged"
exec {late}<>"/dev/tcp/127.0.0.1/$SG_PORT"
t0=$(date +%s%N)
closed_within "$late" 10000 || fail "a silent connection outlived --handshake-timeout"
ms=$(elapsed_ms "$t0")
[ "$ms" -ge 1500 ] || fail "closed after $ms ms, before --handshake-timeout (2 s)"
wait_log "$T/srv.log" "connection closed reason=handshake_timeout"

log "silent and half-hello newcomers push out each other, not a handshake on its way"
hold onway "$SG_PORT" "$U.grid.example"
t0=$(date +%s%N)
QUIET=()
for i in $(seq 12); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$SG_PORT"
    [ $((i % 2)) = 0 ] && printf '\x16\x03\x01' >&"$fd" # part of a ClientHello
    QUIET+=("$fd")
done
sleep 0.5 # the newcomers accepted, each taking a slot
# closed before its --handshake-timeout (2 s): pushed out
! grep -q '^eof$' "$T/onway.out" || [ "$(elapsed_ms "$t0")" -ge 1500 ] ||
    fail "a handshake on its way was pushed out by silent newcomers"
for fd in "${QUIET[@]}"; do exec {fd}>&-; done
wait_log "$T/onway.out" '^eof$' 5 # then its own --handshake-timeout

log "an established connection without traffic closes after --idle-timeout"
keep k0
t0=$(date +%s%N)
wait_exit "$KEEP_PID" 10
ms=$(elapsed_ms "$t0")
[ "$ms" -ge 2500 ] || fail "closed after $ms ms, before --idle-timeout (3 s)"
wait_log "$T/srv.log" "connection closed reason=idle_timeout user=$U"
kill "$SRV"

log "the user's own connections fill the established slots: the idlest makes room"
mkdir -p "$T/inst2"
cp "$SG/db/$U.db" "$T/inst2/"
SG_TOKEN=
sg_server srv2 "$T/inst2" --max-handshakes 12 --idle-timeout 0
for i in 1 2 3 4; do
    keep "e$i"
    eval "E$i=$KEEP_PID"
done
keep e5
wait_exit "$E1" 10
for i in 2 3 4; do running "$(eval echo "\$E$i")" || fail "e$i was closed, not the idlest"; done
wait_log "$T/srv2.log" "connection closed reason=idle_evicted user=$U"
log "ok"
