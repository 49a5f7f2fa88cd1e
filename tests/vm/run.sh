#!/bin/bash
# run.sh - the real-vsock integration test (called by `make check`).
#
#   usage: tests/vm/run.sh [--relay=airlock|socat]
#
# Builds a static airlock (build-static/) and the static test peer vmpeer,
# then boots a throw-away qemu guest (tests/vm/vm.sh) that runs
# tests/vm/vsock_chain.sh: a TCP -> vsock -> TCP chain of two relays, tested
# for data integrity, half-close, resets, survival, fd leaks and SIGTERM; then a
# udp -> vsock -> udp datagram relay pair and log forwarding over vsock.
# AF_VSOCK is only ever used inside the guest, never on this machine.
#
# --relay=socat runs the same chain with socat as both relays (checks the test
# itself; needs no airlock build).
#
# Exit: 0 pass, 1 fail, 77 skip (the VM cannot start here: no qemu, no guest
# kernel with vsock_loopback, ...), with "SKIP vsock: <reason>".
#
# Environment: AIRLOCK_VM_LOG_LEVEL [info], AIRLOCK_VM_BYTES [33554432 each
# way], CC [cc], and the VM_* knobs of tests/vm/vm.sh (VM_CACHE defaults to
# /tmp/airlock-vm-cache, VM_TIMEOUT here to 300 s).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RELAY=airlock
for arg in "$@"; do
  case $arg in
    --relay=airlock|--relay=socat) RELAY=${arg#--relay=} ;;
    *) sed -n '2,20p' "$0" >&2; exit 2 ;;
  esac
done
LOG_LEVEL=${AIRLOCK_VM_LOG_LEVEL:-info}
BYTES=${AIRLOCK_VM_BYTES:-33554432}
export VM_TIMEOUT=${VM_TIMEOUT:-300}

skip() { echo "SKIP vsock: $*"; exit 77; }
die() { echo "FAIL vsock: $*"; exit 1; }

# Cheap checks first, so a machine that cannot run the VM skips at once.
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (scripts/deps.sh)"
ls /lib/modules/*/kernel/net/vmw_vsock/vsock_loopback.ko* >/dev/null 2>&1 ||
  skip "no kernel with vsock_loopback in /lib/modules (apt-get install linux-image-amd64)"

BIN_DIR=$(mktemp -d /tmp/airlock-vm-bin.XXXXXX)
ERR=$BIN_DIR.err
trap 'rm -rf "$BIN_DIR" "$ERR"' EXIT

# ---------------------------------------------------------------- build
CC=${CC:-cc}
"$CC" -std=c17 -O2 -Wall -Wextra -static -o "$BIN_DIR/vmpeer" "$HERE/vmpeer.c" ||
  die "could not build tests/vm/vmpeer.c statically"

if [ "$RELAY" = airlock ]; then
  static=$("$ROOT/scripts/static-build.sh") || die "no static airlock"
  cp "$static" "$BIN_DIR/"
  EXTRA_DYN=
else
  command -v socat >/dev/null || skip "socat not installed (scripts/deps.sh)"
  EXTRA_DYN=socat
fi

# ---------------------------------------------------------------- run
echo "vsock: booting the test VM (relays: $RELAY)"
start=$(date +%s)
set +e
VM_EXTRA_DYN="$EXTRA_DYN" "$HERE/vm.sh" "$BIN_DIR" "$HERE/vsock_chain.sh" \
  "$RELAY" "$LOG_LEVEL" "$BYTES" 2>"$ERR"
rc=$?
set -e
took=$(( $(date +%s) - start ))

case $rc in
  0)   echo "vsock: PASS in ${took}s" ;;
  77)  exit 77 ;;                       # the guest printed its SKIP line
  126) reason=$(grep -m1 '^vm.sh:' "$ERR" | sed 's/^vm.sh: //' || true)
       skip "${reason:-the VM could not start (tests/vm/vm.sh setup error)}" ;;
  124) cat "$ERR" >&2; die "the VM timed out after ${VM_TIMEOUT}s" ;;
  125) cat "$ERR" >&2; die "the guest died without an exit status" ;;
  *)   cat "$ERR" >&2; echo "vsock: FAIL (status $rc) in ${took}s"; exit 1 ;;
esac
