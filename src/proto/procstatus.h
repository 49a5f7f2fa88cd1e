/* procstatus.h - the fields of a process's /proc/PID/status (proc(5))
 * that tell whether it still lives and as whom: State, Uid and Threads.
 *
 * A zombie is not always a process that is gone. The kernel keeps a
 * thread-group leader whose main thread exited (pthread_exit(), or the raw
 * exit of one thread) as a zombie until its last thread exits, and its
 * status says "State: Z" for the whole process while those threads run,
 * as its uid, and can be SIGKILLed and still be there (one in an
 * uninterruptible sleep dies only when it wakes). Its Threads: line is
 * the thread group's count (signal->nr_threads), the leader included
 * until the process is reaped: 1 for a plain zombie, more while threads
 * live. Its /proc/PID/fd is empty (the leader's fd table is gone), while
 * /proc/PID/task/TID/fd of a live thread still lists what it holds.
 *
 * Pure: no syscalls, no allocation (it runs in forked children). The Name:
 * line cannot fake another line: the kernel escapes a newline in it. */
#ifndef AIRLOCK_PROTO_PROCSTATUS_H
#define AIRLOCK_PROTO_PROCSTATUS_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/parse.h"

#define PROCSTATUS_UNSET ((unsigned long)-1) /* a number not read (yet) */

struct procstatus {
    char state;            /* the State: letter (R, S, D, T, t, Z, X, ...); 0: not read */
    unsigned long threads; /* Threads: the thread group's (0: being reaped); PROCSTATUS_UNSET */
    unsigned long uid[4];  /* Uid: real, effective, saved, filesystem; PROCSTATUS_UNSET */
};

/* Reads the State, Uid and Threads lines of the status text buf (len
 * bytes, not NUL-terminated) into *st. Returns PARSE_OK when all three
 * were there, each ended by a newline; PARSE_AGAIN when one was not (a
 * read cut short: the fields found are set, the others as "not read");
 * PARSE_INVALID, with *err (err may be NULL) saying which line, when one of
 * them is malformed. */
enum parse_result procstatus_parse(const char *buf, size_t len, struct procstatus *st,
                                   const char **err);

/* Whether the process st describes (PARSE_OK) still lives: it is not a
 * zombie (nor being reaped), or it is a zombie leader whose threads run on
 * (Threads: more than 1). */
bool procstatus_alive(const struct procstatus *st);

/* Whether st's real or saved uid is uid: the processes a kill() from uid
 * reaches (kill(2)). */
bool procstatus_has_uid(const struct procstatus *st, unsigned long uid);

#endif
