#!/bin/bash
# t_smartgrid_ops: every operation of smartgrid-server over real mutual TLS
# (curl), each answer checked against the database itself (sqlcipher CLI):
#   - the instance directory is empty: WAITING_LOGIN; the first handshake of
#     user0001 prints LOGIN user0001 before any request; the provisioning
#     step (a copy renamed into place, as the pool's hook does) follows;
#   - POST /login with the key returns a token; without the token every
#     operation is 401;
#   - QUERY_AVG over all time and over a range equals sqlcipher's avg();
#   - WRITE adds alarm rows, LONG_WRITE metric rows (one transaction each);
#   - POST /logout answers, prints LOGOUT and exits 0, and what was written
#     is in the file when it is reopened with the key.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"

sg_provision 1
U=user0001
DB=$T/inst/$U.db
sg_server srv "$T/inst" --state-wait 5s
SRV=$LAST_PID

# the handshake alone binds the user (a request with no token: 401)
[ "$(sg_curl $U $U /query_avg?metric=power)" = 401 ] || fail "no token: not 401"
wait_log "$T/srv.log" "^LOGIN $U\$"
cp "$SG/db/$U.db" "$T/inst/.tmp" && mv "$T/inst/.tmp" "$DB"

sg_login $U
good=$SG_TOKEN
for p in /write /long_write /logout; do
    SG_TOKEN=${good%?}0
    [ "$SG_TOKEN" != "$good" ] || SG_TOKEN=${good%?}1
    code=$(sg_post $U $p '{}')
    [ "$code" = 401 ] || fail "$p with a bad token: HTTP $code"
done
SG_TOKEN=$good

# QUERY_AVG: all time, then a range, against the database's own answer
[ "$(sg_curl $U $U '/query_avg?metric=power')" = 200 ] || fail "query_avg: $(cat "$T/body")"
want=$(sg_sql $U "$DB" "SELECT count(*) FROM metrics;")
[ "$(json count)" = "$want" ] || fail "count $(json count), want $want"
lo=$(sg_sql $U "$DB" "SELECT min(timestamp) + 3600 FROM metrics;")
hi=$((lo + 7200))
[ "$(sg_curl $U $U "/query_avg?metric=tension&from=$lo&to=$hi")" = 200 ] || fail "range query"
want=$(sg_sql $U "$DB" "SELECT printf('%.6f', avg(tension)) || ' ' || count(*) FROM metrics WHERE timestamp BETWEEN $lo AND $hi;")
got="$(printf '%.6f' "$(json avg)") $(json count)"
[ "$got" = "$want" ] || fail "range avg: got $got, want $want"
[ "$(json count)" = 481 ] || fail "2 h of 15 s samples (both ends): $(json count)"
[ "$(sg_curl $U $U '/query_avg?metric=power&from=1&to=2')" = 200 ] && [ "$(json avg)" = null ] ||
    fail "empty range: $(cat "$T/body")"
[ "$(sg_curl $U $U '/query_avg?metric=voltage')" = 400 ] || fail "unknown metric not 400"

code=$(sg_post $U /write '{"alarms":[{"metric":"power","threshold":2.5},{"metric":"tension","threshold":240}]}')
[ "$code" = 200 ] && [ "$(json written)" = 2 ] || fail "write: $code $(cat "$T/body")"
rows='{"timestamp":100,"power":1.0,"impedance":0.5,"tension":230}'
for i in $(seq 101 399); do rows+=",{\"timestamp\":$i,\"power\":3.0,\"impedance\":0.5,\"tension\":230}"; done
code=$(sg_post $U /long_write "{\"metrics\":[$rows]}")
[ "$code" = 200 ] && [ "$(json written)" = 300 ] || fail "long_write: $code $(cat "$T/body")"
[ "$(sg_curl $U $U '/query_avg?metric=power&from=100&to=399')" = 200 ] || fail "query written"
[ "$(json count)" = 300 ] || fail "written rows: $(json count)"
awk -v a="$(json avg)" 'BEGIN { exit !(a > 2.9933 && a < 2.9934) }' || fail "avg $(json avg)"

[ "$(sg_post $U /logout '')" = 200 ] || fail "logout: $(cat "$T/body")"
wait_exit $SRV 5
[ "$EXIT_STATUS" = 0 ] || fail "server exit status $EXIT_STATUS"
grep -qx LOGOUT "$T/srv.log" || fail "no LOGOUT line"
# committed: reopen the file with the key
[ "$(sg_sql $U "$DB" "SELECT count(*) FROM alarms;")" = 2 ] || fail "alarms not committed"
[ "$(sg_sql $U "$DB" "SELECT count(*) FROM metrics WHERE timestamp BETWEEN 100 AND 399;")" = 300 ] ||
    fail "metrics not committed"
grep -q "$(sg_key $U)" "$T/srv.log" && fail "the key appears in the server's output"
echo PASS
