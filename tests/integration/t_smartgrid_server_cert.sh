#!/bin/bash
# t_smartgrid_server_cert: each user's instance presents that user's own
# server certificate, so that no instance can pose as another user's server
# (before, every instance held the one wildcard key):
#  - smartgrid-provision issues USER.crt (SAN DNS USER.grid.example only)
#    and USER.key (0600) into the store beside USER.db; state-hook.sh fetch
#    brings the three in, store takes back only USER.db;
#  - a server without --cert presents the SNI user's DIR/USER.crt: curl and
#    openssl s_client verifying USER.grid.example against the CA accept it;
#  - what an instance of user0001 holds (its certificate and key, served by
#    any program it likes: openssl s_server) does not pass as user0002's
#    server: curl and s_client verifying user0002.grid.example refuse it;
#  - a handshake whose certificate has not landed yet waits for it without
#    holding up the other connections (refused as soon as another user
#    binds the process), and fails after --state-wait (no_certificate); the
#    server keeps serving; so it does when the key is not a key, or not the
#    certificate's (bad_certificate);
#  - through airlock (router, directory and the pool of pool-yaml.sh, with
#    the memory and the redis directory) a user logs in with a client that
#    verifies the server's name: the pool brings the certificate in at the
#    reservation, before the server needs it (with redis, from its poll);
#    the instances get no --cert.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sg_lib.sh"
need redis-server ss

sg_provision 3
log "provisioned: one server certificate per user, for that user's name only"
for u in user0001 user0002 user0003; do
    [ -s "$SG/db/$u.crt" ] && [ -s "$SG/db/$u.key" ] || fail "no $SG/db/$u.crt and .key"
    san=$(openssl x509 -in "$SG/db/$u.crt" -noout -ext subjectAltName | tail -n +2 | tr -d ' ')
    [ "$san" = "DNS:$u.grid.example" ] || fail "$u.crt names '$san'"
    openssl verify -CAfile "$SG/ca.pem" -purpose sslserver "$SG/db/$u.crt" >/dev/null ||
        fail "$u.crt is not a server certificate of the CA"
    [ "$(stat -c %a "$SG/db/$u.key")" = 600 ] || fail "$u.key mode $(stat -c %a "$SG/db/$u.key")"
done

log "state-hook.sh: fetch brings db, certificate and key; store takes back the db only"
cp -r "$SG/db" "$T/store"
mkdir -m 700 "$T/hook"
"$ROOT/apps/smartgrid/state-hook.sh" fetch "$T/store" user0001 "$T/hook"
for f in user0001.db user0001.crt user0001.key; do
    cmp -s "$T/store/$f" "$T/hook/$f" || fail "fetch did not bring $f"
done
[ "$(ls "$T/hook" | wc -l)" = 3 ] || fail "fetch left: $(ls "$T/hook")"
echo junk >>"$T/hook/user0001.crt"
echo junk >>"$T/hook/user0001.key"
echo junk >>"$T/hook/user0001.db"
"$ROOT/apps/smartgrid/state-hook.sh" store "$T/store" user0001 "$T/hook"
cmp -s "$T/store/user0001.db" "$T/hook/user0001.db" || fail "store did not take the db back"
cmp -s "$T/store/user0001.crt" "$SG/db/user0001.crt" || fail "store took the certificate back"
cmp -s "$T/store/user0001.key" "$SG/db/user0001.key" || fail "store took the key back"

log "a handshake waits for its certificate; the others go on meanwhile"
SG_OWN_CERT=1 sg_server srv "$T/inst" --state-wait 30s
SRV=$LAST_PID
sg_curl user0002 user0002 /query_avg >"$T/user0002.code" &
W=$!
wait_log "$T/srv.log" 'handshake waiting for the certificate of user=user0002'
sg_bring_in user0001 "$T/inst"
t0=$(date +%s%N)
sg_login user0001
ms=$(elapsed_ms "$t0")
log "user0001 logged in in $ms ms while user0002's handshake waited"
[ "$ms" -lt 15000 ] || fail "user0001 waited $ms ms: held up by user0002's handshake"
# bound to user0001 now: the waiting handshake of user0002 is refused at
# once, not when its --state-wait ends
t0=$(date +%s%N)
wait "$W" || true
ms=$(elapsed_ms "$t0")
[ "$(cat "$T/user0002.code")" = 000 ] || fail "user0002 got $(cat "$T/user0002.code")"
[ "$ms" -lt 15000 ] || fail "user0002's handshake was refused only after $ms ms"
wait_log "$T/srv.log" 'handshake refused reason=other_user'

log "the server presents user0001's own certificate, which the clients verify"
out=$(openssl s_client -connect "127.0.0.1:$SG_PORT" -servername user0001.grid.example \
    -verify_hostname user0001.grid.example -CAfile "$SG/ca.pem" -verify_return_error \
    -cert "$SG/users/user0001.pem" -key "$SG/users/user0001.key" </dev/null 2>&1) ||
    fail "s_client refused the server: $out"
grep -q 'subject=CN *= *user0001.grid.example' <<<"$out" || fail "presented: $(grep subject= <<<"$out")"
grep -q 'Verify return code: 0 (ok)' <<<"$out" || fail "not verified: $out"
[ "$(sg_curl user0001 user0001 '/query_avg?metric=power')" = 200 ] || fail "query as user0001"

