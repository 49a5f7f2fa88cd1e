#!/bin/bash
# t_smartgrid_state: the server never invents a user's state, and sessions
# end by themselves:
#   - POST /login while DIR/<user>.db does not exist waits --state-wait,
#     then answers 503 and leaves no file behind;
#   - a database that appears (renamed in) during the wait is used: login
#     succeeds, after the wait began;
#   - --session-ttl 2s: the session expires; the server prints LOGOUT and
#     exits 0 by itself, and the data written is committed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"

sg_provision 1
U=user0001

sg_server nostate "$T/empty" --state-wait 1s
SRV=$LAST_PID
t0=$(date +%s%N)
code=$(sg_post $U /login "{\"key\":\"$(sg_key $U)\"}")
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$code" = 503 ] || fail "no state: HTTP $code"
[ "$ms" -ge 900 ] || fail "answered after $ms ms, before --state-wait"
[ -z "$(ls -A "$T/empty")" ] || fail "files created: $(ls -A "$T/empty")"
kill $SRV

sg_server late "$T/late" --state-wait 10s --session-ttl 2s
SRV=$LAST_PID
(sleep 0.3 && cp "$SG/db/$U.db" "$T/late/.part" && mv "$T/late/.part" "$T/late/$U.db") &
sg_login $U
code=$(sg_post $U /write '{"alarms":[{"metric":"power","threshold":3}]}')
[ "$code" = 200 ] || fail "write: HTTP $code"
wait_exit $SRV 5
[ "$EXIT_STATUS" = 0 ] || fail "exit status $EXIT_STATUS after expiry"
grep -q 'logout user=user0001 reason=expired' "$T/late.log" || fail "not expired"
grep -qx LOGOUT "$T/late.log" || fail "no LOGOUT line"
[ "$(sg_curl $U $U '/query_avg?metric=power')" = 000 ] || fail "served after expiry"
[ "$(sg_sql $U "$T/late/$U.db" "SELECT count(*) FROM alarms;")" = 1 ] || fail "write lost"
echo PASS
