#!/bin/bash
# t_docs: the docs stay true. Every fenced example of README.md and
# docs/*.md is run: a YAML config passes `airlock check`; a shell example
# (sh, bash, console) runs against real peers in namespaces of its own, and
# every command of it must succeed. An example that cannot run here says why
# on the line before its fence, "<!-- not run: REASON -->" (it needs a Nitro
# parent, apt, systemctl, is a benchmark or a synopsis); they are listed and
# counted. YAML of one block, not a whole file, says which on that line,
# "<!-- fragment: KEY -->" (relays[], pools[], proxies[]), and is checked
# inside a minimal such block. Relays that connect to each other agree on
# PROXY v2 (sent by one exactly when the other reads it): those of a shell
# example, and those of a page's YAML examples over vsock (an enclave's
# config and its parent's). docs/config.md is also checked against the
# config tables, by tests/unit/test_config_doc.c.
#
# What an example may assume, read here as:
#   /etc/airlock/, /run/airlock/, /var/lib/airlock/, /var/log/airlock/
#       directories of the test (/etc/airlock/sim-root.pem is a sim root,
#       /etc/airlock/broker.key a broker key, /etc/airlock/NAME.json a
#       keyset of tenant NAME, /etc/airlock/partner-ca.pem a CA certificate,
#       /var/lib/airlock/store a pool's state store);
#       the smartgrid group (made by
#       the airlock-smartgrid package) is nogroup; HEX is 48 bytes of hex
#   vsock:CID:PORT, vsock:any:PORT
#       unix:DIR/vsock-PORT.sock, one per port: the vsock of that port
#   a shell example
#       runs in network, mount and pid namespaces of its own (lo up, every
#       10.x.y.z address of the example on it, a tmpfs on /run), its "host";
#       a command under a comment saying "enclave side" (up to the next
#       empty line; or with one at its end) runs in a second network
#       namespace, the "enclave". airlock relay, router and run are started
#       in the background and must come up ("airlock running"); the other
#       commands must exit 0. `sudo CMD` is CMD. airlock.yaml in its
#       directory runs pool grid (instances grid-1 to grid-3, idle before
#       the next command), a memory directory and the control socket
#       unix:/run/airlock/ctl.sock, airlock ctl's default. A few examples
#       get peers and checks of what they promise (fixture_* below).
. "$(dirname "$0")/lib.sh"
need curl socat unshare nsenter dnsmasq dig openssl
is_root || skip "needs root for namespaces"
mkdir -p "$T/etc" "$T/run" "$T/var/store" "$T/log"
"$AIRLOCK" attest get --provider sim --sim-root "$T/etc/sim-root.pem" >/dev/null 2>&1 || :
head -c 32 /dev/urandom >"$T/etc/broker.key"
chmod 600 "$T/etc/broker.key"
HEX=$(printf '%096d' 0)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=partner-ca -days 1 \
    -keyout "$T/etc/partner-ca.key" -out "$T/etc/partner-ca.pem" 2>/dev/null
for tenant in acme shop; do
    printf '{"tenant": "%s", "primary": "k1", "keys": [{"id": "k1", "key": "%s"}]}\n' \
        "$tenant" "$(openssl rand -hex 32)" >"$T/etc/$tenant.json"
    chmod 600 "$T/etc/$tenant.json"
done

# local_yaml FILE: the documented paths and placeholders, as the test has them
local_yaml() {
    sed -i -e "s|/etc/airlock/|$T/etc/|g" -e "s|/run/airlock/|$T/run/|g" \
        -e "s|/var/lib/airlock/|$T/var/|g" -e "s|/var/log/airlock/|$T/log/|g" \
        -e "s|group: smartgrid|group: nogroup|" -e "s|\bHEX\b|\"$HEX\"|g" "$1"
}

