/* http_echo.c - the HTTP backend of the field-proxy tests (t_field_proxy.sh,
 * bench/field_proxy.sh): what nginx cannot show, each request's body as it
 * arrived, and answers the proxy must not take for complete.
 *
 *   http_echo PORT LOG
 *
 * Listens on 127.0.0.1:PORT, a thread per connection, keep-alive. Each
 * request appends one line to LOG: "METHOD PATH conn=N xff=X len=N body=BODY"
 * (the body with newlines as spaces), then is answered by its path:
 *   /slow?ms=N   wait N ms, then as below
 *   /truncate    a head with Content-Length: 100, 10 bytes, close
 *   /close       close without an answer
 *   /chunked     the echo below, chunked (two chunks)
 *   /eof         the echo below without a length, ended by closing
 *   /json?body=X the body X (URL-decoded) instead of the request's
 *   /raw?resp=X  the bytes X (URL-decoded) as the whole answer, head and all,
 *                and the connection kept (an answer the proxy must not wait on)
 *   anything     200 with the request's body (Content-Type of the request,
 *                else application/json) and Content-Length
 * Prints "ready" when it listens. */
#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BODY_MAX (64 * 1024 * 1024)

static FILE *log_file;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint conns;

struct req {
    char url[4096];
    size_t url_len;
    char *body;
    size_t len;
    char ctype[256], xff[256];
    char field[64];
    int in_value; /* the header being read: 1 content-type, 2 x-forwarded-for */
    int done;
};

static int
on_url(http_parser *p, const char *at, size_t len)
{
    struct req *r = p->data;

    if (r->url_len + len < sizeof(r->url)) {
        memcpy(r->url + r->url_len, at, len);
        r->url_len += len;
        r->url[r->url_len] = '\0';
    }
    return 0;
}

static int
on_field(http_parser *p, const char *at, size_t len)
{
    struct req *r = p->data;

    snprintf(r->field, sizeof(r->field), "%.*s", (int)len, at);
    r->in_value = strcasecmp(r->field, "content-type") == 0      ? 1
                  : strcasecmp(r->field, "x-forwarded-for") == 0 ? 2
                                                                 : 0;
    return 0;
}

static int
on_value(http_parser *p, const char *at, size_t len)
{
    struct req *r = p->data;

    if (r->in_value == 1)
        snprintf(r->ctype, sizeof(r->ctype), "%.*s", (int)len, at);
    else if (r->in_value == 2)
        snprintf(r->xff, sizeof(r->xff), "%.*s", (int)len, at);
    return 0;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
    struct req *r = p->data;
    char *nb;

    if (r->len + len > BODY_MAX || (nb = realloc(r->body, r->len + len + 1)) == NULL)
        return 1;
    r->body = nb;
    memcpy(r->body + r->len, at, len);
    r->len += len;
    r->body[r->len] = '\0';
    return 0;
}

static int
on_done(http_parser *p)
{
    ((struct req *)p->data)->done = 1;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_body = on_body,
    .on_message_complete = on_done,
};

static int
send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static size_t
url_decode(const char *s, char *out, size_t size)
{
    size_t o = 0;

    for (; *s != '\0' && *s != '&' && o + 1 < size; s++) {
        if (*s == '%' && s[1] && s[2]) {
            char hex[3] = {s[1], s[2], 0};
            out[o++] = (char)strtol(hex, NULL, 16);
            s += 2;
        } else {
            out[o++] = *s == '+' ? ' ' : *s;
        }
    }
    out[o] = '\0';
    return o;
}

