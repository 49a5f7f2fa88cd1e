/* sockdiag.c - the holders of the local TCP ports of a range; see
 * sockdiag.h. */
#include "net/sockdiag.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/inet_diag.h>
#include <linux/kcmp.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TABLES_MAX 16 /* fd tables of one process a thread's is compared with */

/* Socket states (include/net/tcp_states.h). */
#define STATE_TIME_WAIT 6
#define STATE_LISTEN 10
#define STATE_BOUND_INACTIVE                                                                       \
    13 /* bound, neither listening nor connected: dumped since                                     \
          Linux 6.5 (an older kernel ignores the bit) */

/* The request: every state but TIME_WAIT, and a filter the kernel runs on
 * each socket: local port >= lo, then <= hi. A test that fails jumps past
 * the end (rejected); passing both lands on it (accepted). */
struct request {
    struct nlmsghdr nlh;
    struct inet_diag_req_v2 req;
    struct nlattr attr;
    struct inet_diag_bc_op filter[4];
};

static void
request_init(struct request *r, int family, uint16_t lo, uint16_t hi)
{
    memset(r, 0, sizeof(*r));
    r->nlh.nlmsg_len = sizeof(*r);
    r->nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    r->nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    r->req.sdiag_family = (uint8_t)family;
    r->req.sdiag_protocol = IPPROTO_TCP;
    r->req.idiag_states = ~(1u << STATE_TIME_WAIT);
    r->attr.nla_len = sizeof(r->attr) + sizeof(r->filter);
    r->attr.nla_type = INET_DIAG_REQ_BYTECODE;
    r->filter[0] = (struct inet_diag_bc_op){INET_DIAG_BC_S_GE, 8, sizeof(r->filter) + 4};
    r->filter[1] = (struct inet_diag_bc_op){0, 0, lo};
    r->filter[2] = (struct inet_diag_bc_op){INET_DIAG_BC_S_LE, 8, sizeof(r->filter) / 2 + 4};
    r->filter[3] = (struct inet_diag_bc_op){0, 0, hi};
}

/* One family's sockets in [lo, hi] to each. Returns 0 or -errno. */
static int
dump(int fd, int family, uint16_t lo, uint16_t hi,
     void (*each)(void *arg, const struct sockdiag_sock *s), void *arg)
{
    struct request r;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    long buf[8192 / sizeof(long)]; /* aligned for nlmsghdr */

    request_init(&r, family, lo, hi);
    if (sendto(fd, &r, sizeof(r), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
        return -errno;
    for (;;) {
        ssize_t len = recv(fd, buf, sizeof(buf), 0);
        if (len < 0 && errno == EINTR)
            continue;
        if (len < 0)
            return -errno;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len);
             h = NLMSG_NEXT(h, len)) {
            if (h->nlmsg_type == NLMSG_DONE)
                return 0;
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                return h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error < 0 ? e->error : -EIO;
            }
            if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
                return -EIO;
            const struct inet_diag_msg *m = NLMSG_DATA(h);
            struct sockdiag_sock sk = {
                .port = ntohs(m->id.idiag_sport),
                .uid = m->idiag_uid,
                .inode = m->idiag_inode,
                .bound = m->idiag_state == STATE_LISTEN || m->idiag_state == STATE_BOUND_INACTIVE,
                .family = family,
                .dport = ntohs(m->id.idiag_dport),
            };
            memcpy(sk.src, m->id.idiag_src, sizeof(sk.src));
            memcpy(sk.dst, m->id.idiag_dst, sizeof(sk.dst));
            if (sk.port >= lo && sk.port <= hi) /* the kernel filtered: this is belt and braces */
                each(arg, &sk);
        }
    }
}

int
sockdiag_ports(uint16_t lo, uint16_t hi, void (*each)(void *arg, const struct sockdiag_sock *s),
               void *arg)
{
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    int rc;

    if (fd < 0)
        return -errno;
    if ((rc = dump(fd, AF_INET, lo, hi, each, arg)) == 0)
        rc = dump(fd, AF_INET6, lo, hi, each, arg);
    close(fd);
    return rc;
}

