/* outbound.c - an HTTP proxy in mode outbound (docs/field-encryption.md,
 * "Outbound"): the enclave's own calls to third parties. Tokens in a
 * request are opened only for a destination that egress_allow lets
 * through, and leave only over TLS that airlock originates and verifies:
 *
 *   route's upstream ─► egress_allow by name (before the body's tokens are
 *   opened) ─► dial (net/dial.c) with outbound_admit: the address it
 *   resolved to (DNS rebinding, special ranges) ─► TLS handshake: the
 *   certificate chains to ca_file (or the system's store) and names the
 *   upstream, TLS 1.2 at least ─► only then the request.
 *
 * A refusal at any step answers the application (403, 502) without a byte
 * of the request having left. Field builds only (OpenSSL). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/file.h"
#include "core/log.h"
#include "core/ssl_reason.h"
#include "http/proxy_int.h"

static bool
is_address(const char *host)
{
    unsigned char a[16];

    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

#define CA_FILE_MAX (16 << 20) /* a CA bundle of a few thousand certificates */

/* Adds the certificates and CRLs of the PEM text pem[0..len) to ctx's
 * store: 0, or -1 when it holds none or does not parse (OpenSSL's queue
 * says why). From memory: the file is read by file_read_regular(), which
 * a FIFO in its place cannot block. */
static int
ca_load(SSL_CTX *ctx, const char *pem, size_t len)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    STACK_OF(X509_INFO) *infos = bio ? PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL) : NULL;
    int n = 0, rc = -1;

    for (int i = 0; infos != NULL && i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *xi = sk_X509_INFO_value(infos, i);
        if ((xi->x509 != NULL && X509_STORE_add_cert(store, xi->x509) != 1) ||
            (xi->crl != NULL && X509_STORE_add_crl(store, xi->crl) != 1))
            goto fail;
        n += (xi->x509 != NULL) + (xi->crl != NULL);
    }
    rc = n > 0 ? 0 : -1;
fail:
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    BIO_free(bio);
    return rc;
}

/* The client context of pc's upstreams: peers verified against ca_file
 * or the system's store, TLS 1.2 at least. NULL with msg (len bytes). */
static SSL_CTX *
client_ctx(const struct http_proxy_conf *pc, char *msg, size_t len)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char *pem = NULL;
    size_t pem_len = 0;
    int rc;

    if (ctx == NULL) {
        snprintf(msg, len, "out of memory");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* the upstream's answers are plaintext: OpenSSL wipes its copy of what
     * it decrypted once it is handed over, as the session wipes its own */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CLEANSE_PLAINTEXT);
    /* SSL_write is retried with the buffer where the request then is */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    if (pc->ca_file[0] == '\0') {
        if (SSL_CTX_set_default_verify_paths(ctx) == 1)
            return ctx;
        snprintf(msg, len, "ca_file: the system's CA store does not load: %s", ssl_reason());
    } else if ((rc = file_read_regular(pc->ca_file, 0, CA_FILE_MAX, &pem, &pem_len)) != 0) {
        snprintf(msg, len, "ca_file: %.300s: %s", pc->ca_file,
                 rc == -EFBIG ? "larger than 16 MiB" : file_strerror(rc));
    } else if (ca_load(ctx, pem, pem_len) != 0) {
        snprintf(msg, len, "ca_file: %.300s: expected PEM certificates (%s)", pc->ca_file,
                 ssl_reason());
    } else {
        free(pem);
        return ctx;
    }
    free(pem);
    SSL_CTX_free(ctx);
    return NULL;
}

int
http_proxy_check_host(const struct http_proxy_conf *pc, char *why, size_t len)
{
    SSL_CTX *ctx;

    if (pc->mode != HTTP_OUTBOUND)
        return 0;
    if ((ctx = client_ctx(pc, why, len)) == NULL)
        return -EINVAL;
    SSL_CTX_free(ctx);
    return 0;
}

