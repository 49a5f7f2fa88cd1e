/* state.c - smartgrid-state, the pool's provisioning hooks for smartgrid
 * (docs/pool.md, "Hooks contract"): a user's files between the store and an
 * instance directory.
 *
 *   smartgrid-state fetch STORE USER DIR
 *       STORE/USER.crt and STORE/USER.key (when present), then STORE/USER.db
 *       -> DIR, same names, owned by DIR's owner (the instance's uid), 0600
 *   smartgrid-state store STORE USER DIR
 *       DIR/USER.db -> STORE/USER.db (only that file)
 *
 * The hook runs as root, but DIR belongs to the instance, whose user may
 * run anything in it. So nothing in DIR is opened by a path that could lead
 * elsewhere: DIR itself is opened once with O_NOFOLLOW and everything in it
 * through that fd (openat); a file is written under a fresh random name
 * created with O_EXCL (never through something planted there), owned by the
 * instance and complete before it is renamed into place (the server, which
 * waits for USER.db, never reads half a file); a file is read only when it
 * is a regular file of the instance's uid with one link, opened with
 * O_NOFOLLOW | O_NONBLOCK (a planted link to a root-only file, a hard link,
 * a fifo are all refused). The database stays encrypted all the way: the key
 * never reaches this host. Exit status: 0 done, 1 refused or failed (a line
 * on stderr says why), 2 usage. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define USER_MAX 127

static const char *prog = "smartgrid-state";

static int
say(const char *what, const char *name, int err)
{
    fprintf(stderr, "%s: %s %s: %s\n", prog, what, name, strerror(err));
    return -err;
}

/* 1-127 of A-Z a-z 0-9 _ . - , not starting with . or - (the pool's rule
 * for users, so USER.db is a plain name in DIR). */
static bool
user_ok(const char *u)
{
    size_t n = strlen(u);

    if (n == 0 || n > USER_MAX || u[0] == '.' || u[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((u[i] >= 'a' && u[i] <= 'z') || (u[i] >= 'A' && u[i] <= 'Z') ||
              (u[i] >= '0' && u[i] <= '9') || u[i] == '_' || u[i] == '.' || u[i] == '-'))
            return false;
    return true;
}

/* Copies all of in to out. Returns 0 or -errno. */
static int
copy(int in, int out)
{
    char buf[65536];
    ssize_t n;

    while ((n = read(in, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(out, buf + done, (size_t)(n - done));
            if (w < 0 && errno != EINTR)
                return -errno;
            done += w > 0 ? w : 0;
        }
    }
    return 0;
}

/* Opens name in dfd for reading: a regular file, never through a link, and
 * (owner != -1) owned by owner with one link. Returns the fd or -errno
 * (-ENOENT: there is none). */
static int
open_source(int dfd, const char *name, uid_t owner)
{
    struct stat st;
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0)
        return errno == ENOENT ? -ENOENT : say("cannot open", name, errno);
    if (fstat(fd, &st) != 0) {
        int rc = say("cannot stat", name, errno);
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode) || (owner != (uid_t)-1 && (st.st_uid != owner || st.st_nlink != 1))) {
        fprintf(stderr, "%s: %s: refused: not a regular file of uid %u with one link\n", prog, name,
                (unsigned)owner);
        close(fd);
        return -EPERM;
    }
    return fd;
}

/* Writes what `in` holds to dfd/name: into a fresh file of a random name
 * (O_CREAT | O_EXCL: never through anything already there), owned by
 * uid:gid, mode 0600, synced when `sync`, then renamed over name. Returns
 * 0 or -errno. */
static int
put(int dfd, const char *name, int in, uid_t uid, gid_t gid, bool sync)
{
    unsigned char rnd[8];
    char tmp[USER_MAX + 64];
    int fd = -1, rc;

    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return say("getrandom for", name, errno);
    snprintf(tmp, sizeof(tmp), ".%s.%02x%02x%02x%02x%02x%02x%02x%02x", name, rnd[0], rnd[1], rnd[2],
             rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return say("cannot create a temporary file for", name, errno);
    if (fchown(fd, uid, gid) != 0 || fchmod(fd, 0600) != 0) {
        rc = say("cannot hand over", name, errno);
        goto fail;
    }
    if ((rc = copy(in, fd)) != 0) {
        say("cannot copy", name, -rc);
        goto fail;
    }
    if ((sync && fsync(fd) != 0) || close(fd) != 0) {
        fd = -1;
        rc = say("cannot write", name, errno);
        goto fail;
    }
    fd = -1;
    if (renameat(dfd, tmp, dfd, name) != 0) {
        rc = say("cannot rename into place", name, errno);
        goto fail;
    }
    return 0;

fail:
    if (fd >= 0)
        close(fd);
    unlinkat(dfd, tmp, 0);
    return rc;
}

/* Copies from/user+ext to to/user+ext; owner: as open_source(). A missing
 * source is an error only when `required`. */
static int
move_file(int from, int to, const char *user, const char *ext, uid_t owner, uid_t uid, gid_t gid,
          bool required, bool sync)
{
    char name[USER_MAX + 8];

    snprintf(name, sizeof(name), "%s%s", user, ext);
    int in = open_source(from, name, owner);
    if (in == -ENOENT && !required)
        return 0;
    if (in == -ENOENT)
        return say("no state", name, ENOENT);
    if (in < 0)
        return in;
    int rc = put(to, name, in, uid, gid, sync);
    close(in);
    return rc;
}

int
main(int argc, char **argv)
{
    struct stat st;

    if (argc != 5 || (strcmp(argv[1], "fetch") != 0 && strcmp(argv[1], "store") != 0)) {
        fprintf(stderr, "usage: %s fetch|store STORE USER DIR\n", prog);
        return 2;
    }
    const char *user = argv[3];
    if (!user_ok(user)) {
        fprintf(stderr, "%s: bad user name '%s'\n", prog, user);
        return 2;
    }
    int store = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (store < 0) {
        say("cannot open the store", argv[2], errno);
        return 1;
    }
    /* DIR's owner is the instance's uid: airlock made it so, and only the
     * path up to DIR (airlock's) leads there */
    int dir = open(argv[4], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir < 0 || fstat(dir, &st) != 0) {
        say("cannot open the instance directory", argv[4], errno);
        return 1;
    }
    int rc;
    if (strcmp(argv[1], "fetch") == 0) {
        /* the certificate and key first: the database's arrival is the
         * server's signal that the user's state is complete */
        if ((rc = move_file(store, dir, user, ".crt", (uid_t)-1, st.st_uid, st.st_gid, false,
                            false)) == 0 &&
            (rc = move_file(store, dir, user, ".key", (uid_t)-1, st.st_uid, st.st_gid, false,
                            false)) == 0)
            rc = move_file(store, dir, user, ".db", (uid_t)-1, st.st_uid, st.st_gid, true, false);
    } else {
        rc = move_file(dir, store, user, ".db", st.st_uid, geteuid(), getegid(), true, true);
    }
    close(dir);
    close(store);
    return rc == 0 ? 0 : 1;
}
