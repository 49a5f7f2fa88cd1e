/* test_file.c - file_read_regular() (core/file.c) leaves no copy of what it
 * read in the memory it gives back; file_open_trusted() refuses a file
 * that others than this user and root may change (or, a secret, read).
 *
 * What it reads may be a secret (a key, a keyset, a password). Its first
 * guess of the size is fstat()'s; a file that is bigger than that (it grew
 * while read, or /proc reports 0) makes the buffer grow, and a file over
 * the limit is refused after max + 1 bytes were read. free() and realloc()
 * are wrapped (-Wl,--wrap): a block given back, or moved (realloc() may
 * leave the old one as it was), while it holds the marker is a leak.
 * read() is wrapped too: the file grows after its size was taken, before
 * it is read, the way it would while an editor or a provisioning step
 * writes it at a load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "wipe_watch.h"

#define MARKER "SECRET-FILE-MARKER-3e9a"

ssize_t __real_read(int fd, void *buf, size_t n);
void __wrap_free(void *p);
void *__wrap_realloc(void *p, size_t n);
ssize_t __wrap_read(int fd, void *buf, size_t n);

static const char *grow; /* a file that grows before its first read() */
static size_t grow_by;   /* by this many bytes of markers */

ssize_t
__wrap_read(int fd, void *buf, size_t n)
{
    if (grow != NULL)
        assert_int_equal(wipe_marker_file(grow, MARKER, grow_by, true), 0);
    grow = NULL;
    return __real_read(fd, buf, n);
}

static char dir[] = "/tmp/test_file.XXXXXX";
static char path[sizeof(dir) + 16];

static int
setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/secret", dir);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    unlink(path);
    return rmdir(dir);
}

/* Reads p (max bytes at most) while watching: want is what it returns;
 * what it read holds the marker, and is wiped (the caller's part). */
static void
read_watched(const char *p, size_t max, int want)
{
    char *buf = NULL;
    size_t len = 0;

    wipe_watch(pthread_self(), MARKER);
    assert_int_equal(file_read_regular(p, 0, max, &buf, &len), want);
    if (want == 0) {
        assert_non_null(memmem(buf, len, MARKER, strlen(MARKER)));
        explicit_bzero(buf, len);
    }
    free(buf);
    wipe_unwatch();
    assert_int_equal(wipe_leaks, 0);
    assert_int_equal(wipe_moved, 0);
}

/* The secret file: n bytes of markers, and more after its fstat(). */
static void
secret_file(size_t n, size_t more)
{
    assert_int_equal(wipe_marker_file(path, MARKER, n, false), 0);
    grow = more > 0 ? path : NULL;
    grow_by = more;
}

/* The file grows after fstat(): from 1 byte to 256 KiB, the buffer with
 * it, through every doubling. */
static void
test_grows_while_read(void **state)
{
    (void)state;
    secret_file(1, 256 * 1024);
    read_watched(path, 1 << 20, 0);
}

/* A file over the limit: refused after max + 1 bytes are read, and they
 * are wiped; one that grows past it while read too. */
static void
test_too_long(void **state)
{
    (void)state;
    secret_file(8192, 0);
    read_watched(path, 4096, -EFBIG);
    secret_file(100, 8192);
    read_watched(path, 4096, -EFBIG);
}

/* A /proc file says 0 bytes: the buffer grows from 1 byte. This process's
 * environment holds a marker (set by main() before it exec'd itself). */
static void
test_proc_file(void **state)
{
    (void)state;
    read_watched("/proc/self/environ", 1 << 20, 0);
}

/* t/NAME, a file or a link of uid 65534 when asked (as root only) */
static char t[sizeof(dir) + 8];

static void
put(const char *name, mode_t mode, bool other)
{
    char p[sizeof(t) + 64];
    int fd;

    snprintf(p, sizeof(p), "%s/%s", t, name);
    assert_true((fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode)) >= 0);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(fchown(fd, other ? 65534 : geteuid(), 0), 0);
    close(fd);
}

