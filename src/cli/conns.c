/* conns.c - see conns.h. */
#include "cli/conns.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct job;

/* One worker's share: filled on its thread, read on home's after. */
struct part {
    struct job *job;
    struct worker *w;
    struct conn_info *list; /* at most CONNS_SHOWN_MAX; NULL when none could be had */
    size_t total;           /* the worker's open connections, listed or not */
};

struct job {
    struct loop *home;
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
    for (size_t i = 0; i < shown; i++)
        strbuf_printf(out, "%-*s  %-*s  %-*s  %7llus  %12llu  %12llu\n", (int)w[0], list[i].relay,
                      (int)w[1], list[i].client, (int)w[2], list[i].target,
                      (unsigned long long)(list[i].age_ms / 1000),
                      (unsigned long long)list[i].bytes_in, (unsigned long long)list[i].bytes_out);
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
        size_t have = p->list == NULL ? 0 : p->total < CONNS_SHOWN_MAX ? p->total : CONNS_SHOWN_MAX;
        total += p->total;
        for (size_t k = 0; all != NULL && k < have && shown < CONNS_SHOWN_MAX; k++)
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

/* On p->w's thread. */
static void
snapshot(void *arg)
{
    struct part *p = arg;

    p->list = malloc(CONNS_SHOWN_MAX * sizeof(*p->list));
    p->total = worker_conns(p->w, p->list, p->list != NULL ? CONNS_SHOWN_MAX : 0);
    part_done(p);
}

int
conns_list(struct loop *home, struct worker *const *workers, size_t n, struct strbuf *out,
           control_done_fn done, void *ctx)
{
    struct job *j = calloc(1, sizeof(*j));

    if (j == NULL || (j->parts = calloc(n, sizeof(*j->parts))) == NULL) {
        free(j);
        strbuf_printf(out, "conns: out of memory");
        return -1;
    }
    *j =
        (struct job){.home = home, .n = n, .parts = j->parts, .out = out, .done = done, .ctx = ctx};
    atomic_init(&j->pending, n);
    for (size_t i = 0; i < n; i++) {
        j->parts[i] = (struct part){.job = j, .w = workers[i]};
        if (loop_post(workers[i]->loop, snapshot, &j->parts[i]) != 0)
            part_done(&j->parts[i]); /* counted as none */
    }
    return 1;
}
