/* spawn.c - see spawn.h. */
#include "pool/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define READ_SLICE 16 /* reads of READ_CHUNK per wakeup, then the loop moves on */
#define READ_CHUNK 4096

static void out_drain(struct proc *p);

static void
out_close(struct proc *p)
{
    if (p->out_fd < 0)
        return;
    struct line l;
    if (line_flush(&p->ls, &l) == PARSE_OK && p->on_line != NULL) {
        memcpy(p->linebuf, l.data, l.len);
        p->linebuf[l.len] = '\0';
        p->on_line(p, (const char *)p->linebuf, l.cut);
    }
    io_stop(p->loop, &p->out_io);
    close(p->out_fd);
    p->out_fd = -1;
}

/* Hands complete lines of in[0..len) to on_line. The line buffer is the
 * splitter's own storage, so a line is copied out before the NUL goes in. */
static void
out_lines(struct proc *p, const uint8_t *in, size_t len)
{
    char line[PROC_LINE_MAX + 1];

    while (len > 0) {
        struct line l;
        size_t used = 0;
        if (line_next(&p->ls, in, len, &used, &l) == PARSE_OK && p->on_line != NULL) {
            memcpy(line, l.data, l.len);
            line[l.len] = '\0';
            p->on_line(p, line, l.cut);
        }
        in += used;
        len -= used;
        if (p->out_fd < 0) /* the callback closed p */
            return;
    }
}

static void
out_more(struct task *t)
{
    out_drain(t->data);
}

static void
out_drain(struct proc *p)
{
    uint8_t buf[READ_CHUNK];

    for (int i = 0; i < READ_SLICE && p->out_fd >= 0; i++) {
        ssize_t n = read(p->out_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            out_close(p);
            return;
        }
        out_lines(p, buf, (size_t)n);
    }
    if (p->out_fd >= 0) /* more may be waiting: edge-triggered, come back */
        loop_defer(p->loop, &p->more, out_more, p);
}

static void
out_event(struct io *io, uint32_t events)
{
    (void)events;
    out_drain(io->data);
}

static void
pid_event(struct io *io, uint32_t events)
{
    struct proc *p = io->data;
    int status = 0;
    (void)events;

    if (waitpid(p->pid, &status, WNOHANG) <= 0)
        return;
    /* leftovers of the group (children of the instance) go with it */
    kill(-p->pid, SIGKILL);
    p->state = PROC_EXITED;
    io_stop(p->loop, &p->pid_io);
    close(p->pidfd);
    p->pidfd = -1;
    /* what it printed before exiting is read first (the group is dead, so
     * the pipe ends soon; a slice at most) */
    if (p->out_fd >= 0) {
        out_drain(p);
        out_close(p);
    }
    p->on_exit(p, status);
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void
child(char *const argv[], const struct proc_opts *o, int devnull, int out)
{
    sigset_t none;
    char msg[256];

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    if (setsid() < 0 || dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
        _exit(127);
    syscall(SYS_close_range, 3U, ~0U, 0U);
    if (o->run_as && (setgroups(1, &o->gid) != 0 || setgid(o->gid) != 0 || setuid(o->uid) != 0)) {
        int n = snprintf(msg, sizeof(msg), "airlock: cannot switch user: %s\n", strerror(errno));
        (void)!write(2, msg, (size_t)n);
        _exit(127);
    }
    if (chdir(o->cwd) != 0) {
        int n = snprintf(msg, sizeof(msg), "airlock: chdir %s: %s\n", o->cwd, strerror(errno));
        (void)!write(2, msg, (size_t)n);
        _exit(127);
    }
    execvp(argv[0], argv);
    int n = snprintf(msg, sizeof(msg), "airlock: exec %s: %s\n", argv[0], strerror(errno));
    (void)!write(2, msg, (size_t)n);
    _exit(127);
}

int
proc_spawn(struct proc *p, struct loop *loop, char *const argv[], const struct proc_opts *o,
           proc_line_cb on_line, proc_exit_cb on_exit, void *data)
{
    int pipefd[2] = {-1, -1}, devnull = -1, rc;

    struct task more = p->more; /* may still be queued from an earlier run */

    memset(p, 0, sizeof(*p));
    p->more = more;
    p->pidfd = p->out_fd = -1;
    p->loop = loop;
    p->on_line = on_line;
    p->on_exit = on_exit;
    p->data = data;
    line_split_init(&p->ls, p->linebuf, PROC_LINE_MAX);
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return -errno;
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0 || fcntl(pipefd[0], F_SETFL, O_NONBLOCK) != 0) {
        rc = -errno;
        goto fail;
    }
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        goto fail;
    }
    if (pid == 0)
        child(argv, o, devnull, pipefd[1]);
    close(pipefd[1]);
    close(devnull);
    p->pid = pid;
    p->out_fd = pipefd[0];
    p->state = PROC_RUNNING;
    p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (p->pidfd < 0 || (rc = io_start(loop, &p->pid_io, p->pidfd, EPOLLIN, pid_event, p)) != 0 ||
        (rc = io_start(loop, &p->out_io, p->out_fd, EPOLLIN, out_event, p)) != 0) {
        rc = p->pidfd < 0 ? -errno : rc;
        proc_close(p);
        return rc;
    }
    return 0;

fail:
    close(pipefd[0]);
    close(pipefd[1]);
    if (devnull >= 0)
        close(devnull);
    return rc;
}

void
proc_signal(struct proc *p, int sig)
{
    if (p->state == PROC_RUNNING)
        kill(-p->pid, sig);
}

void
proc_close(struct proc *p)
{
    if (p->state == PROC_RUNNING) {
        kill(-p->pid, SIGKILL);
        kill(p->pid, SIGKILL); /* in case it never got its own group */
        while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        p->state = PROC_EXITED;
    }
    if (p->pidfd >= 0) {
        io_stop(p->loop, &p->pid_io);
        close(p->pidfd);
        p->pidfd = -1;
    }
    p->on_line = NULL;
    out_close(p);
}
