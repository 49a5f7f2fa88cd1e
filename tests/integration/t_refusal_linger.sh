#!/bin/bash
# t_refusal_linger: a relay's refusal that answers (an egress relay's HTTP
# status, a router's TLS alert) reaches a client that goes on sending,
# also when the answer has to be sent again.
#
# In private network, mount and pid namespaces. For each refusal an
# iptables rule drops every packet of the relay's port towards the client
# while the client sends its request, the refusal is logged (the answer is
# written by then, and lost), and the client sends more bytes (a TLS
# ClientHello after its CONNECT, say); then the rule goes and the client
# reads until the relay closes. Before, the relay closed the socket at
# once: the bytes that came after met a closed socket, the kernel answered
# them with a reset and forgot the unacknowledged answer, so the client
# never read it and waited until its own timeout. Now the socket's write
# side is shut and what the client sends is dropped until it closes
# (transport_linger()): the answer is sent again and read whole, then the
# close. Refusals: a name not listed (403), an address not listed (403,
# after the dial began), a name that does not resolve (502), a connect
# that fails (502, from the closing hook), a GET (405), garbage (400), and
# a router's unrecognized_name alert; and the field-encryption proxy's
# answers that close (a body over max_body: 413, a bad request line: 400),
# which closed at once too. Afterwards every socket is closed.
. "$(dirname "$0")/lib.sh"

need iptables python3 ss
host_namespaces
resolv_conf 1

read -r E R CLOSED M P <<<"$(free_ports 5)"
cat >"$T/airlock.yaml" <<EOF
metrics: tcp:127.0.0.1:$M
relays:
  - name: egress
    listen: tcp:127.0.0.1:$E
    target: egress
    egress_allow:
      - svc.egress.test:443
      - nosuch.egress.test:443
      - 127.0.0.1:$CLOSED
routers:
  - name: sni
    listen: tcp:127.0.0.1:$R
    routes:
      - {name: alpha.test, target: tcp:127.0.0.1:$CLOSED}
EOF
if has_field; then
    keyset_file "$T/keys.json" acme k1 k1
    cat >>"$T/airlock.yaml" <<EOF
proxies:
  - name: api
    listen: tcp:127.0.0.1:$P
    backend: tcp:127.0.0.1:$CLOSED
    keyset: $T/keys.json
    max_body: 1KiB
    routes:
      - {name: seal, path: /seal, encrypt: ["\$.ssn"]}
EOF
fi
airlock_up al run -c "$T/airlock.yaml"
pid=$LAST_PID
LOG=$T/al.log
sockets() { fd_kinds "$pid" | cut -d' ' -f1; }
base=$(sockets)

# refused PORT REQUEST: the first line the client read (hex escapes in
# REQUEST; "hello:NAME" is a TLS ClientHello for NAME) and how its
# connection ended (eof, or the exception)
refused() {
    python3 - "$1" "$2" "$LOG" <<'PY'
import re, socket, ssl, subprocess, sys, time
port, req, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if req.startswith("hello:"):
    bio_in, bio_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(bio_in, bio_out, server_hostname=req[6:])
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    data = bio_out.read()
else:
    data = req.encode().decode("unicode_escape").encode("latin1")
rule = ["OUTPUT", "-p", "tcp", "--sport", str(port), "-j", "DROP"]
# an answer that ends a connection: a relay's close line, a proxy's status
closes = lambda: len(re.findall(r" close relay=| http proxy=\S+ conn=\d+ status=", open(log).read()))
before = closes()
s = socket.create_connection(("127.0.0.1", port), timeout=30)
subprocess.run(["iptables", "-I"] + rule, check=True)
try:
    s.sendall(data)
    deadline = time.time() + 30
    while closes() == before and time.time() < deadline:
        time.sleep(0.05)
    s.sendall(b"x" * 2000)  # what a client sends on before it reads
    time.sleep(0.2)
finally:
    subprocess.run(["iptables", "-D"] + rule, check=True)
got, end = b"", "eof"
try:
    while True:
        d = s.recv(4096)
        if not d:
            break
        got += d
except OSError as e:
    end = type(e).__name__
first = got.split(b"\r\n")[0]
print((first.decode() if first.startswith(b"HTTP/") else first.hex()) + " end=" + end)
PY
}

# expect PORT REQUEST ANSWER: the client read ANSWER, then the close
expect() {
    local got
    got=$(refused "$1" "$2")
    [ "$got" = "$3 end=eof" ] || fail "$2: got '$got', expected '$3 end=eof'"
}

log "a name not listed: 403"
expect "$E" 'CONNECT denied.egress.test:443 HTTP/1.1\r\n\r\n' "HTTP/1.1 403 Forbidden"
log "an address not listed: 403"
expect "$E" 'CONNECT 127.0.0.1:443 HTTP/1.1\r\n\r\n' "HTTP/1.1 403 Forbidden"
log "a name that does not resolve: 502"
expect "$E" 'CONNECT nosuch.egress.test:443 HTTP/1.1\r\n\r\n' "HTTP/1.1 502 Bad Gateway"
log "a connect that fails: 502"
expect "$E" "CONNECT 127.0.0.1:$CLOSED HTTP/1.1\\r\\n\\r\\n" "HTTP/1.1 502 Bad Gateway"
log "a GET: 405; garbage: 400"
expect "$E" 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' "HTTP/1.1 405 Method Not Allowed"
expect "$E" 'not http at all\r\n\r\n' "HTTP/1.1 400 Bad Request"
log "a router's unrecognized_name alert"
expect "$R" "hello:nope.test" 15030300020270

if has_field; then
    log "the proxy's answers that close: 413 (a body over max_body), 400"
    expect "$P" 'POST /seal HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n' \
        "HTTP/1.1 413 Payload Too Large"
    expect "$P" 'not http at all\r\n\r\n' "HTTP/1.1 400 Bad Request"
fi

grep -q "egress denied relay=egress conn=[0-9]* via=connect dest=denied.egress.test:443 .*reason=not_allowed_name" "$LOG" ||
    fail "no log line for the denied name"
wait_log "$LOG" "close relay=sni conn=[0-9]+ client=[^ ]+ sni=nope.test target=- .*end=no_route"
sockets_back() { [ "$(sockets)" = "$base" ]; }
wait_for sockets_back # every lingering socket closed
stop_clean "$pid" al
! grep -Eq "ERROR|runtime error" "$LOG" || fail "sanitizer report in the log"
log "pass"
