#!/bin/bash
# t_attest_tdx_collateral: Intel's collateral for TDX quotes, end to end.
# A stand-in for Intel's PCS on loopback (python3 http.server) serves the
# collateral Intel published for the fixture quote (June 2023,
# tests/fixtures/attestation/tsm/tdx-collateral), with its issuer chain in
# the TCB-Info-Issuer-Chain header, URL-encoded, as Intel's does. Proves:
#  - scripts/tdx-collateral.sh fetches it into the layout the verifier reads
#    (the chain URL-decoded byte for byte), and an FMSPC the PCS does not
#    know fails it without touching the directory;
#  - `airlock attest verify --collateral` then judges the real quote as
#    Intel's algorithm does: its chains and CRLs pass, its platform is below
#    every TCB level listed (refused, exit 1); after the CRLs' next update it
#    is refused for that; without --collateral it verifies;
#  - `airlock check` loads a policy's collateral (a broker secret's): a
#    tampered TCB Info is refused there, naming the file;
#  - the broker judges a requester's TDX quote by its secret's collateral
#    (fake_tsm, FUSE, returns the recorded quote: NOT the kernel): out of
#    date at today's time, refused as untrusted, nothing released.
. "$(dirname "$0")/lib.sh"
need python3 curl

F=$ROOT/tests/fixtures/attestation/tsm
C=$F/tdx-collateral
QUOTE=$F/tdx-quote-v4-spr-e4-go-tdx-guest.dat
AT=2023-07-01T01:00:00Z
read -r PCS BROKER <<<"$(free_ports 2)"

start pcs python3 -c '
import http.server, sys, urllib.parse
c = sys.argv[2]
chain = urllib.parse.quote(open(c + "/tcb_chain.pem").read(), safe="")
routes = {
    "/tdx/certification/v4/tcb?fmspc=50806f000000": ("tcb_info.json", "TCB-Info-Issuer-Chain"),
    "/tdx/certification/v4/qe/identity": ("qe_identity.json", "SGX-Enclave-Identity-Issuer-Chain"),
    "/sgx/certification/v4/pckcrl?ca=platform&encoding=der": ("pck_crl_platform.der", None),
    "/IntelSGXRootCA.der": ("root_crl.der", None),
}
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path not in routes:
            self.send_error(404)
            return
        name, header = routes[self.path]
        body = open(c + "/" + name, "rb").read()
        self.send_response(200)
        if header:
            self.send_header(header, chain)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()' "$PCS" "$C"
wait_for tcp_up "$PCS"
fetch() {
    "$ROOT/scripts/tdx-collateral.sh" --pcs "http://127.0.0.1:$PCS" \
        --root-crl "http://127.0.0.1:$PCS/IntelSGXRootCA.der" --ca platform "$T/pcs" "$@"
}

log "the collateral fetched from the PCS"
fetch 50806F000000 >"$T/fetch.out" || fail "fetch: $(cat "$T/fetch.out")"
for f in tcb_info-50806f000000.json qe_identity.json pck_crl_platform.der root_crl.der; do
    cmp -s "$T/pcs/$f" "$C/${f/-50806f000000/}" || fail "$f is not what the PCS served"
done
cmp -s "$T/pcs/tcb_chain.pem" "$C/tcb_chain.pem" || fail "tcb_chain.pem is not the header's chain"
before=$(ls -A "$T/pcs" | sha256)
! fetch 90c06f000000 2>"$T/fetch.err" || fail "an FMSPC the PCS does not know was fetched"
grep -q 'HTTP 404' "$T/fetch.err" || fail "$(cat "$T/fetch.err")"
[ "$(ls -A "$T/pcs" | sha256)" = "$before" ] || fail "a failed fetch changed the directory"

log "the quote judged by it: Intel's algorithm finds no TCB level for its platform"
verify() { "$AIRLOCK" attest verify --type tdx "$@" "$QUOTE" >"$T/out" 2>"$T/err"; }
rc=0
verify --at "$AT" --collateral "$T/pcs" || rc=$?
[ "$rc" = 1 ] || fail "exit $rc: $(cat "$T/out" "$T/err")"
grep -q 'invalid: collateral: no TCB level of the TCB Info matches the platform' "$T/err" ||
    fail "$(cat "$T/err")"
