#!/bin/bash
# t_resolver_pool: target names are looked up by a bounded pool of threads,
# so an enclave naming thousands of hosts through an egress relay's
# *.suffix rule cannot make airlock start a thread per name.
#
# In private network, mount and pid namespaces: dnsmasq on 127.0.0.1:53
# answers every name below fast.test at once (127.0.0.1) and forwards those
# below slow.test to a server that never answers (each lookup then takes
# the resolver's timeout, 1 s per query). The egress relay runs with
# resolver_threads: 4 and resolver_queue: 8. Proves:
#   - 100 connections to one slow name share one lookup (one log line);
#   - 2,000 CONNECTs to distinct slow names: the process never has more
#     than its threads before plus 4; beyond the 8 queued names, requests
#     are answered 503 at once (all within 10 s, where waiting for the
#     lookups would take some 1000 s), counted (airlock_resolver_rejected_total,
#     airlock_local_errors_total{reason="resolver_busy"}), never blamed on
#     targets (airlock_connect_errors_total counts only the lookups that
#     timed out or failed);
#   - afterwards a fast name still connects (200), and the pool is still 4
#     threads at most;
#   - one client's names take at most a quarter of the queue: 127.0.0.1
#     asking for 30 distinct slow names at once gets 2 queued (beyond the 4
#     running) and the rest 503, and a fast name from 127.0.0.2 right after
#     is queued and connects (before: the 8 places were 127.0.0.1's, 503);
#   - clients of 8 addresses that each ask for a slow name and leave at once
#     hold no place in the queue: a name asked right after is queued and
#     connects (before: their lookups stayed queued until connect_timeout).
. "$(dirname "$0")/lib.sh"

need dnsmasq python3 curl socat ss
host_namespaces

resolv_conf 1
grep -qi 'fast\.test\|slow\.test' /etc/hosts && skip "fast.test or slow.test is in /etc/hosts"
BURST=$ROOT/tests/tools/connect_burst.py

read -r M E ECHO <<<"$(free_ports 3)"
start silent python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.2", 5300))
while True:
    s.recvfrom(4096)'
wait_for bash -c "ss -Hluln 'sport = :5300' | grep -q ."
start dnsmasq dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --address=/fast.test/127.0.0.1 --server=/slow.test/127.0.0.2#5300 \
    --listen-address=127.0.0.1 --bind-interfaces --port=53 --user=root --group=root \
    --pid-file="$T/dnsmasq.pid" --log-facility=-
wait_for bash -c "ss -Hluln 'sport = :53' | grep -q ."
start echo socat TCP-LISTEN:"$ECHO",bind=127.0.0.1,reuseaddr,fork PIPE
wait_for tcp_up "$ECHO"

cat >"$T/airlock.yaml" <<EOF
threads: 1
drain_timeout: 1s
resolver_threads: 4
resolver_queue: 8
metrics: tcp:127.0.0.1:$M
relays:
  - name: egress
    listen: tcp:127.0.0.1:$E
    target: egress
    connect_timeout: 10s
    egress_allow:
      - "*.slow.test:443"
      - "*.fast.test:$ECHO"
      - 127.0.0.1/32:$ECHO
EOF
airlock_up airlock run -c "$T/airlock.yaml"
AL=$LAST_PID
LOG=$T/airlock.log
nthreads() { awk '/^Threads:/ { print $2 }' "/proc/$AL/status"; }
m() { curl -sf -m 5 "http://127.0.0.1:$M/metrics" | awk -v k="$1${2:-}" '$1 == k { print $2 }'; }
base=$(nthreads)
log "threads at the start: $base"

log "100 connections to one slow name: one lookup"
same=()
for _ in $(seq 1 100); do same+=("same.slow.test:443"); done
out=$(timeout 60 python3 "$BURST" "$E" "$AL" 15 "${same[@]}") || fail "burst failed"
log "$out"
wait_log "$LOG" 'resolve host=same.slow.test failed'
[ "$(grep -c 'resolve host=same.slow.test failed' "$LOG")" = 1 ] ||
    fail "$(grep -c 'resolve host=same.slow.test failed' "$LOG") lookups of one name"

