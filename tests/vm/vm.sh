#!/bin/bash
# vm.sh - run a test script inside a throw-away qemu Linux guest whose kernel
# has AF_VSOCK with the *loopback* transport, so that connect(CID 1 =
# VMADDR_CID_LOCAL, port) reaches a listener in the same guest.
#
#   usage: tests/vm/vm.sh [-v] BIN_DIR TEST_SCRIPT [ARG...]
#
#   BIN_DIR      directory of (static) binaries; shared read-only at /t in the
#                guest, /t first in $PATH
#   TEST_SCRIPT  busybox-sh script run as root in the guest, cwd /tmp (tmpfs),
#                stdin /dev/null; its stdout+stderr are streamed to our stdout
#   exit status  the test script's exit status (0..255), or
#                124 = VM timed out, 125 = guest died / gave no status,
#                126 = setup error (no qemu, no suitable kernel, qemu failed to start)
#   -v           also dump the guest kernel console (ttyS0) when done
#
#   environment (defaults in brackets):
#     VM_ACCEL    auto|kvm|tcg [auto]  auto = kvm if /dev/kvm is writable and is
#                 real KVM; tcg if it is missing or kvm_pvm (PVM nested virt,
#                 which cannot boot an unmodified Debian kernel); if qemu then
#                 fails to start with kvm, it is retried once with tcg
#     VM_MEM [1G]  VM_SMP [2]  VM_TIMEOUT seconds [600]
#     VM_KVER     guest kernel version [newest in /lib/modules with vsock_loopback.ko]
#     VM_EXTRA_DYN  host dynamic binaries baked (with their ldd libs) into the
#                 image, e.g. "socat" [""]
#     VM_OUTDIR   if set, a host dir shared read-write at /out in the guest
#     VM_CACHE    cache/work dir [/tmp/airlock-vm-cache]
#     VM_APPEND   extra guest kernel command line
#
# Host packages (scripts/deps.sh): qemu-system-x86 linux-image-amd64
# busybox-static cpio kmod xz-utils.
# Safety: the VM gets NO network device and NO vhost-vsock device, so guest vsock
# traffic can only loop back inside the guest (CID 1). Nothing vsock happens on
# the host.
#
# Adapted from ../shared/tools/vsock-vm.sh (9p sharing only).
set -euo pipefail

VERBOSE=0
[ "${1:-}" = "-v" ] && { VERBOSE=1; shift; }
[ $# -ge 2 ] || { sed -n '2,35p' "$0" >&2; exit 126; }
BIN_DIR=$(readlink -f "$1"); TEST=$(readlink -f "$2"); shift 2
die() { echo "vm.sh: $*" >&2; exit 126; }
[ -d "$BIN_DIR" ] || die "$BIN_DIR is not a directory"
[ -f "$TEST" ]    || die "$TEST is not a file"

VM_ACCEL=${VM_ACCEL:-auto}; VM_MEM=${VM_MEM:-1G}; VM_SMP=${VM_SMP:-2}
VM_TIMEOUT=${VM_TIMEOUT:-600}; VM_EXTRA_DYN=${VM_EXTRA_DYN:-}
VM_CACHE=${VM_CACHE:-/tmp/airlock-vm-cache}; VM_APPEND=${VM_APPEND:-}

for tool in qemu-system-x86_64 modinfo cpio gzip xz; do
  command -v "$tool" >/dev/null || die "$tool not found; run scripts/deps.sh"
done
[ -x /bin/busybox ] || die "/bin/busybox not found; run scripts/deps.sh (busybox-static)"
file_is_static() { ! LC_ALL=C ldd "$1" >/dev/null 2>&1; }
file_is_static /bin/busybox || die "/bin/busybox is dynamic; install busybox-static"
mkdir -p "$VM_CACHE"

# ---------------------------------------------------------------- kernel
if [ -z "${VM_KVER:-}" ]; then
  [ -d /lib/modules ] || die "no /lib/modules; apt-get install linux-image-amd64"
  VM_KVER=$(for v in $(ls -1 /lib/modules | sort -V); do
              [ -e "/boot/vmlinuz-$v" ] || continue
              [ -n "$(find "/lib/modules/$v" -name 'vsock_loopback.ko*' | head -1)" ] && echo "$v"
            done | tail -1)
fi
[ -n "$VM_KVER" ] && [ -e "/boot/vmlinuz-$VM_KVER" ] ||
  die "no guest kernel with vsock_loopback; apt-get install linux-image-amd64"
[ -r "/boot/vmlinuz-$VM_KVER" ] || die "/boot/vmlinuz-$VM_KVER is not readable"

# PVH direct boot: extract the uncompressed ELF vmlinux once (skips the bzImage's
# real-mode setup and xz decompressor, ~40% faster boot under TCG).
VMLINUX=$VM_CACHE/vmlinux-$VM_KVER
if [ ! -s "$VMLINUX" ]; then
  BZ=/boot/vmlinuz-$VM_KVER
  off=$(LC_ALL=C grep -abo $'\xfd7zXZ\x00' "$BZ" | head -1 | cut -d: -f1 || true)
  # (tail gets SIGPIPE when xz stops after the first stream: ignore the status)
  [ -n "$off" ] && { tail -c +$((off + 1)) "$BZ" | xz -dc --single-stream > "$VMLINUX.$$.tmp" 2>/dev/null || true; }
  if [ -s "$VMLINUX.$$.tmp" ] && command -v readelf >/dev/null &&
     [ "$(readelf -n "$VMLINUX.$$.tmp" 2>/dev/null | grep -c 'Xen')" != 0 ]; then
    mv "$VMLINUX.$$.tmp" "$VMLINUX"
  else
    rm -f "$VMLINUX.$$.tmp"; VMLINUX=$BZ          # fall back to a normal bzImage boot
  fi
fi

# ---------------------------------------------------------------- accel
AUTO_ACCEL=0
if [ "$VM_ACCEL" = auto ]; then
  AUTO_ACCEL=1
  if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ]; then VM_ACCEL=kvm; else VM_ACCEL=tcg; fi
