/* fake_tsm.c - a FUSE file system that behaves like Linux configfs-tsm's
 * report directory for the tsm provider's tests. It is NOT the kernel: no
 * TEE produces anything here; outblob is a recorded file (a real SEV-SNP
 * report or TDX quote).
 *
 *   fake_tsm MOUNTPOINT --outblob FILE [--provider NAME] [--race] [--log FILE]
 *
 * As configfs does: mkdir at the top makes a report directory with inblob,
 * privlevel, provider, outblob and generation; rmdir removes it with them;
 * every write to inblob or privlevel bumps generation. --provider NAME is
 * what provider reads (without it there is no provider attribute); --race
 * makes reading outblob bump generation too, as a concurrent writer's inblob
 * would. --log appends "inblob HEX" and "privlevel N" for each write, and
 * "mkdir"/"rmdir" lines. Runs in the foreground, single-threaded, and
 * unmounts itself when it dies (auto_unmount). */
#define FUSE_USE_VERSION 31
#include <errno.h>
#include <fuse.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPORTS_MAX 16
#define NAME_MAX_LEN 128
#define INBLOB_MAX 64

struct report {
    bool used;
    char name[NAME_MAX_LEN];
    unsigned long generation;
};

static struct report reports[REPORTS_MAX];
static const char *provider;
static bool race;
static FILE *logfp;
static char *outblob;
static size_t outblob_len;

static const char *const attrs[] = {"inblob", "privlevel", "provider", "outblob", "generation"};

static void
log_line(const char *fmt, const char *name, const unsigned char *data, size_t len)
{
    if (logfp == NULL)
        return;
    fprintf(logfp, fmt, name);
    for (size_t i = 0; i < len; i++)
        fprintf(logfp, "%02x", data[i]);
    fputc('\n', logfp);
    fflush(logfp);
}

/* Splits "/report/attr": the report (or NULL) and the attribute (or NULL). */
static int
lookup(const char *path, struct report **rep, const char **attr)
{
    char name[NAME_MAX_LEN];
    const char *slash;
    size_t n;

    *rep = NULL;
    *attr = NULL;
    if (strcmp(path, "/") == 0)
        return 0;
    path++;
    slash = strchr(path, '/');
    n = slash != NULL ? (size_t)(slash - path) : strlen(path);
    if (n >= NAME_MAX_LEN)
        return -ENOENT;
    memcpy(name, path, n);
    name[n] = '\0';
    for (int i = 0; i < REPORTS_MAX; i++)
        if (reports[i].used && strcmp(reports[i].name, name) == 0)
            *rep = &reports[i];
    if (*rep == NULL)
        return -ENOENT;
    if (slash == NULL)
        return 0;
    for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
        if (strcmp(slash + 1, attrs[i]) == 0 && (provider != NULL || strcmp(attrs[i], "provider")))
            *attr = attrs[i];
    return *attr != NULL ? 0 : -ENOENT;
}

static int
fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    struct report *rep;
    const char *attr;
    int e = lookup(path, &rep, &attr);

    (void)fi;
    if (e != 0)
        return e;
    memset(st, 0, sizeof(*st));
    st->st_mode = attr == NULL ? S_IFDIR | 0755 : S_IFREG | 0644;
    st->st_nlink = attr == NULL ? 2 : 1;
    st->st_size = attr == NULL ? 0 : 4096; /* as configfs says */
    return 0;
}

static int
fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi,
           enum fuse_readdir_flags flags)
{
    struct report *rep;
    const char *attr;
    int e = lookup(path, &rep, &attr);

    (void)off, (void)fi, (void)flags;
    if (e != 0 || attr != NULL)
        return e != 0 ? e : -ENOTDIR;
    fill(buf, ".", NULL, 0, 0);
    fill(buf, "..", NULL, 0, 0);
    for (int i = 0; rep == NULL && i < REPORTS_MAX; i++)
        if (reports[i].used)
            fill(buf, reports[i].name, NULL, 0, 0);
    for (size_t i = 0; rep != NULL && i < sizeof(attrs) / sizeof(attrs[0]); i++)
        if (provider != NULL || strcmp(attrs[i], "provider") != 0)
            fill(buf, attrs[i], NULL, 0, 0);
    return 0;
}

