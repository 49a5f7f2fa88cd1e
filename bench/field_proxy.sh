#!/bin/bash
# field_proxy.sh - the HTTP proxy role with field encryption (docs/field-encryption.md)
# against nginx as a plain reverse proxy to the same origin (nginx, a fixed
# response), and the origin direct. The request: a 2 KiB JSON body of which
# 10 fields are encrypted by airlock (nginx and direct pass it as it is).
#   1. throughput: wrk, CONNS keep-alive connections, SECS seconds each;
#   2. latency at a fixed rate: benchtool httprate (constant rate, latency from
#      when each request was due), RATE requests/s over 16 connections;
#      "added" p99 = the proxy's p99 minus the direct p99 of the same round.
# One thread for airlock, one worker for each nginx. Systems run interleaved
# (rotated each round); medians of ROUNDS are printed.
#
#   usage: bench/field_proxy.sh [--rounds N] [--secs S] [--conns N] [--rate R]
#
# The numbers go into docs/benchmarks.md by hand, with this command line.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ROUNDS=3 SECS=5 CONNS=32 RATE=2000
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --secs) SECS=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--secs S] [--conns N] [--rate R]" >&2; exit 2 ;;
    esac
done
. "$HERE/lib.sh"
bench_build
bench_init field-proxy

read -r ORIGIN NGINX AIRLOCK_PORT <<<"$(free_ports 3)"
fill "$HERE/conf/nginx-origin.conf.in" "$WORK/origin.conf" TARGET="$ORIGIN" DIR="$WORK"
sed -i 's|default_type text/plain;|default_type application/json;|; s|return 200 .*|return 200 "{\\"ok\\":true,\\"id\\":\\"0123456789abcdef\\"}";|' "$WORK/origin.conf"
fill "$HERE/conf/nginx-http-proxy.conf.in" "$WORK/proxy.conf" LISTEN="$NGINX" TARGET="$ORIGIN" DIR="$WORK"
start origin nginx -p "$WORK" -e "$WORK/origin.err" -c "$WORK/origin.conf"
start nginx nginx -p "$WORK" -e "$WORK/proxy.err" -c "$WORK/proxy.conf"
keyset_file "$WORK/keys.json" bench k1 k1
cat >"$WORK/airlock.yaml" <<YAML
threads: 1
log_level: warn
proxies:
  - name: bench
    listen: tcp:127.0.0.1:$AIRLOCK_PORT
    backend: tcp:127.0.0.1:$ORIGIN
    keyset: $WORK/keys.json
    routes:
      - path: /
        encrypt: [\$.card.number, \$.card.cvv, \$.card.expiry, \$.card.holder, \$.ssn, \$.email,
                  \$.phone, \$.address.street, \$.address.zip, \$.dob]
YAML
start airlock "$AIRLOCK" run -c "$WORK/airlock.yaml"
wait_port "$ORIGIN"
wait_port "$NGINX"
wait_port "$AIRLOCK_PORT"

# the body: 10 fields to encrypt and padding to 2 KiB exactly
BODY='{"card":{"number":"4111111111111111","cvv":"123","expiry":"12/29","holder":"Ada Lovelace"},"ssn":"078-05-1120","email":"ada@example.com","phone":"+44 20 7946 0000","address":{"street":"12 Analytical Row","zip":"NW1 2AB"},"dob":"1815-12-10","notes":"'
BODY="$BODY$(head -c $((2048 - ${#BODY} - 2)) /dev/zero | tr '\0' x)\"}"
printf '%s' "$BODY" >"$WORK/body.json"
printf 'POST /api/pay HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
    "${#BODY}" "$BODY" >"$WORK/req.http"
cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$WORK/body.json", "rb")
wrk.body = f:read("*a")
f:close()
LUA
curl -sf -H 'Content-Type: application/json' --data-binary @"$WORK/body.json" \
    "http://127.0.0.1:$AIRLOCK_PORT/api/pay" >/dev/null || die "airlock does not answer"

declare -A PORT=([direct]=$ORIGIN [nginx]=$NGINX [airlock]=$AIRLOCK_PORT)
SYSTEMS="direct nginx airlock"
log "body ${#BODY} bytes, 10 fields encrypted by airlock; $ROUNDS rounds of ${SECS}s"
for r in $(seq "$ROUNDS"); do
    for s in $(order "$r"); do
        rps=$(wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$WORK/post.lua" "http://127.0.0.1:${PORT[$s]}/api/pay" |
            awk '/^Requests\/sec/ {print $2}')
        printf '%s\trps\t%s\n' "$s" "$rps" >>"$RESULTS"
        "$BT" httprate "${PORT[$s]}" "$RATE" "$SECS" 16 "$WORK/req.http" |
            sed -n "s/.*p50_us=\([0-9]*\) p99_us=\([0-9]*\).*errors=\([0-9]*\).*/$s\tp50\t\1\n$s\tp99\t\2\n$s\terrors\t\3/p" >>"$RESULTS"
        log "round $r $s: $(grep -P "^$s\t" "$RESULTS" | tail -4 | cut -f2,3 | tr '\t\n' '= ')"
    done
done
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
val() { awk -v s="$1" -v k="$2" -F'\t' '$1 == s && $2 == k { print $3 }' "$RESULTS" | median; }
printf '%-8s %10s %8s %10s %10s %12s %7s\n' system req_per_s vs_nginx p50_us p99_us added_p99_us errors
for s in $SYSTEMS; do
    printf '%-8s %10.0f %8.2f %10s %10s %12s %7s\n' "$s" "$(val "$s" rps)" \
        "$(awk -v a="$(val "$s" rps)" -v b="$(val nginx rps)" 'BEGIN { print a / b }')" \
        "$(val "$s" p50)" "$(val "$s" p99)" "$(($(val "$s" p99) - $(val direct p99)))" "$(val "$s" errors)"
done
