#!/bin/bash
# t_check_config: `airlock check -c` exits 0 on a valid file and 1 on a broken
# one with an error naming file:line and the key; `airlock run -c` refuses a
# broken file the same way before listening; `airlock relay` with bad
# arguments (an option given twice among them, --metrics on LISTEN) exits 2
# with a clear message. A file with several errors gets them all, in file
# order, then their number (50 at most shown); an unquoted IPv6 CIDR is
# named as YAML's list with how to quote it; what run would fail on is
# refused by check too (listeners that cannot bind side by side, each clash
# told, a name as a listen address, missing directories, a file in the way
# of a socket, a keyset that does not load). YAML that would cost libyaml
# quadratic time (100k levels of nesting in each form, 40k anchors, 20k
# directives) is refused at once.
. "$(dirname "$0")/lib.sh"

cd "$T" || exit 1

# run_al EXPECTED_STATUS ARGS...: runs airlock (never for long), stderr and
# stdout in $T/out; fails on another status
run_al() {
    local want=$1 rc=0
    shift
    timeout 10 "$AIRLOCK" "$@" >"$T/out" 2>&1 || rc=$?
    [ "$rc" != 124 ] || fail "airlock $* kept running"
    [ "$rc" = "$want" ] || fail "airlock $* exited $rc, expected $want: $(head -3 "$T/out")"
}

# broken NAME LINE KEY MESSAGE: check -c NAME.yaml fails with
# "NAME.yaml:LINE: KEY: MESSAGE..." (KEY may be empty), run -c too
broken() {
    local want="airlock: $1.yaml:$2: ${3:+$3: }$4"
    run_al 1 check -c "$1.yaml"
    [ "$(wc -l <"$T/out")" = 1 ] || fail "$1: expected one line of error, got: $(cat "$T/out")"
    [[ $(cat "$T/out") == "$want"* ]] || fail "$1: got '$(cat "$T/out")', expected '$want...'"
    run_al 1 run -c "$1.yaml"
    [[ $(cat "$T/out") == "$want"* ]] || fail "$1 (run): got '$(cat "$T/out")'"
}

P=$(free_port)
cat >valid.yaml <<EOF
# every setting once
threads: 2
log_level: debug
metrics: unix:$T/metrics.sock
drain_timeout: 5s
relays:
  - name: web
    listen: tcp:127.0.0.1:$P
    target: tcp:svc.example:443
    allow: [10.0.0.0/8, 127.0.0.1, "[2001:db8::]/32"]
    max_connections: 100
    connect_timeout: 250ms
    idle_timeout: 0
    keepalive: false
    splice: no
    send_proxy: v2
    accept_proxy: none
  - listen: unix:$T/app.sock
    target: hvsock:$T/vm.sock:5000
    accept_proxy: v2
EOF
log "a valid file"
run_al 0 check -c valid.yaml
[ "$(cat "$T/out")" = "valid.yaml: ok (2 relays)" ] || fail "check output: $(cat "$T/out")"
[ ! -e "$T/app.sock" ] && [ ! -e "$T/metrics.sock" ] && ! tcp_up "$P" ||
    fail "check listened on something"

