/* streams.c - admission, fair eviction and idle timeout of inbound
 * streams; see streams.h. */
#include "relay/streams.h"

#include <errno.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "net/allow.h"
#include "net/transport.h"

#define PEER_KEY 18       /* a kind byte, an IPv6 (or v4-mapped) address, CID or uid, verified */
#define LOG_EVERY_MS 1000 /* one log line per kind and second at most */

enum log_kind { LOG_REFUSED, LOG_EVICTED, LOG_IDLE };

struct stream_peer {
    struct list link; /* in the set's peers */
    uint8_t key[PEER_KEY];
    size_t n; /* its streams in the set */
    bool verified;
    char desc[TRANSPORT_DESC_MAX];
};

/* A peer that hammers the listener must not flood the log: on the enclave
 * side airlock's own lines share the forward buffer with the apps'. The
 * counters say how many there were. */
static bool
log_due(struct streams *s, enum log_kind kind)
{
    uint64_t now = loop_now(s->loop);

    if (s->logged_ms[kind] != 0 && now - s->logged_ms[kind] < LOG_EVERY_MS)
        return false;
    s->logged_ms[kind] = now != 0 ? now : 1;
    return true;
}

/* Who is at the other end of fd: its address (for allow_match()), its key
 * and a text for log lines. Returns 0 or -errno (the peer is gone). */
static int
peer_of(int fd, struct sockaddr_storage *ss, uint8_t key[PEER_KEY], char *desc, size_t desclen)
{
    socklen_t len = sizeof(*ss);
    static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    memset(key, 0, PEER_KEY);
    if (getpeername(fd, (struct sockaddr *)ss, &len) != 0)
        return -errno;
    switch (ss->ss_family) {
    case AF_INET: /* as ::ffff:a.b.c.d, the form a dual-stack listener reports */
        key[0] = 'i';
        memcpy(key + 1, v4_mapped, sizeof(v4_mapped));
        memcpy(key + 13, &((struct sockaddr_in *)ss)->sin_addr, 4);
        break;
    case AF_INET6:
        key[0] = 'i';
        memcpy(key + 1, &((struct sockaddr_in6 *)ss)->sin6_addr, 16);
        break;
    case AF_VSOCK:
        key[0] = 'v';
        memcpy(key + 1, &((struct sockaddr_vm *)ss)->svm_cid, 4);
        snprintf(desc, desclen, "cid %u", ((struct sockaddr_vm *)ss)->svm_cid);
        return 0;
    case AF_UNIX: {
        struct ucred cr;
        socklen_t clen = sizeof(cr);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &clen) != 0)
            return -errno;
        key[0] = 'u';
        memcpy(key + 1, &cr.uid, sizeof(cr.uid));
        snprintf(desc, desclen, "uid %u", (unsigned)cr.uid);
        return 0;
    }
    default:
        return -EAFNOSUPPORT;
    }
    transport_describe((struct sockaddr *)ss, len, desc, desclen);
    char *port = strrchr(desc, ':');
    if (port != NULL) /* the peer is the address, whatever its port */
        *port = '\0';
    return 0;
}

static struct stream_peer *
peer_find(const struct streams *s, const uint8_t key[PEER_KEY])
{
    struct list *pos, *tmp;

    list_for_each_safe(pos, tmp, &s->peers) {
        struct stream_peer *p = list_entry(pos, struct stream_peer, link);
        if (memcmp(p->key, key, PEER_KEY) == 0)
            return p;
    }
    return NULL;
}

/* A retired stream (streams_retire()) first, whoever its peer: it holds
 * nothing any more. Else of the streams of the peer with the most streams
 * (mine, the newcomer's peer, NULL when new, when it has as many): the
 * least recently active that never sent a whole line, else the least
 * recently active. An unverified newcomer never takes a verified stream's
 * place: any process at the forwarder's address (on vsock: any in the
 * enclave) can open unverified ones, and would push the forwarder out, with
 * the lines it had sent. */
static struct stream_slot *
victim(const struct streams *s, const struct stream_peer *mine, bool verified)
{
    const struct stream_peer *top = mine;
    struct stream_slot *first = NULL;
    struct list *pos, *tmp;

    list_for_each_safe(pos, tmp, &s->slots) {
        struct stream_slot *slot = list_entry(pos, struct stream_slot, link);
        if (slot->retired)
            return slot;
    }
    list_for_each_safe(pos, tmp, &s->peers) {
        const struct stream_peer *p = list_entry(pos, struct stream_peer, link);
        if ((top == NULL || p->n > top->n) && (verified || !p->verified))
            top = p;
    }
    if (top == NULL)
        return NULL;
    list_for_each_safe(pos, tmp, &s->slots) {
        struct stream_slot *slot = list_entry(pos, struct stream_slot, link);
        if (slot->peer != top)
            continue;
        if (!slot->spoke)
            return slot;
        if (first == NULL)
            first = slot;
    }
    return first;
}

