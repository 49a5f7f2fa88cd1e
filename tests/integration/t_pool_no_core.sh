#!/bin/bash
# t_pool_no_core: an instance that runs as a uid of its own dumps no core.
# A core dump holds the session's memory (its user's keys, the state it
# read), and lands where the wipe of the session does not reach: in a file
# of the uid's wherever kernel.core_pattern points, or kept by a helper
# (systemd-coredump keeps it for the crashing uid to read). The uid then
# serves the next user, who would read it. Before, an instance got
# airlock's core limit (the hard one unlimited here): any of its processes
# could raise its own and dump. Now RLIMIT_CORE is 0, soft and hard: dave's
# instance cannot raise it, and where the kernel writes the core into the
# crashing process's directory (a core_pattern without a path), a process
# of dave's that crashes there leaves none.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to run instances as other uids"
pool_one_uid
airlock_up al run -c "$CONF"
AL=$LAST_PID
wait_for settled 1
P=$(assign_port dave)
[ "$(app "$P" "login dave")" = NOSTATE ] || fail "dave not served"
[ "$(app "$P" "sh ulimit -Hc")" = "OK 0" ] ||
    fail "the instance's hard core limit is $(app "$P" "sh ulimit -Hc")"
[ "$(app "$P" "sh ulimit -c unlimited 2>/dev/null && echo raised || echo refused")" = "OK refused" ] ||
    fail "the instance raised its core limit"
pattern=$(cat /proc/sys/kernel/core_pattern)
case $pattern in
*/* | '|'*) log "core_pattern is $pattern: the crash is not tried" ;;
*)
    # a child that raises its limit if it can and crashes in the
    # instance's directory (its working directory)
    [ "$(app "$P" "sh (ulimit -c unlimited 2>/dev/null; exec sleep 60) & p=\$!; kill -SEGV \$p; wait \$p; echo crashed \$?")" = "OK crashed 139" ] ||
        fail "the child did not crash"
    D=$T/inst/$(basename "$(readlink "/proc/$(pid_of_port "$P")/cwd")")
    [ -z "$(find "$D" -maxdepth 1 -name "${pattern%%%*}*")" ] ||
        fail "the crash left a core dump: $(ls -l "$D")"
    ;;
esac
[ "$(app "$P" logout)" = BYE ] || fail "dave's logout"
wait_for settled 1
stop_clean "$AL" al
