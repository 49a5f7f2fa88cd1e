/* test_relay_tls.c - a relay with tls: (RA-TLS, sim provider) leaves no
 * plaintext in the memory it gives back.
 *
 * A real relay (relay/relay.c, conn_tls.c, tls.c) on a worker thread of
 * its own; a real TLS client (OpenSSL) on this thread and an echoing
 * backend on another, over real unix sockets. The client sends markers in
 * several records; the backend echoes them, so they cross the relay in
 * clear both ways (decrypted from the client, read from the backend to be
 * encrypted). Every allocation OpenSSL makes goes through
 * CRYPTO_set_mem_functions() hooks and airlock's own free() and realloc()
 * are wrapped (-Wl,--wrap): a block of the worker's given back, or moved,
 * while it holds a marker is a leak. The connection is then closed and the
 * worker stopped, so everything the connection held has been given back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

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

#include "attest/sim.h"
#include "net/endpoint.h"
#include "relay/conf.h"
#include "relay/conn.h"
#include "relay/relay.h"
#include "relay/tls.h"

#define MARKER "RELAYED-PLAINTEXT-MARKER-9b2e"
#define CHUNK (40 * 1024) /* more than two records: both buffers fill */
#define ROUNDS 4          /* chunks sent, each echoed before the next */

void __real_free(void *p);
void *__real_realloc(void *p, size_t n);
void __wrap_free(void *p);
void *__wrap_realloc(void *p, size_t n);

static pthread_t worker_thread;
static atomic_bool watching; /* worker_thread is set */
static atomic_int leaks, moved;

static bool
holds_marker(void *p)
{
    return p != NULL && atomic_load(&watching) && pthread_equal(pthread_self(), worker_thread) &&
           memmem(p, malloc_usable_size(p), MARKER, strlen(MARKER)) != NULL;
}

void
__wrap_free(void *p)
{
    if (holds_marker(p))
        atomic_fetch_add(&leaks, 1);
    __real_free(p);
}

void *
__wrap_realloc(void *p, size_t n)
{
    if (holds_marker(p))
        atomic_fetch_add(&moved, 1);
    return __real_realloc(p, n);
}

static void *
crypto_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return malloc(n);
}

static void *
crypto_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return __wrap_realloc(p, n);
}

static void
crypto_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    __wrap_free(p);
}

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

static void
test_relay_tls_wipes(void **state)
{
    char dir[] = "/tmp/test_relay_tls.XXXXXX", sim_path[64], listen_ep[80], back_path[64];
    const char *err;
    struct relay_conf rc;
    EVP_PKEY *root_key = NULL;
    X509 *root = NULL;
    FILE *f;
    pthread_t back_thread;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(sim_path, sizeof(sim_path), "%s/sim.pem", dir);
    snprintf(back_path, sizeof(back_path), "%s/back", dir);
    snprintf(listen_ep, sizeof(listen_ep), "unix:%s/listen", dir);
    assert_int_equal(attest_sim_root_generate(time(NULL), &root_key, &root), 0);
    assert_non_null(f = fopen(sim_path, "w"));
    assert_int_equal(PEM_write_PrivateKey(f, root_key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(PEM_write_X509(f, root), 1);
    fclose(f);
    EVP_PKEY_free(root_key);
    X509_free(root);

    int lfd = unix_socket(back_path, true);
    assert_true(lfd >= 0);
    assert_int_equal(pthread_create(&back_thread, NULL, backend, &lfd), 0);

    relay_conf_defaults(&rc);
    snprintf(rc.name, sizeof(rc.name), "wipe");
    assert_int_equal(endpoint_parse(listen_ep, &rc.listen, &err), PARSE_OK);
    char target_ep[80];
    snprintf(target_ep, sizeof(target_ep), "unix:%s", back_path);
    assert_int_equal(endpoint_parse(target_ep, &rc.target, &err), PARSE_OK);
    rc.tls.enabled = true;
    snprintf(rc.tls.provider, sizeof(rc.tls.provider), "sim");
    snprintf(rc.tls.sim_root, sizeof(rc.tls.sim_root), "%s", sim_path);

    struct relay_stats *st = relay_stats_new("wipe");
    struct worker *w = worker_new();
    assert_non_null(st);
    assert_non_null(w);
    struct relay *r = relay_new(&rc, st, &w, 1);
    assert_non_null(r);
    assert_int_equal(relay_tls_open(r), 0);
    assert_int_equal(relay_listen(r, NULL), 0);
    assert_int_equal(relay_start(r, w->loop), 0);
    assert_int_equal(worker_spawn(w), 0);
    worker_thread = w->thread;
    atomic_store(&watching, true);

    /* the client: TLS to the relay, each chunk echoed before the next */
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL *ssl = SSL_new(ctx);
    int fd = unix_socket(listen_ep + 5, false);
    assert_true(fd >= 0);
    assert_int_equal(SSL_set_fd(ssl, fd), 1);
    assert_int_equal(SSL_connect(ssl), 1);
    for (size_t i = 0; i < sizeof(sent); i++)
        sent[i] = MARKER[i % strlen(MARKER)];
    for (int round = 0; round < ROUNDS; round++) {
        size_t len = 0, n;
        assert_int_equal(SSL_write_ex(ssl, sent, sizeof(sent), &n), 1);
        while (len < sizeof(got) && SSL_read_ex(ssl, got + len, sizeof(got) - len, &n) == 1)
            len += n;
        assert_int_equal(len, sizeof(got));
        assert_memory_equal(got, sent, sizeof(got));
    }
    /* close_notify: the relay passes the end on both ways, then closes */
    assert_true(SSL_shutdown(ssl) >= 0);
    size_t n;
    while (SSL_read_ex(ssl, got, sizeof(got), &n) == 1)
        ;
    assert_int_equal(SSL_get_error(ssl, 0), SSL_ERROR_ZERO_RETURN);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    pthread_join(back_thread, NULL);
    close(lfd);

    /* the worker closes the connection (its close line), then stops,
     * having run what it deferred: the connection is given back whole */
    for (int i = 0; i < 10000 && atomic_load(&w->n_conns) > 0; i++)
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    assert_int_equal(atomic_load(&w->n_conns), 0);
    relay_stop(r, 1);
    worker_free(w);
    atomic_store(&watching, false);
    relay_unref(r);
    relay_stats_unref(st);
    unlink(sim_path);
    unlink(back_path);
    rmdir(dir);
    if (leaks != 0 || moved != 0)
        fail_msg("%d blocks freed and %d moved holding plaintext", leaks, moved);
}

int
main(void)
{
    /* before OpenSSL allocates anything */
    if (CRYPTO_set_mem_functions(crypto_malloc, crypto_realloc, crypto_free) != 1)
        return 1;

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relay_tls_wipes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
