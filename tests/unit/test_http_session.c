/* test_http_session.c - an HTTP proxy session leaves no plaintext in the
 * memory it gives back.
 *
 * A real proxy (inbound, one route that encrypts $.card of request bodies
 * and opens the tokens of responses) on a loop of this thread, a real
 * client and backend on a thread of their own over real sockets. The
 * requests carry markers in a header, in the field encrypted and in a
 * field passed as it is; the backend echoes the body (tokens and all), so
 * the response comes back decrypted. Bodies are larger than a read, so the
 * buffers grow. free() and realloc() are wrapped (-Wl,--wrap): a block of
 * this thread's given back, or moved, while it holds a marker is a leak
 * (realloc() may move a block and leave the old one as it was). Between
 * two requests, the session's buffers (kept for the next one) hold no
 * marker either, in their whole capacity. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/loop.h"
#include "field/field.h"
#include "http/proxy.h"
#include "http/proxy_int.h" /* the sessions' buffers, looked at between requests */
#include "net/endpoint.h"
#include "wipe_watch.h"

#define MARKER "PLAINTEXT-MARKER-7c1f"
#define PAD_N 6000 /* markers in the passed-through field: ~130 KiB, over a read */
#define ROUNDS 3   /* requests on one connection: the buffers are reused */
#define CHUNK 4096 /* the second request's body is chunked (de-chunked in place) */
#define IO_MAX (1 << 20)

/* the peers' buffers are static: the heap is the proxy's alone */
static char req[IO_MAX], body[IO_MAX], resp[IO_MAX], back_in[IO_MAX];

struct peers {
    struct loop *loop;
    struct http_env *env;
    int done[2];     /* a pipe: the look between two requests is over */
    int stale;       /* markers left in the buffers kept between requests */
    int back_fd;     /* the backend's listener */
    char sock[108];  /* the proxy's socket */
    bool ok;         /* every response came back decrypted */
    bool leaked_out; /* the card's marker reached the backend */
};

/* Reads one HTTP message (head and a Content-Length body) into buf;
 * returns its length, or -1. */
static ssize_t
read_message(int fd, char *buf, size_t cap)
{
    size_t len = 0;

    for (;;) {
        char *end = memmem(buf, len, "\r\n\r\n", 4);
        if (end != NULL) {
            const char *cl = strcasestr(buf, "content-length:");
            size_t head = (size_t)(end + 4 - buf);
            size_t want = head + (cl != NULL && cl < end ? strtoul(cl + 15, NULL, 10) : 0);
            if (len >= want)
                return (ssize_t)len;
        }
        if (len == cap)
            return -1;
        ssize_t n = read(fd, buf + len, cap - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
    }
}

static bool
write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* On the loop, between two requests of the session: its buffers, whole. */
static void
look_posted(void *arg)
{
    struct peers *pe = arg;
    struct http_worker *w = &pe->env->w[0];

    for (struct list *it = w->sessions.next; it != &w->sessions; it = it->next) {
        const struct sess *s = list_entry(it, struct sess, link);
        const struct {
            const char *data;
            size_t cap;
        } bufs[] = {{s->in.data, s->in.cap},
                    {s->rin.data, s->rin.cap},
                    {s->head.data, s->head.cap},
                    {s->body.data, s->body.cap}};
        for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
            if (bufs[i].data != NULL && memmem(bufs[i].data, bufs[i].cap, MARKER, strlen(MARKER)))
                pe->stale++;
    }
    if (write(pe->done[1], "", 1) != 1)
        pe->stale = -1000;
}

/* The backend answers each request with its body; the client sends
 * ROUNDS requests on one connection and checks each answer. */
static void *
peers_run(void *arg)
{
    struct peers *pe = arg;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), b = -1;
    size_t blen = 0;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", pe->sock);
    if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto done;
    blen = (size_t)snprintf(body, sizeof(body), "{\"card\": \"%s-card\", \"note\": \"", MARKER);
    for (int i = 0; i < PAD_N; i++)
        blen += (size_t)snprintf(body + blen, sizeof(body) - blen, "%s ", MARKER);
    blen += (size_t)snprintf(body + blen, sizeof(body) - blen, "\"}");
    for (int r = 0; r < ROUNDS; r++) {
        int n = snprintf(req, sizeof(req),
                         "POST /pay HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s-auth\r\n"
                         "Content-Type: application/json\r\n",
                         MARKER);
        if (r == 1) {
            n += snprintf(req + n, sizeof(req) - (size_t)n, "Transfer-Encoding: chunked\r\n\r\n");
            for (size_t off = 0; off < blen; off += CHUNK) {
                size_t k = blen - off < CHUNK ? blen - off : CHUNK;
                n += snprintf(req + n, sizeof(req) - (size_t)n, "%zx\r\n%.*s\r\n", k, (int)k,
                              body + off);
            }
            n += snprintf(req + n, sizeof(req) - (size_t)n, "0\r\n\r\n");
        } else {
            n += snprintf(req + n, sizeof(req) - (size_t)n, "Content-Length: %zu\r\n\r\n%s", blen,
                          body);
        }
        if (!write_all(c, req, (size_t)n))
            goto done;
        if (b < 0 && (b = accept4(pe->back_fd, NULL, NULL, SOCK_CLOEXEC)) < 0)
            goto done;
        ssize_t in = read_message(b, back_in, sizeof(back_in));
        if (in < 0)
            goto done;
        char *bb = (char *)memmem(back_in, (size_t)in, "\r\n\r\n", 4) + 4;
        if (memmem(back_in, (size_t)in, MARKER "-card", strlen(MARKER "-card")) != NULL)
            pe->leaked_out = true;
        size_t bl = (size_t)(back_in + in - bb);
        n = snprintf(
            resp, sizeof(resp),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nSet-Cookie: s=%s-cookie\r\n"
            "Content-Length: %zu\r\n\r\n",
            MARKER, bl);
        if (!write_all(b, resp, (size_t)n) || !write_all(b, bb, bl))
            goto done;
        ssize_t got = read_message(c, resp, sizeof(resp));
        if (got < 0 || memmem(resp, (size_t)got, "200 OK", 6) == NULL ||
            memmem(resp, (size_t)got, MARKER "-card", strlen(MARKER "-card")) == NULL)
            goto done;
        /* the response is whole: the session waits for the next request */
        char x;
        if (loop_post(pe->loop, look_posted, pe) != 0 || read(pe->done[0], &x, 1) != 1)
            goto done;
    }
    pe->ok = true;
done:
    if (c >= 0)
        close(c);
    if (b >= 0)
        close(b);
    loop_stop(pe->loop);
    return NULL;
}

