#!/bin/bash
# t_logs_listen_reload: a reload that moves logs.listen (the socket the
# enclave's apps write their lines to) opens the new listener before it
# closes the old one. Proves: a new endpoint that cannot be had (its
# directory is missing) keeps the old listener (lines written to it still
# arrive at the sink) and the reload answers "in part" naming it, exit 1;
# a good new endpoint takes over (lines arrive through it, the old socket is
# gone); one on the same port as the old on another address (which the old
# listener holds) is taken after the old one closes.
. "$(dirname "$0")/lib.sh"
need socat

read -r P1 <<<"$(free_ports 1)"
cat >"$T/host.yaml" <<EOF
log_sinks:
  - name: enclave
    listen: unix:$T/sink.sock
    file: $T/out.log
EOF
airlock_up host run -c "$T/host.yaml"
# enclave LISTEN: the enclave's config, its apps' lines going to the sink
enclave() {
    cat >"$T/enclave.yaml" <<EOF
control: unix:$T/ctl.sock
logs:
  forward: unix:$T/sink.sock
  listen: $1
EOF
}
enclave "unix:$T/a.sock"
airlock_up enclave run -c "$T/enclave.yaml"
# say ADDRESS LINE: an app writes LINE through the listener at ADDRESS
# (socat's), and it reaches the sink's file
say() {
    printf '%s\n' "$2" | socat -t 2 - "$1" || fail "cannot write to $1"
    wait_log "$T/out.log" "$2"
}
reload() { "$AIRLOCK" ctl -s "unix:$T/ctl.sock" reload >"$T/reload.out" 2>&1; }
say "UNIX-CONNECT:$T/a.sock" "line-one"

log "a new listener that cannot be had: the old one is kept, the reload says so"
enclave "unix:$T/missing/b.sock"
reload && fail "reload to a missing directory answered success: $(cat "$T/reload.out")"
grep -q "in part" "$T/reload.out" || fail "reload answer: $(cat "$T/reload.out")"
grep -q "logs" "$T/reload.out" || fail "the answer does not name logs: $(cat "$T/reload.out")"
wait_log "$T/enclave.log" "logs: cannot listen on unix:$T/missing/b.sock: .*; the old listener is kept"
say "UNIX-CONNECT:$T/a.sock" "line-two"

log "a good new listener takes over"
enclave "unix:$T/b.sock"
reload || fail "reload to b.sock: $(cat "$T/reload.out")"
say "UNIX-CONNECT:$T/b.sock" "line-three"
[ ! -e "$T/a.sock" ] || fail "the old socket is still there"

log "the same port on another address: taken after the old listener closes"
enclave "tcp:0.0.0.0:$P1"
reload || fail "reload to tcp:0.0.0.0:$P1: $(cat "$T/reload.out")"
say "TCP:127.0.0.1:$P1" "line-four"
enclave "tcp:127.0.0.1:$P1"
reload || fail "reload to tcp:127.0.0.1:$P1: $(cat "$T/reload.out")"
say "TCP:127.0.0.1:$P1" "line-five"
log "ok"