log "2000 distinct slow names at once"
connect0=$(m airlock_connect_errors_total '{relay="egress"}')
names=()
for i in $(seq 1 2000); do names+=("n$i.slow.test:443"); done
out=$(timeout 120 python3 "$BURST" "$E" "$AL" 30 "${names[@]}") || fail "burst failed"
log "$out"
max=$(sed 's/.*threads_max=\([0-9]*\).*/\1/' <<<"$out")
[ "$max" -le $((base + 4)) ] || fail "airlock had $max threads (at most $((base + 4)) expected)"
n503=$(grep -o 'status_503=[0-9]*' <<<"$out" | cut -d= -f2)
slowest=$(grep -o 'max_503_ms=[0-9]*' <<<"$out" | cut -d= -f2)
[ "${n503:-0}" -ge 1900 ] || fail "only ${n503:-0} requests answered 503 (queue full)"
# a lookup takes 2 s here: through 4 threads the refused names would have
# needed some 1000 s; refused at once, they all come back within seconds
[ "$slowest" -lt 10000 ] || fail "a 503 took $slowest ms: refusals waited for lookups"
[ "$(grep -o 'none=[0-9]*' <<<"$out")" = none=0 ] || fail "requests without an answer"
rejected=$(m airlock_resolver_rejected_total)
busy=$(m airlock_local_errors_total '{relay="egress",reason="resolver_busy"}')
connect=$(($(m airlock_connect_errors_total '{relay="egress"}') - connect0))
log "rejected $rejected, resolver_busy $busy, connect errors $connect"
[ "$rejected" -ge "$n503" ] || fail "airlock_resolver_rejected_total $rejected < $n503"
[ "$busy" = "$n503" ] || fail "resolver_busy local errors $busy, not $n503"
[ "$connect" -le $((2000 - n503)) ] || fail "$connect connect errors: refusals blamed on targets"

log "a fast name still connects; the pool is bounded"
ok() { [ "$(timeout 20 python3 "$BURST" "$E" "$AL" 10 "www.fast.test:$ECHO" | grep -o 'status_200=1')" = status_200=1 ]; }
wait_for ok
[ "$(m airlock_resolver_threads)" -le 4 ] || fail "$(m airlock_resolver_threads) resolver threads"
[ "$(nthreads)" -le $((base + 4)) ] || fail "airlock has $(nthreads) threads"

# fast_from SRC: the status line of a CONNECT to a fast name from address SRC
fast_from() {
    python3 - "$E" "$ECHO" "$1" <<'PY'
import socket, sys
s = socket.socket()
s.bind((sys.argv[3], 0))
s.settimeout(10)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"CONNECT www.fast.test:%s HTTP/1.1\r\n\r\n" % sys.argv[2].encode())
print(s.recv(64).split(b"\r\n")[0].decode())
PY
}

log "one client's names take a quarter of the queue; another client's name still gets in"
python3 - "$E" >"$T/share.out" <<'PY' &
import socket, sys, time
socks = []
for i in range(30):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"CONNECT share%d.slow.test:443 HTTP/1.1\r\n\r\n" % i)
    socks.append(s)
time.sleep(2)
busy = 0
for s in socks:
    s.setblocking(False)
    try:
        busy += s.recv(64).startswith(b"HTTP/1.1 503")
    except BlockingIOError:
        pass
print("503", busy)
sys.stdout.flush()
time.sleep(3)
PY
share=$!
wait_until 10 grep -q '^503 ' "$T/share.out" || fail "the client's names: $(cat "$T/share.out")"
# refused: 30 less the 2 queued and those a free thread took at once (4 at most)
refused=$(cut -d' ' -f2 "$T/share.out")
[ "$refused" -ge 24 ] && [ "$refused" -le 28 ] ||
    fail "expected 24 to 28 of 30 refused (2 queued, at most 4 running): $(cat "$T/share.out")"
fast_from 127.0.0.2 >"$T/other.out"
grep -q '^HTTP/1.1 200' "$T/other.out" || fail "another client's name: $(cat "$T/other.out")"
wait "$share" || true
log "clients that ask for names and leave hold no place in the queue"
wait_for eval '[ "$(m airlock_resolver_queued)" = 0 ]'
python3 - "$E" <<'PY'
import socket, sys, time
socks = []
for i in range(12):  # 4 to run, 8 to queue (2 per address: each address's share)
    s = socket.socket()
    s.bind(("127.0.1.%d" % (i // 2 + 1), 0))
    s.connect(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"CONNECT gone%d.slow.test:443 HTTP/1.1\r\n\r\n" % i)
    socks.append(s)
    time.sleep(0.05)
time.sleep(0.3)
for s in socks:
    s.close()
PY
# at once: the lookups in the queue would otherwise take 4 s to run (2 s each, 4 threads)
wait_until 1 eval '[ "$(m airlock_resolver_queued)" = 0 ]' ||
    fail "lookups of clients that left still queued: $(m airlock_resolver_queued)"
fast_from 127.0.0.9 >"$T/after.out"
grep -q '^HTTP/1.1 200' "$T/after.out" || fail "a name after clients that left: $(cat "$T/after.out")"
stop_clean "$AL" airlock
log "pass"
