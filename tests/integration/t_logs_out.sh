#!/bin/bash
# t_logs_out: log lines leave the enclave and land in a file on the host.
#   apps in the "enclave" (a loopback-only network namespace) -> unix log
#   socket -> enclave airlock (logs:, capture_stderr) -> hvsock:vm.sock:9200
#   -> host airlock (log_sinks:) -> enclave.log
# Proves: lines of several writers at once arrive whole, tagged per source,
# in per-source order, never interleaved (lines the full buffer dropped are
# counted, and a marker line stands in each gap); over-long, binary and never-ending
# lines are cut and marked, not a crash; an app's control characters (CR,
# ESC) arrive escaped, so no line of an app shows as another or as
# airlock's; airlock's own lines go out too.
# With the host side down and apps flooding, a 64 MiB transfer through a
# data relay of the same enclave airlock completes in time and intact; lines
# are buffered up to the bound, then dropped and counted (a marker line in
# the file says how many); after the restart the buffered lines arrive and
# new ones follow. SIGHUP on the host reopens the file after a rename
# (logrotate). A stream that breaks mid-line gets that line completed with a
# marker. SIGTERM on the enclave flushes buffered lines before exiting.
# Apps whose lines are all ready at once lose none while the host keeps up
# (the stream is written between reads).
. "$(dirname "$0")/lib.sh"
need socat curl
loopback_netns airlock-lo

read -r DP HM <<<"$(free_ports 2)"
FILE=$T/out/enclave.log
mkdir -p "$T/out"
cat >"$T/enclave.yaml" <<EOF
threads: 2
metrics: unix:$T/em.sock
drain_timeout: 10s
logs:
  forward: hvsock:$T/vm.sock:9200
  capture_stderr: true
  listen: unix:$T/log.sock
  buffer: 256KiB
  line_max: 1KiB
relays:
  - name: data
    listen: unix:$T/data.sock
    target: tcp:127.0.0.1:$DP
EOF
cat >"$T/host.yaml" <<EOF
metrics: tcp:127.0.0.1:$HM
drain_timeout: 2s
log_sinks:
  - name: enclave
    listen: hvsock:$T/vm.sock:9200
    file: $FILE
EOF
[ "$("$AIRLOCK" check -c "$T/enclave.yaml")" = "$T/enclave.yaml: ok (1 relays, logs forwarded)" ] ||
    fail "enclave config: $("$AIRLOCK" check -c "$T/enclave.yaml" 2>&1)"
[ "$("$AIRLOCK" check -c "$T/host.yaml")" = "$T/host.yaml: ok (0 relays, 1 log sinks)" ] ||
    fail "host config: $("$AIRLOCK" check -c "$T/host.yaml" 2>&1)"

in_ns() { ip netns exec "$NS" "$@"; }
emetric() { # NAME [LABELS]: one value of the enclave's metrics
    curl -sf -m 5 --unix-socket "$T/em.sock" http://enclave/metrics |
        awk -v k="$1${2:+{$2\}}" '$1 == k { print $2 }'
}
wait_metric() { # NAME LABELS VALUE
    local i v=
    for i in $(seq 1 100); do
        v=$(emetric "$1" "$2")
        [ "$v" = "$3" ] && return 0
        sleep 0.1
    done
    fail "$1{$2} = '$v', expected $3"
}
host_up() {
    airlock_up host run -c "$T/host.yaml"
    HOST=$LAST_PID
}
# the enclave's data backend: the SHA-256 of what it receives
start backend ip netns exec "$NS" socat TCP-LISTEN:"$DP",bind=127.0.0.1,reuseaddr,fork \
    SYSTEM:"openssl dgst -sha256 -r | cut -c1-64"
host_up
start enclave ip netns exec "$NS" "$AIRLOCK" run -c "$T/enclave.yaml"
ENC=$LAST_PID
wait_log "$T/enclave.log" 'airlock running'
[ "$(ip netns identify "$ENC")" = "$NS" ] || fail "enclave airlock not in $NS"
wait_metric airlock_log_forward_connected "" 1

# transfer SECONDS_VAR: 64 MiB through the data relay; checks the hash,
# leaves the milliseconds it took in $MS
gen_data logs $((64 << 20)) >"$T/data"
WANT=$(sha256 <"$T/data")
transfer() {
    local t0 got
    t0=$(date +%s%N)
    got=$(timeout 120 socat -t 60 - UNIX-CONNECT:"$T/data.sock" <"$T/data") || fail "transfer failed"
    MS=$(elapsed_ms "$t0")
    [ "$got" = "$WANT" ] || fail "transfer corrupted: $got"
}
transfer
BASE_MS=$MS
log "baseline: 64 MiB through the data relay in $BASE_MS ms"