log "broken files: file:line: key: message"
printf 'relays:\n  - name: web\n    listen: tcp:127.0.0.1:8080\n   target: tcp:127.0.0.1:80\n' >syntax.yaml
broken syntax 4 "invalid YAML" "did not find expected '-' indicator (while parsing a block collection on line 2)"
printf 'relays:\n  - name: web\n    listen: "tcp:127.0.0.1:8080\n    target: tcp:127.0.0.1:80\n' >quote.yaml
broken quote 5 "invalid YAML" "found unexpected end of stream (while scanning a quoted scalar on line 3)"
printf 'relays:\n  - name: web\n    listen: tcp:127.0.0.1:8080\n    target: tcp:127.0.0.1:80\n    idle_timout: 5s\n' >unknown.yaml
broken unknown 5 "relays[0]" "unknown key 'idle_timout' (did you mean 'idle_timeout'?)"
printf 'bogus: 1\nrelays:\n  - listen: tcp:127.0.0.1:8080\n    target: tcp:127.0.0.1:80\n' >topunknown.yaml
broken topunknown 1 "" "unknown key 'bogus'"
printf 'listen: tcp:127.0.0.1:1\nrelays:\n  - listen: tcp:127.0.0.1:8080\n    target: tcp:127.0.0.1:80\n' >toplisten.yaml
broken toplisten 1 "" "unknown key 'listen' (it is a relay setting"
printf 'relays:\n  - name: web\n    listen: tcp:127.0.0.1:99999\n    target: tcp:127.0.0.1:80\n' >badport.yaml
broken badport 3 "relays[0].listen" "expected an endpoint (tcp:HOST:PORT, udp:HOST:PORT, unix:/path, vsock:CID:PORT, hvsock:/path:PORT): tcp: port must be 1-65535"
printf 'relays:\n  - name: web\n    listen: tcp:127.0.0.1:8080\n    target: htp:example.org:80\n' >badscheme.yaml
broken badscheme 4 "relays[0].target" "expected an endpoint"
printf 'relays:\n  - name: web\n    listen: tcp:127.0.0.1:8080\n    connect_timeout: 2s\n' >notarget.yaml
broken notarget 2 "relays[0].target" "missing from relay 'web': expected an endpoint"
printf 'relays:\n  - name: web\n    listen: tcp:127.0.0.1:8080\n    targets:\n      - vsock:16:5000\n      - vsock:17:5000\n      - vsock:16:5000\n' >duptargets.yaml
broken duptargets 7 "relays[0].targets[2]" "expected each endpoint once, not a duplicate of targets[0]"
printf 'relays:\n  - name: web\n    listen: tcp:127.0.0.1:8080\n    target: vsock:16:5000\n    targets: [vsock:17:5000]\n' >bothtargets.yaml
broken bothtargets 5 "relays[0].targets" "expected target: or targets:, not both"
printf 'relays:\n  - name: web\n    listen: tcp:127.0.0.1:8080\n    target: tcp:127.0.0.1:80\n  - name: web\n    listen: tcp:127.0.0.1:8081\n    target: tcp:127.0.0.1:81\n' >dupname.yaml
broken dupname 5 "relays[1].name" "expected a unique name; relays[0] is already called 'web'"
printf 'relays:\n  - listen: tcp:127.0.0.1:8080\n    target: tcp:127.0.0.1:80\n  - listen: tcp:127.0.0.1:8080\n    target: tcp:127.0.0.1:81\n' >duplisten.yaml
broken duplisten 4 "relays[1].listen" "expected an endpoint no other relay listens on; relays[0] ('relay1') already listens on tcp:127.0.0.1:8080"
printf 'proxies:\n  - listen: tcp:127.0.0.1:9100\n    backend: tcp:127.0.0.1:81\nmetrics: tcp:127.0.0.1:9100\n' >proxymetrics.yaml
broken proxymetrics 2 "proxies[0].listen" "expected an endpoint nothing else listens on; metrics already listens on tcp:127.0.0.1:9100"
printf 'metrics: unix:/tmp/t-check-ctl.sock\ncontrol: unix:/tmp/t-check-ctl.sock\ndirectory:\n  backend: memory\nrelays:\n  - listen: tcp:127.0.0.1:1\n    target: tcp:127.0.0.1:2\n' >ctlmetrics.yaml
broken ctlmetrics 2 "control" "expected an endpoint nothing else listens on; metrics already listens on unix:/tmp/t-check-ctl.sock"
printf 'relays:\n  - name: web\n    listen: tcp:127.0.0.1:8080\n    listen: tcp:127.0.0.1:8081\n    target: tcp:127.0.0.1:80\n' >dupkey.yaml
broken dupkey 4 "relays[0].listen" "duplicate key; first set on line 3"
printf 'relays:\n  - name: web\n    listen: tcp:127.0.0.1:8080\n    target: tcp:127.0.0.1:80\n    idle_timeout: soon\n' >baddur.yaml
broken baddur 5 "relays[0].idle_timeout" "expected a duration"
printf 'relays:\n  - name: web\n    listen: tcp:127.0.0.1:8080\n    target: tcp:127.0.0.1:80\n    allow: [10.0.0.0/8, 10.0.0.300/8]\n' >badallow.yaml
broken badallow 5 "relays[0].allow[1]" "expected a CIDR"
printf 'relays:\n  - name: web\n    listen: unix:/tmp/x.sock\n    target: tcp:127.0.0.1:80\n    allow: [10.0.0.0/8]\n' >unixallow.yaml
broken unixallow 5 "relays[0].allow" "allow applies to tcp, udp and vsock listeners"
printf 'metrics: tcp:127.0.0.1:8080\nrelays:\n  - listen: tcp:127.0.0.1:8080\n    target: tcp:127.0.0.1:80\n' >metricsclash.yaml
broken metricsclash 1 "metrics" "expected an endpoint no relay listens on"
printf 'threads: 2\n' >norelays.yaml
broken norelays 1 "relays" "expected at least one relay"
: >empty.yaml
broken empty 1 "" "expected settings (a mapping with relays:), found an empty file"

