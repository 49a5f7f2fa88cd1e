/* privdir.c - see privdir.h. */
#include "core/privdir.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
privdir_check(const char *path, char *why, size_t len)
{
    char *real = realpath(path, NULL);
    bool canonical = real != NULL && strcmp(real, path) == 0;
    char parent[PATH_MAX];
    struct stat st;

    free(real);
    if (!canonical) { /* the checks below hold for the path itself, not a link's target */
        snprintf(why, len, "%s: expected an absolute path without symbolic links, '.' or '..'",
                 path);
        return -EINVAL;
    }
    if (stat(path, &st) != 0) {
        int rc = -errno;
        snprintf(why, len, "%s: %s", path, strerror(-rc));
        return rc;
    }
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
        snprintf(why, len,
                 "%s: expected a directory owned by airlock's user (uid %u) and writable by it "
                 "only, not %s of uid %u, mode %04o",
                 path, (unsigned)geteuid(), S_ISDIR(st.st_mode) ? "a directory" : "a file",
                 (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }
    /* whoever may write a parent may rename path away and put their own in
     * its place */
    snprintf(parent, sizeof(parent), "%s", path);
    for (char *slash = strrchr(parent, '/'); slash != NULL; slash = strrchr(parent, '/')) {
        slash[slash == parent] = '\0'; /* "/a" -> "/" */
        if (stat(parent, &st) != 0) {
            int rc = -errno;
            snprintf(why, len, "%s: its parent %s: %s", path, parent, strerror(-rc));
            return rc;
        }
        if ((st.st_uid != 0 && st.st_uid != geteuid()) ||
            ((st.st_mode & 022) != 0 && (st.st_mode & S_ISVTX) == 0)) {
            snprintf(why, len,
                     "%s: its parent %s (uid %u, mode %04o) may be changed by others than "
                     "airlock's user and root: expected one of theirs, writable by them only or "
                     "with the sticky bit",
                     path, parent, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
            return -EPERM;
        }
        if (parent[1] == '\0')
            break;
    }
    return 0;
}