# fragment_file KEY FILE: FILE, YAML of a KEY block, made a whole config
# around a minimal KEY block (its required keys); 1 for an unknown KEY.
fragment_file() {
    local frame indent
    case $1 in
    "relays[]") frame='relays:\n  - listen: tcp:127.0.0.1:1\n    target: tcp:127.0.0.1:2\n' indent=4 ;;
    "pools[]")
        frame='directory: {backend: memory}\npools:\n  - command: [/bin/true]\n    endpoint: "tcp:127.0.0.1:{port}"\n'
        frame+='    ports: 20000-20009\n    dir: /var/lib/airlock/fragment\n    events: {ready: a, login: (b)}\n'
        indent=4
        ;;
    "proxies[]") frame='proxies:\n  - listen: tcp:127.0.0.1:1\n    backend: tcp:127.0.0.1:2\n' indent=4 ;;
    *) return 1 ;;
    esac
    # the fragment's own indentation becomes the block's
    awk -v frame="$frame" -v indent="$indent" '
        { line[NR] = $0 }
        $0 ~ /[^ ]/ && (min == "" || match($0, /[^ ]/) - 1 < min) { min = match($0, /[^ ]/) - 1 }
        END {
            printf "%s", frame
            pad = sprintf("%" indent "s", "")
            for (i = 1; i <= NR; i++) print (line[i] ~ /[^ ]/ ? pad substr(line[i], min + 1) : "")
        }' "$2" >"$2.whole"
    mv "$2.whole" "$2"
}

