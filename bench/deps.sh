#!/bin/sh
# bench/deps.sh - install what bench/relay.sh needs (Debian 12). Idempotent:
# installs only the packages that are missing. Runs apt-get as root, or
# through sudo when not root.
#   peers:      haproxy, nginx + libnginx-mod-stream, socat
#   load/peers: iperf3, redis-server, redis-tools, wrk
#   helpers:    a C compiler (build-essential) for bench/benchtool.c,
#               meson + ninja for airlock itself
#   vsock VM:   qemu-system-x86, linux-image-amd64, busybox-static, cpio, kmod, xz-utils
#   misc:       procps (ps/pgrep), linux-perf (profiles)
set -eu

PKGS="build-essential meson ninja-build pkg-config libyaml-dev
haproxy nginx libnginx-mod-stream socat iperf3 redis-server redis-tools wrk
procps psmisc linux-perf
qemu-system-x86 linux-image-amd64 busybox-static cpio kmod xz-utils"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "bench/deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
# The Debian packages start system-wide daemons; the benchmark runs its own
# instances on private ports, so stop the packaged ones (if systemd runs them).
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    for s in haproxy nginx redis-server; do
        $SUDO systemctl disable --now "$s" >/dev/null 2>&1 || true
    done
fi
