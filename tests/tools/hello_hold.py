#!/usr/bin/env python3
"""hello_hold.py - a client that sends a TLS ClientHello and then holds the
connection, for the tests of reservations and connection slots.

usage: hello_hold.py PORT SNI [--bind ADDR] [--proxy SRC] [--split]

Connects to 127.0.0.1:PORT (from ADDR with --bind, e.g. 127.0.0.2), sends a
PROXY v2 header naming SRC as the client's address first with --proxy (an
IPv4 or IPv6 address), then a real ClientHello for SNI (Python's ssl over
memory BIOs) and goes silent. With --split it sends the hello's record
header only, prints "part sent" and sends the rest on the line "rest" on
stdin. It prints "hello sent", then every line the
peer sends (non-printable bytes as '?') and "eof" when the peer closes.
Each line on stdin "send TEXT" writes "\\nTEXT\\n" (a line command for the
pool tests' fakeapp, after the hello's bytes); at the end of stdin it shuts
its side down (a FIN), prints the rest of what the peer sends and exits
when the peer closes (10 s at most). So a test holds a client open exactly
as long as it keeps the write end of a FIFO open.
"""
import ipaddress
import socket
import ssl
import struct
import sys
import threading


def client_hello(sni):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def proxy_v2(src, dst_port):
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    a = ipaddress.ip_address(src)
    if a.version == 4:
        body = a.packed + ipaddress.ip_address("127.0.0.1").packed + struct.pack("!HH", 40000, dst_port)
        return sig + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body
    body = a.packed + ipaddress.ip_address("::1").packed + struct.pack("!HH", 40000, dst_port)
    return sig + bytes([0x21, 0x21]) + struct.pack("!H", len(body)) + body


def reader(sock):
    buf = b""
    while True:
        try:
            data = sock.recv(4096)
        except OSError:
            data = b""
        if not data:
            break
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            text = "".join(chr(b) if 32 <= b < 127 else "?" for b in line)
            print(text, flush=True)
    print("eof", flush=True)


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    port, sni = int(args[0]), args[1]
    bind, proxy, split = None, None, False
    i = 2
    while i < len(args):
        if args[i] == "--split":
            split = True
            i += 1
            continue
        if args[i] == "--bind":
            bind = args[i + 1]
        elif args[i] == "--proxy":
            proxy = args[i + 1]
        else:
            sys.exit(__doc__)
        i += 2
    sock = socket.socket()
    if bind:
        sock.bind((bind, 0))
    sock.connect(("127.0.0.1", port))
    if proxy:
        sock.sendall(proxy_v2(proxy, port))
    hello = client_hello(sni)
    if split:
        sock.sendall(hello[:5])
        print("part sent", flush=True)
        for line in sys.stdin:
            if line.strip() == "rest":
                break
        hello = hello[5:]
    sock.sendall(hello)
    print("hello sent", flush=True)
    rd = threading.Thread(target=reader, args=(sock,), daemon=True)
    rd.start()
    for line in sys.stdin:
        if line.startswith("send "):
            try:
                sock.sendall(b"\n" + line[5:].rstrip("\n").encode() + b"\n")
            except OSError:
                pass
    try:
        sock.shutdown(socket.SHUT_WR)  # a FIN, then what the peer still says
    except OSError:
        pass
    rd.join(10)
    sock.close()


if __name__ == "__main__":
    main()
