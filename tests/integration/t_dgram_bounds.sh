#!/bin/bash
# t_dgram_bounds: a peer of a stream -> udp datagram relay cannot exhaust the
# process's file descriptors (each new flow id costs the relay a socket).
# airlock runs with an open files limit of 1024 (soft and hard).
#
# Part 1, default settings (a config the code before the bounds accepted
# too): a peer opens 8 streams with 1000 new flow ids each. Meanwhile a tcp
# relay of the same process still accepts and relays, a second datagram
# relay still answers, the process holds at most the default budget (an
# eighth of the limit: 128 fds) more than before: 8 streams and 64 flow
# sockets (half the budget) shared by them, each new flow evicting an old
# one (counted). Every datagram is still relayed.
#
# Part 2, the settings: max_flows bounds one stream's sockets (the least
# recently used flow goes; airlock_datagram_flows shows them), max_fds 4
# holds two streams (half of it): more take the places of silent ones
# (end=evicted), never of the stream that carries frames, so silent streams
# cannot shut the enclave's queries out for idle_timeout (before: refused,
# reason=max_fds); idle_timeout closes a stream that carries no frame
# (end=idle_timeout).
#
# Part 3, silent streams take no share of the flow sockets: with max_fds 20
# (10 streams, 10 flow sockets), 9 streams that send nothing, and a tenth
# that sends 4 queries at once to a server that answers 0.3 s later: all 4
# are answered, no flow evicted (before: each new flow evicted the last, 1
# answer of 4).
. "$(dirname "$0")/lib.sh"

need socat python3 curl ss
FLOOD=$ROOT/tests/tools/frame_flood.py
NOFILE=1024
BUDGET=$((NOFILE / 8))

read -r M U BACK D D2 W US <<<"$(free_ports 7)"
MPORT=$M
start echo python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    data, addr = s.recvfrom(65536)
    s.sendto(data, addr)' "$U"
say_server back "$BACK" hello
wait_for tcp_up "$BACK"
wait_for bash -c "ss -Hluln 'sport = :$U' | grep -q ."

# limited NAME ARGS...: airlock_up with the open files limit at $NOFILE
limited() {
    local name=$1
    shift
    start "$name" bash -c "ulimit -n $NOFILE && exec \"\$@\"" _ \
        "$AIRLOCK" "$@"
    AL=$LAST_PID
    wait_log "$T/$name.log" 'airlock running'
}

# m NAME LABELS: one metric (bounded: a process out of fds may never answer)
m() { curl -sf -m 5 "http://127.0.0.1:$M/metrics" | awk -v k="$1{$2}" '$1 == k { print $2 }'; }

serves() { [ "$(timeout 5 socat -T 5 - TCP:127.0.0.1:"$W" </dev/null 2>/dev/null)" = hello ]; }
answers() { [ "$(timeout 10 python3 "$FLOOD" ask "$1" "ping-$1")" = "ping-$1" ]; }

log "part 1: 8 streams x 1000 flows against the default settings"
cat >"$T/a.yaml" <<EOF
threads: 1
drain_timeout: 1s
metrics: tcp:127.0.0.1:$M
relays:
  - name: dns
    listen: tcp:127.0.0.1:$D
    target: udp:127.0.0.1:$U
  - name: dns2
    listen: tcp:127.0.0.1:$D2
    target: udp:127.0.0.1:$U
  - name: web
    listen: tcp:127.0.0.1:$W
    target: tcp:127.0.0.1:$BACK
EOF
limited a run -c "$T/a.yaml"
wait_for serves
wait_for answers "$D2"
base=$(fd_count "$AL")
log "baseline: $base fds"

