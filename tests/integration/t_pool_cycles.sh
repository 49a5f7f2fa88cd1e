#!/bin/bash
# t_pool_cycles: 1,000 login/logout cycles through two instance slots
# (min_idle 2, max 2, used in turn: one serves while the other restarts):
# each cycle reserves an instance for its user on the control socket (the
# router's assign; over tcp, so that bash asks without a process), and that
# fresh process serves the user, logs out and is replaced. Afterwards:
# airlock's fd count is back to its baseline, no
# zombie, exactly two instance directories (every other one was wiped), one
# start per cycle, and airlock exits 0 on SIGTERM.
. "$(dirname "$0")/lib.sh"

CYCLES=${CYCLES:-1000}
pool_setup
pool_conf "$CONF" "$P0" --state-wait 0 <<EOF
    min_idle: 2
    max: 2
    max_idle: 2
    deprovision:
      command: ["true"]
EOF
CPORT=$(free_port)
sed -i -e 's/^log_level: debug/log_level: info/' -e "s|^control: .*|control: tcp:127.0.0.1:$CPORT|" "$CONF"
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 2
fd0=$(fd_count "$AL")

# reserve USER: the port of the instance reserved for USER (sticky), or nothing
reserve() {
    local ans=
    exec 4<>"/dev/tcp/127.0.0.1/$CPORT" && printf 'assign fa %s\n' "$1" >&4 && IFS= read -r ans <&4
    exec 4<&-
    [[ $ans == "OK fa/"* ]] && echo "${ans##*:}"
}

# a connect may land in the backlog of the process that is just exiting
# (reset): that attempt is retried, at most 50 times per cycle
cycles() {
    local i ok=0 a b tries port
    trap '' PIPE # a write to the exiting process fails (EPIPE) and is retried
    for ((i = 0; i < $1; i++)); do
        for ((tries = 0; tries < 50; tries++)); do
            a= b=
            port=$(reserve "user$i") || continue
            until exec 3<>"/dev/tcp/127.0.0.1/$port"; do sleep 0.002; done 2>/dev/null
            printf 'login user%s\nlogout\n' "$i" >&3 2>/dev/null
            IFS= read -r a <&3 2>/dev/null || a=
            IFS= read -r b <&3 2>/dev/null || b=
            exec 3<&-
            [ -n "${DEBUG_CYCLES:-}" ] && echo "cycle $i try $tries: a=$a b=$b" >&2
            [ -z "$a" ] || break
        done
        [ "$a" = NOSTATE ] && [ "$b" = BYE ] && ok=$((ok + 1))
    done
    echo "$ok"
}
start=$(date +%s%N)
ok=$(cycles "$CYCLES")
log "$ok of $CYCLES cycles served in $(elapsed_ms "$start") ms"
[ "$ok" = "$CYCLES" ] || fail "only $ok of $CYCLES cycles were served"
wait_for settled 2
# the wipe threads hold fds while they remove directories
wait_for metric_is airlock_pool_instances 'pool="fa",state="wiping"' 0
starts=$(metric airlock_pool_starts_total 'pool="fa"' "$MPORT")
[ "$starts" = $((CYCLES + 2)) ] || fail "$starts starts for $CYCLES cycles"
fd1=$(fd_count "$AL")
log "airlock fds: $fd0 before, $fd1 after"
[ "$fd1" = "$fd0" ] || fail "fd count grew from $fd0 to $fd1: $(ls -l /proc/$AL/fd)"
no_zombies "$AL" || fail "zombies: $(ps -o pid,stat,cmd --ppid "$AL")"
[ "$(pgrep -c -P "$AL")" = 2 ] || fail "children: $(ps -o pid,stat,cmd --ppid "$AL")"
[ "$(ls "$T/inst" | wc -l)" = 2 ] || fail "$(ls "$T/inst" | wc -l) instance directories left"
stop_clean "$AL" al
[ -z "$(ls "$T/inst")" ] || fail "directories left after SIGTERM"
log "ok"