# shell_commands LANG FILE: one line per command of a shell example, "KIND SIDE
# N<TAB>COMMAND": KIND daemon (airlock relay, router, run) or run, SIDE
# host or enclave; continued lines joined, comments dropped. In a console
# example the commands are the lines after a "$ " prompt (the rest is what
# they print).
shell_commands() {
    awk -v lang="$1" '
    function side_of(s) { return s ~ /enclave side/ ? "enclave" : s ~ /host side/ ? "host" : "" }
    BEGIN { side = "host" }
    lang == "console" && !/^\$ / { next }
    {
        line = $0
        if (lang == "console") line = substr(line, 3)
        while (line ~ /\\$/ && (getline more) > 0) { sub(/\\$/, "", line); line = line " " more }
        if (line ~ /^[ \t]*#/) { if (side_of(line) != "") side = side_of(line); next }
        if (line ~ /^[ \t]*$/) { side = "host"; next }
        cmd = line; s = ""
        if (match(line, /[ \t]+#[ \t]/)) { cmd = substr(line, 1, RSTART - 1); s = side_of(substr(line, RSTART)) }
        kind = cmd ~ /^[ \t]*(sudo +)?airlock +(relay|router|run) / ? "daemon" : "run"
        printf "%s %s %d\t%s\n", kind, s != "" ? s : side, ++n, cmd
    }' "$2"
}

# proxy_pairs COMMANDS: the relays of an example that connect to each other
# (one's target is the other's listen, as vsock is once rewritten) agree on
# PROXY v2: sent by one exactly when the other reads it. Prints each pair
# that does not; true when none.
proxy_pairs() {
    awk -F'\t' '
    function flag(name, i) {
        for (i = 1; i <= nt; i++)
            if (t[i] == "--" name "=v2" || (t[i] == "--" name && t[i + 1] == "v2")) return 1
        return 0
    }
    {
        nt = split($2, t, /[ \t]+/)
        for (i = 1; i <= nt && t[i] != "airlock"; i++) ;
        if (t[i + 1] != "relay" && t[i + 1] != "router") next
        n++; listen[n] = t[i + 2]; target[n] = t[i + 1] == "relay" ? t[i + 3] : ""
        sends[n] = flag("send-proxy"); reads[n] = flag("accept-proxy"); cmd[n] = $2
    }
    END {
        for (a = 1; a <= n; a++)
            for (b = 1; b <= n; b++)
                if (target[a] != "" && target[a] == listen[b] && sends[a] != reads[b]) {
                    print (sends[a] ? "sends a PROXY v2 header that its peer does not read" : \
                        "sends no PROXY v2 header, its peer requires one") ": " cmd[a] " -> " cmd[b]
                    bad = 1
                }
        exit bad
    }' "$1"
}

# yaml_relays FILE...: the relays of YAML examples (block style), one line
# each, "airlock relay LISTEN TARGET [--send-proxy v2] [--accept-proxy v2]"
# with vsock endpoints as unix:vsock-PORT (the CID is another machine's), for
# proxy_pairs across the examples of a page (an enclave's and its parent's).
yaml_relays() {
    awk '
    function flush() {
        if (l != "") printf "relay -\tairlock relay %s %s%s%s\n", l, tg, sp, ap
        l = tg = sp = ap = ""
    }
    function ep(v) {
        sub(/^["\047]/, "", v); sub(/["\047]$/, "", v)
        if (v ~ /^vsock:/) { sub(/^vsock:[^:]*:/, "", v); v = "unix:vsock-" v }
        return v
    }
    FNR == 1 { flush(); in_relays = 0 }
    /^[a-z_]+:/ { flush(); in_relays = $0 ~ /^relays:/; next }
    !in_relays { next }
    /^  - / { flush(); sub(/^  - /, "    ") }
    $1 == "listen:" { l = ep($2) }
    $1 == "target:" { tg = ep($2) }
    $1 == "send_proxy:" && $2 == "v2" { sp = " --send-proxy v2" }
    $1 == "accept_proxy:" && $2 == "v2" { ap = " --accept-proxy v2" }
    END { flush() }' "$@"
}

# ---- fixtures: peers for an example, and checks of what it promises. Each
# is a file of functions the example's runner sources: fixture_before,
# fixture_up N COMMAND (a daemon came up), fixture_after.

# The README's "Use": the host relay -> vsock -> enclave relay -> app chain
# delivers the client's request unchanged to an unmodified app, from an
# allowed address; the enclave's DNS pair answers an allowed name (dnsmasq
# on 10.0.0.2 behind it) and refuses another; the SNI router hands the
# ClientHello of www.example.com to its route unchanged.
fixture_use() {
    cat <<'EOF'
fixture_before() {
    printf '10.1.2.3 s3.amazonaws.com\n10.1.2.4 www.example.net\n' >hosts
    proc_start dnsmasq.log dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
        --addn-hosts="$PWD/hosts" --listen-address=10.0.0.2 --bind-interfaces --port=53 \
        --user=root --group=root --pid-file="$PWD/dnsmasq.pid" --log-facility=-
    proc_start route.log socat UNIX-LISTEN:vsock-443.sock,fork OPEN:hello.bin,creat,append
    cat >app.sh <<'APP'
#!/bin/sh
# an unmodified HTTP app: the request line must be the client's own
IFS= read -r first
sed -u '/^\r$/q' >/dev/null
case $first in
"GET /hello HTTP/1.1"*) printf 'HTTP/1.0 200 OK\r\n\r\nhello from the app\n' ;;
*) printf 'HTTP/1.0 400 Bad Request\r\n\r\nnot HTTP\n' ;;
esac
APP
    chmod +x app.sh
    proc_start app.log nsenter -t "$ENC" -n -- socat TCP-LISTEN:8443,bind=127.0.0.1,reuseaddr,fork EXEC:./app.sh
}
fixture_up() {
    case $2 in
    *"tcp:0.0.0.0:8443"*) host_relay=1 ;;
    esac
}
# enclave_dig NAME: dig's answer in the enclave, through the DNS pair
enclave_dig() { nsenter -t "$ENC" -n -- dig +time=2 +tries=1 @127.0.0.1 "$1" 2>&1 || :; }
dns_answers() { enclave_dig s3.amazonaws.com | has -E '^s3\.amazonaws\.com\..*A[[:space:]]+10\.1\.2\.3$'; }
hello_routed() { grep -aq www.example.com hello.bin 2>/dev/null; }
fixture_after() {
    [ "${host_relay:-}" = 1 ] || die "the host relay did not run"
    local out
    out=$(curl -s --max-time 20 --interface 10.0.0.1 http://10.0.0.1:8443/hello) || die "curl through the relays failed"
    [ "$out" = "hello from the app" ] || die "the app behind the relays answered: $out"
    # the enclave side's stream to the host side reconnects with a backoff
    wait_until 30 dns_answers
    enclave_dig www.example.net | has 'status: REFUSED' || die "a name out of --dns-allow was not refused"
    proc_start s_client.log openssl s_client -connect 127.0.0.1:443 -servername www.example.com
    wait_until 20 hello_routed
}
EOF
}

# docs/attestation.md's seal: the secret is a file of the example's directory.
fixture_seal() {
    echo "fixture_before() { mkdir -p $T/var/secrets; echo \"db password\" >secret.txt; }"
}

# docs/observability.md's /readyz: an airlock with its metrics listener there.
fixture_readyz() {
    cat <<'EOF'
fixture_before() {
    printf 'metrics: tcp:127.0.0.1:9464\nrelays:\n  - {listen: tcp:127.0.0.1:8443, target: tcp:127.0.0.1:8080}\n' >m.yaml
    proc_start m.log airlock run -c m.yaml
    wait_log m.log 'airlock running' 30
}
fixture_after() { curl -sf http://127.0.0.1:9464/readyz | has -x ready || die "not ready"; }
EOF
}

# fixture_for PAGE FILE: the fixture of an example, if it has one.
fixture_for() {
    case $1 in
    README.md) grep -q 'airlock relay tcp:0.0.0.0:8443' "$2" && fixture_use ;;
    docs/attestation.md) grep -q 'airlock attest seal' "$2" && fixture_seal ;;
    docs/observability.md) grep -q '/readyz' "$2" && fixture_readyz ;;
    esac
    return 0
}

