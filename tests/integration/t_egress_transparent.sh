#!/bin/bash
# t_egress_transparent: transparent egress. An unmodified client in the
# enclave connects to an internet address; iptables REDIRECT hands the
# connection to the enclave-side relay, which reads SO_ORIGINAL_DST and
# sends it to the host in a PROXY v2 header; the host's egress relay checks
# it against its allowlist and connects.
#
#   "enclave" netns: lo only; a default route into lo (source 203.0.113.2)
#     so that connects to outside addresses get as far as the nat table
#     iptables -t nat OUTPUT -p tcp ! -d 127/8 -j REDIRECT --to-ports $TP
#     curl http://198.51.100.10/ -> airlock tcp:127.0.0.1:$TP (original_dst,
#         send_proxy v2) -> unix:$T/egress.sock (stand-in for vsock)
#   "host" netns (private, like the other namespaces of this test):
#     airlock unix:$T/egress.sock -> egress, allow 198.51.100.10:80
#     veth-h 198.51.100.1/24, route 192.0.2.0/24 --veth--+
#   "inet" netns: veth-i 198.51.100.10/24 + 192.0.2.10/24  <-+
#     HTTP servers (socat) on 198.51.100.10:80, :81 and 192.0.2.10:80 that
#     answer with the client address they see
#
# Proves: curl to the allowed address works, and the server sees the host's
# address (the bytes went through both relays, not around them); a port
# not listed and an address not listed (documentation range: special, so
# private_address) fail with a plain close, logged and counted; a client
# that connects to the relay port directly (not redirected) carries its
# loopback destination and is refused too. All addresses exist only inside
# the test's namespaces.
. "$(dirname "$0")/lib.sh"

need iptables curl socat nsenter
host_namespaces
iptables -t nat -L OUTPUT >/dev/null 2>&1 || skip "iptables nat unusable here"

read -r TP M <<<"$(free_ports 2)"

log "the internet: a namespace behind a veth pair, with TEST-NET servers"
start inet unshare --net sleep 600
inet=$LAST_PID
in_inet() { nsenter --net="/proc/$inet/ns/net" "$@"; }
own_netns() { [ "$(readlink "/proc/$1/ns/net")" != "$(readlink /proc/self/ns/net)" ]; }
wait_for own_netns "$inet"
ip link add veth-h type veth peer name veth-i netns "$inet"
ip addr add 198.51.100.1/24 dev veth-h
ip link set veth-h up
ip route add 192.0.2.0/24 dev veth-h
in_inet ip link set lo up
in_inet ip addr add 198.51.100.10/24 dev veth-i
in_inet ip addr add 192.0.2.10/24 dev veth-i
in_inet ip link set veth-i up
cat >"$T/http.sh" <<'EOF'
while IFS= read -r line; do [ "${line%$'\r'}" = "" ] && break; done
body="$1 port $2 saw $SOCAT_PEERADDR"
printf 'HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s\n' $((${#body} + 1)) "$body"
EOF
for srv in 198.51.100.10:80 198.51.100.10:81 192.0.2.10:80; do
    start "srv-$srv" nsenter --net="/proc/$inet/ns/net" socat \
        TCP-LISTEN:"${srv#*:}",bind="${srv%:*}",reuseaddr,fork SYSTEM:"bash $T/http.sh ${srv%:*} ${srv#*:}"
done
wait_for bash -c "nsenter --net=/proc/$inet/ns/net ss -Htln | grep -c . | grep -qx 3"
wait_for curl -sf --max-time 1 http://198.51.100.10/

log "the host: the egress relay"
cat >"$T/host.yaml" <<EOF
metrics: tcp:127.0.0.1:$M
relays:
  - name: egress
    listen: unix:$T/egress.sock
    target: egress
    egress_allow: [198.51.100.10:80]
EOF
airlock_up host run -c "$T/host.yaml"
host=$LAST_PID
LOG=$T/host.log

log "the enclave: lo only (with a default route into it), iptables REDIRECT, the relay"
start enclave unshare --net bash -c "
    ip link set lo up &&
    ip addr add 203.0.113.2/32 dev lo && ip route add default dev lo src 203.0.113.2 &&
    iptables -t nat -A OUTPUT -p tcp -d 127.0.0.0/8 -j RETURN &&
    iptables -t nat -A OUTPUT -p tcp -j REDIRECT --to-ports $TP &&
    exec '$AIRLOCK' relay tcp:127.0.0.1:$TP 'unix:$T/egress.sock' --name enclave \
        --send-proxy v2 --original-dst --log-level debug"
enclave=$LAST_PID
enc() { nsenter --net="/proc/$enclave/ns/net" "$@"; }
wait_for grep -q "airlock running" "$T/enclave.log"
ELOG=$T/enclave.log

denied() { metric airlock_egress_denied_total "relay=\"egress\",reason=\"$1\"" "$M"; }
get() { enc curl -sS --max-time 10 "$1" 2>&1; }

log "curl http://198.51.100.10/ from the enclave: through both relays"
got=$(get http://198.51.100.10/) || fail "curl to the allowed address failed: $got"
[[ $got == "198.51.100.10 port 80 saw 198.51.100.1" ]] || fail "the server answered '$got'"
grep -q "relay=enclave conn=[0-9]* original destination=198.51.100.10:80" "$ELOG" ||
    fail "the enclave relay did not log the original destination"
wait_log "$LOG" "close relay=egress conn=[0-9]+ client=unix:- dest=198.51.100.10:80 .*end=eof"

log "a port not listed: closed, not_allowed_port"
got=$(get http://198.51.100.10:81/) && fail "curl to port 81 succeeded: $got"
grep -q "egress denied relay=egress conn=[0-9]* via=proxy dest=198.51.100.10:81 addr=198.51.100.10:81 range=documentation reason=not_allowed_port" "$LOG" ||
    fail "no not_allowed_port line"
[ "$(denied not_allowed_port)" = 1 ] || fail "not_allowed_port count is $(denied not_allowed_port)"

log "an address not listed: closed, private_address (TEST-NET is special)"
got=$(get http://192.0.2.10/) && fail "curl to 192.0.2.10 succeeded: $got"
grep -q "egress denied relay=egress conn=[0-9]* via=proxy dest=192.0.2.10:80 addr=192.0.2.10:80 range=documentation reason=private_address" "$LOG" ||
    fail "no private_address line"
log "...while the host itself can reach it (the refusal is the relay's)"
curl -sS --max-time 5 http://192.0.2.10/ | has "192.0.2.10 port 80 saw" || fail "host cannot reach 192.0.2.10"

log "a client of the relay port itself (not redirected): its loopback destination is refused"
got=$(get "http://127.0.0.1:$TP/") && fail "a direct client got through: $got"
grep -q "egress denied relay=egress conn=[0-9]* via=proxy dest=127.0.0.1:$TP addr=127.0.0.1:$TP range=loopback reason=private_address" "$LOG" ||
    fail "no private_address line for the direct client"
[ "$(denied private_address)" = 2 ] || fail "private_address count is $(denied private_address)"

log "the allowed destination still works"
got=$(get http://198.51.100.10/) || fail "second curl failed: $got"
[[ $got == "198.51.100.10 port 80 saw 198.51.100.1" ]] || fail "second answer '$got'"

running "$host" || fail "the host relay died"
stop_clean "$enclave" enclave
stop_clean "$host" host
! grep -Eq "ERROR|runtime error" "$LOG" "$ELOG" || fail "sanitizer report in a log"
[ -z "${SHOW_LOGS:-}" ] || cat "$LOG" "$ELOG"
log "pass"
