#!/bin/bash
# t_smartgrid_identity: the TLS handshake itself enforces who may talk to a
# smartgrid-server, and a refused client disturbs nobody:
#   - user0002's certificate with user0001's SNI: refused in the handshake
#     (certificate_not_for_user), before any process state changes;
#   - no client certificate: refused; a certificate from another CA: refused;
#   - an SNI outside *.grid.example: refused (bad_sni);
#   - user0001 binds the process (LOGIN user0001); afterwards user0002, with
#     its own valid certificate and SNI, is refused (other_user);
#   - user0001's session kept working throughout, over a connection opened
#     before the refusals (openssl s_client, keep-alive) whose server name
#     is in upper case: names are not case-sensitive, USER0001 is user0001;
#   - connections that send nothing cost the server little whatever its
#     --max-body (its input buffer grows with what comes): 40 of them to a
#     server with --max-body 64MiB take it under a second of CPU (before:
#     each wiped its whole 64 MiB buffer at its close, 0.1-0.2 s apiece).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"

sg_provision 2
"$SG_BIN/smartgrid-provision" --out "$T/other" --users 1 --days 0 >/dev/null
sg_server srv "$T/inst"
SRV=$LAST_PID

[ "$(sg_curl user0002 user0001 /query_avg)" = 000 ] || fail "another user's certificate accepted"
wait_log "$T/srv.log" 'handshake refused reason=certificate_not_for_user'
grep -q '^LOGIN' "$T/srv.log" && fail "a refused handshake bound a user"
[ "$(sg_curl - user0001 /query_avg)" = 000 ] || fail "no client certificate accepted"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$SG/ca.pem" --cert "$T/other/users/user0001.pem" \
    --key "$T/other/users/user0001.key" --resolve "user0001.grid.example:$SG_PORT:127.0.0.1" \
    "https://user0001.grid.example:$SG_PORT/query_avg" || true)
[ "$code" = 000 ] || fail "a certificate of another CA accepted"
SG_DOMAIN=elsewhere.test
[ "$(sg_curl user0001 user0001 /query_avg)" = 000 ] || fail "SNI outside the domain accepted"
SG_DOMAIN=example
wait_log "$T/srv.log" 'handshake refused reason=bad_sni'
grep -q '^LOGIN' "$T/srv.log" && fail "a refused handshake bound a user"

# user0001 binds the process and keeps one connection open
cp "$SG/db/user0001.db" "$T/inst/"
sg_login user0001
mkfifo "$T/in"
openssl s_client -quiet -connect "127.0.0.1:$SG_PORT" -servername USER0001.GRID.example \
    -CAfile "$SG/ca.pem" -cert "$SG/users/user0001.pem" -key "$SG/users/user0001.key" \
    <"$T/in" >"$T/s_client.out" 2>"$T/s_client.err" &
PIDS+=($!)
exec 3>"$T/in"
req() { printf 'GET /query_avg?metric=%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n' "$1" "$SG_TOKEN" >&3; }
req power
wait_log "$T/s_client.out" '"metric":"power"'

wait_log "$T/srv.log" '^LOGIN user0001$'
[ "$(sg_curl user0002 user0002 /query_avg)" = 000 ] || fail "a second user accepted"
wait_log "$T/srv.log" 'handshake refused reason=other_user'
[ "$(grep -c '^LOGIN' "$T/srv.log")" = 1 ] || fail "more than one LOGIN line"

req impedance
wait_log "$T/s_client.out" '"metric":"impedance"'
[ "$(sg_curl user0001 user0001 '/query_avg?metric=tension')" = 200 ] || fail "user0001 refused"
exec 3>&-
running $SRV || fail "server died"

sg_server big "$T/big" --max-body 64MiB
BIG=$LAST_PID
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
cpu0=$(cpu $BIG) fds0=$(fd_count $BIG)
python3 -c '
import socket, sys
for _ in range(40):
    socket.create_connection(("127.0.0.1", int(sys.argv[1]))).close()' "$SG_PORT"
all_closed() { [ "$(fd_count $BIG)" -le "$fds0" ]; }
wait_until 60 all_closed
ticks=$(($(cpu $BIG) - cpu0))
log "40 silent connections, --max-body 64MiB: $ticks ticks of CPU"
[ "$ticks" -lt "$(getconf CLK_TCK)" ] || fail "40 silent connections took $ticks ticks of CPU"
running $BIG || fail "the server died"
echo PASS
