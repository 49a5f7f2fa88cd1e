/* dirtool - drives a session directory from outside airlock, for the
 * integration tests and bench/assign.sh. BACKEND is "memory" or a redis
 * endpoint (tcp:HOST:PORT, unix:/path); pool "p" (or $DIRTOOL_POOL),
 * instances i0..iN-1 at tcp:127.0.0.1:BASE+N (BASE: $DIRTOOL_PORT_BASE,
 * default 20000).
 *
 *   dirtool register BACKEND PREFIX N
 *       reports N idle instances (before racing processes start)
 *   dirtool race BACKEND PREFIX TAG KEYS THREADS [N]
 *       THREADS threads each assign KEYS new keys (TAG-thread-i); each
 *       instance won is checked against a ledger (redis SET NX with the
 *       redis backend, so several processes share it), asked again
 *       (sticky), activated, released and reported draining then idle. With N, registers N
 * instances first (memory). Prints the counts; exits 1 on any instance held by two keys at once.
 *   dirtool outage BACKEND PREFIX SECONDS
 *       reports i0 idle once; then every 100 ms assigns a new key and,
 *       when it got i0, activates it and reports it draining and idle; prints
 *       "T_MS ERR LATENCY_MS" per assign
 *   dirtool assign BACKEND PREFIX KEY
 *       assigns KEY once and prints the instance (or the error)
 *   dirtool activate BACKEND PREFIX NAME KEY
 *       asks that instance NAME become active for KEY (what a pool asks at
 *       a login line); prints "active", or "refused HOLDER" (the key NAME
 *       is reserved or active for, "-" when none) and exits 1
 *   dirtool bench BACKEND PREFIX N CYCLES
 *       CYCLES assign/activate/draining/idle cycles; prints the assign
 *       latency p50 and p99 in microseconds
 *   dirtool pool BACKEND PREFIX N SECONDS
 *       a node's pool for bench/scale.sh: reports N idle instances and
 *       stays SECONDS, its directory saying every 100 ms that the node
 *       ($DIRTOOL_NODE) is alive
 *   dirtool router BACKEND PREFIX TAG START_MS DURATION_MS HOLD
 *       a router for bench/scale.sh: from the wall clock START_MS (so that
 *       several processes start together) for DURATION_MS, assign/activate/
 *       draining/idle cycles of new keys (TAG-i), each instance won checked
 *       against the ledger (as race); then assigns HOLD more keys and
 *       leaves them active. Prints "held KEY NAME" for each of those, then
 *       the assignments, the assignments per second and the assign latency
 *       p50 and p99 in microseconds (of the cycles)
 *
 * With $DIRTOOL_NODE the directory has that node name (directory: node:)
 * and the instances are named NODE-iK instead of iK.
 *
 * BACKEND sentinels:MASTER asks the sentinels in $DIRTOOL_SENTINELS
 * (endpoints separated by spaces) for MASTER. $DIRTOOL_REDIS_USER,
 * $DIRTOOL_REDIS_PASSWORD_FILE, $DIRTOOL_SENTINEL_PASSWORD_FILE and
 * $DIRTOOL_MIN_REPLICAS_ACKED set the directory keys of those names; with $DIRTOOL_METRICS the
 * directory's metrics go to stderr at the end. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "dir/dir.h"

static const char *POOL = "p"; /* DIRTOOL_POOL overrides */
#define GUARD_MS 10000

static struct dir_conf conf;
static struct dir *dir;

struct worker {
    pthread_t thread;
    int id;
    const char *tag;
    long keys;
    long assigned, none_free, errors, violations;
    struct loop *loop;
    struct timer guard;
    redisContext *ledger;
};

struct answer {
    struct loop *loop;
    int done, err;
    char inst[DIR_NAME_MAX];
    char holder[DIR_KEY_MAX];
};

/* the memory backend's ledger: instance -> key, for the threads of this process */
static pthread_mutex_t ledger_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char inst[DIR_NAME_MAX];
    char key[DIR_KEY_MAX];
} held[256];