fi
# shellcheck disable=SC2054 # commas inside qemu option values, not array separators
accel_args() {
  case $VM_ACCEL in
    kvm) ACCEL=(-accel kvm -cpu host) ;;
    tcg) ACCEL=(-accel tcg,thread=multi -cpu max) ;;   # MTTCG: one host thread per vCPU
    *) die "VM_ACCEL must be auto|kvm|tcg" ;;
  esac
}
accel_args

# ---------------------------------------------------------------- base initramfs (cached)
# Modules in load order, dependencies first (resolved with modinfo). The
# guest->host transport vmw_vsock_virtio_transport is deliberately NOT included.
resolve() {
  local m=$1 d
  case " $SEEN " in *" $m "*) return ;; esac
  SEEN="$SEEN $m"
  for d in $(modinfo -k "$VM_KVER" -F depends "$m" | tr ',' ' '); do resolve "$d"; done
  ORDER="$ORDER $m"
}
SEEN=""; ORDER=""
for m in vsock vmw_vsock_virtio_transport_common vsock_loopback virtio_pci 9pnet_virtio 9p; do
  resolve "$m"
done

INIT_SCRIPT='#!/bin/sh
# guest PID 1 (busybox sh)
export PATH=/t:/bin:/sbin:/usr/bin:/usr/sbin HOME=/tmp
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm /tmp /t /ctl
mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /tmp; mount -t tmpfs tmpfs /dev/shm
for m in $(cat /etc/vm-modules); do
  insmod /lib/modules/$m.ko 2>/dev/null || echo "vm guest: insmod $m failed" >/dev/console
done
ip link set lo up
stty -F /dev/ttyS1 raw -echo 2>/dev/null            # no \n -> \r\n on the output port
o=trans=virtio,version=9p2000.L,msize=524288
mount -t 9p -o $o,ro,cache=loose vmbin /t && mount -t 9p -o $o vmctl /ctl ||
  echo "vm guest: 9p mount failed" >/dev/console
if grep -q vmout /sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag 2>/dev/null; then
  mkdir -p /out && mount -t 9p -o $o vmout /out
fi
cd /tmp
sh /ctl/cmd </dev/null >/dev/ttyS1 2>&1
rc=$?
echo "AIRLOCKVM_RC=$rc" >/dev/ttyS0                  # parsed by the host script
sync; umount /out /ctl /t 2>/dev/null
poweroff -f
'

KEY=$( { echo "$VM_KVER $ORDER $VM_EXTRA_DYN"; sha1sum "$0" /bin/busybox;
         for b in $VM_EXTRA_DYN; do sha1sum "$(command -v "$b")"; done; } | sha1sum | cut -c1-12)
