/* state.c - see state.h. */
#include "pool/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/privdir.h"
#include "pool/template.h"

#define STATE_NAME_MAX (NAME_MAX - 20) /* room for the temporary name's ".NAME.<16 hex>" */
#define STATE_FILES_MAX (3 * CONF_ARGV_MAX)
#define STATE_WHY_MAX (CONF_FILE_PATH_MAX + 2 * NAME_MAX) /* a path, a name, a message */

struct state_file {
    char name[STATE_NAME_MAX + 1];
    bool required;
    char tmp[NAME_MAX + 1]; /* its copy not yet renamed into place: "" when none */
};

struct state_xfer {
    enum state_way way;
    char store[CONF_FILE_PATH_MAX];
    int dir;       /* the instance directory */
    uid_t dir_uid; /* its owner: the instance's uid and gid */
    gid_t dir_gid;
    size_t max_size;    /* of each file copied: max_file_size to the store, SIZE_MAX from it */
    size_t max_session; /* of all of them: max_session_size to the store, SIZE_MAX from it */
    size_t copied;      /* bytes copied so far */
    char why[STATE_WHY_MAX];
    size_t n;
    struct state_file files[STATE_FILES_MAX];
};

static int
say(struct state_xfer *x, const char *what, const char *name, int err)
{
    snprintf(x->why, sizeof(x->why), "%s %s: %s", what, name, strerror(err));
    return -err;
}

/* Adds the names of a, expanded for user, to x. */
static int
add_names(struct state_xfer *x, const struct argv_conf *a, const char *user, bool required,
          char *why, size_t whylen)
{
    struct tmpl_vars tv = {.user = user};
    const char *bad = NULL;

    for (size_t i = 0; i < a->n; i++) {
        struct state_file *f = &x->files[x->n];
        int rc = tmpl_expand(a->arg[i], &tv, f->name, sizeof(f->name), &bad);
        if (rc == 0 && (f->name[0] == '\0' || f->name[0] == '.' || strchr(f->name, '/') != NULL))
            rc = -EINVAL;
        if (rc != 0) {
            snprintf(why, whylen, "%s for user %s: not a plain file name (at most %d bytes)",
                     a->arg[i], user, STATE_NAME_MAX);
            return rc;
        }
        f->required = required;
        x->n++;
    }
    return 0;
}

