/* conn_tls.c - the TLS variants of a connection: one side of it speaks TLS
 * that airlock terminates (OpenSSL, non-blocking, on the worker's loop).
 *
 *   tls: (server)     PREAMBLE -> HANDSHAKE (client) -> CONNECTING -> TLS
 *   verify: (client)  PREAMBLE -> CONNECTING -> HANDSHAKE (target, then its
 *                     evidence checked) -> TLS
 *
 * A verify: relay reads nothing of its client until the target's evidence
 * met the policy: what the client sent waits in its socket, and a refusal
 * closes it without a byte of it reaching the target.
 *
 * Relaying through TLS (state TLS) copies each direction through a buffer
 * of one TLS record (16 KiB) of the connection's own: SSL_read into it and
 * write() out, or read() into it and SSL_write out; no splice, since the
 * bytes must pass through OpenSSL. The end of one direction is passed on:
 * close_notify becomes shutdown(SHUT_WR) and a FIN becomes close_notify
 * (and a FIN after it). Plain relays never come here: they keep the pumps
 * of pump.c.
 *
 * What these buffers hold is the user's plaintext on both directions (what
 * OpenSSL decrypted, what the plain side sent to be encrypted): the bytes
 * are wiped once written on, and what is left when the connection ends, so
 * nothing of it stays in the memory the connection gives back or, while it
 * is idle, in its own. One memset of the bytes just written, still in the
 * cache: no copy. OpenSSL's own buffers are wiped too
 * (SSL_OP_CLEANSE_PLAINTEXT, relay/tls.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "attest/claims.h"
#include "core/log.h"
#include "relay/conn_int.h"
#include "relay/tls.h"

#define TLS_RECORD 16384         /* plaintext of one TLS record */
#define TLS_BUDGET (1024 * 1024) /* bytes moved per wakeup before others get a turn */
#define TLS_WHY_MAX ATTEST_ERR_MAX

/* One direction: what was read and not written yet, buf[off..len). */
struct tls_dir {
    uint8_t buf[TLS_RECORD];
    size_t off, len;
    bool eof;  /* its source has no more */
    bool shut; /* the end was passed on */
};

struct tls_conn {
    SSL *ssl;
    void (*handshaken)(struct conn *c); /* the variant's next step */
    struct tls_gen *gen;                /* server: the certificate's generation */
    struct side *side;                  /* the side TLS is spoken on */
    struct tls_dir up, down;
    char why[TLS_WHY_MAX]; /* what failed, for the close line */
};

/* Remembers why a TLS call failed (ret, its return value): OpenSSL's reason,
 * or the socket's errno. Returns the -errno the connection ends with. */
static int
tls_failed(struct tls_conn *t, int err)
{
    unsigned long e = ERR_peek_error();

    if (t->why[0] == '\0') {
        if (e != 0)
            snprintf(t->why, sizeof(t->why), "%s", ERR_reason_error_string(e));
        else
            snprintf(t->why, sizeof(t->why), "%s", strerror(err ? err : EPIPE));
    }
    ERR_clear_error();
    return e != 0 ? -EPROTO : -(err ? err : EPIPE);
}

/* What an SSL call's ret (<= 0) means: -EAGAIN to wait for the socket, 0 for
 * the peer's close_notify, or a -errno that ends the connection. */
