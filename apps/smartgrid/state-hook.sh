#!/bin/sh
# state-hook.sh - the pool's provisioning hooks for smartgrid (docs/pool.md):
# move a user's encrypted database between the store and an instance dir.
#
#   state-hook.sh fetch STORE USER DIR   STORE/USER.db -> DIR/USER.db, and
#                                        STORE/USER.key, USER.crt (the user's
#                                        own server certificate) when present
#   state-hook.sh store STORE USER DIR   DIR/USER.db -> STORE/USER.db (only:
#                                        the certificate never goes back)
#
# Each file is copied to a temporary name first and renamed, so the reader
# (the server waiting for DIR/USER.crt or DIR/USER.db, or the next fetch)
# never sees half a file. The certificate comes first: the server's TLS
# handshake waits for it, the database only at POST /login. The database
# stays encrypted all the way: the key never reaches this host.
set -eu
[ $# = 4 ] || { echo "usage: $0 fetch|store STORE USER DIR" >&2; exit 2; }
op=$1 store=$2 user=$3 dir=$4
case $user in
'' | *[!A-Za-z0-9_.-]* | .*) echo "$0: bad user name '$user'" >&2; exit 2 ;;
esac
case $op in
fetch) from=$store/$user.db to=$dir/$user.db ;;
store) from=$dir/$user.db to=$store/$user.db ;;
*) echo "$0: expected fetch or store, not '$op'" >&2; exit 2 ;;
esac
[ -f "$from" ] || { echo "$0: no state at $from" >&2; exit 1; }
if [ "$op" = fetch ]; then
    for ext in key crt; do
        [ -f "$store/$user.$ext" ] || continue
        cp "$store/$user.$ext" "$dir/$user.$ext.tmp.$$"
        mv "$dir/$user.$ext.tmp.$$" "$dir/$user.$ext"
    done
fi
cp "$from" "$to.tmp.$$"
mv "$to.tmp.$$" "$to"
