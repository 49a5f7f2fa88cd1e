#!/usr/bin/env python3
"""broker_flood.py - a slow requester against a key broker under a flood of
connections (t_broker_flood.sh).

    broker_flood.py PORT AIRLOCK SIM_ROOT PUB_PEM PUB_HEX ROUNDS MODE [SECRET]

MODE is a comma-separated set of floods that run while the requester works:
  stall    connect from 127.0.0.1 (the requester's address) and say nothing,
           about 1000 connections a second;
  request  connect from 127.0.0.2, send REQUEST and never attest, about 200
           a second (each holds a challenged slot until the broker's timeout);
  none     no flood.
SECRET names the secret asked for (db-key by default); with big-key (64 KiB)
the requester shrinks its receive buffer and reads the answer only 500 ms
after its ATTEST, so the broker is still writing it when, 200 ms after the
ATTEST, 24 silent connections from 127.0.0.3 fill every slot.
Each round the requester connects, sends REQUEST, reads CHALLENGE (a
connection evicted before its REQUEST was read is tried again, at most 3
times: only then may it be evicted), makes sim
evidence for the nonce and its key, waits 300 ms (real NSM or TDX evidence
takes hundreds of milliseconds), sends ATTEST and reads the answer, which
must be exactly one line: SECRET hex. Prints one line per round and a summary;
exits 1 if a round did not get its secret.
"""
import base64
import collections
import multiprocessing
import socket
import subprocess
import sys
import time

port, airlock, sim_root, pub_pem, pub_hex = sys.argv[1:6]
rounds = int(sys.argv[6])
modes = set(sys.argv[7].split(","))
secret = sys.argv[8] if len(sys.argv) > 8 else "db-key"
slow_reader = secret == "big-key"


def flood(kind, src, rate, keep, stop, opened):
    """Opens rate connections a second from src, at most keep held at once
    (a process of its own: the requester's timing is not the flood's)."""
    held = collections.deque()
    gap = 1.0 / rate
    nxt = time.monotonic()
    while not stop.is_set():
        try:
            s = socket.socket()
            s.bind((src, 0))
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", int(port)))
            except BlockingIOError:
                pass
            if kind == "request":
                s.setblocking(True)
                s.settimeout(1)
                try:
                    s.sendall(b"REQUEST db-key\n")
                except OSError:
                    pass
            held.append(s)
            with opened.get_lock():
                opened.value += 1
        except OSError:
            pass
        while len(held) > keep:
            held.popleft().close()
        nxt += gap
        delay = nxt - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            nxt = time.monotonic()
    for s in held:
        s.close()


def read_line(f):
    line = f.readline()
    return line.decode(errors="replace").rstrip("\n")


def one_round(i):
    # a connection the broker evicts before its REQUEST was read (only a
    # flood from the requester's own address can take its place, and only
    # if the requester is held between its connect and its send) is tried
    # again, as a client would; once challenged, it must get its secret
    for attempt in range(3):
        s = socket.socket()
        if slow_reader:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(15)
        s.connect(("127.0.0.1", int(port)))
        f = s.makefile("rb")
        try:
            s.sendall(("REQUEST %s\n" % secret).encode())
            ch = read_line(f)
        except OSError:
            ch = ""
        if ch.startswith("CHALLENGE "):
            break
        f.close()
        s.close()
        if ch and not ch.startswith("REFUSED busy"):
            return "no challenge: %r" % ch[:80]
        print("round %d: evicted before its REQUEST (%r), again" % (i, ch[:40]), flush=True)
    else:
        return "evicted before its REQUEST 3 times"
    try:
        nonce = ch.split()[1]
        ev = subprocess.run([airlock, "attest", "get", "--provider", "sim", "--sim-root", sim_root,
                             "--nonce", nonce, "--public-key", pub_pem],
                            capture_output=True, check=True).stdout
        ev_hex = base64.b64decode(ev).hex()
        time.sleep(0.3)  # the requester's evidence takes its time
        s.sendall(("ATTEST %s %s\n" % (ev_hex, pub_hex)).encode())
        if slow_reader:
            # the answer waits in the broker, part-way written, when more
            # newcomers than max_connections arrive
            time.sleep(0.2)
            burst = []
            for _ in range(24):
                b = socket.socket()
                b.bind(("127.0.0.3", 0))
                b.connect(("127.0.0.1", int(port)))
                burst.append(b)
            time.sleep(0.3)
        rest = f.read()  # the answer, then the broker closes
        if slow_reader:
            for b in burst:
                b.close()
        text = rest.decode(errors="replace")
        if not text.startswith("SECRET ") or text.count("\n") != 1 or not text.endswith("\n"):
            return "answer: %r (%d bytes)" % (text[:80], len(text))
        return None
    finally:
        f.close()
        s.close()


stop = multiprocessing.Event()
opened = {}
procs = []
for kind, src, rate in (("stall", "127.0.0.1", 1000), ("request", "127.0.0.2", 200)):
    if kind in modes:
        opened[kind] = multiprocessing.Value("l", 0)
        procs.append(multiprocessing.Process(target=flood,
                                             args=(kind, src, rate, 300, stop, opened[kind])))
for p in procs:
    p.start()
time.sleep(0.5)  # the flood is on before the first round
failed = 0
try:
    for i in range(rounds):
        why = one_round(i)
        print("round %d: %s" % (i, why or "SECRET"), flush=True)
        failed += why is not None
finally:
    stop.set()
    for p in procs:
        p.join()
print("flood: %s; rounds failed: %d of %d"
      % ({k: v.value for k, v in opened.items()}, failed, rounds), flush=True)
sys.exit(1 if failed else 0)