/* file_open_trusted(t/name): want, and why names the fault */
static void
opens(const char *name, bool secret, int want, const char *why)
{
    char p[sizeof(t) + 64], err[256] = "";
    struct stat st;
    int fd;

    snprintf(p, sizeof(p), "%s/%s", t, name);
    fd = file_open_trusted(p, secret, &st, err, sizeof(err));
    if (want == 0 && fd < 0)
        fail_msg("%s: %d %s", p, fd, err);
    if (want == 0) {
        close(fd);
        return;
    }
    if (fd >= 0)
        fail_msg("%s: opened, %d expected", p, want);
    assert_int_equal(fd, want);
    if (strstr(err, why) == NULL)
        fail_msg("%s: '%s' does not say '%s'", p, err, why);
}

static void
test_trusted(void **state)
{
    char p[sizeof(t) + 64], q[sizeof(t) + 64];

    (void)state;
    if (geteuid() != 0)
        skip(); /* files of another uid need root */
    snprintf(t, sizeof(t), "%s/t", dir);
    assert_int_equal(mkdir(t, 0700), 0);
    snprintf(p, sizeof(p), "%s/d", t);
    assert_int_equal(mkdir(p, 0755), 0);
    put("a", 0644, false);
    put("d/a", 0644, false);
    put("d/k", 0600, false);
    opens("a", false, 0, NULL);
    opens("d/k", true, 0, NULL);
    opens("a", true, -EPERM, "mode 0644 lets others read it");
    put("a", 0664, false); /* root's group */
    opens("a", false, 0, NULL);
    assert_int_equal(chown(strcat(strcpy(q, t), "/a"), 0, 100), 0);
    opens("a", false, -EPERM, "mode 0664");
    put("a", 0646, false);
    opens("a", false, -EPERM, "others than airlock's user");
    put("a", 0600, true);
    opens("a", true, -EPERM, "uid 65534");
    /* the file a link: refused; a link on the way: followed, checked */
    assert_int_equal(symlink("d/a", strcat(strcpy(q, t), "/l")), 0);
    opens("l", false, -ELOOP, "a symbolic link");
    assert_int_equal(symlink("d", strcat(strcpy(q, t), "/ld")), 0);
    assert_int_equal(symlink(p, strcat(strcpy(q, t), "/abs")), 0);
    assert_int_equal(symlink("../d", strcat(strcpy(q, t), "/d/up")), 0);
    opens("ld/a", false, 0, NULL);
    opens("abs/a", false, 0, NULL);
    opens("d/up/up/../d/a", false, 0, NULL);
    assert_int_equal(lchown(strcat(strcpy(q, t), "/ld"), 65534, 65534), 0);
    opens("ld/a", false, -EPERM, "the link ld on its way");
    /* a directory others may write: refused, unless sticky */
    assert_int_equal(chmod(p, 0777), 0);
    opens("d/a", false, -EPERM, "the directory d on its way (uid 0, mode 0777)");
    opens("abs/a", false, -EPERM, "the directory d on its way");
    assert_int_equal(chmod(p, 01777), 0);
    opens("d/a", false, 0, NULL);
    assert_int_equal(chmod(p, 0755), 0);
    opens("d/", false, -EISDIR, "expected a file");
    opens("d/a/b", false, -ENOTDIR, "Not a directory");
    opens("none", false, -ENOENT, "No such file");
    assert_int_equal(system(strcat(strcpy(q, "rm -rf "), t)), 0);
}

int
main(int argc, char **argv)
{
    (void)argc;
    /* the marker goes into the environment this process starts with, the
     * one /proc/self/environ shows: it execs itself once with it, 4 KiB
     * of padding after the marker so that the buffer still grows once it
     * holds it */
    if (getenv("TEST_FILE_MARKER") == NULL) {
        static char pad[4096];
        memset(pad, 'p', sizeof(pad) - 1);
        if (setenv("TEST_FILE_MARKER", MARKER, 1) != 0 || setenv("TEST_FILE_PAD", pad, 1) != 0)
            return 1;
        execv("/proc/self/exe", argv);
        perror("execv");
        return 1;
    }

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grows_while_read),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_proc_file),
        cmocka_unit_test(test_trusted),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