log "four writers at once, lines of 0-3000 bytes (cut at 1 KiB)"
# writer I: "wI SEQ " then (SEQ*37 % 3000) times letter I
writer() {
    awk -v w="$1" -v n="$2" 'BEGIN {
        c = substr("abcd", w + 1, 1); s = ""; for (k = 0; k < 3000; k++) s = s c
        for (i = 0; i < n; i++) printf "w%d %d %s\n", w, i, substr(s, 1, (i * 37) % 3000)
    }' | in_ns socat -u - UNIX-CONNECT:"$T/log.sock"
}
# dropped DELTA_FROM: lines dropped (both sources) since the snapshot
# DELTA_FROM ("app airlock" counts); markers FILE: the lines the marker
# lines of FILE say were dropped
dropped_now() { echo "$(emetric airlock_log_dropped_total 'source="app"') $(emetric airlock_log_dropped_total 'source="airlock"')"; }
markers() { sed -n 's/^airlock: log buffer full: \([0-9]*\) lines dropped$/\1/p' "$1" | awk '{ s += $1 } END { print s + 0 }'; }
app_lines() { echo $(($(emetric airlock_log_lines_total 'source="app"') + $(emetric airlock_log_dropped_total 'source="app"'))); }
lines_before=$(app_lines)
read -r app0 own0 <<<"$(dropped_now)"
marked0=$(markers "$FILE")
WP=()
for w in 0 1 2 3; do
    writer "$w" 400 &
    WP+=($!)
done
wait "${WP[@]}"
# every line read (taken or dropped), then every taken line and marker sent
all_read() { [ $(($(app_lines) - lines_before)) = 1600 ]; }
wait_for all_read
wait_metric airlock_log_buffer_bytes "" 0
read -r app1 own1 <<<"$(dropped_now)"
taken=$((1600 - (app1 - app0)))
in_file() { [ "$(grep -a -c '^app\[[0-9]*\]#[0-9]*: w[0-3] ' "$FILE")" = "$taken" ]; }
wait_for in_file
marks_agree() { [ $(($(markers "$FILE") - marked0)) = $((app1 - app0 + own1 - own0)) ]; }
wait_for marks_agree
log "writers: $taken of 1600 lines taken, $((app1 - app0)) dropped (the buffer was full)"
# Lines may be dropped while the stream is up (the buffer is full when the
# apps write faster than the host reads); then a marker says how many, in
# the place they would have been. So: the markers add up to the counters,
# and every line is whole, one tag per writer (none when all its lines were
# dropped), in order, and each gap in a writer's sequence has a marker
# after the line before it.
for w in 0 1 2 3; do
    bad=$(awk -v w="$w" '
        /^airlock: log buffer full: [0-9]+ lines dropped$/ { marked = 1; next }
        $2 != "w" w { next }
        { tag[$1] = 1; line = $0; sub(/^[^ ]* /, "", line)
          seq = $3; len = (seq * 37) % 3000; c = substr("abcd", w + 1, 1)
          if (seq < next_seq) { print "seq " seq " after " next_seq - 1; exit }
          if (seq > next_seq && !marked) { print "no marker for the gap before " seq; exit }
          next_seq = seq + 1; marked = 0; n++
          head = "w" w " " seq " "; full = length(head) + len
          if (full > 1024) { want = 1024; if (substr(line, 1025) != " [cut]") { print "no cut mark on " seq; exit } }
          else { want = full; if (length(line) != full) { print "length " length(line) " of " seq; exit } }
          body = substr(line, length(head) + 1, want - length(head))
          if (body !~ ("^" c "*$")) { print "mixed bytes in " seq; exit } }
        END { t = 0; for (x in tag) t++; if (t > 1) print t " tags"
              if (next_seq < 400 && !marked) print "no marker for the lines after " next_seq - 1 }
    ' "$FILE")
    [ -z "$bad" ] || fail "writer $w: $bad"
done
grep -a -q '^airlock: .* info airlock running' "$FILE" || fail "airlock's own lines not forwarded"
grep -q 'info airlock running' "$T/enclave.log" || fail "airlock's own lines not on stderr any more"
[ "$(grep -a -c '' "$FILE")" = "$(grep -a -c $'\n' "$FILE")" ] || fail "file does not end with a newline"

log "eight apps ready at once while the host keeps up: nothing dropped"
# Eight apps connect; with airlock stopped each leaves 40 lines of 1000 bytes
# in its socket (a unix socket holds more than 90 KB); on SIGCONT airlock
# reads all eight in one turn. 320 KB fit the 256 KiB buffer and the
# stream's socket buffer together, but not the buffer alone: lines are
# dropped unless the stream is written between reads.
read -r app0 own0 <<<"$(dropped_now)"
lines_before=$(app_lines)
sources0=$(emetric airlock_log_sources_open)
WP=()
for w in 0 1 2 3 4 5 6 7; do
    { while [ ! -e "$T/ready.gate" ]; do sleep 0.05; done
      awk -v w="$w" 'BEGIN { s = sprintf("%990s", ""); gsub(/ /, "r", s)
          for (i = 0; i < 40; i++) printf "ready%d %02d %s\n", w, i, s }'
    } | in_ns timeout 20 socat -u - UNIX-CONNECT:"$T/log.sock" &
    WP+=($!)
