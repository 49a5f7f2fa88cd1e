/* spawn.c - see spawn.h. */
#include "pool/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/procstatus.h"

#define READ_SLICE 16 /* reads of PROC_READ_CHUNK per wakeup, then the loop moves on */
/* lines per wakeup: each is logged and matched, so a flood of short lines
 * (a chunk of newlines is 4096 of them) held the loop for as long as the
 * bytes allowed */
#define LINE_SLICE 64
#define CHILD_STACK (64 * 1024) /* a child's until its exec; execvp's path search is on it */
/* Code that runs in a child sharing airlock's memory: not instrumented by
 * ASan, whose shadow of that memory is airlock's (poisoning the child's
 * frames, never returned from, would corrupt it). */
#define IN_CHILD __attribute__((no_sanitize("address")))

static void out_drain(struct proc *p);

static rlim_t child_nofile; /* proc_set_nofile() */

void
proc_set_nofile(rlim_t soft)
{
    child_nofile = soft;
}

static void
out_close(struct proc *p)
{
    if (p->out_fd < 0)
        return;
    struct line l;
    /* the partial line goes on in what was not handed out: not a line */
    if (p->chunk_off == p->chunk_len && line_flush(&p->ls, &l) == PARSE_OK && p->on_line != NULL) {
        memcpy(p->linebuf, l.data, l.len);
        p->linebuf[l.len] = '\0';
        p->on_line(p, (const char *)p->linebuf, l.cut);
    }
    p->chunk_off = p->chunk_len = 0;
    io_stop(p->loop, &p->out_io);
    close(p->out_fd);
    p->out_fd = -1;
}

/* Hands the complete lines of p's chunk to on_line, at most *budget of
 * them (counted down). The line buffer is the splitter's own storage, so a
 * line is copied out before the NUL goes in. */
static void
out_lines(struct proc *p, int *budget)
{
    char line[PROC_LINE_MAX + 1];

    while (*budget > 0 && p->chunk_off < p->chunk_len) {
        struct line l;
        size_t used = 0;
        enum parse_result r =
            line_next(&p->ls, p->chunk + p->chunk_off, p->chunk_len - p->chunk_off, &used, &l);
        p->chunk_off += used;
        if (r != PARSE_OK)
            continue;
        (*budget)--;
        if (p->on_line == NULL)
            continue;
        memcpy(line, l.data, l.len);
        line[l.len] = '\0';
        p->on_line(p, line, l.cut);
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
    int lines = LINE_SLICE;

    for (int i = 0; i < READ_SLICE && lines > 0 && p->out_fd >= 0;) {
        if (p->chunk_off == p->chunk_len) {
            ssize_t n = read(p->out_fd, p->chunk, sizeof(p->chunk));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EAGAIN)
                return;
            if (n <= 0) {
                out_close(p);
                return;
            }
            p->chunk_off = 0;
            p->chunk_len = (size_t)n;
            i++;
        }
        out_lines(p, &lines);
    }
    if (p->out_fd >= 0) /* more may be waiting: edge-triggered, come back */
        loop_defer(p->loop, &p->more, out_more, p);
}

