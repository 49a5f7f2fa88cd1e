#!/bin/bash
# t_unproven: clients that open connections and say too little (part of a
# ClientHello, part of a PROXY header) hold no slot against others. At
# max_connections a newcomer takes the place of the oldest connection that
# is still unproven (end=evicted); proven ones are never evicted:
#   - a router with max_connections 6 full of partial ClientHellos: a real
#     TLS client is routed and answered (before: refused with
#     reason=max_connections until peek_timeout); then clients with whole
#     hellos take the places of the others, the oldest first;
#   - the same router full of routed clients (whole hellos, silent since):
#     a newcomer is refused, and none of the six is closed;
#   - a relay with accept_proxy: v2 and max_connections 3, full of partial
#     PROXY headers: a client with a whole header is relayed (echo);
#   - a tls: relay (sim evidence) with max_connections 2, full of partial
#     handshakes: a TLS client's handshake completes and it is relayed;
#   - a reload that replaces the PROXY relay: a newcomer still takes the
#     place of a connection the replaced one accepted;
#   - out of file descriptors (a hard limit of 64, no max_connections): a
#     router full of partial ClientHellos still routes a real TLS client
#     (before: its accept waited, paused, until peek_timeout freed one), and
#     the PROXY relay, which holds none of them, still relays.
# Two worker threads, so that evictions cross threads.
. "$(dirname "$0")/lib.sh"
need openssl python3 socat

read -r A R P ECHO M S <<<"$(free_ports 6)"
"$AIRLOCK" attest get --provider sim --sim-root "$T/sim.pem" >/dev/null 2>&1 ||
    fail "cannot make the sim root"
tls_origin alpha "$A"
start echo socat TCP-LISTEN:"$ECHO",bind=127.0.0.1,reuseaddr,fork PIPE
wait_for tcp_up "$ECHO"

# conf [MAXCONN [IDLE]]: the router, max_connections MAXCONN (none
# without), the PROXY relay (idle_timeout IDLE) and the tls: relay
conf() {
    cat >"$T/airlock.yaml" <<YAML
threads: 2
drain_timeout: 1s
metrics: tcp:127.0.0.1:$M
routers:
  - name: r
    listen: tcp:127.0.0.1:$R
    routes:
      - {name: alpha.test, target: tcp:127.0.0.1:$A}
    peek_timeout: 60s
${1:+    max_connections: $1}
relays:
  - name: p
    listen: tcp:127.0.0.1:$P
    target: tcp:127.0.0.1:$ECHO
    accept_proxy: v2
    preamble_timeout: 60s
    idle_timeout: ${2:-1h}
    max_connections: 3
  - name: s
    listen: tcp:127.0.0.1:$S
    target: tcp:127.0.0.1:$ECHO
    tls: {provider: sim, sim_root: $T/sim.pem, handshake_timeout: 60s}
    max_connections: 2
YAML
}

