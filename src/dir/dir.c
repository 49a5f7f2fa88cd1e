/* dir.c - the directory's front end: its thread and loop, requests posted
 * from any thread, waiters (assign_wait), watchers, answers posted back,
 * metrics. The backend (memory.c, redis.c) keeps the state; see backend.h.
 *
 * Lifetime of a struct dir_assign (and of a struct dir_activate): two
 * references, the directory's (held while the request is queued or
 * waiting, then handed to the posted answer) and the caller's (dropped by
 * the cancel or once the callback ran; a dir_assign_held() caller drops it
 * with dir_release(), after the answer too). Cancel and the answer both run
 * on the caller's loop, so the cancelled flag decides without a race
 * whether the callback runs. A request answered with a holder's place
 * (dir_assign_held()) has a third reference, the directory's list of them
 * (struct dir, held), from the answer until its release (or its eviction,
 * which hands it to the post that tells the caller) reaches the directory's
 * loop. */
#include "dir/dir.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/list.h"
#include "core/log.h"
#include "dir/backend.h"

#define REFUSAL_LOG_MS 1000   /* refusals are logged once per second and reason */
#define ACTIVATE_RETRY_MS 100 /* an activation asked again while the backend is away */

/* Assign latency buckets, microseconds (the last is +Inf). */
static const unsigned long long lat_bounds_us[] = {100,   250,   500,    1000,   2500,    5000,
                                                   10000, 50000, 100000, 500000, 1000000, 5000000};
#define LAT_BUCKETS (sizeof(lat_bounds_us) / sizeof(lat_bounds_us[0]) + 1)

/* A change waiting for its watcher's loop. */
struct note {
    struct note *next;
    struct dir_instance inst;
};

/* Changes reach the watcher's loop in batches: whatever was queued before
 * the loop ran is delivered together, so a reservation and its withdrawal
 * queued together can be coalesced (dir.h, dir_watch_cb). */
struct watch {
    struct list link; /* in d->watches, under watch_lock */
    char pool[DIR_NAME_MAX];
    struct loop *on;
    dir_watch_cb cb;
    void *arg;
    atomic_int active;
    atomic_int refs;
    pthread_mutex_t q_lock; /* the queue, shared by both threads */
    struct note *q_head, *q_tail;
    int posted; /* a delivery is posted and has not taken the queue yet */
};

struct dir {
    struct dir_conf conf;
    struct loop *loop; /* the directory's own thread's, or (memory) the caller's main loop */
    int own_loop;      /* loop is d's, run by its thread */
    pthread_t thread;
    int started;
    int stopped;          /* dir_stop(): answers are dropped, not posted */
    struct dir_host host; /* what the backend may use of d */
    const struct dir_ops *ops;
    void *be;
    struct timer tick;
    struct list waits;      /* d->loop: waiting assigns, oldest first */
    struct list held;       /* d->loop: assigns that hold a place (hid), to tell one evicted */
    struct list unreleased; /* d->loop: releases the backend could not be told (-EIO) */
    struct list activating; /* d->loop: activations waiting for the backend to be back */
    pthread_mutex_t watch_lock;
    struct list watches;
    /* metrics, read from any thread */
    atomic_ulong outcomes[DIR_OUTCOME_COUNT];
    atomic_ulong released;  /* reservations withdrawn by dir_release() */
    atomic_ulong tries;     /* assigns asked of the backend: first tries and retries */
    atomic_ulong failovers; /* the backend followed its master to another server */
    atomic_int doorbell;    /* other processes' changes reach this one at once */
    atomic_ulong rung;      /* changes picked up at a ring of the doorbell */
    struct log_rate refusal_log[DIR_OUTCOME_COUNT];
    atomic_ulong lat_count[LAT_BUCKETS];
    atomic_ullong lat_sum_us;
    atomic_ulong counts[DIR_STATE_COUNT];
    atomic_int up; /* dir_up() */
};

struct dir_assign {
    struct dir *d;
    char pool[DIR_NAME_MAX];
    char key[DIR_KEY_MAX];
    char client[DIR_CLIENT_MAX]; /* "": not bounded per client */
    int hold;                    /* dir_assign_held(): the caller keeps its reference */
    struct loop *on;
    dir_assign_cb cb;
    dir_evict_cb evicted; /* dir_assign_held(): its place was taken */
    void *arg;
    atomic_int refs;
    atomic_int cancelled;
    int delivered;               /* caller's loop: the callback ran */
    unsigned long long start_us; /* for the latency histogram */
    /* the directory's loop */
    struct list wait_link; /* in d->waits while it waits */
    int why;               /* while waiting: the last try's refusal (one assign_try() waits on) */
    uint64_t tried_ms;     /* loop_now() of the last try */
    struct timer wait_timer;
    /* the answer */
    int err;
    char instance[DIR_NAME_MAX];
    struct endpoint ep;
    uint64_t rid;              /* the reservation held for the caller; 0: none */
    uint64_t hid;              /* the caller's place among its holders; 0: none */
    struct list held_link;     /* d->loop: in d->held while it holds that place */
    uint64_t unreleased_until; /* d->loop: its release is asked again until then */
};

struct dir_activate {
    struct dir *d;
    char pool[DIR_NAME_MAX];
    char name[DIR_NAME_MAX];
    char key[DIR_KEY_MAX];
    struct loop *on;
    dir_activate_cb cb;
    void *arg;
    atomic_int refs;
    atomic_int cancelled;
    /* the directory's loop */
    uint64_t deadline_ms; /* loop_now(): asked again until then while the backend is away */
    struct timer retry;
    struct list link; /* in d->activating while it waits for that */
    /* the answer */
    int err;
    char holder[DIR_KEY_MAX];
};

/* A request posted to the directory's loop. */
enum req_kind { REQ_REPORT, REQ_LIST, REQ_DRAIN, REQ_RELEASE };