static void
idle_fired(struct timer *t)
{
    struct stream_slot *slot = t->data;
    struct streams *s = slot->set;
    uint64_t quiet = loop_now(s->loop) - slot->active_ms;

    if (s->lim.idle_timeout_ms == 0)
        return;
    if (quiet < s->lim.idle_timeout_ms) { /* it read meanwhile: wait for the rest */
        timer_start(s->loop, &slot->idle, s->lim.idle_timeout_ms - quiet, idle_fired, slot);
        return;
    }
    s->idle_closed++;
    if (log_due(s, LOG_IDLE))
        log_info("%s: closed a stream of %s silent for %u ms (idle_timeout; %llu so far)", s->what,
                 slot->peer->desc, s->lim.idle_timeout_ms, (unsigned long long)s->idle_closed);
    s->close_cb(slot, STREAMS_IDLE);
}

static void
arm(struct streams *s, struct stream_slot *slot)
{
    uint64_t quiet = loop_now(s->loop) - slot->active_ms;
    uint64_t limit = s->lim.idle_timeout_ms;

    if (limit == 0)
        timer_stop(s->loop, &slot->idle);
    else
        timer_start(s->loop, &slot->idle, quiet < limit ? limit - quiet : 0, idle_fired, slot);
}

void
streams_init(struct streams *s, struct loop *loop, const char *what,
             const struct stream_limits *lim, streams_close_cb close_cb)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->what = what;
    s->lim = *lim;
    s->close_cb = close_cb;
    list_init(&s->slots);
    list_init(&s->peers);
}

void
streams_set_limits(struct streams *s, const struct stream_limits *lim)
{
    struct list *pos, *tmp;

    s->lim = *lim;
    list_for_each_safe(pos, tmp, &s->slots)
        arm(s, list_entry(pos, struct stream_slot, link));
}

int
streams_admit(struct streams *s, struct stream_slot *slot, int fd, bool verified)
{
    struct sockaddr_storage ss;
    uint8_t key[PEER_KEY];
    char desc[TRANSPORT_DESC_MAX];
    struct stream_peer *p;
    int rc = peer_of(fd, &ss, key, desc, sizeof(desc));

    if (rc != 0)
        return rc;
    key[PEER_KEY - 1] = verified;
    if (s->lim.n_allow > 0 && !allow_match(s->lim.allow, s->lim.n_allow, (struct sockaddr *)&ss)) {
        s->refused++;
        if (log_due(s, LOG_REFUSED))
            log_info("%s: refused a stream of %s: not allowed (%llu so far)", s->what, desc,
                     (unsigned long long)s->refused);
        return -EACCES;
    }
    /* a lowered max_streams (reload) is caught up with one eviction per newcomer */
    struct stream_slot *v = NULL;
    if (s->n >= s->lim.max_streams && (v = victim(s, peer_find(s, key), verified)) == NULL) {
        /* every stream is verified, and the newcomer is not */
        s->refused++;
        if (log_due(s, LOG_REFUSED))
            log_info("%s: refused an unverified stream of %s: every stream is verified (%llu "
                     "so far)",
                     s->what, desc, (unsigned long long)s->refused);
        return -EBUSY;
    }
    if (v != NULL && !v->retired) {
        s->evicted++;
        if (log_due(s, LOG_EVICTED))
            log_info("%s: %zu streams (max_streams): closed the least recently active one of "
                     "%s for one of %s (%llu so far)",
                     s->what, s->n, v->peer->desc, desc, (unsigned long long)s->evicted);
    }
    if (v != NULL)
        s->close_cb(v, STREAMS_EVICTED);
    if ((p = peer_find(s, key)) == NULL) { /* after the eviction, which may free it */
        if ((p = calloc(1, sizeof(*p))) == NULL)
            return -ENOMEM;
        memcpy(p->key, key, PEER_KEY);
        p->verified = verified;
        snprintf(p->desc, sizeof(p->desc), "%s", desc);
        list_add(&s->peers, &p->link);
    }
    p->n++;
    slot->set = s;
    slot->peer = p;
    slot->active_ms = loop_now(s->loop);
    list_add_tail(&s->slots, &slot->link);
    s->n++;
    arm(s, slot);
    return 0;
}

void
streams_touch(struct stream_slot *slot)
{
    struct streams *s = slot->set;

    if (s == NULL)
        return;
    slot->active_ms = loop_now(s->loop);
    slot->spoke = true;
    list_del(&slot->link);
    list_add_tail(&s->slots, &slot->link);
}

void
streams_retire(struct stream_slot *slot)
{
    struct streams *s = slot->set;

    if (s == NULL)
        return;
    slot->retired = true;
    timer_stop(s->loop, &slot->idle);
    list_del(&slot->link);
    list_add(&s->slots, &slot->link); /* before every active one */
}

struct stream_slot *
streams_oldest(const struct streams *s)
{
    struct list *first = list_first(&s->slots);

    return first != NULL ? list_entry(first, struct stream_slot, link) : NULL;
}

void
streams_remove(struct stream_slot *slot)
{
    struct streams *s = slot->set;
    struct stream_peer *p = slot->peer;

    if (s == NULL)
        return;
    timer_stop(s->loop, &slot->idle);
    list_del(&slot->link);
    s->n--;
    if (--p->n == 0) {
        list_del(&p->link);
        free(p);
    }
    slot->set = NULL;
    slot->peer = NULL;
}

void
streams_fini(struct streams *s)
{
    struct stream_slot *slot;

    while ((slot = streams_oldest(s)) != NULL)
        streams_remove(slot);
}
