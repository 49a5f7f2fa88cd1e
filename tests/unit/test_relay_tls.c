/* test_relay_tls.c - a relay with tls: (RA-TLS, sim provider) leaves no
 * plaintext in the memory it gives back.
 *
 * A real relay (relay/relay.c, conn_tls.c, tls.c) on a worker thread of
 * its own; a real TLS client (OpenSSL) on this thread and an echoing
 * backend on another, over real unix sockets; and a plain client through
 * a verify: relay in front of it. The client sends markers in several
 * records; the backend echoes them, so they cross the relays in clear
 * both ways (decrypted from one side, read from the other to be
 * encrypted). Every allocation OpenSSL makes goes through
 * CRYPTO_set_mem_functions() hooks and airlock's own free() and realloc()
 * are wrapped (-Wl,--wrap): a block of the worker's given back, or moved,
 * while it holds a marker is a leak. The connection is then closed and the
 * worker stopped, so everything the connection held has been given back.
 * A backend that takes nothing leaves plaintext in the relay's buffer
 * until idle_timeout ends the connection: wiped then too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "attest/policy.h"
#include "attest/sim.h"
#include "net/endpoint.h"
#include "relay/conf.h"
#include "relay/conn.h"
#include "relay/relay.h"
#include "relay/tls.h"
#include "wipe_watch.h"

#define MARKER "RELAYED-PLAINTEXT-MARKER-9b2e"
#define CHUNK (40 * 1024) /* more than two records: both buffers fill */
#define ROUNDS 4          /* chunks sent, each echoed before the next */

/* the peers' buffers are static: the heap holds only the relay's copies */
static char sent[CHUNK], got[CHUNK], echo_buf[CHUNK];

static int
unix_socket(const char *path, bool listening)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (fd < 0)
        return -1;
    if (listening ? bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 4) != 0
                  : connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The backend: one connection, every byte echoed, its end passed back. */
static void *
backend(void *arg)
{
    int lfd = *(int *)arg, fd = accept(lfd, NULL, NULL);
    ssize_t n;

    while (fd >= 0 && (n = read(fd, echo_buf, sizeof(echo_buf))) > 0)
        for (ssize_t off = 0, w; off < n; off += w)
            if ((w = write(fd, echo_buf + off, (size_t)(n - off))) <= 0)
                goto out;
out:
    if (fd >= 0) {
        shutdown(fd, SHUT_WR);
        close(fd);
    }
    return NULL;
}

/* The relays under test, on one worker thread, and the backend. */
struct fixture {
    char dir[32], sim[64], back[64];
    int back_fd;
    bool echo;        /* the backend echoes; else it never accepts: writes stall */
    unsigned idle_ms; /* the relays' idle_timeout; 0: the default */
    pthread_t back_thread;
    struct worker *w;
    struct relay *r[2];
    struct relay_stats *st[2];
    size_t n;
};

/* A relay named name from listen (a socket of f->dir) to target ("" is the
 * backend), with tls: (tls) or verify: to it, started on f's worker. */
static void
relay_add(struct fixture *f, const char *name, const char *listen, const char *target, bool tls)
{
    char ep[96];
    const char *err;
    struct relay_conf rc;

    relay_conf_defaults(&rc);
    snprintf(rc.name, sizeof(rc.name), "%s", name);
    if (f->idle_ms > 0)
        rc.idle_timeout_ms = f->idle_ms;
    snprintf(ep, sizeof(ep), "unix:%s/%s", f->dir, listen);
    assert_int_equal(endpoint_parse(ep, &rc.listen, &err), PARSE_OK);
    snprintf(ep, sizeof(ep), "unix:%s/%s", f->dir, target[0] != '\0' ? target : "back");
    assert_int_equal(endpoint_parse(ep, &rc.target, &err), PARSE_OK);
    if (tls) {
        rc.tls.enabled = true;
        snprintf(rc.tls.provider, sizeof(rc.tls.provider), "sim");
        snprintf(rc.tls.sim_root, sizeof(rc.tls.sim_root), "%s", f->sim);
    } else {
        rc.verify.enabled = true;
        attest_policy_conf_defaults(&rc.verify.policy);
        snprintf(rc.verify.policy.sim_root, sizeof(rc.verify.policy.sim_root), "%s", f->sim);
    }
    struct relay_stats *st = relay_stats_new(name);
    assert_non_null(st);
    struct relay *r = relay_new(&rc, st, &f->w, 1);
    assert_non_null(r);
    assert_int_equal(relay_tls_open(r), 0);
    assert_int_equal(relay_listen(r, NULL), 0);
    assert_int_equal(relay_start(r, f->w->loop), 0);
    f->r[f->n] = r;
    f->st[f->n++] = st;
}

