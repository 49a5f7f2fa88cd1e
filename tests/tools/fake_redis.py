#!/usr/bin/python3
"""fake_redis.py PORT OUT: what a hostile instance runs (t_dir_redis_squat)
to pose as the directory's redis while that one is down. It leaves its
instance's session (a double fork, setsid), binds 127.0.0.1:PORT as soon
as it is free, and for each connection appends "conn" and then whatever
the client sends (airlock's AUTH and its password, before the fix) to OUT,
answering an error. Runs until killed."""
import socket
import sys
import time

from detach import detach

port, out = int(sys.argv[1]), sys.argv[2]
detach()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
while True:
    try:
        s.bind(("127.0.0.1", port))
        break
    except OSError:
        time.sleep(0.01)
s.listen(16)
while True:
    c, _ = s.accept()
    with open(out, "ab") as f:
        f.write(b"conn\n")
    c.settimeout(1)
    try:
        while True:
            d = c.recv(4096)
            if not d:
                break
            with open(out, "ab") as f:
                f.write(d)
            c.sendall(b"-ERR fake\r\n")
    except OSError:
        pass
    c.close()
