#!/bin/bash
# t_dns: unmodified DNS clients (dig, and getent through glibc's resolver)
# inside an "enclave" reach a resolver outside through a datagram relay pair
# over one unix stream: udp:127.0.0.1:53 -> unix:$T/dns.sock (enclave side)
# and unix:$T/dns.sock -> udp:127.0.0.1:5353 (host side, dnsmasq behind).
# Proves: answers for dig and getent; dns_allow answers REFUSED itself;
# concurrent clients each get their own answer (flow mapping); the host
# relay killed and started again is found again without restarting the
# enclave side, and a client socket from before still gets its replies
# (flows survive); malformed frames close that stream only; oversized
# datagrams are dropped and counted; a stream that does not read makes
# datagrams drop (counted) without blocking other relays; a reload that
# changes dns_allow takes effect; both sides exit cleanly.
#
# Runs in private network, mount and pid namespaces (the "host", with
# dnsmasq on its loopback); the enclave is one more network and mount
# namespace with only lo and /etc/resolv.conf saying nameserver 127.0.0.1.
. "$(dirname "$0")/lib.sh"

need dnsmasq dig getent socat nsenter unshare curl
host_namespaces

# ---- the host side: dnsmasq and the host relay
{
    echo "127.0.0.9 db.grid.test"
    for i in $(seq 1 40); do echo "10.9.0.$i n$i.grid.test"; done
    echo "10.66.0.1 secret.other.test"
} >"$T/hosts"
start dnsmasq dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --addn-hosts="$T/hosts" --local=/grid.test/ --local=/other.test/ --listen-address=127.0.0.1 \
    --bind-interfaces --port=5353 --user=root --group=root --pid-file="$T/dnsmasq.pid" \
    --log-queries --log-facility=-
wait_for bash -c "ss -Hluln 'sport = :5353' | grep -q ."

host_conf() { # DNS_ALLOW
    cat >"$T/host.yaml" <<EOF
metrics: tcp:127.0.0.1:9100
relays:
  - name: dns-host
    listen: unix:$T/dns.sock
    target: udp:127.0.0.1:5353
    dns_allow: [$1]
EOF
}
host_conf 'db.grid.test, "*.grid.test"'
HLOG=$T/host.log
airlock_up host run -c "$T/host.yaml"
HOST=$LAST_PID

# ---- the enclave: a network namespace with only lo, its own resolv.conf
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:3\n' >"$T/resolv.conf"
enclave_ns "mount --bind '$T/resolv.conf' /etc/resolv.conf"
enc ip -o link show | has -v ' lo:' && fail "the enclave has more than lo"
enc grep -q '^nameserver 127.0.0.1$' /etc/resolv.conf || fail "the enclave's resolv.conf"

# a unix listener that accepts and never reads: the backed-up stream
start stuck socat UNIX-LISTEN:"$T/stuck.sock" SYSTEM:"sleep 1000"
wait_for unix_up "$T/stuck.sock"

cat >"$T/enclave.yaml" <<EOF
metrics: unix:$T/enclave.metrics
relays:
  - name: dns-enclave
    listen: udp:127.0.0.1:53
    target: unix:$T/dns.sock
  - name: stuck
    listen: udp:127.0.0.1:5400
    target: unix:$T/stuck.sock
EOF
ELOG=$T/enclave-relay.log
start enclave-relay nsenter -t "$ENC_NS" -n -m -- "$AIRLOCK" run -c "$T/enclave.yaml"
ENC=$LAST_PID
wait_log "$ELOG" "relay=dns-enclave conn=[0-9]+ stream to unix:$T/dns.sock up"

hmetric() { metric "$1" "$2" 9100; }
emetric() {
    curl -sf --unix-socket "$T/enclave.metrics" http://enclave/metrics |
        awk -v k="$1{$2}" '$1 == k { print $2 }'
}
edig() { enc dig @127.0.0.1 +tries=2 +timeout=2 "$@"; }

log "dig and getent in the enclave get the resolver's answers"
got=$(edig +short db.grid.test)
[ "$got" = 127.0.0.9 ] || fail "dig db.grid.test: '$got'"
got=$(enc getent hosts db.grid.test)
[[ $got =~ ^127\.0\.0\.9\ +db\.grid\.test$ ]] || fail "getent hosts db.grid.test: '$got'"
got=$(edig +short n7.grid.test)
[ "$got" = 10.9.0.7 ] || fail "dig n7.grid.test: '$got'"
[ "$(hmetric airlock_datagrams_in_total 'relay="dns-host"')" -ge 3 ] || fail "host datagrams_in"
[ "$(emetric airlock_datagrams_out_total 'relay="dns-enclave"')" -ge 3 ] ||
    fail "enclave datagrams_out"

log "dns_allow: other names are REFUSED by the host relay, never asked"
out=$(edig secret.other.test)
grep -q 'status: REFUSED' <<<"$out" || fail "expected REFUSED: $out"
grep -q 'QUESTION SECTION' <<<"$out" || fail "the REFUSED answer carries no question: $out"
grep -q 'dns_denied relay=dns-host conn=[0-9]* flow=[0-9]* name=secret.other.test type=1' \
    "$HLOG" || fail "no dns_denied log line"
