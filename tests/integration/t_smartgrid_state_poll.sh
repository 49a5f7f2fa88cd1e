#!/bin/bash
# t_smartgrid_state_poll: where inotify cannot see the user's state land
# (a 9p, NFS, SMB or FUSE --dir, or --state-poll), the server looks for it
# every 10 ms instead:
#   - on a local directory it watches with inotify, and says so;
#   - with --state-poll it says state_watch=poll reason=option and holds
#     no inotify instance;
#   - a database renamed in while POST /login waits is found: login
#     succeeds, a write lands in it.
# (The 9p case itself, a guest's share written by the host, is what
# bench/qemu-instance.sh runs; this machine's tests boot no guest.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"

sg_provision 1
U=user0001

# inotify_fds PID: how many inotify instances the process holds
inotify_fds() { grep -l '^inotify' /proc/"$1"/fdinfo/* 2>/dev/null | wc -l; }

sg_server local "$T/local"
grep -q 'listening dir=.* state_watch=inotify$' "$T/local.log" || fail "local dir: $(cat "$T/local.log")"
[ "$(inotify_fds "$LAST_PID")" = 1 ] || fail "local dir: no inotify instance"
kill "$LAST_PID"

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
code=$(sg_post $U /write '{"alarms":[{"metric":"power","threshold":3}]}')
[ "$code" = 200 ] || fail "write: HTTP $code"
[ "$(sg_curl $U $U /logout -X POST)" = 200 ] || fail "logout"
wait_exit $SRV 10
[ "$EXIT_STATUS" = 0 ] || fail "exit status $EXIT_STATUS"
[ "$(sg_sql $U "$T/polled/$U.db" "SELECT count(*) FROM alarms;")" = 1 ] || fail "write lost"
echo PASS
