/* memory.c - the embedded directory backend: this process only, state in
 * an array on the directory thread. Deadlines are on the directory loop's
 * monotonic clock; tick() expires them and sleeps until the next one. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir/backend.h"

#define MEM_TICK_MAX_MS 1000
#define MEM_ABANDONED_MAX 65536

/* A reservation its client left before the login (its clients left, or
 * reserve_timeout): it cost its pool a recycled instance, and counts
 * against the client's max_pending_per_client until an instance of the
 * pool is idle again (the oldest charge of the pool goes with each idle
 * report), or `until` (reserve_timeout) at the latest. */
struct abandoned {
    char pool[DIR_NAME_MAX];
    char client[DIR_CLIENT_MAX];
    uint64_t until;
};

/* One connection that holds a reservation (dir_assign_held()). */
struct holder {
    uint64_t hid;
    char client[DIR_CLIENT_MAX]; /* "": none */
};

struct minst {
    struct dir_instance pub;
    uint64_t deadline; /* reserved: reserve_timeout; active: session_ttl; 0: none */
    uint64_t ends;     /* active: session_max after its login; 0: none */
    /* reserved by dir_assign(): who asked, and who holds it */
    char client[DIR_CLIENT_MAX];
    uint64_t rid;
    unsigned holders;
    struct holder held_by[DIR_HOLDERS_MAX];
    char withdrawn[DIR_KEY_MAX]; /* starting after a withdrawal: the key it was for */
    char ended[DIR_KEY_MAX];     /* draining: the key of its session that ended */
};

struct mem {
    const struct dir_host *host;
    struct minst *v;
    size_t n, cap;
    uint64_t last_rid;           /* the last reservation or holder id */
    char (*pools)[DIR_NAME_MAX]; /* every pool that ever reported */
    size_t n_pools, cap_pools;
    struct abandoned *abandoned; /* oldest first */
    size_t n_abandoned, cap_abandoned;
};

static int
grow(void **v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *nv = realloc(*v, ncap * size);
    if (nv == NULL)
        return -ENOMEM;
    *v = nv;
    *cap = ncap;
    return 0;
}

static int
pool_known(const struct mem *m, const char *pool)
{
    for (size_t i = 0; i < m->n_pools; i++)
        if (strcmp(m->pools[i], pool) == 0)
            return 1;
    return 0;
}

static struct minst *
find(struct mem *m, const char *pool, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->v[i].pub.pool, pool) == 0 && strcmp(m->v[i].pub.name, name) == 0)
            return &m->v[i];
    return NULL;
}

/* in's reservation ends before a login: its client is charged for it for
 * reserve_timeout (the oldest charge goes when MEM_ABANDONED_MAX are held). */
static void
abandon(struct mem *m, const struct minst *in)
{
    if (in->client[0] == '\0')
        return;
    if (m->n_abandoned == MEM_ABANDONED_MAX)
        memmove(m->abandoned, m->abandoned + 1, --m->n_abandoned * sizeof(*m->abandoned));
    if (grow((void **)&m->abandoned, &m->cap_abandoned, m->n_abandoned, sizeof(*m->abandoned)) != 0)
        return;
    struct abandoned *a = &m->abandoned[m->n_abandoned++];
    snprintf(a->pool, sizeof(a->pool), "%s", in->pub.pool);
    snprintf(a->client, sizeof(a->client), "%s", in->client);
    a->until = loop_now(m->host->loop) + m->host->conf->reserve_timeout_ms;
}

/* An instance of pool is idle (again): its oldest charge is paid. */
static void
repaid(struct mem *m, const char *pool)
{
    for (size_t i = 0; i < m->n_abandoned; i++)
        if (strcmp(m->abandoned[i].pool, pool) == 0) {
            memmove(m->abandoned + i, m->abandoned + i + 1,
                    (--m->n_abandoned - i) * sizeof(*m->abandoned));
            return;
        }
}

/* The charges of client in pool, of every client when NULL (those past
 * their time are dropped). */
static size_t
abandoned_by(struct mem *m, const char *pool, const char *client)
{
    uint64_t now = loop_now(m->host->loop);
    size_t gone = 0, n = 0;

    while (gone < m->n_abandoned && m->abandoned[gone].until <= now)
        gone++;
    if (gone > 0) {
        m->n_abandoned -= gone;
        memmove(m->abandoned, m->abandoned + gone, m->n_abandoned * sizeof(*m->abandoned));
    }
    for (size_t i = 0; i < m->n_abandoned; i++)
        n += strcmp(m->abandoned[i].pool, pool) == 0 &&
             (client == NULL || strcmp(m->abandoned[i].client, client) == 0);
    return n;
}

