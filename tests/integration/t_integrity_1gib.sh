#!/bin/bash
# t_integrity_1gib: 1 GiB each way at the same time through a chain of two
# relays (tcp -> unix -> tcp) arrives intact (same SHA-256 at both ends),
# ends with end=eof and is counted exactly in the close lines. Run twice:
# splice() on both hops, then the buffer path (--no-splice) on the second.
# BYTES (default 1 GiB) sets the size of each direction.
. "$(dirname "$0")/lib.sh"

BYTES=${BYTES:-$((1 << 30))}
FRONT=$(free_port)

log "expected digests of $BYTES bytes each way"
gen_data up "$BYTES" | sha256 >"$T/up.want" &
gen_data down "$BYTES" | sha256 >"$T/down.want"
wait $!

airlock_up front relay "tcp:127.0.0.1:$FRONT" "unix:$T/chain.sock" --name front
FRONT_PID=$LAST_PID
runs=0

# run_once LABEL BACK_OPTIONS...: one full-duplex transfer through the chain
# with a fresh back relay started with BACK_OPTIONS.
run_once() {
    local label=$1 server t0 srv cli
    shift
    server=$(free_port)
    airlock_up "back-$label" relay "unix:$T/chain.sock" "tcp:127.0.0.1:$server" --name back "$@"
    local back=$LAST_PID
    rm -f "$T/up.got" "$T/down.got"
    (gen_data down "$BYTES" | timeout 120 "$NETPEER" listen "tcp:127.0.0.1:$server" |
        sha256 >"$T/up.got") &
    srv=$!
    wait_for tcp_up "$server"
    t0=$(date +%s%N)
    (gen_data up "$BYTES" | timeout 120 "$NETPEER" connect "tcp:127.0.0.1:$FRONT" |
        sha256 >"$T/down.got") &
    cli=$!
    wait "$cli" || fail "$label: the client failed"
    wait "$srv" || fail "$label: the server failed"
    log "$label: $BYTES bytes each way in $(elapsed_ms "$t0") ms"
    cmp -s "$T/up.want" "$T/up.got" || fail "$label: client -> server data differs"
    cmp -s "$T/down.want" "$T/down.got" || fail "$label: server -> client data differs"
    stop_clean "$back" "back-$label"
    runs=$((runs + 1))
    for l in "$T/back-$label.log:1" "$T/front.log:$runs"; do
        [ "$(grep -c "close relay=.* bytes_in=$BYTES bytes_out=$BYTES end=eof\$" "${l%:*}")" = "${l##*:}" ] ||
            { cat "${l%:*}" >&2; fail "$label: not ${l##*:} close lines with both byte counts and end=eof in ${l%:*}"; }
    done
}

run_once splice
run_once no-splice --no-splice
stop_clean "$FRONT_PID" front
log "pass"
