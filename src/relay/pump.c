/* pump.c - one direction of a relayed stream (pump.h). */
#include "relay/pump.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- pipes: taken from the thread's spare list while data is in flight */

static int
pipe_get(struct pump_cache *cache, int p[2])
{
    if (cache->n_spare > 0) {
        cache->n_spare--;
        p[0] = cache->spare[cache->n_spare][0];
        p[1] = cache->spare[cache->n_spare][1];
        return 0;
    }
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
        return -errno;
    /* larger pipes halve the syscalls per byte of bulk traffic (measured:
     * docs/benchmarks.md); where the per-user pipe quota says no, the
     * default 64 KiB is fine */
    fcntl(p[0], F_SETPIPE_SZ, PUMP_SPLICE_LEN);
    return 0;
}

/* Only an empty pipe goes back to the spare list. */
static void
pipe_put(struct pump_cache *cache, int p[2])
{
    if (p[0] < 0)
        return;
    if (cache->n_spare < PUMP_SPARE_PIPES) {
        cache->spare[cache->n_spare][0] = p[0];
        cache->spare[cache->n_spare][1] = p[1];
        cache->n_spare++;
    } else {
        close(p[0]);
        close(p[1]);
    }
    p[0] = p[1] = -1;
}

void
pump_cache_clear(struct pump_cache *cache)
{
    for (size_t i = 0; i < cache->n_spare; i++) {
        close(cache->spare[i][0]);
        close(cache->spare[i][1]);
    }
    cache->n_spare = 0;
}

void
pump_init(struct pump *p, struct side *from, struct side *to, int splice,
          atomic_uint_fast64_t *counter)
{
    p->from = from;
    p->to = to;
    p->pipe[0] = p->pipe[1] = -1;
    p->splice_ok = splice;
    p->counter = counter;
}

void
pump_release(struct pump *p, struct pump_cache *cache)
{
    if (p->pipe[0] >= 0 && p->in_pipe > 0) {
        close(p->pipe[0]);
        close(p->pipe[1]);
        p->pipe[0] = p->pipe[1] = -1;
        p->in_pipe = 0;
    }
    pipe_put(cache, p->pipe);
    free(p->buf);
    p->buf = NULL;
    p->off = p->len = 0;
}

int
pump_prepend(struct pump *p, const void *data, size_t len)
{
    char *nb;

    if (len == 0)
        return 0;
    if ((nb = realloc(p->buf, p->len + len)) == NULL)
        return -ENOMEM;
    memmove(nb + len, nb + p->off, p->len - p->off);
    memcpy(nb, data, len);
    p->buf = nb;
    p->len = p->len - p->off + len;
    p->off = 0;
    return 0;
}

static void
pump_account(struct pump *p, size_t n)
{
    p->bytes += n;
    atomic_fetch_add_explicit(p->counter, n, memory_order_relaxed);
}

/* Writes out what the pump holds. Returns 1 when all is written, 0 when the
 * destination is full, or -errno. */
static int
pump_flush(struct pump *p)
{
    while (p->off < p->len || p->in_pipe > 0) {
        ssize_t n;
        if (!p->to->writable)
            return 0;
        if (p->off < p->len)
            n = write(p->to->io.fd, p->buf + p->off, p->len - p->off);
        else
            n = splice(p->pipe[0], NULL, p->to->io.fd, NULL, p->in_pipe,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0) {
            if (errno == EAGAIN) {
                p->to->writable = 0;
                return 0;
            }
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (p->off < p->len) {
            p->off += (size_t)n;
        } else {
            p->in_pipe -= (size_t)n;
        }
        pump_account(p, (size_t)n);
    }
    return 1;
}

/* Keeps what the destination did not take of a scratch read. */
static int
pump_keep(struct pump *p, const char *data, size_t len)
{
    if ((p->buf = malloc(len)) == NULL)
        return -ENOMEM;
    memcpy(p->buf, data, len);
    p->off = 0;
    p->len = len;
    return 0;
}

/* Reads one chunk from the source and passes it on: into the pipe (splice),
 * or through the scratch buffer straight to the destination, so that a
 * connection holds memory only while its destination is slow. Returns the
 * count read (0 at EOF), -EAGAIN when nothing is there, or -errno. */
static ssize_t
pump_fill(struct pump *p, struct pump_turn *t)
{
    char *scratch = t->cache->scratch;
    ssize_t n, w = 0;
    int rc;

    if (p->splice && p->pipe[0] < 0 && (rc = pipe_get(t->cache, p->pipe)) != 0) {
        /* no fd (or memory) for a pipe: copy this chunk, try splice again
         * at the next full one */
        t->pipe_errs++;
        t->pipe_err = rc;
        p->splice = 0;
    }
    if (p->splice) {
        n = splice(p->from->io.fd, NULL, p->pipe[1], NULL, PUMP_SPLICE_LEN,
                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0 && errno == EINVAL) {
            /* this pair of sockets cannot splice: copy from now on */
            p->splice = p->splice_ok = 0;
            pipe_put(t->cache, p->pipe);
            return pump_fill(p, t);
        }
        if (n > 0)
            p->in_pipe = (size_t)n;
        return n < 0 ? -errno : n;
    }
    n = read(p->from->io.fd, scratch, PUMP_CHUNK);
    if (n <= 0)
        return n < 0 ? -errno : 0;
    if (p->to->writable) {
        w = write(p->to->io.fd, scratch, (size_t)n);
        if (w < 0) {
            if (errno != EAGAIN && errno != EINTR)
                return -errno;
            if (errno == EAGAIN)
                p->to->writable = 0;
            w = 0;
        }
        pump_account(p, (size_t)w);
    }
    if (w < n && (rc = pump_keep(p, scratch + w, (size_t)(n - w))) != 0)
        return rc;
    /* a full chunk: more is likely queued behind it, zero-copy pays off */
    if (n == PUMP_CHUNK && p->splice_ok)
        p->splice = 1;
    return n;
}

bool
pump_blocked(const struct pump *p)
{
    return (p->off < p->len || p->in_pipe > 0) && !p->to->writable;
}

int
pump_run(struct pump *p, struct pump_turn *t)
{
    for (;;) {
        int rc = pump_flush(p);
        if (rc <= 0)
            return rc;
        /* empty: give the pipe and buffer back while idle */
        pump_release(p, t->cache);
        if (p->eof) {
            if (!p->shut) {
                shutdown(p->to->io.fd, SHUT_WR);
                p->shut = 1;
            }
            return 0;
        }
        if (!p->from->readable || t->budget == 0)
            return 0;
        ssize_t n = pump_fill(p, t);
        if (n == 0) {
            p->eof = 1;
        } else if (n == -EAGAIN) {
            /* dry: an idle connection holds no pipe (the next burst takes
             * one from the cache again) */
            p->from->readable = 0;
            pump_release(p, t->cache);
            return 0;
        } else if (n == -EINTR) {
            continue;
        } else if (n < 0) {
            return (int)n;
        } else {
            t->budget = (size_t)n >= t->budget ? 0 : t->budget - (size_t)n;
            /* a short read() drained the socket (nginx does the same); new
             * data brings a new edge. Not after splice(), which also stops
             * short when the pipe runs out of slots; not after a FIN was
             * seen, whose edge has been consumed already. */
            if ((size_t)n < PUMP_CHUNK && !p->splice && !p->from->hup)
                p->from->readable = 0;
        }
    }
}
