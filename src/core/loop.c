/* loop.c - epoll loop, timer heap, deferred tasks and cross-thread posts. */
#include "core/loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 256

struct post {
    struct post *next;
    void (*fn)(void *arg);
    void *arg;
};

struct loop {
    int epfd;
    int wakefd; /* eventfd: loop_post() and loop_stop() from other threads */
    struct io wake_io;
    atomic_int stopping;
    uint64_t now;

    struct timer **heap; /* min-heap on due */
    size_t n_timers, cap_timers;

    struct list defer;
    struct list *defer_last; /* run_deferred(): the last task of the batch it runs */

    /* the batch of events being dispatched, so that io_stop() can withdraw
     * the events of an io that is about to be freed */
    struct epoll_event *batch;
    int batch_next, batch_n;

    pthread_mutex_t post_lock;
    struct post *post_head, *post_tail;
};

uint64_t
loop_clock_ms(void)
{
    return loop_clock_ns() / 1000000;
}

void
loop_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

uint64_t
loop_clock_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

/* Runs the posts queued now, one batch (those made meanwhile wait).
 * Returns whether there were any. */
static bool
run_posts(struct loop *loop)
{
    pthread_mutex_lock(&loop->post_lock);
    struct post *p = loop->post_head;
    loop->post_head = loop->post_tail = NULL;
    pthread_mutex_unlock(&loop->post_lock);
    if (p == NULL)
        return false;
    while (p != NULL) {
        struct post *next = p->next;
        p->fn(p->arg);
        free(p);
        p = next;
    }
    return true;
}

static void
wake_read(struct io *io, uint32_t events)
{
    struct loop *loop = io->data;
    uint64_t n;
    (void)events;

    /* one read zeroes the counter; a post after it raises a new edge */
    if (read(loop->wakefd, &n, sizeof(n)) < 0)
        n = 0;
    while (run_posts(loop))
        ;
}

struct loop *
loop_new(void)
{
    struct loop *loop = calloc(1, sizeof(*loop));

    if (loop == NULL)
        return NULL;
    loop->wakefd = -1;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0)
        goto fail;
    loop->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wakefd < 0)
        goto fail;
    pthread_mutex_init(&loop->post_lock, NULL);
    list_init(&loop->defer);
    loop->now = loop_clock_ms();
    if (io_start(loop, &loop->wake_io, loop->wakefd, EPOLLIN, wake_read, loop) != 0)
        goto fail;
    return loop;

fail:
    if (loop->epfd >= 0)
        close(loop->epfd);
    if (loop->wakefd >= 0)
        close(loop->wakefd);
    free(loop);
    return NULL;
}

void
loop_free(struct loop *loop)
{
    if (loop == NULL)
        return;
    struct post *p = loop->post_head;
    while (p != NULL) {
        struct post *next = p->next;
        free(p);
        p = next;
    }
    close(loop->wakefd);
    close(loop->epfd);
    pthread_mutex_destroy(&loop->post_lock);
    free(loop->heap);
    free(loop);
}

uint64_t
loop_now(const struct loop *loop)
{
    return loop->now;
}

int
io_start(struct loop *loop, struct io *io, int fd, uint32_t events, io_cb cb, void *data)
{
    struct epoll_event ev = {.events = events | EPOLLET, .data.ptr = io};

    io->fd = fd;
    io->events = events;
    io->cb = cb;
    io->data = data;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        io->cb = NULL;
        return -errno;
    }
    return 0;
}

int
io_update(struct loop *loop, struct io *io, uint32_t events)
{
    struct epoll_event ev = {.events = events | EPOLLET, .data.ptr = io};

    if (events == io->events)
        return 0;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) != 0)
        return -errno;
    io->events = events;
    return 0;
}

void
io_stop(struct loop *loop, struct io *io)
{
    if (io->cb == NULL)
        return;
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->cb = NULL;
    /* Events for io may still sit in the batch being dispatched: a callback
     * that stops and frees another object's io (a reload freeing a relay
     * whose listener is ready too) must not leave them pointing at freed
     * memory. The batch is at most LOOP_MAX_EVENTS long. */
    for (int i = loop->batch_next; i < loop->batch_n; i++)
        if (loop->batch[i].data.ptr == io)
            loop->batch[i].data.ptr = NULL;
}

/* ---- timers: a binary min-heap; t->slot is the index + 1. */

static void
heap_set(struct loop *loop, size_t i, struct timer *t)
{
    loop->heap[i] = t;
    t->slot = i + 1;
}

static void
heap_up(struct loop *loop, size_t i)
{
    struct timer *t = loop->heap[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (loop->heap[parent]->due <= t->due)
            break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, t);
}

static void
heap_down(struct loop *loop, size_t i)
{
    struct timer *t = loop->heap[i];

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= loop->n_timers)
            break;
        if (c + 1 < loop->n_timers && loop->heap[c + 1]->due < loop->heap[c]->due)
            c++;
        if (t->due <= loop->heap[c]->due)
            break;
        heap_set(loop, i, loop->heap[c]);
        i = c;
    }
    heap_set(loop, i, t);
}

