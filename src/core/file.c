/* file.c - see file.h. */
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/strbuf.h"

int
file_open_regular(const char *path, int flags, mode_t mode, struct stat *st)
{
    int fd = open(path, flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, mode);

    /* ENXIO is open(2)'s answer for a FIFO without a reader (O_WRONLY), a
     * socket or a device with nothing behind it: never a regular file */
    if (fd < 0)
        return errno == ENXIO ? -FILE_NOT_REGULAR : -errno;
    if (fstat(fd, st) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return -FILE_NOT_REGULAR;
    }
    return fd;
}

int
file_read_regular(const char *path, int flags, size_t max, char **out, size_t *len)
{
    struct stat st;
    char *buf = NULL;
    size_t n = 0, cap;
    int rc, fd = file_open_regular(path, O_RDONLY | flags, 0, &st);

    if (fd < 0)
        return fd;
    /* the size is a hint: the file may change while it is read, and one
     * byte past max is how a file that is too long shows */
    cap = (size_t)st.st_size < max ? (size_t)st.st_size + 1 : max + 1;
    rc = -ENOMEM;
    if ((buf = malloc(cap + 1)) == NULL)
        goto fail;
    for (;;) {
        if (n == cap) {
            rc = -EFBIG;
            if (cap > max)
                goto fail;
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            /* what was read may be a secret (a key, a password): the
             * old block is wiped, not left to the heap as realloc()
             * would */
            char *nb = buf_wipe_realloc(buf, n, cap + 1, ncap + 1);
            rc = -ENOMEM;
            if (nb == NULL)
                goto fail;
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    close(fd);
    *out = buf;
    *len = n;
    return 0;
fail:
    buf_wipe_free(buf, n);
    close(fd);
    return rc;
}

int
file_stamp(const char *path, struct file_stamp *out)
{
    struct stat st;

    memset(out, 0, sizeof(*out));
    if (stat(path, &st) != 0)
        return -errno;
    file_stamp_stat(&st, out);
    return 0;
}

void
file_stamp_stat(const struct stat *st, struct file_stamp *out)
{
    *out = (struct file_stamp){st->st_dev, st->st_ino, st->st_size, st->st_mtim, st->st_ctim};
}

bool
file_stamp_equal(const struct file_stamp *a, const struct file_stamp *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

bool
file_stamp_same(const char *path, const struct file_stamp *then)
{
    struct file_stamp now;

    return file_stamp(path, &now) == 0 && file_stamp_equal(&now, then);
}

const char *
file_strerror(int err)
{
    return err == -FILE_NOT_REGULAR ? "not a regular file" : strerror(-err);
}
