/* fuse_stuck.c - a process that makes itself unkillable (t_pool_userns.sh):
 * in a user and mount namespace of its own it mounts a FUSE filesystem it
 * serves itself, and a thread of it asks that filesystem for a name that
 * the server reads and never answers. A request that reached its server
 * is waited for uninterruptibly, even after SIGKILL, and the server's fd
 * stays open while that thread lives: nothing ends either.
 *
 *   fuse_stuck DIR    mounts on DIR (made if missing); prints "OK" once the
 *                     thread waits, or "ERR <why>", and stays
 *
 * And the two halves of it apart (t_pool_uids.sh), for a process of an
 * instance's uid that outlives SIGKILL while the test wants it to:
 *
 *   fuse_stuck --serve DIR  as root, mounts on DIR (allow_other: any uid
 *                     may ask) and serves it: prints "OK" once a question
 *                     (a LOOKUP) is read, never answers it, and stays; once
 *                     it is killed the kernel aborts the question
 *   fuse_stuck --ask DIR    a thread stats DIR/x (waits for ever on a
 *                     --serve mount), and the main thread exits: the
 *                     process is a zombie leader with a live thread */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[4096];

static int
write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? write(fd, text, strlen(text)) : -1;

    if (fd >= 0)
        close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static void *
asker(void *arg)
{
    struct stat st;
    char path[4200];
    (void)arg;

    snprintf(path, sizeof(path), "%s/x", dir);
    stat(path, &st); /* never returns */
    return NULL;
}

static int
fail(const char *what)
{
    printf("ERR %s: %s\n", what, strerror(errno));
    return 1;
}

/* Serves the FUSE connection fd: answers INIT, starts the asker thread
 * (ask), reads the LOOKUP and never answers it. Returns only on an error. */
static int
serve(int fd, bool ask)
{
    char buf[FUSE_MIN_READ_BUFFER];
    pthread_t t;

    /* INIT: answered; then the thread's LOOKUP: read, never answered */
    ssize_t n = read(fd, buf, sizeof(buf));
    const struct fuse_in_header *in = (const void *)buf;
    if (n < (ssize_t)sizeof(*in) || in->opcode != FUSE_INIT)
        return fail("read INIT");
    struct {
        struct fuse_out_header h;
        struct fuse_init_out o;
    } out = {.h = {.len = sizeof(out), .unique = in->unique},
             .o = {.major = FUSE_KERNEL_VERSION, .minor = 31, .max_write = 4096}};
    if (write(fd, &out, sizeof(out)) != (ssize_t)sizeof(out))
        return fail("write INIT");
    if (ask && pthread_create(&t, NULL, asker, NULL) != 0)
        return fail("pthread_create");
    /* anything else (a statfs, a getattr of another process) fails at once */
    while ((n = read(fd, buf, sizeof(buf))) > 0 && in->opcode != FUSE_LOOKUP) {
        struct fuse_out_header err = {.len = sizeof(err), .error = -ENOSYS, .unique = in->unique};
        if (in->opcode != FUSE_FORGET && in->opcode != FUSE_BATCH_FORGET &&
            in->opcode != FUSE_INTERRUPT)
            (void)!write(fd, &err, sizeof(err));
    }
    if (n <= 0)
        return fail("read LOOKUP");
    printf("OK\n");
    fflush(stdout);
    for (;;)
        pause();
}

/* --serve DIR: DIR's filesystem, for every uid. */
static int
serve_root(void)
{
    char opts[128];
    int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);

    if (fd < 0)
        return fail("/dev/fuse");
    snprintf(opts, sizeof(opts), "fd=%d,rootmode=40755,user_id=0,group_id=0,allow_other", fd);
    if (mount("stuck", dir, "fuse", MS_NOSUID | MS_NODEV, opts) != 0)
        return fail("mount");
    return serve(fd, false);
}

/* --ask DIR: the thread asks, the main thread exits alone
 * (pthread_exit(): the process lives on in its thread). */
static int
ask_alone(void)
{
    pthread_t t;

    if (pthread_create(&t, NULL, asker, NULL) != 0)
        return fail("pthread_create");
    pthread_exit(NULL);
}

int
main(int argc, char **argv)
{
    char map[64], opts[128];
    uid_t uid = getuid();
    gid_t gid = getgid();

    if (argc == 3 && (strcmp(argv[1], "--serve") == 0 || strcmp(argv[1], "--ask") == 0)) {
        snprintf(dir, sizeof(dir), "%s", argv[2]);
        if (strcmp(argv[1], "--ask") == 0)
            return ask_alone();
        mkdir(dir, 0755);
        return serve_root();
    }
    if (argc != 2) {
        fprintf(stderr, "usage: fuse_stuck DIR | --serve DIR | --ask DIR\n");
        return 2;
    }
    snprintf(dir, sizeof(dir), "%s", argv[1]);
    mkdir(dir, 0700);
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
        return fail("unshare");
    snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
    if (write_file("/proc/self/setgroups", "deny") != 0 ||
        write_file("/proc/self/uid_map", map) != 0)
        return fail("uid_map");
    snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
    if (write_file("/proc/self/gid_map", map) != 0)
        return fail("gid_map");
    int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return fail("/dev/fuse");
    snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,group_id=0", fd);
    if (mount("stuck", dir, "fuse", MS_NOSUID | MS_NODEV, opts) != 0)
        return fail("mount");
    return serve(fd, true);
}
