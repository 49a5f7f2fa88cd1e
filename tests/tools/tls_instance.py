#!/usr/bin/env python3
"""tls_instance.py - a one-user TLS application for pool instances behind a router.

usage: tls_instance.py PORT CERT KEY NAME

Listens on 127.0.0.1:PORT with TLS and prints "WAITING_LOGIN" (the pool's
ready line). The first server name it sees logs the user in: "LOGIN <first
label>" (the pool's login line). On each connection it reads one line:
"whoami" is answered "NAME USER"; "logout" is answered "BYE", then it
prints "LOGOUT" and exits (a fresh instance takes its place). Like the
smartgrid server, it serves only the user who logged in first: a
connection naming anyone else is answered "WRONG USER".
"""
import socket
import ssl
import sys


def main():
    port, cert, key, name = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    state = {"user": None, "sni": None}

    def on_sni(sock, server_name, _ctx):
        user = (server_name or "").split(".")[0]
        state["sni"] = user
        if state["user"] is None and user:
            state["user"] = user
            print("LOGIN " + user, flush=True)

    ctx.sni_callback = on_sni
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    print("WAITING_LOGIN", flush=True)
    while True:
        conn, _ = srv.accept()
        try:
            tls = ctx.wrap_socket(conn, server_side=True)
            line = tls.makefile("r").readline().strip()
            if state["sni"] != state["user"]:
                tls.sendall(b"WRONG USER\n")
            elif line == "whoami":
                tls.sendall(("%s %s\n" % (name, state["user"])).encode())
            elif line == "logout":
                tls.sendall(b"BYE\n")
                tls.close()
                print("LOGOUT", flush=True)
                return 0
            tls.close()
        except (OSError, ssl.SSLError):
            conn.close()


if __name__ == "__main__":
    sys.exit(main())
