/* control.c - see control.h. */
#include "cli/control.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "core/list.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "net/acceptor.h"
#include "net/dial.h"
#include "net/transport.h"
#include "proto/ctl.h"

#define CTL_TIMEOUT_MS 5000
/* connections open at once. A newcomer takes the place of the oldest that
 * has not sent its whole command yet; one whose command is being run (a
 * directory request: an assign waits up to assign_wait) or answered is
 * never pushed out, and when every one is, the newcomer is told it is busy
 * and closed. So on a tcp or vsock control endpoint, open to whoever can
 * connect, those who say nothing push out only each other, and the
 * directory runs at most this many of the endpoint's requests at once (a
 * closed connection's request would still run: a flood of them stalled the
 * routers' assigns) */
#define CONNS_MAX 32
#define CLIENT_TIMEOUT_MS 15000

enum cc_state {
    CC_READING,   /* waiting for the command line */
    CC_WAITING,   /* a directory request or a pending command is out; its callback owns the conn */
    CC_WRITING,   /* sending the answer */
    CC_LINGERING, /* answer sent: reading what the peer sent beyond its command, till it closes */
};

struct ctl_conn {
    struct list link; /* in ctl->conns until closed */
    struct control *ctl;
    struct io io;
    struct timer timer;
    struct task reap;
    enum cc_state state;
    int closed;
    char in[CTL_LINE_MAX];
    size_t in_len;
    struct ctl_cmd cmd;
    char pool[DIR_NAME_MAX];
    char name[DIR_NAME_MAX];
    char key[DIR_KEY_MAX];
    struct dir_assign *assign; /* assign: the directory's answer to come */
    struct strbuf body;        /* control_ops.run's answer, before its OK or ERR */
    struct strbuf out;
    size_t out_off;
    size_t lingered; /* bytes dropped while lingering */
};

struct control {
    struct loop *loop;
    struct endpoint ep;
    struct acceptor acceptor;
    struct dir *dir; /* NULL: no directory: block */
    struct control_ops ops;
    struct list conns; /* newest first */
    unsigned n_conns;
    uid_t owner;                 /* ep.perm's, or -1: may issue commands too */
    gid_t group;                 /* ep.perm's, or -1: its members may issue commands */
    struct log_rate refused_log; /* anyone who may connect can make refusals */
};

static void
conn_free(struct ctl_conn *cc)
{
    strbuf_free(&cc->body);
    strbuf_free(&cc->out);
    free(cc);
}

static void
conn_reap(struct task *t)
{
    conn_free(t->data);
}

/* Idempotent. A conn waiting for the directory is freed by its callback. */
static void
conn_close(struct ctl_conn *cc)
{
    if (cc->closed)
        return;
    cc->closed = 1;
    io_stop(cc->ctl->loop, &cc->io);
    close(cc->io.fd);
    cc->io.fd = -1;
    timer_stop(cc->ctl->loop, &cc->timer);
    list_del(&cc->link);
    cc->ctl->n_conns--;
    if (cc->assign != NULL) { /* an assign can wait long: withdrawn, it never answers */
        dir_assign_cancel(cc->assign);
        cc->assign = NULL;
        cc->state = CC_READING;
    }
    if (cc->state != CC_WAITING)
        loop_defer(cc->ctl->loop, &cc->reap, conn_reap, cc);
}

/* The answer is sent and the write side shut: what the peer sent beyond
 * its command is dropped until it closes (transport_linger()), within the
 * answer's timeout. */
static void
conn_linger(struct ctl_conn *cc)
{
    if (transport_linger(cc->io.fd, &cc->lingered))
        conn_close(cc);
}

static void
conn_write(struct ctl_conn *cc)
{
    while (cc->out_off < cc->out.len) {
        ssize_t n = write(cc->io.fd, cc->out.data + cc->out_off, cc->out.len - cc->out_off);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0)
            break;
        cc->out_off += (size_t)n;
    }
    if (cc->out_off == cc->out.len && shutdown(cc->io.fd, SHUT_WR) == 0) {
        cc->state = CC_LINGERING;
        conn_linger(cc);
        return;
    }
    conn_close(cc);
}

