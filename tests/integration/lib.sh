# lib.sh - shared helpers for integration tests; source it first.
#
# Each test is a bash script t_NAME.sh that proves one behaviour with real
# binaries on loopback (or in network namespaces it makes itself). Exit 0:
# pass; 77: skip (print "SKIP why" first); anything else: fail.
# $AIRLOCK is the binary under test (tests/check.sh sets it).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
AIRLOCK=${AIRLOCK:-$ROOT/build-test/airlock}
NETPEER=${NETPEER:-$(dirname "$AIRLOCK")/tests/netpeer}

# Starting, waiting and stopping are scripts/lib.sh's: free_port, free_ports,
# free_range, tcp_up, unix_up, wait_until, wait_log FILE REGEX [SECONDS [PID]],
# wait_port, wait_socket, wait_file, running, wait_exit PID [SECONDS] (status
# in $EXIT_STATUS), log, cleanup (the EXIT trap: every process started here
# is stopped, $T removed), at_exit. A test that sets its own EXIT trap calls
# cleanup from it.
DIE_PREFIX="FAIL: "
# SIGTERM, then SIGKILL only after this long: airlock drains its connections
# (drain_timeout, 30 s by default) and stops its pools first
STOP_GRACE=90
. "$ROOT/scripts/lib.sh"
scratch_dir T airlock-test "${T_KEEP:-}"
# a failed test shows the end of each log it made: CI keeps only its output
at_fail 'for f in "$T"/*.log; do [ ! -s "$f" ] || { echo "== ${f##*/}"; tail -n 12 "$f"; }; done >&2'

fail() { die "$@"; }
skip() {
    echo "SKIP $*"
    exit 77
}

# wait_for COMMAND...: retries for up to 10 s.
wait_for() { wait_until 10 "$@"; }

# start NAME COMMAND...: runs COMMAND in the background, output to $T/NAME.log;
# the pid is in $LAST_PID and stopped at exit.
start() {
    local name=$1
    shift
    proc_start "$T/$name.log" "$@"
}

# airlock NAME ARGS...: starts airlock ARGS... like start().
airlock() {
    local name=$1
    shift
    start "$name" "$AIRLOCK" "$@"
}

fd_count() { ls "/proc/$1/fd" | wc -l; }
# fds_at_most PID BASE: true once PID holds at most BASE fds (for poll_until).
fds_at_most() { [ "$(fd_count "$1")" -le "$2" ]; }

# need_field: skips the test when this airlock has no field encryption (the
# static build), which it says when asked to check a route that decrypts
# heads_backend PORT: an HTTP backend on 127.0.0.1:PORT that writes each
# request's head to a file $T/head.PID and answers 200 with no body.
heads_backend() {
    printf '#!/bin/sh\nsed -u "/^\\r\\?$/q" >"%s/head.$$"\nprintf "HTTP/1.1 200 OK\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n"\n' "$T" >"$T/heads.sh"
    chmod +x "$T/heads.sh"
    start heads socat TCP-LISTEN:"$1",bind=127.0.0.1,reuseaddr,fork EXEC:"$T/heads.sh"
    wait_port "$1"
}

# has_field: whether this build has field encryption (proxies:)
has_field() {
    # a file: airlock reads regular files only
    echo 'proxies: [{listen: "tcp:127.0.0.1:1", backend: "tcp:127.0.0.1:2", keyset: /k, routes: [{path: /, decrypt: true}]}]' >"$T/need_field.yaml"
    ! "$AIRLOCK" check -c "$T/need_field.yaml" 2>&1 | grep -q 'field encryption is not in this build'
}

need_field() {
    has_field || skip "this build has no field encryption"
}

# stop PID: SIGTERM and wait (SIGKILL after STOP_GRACE); returns the exit status.
stop() { proc_stop "$1"; }

# metric NAME LABELS PORT: one value from the metrics endpoint.
metric() {
    curl -sf "http://127.0.0.1:$3/metrics" | awk -v k="$1{$2}" '$1 == k { print $2 }'
}

# ---- process, log and stream helpers (t_reload, t_drain, t_dns_ttl, t_metrics)

# tcp_refused PORT [HOST]: true when a TCP connect is refused (not slow, not
# accepted).
tcp_refused() {
    local out
    out=$(timeout 3 bash -c "exec 3<>/dev/tcp/${2:-127.0.0.1}/$1" 2>&1) && return 1
    [[ $out == *refused* ]]
}

