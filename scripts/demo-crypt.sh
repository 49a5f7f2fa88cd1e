#!/bin/bash
# demo-crypt.sh - field encryption (make demo-crypt): a card number goes in,
# the backend in the enclave sees only tokens, the answer comes back readable.
#
#   curl ──tcp:127.0.0.1:18080──▶ host relay ──hvsock:RUN/enclave.sock:8080──┐
#   ┌─ network namespace airlock-crypt: only lo, like an enclave without a NIC ┤
#   │  airlock: relay hvsock -> tcp:127.0.0.1:8080 ─▶ proxies: api (routes,    │
#   │           keyset) ─▶ backend tcp:127.0.0.1:9000 (http_echo: logs each   │
#   │           body as it arrived, echoes it back)                            │
#   └──────────────────────────────────────────────────────────────────────────
#
# Needs root (network namespaces) and the test tools of build/ (make).
# Environment: AIRLOCK (default build/airlock), DEMO_SECONDS (stop by
# itself), DEMO_NETNS (airlock-crypt), DEMO_PORT (18080), DEMO_METRICS_PORT (9101).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
AIRLOCK=${AIRLOCK:-$ROOT/build/airlock}
ECHO=$(dirname "$AIRLOCK")/tests/http_echo
NETNS=${DEMO_NETNS:-airlock-crypt}
PORT=${DEMO_PORT:-18080}
MPORT=${DEMO_METRICS_PORT:-9101}
SECONDS_TO_RUN=${DEMO_SECONDS:-}

. "$ROOT/scripts/demo-lib.sh"
demo_begin curl ip nsenter setsid ss openssl -- "$PORT" "$MPORT"
[ -x "$ECHO" ] || die "no $ECHO (run: make)"
BACKEND_PID="" ENCLAVE_PID="" HOST_PID=""

stop_all() {
    halt "host relay" "$HOST_PID" TERM 5
    halt "enclave airlock" "$ENCLAVE_PID" TERM 5
    halt "backend" "$BACKEND_PID" TERM 5
}

make_enclave
ns_daemon "$RUN/backend.out" "$ECHO" 9000 "$RUN/backend.log"
BACKEND_PID=$LAST_PID

# the tenant's keyset (a key file until the key broker releases it)
keyset_file "$RUN/keys.json" shop k1 k1
cat >"$RUN/enclave.yaml" <<YAML
threads: 1
relays:
  - name: enclave
    listen: hvsock:$RUN/enclave.sock:8080
    target: tcp:127.0.0.1:8080
proxies:
  - name: api
    listen: tcp:127.0.0.1:8080
    backend: tcp:127.0.0.1:9000
    keyset: $RUN/keys.json
    routes:
      - name: payments
        methods: [POST]
        path: /payments
        encrypt: ["\$.card.number", "\$.card.cvv"]
        deterministic: ["\$.customer.email"]
        decrypt: true
YAML
ns_daemon "$RUN/enclave.log" "$AIRLOCK" run -c "$RUN/enclave.yaml"
ENCLAVE_PID=$LAST_PID
wait_socket "$RUN/enclave.sock"
alive "$ENCLAVE_PID" "$(airlock_comm)" "enclave airlock" "$RUN/enclave.log"
start_host_relay 8080

cat <<EOF

== started (run dir $RUN)
  backend        pid $BACKEND_PID in $NETNS: tcp:127.0.0.1:9000 (unmodified; logs what it receives)
  enclave        pid $ENCLAVE_PID in $NETNS: relay hvsock -> proxy api tcp:127.0.0.1:8080 -> backend
  host relay     pid $HOST_PID: tcp:127.0.0.1:$PORT -> hvsock:$RUN/enclave.sock:8080
EOF
show_enclave_net "$BACKEND_PID"

BODY='{"order": 1042, "amount": 59.90, "card": {"number": "4111111111111111", "cvv": 737}, "customer": {"email": "ada@example.com"}}'
echo
echo "== a payment with a card number goes in"
echo "\$ curl -s -H 'Content-Type: application/json' -d '$BODY' http://127.0.0.1:$PORT/payments"
curl -s -H 'Content-Type: application/json' -d "$BODY" "http://127.0.0.1:$PORT/payments" >"$RUN/answer"
echo
echo "== what the backend received (its log): only tokens"
sed 's/.* body=/  /' "$RUN/backend.log"
echo
echo "== what came back to the client (the backend echoed its tokens; decrypted on the way out)"
sed 's/^/  /' "$RUN/answer"
echo
echo
echo "== a body the route cannot encrypt is refused, never forwarded"
echo "\$ curl -s -H 'Content-Type: application/json' -d '{\"card\": {\"number\": {\"pan\": 1}}}' .../payments"
curl -s -H 'Content-Type: application/json' -d '{"card": {"number": {"pan": 1}}}' \
    "http://127.0.0.1:$PORT/payments" | sed 's/^/  /'
echo "  (the backend's log still has $(wc -l <"$RUN/backend.log") line)"
cat <<EOF

== try it by hand (in another terminal)
  curl -H 'Content-Type: application/json' -d '{"card":{"number":"5500000000000004"}}' http://127.0.0.1:$PORT/payments
  tail -f $RUN/backend.log $RUN/enclave.log
EOF
demo_wait
