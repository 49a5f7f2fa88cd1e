/* file.h - the files airlock reads at load (its config and the files the
 * config names: keysets, CA files, passwords) and the log files it appends
 * to: regular files only.
 *
 * A FIFO, a socket or a device in their place would block open() or read()
 * until a peer shows up, and a load (or a reload, on the main loop) would
 * hang with it: these open with O_NONBLOCK and check what they opened
 * before reading a byte. */
#ifndef AIRLOCK_CORE_FILE_H
#define AIRLOCK_CORE_FILE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/* -FILE_NOT_REGULAR: what the functions below return for a path that is
 * not a regular file (EBADFD, which open(2) and read(2) never set on their
 * own, so it cannot be mistaken); file_strerror() says so. */
#define FILE_NOT_REGULAR EBADFD

/* Opens path with flags (O_RDONLY, or O_WRONLY | O_APPEND | O_CREAT with
 * mode; O_NOFOLLOW...) and O_NONBLOCK, O_CLOEXEC, O_NOCTTY, and fills *st.
 * O_NONBLOCK changes nothing for a regular file. Returns the fd (the caller
 * closes it), -FILE_NOT_REGULAR when path is not a regular file, or -errno. */
int file_open_regular(const char *path, int flags, mode_t mode, struct stat *st);

/* Reads the regular file path (file_open_regular() with O_RDONLY | flags) whole into
 * *out, NUL-terminated, *len bytes without the NUL; *out is malloc'd (the
 * caller frees it, wiped first when it is a secret). What it read may be a
 * secret: a buffer that grows (the file is bigger than fstat() said) or is
 * given back on a failure is wiped first, so no copy stays in freed
 * memory. Returns 0, -EFBIG when it is longer than max, -FILE_NOT_REGULAR,
 * or -errno. */
int file_read_regular(const char *path, int flags, size_t max, char **out, size_t *len);

/* Opens path for reading as a file airlock trusts: a trust anchor (a
 * pinned root, collateral, a sealed secret) or, with secret, a key only
 * airlock may read. Whoever may change it, or change which file path names,
 * could have airlock trust what they chose, so: every name on the way is
 * opened with openat() and O_NOFOLLOW from "/" (or the current directory)
 * and checked as reached (fstat): each directory, and each symbolic link
 * on the way (followed by its text), must be root's or airlock's user's
 * (its effective uid), and no directory writable by others (a group
 * other than root's counts) unless it has the sticky bit. The file itself
 * must not be a link, must be a regular file of root or airlock's user
 * that no one else may write (with secret: nor read, mode 0600 or
 * stricter). Fills *st. Returns the fd (the caller closes it), or
 * -errno (-EPERM: others may change it or, with secret, read it;
 * -ELOOP: a link; -FILE_NOT_REGULAR) with "PATH: what is wrong" in why
 * (len bytes). */
int file_open_trusted(const char *path, bool secret, struct stat *st, char *why, size_t len);

/* file_open_trusted(), then reads the file whole as file_read_regular()
 * does (wiping what it gives back). Returns 0, or -errno (-EFBIG when it
 * is longer than max) with "PATH: what is wrong" in why (why_len
 * bytes). */
int file_read_trusted(const char *path, bool secret, size_t max, char **out, size_t *len, char *why,
                      size_t why_len);

/* What tells a file's content changed without reading it: a rename over it
 * (device, inode) or a rewrite in place (size, modification and change
 * times, to the nanosecond). */
struct file_stamp {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
};

/* Fills *out for path (following links, as a load does). Returns 0 or
 * -errno; a path that cannot be stamped has a zeroed stamp. */
int file_stamp(const char *path, struct file_stamp *out);

/* The stamp of the file st describes (a file's fstat: the one opened). */
void file_stamp_stat(const struct stat *st, struct file_stamp *out);

/* Whether a and b are the same file with the same content, as far as its
 * stamp can tell. */
bool file_stamp_equal(const struct file_stamp *a, const struct file_stamp *b);

/* Whether path is still the file stamped as *then, content and all, as far
 * as a stamp can tell (false when it cannot be stamped now). */
bool file_stamp_same(const char *path, const struct file_stamp *then);

/* strerror(-err), and "not a regular file" for -FILE_NOT_REGULAR. */
const char *file_strerror(int err);

#endif