done
wait_metric airlock_log_sources_open "" $((sources0 + 8))
kill -STOP "$ENC"
touch "$T/ready.gate"
for p in "${WP[@]}"; do # the lines wait in the sockets' buffers
    wait "$p" || { kill -CONT "$ENC"; fail "an app could not write its lines"; }
done
kill -CONT "$ENC"
ready_read() { [ $(($(app_lines) - lines_before)) = 320 ]; }
wait_for ready_read
read -r app1 own1 <<<"$(dropped_now)"
[ "$app1" = "$app0" ] || fail "$((app1 - app0)) lines dropped while the host kept up"
ready_in_file() { [ "$(grep -a -c '^app\[[0-9]*\]#[0-9]*: ready[0-7] [0-9][0-9] r*$' "$FILE")" = 320 ]; }
wait_for ready_in_file

log "binary garbage and a never-ending line: cut, not a crash"
head -c 300000 /dev/urandom | in_ns socat -u - UNIX-CONNECT:"$T/log.sock"
{ head -c $((8 << 20)) /dev/zero | tr '\0' z; } | in_ns socat -u - UNIX-CONNECT:"$T/log.sock" &
ZPID=$!
printf 'after garbage\n' | in_ns socat -u - UNIX-CONNECT:"$T/log.sock"
wait "$ZPID"
wait_for grep -a -qx "app\\[[0-9]*\\]#[0-9]*: $(printf 'z%.0s' $(seq 1 1024)) \\[cut\\]" "$FILE"
wait_for grep -a -q ': after garbage$' "$FILE"
running "$ENC" || fail "enclave airlock died"

log "an app's CR and ESC arrive escaped: its line cannot pass for airlock's"
printf 'ok\rairlock: 2026-01-01T00:00:00.000Z error FAKE\033[2K\n' |
    in_ns socat -u - UNIX-CONNECT:"$T/log.sock"
wait_for grep -a -q 'FAKE' "$FILE"
grep -a -qxF 'ok\x0dairlock: 2026-01-01T00:00:00.000Z error FAKE\x1b[2K' \
    <(sed -n 's/^app\[[0-9]*\]#[0-9]*: //p' "$FILE") || fail "not escaped: $(grep -a FAKE "$FILE" | od -c | head -3)"
! grep -a 'FAKE' "$FILE" | has $'\r' || fail "a CR reached the file"

log "host side down: lines buffered, then dropped and counted"
# the stream up a second (the forwarder's FWD_STABLE_MS): its loss is then
# the first failure in a row, and the reconnect says after how many (the
# steps above can take less than that on a fast machine)
sleep 1.1
errors0=$(emetric airlock_log_forward_errors_total)
stop_clean "$HOST" host
wait_metric airlock_log_forward_connected "" 0
before_lines=$(emetric airlock_log_lines_total 'source="app"')
before_dropped=$(emetric airlock_log_dropped_total 'source="app"')
# flood: 4 writers of 20000 numbered lines each, while a transfer runs
WP=()
for w in 0 1 2 3; do
    (seq 1 20000 | sed "s/^/flood$w /" | in_ns socat -u - UNIX-CONNECT:"$T/log.sock") &
    WP+=($!)
