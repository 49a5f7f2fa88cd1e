#!/bin/bash
# t_relay_tls: a relay with tls: terminates TLS with an attested certificate
# (RA-TLS, sim provider) and relays plaintext to an unmodified backend:
#   - the certificate is P-256, self-signed, and carries the RA-TLS
#     extension (OID 2.23.133.5.4.9); `airlock attest verify --tls` accepts
#     its evidence and fresh evidence with the sim root, refuses it without;
#   - curl gets a 4 MiB file from nginx behind it intact, socat sends 3 MiB
#     to an echo-and-count backend and gets its answer after its
#     close_notify (half-close), a 2 MiB reply comes back whole;
#   - plaintext HTTP, garbage and a silent client on the TLS port each end
#     alone (tls_failed, handshake_timeout) while an established TLS
#     connection keeps working;
#   - idle_timeout ends a TLS connection that moves nothing; afterwards
#     airlock holds no more fds than before the first connection;
#   - with validity: 3s the certificate is renewed (a new key, logged and
#     counted) while a connection made before goes on untouched.
. "$(dirname "$0")/lib.sh"
need openssl socat curl nginx

read -r ENC ENC2 SHORT IDLE ECHO WEB SUM METRICS <<<"$(free_ports 8)"
"$AIRLOCK" attest get --provider sim --sim-root "$T/sim.pem" >/dev/null 2>&1 ||
    fail "cannot make the sim root"
gen_data big $((4 << 20)) >"$T/big"
gen_data up $((3 << 20)) >"$T/up"

# nginx gives its temp paths to its worker's user: not $T, where the sim
# root is (airlock refuses a key in a directory another user may change);
# the worker passes through $T to what it serves
mkdir -p "$T/www" "$T/ngx" && cp "$T/big" "$T/www/big"
chmod 711 "$T"
cat >"$T/nginx.conf" <<EOF
daemon off;
pid $T/nginx.pid;
error_log $T/nginx.err;
events {}
http {
    access_log off;
    client_body_temp_path $T/ngx;
    proxy_temp_path $T/ngx;
    fastcgi_temp_path $T/ngx;
    uwsgi_temp_path $T/ngx;
    scgi_temp_path $T/ngx;
    server { listen 127.0.0.1:$WEB; root $T/www; }
}
EOF
start nginx nginx -c "$T/nginx.conf"
wait_port "$WEB"
start echo socat TCP-LISTEN:"$ECHO",bind=127.0.0.1,reuseaddr,fork EXEC:cat
start sum socat TCP-LISTEN:"$SUM",bind=127.0.0.1,reuseaddr,fork SYSTEM:"sha256sum"
wait_port "$ECHO"
wait_port "$SUM"

cat >"$T/airlock.yaml" <<EOF
metrics: tcp:127.0.0.1:$METRICS
relays:
  - name: web
    listen: tcp:127.0.0.1:$ENC
    target: tcp:127.0.0.1:$WEB
    tls: {provider: sim, sim_root: $T/sim.pem, handshake_timeout: 1s}
  - name: sum
    listen: tcp:127.0.0.1:$ENC2
    target: tcp:127.0.0.1:$SUM
    tls: {provider: sim, sim_root: $T/sim.pem}
  - name: idle
    listen: tcp:127.0.0.1:$IDLE
    target: tcp:127.0.0.1:$ECHO
    idle_timeout: 1s
    tls: {provider: sim, sim_root: $T/sim.pem}
  - name: short
    listen: tcp:127.0.0.1:$SHORT
    target: tcp:127.0.0.1:$ECHO
    tls: {provider: sim, sim_root: $T/sim.pem, validity: 3s}
EOF
airlock_up airlock run -c "$T/airlock.yaml"
AL=$LAST_PID
grep -q "relay=web tls listener ready provider=sim (sim evidence, not hardware)" "$T/airlock.log" ||
    fail "no ready line saying the evidence is sim"
fds0=$(fd_count "$AL")

# peer_cert PORT: the server certificate (PEM) a TLS client gets there
peer_cert() {
    openssl s_client -connect "127.0.0.1:$1" </dev/null 2>/dev/null | openssl x509
}
# spki PORT: the SHA-256 of the server's public key there
spki() { peer_cert "$1" | openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER | sha256; }

log "the certificate: self-signed P-256 carrying the RA-TLS extension"
peer_cert "$ENC" >"$T/web.pem"
openssl x509 -in "$T/web.pem" -noout -text >"$T/web.txt"
grep -q "2.23.133.5.4.9" "$T/web.txt" || fail "no RA-TLS extension (OID 2.23.133.5.4.9)"
grep -Eq "ASN1 OID: prime256v1|NIST CURVE: P-256" "$T/web.txt" || fail "the key is not P-256"
openssl verify -CAfile "$T/web.pem" "$T/web.pem" >/dev/null || fail "not self-signed"

