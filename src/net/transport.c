/* transport.c - listen, connect and address helpers for each endpoint kind. */
#include "net/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* How each kind builds its address; tcp needs resolution for names. */
struct transport {
    const char *name;
    int (*addr)(const struct endpoint *ep, struct sockaddr_storage *ss, socklen_t *len);
};

static int
inet_addr_of(const struct endpoint *ep, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, ep->host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)ep->port);
        *len = sizeof(*sin);
        return 0;
    }
    if (inet_pton(AF_INET6, ep->host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)ep->port);
        *len = sizeof(*sin6);
        return 0;
    }
    return -EAGAIN;
}

static int
unix_addr_of(const struct endpoint *ep, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)ss;
    size_t n = strlen(ep->path);

    memset(ss, 0, sizeof(*ss));
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, ep->path, n);
    if (ep->path[0] == '@') /* abstract: a leading NUL, no terminator */
        sun->sun_path[0] = '\0';
    else
        n++;
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    return 0;
}

static int
vsock_addr_of(const struct endpoint *ep, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_vm *svm = (struct sockaddr_vm *)ss;

    memset(ss, 0, sizeof(*ss));
    svm->svm_family = AF_VSOCK;
    svm->svm_cid = ep->cid;
    svm->svm_port = ep->port;
    *len = sizeof(*svm);
    return 0;
}

static const struct transport transports[] = {
    [EP_TCP] = {.name = "tcp", .addr = inet_addr_of},
    [EP_UDP] = {.name = "udp", .addr = inet_addr_of},
    [EP_UNIX] = {.name = "unix", .addr = unix_addr_of},
    [EP_VSOCK] = {.name = "vsock", .addr = vsock_addr_of},
    [EP_HVSOCK] = {.name = "hvsock", .addr = unix_addr_of},
};

int
transport_addr(const struct endpoint *ep, struct sockaddr_storage *ss, socklen_t *len)
{
    return transports[ep->kind].addr(ep, ss, len);
}

static int
is_fs_path(const struct endpoint *ep)
{
    return (ep->kind == EP_UNIX || ep->kind == EP_HVSOCK) && ep->path[0] != '@';
}

/* A socket file whose listener is gone refuses connections: only then is
 * it safe to remove, so two processes never steal each other's path. */
static int
unix_path_free(const struct sockaddr *sa, socklen_t len, const char *path)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode))
        return -EEXIST;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = connect(fd, sa, len);
    int err = errno;
    close(fd);
    if (rc == 0)
        return -EADDRINUSE;
    if (err != ECONNREFUSED)
        return -err;
    return unlink(path) == 0 ? 0 : -errno;
}

/* A user or group given as a number: digits only. */
static int
id_number(const char *s, unsigned long *out)
{
    char *end;

    if (s[0] < '0' || s[0] > '9')
        return -EINVAL;
    errno = 0;
    *out = strtoul(s, &end, 10);
    return errno != 0 || *end != '\0' || *out >= (unsigned long)UINT32_MAX ? -EINVAL : 0;
}

int
transport_perm_ids(const struct ep_perm *perm, uid_t *uid, gid_t *gid)
{
    char buf[4096];
    unsigned long n;

    *uid = (uid_t)-1;
    *gid = (gid_t)-1;
    if (perm->owner[0] != '\0') {
        struct passwd pw, *found = NULL;
        if (id_number(perm->owner, &n) == 0) {
            *uid = (uid_t)n;
        } else {
            int rc = getpwnam_r(perm->owner, &pw, buf, sizeof(buf), &found);
            if (found == NULL)
                return rc != 0 ? -rc : -ENOENT;
            *uid = pw.pw_uid;
        }
    }
    if (perm->group[0] != '\0') {
        struct group gr, *found = NULL;
        if (id_number(perm->group, &n) == 0) {
            *gid = (gid_t)n;
        } else {
            int rc = getgrnam_r(perm->group, &gr, buf, sizeof(buf), &found);
            if (found == NULL)
                return rc != 0 ? -rc : -ENOENT;
            *gid = gr.gr_gid;
        }
    }
    return 0;
}

/* Gives the socket file at path its owner, group and mode. It is opened
 * without following a symlink and must be a socket of ours, so that a file
 * put in its place meanwhile is never changed; the mode is set through
 * /proc (chmod() has no flag for an O_PATH descriptor). Without /proc (a
 * minimal enclave) the path itself is changed if it still is that socket. */