struct req {
    struct dir *d;
    enum req_kind kind;
    char pool[DIR_NAME_MAX];
    char name[DIR_NAME_MAX];
    char ep[ENDPOINT_TEXT_MAX];
    enum dir_state st;
    struct dir_assign *held; /* REQ_RELEASE: the holder (a reference) */
    struct loop *on;
    dir_list_cb list_cb;
    dir_done_cb done_cb;
    void *arg;
    /* answers */
    int err;
    struct dir_instance *list;
    long n;
};

static const char *const outcome_names[DIR_OUTCOME_COUNT] = {
    [DIR_OUT_STICKY] = "sticky",
    [DIR_OUT_RESERVED] = "reserved",
    [DIR_OUT_NONE_FREE] = "none_free",
    [DIR_OUT_NO_POOL] = "no_pool",
    [DIR_OUT_ERROR] = "error",
    [DIR_OUT_CANCELLED] = "cancelled",
    [DIR_OUT_CLIENT_LIMIT] = "client_limit",
    [DIR_OUT_PENDING_LIMIT] = "pending_limit",
    [DIR_OUT_STORING] = "storing",
    [DIR_OUT_UNAVAILABLE] = "unavailable",
};

static unsigned long long
mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000 + (unsigned long long)ts.tv_nsec / 1000;
}

unsigned long long
dir_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
}

/* Copies src into dst[size]; returns -EINVAL when it does not fit or is empty. */
static int
copy_name(char *dst, size_t size, const char *src)
{
    size_t n = src ? strlen(src) : 0;

    if (n == 0 || n >= size)
        return -EINVAL;
    memcpy(dst, src, n + 1);
    return 0;
}

/* Same for a pool name, which holds no ':' (the redis key layout). */
static int
copy_pool(char *dst, const char *src)
{
    if (src != NULL && strchr(src, ':') != NULL)
        return -EINVAL;
    return copy_name(dst, DIR_NAME_MAX, src);
}

/* ---- the backend's host (backend.h, struct dir_host) */

static struct dir *
host_dir(const struct dir_host *h)
{
    return (struct dir *)((const char *)h - offsetof(struct dir, host));
}

static void
host_set_up(const struct dir_host *h, int up)
{
    atomic_store(&host_dir(h)->up, up);
}

int
dir_up(struct dir *d)
{
    return atomic_load(&d->up);
}

static void
host_set_counts(const struct dir_host *h, const unsigned long counts[DIR_STATE_COUNT])
{
    struct dir *d = host_dir(h);

    for (int s = 0; s < DIR_STATE_COUNT; s++)
        atomic_store(&d->counts[s], counts[s]);
}

static void
host_failed_over(const struct dir_host *h)
{
    atomic_fetch_add(&host_dir(h)->failovers, 1);
}

static void
host_set_doorbell(const struct dir_host *h, int up)
{
    atomic_store(&host_dir(h)->doorbell, up);
}

static void
host_rung(const struct dir_host *h, size_t n)
{
    atomic_fetch_add(&host_dir(h)->rung, n);
}

static void
notes_free(struct note *n)
{
    while (n != NULL) {
        struct note *next = n->next;
        free(n);
        n = next;
    }
}

static void
watch_unref(struct watch *w)
{
    if (atomic_fetch_sub(&w->refs, 1) != 1)
        return;
    notes_free(w->q_head);
    pthread_mutex_destroy(&w->q_lock);
    free(w);
}

/* A reservation with a later change of the same instance in the batch: its
 * client left before the pool heard of it, nothing is to be brought in. */
static int
superseded(const struct note *n)
{
    if (n->inst.state != DIR_RESERVED)
        return 0;
    for (const struct note *m = n->next; m != NULL; m = m->next)
        if (strcmp(m->inst.name, n->inst.name) == 0)
            return 1;
    return 0;
}

/* On the watcher's loop: everything queued so far, in order. */
static void
watch_deliver(void *arg)
{
    struct watch *w = arg;

    pthread_mutex_lock(&w->q_lock);
    struct note *batch = w->q_head;
    w->q_head = w->q_tail = NULL;
    w->posted = 0;
    pthread_mutex_unlock(&w->q_lock);
    for (struct note *n = batch; n != NULL; n = n->next) {
        if (!atomic_load(&w->active))
            break;
        if (superseded(n))
            log_debug("dir pool=%s instance=%s: reservation for %s withdrawn before delivery",
                      w->pool, n->inst.name, n->inst.key);
        else
            w->cb(w->arg, &n->inst);
    }
    notes_free(batch);
    watch_unref(w);
}

/* Queues inst[0..n) of w's pool (under q_lock, so a delivery takes all of
 * them or none) and posts one delivery when none is pending. */
static void
watch_queue(struct watch *w, const struct dir_instance *inst, size_t n)
{
    pthread_mutex_lock(&w->q_lock);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(inst[i].pool, w->pool) != 0)
            continue;
        struct note *note = malloc(sizeof(*note));
        if (note == NULL) {
            log_warnx("dir watch pool=%s: out of memory, change lost", w->pool);
            continue;
        }
        note->next = NULL;
        note->inst = inst[i];
        if (w->q_tail != NULL)
            w->q_tail->next = note;
        else
            w->q_head = note;
        w->q_tail = note;
    }
    if (w->q_head != NULL && !w->posted) {
        atomic_fetch_add(&w->refs, 1);
        if (loop_post(w->on, watch_deliver, w) == 0) {
            w->posted = 1;
        } else {
            atomic_fetch_sub(&w->refs, 1);
            log_warnx("dir watch pool=%s: out of memory, changes wait for the next one", w->pool);
        }
    }
    pthread_mutex_unlock(&w->q_lock);
}

static void
host_changed(const struct dir_host *h, const struct dir_instance *inst, size_t n)
{
    struct dir *d = host_dir(h);

    for (size_t i = 0; i < n; i++)
        log_info("dir pool=%s instance=%s state=%s", inst[i].pool, inst[i].name,
                 dir_state_name(inst[i].state));
    struct list *p, *tmp;

    pthread_mutex_lock(&d->watch_lock);
    if (!d->stopped)
        list_for_each_safe(p, tmp, &d->watches)
            watch_queue(list_entry(p, struct watch, link), inst, n);
    pthread_mutex_unlock(&d->watch_lock);
}

