#!/usr/bin/env python3
"""conn_hold.py - clients that open connections and say too little.

    conn_hold.py [--gap SECONDS] PORT SRC...

For each SRC, one connection to 127.0.0.1:PORT that sends a PROXY v2 header
naming SRC as the client (none for "-") and half a request head, --gap
apart (0.2 s). A second after the last, prints "open" or "closed" for each, in
order. Then, on the line "finish" on stdin, sends the rest of the first
one's head and prints the status line of its answer; holds them all until
stdin ends.
"""
import socket, struct, sys, time
args = sys.argv[1:]
gap = 0.2
if args[0] == "--gap":
    gap, args = float(args[1]), args[2:]
port, srcs = int(args[0]), args[1:]
def header(src):
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    addr = socket.inet_aton(src) + socket.inet_aton("127.0.0.1") + struct.pack("!HH", 40000, port)
    return sig + bytes([0x21, 0x11]) + struct.pack("!H", len(addr)) + addr
socks = []
for src in srcs:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall((header(src) if src != "-" else b"") + b"GET /held HTTP/1.1\r\nHo")
    socks.append(s)
    time.sleep(gap)
time.sleep(1)
for s in socks:
    s.setblocking(False)
    try:
        print("closed" if s.recv(1) == b"" else "data")
    except BlockingIOError:
        print("open")
    except ConnectionResetError:
        print("closed")
sys.stdout.flush()
if sys.stdin.readline().strip() == "finish":
    s = socks[0]
    s.setblocking(True)
    s.settimeout(5)
    s.sendall(b"st: x\r\n\r\n")
    print(s.recv(4096).split(b"\r\n")[0].decode())
    sys.stdout.flush()
    sys.stdin.readline()