bool
proc_output_pending(const struct proc *p)
{
    int unread = 0;

    if (p->out_fd < 0)
        return false;
    return p->chunk_off < p->chunk_len || (ioctl(p->out_fd, FIONREAD, &unread) == 0 && unread > 0);
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

/* The child's message on its output pipe (async-signal-safe: the errno's
 * text untranslated, strerror() may lock or allocate). */
IN_CHILD static void
child_say(const char *what, const char *arg, int err)
{
    const char *text = strerrordesc_np(err);
    char msg[320];
    int n = snprintf(msg, sizeof(msg), "airlock: %s%s%s: %s\n", what, arg[0] ? " " : "", arg,
                     text != NULL ? text : "unknown error");
    (void)!write(1, msg, (size_t)n);
}

/* Switches the child to gid and uid, no supplementary groups besides gid.
 * Raw syscalls: a child sharing airlock's memory (CLONE_VM) sees airlock's
 * list of threads, which libc's wrappers would signal to switch too. */
IN_CHILD static int
child_become(uid_t uid, gid_t gid)
{
    if (syscall(SYS_setgroups, 1, &gid) != 0 || syscall(SYS_setresgid, gid, gid, gid) != 0 ||
        syscall(SYS_setresuid, uid, uid, uid) != 0)
        return -errno;
    return 0;
}

/* Counts the live processes of uid in /proc but the caller: those whose
 * real or saved uid it is (what a kill() from uid reaches), zombie leaders
 * whose threads run on included (procstatus.h), and one whose status
 * could not be read whole, to be safe; -errno when /proc cannot be read.
 * Raw syscalls only (runs in a forked child). */
static int
count_uid(uid_t uid)
{
    _Alignas(8) char buf[4096];  /* linux_dirent64 records, 8-byte aligned */
    char status[4096], path[64]; /* a status is some 1.5 KiB */
    int fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
    long got;
    pid_t self = getpid();

    if (fd < 0)
        return -errno;
    while ((got = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
        for (long off = 0; off < got;) {
            const struct {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *d = (const void *)(buf + off);
            off += d->reclen;
            char *end;
            long pid = strtol(d->name, &end, 10);
            if (d->name[0] < '1' || d->name[0] > '9' || *end != '\0' || pid == self)
                continue;
            snprintf(path, sizeof(path), "%ld/status", pid);
            int sfd = openat(fd, path, O_RDONLY | O_CLOEXEC);
            if (sfd < 0)
                continue; /* gone meanwhile */
            ssize_t len = read(sfd, status, sizeof(status));
            close(sfd);
            struct procstatus st;
            enum parse_result r =
                len > 0 ? procstatus_parse(status, (size_t)len, &st, NULL) : PARSE_INVALID;
            n += r != PARSE_INVALID && procstatus_has_uid(&st, uid) &&
                 (r == PARSE_AGAIN || procstatus_alive(&st));
        }
    }
    int rc = got < 0 ? -errno : n;
    close(fd);
    return rc;
}

/* Keys outlive the processes that made them: the uid's user, user-session
 * and persistent keyrings are kept by the kernel for its next processes,
 * so the next user of the uid would find them. Clears them, as the uid.
 * Returns 0 when they are empty, or -errno (a keyring the uid made
 * unwritable or unreadable to itself cannot be cleared). */
static int
clear_keyrings(void)
{
    long rings[] = {KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING, -1};
    size_t n = 2;

    /* linked into the reaper's own process keyring, which dies with it */
    long persistent = syscall(SYS_keyctl, KEYCTL_GET_PERSISTENT, -1L, KEY_SPEC_PROCESS_KEYRING);
    if (persistent >= 0)
        rings[n++] = persistent;
    else if (errno == ENOSYS || errno == EPERM)
        return 0; /* no keys here (a kernel without them, a seccomp filter): none were made */
    else if (errno != EOPNOTSUPP) /* a kernel without persistent keyrings */
        return -errno;
    for (size_t i = 0; i < n; i++) {
        if (syscall(SYS_keyctl, KEYCTL_CLEAR, rings[i]) != 0)
            return errno == ENOSYS || errno == EPERM ? 0 : -errno;
        long left = syscall(SYS_keyctl, KEYCTL_READ, rings[i], NULL, 0L);
        if (left != 0)
            return left < 0 ? -errno : -ENOTEMPTY;
    }
    return 0;
}

/* SysV IPC objects outlive their processes too, and root may remove
 * another uid's only with CAP_SYS_ADMIN (which dist/airlock.service does
 * not give): their owner or creator may, so the reaper does, as the uid.
 * Each table of /proc/sysvipc: the columns of an object's owner and
 * creator (its id is column 1), and how to remove one. */
static int
rmid_shm(int id)
{
    return shmctl(id, IPC_RMID, NULL);
}

static int
rmid_sem(int id)
{
    return semctl(id, 0, IPC_RMID);
}

static int
rmid_msg(int id)
{
    return msgctl(id, IPC_RMID, NULL);
}

static const struct sysv_table {
    const char *path;
    int uid_col, cuid_col;
    int (*rmid)(int id);
} sysv_tables[] = {
    {"/proc/sysvipc/shm", 7, 9, rmid_shm},
    {"/proc/sysvipc/sem", 4, 6, rmid_sem},
    {"/proc/sysvipc/msg", 7, 9, rmid_msg},
};

#define SYSV_COLS 10 /* enough for the creator's column of every table */

/* Reads the first n columns of the row in [p, end) into col: decimal
 * numbers apart by spaces (a key's sign is dropped: it is not looked at).
 * Returns how many. */
static int
sysv_columns(const char *p, const char *end, unsigned long long *col, int n)
{
    int i = 0;

    for (; i < n; i++) {
        while (p < end && (*p == ' ' || *p == '-'))
            p++;
        if (p == end || *p < '0' || *p > '9')
            break;
        for (col[i] = 0; p < end && *p >= '0' && *p <= '9'; p++)
            col[i] = col[i] * 10 + (unsigned)(*p - '0');
    }
    return i;
}

/* Removes the object of row [p, end) of t if uid owns or created it.
 * Returns 0 (also when another removed it meanwhile) or -errno. */
static int
sysv_row(const struct sysv_table *t, const char *p, const char *end, uid_t uid)
{
    unsigned long long col[SYSV_COLS];

    if (sysv_columns(p, end, col, SYSV_COLS) <= t->cuid_col ||
        (col[t->uid_col] != uid && col[t->cuid_col] != uid))
        return 0;
    if (t->rmid((int)col[1]) != 0 && errno != EINVAL && errno != EIDRM)
        return -errno;
    return 0;
}

/* Removes the objects of table t that uid owns or created: open() and
 * read() into a buffer on the stack, a row cut by a read completed by the
 * next (the reaper runs in a fork of a threaded process: no stdio, no
 * malloc). The kernel lists the objects by their index, so one removed
 * between two reads moves no other. Returns 0 or -errno (the first). */
static int
sysv_remove(const struct sysv_table *t, uid_t uid)
{
    char buf[4096];
    size_t have = 0;
    bool header = true;
    int fd = open(t->path, O_RDONLY | O_CLOEXEC), rc = 0;

    if (fd < 0)
        return errno == ENOENT ? 0 : -errno; /* a kernel without SysV IPC: none made */
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof(buf) - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : rc;
            break;
        }
        have += (size_t)n;
        char *row = buf, *nl;
        while ((nl = memchr(row, '\n', have - (size_t)(row - buf))) != NULL) {
            int r = header ? 0 : sysv_row(t, row, nl, uid);
            rc = rc == 0 ? r : rc;
            header = false;
            row = nl + 1;
        }
        have -= (size_t)(row - buf);
        if (have == sizeof(buf)) { /* a row longer than the buffer: not the kernel's */
            rc = -EOVERFLOW;
            break;
        }
        memmove(buf, row, have);
    }
    close(fd);
    return rc;
}

/* What the uid's processes leave that outlives them, once none is left
 * (nothing makes more meanwhile): its keys and SysV IPC objects. Returns
 * 0 when all went, else PROC_REAP_LEFTOVERS with a line saying why. */
static int
clear_leftovers(uid_t uid)
{
    int rc = clear_keyrings(), status = 0;

    if (rc != 0) {
        child_say("reaper: cannot clear the uid's keyrings", "", -rc);
        status = PROC_REAP_LEFTOVERS;
    }
    for (size_t i = 0; i < sizeof(sysv_tables) / sizeof(sysv_tables[0]); i++) {
        if ((rc = sysv_remove(&sysv_tables[i], uid)) != 0) {
            child_say("reaper: cannot remove the uid's SysV IPC objects in", sysv_tables[i].path,
                      -rc);
            status = PROC_REAP_LEFTOVERS;
        }
    }
    return status;
}

/* The reaper: the cgroup's processes killed and the cgroup removed; then,
 * as uid, kill(-1, SIGKILL) reaches every process of uid at once (a fork
 * in flight included), and no other; then wait until they are gone (one in
 * an uninterruptible sleep dies when it wakes). Every round kills again,
 * in case a process of uid was stopped or being created. Then what they
 * left that outlives them goes. */
static void
reap_child(const struct reap_opts *o)
{
    uid_t uid = o->uid;
    int rc;

    if (o->cg != NULL && (rc = cgroup_clear(o->cg, -1)) != 0) {
        child_say("reaper: cannot clear the cgroup", o->cg->dir[0], -rc);
        _exit(1);
    }
    if (!o->by_uid)
        _exit(0);
    if ((rc = child_become(uid, o->gid)) != 0) {
        child_say("reaper: cannot switch to the uid", "", -rc);
        _exit(1);
    }
    for (long wait = 1;; wait = wait < 100 ? wait * 2 : 100) {
        kill(-1, SIGKILL);
        if ((rc = count_uid(uid)) == 0)
            _exit(clear_leftovers(uid));
        if (rc < 0) {
            child_say("reaper: /proc", "", -rc);
            _exit(1);
        }
        loop_sleep_ms(wait);
    }
}

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#define NR_MASK (~0x40000000U) /* x32's numbers are the same with this bit */
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#define NR_MASK (~0U)
#else
#error "the instances' seccomp filter knows x86_64 and aarch64 only"
#endif

/* No user namespace for an instance: in one of its own it may mount a FUSE
 * filesystem it serves, and a thread of it that asks that filesystem, once
 * the request is read, waits for the answer uninterruptibly, even after
 * SIGKILL, holding the server's fd open: neither ends, ever. Its session
 * would never end (and, its main thread gone, neither would its reaper:
 * count_uid()). So clone() and unshare() with
 * CLONE_NEWUSER fail (EPERM, as where user namespaces are off), clone3(),
 * whose flags a filter cannot read, is ENOSYS (libc then uses clone()), and
 * so is any call of another architecture (i386's numbers on x86_64). */
IN_CHILD static int
deny_userns(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, NR_MASK),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_unshare, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_NEWUSER, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof(f) / sizeof(f[0]), f};

    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0 ? 0 : -errno;
}