struct state_xfer *
state_xfer_new(const struct state_conf *sc, enum state_way way, const char *user, const char *dir,
               int *err, char *why, size_t whylen)
{
    struct state_xfer *x = calloc(1, sizeof(*x));
    struct stat st;
    int rc = -ENOMEM;

    if (x == NULL) {
        snprintf(why, whylen, "out of memory");
        goto fail;
    }
    x->way = way;
    x->dir = -1;
    /* the store is airlock's: what is in it came through the bound below
     * or from the operator, and a bound lowered since must not keep a user
     * from the state it stored under the old one */
    x->max_size = way == STATE_STORE ? sc->max_file_size : SIZE_MAX;
    x->max_session = way == STATE_STORE ? sc->max_session_size : SIZE_MAX;
    snprintf(x->store, sizeof(x->store), "%s", sc->store);
    if (way == STATE_FETCH) {
        if ((rc = add_names(x, &sc->fetch_optional, user, false, why, whylen)) != 0 ||
            (rc = add_names(x, &sc->fetch, user, true, why, whylen)) != 0)
            goto fail;
    } else if ((rc = add_names(x, &sc->store_back, user, true, why, whylen)) != 0) {
        goto fail;
    }
    /* the path is airlock's up to the instance's own directory, which only
     * airlock can rename */
    if ((x->dir = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
        fstat(x->dir, &st) != 0) {
        rc = -errno;
        snprintf(why, whylen, "cannot open the instance directory %s: %s", dir, strerror(-rc));
        goto fail;
    }
    x->dir_uid = st.st_uid;
    x->dir_gid = st.st_gid;
    return x;

fail:
    state_xfer_free(x);
    *err = rc;
    return NULL;
}

/* Returns 0 when in has nothing left to read, -EFBIG when it has, or
 * -errno. */
static int
at_end(int in)
{
    char c;
    ssize_t n;

    while ((n = read(in, &c, 1)) < 0 && errno == EINTR)
        ;
    return n == 0 ? 0 : n > 0 ? -EFBIG : -errno;
}

/* Copies all of in to out, which is empty, if in holds at most max bytes:
 * a reflink where the filesystem shares blocks, else copy_file_range() (in
 * the kernel), else read/write (across filesystems that cannot). The size
 * in had when it was opened does not count: a writer may still be growing
 * it, so the copy stops at max bytes (a reflink shares in's blocks, and is
 * measured after). Returns 0 with *size the bytes copied, -EFBIG when in
 * holds more than max (out must then be dropped), or -errno. */
static int
copy_all(int in, int out, size_t max, size_t *size)
{
    char buf[65536];
    bool copied = false;
    size_t done = 0;
    struct stat st;
    ssize_t n;

    if (ioctl(out, FICLONE, in) == 0) {
        if (fstat(out, &st) != 0)
            return -errno;
        *size = (size_t)st.st_size;
        return (uint64_t)st.st_size > max ? -EFBIG : 0;
    }
    *size = 0;
    while (done < max) {
        n = copy_file_range(in, NULL, out, NULL, max - done < SSIZE_MAX ? max - done : SSIZE_MAX,
                            0);
        if (n == 0)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && !copied &&
            (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP || errno == ENOSYS))
            goto by_hand;
        if (n < 0)
            return -errno;
        copied = true;
        done += (size_t)n;
        *size = done;
    }
    return at_end(in);

by_hand:
    while (done < max) {
        n = read(in, buf, max - done < sizeof(buf) ? max - done : sizeof(buf));
        if (n == 0)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno != EINTR)
                return -errno;
            off += w > 0 ? w : 0;
        }
        done += (size_t)n;
        *size = done;
    }
    return at_end(in);
}

/* The most that the next file may hold: the smaller of each file's bound
 * and what is left of the session's. */
static size_t
room(const struct state_xfer *x)
{
    size_t left = x->max_session - x->copied;

    return left < x->max_size ? left : x->max_size;
}

/* Says that name holds more than the store takes (what: how much), by the
 * bound that room() took; returns -EFBIG. */
static int
too_big(struct state_xfer *x, const char *name, const char *what)
{
    bool session = x->max_session - x->copied < x->max_size;

    snprintf(x->why, sizeof(x->why), "%s refused: %s more than %s (%zu bytes)", name, what,
             session ? "max_session_size" : "max_file_size",
             session ? x->max_session : x->max_size);
    return -EFBIG;
}

/* Opens name in dfd for reading: a regular file, never through a link, of
 * at most room() bytes, and (check_owner) of uid owner with one link.
 * Returns the fd, -ENOENT (there is none) or -errno. */
static int
open_source(struct state_xfer *x, int dfd, const char *name, bool check_owner, uid_t owner)
{
    struct stat st;
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0)
        return errno == ENOENT ? -ENOENT : say(x, "cannot open", name, errno);
    if (fstat(fd, &st) != 0) {
        int rc = say(x, "cannot stat", name, errno);
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode) || (check_owner && (st.st_uid != owner || st.st_nlink != 1))) {
        snprintf(x->why, sizeof(x->why), "%s refused: not a regular file%s", name,
                 check_owner ? " of the instance's uid with one link" : "");
        close(fd);
        return -EPERM;
    }
    /* refused before a byte is copied: a sparse file costs the instance
     * nothing, its copy would fill the store and hold an env thread */
    if ((uint64_t)st.st_size > room(x)) {
        char what[96];
        if (room(x) < x->max_size)
            snprintf(what, sizeof(what),
                     "%lld bytes with the %zu bytes of the session's files before it,",
                     (long long)st.st_size, x->copied);
        else
            snprintf(what, sizeof(what), "%lld bytes,", (long long)st.st_size);
        close(fd);
        return too_big(x, name, what);
    }
    return fd;
}

