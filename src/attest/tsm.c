/* tsm.c - the tsm provider: Linux configfs-tsm (Documentation/ABI/testing/
 * configfs-tsm). One report directory per request under the base directory:
 * mkdir it (the kernel fills in its attributes), write inblob (exactly 64
 * bytes: sev_guest and tdx_guest refuse other sizes) and optionally
 * privlevel, read provider and outblob, rmdir it. Every write to an
 * attribute bumps the report's generation; reading it before the writes and
 * after outblob tells whether another writer changed the request in between
 * (then the outblob may answer its inblob, not ours). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/provider.h"

#define TSM_OUTBLOB_MAX 65536 /* the kernel's is 32 KiB; a TDX quote is about 5 KiB */
#define TSM_ATTR_MAX 64       /* provider, generation */

/* Opens the attribute name of the report directory dirfd; it must be a
 * regular file (configfs attributes are). Returns the fd or -errno. */
static int
attr_open(int dirfd, const char *name, int flags)
{
    struct stat st;
    int fd = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    int e = fstat(fd, &st) != 0 ? -errno : !S_ISREG(st.st_mode) ? -EINVAL : 0;
    if (e != 0) {
        close(fd);
        return e;
    }
    return fd;
}

/* Reads the whole attribute into buf (cap bytes); returns its length or
 * -errno (-EFBIG: longer than cap). */
static ssize_t
attr_read(int dirfd, const char *name, uint8_t *buf, size_t cap)
{
    int fd = attr_open(dirfd, name, O_RDONLY);
    size_t n = 0;
    ssize_t r;

    if (fd < 0)
        return fd;
    while ((r = read(fd, buf + n, cap - n)) > 0)
        if ((n += (size_t)r) == cap)
            break;
    if (r >= 0 && n == cap) {
        uint8_t more;
        r = read(fd, &more, 1) > 0 ? -EFBIG : 0;
    } else if (r < 0) {
        r = -errno;
    }
    close(fd);
    return r < 0 ? r : (ssize_t)n;
}

/* Writes len bytes to the attribute in one write; configfs applies it when
 * the file is closed, so close() errors count. Returns 0 or -errno. */
static int
attr_write(int dirfd, const char *name, const void *data, size_t len)
{
    int fd = attr_open(dirfd, name, O_WRONLY);
    ssize_t w;
    int e = 0;

    if (fd < 0)
        return fd;
    if ((w = write(fd, data, len)) < 0)
        e = -errno;
    else if ((size_t)w != len)
        e = -EIO;
    if (close(fd) != 0 && e == 0)
        e = -errno;
    return e;
}

/* A short text attribute, without its trailing newline. */
static int
attr_text(int dirfd, const char *name, char *out)
{
    ssize_t n = attr_read(dirfd, name, (uint8_t *)out, TSM_ATTR_MAX - 1);

    if (n < 0)
        return (int)n;
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\0'))
        n--;
    out[n] = '\0';
    return 0;
}

static int
read_generation(int dirfd, uint64_t *gen, char *err)
{
    char s[TSM_ATTR_MAX], *end;
    int e = attr_text(dirfd, "generation", s);

    if (e != 0)
        return attest_provider_fail(err, e, "tsm: generation: %s", strerror(-e));
    errno = 0;
    *gen = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0)
        return attest_provider_fail(err, -EPROTO, "tsm: generation is not a number");
    return 0;
}

/* The kernel's provider name -> the kind of evidence its outblob holds. */
static int
provider_kind(const char *name, enum attest_kind *kind)
{
    if (strcmp(name, "sev_guest") == 0)
        *kind = ATTEST_KIND_SNP;
    else if (strcmp(name, "tdx_guest") == 0)
        *kind = ATTEST_KIND_TDX;
    else
        return -ENOTSUP;
    return 0;
}

/* The request inside the report directory dirfd (created by the caller). */
static int
tsm_request(int dirfd, const struct attest_provider_conf *conf, const struct attest_request *req,
            struct attest_evidence *ev, char *err)
{
    uint8_t inblob[ATTEST_REPORT_DATA_LEN] = {0};
    char name[TSM_ATTR_MAX];
    uint64_t before, after, writes = 1;
    ssize_t n;
    int e;

