#!/bin/bash
# qemu-instance.sh - runs one program in its own small qemu guest: the
# enclave-like instance of bench/standby.sh --launcher qemu (an airlock pool
# `launcher:`, or a prefix of the command for Trivial and On-demand).
#
#   usage: bench/qemu-instance.sh [--prepare] PROGRAM ARG...
#
#   PROGRAM   a host dynamic binary (smartgrid-server): baked, with its ldd
#             libraries, busybox and the virtio modules, into an initramfs
#             built once per PROGRAM content and cached; the guest kernel is
#             the host's /boot one, booted PVH (its vmlinux extracted once)
#   ARG...    passed unchanged, except:
#             --listen tcp:HOST:PORT  the guest listens on tcp:0.0.0.0:PORT,
#                 reached from HOST:PORT through qemu user networking with
#                 restrict=on (the guest has no way out; no other NIC)
#             an absolute path that exists: a directory is shared into the
#                 guest read-write at the same path (virtio-9p), a file's
#                 directory read-only (the pool's {dir}: whatever lands in it
#                 on the host is there in the guest; smartgrid-server polls
#                 a 9p --dir, inotify cannot see the host's writes)
#   --prepare builds the kernel and the image into the cache and exits
#
# The program's stdout is qemu's stdout (ttyS1, raw: no \r), its stderr
# qemu's stderr (ttyS2); the kernel console (ttyS0) goes to
# $QEMU_INSTANCE_CONSOLE (default /dev/null). When the program exits, the
# guest syncs, unmounts the shares and powers off, and qemu exits with it.
# The script execs qemu, so SIGTERM to it (or its process group) stops the
# guest; nothing is left behind (no per-instance files).
#
#   environment (defaults in brackets):
#     QEMU_INSTANCE_MEM    guest RAM [96M]   QEMU_INSTANCE_TB  TCG code cache MiB [32]
#     QEMU_INSTANCE_CACHE  [/tmp/airlock-qemu-instance]
#     QEMU_INSTANCE_KVER   guest kernel [newest /boot/vmlinuz-* with 9p modules]
#
# 1 vCPU, TCG (this machine's /dev/kvm cannot boot an unmodified kernel),
# -nodefaults, no graphics, no vsock device of any kind.
# Host packages (bench/deps.sh): qemu-system-x86 linux-image-amd64 busybox-static cpio kmod xz-utils
set -euo pipefail

die() {
    echo "qemu-instance: $*" >&2
    exit 2
}
PREPARE=
[ "${1:-}" = --prepare ] && { PREPARE=1 && shift; }
[ $# -ge 1 ] || die "usage: qemu-instance.sh [--prepare] PROGRAM ARG..."
PROG=$(command -v "$1") || die "$1: not found"
PROG=$(readlink -f "$PROG")
shift
MEM=${QEMU_INSTANCE_MEM:-96M}
TB=${QEMU_INSTANCE_TB:-32}
CACHE=${QEMU_INSTANCE_CACHE:-/tmp/airlock-qemu-instance}
mkdir -p "$CACHE"

# ---- the kernel: PVH direct boot of the uncompressed vmlinux (skips the
# bzImage's decompressor: about 40 % faster under TCG)
KVER=${QEMU_INSTANCE_KVER:-$(for m in /lib/modules/*; do
    v=${m##*/}
    [ -e "/boot/vmlinuz-$v" ] && [ -n "$(find "$m" -name '9pnet_virtio.ko*' | head -1)" ] && echo "$v"
done | sort -V | tail -1)}
if [ -z "$KVER" ] || [ ! -e "/boot/vmlinuz-$KVER" ]; then
    die "no guest kernel (apt-get install linux-image-amd64)"
fi
KERNEL=$CACHE/vmlinux-$KVER
if [ ! -s "$KERNEL" ]; then
    bz=/boot/vmlinuz-$KVER
    off=$(LC_ALL=C grep -abo $'\xfd7zXZ\x00' "$bz" | head -1 | cut -d: -f1 || true)
    # (tail gets SIGPIPE when xz stops after the first stream)
    [ -z "$off" ] || { tail -c +$((off + 1)) "$bz" | xz -dc --single-stream >"$KERNEL.$$" 2>/dev/null || true; }
    if [ -s "$KERNEL.$$" ] && readelf -n "$KERNEL.$$" 2>/dev/null | grep -q Xen; then
        mv "$KERNEL.$$" "$KERNEL"
    else
        rm -f "$KERNEL.$$"
        KERNEL=$bz
    fi
fi