static int
fs_mkdir(const char *path, mode_t mode)
{
    (void)mode;
    if (strchr(path + 1, '/') != NULL || strlen(path + 1) >= NAME_MAX_LEN)
        return -EPERM;
    for (int i = 0; i < REPORTS_MAX; i++)
        if (reports[i].used && strcmp(reports[i].name, path + 1) == 0)
            return -EEXIST;
    for (int i = 0; i < REPORTS_MAX; i++)
        if (!reports[i].used) {
            reports[i] = (struct report){.used = true};
            strcpy(reports[i].name, path + 1);
            log_line("mkdir %s", path + 1, NULL, 0);
            return 0;
        }
    return -ENOSPC;
}

static int
fs_rmdir(const char *path)
{
    struct report *rep;
    const char *attr;
    int e = lookup(path, &rep, &attr);

    if (e != 0 || rep == NULL || attr != NULL)
        return e != 0 ? e : -EPERM;
    log_line("rmdir %s", rep->name, NULL, 0);
    rep->used = false;
    return 0;
}

static int
fs_open(const char *path, struct fuse_file_info *fi)
{
    struct report *rep;
    const char *attr;
    int e = lookup(path, &rep, &attr);

    if (e != 0 || attr == NULL)
        return e != 0 ? e : -EISDIR;
    fi->direct_io = 1; /* every read and write reaches us, as in configfs */
    return 0;
}

static int
fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    struct report *rep;
    const char *attr;
    char text[64];
    const char *src = text;
    size_t len;

    (void)fi;
    if (lookup(path, &rep, &attr) != 0 || attr == NULL)
        return -ENOENT;
    if (strcmp(attr, "generation") == 0) {
        len = (size_t)snprintf(text, sizeof(text), "%lu\n", rep->generation);
    } else if (strcmp(attr, "provider") == 0) {
        len = (size_t)snprintf(text, sizeof(text), "%s\n", provider);
    } else if (strcmp(attr, "outblob") == 0) {
        if (race && off == 0)
            rep->generation++;
        src = outblob;
        len = outblob_len;
    } else {
        return -EACCES; /* inblob and privlevel are write-only here */
    }
    if ((size_t)off >= len)
        return 0;
    size = size < len - (size_t)off ? size : len - (size_t)off;
    memcpy(buf, src + off, size);
    return (int)size;
}

static int
fs_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    struct report *rep;
    const char *attr;

    (void)fi;
    if (lookup(path, &rep, &attr) != 0 || attr == NULL)
        return -ENOENT;
    if (strcmp(attr, "inblob") == 0) {
        if ((size_t)off + size > INBLOB_MAX)
            return -EFBIG;
        log_line("inblob %s", "", (const unsigned char *)buf, size);
    } else if (strcmp(attr, "privlevel") == 0) {
        if (logfp != NULL)
            fprintf(logfp, "privlevel %.*s", (int)size, buf), fflush(logfp);
    } else {
        return -EACCES;
    }
    rep->generation++;
    return (int)size;
}

static int
fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    (void)path, (void)size, (void)fi;
    return 0;
}

static void *
fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    cfg->direct_io = 1;
    cfg->entry_timeout = 0;
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    return NULL;
}

static const struct fuse_operations ops = {
    .init = fs_init,
    .getattr = fs_getattr,
    .readdir = fs_readdir,
    .mkdir = fs_mkdir,
    .rmdir = fs_rmdir,
    .open = fs_open,
    .read = fs_read,
    .write = fs_write,
    .truncate = fs_truncate,
};

int
main(int argc, char **argv)
{
    const char *blob = NULL;
    FILE *f;
    long n;

    if (argc < 2) {
        fprintf(stderr, "usage: fake_tsm MOUNTPOINT --outblob FILE [--provider NAME] [--race] "
                        "[--log FILE]\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--race") == 0)
            race = true;
        else if (strcmp(argv[i], "--outblob") == 0 && i + 1 < argc)
            blob = argv[++i];
        else if (strcmp(argv[i], "--provider") == 0 && i + 1 < argc)
            provider = argv[++i];
        else if (strcmp(argv[i], "--log") == 0 && i + 1 < argc &&
                 (logfp = fopen(argv[++i], "a")) != NULL)
            continue;
        else
            return fprintf(stderr, "fake_tsm: bad argument %s\n", argv[i]), 2;
    }
    if (blob == NULL || (f = fopen(blob, "rb")) == NULL || fseek(f, 0, SEEK_END) != 0 ||
        (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) != 0 ||
        (outblob = malloc((size_t)n)) == NULL || fread(outblob, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "fake_tsm: cannot read the --outblob file\n");
        return 2;
    }
    fclose(f);
    outblob_len = (size_t)n;
    char *fargv[] = {argv[0], argv[1], "-f", "-s", "-o", "auto_unmount", NULL};
    return fuse_main(6, fargv, &ops, NULL);
}