static void
recount(const struct mem *m)
{
    unsigned long counts[DIR_STATE_COUNT] = {0};

    for (size_t i = 0; i < m->n; i++)
        counts[m->v[i].pub.state]++;
    m->host->set_counts(m->host, counts);
}

static void
set_state(struct minst *in, enum dir_state st, const char *key, uint64_t deadline)
{
    in->pub.state = st;
    if (key == in->pub.key)
        ; /* keeps its key */
    else if (key != NULL)
        snprintf(in->pub.key, sizeof(in->pub.key), "%s", key);
    else
        in->pub.key[0] = '\0';
    in->deadline = deadline;
    in->pub.since_ms = dir_wall_ms();
}

/* in's session (if any) ends: it drains. An active session's key stays
 * its own (ended) until its pool reports it stopped, after the state the
 * session wrote is stored back: the key's next assign waits for that. */
static void
drain(struct minst *in)
{
    if (in->pub.state == DIR_ACTIVE)
        memcpy(in->ended, in->pub.key, sizeof(in->ended));
    set_state(in, DIR_DRAINING, NULL, 0);
}

/* A deadline ms from now (0: none); tick() runs by then. */
static uint64_t
after(const struct mem *m, unsigned ms)
{
    if (ms == 0)
        return 0;
    m->host->tick_within(m->host, ms);
    return loop_now(m->host->loop) + ms;
}

/* An active session's next deadline: session_ttl from now, never past the
 * end session_max set at its login; 0: none. */
static uint64_t
session_deadline(const struct mem *m, const struct minst *in)
{
    uint64_t d = after(m, m->host->conf->session_ttl_ms), now = loop_now(m->host->loop);

    if (in->ends == 0 || (d != 0 && d <= in->ends))
        return d;
    m->host->tick_within(m->host, (unsigned)(in->ends > now ? in->ends - now : 0));
    return in->ends;
}

/* Reservations not active yet allowed where n instances could serve a
 * newcomer (idle, reserved, or recycling after a withdrawn reservation):
 * the pending_share, at least 1 (a pool of one still serves). */
static size_t
pending_limit(const struct dir_conf *c, size_t n)
{
    size_t limit = (n * c->pending_share + 99) / 100;

    return limit > 0 ? limit : 1;
}

/* How many of in's holders came from client. */
static unsigned
holders_of(const struct minst *in, const char *client)
{
    unsigned n = 0;

    for (unsigned i = 0; i < in->holders; i++)
        n += strcmp(in->held_by[i].client, client) == 0;
    return n;
}

/* Makes room among in's holders (before its login) for one from client
 * ("": none): -EDQUOT when client holds max_pending_per_client of them, or
 * all DIR_HOLDERS_MAX are taken and client would not hold fewer than the
 * address that holds the most; else 0, after the oldest holder of that
 * address gave its place up (its connection is closed). Whoever sends the
 * user's name holds the reservation: without this, a few addresses could
 * take every place and shut the user out. */
static int
hold_room(struct mem *m, struct minst *in, const char *client)
{
    unsigned mine = holders_of(in, client), most = 0, v = 0;
    unsigned max = m->host->conf->max_pending_per_client;

    if (client[0] != '\0' && max > 0 && mine >= max)
        return -EDQUOT;
    if (in->holders < DIR_HOLDERS_MAX)
        return 0;
    for (unsigned i = 0; i < in->holders; i++) {
        unsigned n = holders_of(in, in->held_by[i].client);
        if (n > most || (n == most && in->held_by[i].hid < in->held_by[v].hid)) {
            most = n;
            v = i;
        }
    }
    if (mine + 1 >= most)
        return -EDQUOT;
    m->host->evicted(m->host, in->held_by[v].hid);
    in->held_by[v] = in->held_by[--in->holders];
    return 0;
}

/* One more holder of in, from client; returns its id. */
static uint64_t
hold_add(struct mem *m, struct minst *in, const char *client)
{
    struct holder *h = &in->held_by[in->holders++];

    h->hid = ++m->last_rid;
    snprintf(h->client, sizeof(h->client), "%s", client);
    return h->hid;
}

static int
mem_assign(void *be, const char *pool, const char *key, struct dir_claim *cl,
           struct dir_instance *out)
{
    struct mem *m = be;
    const struct dir_conf *c = m->host->conf;
    struct minst *idle = NULL;
    size_t n = 0, pending = 0, mine = 0;
    bool ending = false;