grep -q 'secret.other.test' "$T/dnsmasq.log" && fail "a denied query reached the resolver"
[ "$(hmetric airlock_datagrams_dropped_total 'relay="dns-host",reason="denied"')" -ge 1 ] ||
    fail "denied not counted"
[ "$(edig +short db.grid.test)" = 127.0.0.9 ] || fail "allowed name after a denied one"
# a flood of denied queries: each REFUSED and counted, a log line a second
before=$(hmetric airlock_datagrams_dropped_total 'relay="dns-host",reason="denied"')
enc python3 -c '
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
q = lambda i: struct.pack(">HHHHHH", i, 0x100, 1, 0, 0, 0) + b"\x05flood\x05other\x04test\x00\x00\x01\x00\x01"
for i in range(300):
    s.sendto(q(i), ("127.0.0.1", 53))
got = 0
try:
    while got < 300:
        s.recv(512)
        got += 1
except socket.timeout:
    pass
print(got)' >"$T/flood.out" 2>&1 || fail "the flood: $(cat "$T/flood.out")"
flooded() { [ "$(hmetric airlock_datagrams_dropped_total 'relay="dns-host",reason="denied"')" -ge $((before + 250)) ]; }
wait_for flooded || fail "denied floods not counted: $(cat "$T/flood.out") answered"
lines=$(grep -c 'dns_denied relay=dns-host .*name=flood.other.test' "$HLOG" || true)
[ "$lines" -le 6 ] || fail "$lines dns_denied lines for a flood of 300 queries"

log "40 concurrent clients each get their own answer"
pids=()
for i in $(seq 1 40); do
    edig +short "n$i.grid.test" >"$T/c$i.out" 2>&1 &
    pids+=($!)
done
wait "${pids[@]}" || true
for i in $(seq 1 40); do
    # a slow machine may make dig retry (";; communications error"): the
    # answer must still be this client's own
    got=$(grep -v '^;;' "$T/c$i.out" || true)
    [ "$got" = "10.9.0.$i" ] || fail "client $i (n$i.grid.test) got '$(cat "$T/c$i.out")'"
done

