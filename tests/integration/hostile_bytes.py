"""hostile_bytes.py - malformed input for every kind of listener of
airlock, and a backend that answers with malformed responses.

  hostile_bytes.py send SEED N ENDPOINT...
    N connections (datagrams to udp endpoints), each to one of the
    endpoints: a mutation of a message some listener of airlock reads (an
    HTTP request, a PROXY v2 header, a CONNECT, a ClientHello, a datagram
    frame, a control command, a key broker request) or random bytes, sent in
    random pieces, half-closed or not, then closed or reset. ENDPOINT:
    tcp:PORT, unix:PATH or udp:PORT (on 127.0.0.1), or http:PORT: a tcp
    endpoint that gets a whole request unchanged half of the time (to reach
    the backend). Prints a summary; exits 1 when a listener stopped
    accepting.
  hostile_bytes.py serve SEED PORT TOKEN
    An HTTP backend on 127.0.0.1:PORT: each request is answered with a
    mutation of a response (JSON holding the field token TOKEN, plain,
    chunked, ended by the close, interim 1xx, bodiless with a length), or
    random bytes, in random pieces, then closed, reset or kept.

The inputs follow from SEED."""
import random
import socket
import sys
import threading

def hello(name):
    """A TLS ClientHello naming name (SNI), padded."""
    sni = b"\x00\x00" + (len(name) + 5).to_bytes(2, "big") + (len(name) + 3).to_bytes(2, "big")
    sni += b"\x00" + len(name).to_bytes(2, "big") + name
    exts = sni + b"\x00\x15\x00\x78" + bytes(120)
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    body += len(exts).to_bytes(2, "big") + exts
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(hs).to_bytes(2, "big") + hs


SEEDS = [
    b"POST /pay HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
    b"Content-Length: 27\r\n\r\n{\"card\":{\"number\":\"4111\"}}",
    b"POST /pay HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Type: application/json\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.0\r\n\r\n",
    b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x7f\x00\x00\x01\x7f\x00\x00\x01\x30\x39\x01\xbbhello",
    b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n",
    hello(b"www.example.com"),
    hello(b"alice.grid.test"),
    b"\xa1\x01\x00\x05\x00\x00\x00\x07hello\xa1\x01\x00\x03\x00\x00\x00\x08abc",
    b"list\ndrain x/y\nassign grid alice\nstats\nconfig\n",
    b"REQUEST db-key\nATTEST d28443a10138 3082010a3082\n",
]


def mutate(rng, data):
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.random()
        if op < 0.3 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op < 0.5:
            i = rng.randrange(len(b) + 1)
            b[i:i] = rng.randbytes(rng.randint(1, 64))
        elif op < 0.7 and b:
            i = rng.randrange(len(b))
            del b[i:i + rng.randint(1, 32)]
        elif op < 0.8:
            b += rng.randbytes(rng.randint(0, 4096))
        elif op < 0.9 and b:
            i = rng.randrange(len(b))
            b[i:i] = b[i:i + rng.randint(1, 64)] * rng.randint(1, 20)
        else:
            del b[rng.randrange(len(b) + 1):]
    return bytes(b)


def connect(ep):
    """A connected socket (within 5 s: a loaded machine's listener may be
    slow to accept) that waits at most 50 ms for an answer."""
    kind, where = ep.split(":", 1)
    if kind == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(where)
    elif kind == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("127.0.0.1", int(where)))
    else:  # tcp, http
        s = socket.create_connection(("127.0.0.1", int(where)), timeout=5)
    s.settimeout(0.05)
    return s


def send(seed, n, eps):
    rng = random.Random(seed)
    refused = 0
    for _ in range(n):
        ep = rng.choice(eps)
        if ep.startswith("http") and rng.random() < 0.5:
            data = rng.choice(SEEDS[:2])
        elif rng.random() < 0.85:
            data = mutate(rng, rng.choice(SEEDS))
        else:
            data = rng.randbytes(rng.randint(0, 2000))
        try:
            s = connect(ep)
        except OSError as e:
            refused += 1
            print(f"{ep}: {e}", file=sys.stderr)
            continue
        try:
            if ep.startswith("udp"):
                s.send(data[:1400] or b"x")
            else:
                pieces(rng, s, data)
                if rng.random() < 0.5:
                    s.shutdown(socket.SHUT_WR)
            s.recv(65536)
        except OSError:
            pass  # refused, reset, timed out: all fine
        if rng.random() < 0.3 and not ep.startswith("udp"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        s.close()
    print(f"sent {n}, connects refused {refused}")
    return 1 if refused > 0 else 0


def pieces(rng, s, data):
    off = 0
    while off < len(data):
        k = rng.randint(1, max(1, len(data)))
        s.sendall(data[off:off + k])
        off += k


def responses(token):
    body = b'{"card":{"number":"%s"},"n":1}' % token
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    return [
        head + b"Content-Length: %d\r\n\r\n" % len(body) + body,
        head + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(body) + body
        + b"\r\n0\r\n\r\n",
        head + b"Connection: close\r\n\r\n" + body,
        b"HTTP/1.1 100 Continue\r\n\r\n" + head + b"Content-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
        b"HTTP/1.1 206 Partial Content\r\nContent-Type: application/json\r\n"
        b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
    ]


def answer(rng, c, seeds):
    with c:
        c.settimeout(0.5)
        while True:
            try:
                if not c.recv(65536):
                    return
            except OSError:
                return
            if rng.random() < 0.85:
                data = mutate(rng, rng.choice(seeds))
            else:
                data = rng.randbytes(rng.randint(0, 2000))
            try:
                pieces(rng, c, data)
            except OSError:
                return
            end = rng.random()
            if end < 0.3:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                return
            if end < 0.6:
                return


def serve(seed, port, token):
    seeds = responses(token.encode())
    listener = socket.create_server(("127.0.0.1", port), backlog=128)
    print("ready", flush=True)
    for i in range(1 << 62):
        c = listener.accept()[0]
        rng = random.Random(seed * 1000003 + i)
        threading.Thread(target=answer, args=(rng, c, seeds), daemon=True).start()


if sys.argv[1] == "send":
    sys.exit(send(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]))
serve(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