done
transfer
DOWN_MS=$MS
wait "${WP[@]}"
# the writers are gone, but their last lines may still be on the way in
flood_read() {
    [ $(($(emetric airlock_log_lines_total 'source="app"') - before_lines +
        $(emetric airlock_log_dropped_total 'source="app"') - before_dropped)) = 80000 ]
}
wait_for flood_read
LIMIT=$((BASE_MS * 10 > 20000 ? BASE_MS * 10 : 20000))
log "64 MiB while the sink is down and apps flood: $DOWN_MS ms (baseline $BASE_MS ms, limit $LIMIT ms)"
[ "$DOWN_MS" -le "$LIMIT" ] || fail "the data path slowed down: $DOWN_MS ms"
dropped=$(($(emetric airlock_log_dropped_total 'source="app"') - before_dropped))
accepted=$(($(emetric airlock_log_lines_total 'source="app"') - before_lines))
buffered=$(emetric airlock_log_buffer_bytes)
log "flood: $accepted lines buffered ($buffered bytes), $dropped dropped"
[ "$dropped" -gt 0 ] || fail "nothing dropped: the buffer is not bounded"
[ $((accepted + dropped)) = 80000 ] || fail "accepted $accepted + dropped $dropped != 80000"
[ "$buffered" -le $((256 * 1024)) ] || fail "buffer over its bound: $buffered"
[ "$buffered" -ge $((200 * 1024)) ] || fail "buffer not used up to its bound: $buffered"
running "$ENC" || fail "enclave airlock died"

log "host side back: buffered lines arrive, then new ones"
# two attempts failed at least (the loss and one more), so that the
# reconnect line names them, however fast the flood above went
failed_twice() { [ "$(emetric airlock_log_forward_errors_total)" -ge $((errors0 + 2)) ]; }
wait_for failed_twice
host_up
wait_metric airlock_log_forward_connected "" 1
wait_metric airlock_log_buffer_bytes "" 0
printf 'after restart\n' | in_ns socat -u - UNIX-CONNECT:"$T/log.sock"
wait_for grep -a -q ': after restart$' "$FILE"
got=$(grep -a -c ': flood[0-3] ' "$FILE" || true)
[ "$got" = "$accepted" ] || fail "$got flood lines in the file, $accepted were buffered"
for w in 0 1 2 3; do
    { grep -a ": flood$w " "$FILE" || true; } | awk '{ if ($3 <= last) { print "out of order: " $3 " after " last; exit } last = $3 }' >"$T/order"
    [ ! -s "$T/order" ] || fail "flood$w: $(cat "$T/order")"
done
marked=$(sed -n 's/^airlock: log buffer full: \([0-9]*\) lines dropped$/\1/p' "$FILE" | awk '{ s += $1 } END { print s + 0 }')
all_dropped=$(($(emetric airlock_log_dropped_total 'source="app"') + $(emetric airlock_log_dropped_total 'source="airlock"')))
[ "$marked" = "$all_dropped" ] || fail "marker lines say $marked dropped, counters $all_dropped"
grep -a -q '^airlock: .*log forward to .* connected after [0-9]* attempts' "$FILE" ||
    grep -q 'connected after' "$T/enclave.log" || fail "no reconnect line"

log "SIGHUP on the host reopens the file after logrotate's rename"
mv "$FILE" "$FILE.1"
kill -HUP "$HOST"
wait_log "$T/host.log" 'reloaded'
printf 'after rotate\n' | in_ns socat -u - UNIX-CONNECT:"$T/log.sock"
wait_for grep -a -q ': after rotate$' "$FILE"
! grep -a -q 'after rotate' "$FILE.1" || fail "line went to the rotated file"

log "a stream broken mid-line: the line is completed with a marker"
printf 'CONNECT 9200\nwhole line\npartial line' | socat -t 1 - UNIX-CONNECT:"$T/vm.sock" >"$T/hello"
[ "$(head -1 "$T/hello")" = "OK 9200" ] || fail "sink device answer: $(cat "$T/hello")"
wait_for grep -a -qx 'partial line \[stream ended\]' "$FILE"
grep -a -qx 'whole line' "$FILE" || fail "whole line missing"
printf 'CONNECT 9201\nwrong port\n' | socat -t 1 - UNIX-CONNECT:"$T/vm.sock" >"$T/hello2" || true
[ ! -s "$T/hello2" ] || fail "wrong port answered"
! grep -a -q 'wrong port' "$FILE" || fail "lines of a refused stream written"

log "SIGTERM on the enclave flushes buffered lines first"
stop_clean "$HOST" host
wait_metric airlock_log_forward_connected "" 0
before=$(emetric airlock_log_lines_total 'source="app"')
seq 1 100 | sed 's/^/drain /' | in_ns socat -u - UNIX-CONNECT:"$T/log.sock"
wait_metric airlock_log_lines_total 'source="app"' $((before + 100))
host_up
kill -TERM "$ENC"
wait_exit "$ENC" 15
[ "$EXIT_STATUS" = 0 ] || fail "enclave airlock exited with $EXIT_STATUS"
[ "$(grep -a -c ': drain [0-9]*$' "$FILE")" = 100 ] || fail "only $(grep -a -c ': drain ' "$FILE") drain lines arrived"
grep -a -q '^airlock: .* draining' "$FILE" || fail "the draining line was not forwarded"
stop_clean "$HOST" host
log ok
