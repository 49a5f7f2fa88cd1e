#!/bin/bash
# t_config_fifo: airlock reads regular files only. A FIFO as the config file
# (nobody writing to it) makes `airlock check` and `airlock run` refuse at
# once, saying "not a regular file", instead of blocking in open(); a
# running airlock whose config path has become a FIFO refuses the reload
# (SIGHUP and `airlock ctl reload`), logs why, keeps its config and serves
# on. A log sink's file that is a FIFO: refused at start; at a reload (a
# reopen), the sink keeps writing to its old file, and the reload answers
# so ("reloaded FILE in part", exit 1). The same for a file the config names (a
# keyset, a proxy's ca_file; in builds with field encryption): refused by
# check; a reload is refused, saying why, and the proxy runs on as it was.
. "$(dirname "$0")/lib.sh"
need socat
read -r M PE PA PB <<<"$(free_ports 4)"
CTL=$T/ctl.sock CONF=$T/airlock.yaml LOG=$T/air.log FIFO=$T/fifo
ctl() { "$AIRLOCK" ctl -s "unix:$CTL" "$@"; }
echo_via() { [ "$(printf 'ping %s\n' "$1" | timeout 10 socat - "TCP:127.0.0.1:$1")" = "ping $1" ]; }
mkfifo "$FIFO"

# refused FILE EXPECTED COMMAND...: COMMAND exits 1 (not the failure bound's
# 124) and its output has EXPECTED
refused() {
    local out=$1 want=$2 rc=0
    shift 2
    timeout -k 5 30 "$@" >"$out" 2>&1 </dev/null || rc=$?
    [ "$rc" = 1 ] || fail "$*: exit $rc (124: it blocked): $(cat "$out")"
    has -F -- "$want" <"$out" || fail "$*: $(cat "$out")"
}

log "a FIFO as the config: check and run refuse it at once"
refused "$T/check.out" "airlock: $FIFO: not a regular file" "$AIRLOCK" check -c "$FIFO"
refused "$T/run.out" "$FIFO: not a regular file" "$AIRLOCK" run -c "$FIFO"

log "a running airlock whose config became a FIFO: the reload is refused, the config kept"
start echo socat "TCP-LISTEN:$PE,fork,reuseaddr,bind=127.0.0.1" EXEC:cat
wait_for tcp_up "$PE"
printf 'control: unix:%s\nrelays:\n  - name: a\n    listen: tcp:127.0.0.1:%s\n    target: tcp:127.0.0.1:%s\n' \
    "$CTL" "$PA" "$PE" >"$CONF"
airlock_up air run -c "$CONF"
AIR=$LAST_PID
echo_via "$PA" || fail "relay a does not relay"
mv "$CONF" "$CONF.good"
mkfifo "$CONF"
kill -HUP "$AIR"
wait_log "$LOG" "reload failed, keeping the running config: $CONF: not a regular file" 30 "$AIR"
refused "$T/reload.out" "reload failed, keeping the running config: $CONF: not a regular file" \
    "$AIRLOCK" ctl -s "unix:$CTL" reload
running "$AIR" || fail "airlock exited"
echo_via "$PA" || fail "relay a went away with a refused reload"

log "the config a regular file again: the next reload applies it"
rm "$CONF"
sed "s/$PA/$PB/" "$CONF.good" >"$CONF"
ctl reload >"$T/out" || fail "reload failed: $(cat "$T/out")"
echo_via "$PB" || fail "the reloaded config does not serve"

log "a log sink's file a FIFO: refused at start; at a reload (a reopen), the old file kept"
read -r PS <<<"$(free_ports 1)"
sink() { printf 'control: unix:%s\nlog_sinks:\n  - name: s\n    listen: tcp:127.0.0.1:%s\n    file: %s\n' "$CTL" "$PS" "$1"; }
stop "$AIR"
sink "$FIFO" >"$T/sink.yaml"
refused "$T/sink.out" "log_sink=s: cannot open $FIFO: not a regular file" "$AIRLOCK" run -c "$T/sink.yaml"
sink "$T/sink.log" >"$CONF"
: >"$LOG"
airlock_up air run -c "$CONF"
AIR=$LAST_PID
mv "$T/sink.log" "$T/sink.log.1"
mkfifo "$T/sink.log"
refused "$T/out" "reloaded $CONF in part (generation 2), not applied: log_sink=s: cannot reopen $T/sink.log: not a regular file; still writing to the old file" \
    "$AIRLOCK" ctl -s "unix:$CTL" reload
has -F "log_sink=s: cannot reopen $T/sink.log: not a regular file; still writing to the old file" <"$LOG" ||
    fail "no log line of the refusal: $(cat "$LOG")"
running "$AIR" || fail "airlock exited"

log "a FIFO where the config names a file"
need_field
proxy() { # KEYSET
    printf 'control: unix:%s\nproxies:\n  - name: api\n    listen: tcp:127.0.0.1:%s\n' "$CTL" "$PA"
    printf '    backend: tcp:127.0.0.1:%s\n    keyset: %s\n' "$PE" "$1"
    printf '    routes:\n      - name: pay\n        path: /pay\n        encrypt: ["$.card"]\n'
}
keyset_file "$T/keys.json" acme k1 k1
proxy "$FIFO" >"$T/ks.yaml"
refused "$T/ks.out" "$FIFO: not a regular file" "$AIRLOCK" check -c "$T/ks.yaml"
cat >"$T/ca.yaml" <<EOF
proxies:
  - name: out
    mode: outbound
    listen: tcp:127.0.0.1:$PB
    keyset: $T/keys.json
    ca_file: $FIFO
    egress_allow: ["localhost:$PE"]
    routes: [{path: /x, upstream: "https://localhost:$PE", decrypt: true}]
EOF
refused "$T/ca.out" "ca_file: $FIFO: not a regular file" "$AIRLOCK" check -c "$T/ca.yaml"

log "a running proxy whose keyset became a FIFO: the reload refused, it runs on as it was"
stop "$AIR"
proxy "$T/keys.json" >"$CONF.new"
mv "$CONF.new" "$CONF"
: >"$LOG"
airlock_up air run -c "$CONF"
AIR=$LAST_PID
mv "$T/keys.json" "$T/keys.good"
mkfifo "$T/keys.json"
# a changed proxy: it is built anew, its keyset read again
{ proxy "$T/keys.json"; echo '    max_body: 32KiB'; } >"$CONF.new"
mv "$CONF.new" "$CONF"
refused "$T/out" "reload failed, keeping the running config: $CONF: proxies[0].keyset: $T/keys.json: not a regular file" \
    "$AIRLOCK" ctl -s "unix:$CTL" reload
has -F "reload failed, keeping the running config: $CONF: proxies[0].keyset: $T/keys.json: not a regular file" <"$LOG" ||
    fail "no log line of the refusal: $(cat "$LOG")"
running "$AIR" || fail "airlock exited"
tcp_up "$PA" || fail "the proxy stopped listening"