/* ---- assign */

static void
assign_unref(struct dir_assign *a)
{
    if (atomic_fetch_sub(&a->refs, 1) == 1)
        free(a);
}

static void release_post(struct dir_assign *a);

/* a no longer holds its place (released or evicted): off d->held, whose
 * reference goes. On the directory's loop. */
static void
held_drop(struct dir_assign *a)
{
    if (!list_linked(&a->held_link))
        return;
    list_del(&a->held_link);
    assign_unref(a);
}

/* On the caller's loop: its connection lost its place, unless it was
 * released first. */
static void
evict_deliver(void *arg)
{
    struct dir_assign *a = arg;

    if (!atomic_load(&a->cancelled) && a->evicted != NULL)
        a->evicted(a->arg);
    assign_unref(a); /* the list's, handed over with the post */
}

/* The backend gave holder hid's place to a newcomer: its caller hears. */
static void
host_evicted(const struct dir_host *h, uint64_t hid)
{
    struct dir *d = host_dir(h);
    struct list *p;

    for (p = d->held.next; p != &d->held; p = p->next)
        if (list_entry(p, struct dir_assign, held_link)->hid == hid)
            break;
    if (p == &d->held)
        return; /* released meanwhile */
    struct dir_assign *a = list_entry(p, struct dir_assign, held_link);
    list_del(&a->held_link);
    if (d->stopped || loop_post(a->on, evict_deliver, a) != 0) {
        log_warnx("dir pool=%s instance=%s: a holder lost its place, its connection not told",
                  a->pool, a->instance);
        assign_unref(a);
    }
}

static void
assign_deliver(void *arg)
{
    struct dir_assign *a = arg;

    if (!atomic_load(&a->cancelled)) {
        a->delivered = 1;
        a->cb(a->arg, a->err, a->err == 0 ? a->instance : NULL, a->err == 0 ? &a->ep : NULL);
        if (!a->hold)
            assign_unref(a); /* the caller's; a holder ends it with dir_release() */
    } else if (a->err == 0) {
        release_post(a); /* the caller left after the directory reserved for it */
    }
    assign_unref(a); /* the directory's, handed over with the post */
}

static void
count_outcome(struct dir *d, enum dir_outcome o, unsigned long long start_us)
{
    unsigned long long us = mono_us() - start_us;
    size_t b = 0;

    atomic_fetch_add(&d->outcomes[o], 1);
    while (b < LAT_BUCKETS - 1 && us > lat_bounds_us[b])
        b++;
    atomic_fetch_add(&d->lat_count[b], 1);
    atomic_fetch_add(&d->lat_sum_us, us);
}

static void
wait_unlink(struct dir *d, struct dir_assign *a)
{
    if (!list_linked(&a->wait_link))
        return;
    list_del(&a->wait_link);
    timer_stop(d->loop, &a->wait_timer);
}

/* Answers a (off the wait list) on its loop; the directory's reference
 * goes with the post. */
static void
assign_answer(struct dir *d, struct dir_assign *a, int err, enum dir_outcome o)
{
    unsigned long quiet;

    if ((o == DIR_OUT_NONE_FREE || o == DIR_OUT_CLIENT_LIMIT || o == DIR_OUT_PENDING_LIMIT ||
         o == DIR_OUT_STORING || o == DIR_OUT_UNAVAILABLE) &&
        log_rate_ok(&d->refusal_log[o], mono_us() / 1000, REFUSAL_LOG_MS, &quiet))
        log_info("dir assign refused pool=%s client=%s reason=%s waited_ms=%llu quiet_before=%lu",
                 a->pool, a->client[0] ? a->client : "-", outcome_names[o],
                 (mono_us() - a->start_us) / 1000, quiet);
    wait_unlink(d, a);
    a->err = err;
    count_outcome(d, o, a->start_us);
    if (d->stopped) {
        assign_unref(a);
        return;
    }
    if (loop_post(a->on, assign_deliver, a) != 0) {
        /* the caller's loop cannot take it; its request stays unanswered */
        log_warnx("dir assign pool=%s: out of memory answering", a->pool);
        assign_unref(a);
    }
}

/* The outcome of a refusal that waited: -EAGAIN, -EDQUOT, -EBUSY,
 * -EINPROGRESS or -ENOTCONN. */
static enum dir_outcome
refusal_outcome(int why)
{
    return why == -EDQUOT        ? DIR_OUT_CLIENT_LIMIT
           : why == -EBUSY       ? DIR_OUT_PENDING_LIMIT
           : why == -EINPROGRESS ? DIR_OUT_STORING
           : why == -ENOTCONN    ? DIR_OUT_UNAVAILABLE
                                 : DIR_OUT_NONE_FREE;
}

static void
wait_expired(struct timer *t)
{
    struct dir_assign *a = t->data;

    assign_answer(a->d, a, a->why, refusal_outcome(a->why));
}

/* Tries a once; returns 1 when it was answered, 0 when it must wait. */
static int
assign_try(struct dir *d, struct dir_assign *a)
{
    struct dir_instance inst;
    const char *why = NULL;

    if (atomic_load(&a->cancelled)) {
        count_outcome(d, DIR_OUT_CANCELLED, a->start_us);
        wait_unlink(d, a);
        assign_unref(a);
        return 1;
    }
    struct dir_claim cl = {.client = a->client[0] ? a->client : NULL, .hold = a->hold};
    atomic_fetch_add(&d->tries, 1);
    int rc = d->ops->assign(d->be, a->pool, a->key, &cl, &inst);
    /* the backend away (redis restarting, failing over, reconnecting after
     * it lost its data) costs a new client the wait for it, not a refusal:
     * the backend's next tick after it is back retries every waiter */
    if (rc == -EAGAIN || rc == -EDQUOT || rc == -EBUSY || rc == -EINPROGRESS || rc == -ENOTCONN) {
        a->why = rc;
        a->tried_ms = loop_now(d->loop);
        return 0;
    }
    if (rc < 0) {
        assign_answer(d, a, rc, rc == -ENOENT ? DIR_OUT_NO_POOL : DIR_OUT_ERROR);
        return 1;
    }
    memcpy(a->instance, inst.name, sizeof(a->instance));
    a->rid = cl.rid;
    a->hid = cl.hid;
    if (endpoint_parse(inst.endpoint, &a->ep, &why) != PARSE_OK) {
        log_warnx("dir pool=%s instance=%s: bad endpoint: %s", inst.pool, inst.name,
                  why ? why : "invalid");
        if (a->hid != 0) /* nobody will connect: let go of it now */
            (void)d->ops->release(d->be, a->pool, a->instance, a->key, a->rid, a->hid);
        assign_answer(d, a, -EIO, DIR_OUT_ERROR);
        return 1;
    }
    if (a->hid != 0) {
        atomic_fetch_add(&a->refs, 1);
        list_add_tail(&d->held, &a->held_link);
    }
    assign_answer(d, a, 0, rc == 1 ? DIR_OUT_STICKY : DIR_OUT_RESERVED);
    return 1;
}

