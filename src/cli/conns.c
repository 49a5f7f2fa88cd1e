/* conns.c - see conns.h. */
#include "cli/conns.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct job;

/* One worker's share: filled on its thread, read on home's after. */
struct part {
    struct job *job;
    struct worker *w;
    size_t index;           /* of w, and of its loop in the HTTP proxies' */
    struct conn_info *list; /* at most CONNS_SHOWN_MAX; NULL when none could be had */
    size_t n;               /* filled in list */
    size_t total;           /* the loop's open connections, listed or not */
};

struct job {
    struct loop *home;
    struct http_env *http;
    atomic_size_t pending; /* parts not answered yet */
    size_t n;
    struct part *parts;
    struct strbuf *out;
    control_done_fn done;
    void *ctx;
};

static int
oldest_first(const void *a, const void *b)
{
    const struct conn_info *x = a, *y = b;
    int c = strcmp(x->relay, y->relay);

    if (c != 0)
        return c;
    return x->age_ms < y->age_ms ? 1 : x->age_ms > y->age_ms ? -1 : 0;
}

static size_t
wider(size_t w, const char *s)
{
    size_t n = strlen(s);
    return n > w ? n : w;
}

/* n, or "-" for a count not kept (UINT64_MAX) */
static const char *
count(uint64_t n, char *buf, size_t len)
{
    if (n == UINT64_MAX)
        return "-";
    snprintf(buf, len, "%llu", (unsigned long long)n);
    return buf;
}

static void
table(struct strbuf *out, struct conn_info *list, size_t shown, size_t total)
{
    size_t w[3] = {5, 6, 6}; /* RELAY CLIENT TARGET */

    qsort(list, shown, sizeof(*list), oldest_first);
    for (size_t i = 0; i < shown; i++) {
        w[0] = wider(w[0], list[i].relay);
        w[1] = wider(w[1], list[i].client);
        w[2] = wider(w[2], list[i].target);
    }
    strbuf_printf(out, "%-*s  %-*s  %-*s  %8s  %12s  %12s\n", (int)w[0], "RELAY", (int)w[1],
                  "CLIENT", (int)w[2], "TARGET", "AGE", "BYTES_IN", "BYTES_OUT");
    for (size_t i = 0; i < shown; i++) {
        char in[24], out_[24];
        strbuf_printf(
            out, "%-*s  %-*s  %-*s  %7llus  %12s  %12s\n", (int)w[0], list[i].relay, (int)w[1],
            list[i].client, (int)w[2], list[i].target, (unsigned long long)(list[i].age_ms / 1000),
            count(list[i].bytes_in, in, sizeof(in)), count(list[i].bytes_out, out_, sizeof(out_)));
    }
    if (shown < total)
        strbuf_printf(out, "total %zu connections, %zu shown\n", total, shown);
    else
        strbuf_printf(out, "total %zu connections\n", total);
}

static void
job_free(struct job *j)
{
    for (size_t i = 0; i < j->n; i++)
        free(j->parts[i].list);
    free(j->parts);
    free(j);
}

/* On home's thread, once every worker answered. */
static void
finish(void *arg)
{
    struct job *j = arg;
    struct conn_info *all = malloc(CONNS_SHOWN_MAX * sizeof(*all));
    size_t shown = 0, total = 0;

    for (size_t i = 0; i < j->n; i++) {
        const struct part *p = &j->parts[i];
        total += p->total;
        for (size_t k = 0; all != NULL && k < p->n && shown < CONNS_SHOWN_MAX; k++)
            all[shown++] = p->list[k];
    }
    if (all == NULL)
        j->out->failed = 1;
    else
        table(j->out, all, shown, total);
    free(all);
    j->done(j->ctx, 0);
    job_free(j);
}

/* A part is in. The last one hands the job to home; should that post fail
 * (no memory), the control connection waits until its client gives up. */
static void
part_done(struct part *p)
{
    struct job *j = p->job;

    if (atomic_fetch_sub(&j->pending, 1) == 1 && loop_post(j->home, finish, j) != 0)
        job_free(j);
}

/* http_conn_fn: a proxy's session, into the part. */
static void
http_conn(void *arg, const char *proxy, const char *client, const struct endpoint *backend,
          uint64_t age_ms)
{
    struct part *p = arg;

    p->total++;
    if (p->list == NULL || p->n == CONNS_SHOWN_MAX)
        return;
    struct conn_info *ci = &p->list[p->n++];
    snprintf(ci->relay, sizeof(ci->relay), "%s", proxy);
    snprintf(ci->client, sizeof(ci->client), "%s", client[0] != '\0' ? client : "-");
    if (backend != NULL)
        endpoint_format(backend, ci->target, sizeof(ci->target));
    else
        snprintf(ci->target, sizeof(ci->target), "-");
    ci->age_ms = age_ms;
    ci->bytes_in = ci->bytes_out = UINT64_MAX; /* a session does not count them */
}

/* On p->w's thread. */
static void
snapshot(void *arg)
{
    struct part *p = arg;
    size_t max;

    p->list = malloc(CONNS_SHOWN_MAX * sizeof(*p->list));
    max = p->list != NULL ? CONNS_SHOWN_MAX : 0;
    p->total = worker_conns(p->w, p->list, max);
    p->n = p->total < max ? p->total : max;
    http_env_conns(p->job->http, p->index, http_conn, p);
    part_done(p);
}

int
conns_list(struct loop *home, struct worker *const *workers, struct http_env *http, size_t n,
           struct strbuf *out, control_done_fn done, void *ctx)
{
    struct job *j = malloc(sizeof(*j));
    struct part *parts = calloc(n, sizeof(*parts));

    if (j == NULL || parts == NULL) {
        free(j);
        free(parts);
        strbuf_printf(out, "conns: out of memory");
        return -1;
    }
    *j = (struct job){
        .home = home, .http = http, .n = n, .parts = parts, .out = out, .done = done, .ctx = ctx};
    atomic_init(&j->pending, n);
    for (size_t i = 0; i < n; i++) {
        parts[i] = (struct part){.job = j, .w = workers[i], .index = i};
        if (loop_post(workers[i]->loop, snapshot, &parts[i]) != 0)
            part_done(&parts[i]); /* counted as none */
    }
    return 1;
}