    if (!pool_known(m, pool))
        return -ENOENT;
    for (size_t i = 0; i < m->n; i++) {
        struct minst *in = &m->v[i];
        if (strcmp(in->pub.pool, pool) != 0)
            continue;
        if ((in->pub.state == DIR_RESERVED || in->pub.state == DIR_ACTIVE) &&
            strcmp(in->pub.key, key) == 0) {
            if (in->pub.state == DIR_ACTIVE)
                in->deadline = session_deadline(m, in);
            if (in->pub.state == DIR_RESERVED && cl->hold) {
                const char *client = cl->client != NULL ? cl->client : "";
                if (hold_room(m, in, client) != 0)
                    return -EDQUOT;
                cl->hid = hold_add(m, in, client);
                cl->rid = in->rid;
            }
            *out = in->pub;
            return 1;
        }
        /* key's last session is being stored back, or its reservation was
         * withdrawn and the pool has not decided yet (a login line it read
         * first makes it the session): wait, never a second instance */
        ending |= (in->pub.state == DIR_DRAINING && strcmp(in->ended, key) == 0) ||
                  (in->pub.state == DIR_STARTING && strcmp(in->withdrawn, key) == 0);
        n += in->pub.state == DIR_IDLE || in->pub.state == DIR_RESERVED;
        if (in->pub.state == DIR_RESERVED) {
            pending++;
            mine += cl->client != NULL && strcmp(in->client, cl->client) == 0;
        }
        if (idle == NULL && in->pub.state == DIR_IDLE && in->pub.endpoint[0] != '\0')
            idle = in;
    }
    if (ending)
        return -EINPROGRESS;
    if (idle == NULL)
        return -EAGAIN;
    if (cl->client != NULL && c->max_pending_per_client > 0 &&
        mine + abandoned_by(m, pool, cl->client) >= c->max_pending_per_client)
        return -EDQUOT;
    /* a withdrawn reservation holds its instance (recycling) as long as
     * it is charged: clients from many addresses would churn the whole
     * pool, each within its own bound. The share is of the instances a
     * newcomer could have, not of those in sessions: else, with a quarter
     * of the pool in sessions, unauthenticated clients could hold all the
     * rest. */
    size_t ab = c->pending_share < 100 ? abandoned_by(m, pool, NULL) : 0;
    if (c->pending_share < 100 && pending + ab >= pending_limit(c, n + ab))
        return -EBUSY;
    set_state(idle, DIR_RESERVED, key, after(m, c->reserve_timeout_ms));
    snprintf(idle->client, sizeof(idle->client), "%s", cl->client != NULL ? cl->client : "");
    idle->rid = ++m->last_rid;
    idle->holders = 0;
    if (cl->hold) {
        cl->hid = hold_add(m, idle, cl->client != NULL ? cl->client : "");
        cl->rid = idle->rid;
    }
    recount(m);
    m->host->changed(m->host, &idle->pub,
                     1); /* its pool may provision the user ahead of the login */
    *out = idle->pub;
    return 0;
}

static int
mem_report(void *be, const char *pool, const char *name, enum dir_state st, const char *ep)
{
    struct mem *m = be;
    struct minst *in = find(m, pool, name);

    if (!pool_known(m, pool)) {
        if (grow((void **)&m->pools, &m->cap_pools, m->n_pools, sizeof(*m->pools)) != 0)
            return -ENOMEM;
        snprintf(m->pools[m->n_pools++], DIR_NAME_MAX, "%s", pool);
    }
    if (st == DIR_STOPPED) {
        bool ended = in != NULL && in->ended[0] != '\0';
        if (in != NULL)
            *in = m->v[--m->n];
        recount(m);
        if (ended)
            m->host->maybe_idle(m->host, pool);
        return 0;
    }
    if (in == NULL) {
        if (grow((void **)&m->v, &m->cap, m->n, sizeof(*m->v)) != 0)
            return -ENOMEM;
        in = &m->v[m->n++];
        memset(in, 0, sizeof(*in));
        snprintf(in->pub.pool, sizeof(in->pub.pool), "%s", pool);
        snprintf(in->pub.name, sizeof(in->pub.name), "%s", name);
    }
    if (ep != NULL && ep[0] != '\0')
        snprintf(in->pub.endpoint, sizeof(in->pub.endpoint), "%s", ep);
    in->client[0] = '\0'; /* the pool's word: no client holds it any more */
    in->rid = 0;
    in->holders = 0;
    in->withdrawn[0] = '\0';
    if (st == DIR_DRAINING) {
        drain(in);
    } else {
        in->ended[0] = '\0';
        set_state(in, st, NULL, 0);
    }
    if (st == DIR_IDLE)
        repaid(m, pool);
    recount(m);
    return 0;
}

