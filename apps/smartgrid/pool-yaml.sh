#!/bin/sh
# pool-yaml.sh - the airlock pool that runs smartgrid-server instances: prints
# a `pools:` block for an airlock config (used by scripts/demo.sh and
# bench/standby.sh; a starting point for a deployment).
#
#   [POOL_UIDS=FIRST-LAST [POOL_GROUP=GID]] \
#   pool-yaml.sh BIN GRID STORE DIR PORTS MIN_IDLE MAX MAX_IDLE COOLDOWN [DOMAIN]
#
#   BIN      directory of smartgrid-server
#   GRID     smartgrid-provision's output (its ca.pem: the CA of the clients)
#   STORE    where the users' encrypted databases and their own server
#            certificates (USER.db, USER.crt, USER.key) rest between sessions
#   DIR      base of the instance directories
#   PORTS    FIRST-LAST, the instances' ports
#   DOMAIN   the names are <user>.grid.DOMAIN (default: example)
#   POOL_UIDS   one uid per instance from this range (recommended: instances
#               cannot reach each other, nothing they start outlives their
#               session; airlock runs as root); without it they run as
#               airlock's user
#   POOL_GROUP  with POOL_UIDS: the gid of every instance (default: gid = uid)
#   POOL_ADDR   the address the instances listen on and the directory hands
#               to the routers (default 127.0.0.1; a node's own address
#               when routers on other machines connect to them)
#   POOL_LAUNCHER  an argv prefix of the command, as a YAML flow list's
#               items (bench/standby.sh --launcher qemu: bench/qemu-instance.sh)
#   POOL_PROXY_UID  the uid of the routers on this machine (default: this
#               script's, the uid airlock runs as): an instance believes a
#               PROXY header from a local peer of that uid only, not from a
#               neighbouring instance (--proxy-uid); peers on other machines
#               are the network's to allow
#   POOL_START_TIMEOUT  the pool's start_timeout (default 10s)
#   POOL_SIM_ROOT  FILE: the instances attest with the sim provider signing
#               from this sim root (--attest-provider sim --sim-root FILE):
#               sim evidence, for demos and tests, not a security boundary
#
# The event rules match the server's lines; airlock's built-in provisioning
# (state:, docs/pool.md) copies a user's database between STORE and the
# instance directory, and brings the user's own server certificate and key
# in before it (the database's arrival tells the server the state is
# complete): the instances get no --cert, no certificate valid for another
# user is ever in an instance. The instances read the client's address
# from a PROXY v2 header (--accept-proxy v2: the handshake slots count by
# it, apps/smartgrid/README.md): every router that sends to the pool needs
# send_proxy: v2.
set -eu
attest=
[ -z "${POOL_SIM_ROOT:-}" ] || attest=", --attest-provider, sim, --sim-root, $POOL_SIM_ROOT"
[ $# -ge 9 ] || { echo "usage: $0 BIN GRID STORE DIR PORTS MIN_IDLE MAX MAX_IDLE COOLDOWN [DOMAIN]" >&2; exit 2; }
run_as=
[ -z "${POOL_LAUNCHER:-}" ] || run_as="
    launcher: [$POOL_LAUNCHER]"
if [ -n "${POOL_UIDS:-}" ]; then
    run_as="$run_as
    uids: $POOL_UIDS"
    [ -z "${POOL_GROUP:-}" ] || run_as="$run_as
    group: \"$POOL_GROUP\""
fi
cat <<YAML
pools:
  - name: grid
    command: [$1/smartgrid-server, --listen, "tcp:${POOL_ADDR:-127.0.0.1}:{port}", --dir, "{dir}",
              --ca, $2/ca.pem, --domain, ${10:-example}, --accept-proxy, v2,
              --proxy-uid, "${POOL_PROXY_UID:-$(id -u)}"$attest]
    endpoint: "tcp:${POOL_ADDR:-127.0.0.1}:{port}"
    ports: $5
    dir: $4$run_as
    min_idle: $6
    max: $7
    max_idle: $8
    cooldown: $9
    start_timeout: ${POOL_START_TIMEOUT:-10s}
    events:
      ready: "^WAITING_LOGIN$"
      login: "^LOGIN ([a-z0-9]+)$"
      logout: "^LOGOUT$"
    state:
      store: $3
      fetch_optional: ["{user}.crt", "{user}.key"]
      fetch: ["{user}.db"]
      store_back: ["{user}.db"]
      timeout: 10s
YAML