file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# gated_stream NAME PORT FILE GATE: a TCP server on 127.0.0.1:PORT that sends
# each client the first half of FILE at once and the rest only once the file
# GATE exists, then closes: a transfer that stays in flight until the test
# lets it finish. Forked handlers give up when $T disappears (cleanup).
gated_stream() {
    local half=$(($(stat -c %s "$3") / 2))
    cat >"$T/$1.sh" <<EOS
head -c $half '$3'
while [ ! -e '$4' ]; do [ -d '$T' ] || exit 1; sleep 0.05; done
tail -c +$((half + 1)) '$3'
EOS
    start "$1" socat TCP-LISTEN:"$2",bind=127.0.0.1,reuseaddr,fork SYSTEM:"sh '$T/$1.sh'"
    wait_port "$2"
}

# say_server NAME PORT TEXT [BIND]: a TCP server that writes TEXT to each client.
say_server() {
    start "$1" socat TCP-LISTEN:"$2",bind="${4:-127.0.0.1}",reuseaddr,fork SYSTEM:"echo $3"
}

# tls_origin NAME PORT: an openssl s_server on 127.0.0.1:PORT answering
# pages (-www), with a fresh self-signed certificate of CN=NAME
# ($T/NAME.crt and .key), started as s_NAME; returns once it listens.
tls_origin() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
        -subj "/CN=$1" -keyout "$T/$1.key" -out "$T/$1.crt" 2>/dev/null
    start "s_$1" openssl s_server -accept "127.0.0.1:$2" -cert "$T/$1.crt" -key "$T/$1.key" -www -quiet
    wait_for tcp_up "$2"
}

# size_at_least FILE BYTES: true once FILE holds at least BYTES (for wait_for).
size_at_least() { [ "$(file_size "$1")" -ge "$2" ]; }

# ---- data, relay and fd helpers (t_redis_chain, t_integrity_1gib, t_fd_storm, ...)

# gen_data SEED BYTES: a fast deterministic pseudo-random stream (AES-CTR of
# zeros keyed by SEED) on stdout; the same SEED gives the same bytes.
gen_data() {
    { openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass "pass:$1" -in /dev/zero 2>/dev/null || :; } |
        head -c "$2"
}

# sha256: the SHA-256 of stdin in hex (openssl uses the CPU's SHA instructions).
sha256() { openssl dgst -sha256 -r | cut -d' ' -f1; }

# relay_yaml FILE METRICS_PORT LISTEN_PORT TARGET_PORT [LINE...]: a config of
# one relay "echo" on loopback with its metrics listener; each LINE is added
# at the top level (drain_timeout: 60s, ...). (t_build_info, t_health, t_sd_notify)
relay_yaml() {
    local f=$1 m=$2 l=$3 t=$4
    shift 4
    {
        echo "metrics: tcp:127.0.0.1:$m"
        printf '%s\n' "$@"
        printf 'relays:\n  - name: echo\n    listen: tcp:127.0.0.1:%s\n' "$l"
        printf '    target: tcp:127.0.0.1:%s\n' "$t"
    } >"$f"
}

# airlock_up NAME ARGS...: airlock() and wait until it serves (its log says
# "airlock running"); its pid is in $LAST_PID.
airlock_up() {
    airlock "$@"
    wait_log "$T/$1.log" 'airlock running' 10 "$LAST_PID"
}

# airlock_nofile NAME N ARGS...: airlock_up with an open files limit of N
# (soft and hard; airlock raises the soft one to the hard one).
airlock_nofile() {
    local name=$1 n=$2
    shift 2
    start "$name" bash -c "ulimit -n $n && exec \"\$@\"" _ "$AIRLOCK" "$@"
    wait_log "$T/$name.log" 'airlock running' 10 "$LAST_PID"
}

# check_refuses FILE SED MESSAGE: `airlock check` refuses the config FILE
# edited by the sed expression SED, saying MESSAGE (a fixed string).
check_refuses() {
    sed "$2" "$1" >"$T/bad.yaml"
    "$AIRLOCK" check -c "$T/bad.yaml" >"$T/bad.out" 2>&1 && fail "airlock check took: $2"
    has -F "$3" <"$T/bad.out" || fail "airlock check said: $(cat "$T/bad.out")"
}

