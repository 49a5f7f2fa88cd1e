#!/bin/bash
# t_smartgrid_key_wipe: once a login has opened the user's database, the
# server's memory holds the user's key only where SQLCipher keeps it for
# the open database (its key specs, x'KEY SALT'): no copy in the request it
# read (the connection's input buffer, OpenSSL's record buffer: wiped once
# read, SSL_OP_CLEANSE_PLAINTEXT), nor in the parsed JSON, also of a second
# login refused (409) after its key was parsed. The memory is read through
# /proc/PID/mem, the heap and every anonymous writable mapping, right after
# the logins (before another request could reuse the buffers); the session
# runs on (a query after the scan still answers).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root to read another process's memory"
sg_provision 1
sg_server srv "$T/inst"
SRV=$LAST_PID
cp "$SG/db/user0001.db" "$T/inst/"
sg_login user0001
# a second login is refused (409) after its key was parsed
[ "$(sg_post user0001 /login "{\"key\":\"$(sg_key user0001)\"}")" = 409 ] ||
    fail "a second login was not refused"
# the server's writable memory: SQLCipher's key specs (x'KEY SALT'), copies
# of either half of the hex KEY outside them, and JSON "key" members
read -r specs stray member < <(python3 - "$SRV" "$(sg_key user0001)" <<'PY'
import re, sys
pid, key = sys.argv[1], sys.argv[2].encode()
# either half of the key: a freed copy may have lost its first bytes to the
# allocator's own pointers
halves = re.compile(re.escape(key[:32]) + b"|" + re.escape(key[32:]))
specs = stray = member = 0
with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
    for line in maps:
        f = line.split()
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        # writable, private: the heap and anonymous maps (a sanitizer's
        # shadow and reserved ranges are far larger, and hold no copies);
        # not the stack, whose stale frames (OpenSSL's) the next calls
        # write over
        if not f[1].startswith("rw") or hi - lo > 1 << 30 or f[-1] == "[stack]":
            continue
        try:
            mem.seek(lo)
            data = mem.read(hi - lo)
        except OSError:
            continue
        inside = [m.start() for m in re.finditer(re.escape(b"x'" + key), data)]
        specs += len(inside)
        for m in halves.finditer(data):
            if not any(at < m.start() < at + 2 + len(key) for at in inside):
                stray += 1
        member += data.count(b'"key"')
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