static void
conn_send_timeout(struct timer *t)
{
    struct ctl_conn *cc = t->data;

    if (cc->state == CC_WRITING)
        log_info("ctl answer not taken in %d ms: closed (%zu of %zu bytes sent)", CTL_TIMEOUT_MS,
                 cc->out_off, cc->out.len);
    conn_close(cc);
}

/* Sends cc->out and closes; a client that does not take it within
 * CTL_TIMEOUT_MS is closed anyway, so it holds neither the answer's memory
 * nor the conn. */
static void
conn_send(struct ctl_conn *cc)
{
    cc->state = CC_WRITING;
    timer_start(cc->ctl->loop, &cc->timer, CTL_TIMEOUT_MS, conn_send_timeout, cc);
    conn_write(cc);
}

/* Sends what is in cc->out (or a note that it could not be built). */
static void
conn_answer(struct ctl_conn *cc)
{
    if (cc->out.failed) {
        strbuf_free(&cc->out);
        strbuf_printf(&cc->out, "ERR out of memory\n");
    }
    log_info("ctl command=%s result=%s", ctl_verb_name(cc->cmd.verb),
             cc->out.data != NULL && strncmp(cc->out.data, "OK", 2) == 0 ? "ok" : "err");
    conn_send(cc);
}

/* The callback side: the conn came back from the directory or a pending
 * command. Returns 1 when it was closed meanwhile (and is now freed: not
 * through cc->ctl, which control_stop() may have freed). */
static int
conn_back(struct ctl_conn *cc)
{
    cc->state = CC_READING;
    if (!cc->closed)
        return 0;
    conn_free(cc);
    return 1;
}

static int
by_pool_name(const void *a, const void *b)
{
    const struct dir_instance *x = a, *y = b;
    int c = strcmp(x->pool, y->pool);
    return c != 0 ? c : strcmp(x->name, y->name);
}

static size_t
max_len(size_t w, const char *s)
{
    size_t n = strlen(s);
    return n > w ? n : w;
}

/* Writes the table of list (sessions: reserved and active only). */
static void
table(struct strbuf *out, struct dir_instance *list, long n, int sessions)
{
    size_t w[4] = {4, 4, 5, 3}; /* POOL NAME STATE KEY */
    unsigned long long now = dir_wall_ms();
    long shown = 0;

    qsort(list, (size_t)n, sizeof(*list), by_pool_name);
    for (long i = 0; i < n; i++) {
        const struct dir_instance *in = &list[i];
        if (sessions && in->state != DIR_RESERVED && in->state != DIR_ACTIVE)
            continue;
        shown++;
        w[0] = max_len(w[0], in->pool);
        w[1] = max_len(w[1], in->name);
        w[2] = max_len(w[2], dir_state_name(in->state));
        w[3] = max_len(w[3], in->key[0] ? in->key : "-");
    }
    strbuf_printf(out, "OK %ld %s\n", shown, sessions ? "sessions" : "instances");
    if (shown == 0)
        return;
    strbuf_printf(out, "%-*s  %-*s  %-*s  %-*s  %8s  %s\n", (int)w[0], "POOL", (int)w[1], "NAME",
                  (int)w[2], "STATE", (int)w[3], "KEY", "SINCE", "ENDPOINT");
    for (long i = 0; i < n; i++) {
        const struct dir_instance *in = &list[i];
        if (sessions && in->state != DIR_RESERVED && in->state != DIR_ACTIVE)
            continue;
        unsigned long long age = now > in->since_ms ? (now - in->since_ms) / 1000 : 0;
        strbuf_printf(out, "%-*s  %-*s  %-*s  %-*s  %7llus  %s\n", (int)w[0], in->pool, (int)w[1],
                      in->name, (int)w[2], dir_state_name(in->state), (int)w[3],
                      in->key[0] ? in->key : "-", age, in->endpoint[0] ? in->endpoint : "-");
    }
}