log "no certificate within --state-wait: a handshake failure, the server goes on"
SG_OWN_CERT=1 sg_server srv2 "$T/inst2" --state-wait 1s
SRV2=$LAST_PID
[ "$(sg_curl user0003 user0003 /query_avg)" = 000 ] || fail "user0003 served without a certificate"
wait_log "$T/srv2.log" 'handshake refused reason=no_certificate user=user0003'
running "$SRV2" || fail "the server died"
sg_bring_in user0003 "$T/inst2"
sg_login user0003

log "a key that is no key, or another user's, refuses the handshake; the server goes on"
SG_OWN_CERT=1 sg_server srv3 "$T/inst3" --state-wait 30s
SRV3=$LAST_PID
cp "$SG/db/user0003.crt" "$T/inst3/"
printf -- '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n' >"$T/inst3/user0003.key"
[ "$(sg_curl user0003 user0003 /query_avg)" = 000 ] || fail "served with a broken key"
wait_log "$T/srv3.log" 'handshake refused reason=bad_certificate user=user0003'
cp "$SG/db/user0002.key" "$T/inst3/user0003.key"
[ "$(sg_curl user0003 user0003 /query_avg)" = 000 ] || fail "served with user0002's key"
wait_for eval '[ "$(grep -c "handshake refused reason=bad_certificate user=user0003" "$T/srv3.log")" = 2 ]'
running "$SRV3" || fail "the server died"
sg_bring_in user0003 "$T/inst3"
sg_login user0003

log "user0001's certificate and key, whatever serves them, do not pass as user0002's server"
IMP=$(free_port)
start impostor openssl s_server -accept "127.0.0.1:$IMP" -cert "$T/inst/user0001.crt" \
    -key "$T/inst/user0001.key" -www
wait_for tcp_up "$IMP"
imp_curl() { # USER: curl to USER.grid.example at the impostor; prints curl's exit status
    local rc=0
    curl -s -o /dev/null --cacert "$SG/ca.pem" --resolve "$1.grid.example:$IMP:127.0.0.1" \
        "https://$1.grid.example:$IMP/" || rc=$?
    echo "$rc"
}
[ "$(imp_curl user0001)" = 0 ] || fail "control: user0001's certificate should pass as user0001's"
[ "$(imp_curl user0002)" = 60 ] || fail "curl accepted user0001's certificate as user0002's server"
rc=0
out=$(openssl s_client -connect "127.0.0.1:$IMP" -servername user0002.grid.example \
    -verify_hostname user0002.grid.example -CAfile "$SG/ca.pem" -verify_return_error \
    </dev/null 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "s_client accepted user0001's certificate as user0002's server"
grep -qi 'hostname mismatch' <<<"$out" || fail "s_client: $out"

# pool_run BACKEND: a user through router, directory and pool; the pool
# brings the user's certificate in at the reservation
pool_run() {
    local b=$1 rport mport cport p0 al pid
    read -r rport mport <<<"$(free_ports 2)"
    p0=$(free_range 20)
    while { [ "$rport" -ge "$p0" ] && [ "$rport" -lt $((p0 + 20)) ]; } ||
        { [ "$mport" -ge "$p0" ] && [ "$mport" -lt $((p0 + 20)) ]; }; do
        read -r rport mport <<<"$(free_ports 2)"
    done
    rm -rf "$T/store"
    cp -r "$SG/db" "$T/store"
    {
        echo "metrics: tcp:127.0.0.1:$mport"
        echo "directory:"
        if [ "$b" = redis ]; then
            echo "  backend: redis"
            echo "  redis: unix:$T/redis.sock"
            echo "  redis_password_file: $T/redis.pw"
            echo "  prefix: \"sgcert$$:\""
        else
            echo "  backend: memory"
        fi
        sg_router "$rport"
        "$ROOT/apps/smartgrid/pool-yaml.sh" "$SG_BIN" "$SG" "$T/store" "$T/pool-$b" \
            "$p0-$((p0 + 19))" 2 4 2 5s example
    } >"$T/pool-$b.yaml"
    airlock_up "al-$b" run -c "$T/pool-$b.yaml"
    al=$LAST_PID
    idle2() { metric_is airlock_pool_instances 'pool="grid",state="idle"' 2; }
    MPORT=$mport wait_for idle2
    for pid in $(pgrep -P "$al"); do
        tr '\0' ' ' <"/proc/$pid/cmdline" | has -- '--cert' && fail "$b: an instance got --cert"
    done
    SG_PORT=$rport
    sg_login user0001 # curl verifies user0001.grid.example against the CA
    local d
    d=$(dirname "$(find "$T/pool-$b" -name user0001.crt)")
    [ -d "$d" ] || fail "$b: no instance directory holds user0001.crt"
    [ "$(cd "$d" && ls ./*.crt ./*.key | tr '\n' ' ')" = "./user0001.crt ./user0001.key " ] ||
        fail "$b: the instance holds $(ls "$d")"
    grep -q "reserved user=user0001: provisioning ahead" "$T/al-$b.log" ||
        fail "$b: not provisioned at the reservation"
    [ "$(sg_curl user0001 user0001 /logout -X POST)" = 200 ] || fail "$b: logout"
    wait_log "$T/al-$b.log" "stopped why=logout"
    cmp -s "$T/store/user0001.crt" "$SG/db/user0001.crt" || fail "$b: the certificate was stored back"
    SG_TOKEN=
    stop_clean "$al" "al-$b"
}

log "through airlock, memory directory"
pool_run memory
log "through airlock, redis directory"
redis_unix
pool_run redis
running "$SRV" || fail "the first server died"
echo PASS