log "tls: and verify: blocks"
hdr='relays:\n  - name: web\n    listen: tcp:127.0.0.1:8080\n    target: tcp:127.0.0.1:80\n'
printf "$hdr    tls:\n      provider: foo\n" >tlsprov.yaml
broken tlsprov 6 "relays[0].tls.provider" "expected nitro, tsm or sim (the evidence source)"
printf "$hdr    tls:\n      provider: sim\n" >tlsnoroot.yaml
broken tlsnoroot 6 "relays[0].tls.sim_root" "expected the sim root's file with provider: sim"
printf "$hdr    tls:\n      provider: nitro\n      sim_root: /x.pem\n" >tlsstray.yaml
broken tlsstray 7 "relays[0].tls.sim_root" "expected the sim root's file with provider: sim (and only with it)"
printf "$hdr    tls:\n      provider: sim\n      sim_root: /x.pem\n      validity: 1s\n" >tlsvalid.yaml
broken tlsvalid 8 "relays[0].tls.validity" "expected a duration from 3s to 168h"
printf "$hdr    tls:\n      provider: sim\n      sim_root: /x.pem\n      fresh_evidence_rate: 5/m\n" >tlsrate.yaml
broken tlsrate 8 "relays[0].tls.fresh_evidence_rate" "expected a rate from 0 to 100000 per second"
printf "$hdr    send_proxy: v2\n    verify: {policy: {any_image: true}}\n" >tlsproxy.yaml
broken tlsproxy 5 "relays[0].send_proxy" "expected none with verify:"
printf "$hdr    tls: {provider: sim, sim_root: /x.pem}\n    verify: {policy: {any_image: true}}\n" >tlsboth.yaml
broken tlsboth 6 "relays[0].verify" "expected tls: or verify:, not both"
printf 'relays:\n  - listen: udp:127.0.0.1:53\n    target: tcp:127.0.0.1:53\n    tls: {provider: sim, sim_root: /x.pem}\n' >tlsudp.yaml
broken tlsudp 4 "relays[0].tls" "applies to stream relays with an endpoint target"
printf 'routers:\n  - listen: tcp:127.0.0.1:8080\n    default: tcp:127.0.0.1:80\n    tls: {provider: sim, sim_root: /x.pem}\n' >tlsrouter.yaml
broken tlsrouter 4 "routers[0]" "unknown key 'tls'"
printf "$hdr    verify:\n      server_name: x.example\n" >verifynopol.yaml
broken verifynopol 6 "relays[0].verify.policy" "missing: expected the attestation policy the target must meet"
printf "$hdr    verify:\n      server_name: '*.example'\n      policy: {any_image: true}\n" >verifysni.yaml
broken verifysni 6 "relays[0].verify.server_name" "expected a DNS name (the TLS server name, SNI)"
printf "$hdr    verify:\n      fresh: maybe\n      policy: {any_image: true}\n" >verifyfresh.yaml
broken verifyfresh 6 "relays[0].verify.fresh" "expected true or false"
printf "$hdr    verify: {policy: {type: snp, roots: /r.pem, any_image: true}}\n" >verifysnp.yaml
broken verifysnp 5 "relays[0].verify" "expected policy type nitro or tdx: SEV-SNP evidence needs its VCEK, which RA-TLS evidence does not carry"
# a key of another type than the policy's: refused, never ignored
printf "$hdr    verify: {policy: {type: tdx, min_tcb: ffffffffffffffff}}\n" >verifytcb.yaml
broken verifytcb 5 "relays[0].verify.policy.min_tcb" "applies to type snp only"
printf "$hdr    verify: {policy: {measurement: %096d}}\n" 0 >verifymeas.yaml
broken verifymeas 5 "relays[0].verify.policy.measurement" "applies to types snp and tdx only"
# every type has debug guests (Nitro: debug-mode enclaves)
printf "$hdr    verify: {policy: {allow_debug: true, any_image: true}}\n" >verifydebug.yaml
run_al 0 check -c verifydebug.yaml
# a policy that pins no image takes any enclave of its type: only when it says so
printf "$hdr    verify:\n      policy: {type: tdx, allow_debug: true}\n" >verifyany.yaml
broken verifyany 6 "relays[0].verify.policy.measurement" "missing: expected the image to pin (measurement, the TD's firmware, and rtmrs 1 and 2, what it boots), or any_image: true to accept every tdx enclave, whoever launched it"
printf "$hdr    verify:\n      policy:\n        sim_root: /x.pem\n" >verifyanysim.yaml
broken verifyanysim 7 "relays[0].verify.policy.pcrs" "missing: expected the image to pin (pcrs), or any_image: true to accept every nitro enclave, whoever launched it"
# what the file alone cannot tell: the sim root and the policy's files load here
printf "$hdr    tls: {provider: sim, sim_root: $T/none.pem}\n" >tlsnofile.yaml
run_al 1 check -c tlsnofile.yaml
[ "$(cat "$T/out")" = "airlock: tlsnofile.yaml: relays[0].tls.sim_root: $T/none.pem: No such file or directory" ] ||
    fail "missing sim root: $(cat "$T/out")"
