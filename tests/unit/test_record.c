/* test_record.c - unit tests for the record of where the pools run
 * (src/pool/record.c): its lines written once each, as they are noted; a
 * second holder refused; a line a kill cut short cut off, never appended
 * to; lines that are not the record's, or would have airlock act as root
 * or on a relative path, ignored; after the sweep the file holds this run's
 * lines only, and the uids a pool of this run is still to reap; a clean end
 * removes it, unless something was kept; a file not airlock's own (another
 * mode, a symbolic link) or in a directory others may change is refused.
 * (What a sweep removes, on real cgroups, uids and directories:
 * tests/integration/t_pool_record.sh.) */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/loop.h"
#include "pool/env.h"
#include "pool/record.h"

static char dir[64];
static char path[128];

static int
setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_record.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/pools.record", dir);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    unlink(path);
    rmdir(dir);
    return 0;
}

static void
put(const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static const char *
content(void)
{
    static char buf[1024];
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return fd >= 0 ? buf : NULL;
}

static struct record *
open_ok(void)
{
    char why[256];
    int err = 0;
    struct record *r = record_open(path, &err, why, sizeof(why));

    if (r == NULL)
        fail_msg("record_open: %s", why);
    return r;
}

static void
test_notes(void **state)
{
    (void)state;
    struct record *r = open_ok();
    assert_false(record_pending(r));
    assert_int_equal(access(path, F_OK), 0);

    /* a second holder is refused while r holds it */
    char why[256];
    int err = 0;
    assert_null(record_open(path, &err, why, sizeof(why)));
    assert_int_equal(err, -EWOULDBLOCK);
    assert_non_null(strstr(why, "held by another airlock"));

    record_note_pool(r, "p", "/base", NULL, 0, 0);
    record_note_pool(r, "p", "/base", NULL, 0, 0);
    record_note_uid(r, 70001);
    record_note_uid(r, 70001);
    record_note_pool(r, "p", "/new\nline", NULL, 0, 0); /* cannot be a line: not noted */
    assert_string_equal(content(), "dir p /base\nuid 70001\n");

    /* nothing was left from before, nothing kept: a clean end removes it */
    record_free(r);
    assert_int_equal(access(path, F_OK), -1);
}

static void
test_sweep_lines(void **state)
{
    (void)state;
    /* an earlier airlock's lines: a directory whose base is gone, lines
     * that are not the record's or would act as root or on a relative path,
     * and a last line a kill cut short */
    put("dir p /nonexistent/base\n"
        "uid 0\n"
        "cgroup p 0 0 relative/parent\n"
        "cgroup bad/prefix 0 0 /sys/fs/cgroup/x\n"
        "garbage\n"
        "uid 70005\n"
        "uid 7000",
        0600);
    struct record *r = open_ok();
    assert_true(record_pending(r));
    /* the cut line is gone: nothing is ever appended to it */
    const char *c = content();
    assert_string_equal(c + strlen(c) - strlen("\nuid 70005\n"), "\nuid 70005\n");
    record_note_pool(r, "q", "/b", NULL, 70000, 70010);

    struct loop *loop = loop_new();
    int err = 0;
    struct pool_env *e = pool_env_new(loop, &err);
    assert_non_null(e);
    record_sweep(r, e, loop); /* nothing there to remove: done at once */
    assert_false(record_pending(r));
    /* uid 70005 is q's to reap before its first use: listed until then */
    assert_string_equal(content(), "dir q /b\nuid 70005\n");

    /* something kept: the file stays for the next start */
    record_keep(r);
    record_free(r);
    assert_string_equal(content(), "dir q /b\nuid 70005\n");
    pool_env_free(e);
    loop_free(loop);
}

static void
test_refused(void **state)
{
    (void)state;
    char why[256], link[160];
    int err = 0;

    /* readable by others: not airlock's record */
    put("", 0644);
    assert_null(record_open(path, &err, why, sizeof(why)));
    assert_int_equal(err, -EPERM);
    unlink(path);

    /* a symbolic link */
    snprintf(link, sizeof(link), "%s/elsewhere", dir);
    put("", 0600);
    assert_int_equal(rename(path, link), 0);
    assert_int_equal(symlink(link, path), 0);
    assert_null(record_open(path, &err, why, sizeof(why)));
    assert_int_equal(err, -ELOOP);
    unlink(path);
    unlink(link);

    /* in a directory others may write */
    assert_int_equal(chmod(dir, 0777), 0);
    assert_null(record_open(path, &err, why, sizeof(why)));
    assert_int_equal(err, -EPERM);
    assert_int_equal(chmod(dir, 0700), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_notes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