/* A sim root, the backend (echo: echoing), a worker (not running yet). */
static void
fixture_open(struct fixture *f, bool echo)
{
    EVP_PKEY *root_key = NULL;
    X509 *root = NULL;
    FILE *fp;

    memset(f, 0, sizeof(*f));
    f->echo = echo;
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_relay_tls.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->sim, sizeof(f->sim), "%s/sim.pem", f->dir);
    snprintf(f->back, sizeof(f->back), "%s/back", f->dir);
    assert_int_equal(attest_sim_root_generate(time(NULL), &root_key, &root), 0);
    assert_non_null(fp = fopen(f->sim, "w"));
    assert_int_equal(PEM_write_PrivateKey(fp, root_key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(PEM_write_X509(fp, root), 1);
    fclose(fp);
    EVP_PKEY_free(root_key);
    X509_free(root);
    assert_true((f->back_fd = unix_socket(f->back, true)) >= 0);
    if (echo)
        assert_int_equal(pthread_create(&f->back_thread, NULL, backend, &f->back_fd), 0);
    assert_non_null(f->w = worker_new());
}

/* Runs the worker; from now on its frees are watched. */
static void
fixture_run(struct fixture *f)
{
    assert_int_equal(worker_spawn(f->w), 0);
    wipe_watch(f->w->thread, MARKER);
}

/* Once the client is done: the worker closes the connections (their close
 * lines), then stops, having run what it deferred: everything they held
 * is given back. Then the count. */
static void
fixture_close(struct fixture *f)
{
    if (f->echo)
        pthread_join(f->back_thread, NULL);
    for (int i = 0; i < 30000 && atomic_load(&f->w->n_conns) > 0; i++)
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    assert_int_equal(atomic_load(&f->w->n_conns), 0);
    close(f->back_fd);
    for (size_t i = 0; i < f->n; i++)
        relay_stop(f->r[i], 1);
    worker_free(f->w);
    wipe_unwatch();
    for (size_t i = 0; i < f->n; i++) {
        relay_unref(f->r[i]);
        relay_stats_unref(f->st[i]);
    }
    unlink(f->sim);
    unlink(f->back);
    rmdir(f->dir);
    if (atomic_load(&wipe_leaks) + atomic_load(&wipe_moved) > 0)
        fail_msg("%d blocks freed and %d moved holding plaintext", atomic_load(&wipe_leaks),
                 atomic_load(&wipe_moved));
}

static void
fill_markers(void)
{
    for (size_t i = 0; i < sizeof(sent); i++)
        sent[i] = MARKER[i % strlen(MARKER)];
}

/* A TLS client's connection to f's relay "tls", handshake done; the
 * markers to send are in sent. Returns its fd. */
static int
tls_client(struct fixture *f, SSL_CTX **ctx, SSL **ssl)
{
    char path[64];
    int fd;

    assert_non_null(*ctx = SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_verify(*ctx, SSL_VERIFY_NONE, NULL);
    assert_non_null(*ssl = SSL_new(*ctx));
    snprintf(path, sizeof(path), "%s/tls", f->dir);
    assert_true((fd = unix_socket(path, false)) >= 0);
    assert_int_equal(SSL_set_fd(*ssl, fd), 1);
    assert_int_equal(SSL_connect(*ssl), 1);
    fill_markers();
    return fd;
}

/* tls: a TLS client (this thread) -> the relay -> the backend. */
static void
test_tls_wipes(void **state)
{
    struct fixture f;
    SSL_CTX *ctx;
    SSL *ssl;
    size_t n;

    (void)state;
    fixture_open(&f, true);
    relay_add(&f, "tls", "tls", "", true);
    fixture_run(&f);

    /* each chunk echoed before the next */
    int fd = tls_client(&f, &ctx, &ssl);
    for (int round = 0; round < ROUNDS; round++) {
        size_t len = 0;
        assert_int_equal(SSL_write_ex(ssl, sent, sizeof(sent), &n), 1);
        while (len < sizeof(got) && SSL_read_ex(ssl, got + len, sizeof(got) - len, &n) == 1)
            len += n;
        assert_int_equal(len, sizeof(got));
        assert_memory_equal(got, sent, sizeof(got));
    }
    /* close_notify: the relay passes the end on both ways, then closes */
    assert_true(SSL_shutdown(ssl) >= 0);
    while (SSL_read_ex(ssl, got, sizeof(got), &n) == 1)
        ;
    assert_int_equal(SSL_get_error(ssl, 0), SSL_ERROR_ZERO_RETURN);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    fixture_close(&f);
}

/* tls: the backend takes nothing: the client writes until everything is
 * full, the relay's buffer holds plaintext it could not write on when
 * idle_timeout ends the connection. */
static void
test_stalled_wipes(void **state)
{
    struct fixture f;
    SSL_CTX *ctx;
    SSL *ssl;
    size_t n;

    (void)state;
    fixture_open(&f, false);
    f.idle_ms = 200;
    relay_add(&f, "tls", "tls", "", true);
    fixture_run(&f);
    int fd = tls_client(&f, &ctx, &ssl);
    assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    while (SSL_write_ex(ssl, sent, sizeof(sent), &n) == 1)
        ;
    assert_int_equal(SSL_get_error(ssl, 0), SSL_ERROR_WANT_WRITE);
    fixture_close(&f);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
}

/* verify: a plain client (this thread) -> a verify: relay -> a tls: relay
 * -> the backend: the plaintext crosses both relays, read in clear by the
 * first and decrypted by both. */
static void
test_verify_wipes(void **state)
{
    struct fixture f;
    char path[64];

    (void)state;
    fixture_open(&f, true);
    relay_add(&f, "tls", "tls", "", true);
    relay_add(&f, "verify", "verify", "tls", false);
    fixture_run(&f);

    snprintf(path, sizeof(path), "%s/verify", f.dir);
    int fd = unix_socket(path, false);
    assert_true(fd >= 0);
    fill_markers();
    for (int round = 0; round < ROUNDS; round++) {
        size_t len = 0;
        ssize_t n;
        for (size_t off = 0; off < sizeof(sent); off += (size_t)n)
            assert_true((n = write(fd, sent + off, sizeof(sent) - off)) > 0);
        while (len < sizeof(got) && (n = read(fd, got + len, sizeof(got) - len)) > 0)
            len += (size_t)n;
        assert_int_equal(len, sizeof(got));
        assert_memory_equal(got, sent, sizeof(got));
    }
    /* a FIN: passed on to the end, and back */
    shutdown(fd, SHUT_WR);
    assert_int_equal(read(fd, got, sizeof(got)), 0);
    close(fd);
    fixture_close(&f);
}

int
main(void)
{
    /* before OpenSSL allocates anything */
    if (wipe_watch_openssl() != 0)
        return 1;

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_wipes),
        cmocka_unit_test(test_verify_wipes),
        cmocka_unit_test(test_stalled_wipes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