# The runner, in the example's own namespaces: its directory is the cwd.
cat >"$T/runner.sh" <<'EOF'
set -euo pipefail
. "$ROOT/scripts/lib.sh"
ip link set lo up
for a in $(grep -Eo '\b10\.[0-9]+\.[0-9]+\.[0-9]+\b' example.sh | sort -u); do ip addr add "$a/32" dev lo; done
ip addr add 10.0.0.1/32 dev lo 2>/dev/null || :
mount -t tmpfs tmpfs /run
mkdir -p /run/airlock
proc_start enclave.log unshare --net bash -c 'ip link set lo up && exec sleep 100000'
ENC=$LAST_PID
enclave_apart() { [ "$(readlink "/proc/$ENC/ns/net")" != "$(readlink /proc/self/ns/net)" ]; }
wait_until 10 enclave_apart
fixture_before() { :; }
fixture_up() { :; }
fixture_after() { :; }
[ ! -s fixture.sh ] || . ./fixture.sh
cat >airlock.yaml <<YAML
directory: {backend: memory}
control: unix:/run/airlock/ctl.sock
pools:
  - name: grid
    command: [/bin/sh, -c, "echo WAITING_LOGIN; exec sleep 100000"]
    endpoint: "tcp:127.0.0.1:{port}"
    ports: 20000-20009
    dir: $PWD/grid
    min_idle: 3
    max_idle: 3
    events: {ready: "^WAITING_LOGIN$", login: "^LOGIN (.+)$"}
YAML
idle_instances() { [ "$(airlock ctl instances | grep -c ' idle ')" = 3 ]; }
fixture_before
while IFS=$'\t' read -r what cmd; do
    read -r kind side n <<<"$what"
    in=()
    [ "$side" = host ] || in=(nsenter -t "$ENC" -n --)
    log "$side: $cmd"
    if [ "$kind" = daemon ]; then
        proc_start "d$n.log" "${in[@]}" bash -c "exec $cmd"
        wait_log "d$n.log" 'airlock running' 30 "$LAST_PID"
        case $cmd in *"run -c airlock.yaml"*) wait_until 30 idle_instances ;; esac
        fixture_up "$n" "$cmd"
    else
        rc=0
        "${in[@]}" bash -o pipefail -ec "$cmd" >"c$n.out" 2>&1 || rc=$?
        [ "$rc" = 0 ] || { tail -20 "c$n.out"; die "exit $rc: $cmd"; }
    fi
done <commands
fixture_after
log "example ok"
EOF