/* The answer to a directory request that failed with err. */
static void
dir_error(struct ctl_conn *cc, int err)
{
    if (err == -ENOTCONN)
        strbuf_printf(&cc->out, "ERR directory unreachable (redis away): try again once it is "
                                "back\n");
    else
        strbuf_printf(&cc->out, "ERR directory: %s\n", strerror(-err));
}

static void
drained(void *arg, int err)
{
    struct ctl_conn *cc = arg;

    if (conn_back(cc))
        return;
    if (err == 0)
        strbuf_printf(&cc->out, "OK drained %s/%s\n", cc->pool, cc->name);
    else if (err == -ENOENT)
        strbuf_printf(&cc->out, "ERR no instance %s/%s\n", cc->pool, cc->name);
    else
        dir_error(cc, err);
    conn_answer(cc);
}

/* After a directory request was made (rc 0: its callback comes back). */
static void
requested(struct ctl_conn *cc, int rc)
{
    if (rc == 0) {
        cc->state = CC_WAITING;
        return;
    }
    dir_error(cc, rc);
    conn_answer(cc);
}

static void
drain(struct ctl_conn *cc)
{
    requested(cc, dir_drain(cc->ctl->dir, cc->pool, cc->name, cc->ctl->loop, drained, cc));
}

/* drain NAME: finds NAME's pool (it must be unique), then drains it. */
static void
drain_by_name(struct ctl_conn *cc, const struct dir_instance *list, long n)
{
    int found = 0;

    for (long i = 0; i < n; i++) {
        if (strcmp(list[i].name, cc->name) != 0)
            continue;
        if (found++ == 0)
            snprintf(cc->pool, sizeof(cc->pool), "%s", list[i].pool);
    }
    if (found == 0)
        strbuf_printf(&cc->out, "ERR no instance %s\n", cc->name);
    else if (found > 1)
        strbuf_printf(&cc->out, "ERR %d pools have an instance %s: say POOL/%s\n", found, cc->name,
                      cc->name);
    else {
        drain(cc);
        return;
    }
    conn_answer(cc);
}

static void
listed(void *arg, const struct dir_instance *list, long n)
{
    struct ctl_conn *cc = arg;

    if (conn_back(cc))
        return;
    if (n < 0) {
        dir_error(cc, (int)n);
        conn_answer(cc);
        return;
    }
    if (cc->cmd.verb == CTL_DRAIN) {
        drain_by_name(cc, list, n);
        return;
    }
    /* the table sorts: a copy, since list belongs to the directory */
    struct dir_instance *copy = malloc((n ? (size_t)n : 1) * sizeof(*copy));
    if (copy == NULL) {
        strbuf_printf(&cc->out, "ERR out of memory\n");
    } else {
        memcpy(copy, list, (size_t)n * sizeof(*copy));
        table(&cc->out, copy, n, cc->cmd.verb == CTL_SESSIONS);
        free(copy);
    }
    conn_answer(cc);
}

static void
assigned(void *arg, int err, const char *instance, const struct endpoint *ep)
{
    struct ctl_conn *cc = arg;
    char text[ENDPOINT_TEXT_MAX];

    cc->assign = NULL;
    cc->state = CC_READING;
    if (err == 0) {
        endpoint_format(ep, text, sizeof(text));
        strbuf_printf(&cc->out, "OK %s/%s %s\n", cc->pool, instance, text);
    } else if (err == -EAGAIN) {
        strbuf_printf(&cc->out, "ERR no instance of %s free within assign_wait\n", cc->pool);
    } else if (err == -EINPROGRESS) {
        strbuf_printf(&cc->out,
                      "ERR %s's last session was still being stored back after assign_wait\n",
                      cc->key);
    } else if (err == -ENOENT) {
        strbuf_printf(&cc->out, "ERR no pool %s\n", cc->pool);
    } else if (err == -ENOTCONN) {
        strbuf_printf(&cc->out, "ERR directory unreachable all through assign_wait\n");
    } else if (err == -EBUSY) {
        strbuf_printf(&cc->out, "ERR %s's pending_share taken all through assign_wait\n", cc->pool);
    } else {
        dir_error(cc, err);
    }
    conn_answer(cc);
}

