#!/bin/bash
# t_reload_refused: a reload tells the truth about what it applied.
#   - a keyset that does not load (missing, or not a keyset), an outbound
#     proxy's CA file that does not, or a tls: relay's sim root (in builds
#     with attestation): the whole reload is refused before
#     anything is applied; `airlock ctl reload` answers the file and the
#     reason and exits 1, SIGHUP logs the same line, and the running config
#     (the old rules) still serves;
#   - a part that can only fail while it is applied (a new log sink on a
#     port in use): the rest is applied, the answer names the part not
#     applied ("reloaded FILE in part"), exit 1, counted as partial;
#   - a good file again: "reloaded", exit 0.
. "$(dirname "$0")/lib.sh"

ECHO=${HTTP_ECHO:-$(dirname "$AIRLOCK")/tests/http_echo}
[ -x "$ECHO" ] || skip "tests/http_echo not built"
need_field
need socat curl

read -r BACK FRONT OUTB M PSEC PBUSY <<<"$(free_ports 6)"
CONF=$T/airlock.yaml CTL=$T/ctl.sock LOG=$T/air.log MPORT=$M
start echo "$ECHO" "$BACK" "$T/backend.log"
wait_port "$BACK"
start busy socat "TCP-LISTEN:$PBUSY,fork,reuseaddr,bind=127.0.0.1" EXEC:cat
wait_for tcp_up "$PBUSY"
keyset_file "$T/keys.json" t k1 k1

# config KEYSET ENCRYPT [LINES...]: proxy api encrypting ENCRYPT (a YAML
# flow list) with KEYSET, then LINES; written in one rename
config() {
    {
        printf 'control: unix:%s\nmetrics: tcp:127.0.0.1:%s\nproxies:\n' "$CTL" "$M"
        printf '  - name: api\n    listen: tcp:127.0.0.1:%s\n    backend: tcp:127.0.0.1:%s\n' \
            "$FRONT" "$BACK"
        printf '    keyset: %s\n    routes:\n      - name: pay\n        path: /\n' "$1"
        printf '        encrypt: %s\n' "$2"
        shift 2
        printf '%s\n' "$@"
    } >"$CONF.new"
    mv "$CONF.new" "$CONF"
}
# an outbound proxy trusting CA_FILE
outbound() {
    printf '  - name: out\n    mode: outbound\n    listen: tcp:127.0.0.1:%s\n' "$OUTB"
    printf '    keyset: %s\n    ca_file: %s\n    egress_allow: ["localhost:%s"]\n' \
        "$T/keys.json" "$1" "$BACK"
    printf '    routes: [{path: /x, upstream: "https://localhost:%s", decrypt: true}]\n' "$BACK"
}
last_ok() { curl -sf "http://127.0.0.1:$M/metrics" | awk '$1 == "airlock_last_reload_success" { print $2 }'; }
last_body() { tail -1 "$T/backend.log" | sed 's/.* body=//'; }
post() { curl -sf --max-time 10 -H 'Content-Type: application/json' -d "$1" "http://127.0.0.1:$FRONT/" >/dev/null; }
# serves_old: the running rules encrypt a, not b
serves_old() {
    post '{"a":"A","b":"B"}' || fail "post"
    last_body | has '"a":"al1:' || fail "a not encrypted: $(last_body)"
    last_body | has '"b":"B"' || fail "b changed: $(last_body)"
}
# reload_refused WANT: ctl reload exits 1 with WANT (fixed text) in its
# error, the log has the same line, the old config serves
reload_refused() {
    local rc=0
    "$AIRLOCK" ctl -s "unix:$CTL" reload >"$T/out" 2>"$T/err" </dev/null || rc=$?
    [ "$rc" = 1 ] || fail "reload: exit $rc: $(cat "$T/out" "$T/err")"
    cat "$T/err"
    has -F -- "airlock ctl: $1" <"$T/err" || fail "reload said: $(cat "$T/err")"
    has -F -- "$(sed 's/^airlock ctl: //' "$T/err")" <"$LOG" || fail "not the log's text"
    serves_old
}

config "$T/keys.json" '["$.a"]'
airlock_up air run -c "$CONF"
AIR=$LAST_PID
serves_old

