#!/usr/bin/env python3
"""stall.py - clients that open connections, say a little and hold them,
for the tests of unproven connections (tests/integration/t_unproven.sh).

usage: stall.py PORT N TEXT READY [SOURCE]

Opens N connections to 127.0.0.1:PORT, one every 50 ms (so that their ages
differ), from SOURCE when given (an IPv4 address; "A.B.C.D+": each from the
next address, A.B.C.D first, so that each is another client), and sends TEXT on each (Python escapes: "\\r\\n", "\\x16"), then
reads whatever comes and sends nothing more. Creates the file READY once all
N are open, then prints "closed I" (I from 0, in the order they were opened)
for each connection the peer closes or resets, and exits when all are
closed (or after 60 s of nothing).
"""
import ipaddress
import select
import socket
import sys
import time


def main():
    port, n, text, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    data = text.encode("latin-1").decode("unicode_escape").encode("latin-1")
    source = sys.argv[5] if len(sys.argv) > 5 else None
    each = source is not None and source.endswith("+")
    live = {}
    for i in range(n):
        bind = None
        if source is not None:
            bind = (str(ipaddress.ip_address(source.rstrip("+")) + (i if each else 0)), 0)
        s = socket.create_connection(("127.0.0.1", port), source_address=bind)
        s.sendall(data)
        live[i] = s
        time.sleep(0.05)
    open(ready, "w").close()
    while live:
        readable, _, _ = select.select(list(live.values()), [], [], 60)
        if not readable:
            return
        for i, s in list(live.items()):
            if s not in readable:
                continue
            try:
                gone = s.recv(65536) == b""
            except ConnectionResetError:  # closed with our bytes unread
                gone = True
            if gone:
                print("closed", i, flush=True)
                del live[i]


main()
