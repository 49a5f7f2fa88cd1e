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

/* strerror(-err), and "not a regular file" for -FILE_NOT_REGULAR. */
const char *file_strerror(int err);

#endif
