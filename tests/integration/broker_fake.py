"""broker_fake.py PORT DIR [SIGNKEY]: whoever relays a requester's connection
to the broker (the parent host of an enclave, docs/nitro.md), answering in the
broker's place. It listens on 127.0.0.1:PORT, says "listening", and answers
each REQUEST with a random CHALLENGE, then each ATTEST with a SECRET of its
own choice ("evil"), wrapped with `openssl cms -encrypt` to the key the
requester sent in the clear: unsigned, or with SIGNKEY (an Ed25519 key that is
not the broker's) signing the bytes the broker signs. One line "answered NAME"
per answer. DIR holds its files."""
import hashlib
import os
import socket
import subprocess
import sys

port, work = int(sys.argv[1]), sys.argv[2]
sign_key = sys.argv[3] if len(sys.argv) > 3 else None


def openssl(*args, data=None):
    return subprocess.run(("openssl",) + args, input=data, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, check=True).stdout


def path(name):
    return os.path.join(work, name)


# openssl 3.0's cms -encrypt names a recipient by a certificate only: one
# that carries the requester's key, signed by a throwaway key of our own
openssl("genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path("ca.key"))
openssl("req", "-new", "-key", path("ca.key"), "-subj", "/CN=recipient", "-out", path("ca.csr"))


def wrap(spki, value):
    with open(path("req.der"), "wb") as f:
        f.write(spki)
    openssl("pkey", "-pubin", "-inform", "DER", "-in", path("req.der"), "-out", path("req.pem"))
    openssl("x509", "-req", "-in", path("ca.csr"), "-signkey", path("ca.key"), "-force_pubkey",
            path("req.pem"), "-days", "1", "-out", path("carrier.pem"))
    return openssl("cms", "-encrypt", "-binary", "-outform", "DER", "-recip", path("carrier.pem"),
                   "-keyopt", "rsa_padding_mode:oaep", "-aes-256-cbc", data=value)


def sign(name, nonce, spki, cms):
    with open(path("tbs"), "wb") as f:
        f.write(b"airlock-kb-v1 SECRET\n" + name + b"\n" + nonce + hashlib.sha256(spki).digest() + cms)
    return openssl("pkeyutl", "-sign", "-rawin", "-inkey", sign_key, "-in", path("tbs"))


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen()
print("listening", flush=True)
while True:
    c, _ = srv.accept()
    with c, c.makefile("rwb") as f:
        req = f.readline().split()
        if len(req) != 2 or req[0] != b"REQUEST":
            continue
        nonce = os.urandom(32)
        f.write(b"CHALLENGE " + nonce.hex().encode() + b"\n")
        f.flush()
        attest = f.readline().split()
        if len(attest) < 3 or attest[0] != b"ATTEST":
            continue
        spki = bytes.fromhex(attest[2].decode())
        cms = wrap(spki, b"evil")
        line = b"SECRET " + cms.hex().encode()
        if sign_key is not None:
            line += b" " + sign(req[1], nonce, spki, cms).hex().encode()
        f.write(line + b"\n")
        f.flush()
        print("answered", req[1].decode(), flush=True)
