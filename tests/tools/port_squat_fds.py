#!/usr/bin/python3
"""port_squat_fds.py PORT SOCKETS PROCS FDS: what a hostile instance runs
(t_pool_port_squat_fds) to make the search for who holds a port expensive.
It leaves its instance's session (a double fork, setsid), makes PROCS
processes that hold FDS descriptors each (its soft fd limit raised to the
hard one), then a newest process, read last in /proc, that listens SOCKETS
times on PORT (SO_REUSEPORT: one uid may). Each runs until killed."""
import os
import resource
import socket
import sys
import time

from detach import detach

port, nsock, nproc, nfd = map(int, sys.argv[1:5])
detach()
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
null = os.open("/dev/null", os.O_RDONLY)
fds = [os.dup(null) for _ in range(nfd)]
for _ in range(nproc):
    if os.fork() == 0:
        while True:
            time.sleep(100)
if os.fork() == 0:
    for fd in fds:
        os.close(fd)
    socks = []
    for _ in range(nsock):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", port))
        s.listen(1)
        socks.append(s)
while True:
    time.sleep(100)
