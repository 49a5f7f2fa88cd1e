#!/usr/bin/env python3
"""tls_trickle.py - a TLS client whose ClientHello goes out in small writes.

usage: tls_trickle.py HOST PORT SNI [--step N] [--delay S] [--wait S] [--file HELLO]
                      [--bind ADDR]

Without --file: a real handshake (Python's ssl over memory BIOs) whose first
flight is written N bytes at a time (default 1, TCP_NODELAY, S seconds
apart); then the rest of the handshake as usual. Prints the server
certificate (DER, in hex) on stdout. SNI "-" sends no server name.
With --file: writes the bytes of HELLO the same way, then prints what the
server sent until it closed (hex), for raw ClientHellos and garbage.
--wait S: stay silent S seconds after the connect before the first write.
--bind ADDR: connect from ADDR (e.g. 127.0.0.2: another client).
"""
import socket
import ssl
import sys
import time


def trickle(sock, data, step, delay):
    for i in range(0, len(data), step):
        sock.send(data[i:i + step])
        if delay:
            time.sleep(delay)


def main():
    args = sys.argv[1:]
    host, port, sni = args[0], int(args[1]), args[2]
    step, delay, wait, path, bind = 1, 0.0, 0.0, None, None
    i = 3
    while i < len(args):
        if args[i] == "--step":
            step = int(args[i + 1])
        elif args[i] == "--delay":
            delay = float(args[i + 1])
        elif args[i] == "--wait":
            wait = float(args[i + 1])
        elif args[i] == "--file":
            path = args[i + 1]
        elif args[i] == "--bind":
            bind = (args[i + 1], 0)
        i += 2
    sock = socket.create_connection((host, port), timeout=10, source_address=bind)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    time.sleep(wait)
    if path is not None:
        trickle(sock, open(path, "rb").read(), step, delay)
        got = b""
        try:
            while True:
                d = sock.recv(65536)
                if not d:
                    break
                got += d
        except (ConnectionResetError, socket.timeout):
            pass
        print(got.hex())
        return 0
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=None if sni == "-" else sni)
    first = True
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            data = out.read()
            if first:
                trickle(sock, data, step, delay)
                first = False
            elif data:
                sock.sendall(data)
            d = sock.recv(65536)
            if not d:
                print("closed during the handshake", file=sys.stderr)
                return 1
            inc.write(d)
    sock.sendall(out.read())
    print(obj.getpeercert(binary_form=True).hex())
    return 0


if __name__ == "__main__":
    sys.exit(main())