static int
unix_path_perm(const char *path, unsigned mode, uid_t uid, gid_t gid)
{
    char proc[32];
    struct stat st, again;
    int rc = 0, fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    if (fstat(fd, &st) != 0)
        rc = -errno;
    else if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid())
        rc = -EEXIST;
    else if ((uid != (uid_t)-1 || gid != (gid_t)-1) &&
             fchownat(fd, "", uid, gid, AT_EMPTY_PATH) != 0)
        rc = -errno;
    else if (chmod(proc, mode) == 0)
        rc = 0;
    else if (errno != ENOENT)
        rc = -errno;
    else if (lstat(path, &again) != 0 || again.st_ino != st.st_ino || again.st_dev != st.st_dev)
        rc = -EEXIST;
    else if (chmod(path, mode) != 0)
        rc = -errno;
    close(fd);
    return rc;
}

static unsigned
perm_mode(const struct endpoint *ep)
{
    return ep->perm.mode != 0 ? ep->perm.mode : TRANSPORT_UNIX_MODE;
}

int
transport_chperm(const struct endpoint *ep, const struct endpoint *old)
{
    uid_t uid;
    gid_t gid;
    int rc;

    if (!is_fs_path(ep) || memcmp(&ep->perm, &old->perm, sizeof(ep->perm)) == 0)
        return 0;
    if ((rc = transport_perm_ids(&ep->perm, &uid, &gid)) != 0)
        return rc;
    return unix_path_perm(ep->path, perm_mode(ep), uid, gid);
}

int
transport_listen(const struct endpoint *ep)
{
    struct sockaddr_storage ss;
    socklen_t len;
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;
    bool bound = false;
    int one = 1, rc;

    rc = transport_addr(ep, &ss, &len);
    if (rc != 0)
        return rc == -EAGAIN ? -EADDRNOTAVAIL : rc; /* listeners take literals */
    if (is_fs_path(ep) && ((rc = transport_perm_ids(&ep->perm, &uid, &gid)) != 0 ||
                           (rc = unix_path_free((struct sockaddr *)&ss, len, ep->path)) != 0))
        return rc;
    int type = ep->kind == EP_UDP ? SOCK_DGRAM : SOCK_STREAM;
    int fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* bind() creates the file with the socket's own mode less the umask:
     * the owner's bits only, so that nobody else can connect before
     * unix_path_perm() set the owner, group and whole mode */
    if (is_fs_path(ep) && fchmod(fd, perm_mode(ep) & 0700) != 0) {
        rc = -errno;
        goto fail;
    }
    /* not for udp: there SO_REUSEADDR lets a second process bind the same
     * port and quietly take its datagrams */
    if (ep->kind == EP_TCP)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ep->kind == EP_TCP || ep->kind == EP_UDP) {
        if (ss.ss_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
        rc = -errno;
        goto fail;
    }
    bound = true;
    if (is_fs_path(ep) && (rc = unix_path_perm(ep->path, perm_mode(ep), uid, gid)) != 0)
        goto fail;
    if (type == SOCK_STREAM && listen(fd, SOMAXCONN) != 0) {
        rc = -errno;
        goto fail;
    }
    return fd;

fail:
    if (bound)
        transport_unlisten(ep);
    close(fd);
    return rc;
}

void
transport_unlisten(const struct endpoint *ep)
{
    if (is_fs_path(ep))
        unlink(ep->path);
}

int
transport_accept(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            return fd;
        if (errno != ECONNABORTED && errno != EINTR)
            return -errno;
    }
}

int
transport_hvsock_answer(int fd, const char *line, uint32_t port)
{
    char want[32], reply[32];

    /* only the canonical form: a line that differs is not from a device */
    snprintf(want, sizeof(want), "CONNECT %u", port);
    if (strcmp(line, want) != 0)
        return -EINVAL;
    int len = snprintf(reply, sizeof(reply), "OK %u\n", port);
    return write(fd, reply, (size_t)len) == len ? 0 : -EIO;
}

int
transport_hvsock_hello(int fd, uint32_t port)
{
    char line[32];
    int len = snprintf(line, sizeof(line), "CONNECT %u\n", port);

    return write(fd, line, (size_t)len) == len ? 0 : -EIO;
}

