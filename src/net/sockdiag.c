/* sockdiag.c - the holders of a local TCP port; see sockdiag.h. */
#include "net/sockdiag.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Socket states (include/net/tcp_states.h): a listener, and a socket bound
 * but neither listening nor connected (dumped since Linux 6.5; an older
 * kernel ignores the bit, and such a socket goes unseen there). */
#define STATE_LISTEN 10
#define STATE_BOUND_INACTIVE 13

/* Asks for the TCP sockets of family in those states and counts the ones
 * on port into uids[*n...]. Returns 0 or -errno. */
static int
dump(int fd, int family, uint16_t port, uid_t *uids, size_t max, size_t *n)
{
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 req;
    } msg = {
        .nlh = {.nlmsg_len = sizeof(msg),
                .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
        .req = {.sdiag_family = (uint8_t)family,
                .sdiag_protocol = IPPROTO_TCP,
                .idiag_states = 1u << STATE_LISTEN | 1u << STATE_BOUND_INACTIVE},
    };
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    long buf[8192 / sizeof(long)]; /* aligned for nlmsghdr */

    if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
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
            if (ntohs(m->id.idiag_sport) != port)
                continue;
            if (*n < max)
                uids[*n] = m->idiag_uid;
            ++*n;
        }
    }
}

int
sockdiag_port_uids(uint16_t port, uid_t *uids, size_t max)
{
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    size_t n = 0;
    int rc;

    if (fd < 0)
        return -errno;
    if ((rc = dump(fd, AF_INET, port, uids, max, &n)) == 0)
        rc = dump(fd, AF_INET6, port, uids, max, &n);
    close(fd);
    return rc < 0 ? rc : (int)n;
}
