# lib.sh - the one shell library for starting, waiting for and stopping
# processes, shared by the integration tests (tests/integration/lib.sh), the
# benchmarks (bench/) and the demos (scripts/demo-lib.sh); source it, under
# bash with set -euo pipefail. Sourcing it sets the EXIT trap to cleanup.
#
#   die, log                       messages (DIE_PREFIX; LOG_FD, LOG_T0)
#   at_exit, at_fail, cleanup      what happens at exit, however the script ends
#   scratch_dir                    a directory removed at exit
#   is_root, tools_missing         checks before starting
#   free_port, free_ports, free_range, tcp_up, unix_up
#   poll_until, wait_until, wait_log, wait_port, wait_socket, wait_file
#   proc_start, proc_stop, proc_stop_all, running, exited, wait_exit
#
# No fixed sleeps as synchronisation: every wait polls its condition every
# 0.1 s, SECONDS x 10 times (so at least SECONDS: a loaded machine stretches
# a wait rather than cutting it short).
# shellcheck shell=bash disable=SC2034,SC2119,SC2120 # variables and optional arguments for the callers

# ---- messages

DIE_PREFIX=${DIE_PREFIX:-${0##*/}: } # what die puts before its message
LOG_FD=${LOG_FD:-1}                  # where log writes
LOG_T0=${LOG_T0:-}                   # set (date +%s): log stamps seconds since then

# die MESSAGE...: prints DIE_PREFIX MESSAGE on stderr and exits 1 (cleanup runs).
die() {
    echo "$DIE_PREFIX$*" >&2
    exit 1
}

# log MESSAGE...: one progress line on LOG_FD: "# MESSAGE", or with LOG_T0
# set "[  12s] MESSAGE", the seconds since LOG_T0.
log() {
    if [ -n "$LOG_T0" ]; then
        printf '[%4ss] %s\n' $(($(date +%s) - LOG_T0)) "$*" >&"$LOG_FD"
    else
        echo "# $*" >&"$LOG_FD"
    fi
}

# ---- at exit

AT_EXIT=()
AT_FAIL=()

# at_exit COMMAND: the shell command COMMAND runs at exit (error, Ctrl-C,
# SIGTERM or the end), after the processes of proc_start are stopped (they
# may still use what it removes); the last registered runs first.
at_exit() { AT_EXIT+=("$1"); }

# at_fail COMMAND: the shell command COMMAND runs at an exit with a status
# other than 0 and 77 (skipped), before the processes are stopped: what
# they logged up to the failure, not their goodbyes.
at_fail() { AT_FAIL+=("$1"); }

# cleanup: the EXIT trap: the at_fail commands if the script failed,
# proc_stop_all, then the at_exit commands (each once: a second call does
# nothing more). A script that sets its own EXIT trap calls cleanup from it.
# Only the script's own shell cleans up: a child forked for "cmd &" still
# has the trap until it execs cmd, and one signalled in that window must not
# stop its siblings or remove their files.
cleanup() {
    local status=$? i
    [ "$BASHPID" = "$$" ] || return 0
    if [ "$status" != 0 ] && [ "$status" != 77 ]; then
        for i in "${!AT_FAIL[@]}"; do eval "${AT_FAIL[i]}" || true; done
        AT_FAIL=()
    fi
    proc_stop_all
    for ((i = ${#AT_EXIT[@]} - 1; i >= 0; i--)); do
        eval "${AT_EXIT[i]}" || true
        unset "AT_EXIT[i]"
    done
}
trap cleanup EXIT

# scratch_dir VAR PREFIX [KEEP]: makes the directory /tmp/PREFIX.XXXXXX and
# names it in $VAR; it is removed at exit, unless KEEP is set and not 0 (its
# name is then printed on stderr).
scratch_dir() {
    local dir
    dir=$(mktemp -d "/tmp/$2.XXXXXX") || die "cannot make a directory in /tmp"
    printf -v "$1" '%s' "$dir"
    if [ -n "${3:-}" ] && [ "$3" != 0 ]; then
        at_exit "echo $(printf %q "kept $dir") >&2"
    else
        at_exit "rm -rf $(printf %q "$dir")"
    fi
}

# ---- checks

is_root() { [ "$(id -u)" = 0 ]; }

# tools_missing TOOL...: prints the TOOLs that are not installed (space
# separated) and fails if there are any: m=$(tools_missing a b) || die "$m ..."
tools_missing() {
    local c m=()
    for c in "$@"; do
        command -v "$c" >/dev/null || m+=("$c")
    done
    echo "${m[*]}"
    [ ${#m[@]} = 0 ]
}

# ---- field encryption (docs/field-encryption.md)

# keyset_file FILE TENANT PRIMARY ID...: a keyset (mode 0600) with a fresh
# random key for each ID; PRIMARY (one of them) encrypts
keyset_file() {
    local file=$1 tenant=$2 primary=$3 id sep="" keys=""
    shift 3
    for id in "$@"; do
        keys="$keys$sep{\"id\": \"$id\", \"key\": \"$(openssl rand -hex 32)\"}"
        sep=", "
    done
    printf '{"tenant": "%s", "primary": "%s", "keys": [%s]}\n' "$tenant" "$primary" "$keys" >"$file"
    chmod 600 "$file"
}

# ---- ports and sockets

# Listeners take ports of 20000 up to the kernel's ephemeral range (by
# default 32768-60999), where no outgoing connection of the machine (a
# benchmark makes tens of thousands) takes one first.
FREE_PORT_HI=$(($(cut -f1 /proc/sys/net/ipv4/ip_local_port_range) - 1))
FREE_PORT_LO=20000
[ "$FREE_PORT_HI" -gt $((FREE_PORT_LO + 1000)) ] || FREE_PORT_LO=1025

# COMMAND | has [GREP_OPTIONS] PATTERN: grep -q that reads all of its input
# before it looks. Under pipefail, grep -q exits at the first match and a
# writer with more to say dies of SIGPIPE, failing the pipeline now and then
# (the larger the output, the more often).
has() {
    local in
    in=$(cat)
    if [ -n "$in" ]; then grep -q "$@" <<<"$in"; else grep -q "$@" </dev/null; fi
}

# The ports free_port and free_range gave this script, one per line: none
# is given twice, since nothing may listen on it yet when the next is asked
# for (they run in $(...), so the record is a file).
PORTS_GIVEN=$(mktemp /tmp/lib-ports.XXXXXX)
at_exit "rm -f $(printf %q "$PORTS_GIVEN")"

# taken_ports: reads into the associative array TAKEN the ports this script
# was given and those any TCP socket uses, in any state (a port that is the
# local end of a TIME-WAIT connection cannot be bound even with SO_REUSEADDR).
taken_ports() {
    local p
    TAKEN=()
    while read -r p; do [ -z "$p" ] || TAKEN[$p]=1; done < <(
        cat "$PORTS_GIVEN"
        ss -Htan | awk '{ n = split($4, a, ":"); print a[n] }'
    )
}

# free_port: a free TCP port on this machine, not given to this script before.
free_port() {
    local p
    local -A TAKEN
    taken_ports
    while :; do
        p=$((FREE_PORT_LO + RANDOM % (FREE_PORT_HI - FREE_PORT_LO + 1)))
        [ -n "${TAKEN[$p]:-}" ] || { echo "$p" >>"$PORTS_GIVEN"; echo "$p"; return; }
    done
}

# free_ports N: N free ports on one line, for read -r A B <<<...
free_ports() {
    local i ports=()
    for ((i = 0; i < $1; i++)); do ports+=("$(free_port)"); done
    echo "${ports[*]}"
}

# free_range N: the first of N consecutive free TCP ports, not given to this
# script before.
free_range() {
    local p i ok
    local -A TAKEN
    taken_ports
    while :; do
        p=$((FREE_PORT_LO + RANDOM % (FREE_PORT_HI - FREE_PORT_LO + 2 - $1)))
        ok=1
        for ((i = p; i < p + $1; i++)); do
            [ -z "${TAKEN[$i]:-}" ] || { ok=0; break; }
        done
        [ "$ok" = 1 ] && { seq "$p" $((p + $1 - 1)) >>"$PORTS_GIVEN"; echo "$p"; return; }
    done
}

# tcp_up PORT: something listens on TCP PORT (any address).
tcp_up() { ss -Htln "sport = :$1" | has .; }
# unix_up PATH: PATH is a socket.
unix_up() { [ -S "$1" ]; }

# ---- waiting

# poll_until SECONDS COMMAND...: runs COMMAND (output discarded) at once and
# every 0.1 s after, until it succeeds (true) or SECONDS (a whole number, 0:
# once) have passed (false).
poll_until() {
    local i n=$(($1 * 10))
    shift
    for ((i = 0; ; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        [ "$i" -lt "$n" ] || return 1
        sleep 0.1
    done
}

# wait_until SECONDS COMMAND...: poll_until, and dies when it times out.
wait_until() {
    poll_until "$@" || die "timed out waiting for: ${*:2}"
}

# wait_log FILE REGEX [SECONDS [PID]]: waits (10 s by default) for a line
# matching the extended regular expression REGEX in FILE; with PID, gives up
# as soon as PID has exited. Else prints the end of FILE and dies.
wait_log() {
    local why="timed out waiting for"
    poll_until "${3:-10}" logged_or_exited "$1" "$2" "${4:-}" || true
    grep -Eq -- "$2" "$1" 2>/dev/null && return 0
    [ -z "${4:-}" ] || running "$4" || why="pid $4 exited before"
    tail -n 40 "$1" >&2 2>/dev/null || true
    die "$why /$2/ in $1"
}
logged_or_exited() { grep -Eq -- "$2" "$1" || { [ -n "$3" ] && exited "$3"; }; }

# wait_port PORT [SECONDS]: until something listens on TCP PORT (10 s).
wait_port() {
    poll_until "${2:-10}" tcp_up "$1" || die "nothing listens on port $1 after ${2:-10} s"
}
# wait_socket PATH [SECONDS]: until PATH is a socket (10 s).
wait_socket() {
    poll_until "${2:-10}" unix_up "$1" || die "no socket $1 after ${2:-10} s"
}
# wait_file PATH [SECONDS]: until PATH exists (10 s).
wait_file() {
    poll_until "${2:-10}" test -e "$1" || die "no file $1 after ${2:-10} s"
}

# ---- processes

PIDS=()                      # the processes to stop at exit (proc_start adds them)
declare -gA PROC_GROUP=()    # pid -> 1: it leads a process group of its own
STOP_GRACE=${STOP_GRACE:-10} # seconds between SIGTERM and SIGKILL
STOP_KILLED=0                # proc_stop had to SIGKILL it
EXIT_STATUS=0                # wait_exit: the exit status

# proc_start [-g] [-a] LOG COMMAND...: runs COMMAND in the background, stdin
# /dev/null, stdout and stderr to the file LOG (-a: appended); its pid is in
# $LAST_PID and stopped at exit. -g: in a session and process group of its
# own (setsid: a Ctrl-C reaches only this script), which proc_stop signals
# as a whole, workers and forked children included.
proc_start() {
    local group=0 append=0
    while :; do
        case $1 in
        -g) group=1 ;;
        -a) append=1 ;;
        *) break ;;
        esac
        shift
    done
    local log=$1 run=()
    shift
    # setsid does not fork: not a group leader, this shell's child execs it
    [ "$group" = 0 ] || run=(setsid)
    # emptied here, not by the child: a wait_log right after must never read
    # the last run's lines, nor see them vanish under it
    [ "$append" = 1 ] || : >"$log"
    "${run[@]}" "$@" </dev/null >>"$log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    [ "$group" = 0 ] || PROC_GROUP[$LAST_PID]=1
}

# running PID: true while PID is alive: a zombie counts as exited, unless
# threads of it run on (its main thread exited: num_threads, the 18th field
# after the name in /proc/PID/stat, counts them and the zombie leader).
running() {
    local f
    read -r -a f < <(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    [ "${#f[@]}" -ge 18 ] && { [ "${f[0]}" != Z ] || [ "${f[17]}" -gt 1 ]; }
}
exited() { ! running "$1"; }

# execed PID: PID has exec'd its command, or is gone. A child forked for
# "cmd &" runs this script's bash until it execs cmd: a signal that bash
# catches in that window (to run the EXIT trap) is lost with the exec.
execed() {
    local -a its mine
    mapfile -d '' its 2>/dev/null </proc/"$1"/cmdline || return 0
    mapfile -d '' mine </proc/self/cmdline
    [ "${its[*]}" != "${mine[*]}" ]
}

# proc_signal PID SIGNAL: SIGNAL to PID, or to its whole process group when
# proc_start -g made it, once PID has exec'd its command.
proc_signal() {
    local target=$1
    poll_until 2 execed "$1" || true
    [ -z "${PROC_GROUP[$1]:-}" ] || target=-$1
    kill -"$2" -- "$target" 2>/dev/null || true
}

# proc_reap PID GRACE: waits GRACE seconds for PID to exit, SIGKILLs it after
# that (STOP_KILLED=1) and what is left of its group, reaps it and returns
# its exit status (127: not a child of this shell).
proc_reap() {
    local pid=$1 rc=0 i
    STOP_KILLED=0
    if ! poll_until "$2" exited "$pid"; then
        STOP_KILLED=1
        proc_signal "$pid" KILL
    fi
    [ -z "${PROC_GROUP[$pid]:-}" ] || kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || rc=$?
    unset "PROC_GROUP[$pid]"
    for i in "${!PIDS[@]}"; do
        [ "${PIDS[i]}" != "$pid" ] || unset "PIDS[i]"
    done
    return $rc
}

# proc_stop PID [GRACE [SIGNAL]]: SIGNAL (TERM) to PID (its group with -g),
# SIGKILL after GRACE seconds (STOP_GRACE); reaps it and returns its exit
# status. An empty PID is a no-op.
proc_stop() {
    [ -n "$1" ] || return 0
    proc_signal "$1" "${3:-TERM}"
    proc_reap "$1" "${2:-$STOP_GRACE}"
}

# proc_stop_all [GRACE]: proc_stop of every process still to stop, at once:
# SIGTERM to all, SIGKILL to those left after GRACE (STOP_GRACE) seconds.
proc_stop_all() {
    local p pids=("${PIDS[@]}")
    for p in "${pids[@]}"; do proc_signal "$p" TERM; done
    poll_until "${1:-$STOP_GRACE}" all_exited "${pids[@]}" || true
    for p in "${pids[@]}"; do proc_reap "$p" 0 || true; done
}
all_exited() {
    local p
    for p in "$@"; do running "$p" && return 1; done
    return 0
}

# wait_exit PID [SECONDS]: waits (10 s by default) for the child PID to exit
# and reaps it; its exit status is left in $EXIT_STATUS. Dies on timeout.
wait_exit() {
    poll_until "${2:-10}" exited "$1" || die "pid $1 still running after ${2:-10} s"
    EXIT_STATUS=0
    proc_reap "$1" 0 || EXIT_STATUS=$?
}
