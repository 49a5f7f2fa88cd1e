#!/bin/bash
# t_sd_notify: under a service manager (systemd Type=notify), airlock sends
# READY=1 once its listeners accept, RELOADING=1 (with MONOTONIC_USEC) and
# READY=1 again around each SIGHUP reload (a failed reload too), and
# STOPPING=1 when SIGTERM starts the drain; to a socket path and to an
# abstract one ('@'). The instances of a pool do not inherit NOTIFY_SOCKET.
# An unusable NOTIFY_SOCKET is reported, not fatal.
. "$(dirname "$0")/lib.sh"

SINK=${NOTIFYSINK:-$(dirname "$AIRLOCK")/tests/notifysink}
[ -x "$SINK" ] || fail "no $SINK (ninja -C $(dirname "$AIRLOCK"))"

PA=$(free_port)
PB=$(free_port)
PM=$(free_port)
relay_yaml "$T/airlock.yaml" "$PM" "$PA" "$PB"

# states LOG: the datagrams received so far, one per line, MONOTONIC_USEC
# values elided ("RELOADING=1|MONOTONIC_USEC=N")
states() { grep -v '^listening ' "$1" | sed 's/MONOTONIC_USEC=[0-9][0-9]*/MONOTONIC_USEC=N/'; }
states_are() { [ "$(states "$1" | tr '\n' ' ')" = "$2" ]; }
expect_states() { # LOG EXPECTED
    poll_until 10 states_are "$1" "$2" ||
        fail "notifications: got '$(states "$1" | tr '\n' ' ')', expected '$2'"
}

# one_run NAME ADDRESS: the whole life of one airlock under a manager
one_run() {
    local name=$1 addr=$2 pid
    local r="RELOADING=1|MONOTONIC_USEC=N"
    start "sink_$name" "$SINK" "$addr"
    wait_log "$T/sink_$name.log" '^listening' 10 "$LAST_PID"
    start "airlock_$name" env NOTIFY_SOCKET="$addr" "$AIRLOCK" run -c "$T/airlock.yaml"
    pid=$LAST_PID
    wait_log "$T/sink_$name.log" '^READY=1$' 10 "$pid"
    # READY=1 is sent only once the listeners accept: no waiting here
    tcp_up "$PA" || fail "$name: READY=1 before the relay listens"
    tcp_up "$PM" || fail "$name: READY=1 before the metrics listener"
    expect_states "$T/sink_$name.log" "READY=1 "

    kill -HUP "$pid"
    expect_states "$T/sink_$name.log" "READY=1 $r READY=1 "
    # a reload that fails keeps the running config: the manager still hears READY=1
    cp "$T/airlock.yaml" "$T/good.yaml"
    echo "bogus_key: 1" >>"$T/airlock.yaml"
    kill -HUP "$pid"
    wait_log "$T/airlock_$name.log" 'reload failed' 10 "$pid"
    expect_states "$T/sink_$name.log" "READY=1 $r READY=1 $r READY=1 "
    cp "$T/good.yaml" "$T/airlock.yaml"
    tcp_up "$PA" || fail "$name: the relay is gone after a failed reload"

    stop_clean "$pid" "airlock_$name"
    expect_states "$T/sink_$name.log" "READY=1 $r READY=1 $r READY=1 STOPPING=1 "
    # the reloading timestamp is CLOCK_MONOTONIC in microseconds: not zero
    grep -q 'MONOTONIC_USEC=[1-9][0-9]*$' "$T/sink_$name.log" || fail "no MONOTONIC_USEC"
}

one_run path "$T/notify.sock"
one_run abstract "@airlock-t_sd_notify-$$"

# the instances of a pool do not inherit NOTIFY_SOCKET: they cannot speak
# for airlock to the manager
pool_setup
pool_conf "$CONF" "$P0" <<<"    min_idle: 1"
start sink_pool "$SINK" "$T/pool-notify.sock"
wait_log "$T/sink_pool.log" '^listening' 10 "$LAST_PID"
LOG=$T/airlock_pool.log
start airlock_pool env NOTIFY_SOCKET="$T/pool-notify.sock" "$AIRLOCK" run -c "$CONF"
AP=$LAST_PID
wait_log "$LOG" ' starting pid=' 10 "$AP"
inst=$(sed -n 's/.* starting pid=\([0-9]*\) .*/\1/p' "$LOG" | head -1)
[ -r "/proc/$inst/environ" ] || fail "no instance process $inst"
tr '\0' '\n' <"/proc/$inst/environ" | has '^NOTIFY_SOCKET=' &&
    fail "pool instance $inst inherited NOTIFY_SOCKET"
wait_log "$T/sink_pool.log" '^READY=1$' 10 "$AP"
stop_clean "$AP" airlock_pool

# a NOTIFY_SOCKET that is no address (relative): a warning, and airlock runs
start airlock_bad env NOTIFY_SOCKET=relative.sock "$AIRLOCK" run -c "$T/airlock.yaml"
wait_log "$T/airlock_bad.log" 'airlock running' 10 "$LAST_PID"
grep -q 'NOTIFY_SOCKET: .*not telling the service manager' "$T/airlock_bad.log" ||
    fail "no warning for an unusable NOTIFY_SOCKET"
stop_clean "$LAST_PID" airlock_bad
echo "PASS t_sd_notify"