start flood python3 "$FLOOD" flood "$D" 8 1000 "$T/flooded"
FLOODER=$LAST_PID
wait_for test -e "$T/flooded"
# every frame sent is handled once the relay has read it all: wait for the
# counters to stop moving
handled() {
    curl -sf -m 5 "http://127.0.0.1:$M/metrics" |
        awk '$1 ~ /^airlock_datagrams_(in|dropped)_total\{relay="dns"/ { s += $2 } END { print s + 0 }'
}
deadline=$((SECONDS + 20))
while [ "$(handled)" != 8000 ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
if [ "$(handled)" != 8000 ]; then
    serves || fail "the tcp relay no longer serves: the flood took the process's fds"
    fail "the flood was not handled in 20 s"
fi
now=$(fd_count "$AL")
log "during the flood: $now fds ($((now - base)) more; budget $BUDGET)"
serves || fail "the tcp relay no longer serves during the flood"
answers "$D2" || fail "the other datagram relay no longer answers during the flood"
[ $((now - base)) -le $((BUDGET + 4)) ] ||
    fail "the flooded relay holds $((now - base)) more fds than before (budget $BUDGET)"
relayed=$(m airlock_datagrams_in_total 'relay="dns"')
flows=$(m airlock_datagram_flows 'relay="dns"')
evicted=$(m airlock_datagram_flows_evicted_total 'relay="dns"')
log "relayed $relayed datagrams; $flows flows open, $evicted evicted"
[ "$relayed" = 8000 ] || fail "$relayed of 8000 datagrams relayed"
[ "$flows" -le $((BUDGET / 2)) ] || fail "$flows flows open (budget: $((BUDGET / 2)) flow sockets)"
[ "$evicted" = $((8000 - flows)) ] || fail "$evicted flows evicted, not $((8000 - flows))"
kill "$FLOODER"
stop_clean "$AL" a

log "part 2: max_flows, max_fds, idle_timeout"
cat >"$T/b.yaml" <<EOF
threads: 1
drain_timeout: 1s
metrics: tcp:127.0.0.1:$M
relays:
  - name: flows
    listen: tcp:127.0.0.1:$D
    target: udp:127.0.0.1:$U
    max_flows: 50
    max_fds: 1000
  - name: streams
    listen: tcp:127.0.0.1:$D2
    target: udp:127.0.0.1:$U
    max_fds: 4
  - name: idle
    listen: tcp:127.0.0.1:$W
    target: udp:127.0.0.1:$U
    idle_timeout: 1s
EOF
limited b run -c "$T/b.yaml"
base=$(fd_count "$AL")
start flood python3 "$FLOOD" flood "$D" 1 300 "$T/flooded2"
FLOODER=$LAST_PID
wait_for test -e "$T/flooded2"
in_flows() { [ "$(m airlock_datagrams_in_total 'relay="flows"')" = 300 ]; }
wait_for in_flows
flows=$(m airlock_datagram_flows 'relay="flows"')
now=$(fd_count "$AL")
log "one stream, 300 flow ids, max_flows 50: $flows flows, $((now - base)) more fds"
[ "$flows" = 50 ] || fail "$flows flows open, not max_flows (50)"
[ $((now - base)) -le 52 ] || fail "$((now - base)) more fds for one stream with max_flows 50"
kill "$FLOODER"

log "max_fds 4: two streams (half of it); silent newcomers take silent ones' places"
# the enclave's stream: a query, then (after the silent streams came) another
start keeper python3 -u -c '
import os, socket, struct, sys, time
def ask(s, n):
    p = b"q%d" % n
    s.sendall(struct.pack(">BBHI", 0xA1, 0x01, len(p), 7) + p)
    s.settimeout(5)
    got = s.recv(100)
    print("reply", n, got[8:].decode() if len(got) > 8 else "none", flush=True)
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
ask(s, 1)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
ask(s, 2)
time.sleep(30)' "$D2" "$T/go"
KEEPER=$LAST_PID
wait_log "$T/keeper.log" '^reply 1 q1$'
start streams python3 "$FLOOD" streams "$D2" 6 "$T/streams"
wait_for test -e "$T/streams"
evictions() { [ "$(m airlock_connections_closed_total 'relay="streams",end="evicted"')" = 5 ]; }
wait_for evictions
touch "$T/go"
wait_log "$T/keeper.log" '^reply 2 q2$'
[ "$(m airlock_connections_open 'relay="streams"')" = 2 ] || fail "not 2 streams open"
[ "$(m airlock_connections_refused_total 'relay="streams"')" = 0 ] || fail "a stream was refused"
# a newcomer that asks is answered although silent streams held the places
answers "$D2" || fail "a stream that asks was not served while silent ones held max_fds"
stop "$KEEPER" || true

log "idle_timeout 1s closes a stream that carries nothing"
answers "$W" || fail "the idle relay does not answer"
start silent python3 "$FLOOD" streams "$W" 1 "$T/silent"
wait_log "$T/b.log" 'close relay=idle .* end=idle_timeout$'
stop_clean "$AL" b

log "part 3: silent streams take no share of the flow sockets"
start slow python3 -c '
import socket, sys, threading
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    data, addr = s.recvfrom(65536)
    threading.Timer(0.3, s.sendto, (data, addr)).start()' "$US"
wait_for bash -c "ss -Hluln 'sport = :$US' | grep -q ."
cat >"$T/c.yaml" <<EOF
threads: 1
drain_timeout: 1s
metrics: tcp:127.0.0.1:$M
relays:
  - name: share
    listen: tcp:127.0.0.1:$D
    target: udp:127.0.0.1:$US
    max_fds: 20
EOF
limited c run -c "$T/c.yaml"
start silent9 python3 "$FLOOD" streams "$D" 9 "$T/silent9"
wait_for test -e "$T/silent9"
wait_for metric_is airlock_connections_open 'relay="share"' 9
answered=$(python3 "$FLOOD" parallel "$D" 4)
[ "$answered" = 4 ] || fail "$answered of 4 parallel queries answered beside 9 silent streams"
[ "$(m airlock_datagram_flows_evicted_total 'relay="share"')" = 0 ] || fail "flows evicted"
stop_clean "$AL" c
log "pass"