echo "not a key" >"$T/junk.pem"
printf "$hdr    tls: {provider: sim, sim_root: $T/junk.pem}\n" >tlsjunk.yaml
# a sim root others may change is not read at all
chmod 0646 "$T/junk.pem"
run_al 1 run -c tlsjunk.yaml
[ "$(cat "$T/out")" = "airlock: tlsjunk.yaml: relays[0].tls.sim_root: $T/junk.pem: uid 0, mode 0646: others than airlock's user (uid 0) and root may change it" ] ||
    fail "sim root others may change: $(cat "$T/out")"
chmod 0644 "$T/junk.pem"
run_al 1 run -c tlsjunk.yaml
[ "$(cat "$T/out")" = "airlock: tlsjunk.yaml: relays[0].tls.sim_root: $T/junk.pem: not a sim root (key and certificate, PEM)" ] ||
    fail "junk sim root: $(cat "$T/out")"
printf "$hdr    verify: {policy: {sim_root: $T/none.pem, any_image: true}}\n" >verifynofile.yaml
run_al 1 check -c verifynofile.yaml
[ "$(cat "$T/out")" = "airlock: verifynofile.yaml: relays[0].verify.policy: $T/none.pem: No such file or directory" ] ||
    fail "missing policy file: $(cat "$T/out")"
"$AIRLOCK" attest get --provider sim --sim-root "$T/sim.pem" >/dev/null 2>&1 || fail "no sim root"
printf "$hdr    tls: {provider: sim, sim_root: $T/sim.pem}\n  - listen: tcp:127.0.0.1:8081\n    target: tcp:127.0.0.1:80\n    verify: {policy: {sim_root: $T/sim.pem, any_image: true}}\n" >tlsok.yaml
run_al 0 check -c tlsok.yaml

log "deep nesting, many anchors and directives: refused before libyaml's quadratic work"
# 100k levels on one line; libyaml alone took 10-60 s on the flow forms and
# on the anchors (run_al gives airlock 10 s)
rep() { awk -v s="$2" -v e="$3" -v n="$1" 'BEGIN { for (i = 0; i < n; i++) printf "%s", s; print e }'; }
rep 100000 '[' '' >deepflow.yaml
broken deepflow 1 "" "nesting deeper than 64"
{ printf 'threads: '; rep 100000 '{a: ' ''; } >deepmap.yaml
broken deepmap 1 "" "nesting deeper than 64"
rep 100000 '- ' 'x' >deepblock.yaml
broken deepblock 1 "" "nesting deeper than 64"
awk 'BEGIN { for (i = 0; i < 65; i++) printf "%*sk%d:\n", 2 * i, "", i }' >deeplines.yaml
broken deeplines 65 "" "nesting deeper than 64"
awk 'BEGIN { print "threads:"; for (i = 0; i < 40000; i++) print "- &a" i " x"
    for (i = 0; i < 40000; i++) print "- *a" i }' >anchors.yaml
