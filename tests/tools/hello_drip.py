#!/usr/bin/env python3
"""hello_drip.py - many clients send a ClientHello a byte per segment.

usage: hello_drip.py PORT CLIENTS HELLO_FILE SNI_OUT

Re-frames the handshake message of HELLO_FILE (one TLS record, as captured)
as TLS records of one byte each (six bytes on the wire per byte of the
message), pads it with a padding extension up to about 4.9 KiB first, so
the records take about 30 KiB, and sends it from CLIENTS connections at
once (from 127.0.1.1, 127.0.1.2, ...: distinct clients), one byte per
send() with TCP_NODELAY, each connection in turn. Then shuts down each
connection's write side and reads until the router closes it. Writes the
bytes sent (the same for every connection) to SNI_OUT and prints the CPU
seconds (user + system) this process used sending them.
"""
import os
import socket
import struct
import sys


def padded(hs, size):
    """The ClientHello message hs with a padding extension (21) added so that
    the message is size bytes."""
    body = hs[4:]
    # legacy_version, random, session id, cipher suites, compression
    off = 2 + 32
    off += 1 + body[off]
    off += 2 + struct.unpack(">H", body[off:off + 2])[0]
    off += 1 + body[off]
    ext_len = struct.unpack(">H", body[off:off + 2])[0]
    exts = body[off + 2:off + 2 + ext_len]
    pad = size - len(hs) - 4
    exts += struct.pack(">HH", 21, pad) + b"\0" * pad
    body = body[:off] + struct.pack(">H", len(exts)) + exts
    return b"\x01" + struct.pack(">I", len(body))[1:] + body


def main():
    port, clients, path, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    hs = padded(open(path, "rb").read()[5:], 4900)
    wire = b"".join(b"\x16\x03\x03\x00\x01" + hs[i:i + 1] for i in range(len(hs)))
    open(out, "wb").write(wire)
    socks = []
    for i in range(clients):
        s = socket.create_connection(("127.0.0.1", port), source_address=("127.0.1.%d" % (i + 1), 0))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(s)
    t0 = os.times()
    for i in range(len(wire)):
        for s in socks:
            s.send(wire[i:i + 1])
    t1 = os.times()
    for s in socks:
        s.shutdown(socket.SHUT_WR)
        s.settimeout(60)
        while s.recv(65536):
            pass
    print("%.2f" % (t1.user + t1.system - t0.user - t0.system))


if __name__ == "__main__":
    main()