log "airlock attest verify --tls: the certificate's evidence and fresh evidence, sim only when trusted"
"$AIRLOCK" attest verify --tls "127.0.0.1:$ENC" --sim-root "$T/sim.pem" >"$T/verify.json" ||
    fail "the certificate's evidence does not verify"
"$AIRLOCK" attest verify --tls "127.0.0.1:$ENC" --fresh --sim-root "$T/sim.pem" >"$T/fresh.json" ||
    fail "fresh evidence does not verify"
grep -q '"sim":true' "$T/fresh.json" || fail "the evidence does not say it is sim: $(cat "$T/fresh.json")"
rc=0
"$AIRLOCK" attest verify --tls "127.0.0.1:$ENC" --fresh 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "sim evidence accepted without --sim-root (status $rc)"

log "curl through the listener to nginx: 4 MiB intact"
got=$(curl -sfk --max-time 20 "https://127.0.0.1:$ENC/big" | sha256)
[ "$got" = "$(sha256 <"$T/big")" ] || fail "curl: the file did not come through intact"

log "socat sends 3 MiB and half-closes; the answer comes after its close_notify"
got=$(timeout 20 socat -t 20 - OPENSSL:127.0.0.1:"$ENC2",verify=0 <"$T/up") ||
    fail "socat: status $?"
[ "$got" = "$(sha256 <"$T/up")  -" ] || fail "the backend did not get the 3 MiB whole: $got"
wait_for grep -q "close relay=sum .*bytes_in=$((3 << 20)) bytes_out=68 end=eof" "$T/airlock.log" ||
    fail "the half-closed connection did not end with end=eof and every byte counted"

log "an established connection keeps working while bad clients come and go"
coproc HELD { socat -t 30 - OPENSSL:127.0.0.1:"$SHORT",verify=0; }
held_pid=$HELD_PID # bash unsets HELD_PID (and HELD) once the coproc has exited
held_key=$(spki "$SHORT")
echo one >&"${HELD[1]}"
read -r -t 10 line <&"${HELD[0]}" || fail "no echo on the held connection"
[ "$line" = one ] || fail "the held connection echoed '$line'"
printf 'GET / HTTP/1.0\r\n\r\n' | timeout 5 socat -t 2 - TCP:127.0.0.1:"$ENC" >/dev/null 2>&1 || :
head -c 3000 /dev/urandom | timeout 5 socat -t 2 - TCP:127.0.0.1:"$ENC" >/dev/null 2>&1 || :
wait_ends "$T/airlock.log" tls_failed 2
grep -q 'close relay=web .* reason="[a-z ]*" .*end=tls_failed' "$T/airlock.log" ||
    fail "a failed handshake's close line does not say why"
exec 7<>/dev/tcp/127.0.0.1/"$ENC" # silent: no ClientHello
wait_ends "$T/airlock.log" handshake_timeout 1
exec 7<&-

log "renewal: a new key for new connections, the old connection untouched"
renewals() { grep -c "relay=short tls certificate renewed provider=sim" "$T/airlock.log" || :; }
renewed_since() { [ "$(renewals)" -ge $(($1 + 2)) ]; }
# two renewals logged after the key was seen: one at least happened wholly after
n0=$(renewals)
wait_until 30 renewed_since "$n0" || fail "the certificate was not renewed"
new_key=$(spki "$SHORT")
[ "$new_key" != "$held_key" ] || fail "the renewed certificate has the same key"
echo two >&"${HELD[1]}"
read -r -t 10 line <&"${HELD[0]}" || fail "the held connection broke at the renewal"
[ "$line" = two ] || fail "the held connection echoed '$line' after the renewal"
[ "$(metric airlock_tls_renewals_total 'relay="short",result="ok"' "$METRICS")" -ge 1 ] ||
    fail "the renewal is not counted"
[ "$(metric airlock_tls_renewals_total 'relay="web",result="ok"' "$METRICS")" = 0 ] ||
    fail "a 1h certificate was renewed"
exec {HELD[1]}>&-
wait "$held_pid" || :

log "idle_timeout ends a TLS connection that moves nothing"
coproc QUIET { socat -t 30 - OPENSSL:127.0.0.1:"$IDLE",verify=0; }
quiet_pid=$QUIET_PID quiet_in=${QUIET[1]} # unset once the coproc has exited
wait_ends "$T/airlock.log" idle_timeout 1
exec {quiet_in}>&-
wait "$quiet_pid" || :

fds_back() { [ "$(fd_count "$AL")" -le "$fds0" ]; }
wait_for fds_back || fail "airlock holds $(fd_count "$AL") fds after the connections, $fds0 before"
stop_clean "$AL" airlock
[ "$(ends "$T/airlock.log" error)" = 0 ] || fail "connections ended with end=error"
log "pass"
