#!/bin/bash
# t_ntp: an unmodified chronyd inside an "enclave" (a network namespace with
# only lo) synchronises from a chronyd server outside through a datagram
# relay pair over one unix stream:
#   enclave: chronyd -> udp:127.0.0.1:123 -> airlock -> unix:$T/ntp.sock
#   host:    unix:$T/ntp.sock -> airlock -> udp:127.0.0.1:11123 -> chronyd
# chronyc tracking (over the client's own command socket) must show the
# relay's address as reference and "Leap status : Normal" within 30 s.
# Both chronyds run with -x (they never touch the system clock), their own
# config, pid and command socket files in $T, and no privilege drop.
. "$(dirname "$0")/lib.sh"

need chronyd chronyc nsenter unshare
host_namespaces

# ---- the host side: an NTP server serving its own clock, and the relay
cat >"$T/server.conf" <<EOF
local stratum 8
allow 127.0.0.1
port 11123
bindaddress 127.0.0.1
cmdport 0
bindcmdaddress $T/server.sock
pidfile $T/server.pid
EOF
start server chronyd -x -d -u root -f "$T/server.conf"
wait_for bash -c "ss -Hluln 'sport = :11123' | grep -q ."

cat >"$T/host.yaml" <<EOF
metrics: tcp:127.0.0.1:9100
relays:
  - name: ntp-host
    listen: unix:$T/ntp.sock
    target: udp:127.0.0.1:11123
EOF
airlock_up host run -c "$T/host.yaml"
HOST=$LAST_PID

# ---- the enclave: only lo; the relay on 127.0.0.1:123, chronyd its client
enclave_ns

cat >"$T/enclave.yaml" <<EOF
relays:
  - name: ntp-enclave
    listen: udp:127.0.0.1:123
    target: unix:$T/ntp.sock
EOF
start enclave-relay nsenter -t "$ENC_NS" -n -m -- "$AIRLOCK" run -c "$T/enclave.yaml"
ENC=$LAST_PID
wait_log "$T/enclave-relay.log" "relay=ntp-enclave conn=[0-9]+ stream to unix:$T/ntp.sock up"

# port 0: a client only, so it does not compete with the relay for port 123
cat >"$T/client.conf" <<EOF
server 127.0.0.1 port 123 iburst minpoll 0 maxpoll 0
port 0
cmdport 0
bindcmdaddress $T/client.sock
pidfile $T/client.pid
EOF
start client nsenter -t "$ENC_NS" -n -m -- chronyd -x -d -u root -f "$T/client.conf"
CLIENT=$LAST_PID
wait_for test -S "$T/client.sock"

log "chronyd in the enclave synchronises through the relays"
start_ns=$(date +%s%N)
synced() {
    chronyc -n -h "$T/client.sock" tracking >"$T/tracking" 2>&1 &&
        grep -Eq '^Reference ID +: 7F000001 \(127\.0\.0\.1\)' "$T/tracking" &&
        grep -Eq '^Leap status +: Normal' "$T/tracking"
}
for i in $(seq 1 300); do
    synced && break
    sleep 0.1
done
synced || {
    cat "$T/tracking" >&2
    chronyc -n -h "$T/client.sock" sources >&2 || true
    tail -n 20 "$T/client.log" "$T/enclave-relay.log" "$T/host.log" >&2
    fail "chronyd in the enclave did not synchronise within 30 s"
}
log "synchronised after $(elapsed_ms "$start_ns") ms"
cat "$T/tracking"
chronyc -n -h "$T/client.sock" sources | has '^\^\* *127\.0\.0\.1' || fail "source not selected"
[ "$(metric airlock_datagrams_in_total 'relay="ntp-host"' 9100)" -ge 1 ] || fail "datagrams_in"
[ "$(metric airlock_datagrams_out_total 'relay="ntp-host"' 9100)" -ge 1 ] || fail "datagrams_out"

log "both relays stop cleanly"
kill "$CLIENT"
stop_clean "$ENC" enclave-relay
stop_clean "$HOST" host
! grep -Eq "ERROR|runtime error" "$T/enclave-relay.log" "$T/host.log" || fail "sanitizer report"
log "ok"