uint32_t
transport_port(const struct sockaddr *sa)
{
    switch (sa->sa_family) {
    case AF_INET:
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    case AF_INET6:
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    case AF_VSOCK:
        return ((const struct sockaddr_vm *)sa)->svm_port;
    default:
        return 0;
    }
}

/* Starts a connect to sa from port (0: any). Returns the fd (and
 * *pending), or -errno: of the bind (-EADDRINUSE: the port is taken;
 * -EACCES: the process may not bind it) or of the connect (-EADDRNOTAVAIL:
 * this pair of addresses is still in TIME_WAIT). */
static int
connect_from(const struct sockaddr *sa, socklen_t len, uint16_t port, bool *pending)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;

    if (fd < 0)
        return -errno;
    *pending = false;
    if (port != 0) {
        union {
            struct sockaddr_in in;
            struct sockaddr_in6 in6;
            struct sockaddr_vm vm;
        } a = {0};
        socklen_t alen = sizeof(a.vm);
        if (sa->sa_family == AF_INET) {
            a.in = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(port)};
            alen = sizeof(a.in);
        } else if (sa->sa_family == AF_INET6) {
            a.in6 = (struct sockaddr_in6){.sin6_family = AF_INET6, .sin6_port = htons(port)};
            alen = sizeof(a.in6);
        } else {
            a.vm = (struct sockaddr_vm){
                .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
        }
        /* a port held by a connection does not keep a listener of its
         * (SO_REUSEADDR) from binding it, now or in TIME_WAIT */
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
            bind(fd, (struct sockaddr *)&a, alen) != 0) {
            int rc = -errno;
            close(fd);
            return rc;
        }
    }
    if (connect(fd, sa, len) == 0)
        return fd;
    /* unix sockets answer EAGAIN when the backlog is full: treat it as a
     * failure rather than spin. */
    if (errno == EINPROGRESS) {
        *pending = true;
        return fd;
    }
    int rc = -errno;
    close(fd);
    return rc;
}

int
transport_connect(const struct sockaddr *sa, socklen_t len, bool reserved, bool *pending)
{
    const unsigned n = TRANSPORT_RESERVED_HI - TRANSPORT_RESERVED_LO + 1;
    unsigned start;

    if (!reserved || transport_port(sa) == 0)
        return connect_from(sa, len, 0, pending);
    /* from a random start: processes that start together take different ports */
    if (getrandom(&start, sizeof(start), GRND_NONBLOCK) != (ssize_t)sizeof(start))
        start = (unsigned)getpid();
    for (unsigned i = 0; i < n; i++) {
        uint16_t port = (uint16_t)(TRANSPORT_RESERVED_LO + (start + i) % n);
        int fd = connect_from(sa, len, port, pending);
        if (fd == -EACCES || fd == -EPERM)
            break; /* not allowed: from any port */
        if (fd != -EADDRINUSE && fd != -EADDRNOTAVAIL)
            return fd; /* connecting, or failed for a reason that is not the port */
    }
    return connect_from(sa, len, 0, pending);
}

#define UDP_TRIES 8 /* ports the kernel is asked for before a connect gives up */

/* When each local UDP port was last given back (a monotonic second, plus
 * one: 0 is never), by every relay of the process. */
static _Atomic uint32_t udp_released[65536];

static uint32_t
mono_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)ts.tv_sec + 1;
}

static uint16_t
local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

int
transport_udp_connect(const struct sockaddr *sa, socklen_t len)
{
    int aside[UDP_TRIES], n_aside = 0, fd = -EADDRINUSE;
    uint32_t now = mono_seconds();

    for (int i = 0; i < UDP_TRIES; i++) {
        if ((fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
            fd = -errno;
            break;
        }
        if (connect(fd, sa, len) != 0) {
            int rc = -errno;
            close(fd);
            fd = rc;
            break;
        }
        uint32_t at = atomic_load_explicit(&udp_released[local_port(fd)], memory_order_relaxed);
        if (at == 0 || now - at >= TRANSPORT_UDP_QUARANTINE_S)
            break;
        aside[n_aside++] = fd; /* held meanwhile, so that the kernel offers another port */
        fd = -EADDRINUSE;
    }
    for (int i = 0; i < n_aside; i++)
        close(aside[i]);
    return fd;
}

void
transport_udp_release(int fd)
{
    atomic_store_explicit(&udp_released[local_port(fd)], mono_seconds(), memory_order_relaxed);
    close(fd);
}

int
transport_sock_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        return -errno;
    return -err;
}

