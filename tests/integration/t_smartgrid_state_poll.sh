#!/bin/bash
# t_smartgrid_state_poll: where inotify cannot see the user's state land
# (a 9p, NFS, SMB or FUSE --dir, or --state-poll), the server looks for it
# every 10 ms instead:
#   - on a local directory it watches with inotify (when it can have one),
#     and says so;
#   - with --state-poll it says state_watch=poll reason=option and holds
#     no inotify instance;
#   - on a FUSE directory (fake_tsm, a FUSE file system of the tests) it
#     polls by itself: state_watch=poll reason=fuse (the file system type
#     found in /proc/self/mountinfo, the same path as a guest's 9p share);
#   - a database renamed in while POST /login waits is found: login
#     succeeds, a write lands in it.
# (The 9p case itself, a guest's share written by the host, is what
# bench/qemu-instance.sh runs; the tests boot no guest.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"

sg_provision 1
U=user0001

# inotify_fds PID: how many inotify instances the process holds
inotify_fds() { grep -l '^inotify' /proc/"$1"/fdinfo/* 2>/dev/null | wc -l; }

# (inotify instances are a per-user limit, fs.inotify.max_user_instances:
# on a machine where others hold them all, the server polls, and says so)
sg_server local "$T/local"
grep -Eq 'listening dir=.* state_watch=(inotify|poll reason=no_inotify)$' "$T/local.log" ||
    fail "local dir: $(cat "$T/local.log")"
kill "$LAST_PID"

FAKE_TSM=$(dirname "$AIRLOCK")/tests/fake_tsm
if [ -x "$FAKE_TSM" ] && [ -c /dev/fuse ]; then
    MNT=$T/fuse
    mkdir "$MNT"
    at_exit "umount -l $(printf %q "$MNT") 2>/dev/null"
    is_fuse() { [ "$(stat -f -c %t "$MNT")" = 65735546 ]; }
    start fake_tsm env ASAN_OPTIONS=detect_leaks=0 "$FAKE_TSM" "$MNT" \
        --outblob "$ROOT/tests/fixtures/attestation/tsm/snp-milan-report-go-sev-guest.bin"
    wait_for is_fuse || fail "fake_tsm did not mount: $(cat "$T/fake_tsm.log")"
    sg_server fuse "$MNT"
    grep -Eq 'listening dir=.* state_watch=poll reason=fuse(\.[a-z_]+)?$' "$T/fuse.log" || fail "fuse: $(cat "$T/fuse.log")"
    [ "$(inotify_fds "$LAST_PID")" = 0 ] || fail "fuse: an inotify instance"
    kill "$LAST_PID"
else
    echo "fuse case skipped: no fake_tsm (libfuse3-dev) or no /dev/fuse"
fi

sg_server polled "$T/polled" --state-wait 20s --state-poll
SRV=$LAST_PID
grep -q 'state_watch=poll reason=option' "$T/polled.log" || fail "no poll line: $(cat "$T/polled.log")"
[ "$(inotify_fds "$SRV")" = 0 ] || fail "--state-poll: an inotify instance"
# the database lands once the login request is waiting for it
(wait_log "$T/polled.log" '^LOGIN user0001$' &&
    cp "$SG/db/$U.db" "$T/polled/.part" && mv "$T/polled/.part" "$T/polled/$U.db") &
BRING=$!
sg_login $U
wait "$BRING"
sg_write_logout $U
wait_exit "$SRV" 10
[ "$EXIT_STATUS" = 0 ] || fail "exit status $EXIT_STATUS"
[ "$(sg_sql $U "$T/polled/$U.db" "SELECT count(*) FROM alarms;")" = 1 ] || fail "write lost"
echo PASS