/* Answers r; returns -1 when the connection must close. */
static int
answer(int fd, struct req *r, unsigned id, int method)
{
    char head[1024], *q = strchr(r->url, '?');
    const char *body = r->body ? r->body : "";
    size_t len = r->len;
    static char alt[65536];

    pthread_mutex_lock(&log_lock);
    fprintf(log_file, "%s %s conn=%u xff=%s len=%zu body=", http_method_str(method), r->url, id,
            r->xff[0] ? r->xff : "-", r->len);
    for (size_t i = 0; i < r->len; i++)
        fputc(r->body[i] == '\n' ? ' ' : r->body[i], log_file);
    fputc('\n', log_file);
    fflush(log_file);
    pthread_mutex_unlock(&log_lock);

    if (strncmp(r->url, "/slow", 5) == 0 && q != NULL && strncmp(q, "?ms=", 4) == 0) {
        struct timespec ts = {atoi(q + 4) / 1000, (atoi(q + 4) % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (strncmp(r->url, "/close", 6) == 0)
        return -1;
    if (strncmp(r->url, "/truncate", 9) == 0) {
        static const char t[] =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            "{\"partial\"";
        send_all(fd, t, sizeof(t) - 1);
        return -1;
    }
    if (strncmp(r->url, "/raw", 4) == 0 && q != NULL && strncmp(q, "?resp=", 6) == 0) {
        len = url_decode(q + 6, alt, sizeof(alt));
        return send_all(fd, alt, len);
    }
    if (strncmp(r->url, "/json", 5) == 0 && q != NULL && strncmp(q, "?body=", 6) == 0) {
        len = url_decode(q + 6, alt, sizeof(alt));
        body = alt;
        snprintf(r->ctype, sizeof(r->ctype), "application/json");
    }
    const char *ct = r->ctype[0] ? r->ctype : "application/json";
    if (strncmp(r->url, "/chunked", 8) == 0) {
        size_t half = len / 2;
        int n = snprintf(head, sizeof(head),
                         "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "%zx\r\n",
                         ct, half);
        if (half == 0)
            n = snprintf(
                head, sizeof(head),
                "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n", ct);
        char mid[32], tail[32];
        int m = snprintf(mid, sizeof(mid), "\r\n%zx\r\n", len - half);
        int t = snprintf(tail, sizeof(tail), "\r\n0\r\n\r\n");
        if (send_all(fd, head, (size_t)n) || send_all(fd, body, half) ||
            send_all(fd, half ? mid : mid + 2, half ? (size_t)m : (size_t)m - 2) ||
            send_all(fd, body + half, len - half) || send_all(fd, tail, (size_t)t))
            return -1;
        return 0;
    }
    if (strncmp(r->url, "/eof", 4) == 0) {
        int n = snprintf(head, sizeof(head),
                         "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nConnection: close\r\n\r\n", ct);
        send_all(fd, head, (size_t)n);
        send_all(fd, body, len);
        return -1;
    }
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\nX-Echo-Conn: "
                     "%u\r\n\r\n",
                     ct, len, id);
    if (send_all(fd, head, (size_t)n) != 0 || (method != HTTP_HEAD && send_all(fd, body, len) != 0))
        return -1;
    return 0;
}

static void *
serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    unsigned id = atomic_fetch_add(&conns, 1) + 1;
    static __thread char buf[65536];
    size_t have = 0, off = 0;
    http_parser p;
    struct req r;

    for (;;) {
        memset(&r, 0, sizeof(r));
        http_parser_init(&p, HTTP_REQUEST);
        p.data = &r;
        while (!r.done) {
            if (off == have) {
                ssize_t n = recv(fd, buf, sizeof(buf), 0);
                if (n <= 0)
                    goto out;
                have = (size_t)n;
                off = 0;
            }
            size_t used = http_parser_execute(&p, &settings, buf + off, have - off);
            off += used;
            if (HTTP_PARSER_ERRNO(&p) != HPE_OK && HTTP_PARSER_ERRNO(&p) != HPE_PAUSED)
                goto out;
        }
        int keep = http_should_keep_alive(&p);
        if (answer(fd, &r, id, p.method) != 0 || !keep)
            goto out;
        free(r.body);
    }
out:
    free(r.body);
    close(fd);
    return NULL;
}

/* SIGTERM is the normal way to stop it: exit 0 */
static void
on_term(int sig)
{
    (void)sig;
    _exit(0);
}

int
main(int argc, char **argv)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);

    if (argc != 3) {
        fprintf(stderr, "usage: http_echo PORT LOG\n");
        return 2;
    }
    if ((log_file = fopen(argv[2], "a")) == NULL) {
        perror(argv[2]);
        return 1;
    }
    sa.sin_port = htons((uint16_t)atoi(argv[1]));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 1024) != 0) {
        perror("listen");
        return 1;
    }
    signal(SIGTERM, on_term);
    signal(SIGPIPE, SIG_IGN);
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        pthread_t t;
        if (fd < 0)
            continue;
        if (pthread_create(&t, NULL, serve, (void *)(intptr_t)fd) != 0) {
            close(fd);
            continue;
        }
        pthread_detach(t);
    }
}
