#!/bin/bash
# t_reload_verify_pending: a relay with verify: judges the evidence it gets
# by the policy of now. A client is accepted and its relay's TLS handshake
# with the attested service is held up (a gate on loopback keeps the
# service's answer back) while a reload tightens the policy (a PCR value
# the sim evidence does not have): when the handshake then completes, the evidence
# is refused (end=attest_refused) and nothing reaches the service's backend;
# before, the policy of the accept let it through. A client after the
# reload to the policy put back is served (the gate passes it at once).
. "$(dirname "$0")/lib.sh"
need socat python3 openssl

read -r ECHO ENC GATE V M <<<"$(free_ports 5)"
"$AIRLOCK" attest get --provider sim --sim-root "$T/sim.pem" >/dev/null 2>&1 ||
    fail "cannot make the sim root"
start echo socat "TCP-LISTEN:$ECHO,bind=127.0.0.1,reuseaddr,fork" SYSTEM:"tee -a $T/backend"
wait_for tcp_up "$ECHO"
cat >"$T/enclave.yaml" <<EOF
relays:
  - {name: enc, listen: "tcp:127.0.0.1:$ENC", target: "tcp:127.0.0.1:$ECHO",
     tls: {provider: sim, sim_root: $T/sim.pem}}
EOF
airlock_up enclave run -c "$T/enclave.yaml"
# the gate: each connection goes on to the service once $T/open exists
start gate python3 -c '
import os, socket, sys, threading, time
def pump(a, b):
    while True:
        d = a.recv(65536)
        if not d:
            b.shutdown(socket.SHUT_WR)
            return
        b.sendall(d)
def serve(c):
    print("accepted", flush=True)
    while not os.path.exists(sys.argv[3]):
        time.sleep(0.05)
    u = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
    threading.Thread(target=pump, args=(c, u), daemon=True).start()
    pump(u, c)
ls = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    threading.Thread(target=serve, args=(ls.accept()[0],), daemon=True).start()' \
    "$GATE" "$ENC" "$T/open"
wait_for tcp_up "$GATE"

CONF=$T/airlock.yaml LOG=$T/air.log
# write_conf [PCR]: the verify relay; its policy pins PCR 0 to a value the
# sim evidence does not have when asked
write_conf() {
    local pcrs=", any_image: true"
    [ -z "${1:-}" ] || pcrs=", pcrs: {0: \"$(printf '11%.0s' {1..48})\"}"
    cat >"$CONF.new" <<EOF
control: unix:$T/ctl.sock
relays:
  - {name: v, listen: "tcp:127.0.0.1:$V", target: "tcp:127.0.0.1:$GATE",
     verify: {policy: {sim_root: $T/sim.pem$pcrs}}}
EOF
    mv "$CONF.new" "$CONF"
}
reload() { "$AIRLOCK" ctl -s "unix:$T/ctl.sock" reload >"$T/reload.out" || fail "reload: $(cat "$T/reload.out")"; }

write_conf
airlock_up air run -c "$CONF"
AIR=$LAST_PID

log "a client whose relay's handshake is held up across a reload that pins a PCR"
held early socat -t 5 - "TCP:127.0.0.1:$V"
held_say early "sent-before-the-reload"
wait_log "$T/gate.log" '^accepted$' 10
write_conf pcr
reload
touch "$T/open"
wait_log "$LOG" 'close relay=v .*end=attest_refused' 10
! grep -q 'sent-before-the-reload' "$T/backend" 2>/dev/null || fail "the client reached the backend"
unhold early

log "the policy put back: a new client is served"
write_conf
reload
[ "$(echo served | timeout 10 socat -t 3 - "TCP:127.0.0.1:$V")" = served ] ||
    fail "no echo through the verify relay: $(tail -3 "$LOG")"
stop_clean "$AIR" air
log "ok"
