#!/bin/bash
# t_build_info: `airlock --version` (and `airlock version`) print the version,
# the git commit and the build date; the metrics listener serves
# airlock_build_info{version,commit} 1 with the same values and the standard
# process metrics (resident memory, open fds, CPU seconds, start time) with
# values that match /proc; the whole exposition passes `promtool check
# metrics` (from Debian's prometheus package, see scripts/deps.sh).
. "$(dirname "$0")/lib.sh"

need curl socat
# scripts/deps.sh unpacks promtool there (not the prometheus server)
PROMTOOL=$(command -v promtool || echo /opt/airlock-test/bin/promtool)
[ -x "$PROMTOOL" ] || skip "no promtool (scripts/deps.sh)"

V=$("$AIRLOCK" --version)
[ "$("$AIRLOCK" version)" = "$V" ] || fail "airlock version and --version differ"
RE='^airlock ([0-9]+\.[0-9]+\.[0-9]+) \(commit ([0-9a-f]{7,}(-dirty)?|unknown), built ([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)\)$'
[[ $V =~ $RE ]] || fail "--version: '$V'"
VERSION=${BASH_REMATCH[1]} COMMIT=${BASH_REMATCH[2]}
# a commit of the checkout, when there is one to look it up in (not
# necessarily HEAD: the binary may be older than the last commit)
if git -C "$ROOT" rev-parse HEAD >/dev/null 2>&1 && [ "$COMMIT" != unknown ]; then
    git -C "$ROOT" cat-file -e "${COMMIT%-dirty}^{commit}" 2>/dev/null ||
        fail "--version commit $COMMIT is no commit of $ROOT"
fi
grep -q "^project('airlock', 'c',\$" "$ROOT/meson.build" &&
    grep -q "version : '$VERSION'" "$ROOT/meson.build" || fail "version $VERSION is not meson's"

PE=$(free_port)
PA=$(free_port)
PM=$(free_port)
start echo socat TCP-LISTEN:"$PE",bind=127.0.0.1,reuseaddr,fork PIPE
wait_port "$PE"
relay_yaml "$T/airlock.yaml" "$PM" "$PA" "$PE"
airlock_up airlock run -c "$T/airlock.yaml"
AL=$LAST_PID
curl -sf "http://127.0.0.1:$PM/metrics" >"$T/m1" || fail "no metrics"

grep -qx "airlock_build_info{version=\"$VERSION\",commit=\"$COMMIT\"} 1" "$T/m1" ||
    fail "airlock_build_info: $(grep airlock_build_info "$T/m1")"
grep -qx '# TYPE airlock_build_info gauge' "$T/m1" || fail "airlock_build_info is not a gauge"
value() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }
for m in process_cpu_seconds_total:counter process_resident_memory_bytes:gauge \
    process_virtual_memory_bytes:gauge process_open_fds:gauge process_max_fds:gauge \
    process_start_time_seconds:gauge; do
    grep -qx "# TYPE ${m%%:*} ${m#*:}" "$T/m1" || fail "no ${m#*:} ${m%%:*}"
    [ -n "$(value "${m%%:*}" "$T/m1")" ] || fail "no value of ${m%%:*}"
done

# the values are the process's own, as /proc tells them
rss_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$AL/status")
rss=$(value process_resident_memory_bytes "$T/m1")
awk -v a="$rss" -v b="$((rss_kb * 1024))" 'BEGIN { exit !(a > 0 && a > b / 2 && a < b * 2) }' ||
    fail "process_resident_memory_bytes $rss, VmRSS ${rss_kb} kB"
[ "$(value process_max_fds "$T/m1")" = "$(awk '/^Max open files/ { print $4 }' "/proc/$AL/limits")" ] ||
    fail "process_max_fds is not the soft limit"
ticks=$(getconf CLK_TCK)
btime=$(awk '/^btime/ { print $2 }' /proc/stat)
want=$(sed 's/.*) //' "/proc/$AL/stat" | awk -v t="$ticks" -v b="$btime" '{ printf "%.2f", b + $20 / t }')
[ "$(value process_start_time_seconds "$T/m1")" = "$want" ] ||
    fail "process_start_time_seconds $(value process_start_time_seconds "$T/m1"), /proc says $want"
cpu=$(value process_cpu_seconds_total "$T/m1")
awk -v c="$cpu" 'BEGIN { exit !(c >= 0 && c < 600) }' || fail "process_cpu_seconds_total $cpu"

# open fds follow connections: ten held connections are at least twenty sockets more
fds1=$(value process_open_fds "$T/m1")
for i in 3 4 5 6 7 8 9 10 11 12; do
    eval "exec $i<>/dev/tcp/127.0.0.1/$PA"
    echo x >&"$i"
    read -r -t 10 line <&"$i" || fail "no echo on connection $i"
done
curl -sf "http://127.0.0.1:$PM/metrics" >"$T/m2"
fds2=$(value process_open_fds "$T/m2")
[ "$fds2" -ge $((fds1 + 20)) ] || fail "process_open_fds $fds1 -> $fds2 with 10 connections more"
# /proc counted now: the metrics request's own socket is gone
now=$(ls "/proc/$AL/fd" | wc -l)
[ "$fds2" -ge $((now - 2)) ] && [ "$fds2" -le $((now + 2)) ] ||
    fail "process_open_fds $fds2, /proc/$AL/fd holds $now"
for i in 3 4 5 6 7 8 9 10 11 12; do eval "exec $i>&-"; done

# the exposition as a whole, by Prometheus' own checker
"$PROMTOOL" check metrics <"$T/m2" >"$T/promtool.out" 2>&1 || {
    cat "$T/promtool.out" >&2
    fail "promtool check metrics found problems"
}
stop_clean "$AL" airlock
echo "PASS t_build_info"
