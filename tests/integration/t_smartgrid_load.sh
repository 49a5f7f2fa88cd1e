#!/bin/bash
# t_smartgrid_load: smartgrid-load drives real smartgrid-server processes:
#   - meter mode, 3 h per LONG_WRITE: LOGIN, LONG_WRITE, LOGOUT answered,
#     the server exits 0 after LOGOUT, the 720 rows are in the database, one
#     CSV line per operation;
#   - customer mode (2 s session, a request every 100 ms, write ratio 0.5):
#     WRITEs and QUERY_AVGs, the alarms written equal the WRITEs counted;
#   - user0002 against a server bound to user0001 (refused in the
#     handshake), an oversized LONG_WRITE (413 while the client still
#     sends), and a port nobody listens on: the failures are counted by kind (tls,
#     http_413, connect), the run ends and exits 3;
#   - the summary has p50/p95/p99 per operation.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"

sg_provision 2
U=user0001
LOAD=$SG_BIN/smartgrid-load

mkdir -p "$T/m" && cp "$SG/db/$U.db" "$T/m/"
sg_server meter "$T/m"
SRV=$LAST_PID
"$LOAD" --connect "tcp:127.0.0.1:$SG_PORT" --certs "$SG" --users 1 --mode meter --hours 3 \
    --csv "$T/meter.csv" >"$T/meter.out" || fail "meter run: $(cat "$T/meter.out")"
cat "$T/meter.out"
wait_exit $SRV 5
[ "$EXIT_STATUS" = 0 ] || fail "server exit $EXIT_STATUS"
for op in LOGIN LONG_WRITE LOGOUT; do
    grep -q "^op=$op ok=1 errors=0 p50_ms=[0-9.]* p95_ms=[0-9.]* p99_ms=" "$T/meter.out" ||
        fail "no $op line"
    grep -q "^$U,$op,[0-9.]*,[0-9.]*,200\$" "$T/meter.csv" || fail "no CSV line for $op"
done
[ "$(wc -l <"$T/meter.csv")" = 4 ] || fail "CSV: $(cat "$T/meter.csv")"
now=$(date +%s)
n=$(sg_sql $U "$T/m/$U.db" "SELECT count(*) FROM metrics WHERE timestamp > $now - 3 * 3600 - 60;")
[ "$n" = 720 ] || fail "rows of the last 3 h: $n"

mkdir -p "$T/c" && cp "$SG/db/$U.db" "$T/c/"
sg_server customer "$T/c"
SRV=$LAST_PID
"$LOAD" --connect "tcp:127.0.0.1:$SG_PORT" --certs "$SG" --users 1 --mode customer \
    --duration 2s --frequency 100ms --write-ratio 0.5 --csv "$T/cust.csv" >"$T/cust.out" ||
    fail "customer run: $(cat "$T/cust.out")"
cat "$T/cust.out"
wait_exit $SRV 5
[ "$EXIT_STATUS" = 0 ] || fail "server exit $EXIT_STATUS"
w=$(grep -c ",WRITE,.*,200\$" "$T/cust.csv" || true)
q=$(grep -c ",QUERY_AVG,.*,200\$" "$T/cust.csv" || true)
[ "$w" -gt 0 ] && [ "$q" -gt 0 ] && [ $((w + q)) -ge 10 ] || fail "writes $w, queries $q"
[ "$(sg_sql $U "$T/c/$U.db" "SELECT count(*) FROM alarms;")" = $((3 * w)) ] || fail "alarms"

# failures: user0002 is refused by a server bound to user0001, and nobody
# listens on the second port
mkdir -p "$T/f"
sg_server fail "$T/f"
[ "$(sg_curl $U $U /query_avg)" = 401 ] || fail "binding the server to $U"
rc=0
"$LOAD" --connect "tcp:127.0.0.1:$SG_PORT" --certs "$SG" --users 2-2 --mode meter \
    >"$T/fail.out" || rc=$?
cat "$T/fail.out"
[ "$rc" = 3 ] || fail "exit $rc with errors"
grep -q '^error kind=tls count=1$' "$T/fail.out" || fail "tls error not counted"
# a LONG_WRITE of 400 h (about 8.5 MB) to a server taking 64 KiB: the 413
# reaches the client although it is still sending (the server lingers)
mkdir -p "$T/big" && cp "$SG/db/$U.db" "$T/big/"
sg_server big "$T/big" --max-body 64KiB
rc=0
"$LOAD" --connect "tcp:127.0.0.1:$SG_PORT" --certs "$SG" --users 1 --hours 400 \
    >"$T/big.out" || rc=$?
[ "$rc" = 3 ] && grep -q '^error kind=http_413 count=1$' "$T/big.out" ||
    fail "oversized LONG_WRITE: rc $rc $(cat "$T/big.out")"
rc=0
"$LOAD" --connect "tcp:127.0.0.1:$(free_port)" --certs "$SG" --users 2 --sessions 2 \
    >"$T/dead.out" || rc=$?
[ "$rc" = 3 ] && grep -q '^error kind=connect count=4$' "$T/dead.out" ||
    fail "dead port: rc $rc $(cat "$T/dead.out")"
echo PASS
