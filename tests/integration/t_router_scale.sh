#!/bin/bash
# t_router_scale: a router with 20,000 static routes (one per user, as a
# deployment without a pool has them) loads, routes and reloads (that a
# file holds the 100,000 a router may have, and not one more, is
# test_config's: this stays small under the sanitizers). The config:
# "*.scale.test" first, then u0..u19999.scale.test, the last one to an openssl s_server
# with CN=last, the others to a socket path nobody connects to.
# Proves, by the certificate that came back: the last route is routed (in
# mixed case too); a name the table does not hold goes to the wildcard,
# one with a label more than a member too; a reload with the same file
# keeps the router (its 20,000 routes compare equal to the running copy),
# a reload that changes the last route's target changes the router, and
# the name goes to its new target. The loads are bounded by 120 s, a
# failure bound only: a table built in quadratic time (8,000 routes took
# 30 s under the sanitizers) does not load in it.
. "$(dirname "$0")/lib.sh"
need openssl python3
N=20000
read -r L W R <<<"$(free_ports 3)"
tls_origin last "$L"
tls_origin wild "$W"

# write_conf LAST_PORT: the router's config, u$((N-1)) to LAST_PORT, in one rename
write_conf() {
    python3 - "$N" "$1" "$W" "$R" >"$T/airlock.yaml.new" <<'PY'
import sys
n, last, wild, listen = (int(a) for a in sys.argv[1:])
out = ["routers:", "  - name: scale", f"    listen: tcp:127.0.0.1:{listen}", "    routes:",
       f'    - {{name: "*.scale.test", target: tcp:127.0.0.1:{wild}}}']
for i in range(n):
    target = f"tcp:127.0.0.1:{last}" if i == n - 1 else "unix:/x"
    out.append(f"    - {{name: u{i}.scale.test, target: {target}}}")
print("\n".join(out))
PY
    mv "$T/airlock.yaml.new" "$T/airlock.yaml"
}

subject() { # SNI: the CN of the certificate a TLS client gets through the router
    timeout 20 openssl s_client -connect "127.0.0.1:$R" -servername "$1" </dev/null 2>/dev/null |
        openssl x509 -noout -subject 2>/dev/null | sed 's/.*CN *= *//'
}
expect_cn() { # SNI CN
    local got
    got=$(subject "$1")
    [ "$got" = "$2" ] || fail "SNI $1: got certificate '$got', expected CN=$2"
    log "SNI $1 -> CN=$got"
}

write_conf "$L"
log "load $N routes"
airlock al run -c "$T/airlock.yaml"
AL=$LAST_PID
wait_log "$T/al.log" 'airlock running' 120 "$AL"
has -E "relay=scale listen=tcp:127.0.0.1:$R target=sni routes=$((N + 1)) default=no" <"$T/al.log" ||
    fail "the router did not load $((N + 1)) routes"

expect_cn "u$((N - 1)).scale.test" last
expect_cn "U$((N - 1)).Scale.TEST" last
expect_cn "u$N.scale.test" wild
expect_cn "x.u$((N - 1)).scale.test" wild

log "reload, the same file: the router stays"
kill -HUP "$AL"
wait_log "$T/al.log" 'reloaded .* \(generation 2\)' 120 "$AL"
! has 'relay=scale changed' <"$T/al.log" || fail "an unchanged table changed the router"
expect_cn "u$((N - 1)).scale.test" last

log "reload, the last route to another target: the router changes"
write_conf "$W"
kill -HUP "$AL"
wait_log "$T/al.log" 'reloaded .* \(generation 3\)' 120 "$AL"
has 'relay=scale changed' <"$T/al.log" || fail "a changed table kept the router"
expect_cn "u$((N - 1)).scale.test" wild
stop_clean "$AL" al