/* What a child is started for: exec argv as o says, or reap as r says. */
struct job {
    char *const *argv;
    const struct proc_opts *o;
    const struct reap_opts *r; /* NULL: exec */
    pid_t parent;              /* airlock's pid at the fork */
};

/* In the child, between its creation and its exec: async-signal-safe calls
 * only, and no write to airlock's memory (it may share it). Every signal is
 * blocked on entry: the dispositions are reset before any can come in. */
IN_CHILD static void
child(const struct job *j, int devnull, int out)
{
    sigset_t none;

    /* the kernel's sigaction: libc's refuses the signals it keeps for
     * itself (32, 33), whose ignored disposition an exec would keep */
    const struct {
        void (*handler)(int);
        unsigned long flags;
        void (*restorer)(void);
        uint64_t mask;
    } dfl = {SIG_DFL, 0, NULL, 0};
    for (int s = 1; s < NSIG; s++)
        syscall(SYS_rt_sigaction, s, &dfl, NULL, sizeof(dfl.mask));
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (setsid() < 0 || dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
        _exit(127);
    /* what airlock's other threads have open (a user's state being copied)
     * is closed at the exec, once airlock goes on, not here: a close
     * flushes, and on FUSE or NFS a flush waits for the server, busy with
     * that copy for seconds, while the vfork held airlock's loop. The
     * reaper never execs: it closes them (its fork holds nothing) */
    if (j->r != NULL || syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
        syscall(SYS_close_range, 3U, ~0U, 0U);
    if (j->r != NULL)
        reap_child(j->r);
    const struct proc_opts *o = j->o;
    /* into its cgroup while it has airlock's rights (the cgroup's files
     * are airlock's), before it runs anything of its own: whatever it
     * starts is born there (cgroup.h) */
    for (size_t i = 0; i < o->n_cgroup_fds; i++)
        if (write(o->cgroup_fds[i], "0", 1) != 1) {
            child_say("cannot join its cgroup", "", errno);
            _exit(127);
        }
    int rc = o->run_as ? child_become(o->uid, o->gid) : 0;
    if (rc != 0) {
        child_say("cannot switch user", "", -rc);
        _exit(127);
    }
    /* a uid is the next session's: a setuid (or setgid, or file
     * capability) program one session leaves must give nobody that uid,
     * neither another instance nor its own next user's */
    if (o->run_as && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        child_say("cannot set no_new_privs", "", errno);
        _exit(127);
    }
    if (o->run_as && (rc = deny_userns()) != 0) {
        child_say("cannot deny user namespaces", "", -rc);
        _exit(127);
    }
    struct rlimit nofile;
    if (child_nofile != 0 && getrlimit(RLIMIT_NOFILE, &nofile) == 0 &&
        nofile.rlim_cur > child_nofile) {
        nofile.rlim_cur = child_nofile;
        if (setrlimit(RLIMIT_NOFILE, &nofile) != 0) {
            child_say("cannot set the open files limit", "", errno);
            _exit(127);
        }
    }
    const struct rlimit none_at_all = {0, 0};
    if (o->no_mqueue && setrlimit(RLIMIT_MSGQUEUE, &none_at_all) != 0) {
        child_say("cannot limit message queues", "", errno);
        _exit(127);
    }
    /* no core dump: it would hold the session's memory (its user's keys
     * and state), in a file of the uid's or one a helper such as
     * systemd-coredump keeps for the uid to read, outside everything the
     * wipe reaches: the uid's next user would read it */
    if (o->run_as && setrlimit(RLIMIT_CORE, &none_at_all) != 0) {
        child_say("cannot limit core dumps", "", errno);
        _exit(127);
    }
    /* after the switch: a setuid() over the limit would fail the exec */
    const struct rlimit nproc = {o->max_processes, o->max_processes};
    if (o->max_processes > 0 && setrlimit(RLIMIT_NPROC, &nproc) != 0) {
        child_say("cannot limit processes", "", errno);
        _exit(127);
    }
    /* it dies with airlock: after a kill -9 or a crash, nothing would
     * report its session or store its state back, and a restarted airlock
     * forgets it in the directory. Set after the switch of user (which
     * clears it); the parent may be gone already */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != j->parent)
        _exit(127);
    if (chdir(o->cwd) != 0) {
        child_say("chdir", o->cwd, errno);
        _exit(127);
    }
    execvp(j->argv[0], j->argv);
    child_say("exec", j->argv[0], errno);
    _exit(127);
}

struct child_args {
    const struct job *j;
    int devnull, out;
};

IN_CHILD static int
child_main(void *arg)
{
    const struct child_args *a = arg;

    child(a->j, a->devnull, a->out);
    return 127;
}

/* Creates the child of j, every signal blocked meanwhile (a handler of
 * airlock's must not run in it). One that execs shares airlock's memory
 * until its exec (CLONE_VM | CLONE_VFORK, as posix_spawn does), and runs
 * on a stack in this frame, which waits for that exec: a fork() would copy
 * airlock's page tables and leave every page it then writes to fault,
 * about 2 ms of the loop's time per start. The reaper runs on, so it is
 * forked. Returns the pid or -1 (errno). */
static pid_t
child_create(const struct job *j, int devnull, int out)
{
    _Alignas(16) char stack[CHILD_STACK];
    struct child_args a = {j, devnull, out};
    sigset_t all, old;
    pid_t pid;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (j->r != NULL) {
        pid = fork();
        if (pid == 0)
            child(j, devnull, out);
    } else {
        pid = clone(child_main, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
    }
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return pid;
}

/* Starts a child for j with its output on a pipe and its exit on a pidfd. */
static int
start(struct proc *p, struct loop *loop, const struct job *j, proc_line_cb on_line,
      proc_exit_cb on_exit, void *data)
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
    pid_t pid = child_create(j, devnull, pipefd[1]);
    if (pid < 0) {
        rc = -errno;
        goto fail;
    }
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

int
proc_spawn(struct proc *p, struct loop *loop, char *const argv[], const struct proc_opts *o,
           proc_line_cb on_line, proc_exit_cb on_exit, void *data)
{
    const struct job j = {.argv = argv, .o = o, .parent = getpid()};

    return start(p, loop, &j, on_line, on_exit, data);
}

int
proc_reap(struct proc *p, struct loop *loop, const struct reap_opts *o, proc_line_cb on_line,
          proc_exit_cb on_exit, void *data)
{
    const struct job j = {.r = o};

    return start(p, loop, &j, on_line, on_exit, data);
}

int
proc_wait(struct proc *p, int timeout_ms)
{
    struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
    int status = 0, n;

    if (p->state != PROC_RUNNING || p->pidfd < 0)
        return -ECHILD;
    while ((n = poll(&pfd, 1, timeout_ms)) < 0 && errno == EINTR)
        ;
    if (n <= 0)
        return -ETIMEDOUT;
    while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
        ;
    p->state = PROC_EXITED;
    io_stop(p->loop, &p->pid_io);
    close(p->pidfd);
    p->pidfd = -1;
    p->on_line = NULL;
    out_close(p);
    return status;
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
