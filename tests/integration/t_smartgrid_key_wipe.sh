#!/bin/bash
# t_smartgrid_key_wipe: once a login has opened the user's database, the
# server's memory holds the user's key only where SQLCipher keeps it for
# the open database (its key specs, x'KEY SALT'): no copy in the request it
# read (the connection's input buffer, OpenSSL's record buffer: wiped once
# read, SSL_OP_CLEANSE_PLAINTEXT), nor in the parsed JSON. The memory is
# read through /proc/PID/mem, every writable mapping, right after the login
# (before another request could reuse the buffers); the session runs on (a
# query after the scan still answers).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to read another process's memory"
sg_provision 1
sg_server srv "$T/inst"
SRV=$LAST_PID
cp "$SG/db/user0001.db" "$T/inst/"
sg_login user0001
# stray PID KEY: copies of the hex KEY in PID's writable memory outside
# SQLCipher's key specs, and copies of the login's JSON member
read -r specs stray member < <(python3 - "$SRV" "$(sg_key user0001)" <<'PY'
import re, sys
pid, key = sys.argv[1], sys.argv[2].encode()
specs = stray = member = 0
with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
    for line in maps:
        f = line.split()
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        # writable, private: heap, stacks, anonymous maps (a sanitizer's
        # shadow and reserved ranges are far larger, and hold no copies)
        if not f[1].startswith("rw") or hi - lo > 1 << 30:
            continue
        try:
            mem.seek(lo)
            data = mem.read(hi - lo)
        except OSError:
            continue
        for m in re.finditer(re.escape(key), data):
            if data[max(0, m.start() - 2):m.start()] == b"x'":
                specs += 1
            else:
                stray += 1
        member += data.count(b'"key":"' + key)
print(specs, stray, member)
PY
)
log "key copies: $specs in SQLCipher's key specs, $stray elsewhere, $member in the request"
[ "$specs" -ge 1 ] || fail "the scan found no key at all: it did not read the server's memory"
[ "$stray" = 0 ] || fail "$stray copies of the key left outside SQLCipher"
[ "$member" = 0 ] || fail "the login request is left in memory"
[ "$(sg_curl user0001 user0001 '/query_avg?metric=power')" = 200 ] || fail "no query after the scan"
running "$SRV" || fail "the server died"
log "ok"
