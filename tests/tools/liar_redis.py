#!/usr/bin/python3
"""liar_redis.py PORT WORDS: a redis server and sentinel on 127.0.0.1:PORT
whose answers carry WORDS (any bytes but CR LF, python escapes): AUTH is
refused with the error "WRONGPASS WORDS", SENTINEL get-master-addr-by-name
names the master host "127.0.0.1 WORDS", port 6379; anything else is an
error. For the tests of what airlock logs of a redis's words
(t_log_peer_fields). Prints "ready" once it listens; runs until killed."""
import socket
import sys
import threading

port = int(sys.argv[1])
words = sys.argv[2].encode().decode("unicode_escape").encode("latin1")


def bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


def answer(cmd):
    if cmd == b"AUTH":
        return b"-WRONGPASS " + words + b"\r\n"
    if cmd == b"SENTINEL":
        return b"*2\r\n" + bulk(b"127.0.0.1 " + words) + bulk(b"6379")
    return b"-ERR unknown command\r\n"


def serve(c):
    buf = b""
    with c:
        while True:
            d = c.recv(4096)
            if not d:
                return
            buf += d
            # one command per request: *N, then $len and the command's name
            while buf.startswith(b"*"):
                lines = buf.split(b"\r\n")
                n = int(lines[0][1:])
                if len(lines) < 2 * n + 2:
                    break
                c.sendall(answer(lines[2].upper()))
                buf = b"\r\n".join(lines[2 * n + 1 :])


s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(16)
print("ready", flush=True)
while True:
    conn, _ = s.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
