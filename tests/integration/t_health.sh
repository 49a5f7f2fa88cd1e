#!/bin/bash
# t_health: the metrics listener answers GET /healthz (200 "ok" while the
# process runs its loops) and GET /readyz (200 "ready" when every relay
# accepts and the directory, when there is one, reaches its backend; 503
# with a one-line reason otherwise): a log sink that a reload could not
# start is 503 until a reload starts it; a redis directory is not ready before
# redis is up, becomes ready, is 503 while redis is stopped and ready again
# once it is back; a draining airlock is 503 "draining" while /healthz stays
# 200; other methods get 405; a memory directory is ready.
. "$(dirname "$0")/lib.sh"

need curl redis-server socat

# probe PORT PATH [METHOD]: prints "CODE BODY" (the body's one line)
probe() {
    local code
    code=$(curl -s -o "$T/body" -w '%{http_code}' -X "${3:-GET}" "http://127.0.0.1:$1$2") || true
    printf '%s %s\n' "$code" "$(head -c 300 "$T/body" 2>/dev/null | tr -d '\r')"
}
probe_is() { [ "$(probe "$1" "$2")" = "$3" ]; }
expect() { # PORT PATH EXPECTED [SECONDS]
    poll_until "${4:-10}" probe_is "$1" "$2" "$3" ||
        fail "GET $2: got '$(probe "$1" "$2")', expected '$3'"
}

PE=$(free_port) # echo backend
PA=$(free_port) # relay
PM=$(free_port) # metrics of the relay-only airlock
PR=$(free_port) # router of the directory airlock
PN=$(free_port) # its metrics
PK=$(free_port) # memory directory airlock: router
PL=$(free_port) # its metrics
SOCK=$T/redis.sock

start echo socat TCP-LISTEN:"$PE",bind=127.0.0.1,reuseaddr,fork PIPE
wait_port "$PE"

log "relays only: alive and ready"
relay_yaml "$T/relay.yaml" "$PM" "$PA" "$PE" "drain_timeout: 60s"
airlock_up relay run -c "$T/relay.yaml"
RELAY=$LAST_PID
expect "$PM" /healthz "200 ok"
expect "$PM" /readyz "200 ready"
expect "$PM" '/readyz?verbose=1' "200 ready"
[ "$(probe "$PM" /readyz POST)" = "405 GET only" ] || fail "POST /readyz: $(probe "$PM" /readyz POST)"
[ "$(probe "$PM" /ready)" = "404 try /metrics, /healthz or /readyz" ] || fail "GET /ready: $(probe "$PM" /ready)"

log "a listener a reload could not start: not ready until one can"
PX=$(free_port)
start squatter socat TCP-LISTEN:"$PX",bind=127.0.0.1,reuseaddr,fork PIPE
SQUAT=$LAST_PID
wait_port "$PX"
sink="log_sinks:
  - name: s1
    listen: tcp:127.0.0.1:$PX
    file: $T/s1.log"
relay_yaml "$T/relay.yaml" "$PM" "$PA" "$PE" "drain_timeout: 60s" "$sink"
kill -HUP "$RELAY"
wait_log "$T/relay.log" 'reloaded .*relay.yaml' 10 "$RELAY"
expect "$PM" /readyz "503 log_sink=s1 not listening"
expect "$PM" /healthz "200 ok"
kill "$SQUAT"
wait_exit "$SQUAT" 10
kill -HUP "$RELAY"
expect "$PM" /readyz "200 ready"

log "draining: not ready, still alive"
exec 3<>"/dev/tcp/127.0.0.1/$PA"
echo hold >&3
read -r -t 10 line <&3 && [ "$line" = hold ] || fail "no echo through the relay"
kill -TERM "$RELAY"
wait_log "$T/relay.log" 'draining 1 connections' 10 "$RELAY"
expect "$PM" /readyz "503 draining"
expect "$PM" /healthz "200 ok"
exec 3>&-
wait_exit "$RELAY" 20
[ "$EXIT_STATUS" = 0 ] || fail "the drained airlock exited with $EXIT_STATUS"

log "redis directory: ready only while redis is reachable"
# router_yaml FILE METRICS_PORT ROUTER_PORT DIRECTORY_LINE...: a router of
# <key>.grid.example to pool fa's instances, with a directory: block
router_yaml() {
    local f=$1 m=$2 r=$3
    shift 3
    {
        printf 'metrics: tcp:127.0.0.1:%s\ndirectory:\n' "$m"
        printf '  %s\n' "$@"
        printf 'routers:\n  - name: grid\n    listen: tcp:127.0.0.1:%s\n' "$r"
        printf '    directory: fa\n    domain: grid.example\n'
    } >"$f"
}
router_yaml "$T/dir.yaml" "$PN" "$PR" "backend: redis" "redis: unix:$SOCK"
airlock_up dir run -c "$T/dir.yaml"
DIR=$LAST_PID
# redis is not there yet: the process is alive, not ready
expect "$PN" /healthz "200 ok"
expect "$PN" /readyz "503 directory: redis unreachable"
dir_up() {
    curl -sf "http://127.0.0.1:$PN/metrics" >"$T/metrics" || return 1
    awk '$1 == "airlock_dir_up" { print $2 }' "$T/metrics"
}
redis_up() {
    start redis redis-server --port 0 --unixsocket "$SOCK" --save '' --appendonly no
    REDIS_PID=$LAST_PID
    wait_for unix_up "$SOCK"
}
redis_up
# reconnects back off up to 5 s
expect "$PN" /readyz "200 ready" 20
[ "$(dir_up)" = 1 ] || fail "airlock_dir_up is '$(dir_up)', not 1"
kill "$REDIS_PID"
wait_exit "$REDIS_PID" 10
expect "$PN" /readyz "503 directory: redis unreachable" 20
[ "$(dir_up)" = 0 ] || fail "airlock_dir_up is '$(dir_up)', not 0"
expect "$PN" /healthz "200 ok"
redis_up
expect "$PN" /readyz "200 ready" 20
stop_clean "$DIR" dir

log "memory directory: ready"
router_yaml "$T/mem.yaml" "$PL" "$PK" "backend: memory"
airlock_up mem run -c "$T/mem.yaml"
expect "$PL" /readyz "200 ready"
stop_clean "$LAST_PID" mem
echo "PASS t_health"