void
timer_stop(struct loop *loop, struct timer *t)
{
    if (t->slot == 0)
        return;
    size_t i = t->slot - 1;
    struct timer *last = loop->heap[--loop->n_timers];
    t->slot = 0;
    if (last == t)
        return;
    heap_set(loop, i, last);
    heap_up(loop, i);
    heap_down(loop, last->slot - 1);
}

bool
timer_armed(const struct timer *t)
{
    return t->slot != 0;
}

void
timer_start(struct loop *loop, struct timer *t, uint64_t delay_ms, timer_cb cb, void *data)
{
    timer_stop(loop, t);
    if (loop->n_timers == loop->cap_timers) {
        size_t cap = loop->cap_timers ? loop->cap_timers * 2 : 64;
        struct timer **h = realloc(loop->heap, cap * sizeof(*h));
        if (h == NULL)
            abort(); /* a timer that silently never fires would be worse */
        loop->heap = h;
        loop->cap_timers = cap;
    }
    t->due = loop->now + delay_ms;
    t->cb = cb;
    t->data = data;
    loop->heap[loop->n_timers] = t;
    t->slot = ++loop->n_timers;
    heap_up(loop, loop->n_timers - 1);
}

static void
run_timers(struct loop *loop)
{
    while (loop->n_timers > 0 && loop->heap[0]->due <= loop->now) {
        struct timer *t = loop->heap[0];
        timer_stop(loop, t);
        t->cb(t);
    }
}

/* ---- deferred tasks and posts */

void
loop_defer(struct loop *loop, struct task *t, task_cb cb, void *data)
{
    if (task_queued(t))
        return;
    t->cb = cb;
    t->data = data;
    list_add_tail(&loop->defer, &t->link);
}

void
loop_cancel(struct loop *loop, struct task *t)
{
    if (!task_queued(t))
        return;
    /* the tasks before the batch's last one are all in the batch */
    if (&t->link == loop->defer_last)
        loop->defer_last = t->link.prev != &loop->defer ? t->link.prev : NULL;
    list_del(&t->link);
}

/* Runs only the tasks queued before this call: a task that requeues itself
 * (work over budget) waits for the next iteration, after fresh events. A
 * task may cancel others, of this batch or not. */
static void
run_deferred(struct loop *loop)
{
    loop->defer_last = list_last(&loop->defer);
    while (loop->defer_last != NULL) {
        struct list *first = loop->defer.next;
        if (first == loop->defer_last)
            loop->defer_last = NULL;
        list_del(first);
        struct task *t = list_entry(first, struct task, link);
        t->cb(t);
    }
}

int
loop_post(struct loop *loop, void (*fn)(void *arg), void *arg)
{
    struct post *p = malloc(sizeof(*p));
    uint64_t one = 1;

    if (p == NULL)
        return -ENOMEM;
    p->next = NULL;
    p->fn = fn;
    p->arg = arg;
    pthread_mutex_lock(&loop->post_lock);
    if (loop->post_tail != NULL)
        loop->post_tail->next = p;
    else
        loop->post_head = p;
    loop->post_tail = p;
    pthread_mutex_unlock(&loop->post_lock);
    ssize_t w = write(loop->wakefd, &one, sizeof(one));
    (void)w; /* EAGAIN: the counter is already non-zero, a wakeup is pending */
    return 0;
}

void
loop_stop(struct loop *loop)
{
    uint64_t one = 1;

    atomic_store(&loop->stopping, 1);
    ssize_t w = write(loop->wakefd, &one, sizeof(one));
    (void)w;
}

int
loop_run(struct loop *loop)
{
    struct epoll_event events[LOOP_MAX_EVENTS];

    /* at least one turn, so that a stopped loop still runs what is queued */
    do {
        int timeout = -1;
        if (!list_empty(&loop->defer)) {
            timeout = 0;
        } else if (loop->n_timers > 0) {
            uint64_t due = loop->heap[0]->due;
            timeout = due <= loop->now ? 0 : (int)(due - loop->now);
        }
        int n = epoll_wait(loop->epfd, events, LOOP_MAX_EVENTS, timeout);
        if (n < 0 && errno != EINTR)
            return -errno;
        loop->now = loop_clock_ms();
        loop->batch = events;
        loop->batch_n = n;
        for (int i = 0; i < n; i++) {
            struct io *io = events[i].data.ptr;
            loop->batch_next = i + 1;
            if (io != NULL) /* NULL: withdrawn by io_stop() */
                io->cb(io, events[i].events);
        }
        loop->batch_n = loop->batch_next = 0;
        run_timers(loop);
        run_deferred(loop);
    } while (!atomic_load(&loop->stopping));
    /* a post made before the stop while the last turn ran still runs, with
     * the tasks it defers (a worker's shutdown posts its closes, then stops
     * it); posts made while these run wait for the next loop_run() */
    if (run_posts(loop))
        run_deferred(loop);
    atomic_store(&loop->stopping, 0);
    return 0;
}
