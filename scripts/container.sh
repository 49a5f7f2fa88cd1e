#!/bin/bash
# container.sh - builds the airlock container image from scratch around the
# static build (deploy/container/Containerfile).
#
#   scripts/container.sh [TAG]     (default airlock:VERSION)
#
# CONTAINER picks the tool (podman by default; docker and buildah take the
# same arguments).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOL=${CONTAINER:-podman}
command -v "$TOOL" >/dev/null || { echo "container.sh: $TOOL not installed" >&2; exit 1; }
bin=$("$ROOT/scripts/static-build.sh")
tag=${1:-airlock:$("$bin" --version | awk '{ print $2 }')}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$bin" "$ctx/airlock"
cp "$ROOT/dist/airlock.yaml" "$ctx/airlock.yaml"
"$TOOL" build -q -f "$ROOT/deploy/container/Containerfile" -t "$tag" "$ctx" >/dev/null
echo "$tag"
