#!/bin/sh
# state-hook.sh - the pool's provisioning hooks for smartgrid, by path:
#
#   state-hook.sh fetch STORE USER DIR   STORE/USER.crt .key .db -> DIR
#   state-hook.sh store STORE USER DIR   DIR/USER.db -> STORE/USER.db
#
# It runs smartgrid-state (apps/smartgrid/state.c), which does the work: the
# hook runs as root in a directory the instance controls, where a shell
# cannot open files without following what the instance planted (see
# docs/pool.md, "Hooks contract"). smartgrid-state is $SMARTGRID_STATE, else
# the one in PATH, else this tree's build (build/, then build-test/).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
for tool in "${SMARTGRID_STATE:-}" "$(command -v smartgrid-state || true)" \
    "$root/build/smartgrid-state" "$root/build-test/smartgrid-state"; do
    [ -n "$tool" ] && [ -x "$tool" ] && exec "$tool" "$@"
done
echo "$0: smartgrid-state not found (build it: make)" >&2
exit 1
