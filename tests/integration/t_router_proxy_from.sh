#!/bin/bash
# t_router_proxy_from: a router with accept_proxy: v2 believes the PROXY
# header of its fronts only (proxy_from): a peer that is not one cannot name
# sources of its choice to escape max_pending_per_client (1 here).
#  - from the front (127.0.0.1), two sources get one reservation each;
#  - 127.0.0.2, not a front, sends headers naming three more sources: each
#    connection is refused at accept (reason=not_allowed), nothing reserved;
#  - the same from the front: its one source gets one, its second is
#    client_limit (the header is believed, and counted);
#  - proxy_from without accept_proxy, or with a cid: rule on a tcp
#    listener, is refused by airlock check.
. "$(dirname "$0")/lib.sh"
need python3
pool_setup
RPORT=$(free_port)
pool_conf "$CONF" "$P0" <<EOF2
    min_idle: 6
    max: 6
    max_idle: 6
routers:
  - name: front
    listen: tcp:127.0.0.1:$RPORT
    accept_proxy: v2
    proxy_from: [127.0.0.1/32]
    directory: fa
    domain: grid.test
EOF2
dir_settings "$CONF" memory "reserve_timeout: 60s" "assign_wait: 1s" "max_pending_per_client: 1" \
    "pending_share: 100"
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 6

assigned() { grep -q "router assigned relay=front conn=[0-9]* sni=$1.grid.test " "$LOG"; }
closed() { grep -q '^eof$' "$T/$1.out"; }
n_reserved() { ctl instances | grep -c " reserved " || true; }

log "from the front: two sources, one reservation each"
hold a "$RPORT" a.grid.test --proxy 10.0.0.1
hold b "$RPORT" b.grid.test --proxy 10.0.0.2
wait_for assigned a
wait_for assigned b

log "127.0.0.2 is no front: its headers are not believed, its connections refused"
# stranger SNI SRC: from 127.0.0.2, a PROXY header naming SRC and a
# ClientHello for SNI; true when airlock ends the connection (a close or a
# reset) within 10 s
stranger() {
    python3 - "$RPORT" "$1" "$2" <<PY
import socket, sys
sys.path.insert(0, "$ROOT/tests/tools")
from hello_hold import client_hello, proxy_v2
port, sni, src = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket()
s.bind(("127.0.0.2", 0))
s.connect(("127.0.0.1", port))
s.settimeout(10)
try:
    s.sendall(proxy_v2(src, port) + client_hello(sni))
    sys.exit(0 if s.recv(1) == b"" else 1)
except ConnectionResetError:
    sys.exit(0)
PY
}
for i in 3 4 5; do stranger "x$i.grid.test" "10.0.0.$i" || fail "x$i was not refused"; done
wait_log "$LOG" "refused relay=front client=127.0.0.2:[0-9]+ reason=not_allowed"
for i in 3 4 5; do assigned "x$i" && fail "x$i got an instance through a header of no front"; done
[ "$(n_reserved)" = 2 ] || fail "reserved: $(ctl instances)"

log "the front's headers are counted: a second reservation for 10.0.0.1 is client_limit"
hold c "$RPORT" c.grid.test --proxy 10.0.0.1
wait_log "$LOG" "router refused relay=front conn=[0-9]+ sni=c.grid.test reason=client_limit"
wait_for closed c
for u in a b c; do unhold "$u"; done
stop_clean "$AL" al

log "proxy_from needs accept_proxy, and rules of the listener's kind"
bad() { check_refuses "$CONF" "$@"; }
bad '/accept_proxy: v2/d' "proxy_from: applies with accept_proxy: v2"
bad 's|proxy_from: \[127.0.0.1/32\]|proxy_from: [cid:3]|' "cid: rules are for vsock listeners"
log "ok"