log "40 client sockets with queries outstanding at once: each reply reaches its own"
# one process sends every query before it reads any reply; the query id is
# 0x20 + i (bash's printf writes a newline byte apart, as its own datagram)
enc bash -c '
    for i in $(seq 1 40); do exec {fd}<>/dev/udp/127.0.0.1/53; fds[i]=$fd; done
    for i in $(seq 1 40); do
        h=$(printf %02x $((32 + i))) l=$(printf %02x $((1 + ${#i})))
        printf "\x00\x$h\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x${l}n$i\x04grid\x04test\x00\x00\x01\x00\x01" >&${fds[i]}
    done
    for i in $(seq 1 40); do
        timeout 5 dd bs=4096 count=1 status=none <&${fds[i]} | od -An -tx1 | tr -d " \n"
        echo
    done' >"$T/raw.out"
for i in $(seq 1 40); do
    line=$(sed -n "${i}p" "$T/raw.out")
    [[ $line == 00$(printf %02x $((32 + i)))8* && $line == *0a0900$(printf %02x "$i") ]] ||
        fail "socket $i got '$line'"
done

log "an oversized datagram is dropped and counted on both sides"
enc bash -c 'dd if=/dev/zero bs=5000 count=1 status=none >/dev/udp/127.0.0.1/53'
wait_for bash -c "curl -sf --unix-socket $T/enclave.metrics http://e/metrics |
    grep -q 'dropped_total{relay=\"dns-enclave\",reason=\"oversize\"} 1$'"
grep -q 'drop relay=dns-enclave reason=oversize flow=[0-9]* size=5000' "$ELOG" ||
    fail "no drop line for the oversized datagram"
# by hand on the host's stream: a 5000-byte frame (host max_datagram 4096)
{ printf '\xa1\x01\x13\x88\x00\x00\x00\x01'; head -c 5000 /dev/zero; sleep 0.5; } |
    socat -t 1 - UNIX-CONNECT:"$T/dns.sock" >/dev/null
[ "$(hmetric airlock_datagrams_dropped_total 'relay="dns-host",reason="oversize"')" = 1 ] ||
    fail "host oversize not counted"

log "a framed query by hand gets a framed answer (flow 1 on its own stream)"
Q='\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x02db\x04grid\x04test\x00\x00\x01\x00\x01'
reply=$({ printf '\xa1\x01\x00\x1e\x00\x00\x00\x01'"$Q"; sleep 1; } |
    socat -t 2 - UNIX-CONNECT:"$T/dns.sock" | od -An -tx1 | tr -d ' \n')
[[ $reply == a10100??000000011234[89]* ]] || fail "framed reply: $reply"
[[ $reply == *7f000009 ]] || fail "framed reply lacks 127.0.0.9: $reply"

log "malformed frames close that stream only"
ups=$(grep -c 'stream to .* up' "$ELOG")
printf 'GET / HTTP/1.0\r\n\r\n' | socat -t 2 - UNIX-CONNECT:"$T/dns.sock" >/dev/null || true
wait_log "$HLOG" 'bad frame after 0 frames: bad magic byte'
{ printf '\xa1\x01\x00\x1e\x00\x00\x00\x02'"$Q"'\xa1\x07'; sleep 1; } |
    socat -t 2 - UNIX-CONNECT:"$T/dns.sock" >/dev/null || true
wait_log "$HLOG" 'bad frame after 1 frames: unknown frame type'
printf '\xa1\x01\x00\x01\x00\x00\x00\x00x' | socat -t 2 - UNIX-CONNECT:"$T/dns.sock" >/dev/null || true
wait_log "$HLOG" 'bad frame after 0 frames: flow id 0'
wait_ends "$HLOG" bad_frame 3 # each close line follows its warning
[ "$(edig +short n3.grid.test)" = 10.9.0.3 ] || fail "the enclave's stream was disturbed"
[ "$(grep -c 'stream to .* up' "$ELOG")" = "$ups" ] || fail "the enclave had to reconnect"
[ "$(hmetric airlock_connections_open 'relay="dns-host"')" = 1 ] || fail "host streams open"
running "$HOST" || fail "the host relay died"

log "a stream that does not read: datagrams dropped and counted, nothing blocks"
wait_log "$ELOG" "relay=stuck conn=[0-9]+ stream to unix:$T/stuck.sock up"
enc bash -c "head -c 8000000 /dev/zero | socat -b 1000 -u - UDP-SENDTO:127.0.0.1:5400"
backlog_drops() { [ "$(emetric airlock_datagrams_dropped_total 'relay="stuck",reason="backlog"')" -gt 0 ]; }
wait_for backlog_drops
backlog=$(emetric airlock_datagrams_dropped_total 'relay="stuck",reason="backlog"')
[ "$(edig +short db.grid.test)" = 127.0.0.9 ] || fail "dns blocked by the stuck relay"
log "stuck relay dropped $backlog datagrams"

log "the host relay killed and started again: the enclave reconnects, flows survive"
# one client socket across the restart: a query before, one after
enc bash -c "exec 3<>/dev/udp/127.0.0.1/53
    printf '$Q' >&3; timeout 5 dd bs=4096 count=1 status=none <&3 >'$T/p1'
    while [ ! -e '$T/go2' ]; do sleep 0.1; done
    for i in \$(seq 1 20); do
        printf '$Q' >&3; timeout 1 dd bs=4096 count=1 status=none <&3 >'$T/p2'
        [ -s '$T/p2' ] && break
    done" &
PERSIST=$!
wait_for test -s "$T/p1"
od -An -tx1 "$T/p1" | tr -d ' \n' | has '7f000009$' || fail "persistent client: first reply"
kill -KILL "$HOST"
wait "$HOST" 2>/dev/null || true
wait_log "$ELOG" "stream to unix:$T/dns.sock lost"
edig +tries=1 +timeout=1 db.grid.test >/dev/null 2>&1 && fail "answered with the host relay down"
airlock_up host2 run -c "$T/host.yaml"
HOST=$LAST_PID
HLOG=$T/host2.log
start_ns=$(date +%s%N)
for i in $(seq 1 20); do
    got=$(edig +tries=1 +timeout=1 +short db.grid.test 2>/dev/null || true)
    [ "$got" = 127.0.0.9 ] && break
done
[ "$got" = 127.0.0.9 ] || fail "no answer after the host relay came back"
log "answers again $(elapsed_ms "$start_ns") ms after the restart"
running "$ENC" || fail "the enclave relay died"
touch "$T/go2"
wait "$PERSIST" || true
od -An -tx1 "$T/p2" | tr -d ' \n' | has '7f000009$' ||
    fail "persistent client: no reply after the restart"

log "reload: a changed dns_allow applies; the enclave follows"
[ "$(edig +short secret.other.test)" = "" ] || fail "secret.other.test answered before reload"
host_conf '"*.other.test"'
kill -HUP "$HOST"
wait_log "$HLOG" 'reloaded .*: 1 relays'
grep -q 'relay=dns-host changed' "$HLOG" || fail "no 'changed' line"
for i in $(seq 1 20); do
    got=$(edig +tries=1 +timeout=1 +short secret.other.test 2>/dev/null || true)
    [ "$got" = 10.66.0.1 ] && break
done
[ "$got" = 10.66.0.1 ] || fail "secret.other.test after the reload: '$got'"
out=$(edig db.grid.test)
grep -q 'status: REFUSED' <<<"$out" || fail "db.grid.test is no longer allowed: $out"

log "both sides stop cleanly"
stop_clean "$ENC" enclave-relay
stop_clean "$HOST" host2
! grep -Eq "ERROR|runtime error" "$ELOG" "$HLOG" "$T/host.log" || fail "sanitizer report"
log "ok"
