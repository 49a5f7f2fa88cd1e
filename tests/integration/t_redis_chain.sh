#!/bin/bash
# t_redis_chain: a real redis-server behind a chain of two relays
# (tcp -> unix -> tcp) serves redis-cli and redis-benchmark without errors:
# binary values and a 1 MiB value come back byte for byte, 80,000 benchmark
# requests (50 clients, then pipelined by 16) all reach redis, and both
# relays count the bytes they moved.
. "$(dirname "$0")/lib.sh"
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null ||
    skip "redis-server / redis-tools not installed"

read -r REDIS FRONT M1 M2 <<<"$(free_ports 4)"
start redis redis-server --port "$REDIS" --bind 127.0.0.1 --save '' --appendonly no
wait_for tcp_up "$REDIS"
airlock_up back relay "unix:$T/redis.sock" "tcp:127.0.0.1:$REDIS" --name back \
    --metrics "tcp:127.0.0.1:$M2"
BACK=$LAST_PID
airlock_up front relay "tcp:127.0.0.1:$FRONT" "unix:$T/redis.sock" --name front \
    --metrics "tcp:127.0.0.1:$M1"
FRONT_PID=$LAST_PID
cli() { timeout 20 redis-cli -p "$FRONT" "$@"; }

log "simple commands through the chain"
[ "$(cli PING)" = PONG ] || fail "PING through the chain"
[ "$(cli SET greeting hello)" = OK ] || fail "SET"
[ "$(cli GET greeting)" = hello ] || fail "GET"

log "a binary value (every byte value, CR LF and NUL included)"
for i in $(seq 0 255); do printf "\\$(printf %03o "$i")"; done >"$T/bin"
printf '\r\n\0\r\n$-1\r\n' >>"$T/bin"
[ "$(cli -x SET bin <"$T/bin")" = OK ] || fail "SET of the binary value"
# --raw prints the value and a newline
cli --raw GET bin >"$T/got" && truncate -s -1 "$T/got"
cmp "$T/got" "$T/bin" || fail "the binary value came back different"

log "a 1 MiB value"
gen_data big $((1 << 20)) >"$T/big"
[ "$(cli -x SET big <"$T/big")" = OK ] || fail "SET of 1 MiB"
[ "$(cli STRLEN big)" = $((1 << 20)) ] || fail "STRLEN of the 1 MiB value"
cli --raw GET big >"$T/got" && truncate -s -1 "$T/got"
cmp "$T/got" "$T/big" || fail "the 1 MiB value came back different"

before=$(redis-cli -p "$REDIS" INFO stats | tr -d '\r' | awk -F: '$1 == "total_commands_processed" { print $2 }')
for pipeline in 1 16; do
    log "redis-benchmark -n 20000 -c 50 -t get,set -P $pipeline"
    out=$(timeout 60 redis-benchmark -p "$FRONT" -n 20000 -c 50 -t set,get -P "$pipeline" -q 2>&1) ||
        fail "redis-benchmark failed: $out"
    echo "$out" | tr '\r' '\n' | grep 'requests per second' | sed 's/^/# /'
    echo "$out" | tr '\r' '\n' | grep -iE 'error|refused|reset' && fail "redis-benchmark reported errors"
    for t in SET GET; do
        echo "$out" | tr '\r' '\n' | has -E "^$t: [0-9.]+ requests per second" ||
            fail "no $t result from redis-benchmark: $out"
    done
done
after=$(redis-cli -p "$REDIS" INFO stats | tr -d '\r' | awk -F: '$1 == "total_commands_processed" { print $2 }')
log "redis processed $((after - before)) commands"
[ $((after - before)) -ge 80000 ] || fail "redis processed $((after - before)) commands, not 80000"

log "metrics: both relays moved the bytes"
for name in front back; do
    port=$M1
    [ "$name" = back ] && port=$M2
    in=$(metric airlock_bytes_in_total "relay=\"$name\"" "$port")
    out=$(metric airlock_bytes_out_total "relay=\"$name\"" "$port")
    log "$name: bytes_in=$in bytes_out=$out"
    [ "${in:-0}" -gt $((1 << 20)) ] || fail "$name: bytes_in_total $in, expected more than 1 MiB"
    [ "${out:-0}" -gt $((1 << 20)) ] || fail "$name: bytes_out_total $out, expected more than 1 MiB"
    errs=$(metric airlock_connections_closed_total "relay=\"$name\",end=\"error\"" "$port")
    [ "${errs:-x}" = 0 ] || fail "$name: $errs connections ended with an error"
done
[ "$(ends "$T/front.log" reset)" = 0 ] || fail "a connection was reset"

stop_clean "$FRONT_PID" front
stop_clean "$BACK" back
log "pass"
