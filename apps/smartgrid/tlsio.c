/* tlsio.c - non-blocking TLS connection buffers. */
#include "tlsio.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

/* Bound the reads per step so that one busy peer cannot starve others. */
#define SG_TLS_READS_PER_STEP 32
/* The input buffer's first size: one TLS record's plaintext. */
#define SG_TLS_IN_FIRST 16384

int
sg_tls_open(struct sg_tls *t, int fd, SSL_CTX *ctx, int server, size_t in_max)
{
    memset(t, 0, sizeof(*t));
    t->fd = fd;
    t->state = SG_TLS_HANDSHAKE;
    t->in_max = in_max;
    t->ssl = SSL_new(ctx);
    if (t->ssl == NULL || SSL_set_fd(t->ssl, fd) != 1) {
        sg_tls_close(t);
        return -ENOMEM;
    }
    SSL_set_mode(t->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (server)
        SSL_set_accept_state(t->ssl);
    else
        SSL_set_connect_state(t->ssl);
    return 0;
}

void
sg_tls_log_errors(const char *what)
{
    unsigned long e;
    char buf[256];

    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        log_debug("tls %s error=\"%s\"", what, buf);
    }
}

/* Maps an SSL_get_error() result to poll bits (> 0), or 0 when fatal. */
static short
want(struct sg_tls *t, int r)
{
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        return POLLIN;
    case SSL_ERROR_WANT_WRITE:
        return POLLOUT;
    default:
        return 0;
    }
}

/* Moves the len bytes of *buf (cap allocated) into a new buffer of size,
 * wiping the old one before it is freed (not realloc(), which would leave
 * the plaintext behind). */
static int
grow(uint8_t **buf, size_t *cap, size_t len, size_t size)
{
    uint8_t *b = malloc(size);

    if (b == NULL)
        return -ENOMEM;
    if (len > 0)
        memcpy(b, *buf, len);
    OPENSSL_clear_free(*buf, *cap);
    *buf = b;
    *cap = size;
    return 0;
}

/* Makes room for more input: doubles the buffer, up to in_max. */
static int
in_grow(struct sg_tls *t)
{
    size_t cap = t->in_cap == 0 ? SG_TLS_IN_FIRST : 2 * t->in_cap;

    return grow(&t->in, &t->in_cap, t->in_len, cap < t->in_max ? cap : t->in_max);
}

int
sg_tls_step(struct sg_tls *t, short *events)
{
    short ev = 0;
    int r;

    *events = 0;
    t->paused = 0;
    if (t->state == SG_TLS_HANDSHAKE) {
        r = SSL_do_handshake(t->ssl);
        if (r != 1) {
            if (SSL_get_error(t->ssl, r) == SSL_ERROR_WANT_CLIENT_HELLO_CB) {
                t->paused = 1;
                return 0;
            }
            ev = want(t, r);
            if (ev == 0) {
                sg_tls_log_errors("handshake");
                return -EPROTO;
            }
            *events = ev;
            return 0;
        }
        t->state = SG_TLS_OPEN;
    }
    if (t->state != SG_TLS_OPEN)
        return -ECONNRESET;
    while (t->out_off < t->out_len) {
        r = SSL_write(t->ssl, t->out + t->out_off, (int)(t->out_len - t->out_off));
        if (r <= 0) {
            ev |= want(t, r);
            if (ev == 0) {
                sg_tls_log_errors("write");
                return -ECONNRESET;
            }
            break;
        }
        t->out_off += (size_t)r;
    }
    if (t->out_off == t->out_len) {
        OPENSSL_cleanse(t->out, t->out_len); /* sent: no plaintext stays behind */
        t->out_off = t->out_len = 0;
    }
    for (int i = 0; i < SG_TLS_READS_PER_STEP && !t->eof && t->in_len < t->in_max; i++) {
        if (t->in_len == t->in_cap && in_grow(t) != 0)
            return -ENOMEM;
        r = SSL_read(t->ssl, t->in + t->in_len, (int)(t->in_cap - t->in_len));
        if (r > 0) {
            t->in_len += (size_t)r;
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            ev |= POLLIN;
        else if (e == SSL_ERROR_WANT_WRITE)
            ev |= POLLOUT;
        else if (e == SSL_ERROR_ZERO_RETURN)
            t->eof = 1; /* close_notify, or EOF without one (SG_TLS_OPTIONS) */
        else {
            sg_tls_log_errors("read");
            return -ECONNRESET;
        }
        break;
    }
    *events = ev;
    return 0;
}

int
sg_tls_send(struct sg_tls *t, const void *p, size_t n)
{
    if (t->out_len + n > t->out_cap) {
        size_t cap = t->out_cap ? t->out_cap : 4096;
        while (cap < t->out_len + n)
            cap *= 2;
        if (grow(&t->out, &t->out_cap, t->out_len, cap) != 0)
            return -ENOMEM;
    }
    memcpy(t->out + t->out_len, p, n);
    t->out_len += n;
    return 0;
}

void
sg_tls_consume(struct sg_tls *t, size_t n)
{
    if (n > t->in_len)
        n = t->in_len;
    memmove(t->in, t->in + n, t->in_len - n);
    t->in_len -= n;
    OPENSSL_cleanse(t->in + t->in_len, n); /* what was consumed, wiped */
}

int
sg_tls_pending(const struct sg_tls *t)
{
    return t->out_off < t->out_len;
}

void
sg_tls_close(struct sg_tls *t)
{
    if (t->ssl != NULL) {
        if (t->state == SG_TLS_OPEN && !t->eof)
            SSL_shutdown(t->ssl);
        SSL_free(t->ssl);
        t->ssl = NULL;
    }
    ERR_clear_error();
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    OPENSSL_clear_free(t->in, t->in_cap);
    OPENSSL_clear_free(t->out, t->out_cap);
    t->in = t->out = NULL;
    t->in_len = t->in_cap = t->in_max = t->out_len = t->out_off = t->out_cap = 0;
    t->state = SG_TLS_CLOSED;
}
