/* tlsio.h - one non-blocking TLS connection with an input and an output
 * buffer, shared by smartgrid-server (poll) and smartgrid-load (epoll).
 *
 * The caller owns the fd's readiness loop: sg_tls_step() does all the I/O
 * that is possible now and says which readiness it waits for next. */
#ifndef SMARTGRID_TLSIO_H
#define SMARTGRID_TLSIO_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

enum sg_tls_state {
    SG_TLS_HANDSHAKE, /* SSL_accept / SSL_connect not finished */
    SG_TLS_OPEN,      /* handshake done; data flows */
    SG_TLS_CLOSED,    /* sg_tls_close() was called (or never opened) */
};

/* What both ends set on their SSL_CTX: a peer's EOF without close_notify
 * ends its input like a close_notify (SSL_ERROR_ZERO_RETURN), so that a
 * request followed by a half-close is still answered (each message is
 * self-delimiting: a cut one is never served). */
#define SG_TLS_OPTIONS SSL_OP_IGNORE_UNEXPECTED_EOF

struct sg_tls {
    enum sg_tls_state state;
    int fd;
    SSL *ssl;
    int eof;     /* the peer closed (close_notify or EOF) */
    int paused;  /* server: the ClientHello callback suspended the handshake
                    (SSL_CLIENT_HELLO_RETRY): step again once what it waits for
                    may be there; the socket's readiness does not matter */
    uint8_t *in; /* received plaintext: in[0..in_len), in_cap allocated */
    size_t in_len, in_cap, in_max;
    uint8_t *out; /* plaintext to send: out[out_off..out_len) */
    size_t out_len, out_off, out_cap;
};

/* Takes ownership of the connected, non-blocking fd and starts a TLS
 * handshake on it with ctx (server: 1 accepts, 0 connects). in_max bounds
 * the input buffer, which grows as input comes (a connection that sends
 * little holds, and wipes at its close, little). Returns 0, or -ENOMEM (fd
 * is closed, *t is closed). The caller may configure t->ssl (SNI,
 * certificate) before the first step. */
int sg_tls_open(struct sg_tls *t, int fd, SSL_CTX *ctx, int server, size_t in_max);

/* Does the I/O that is possible now: finishes the handshake, sends pending
 * output, reads input until the buffer is full or the socket is drained.
 * Sets *events to the poll bits (POLLIN, POLLOUT) to wait for (none, with
 * t->paused set, while the ClientHello callback holds the handshake). Returns 0, or
 * -EPROTO when the handshake failed, -ECONNRESET when the connection broke.
 * A clean close by the peer sets t->eof and returns 0. */
int sg_tls_step(struct sg_tls *t, short *events);

/* Appends n bytes to the output (sent by the next steps). Returns 0 or
 * -ENOMEM. */
int sg_tls_send(struct sg_tls *t, const void *p, size_t n);

/* Drops the first n bytes of the input (a parsed message), wiped: a
 * login's key or a user's readings do not stay behind in the buffer (nor
 * in what was sent, or in a buffer freed or outgrown). */
void sg_tls_consume(struct sg_tls *t, size_t n);

/* Returns 1 while output is waiting to be sent. */
int sg_tls_pending(const struct sg_tls *t);

/* Idempotent: sends close_notify when open (best effort), frees the SSL and
 * the buffers, closes the fd. */
void sg_tls_close(struct sg_tls *t);

/* Logs the OpenSSL error queue (one line per error) under what, and clears
 * it. */
void sg_tls_log_errors(const char *what);

#endif