static unsigned long long
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000 + (unsigned long long)ts.tv_nsec / 1000;
}

static void
guard_fired(struct timer *t)
{
    loop_stop(t->data);
}

static void
on_assign(void *arg, int err, const char *inst, const struct endpoint *ep)
{
    struct answer *a = arg;
    (void)ep;

    a->done = 1;
    a->err = err;
    if (err == 0)
        snprintf(a->inst, sizeof(a->inst), "%s", inst);
    loop_stop(a->loop);
}

/* Runs loop until a is answered or GUARD_MS pass; returns a->done. */
static int
wait_answer(struct loop *loop, struct timer *guard, struct answer *a)
{
    timer_start(loop, guard, GUARD_MS, guard_fired, loop);
    while (!a->done && guard->slot != 0)
        loop_run(loop);
    timer_stop(loop, guard);
    return a->done;
}

static int
assign_sync(struct loop *loop, struct timer *guard, const char *key, char *inst)
{
    struct answer a = {.loop = loop};

    if (dir_assign(dir, POOL, key, loop, on_assign, &a) == NULL)
        return -errno;
    if (!wait_answer(loop, guard, &a)) {
        fprintf(stderr, "dirtool: no answer within %d ms\n", GUARD_MS);
        exit(2);
    }
    if (a.err == 0)
        snprintf(inst, DIR_NAME_MAX, "%s", a.inst);
    return a.err;
}

static void
on_activate(void *arg, int err, const char *holder)
{
    struct answer *a = arg;

    a->done = 1;
    a->err = err;
    snprintf(a->holder, sizeof(a->holder), "%s", holder);
    loop_stop(a->loop);
}

/* Makes inst active for key (the pool's part after a login line); returns
 * 0 or -errno (-ETIMEDOUT: no answer; -EPERM: holder, when not NULL, gets
 * the key inst is reserved or active for). */
static int
activate_sync(struct loop *loop, struct timer *guard, const char *inst, const char *key,
              char *holder)
{
    struct answer a = {.loop = loop};

    if (dir_activate(dir, POOL, inst, key, loop, on_activate, &a) == NULL)
        return -errno;
    if (!wait_answer(loop, guard, &a))
        return -ETIMEDOUT;
    if (holder != NULL)
        snprintf(holder, DIR_KEY_MAX, "%s", a.holder);
    return a.err;
}

/* The same for an instance just assigned to key: a refusal would be a bug
 * of the directory. */
static void
activate_or_exit(struct loop *loop, struct timer *guard, const char *inst, const char *key)
{
    int err = activate_sync(loop, guard, inst, key, NULL);

    if (err != 0) {
        fprintf(stderr, "dirtool: activate %s for %s: %s\n", inst, key, strerror(-err));
        exit(2);
    }
}

static void
report(const char *name, enum dir_state st)
{
    struct endpoint ep;
    char text[64];
    const char *why;

    const char *base = getenv("DIRTOOL_PORT_BASE");

    /* iK or NODE-iK: port BASE+K */
    snprintf(text, sizeof(text), "tcp:127.0.0.1:%d",
             (base ? atoi(base) : 20000) + atoi(strrchr(name, 'i') + 1));
    endpoint_parse(text, &ep, &why);
    if (dir_report(dir, POOL, name, st, &ep) != 0) {
        fprintf(stderr, "dirtool: report failed\n");
        exit(2);
    }
}

static void
register_all(long n)
{
    char name[DIR_NAME_MAX];

    for (long i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "%s%si%ld", conf.node, conf.node[0] ? "-" : "", i);
        report(name, DIR_IDLE);
    }
}

