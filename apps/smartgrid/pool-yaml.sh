#!/bin/sh
# pool-yaml.sh - the airlock pool that runs smartgrid-server instances: prints
# a `pools:` block for an airlock config (used by scripts/demo.sh and
# bench/standby.sh; a starting point for a deployment).
#
#   pool-yaml.sh BIN GRID STORE DIR PORTS MIN_IDLE MAX MAX_IDLE COOLDOWN [DOMAIN]
#
#   BIN      directory of smartgrid-server
#   GRID     smartgrid-provision's output (its ca.pem: the CA of the clients)
#   STORE    where the users' encrypted databases and their own server
#            certificates (USER.db, USER.crt, USER.key) rest between sessions
#   DIR      base of the instance directories
#   PORTS    FIRST-LAST, the instances' ports
#   DOMAIN   the names are <user>.grid.DOMAIN (default: example)
#
# The event rules match the server's lines; the hooks move a user's
# database between STORE and the instance directory (state-hook.sh), and
# bring the user's own server certificate in with it: the instances get no
# --cert, no certificate valid for another user is ever in an instance.
set -eu
[ $# -ge 9 ] || { echo "usage: $0 BIN GRID STORE DIR PORTS MIN_IDLE MAX MAX_IDLE COOLDOWN [DOMAIN]" >&2; exit 2; }
hook=$(cd "$(dirname "$0")" && pwd)/state-hook.sh
cat <<YAML
pools:
  - name: grid
    command: [$1/smartgrid-server, --listen, "tcp:127.0.0.1:{port}", --dir, "{dir}",
              --ca, $2/ca.pem, --domain, ${10:-example}]
    endpoint: "tcp:127.0.0.1:{port}"
    ports: $5
    dir: $4
    min_idle: $6
    max: $7
    max_idle: $8
    cooldown: $9
    start_timeout: 10s
    events:
      ready: "^WAITING_LOGIN$"
      login: "^LOGIN ([a-z0-9]+)$"
      logout: "^LOGOUT$"
    provision:
      command: [$hook, fetch, $3, "{user}", "{dir}"]
      timeout: 10s
    deprovision:
      command: [$hook, store, $3, "{user}", "{dir}"]
      timeout: 10s
YAML
