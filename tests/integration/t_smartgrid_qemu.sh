#!/bin/bash
# t_smartgrid_qemu: one smartgrid-server in its own qemu guest
# (bench/qemu-instance.sh, the enclave-like instance of bench/standby.sh
# --launcher qemu), its instance directory a 9p share written by the host:
#   - the server sees that its --dir is 9p and polls for the user's files
#     (inotify in the guest never sees what the host writes into the share):
#     the handshake that waits for the user's certificate, brought in by
#     the host only then, goes on, and POST /login finds the database that
#     the host renames in while it waits;
#   - its lines reach qemu's stdout clean (WAITING_LOGIN, LOGIN user, LOGOUT,
#     no \r); after LOGOUT the guest powers off and qemu exits 0;
#   - what the session wrote is in the host's copy of the database.
# TCG boots the guest in seconds: the bounds below are failure bounds only.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"
need qemu-system-x86_64 busybox cpio modinfo readelf
ls /boot/vmlinuz-* >/dev/null 2>&1 || skip "no guest kernel in /boot (linux-image-amd64)"

sg_provision 1
U=user0001
mkdir -p "$T/inst"
SG_PORT=$(free_port)
export QEMU_INSTANCE_CACHE=$T/qemu QEMU_INSTANCE_MEM=256M # (a sanitizer build is larger)
start guest "$ROOT/bench/qemu-instance.sh" "$SG_BIN/smartgrid-server" \
    --listen "tcp:127.0.0.1:$SG_PORT" --dir "$T/inst" --ca "$SG/ca.pem" --state-wait 60s
GUEST=$LAST_PID
wait_log "$T/guest.log" '^WAITING_LOGIN$' 180 "$GUEST"
grep -q 'listening dir=.* state_watch=poll reason=9p$' "$T/guest.log" || fail "not polling: $(cat "$T/guest.log")"

# in_place FILE: the provisioned FILE of the user renamed into the share
in_place() { cp "$SG/db/$1" "$T/inst/.part" && mv "$T/inst/.part" "$T/inst/$1"; }
# the user's certificate lands once the handshake waits for it, the
# database once POST /login waits for it
(wait_log "$T/guest.log" 'handshake waiting for the certificate of user=user0001' 120 &&
    in_place $U.key && in_place $U.crt &&
    wait_log "$T/guest.log" 'login waiting for the state user=user0001' 120 && in_place $U.db) &
BRING=$!
sg_login $U
wait "$BRING"
sg_write_logout $U
wait_exit "$GUEST" 120
[ "$EXIT_STATUS" = 0 ] || fail "qemu exit status $EXIT_STATUS: $(cat "$T/guest.log")"
[ "$(grep -E '^(WAITING_LOGIN|LOGIN .*|LOGOUT)$' "$T/guest.log" | tr '\n' ' ')" = "WAITING_LOGIN LOGIN user0001 LOGOUT " ] ||
    fail "event lines: $(cat -A "$T/guest.log")"
! grep -q $'\r' "$T/guest.log" || fail "a \\r in the output: $(cat -A "$T/guest.log")"
[ "$(sg_sql $U "$T/inst/$U.db" "SELECT count(*) FROM alarms;")" = 1 ] || fail "write lost"
echo PASS