/* The socket of this machine whose local end is (addr, port) and remote
 * end (ours, our_port), both of family's size, looked up by the kernel in
 * its tables (one request, no dump: what any uid may ask). Returns 0 with
 * *uid, its creator's, -ENOENT when there is none, or -errno. */
static int
lookup(int fd, int family, const void *addr, uint16_t port, const void *ours, uint16_t our_port,
       uid_t *uid)
{
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 req;
    } r = {
        .nlh = {.nlmsg_len = sizeof(r),
                .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                .nlmsg_flags = NLM_F_REQUEST},
        .req = {.sdiag_family = (uint8_t)family,
                .sdiag_protocol = IPPROTO_TCP,
                .idiag_states = ~0u,
                .id = {.idiag_sport = htons(port),
                       .idiag_dport = htons(our_port),
                       .idiag_cookie = {INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE}}},
    };
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    long buf[1024 / sizeof(long)]; /* aligned for nlmsghdr */
    size_t alen = family == AF_INET ? 4 : 16;
    ssize_t len;

    memcpy(r.req.id.idiag_src, addr, alen);
    memcpy(r.req.id.idiag_dst, ours, alen);
    if (sendto(fd, &r, sizeof(r), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
        return -errno;
    while ((len = recv(fd, buf, sizeof(buf), 0)) < 0 && errno == EINTR)
        ;
    if (len < 0)
        return -errno;
    const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
    if (!NLMSG_OK(h, len))
        return -EIO;
    if (h->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = NLMSG_DATA(h);
        return h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error < 0 ? e->error : -EIO;
    }
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
        return -EIO;
    *uid = ((const struct inet_diag_msg *)NLMSG_DATA(h))->idiag_uid;
    return 0;
}

int
sockdiag_peer_uid(int fd, uid_t *uid)
{
    struct sockaddr_storage a, b;
    socklen_t alen = sizeof(a), blen = sizeof(b);
    int nl, rc;

    if (getpeername(fd, (struct sockaddr *)&a, &alen) != 0 ||
        getsockname(fd, (struct sockaddr *)&b, &blen) != 0)
        return -errno;
    if ((nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)) < 0)
        return -errno;
    /* the peer's local end is our remote one, and the other way round; the
     * kernel finds an IPv4 connection whichever family its sockets are (a
     * dual-stack IPv6 one sees ::ffff:a.b.c.d), as it delivers its packets */
    if (a.ss_family == AF_INET) {
        const struct sockaddr_in *pa = (const void *)&a, *pb = (const void *)&b;
        rc = lookup(nl, AF_INET, &pa->sin_addr, ntohs(pa->sin_port), &pb->sin_addr,
                    ntohs(pb->sin_port), uid);
    } else if (a.ss_family == AF_INET6) {
        const struct sockaddr_in6 *pa = (const void *)&a, *pb = (const void *)&b;
        rc = lookup(nl, AF_INET6, &pa->sin6_addr, ntohs(pa->sin6_port), &pb->sin6_addr,
                    ntohs(pb->sin6_port), uid);
    } else {
        rc = -EAFNOSUPPORT;
    }
    close(nl);
    return rc;
}

/* Marks in mine (h->n entries) the sockets of h, not found yet, whose
 * inode is ino. Returns how many. */
static size_t
mark(const struct sockdiag_holders *h, bool *mine, unsigned long long ino)
{
    size_t n = 0;

    for (size_t i = 0; i < h->n; i++)
        if (!h->found[i] && !mine[i] && h->inodes[i] == (ino_t)ino) {
            mine[i] = true;
            n++;
        }
    return n;
}

/* Whether name, a /proc/PID/fd link, a /proc/PID/maps name or a file an
 * io_uring's fdinfo lists, is a socket's ("socket:[INO]"), and its inode. */
static bool
socket_inode(const char *name, unsigned long long *ino)
{
    char end;

    return sscanf(name, "socket:[%llu%c", ino, &end) == 2 && end == ']';
}