/* Writes what in holds to a fresh file of dfd for f (a random name,
 * O_CREAT | O_EXCL: never through anything already there, kept in f->tmp),
 * owned by uid:gid, mode 0600, synced when sync, of at most room() bytes
 * (counted in x->copied). Returns 0 or -errno, with f->tmp removed. */
static int
put(struct state_xfer *x, int dfd, struct state_file *f, int in, uid_t uid, gid_t gid, bool sync)
{
    unsigned char rnd[8];
    size_t size = 0, max = room(x);
    int fd = -1, rc;

    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return say(x, "getrandom for", f->name, errno);
    snprintf(f->tmp, sizeof(f->tmp), ".%s.%02x%02x%02x%02x%02x%02x%02x%02x", f->name, rnd[0],
             rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    fd = openat(dfd, f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = say(x, "cannot create a temporary file for", f->name, errno);
        f->tmp[0] = '\0';
        return rc;
    }
    if (fchown(fd, uid, gid) != 0 || fchmod(fd, 0600) != 0) {
        rc = say(x, "cannot hand over", f->name, errno);
        goto fail;
    }
    if ((rc = copy_all(in, fd, max, &size)) == -EFBIG && x->way == STATE_STORE) {
        too_big(x, f->name, "it grew while it was copied,");
        goto fail;
    }
    if (rc != 0) {
        say(x, "cannot copy", f->name, -rc);
        goto fail;
    }
    if (sync && fsync(fd) != 0) {
        rc = say(x, "cannot write", f->name, errno);
        goto fail;
    }
    rc = close(fd);
    fd = -1;
    if (rc != 0) {
        rc = say(x, "cannot write", f->name, errno);
        goto fail;
    }
    x->copied += size;
    return 0;

fail:
    if (fd >= 0)
        close(fd);
    unlinkat(dfd, f->tmp, 0);
    f->tmp[0] = '\0';
    return rc;
}

/* Renames the copies of x into place, in the order of x's names; on the
 * first failure, or when rc is one already, removes the copies left.
 * Returns rc, or the -errno of the failed rename. */
static int
put_all(struct state_xfer *x, int dfd, int rc)
{
    for (size_t i = 0; i < x->n; i++) {
        struct state_file *f = &x->files[i];
        if (f->tmp[0] == '\0')
            continue;
        if (rc == 0 && renameat(dfd, f->tmp, dfd, f->name) != 0)
            rc = say(x, "cannot rename into place", f->name, errno);
        else if (rc != 0)
            unlinkat(dfd, f->tmp, 0);
        f->tmp[0] = '\0';
    }
    return rc;
}

int
state_xfer_run(void *arg)
{
    struct state_xfer *x = arg;
    bool fetch = x->way == STATE_FETCH;
    int store = open(x->store, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

    if (store < 0)
        return say(x, "cannot open the store", x->store, errno);
    int from = fetch ? store : x->dir, to = fetch ? x->dir : store;
    /* all or nothing: every file is copied (and synced) before the first
     * rename, so that a refusal or a failure leaves the user's previous
     * set whole, never this session's A beside the last one's B */
    for (size_t i = 0; i < x->n && rc == 0; i++) {
        struct state_file *f = &x->files[i];
        int in = open_source(x, from, f->name, !fetch, x->dir_uid);
        if (in == -ENOENT && !f->required)
            continue;
        if (in == -ENOENT)
            say(x, "no state", f->name, ENOENT);
        if (in < 0) {
            rc = in;
            break;
        }
        rc = fetch ? put(x, to, f, in, x->dir_uid, x->dir_gid, false)
                   : put(x, to, f, in, geteuid(), getegid(), true);
        close(in);
    }
    rc = put_all(x, to, rc);
    /* the renames themselves survive a crash of the machine */
    if (rc == 0 && !fetch && fsync(store) != 0)
        rc = say(x, "cannot sync", x->store, errno);
    close(store);
    return rc;
}

int
state_conf_check_host(const struct state_conf *sc, char *why, size_t len)
{
    int fd, rc;

    if (sc->store[0] == '\0')
        return 0;
    /* as the transfers open it */
    if ((fd = open(sc->store, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = -errno;
        snprintf(why, len, "state.store: expected a directory, not %s (%s)", sc->store,
                 strerror(-rc));
        return rc;
    }
    close(fd);
    /* the users' files: no instance may plant a link or a name there */
    char what[STATE_WHY_MAX];
    if ((rc = privdir_check(sc->store, what, sizeof(what))) != 0)
        snprintf(why, len, "state.store: %s", what);
    return rc;
}

int
state_store_lock(const char *store, bool shared, char *why, size_t len)
{
    int fd = open(store, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), rc;

    if (fd < 0) {
        rc = -errno;
        snprintf(why, len, "state.store: cannot open %s: %s", store, strerror(-rc));
        return rc;
    }
    /* a lock of the open directory, not of a file in it: nothing to plant
     * or to leave behind, and the kernel drops it with the last fd, also
     * when airlock is killed (O_CLOEXEC: no instance or hook inherits it) */
    if (flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
        if (rc == -EBUSY)
            snprintf(why, len,
                     "state.store: %s is in use by another pool (of this airlock or "
                     "another process): one pool per store%s",
                     store, shared ? ", or the nodes of one cluster" : "");
        else
            snprintf(why, len, "state.store: cannot lock %s: %s", store, strerror(-rc));
        close(fd);
        return rc;
    }
    return fd;
}

/* Whether name is ".NAME.<16 hex digits>", a temporary of put(), with NAME
 * of the shape of one of sc's state files. */
static bool
temporary_of(const struct state_conf *sc, const char *name)
{
    const struct argv_conf *lists[] = {&sc->fetch_optional, &sc->fetch, &sc->store_back};
    static const char hex[] = "0123456789abcdef";
    size_t len = strlen(name);
    char base[NAME_MAX + 1];

    if (len < 1 + 1 + 1 + 16 || name[0] != '.' || name[1] == '.' || name[len - 17] != '.' ||
        strspn(name + len - 16, hex) != 16)
        return false;
    snprintf(base, sizeof(base), "%.*s", (int)(len - 18), name + 1);
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        for (size_t j = 0; j < lists[i]->n; j++)
            if (tmpl_match(lists[i]->arg[j], base))
                return true;
    return false;
}

int
state_store_sweep(const struct state_conf *sc, unsigned *removed)
{
    int fd = open(sc->store, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), rc = 0;
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;
    struct stat st;

    *removed = 0;
    if (d == NULL) {
        rc = -errno;
        if (fd >= 0)
            close(fd);
        return rc;
    }
    /* what put() creates is airlock's own regular file: anything else
     * (another owner's, a link, a directory) was not left by a crash */
    while ((de = readdir(d)) != NULL) {
        if (!temporary_of(sc, de->d_name) ||
            fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
            st.st_uid != geteuid())
            continue;
        if (unlinkat(fd, de->d_name, 0) == 0)
            (*removed)++;
        else if (rc == 0)
            rc = -errno;
    }
    closedir(d);
    return rc;
}

const char *
state_xfer_why(const struct state_xfer *x)
{
    return x->why;
}

void
state_xfer_free(void *arg)
{
    struct state_xfer *x = arg;

    if (x == NULL)
        return;
    if (x->dir >= 0)
        close(x->dir);
    free(x);
}