/* One client address waits with as many requests per pool as it may hold
 * reservations (max_pending_per_client): a newer request takes the place
 * of its oldest waiting one, answered at once, so that what one address
 * makes the directory and the routers hold (a connection each, for up to
 * assign_wait) stays bounded. */
static void
wait_make_room(struct dir *d, const struct dir_assign *a)
{
    struct dir_assign *oldest = NULL;
    unsigned n = 0;

    if (a->client[0] == '\0' || d->conf.max_pending_per_client == 0)
        return;
    for (struct list *p = d->waits.next; p != &d->waits; p = p->next) {
        struct dir_assign *w = list_entry(p, struct dir_assign, wait_link);
        if (strcmp(w->client, a->client) != 0 || strcmp(w->pool, a->pool) != 0)
            continue;
        if (oldest == NULL)
            oldest = w;
        n++;
    }
    if (n >= d->conf.max_pending_per_client)
        assign_answer(d, oldest, -EDQUOT, DIR_OUT_CLIENT_LIMIT);
}

static void
assign_start(void *arg)
{
    struct dir_assign *a = arg;
    struct dir *d = a->d;

    if (assign_try(d, a))
        return;
    if (d->conf.assign_wait_ms == 0 || d->stopped) {
        assign_answer(d, a, a->why, refusal_outcome(a->why));
        return;
    }
    wait_make_room(d, a);
    list_add_tail(&d->waits, &a->wait_link);
    timer_start(d->loop, &a->wait_timer, d->conf.assign_wait_ms, wait_expired, a);
}

/* What one retry round saw: the pools it found nothing idle in, and the
 * keys it gave an instance. */
#define ROUND_MAX 16
/* A waiter skipped by rounds is asked again at the first round this long
 * after its last try: its key may have got an instance through another
 * process (a user's connections spread over routers), which makes it
 * sticky, and nothing here says so. */
#define ROUND_STALE_MS 1000
struct round {
    char none[ROUND_MAX][DIR_NAME_MAX];
    size_t n_none;
    struct {
        char pool[DIR_NAME_MAX], key[DIR_KEY_MAX];
    } got[ROUND_MAX];
    size_t n_got;
    bool full; /* more keys got one than fit: skip nothing */
};

/* Whether a's retry is sure to find nothing idle: another waiter of its
 * pool found none this round, and a's key got no instance this round (its
 * retry would find it sticky); unless a was last asked ROUND_STALE_MS ago. */
static bool
round_skips(const struct round *r, const struct dir_assign *a, uint64_t now)
{
    bool none = false;

    if (a->why != -EAGAIN || r->full || now - a->tried_ms >= ROUND_STALE_MS)
        return false;
    for (size_t i = 0; i < r->n_none && !none; i++)
        none = strcmp(r->none[i], a->pool) == 0;
    for (size_t i = 0; i < r->n_got && none; i++)
        none = strcmp(r->got[i].pool, a->pool) != 0 || strcmp(r->got[i].key, a->key) != 0;
    return none;
}

static void
maybe_idle(struct dir *d, const char *pool)
{
    struct round r;
    uint64_t now = loop_now(d->loop);

    r.n_none = r.n_got = 0;
    r.full = false;
    /* newest first: under overload the oldest are the likeliest to have
     * given up, and a burst from one address (silent ClientHellos) cannot
     * queue ahead of that address's later requests. Once a waiter of a
     * pool finds nothing idle, the others of that pool waiting for an idle
     * one are not asked again this round: with redis a try is a round trip,
     * and waiters come from every client address (two each), so asking all
     * of them at every tick and ring let many addresses load the
     * directory. Those whose key just got an instance are (sticky), so are
     * those refused for other reasons (a client's bound, a store-back), and
     * so is each at least once a second (ROUND_STALE_MS). */
    for (struct list *p = d->waits.prev, *prev; p != &d->waits; p = prev) {
        struct dir_assign *a = list_entry(p, struct dir_assign, wait_link);
        prev = p->prev; /* a may leave the list */
        if ((pool != NULL && strcmp(a->pool, pool) != 0) || round_skips(&r, a, now))
            continue;
        char apool[DIR_NAME_MAX], akey[DIR_KEY_MAX];
        memcpy(apool, a->pool, sizeof(apool));
        memcpy(akey, a->key, sizeof(akey));
        if (assign_try(d, a)) { /* a may be gone */
            if (r.n_got == ROUND_MAX)
                r.full = true;
            else {
                memcpy(r.got[r.n_got].pool, apool, sizeof(apool));
                memcpy(r.got[r.n_got++].key, akey, sizeof(akey));
            }
        } else if (a->why == -EAGAIN && r.n_none < ROUND_MAX) {
            memcpy(r.none[r.n_none++], apool, sizeof(apool));
        }
    }
}

static void
host_maybe_idle(const struct dir_host *h, const char *pool)
{
    maybe_idle(host_dir(h), pool);
}

static struct dir_assign *
assign_new(struct dir *d, const char *pool, const char *key, const char *client, int hold,
           struct loop *on, dir_assign_cb cb, dir_evict_cb evicted, void *arg)
{
    struct dir_assign *a = calloc(1, sizeof(*a));

