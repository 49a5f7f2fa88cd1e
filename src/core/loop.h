/* loop.h - a small epoll event loop with timers, in the spirit of Redis ae.c.
 *
 * One loop per thread. io watchers are edge-triggered: a callback must
 * consume until EAGAIN or remember that more is pending (see loop_defer()).
 * Everything here is called from the loop's own thread, except loop_post()
 * and loop_stop(), which any thread may call. */
#ifndef AIRLOCK_CORE_LOOP_H
#define AIRLOCK_CORE_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/list.h"

struct loop;
struct io;
struct timer;
struct task;

typedef void (*io_cb)(struct io *io, uint32_t events);
typedef void (*timer_cb)(struct timer *t);
typedef void (*task_cb)(struct task *t);

struct io {
    int fd;
    uint32_t events;
    io_cb cb;
    void *data;
};

struct timer {
    uint64_t due; /* loop_now() value at which it fires */
    size_t slot;  /* heap position + 1; 0 when not armed */
    timer_cb cb;
    void *data;
};

/* A deferred call on the loop's own thread; embed it in the object (zeroed:
 * not queued). */
struct task {
    struct list link; /* on the loop's deferred list while queued */
    task_cb cb;
    void *data;
};

/* Returns a new loop, or NULL with errno set. Free with loop_free(). */
struct loop *loop_new(void);
void loop_free(struct loop *loop);

/* Runs until loop_stop(), at least one turn (so a loop stopped beforehand
 * still runs its posts and deferred tasks once); a post made before the
 * stop runs before it returns. Returns 0, or -errno. */
int loop_run(struct loop *loop);

/* Makes loop_run() return after the current iteration and the posts made
 * before this call; thread-safe. */
void loop_stop(struct loop *loop);

/* Milliseconds on CLOCK_MONOTONIC, cached once per iteration. */
uint64_t loop_now(const struct loop *loop);

/* Returns the monotonic clock in ms now (any thread; no loop needed). */
uint64_t loop_clock_ms(void);

/* Sleeps ms, blocking: for the work done off the loop (a thread, a forked
 * child: nanosleep() only, restarted after a signal). */
void loop_sleep_ms(long ms);

/* Returns the monotonic clock in ns now (any thread; vDSO, no syscall):
 * for durations finer than loop_now(), such as the metrics' histograms. */
uint64_t loop_clock_ns(void);

/* Watches fd for events (EPOLLIN, EPOLLOUT, ...; EPOLLET is added). The
 * callback receives io with io->data = data. Returns 0 or -errno. */
int io_start(struct loop *loop, struct io *io, int fd, uint32_t events, io_cb cb, void *data);

/* Watches the started io for events instead (edge-triggered as always; an
 * event that is due already is reported at the next turn). Does nothing
 * when they are the ones watched. Returns 0 or -errno. */
int io_update(struct loop *loop, struct io *io, uint32_t events);

/* Stops watching io->fd (before it is closed); harmless when not started.
 * Events for io still pending in the batch being dispatched are dropped, so
 * io may be freed as soon as this returns, even from another io's callback. */
void io_stop(struct loop *loop, struct io *io);

/* Arms t to call cb after delay_ms (re-arming moves it). */
void timer_start(struct loop *loop, struct timer *t, uint64_t delay_ms, timer_cb cb, void *data);

/* Disarms t; harmless when not armed. */
void timer_stop(struct loop *loop, struct timer *t);

/* Returns true while t is armed (started, not yet fired or stopped). */
bool timer_armed(const struct timer *t);

/* Queues t to run on this loop after the current batch of events: the place
 * for work that must not run inside a callback (freeing the caller) and for
 * continuing work that exceeded its budget. Queuing a queued task is a no-op. */
void loop_defer(struct loop *loop, struct task *t, task_cb cb, void *data);

/* Unqueues t if it is queued: its callback will not run, and the object
 * that embeds it may be freed. Harmless when t is not queued. */
void loop_cancel(struct loop *loop, struct task *t);

/* Returns true while t is queued (deferred, its callback not yet run). */
static inline bool
task_queued(const struct task *t)
{
    return list_linked(&t->link);
}

/* Runs fn(arg) on loop's thread soon; safe from any thread. Returns 0, or
 * -ENOMEM (fn is then never called). */
int loop_post(struct loop *loop, void (*fn)(void *arg), void *arg);

#endif