broken anchors 258 "" "more than 256 anchors and aliases"
awk 'BEGIN { for (i = 0; i < 20000; i++) print "%TAG !t" i "! tag:t" i ":"; print "---" }' >tags.yaml
broken tags 17 "" "more than 16 YAML directives"
printf 'metrics: {endpoint: "unix:%s/m.sock", group: nogroup%s}\nrelays:\n  - listen: {endpoint: "unix:%s/r.sock", owner: nouser%s}\n    target: tcp:127.0.0.1:80\n' \
    "$T" $$ "$T" $$ >nouser.yaml
run_al 1 check -c nouser.yaml
[ "$(cat "$T/out")" = "airlock: nouser.yaml: relays[0].listen.owner: no such user 'nouser$$' on this machine
airlock: nouser.yaml: metrics.group: no such group 'nogroup$$' on this machine
2 errors" ] || fail "unknown owner and group: $(cat "$T/out")"
sed -i "s/owner: nouser$$/owner: '0'/" nouser.yaml
run_al 1 run -c nouser.yaml
[ "$(cat "$T/out")" = "airlock: nouser.yaml: metrics.group: no such group 'nogroup$$' on this machine" ] ||
    fail "unknown group: $(cat "$T/out")"
[ ! -e "$T/m.sock" ] && [ ! -e "$T/r.sock" ] || fail "a refused config listened"
run_al 1 check -c nonexistent.yaml
[ "$(cat "$T/out")" = "airlock: nonexistent.yaml: cannot open: No such file or directory" ] ||
    fail "missing file: $(cat "$T/out")"
run_al 2 check
grep -q '^usage: airlock' "$T/out" || fail "check without -c: no usage"

log "every error, in file order, then how many"
read -r P2 P3 <<<"$(free_ports 2)"
cat >many.yaml <<EOF
threads: 999
relays:
  - name: web
    listen: tcp:127.0.0.1:$P2
    target: tcp:127.0.0.1:80
    idle_timeout: soon
  - listen: tcp:127.0.0.1:$P
    idle_timout: 5s
logs:
  forward: tcp:127.0.0.1:9
  buffer: 1B
EOF
for cmd in check run; do
    run_al 1 $cmd -c many.yaml
    [ "$(cat "$T/out")" = "airlock: many.yaml:1: threads: expected an integer from 0 to 256 (0: one per core)
airlock: many.yaml:6: relays[0].idle_timeout: expected a duration (250ms, 5s, 2m, 1h; a bare integer is seconds)
airlock: many.yaml:7: relays[1].target: missing from relay 'relay2': expected an endpoint (tcp:HOST:PORT, udp:HOST:PORT, unix:/path, vsock:CID:PORT, hvsock:/path:PORT) or egress, or targets: a list of endpoints
airlock: many.yaml:8: relays[1]: unknown key 'idle_timout' (did you mean 'idle_timeout'?)
airlock: many.yaml:11: logs.buffer: expected a size from 64KiB to 1GiB (B, KiB, MiB, GiB; a bare integer is bytes)
5 errors" ] || fail "many errors ($cmd): $(cat "$T/out")"
done
! tcp_up "$P2" && ! tcp_up "$P" || fail "a refused config listened"
# a garbage file is not a flood
{
    echo 'relays:'
    for i in $(seq 1 60); do
        echo "  - {listen: 'tcp:127.0.0.1:$((20000 + i))', target: 'tcp:127.0.0.1:1', splice: maybe}"
    done
} >flood.yaml
run_al 1 check -c flood.yaml
[ "$(grep -c '^airlock: flood.yaml:[0-9]*: relays\[[0-9]*\].splice: expected true or false$' "$T/out")" = 50 ] &&
    [ "$(sed -n 50p "$T/out")" = "airlock: flood.yaml:51: relays[49].splice: expected true or false" ] &&
    [ "$(tail -1 "$T/out")" = "60 errors (the first 50 shown)" ] && [ "$(wc -l <"$T/out")" = 51 ] ||
    fail "flood: $(head -3 "$T/out") ... $(tail -2 "$T/out")"

log "YAML's quoting traps: what YAML made of it, and how to quote it"
printf 'relays:\n  - listen: tcp:127.0.0.1:%s\n    target: tcp:127.0.0.1:80\n    allow: [10.0.0.0/8, [2001:db8::]/32]\n' "$P" >v6.yaml
broken v6 4 "invalid YAML" "found unexpected ':' (while scanning a plain scalar on line 4); unquoted, [...] is a YAML list: quote the whole value, \"[2001:db8::]/32\""

log "what run would fail on: bind conflicts, names, missing directories, files in the way"
printf 'relays:\n  - listen: tcp:0.0.0.0:%s\n    target: tcp:127.0.0.1:80\n  - listen: tcp:127.0.0.1:%s\n    target: tcp:127.0.0.1:81\n' "$P" "$P" >wildcard.yaml
broken wildcard 4 "relays[1].listen" "expected an endpoint no other relay listens on; relays[0] ('relay1') already listens on tcp:0.0.0.0:$P"
# each clash between blocks is told, not only the first: a relay whose
# name and listener both clash, metrics on a relay's port, the control
# socket on a relay's socket file, two sinks on one port
cat >clashes.yaml <<EOF
metrics: tcp:0.0.0.0:$P2
control: unix:$T/c.sock
relays:
  - name: web
    listen: tcp:0.0.0.0:$P
    target: tcp:127.0.0.1:80
  - name: web
    listen: tcp:127.0.0.1:$P
    target: tcp:127.0.0.1:81
  - name: m
    listen: tcp:127.0.0.1:$P2
    target: tcp:127.0.0.1:82
  - name: u
    listen: unix:$T/c.sock
    target: tcp:127.0.0.1:83
log_sinks:
  - {name: a, listen: "tcp:127.0.0.1:$P3", file: $T/a.log}
  - {name: b, listen: "tcp:[::1]:$P3", file: $T/b.log}
  - {name: c, listen: "tcp:0.0.0.0:$P3", file: $T/c.log}
directory: {backend: memory}
EOF
for cmd in check run; do
    run_al 1 $cmd -c clashes.yaml
    [ "$(cat "$T/out")" = "airlock: clashes.yaml:1: metrics: expected an endpoint no relay listens on; relays[2] ('m') already listens on tcp:127.0.0.1:$P2
airlock: clashes.yaml:2: control: expected an endpoint nothing else listens on; relays[3] ('u') already listens on unix:$T/c.sock
airlock: clashes.yaml:7: relays[1].name: expected a unique name; relays[0] is already called 'web'
airlock: clashes.yaml:8: relays[1].listen: expected an endpoint no other relay listens on; relays[0] ('web') already listens on tcp:0.0.0.0:$P
airlock: clashes.yaml:19: log_sinks[2].listen: expected an endpoint nothing else listens on; log_sinks[0] ('a') already listens on tcp:127.0.0.1:$P3
5 errors" ] || fail "clashes ($cmd): $(cat "$T/out")"
done
! tcp_up "$P" && ! tcp_up "$P2" && ! tcp_up "$P3" || fail "a refused config listened"
printf 'relays:\n  - listen: tcp:localhost:%s\n    target: tcp:127.0.0.1:80\n' "$P" >byname.yaml
broken byname 2 "relays[0].listen" "expected an IP address to listen on (0.0.0.0, 127.0.0.1, [::1]), not the name 'localhost'"
: >"$T/in-the-way.sock"
cat >host.yaml <<EOF
metrics: unix:$T/in-the-way.sock
relays:
  - listen: unix:$T/no-such-dir/r.sock
    target: tcp:127.0.0.1:80
log_sinks:
  - listen: tcp:127.0.0.1:$P
    file: $T/no-such-dir/sink.log
directory: {backend: memory}
pools:
  - command: [/bin/sleep, "100"]
    endpoint: "tcp:127.0.0.1:{port}"
    ports: 20000-20009
    dir: $T/no-such-dir/pool
    events: {ready: x, login: "(.+)"}
EOF
for cmd in check run; do
    run_al 1 $cmd -c host.yaml
    [ "$(cat "$T/out")" = "airlock: host.yaml: relays[0].listen: no directory $T/no-such-dir
airlock: host.yaml: metrics: $T/in-the-way.sock exists and is not a socket
airlock: host.yaml: log_sinks[0].file: no directory $T/no-such-dir
airlock: host.yaml: pools[0].dir: no directory $T/no-such-dir
4 errors" ] || fail "host faults ($cmd): $(cat "$T/out")"
done
[ -f "$T/in-the-way.sock" ] && [ ! -e "$T/no-such-dir" ] && ! tcp_up "$P" || fail "check or run touched something"
# a proxy's keyset loads (the static build, without field encryption,
# refuses the route itself)
cat >keyset.yaml <<EOF
proxies:
  - listen: tcp:127.0.0.1:$P
    backend: tcp:127.0.0.1:1
    keyset: $T/none.json
    routes:
      - {path: /a, decrypt: true}
      - {path: /b, decrypt: true}
      - {path: /c, decrypt: true, keyset: $T/none2.json}
      - {path: /d}
EOF
run_al 1 check -c keyset.yaml
grep -q 'field encryption is not in this build' "$T/out" ||
    [ "$(cat "$T/out")" = "airlock: keyset.yaml: proxies[0].keyset: $T/none.json: No such file or directory
airlock: keyset.yaml: proxies[0].routes[2].keyset: $T/none2.json: No such file or directory
2 errors" ] || fail "missing keysets: $(cat "$T/out")"

log "airlock relay with bad arguments exits 2"
# relay_bad MESSAGE ARGS...: exit status 2 and MESSAGE (fixed string) on stderr
relay_bad() {
    local msg=$1
    shift
    run_al 2 relay "$@"
    grep -qF -- "$msg" "$T/out" || fail "airlock relay $*: no '$msg' in: $(head -3 "$T/out")"
    ! grep -q 'expected expected' "$T/out" || fail "airlock relay $*: $(head -1 "$T/out")"
}
L=tcp:127.0.0.1:$P
relay_bad "usage: airlock relay LISTEN TARGET"
relay_bad "usage: airlock relay LISTEN TARGET" "$L"
relay_bad "usage: airlock relay LISTEN TARGET" "$L" tcp:127.0.0.1:1 extra
relay_bad "airlock relay: LISTEN 'foo': expected an endpoint (tcp:HOST:PORT" foo tcp:127.0.0.1:1
relay_bad "airlock relay: TARGET 'tcp:127.0.0.1:99999': expected an endpoint" "$L" tcp:127.0.0.1:99999
relay_bad "airlock relay: --idle-timeout 'xyz': expected a duration" "$L" tcp:127.0.0.1:1 --idle-timeout xyz
relay_bad "airlock relay: --connect-timeout '0': expected a duration" "$L" tcp:127.0.0.1:1 --connect-timeout 0
relay_bad "airlock relay: --send-proxy 'v1': expected v2 or none" "$L" tcp:127.0.0.1:1 --send-proxy v1
relay_bad "airlock relay: --max-connections '-1': expected an integer from 0 to 10000000" "$L" tcp:127.0.0.1:1 --max-connections -1
relay_bad "airlock relay: --metrics 'tcp:0.0.0.0:$P': expected an endpoint no relay listens on; LISTEN is '$L'" "$L" tcp:127.0.0.1:1 --metrics "tcp:0.0.0.0:$P"
relay_bad "airlock relay: --metrics 'unix:$T/r.sock': expected an endpoint no relay listens on" "unix:$T/r.sock" tcp:127.0.0.1:1 --metrics "unix:$T/r.sock"
relay_bad "airlock relay: --threads '999': expected an integer from 0 to 256" "$L" tcp:127.0.0.1:1 --threads 999
relay_bad "airlock relay: --log-level 'loud': expected error, warn, info or debug" "$L" tcp:127.0.0.1:1 --log-level loud
relay_bad "airlock relay: --allow '300.0.0.0/8': expected a CIDR (10.0.0.0/8, [2001:db8::]/32), an address or cid:N: invalid IPv4 address" "$L" tcp:127.0.0.1:1 --allow 300.0.0.0/8
relay_bad "airlock relay: --metrics 'bogus': expected an endpoint (tcp:HOST:PORT" "$L" tcp:127.0.0.1:1 --metrics bogus
relay_bad "airlock relay: LISTEN 'tcp:localhost:$P': expected an IP address to listen on (0.0.0.0, 127.0.0.1, [::1]), not the name 'localhost'" tcp:localhost:"$P" tcp:127.0.0.1:1
relay_bad "airlock relay: --metrics: expected an IP address to listen on (0.0.0.0, 127.0.0.1, [::1]), not the name 'localhost'" "$L" tcp:127.0.0.1:1 --metrics tcp:localhost:1
relay_bad "allow applies to tcp, udp and vsock listeners" unix:"$T/a.sock" tcp:127.0.0.1:1 --allow 10.0.0.0/8
relay_bad "unrecognized option '--bogus'" "$L" tcp:127.0.0.1:1 --bogus
relay_bad "port must be 1-65535" "$L" tcp:127.0.0.1:99999
# the options are the keys of a relay: the same setters and messages as the file
relay_bad "airlock relay: --name 'a\"b': expected a name of 1-63 characters from A-Z a-z 0-9 _ . -" "$L" tcp:127.0.0.1:1 --name 'a"b'
relay_bad "airlock relay: --name 'a b': expected a name of 1-63" "$L" tcp:127.0.0.1:1 --name 'a b'
relay_bad "airlock relay: unrecognized option '--idle-timout' (did you mean '--idle-timeout'?)" "$L" tcp:127.0.0.1:1 --idle-timout 5s
relay_bad "airlock relay: --max-flows '0': expected an integer from 1 to 65536" "$L" udp:127.0.0.1:1 --max-flows 0
relay_bad "airlock relay: --max-datagram: applies to datagram relays" "$L" tcp:127.0.0.1:1 --max-datagram 512
# an option given twice is refused, as a file's duplicate key is (before, the
# last one won quietly); a list's option adds to it
relay_bad "airlock relay: --name: given twice" "$L" tcp:127.0.0.1:1 --name a --name b
relay_bad "airlock relay: --no-splice: given twice" "$L" tcp:127.0.0.1:1 --splice --no-splice
relay_bad "airlock relay: --metrics: given twice" "$L" tcp:127.0.0.1:1 --metrics tcp:127.0.0.1:1 --metrics=tcp:127.0.0.1:2
relay_bad "airlock relay: unrecognized option '--bogus'" "$L" tcp:127.0.0.1:1 --allow 10.0.0.0/8 --allow 10.1.0.0/16 --bogus
run_al 2 router "$L" --route a.example=tcp:127.0.0.1:1 --route b.example=tcp:127.0.0.1:2 --peek-timeout 1s --peek-timeout 2s
grep -qF "airlock router: --peek-timeout: given twice" "$T/out" || fail "router option twice: $(head -1 "$T/out")"
run_al 2 router "$L" --egress-allow x:1
grep -qF "airlock router: --egress-allow: applies to airlock relay only" "$T/out" ||
    fail "router with a relay option: $(head -1 "$T/out")"
printf 'relays:\n  - name: a"b\n    listen: %s\n    target: tcp:127.0.0.1:1\n' "$L" >quote.yaml
run_al 1 check -c quote.yaml
[ "$(cat "$T/out")" = "airlock: quote.yaml:2: relays[0].name: expected a name of 1-63 characters from A-Z a-z 0-9 _ . -" ] ||
    fail "name with a quote in a file: $(cat "$T/out")"
tcp_up "$P" && fail "a refused command line listened"
run_al 2 frob
grep -q "airlock: unknown command 'frob'" "$T/out" || fail "unknown command: $(head -1 "$T/out")"
run_al 0 help
grep -q '^usage: airlock relay' "$T/out" || fail "help: no usage"
log "ok"
