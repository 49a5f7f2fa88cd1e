/* acceptor.c - accepting from a listening socket; see acceptor.h. */
#include "net/acceptor.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

#include "core/log.h"

static void accept_some(struct acceptor *a);

static void
accept_event(struct io *io, uint32_t events)
{
    struct acceptor *a = io->data;
    (void)events;

    if (!timer_armed(&a->pause)) /* paused: the timer retries, new clients wait queued */
        accept_some(a);
}

static void
accept_resume(struct timer *t)
{
    accept_some(t->data);
}

static void
accept_more(struct task *t)
{
    accept_some(t->data);
}

static bool
out_of_resources(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOMEM || err == ENOBUFS;
}

static void
accept_some(struct acceptor *a)
{
    for (int i = 0; i < ACCEPTOR_BUDGET; i++) {
        struct sockaddr_storage peer = {0};
        socklen_t len = sizeof(peer);

        if (a->loop == NULL) /* stopped by the last admit */
            return;
        int fd = accept4(a->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        int err = fd < 0 ? errno : 0;
        if (out_of_resources(err)) {
            if (a->limit != NULL && a->limit(a, -err)) { /* one is being freed: no pause */
                timer_start(a->loop, &a->pause, ACCEPTOR_RETRY_MS, accept_resume, a);
                return;
            }
            if (!a->paused)
                log_warnx("%s accept paused: %s (a limit of this process or host); retrying "
                          "every %d ms",
                          a->what, strerror(err), ACCEPTOR_PAUSE_MS);
            a->paused = true;
            timer_start(a->loop, &a->pause, ACCEPTOR_PAUSE_MS, accept_resume, a);
            return;
        }
        if (a->paused) {
            log_info("%s accept resumed", a->what);
            a->paused = false;
        }
        if (err == EAGAIN || err == EINTR)
            return;
        if (err != 0)
            continue; /* ECONNABORTED and the like concern one client only */
        a->admit(a, fd, (struct sockaddr *)&peer, len);
    }
    loop_defer(a->loop, &a->more, accept_more, a);
}

int
acceptor_start(struct acceptor *a, struct loop *loop, int fd, const char *what, acceptor_cb admit,
               acceptor_limit_cb limit, void *data)
{
    *a = (struct acceptor){.fd = fd, .loop = loop, .admit = admit, .limit = limit, .data = data};
    snprintf(a->what, sizeof(a->what), "%s", what);
    int rc = io_start(loop, &a->io, fd, EPOLLIN, accept_event, a);
    if (rc != 0) {
        a->loop = NULL;
        return rc;
    }
    accept_some(a);
    return 0;
}

void
acceptor_stop(struct acceptor *a)
{
    if (a->loop == NULL)
        return;
    io_stop(a->loop, &a->io);
    timer_stop(a->loop, &a->pause);
    loop_cancel(a->loop, &a->more);
    a->loop = NULL;
}
