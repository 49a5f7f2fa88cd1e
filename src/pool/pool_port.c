/* pool_port.c - the ports of a pool's range and who holds them (pool_int.h). */
#include "pool/pool_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "net/sockdiag.h"

/* What holds the ports of p's range (ports_held()), and the sockets of
 * others there, whose holders are looked for off the loop. */
struct holders {
    struct pool *pool;
    bool *held;                          /* by index in the range */
    uint16_t ephemeral_lo, ephemeral_hi; /* sockdiag_ephemeral() */
    size_t n, cap;
    struct holder {
        uint16_t port;
        ino_t inode;
        bool found;
        uid_t uid;
    } * socks;
};

static void
holders_free(void *ctx)
{
    struct holders *h = ctx;

    free(h->socks);
    free(h);
}

/* A socket on port: the port is held (the start would fail). Unless an
 * instance of p was given it, the instance whose process has the socket
 * open took it (an instance may bind any free port, those of a pool's
 * range too): holders_done() stops it. The holder is found by the socket,
 * not by its uid: a session can leave a socket behind (a connection closed
 * with data unsent outlives every process of its uid) or pass it to
 * another (SCM_RIGHTS), and the next instance of that uid did nothing. A
 * connected socket on an ephemeral port (net.ipv4.ip_local_port_range: a
 * connect may have given it) is nobody's concern. */
static void
port_holder(void *arg, const struct sockdiag_sock *s)
{
    struct holders *h = arg;
    struct pool *p = h->pool;
    unsigned i = s->port - p->conf.port_min;

    h->held[i] = true;
    if (p->port_used[i] || (!s->bound && s->port >= h->ephemeral_lo && s->port <= h->ephemeral_hi))
        return;
    /* all of them: decoys (sockets no process holds) must not hide one */
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 16;
        struct holder *grown = realloc(h->socks, cap * sizeof(*grown));
        if (grown == NULL)
            return; /* looked for at a later start */
        h->socks = grown;
        h->cap = cap;
    }
    h->socks[h->n++] = (struct holder){.port = s->port, .inode = s->inode};
}

/* On an env thread: the holders of h's sockets, one pass over every
 * process's fds, which an instance may make millions (it held the main
 * loop for minutes). */
static int
holders_run(void *ctx)
{
    struct holders *h = ctx;
    ino_t *inodes = calloc(h->n, sizeof(*inodes));
    bool *found = calloc(h->n, sizeof(*found));
    uid_t *uids = calloc(h->n, sizeof(*uids));
    int rc = -ENOMEM;

    if (inodes != NULL && found != NULL && uids != NULL) {
        for (size_t k = 0; k < h->n; k++)
            inodes[k] = h->socks[k].inode;
        struct sockdiag_holders sh = {.n = h->n, .inodes = inodes, .found = found, .uids = uids};
        sockdiag_holders(&sh);
        for (size_t k = 0; k < h->n; k++) {
            h->socks[k].found = found[k];
            h->socks[k].uid = uids[k];
        }
        rc = 0;
    }
    free(inodes);
    free(found);
    free(uids);
    return rc;
}

/* Stops each instance that held a port not its own when holders_run()
 * looked. A socket no process was found to hold only made its port
 * skipped: an orphan, or one held where /proc shows no holder (in flight
 * in a unix socket's queue, which may be another's it was planted in). */
static void
holders_done(void *arg, void *ctx, int err)
{
    struct pool *p = arg;
    const struct holders *h = ctx;
    (void)err;

    p->holders = NULL;
    for (size_t k = 0; k < h->n; k++) {
        const struct holder *o = &h->socks[k];
        struct instance *in;
        if (!o->found || (in = pool_instance_of_uid(o->uid)) == NULL ||
            in->state == INST_STOPPING || in->state == INST_DEPROVISIONING ||
            strtoul(in->port, NULL, 10) == o->port)
            continue; /* the instance's own (of another pool, or from before a reload) */
        log_warnx("pool=%s instance=%s uid=%u holds port %u, not its own (port %s): stopped",
                  in->pool->conf.name, in->name, (unsigned)in->uid, o->port,
                  in->port[0] ? in->port : "none");
        in->pool->stats.took_ports++;
        pool_retire(in, WHY_TOOK_PORT, true);
    }
    log_debug("pool=%s: the holders of %zu sockets on its ports looked for", p->conf.name, h->n);
}

/* Marks in held (n_ports entries) the ports of p's range that a socket
 * holds, one dump of the kernel's sockets for all of them, and looks for
 * the holders of the sockets of others there on an env thread (one search
 * at a time per pool). */
static void
ports_held(struct pool *p, bool *held)
{
    struct holders *h = calloc(1, sizeof(*h));
    int rc;

    if (h == NULL)
        return; /* the start will tell */
    h->pool = p;
    h->held = held;
    sockdiag_ephemeral(&h->ephemeral_lo, &h->ephemeral_hi);
    rc = sockdiag_ports((uint16_t)p->conf.port_min, (uint16_t)(p->conf.port_min + p->n_ports - 1),
                        port_holder, h);
    if (rc != 0) /* the start will tell */
        log_debug("pool=%s: who holds its ports: %s", p->conf.name, strerror(-rc));
    if (h->n == 0 || p->holders != NULL) {
        holders_free(h);
        return;
    }
    h->held = NULL; /* the caller's */
    p->holders = pool_env_run(p->env, holders_run, h, holders_free, ENV_STORE, holders_done, p);
}

/* A free port (none needed: ""). Returns 0, or -EAGAIN when every port is
 * held (by instances reloaded from a larger range, or by a socket there:
 * tried again at the next start). */
int
pool_take_port(struct pool *p, struct instance *in)
{
    if (p->n_ports == 0)
        return 0;
    bool *held = calloc(p->n_ports, sizeof(bool));
    if (held == NULL)
        return -ENOMEM;
    ports_held(p, held);
    for (unsigned i = 0; i < p->n_ports; i++) {
        if (p->port_used[i] || held[i])
            continue;
        p->port_used[i] = true;
        in->port_idx = i;
        snprintf(in->port, sizeof(in->port), "%u", p->conf.port_min + i);
        free(held);
        return 0;
    }
    free(held);
    return -EAGAIN;
}

void
pool_ports_stop(struct pool *p)
{
    if (p->holders != NULL)
        pool_env_wipe_detach(p->holders);
    p->holders = NULL;
}