/* assign POOL KEY: the same request as a router's for a client naming KEY */
static void
assign(struct ctl_conn *cc)
{
    snprintf(cc->pool, sizeof(cc->pool), "%.*s", (int)cc->cmd.pool_len, cc->cmd.pool);
    snprintf(cc->key, sizeof(cc->key), "%.*s", (int)cc->cmd.key_len, cc->cmd.key);
    log_info("ctl assign pool=%s key=%s", cc->pool, cc->key);
    cc->assign = dir_assign(cc->ctl->dir, cc->pool, cc->key, cc->ctl->loop, assigned, cc);
    requested(cc, cc->assign != NULL ? 0 : -errno);
}

/* Answers what control_ops.run wrote: OK or ERR, then its text. */
static void
ran_answer(struct ctl_conn *cc, int rc)
{
    if (cc->body.failed)
        strbuf_printf(&cc->out, "ERR out of memory\n");
    else
        strbuf_printf(&cc->out, "%s %.*s", rc == 0 ? "OK" : "ERR", (int)cc->body.len,
                      cc->body.data != NULL ? cc->body.data : "");
    if (rc != 0 && (cc->body.len == 0 || cc->body.data[cc->body.len - 1] != '\n'))
        strbuf_printf(&cc->out, "\n");
    conn_answer(cc);
}

static void
ran(void *ctx, int rc)
{
    struct ctl_conn *cc = ctx;

    if (conn_back(cc))
        return;
    ran_answer(cc, rc);
}

static void
run_command(struct ctl_conn *cc)
{
    if (!ctl_needs_directory(cc->cmd.verb)) {
        int rc = cc->ctl->ops.run(cc->ctl->ops.arg, cc->cmd.verb, &cc->body, ran, cc);
        if (rc == 1)
            cc->state = CC_WAITING;
        else
            ran_answer(cc, rc);
        return;
    }
    if (cc->ctl->dir == NULL) {
        strbuf_printf(&cc->out,
                      "ERR %s: no directory: block in the config (sessions, instances, "
                      "drain and assign operate the directory)\n",
                      ctl_verb_name(cc->cmd.verb));
        conn_answer(cc);
        return;
    }
    if (cc->cmd.verb == CTL_ASSIGN) {
        assign(cc);
        return;
    }
    if (cc->cmd.verb == CTL_DRAIN) {
        snprintf(cc->name, sizeof(cc->name), "%.*s", (int)cc->cmd.name_len, cc->cmd.name);
        if (cc->cmd.pool != NULL) {
            snprintf(cc->pool, sizeof(cc->pool), "%.*s", (int)cc->cmd.pool_len, cc->cmd.pool);
            drain(cc);
            return;
        }
    }
    requested(cc, dir_list(cc->ctl->dir, cc->ctl->loop, listed, cc));
}

static void
log_refused(struct control *c, const char *why)
{
    unsigned long quiet;

    if (log_rate_ok(&c->refused_log, loop_now(c->loop), 1000, &quiet))
        log_info("ctl refused: %s quiet_before=%lu", why, quiet);
}

static void
conn_refuse(struct ctl_conn *cc, const char *why)
{
    log_refused(cc->ctl, why);
    strbuf_printf(&cc->out, "ERR %s\n", why);
    conn_send(cc);
}

static void
conn_event(struct io *io, uint32_t events)
{
    struct ctl_conn *cc = io->data;
    const char *why = NULL;
    size_t used;
    (void)events;

    if (cc->state == CC_WRITING) {
        conn_write(cc);
        return;
    }
    if (cc->state == CC_LINGERING) {
        conn_linger(cc);
        return;
    }
    while (cc->state == CC_READING) {
        ssize_t n = read(io->fd, cc->in + cc->in_len, sizeof(cc->in) - cc->in_len);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            conn_close(cc);
            return;
        }
        cc->in_len += (size_t)n;
        switch (ctl_parse(cc->in, cc->in_len, &cc->cmd, &used, &why)) {
        case PARSE_AGAIN:
            break;
        case PARSE_INVALID:
            conn_refuse(cc, why);
            return;
        case PARSE_OK:
            timer_stop(cc->ctl->loop, &cc->timer);
            run_command(cc);
            return;
        }
    }
}