BASE=$VM_CACHE/base-$KEY.cpio.gz
if [ ! -s "$BASE" ]; then
  for b in $VM_EXTRA_DYN; do command -v "$b" >/dev/null || die "VM_EXTRA_DYN: $b not found"; done
  R=$(mktemp -d "$VM_CACHE/root.XXXXXX")
  mkdir -p "$R"/{bin,sbin,etc,proc,sys,dev,tmp,t,ctl,lib/modules}
  cp /bin/busybox "$R/bin/"
  for a in $("$R/bin/busybox" --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
  for m in $ORDER; do
    f=$(modinfo -k "$VM_KVER" -F filename "$m")
    case $f in                                      # busybox insmod wants a plain .ko
      *.ko.xz)  xz -dc "$f"    > "$R/lib/modules/$m.ko" ;;
      *.ko.zst) zstd -dcq "$f" > "$R/lib/modules/$m.ko" ;;
      *.ko.gz)  gzip -dc "$f"  > "$R/lib/modules/$m.ko" ;;
      *)        cp "$f" "$R/lib/modules/$m.ko" ;;
    esac
  done
  echo "$ORDER" > "$R/etc/vm-modules"
  printf '127.0.0.1 localhost\n::1 localhost ip6-localhost\n' > "$R/etc/hosts"
  printf '%s' "$INIT_SCRIPT" > "$R/init"; chmod 755 "$R/init"
  for b in $VM_EXTRA_DYN; do                        # dynamic binaries + their libs
    p=$(command -v "$b"); mkdir -p "$R/usr/bin"; cp "$p" "$R/usr/bin/"
    for l in $(ldd "$p" | grep -o '/[^ ]*'); do mkdir -p "$R$(dirname "$l")"; cp -L "$l" "$R$l"; done
  done
  (cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$BASE.$$.tmp"
  mv "$BASE.$$.tmp" "$BASE"
  rm -rf "$R"
fi

touch "$BASE"                                       # mtime = last use, for pruning
find "$VM_CACHE" -maxdepth 1 \( -name 'base-*.cpio.gz' -mtime +7 -o -name 'run.*' -mtime +1 -o -name 'root.*' -mtime +1 \) \
  -exec rm -rf {} + 2>/dev/null || true

# ---------------------------------------------------------------- per-run files
RUN=$(mktemp -d "$VM_CACHE/run.XXXXXX")
QPID=
cleanup() { [ -n "$QPID" ] && kill "$QPID" 2>/dev/null; rm -rf "$RUN"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$RUN/ctl"
cp "$TEST" "$RUN/ctl/test.sh"
{ printf 'exec sh /ctl/test.sh'                       # args, single-quoted for busybox sh
  for a in "$@"; do printf " '%s'" "$(printf '%s' "$a" | sed "s/'/'\\\\''/g")"; done; echo; } > "$RUN/ctl/cmd"

SHARE=(-virtfs "local,path=$BIN_DIR,mount_tag=vmbin,security_model=none,readonly=on"
       -virtfs "local,path=$RUN/ctl,mount_tag=vmctl,security_model=none")
if [ -n "${VM_OUTDIR:-}" ]; then
  mkdir -p "$VM_OUTDIR"
  SHARE+=(-virtfs "local,path=$(readlink -f "$VM_OUTDIR"),mount_tag=vmout,security_model=none")
fi

# ---------------------------------------------------------------- boot
# ttyS0 = kernel console -> $RUN/console.log (shown with -v or on failure)
# ttyS1 = test output    -> our stdout
# No -nic/-netdev and no vhost-vsock device: the guest is fully isolated.
APPEND="console=ttyS0 quiet loglevel=3 panic=-1 mitigations=off tsc=reliable no_timer_check $VM_APPEND"
boot() {  # sets QRC; the guest writes console.log, qemu's own errors go to qemu.err
  : > "$RUN/console.log"
  set +e
  timeout --kill-after=5 "$VM_TIMEOUT" qemu-system-x86_64 "${ACCEL[@]}" -machine pc -m "$VM_MEM" -smp "$VM_SMP" \
    -nodefaults -no-user-config -display none -monitor none -no-reboot \
    -serial "file:$RUN/console.log" -serial stdio \
    -kernel "$VMLINUX" -initrd "$BASE" -append "$APPEND" \
    "${SHARE[@]}" </dev/null 2>"$RUN/qemu.err" &
  QPID=$!
  wait $QPID; QRC=$?; QPID=
  set -e
}
started=$SECONDS
boot
# KVM that is present but unusable: qemu fails at once, before the kernel says anything
if [ "$QRC" != 0 ] && [ ! -s "$RUN/console.log" ] && [ "$AUTO_ACCEL$VM_ACCEL" = 1kvm ] &&
   [ $((SECONDS - started)) -lt 10 ]; then
  echo "vm.sh: qemu failed with kvm ($(head -n1 "$RUN/qemu.err")); retrying with tcg" >&2
  VM_ACCEL=tcg; accel_args; boot
fi

RC=$(tr -d '\r' < "$RUN/console.log" | sed -n 's/.*AIRLOCKVM_RC=\([0-9][0-9]*\).*/\1/p' | tail -1)
if [ "$VERBOSE" = 1 ] || [ -z "$RC" ]; then
  echo "---- guest console (kernel $VM_KVER, accel=$VM_ACCEL, qemu rc=$QRC) ----" >&2
  tr -d '\r' < "$RUN/console.log" | tail -n 60 >&2
fi
[ -s "$RUN/qemu.err" ] && { echo "---- qemu stderr ----" >&2; tail -n 20 "$RUN/qemu.err" >&2; }
if [ -z "$RC" ]; then
  if [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; then
    echo "vm.sh: timed out after ${VM_TIMEOUT}s" >&2; exit 124
  fi
  if [ "$QRC" != 0 ] && [ ! -s "$RUN/console.log" ]; then   # qemu never booted the kernel
    echo "vm.sh: qemu failed to start: $(head -n1 "$RUN/qemu.err")" >&2; exit 126
  fi
  echo "vm.sh: guest gave no exit status (qemu rc=$QRC)" >&2; exit 125
fi
exit "$RC"
