/* test_loop.c - unit tests for the event loop's guarantees about objects
 * freed inside callbacks: an io stopped (and freed) by another callback of
 * the same epoll batch gets no event; a cancelled task does not run, even
 * when it was the last of the batch being run; tasks queued while a batch
 * runs wait for the next turn; an io updated not to watch for reading gets
 * no event, and watched again, gets one for what came meanwhile; a post
 * made while the loop is busy, just before it is stopped, still runs. The
 * test build has ASan: a callback on freed memory fails the test. */
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/loop.h"

/* An object with a watcher, which frees its peer when its event comes. */
struct watched {
    struct io io;
    struct watched **peer; /* where the peer's pointer lives; NULL once freed */
    int *calls;
};

static struct loop *test_loop;

static void frees_peer(struct io *io, uint32_t events);

static struct watched *
watched_new(int *calls)
{
    struct watched *w = calloc(1, sizeof(*w));
    int fd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC); /* readable at once */

    assert_non_null(w);
    assert_true(fd >= 0);
    w->calls = calls;
    assert_int_equal(io_start(test_loop, &w->io, fd, EPOLLIN, frees_peer, w), 0);
    return w;
}

static void
watched_free(struct watched *w)
{
    io_stop(test_loop, &w->io);
    close(w->io.fd);
    free(w);
}

static void
frees_peer(struct io *io, uint32_t events)
{
    struct watched *w = io->data;
    (void)events;

    (*w->calls)++;
    if (*w->peer != NULL) {
        watched_free(*w->peer);
        *w->peer = NULL;
    }
}

/* Two ready watchers in one batch, each freeing the other: whichever runs
 * first frees the other, whose event must then not be dispatched. */
static void
test_io_freed_in_batch(void **state)
{
    struct watched *a, *b;
    int calls = 0;
    (void)state;

    test_loop = loop_new();
    assert_non_null(test_loop);
    a = watched_new(&calls);
    b = watched_new(&calls);
    a->peer = &b;
    b->peer = &a;
    loop_stop(test_loop); /* one turn */
    assert_int_equal(loop_run(test_loop), 0);
    assert_int_equal(calls, 1);
    assert_true((a == NULL) != (b == NULL));
    watched_free(a != NULL ? a : b);
    loop_free(test_loop);
}

static void
counts(struct io *io, uint32_t events)
{
    (void)events;
    (*(int *)io->data)++;
}

/* What the relay's pumps rely on (conn.c side_watch): not watched for
 * reading, arrivals wake nobody; watched again, the data already there is
 * reported at the next turn. */
static void
test_io_update(void **state)
{
    struct io io;
    int calls = 0, fd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
    uint64_t one = 1;
    (void)state;

    test_loop = loop_new();
    assert_non_null(test_loop);
    assert_true(fd >= 0);
    assert_int_equal(io_start(test_loop, &io, fd, EPOLLIN, counts, &calls), 0);
    loop_stop(test_loop);
    assert_int_equal(loop_run(test_loop), 0);
    assert_int_equal(calls, 1);
    assert_int_equal(io_update(test_loop, &io, EPOLLRDHUP), 0);
    assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one)); /* a new edge */
    loop_stop(test_loop);
    assert_int_equal(loop_run(test_loop), 0);
    assert_int_equal(calls, 1);
    assert_int_equal(io_update(test_loop, &io, EPOLLIN), 0);
    assert_int_equal(io_update(test_loop, &io, EPOLLIN), 0); /* unchanged: nothing to do */
    loop_stop(test_loop);
    assert_int_equal(loop_run(test_loop), 0);
    assert_int_equal(calls, 2);
    io_stop(test_loop, &io);
    close(fd);
    loop_free(test_loop);
}

/* ---- tasks */

#define MAX_RUNS 8

struct order {
    char ran[MAX_RUNS];
    size_t n;
};

struct step {
    struct task task;
    char name;
    struct order *order;
    struct task *cancel; /* cancelled when this step runs */
    struct task *queue;  /* queued when this step runs */
};

static void
step_run(struct task *t)
{
    struct step *s = t->data;

    assert_true(s->order->n < MAX_RUNS);
    s->order->ran[s->order->n++] = s->name;
    if (s->cancel != NULL)
        loop_cancel(test_loop, s->cancel);
    if (s->queue != NULL)
        loop_defer(test_loop, s->queue, step_run, s->queue->data);
}

static void
turn(void)
{
    loop_stop(test_loop);
    assert_int_equal(loop_run(test_loop), 0);
}

