#!/bin/bash
# t_pool_config: `airlock check -c` and `airlock run -c` refuse broken pools:
# settings with file:line and key (a regex that does not compile, a login
# rule without a capture group, an unknown placeholder, sizes that
# contradict each other), a run-as user unknown on this machine, a uids range
# holding the uid of an account or the gid of a group of this machine, a
# group that does not exist or is root's, a pool without a directory:
# block (its logins could not be checked), a state store that is missing or
# not a directory, or that others than airlock's user and root may change
# (mode 0777, another uid's, under a parent of mode 0777 without the sticky
# bit, reached through a link), a state max_file_size out of bounds, a
# max_session_size below max_file_size; a redis directory that the
# instances of a pool with uids could connect to, without a password (a tcp
# one, an abstract or a unix socket they may pass to and write, or one not
# there yet where they could be), or sentinels without theirs; a valid
# pool passes check (a store under a sticky parent, as /tmp, too; a unix
# redis socket out of the instances' reach without a password).
. "$(dirname "$0")/lib.sh"

cd "$T" || exit 1
head='pools:
  - name: grid
    command: [/bin/sleep, "100", "{port}"]
    endpoint: "tcp:127.0.0.1:{port}"
    ports: 20000-20009
    dir: /tmp/airlock-pool-config-never-made'
directory='directory:
  backend: memory'

# refused NAME EXPECTED YAML_TAIL [DIRECTORY]: check and run fail with
# EXPECTED (a prefix); the directory: block goes last (the line numbers of
# the pool stay), none when DIRECTORY is "none"
refused() {
    local d=$directory
    [ "${4:-}" != none ] || d=
    printf '%s\n%s\n%s\n' "$head" "$3" "$d" >"$1.yaml"
    for cmd in check run; do
        local rc=0
        timeout 10 "$AIRLOCK" "$cmd" -c "$1.yaml" >out 2>&1 || rc=$?
        [ "$rc" = 1 ] || fail "$1 ($cmd): exit $rc: $(cat out)"
        [[ $(cat out) == "airlock: $1.yaml$2"* ]] || fail "$1 ($cmd): got '$(cat out)', expected '$2...'"
    done
}

events='    events:
      ready: "^WAITING_LOGIN$"
      login: "^LOGIN (.+)$"'
printf '%s\n%s\n%s\n' "$head" "$events" "$directory" >valid.yaml
[ "$("$AIRLOCK" check -c valid.yaml)" = "valid.yaml: ok (0 relays, 1 pools, directory memory)" ] ||
    fail "valid: $("$AIRLOCK" check -c valid.yaml 2>&1)"
[ ! -e /tmp/airlock-pool-config-never-made ] || fail "check made the pool directory"

refused regex ":8: pools[0].events.ready: expected a POSIX extended regular expression" '    events:
      ready: "[a-"
      login: "(.+)"'
refused group ":9: pools[0].events.login: expected a capture group for the user" '    events:
      ready: x
      login: "LOGIN .+"'
