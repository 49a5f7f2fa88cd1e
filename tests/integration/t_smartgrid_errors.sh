#!/bin/bash
# t_smartgrid_errors: bad input gets a clear status and a JSON error, never
# a crash, and never a change to the user's data:
#   - a wrong database key: 401, and the file's SHA-256 is unchanged;
#   - a malformed key, malformed JSON, an unknown path, a wrong method: 400,
#     400, 404, 405;
#   - a body over --max-body: 413, answered from the head alone;
#   - a LONG_WRITE whose last row is bad: 400 and none of its rows written;
#     a WRITE with one bad alarm: 400 and no alarm written; a reading or a
#     threshold that is not finite (1e999, which JSON parsers read as
#     infinity) or above 1e15: 400, nothing written, the averages intact;
#   - a request whose client half-closes (a FIN, no TLS close_notify) right
#     after it: still answered and done (a cut one is never served);
#   - garbage instead of HTTP: 400 and the connection closed;
# and afterwards the session still works and LOGOUT exits 0.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"

sg_one_user srv "$T/inst" --max-body 64KiB
DB=$T/inst/$U.db
SRV=$LAST_PID
sum=$(sha256 <"$DB")

wrong=$(sg_key $U | tr '0-9a-f' '1-9a-f0')
[ "$(sg_post $U /login "{\"key\":\"$wrong\"}")" = 401 ] || fail "wrong key: $(cat "$T/body")"
grep -q '"error":"wrong key"' "$T/body" || fail "wrong key body: $(cat "$T/body")"
[ "$(sha256 <"$DB")" = "$sum" ] || fail "a wrong key changed the file"
[ "$(sg_post $U /login '{"key":"abc"}')" = 400 ] || fail "short key not 400"
[ "$(sg_post $U /login '{"key":')" = 400 ] || fail "malformed JSON at login not 400"
grep -q '"error":"malformed JSON"' "$T/body" || fail "malformed JSON body: $(cat "$T/body")"
[ "$(sha256 <"$DB")" = "$sum" ] || fail "a failed login changed the file"

sg_login $U
[ "$(sg_post $U /long_write '{"metrics": [1,')" = 400 ] || fail "malformed JSON not 400"
[ "$(sg_post $U /nope '{}')" = 404 ] || fail "unknown path not 404"
[ "$(sg_curl $U $U /write)" = 405 ] || fail "GET /write not 405"
[ "$(sg_curl $U $U /login)" = 405 ] || fail "GET /login not 405"

# 413: a body over 64 KiB, refused from its Content-Length
head -c 70000 /dev/zero | tr '\0' ' ' >"$T/big"
code=$(sg_curl $U $U /long_write -X POST --data-binary @"$T/big")
[ "$code" = 413 ] || fail "oversized body: HTTP $code"

before=$(sg_sql $U "$DB" "SELECT count(*) FROM metrics;")
rows=
for i in $(seq 1 199); do rows+="{\"timestamp\":$i,\"power\":1,\"impedance\":1,\"tension\":1},"; done
code=$(sg_post $U /long_write "{\"metrics\":[$rows{\"timestamp\":200,\"power\":\"high\",\"impedance\":1,\"tension\":1}]}")
[ "$code" = 400 ] || fail "bad row: HTTP $code"
code=$(sg_post $U /long_write "{\"metrics\":[$rows{\"timestamp\":200.5,\"power\":1,\"impedance\":1,\"tension\":1}]}")
[ "$code" = 400 ] || fail "fractional timestamp: HTTP $code"
code=$(sg_post $U /write '{"alarms":[{"metric":"power","threshold":1},{"metric":"voltage","threshold":1}]}')
[ "$code" = 400 ] || fail "bad alarm: HTTP $code"
for v in 1e999 -1e999 1e16; do
    code=$(sg_post $U /long_write "{\"metrics\":[{\"timestamp\":7,\"power\":$v,\"impedance\":1,\"tension\":1}]}")
    [ "$code" = 400 ] || fail "power $v: HTTP $code"
    code=$(sg_post $U /write "{\"alarms\":[{\"metric\":\"power\",\"threshold\":$v}]}")
    [ "$code" = 400 ] || fail "threshold $v: HTTP $code"
done
[ "$(sg_curl $U $U '/query_avg?metric=power&from=1&to=200')" = 200 ] && [ "$(json count)" = 0 ] ||
    fail "rows of a refused LONG_WRITE are visible: $(cat "$T/body")"
[ "$(sg_curl $U $U '/query_avg?metric=power')" = 200 ] && [ "$(json avg)" != null ] ||
    fail "the all-time average is gone: $(cat "$T/body")"

# a request, then a half-close (TCP FIN without close_notify): answered, done
python3 - "$SG" "$U" "$SG_PORT" "$SG_TOKEN" >"$T/halfclose.out" <<'PY' || fail "half-close: $(cat "$T/halfclose.out")"
import socket, ssl, sys
sg, user, port, token = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context(cafile=sg + "/ca.pem")
ctx.load_cert_chain(sg + "/users/" + user + ".pem", sg + "/users/" + user + ".key")
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                    server_hostname=user + ".grid.example")
body = b'{"metrics":[{"timestamp":300,"power":42,"impedance":1,"tension":1}]}'
s.sendall(b"POST /long_write HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token.encode() +
          b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
socket.socket.shutdown(s, socket.SHUT_WR)
print(s.recv(65536).split(b"\r\n")[0].decode())
PY
grep -q '^HTTP/1.1 200' "$T/halfclose.out" || fail "half-close: $(cat "$T/halfclose.out")"
[ "$(sg_curl $U $U '/query_avg?metric=power&from=300&to=300')" = 200 ] && [ "$(json count)" = 1 ] ||
    fail "the half-closed request's row: $(cat "$T/body")"

# garbage instead of a request: 400, closed, the server carries on
printf 'BLAH\r\n\r\n' | timeout 5 openssl s_client -quiet -connect "127.0.0.1:$SG_PORT" \
    -servername $U.grid.example -CAfile "$SG/ca.pem" -cert "$SG/users/$U.pem" \
    -key "$SG/users/$U.key" >"$T/garbage.out" 2>/dev/null || true
grep -q '^HTTP/1.1 400' "$T/garbage.out" || fail "garbage: $(cat "$T/garbage.out")"

[ "$(sg_post $U /logout '')" = 200 ] || fail "logout"
wait_exit $SRV 5
[ "$EXIT_STATUS" = 0 ] || fail "server exit status $EXIT_STATUS"
[ "$(sg_sql $U "$DB" "SELECT count(*) FROM metrics;")" = $((before + 1)) ] ||
    fail "metrics changed beyond the half-closed request's row"
[ "$(sg_sql $U "$DB" "SELECT count(*) FROM alarms;")" = 0 ] || fail "alarms written"
echo PASS