# stop_clean PID NAME: SIGTERM, and fail unless the process exits with 0
# (with the sanitizers, a leak or an error at exit makes it non-zero).
stop_clean() {
    local rc=0
    stop "$1" || rc=$?
    [ "$rc" = 0 ] || { tail -40 "$T/$2.log" >&2; fail "$2 exited with status $rc"; }
}

# ends LOG END: how many "close ... end=END" lines LOG holds.
ends() { grep -c "close relay=.* end=$2\$" "$1" || true; }

# wait_ends LOG END N: waits (10 s) until LOG holds exactly N such lines: a
# client sees its connection closed before the relay has logged the close.
wait_ends() {
    poll_until 10 ends_are "$@" || fail "$(ends "$1" "$2") lines 'end=$2' in $1, expected $3"
}
ends_are() { [ "$(ends "$1" "$2")" = "$3" ]; }

# fd_kinds PID: "sockets pipes other" counts of the open fds of PID.
fd_kinds() {
    local s=0 p=0 o=0 f l
    for f in /proc/"$1"/fd/*; do
        l=$(readlink "$f" 2>/dev/null) || continue
        case $l in
        socket:*) s=$((s + 1)) ;;
        pipe:*) p=$((p + 1)) ;;
        *) o=$((o + 1)) ;;
        esac
    done
    echo "$s $p $o"
}

# elapsed_ms START_NS: milliseconds since START_NS (from date +%s%N).
elapsed_ms() { echo $((($(date +%s%N) - $1) / 1000000)); }

# ---- namespaces (t_dns, t_ntp, t_dns_ttl, t_egress_*, t_logs_out, t_metrics_out)

# need TOOL...: skips the test unless every TOOL is installed.
need() {
    local m
    m=$(tools_missing "$@") || skip "$m not installed (scripts/deps.sh)"
}

# host_namespaces: runs this script again inside private network, mount and
# pid namespaces (the test's "host": everything started there dies with it)
# and exits with its status; skips unless root may create them. In that
# inner run it returns at once, with lo up.
host_namespaces() {
    if [ "${AIRLOCK_TEST_INNER:-}" = 1 ]; then
        ip link set lo up
        return 0
    fi
    is_root || skip "needs root for namespaces"
    local ns=(unshare --net --mount --pid --fork --mount-proc --propagation private) rc=0
    "${ns[@]}" true 2>/dev/null || skip "cannot create namespaces here"
    AIRLOCK_TEST_INNER=1 "${ns[@]}" bash "$0" || rc=$?
    exit $rc
}

# resolv_conf ATTEMPTS: bind-mounts a resolv.conf asking 127.0.0.1 (1 s
# timeout, ATTEMPTS tries) on /etc/resolv.conf; for host_namespaces only.
resolv_conf() {
    printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:%s\n' "$1" >"$T/resolv.conf"
    mount --bind "$T/resolv.conf" /etc/resolv.conf
}

# enclave_ns [SHELL]: starts the "enclave", a network and mount namespace
# with only lo (up), after running the shell commands SHELL in it; its pid
# is in $ENC_NS, and enc COMMAND... runs a command inside.
enclave_ns() {
    start enclave unshare --net --mount --propagation private bash -c "
    ip link set lo up && ${1:-true} && touch '$T/enclave.ready'
    exec sleep 1000"
    ENC_NS=$LAST_PID
    wait_file "$T/enclave.ready"
}
enc() { nsenter -t "$ENC_NS" -n -m -- "$@"; }

# loopback_netns PREFIX: creates the network namespace PREFIX-PID with only
# lo (up), named in $NS; it is deleted at exit.
loopback_netns() {
    NS=$1-$$
    ip netns add "$NS" 2>/dev/null || skip "cannot create network namespaces here"
    at_exit "ip netns del $NS 2>/dev/null || true"
    ip -n "$NS" link set lo up
}

# ---- pools (t_pool_*): tests/tools/fakeapp instances

FAKEAPP=${FAKEAPP:-$(dirname "$AIRLOCK")/tests/fakeapp}

# pool_setup: skips without ss or curl; sets MPORT (metrics), P0 (the first
# of 50 free ports for instances), CONF (the config file) and LOG (the log
# of airlock started as "al").
pool_setup() {
    need ss curl
    MPORT=$(free_port)
    P0=$(free_range 50)
    CONF=$T/pool.yaml
    LOG=$T/al.log
}

# pool_conf FILE FIRST_PORT [FAKEAPP_ARGS...]: writes a config with metrics
# on $MPORT, a memory directory, the control socket $T/ctl.sock and one
# pool "fa" of fakeapp instances on ports FIRST_PORT-+49,
# their directories under $T/inst, the smartgrid event rules; more pool
# settings (4-space indented YAML) come from stdin.
pool_conf() {
    local file=$1 port=$2 args="" a
    shift 2
    for a in "$@"; do args+=", \"$a\""; done
    {
        cat <<EOC
log_level: debug
metrics: tcp:127.0.0.1:$MPORT
drain_timeout: 10s
directory:
  backend: memory
control: unix:$T/ctl.sock
pools:
  - name: fa
    command: [$FAKEAPP, --port, "{port}"$args]
    endpoint: "tcp:127.0.0.1:{port}"
    ports: $port-$((port + 49))
    dir: $T/inst
    events:
      ready: "^WAITING_LOGIN$"
      login: "^LOGIN (.+)$"
      logout: "^LOGOUT$"
EOC
        cat
    } >"$file"
}

# pool_one_uid: pool_setup, then in $CONF a pool_conf of one instance at a
# time (min_idle 1, max 1) with two uids of its own, the first $U0
# (t_pool_userns, t_pool_reap_threads)
pool_one_uid() {
    pool_setup
    chmod 755 "$T" # the instances pass through to their directories
    U0=$(free_uids 2)
    pool_conf "$CONF" "$P0" <<EOC
    min_idle: 1
    max: 1
    uids: $U0-$((U0 + 1))
EOC
}

# redis_password: the test's redis password, in $T/redis.pw (mode 0600,
# made once: airlock's redis_password_file; one the instances of pools with uids
# can reach needs, docs/directory.md) and in $REDISCLI_AUTH (redis-cli sends it).
redis_password() {
    [ -s "$T/redis.pw" ] || (umask 077 && printf 'pw-%s\n' "$$$RANDOM$RANDOM" >"$T/redis.pw")
    export REDISCLI_AUTH
    REDISCLI_AUTH=$(cat "$T/redis.pw")
}

# redis_unix [NAME]: a redis-server on $T/redis.sock (no persistence), its
# log $T/NAME.log (default redis), that wants redis_password's password.
# Returns once it accepts connections.
redis_unix() {
    redis_password
    start "${1:-redis}" redis-server --port 0 --unixsocket "$T/redis.sock" --save '' \
        --appendonly no --requirepass "$REDISCLI_AUTH"
    wait_for unix_up "$T/redis.sock"
}

# redis_aof: redis_unix's redis, its data in an append-only file in $T/rdata
# (kept across a kill -9: started again, it has it all), its pid in $REDIS.
redis_aof() {
    redis_password
    mkdir -p "$T/rdata"
    rm -f "$T/redis.sock"
    start redis redis-server --port 0 --unixsocket "$T/redis.sock" --dir "$T/rdata" --save '' \
        --appendonly yes --appendfsync always --requirepass "$REDISCLI_AUTH"
    REDIS=$LAST_PID
    wait_for unix_up "$T/redis.sock"
}

# dir_settings FILE memory|redis [SETTING...]: the directory pool_conf wrote
# to FILE, on the memory backend or on redis_unix's (under a key prefix of
# this test's own), with each SETTING ("reserve_timeout: 1s")
dir_settings() {
    local file=$1 dir="  backend: memory" s
    [ "$2" = memory ] ||
        dir="  backend: redis\n  redis: unix:$T/redis.sock\n  redis_password_file: $T/redis.pw\n  prefix: \"t$$:\""
    shift 2
    for s in "$@"; do dir+="\n  $s"; done
    sed -i "s|^  backend: memory\$|$dir|" "$file"
}

# app PORT COMMAND [SECONDS]: sends one command line to the fakeapp on PORT
# and prints the first line of its answer (nothing when it closed first, or
# after SECONDS, 10 by default).
app() {
    timeout "${3:-10}" bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 && printf "%s\n" "$2" >&3 &&
        { IFS= read -r l <&3 && printf "%s\n" "$l"; } || true' _ "$1" "$2" 2>/dev/null
}

# free_uids N: the first of N consecutive uids that no account, group or
# process uses, for a pool's uids: (airlock kills every process of them).
# Random, so that tests running at once do not share them.
free_uids() {
    local u used
    used=$({ cut -d: -f3 /etc/passwd /etc/group; ps -eo ruid=,suid=; } | tr -s ' ' '\n')
    while :; do
        u=$((100000 + (RANDOM * 32768 + RANDOM) % 900000000))
        awk -v lo="$u" -v hi=$((u + $1 - 1)) '$1 >= lo && $1 <= hi { f = 1 } END { exit !f }' \
            <<<"$used" || { echo "$u"; return; }
    done
}

# fuse_stuck_up: a FUSE server of the test's (root) mounted at $MNT ($T/mnt)
# that reads the first question asked there and never answers it (its
# asker waits uninterruptibly: SIGKILL does not end it until the server is
# gone), $FUSE, logging to $T/fuse.log; $STUCK the program (--ask MNT asks).
fuse_stuck_up() {
    [ -c /dev/fuse ] || skip "no /dev/fuse"
    STUCK=$(dirname "$AIRLOCK")/tests/fuse_stuck
    [ -x "$STUCK" ] || fail "no $STUCK"
    MNT=$T/mnt
    start fuse "$STUCK" --serve "$MNT"
    FUSE=$LAST_PID
    at_exit "umount -l '$MNT'"
    # (not stat(): only the asker's question may reach the server)
    wait_for eval 'awk -v m="$MNT" "\$5 == m { f = 1 } END { exit !f }" /proc/self/mountinfo'
}

# uid_zombie_leaders UID: the zombie leaders of uid UID with threads running
# (their main thread exited, another runs on)
uid_zombie_leaders() {
    ps -eo pid=,ruid=,suid=,stat=,nlwp= | awk -v u="$1" '($2 == u || $3 == u) && $4 ~ /^Z/ && $5 > 1 { print $1 }'
}

# cg_own CONTROLLER: the test's (airlock's) cgroup directory in a v1 hierarchy
cg_own() { echo "/sys/fs/cgroup/$1$(sed -n "s/^[0-9]*:$1:\(\/*\)/\//p" /proc/self/cgroup | sed 's|/$||')"; }

# cg_gone DIR: no cgroup DIR any more
cg_gone() { [ ! -d "$1" ]; }

# cg_clean DIR...: what a failed run leaves: no fork in the cgroups
# DIR/airlock-fa-* any more (pids.max 0, where there is one), their processes
# killed until none is left (a fork loop's too), the cgroups removed
cg_clean() {
    local d c
    for d in "$@"; do
        for c in "$d"/airlock-fa-*; do
            [ -d "$c" ] || continue
            [ ! -f "$c/pids.max" ] || echo 0 >"$c/pids.max"
            for _ in $(seq 100); do
                [ -s "$c/cgroup.procs" ] || break
                xargs -r kill -9 <"$c/cgroup.procs" 2>/dev/null || true
                sleep 0.1
            done
            for _ in $(seq 50); do rmdir "$c" 2>/dev/null && break; sleep 0.1; done
        done
    done
}

# uid_procs UID: the pids of the live processes whose real or saved uid is
# UID (a zombie whose threads run on, its main thread gone, is one).
uid_procs() {
    ps -eo pid=,ruid=,suid=,stat=,nlwp= | awk -v u="$1" '($2 == u || $3 == u) && ($4 !~ /^Z/ || $5 > 1) { print $1 }'
}

# started_since N: the pids of the instances the log ($LOG) shows started
# after its first N lines (a uid, once its session's processes are gone and
# it is wiped, may serve a fresh instance: that one is no leftover).
started_since() { tail -n +"$(($1 + 1))" "$LOG" | sed -n 's/.* starting pid=\([0-9]*\) .*/\1/p'; }

# idle_port LOG: the port of one instance that the log shows idle (ready,
# no login, not stopping), or nothing.
idle_port() {
    awk '{ n = ""; for (i = 1; i <= NF; i++) if ($i ~ /^instance=/) n = substr($i, 10) }
        n != "" && / starting pid=/ { for (i = 1; i <= NF; i++) if ($i ~ /^port=/) p[n] = substr($i, 6) }
        n != "" && / ready ms=/ { idle[n] = 1 }
        n != "" && (/ login user=/ || / reserved user=/ || / stopping why=/ || / exited /) { delete idle[n] }
        END { for (n in idle) { print p[n]; exit } }' "$1"
}

# pid_of_port PORT: the pid of the instance the log ($LOG) shows started on PORT last.
pid_of_port() { sed -n "s/.* starting pid=\([0-9]*\) port=$1\$/\1/p" "$LOG" | tail -1; }

# pool_metric STATE: instances of pool fa in STATE (metrics on $MPORT).
pool_metric() { metric airlock_pool_instances "pool=\"fa\",state=\"$1\"" "$MPORT"; }

# metric_is NAME LABELS VALUE: true when the metric (on $MPORT) has VALUE.
metric_is() { [ "$(metric "$1" "$2" "$MPORT")" = "$3" ]; }

# settled N: pool fa has N idle instances and none starting (for wait_for).
settled() { metric_is airlock_pool_instances 'pool="fa",state="idle"' "$1" &&
    metric_is airlock_pool_instances 'pool="fa",state="starting"' 0; }

# grid_router: the routers: block of a pool_conf config, router grid on
# 127.0.0.1:$RPORT sending USER.grid.test to pool fa's directory.
grid_router() {
    printf 'routers:\n  - name: grid\n    listen: tcp:127.0.0.1:%s\n    directory: fa\n    domain: grid.test\n' "$RPORT"
}

# pool_echo_up ECHO: an echo server on 127.0.0.1:ECHO, and airlock ($AL) on
# $CONF at log level info (no debug line per connection: for the tests that
# time a relay while an instance attacks the loop), one instance idle.
pool_echo_up() {
    sed -i 's/^log_level: debug/log_level: info/' "$CONF"
    start echo socat TCP-LISTEN:"$1",bind=127.0.0.1,reuseaddr,fork PIPE
    airlock_up al run -c "$CONF"
    AL=$LAST_PID
    wait_for settled 1
    wait_for tcp_up "$1"
}

# ctl ARGS...: airlock ctl on the control socket of pool_conf.
ctl() { "$AIRLOCK" ctl -s "unix:$T/ctl.sock" "$@"; }

# assign_port USER [POOL]: reserves an instance of pool fa (or POOL) for USER
# the way a router does for USER's ClientHello (airlock ctl assign), so that
# the instance may log USER in (any other login is forged: killed); prints
# the instance's port.
assign_port() {
    local a
    a=$(ctl assign "${2:-fa}" "$1") || fail "airlock ctl assign ${2:-fa} $1 failed"
    echo "${a##*:}"
}

# pool_state_store: the users' state at rest for the provisioning tests
# (t_pool_state_builtin, t_pool_state_links): $T/store with dave's database,
# certificate and key and erin's and frank's databases, a root-only file
# $T/secret and a file $T/victim for planted links to aim at; and $U0, the
# first of 3 free uids for the pool
pool_state_store() {
    chmod 755 "$T"
    mkdir -p "$T/store"
    printf 'state-of-dave\n' >"$T/store/dave.db"
    printf 'cert-of-dave\n' >"$T/store/dave.crt"
    printf 'key-of-dave\n' >"$T/store/dave.key"
    printf 'state-of-erin\n' >"$T/store/erin.db"
    printf 'state-of-frank\n' >"$T/store/frank.db"
    printf 'root-secret\n' >"$T/secret"
    printf 'victim\n' >"$T/victim"
    chmod 600 "$T"/store/* "$T/secret" "$T/victim"
    U0=$(free_uids 3)
}

# GROWFILE: tests/tools/growfile.c, a FUSE file that holds more than its
# size says or is slow to read; growfile_reads N: what one of --holds N
# reads (N bytes of x)
GROWFILE=${GROWFILE:-$(dirname "$AIRLOCK")/tests/growfile}
growfile_reads() { printf "%0${1}d" 0 | tr 0 x; }

# growfile_umount: unmounts the growfiles (tests/tools/growfile.c) under $T,
# wherever the wipe moved them (t_pool_state_builtin, t_pool_state_set)
growfile_umount() {
    local m
    findmnt -rn -t fuse.growfile -o TARGET | grep "^$T/" | while read -r m; do umount -l "$m"; done
}

# pool_at PORT: the instance listening on PORT: $P (PORT), $DIR (its
# directory), $NAME
pool_at() {
    P=$1
    DIR=$(readlink "/proc/$(ss -Htlnp "sport = :$P" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)/cwd")
    NAME=$(basename "$DIR")
}

# pool_pick: an idle instance of pool fa: $P (its port), $DIR (its
# directory), $NAME, $UID_ (its uid)
pool_pick() {
    wait_for eval '[ -n "$(idle_port "$LOG")" ]'
    pool_at "$(idle_port "$LOG")"
    UID_=$(stat -c %u "$DIR")
}

# pool_assign USER: the directory reserves an instance of pool fa for USER
# (assign_port): $P (its port), $DIR (its directory), $NAME
pool_assign() { pool_at "$(assign_port "$1")"; }

# pool_reserve USER: the directory reserves the picked instance for USER (as
# a router would at USER's ClientHello; its state is brought in then)
pool_reserve() { [ "$(assign_port "$1")" = "$P" ] || fail "$1 was not reserved $NAME"; }

# dir_sessions: the directory's session count (metrics on $MPORT).
dir_sessions() { curl -sf "http://127.0.0.1:$MPORT/metrics" | awk '$1 == "airlock_dir_sessions" { print $2 }'; }

# no_zombies PID: true when no child of PID is a zombie.
no_zombies() { ! ps -o stat= --ppid "$1" | has Z; }

# ---- held clients (t_pool_preload, t_router_release, t_router_bounds, t_router_churn,
# t_router_holders, t_smartgrid_slots)

declare -A HOLD_FD=()

# held NAME COMMAND...: runs COMMAND in the background with its stdin on a
# FIFO that this shell keeps open until unhold NAME (a client then stays
# connected exactly that long); its output goes to $T/NAME.out, its pid to
# $LAST_PID. held_say
# NAME TEXT writes the line TEXT to its stdin.
held() {
    local name=$1 fd
    shift
    rm -f "$T/$name.in"
    mkfifo "$T/$name.in"
    : >"$T/$name.out" # here, not in the child: a wait right after never sees the last run's
    # without the others' FIFOs: a child holding one open would hold that client
    (
        for fd in "${HOLD_FD[@]}"; do eval "exec $fd>&-"; done
        exec "$@"
    ) <"$T/$name.in" >>"$T/$name.out" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    exec {fd}>"$T/$name.in"
    HOLD_FD[$name]=$fd
}
held_say() { printf '%s\n' "$2" >&"${HOLD_FD[$1]}"; }
unhold() {
    eval "exec ${HOLD_FD[$1]}>&-"
    unset "HOLD_FD[$1]"
}

# hold NAME PORT SNI [--bind ADDR] [--proxy SRC]: a client that sends a
# ClientHello for SNI to 127.0.0.1:PORT and holds the connection
# (tests/tools/hello_hold.py): what the peer sends, and "eof", go to
# $T/NAME.out; hold_send NAME TEXT sends the line TEXT after the hello.
hold() {
    local name=$1
    shift
    held "$name" python3 "$ROOT/tests/tools/hello_hold.py" "$@"
    wait_log "$T/$name.out" '^hello sent$'
}
hold_send() { held_say "$1" "send $2"; }

# ---- docs (t_docs, t_doc_nitro): the fenced examples of a page

# doc_blocks PAGE DIR: writes each fenced block of PAGE in sh, bash, console
# or yaml to DIR/N.LANG (N counts them from 1 in page order) and a line
# "N LANG LINE NOTE" to DIR/index: LINE the fence's, NOTE "-", or the text
# of a "<!-- not run: REASON -->" (an example that cannot run here) or
# "<!-- fragment: KEY -->" (YAML of a block, not a file) comment on the last
# line before the fence that is not empty.
doc_blocks() {
    mkdir -p "$2"
    : >"$2/index"
    awk -v dir="$2" '
        /^```/ && in_block { in_block = 0; if (f != "") close(f); f = ""; next }
        /^```/ {
            in_block = 1; lang = substr($0, 4)
            if (lang !~ /^(sh|bash|console|yaml)$/) next
            n++; f = dir "/" n "." lang; printf "" >f
            why = "-"
            if (prev ~ /^<!-- (not run|fragment): .* -->$/) { why = prev; sub(/^<!-- /, "", why); sub(/ -->$/, "", why) }
            print n, lang, NR, why >>(dir "/index")
            next
        }
        in_block { if (f != "") print >f; next }
        $0 != "" { prev = $0 }' "$1"
}
