#!/usr/bin/env python3
"""tls_pause.py - a mutual-TLS client that stops in the middle of its
handshake until told to go on: a user on a slow link.

usage: tls_pause.py PORT SNI CA CERT KEY [TOKEN]

Connects to 127.0.0.1:PORT, sends a ClientHello for SNI (Python's ssl over
memory BIOs, CA the server's CA, CERT and KEY the client's certificate),
reads the server's answer up to where its own certificate is due and
prints "paused". On the line "go" on stdin it sends the rest of its
handshake and GET /query_avg?metric=power (with "Authorization: Bearer
TOKEN" when given) and prints the answer's status line. It prints "eof"
when the server closes before answering: its handshake was cut.
"""
import socket
import ssl
import sys


def pump(sock, tls, incoming, outgoing):
    """Reads from sock into tls until the handshake is done on this side;
    returns False when the server closed first."""
    while True:
        try:
            tls.do_handshake()
            return True
        except ssl.SSLWantReadError:
            pass
        if outgoing.pending:
            sock.sendall(outgoing.read())
        data = sock.recv(65536)
        if not data:
            return False
        incoming.write(data)


def answer(sock, tls, incoming, outgoing):
    """The first line of the server's answer, or None when it closed."""
    buf = b""
    while b"\r\n" not in buf:
        if outgoing.pending:
            sock.sendall(outgoing.read())
        try:
            buf += tls.read(65536)
            continue
        except ssl.SSLWantReadError:
            pass
        data = sock.recv(65536)
        if not data:
            return None
        incoming.write(data)
    return buf.split(b"\r\n", 1)[0].decode("latin-1")


def main():
    args = sys.argv[1:]
    if len(args) < 5:
        sys.exit(__doc__)
    port, sni, ca, cert, key = int(args[0]), args[1], args[2], args[3], args[4]
    token = args[5] if len(args) > 5 else None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(ca)
    ctx.load_cert_chain(cert, key)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    sock = socket.create_connection(("127.0.0.1", port))
    try:
        done = pump(sock, tls, incoming, outgoing)
    except (OSError, ssl.SSLError):
        done = False
    if not done:
        print("eof", flush=True)
        return
    print("paused", flush=True)  # the client's flight waits in outgoing
    for line in sys.stdin:
        if line.strip() == "go":
            break
    auth = "Authorization: Bearer %s\r\n" % token if token else ""
    req = "GET /query_avg?metric=power HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n"
    try:
        tls.write((req % (sni, auth)).encode())
        line = answer(sock, tls, incoming, outgoing)
    except (OSError, ssl.SSLError):
        line = None
    print(line if line is not None else "eof", flush=True)


if __name__ == "__main__":
    main()
