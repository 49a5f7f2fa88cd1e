#!/bin/bash
# t_pool_config: `airlock check -c` and `airlock run -c` refuse broken pools:
# settings with file:line and key (a regex that does not compile, a login
# rule without a capture group, an unknown placeholder, sizes that
# contradict each other), a run-as user unknown on this machine and a pool
# without a directory: block (its logins could not be checked); a valid pool
# passes check.
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
log "ok"