static void
conn_timeout(struct timer *t)
{
    conn_refuse(t->data, "timed out waiting for a command");
}

/* Whether the peer of a unix control socket is root, airlock's own user,
 * the socket's owner or in its group (SO_PEERGROUPS: supplementary groups
 * too). The file's mode is the first gate; this one holds when the mode was
 * set too wide and on an abstract socket, which has none. Writes who the
 * peer is into who. tcp and vsock peers carry no credentials. */
static bool
peer_allowed(const struct control *c, int fd, char *who, size_t wholen)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);
    gid_t some[64], *groups = some;
    bool ok = false;

    snprintf(who, wholen, "unknown");
    if (c->ep.kind != EP_UNIX)
        return true;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
        return false;
    snprintf(who, wholen, "uid=%u pid=%d", (unsigned)cr.uid, (int)cr.pid);
    if (cr.uid == 0 || cr.uid == geteuid() || cr.uid == c->owner)
        return true;
    if (c->group == (gid_t)-1)
        return false;
    if (cr.gid == c->group)
        return true;
    len = sizeof(some);
    int rc = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, some, &len);
    if (rc != 0 && errno == ERANGE && (groups = malloc(len)) != NULL) /* len: what it needs */
        rc = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len);
    for (size_t i = 0; rc == 0 && i < len / sizeof(gid_t) && !ok; i++)
        ok = groups[i] == c->group;
    if (groups != some)
        free(groups);
    return ok;
}

/* The oldest connection still reading its command or answered already
 * (lingering), or NULL. */
static struct ctl_conn *
oldest_reading(struct control *c)
{
    for (struct list *p = c->conns.prev; p != &c->conns; p = p->prev) {
        struct ctl_conn *cc = list_entry(p, struct ctl_conn, link);
        if (cc->state == CC_READING || cc->state == CC_LINGERING)
            return cc;
    }
    return NULL;
}

/* Answers a newcomer while every connection is being served, without
 * taking it on: one try at sending why, then what it already sent is read
 * and dropped, so the close is a FIN rather than a reset. Before, it was
 * closed unread: its command made the close a reset, and the client saw
 * "connection reset" and not why. */
static void
refuse_busy(struct control *c, int fd)
{
    char line[80], drop[512];
    int n =
        snprintf(line, sizeof(line), "ERR busy: %d commands are being run; try again\n", CONNS_MAX);

    log_refused(c, "busy");
    (void)send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    for (int i = 0; i < 8 && recv(fd, drop, sizeof(drop), MSG_DONTWAIT) > 0; i++)
        ;
    close(fd);
}

static void
control_admit(struct acceptor *a, int fd, const struct sockaddr *peer, socklen_t len)
{
    struct control *c = a->data;
    char who[48];
    (void)peer, (void)len;

    if (c->n_conns >= CONNS_MAX) {
        struct ctl_conn *old = oldest_reading(c);
        if (old == NULL) { /* every one is being served: CONNS_MAX (above) */
            refuse_busy(c, fd);
            return;
        }
        conn_close(old);
    }
    struct ctl_conn *cc = calloc(1, sizeof(*cc));
    if (cc == NULL ||
        io_start(c->loop, &cc->io, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, conn_event, cc) != 0) {
        free(cc);
        close(fd);
        return;
    }
    cc->ctl = c;
    list_add(&c->conns, &cc->link);
    c->n_conns++;
    timer_start(c->loop, &cc->timer, CTL_TIMEOUT_MS, conn_timeout, cc);
    if (!peer_allowed(c, fd, who, sizeof(who))) {
        char why[128];
        snprintf(why, sizeof(why), "permission denied (%s)", who);
        conn_refuse(cc, why);
    }
}