void
transport_tune(int fd, enum ep_kind kind, bool keepalive)
{
    int one = 1;

    if (kind != EP_TCP)
        return;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (keepalive)
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
}

int
transport_tune_listener(int fd, enum ep_kind kind, bool keepalive, unsigned defer_s)
{
    int one = 1, ka = keepalive, defer = (int)defer_s;

    if (kind != EP_TCP)
        return 0;
    /* both ways: a reload that adopts the listener may turn keepalive off */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &ka, sizeof(ka)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof(defer)) != 0)
        return -errno;
    return 0;
}

/* "unix:" and the socket's name (n bytes of path, which a client chose
 * when it bound it: any bytes) with every byte that is not a visible
 * ASCII character, and the backslash, as \xNN: a name neither ends a log
 * line or a row of `airlock ctl conns` nor reads as more fields. */
static void
describe_unix(const char *path, size_t n, bool abstract, char *buf, size_t buflen)
{
    size_t at = (size_t)snprintf(buf, buflen, "unix:%s", abstract ? "@" : "");

    for (size_t i = 0; i < n && at + 5 <= buflen; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c > 0x20 && c < 0x7f && c != '\\')
            buf[at++] = (char)c;
        else
            at += (size_t)snprintf(buf + at, buflen - at, "\\x%02x", c);
    }
    if (at < buflen)
        buf[at] = '\0';
}

int
transport_linger(int fd, size_t *dropped)
{
    char drop[4096];

    for (;;) {
        ssize_t n = read(fd, drop, sizeof(drop));
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || (*dropped += (size_t)n) > TRANSPORT_LINGER_MAX)
            return 1;
    }
}

void
transport_describe(const struct sockaddr *sa, socklen_t len, char *buf, size_t buflen)
{
    char host[INET6_ADDRSTRLEN];

    switch (sa->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(buf, buflen, "%s:%u", host, ntohs(sin->sin_port));
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        snprintf(buf, buflen, "[%s]:%u", host, ntohs(sin6->sin6_port));
        break;
    }
    case AF_UNIX: {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
        size_t n = len > offsetof(struct sockaddr_un, sun_path)
                       ? len - offsetof(struct sockaddr_un, sun_path)
                       : 0;
        if (n == 0 || (sun->sun_path[0] == '\0' && n == 1))
            snprintf(buf, buflen, "unix:-");
        else if (sun->sun_path[0] == '\0')
            describe_unix(sun->sun_path + 1, n - 1, true, buf, buflen);
        else
            describe_unix(sun->sun_path, strnlen(sun->sun_path, n), false, buf, buflen);
        break;
    }
    case AF_VSOCK: {
        const struct sockaddr_vm *svm = (const struct sockaddr_vm *)sa;
        snprintf(buf, buflen, "vsock:%u:%u", svm->svm_cid, svm->svm_port);
        break;
    }
    default:
        snprintf(buf, buflen, "family-%d", sa->sa_family);
    }
}

void
transport_client_key(int fd, const struct sockaddr *sa, char *buf, size_t buflen)
{
    char host[INET6_ADDRSTRLEN];
    struct ucred cred;
    socklen_t clen = sizeof(cred);

    switch (sa->sa_family) {
    case AF_INET:
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, sizeof(host));
        snprintf(buf, buflen, "%s", host);
        break;
    case AF_INET6: {
        struct in6_addr a = ((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&a)) {
            inet_ntop(AF_INET, &a.s6_addr[12], host, sizeof(host));
            snprintf(buf, buflen, "%s", host);
            break;
        }
        memset(&a.s6_addr[8], 0, 8);
        inet_ntop(AF_INET6, &a, host, sizeof(host));
        snprintf(buf, buflen, "%s/64", host);
        break;
    }
    case AF_VSOCK:
        snprintf(buf, buflen, "vsock:%u", ((const struct sockaddr_vm *)sa)->svm_cid);
        break;
    case AF_UNIX:
        if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
            snprintf(buf, buflen, "unix:uid=%u", (unsigned)cred.uid);
        else
            snprintf(buf, buflen, "unix");
        break;
    default:
        snprintf(buf, buflen, "family-%d", sa->sa_family);
    }
}