static int
mem_activate(void *be, const char *pool, const char *name, const char *key, char *holder)
{
    struct mem *m = be;
    struct minst *in = find(m, pool, name);

    holder[0] = '\0';
    if (in == NULL)
        return -EPERM;
    /* also a reservation withdrawn for key (its clients left) that the pool
     * has not decided on yet: the login line came before it heard */
    if (!(((in->pub.state == DIR_RESERVED || in->pub.state == DIR_ACTIVE) &&
           strcmp(in->pub.key, key) == 0) ||
          (in->pub.state == DIR_STARTING && strcmp(in->withdrawn, key) == 0))) {
        snprintf(holder, DIR_KEY_MAX, "%s", in->pub.key);
        return -EPERM;
    }
    in->withdrawn[0] = '\0';
    if (in->pub.state != DIR_ACTIVE) {
        unsigned max = m->host->conf->session_max_ms;
        in->ends = max != 0 ? loop_now(m->host->loop) + max : 0;
    }
    set_state(in, DIR_ACTIVE, key, session_deadline(m, in));
    recount(m);
    return 0;
}

/* in's reservation ends before a login (its clients left, or
 * reserve_timeout): not idle, since its client may have spoken to it; its
 * pool recycles it (the key is told, for a login line that came first). */
static void
withdraw(struct mem *m, struct minst *in)
{
    abandon(m, in);
    snprintf(in->withdrawn, sizeof(in->withdrawn), "%s", in->pub.key);
    set_state(in, DIR_STARTING, NULL, 0);
    recount(m);
    struct dir_instance note = in->pub;
    snprintf(note.key, sizeof(note.key), "%s", in->withdrawn);
    m->host->changed(m->host, &note, 1);
}

static int
mem_release(void *be, const char *pool, const char *name, const char *key, uint64_t rid,
            uint64_t hid)
{
    struct mem *m = be;
    struct minst *in = find(m, pool, name);
    unsigned i = 0;

    if (in == NULL || in->pub.state != DIR_RESERVED || in->rid != rid ||
        strcmp(in->pub.key, key) != 0)
        return 0; /* it became active, went back, or is another reservation now */
    while (i < in->holders && in->held_by[i].hid != hid)
        i++;
    if (i == in->holders)
        return 0; /* its place was taken (hold_room()) */
    in->held_by[i] = in->held_by[--in->holders];
    if (in->holders > 0)
        return 0;
    withdraw(m, in);
    return 1;
}

static long
mem_list(void *be, struct dir_instance **out)
{
    struct mem *m = be;

    *out = malloc((m->n ? m->n : 1) * sizeof(**out));
    if (*out == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < m->n; i++)
        (*out)[i] = m->v[i].pub;
    return (long)m->n;
}

static int
mem_drain(void *be, const char *pool, const char *name)
{
    struct mem *m = be;
    struct minst *in = find(m, pool, name);

    if (in == NULL)
        return -ENOENT;
    drain(in);
    recount(m);
    m->host->changed(m->host, &in->pub, 1);
    return 0;
}

static unsigned
mem_tick(void *be)
{
    struct mem *m = be;
    uint64_t now = loop_now(m->host->loop), next = now + MEM_TICK_MAX_MS;

    for (size_t i = 0; i < m->n; i++) {
        struct minst *in = &m->v[i];
        if (in->deadline == 0)
            continue;
        if (in->deadline > now) {
            if (in->deadline < next)
                next = in->deadline;
            continue;
        }
        /* a reservation that never became active is withdrawn; an unused
         * session ends: either way its instance is recycled */
        if (in->pub.state == DIR_RESERVED) {
            withdraw(m, in);
            continue;
        }
        drain(in);
        recount(m);
        m->host->changed(m->host, &in->pub, 1);
    }
    return (unsigned)(next - now);
}

static void
mem_free(void *be)
{
    struct mem *m = be;

    if (m == NULL)
        return;
    free(m->v);
    free(m->pools);
    free(m->abandoned);
    free(m);
}

static void *
mem_open(const struct dir_host *host)
{
    struct mem *m = calloc(1, sizeof(*m));

    if (m != NULL)
        m->host = host;
    return m;
}

const struct dir_ops dir_memory_ops = {
    .open = mem_open,
    .assign = mem_assign,
    .release = mem_release,
    .report = mem_report,
    .activate = mem_activate,
    .list = mem_list,
    .drain = mem_drain,
    .tick = mem_tick,
    .free = mem_free,
};