int
outbound_open(struct http_proxy *p, char *msg)
{
    const struct http_proxy_conf *pc = &p->conf;
    const char *why;

    if (pc->mode != HTTP_OUTBOUND)
        return 0;
    for (size_t i = 0; i < pc->n_routes; i++) {
        const char *host = pc->routes[i].upstream.host;
        struct route_rt *r = &p->routes[i];
        r->up_is_name = !is_address(host);
        if (!r->up_is_name)
            snprintf(r->up_name, sizeof(r->up_name), "%s", host);
        else if (egress_name_normalize(host, strlen(host), r->up_name, &why) != PARSE_OK) {
            snprintf(msg, HTTP_MSG_MAX, "route %s: upstream %s: %s", pc->routes[i].name, host, why);
            return -EINVAL;
        }
        if (outbound_allowed(p, i) != EGRESS_OK)
            log_warnx("http proxy=%s route %s: upstream %s is not in egress_allow: its requests "
                      "are refused (403)",
                      pc->name, pc->routes[i].name, host);
    }
    /* before the read: a file replaced meanwhile differs at the next reload */
    if (pc->ca_file[0] != '\0')
        (void)file_stamp(pc->ca_file, &p->ca_stamp);
    return (p->tls = client_ctx(pc, msg, HTTP_MSG_MAX)) != NULL ? 0 : -EINVAL;
}

void
outbound_free(struct http_proxy *p)
{
    SSL_CTX_free(p->tls);
    p->tls = NULL;
}

enum egress_verdict
outbound_allowed(const struct http_proxy *p, size_t i)
{
    const struct http_proxy_conf *pc = &p->conf;
    const struct route_rt *r = &p->routes[i];
    uint16_t port = (uint16_t)pc->routes[i].upstream.port;
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(port)};

    if (r->up_is_name)
        return egress_check_name(pc->egress_allow, pc->n_egress_allow, r->up_name, port);
    /* an address is checked here too: with a via, the dial reaches the
     * egress relay, not it */
    if (inet_pton(AF_INET, r->up_name, &a4.sin_addr) == 1)
        return egress_check_addr(pc->egress_allow, pc->n_egress_allow, (const struct sockaddr *)&a4,
                                 0, NULL);
    if (inet_pton(AF_INET6, r->up_name, &a6.sin6_addr) == 1)
        return egress_check_addr(pc->egress_allow, pc->n_egress_allow, (const struct sockaddr *)&a6,
                                 0, NULL);
    return EGRESS_BAD_DESTINATION;
}

#define VIA_HEAD_MAX 1024 /* the egress relay's answer to CONNECT */

/* The egress relay did not open the tunnel: its status (0: no valid
 * answer) decides s's answer. */
static void
via_refused(struct sess *s, int status, const char *what)
{
    log_warnx("http proxy=%s conn=%llu upstream %s via: %s", s->p->conf.name,
              (unsigned long long)s->id, s->p->routes[s->b_route].up_name, what);
    if (status == 403)
        reply_error(s, 403, FAIL_DEST_DENIED,
                    "the egress relay refused the destination: nothing was sent");
    else if (status == 504)
        reply_error(s, 504, FAIL_BACKEND_TIMEOUT, "the destination did not accept in time");
    else
        reply_error(s, 502, FAIL_BACKEND_DOWN, "the destination is unreachable");
}

bool
outbound_via_step(struct sess *s)
{
    char req[2 * EP_HOST_MAX + 64], auth[EP_HOST_MAX + 16], head[VIA_HEAD_MAX + 1], what[64];
    int status = 0;
    ssize_t n;

    if (!s->via_sent) {
        if (!s->br.writable)
            return false;
        http_upstream_authority(&s->p->conf.routes[s->b_route].upstream, true, auth, sizeof(auth));
        size_t len = (size_t)snprintf(req, sizeof(req), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n",
                                      auth, auth);
        n = send(s->bio.fd, req + s->via_off, len - s->via_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) {
            s->br.writable = false;
            return false;
        }
        if (n < 0) {
            via_refused(s, 0, strerror(errno));
            return true;
        }
        s->via_off += (size_t)n;
        s->via_sent = s->via_off == len;
        return true;
    }
    if (!s->br.readable)
        return false;
    /* peeked, then only the answer's head is taken: what follows it is the
     * upstream's TLS */
    n = recv(s->bio.fd, head, VIA_HEAD_MAX, MSG_PEEK);
    if (n < 0 && errno == EAGAIN) {
        s->br.readable = false;
        return false;
    }
    if (n <= 0) {
        via_refused(s, 0, n == 0 ? "the egress relay closed" : strerror(errno));
        return true;
    }
    head[n] = '\0';
    char *end = strstr(head, "\r\n\r\n");
    if (end == NULL && n < VIA_HEAD_MAX) {
        s->br.readable = false; /* the rest comes with a new edge */
        return false;
    }
    if (end == NULL || recv(s->bio.fd, head, (size_t)(end + 4 - head), 0) != end + 4 - head ||
        sscanf(head, "HTTP/1.%*[01] %3d", &status) != 1 || status != 200) {
        snprintf(what, sizeof(what), "CONNECT answered %d", status);
        via_refused(s, status, what);
        return true;
    }
    s->via_hs = false;
    return true;
}