# ---- the image: busybox, the modules, PROGRAM (at its host path) and its
# libraries; the init script runs the command the kernel command line
# carries (base64), so a guest needs no file of its own
resolve() { # depth first: a module's dependencies before it, into $ORDER
    local d
    case " $SEEN " in *" $1 "*) return ;; esac
    SEEN="$SEEN $1"
    for d in $(modinfo -k "$KVER" -F depends "$1" | tr ',' ' '); do resolve "$d"; done
    ORDER="$ORDER $1"
}
SEEN="" ORDER=""
for m in virtio_pci virtio_net 9pnet_virtio 9p; do resolve "$m"; done
# shellcheck disable=SC2016 # the guest's script, expanded there
INIT='#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/tmp
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /etc/modules); do insmod /lib/modules/$m.ko || echo "guest: insmod $m failed"; done
ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0
stty -F /dev/ttyS1 raw -echo
stty -F /dev/ttyS2 raw -echo
sed -n "s/.*airlock_run=\([^ ]*\).*/\1/p" /proc/cmdline | base64 -d >/tmp/run
sh /tmp/run </dev/null >/dev/ttyS1 2>/dev/ttyS2
echo "guest: exit $?"
sync
umount -a -r -t 9p 2>/dev/null
poweroff -f
'
KEY=$({
    echo "$KVER $ORDER $PROG"
    echo "$INIT"
    sha1sum /bin/busybox "$PROG"
} | sha1sum | cut -c1-12)
IMAGE=$CACHE/image-$KEY.cpio.gz
if [ ! -s "$IMAGE" ]; then
    R=$(mktemp -d "$CACHE/root.XXXXXX")
    trap 'rm -rf "$R" "$IMAGE.$$"' EXIT # a failed build leaves nothing half-made behind
    # /tmp stays part of the image (writable, in memory): a tmpfs there would hide
    # a program or library copied in from under /tmp
    mkdir -p "$R"/{bin,sbin,etc,proc,sys,dev,tmp,lib/modules}
    cp /bin/busybox "$R/bin/"
    for a in $("$R/bin/busybox" --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
    for m in $ORDER; do
        f=$(modinfo -k "$KVER" -F filename "$m")
        case $f in # busybox insmod wants a plain .ko
        *.ko.xz) xz -dc "$f" >"$R/lib/modules/$m.ko" ;;
        *.ko.zst) zstd -dcq "$f" >"$R/lib/modules/$m.ko" ;;
        *) cp "$f" "$R/lib/modules/$m.ko" ;;
        esac
    done
    echo "$ORDER" >"$R/etc/modules"
    printf '%s' "$INIT" >"$R/init"
    chmod 755 "$R/init"
    for f in "$PROG" $(ldd "$PROG" | grep -o '/[^ ]*'); do
        mkdir -p "$R$(dirname "$f")" && cp -L "$f" "$R$f"
    done
    (cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) >"$IMAGE.$$"
    mv "$IMAGE.$$" "$IMAGE"
    rm -rf "$R"
    trap - EXIT
fi
[ -z "$PREPARE" ] || exit 0

# ---- the command: --listen rewritten, paths shared
ARGS=() SHARES=() RUN="" FWD="" n=0
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; } # for the guest's sh
share() {                                                          # share DIR ro|rw
    local s
    for s in "${SHARES[@]}"; do [ "${s#* }" != "$1" ] || return 0; done
    SHARES+=("$2 $1")
    RUN="${RUN}mkdir -p $(q "$1") && mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,$2 s$n $(q "$1")
"
    QSHARE+=(-virtfs "local,path=$1,mount_tag=s$n,security_model=none$([ "$2" = rw ] || echo ,readonly=on)")
    n=$((n + 1))
}
QSHARE=()
while [ $# -gt 0 ]; do
    a=$1
    shift
    if [ "$a" = --listen ]; then
        [[ ${1:-} =~ ^tcp:([0-9.]+):([0-9]+)$ ]] || die "--listen: only tcp:HOST:PORT"
        FWD=",hostfwd=tcp:${BASH_REMATCH[1]}:${BASH_REMATCH[2]}-10.0.2.15:${BASH_REMATCH[2]}"
        ARGS+=(--listen "tcp:0.0.0.0:${BASH_REMATCH[2]}")
        shift
        continue
    fi
    if [[ $a == /* ]] && [ -d "$a" ]; then
        share "$(readlink -f "$a")" rw
    elif [[ $a == /* ]] && [ -f "$a" ]; then
        share "$(dirname "$(readlink -f "$a")")" ro
    fi
    ARGS+=("$a")
done
RUN="${RUN}exec $(q "$PROG")"
for a in "${ARGS[@]}"; do RUN="$RUN $(q "$a")"; done

NET=()
# shellcheck disable=SC2054 # qemu's comma-separated options
[ -z "$FWD" ] || NET=(-netdev "user,id=n0,restrict=on$FWD" -device virtio-net-pci,netdev=n0,romfile=)
exec qemu-system-x86_64 -accel "tcg,tb-size=$TB" -cpu max -machine pc -m "$MEM" -smp 1 \
    -nodefaults -no-user-config -display none -monitor none -no-reboot \
    -serial "file:${QEMU_INSTANCE_CONSOLE:-/dev/null}" -chardev stdio,id=out,signal=off -serial chardev:out \
    -chardev file,id=err,path=/proc/self/fd/2,append=on -serial chardev:err \
    "${NET[@]}" "${QSHARE[@]}" -kernel "$KERNEL" -initrd "$IMAGE" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 mitigations=off tsc=reliable no_timer_check airlock_run=$(printf '%s' "$RUN" | base64 -w0)"