/* Takes inst for key in the ledger; returns 0, or -1 when another key holds it. */
static int
ledger_take(struct worker *w, const char *inst, const char *key)
{
    if (w->ledger != NULL) {
        redisReply *r = redisCommand(w->ledger, "SET %sledger:%s %s NX", conf.prefix, inst, key);
        int ok = r != NULL && r->type == REDIS_REPLY_STATUS;
        if (r == NULL) {
            fprintf(stderr, "dirtool: ledger: %s\n", w->ledger->errstr);
            exit(2);
        }
        freeReplyObject(r);
        return ok ? 0 : -1;
    }
    int rc = -1;
    pthread_mutex_lock(&ledger_lock);
    for (size_t i = 0; i < sizeof(held) / sizeof(held[0]); i++) {
        if (strcmp(held[i].inst, inst) == 0)
            break; /* held */
        if (held[i].inst[0] == '\0') {
            snprintf(held[i].inst, sizeof(held[i].inst), "%s", inst);
            snprintf(held[i].key, sizeof(held[i].key), "%s", key);
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&ledger_lock);
    return rc;
}

static void
ledger_give(struct worker *w, const char *inst, const char *key)
{
    if (w->ledger != NULL) {
        static const char *lua =
            "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end";
        redisReply *r =
            redisCommand(w->ledger, "EVAL %s 1 %sledger:%s %s", lua, conf.prefix, inst, key);
        freeReplyObject(r);
        return;
    }
    pthread_mutex_lock(&ledger_lock);
    for (size_t i = 0; i < sizeof(held) / sizeof(held[0]); i++) {
        if (strcmp(held[i].inst, inst) == 0 && strcmp(held[i].key, key) == 0) {
            held[i].inst[0] = '\0';
            /* keep the table dense: move the last used slot here */
            size_t last = i;
            while (last + 1 < sizeof(held) / sizeof(held[0]) && held[last + 1].inst[0] != '\0')
                last++;
            if (last != i) {
                held[i] = held[last];
                held[last].inst[0] = '\0';
            }
            break;
        }
    }
    pthread_mutex_unlock(&ledger_lock);
}

/* Instance inst was assigned to key: takes it in the ledger; returns 0, or
 * -1 (a violation, counted) when another key holds it. */
static int
won(struct worker *w, const char *inst, const char *key)
{
    if (ledger_take(w, inst, key) == 0)
        return 0;
    fprintf(stderr, "dirtool: VIOLATION: %s given to %s while another key holds it\n", inst, key);
    w->violations++;
    return -1;
}

/* The session of key on inst ends: out of the ledger, then the pool's
 * reports (draining, idle), which let the directory hand it out again. */
static void
recycle(struct worker *w, const char *inst, const char *key)
{
    ledger_give(w, inst, key);
    report(inst, DIR_DRAINING);
    report(inst, DIR_IDLE);
}

/* The worker's loop and, with redis, its ledger connection. */
static void
worker_begin(struct worker *w)
{
    w->loop = loop_new();
    if (conf.backend == DIR_REDIS) {
        struct timeval tv = {5, 0};
        w->ledger = conf.redis.kind == EP_UNIX
                        ? redisConnectUnixWithTimeout(conf.redis.path, tv)
                        : redisConnectWithTimeout(conf.redis.host, (int)conf.redis.port, tv);
        if (w->ledger == NULL || w->ledger->err) {
            fprintf(stderr, "dirtool: ledger connect failed\n");
            exit(2);
        }
    }
}

static void
worker_end(struct worker *w)
{
    if (w->ledger != NULL)
        redisFree(w->ledger);
    loop_free(w->loop);
}

static void *
race(void *arg)
{
    struct worker *w = arg;
    char key[DIR_KEY_MAX], inst[DIR_NAME_MAX], again[DIR_NAME_MAX];

    worker_begin(w);
    for (long i = 0; i < w->keys; i++) {
        snprintf(key, sizeof(key), "%s-%d-%ld", w->tag, w->id, i);
        int err = assign_sync(w->loop, &w->guard, key, inst);
        if (err == -EAGAIN) {
            w->none_free++;
            continue;
        }
        if (err != 0) {
            w->errors++;
            continue;
        }
        w->assigned++;
        if (won(w, inst, key) != 0)
            continue;
        if (assign_sync(w->loop, &w->guard, key, again) != 0 || strcmp(inst, again) != 0) {
            fprintf(stderr, "dirtool: VIOLATION: %s not sticky (%s then %s)\n", key, inst, again);
            w->violations++;
        }
        activate_or_exit(w->loop, &w->guard, inst, key);
        recycle(w, inst, key);
    }
    worker_end(w);
    return NULL;
}

static int
cmd_race(const char *tag, long keys, int threads, long n)
{
    struct worker *w = calloc((size_t)threads, sizeof(*w));
    long assigned = 0, none = 0, errors = 0, violations = 0;

    if (n > 0)
        register_all(n);
    for (int i = 0; i < threads; i++) {
        w[i].id = i;
        w[i].tag = tag;
        w[i].keys = keys;
        pthread_create(&w[i].thread, NULL, race, &w[i]);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(w[i].thread, NULL);
        assigned += w[i].assigned;
        none += w[i].none_free;
        errors += w[i].errors;
        violations += w[i].violations;
    }
    free(w);
    printf("assigned=%ld none_free=%ld errors=%ld violations=%ld\n", assigned, none, errors,
           violations);
    return violations > 0 || errors > 0 || assigned == 0;
}

static int
cmd_outage(long seconds)
{
    struct loop *loop = loop_new();
    struct timer guard = {0};
    unsigned long long t0 = now_us();
    char key[32], inst[DIR_NAME_MAX];

    report("i0", DIR_IDLE);
    for (long i = 0; now_us() - t0 < (unsigned long long)seconds * 1000000; i++) {
        snprintf(key, sizeof(key), "k%ld", i);
        unsigned long long t = now_us();
        int err = assign_sync(loop, &guard, key, inst);
        printf("%llu %d %llu\n", (t - t0) / 1000, err, (now_us() - t) / 1000);
        fflush(stdout);
        if (err == 0) {
            /* redis may go away between the assign and this: -EIO is no bug */
            (void)activate_sync(loop, &guard, inst, key, NULL);
            report(inst, DIR_DRAINING);
            report(inst, DIR_IDLE);
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    loop_free(loop);
    return 0;
}

static int
cmp_ull(const void *a, const void *b)
{
    unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;
    return x < y ? -1 : x > y;
}

static int
cmd_bench(long n, long cycles)
{
    struct loop *loop = loop_new();
    struct timer guard = {0};
    unsigned long long *lat = calloc((size_t)cycles, sizeof(*lat));
    char key[32], inst[DIR_NAME_MAX];
    long done = 0;

    register_all(n);
    for (long i = 0; i < cycles; i++) {
        snprintf(key, sizeof(key), "b%ld", i);
        unsigned long long t = now_us();
        int err = assign_sync(loop, &guard, key, inst);
        if (err != 0) {
            fprintf(stderr, "dirtool: assign: %s\n", strerror(-err));
            return 1;
        }
        lat[done++] = now_us() - t;
        activate_or_exit(loop, &guard, inst, key);
        report(inst, DIR_DRAINING);
        report(inst, DIR_IDLE);
    }
    qsort(lat, (size_t)done, sizeof(*lat), cmp_ull);
    printf("backend=%s instances=%ld cycles=%ld assign_p50_us=%llu assign_p99_us=%llu\n",
           conf.backend == DIR_REDIS ? "redis" : "memory", n, done, lat[done / 2],
           lat[done * 99 / 100]);
    free(lat);
    loop_free(loop);
    return 0;
}

static int
cmd_pool(long n, long seconds)
{
    struct timespec ts = {seconds, 0};

    register_all(n);
    /* the directory's thread says the node is alive while this sleeps */
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return 0;
}

static unsigned long long
wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
}

static int
cmd_router(const char *tag, unsigned long long start_ms, long duration_ms, long hold)
{
    struct worker w = {.tag = tag};
    char key[DIR_KEY_MAX], inst[DIR_NAME_MAX];
    size_t cap = 1 << 16, done = 0;
    unsigned long long *lat = malloc(cap * sizeof(*lat));
    long i = 0;

    if (lat == NULL)
        return 2;
    worker_begin(&w);
    for (unsigned long long now = wall_ms(); now < start_ms; now = wall_ms()) {
        struct timespec ts = {(time_t)((start_ms - now) / 1000),
                              (long)((start_ms - now) % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    unsigned long long t0 = now_us(), end = t0 + (unsigned long long)duration_ms * 1000;
    for (unsigned long long t = t0; t < end; t = now_us(), i++) {
        snprintf(key, sizeof(key), "%s-%ld", tag, i);
        int err = assign_sync(w.loop, &w.guard, key, inst);
        if (err != 0) {
            *(err == -EAGAIN ? &w.none_free : &w.errors) += 1;
            continue;
        }
        if (done == cap) {
            unsigned long long *more = realloc(lat, 2 * cap * sizeof(*lat));
            if (more == NULL)
                break; /* enough samples */
            lat = more;
            cap *= 2;
        }
        lat[done++] = now_us() - t;
        w.assigned++;
        if (won(&w, inst, key) != 0)
            continue;
        activate_or_exit(w.loop, &w.guard, inst, key);
        recycle(&w, inst, key);
    }
    double secs = (double)(now_us() - t0) / 1e6;
    for (long h = 0; h < hold; h++, i++) {
        snprintf(key, sizeof(key), "%s-%ld", tag, i);
        if (assign_sync(w.loop, &w.guard, key, inst) != 0) {
            w.errors++;
            continue;
        }
        if (won(&w, inst, key) == 0) {
            activate_or_exit(w.loop, &w.guard, inst, key);
            printf("held %s %s\n", key, inst);
        }
    }
    worker_end(&w);
    qsort(lat, done, sizeof(*lat), cmp_ull);
    printf("router=%s assigned=%ld per_s=%.0f assign_p50_us=%llu assign_p99_us=%llu none_free=%ld "
           "errors=%ld violations=%ld\n",
           tag, w.assigned, (double)w.assigned / secs, done ? lat[done / 2] : 0,
           done ? lat[done * 99 / 100] : 0, w.none_free, w.errors, w.violations);
    free(lat);
    return w.violations > 0 || w.errors > 0 || w.assigned == 0;
}

static void
on_list(void *arg, const struct dir_instance *list, long n)
{
    struct answer *a = arg;
    (void)list;

    a->done = 1;
    a->err = n < 0 ? (int)n : 0;
    loop_stop(a->loop);
}

/* Waits until every report made so far was applied; returns 0 or -errno. */
static int
flush(void)
{
    struct answer a = {.loop = loop_new()};
    struct timer guard = {0};

    if (dir_list(dir, a.loop, on_list, &a) == 0)
        (void)wait_answer(a.loop, &guard, &a);
    loop_free(a.loop);
    return a.done ? a.err : -ETIMEDOUT;
}

static void
usage(void)
{
    fprintf(stderr,
            "usage: dirtool register|race|assign|activate|outage|bench|pool|router BACKEND PREFIX "
            "... "
            "(see source)\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    const char *why;
    int rc;

    if (argc < 4)
        usage();
    if (getenv("DIRTOOL_POOL") != NULL)
        POOL = getenv("DIRTOOL_POOL");
    dir_conf_defaults(&conf);
    conf.assign_wait_ms = 0;
    conf.pending_share = 100; /* races and measures assignment itself, unbounded */
    if (strncmp(argv[2], "sentinels:", 10) == 0) {
        char list[1024];
        conf.backend = DIR_REDIS;
        snprintf(conf.sentinel_master, sizeof(conf.sentinel_master), "%s", argv[2] + 10);
        snprintf(list, sizeof(list), "%s",
                 getenv("DIRTOOL_SENTINELS") ? getenv("DIRTOOL_SENTINELS") : "");
        for (char *save, *w = strtok_r(list, " ", &save);
             w != NULL && conf.n_sentinels < DIR_SENTINELS_MAX; w = strtok_r(NULL, " ", &save))
            if (endpoint_parse(w, &conf.sentinels[conf.n_sentinels++], &why) != PARSE_OK)
                usage();
    } else if (strcmp(argv[2], "memory") != 0) {
        conf.backend = DIR_REDIS;
        if (endpoint_parse(argv[2], &conf.redis, &why) != PARSE_OK)
            usage();
    }
    if (getenv("DIRTOOL_REDIS_USER") != NULL)
        snprintf(conf.redis_user, sizeof(conf.redis_user), "%s", getenv("DIRTOOL_REDIS_USER"));
    if (getenv("DIRTOOL_REDIS_PASSWORD_FILE") != NULL)
        snprintf(conf.redis_password_file, sizeof(conf.redis_password_file), "%s",
                 getenv("DIRTOOL_REDIS_PASSWORD_FILE"));
    if (getenv("DIRTOOL_SENTINEL_PASSWORD_FILE") != NULL)
        snprintf(conf.sentinel_password_file, sizeof(conf.sentinel_password_file), "%s",
                 getenv("DIRTOOL_SENTINEL_PASSWORD_FILE"));
    if (getenv("DIRTOOL_NODE") != NULL)
        snprintf(conf.node, sizeof(conf.node), "%s", getenv("DIRTOOL_NODE"));
    if (getenv("DIRTOOL_MIN_REPLICAS_ACKED") != NULL)
        conf.min_replicas_acked = (unsigned)atoi(getenv("DIRTOOL_MIN_REPLICAS_ACKED"));
    snprintf(conf.prefix, sizeof(conf.prefix), "%s", argv[3]);
    if ((dir = dir_new(&conf, NULL)) == NULL) {
        perror("dirtool: dir_new");
        return 2;
    }
    if (strcmp(argv[1], "register") == 0 && argc == 5) {
        register_all(atol(argv[4]));
        rc = 0;
    } else if (strcmp(argv[1], "race") == 0 && (argc == 7 || argc == 8)) {
        rc = cmd_race(argv[4], atol(argv[5]), atoi(argv[6]), argc == 8 ? atol(argv[7]) : 0);
    } else if (strcmp(argv[1], "assign") == 0 && argc == 5) {
        struct loop *loop = loop_new();
        struct timer guard = {0};
        char inst[DIR_NAME_MAX];
        int err = assign_sync(loop, &guard, argv[4], inst);
        printf("%s\n", err == 0 ? inst : strerror(-err));
        rc = err != 0;
        loop_free(loop);
    } else if (strcmp(argv[1], "activate") == 0 && argc == 6) {
        struct loop *loop = loop_new();
        struct timer guard = {0};
        char holder[DIR_KEY_MAX];
        int err = activate_sync(loop, &guard, argv[4], argv[5], holder);
        if (err == -EPERM)
            printf("refused %s\n", holder[0] ? holder : "-");
        else
            printf("%s\n", err == 0 ? "active" : strerror(-err));
        rc = err != 0;
        loop_free(loop);
    } else if (strcmp(argv[1], "outage") == 0 && argc == 5) {
        rc = cmd_outage(atol(argv[4]));
    } else if (strcmp(argv[1], "bench") == 0 && argc == 6) {
        rc = cmd_bench(atol(argv[4]), atol(argv[5]));
    } else if (strcmp(argv[1], "pool") == 0 && argc == 6) {
        rc = cmd_pool(atol(argv[4]), atol(argv[5]));
    } else if (strcmp(argv[1], "router") == 0 && argc == 8) {
        rc = cmd_router(argv[4], strtoull(argv[5], NULL, 10), atol(argv[6]), atol(argv[7]));
    } else {
        usage();
    }
    /* the last fire-and-forget reports reached the backend when a listing
     * made after them answers */
    if (flush() < 0 && rc == 0)
        rc = 1;
    if (getenv("DIRTOOL_METRICS") != NULL) {
        struct strbuf m = {0};
        dir_render(dir, &m);
        fprintf(stderr, "%.*s", (int)m.len, m.data);
        strbuf_free(&m);
    }
    dir_free(dir);
    return rc;
}