# run_shell PAGE LINE FILE LANG: runs the shell example FILE of PAGE; 0 when
# every command of it succeeded.
run_shell() {
    local w=$3.d
    mkdir -p "$w/bin"
    ln -s "$AIRLOCK" "$w/bin/airlock"
    printf '#!/bin/sh\nexec "$@"\n' >"$w/bin/sudo"
    chmod +x "$w/bin/sudo"
    sed -e "s|\bvsock:[a-z0-9]*:\([0-9]*\)|unix:$w/vsock-\1.sock|g" -e "s|/etc/airlock/|$T/etc/|g" \
        -e "s|/var/lib/airlock/|$T/var/|g" -e "s|/var/log/airlock/|$T/log/|g" "$3" >"$w/example.sh"
    # AF_VSOCK is never used on this machine (docs/TESTING.md): an endpoint
    # the rewrite above missed fails the example rather than run it
    ! grep -Eq '(^|[^h])vsock:' "$w/example.sh" || { echo "a vsock endpoint is left in it" >"$w/out.log" && return 1; }
    shell_commands "$4" "$w/example.sh" >"$w/commands"
    proxy_pairs "$w/commands" >"$w/out.log" || return 1
    fixture_for "$1" "$3" >"$w/fixture.sh"
    (cd "$w" && PATH=$w/bin:$PATH ROOT=$ROOT timeout -k 5 120 \
        unshare --net --mount --pid --fork --mount-proc --propagation private \
        bash "$T/runner.sh") >"$w/out.log" 2>&1
}

bad=0 checked=0 ran=0 skipped=0
# the example config the package installs, and airlock.yaml(5)'s
sed -n '/^\.SH EXAMPLE$/,/^\.fi$/p' "$ROOT/docs/man/airlock.yaml.5" | sed -e '1,2d' -e '$d' -e 's/\\-/-/g' >"$T/man5.yaml"
for f in "$ROOT/dist/airlock.yaml" "$T/man5.yaml"; do
    if out=$("$AIRLOCK" check -c "$f" 2>&1) && [ -s "$f" ]; then
        checked=$((checked + 1))
    else
        bad=$((bad + 1))
        echo "FAIL $f: airlock check: $out"
    fi
done
for page in "$ROOT/README.md" "$ROOT"/docs/*.md; do
    name=${page#"$ROOT/"}
    dir=$T/doc/$(basename "$page" .md)
    doc_blocks "$page" "$dir"
    while read -r n lang line note; do
        case $note in
        "not run: "*)
            skipped=$((skipped + 1))
            log "$note: $name:$line ($lang)"
            continue
            ;;
        "fragment: "*)
            fragment_file "${note#fragment: }" "$dir/$n.yaml" ||
                { bad=$((bad + 1)) && echo "FAIL $name:$line: no frame for a fragment of ${note#fragment: }" && continue; }
            ;;
        esac
        case $lang in
        yaml)
            local_yaml "$dir/$n.yaml"
            if out=$("$AIRLOCK" check -c "$dir/$n.yaml" 2>&1); then
                checked=$((checked + 1))
            else
                bad=$((bad + 1))
                echo "FAIL $name:$line: airlock check: $out"
            fi
            ;;
        *)
            if run_shell "$name" "$line" "$dir/$n.$lang" "$lang"; then
                ran=$((ran + 1))
                log "ran $name:$line"
            else
                bad=$((bad + 1))
                echo "FAIL $name:$line: the example failed:"
                tail -20 "$dir/$n.$lang.d/out.log" | sed 's/^/    /'
            fi
            ;;
        esac
    done <"$dir/index"
    if ls "$dir"/*.yaml >/dev/null 2>&1; then
        yaml_relays "$dir"/*.yaml >"$dir/relays"
        proxy_pairs "$dir/relays" >"$dir/pairs" ||
            { bad=$((bad + 1)) && echo "FAIL $name: relays of its YAML examples: $(cat "$dir/pairs")"; }
    fi
done
log "$checked yaml examples checked, $ran shell examples run, $skipped examples not run"
[ "$bad" = 0 ] || fail "$bad examples are wrong"
log ok