static int
tls_result(struct tls_conn *t, int ret)
{
    int err = errno;

    switch (SSL_get_error(t->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        return tls_failed(t, ERR_peek_error() != 0 ? 0 : err);
    default:
        return tls_failed(t, 0);
    }
}

/* Drops d's bytes, wiped. */
static void
tls_dir_wipe(struct tls_dir *d)
{
    explicit_bzero(d->buf, d->len);
    d->off = d->len = 0;
}

/* One read (into buf) or write (from buf) of up to n bytes on s, through
 * OpenSSL on the TLS side: the count, 0 at the end (reads), -EAGAIN, or
 * -errno. */
static ssize_t
side_io(struct conn *c, struct side *s, uint8_t *buf, size_t n, bool out)
{
    struct tls_conn *t = c->tls;
    int *ready = out ? &s->writable : &s->readable;
    size_t done;
    ssize_t r;

    if (s == t->side) {
        ERR_clear_error();
        int ret = out ? SSL_write_ex(t->ssl, buf, n, &done) : SSL_read_ex(t->ssl, buf, n, &done);
        return ret == 1 ? (ssize_t)done : tls_result(t, ret);
    }
    if (!*ready)
        return -EAGAIN;
    while ((r = out ? write(s->io.fd, buf, n) : read(s->io.fd, buf, n)) < 0 && errno == EINTR)
        ;
    if (r < 0 && errno == EAGAIN)
        *ready = 0;
    return r < 0 ? -errno : r;
}

/* Passes the end of a direction on to s: close_notify on the TLS side
 * (then a FIN), a FIN on the plain one. 0, -EAGAIN or -errno. */
static int
side_shut(struct conn *c, struct side *s)
{
    struct tls_conn *t = c->tls;

    if (s == t->side) {
        ERR_clear_error();
        int ret = SSL_shutdown(t->ssl);
        if (ret < 0) {
            int rc = tls_result(t, ret);
            if (rc != 0)
                return rc;
        }
    }
    shutdown(s->io.fd, SHUT_WR);
    return 0;
}

/* Moves d's bytes from -> to until one of them has to wait, the source
 * ended (passed on), or *budget is spent. 0 or -errno. */
static int
dir_run(struct conn *c, struct tls_dir *d, struct side *from, struct side *to, struct pump *acct,
        size_t *budget)
{
    for (;;) {
        while (d->off < d->len) {
            ssize_t n = side_io(c, to, d->buf + d->off, d->len - d->off, true);
            if (n < 0)
                return n == -EAGAIN ? 0 : (int)n;
            d->off += (size_t)n;
            acct->bytes += (size_t)n;
            atomic_fetch_add_explicit(acct->counter, (size_t)n, memory_order_relaxed);
        }
        tls_dir_wipe(d);
        if (d->eof) {
            int rc = d->shut ? 0 : side_shut(c, to);
            if (rc == 0)
                d->shut = true;
            return rc == -EAGAIN ? 0 : rc;
        }
        if (*budget == 0)
            return 0;
        ssize_t n = side_io(c, from, d->buf, sizeof(d->buf), false);
        if (n == -EAGAIN)
            return 0;
        if (n < 0)
            return (int)n;
        if (n == 0)
            d->eof = true;
        d->len = (size_t)n;
        *budget = (size_t)n >= *budget ? 0 : *budget - (size_t)n;
    }
}

static void tls_step(struct conn *c);

static void
tls_continue(struct task *tk)
{
    tls_step(tk->data);
}

static void
tls_relay(struct conn *c)
{
    struct tls_conn *t = c->tls;
    size_t budget = TLS_BUDGET;
    uint64_t moved = c->up.bytes + c->down.bytes;
    int rc = dir_run(c, &t->up, &c->client, &c->target, &c->up, &budget);

    if (rc == 0)
        rc = dir_run(c, &t->down, &c->target, &c->client, &c->down, &budget);
    if (budget != TLS_BUDGET || c->up.bytes + c->down.bytes != moved)
        c->active = loop_now(c->worker->loop);
    if (rc != 0) {
        conn_close(c, rc == -ECONNRESET || rc == -EPIPE ? END_RESET
                      : rc == -EPROTO                   ? END_TLS_FAILED
                                                        : END_ERROR);
        return;
    }
    if (t->up.shut && t->down.shut) {
        conn_close(c, END_EOF);
        return;
    }
    if (budget == 0) /* more may be waiting: continue after others had a turn */
        loop_defer(c->worker->loop, &c->work, tls_continue, c);
}

static int
tls_prepend(struct conn *c, const void *data, size_t len)
{
    struct tls_dir *up = &c->tls->up;

    memcpy(up->buf, data, len); /* nothing is read from the client before the target is connected */
    up->off = 0;
    up->len = len;
    return 0;
}

/* The target is connected: relay through TLS. */
static void
tls_ready(struct conn *c)
{
    c->state = CONN_ST_TLS;
    conn_idle_start(c);
    tls_relay(c);
}

/* The handshake with the client is done: on to the target. */
static void
server_handshaken(struct conn *c)
{
    SSL *ssl = c->tls->ssl;

    log_debug("relay=%s conn=%llu tls %s %s", c->relay->conf.name, (unsigned long long)c->id,
              SSL_get_version(ssl), SSL_get_cipher_name(ssl));
    /* the client may have sent its first bytes with its Finished: they
     * wait in OpenSSL's buffer, read once relaying begins */
    conn_connect(c);
}

static void
tls_step(struct conn *c)
{
    struct tls_conn *t = c->tls;

    if (c->state == CONN_ST_TLS) {
        tls_relay(c);
        return;
    }
    if (c->state != CONN_ST_HANDSHAKE)
        return;
    ERR_clear_error();
    int ret = SSL_do_handshake(t->ssl);
    if (ret == 1) {
        t->handshaken(c);
        return;
    }
    int rc = tls_result(t, ret);
    if (rc == -EAGAIN)
        return;
    if (rc == 0) /* a close_notify in place of a handshake */
        tls_failed(t, ECONNABORTED);
    c->linger = t->side == &c->client; /* the alert OpenSSL sent it (conn_close()) */
    conn_close(c, rc == -ECONNRESET ? END_RESET : END_TLS_FAILED);
}

/* Begins c's handshake on side with ssl (NULL: out of memory), holding gen
 * (server) until the connection ends; handshaken goes on after it. */
static void
tls_begin(struct conn *c, SSL *ssl, struct tls_gen *gen, struct side *side,
          void (*handshaken)(struct conn *c), unsigned timeout_ms)
{
    if (ssl == NULL || (c->tls = calloc(1, sizeof(*c->tls))) == NULL) {
        SSL_free(ssl);
        tls_gen_unref(gen);
        relay_local_error(c->relay->stats, -ENOMEM);
        conn_close(c, END_ERROR);
        return;
    }
    c->tls->ssl = ssl;
    c->tls->gen = gen;
    c->tls->side = side;
    c->tls->handshaken = handshaken;
    c->state = CONN_ST_HANDSHAKE;
    timer_start(c->worker->loop, &c->timer, timeout_ms, conn_timeout, c);
    tls_step(c);
}

/* The preamble is done: the handshake with the client. */
static void
server_start(struct conn *c)
{
    struct tls_gen *gen = NULL;
    char client[TRANSPORT_CLIENT_MAX];
    /* with accept_proxy, the client its header named */
    transport_client_key(c->vouched ? -1 : c->client.io.fd,
                         (const struct sockaddr *)(c->vouched ? &c->source : &c->peer), client,
                         sizeof(client));
    SSL *ssl = relay_tls_accept(c->relay->tls, c->client.io.fd, client, &gen);

    tls_begin(c, ssl, gen, &c->client, server_handshaken, c->relay->conf.tls.handshake_timeout_ms);
}

/* The handshake with the target is done: its evidence decides, by the
 * policy of now (a reload since the accept may have tightened it; a relay
 * that was removed, or no longer verifies, lets nothing through). */
static void
client_handshaken(struct conn *c)
{
    struct tls_conn *t = c->tls;
    const struct relay *now = relay_current(c->relay);
    struct attest_claims claims;
    char err[ATTEST_ERR_MAX];

    if (now == NULL || now->tls == NULL || !now->conf.verify.enabled) {
        snprintf(t->why, sizeof(t->why), "a reload removed the relay or its verify:");
        conn_close(c, END_ATTEST_REFUSED);
        return;
    }
    if (relay_tls_verify(now->tls, t->ssl, &claims, err) != ATTEST_OK) {
        snprintf(t->why, sizeof(t->why), "%s", err);
        conn_close(c, END_ATTEST_REFUSED);
        return;
    }
    char id[ATTEST_MODULE_ID_MAX + 1]; /* quoted: it comes from the evidence */
    log_debug("relay=%s conn=%llu attested %s%s module_id=\"%s\"", c->relay->conf.name,
              (unsigned long long)c->id, SSL_get_version(t->ssl), claims.sim ? " sim" : "",
              log_quoted(id, sizeof(id), claims.module_id));
    tls_ready(c);
}

/* The target is connected: the handshake with it. */
static void
client_ready(struct conn *c)
{
    SSL *ssl = relay_tls_connect(c->relay->tls, c->target.io.fd);

    tls_begin(c, ssl, NULL, &c->target, client_handshaken,
              c->relay->conf.verify.handshake_timeout_ms);
}

/* Gives back the TLS state; the close line gets what failed. */
static void
tls_closing(struct conn *c, enum conn_end end, char *tag, size_t len)
{
    struct tls_conn *t = c->tls;

    (void)end;
    if (t == NULL)
        return;
    log_quotable(t->why); /* a reason may quote what the peer sent */
    if (t->why[0] != '\0')
        snprintf(tag, len, " reason=\"%.200s\"", t->why);
    SSL_free(t->ssl);
    t->ssl = NULL;
    tls_gen_unref(t->gen);
    t->gen = NULL;
    tls_dir_wipe(&t->up);
    tls_dir_wipe(&t->down);
}

const struct conn_ops conn_tls_server_ops = {
    .start = server_start,
    .step = tls_step,
    .prepend = tls_prepend,
    .ready = tls_ready,
    .closing = tls_closing,
};

const struct conn_ops conn_tls_client_ops = {
    .start = conn_connect,
    .step = tls_step,
    .ready = client_ready,
    .closing = tls_closing,
};