/* Marks in mine the sockets of h, not found yet, that the io_uring whose
 * fdinfo is name in dir (/proc/PID/fdinfo, /proc/PID/task/TID/fdinfo) has
 * registered (IORING_REGISTER_FILES): the ring holds them once their fds
 * are closed, and its fdinfo lists them (" N: socket:[INO]" lines after
 * "UserFiles:") when it gets the ring's lock, so not while the ring is
 * busy. Whole lines are read: a long file name cannot pass for another.
 * Returns how many. */
static size_t
ring_sockets(int dir, const char *name, const struct sockdiag_holders *h, bool *mine)
{
    int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(fd, "re") : NULL;
    char *line = NULL, file[32];
    size_t cap = 0, n = 0;

    if (f == NULL) {
        if (fd >= 0)
            close(fd);
        return 0; /* gone meanwhile */
    }
    while (getline(&line, &cap, f) > 0) {
        unsigned long long ino;
        unsigned slot;
        if (sscanf(line, " %u: %31s", &slot, file) == 2 && socket_inode(file, &ino))
            n += mark(h, mine, ino);
    }
    free(line);
    fclose(f);
    return n;
}

/* Marks in mine (h->n entries) the sockets of h, not found yet, that the
 * fd table of base (/proc/PID, /proc/PID/task/TID) holds, in one pass over
 * its fds (base/fd), and those its io_urings hold (ring_sockets(), from
 * base/fdinfo). Returns how many. */
static size_t
open_sockets(const char *base, const struct sockdiag_holders *h, bool *mine)
{
    char path[sizeof("/proc/") + 2 * NAME_MAX + sizeof("/task//fdinfo")], link[64];
    int info = -1;
    DIR *d;
    struct dirent *e;
    size_t n = 0;

    snprintf(path, sizeof(path), "%s/fd", base);
    if ((d = opendir(path)) == NULL)
        return 0; /* gone meanwhile */
    while ((e = readdir(d)) != NULL) {
        unsigned long long ino;
        ssize_t len = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);
        if (len <= 0)
            continue;
        link[len] = '\0';
        if (socket_inode(link, &ino)) {
            n += mark(h, mine, ino);
            continue;
        }
        if (strcmp(link, "anon_inode:[io_uring]") != 0)
            continue;
        if (info < 0) {
            snprintf(path, sizeof(path), "%s/fdinfo", base);
            info = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
        if (info >= 0)
            n += ring_sockets(info, e->d_name, h, mine);
    }
    if (info >= 0)
        close(info);
    closedir(d);
    return n;
}

/* Marks in mine the sockets of h, not found yet, that the process of base
 * (/proc/PID, /proc/PID/task/TID) has mapped, adding how many to *n: a
 * TCP socket may be mmap()ed (read-only, for TCP_ZEROCOPY_RECEIVE), and
 * its mapping holds it once its fd is closed. base/maps names such a
 * mapping "socket:[INO]" (a file's name is absolute: none passes for one).
 * Returns whether it listed any mapping: a zombie leader's lists none, its
 * threads' (one memory for all) list them. */
static bool
mapped_sockets(const char *base, const struct sockdiag_holders *h, bool *mine, size_t *n)
{
    char path[sizeof("/proc/") + 2 * NAME_MAX + sizeof("/task//maps")], *line = NULL;
    size_t cap = 0;
    bool any = false;
    FILE *f;

    snprintf(path, sizeof(path), "%s/maps", base);
    if ((f = fopen(path, "re")) == NULL)
        return false; /* gone meanwhile */
    while (getline(&line, &cap, f) > 0) {
        unsigned long long ino;
        int at = -1;
        any = true;
        /* address, perms, offset, device, inode, then the name */
        if (sscanf(line, "%*s %*s %*s %*s %*s %n", &at) == 0 && at >= 0 &&
            socket_inode(line + at, &ino))
            *n += mark(h, mine, ino);
    }
    free(line);
    fclose(f);
    return any;
}

/* Marks in mine the sockets of h that process pid holds: open in each fd
 * table of its threads, each read once (/proc/PID/fd lists its main
 * thread's, which is empty once that thread exited while others run on (a
 * zombie leader, procstatus.h), and a thread made without CLONE_FILES has
 * a table of its own; a thread whose table is one read already,
 * kcmp(KCMP_FILES) against the first TABLES_MAX read, is skipped),
 * registered in an io_uring open there, or mapped (its memory read once, by
 * a live thread). Returns how many. */
