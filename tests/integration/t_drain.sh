#!/bin/bash
# t_drain: SIGTERM stops accepting and drains.
#  1. with transfers in flight (tcp and unix listeners): new connections are
#     refused at once, the unix socket files go, the established transfers
#     go on and complete intact, then airlock exits 0 by itself;
#  2. a stuck connection and drain_timeout 1s: closed at the deadline
#     (end=shutdown), exit 0;
#  3. a second SIGTERM closes a stuck connection at once, exit 0 (3 rounds);
#  4. stop signals that keep coming while airlock tears down (the second one
#     lands anywhere in its exit): exit 0, nothing freed used (20 rounds,
#     sanitizer build).
. "$(dirname "$0")/lib.sh"

command -v socat >/dev/null || skip "socat not installed"

PS=$(free_port)
PSTUCK=$(free_port)
PA=$(free_port)
head -c 4M /dev/urandom >"$T/data"
gated_stream stream "$PS" "$T/data" "$T/gate"
gated_stream stuck "$PSTUCK" "$T/data" "$T/never"
half=$(($(file_size "$T/data") / 2))

# run_conf NAME DRAIN_TIMEOUT TARGET_PORT: starts airlock run with relay A
# (tcp), relay U (unix:$T/NAME.sock) and metrics on unix:$T/NAME-metrics.sock
run_conf() {
    cat >"$T/$1.yaml" <<EOF
drain_timeout: $2
metrics: unix:$T/$1-metrics.sock
relays:
  - name: A
    listen: tcp:127.0.0.1:$PA
    target: tcp:127.0.0.1:$3
  - name: U
    listen: unix:$T/$1.sock
    target: tcp:127.0.0.1:$3
EOF
    start "$1" "$AIRLOCK" run -c "$T/$1.yaml"
    AL=$LAST_PID
    wait_for tcp_up "$PA"
    wait_for unix_up "$T/$1.sock"
    wait_for unix_up "$T/$1-metrics.sock"
}

# in_flight NAME ADDRESS: a socat client receiving into $T/NAME.out, once half in
in_flight() {
    start "$1" socat -u "$2" CREATE:"$T/$1.out"
    wait_for size_at_least "$T/$1.out" "$half"
}

log "1. graceful drain"
run_conf graceful 20s "$PS"
in_flight c_tcp TCP:127.0.0.1:"$PA"
C_TCP=$LAST_PID
in_flight c_unix UNIX-CONNECT:"$T/graceful.sock"
C_UNIX=$LAST_PID
kill -TERM "$AL"
wait_log "$T/graceful.log" "draining 2 connections"
tcp_refused "$PA" || fail "new tcp connections are not refused while draining"
[ ! -e "$T/graceful.sock" ] || fail "the unix listener's socket file is still there while draining"
! socat -u UNIX-CONNECT:"$T/graceful.sock" - </dev/null 2>/dev/null || fail "unix listener accepts while draining"
sleep 1
running "$AL" || fail "airlock did not wait for the established connections"
running "$C_TCP" && running "$C_UNIX" || fail "a connection was dropped by the drain"
touch "$T/gate"
for pid in "$C_TCP" "$C_UNIX"; do
    wait_exit "$pid" 20
    [ "$EXIT_STATUS" = 0 ] || fail "client exited with $EXIT_STATUS"
done
for c in c_tcp c_unix; do
    [ "$(sha256sum <"$T/$c.out")" = "$(sha256sum <"$T/data")" ] ||
        fail "$c: transfer corrupted ($(file_size "$T/$c.out") of $(file_size "$T/data") bytes)"
done
wait_exit "$AL" 5
[ "$EXIT_STATUS" = 0 ] || fail "airlock exited with $EXIT_STATUS after a graceful drain"
[ "$(grep -c 'end=eof' "$T/graceful.log")" = 2 ] || fail "connections did not end with eof"
! grep -q 'end=shutdown' "$T/graceful.log" || fail "a connection was shut down during a graceful drain"
[ ! -e "$T/graceful-metrics.sock" ] || fail "the metrics socket file is left behind"
! grep -Eq "ERROR|runtime error" "$T/graceful.log" || fail "sanitizer report"

log "2. drain deadline: a stuck connection is closed"
run_conf deadline 1s "$PSTUCK"
in_flight c_stuck TCP:127.0.0.1:"$PA"
C_STUCK=$LAST_PID
in_flight c_stuck_unix UNIX-CONNECT:"$T/deadline.sock"
start0=$(date +%s%N)
kill -TERM "$AL"
wait_exit "$AL" 10
elapsed_ms=$((($(date +%s%N) - start0) / 1000000))
[ "$EXIT_STATUS" = 0 ] || fail "airlock exited with $EXIT_STATUS after the drain deadline"
[ "$elapsed_ms" -ge 900 ] || fail "airlock exited after ${elapsed_ms} ms, before the 1s drain_timeout"
grep -q "drain deadline reached: closing 2 connections" "$T/deadline.log" || fail "no deadline log line"
[ "$(grep -c 'close relay=[AU] .*end=shutdown' "$T/deadline.log")" = 2 ] ||
    fail "stuck connections not closed with end=shutdown: $(grep close "$T/deadline.log")"
wait_exit "$C_STUCK" 5 # the client sees the connection end
[ ! -e "$T/deadline.sock" ] && [ ! -e "$T/deadline-metrics.sock" ] || fail "unix socket files left behind"
tcp_refused "$PA" || fail "the listener outlived the process"
! grep -Eq "ERROR|runtime error" "$T/deadline.log" || fail "sanitizer report"

log "3. a second SIGTERM closes at once"
# three rounds, the second signal at a random point of the 100 ms drain poll
# (once it raced with the final loop turn and used freed workers)
for round in 1 2 3; do
    rm -f "$T/twice.log"
    run_conf twice 30s "$PSTUCK"
    in_flight c_twice$round TCP:127.0.0.1:"$PA"
    kill -TERM "$AL"
    wait_log "$T/twice.log" "draining 1 connections"
    sleep "0.$((RANDOM % 5 + 2))$((RANDOM % 10))"
    running "$AL" || fail "airlock did not wait for the stuck connection"
    kill -TERM "$AL"
    wait_exit "$AL" 5
    [ "$EXIT_STATUS" = 0 ] || fail "airlock exited with $EXIT_STATUS after a second SIGTERM: $(grep -m3 -E 'ERROR|runtime error' "$T/twice.log")"
    grep -q "second stop signal" "$T/twice.log" || fail "no log line for the second signal"
    grep -q 'close relay=A .*end=shutdown' "$T/twice.log" || fail "stuck connection not shut down"
    [ ! -e "$T/twice.sock" ] || fail "unix socket file left behind"
    ! grep -Eq "ERROR|runtime error" "$T/twice.log" || fail "sanitizer report"
done

log "stop signals through the whole teardown: exit 0, no sanitizer report"
for round in $(seq 1 20); do
    run_conf storm$round 30s "$PSTUCK"
    kill -TERM "$AL"
    # the next ones land somewhere between the drain and the last loop turn
    for _ in 1 2 3 4 5 6 7 8; do kill -TERM "$AL" 2>/dev/null || break; done
    wait_exit "$AL" 10
    [ "$EXIT_STATUS" = 0 ] ||
        fail "round $round: exit $EXIT_STATUS: $(grep -m3 -E 'ERROR|runtime error' "$T/storm$round.log")"
    ! grep -Eq "ERROR|runtime error" "$T/storm$round.log" || fail "round $round: sanitizer report"
done
log "ok"
