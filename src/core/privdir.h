/* privdir.h - a directory that only airlock may change: the base of a
 * pool's instance directories, the state store (docs/pool.md, Isolation).
 * An instance's uid that could write it, or rename or replace one of its
 * parents, could plant names or links there and reach other users' files. */
#ifndef AIRLOCK_CORE_PRIVDIR_H
#define AIRLOCK_CORE_PRIVDIR_H

#include <stddef.h>

/* Checks that path is absolute and canonical (no symbolic link, '.' or
 * '..' on it), a directory owned by airlock's effective uid that no one
 * else may write (no group or other write bit), and that each of its
 * parents is owned by root or airlock's uid and writable by no one else,
 * or has the sticky bit (as /tmp: others cannot rename what they do not
 * own). Returns 0, or -errno (-EINVAL: not canonical, -EPERM: others may
 * change it) with why saying "PATH: what is wrong". */
int privdir_check(const char *path, char *why, size_t len);

#endif