refused placeholder ":11: pools[0].provision.command[1]: unknown placeholder" "$events
    provision:
      command: [fetch, \"{usre}\"]"
refused sizes ":11: pools[0].max_idle: expected from min_idle (3) to max (10)" "$events
    min_idle: 3
    max_idle: 2"
refused user ": pools[0].user: no such user 'no-such-user-here'" "$events
    user: no-such-user-here"
refused nodirectory ":1: pools: expected a directory: block too" "$events" none
refused store-missing ": pools[0].state.store: expected a directory, not $T/no-such-store (No such file or directory)" "$events
    state: {store: $T/no-such-store, fetch: [\"{user}.db\"]}"
[ ! -e "$T/no-such-store" ] || fail "check or run made the store"
: >"$T/a-file"
refused store-file ": pools[0].state.store: expected a directory, not $T/a-file (Not a directory)" "$events
    state: {store: $T/a-file}"
owned="expected a directory owned by airlock's user (uid $(id -u)) and writable by it only"
mkdir -m 0777 "$T/store-0777"
chmod 0777 "$T/store-0777" # past the umask
refused store-mode ": pools[0].state.store: $T/store-0777: $owned, not a directory of uid $(id -u), mode 0777" "$events
    state: {store: $T/store-0777}"
if [ "$(id -u)" = 0 ]; then
    OTHER=$(free_uids 1)
    mkdir -m 0700 "$T/store-other"
    chown "$OTHER" "$T/store-other"
    refused store-owner ": pools[0].state.store: $T/store-other: $owned, not a directory of uid $OTHER, mode 0700" "$events
    state: {store: $T/store-other}"
fi
mkdir -m 0700 -p "$T/open/store"
chmod 0777 "$T/open"
refused store-parent ": pools[0].state.store: $T/open/store: its parent $T/open (uid $(id -u), mode 0777) may be changed by others than airlock's user and root" "$events
    state: {store: $T/open/store}"
ln -s "$T/open" "$T/link"
refused store-link ": pools[0].state.store: $T/link/store: expected an absolute path without symbolic links" "$events
    state: {store: $T/link/store}"
chmod 1777 "$T/open" # as /tmp: others cannot rename what they do not own
printf '%s\n%s\n    state: {store: %s}\n%s\n' "$head" "$events" "$T/open/store" "$directory" >sticky.yaml
"$AIRLOCK" check -c sticky.yaml >out 2>&1 || fail "a store under a sticky parent: $(cat out)"
for v in 0 2048GiB 1TiB; do
    refused "size-$v" ":12: pools[0].state.max_file_size: expected a size from 1B to 1024GiB" "$events
    state:
      store: $T
      max_file_size: $v"
done
refused session-below-file ":2: pools[0].state.max_session_size: expected at least max_file_size (2097152 bytes)" "$events
    state:
      store: $T
      max_file_size: 2MiB
      max_session_size: 1MiB"
ROOT_GROUP=$(getent group 0 | cut -d: -f1)
refused uids-account ": pools[0].uids: 65530-65539 holds uid 65534 of user 'nobody'" "$events
    uids: 65530-65539"
refused uids-root-group ": pools[0].group: expected a group other than root's, not '$ROOT_GROUP'" "$events
    uids: 70000-70009
    group: $ROOT_GROUP"
refused uids-no-group ": pools[0].group: no such group 'no-such-group-here'" "$events
    uids: 70000-70009
    group: no-such-group-here"
if [ "$(id -u)" = 0 ] && command -v groupadd >/dev/null; then
    G=$(free_uids 10)
    GROUP=tpcfg$$
    groupadd -g "$((G + 5))" "$GROUP"
    trap 'groupdel "$GROUP"; cleanup' EXIT
    refused uids-group ": pools[0].uids: $G-$((G + 9)) holds gid $((G + 5)) of group '$GROUP' (instances run with gid = uid)" "$events
    uids: $G-$((G + 9))"
fi

log "a redis directory the instances can reach needs passwords"
U0=$(free_uids 10)
uids="$events
    uids: $U0-$((U0 + 9))"
reach=": directory.redis_password_file: expected one: the instances of pools[0] can reach"
redis() { directory=$(printf 'directory:\n  backend: redis\n%s' "$1"); }
redis "  redis: tcp:127.0.0.1:6379"
refused redis-tcp "$reach tcp:127.0.0.1:6379 (one could rewrite where the router sends other users)" "$uids"
redis "  redis: unix:@airlock-redis"
refused redis-abstract "$reach unix:@airlock-redis" "$uids"
mkdir -m 0755 rsock rsock-closed && chmod 0700 rsock-closed && chmod 0755 "$T"
redis "  redis: unix:$T/rsock/redis.sock"
refused redis-not-there "$reach unix:$T/rsock/redis.sock" "$uids"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/rsock/redis.sock"
chmod 0777 rsock/redis.sock
refused redis-writable "$reach unix:$T/rsock/redis.sock" "$uids"
redis "  sentinels: [tcp:127.0.0.1:26379]
  sentinel_master: m"
refused sentinels-no-redis-pw "$reach the master the sentinels name" "$uids"
redis "  sentinels: [tcp:127.0.0.1:26379]
  sentinel_master: m
  redis_password_file: $T/redis.pw"
refused sentinels-no-pw ": directory.sentinel_password_file: expected one: the instances of pools[0] can reach the sentinel tcp:127.0.0.1:26379 (one could have it name a master of its own and read redis's password there)" "$uids"
# out of their reach: a socket they may not write, one in a directory they may not pass
chmod 0755 rsock/redis.sock
for sock in "$T/rsock/redis.sock" "$T/rsock-closed/redis.sock"; do
    printf '%s\n%s\ndirectory:\n  backend: redis\n  redis: unix:%s\n' "$head" "$uids" "$sock" >unreached.yaml
    "$AIRLOCK" check -c unreached.yaml >out 2>&1 || fail "a redis socket out of the instances' reach ($sock): $(cat out)"
done
log "ok"
