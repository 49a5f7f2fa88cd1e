#!/bin/bash
# t_reload_batch: a reload that frees a listener while events for it wait in
# the same loop turn is safe (no use after free; the test build has ASan).
#
# airlock is stopped (SIGSTOP) while the test queues up, in the kernel,
# both a SIGHUP and connections to the listener the new config takes away,
# then continued: the loop's next epoll batch holds the signal and the
# listener's readiness together, in the order the test chose:
#   - connections first: the listener is dispatched first, accepts its
#     per-wakeup budget (64) and queues the rest for after the batch; then
#     the reload frees the relay;
#   - the signal first: the reload frees the relay, then the listener's
#     event comes up in the same batch.
# Each order for a relay that is removed, one that moves to another port,
# one changed in place (the listener is handed to its successor), and for
# the metrics listener moved while scrapes wait (40: its backlog is 64). The victim relay refuses
# every client (allow: 10.0.0.0/8), so no connection keeps it alive. After
# each round airlock must still run, serve through the relay that stays and
# through the new listeners.
. "$(dirname "$0")/lib.sh"

need socat curl python3

read -r KEEP BACK V1 V2 M1 M2 <<<"$(free_ports 6)"
CONF=$T/airlock.yaml
LOG=$T/airlock.log
say_server back "$BACK" hello
wait_for tcp_up "$BACK"

# conf VICTIM_PORT|- METRICS_PORT [MAXCONN]: the config with the relay that
# stays, the victim on VICTIM_PORT (none for -) and metrics on METRICS_PORT
conf() {
    {
        echo "threads: 1"
        echo "metrics: tcp:127.0.0.1:$2"
        echo "relays:"
        echo "  - name: keep"
        echo "    listen: tcp:127.0.0.1:$KEEP"
        echo "    target: tcp:127.0.0.1:$BACK"
        if [ "$1" != - ]; then
            echo "  - name: victim"
            echo "    listen: tcp:127.0.0.1:$1"
            echo "    target: tcp:127.0.0.1:$BACK"
            echo "    allow: [10.0.0.0/8]"
            echo "    max_connections: ${3:-0}"
        fi
    } >"$CONF.new"
    mv "$CONF.new" "$CONF"
}

RELOADS=0
# reloaded: waits for the next "reloaded" line
reloaded() {
    RELOADS=$((RELOADS + 1))
    local i
    for i in $(seq 1 100); do
        [ "$(grep -c 'reloaded' "$LOG")" -ge "$RELOADS" ] && return 0
        running "$AL" || break
        sleep 0.1
    done
    tail -40 "$LOG" >&2
    fail "airlock did not survive reload #$RELOADS"
}

# queue_conns PORT N: N connections to PORT, complete in the kernel's accept
# queue, held open by a helper until the end of the round
queue_conns() {
    rm -f "$T/held"
    start holder python3 -c '
import socket, sys, time
socks = []
for _ in range(int(sys.argv[2])):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    socks.append(s)
open(sys.argv[3], "w").close()
time.sleep(60)' "$1" "$2" "$T/held"
    HOLDER=$LAST_PID
    wait_for test -e "$T/held"
}

# serves: the relay that stays still relays
serves() { [ "$(timeout 5 socat -T 5 - TCP:127.0.0.1:"$KEEP" </dev/null 2>/dev/null)" = hello ]; }

# round WHAT ORDER PORT N NEWCONF...: stops airlock, queues a SIGHUP (with
# the config NEWCONF) and N connections to PORT in ORDER (conns-first or
# signal-first), continues it and checks that it survived
round() {
    local what=$1 order=$2 port=$3 n=$4
    shift 4
    log "$what, $order"
    kill -STOP "$AL"
    conf "$@"
    if [ "$order" = conns-first ]; then
        queue_conns "$port" "$n"
        kill -HUP "$AL"
    else
        kill -HUP "$AL"
        queue_conns "$port" "$n"
    fi
    kill -CONT "$AL"
    reloaded
    local i
    for i in $(seq 1 100); do
        running "$AL" || break
        serves && break
        sleep 0.1
    done
    running "$AL" || { grep -A12 -m1 'ERROR: AddressSanitizer' "$LOG" >&2; fail "airlock died after: $what, $order"; }
    serves || fail "the relay that stays does not serve after: $what, $order"
    kill "$HOLDER" 2>/dev/null || true
}

conf "$V1" "$M1"
airlock_up airlock run -c "$CONF"
AL=$LAST_PID
wait_for tcp_up "$V1"
wait_for serves

for order in conns-first signal-first; do
    round "victim removed" "$order" "$V1" 300 - "$M1"
    tcp_refused "$V1" || fail "the removed relay still listens"
    conf "$V1" "$M1"
    kill -HUP "$AL"
    reloaded
    wait_for tcp_up "$V1"

    round "victim moved to another port" "$order" "$V1" 300 "$V2" "$M1"
    wait_for tcp_up "$V2"
    tcp_refused "$V1" || fail "the moved relay still listens on its old port"
    conf "$V1" "$M1"
    kill -HUP "$AL"
    reloaded
    wait_for tcp_up "$V1"

    round "victim changed in place" "$order" "$V1" 300 "$V1" "$M1" 5
    round "victim changed back" "$order" "$V1" 300 "$V1" "$M1" 0
done

log "metrics moved while a scrape waits, both orders"
for order in conns-first signal-first; do
    for pair in "$M1 $M2" "$M2 $M1"; do
        read -r from to <<<"$pair"
        round "metrics $from -> $to" "$order" "$from" 40 "$V1" "$to"
        wait_for curl -sf "http://127.0.0.1:$to/metrics"
    done
done

grep -q 'AddressSanitizer' "$LOG" && fail "ASan report in the log"
refused=$(metric airlock_connections_refused_total 'relay="victim"' "$M1")
log "victim refused $refused connections"
stop_clean "$AL" airlock
log "pass"