    if ((e = read_generation(dirfd, &before, err)) != 0)
        return e;
    if (req->report_data != NULL)
        memcpy(inblob, req->report_data, req->report_data_len);
    if ((e = attr_write(dirfd, "inblob", inblob, sizeof(inblob))) != 0)
        return attest_provider_fail(err, e, "tsm: inblob: %s", strerror(-e));
    if (conf->tsm_privlevel_set) {
        char level[16];
        int len = snprintf(level, sizeof(level), "%u\n", conf->tsm_privlevel);
        if ((e = attr_write(dirfd, "privlevel", level, (size_t)len)) != 0)
            return attest_provider_fail(err, e, "tsm: privlevel %u: %s", conf->tsm_privlevel,
                                        strerror(-e));
        writes++;
    }
    if ((e = attr_text(dirfd, "provider", name)) != 0)
        return attest_provider_fail(err, e, "tsm: provider: %s", strerror(-e));
    if (provider_kind(name, &ev->kind) != 0) {
        for (char *p = name; *p != '\0'; p++)
            if (*p < 0x20 || *p > 0x7e)
                *p = '?';
        return attest_provider_fail(
            err, -ENOTSUP, "tsm: provider \"%s\" is not supported (sev_guest, tdx_guest)", name);
    }
    if ((ev->data = malloc(TSM_OUTBLOB_MAX)) == NULL)
        return attest_provider_fail(err, -ENOMEM, "tsm: out of memory");
    if ((n = attr_read(dirfd, "outblob", ev->data, TSM_OUTBLOB_MAX)) <= 0) {
        e = n == 0 ? -ENODATA : (int)n;
        goto fail;
    }
    ev->len = (size_t)n;
    if ((e = read_generation(dirfd, &after, err)) != 0)
        goto fail_err;
    if (after != before + writes) {
        e = attest_provider_fail(err, -EBUSY,
                                 "tsm: generation went from %" PRIu64 " to %" PRIu64
                                 " over our %" PRIu64 " write(s): another writer changed the "
                                 "request",
                                 before, after, writes);
        goto fail_err;
    }
    return 0;
fail:
    attest_provider_fail(err, e, "tsm: outblob: %s", strerror(-e));
fail_err:
    attest_evidence_free(ev);
    return e;
}

static int
tsm_get(const struct attest_provider_conf *conf, const struct attest_request *req,
        struct attest_evidence *ev, char *err)
{
    static atomic_uint seq;
    const char *base = conf->tsm_dir != NULL ? conf->tsm_dir : ATTEST_TSM_DIR;
    char name[64];
    uint32_t rnd = 0;
    int basefd, dirfd = -1, e;

    if ((basefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return attest_provider_fail(err, -errno, "tsm: %s: %s", base, strerror(errno));
    /* a name no other process (or thread) picks: a directory someone else
     * made could be theirs to write */
    if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        rnd = 0;
    snprintf(name, sizeof(name), "airlock-%ld-%u-%08" PRIx32, (long)getpid(),
             atomic_fetch_add(&seq, 1), rnd);
    if (mkdirat(basefd, name, 0700) != 0) {
        e = attest_provider_fail(err, -errno, "tsm: mkdir %s/%s: %s", base, name, strerror(errno));
        close(basefd);
        return e;
    }
    if ((dirfd = openat(basefd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        e = attest_provider_fail(err, -errno, "tsm: %s/%s: %s", base, name, strerror(errno));
    else
        e = tsm_request(dirfd, conf, req, ev, err);
    if (dirfd >= 0)
        close(dirfd);
    /* always: a report left behind holds kernel memory until someone
     * removes it */
    if (unlinkat(basefd, name, AT_REMOVEDIR) != 0 && e == 0) {
        e = attest_provider_fail(err, -errno, "tsm: rmdir %s/%s: %s", base, name, strerror(errno));
        attest_evidence_free(ev);
    }
    close(basefd);
    return e;
}

const struct attest_provider attest_provider_tsm = {
    .name = "tsm",
    .takes_nonce = false,
    .get = tsm_get,
};
