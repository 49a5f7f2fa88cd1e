/* test_procstatus.c - unit tests for the reading of /proc/PID/status
 * (src/proto/procstatus.c), on the text of real processes captured as the
 * test runs: this process (alive); a child whose main thread exited while
 * another thread of it runs (State: Z, Threads: 2: alive, the process the
 * uid reaper took for gone); the same child once that thread ended too (a
 * plain zombie, Threads: 1: gone). Every prefix of each text is read too
 * (a read cut short: PARSE_AGAIN until the three lines are in, never a
 * wrong answer), each right before a guard page; malformed lines are
 * refused with a message. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "guard.h"
#include "proto/procstatus.h"

#define WAIT_MS 10000 /* the most a child is waited for to reach a state */

static enum parse_result
parse_guarded(const char *s, size_t n, struct procstatus *st)
{
    struct guard g;
    const char *p = (const char *)guard_copy(&g, s, n), *why = NULL;
    enum parse_result r = procstatus_parse(p, n, st, &why);

    if (r == PARSE_INVALID)
        assert_non_null(why);
    guard_free(&g);
    return r;
}

/* Parses text whole (PARSE_OK) into *st, and every prefix of it: AGAIN or
 * OK, OK only once the last of the three lines is whole, each time with
 * the same fields as the whole text for those it read. */
static void
must_parse(const char *text, struct procstatus *st)
{
    size_t n = strlen(text);

    assert_int_equal(parse_guarded(text, n, st), PARSE_OK);
    for (size_t i = 0; i < n; i++) {
        struct procstatus part;
        enum parse_result r = parse_guarded(text, i, &part);
        assert_true(r == PARSE_AGAIN || r == PARSE_OK);
        if (r == PARSE_OK)
            assert_true(part.state == st->state && part.threads == st->threads &&
                        memcmp(part.uid, st->uid, sizeof(st->uid)) == 0);
        assert_true(part.state == 0 || part.state == st->state);
        assert_true(part.threads == PROCSTATUS_UNSET || part.threads == st->threads);
        assert_true(part.uid[0] == PROCSTATUS_UNSET || part.uid[0] == st->uid[0]);
    }
}

/* The text of /proc/PID/status into buf. */
static void
read_status(pid_t pid, char *buf, size_t len)
{
    char path[64];
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    assert_true((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0);
    ssize_t n = read(fd, buf, len - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    close(fd);
}

/* Reads pid's status into buf until it says State: Z (WAIT_MS at most). */
static void
wait_zombie(pid_t pid, char *buf, size_t len)
{
    for (int ms = 0; ms < WAIT_MS; ms++) {
        read_status(pid, buf, len);
        if (strstr(buf, "\nState:\tZ") != NULL)
            return;
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
    fail_msg("process %d never became a zombie: %s", (int)pid, buf);
}

static void
test_self(void **state)
{
    char buf[4096];
    struct procstatus st;
    (void)state;

    read_status(getpid(), buf, sizeof(buf));
    must_parse(buf, &st);
    assert_true(st.state == 'R' || st.state == 'S');
    assert_int_equal(st.threads, 1);
    assert_true(procstatus_alive(&st));
    assert_true(procstatus_has_uid(&st, getuid()));
    assert_false(procstatus_has_uid(&st, getuid() + 1));
}

static int ask[2];

static void *
waiter(void *arg)
{
    char c;
    (void)arg;

    (void)!read(ask[0], &c, 1); /* until the test closes its end */
    return NULL;
}

/* The status text of a zombie (what, printed) says threads and whether it
 * lives. */
static void
zombie_is(const char *what, const char *text, unsigned long threads, bool alive)
{
    struct procstatus st;

    must_parse(text, &st);
    print_message("%s: State: %c, Threads: %lu\n", what, st.state, st.threads);
    assert_int_equal(st.state, 'Z');
    assert_int_equal(st.threads, threads);
    assert_int_equal(procstatus_alive(&st), alive);
    assert_true(procstatus_has_uid(&st, getuid()));
}

static void
test_zombie_leader(void **state)
{
    char buf[4096];
    pthread_t t;
    siginfo_t si;
    (void)state;

    assert_int_equal(pipe2(ask, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ask[1]);
        if (pthread_create(&t, NULL, waiter, NULL) != 0)
            _exit(1);
        syscall(SYS_exit, 0); /* the main thread alone */
    }
    close(ask[0]);
    /* the main thread gone, the other one waiting: a zombie that lives */
    wait_zombie(pid, buf, sizeof(buf));
    zombie_is("zombie leader", buf, 2, true);

    /* its last thread gone too: a plain zombie (waitable, not reaped yet) */
    close(ask[1]);
    assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
    read_status(pid, buf, sizeof(buf));
    zombie_is("plain zombie", buf, 1, false);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
}

static void
test_fields(void **state)
{
    struct procstatus st;
    (void)state;

    /* released while being read: Threads 0 */
    must_parse("Name:\tx\nState:\tX (dead)\nUid:\t7\t7\t7\t7\nThreads:\t0\n", &st);
    assert_false(procstatus_alive(&st));
    /* the saved uid counts (a kill() from it reaches the process) */
    must_parse("State:\tS (sleeping)\nUid:\t1\t2\t1000\t2\nThreads:\t1\n", &st);
    assert_true(procstatus_has_uid(&st, 1000));
    assert_true(procstatus_has_uid(&st, 1));
    assert_false(procstatus_has_uid(&st, 2));
    /* a Name: that looks like a line is one line (the kernel escapes newlines) */
    must_parse("Name:\tState:\tZ Threads:\t1\nState:\tD (disk sleep)\nUid:\t5\t5\t5\t5\n"
               "Threads:\t3\n",
               &st);
    assert_int_equal(st.state, 'D');
    assert_true(procstatus_alive(&st));
    /* a zombie whose Threads: was not read is not known to be gone */
    const char *cut = "State:\tZ (zombie)\nUid:\t5\t5\t5\t5\n";
    assert_int_equal(parse_guarded(cut, strlen(cut), &st), PARSE_AGAIN);
    assert_int_equal(st.threads, PROCSTATUS_UNSET);

    const char *bad[] = {
        "State:\t\n",
        "State:\t? (what)\n",
        "State:\tZZ\n",
        "Uid:\t1\t2\t3\n",
        "Uid:\t1\t2\t3\t4\t5\n",
        "Uid:\t1\t2\t3\tx\n",
        "Uid:\t99999999999999999999999\t1\t1\t1\n",
        "Threads:\t\n",
        "Threads:\t-1\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse_guarded(bad[i], strlen(bad[i]), &st), PARSE_INVALID);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self),
        cmocka_unit_test(test_zombie_leader),
        cmocka_unit_test(test_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
