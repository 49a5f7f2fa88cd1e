#!/usr/bin/env python3
"""sni_storm.py - many TLS ClientHellos, each naming a new user, at routers.

usage: sni_storm.py HELLO N THREADS PORT [PORT...]

HELLO is a captured ClientHello whose server name starts with "alice."
(tests/fuzz/corpus/tls_hello/curl: alice.grid.example). Connection i sends
it with "alice" replaced by a key of the same length ("u" and i in 4
digits, so the record and handshake lengths stay right) to 127.0.0.1 and
the ports in turn, reads once (the upstream's first bytes, or the router's
close) and closes. THREADS connections are open at a time. Prints
"sent=N".
"""
import socket
import sys
import threading


def main():
    hello = open(sys.argv[1], "rb").read()
    n, threads = int(sys.argv[2]), int(sys.argv[3])
    ports = [int(p) for p in sys.argv[4:]]
    at = hello.index(b"alice.")
    lock = threading.Lock()
    state = {"next": 0, "sent": 0}

    def work():
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= n:
                return
            key = b"u%04d" % i
            data = hello[:at] + key + hello[at + 5:]
            try:
                s = socket.create_connection(("127.0.0.1", ports[i % len(ports)]), timeout=5)
                s.sendall(data)
                s.recv(4096)
                s.close()
                with lock:
                    state["sent"] += 1
            except OSError:
                pass

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("sent=%d" % state["sent"])


if __name__ == "__main__":
    main()
