/* spawn.h - child processes of the pool (instances and hooks) on a loop.
 *
 * A proc runs in its own session and process group (setsid), in its own
 * working directory, with stdin on /dev/null and stdout and stderr on one
 * pipe whose lines come back through on_line (bounded length; a flood is
 * read in bounded slices per loop turn, of bytes and of lines). It inherits no other fd (made
 * close-on-exec by close_range), default signal dispositions and an empty
 * signal mask, and optionally runs as another user, in cgroups of its own
 * (joined before its exec). Its exit comes back once through on_exit (a
 * pidfd on the loop; the pool is the only reaper, so no zombie stays). */
#ifndef AIRLOCK_POOL_SPAWN_H
#define AIRLOCK_POOL_SPAWN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "core/loop.h"
#include "pool/cgroup.h"
#include "proto/lines.h"

#define PROC_LINE_MAX 4096 /* longer output lines are cut */
#define PROC_READ_CHUNK 4096

enum proc_state { PROC_IDLE, PROC_RUNNING, PROC_EXITED };

struct proc;

/* line: NUL-terminated (cut: it was longer than PROC_LINE_MAX). */
typedef void (*proc_line_cb)(struct proc *p, const char *line, bool cut);
/* status: as from waitpid(). The callback may proc_close() or reuse p. */
typedef void (*proc_exit_cb)(struct proc *p, int status);

struct proc {
    struct loop *loop;
    enum proc_state state;
    pid_t pid;
    int pidfd, out_fd;
    struct io pid_io, out_io;
    struct task more; /* output left to read after a bounded slice */
    struct line_split ls;
    uint8_t linebuf[PROC_LINE_MAX + 1];
    uint8_t chunk[PROC_READ_CHUNK]; /* read, its lines not all handed out yet */
    size_t chunk_off, chunk_len;
    proc_line_cb on_line;
    proc_exit_cb on_exit;
    void *data;
};

/* How to start one. */
struct proc_opts {
    const char *cwd; /* required */
    uid_t uid;       /* run_as: setgroups/setgid/setuid to these */
    gid_t gid;
    bool run_as;
    bool no_mqueue;         /* RLIMIT_MSGQUEUE 0 (soft and hard): it can make no POSIX message
                               queue, where none could be found to be wiped */
    unsigned max_processes; /* run_as: RLIMIT_NPROC, soft and hard (0: as airlock's) */
    const int *cgroup_fds;  /* the cgroup.procs of its cgroup (cgroup_make()): it joins them
                               first, before anything of it runs as another user */
    size_t n_cgroup_fds;
};

/* The soft open-files limit of everything started hereafter (instances,
 * hooks): the one airlock was given, before it raised its own for its
 * sockets. A program that uses select() breaks past FD_SETSIZE (1024) fds,
 * which is what the default soft limit guards; airlock's raise must not
 * take that from the programs it starts. Once, at start; 0 (the default):
 * they get airlock's. */
void proc_set_nofile(rlim_t soft);

/* Starts argv (argv[0] looked up in PATH) as described above; p must be
 * zeroed or closed. on_line may be NULL (lines are dropped). Returns 0 or
 * -errno (nothing to close then). A failed exec shows as exit status 127
 * with a line saying why. */
int proc_spawn(struct proc *p, struct loop *loop, char *const argv[], const struct proc_opts *o,
               proc_line_cb on_line, proc_exit_cb on_exit, void *data);

/* What a reaper kills: the processes of a cgroup, of a uid, or both. */
struct reap_opts {
    const struct cgroup *cg; /* NULL: none */
    bool by_uid;
    uid_t uid;
    gid_t gid;
};

/* Starts a child that kills what an instance left. First every process in
 * o->cg, which it then removes (cgroup_clear()). Then, with o->by_uid, every
 * process of uid (reaching exactly those: it switches to uid and
 * kill(-1, SIGKILL)s) and, once /proc shows none left but zombies (a zombie
 * leader whose threads run on is not one: procstatus.h), removes
 * what the uid's processes leave behind them and only the uid may remove
 * without CAP_SYS_ADMIN: it clears the uid's keyrings (user, user-session,
 * persistent) and removes the SysV IPC objects it owns or created. It exits
 * 0 when all is gone; PROC_REAP_LEFTOVERS when no process is left but some
 * of that cannot be removed (the uid must not serve anyone again), 1 when
 * it cannot do its work; each with a line saying why. It runs until done:
 * the caller bounds it (a process in an uninterruptible sleep dies only
 * when it wakes). p must be zeroed or closed; on_exit as for proc_spawn().
 * Returns 0 or -errno. */
#define PROC_REAP_LEFTOVERS 3
int proc_reap(struct proc *p, struct loop *loop, const struct reap_opts *o, proc_line_cb on_line,
              proc_exit_cb on_exit, void *data);

/* Waits up to timeout_ms for p to exit, blocking (for the teardown of a
 * pool, never on the data path), and reaps it without on_exit. Returns its
 * status as from waitpid(), -ETIMEDOUT (p runs on) or -ECHILD (it was not
 * running). */
int proc_wait(struct proc *p, int timeout_ms);

/* Whether p has output not handed to on_line yet (in its pipe, or read
 * beyond a turn's slice). */
bool proc_output_pending(const struct proc *p);

/* Sends sig to p's whole process group; harmless when it is not running. */
void proc_signal(struct proc *p, int sig);

/* Idempotent close: a running process group is killed (SIGKILL) and reaped
 * at once, without on_exit; the fds are closed. A slice of output reading
 * may still be queued on the loop (it then finds nothing to do): free the
 * memory of p only from a task deferred after this call. */
void proc_close(struct proc *p);

#endif