/* A cancels B (queued behind it in the same batch): B never runs. */
static void
test_cancel_in_batch(void **state)
{
    struct order o = {0};
    struct step a = {.name = 'a', .order = &o}, b = {.name = 'b', .order = &o},
                c = {.name = 'c', .order = &o};
    (void)state;

    test_loop = loop_new();
    assert_non_null(test_loop);
    a.cancel = &b.task;
    loop_defer(test_loop, &a.task, step_run, &a);
    loop_defer(test_loop, &b.task, step_run, &b);
    loop_defer(test_loop, &c.task, step_run, &c);
    turn();
    assert_int_equal(o.n, 2);
    assert_memory_equal(o.ran, "ac", 2);
    assert_false(task_queued(&b.task));
    loop_free(test_loop);
}

/* A cancels B, the last task of the batch, and queues D: D waits for the
 * next turn (the batch ends where B was), and B never runs. */
static void
test_cancel_batch_end(void **state)
{
    struct order o = {0};
    struct step a = {.name = 'a', .order = &o}, b = {.name = 'b', .order = &o},
                d = {.name = 'd', .order = &o};
    (void)state;

    test_loop = loop_new();
    assert_non_null(test_loop);
    a.cancel = &b.task;
    a.queue = &d.task;
    d.task.data = &d;
    loop_defer(test_loop, &a.task, step_run, &a);
    loop_defer(test_loop, &b.task, step_run, &b);
    turn();
    assert_int_equal(o.n, 1);
    assert_int_equal(o.ran[0], 'a');
    assert_true(task_queued(&d.task));
    turn();
    assert_int_equal(o.n, 2);
    assert_int_equal(o.ran[1], 'd');
    loop_free(test_loop);
}

/* Cancelling an unqueued task, or one twice, is harmless; a cancelled task
 * can be queued again. */
static void
test_cancel_idempotent(void **state)
{
    struct order o = {0};
    struct step a = {.name = 'a', .order = &o};
    (void)state;

    test_loop = loop_new();
    assert_non_null(test_loop);
    loop_cancel(test_loop, &a.task);
    loop_defer(test_loop, &a.task, step_run, &a);
    loop_cancel(test_loop, &a.task);
    loop_cancel(test_loop, &a.task);
    turn();
    assert_int_equal(o.n, 0);
    loop_defer(test_loop, &a.task, step_run, &a);
    turn();
    assert_int_equal(o.n, 1);
    loop_free(test_loop);
}

/* ---- a post that comes while the loop is busy, then the stop */

struct busy {
    struct io io;
    sem_t inside, go;
    int posted;
};

static void
busy_event(struct io *io, uint32_t events)
{
    struct busy *b = io->data;
    uint64_t n;
    (void)events;

    assert_int_equal(read(io->fd, &n, sizeof(n)), sizeof(n));
    sem_post(&b->inside);
    sem_wait(&b->go); /* the post and the stop come now */
}

static void
posted(void *arg)
{
    ((struct busy *)arg)->posted++;
}

static void *
run_thread(void *arg)
{
    (void)arg;
    assert_int_equal(loop_run(test_loop), 0);
    return NULL;
}

/* The shutdown of a worker posts its closes, then stops its loop: the
 * posts run even when they came in the middle of a turn. */
static void
test_post_before_stop(void **state)
{
    struct busy b = {0};
    pthread_t th;
    (void)state;

    test_loop = loop_new();
    assert_non_null(test_loop);
    sem_init(&b.inside, 0, 0);
    sem_init(&b.go, 0, 0);
    int fd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(io_start(test_loop, &b.io, fd, EPOLLIN, busy_event, &b), 0);
    assert_int_equal(pthread_create(&th, NULL, run_thread, NULL), 0);
    sem_wait(&b.inside);
    assert_int_equal(loop_post(test_loop, posted, &b), 0);
    loop_stop(test_loop);
    sem_post(&b.go);
    pthread_join(th, NULL);
    assert_int_equal(b.posted, 1);
    io_stop(test_loop, &b.io);
    close(fd);
    loop_free(test_loop);
    sem_destroy(&b.inside);
    sem_destroy(&b.go);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_io_freed_in_batch), cmocka_unit_test(test_io_update),
        cmocka_unit_test(test_cancel_in_batch),   cmocka_unit_test(test_cancel_batch_end),
        cmocka_unit_test(test_cancel_idempotent), cmocka_unit_test(test_post_before_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
