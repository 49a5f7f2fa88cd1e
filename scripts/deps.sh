#!/bin/sh
# deps.sh [PACKAGE...] - install what building, testing and the demo need
# (Debian 12), plus the packages named (bench/deps.sh names its own).
# Idempotent: installs only packages that are missing. Runs apt-get as root,
# or through sudo when not root.
set -eu

PKGS="build-essential meson ninja-build pkg-config clang clang-format libclang-rt-14-dev
libyaml-dev libcmocka-dev libhttp-parser-dev libhiredis-dev libssl-dev libsqlcipher-dev
libcjson-dev libcbor-dev libfuse3-dev fuse3 sqlcipher
redis-server redis-tools openssl curl socat iperf3 iproute2 procps psmisc dnsmasq-base
bind9-dnsutils chrony
valgrind nginx iptables python3 python3-yaml xxd haproxy
qemu-system-x86 linux-image-amd64 busybox-static cpio kmod xz-utils
debhelper dpkg-dev fakeroot lintian man-db podman runc
$*"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# promtool (`promtool check metrics`, t_build_info.sh) comes only in Debian's
# prometheus package, whose postinst would start a Prometheus server on every
# address: the tool alone is unpacked from the package, never installed.
PROMTOOL_DIR=/opt/airlock-test/bin
promtool_get() {
    command -v promtool >/dev/null || [ -x "$PROMTOOL_DIR/promtool" ] && return 0
    tmp=$(mktemp -d)
    # (apt warns that root downloads into a directory _apt cannot write)
    if (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1) &&
        dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -xOf - ./usr/bin/promtool >"$tmp/promtool" &&
        $SUDO install -D -m 0755 "$tmp/promtool" "$PROMTOOL_DIR/promtool"; then
        echo "deps: promtool unpacked into $PROMTOOL_DIR" >&2
    else
        echo "deps: could not unpack promtool from the prometheus package" >&2
    fi
    rm -rf "$tmp"
}

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && { promtool_get; exit 0; }

echo "deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
promtool_get