int
outbound_admit(void *arg, const struct sockaddr *sa, socklen_t len)
{
    struct sess *s = arg;
    const struct http_proxy_conf *pc = &s->p->conf;
    const struct route_rt *r = &s->p->routes[s->b_route];
    const char *range = NULL;
    char addr[INET6_ADDRSTRLEN] = "?";
    enum egress_verdict v =
        egress_check_addr(pc->egress_allow, pc->n_egress_allow, sa, r->up_is_name, &range);

    (void)len;
    if (v == EGRESS_OK)
        return 0;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, addr, sizeof(addr));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, addr, sizeof(addr));
    log_warnx("http proxy=%s conn=%llu upstream %s refused: %s address=%s%s%s", pc->name,
              (unsigned long long)s->id, r->up_name, egress_verdict_name(v), addr,
              range != NULL ? " range=" : "", range != NULL ? range : "");
    return -EACCES;
}

struct ssl_st *
outbound_ssl(struct http_proxy *p, size_t i, int fd)
{
    const struct route_rt *r = &p->routes[i];
    SSL *ssl = SSL_new(p->tls);

    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1)
        goto fail;
    if (r->up_is_name) {
        /* SNI, and the name the certificate must carry (not a wildcard
         * that only covers part of a label) */
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set_tlsext_host_name(ssl, r->up_name) != 1 || SSL_set1_host(ssl, r->up_name) != 1)
            goto fail;
    } else if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), r->up_name) != 1) {
        goto fail;
    }
    SSL_set_connect_state(ssl);
    return ssl;
fail:
    SSL_free(ssl);
    return NULL;
}

/* What an SSL call's ret (<= 0) means for s: -EAGAIN (the readiness it
 * waits for cleared), -ECONNRESET at the upstream's close_notify, or
 * -EPROTO / -errno. */
static int
ssl_wait(struct sess *s, int ret)
{
    int err = errno;

    switch (SSL_get_error(s->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        s->br.readable = false;
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        s->br.writable = false;
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return -ECONNRESET;
    case SSL_ERROR_SYSCALL:
        return ERR_peek_error() != 0 ? -EPROTO : -(err != 0 ? err : ECONNRESET);
    default:
        return -EPROTO;
    }
}

bool
outbound_handshake(struct sess *s)
{
    const struct route_rt *r = &s->p->routes[s->b_route];
    long vr;
    int rc;

    if (!s->br.readable && !s->br.writable)
        return false;
    ERR_clear_error();
    int ret = SSL_connect(s->ssl);
    if (ret == 1) {
        s->tls_hs = false;
        return true;
    }
    if ((rc = ssl_wait(s, ret)) == -EAGAIN)
        return false;
    vr = SSL_get_verify_result(s->ssl);
    if (vr != X509_V_OK) {
        log_warnx("http proxy=%s conn=%llu upstream %s: certificate not verified: %s",
                  s->p->conf.name, (unsigned long long)s->id, r->up_name,
                  X509_verify_cert_error_string(vr));
        ERR_clear_error();
        reply_error(s, 502, FAIL_UPSTREAM_UNVERIFIED,
                    "the destination's certificate did not verify: nothing was sent");
        return true;
    }
    log_warnx("http proxy=%s conn=%llu upstream %s: TLS handshake failed: %s", s->p->conf.name,
              (unsigned long long)s->id, r->up_name, rc == -EPROTO ? ssl_reason() : strerror(-rc));
    ERR_clear_error();
    reply_error(s, 502, FAIL_UPSTREAM_TLS,
                "the TLS handshake with the destination failed: nothing was sent");
    return true;
}

ssize_t
outbound_io(struct sess *s, void *buf, size_t len, bool out)
{
    size_t done = 0;
    int ret;

    ERR_clear_error();
    ret = out ? SSL_write_ex(s->ssl, buf, len, &done) : SSL_read_ex(s->ssl, buf, len, &done);
    if (ret == 1)
        return (ssize_t)done;
    int rc = ssl_wait(s, ret);
    if (!out && rc == -ECONNRESET)
        return 0; /* close_notify: the end of a response that ends with the connection */
    ERR_clear_error();
    return rc;
}

void
outbound_close(struct sess *s)
{
    SSL_free(s->ssl);
    s->ssl = NULL;
    s->tls_hs = false;
}