    if (a == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    if (copy_pool(a->pool, pool) != 0 || copy_name(a->key, sizeof(a->key), key) != 0 ||
        (client != NULL && client[0] != '\0' &&
         copy_name(a->client, sizeof(a->client), client) != 0)) {
        free(a);
        errno = EINVAL;
        return NULL;
    }
    a->hold = hold;
    a->d = d;
    a->on = on;
    a->cb = cb;
    a->evicted = evicted;
    a->arg = arg;
    a->start_us = mono_us();
    atomic_init(&a->refs, 2);
    atomic_init(&a->cancelled, 0);
    if (loop_post(d->loop, assign_start, a) != 0) {
        free(a);
        errno = ENOMEM;
        return NULL;
    }
    return a;
}

struct dir_assign *
dir_assign(struct dir *d, const char *pool, const char *key, struct loop *on, dir_assign_cb cb,
           void *arg)
{
    return assign_new(d, pool, key, NULL, 0, on, cb, NULL, arg);
}

struct dir_assign *
dir_assign_held(struct dir *d, const char *pool, const char *key, const char *client,
                struct loop *on, dir_assign_cb cb, dir_evict_cb evicted, void *arg)
{
    return assign_new(d, pool, key, client, 1, on, cb, evicted, arg);
}

static void
cancel_posted(void *arg)
{
    struct dir_assign *a = arg;

    if (list_linked(&a->wait_link)) {
        count_outcome(a->d, DIR_OUT_CANCELLED, a->start_us);
        wait_unlink(a->d, a);
        assign_unref(a); /* the directory's */
    }
    assign_unref(a); /* this post's */
}

void
dir_assign_cancel(struct dir_assign *a)
{
    if (a == NULL)
        return;
    atomic_store(&a->cancelled, 1); /* nor is an eviction told */
    if (a->delivered) {             /* a holder after the answer: nothing is pending */
        assign_unref(a);
        return;
    }
    atomic_fetch_add(&a->refs, 1);
    if (loop_post(a->d->loop, cancel_posted, a) != 0)
        atomic_fetch_sub(&a->refs, 1); /* it times out by itself, then is freed */
    assign_unref(a);                   /* the caller's */
}

static int req_new(enum req_kind kind, const char *pool, const char *name, struct req **out);
static int req_post(struct dir *d, struct req *r);

/* Tells the directory that a's caller no longer holds its reservation. */
static void
release_post(struct dir_assign *a)
{
    struct req *r;

    if (a->hid == 0)
        return; /* an active session, or nothing: not held */
    if (req_new(REQ_RELEASE, NULL, NULL, &r) == 0) {
        atomic_fetch_add(&a->refs, 1);
        r->held = a;
        if (req_post(a->d, r) == 0)
            return;
        assign_unref(a);
    }
    log_warnx("dir pool=%s instance=%s: out of memory releasing; it goes back after "
              "reserve_timeout",
              a->pool, a->instance);
}

void
dir_release(struct dir_assign *a)
{
    if (a == NULL)
        return;
    if (a->delivered && a->err == 0)
        release_post(a);
    dir_assign_cancel(a); /* before the answer: cancels; after: drops the reference */
}

/* ---- the other requests */

static void
req_deliver(void *arg)
{
    struct req *r = arg;

    if (r->kind == REQ_LIST)
        r->list_cb(r->arg, r->list, r->n);
    else
        r->done_cb(r->arg, r->err);
    free(r->list);
    free(r);
}

/* Tells the backend that a's caller left; takes the reference the caller
 * of this gave. A backend that cannot be reached (-EIO: redis is down)
 * is told again at each tick until it answers (releases_retry()), so that a
 * client that left during an outage gives its reservation back when the
 * backend is back, not at reserve_timeout: a is kept on d->unreleased
 * meanwhile (at most one per reservation held when the outage began:
 * nothing is reserved during one), for reserve_timeout at most (the
 * reservation is withdrawn by then anyway). Returns 0, or -EIO when a was
 * kept. */
static int
release_run(struct dir *d, struct dir_assign *a)
{
    int rc = d->ops->release(d->be, a->pool, a->instance, a->key, a->rid, a->hid);
    uint64_t now = loop_now(d->loop);

    if (a->unreleased_until == 0)
        a->unreleased_until = now + d->conf.reserve_timeout_ms;
    if (rc == -EIO && now < a->unreleased_until) {
        list_add_tail(&d->unreleased, &a->held_link);
        return rc;
    }
    if (rc == 1) {
        atomic_fetch_add(&d->released, 1);
        log_info("dir pool=%s instance=%s: reservation for %s withdrawn, its clients left", a->pool,
                 a->instance, a->key);
        maybe_idle(d, a->pool); /* it no longer counts against the bounds */
    }
    assign_unref(a);
    return 0;
}

/* Makes the releases the backend could not take, while it is up; stops at
 * the first it cannot take again. */
static void
releases_retry(struct dir *d)
{
    while (!list_empty(&d->unreleased) && atomic_load(&d->up)) {
        struct dir_assign *a = list_entry(list_first(&d->unreleased), struct dir_assign, held_link);
        list_del(&a->held_link);
        if (release_run(d, a) != 0)
            return;
    }
}

static void
req_run(void *arg)
{
    struct req *r = arg;
    struct dir *d = r->d;

    switch (r->kind) {
    case REQ_REPORT:
        r->err = d->ops->report(d->be, r->pool, r->name, r->st, r->ep);
        /* an instance became idle, or a reservation stopped counting against
         * the bounds on pending ones (its session ended) */
        if (r->err == 0 && r->st != DIR_STARTING)
            maybe_idle(d, r->pool);
        free(r);
        return;
    case REQ_RELEASE:
        held_drop(r->held);
        (void)release_run(d, r->held); /* the request's reference goes with it */
        free(r);
        return;
    case REQ_LIST:
        r->n = d->ops->list(d->be, &r->list);
        if (r->n < 0)
            r->list = NULL;
        break;
    case REQ_DRAIN:
        r->err = d->ops->drain(d->be, r->pool, r->name);
        break;
    }
    if (d->stopped || loop_post(r->on, req_deliver, r) != 0) {
        log_warnx("dir: out of memory answering a request");
        free(r->list);
        free(r);
    }
}

/* Returns a new request of kind about pool/name (both NULL: none, or
 * filled by the caller) in *out: 0, -ENOMEM, or -EINVAL when a name is
 * empty or does not fit. The caller posts it with req_post() or frees it. */
static int
req_new(enum req_kind kind, const char *pool, const char *name, struct req **out)
{
    struct req *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return -ENOMEM;
    if (pool != NULL &&
        (copy_pool(r->pool, pool) != 0 || copy_name(r->name, sizeof(r->name), name) != 0)) {
        free(r);
        return -EINVAL;
    }
    r->kind = kind;
    *out = r;
    return 0;
}

/* Posts a new request answered on loop on: list_cb(arg, ...) for REQ_LIST,
 * else done_cb(arg, err). Returns 0 or -errno (nothing is posted). */
static int
req_ask(struct dir *d, enum req_kind kind, const char *pool, const char *name, struct loop *on,
        dir_list_cb list_cb, dir_done_cb done_cb, void *arg)
{
    struct req *r;
    int rc = req_new(kind, pool, name, &r);

    if (rc != 0)
        return rc;
    r->on = on;
    r->list_cb = list_cb;
    r->done_cb = done_cb;
    r->arg = arg;
    return req_post(d, r);
}

/* Hands r to d's thread; frees it when that fails. Returns 0 or -ENOMEM. */
static int
req_post(struct dir *d, struct req *r)
{
    r->d = d;
    if (loop_post(d->loop, req_run, r) != 0) {
        free(r);
        return -ENOMEM;
    }
    return 0;
}

int
dir_report(struct dir *d, const char *pool, const char *name, enum dir_state st,
           const struct endpoint *ep)
{
    struct req *r;
    int rc;

    if (st != DIR_STARTING && st != DIR_IDLE && st != DIR_DRAINING && st != DIR_STOPPED)
        return -EINVAL;
    if ((rc = req_new(REQ_REPORT, pool, name, &r)) != 0)
        return rc;
    r->st = st;
    if (ep != NULL)
        endpoint_format(ep, r->ep, sizeof(r->ep));
    return req_post(d, r);
}

/* ---- activate */

static void
activate_unref(struct dir_activate *a)
{
    if (atomic_fetch_sub(&a->refs, 1) == 1)
        free(a);
}

static void
activate_deliver(void *arg)
{
    struct dir_activate *a = arg;

    if (!atomic_load(&a->cancelled)) {
        a->cb(a->arg, a->err, a->holder);
        activate_unref(a); /* the caller's */
    }
    activate_unref(a); /* the directory's, handed over with the post */
}

static void activate_retry(struct timer *t);

static void
activate_run(void *arg)
{
    struct dir_activate *a = arg;
    struct dir *d = a->d;

    if (a->deadline_ms == 0)
        a->deadline_ms = loop_now(d->loop) + d->conf.assign_wait_ms;
    /* withdrawn before its turn: its instance is being stopped anyway */
    if (!atomic_load(&a->cancelled)) {
        a->err = d->ops->activate(d->be, a->pool, a->name, a->key, a->holder);
        /* the backend away (redis restarting, failing over): a login in
         * flight costs its user the wait for it, as a new user's assign
         * does, not the instance; the activation of a key already active
         * for it is answered 0, so asking again is safe */
        if (a->err == -ENOTCONN && !d->stopped && loop_now(d->loop) < a->deadline_ms) {
            if (!list_linked(&a->link)) {
                log_info("dir activate pool=%s instance=%s key=%s: the backend is away: asked "
                         "again until it is back, for up to %u ms",
                         a->pool, a->name, a->key, d->conf.assign_wait_ms);
                list_add_tail(&d->activating, &a->link);
            }
            timer_start(d->loop, &a->retry, ACTIVATE_RETRY_MS, activate_retry, a);
            return;
        }
        if (a->err == 0) /* no longer pending: the bounds may let a waiter in */
            maybe_idle(d, a->pool);
    }
    list_del(&a->link);
    if (d->stopped || atomic_load(&a->cancelled) || loop_post(a->on, activate_deliver, a) != 0)
        activate_unref(a);
}

static void
activate_retry(struct timer *t)
{
    activate_run(t->data);
}

/* Drops the activations waiting for the backend unanswered (on the
 * directory's loop). */
static void
activating_drop(struct dir *d)
{
    while (!list_empty(&d->activating)) {
        struct dir_activate *a = list_entry(d->activating.next, struct dir_activate, link);
        timer_stop(d->loop, &a->retry);
        list_del(&a->link);
        activate_unref(a);
    }
}

struct dir_activate *
dir_activate(struct dir *d, const char *pool, const char *name, const char *key, struct loop *on,
             dir_activate_cb cb, void *arg)
{
    struct dir_activate *a = calloc(1, sizeof(*a));

    if (a == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    if (copy_pool(a->pool, pool) != 0 || copy_name(a->name, sizeof(a->name), name) != 0 ||
        copy_name(a->key, sizeof(a->key), key) != 0) {
        free(a);
        errno = EINVAL;
        return NULL;
    }
    a->d = d;
    a->on = on;
    a->cb = cb;
    a->arg = arg;
    atomic_init(&a->refs, 2);
    atomic_init(&a->cancelled, 0);
    if (loop_post(d->loop, activate_run, a) != 0) {
        free(a);
        errno = ENOMEM;
        return NULL;
    }
    return a;
}

void
dir_activate_cancel(struct dir_activate *a)
{
    if (a == NULL)
        return;
    atomic_store(&a->cancelled, 1);
    activate_unref(a); /* the caller's */
}

int
dir_list(struct dir *d, struct loop *on, dir_list_cb cb, void *arg)
{
    return req_ask(d, REQ_LIST, NULL, NULL, on, cb, NULL, arg);
}

int
dir_drain(struct dir *d, const char *pool, const char *name, struct loop *on, dir_done_cb cb,
          void *arg)
{
    return req_ask(d, REQ_DRAIN, pool, name, on, NULL, cb, arg);
}

/* ---- watchers */

/* Returns the watch of pool, or NULL; under watch_lock. */
static struct watch *
watch_find(struct dir *d, const char *pool)
{
    struct list *p, *tmp;

    list_for_each_safe(p, tmp, &d->watches) {
        struct watch *w = list_entry(p, struct watch, link);
        if (strcmp(w->pool, pool) == 0)
            return w;
    }
    return NULL;
}

int
dir_watch(struct dir *d, const char *pool, struct loop *on, dir_watch_cb cb, void *arg)
{
    struct watch *w = calloc(1, sizeof(*w));
    int rc = 0;

    if (w == NULL)
        return -ENOMEM;
    if (copy_pool(w->pool, pool) != 0) {
        free(w);
        return -EINVAL;
    }
    w->on = on;
    w->cb = cb;
    w->arg = arg;
    pthread_mutex_init(&w->q_lock, NULL);
    atomic_init(&w->active, 1);
    atomic_init(&w->refs, 1);
    pthread_mutex_lock(&d->watch_lock);
    if (watch_find(d, pool) != NULL)
        rc = -EEXIST;
    else
        list_add(&d->watches, &w->link);
    pthread_mutex_unlock(&d->watch_lock);
    if (rc != 0)
        watch_unref(w);
    return rc;
}

static int
host_watched_pools(const struct dir_host *h, char (*out)[DIR_NAME_MAX], int max)
{
    struct dir *d = host_dir(h);
    struct list *p, *tmp;
    int n = 0;

    pthread_mutex_lock(&d->watch_lock);
    list_for_each_safe(p, tmp, &d->watches) {
        if (n == max)
            break;
        memcpy(out[n++], list_entry(p, struct watch, link)->pool, DIR_NAME_MAX);
    }
    pthread_mutex_unlock(&d->watch_lock);
    return n;
}

void
dir_unwatch(struct dir *d, const char *pool)
{
    pthread_mutex_lock(&d->watch_lock);
    struct watch *w = watch_find(d, pool);
    if (w != NULL)
        list_del(&w->link);
    pthread_mutex_unlock(&d->watch_lock);
    if (w == NULL)
        return;
    atomic_store(&w->active, 0);
    watch_unref(w);
}

/* ---- thread */

static void tick_within(struct dir *d, unsigned ms);

static void
tick(struct timer *t)
{
    struct dir *d = t->data;
    unsigned ms = d->ops->tick(d->be);

    releases_retry(d);
    /* the backend may have asked for an earlier run meanwhile */
    tick_within(d, ms);
}

static void
tick_within(struct dir *d, unsigned ms)
{
    uint64_t due = loop_now(d->loop) + ms;

    if (d->stopped)
        return; /* its loop may be main, soon gone */
    if (d->tick.slot == 0 || d->tick.due > due)
        timer_start(d->loop, &d->tick, ms, tick, d);
}

static void
host_tick_within(const struct dir_host *h, unsigned ms)
{
    tick_within(host_dir(h), ms);
}

static void
tick_first(void *arg)
{
    struct dir *d = arg;

    timer_start(d->loop, &d->tick, 0, tick, d);
}

static void *
dir_thread(void *arg)
{
    struct dir *d = arg;
    sigset_t pipe;

    /* a write to a redis that went away must fail with EPIPE, not kill the
     * process (whether or not the program ignores SIGPIPE) */
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    int rc = loop_run(d->loop);

    if (rc != 0)
        log_warnx("dir loop: %s", strerror(-rc));
    return NULL;
}

struct dir *
dir_new(const struct dir_conf *conf, struct loop *main)
{
    struct dir *d = calloc(1, sizeof(*d));
    int rc;

    if (d == NULL)
        return NULL;
    d->conf = *conf;
    list_init(&d->waits);
    list_init(&d->held);
    list_init(&d->unreleased);
    list_init(&d->activating);
    list_init(&d->watches);
    pthread_mutex_init(&d->watch_lock, NULL);
    /* the memory backend never blocks: it runs on main, where a router's
     * connections (one worker) and the pools are, so that an assignment
     * costs no wakeup of another thread, which a busy machine can delay
     * by milliseconds; redis waits for its server, on a thread of its own */
    d->own_loop = conf->backend == DIR_REDIS || main == NULL;
    d->loop = d->own_loop ? loop_new() : main;
    if (d->loop == NULL) {
        rc = -errno;
        goto fail;
    }
    d->host = (struct dir_host){
        .conf = &d->conf,
        .loop = d->loop,
        .changed = host_changed,
        .maybe_idle = host_maybe_idle,
        .evicted = host_evicted,
        .watched_pools = host_watched_pools,
        .tick_within = host_tick_within,
        .set_up = host_set_up,
        .set_counts = host_set_counts,
        .failed_over = host_failed_over,
        .set_doorbell = host_set_doorbell,
        .rung = host_rung,
    };
    /* redis: down until its first connect, which happens in the background;
     * the memory backend is one process, whose changes reach it at once */
    d->up = d->doorbell = conf->backend != DIR_REDIS;
    const struct dir_ops *ops = conf->backend == DIR_REDIS ? &dir_redis_ops : &dir_memory_ops;
    if ((d->be = ops->open(&d->host)) == NULL) {
        rc = -errno;
        goto fail;
    }
    d->ops = ops;
    if ((rc = loop_post(d->loop, tick_first, d)) != 0)
        goto fail;
    if (d->own_loop && (rc = -pthread_create(&d->thread, NULL, dir_thread, d)) != 0)
        goto fail;
    d->started = 1;
    return d;

fail:
    dir_free(d);
    errno = -rc;
    return NULL;
}

static void
stop_posted(void *arg)
{
    struct dir *d = arg;

    timer_stop(d->loop, &d->tick);
    activating_drop(d);
    loop_stop(d->loop);
}

const char *
dir_node(const struct dir *d)
{
    return d->conf.node;
}

/* Drops the waiting requests unanswered (on the directory's loop). */
static void
waits_drop(struct dir *d)
{
    while (!list_empty(&d->waits)) {
        struct dir_assign *a = list_entry(d->waits.next, struct dir_assign, wait_link);
        wait_unlink(d, a);
        assign_unref(a);
    }
}

void
dir_stop(struct dir *d)
{
    if (d->started && d->own_loop) {
        if (loop_post(d->loop, stop_posted, d) != 0)
            loop_stop(d->loop);
        pthread_join(d->thread, NULL);
    } else if (d->started) {
        /* on main, which may be freed before d: nothing of d stays on it */
        timer_stop(d->loop, &d->tick);
        waits_drop(d);
        activating_drop(d);
    }
    d->started = 0;
    d->stopped = 1;
}

void
dir_free(struct dir *d)
{
    if (d == NULL)
        return;
    dir_stop(d);
    if (d->own_loop && d->loop != NULL && d->ops != NULL) {
        /* one more turn runs what was posted meanwhile (cancels free their
         * requests; answers are dropped) */
        timer_stop(d->loop, &d->tick);
        loop_stop(d->loop);
        loop_run(d->loop);
        /* waiters left (their callers did not wait for an answer) */
        waits_drop(d);
        activating_drop(d);
    }
    /* holders whose release did not reach the directory (out of memory) */
    while (!list_empty(&d->held))
        held_drop(list_entry(d->held.next, struct dir_assign, held_link));
    /* and whose release the backend never took (the same link) */
    while (!list_empty(&d->unreleased))
        held_drop(list_entry(d->unreleased.next, struct dir_assign, held_link));
    if (d->ops != NULL)
        d->ops->free(d->be);
    d->ops = NULL;
    d->be = NULL;
    if (d->own_loop)
        loop_free(d->loop);
    d->loop = NULL;
    while (!list_empty(&d->watches)) {
        struct watch *w = list_entry(d->watches.next, struct watch, link);
        list_del(&w->link);
        watch_unref(w);
    }
    pthread_mutex_destroy(&d->watch_lock);
    free(d);
}

/* ---- metrics */

void
dir_render(struct dir *d, struct strbuf *out)
{
    unsigned long long cum = 0;

    strbuf_printf(out,
                  "# HELP airlock_dir_up Whether the directory reaches its backend (redis: "
                  "connected).\n# TYPE airlock_dir_up gauge\nairlock_dir_up %d\n",
                  atomic_load(&d->up));
    strbuf_printf(out,
                  "# HELP airlock_dir_sessions Sessions (active instances), this process's "
                  "view.\n# TYPE airlock_dir_sessions gauge\nairlock_dir_sessions %lu\n",
                  atomic_load(&d->counts[DIR_ACTIVE]));
    strbuf_printf(out, "# HELP airlock_dir_instances Instances by state, this process's view.\n"
                       "# TYPE airlock_dir_instances gauge\n");
    for (int s = 0; s < DIR_STATE_COUNT; s++)
        if (s != DIR_STOPPED)
            strbuf_printf(out, "airlock_dir_instances{state=\"%s\"} %lu\n", dir_state_name(s),
                          atomic_load(&d->counts[s]));
    strbuf_printf(out, "# HELP airlock_dir_assigns_total Assign requests, by outcome.\n"
                       "# TYPE airlock_dir_assigns_total counter\n");
    for (int o = 0; o < DIR_OUTCOME_COUNT; o++)
        strbuf_printf(out, "airlock_dir_assigns_total{outcome=\"%s\"} %lu\n", outcome_names[o],
                      atomic_load(&d->outcomes[o]));
    strbuf_printf(out,
                  "# HELP airlock_dir_released_total Reservations withdrawn because every "
                  "connection holding them ended before the login.\n"
                  "# TYPE airlock_dir_released_total counter\nairlock_dir_released_total %lu\n",
                  atomic_load(&d->released));
    strbuf_printf(out,
                  "# HELP airlock_dir_assign_tries_total Assigns asked of the backend: each "
                  "request's first try and the retries of those waiting.\n"
                  "# TYPE airlock_dir_assign_tries_total counter\n"
                  "airlock_dir_assign_tries_total %lu\n",
                  atomic_load(&d->tries));
    strbuf_printf(out,
                  "# HELP airlock_dir_failovers_total Times the redis backend found another "
                  "master than the one it used (a Sentinel failover it followed).\n"
                  "# TYPE airlock_dir_failovers_total counter\nairlock_dir_failovers_total %lu\n",
                  atomic_load(&d->failovers));
    strbuf_printf(out,
                  "# HELP airlock_dir_doorbell Whether other processes' changes reach this one "
                  "at once (redis: the doorbell subscription is up), not only at the next "
                  "tick.\n# TYPE airlock_dir_doorbell gauge\nairlock_dir_doorbell %d\n",
                  atomic_load(&d->doorbell));
    strbuf_printf(out,
                  "# HELP airlock_dir_doorbell_changes_total Changes for this process's pools "
                  "picked up at a ring of the doorbell rather than at a tick.\n"
                  "# TYPE airlock_dir_doorbell_changes_total counter\n"
                  "airlock_dir_doorbell_changes_total %lu\n",
                  atomic_load(&d->rung));
    strbuf_printf(out, "# HELP airlock_dir_assign_seconds Time from request to answer at the "
                       "directory.\n# TYPE airlock_dir_assign_seconds histogram\n");
    for (size_t b = 0; b < LAT_BUCKETS; b++) {
        cum += atomic_load(&d->lat_count[b]);
        if (b < LAT_BUCKETS - 1)
            strbuf_printf(out, "airlock_dir_assign_seconds_bucket{le=\"%g\"} %llu\n",
                          (double)lat_bounds_us[b] / 1e6, cum);
        else
            strbuf_printf(out, "airlock_dir_assign_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
    }
    strbuf_printf(out,
                  "airlock_dir_assign_seconds_sum %.6f\nairlock_dir_assign_seconds_count %llu\n",
                  (double)atomic_load(&d->lat_sum_us) / 1e6, cum);
}
