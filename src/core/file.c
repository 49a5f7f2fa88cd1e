/* file.c - see file.h. */
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
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

/* Reads the regular file open at fd that st describes whole (see
 * file_read_regular()); closes fd. */
static int
read_fd(int fd, const struct stat *st, size_t max, char **out, size_t *len)
{
    char *buf = NULL;
    size_t n = 0, cap;
    int rc;

    /* the size is a hint: the file may change while it is read, and one
     * byte past max is how a file that is too long shows */
    cap = (size_t)st->st_size < max ? (size_t)st->st_size + 1 : max + 1;
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
file_read_regular(const char *path, int flags, size_t max, char **out, size_t *len)
{
    struct stat st;
    int fd = file_open_regular(path, O_RDONLY | flags, 0, &st);

    return fd < 0 ? fd : read_fd(fd, &st, max, out, len);
}

/* Whether only airlock's user and root may change what st describes: it
 * is theirs, and no one else may write it (a group's write counts unless
 * the group is root's; a directory with the sticky bit lets others add
 * names, not rename or remove the ones it has). */
static bool
only_ours(const struct stat *st)
{
    bool others = (st->st_mode & S_IWOTH) || ((st->st_mode & S_IWGRP) && st->st_gid != 0);

    if (S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX))
        others = false;
    return (st->st_uid == 0 || st->st_uid == geteuid()) && (S_ISLNK(st->st_mode) || !others);
}

/* Opens name in the directory at dirfd (O_PATH, not following it) and
 * checks what it is: a directory or a link only airlock's user and root
 * may change. Returns the fd, or -errno with why. */
static int
trusted_step(const char *path, int dirfd, const char *name, struct stat *st, char *why, size_t len)
{
    int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0 || fstat(fd, st) != 0) {
        int rc = -errno;
        snprintf(why, len, "%s: %s", path, strerror(-rc));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    if (!S_ISDIR(st->st_mode) && !S_ISLNK(st->st_mode)) {
        close(fd);
        snprintf(why, len, "%s: %s", path, strerror(ENOTDIR));
        return -ENOTDIR;
    }
    if (!only_ours(st)) {
        close(fd);
        snprintf(why, len,
                 "%s: the %s %s on its way (uid %u, mode %04o) may be changed by others than "
                 "airlock's user and root",
                 path, S_ISDIR(st->st_mode) ? "directory" : "link", name, (unsigned)st->st_uid,
                 (unsigned)(st->st_mode & 07777));
        return -EPERM;
    }
    return fd;
}

/* Walks the directories of path (rest: its text, changed in place) from
 * the current directory or "/" with O_NOFOLLOW on every name, each held
 * to only_ours() as it is reached, following the links met (each only
 * ours: it sits in a directory only ours) by their text. Returns the fd of
 * the last directory and points *base at the file's name in rest, or
 * -errno with why. */
static int
trusted_dir(const char *path, char *rest, size_t cap, const char **base, char *why, size_t len)
{
    char link[PATH_MAX], *p = rest;
    struct stat st;
    int hops = 0, fd = -1;

    for (;;) {
        /* the start, or a link to an absolute path */
        if (fd < 0 && (fd = trusted_step(path, AT_FDCWD, *p == '/' ? "/" : ".", &st, why, len)) < 0)
            return fd;
        while (*p == '/')
            p++;
        char *slash = strchr(p, '/');
        if (slash == NULL)
            break;
        *slash = '\0';
        int nfd = trusted_step(path, fd, p, &st, why, len);
        if (nfd >= 0 && S_ISLNK(st.st_mode)) {
            ssize_t n = readlinkat(nfd, "", link, sizeof(link) - 1); /* the one checked */
            close(nfd);
            nfd = -ELOOP;
            if (n > 0 && ++hops <= 40) {
                link[n] = '\0';
                /* the link's text, then what followed it */
                size_t tail = strlen(slash + 1);
                if ((size_t)n + 1 + tail < cap) {
                    memmove(rest + n + 1, slash + 1, tail + 1);
                    memcpy(rest, link, (size_t)n);
                    rest[n] = '/';
                    p = rest;
                    if (*p == '/') {
                        close(fd);
                        fd = -1;
                    }
                    continue;
                }
            }
            snprintf(why, len, "%s: %s", path, strerror(ELOOP));
        }
        close(fd);
        if ((fd = nfd) < 0)
            return fd;
        p = slash + 1;
    }
    if (*p == '\0' || strcmp(p, ".") == 0 || strcmp(p, "..") == 0) {
        close(fd);
        snprintf(why, len, "%s: expected a file", path);
        return -EISDIR;
    }
    *base = p;
    return fd;
}

int
file_open_trusted(const char *path, bool secret, struct stat *st, char *why, size_t len)
{
    char rest[2 * PATH_MAX];
    const char *base;
    int dirfd, fd;

    if (strlen(path) >= PATH_MAX) {
        snprintf(why, len, "%.64s...: %s", path, strerror(ENAMETOOLONG));
        return -ENAMETOOLONG;
    }
    snprintf(rest, sizeof(rest), "%s", path);
    if ((dirfd = trusted_dir(path, rest, sizeof(rest), &base, why, len)) < 0)
        return dirfd;
    fd = openat(dirfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    close(dirfd);
    if (fd < 0) {
        int rc = errno == ELOOP ? -ELOOP : errno == ENXIO ? -FILE_NOT_REGULAR : -errno;
        snprintf(why, len, "%s: %s", path,
                 rc == -ELOOP ? "a symbolic link (name the file itself)" : file_strerror(rc));
        return rc;
    }
    int rc = fstat(fd, st) != 0 ? -errno : !S_ISREG(st->st_mode) ? -FILE_NOT_REGULAR : 0;
    if (rc != 0)
        snprintf(why, len, "%s: %s", path, file_strerror(rc));
    else if (!only_ours(st))
        snprintf(why, len,
                 "%s: uid %u, mode %04o: others than airlock's user (uid %u) and root may "
                 "change it",
                 path, (unsigned)st->st_uid, (unsigned)(st->st_mode & 07777), (unsigned)geteuid());
    else if (secret && (st->st_mode & 077) != 0)
        snprintf(why, len, "%s: mode %04o lets others read it, expected 0600 or stricter", path,
                 (unsigned)(st->st_mode & 07777));
    else
        return fd;
    close(fd);
    return rc != 0 ? rc : -EPERM;
}

int
file_read_trusted(const char *path, bool secret, size_t max, char **out, size_t *len, char *why,
                  size_t why_len)
{
    struct stat st;
    int fd = file_open_trusted(path, secret, &st, why, why_len);

    if (fd < 0)
        return fd;
    int rc = read_fd(fd, &st, max, out, len);
    if (rc != 0)
        snprintf(why, why_len, "%s: %s", path, file_strerror(rc));
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