static void
close_all(void *arg)
{
    http_env_close_all(arg, 0);
}

static void
stop_loop(void *arg)
{
    loop_stop(arg);
}

static void
test_session_wipes(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_http_session.XXXXXX", keys[160], ep[200], msg[HTTP_MSG_MAX];
    struct peers pe = {.back_fd = -1};
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    struct http_proxy_conf pc;
    struct http_route_conf rc;
    const char *why;
    pthread_t th;
    int err = 0, fd;

    wipe_watch(pthread_self(), MARKER);
    assert_non_null(mkdtemp(dir));
    snprintf(keys, sizeof(keys), "%s/keys.json", dir);
    fd = open(keys, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    static const char ks[] = "{\"tenant\": \"t\", \"primary\": \"k1\", \"keys\": [{\"id\": \"k1\", "
                             "\"key\": \"000102030405060708090a0b0c0d0e0f"
                             "101112131415161718191a1b1c1d1e1f\"}]}";
    assert_int_equal(write(fd, ks, sizeof(ks) - 1), (ssize_t)sizeof(ks) - 1);
    close(fd);

    pe.back_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(pe.back_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(pe.back_fd, 4), 0);
    assert_int_equal(getsockname(pe.back_fd, (struct sockaddr *)&sin, &sl), 0);

    http_proxy_conf_defaults(&pc);
    snprintf(pc.name, sizeof(pc.name), "wipe");
    snprintf(pe.sock, sizeof(pe.sock), "%s/proxy.sock", dir);
    snprintf(ep, sizeof(ep), "unix:%s", pe.sock);
    assert_int_equal(endpoint_parse(ep, &pc.listen, &why), PARSE_OK);
    snprintf(ep, sizeof(ep), "tcp:127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
    assert_int_equal(endpoint_parse(ep, &pc.backend, &why), PARSE_OK);
    snprintf(pc.keyset, sizeof(pc.keyset), "%s", keys);
    http_route_conf_defaults(&rc);
    snprintf(rc.name, sizeof(rc.name), "pay");
    snprintf(rc.rules[0].path, sizeof(rc.rules[0].path), "$.card");
    rc.n_rules = 1;
    rc.decrypt = true;
    pc.routes = &rc;
    pc.n_routes = 1;

    assert_int_equal(pipe2(pe.done, O_CLOEXEC), 0);
    pe.loop = loop_new();
    assert_non_null(pe.loop);
    struct http_env *env = http_env_new(&pe.loop, 1);
    assert_non_null(env);
    pe.env = env;
    struct http_proxy *p = http_proxy_new(env, &pc, NULL, NULL, &err, msg);
    if (p == NULL)
        fail_msg("http_proxy_new: %s", msg);

    assert_int_equal(pthread_create(&th, NULL, peers_run, &pe), 0);
    assert_int_equal(loop_run(pe.loop), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(pe.ok);
    assert_false(pe.leaked_out);

    /* the session ends (it is reaped on a later turn), then the proxy */
    assert_int_equal(loop_post(pe.loop, close_all, env), 0);
    assert_int_equal(loop_post(pe.loop, stop_loop, pe.loop), 0);
    assert_int_equal(loop_run(pe.loop), 0);
    while (http_env_open(env) > 0) {
        assert_int_equal(loop_post(pe.loop, stop_loop, pe.loop), 0);
        assert_int_equal(loop_run(pe.loop), 0);
    }
    http_proxy_stop(p);
    http_proxy_unref(p);
    assert_int_equal(loop_post(pe.loop, stop_loop, pe.loop), 0);
    assert_int_equal(loop_run(pe.loop), 0);
    http_env_free(env);
    loop_free(pe.loop);
    close(pe.back_fd);
    close(pe.done[0]);
    close(pe.done[1]);
    unlink(keys);
    unlink(pe.sock);
    rmdir(dir);

    if (pe.stale != 0)
        fail_msg("plaintext left in the buffers kept between two requests: %d", pe.stale);
    if (atomic_load(&wipe_leaks) + atomic_load(&wipe_moved) > 0)
        fail_msg("plaintext left in memory given back: %d blocks freed, %d moved by realloc",
                 atomic_load(&wipe_leaks), atomic_load(&wipe_moved));
}

/* Writes a keyset of 64 keys, ids c0..c63 (c0 the primary), over path by a
 * rename: false when it could not. */
static bool
write_keyset(const char *path, char c)
{
    char tmp[200], text[16384];
    int n =
        snprintf(text, sizeof(text), "{\"tenant\": \"t\", \"primary\": \"%c0\", \"keys\": [", c);

    for (unsigned i = 0; i < 64; i++)
        n += snprintf(text + n, sizeof(text) - (size_t)n,
                      "%s{\"id\": \"%c%u\", \"key\": \"%02x%062x\"}", i > 0 ? "," : "", c, i,
                      (unsigned)c, i + 1);
    n += snprintf(text + n, sizeof(text) - (size_t)n, "]}");
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    bool ok = write_all(fd, text, (size_t)n);
    close(fd);
    return ok && rename(tmp, path) == 0;
}

struct flipper {
    const char *path;
    atomic_bool stop;
};

/* Replaces the keyset file by one of two keysets, then the other, until
 * stopped: what a key rotation does, as fast as it can. */
static void *
flip(void *arg)
{
    struct flipper *f = arg;

    for (unsigned i = 0; !atomic_load(&f->stop); i++)
        (void)write_keyset(f->path, i % 2 == 0 ? 'b' : 'a');
    return NULL;
}

/* A proxy's load (at start, at a reload) reads its keyset file once: its
 * workers and its routes that name the file all get the keys of the same
 * bytes, however fast the file is replaced meanwhile (each read of it would
 * get the keys of the moment: workers would seal under two keysets until
 * the next reload). */
static void
test_keyset_one_read(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_http_session.XXXXXX", keys[160], ep[200], msg[HTTP_MSG_MAX];
    struct flipper f = {.path = keys};
    struct http_proxy_conf pc;
    struct http_route_conf rc[2];
    struct loop *loops[8];
    const char *why;
    pthread_t th;
    int err = 0, split = 0;

    assert_non_null(mkdtemp(dir));
    snprintf(keys, sizeof(keys), "%s/keys.json", dir);
    assert_true(write_keyset(keys, 'a'));
    http_proxy_conf_defaults(&pc);
    snprintf(pc.name, sizeof(pc.name), "keys");
    snprintf(ep, sizeof(ep), "unix:%s/proxy.sock", dir);
    assert_int_equal(endpoint_parse(ep, &pc.listen, &why), PARSE_OK);
    assert_int_equal(endpoint_parse("tcp:127.0.0.1:1", &pc.backend, &why), PARSE_OK);
    snprintf(pc.keyset, sizeof(pc.keyset), "%s", keys);
    for (int i = 0; i < 2; i++) {
        http_route_conf_defaults(&rc[i]);
        snprintf(rc[i].name, sizeof(rc[i].name), "r%d", i);
        snprintf(rc[i].prefix, sizeof(rc[i].prefix), "/r%d", i);
        snprintf(rc[i].rules[0].path, sizeof(rc[i].rules[0].path), "$.a");
        rc[i].n_rules = 1;
    }
    pc.routes = rc;
    pc.n_routes = 2;
    loops[0] = loop_new();
    assert_non_null(loops[0]);
    for (int i = 1; i < 8; i++)
        loops[i] = loops[0];
    struct http_env *env = http_env_new(loops, 8);
    assert_non_null(env);

    assert_int_equal(pthread_create(&th, NULL, flip, &f), 0);
    for (int round = 0; round < 20 && split == 0 && err == 0; round++) {
        struct http_proxy *p = http_proxy_new(env, &pc, NULL, NULL, &err, msg);
        if (p == NULL)
            break;
        const char *first = field_keyset_primary(p->routes[0].ks[0]);
        for (size_t r = 0; r < 2; r++)
            for (size_t k = 0; k < env->n; k++)
                split += strcmp(field_keyset_primary(p->routes[r].ks[k]), first) != 0;
        http_proxy_stop(p);
        http_proxy_unref(p);
    }
    atomic_store(&f.stop, true);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(loop_post(loops[0], stop_loop, loops[0]), 0);
    assert_int_equal(loop_run(loops[0]), 0);
    http_env_free(env);
    loop_free(loops[0]);
    unlink(keys);
    rmdir(dir);
    if (err != 0)
        fail_msg("http_proxy_new: %s", msg);
    if (split != 0)
        fail_msg("one load gave %d of 16 keysets (2 routes, 8 workers) other keys", split);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_wipes),
        cmocka_unit_test(test_keyset_one_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
