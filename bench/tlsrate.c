/* tlsrate.c - new TLS connections per second with SNI, for bench/router.sh.
 *
 *   usage: tlsrate PORT SNI SECONDS PROCS [COUNT]
 *
 * PROCS processes each connect to 127.0.0.1:PORT, complete a full TLS
 * handshake (no session resumption) naming SNI, send "GET / HTTP/1.0",
 * read the answer to its end and close, over and over for SECONDS. Prints
 * "conns_per_s=N errors=N". With COUNT, the processes make COUNT
 * connections in all instead (SECONDS is ignored) and it prints
 * "conns=N errors=N": bench/router.sh counts a proxy's syscalls and CPU per
 * connection that way. (openssl s_time measures the same thing but
 * cannot send a server name.) Build: cc -O2 tlsrate.c -lssl -lcrypto. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One connection: returns 0 when the whole exchange worked. */
static int
one(SSL_CTX *ctx, int port, const char *sni)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    static const char req[] = "GET / HTTP/1.0\r\n\r\n";
    char buf[4096];
    int fd = socket(AF_INET, SOCK_STREAM, 0), on = 1, rc = -1;
    SSL *ssl = NULL;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto out;
    if ((ssl = SSL_new(ctx)) == NULL)
        goto out;
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, sni);
    if (SSL_connect(ssl) != 1 || SSL_write(ssl, req, sizeof(req) - 1) <= 0)
        goto out;
    while (SSL_read(ssl, buf, sizeof(buf)) > 0)
        ;
    rc = 0;
    SSL_shutdown(ssl);
out:
    SSL_free(ssl);
    close(fd);
    return rc;
}

int
main(int argc, char **argv)
{
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: tlsrate PORT SNI SECONDS PROCS [COUNT]\n");
        return 2;
    }
    int port = atoi(argv[1]), procs = atoi(argv[4]), p[2];
    long count = argc == 6 ? atol(argv[5]) : 0;
    double secs = atof(argv[3]);
    const char *sni = argv[2];

    if (pipe(p) != 0)
        return 1;
    for (int i = 0; i < procs; i++) {
        if (fork() != 0)
            continue;
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        long n = 0, err = 0, mine = count / procs + (i < count % procs);
        double end = now() + secs;
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        while (count > 0 ? n + err < mine : now() < end) {
            if (one(ctx, port, sni) == 0)
                n++;
            else
                err++;
        }
        dprintf(p[1], "%ld %ld\n", n, err);
        _exit(0);
    }
    close(p[1]);
    FILE *f = fdopen(p[0], "r");
    long total = 0, errors = 0, n, e;
    while (f != NULL && fscanf(f, "%ld %ld", &n, &e) == 2) {
        total += n;
        errors += e;
    }
    while (wait(NULL) > 0)
        ;
    if (count > 0)
        printf("conns=%ld errors=%ld\n", total, errors);
    else
        printf("conns_per_s=%.0f errors=%ld\n", (double)total / secs, errors);
    return 0;
}
