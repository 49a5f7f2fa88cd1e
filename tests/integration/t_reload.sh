#!/bin/bash
# t_reload: SIGHUP reloads the config file without dropping connections.
#  - relay A carries a 4 MiB transfer that stays in flight the whole time;
#  - reload 1 adds relay B (to another backend) and changes A's idle_timeout
#    to 1s: B serves, a new connection through A gets the new idle timeout,
#    the transfer through A (old settings) survives a pause longer than that;
#  - reload 2 removes B while a transfer through B is in flight: B's listener
#    is closed (connect refused), the transfer goes on;
#  - reload 3 is a broken file: refused, the error (file:line) in the log,
#    everything keeps working; reload 4 brings B back;
#  - both transfers then complete intact (sha256) and SIGTERM exits 0.
. "$(dirname "$0")/lib.sh"

command -v socat >/dev/null || skip "socat not installed"

PS=$(free_port)  # gated stream of data (for A)
PS2=$(free_port) # gated stream of data2 (for B)
PA_L=$(free_port)
PB_L=$(free_port)
CONF=$T/airlock.yaml
LOG=$T/airlock.log

head -c 4M /dev/urandom >"$T/data"
head -c 3M /dev/urandom >"$T/data2"
gated_stream stream "$PS" "$T/data" "$T/gate"
gated_stream stream2 "$PS2" "$T/data2" "$T/gate"

# write_conf TEXT: replaces the config file in one rename, like an editor
write_conf() {
    printf '%s\n' "$1" >"$CONF.new"
    mv "$CONF.new" "$CONF"
}

# hup N: sends SIGHUP and waits for the Nth reload outcome in the log
hup() {
    kill -HUP "$AL"
    for _ in $(seq 1 100); do
        [ "$(grep -cE 'reloaded|reload failed' "$LOG")" -ge "$1" ] && return 0
        sleep 0.1
    done
    fail "no reload outcome #$1 in the log"
}

# first_bytes PORT: how many of the first 1000 bytes a new client gets
first_bytes() {
    timeout 5 socat -u TCP:127.0.0.1:"$1" - 2>/dev/null | head -c 1000 | wc -c
}

# transfer NAME PORT SIZE: a client that stays in flight, once SIZE bytes are in
transfer() {
    start "$1" socat -u TCP:127.0.0.1:"$2" CREATE:"$T/$1.out"
    wait_for size_at_least "$T/$1.out" "$3"
    running "$LAST_PID" || fail "$1 ended before its transfer finished"
}

relay_a="  - name: A
    listen: tcp:127.0.0.1:$PA_L
    target: tcp:127.0.0.1:$PS"
relay_b="  - name: B
    listen: tcp:127.0.0.1:$PB_L
    target: tcp:127.0.0.1:$PS2"

write_conf "threads: 2
relays:
$relay_a"
start airlock "$AIRLOCK" run -c "$CONF"
AL=$LAST_PID
wait_for tcp_up "$PA_L"

log "a transfer through A, held in flight"
transfer client1 "$PA_L" $(($(file_size "$T/data") / 2))
C1=$LAST_PID

log "reload 1: add B, A gets idle_timeout 1s"
write_conf "threads: 2
relays:
$relay_a
    idle_timeout: 1s
$relay_b"
hup 1
grep -q "reloaded $CONF: 2 relays" "$LOG" || fail "reload 1 not applied: $(tail -3 "$LOG")"
grep -q "relay=A changed" "$LOG" || fail "A not reported as changed"
grep -q "relay=B added" "$LOG" || fail "B not reported as added"
log "B serves: a transfer through B, held in flight"
transfer client2 "$PB_L" $(($(file_size "$T/data2") / 2))
C2=$LAST_PID

log "a new connection through A gets the new idle timeout"
start idle socat -u TCP:127.0.0.1:"$PA_L" OPEN:/dev/null
IDLE=$LAST_PID
wait_log "$LOG" "close relay=A .*end=idle_timeout" 5
wait_exit "$IDLE" 5
sleep 1 # the transfer through A has now been idle for well over 1s
running "$C1" || fail "the transfer through A was dropped by the reload"
[ "$(grep -c 'close relay=' "$LOG")" -eq 1 ] || fail "unexpected closes: $(grep 'close relay=' "$LOG")"

log "reload 2: remove B"
write_conf "threads: 2
relays:
$relay_a
    idle_timeout: 1s"
hup 2
grep -q "relay=B removed" "$LOG" || fail "B not reported as removed"
tcp_refused "$PB_L" || fail "B's listener still accepts after its removal"
running "$C2" || fail "removing B dropped its established connection"
[ "$(first_bytes "$PA_L")" = 1000 ] || fail "A stopped serving when B was removed"

log "reload 3: a broken file is refused"
write_conf "threads: 2
relays:
$relay_a
    idle_timout: 5s"
hup 3
grep -Eq "reload failed, keeping the running config: $CONF:[0-9]+: relays\[0\]: unknown key 'idle_timout'" "$LOG" ||
    fail "no error with file:line for the broken config: $(grep -i reload "$LOG" | tail -2)"
running "$AL" || fail "airlock died on a broken config"
[ "$(first_bytes "$PA_L")" = 1000 ] || fail "A stopped serving after a refused reload"
tcp_refused "$PB_L" || fail "B came back from a refused reload"
running "$C1" || fail "a refused reload dropped the transfer through A"
running "$C2" || fail "a refused reload dropped the transfer through B"

log "reload 4: B back"
write_conf "threads: 2
relays:
$relay_b
$relay_a"
hup 4
grep -q "relay=B added" "$LOG" || fail "B not reported as added"
[ "$(first_bytes "$PB_L")" = 1000 ] || fail "B does not serve after reload 4"
[ "$(first_bytes "$PA_L")" = 1000 ] || fail "A does not serve after reload 4"

log "both transfers in flight complete intact"
touch "$T/gate"
for c in 1 2; do
    pid=C$c
    wait_exit "${!pid}" 20
    [ "$EXIT_STATUS" = 0 ] || fail "client$c exited with $EXIT_STATUS"
done
[ "$(sha256sum <"$T/client1.out")" = "$(sha256sum <"$T/data")" ] ||
    fail "transfer through A corrupted: $(file_size "$T/client1.out") of $(file_size "$T/data") bytes"
[ "$(sha256sum <"$T/client2.out")" = "$(sha256sum <"$T/data2")" ] ||
    fail "transfer through B corrupted: $(file_size "$T/client2.out") of $(file_size "$T/data2") bytes"
wait_log "$LOG" "close relay=A .*bytes_out=$(file_size "$T/data") end=eof"
wait_log "$LOG" "close relay=B .*bytes_out=$(file_size "$T/data2") end=eof"

stop "$AL" || fail "airlock exited with $? after SIGTERM"
! grep -Eq "ERROR|runtime error" "$LOG" || fail "sanitizer report in the log"
log "ok"