static size_t
process_sockets(const char *pid, const struct sockdiag_holders *h, bool *mine)
{
    char path[sizeof("/proc/") + 2 * NAME_MAX + sizeof("/task/")];
    long read_by[TABLES_MAX], leader = strtol(pid, NULL, 10);
    size_t n, n_read = 0;
    bool mapped;
    struct dirent *e;
    DIR *d;

    snprintf(path, sizeof(path), "/proc/%s", pid);
    n = open_sockets(path, h, mine);
    mapped = mapped_sockets(path, h, mine, &n);
    read_by[n_read++] = leader;
    snprintf(path, sizeof(path), "/proc/%s/task", pid);
    if ((d = opendir(path)) == NULL)
        return n; /* gone meanwhile */
    while ((e = readdir(d)) != NULL) {
        long tid = strtol(e->d_name, NULL, 10);
        bool known = false;
        if (e->d_name[0] < '1' || e->d_name[0] > '9' || tid == leader)
            continue;
        snprintf(path, sizeof(path), "/proc/%s/task/%s", pid, e->d_name);
        if (!mapped)
            mapped = mapped_sockets(path, h, mine, &n);
        for (size_t k = 0; k < n_read && !known; k++)
            known = syscall(SYS_kcmp, (pid_t)read_by[k], (pid_t)tid, KCMP_FILES, 0UL, 0UL) == 0;
        if (known)
            continue;
        n += open_sockets(path, h, mine);
        if (n_read < TABLES_MAX)
            read_by[n_read++] = tid;
    }
    closedir(d);
    return n;
}

/* The real uid of process pid; false when it is gone. */
static bool
real_uid(const char *pid, uid_t *uid)
{
    char path[sizeof("/proc/") + NAME_MAX + sizeof("/status")], line[128];
    FILE *f;
    bool ok = false;
    unsigned long v;

    snprintf(path, sizeof(path), "/proc/%s/status", pid);
    if ((f = fopen(path, "re")) == NULL)
        return false;
    while (!ok && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "Uid: %lu", &v) == 1) {
            *uid = (uid_t)v;
            ok = true;
        }
    fclose(f);
    return ok;
}

void
sockdiag_holders(struct sockdiag_holders *h)
{
    char self[24];
    bool *mine = calloc(h->n ? h->n : 1, sizeof(*mine));
    DIR *proc = mine != NULL ? opendir("/proc") : NULL;
    struct dirent *e;
    size_t left = h->n;
    uid_t uid;

    if (proc == NULL) {
        free(mine);
        return;
    }
    snprintf(self, sizeof(self), "%d", (int)getpid());
    while (left > 0 && (e = readdir(proc)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9' || strcmp(e->d_name, self) == 0)
            continue;
        memset(mine, 0, h->n * sizeof(*mine));
        if (process_sockets(e->d_name, h, mine) == 0 || !real_uid(e->d_name, &uid))
            continue;
        for (size_t i = 0; i < h->n; i++)
            if (mine[i]) {
                h->found[i] = true;
                h->uids[i] = uid;
                left--;
            }
    }
    closedir(proc);
    free(mine);
}

int
sockdiag_holder_check(void)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

    if (syscall(SYS_capget, &hdr, data) != 0)
        return -errno;
    return data[CAP_TO_INDEX(CAP_SYS_PTRACE)].effective & CAP_TO_MASK(CAP_SYS_PTRACE) ? 0 : -EPERM;
}

void
sockdiag_ephemeral(uint16_t *lo, uint16_t *hi)
{
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
    unsigned a, b;

    *lo = 32768, *hi = 60999; /* the kernel's default */
    if (f == NULL)
        return;
    if (fscanf(f, "%u %u", &a, &b) == 2 && a <= b && b <= UINT16_MAX)
        *lo = (uint16_t)a, *hi = (uint16_t)b;
    fclose(f);
}
