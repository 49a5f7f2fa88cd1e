# demo-lib.sh - what both demos share (sourced by demo.sh and demo-relay.sh):
# checks, a run directory, a loopback-only network namespace as the
# "enclave", starting daemons in it or on the host, and stopping them in
# order. The sourcing script sets NETNS, SECONDS_TO_RUN and the ports it
# needs, then calls demo_begin PORT...; its stop_all() stops its daemons
# (with halt) and runs when the demo ends, however it ends. Starting,
# waiting and stopping are scripts/lib.sh's.
# shellcheck shell=bash
DIE_PREFIX="demo: "
. "$ROOT/scripts/lib.sh"

# demo_begin TOOL... -- PORT...: checks root, the binary, the tools, the
# ports and the namespace name; makes the run directory $RUN
demo_begin() {
    local tools=() p m
    is_root || die "needs root to create a network namespace (try: sudo make demo)"
    [ -x "$AIRLOCK" ] || die "no airlock binary at $AIRLOCK (run: make)"
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        tools+=("$1")
        shift
    done
    shift
    m=$(tools_missing "${tools[@]}") || die "$m not found (run: scripts/deps.sh)"
    [ -z "$SECONDS_TO_RUN" ] || [[ $SECONDS_TO_RUN =~ ^[0-9]+$ ]] ||
        die "DEMO_SECONDS must be a whole number"
    for p in "$@"; do
        ! tcp_up "$p" || die "port $p is in use (set the DEMO_*PORT variables, or stop what uses it)"
    done
    ! ip netns list | has -w -- "$NETNS" ||
        die "namespace $NETNS exists already: another demo running? (ip netns del $NETNS)"
    RUN=$(mktemp -d /tmp/airlock-demo.XXXXXX)
    NS_MADE=0 SLEEP_PID="" STATUS=0
    trap demo_end EXIT
    trap 'exit 0' INT TERM
}

# halt NAME PID SIGNAL SECONDS: signal PID, wait for it, SIGKILL after SECONDS
halt() {
    local name=$1 pid=$2 rc=0
    [ -n "$pid" ] || return 0
    proc_stop "$pid" "$4" "$3" || rc=$?
    if [ "$STOP_KILLED" = 1 ]; then
        echo "  $name (pid $pid) did not stop in $4 s: killed"
        STATUS=1
    fi
    if [ "$rc" = 0 ]; then
        echo "  $name (pid $pid) stopped"
    else
        echo "  $name (pid $pid) exited with status $rc"
        STATUS=1
    fi
}

demo_end() {
    local rc=$?
    [ "$BASHPID" = "$$" ] || return 0 # a child not yet exec'd (see cleanup)
    trap - EXIT INT TERM
    [ "$rc" = 0 ] || STATUS=$rc
    echo
    echo "== stopping"
    [ -z "$SLEEP_PID" ] || kill "$SLEEP_PID" 2>/dev/null || true
    stop_all
    cleanup # whatever else was started
    if [ "$NS_MADE" = 1 ]; then
        ip netns del "$NETNS" && echo "  namespace $NETNS deleted" || STATUS=1
    fi
    rm -rf "$RUN" && echo "  run dir $RUN removed"
    [ "$STATUS" = 0 ] && echo "demo stopped cleanly" || echo "demo stopped, with errors"
    exit "$STATUS"
}

# make_enclave: the namespace, with loopback only
make_enclave() {
    echo "== starting the enclave: network namespace $NETNS with loopback only"
    ip netns add "$NETNS"
    NS_MADE=1
    ip -n "$NETNS" link set lo up
}
in_ns() { ip netns exec "$NETNS" "$@"; }
# ns_daemon LOG CMD...: CMD in the namespace, in its own session (so that a
# Ctrl-C reaches only this script, which stops the children in order),
# output to LOG; setsid and nsenter exec without forking, so $LAST_PID is
# CMD's pid
ns_daemon() {
    local log=$1
    shift
    proc_start -g "$log" nsenter --net="/run/netns/$NETNS" "$@"
}
# alive PID COMM NAME LOG: PID is a running COMM
alive() {
    running "$1" || die "$3 exited at start: $(tail -3 "$4" 2>/dev/null)"
    [ "$(cat "/proc/$1/comm")" = "$2" ] || die "pid $1 is $(cat "/proc/$1/comm"), not $2"
}
airlock_comm() { basename "$AIRLOCK" | cut -c1-15; }

# start_host_relay VPORT: the host relay, tcp:127.0.0.1:$PORT -> the enclave's
# hybrid vsock port VPORT, metrics on $MPORT; sets HOST_PID
start_host_relay() {
    proc_start -g "$RUN/host-relay.log" "$AIRLOCK" relay "tcp:127.0.0.1:$PORT" \
        "hvsock:$RUN/enclave.sock:$1" --name host --metrics "tcp:127.0.0.1:$MPORT" --drain-timeout 2s
    HOST_PID=$LAST_PID
    wait_port "$PORT"
    wait_port "$MPORT"
    alive "$HOST_PID" "$(airlock_comm)" "host relay" "$RUN/host-relay.log"
}

# show_enclave_net PID: the namespace has loopback only, and PID runs in it
show_enclave_net() {
    echo
    echo "== the enclave's network: loopback only, no routes"
    echo "\$ ip -n $NETNS addr"
    ip -n "$NETNS" addr
    echo "\$ ip -n $NETNS route   (empty)"
    ip -n "$NETNS" route
    echo "\$ ip netns identify $1"
    ip netns identify "$1"
}

# demo_wait: until DEMO_SECONDS pass, or Ctrl-C / SIGTERM
demo_wait() {
    if [ -n "$SECONDS_TO_RUN" ]; then
        echo "Stopping by itself in $SECONDS_TO_RUN s (DEMO_SECONDS); Ctrl-C stops it sooner."
        sleep "$SECONDS_TO_RUN" &
    else
        echo "Ctrl-C (or SIGTERM) stops everything."
        sleep infinity &
    fi
    SLEEP_PID=$!
    wait "$SLEEP_PID" || true
    SLEEP_PID=""
}