struct control *
control_start(struct loop *loop, const struct endpoint *ep, struct dir *d,
              const struct control_ops *ops, int *err)
{
    struct control *c = calloc(1, sizeof(*c));
    int fd;

    if (c == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    c->loop = loop;
    list_init(&c->conns);
    c->ep = *ep;
    if (c->ep.perm.mode == 0)
        c->ep.perm.mode = CONTROL_MODE;
    c->dir = d;
    c->ops = *ops;
    if ((*err = transport_perm_ids(&c->ep.perm, &c->owner, &c->group)) != 0 ||
        (*err = fd = transport_listen(&c->ep)) < 0) {
        free(c);
        return NULL;
    }
    if ((*err = acceptor_start(&c->acceptor, loop, fd, "ctl", control_admit, NULL, c)) != 0) {
        close(fd);
        transport_unlisten(&c->ep);
        free(c);
        return NULL;
    }
    if (c->ep.kind != EP_UNIX)
        log_warnx("control: %s peers carry no credentials: whoever can connect may reload, "
                  "read the config and drain sessions (a unix socket checks who connects)",
                  c->ep.kind == EP_TCP ? "tcp" : "vsock");
    return c;
}

void
control_stop(struct control *c)
{
    if (c == NULL)
        return;
    while (!list_empty(&c->conns))
        conn_close(list_entry(c->conns.next, struct ctl_conn, link));
    acceptor_stop(&c->acceptor);
    close(c->acceptor.fd);
    transport_unlisten(&c->ep);
    free(c);
}

/* ---- the client */

/* Connects to ep (dial_sync()). Returns the fd, or -1 after saying why on
 * stderr. */
static int
client_connect(const struct endpoint *ep)
{
    enum dial_result why;
    char name[ENDPOINT_TEXT_MAX];
    int fd = dial_sync(ep, CLIENT_TIMEOUT_MS, &why);

    if (fd >= 0)
        return fd;
    endpoint_format(ep, name, sizeof(name));
    if (why == DIAL_CONNECT_FAILED) /* what connect(2) said is reason enough */
        fprintf(stderr, "airlock ctl: cannot connect to %s: %s\n", name, strerror(-fd));
    else
        fprintf(stderr, "airlock ctl: cannot connect to %s: %s: %s\n", name, dial_result_name(why),
                strerror(-fd));
    return -1;
}

int
control_client(const struct endpoint *ep, const char *command)
{
    struct strbuf in = {0};
    char buf[4096];
    int fd, rc;

    if ((fd = client_connect(ep)) < 0)
        return 1;
    struct pollfd p = {.fd = fd};
    /* A server that refuses this client answers and closes without reading
     * the command: its answer says why, so a failed send only matters when
     * no answer comes. MSG_NOSIGNAL: a closed peer is an error, not SIGPIPE. */
    int send_err = 0, read_err = 0;
    strbuf_printf(&in, "%s\n", command);
    if (in.failed) {
        send_err = ENOMEM;
    } else {
        ssize_t w = send(fd, in.data, in.len, MSG_NOSIGNAL);
        send_err = w == (ssize_t)in.len ? 0 : w < 0 ? errno : EIO;
    }
    strbuf_free(&in);
    for (;;) {
        p.events = POLLIN;
        int ready = poll(&p, 1, CLIENT_TIMEOUT_MS);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready != 1) {
            read_err = ready == 0 ? ETIMEDOUT : errno;
            break;
        }
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n < 0)
            read_err = errno;
        if (n <= 0)
            break;
        strbuf_printf(&in, "%.*s", (int)n, buf);
    }
    close(fd);
    rc = 1;
    if (in.data != NULL && strncmp(in.data, "OK ", 3) == 0) {
        fputs(in.data + 3, stdout);
        rc = 0;
    } else if (in.data != NULL && strncmp(in.data, "ERR ", 4) == 0) {
        fprintf(stderr, "airlock ctl: %s", in.data + 4);
    } else if (in.data != NULL) {
        fprintf(stderr, "airlock ctl: unexpected answer\n");
    } else if (send_err != 0) {
        fprintf(stderr, "airlock ctl: cannot send the command: %s\n", strerror(send_err));
    } else if (read_err != 0) {
        fprintf(stderr, "airlock ctl: no answer: %s\n", strerror(read_err));
    } else {
        fprintf(stderr, "airlock ctl: the server closed without answering\n");
    }
    strbuf_free(&in);
    return rc;
}
