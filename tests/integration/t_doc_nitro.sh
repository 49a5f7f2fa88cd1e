#!/bin/bash
# t_doc_nitro: docs/nitro.md stays true. Every YAML block of it (enclave,
# parent, broker, client) passes `airlock check` once its paths point into
# the test's directory (vsock endpoints are only parsed, never opened). Its
# shell recipe runs against a real attested listener: a tls: relay with the
# sim provider (the page's hostname and PCR policy replaced by loopback and
# the sim root), then a pinned curl gets the app's answer; the same pin
# against another relay's key fails.
. "$(dirname "$0")/lib.sh"
need curl socat basenc
DOC=$ROOT/docs/nitro.md
mkdir -p "$T/etc" "$T/var/secrets" "$T/log"
head -c 32 /dev/urandom >"$T/etc/broker.key"
chmod 600 "$T/etc/broker.key"

doc_blocks "$DOC" "$T/doc"
# block LANG N: the Nth fenced block of LANG in the page
block() {
    local f
    f=$(awk -v lang="$1" -v want="$2" '$2 == lang && ++n == want { print $1 }' "$T/doc/index")
    [ -z "$f" ] || cat "$T/doc/$f.$1"
}

n=0
while :; do
    n=$((n + 1))
    block yaml "$n" >"$T/b$n.yaml"
    [ -s "$T/b$n.yaml" ] || break
    sed -i -e "s|/etc/airlock/|$T/etc/|g" -e "s|/var/lib/airlock/|$T/var/|g" \
        -e "s|/var/log/airlock/|$T/log/|g" "$T/b$n.yaml"
    out=$("$AIRLOCK" check -c "$T/b$n.yaml" 2>&1) || fail "yaml block $n: $out"
    log "yaml block $n: $out"
done
[ "$n" -ge 5 ] || fail "expected 4 yaml blocks (enclave, parent, broker, client), found $((n - 1))"

log "the shell recipe: verify, then curl pinned to the verified key"
"$AIRLOCK" attest get --provider sim --sim-root "$T/sim-root.pem" >/dev/null 2>&1
read -r APP P Q <<<"$(free_ports 3)"
cat >"$T/app.sh" <<'EOF'
#!/bin/sh
# the app: reads the request head (so that closing sends a FIN, not a reset), answers
sed -u '/^\r$/q' >/dev/null
printf 'HTTP/1.0 200 OK\r\n\r\nenclave says hi\n'
EOF
chmod +x "$T/app.sh"
start app socat TCP-LISTEN:"$APP",bind=127.0.0.1,reuseaddr,fork EXEC:"$T/app.sh"
wait_port "$APP"
for port in "$P" "$Q"; do
    cat >"$T/tls$port.yaml" <<EOF
relays:
  - name: web
    listen: tcp:127.0.0.1:$port
    target: tcp:127.0.0.1:$APP
    tls: {provider: sim, sim_root: $T/sim-root.pem}
EOF
    airlock_up "tls$port" run -c "$T/tls$port.yaml"
done
block sh 1 >"$T/recipe.sh"
grep -q 'attest verify --tls' "$T/recipe.sh" || fail "no recipe in the page"
sed -i -e "s|enclave.example.com:443|127.0.0.1:$P|" -e "s|https://enclave.example.com/|https://127.0.0.1:$P/|" \
    -e "s|--pcr 0=[0-9a-f]*|--sim-root $T/sim-root.pem|" -e "s|^hash=\$(airlock |hash=\$($AIRLOCK |" \
    "$T/recipe.sh"
out=$(bash -e "$T/recipe.sh" 2>"$T/recipe.err") || fail "the recipe failed: $out $(cat "$T/recipe.err")"
[ "$out" = "enclave says hi" ] || fail "the recipe printed: $out"
sed -i "s|https://127.0.0.1:$P/|https://127.0.0.1:$Q/|" "$T/recipe.sh"
# verify P, then curl Q: another key than the one verified
rc=0
bash -e "$T/recipe.sh" >/dev/null 2>&1 || rc=$?
[ "$rc" = 90 ] || fail "curl pinned to one relay's key against another's: exit $rc, expected 90 (pin mismatch)"
log ok