# stallers PORT N TEXT: N connections to PORT, each sending TEXT then
# nothing (tests/tools/stall.py), each from its own address (127.0.1.1 and
# on: no client is at its max_unproven_per_client); $T/stallers.N.ready
# when all are connected, and a line "closed I" for each that airlock closes
stallers() {
    start "stallers.$2" python3 -u "$ROOT/tests/tools/stall.py" "$1" "$2" "$3" \
        "$T/stallers.$2.ready" 127.0.1.1+
}
# the first bytes of a ClientHello (a record of 512 bytes, a hello of 508)
HELLO='\x16\x03\x01\x02\x00\x01\x00\x01\xfc'
# proxied: what the PROXY relay echoes of "ping" sent after a whole header
# (v2 PROXY, TCP over IPv4: 127.0.0.9:12345 -> 127.0.0.1:80)
proxied() {
    local hdr='\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a\x21\x11\x00\x0c\x7f\x00\x00\x09\x7f\x00\x00\x01\x30\x39\x00\x50'
    (printf %b "$hdr"; echo ping; sleep 2) | timeout 5 socat -T 3 - "TCP:127.0.0.1:$P"
}
# in_place_of N: a client with a whole PROXY header is relayed, in the
# place of the PROXY relay's staller N (N + 1 evicted so far)
in_place_of() {
    local got
    got=$(proxied)
    [ "$got" = ping ] || fail "a client with a whole PROXY header was not relayed (got '$got')"
    wait_log "$T/stallers.3.log" "^closed $1"
    [ "$(evicted p)" = $(($1 + 1)) ] || fail "airlock_connections_closed_total{relay=p,end=evicted} is $(evicted p)"
}
opened() { [ "$(metric airlock_connections_open "relay=\"$1\"" "$M")" = "$2" ]; }
evicted() { metric airlock_connections_closed_total "relay=\"$1\",end=\"evicted\"" "$M"; }

# tls_get: a real TLS client through the router gets s_server's page
tls_get() {
    printf 'GET / HTTP/1.0\r\n\r\n' |
        timeout 10 openssl s_client -connect "127.0.0.1:$R" -servername alpha.test -quiet \
            2>/dev/null | grep -q 's_server'
}

conf 6
airlock_up al run -c "$T/airlock.yaml"
AL=$LAST_PID

log "a router full of partial ClientHellos still routes real clients"
stallers "$R" 6 "$HELLO"
wait_for test -e "$T/stallers.6.ready"
wait_for opened r 6
tls_get || fail "a TLS client was not routed while stallers held max_connections"
wait_log "$T/stallers.6.log" '^closed 0'
# whole hellos, held: the first takes the slot the TLS client left, each
# of the five others the place of a staller
for i in 1 2 3 4 5 6; do hold "h$i" "$R" alpha.test; done
closed_all() { [ "$(grep -c '^closed' "$T/stallers.6.log")" = 6 ]; }
wait_for closed_all
[ "$(grep '^closed' "$T/stallers.6.log" | tr -d 'closed \n')" = 012345 ] ||
    fail "the stallers were not evicted oldest first: $(grep '^closed' "$T/stallers.6.log" | tr '\n' ' ')"
[ "$(evicted r)" = 6 ] || fail "airlock_connections_closed_total{end=evicted} is $(evicted r), not 6"
grep -q 'refused relay=r .*reason=max_connections' "$T/al.log" &&
    fail "a client was refused while unproven connections held the slots"

log "proven connections are not evicted"
# each whole hello is routed: dialled to the backend (the TLS client's too)
dialled() { [ "$(metric airlock_connect_duration_seconds_count 'relay="r"' "$M")" = 7 ]; }
wait_for dialled
tls_get && fail "a client took the place of a routed connection"
wait_log "$T/al.log" 'refused relay=r .*reason=max_connections'
for i in 1 2 3 4 5 6; do
    grep -q eof "$T/h$i.out" && fail "routed client $i was closed"
done
[ "$(evicted r)" = 6 ] || fail "a routed connection was evicted"
for i in 1 2 3 4 5 6; do unhold "h$i"; done
wait_for opened r 0

log "a relay full of partial PROXY headers still relays a whole one"
stallers "$P" 3 '\r\n\r\n\x00\r'
wait_for test -e "$T/stallers.3.ready"
wait_for opened p 3
in_place_of 0

log "after a reload that replaced the relay, its earlier connections still give their places"
stallers "$P" 1 '\r\n\r\n\x00\r'
wait_for opened p 3
conf 6 30m # a change of relay p: a new one takes over its listener and counters
kill -HUP "$AL"
wait_log "$T/al.log" 'reloaded'
in_place_of 1

log "a tls: relay full of partial handshakes still serves a whole one"
stallers "$S" 2 "$HELLO"
wait_for test -e "$T/stallers.2.ready"
wait_for opened s 2
got=$( (echo ping; sleep 2) | timeout 10 openssl s_client -connect "127.0.0.1:$S" -quiet -no_ign_eof 2>/dev/null)
[ "$got" = ping ] || fail "a TLS client was not relayed by the tls: relay (got '$got')"
wait_log "$T/stallers.2.log" '^closed 0'
[ "$(evicted s)" = 1 ] || fail "airlock_connections_closed_total{relay=s,end=evicted} is $(evicted s)"
stop_clean "$AL" al

log "out of file descriptors, a router full of partial ClientHellos still routes"
conf
airlock_nofile limited 64 run -c "$T/airlock.yaml"
AL=$LAST_PID
stallers "$R" 80 "$HELLO"
wait_for test -e "$T/stallers.80.ready"
# airlock ran out of descriptors: it evicted some to accept the others
evicted_some() { grep -q '^closed' "$T/stallers.80.log"; }
wait_for evicted_some
# the stallers are the router's: the PROXY relay, which has none, takes their descriptors
got=$(proxied)
[ "$got" = ping ] || fail "the PROXY relay was not served while the router's stallers held every file descriptor (got '$got')"
tls_get || fail "a TLS client was not routed while stallers held every file descriptor"
# a burst: each dial short of a descriptor has stallers evicted until it
# gets one (before: once, and the acceptor took that descriptor for the
# next client about as often: 3 or 4 of 10 ended with end=error)
# (the origin serves one handshake at a time: the router's close lines
# tell whether each was connected to it)
python3 - "$R" "$ROOT/tests/tools" <<'PY'
import socket, sys, time
sys.path.insert(0, sys.argv[2])
from hello_hold import client_hello
hello = client_hello("alpha.test")
socks = [socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10,
                                  source_address=("127.0.9.%d" % (i + 1), 0)) for i in range(10)]
for s in socks:
    s.sendall(hello)
time.sleep(2)
PY
burst_closed() { [ "$(grep -c 'close relay=r conn=[0-9]* client=127\.0\.9\.' "$T/limited.log")" = 10 ]; }
wait_for burst_closed
n=$(grep 'close relay=r conn=[0-9]* client=127\.0\.9\.' "$T/limited.log" | grep -vc 'end=error' || true)
[ "$n" = 10 ] || fail "$n of 10 TLS clients of a burst were routed while stallers held every file descriptor: $(grep 'client=127\.0\.9\.' "$T/limited.log")"
stop_clean "$AL" limited
