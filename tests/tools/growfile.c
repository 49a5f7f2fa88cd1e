/* growfile.c - a FUSE file that holds more than its size says, the way a
 * file still being written does by the time it is read (for
 * tests/integration/t_pool_state_builtin.sh: a bound checked on the size
 * alone would let it through), or that is slow to read, the way a large
 * file or a slow disk is (t_pool_state_parallel.sh).
 *
 *   growfile FILE --says N --holds M --owner UID:GID [--slow MS]
 *
 * Mounts over the regular file FILE a file of mode 0600, owned by UID:GID,
 * one link, whose size (stat) is N bytes and whose reads (direct I/O: the
 * kernel does not stop at the size) return M bytes of 'x', each read
 * answered MS milliseconds late. Runs in the foreground, single-threaded;
 * unmount it with umount (auto_unmount only finds it where it was
 * mounted). */
#define FUSE_USE_VERSION 31
#include <errno.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static long long says, holds, slow_ms;
static unsigned owner_uid, owner_gid;

static int
gf_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    (void)fi;
    if (strcmp(path, "/") != 0)
        return -ENOENT;
    memset(st, 0, sizeof(*st));
    st->st_mode = S_IFREG | 0600;
    st->st_nlink = 1;
    st->st_uid = owner_uid;
    st->st_gid = owner_gid;
    st->st_size = says;
    return 0;
}

static int
gf_open(const char *path, struct fuse_file_info *fi)
{
    if (strcmp(path, "/") != 0)
        return -ENOENT;
    fi->direct_io = 1;
    return 0;
}

static int
gf_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)path;
    (void)fi;
    struct timespec slow = {.tv_sec = slow_ms / 1000, .tv_nsec = slow_ms % 1000 * 1000000};
    while (nanosleep(&slow, &slow) != 0 && errno == EINTR)
        ;
    if (off >= holds)
        return 0;
    size_t n = (unsigned long long)(holds - off) < size ? (size_t)(holds - off) : size;
    memset(buf, 'x', n);
    return (int)n;
}

static const struct fuse_operations ops = {
    .getattr = gf_getattr,
    .open = gf_open,
    .read = gf_read,
};

int
main(int argc, char **argv)
{
    const char *file = argc > 1 ? argv[1] : NULL;
    int got = 0;

    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--says") == 0 && sscanf(argv[i + 1], "%lld", &says) == 1)
            got |= 1;
        else if (strcmp(argv[i], "--holds") == 0 && sscanf(argv[i + 1], "%lld", &holds) == 1)
            got |= 2;
        else if (strcmp(argv[i], "--owner") == 0 &&
                 sscanf(argv[i + 1], "%u:%u", &owner_uid, &owner_gid) == 2)
            got |= 4;
        else if (strcmp(argv[i], "--slow") == 0 && sscanf(argv[i + 1], "%lld", &slow_ms) == 1)
            ;
        else
            got = -1;
    }
    if (file == NULL || argc % 2 != 0 || got != 7 || says < 0 || holds < 0 || slow_ms < 0) {
        fprintf(stderr, "usage: growfile FILE --says N --holds M --owner UID:GID [--slow MS]\n");
        return 2;
    }
    char *fargv[] = {argv[0], "-f", "-s", (char *)file, NULL};
    return fuse_main(4, fargv, &ops, NULL);
}
