#!/usr/bin/env python3
"""frame_flood.py - a hostile (or plain) peer of a stream -> udp datagram relay.

    frame_flood.py flood PORT STREAMS FLOWS READYFILE
        opens STREAMS streams to 127.0.0.1:PORT and sends on each one frame
        for each of FLOWS new flow ids (stream i uses ids i*FLOWS+1 ...), so
        that the relay opens a socket per flow; writes READYFILE once all
        frames are written and then holds the streams open until killed.
    frame_flood.py ask PORT PAYLOAD
        one stream, one frame with PAYLOAD (flow id 7); prints the payload
        of the reply frame (exit 1 when none comes within 5 s).
    frame_flood.py streams PORT N READYFILE
        opens N streams, writes READYFILE and holds them (sending nothing)
        until killed.
    frame_flood.py parallel PORT N
        one stream, N queries at once (flow ids 1..N, one write); prints
        how many flows were answered within 3 s.

Frames: A1 01 LEN16 FLOW32 PAYLOAD (src/proto/frame.h), big-endian.
"""
import select
import socket
import struct
import sys
import time


def frame(flow, payload):
    return struct.pack(">BBHI", 0xA1, 0x01, len(payload), flow) + payload


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def flood(port, streams, flows, ready):
    socks = []
    for i in range(streams):
        s = connect(port)
        s.sendall(b"".join(frame(i * flows + f + 1, b"flood") for f in range(flows)))
        socks.append(s)
    open(ready, "w").close()
    while True:
        time.sleep(60)


def ask(port, payload):
    s = connect(port)
    s.sendall(frame(7, payload.encode()))
    buf = b""
    deadline = time.time() + 5
    while time.time() < deadline:
        if len(buf) >= 8:
            (n,) = struct.unpack(">H", buf[2:4])
            if len(buf) >= 8 + n:
                print(buf[8 : 8 + n].decode(errors="replace"))
                return 0
        r, _, _ = select.select([s], [], [], max(0.0, deadline - time.time()))
        if not r:
            break
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return 1


def parallel(port, n):
    s = connect(port)
    s.sendall(b"".join(frame(f, b"q%d" % f) for f in range(1, n + 1)))
    buf, answered = b"", set()
    deadline = time.time() + 3
    while len(answered) < n and time.time() < deadline:
        r, _, _ = select.select([s], [], [], max(0.0, deadline - time.time()))
        chunk = s.recv(65536) if r else b""
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 8 and len(buf) >= 8 + struct.unpack(">H", buf[2:4])[0]:
            (size,) = struct.unpack(">H", buf[2:4])
            answered.add(struct.unpack(">I", buf[4:8])[0])
            buf = buf[8 + size :]
    print(len(answered))


def streams(port, n, ready):
    socks = [connect(port) for _ in range(n)]
    open(ready, "w").close()
    while True:
        time.sleep(60)


def main(argv):
    if len(argv) == 6 and argv[1] == "flood":
        flood(int(argv[2]), int(argv[3]), int(argv[4]), argv[5])
    elif len(argv) == 4 and argv[1] == "ask":
        return ask(int(argv[2]), argv[3])
    elif len(argv) == 4 and argv[1] == "parallel":
        parallel(int(argv[2]), int(argv[3]))
    elif len(argv) == 5 and argv[1] == "streams":
        streams(int(argv[2]), int(argv[3]), argv[4])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
