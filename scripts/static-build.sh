#!/bin/bash
# static-build.sh - builds airlock linked statically into build-static/
# (meson -Dstatic=true: no libcbor.a or libcjson.a in Debian, so without
# `airlock attest` and `airlock field`) and prints the binary's path.
# Used by the vsock test VM (tests/vm/run.sh) and the container image
# (scripts/container.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=$ROOT/build-static
ERR=$(mktemp)
trap 'rm -f "$ERR"' EXIT
if [ ! -f "$B/build.ninja" ]; then
    meson setup "$B" "$ROOT" -Dstatic=true -Dtests=false >"$ERR" 2>&1 || {
        cat "$ERR" >&2
        echo "static-build.sh: meson setup of the static build failed" >&2
        exit 1
    }
fi
ninja -C "$B" airlock >"$ERR" 2>&1 || {
    tail -n 40 "$ERR" >&2
    echo "static-build.sh: the static airlock build failed" >&2
    exit 1
}
if LC_ALL=C ldd "$B/airlock" >/dev/null 2>&1; then
    echo "static-build.sh: $B/airlock is not statically linked" >&2
    exit 1
fi
echo "$B/airlock"
