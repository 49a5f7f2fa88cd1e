#!/bin/bash
# t_reset_blocked: a reset reaches the other peer also while the direction
# that would read it is blocked, with splice and with buffers:
#   - a target that never reads; the client sends until nothing more fits
#     (the relay holds bytes for the target), then resets: the target sees
#     the reset (before: nothing, until it read what the relay held, here
#     never: the connection, its sockets and buffers stayed for
#     idle_timeout);
#   - a client that never reads; the target sends until nothing more fits,
#     then resets: the client sees the reset.
# Each connection ends with end=reset, and the relay's fds come back to
# their baseline.
. "$(dirname "$0")/lib.sh"

need python3

# peer.py ROLE LISTEN_PORT RELAY_PORT: ROLE (client or target) fills the
# connection until no byte more fits for 2 s and resets it; the other peer
# never reads and waits (60 s at most) for the reset. Prints "reset" or
# "open".
cat >"$T/peer.py" <<'EOF'
import select, socket, struct, sys

role, lport, rport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", lport))
ls.listen(1)
client = socket.create_connection(("127.0.0.1", rport))
target, _ = ls.accept()
filler, waiter = (client, target) if role == "client" else (target, client)
filler.setblocking(False)
chunk = b"x" * 65536
while select.select([], [filler], [], 2)[1]:
    try:
        filler.send(chunk)
    except BlockingIOError:
        pass
filler.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
filler.close()
p = select.poll()
p.register(waiter, select.POLLERR | select.POLLHUP | select.POLLRDHUP)
print("reset" if p.poll(60000) else "open")
EOF

for mode in splice no-splice; do
    opts=()
    [ "$mode" = no-splice ] && opts=(--no-splice)
    read -r TARGET FRONT <<<"$(free_ports 2)"
    airlock_up "relay-$mode" relay "tcp:127.0.0.1:$FRONT" "tcp:127.0.0.1:$TARGET" --name r "${opts[@]}"
    pid=$LAST_PID
    base=$(fd_count "$pid")
    for role in client target; do
        log "$mode: the $role fills the connection and resets it"
        got=$(timeout 120 python3 "$T/peer.py" "$role" "$TARGET" "$FRONT")
        [ "$got" = reset ] || fail "$mode: the reset of the $role did not reach the other peer"
    done
    wait_ends "$T/relay-$mode.log" reset 2
    poll_until 10 fds_at_most "$pid" "$base" || fail "$mode: $(fd_count "$pid") fds, $base before"
    stop_clean "$pid" "relay-$mode"
done
log "pass"