log "a keyset that is not there: refused, the file named, exit 1, the old rules serve"
config "$T/no-keys.json" '["$.b"]'
reload_refused "reload failed, keeping the running config: $CONF: proxies[0].keyset: $T/no-keys.json"

log "a keyset that is not one: the same"
printf '{"tenant": "t", "primary": "k1", "keys": [' >"$T/bad.json"
chmod 600 "$T/bad.json"
config "$T/bad.json" '["$.b"]'
reload_refused "reload failed, keeping the running config: $CONF: proxies[0].keyset: $T/bad.json"

log "SIGHUP: the same refusal in the log"
# refusals: how many times the log has said so (counted again at each poll)
refusals() { grep -c "reload failed, keeping the running config: $CONF: proxies\[0\].keyset: $T/bad.json" "$LOG"; }
refused_before=$(refusals) # (not n: poll_until's own n would shadow it)
kill -HUP "$AIR"
more_refusals() { [ "$(refusals)" -gt "$refused_before" ]; }
wait_for more_refusals
serves_old

log "an outbound proxy's CA file that does not load: refused, the file named"
config "$T/keys.json" '["$.b"]' "$(outbound "$T/no-ca.pem")"
reload_refused "reload failed, keeping the running config: $CONF: proxies[1].ca_file: $T/no-ca.pem"
tcp_refused "$OUTB" || fail "the refused proxy listens"
metric_is airlock_reloads_total 'result="failed"' 4 || fail "failed reloads: $(metric airlock_reloads_total 'result="failed"' "$M")"
metric_is airlock_reloads_total 'result="ok"' 0 || fail "ok reloads"
[ "$(last_ok)" = 0 ] || fail "last reload success: $(last_ok)"

log "a tls: relay whose sim root does not load: refused, the file named"
sec=(relays: "  - name: sec" "    listen: tcp:127.0.0.1:$PSEC" "    target: tcp:127.0.0.1:$BACK"
    "    tls: {provider: sim, sim_root: $T/no-root.pem}")
config "$T/keys.json" '["$.b"]' "${sec[@]}"
"$AIRLOCK" check -c "$CONF" >"$T/check.out" 2>&1 || true
if has -F "$CONF: relays[0].tls.sim_root: $T/no-root.pem" <"$T/check.out"; then
    reload_refused "reload failed, keeping the running config: $CONF: relays[0].tls.sim_root: $T/no-root.pem"
    tcp_refused "$PSEC" || fail "the refused relay listens"
else
    log "skipped: this build has no attestation"
fi

log "a log sink on a port in use: the rest applied, the sink named, exit 1"
config "$T/keys.json" '["$.b"]' "log_sinks:" "  - name: s" "    listen: tcp:127.0.0.1:$PBUSY" "    file: $T/sink.log"
rc=0
"$AIRLOCK" ctl -s "unix:$CTL" reload >"$T/out" 2>"$T/err" </dev/null || rc=$?
[ "$rc" = 1 ] || fail "a partial reload: exit $rc: $(cat "$T/out" "$T/err")"
cat "$T/err"
has -x "airlock ctl: reloaded $CONF in part (generation 2), not applied: log_sink=s: not started: Address already in use" <"$T/err" ||
    fail "partial reload said: $(cat "$T/err")"
has -F "$(sed 's/^airlock ctl: //' "$T/err")" <"$LOG" || fail "not the log's text"
post '{"a":"A","b":"B"}' || fail "post"
last_body | has '"b":"al1:' || fail "the proxy's change was not applied: $(last_body)"
metric_is airlock_reloads_total 'result="partial"' 1 || fail "partial reloads"
[ "$(last_ok)" = 0 ] || fail "last reload success after a partial one: $(last_ok)"

log "a good file: reloaded, exit 0"
config "$T/keys.json" '["$.b"]'
"$AIRLOCK" ctl -s "unix:$CTL" reload >"$T/out" 2>&1 || fail "reload: $(cat "$T/out")"
has -x 'reloaded (generation 3)' <"$T/out" || fail "reload said: $(cat "$T/out")"
[ "$(last_ok)" = 1 ] || fail "last reload success: $(last_ok)"
running "$AIR" || fail "airlock exited"
stop_clean "$AIR" air
log "ok"