rc=0
verify --at 2023-08-01T00:00:00Z --collateral "$T/pcs" --tcb-status UpToDate,OutOfDate || rc=$?
[ "$rc" = 1 ] && grep -q 'is not in force at the time given (fetch it again)' "$T/err" ||
    fail "after the CRLs' next update: exit $rc $(cat "$T/err")"
verify --at "$AT" || fail "without collateral: $(cat "$T/err")"
grep -q '"type":"tdx"' "$T/out" && ! grep -q tcb_status "$T/out" || fail "$(cat "$T/out")"
rc=0
"$AIRLOCK" attest verify --type snp --collateral "$T/pcs" "$QUOTE" 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q -- '--collateral applies to --type tdx only' "$T/err" || fail "$(cat "$T/err")"
rc=0
"$AIRLOCK" attest verify --type tdx --tcb-status UpToDate "$QUOTE" 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q -- '--tcb-status needs --collateral' "$T/err" || fail "$(cat "$T/err")"

log "airlock check loads a policy's collateral"
mkdir "$T/secrets"
printf 'tdx-secret' | "$AIRLOCK" attest seal --key-file "$T/k" --dir "$T/secrets" tdx-key 2>/dev/null
"$AIRLOCK" attest broker-key --key-file "$T/k" >"$T/k.pub"
cat >"$T/airlock.yaml" <<EOF
broker:
  listen: tcp:127.0.0.1:$BROKER
  dir: $T/secrets
  key_file: $T/k
  secrets:
    - {name: tdx-key, policy: {type: tdx, collateral: $T/pcs, tcb_status: [UpToDate, OutOfDate], any_image: true}}
EOF
"$AIRLOCK" check -c "$T/airlock.yaml" >"$T/check.out" 2>&1 || fail "check: $(cat "$T/check.out")"
cp -r "$T/pcs" "$T/bad"
sed -i 's/"pcesvn":11/"pcesvn":12/' "$T/bad/tcb_info-50806f000000.json"
sed "s|$T/pcs|$T/bad|" "$T/airlock.yaml" >"$T/bad.yaml"
! "$AIRLOCK" check -c "$T/bad.yaml" >"$T/check.out" 2>&1 || fail "tampered collateral passed check"
grep -q "tcb_info-50806f000000.json: not signed by the TCB signing key" "$T/check.out" ||
    fail "$(cat "$T/check.out")"

log "the broker judges a requester's TDX quote by the secret's collateral"
FAKE_TSM=${FAKE_TSM:-$(dirname "$AIRLOCK")/tests/fake_tsm}
if [ ! -x "$FAKE_TSM" ] || [ ! -c /dev/fuse ]; then
    log "SKIP: no fake_tsm or /dev/fuse for the broker part"
    exit 0
fi
MNT=$T/tsm
mkdir "$MNT"
at_exit "umount -l $(printf %q "$MNT") 2>/dev/null"
is_fuse() { [ "$(stat -f -c %t "$MNT")" = 65735546 ]; }
start fake_tsm env ASAN_OPTIONS=detect_leaks=0 "$FAKE_TSM" "$MNT" --outblob "$QUOTE" \
    --provider tdx_guest --log "$T/fake.log"
wait_for is_fuse || fail "fake_tsm did not mount: $(cat "$T/fake_tsm.log")"
airlock_up broker run -c "$T/airlock.yaml"
PID=$LAST_PID
timeout 30 "$AIRLOCK" attest fetch-secret --broker "tcp:127.0.0.1:$BROKER" --broker-key "$T/k.pub" \
    --provider tsm --tsm-dir "$MNT" tdx-key >"$T/out" 2>"$T/err" && fail "released: $(cat "$T/out")"
[ ! -s "$T/out" ] || fail "fetch-secret printed something"
grep -q 'refused: untrusted' "$T/err" || fail "$(cat "$T/err")"
wait_log "$T/broker.log" 'refused secret=tdx-key reason=untrusted .*collateral: the TCB signing chain: certificate chain: certificate has expired'
! grep -q 'released' "$T/broker.log" || fail "a release"
stop_clean "$PID" broker
log "ok"
