#!/bin/bash
# t_log_stderr_stuck: airlock's log lines never wait for stderr's reader.
# A relay runs with stderr on a pipe, then on a socket (journald's stream),
# whose reader never reads; 1000 connections go through it one after the
# other, each logging its close line. Proves: every one is echoed (before,
# a full pipe held each thread at its next line: the relay stopped at the
# 512th connection); once the reader reads again, the next line follows a
# warning with the number of lines dropped meanwhile; the relay stops
# cleanly.
. "$(dirname "$0")/lib.sh"
need socat python3

read -r PE PL <<<"$(free_ports 2)"
start echo socat TCP-LISTEN:"$PE",bind=127.0.0.1,reuseaddr,fork EXEC:cat
wait_port "$PE"

python3 - "$AIRLOCK" "$PL" "$PE" <<'PY' || fail "a relay with a stuck stderr"
import os, select, socket, subprocess, sys, time

airlock, pl, pe = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def echo_once(i):
    deadline = time.monotonic() + 30
    while True:
        try:
            c = socket.create_connection(("127.0.0.1", pl), timeout=30)
            break
        except ConnectionRefusedError:  # the relay is not listening yet
            if i > 0 or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with c:
        c.sendall(b"ping\n")
        got = b""
        while got != b"ping\n":
            try:
                part = c.recv(16)
            except socket.timeout:
                sys.exit("connection %d: no echo in 30 s (the relay waits for stderr)" % i)
            if not part:
                sys.exit("connection %d: closed after %r" % (i, got))
            got += part


def drain(fd, until, seconds=30):
    """Reads fd until its text holds until; returns the text."""
    text, deadline = b"", time.monotonic() + seconds
    while until not in text:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            sys.exit("no %r in stderr: %r" % (until, text[-400:]))
        part = os.read(fd, 65536)
        if not part:
            sys.exit("stderr closed before %r: %r" % (until, text[-400:]))
        text += part
    return text


for kind in ("pipe", "socket"):
    if kind == "pipe":
        r, w = os.pipe()
    else:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        r, w = os.dup(a.fileno()), os.dup(b.fileno())
        a.close()
        b.close()
    p = subprocess.Popen([airlock, "relay", "tcp:127.0.0.1:%d" % pl, "tcp:127.0.0.1:%d" % pe],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=w)
    os.close(w)
    try:
        drain(r, b"airlock running")
        for i in range(1000):
            echo_once(i)
        text = b""  # what stderr took while nobody read
        while select.select([r], [], [], 0)[0]:
            text += os.read(r, 65536)
        echo_once(1000)  # its line follows the note of the lost ones
        text += drain(r, b"conn=1001 ")
        if b"warn log: stderr took no more lines: lines_dropped=" not in text:
            sys.exit("%s: no note of the dropped lines: %r" % (kind, text[-600:]))
    finally:
        p.terminate()
        # the lines of the drain go to stderr too: read them while it stops
        while p.poll() is None:
            if select.select([r], [], [], 0.1)[0] and not os.read(r, 65536):
                break
        rc = p.wait(90)
        os.close(r)
    if rc != 0:
        sys.exit("%s: airlock exited with status %d" % (kind, rc))
    print("%s: 1001 connections echoed, the dropped lines noted" % kind)
PY
