/* broker.c - the key broker role; see broker.h and proto/kb.h. */
#include "broker/broker.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "attest/policy.h"
#include "attest/trust.h"
#include "broker/seal.h"
#include "broker/wrap.h"
#include "core/file.h"
#include "core/list.h"
#include "core/log.h"
#include "core/loop.h"
#include "net/acceptor.h"
#include "net/transport.h"
#include "proto/kb.h"

#define NONCE_LEN 32
#define SPKI_MAX ATTEST_BLOB_MAX /* what a Nitro document's public_key holds */
#define VCEK_MAX 4096
#define CLAIMS_MAX 200 /* the claims summary of a log line */

/* Why a request was refused: the reason label of
 * airlock_broker_refusals_total and the word after REFUSED. */
enum kb_reason {
    KB_MALFORMED,      /* not a message of the protocol, or out of turn */
    KB_TOO_LARGE,      /* a message of max_message bytes without its end */
    KB_UNKNOWN_SECRET, /* no secret of that name */
    KB_EXPIRED,        /* the challenge was older than nonce_ttl */
    KB_UNTRUSTED,      /* signature, chain or time of the evidence */
    KB_POLICY,         /* authentic evidence the secret's policy does not accept */
    KB_NONCE,          /* evidence for another challenge (a replay) */
    KB_KEY,            /* evidence bound to another public key */
    KB_SEALED,         /* the sealed secret cannot be read or opened */
    KB_INTERNAL,       /* out of memory, randomness, CMS */
    KB_TIMEOUT,        /* the exchange took longer than timeout */
    KB_BUSY,           /* max_connections were open */
    KB_REASONS,
};

static const char *const reason_names[KB_REASONS] = {
    [KB_MALFORMED] = "malformed",
    [KB_TOO_LARGE] = "too_large",
    [KB_UNKNOWN_SECRET] = "unknown_secret",
    [KB_EXPIRED] = "expired",
    [KB_UNTRUSTED] = "untrusted",
    [KB_POLICY] = "policy",
    [KB_NONCE] = "nonce",
    [KB_KEY] = "key",
    [KB_SEALED] = "sealed",
    [KB_INTERNAL] = "internal",
    [KB_TIMEOUT] = "timeout",
    [KB_BUSY] = "busy",
};

struct kb_counts {
    atomic_uint_fast64_t releases;
    atomic_uint_fast64_t refusals[KB_REASONS];
};

struct kb_secret {
    struct broker_secret_conf conf; /* its policy loaded (owned) */
    struct kb_counts counts;
};

enum kb_state {
    KB_ST_REQUEST, /* waiting for REQUEST: the only state a newcomer may evict */
    KB_ST_ATTEST,  /* CHALLENGE sent, waiting for ATTEST */
    KB_ST_DONE,    /* the answer is queued: write it, then close */
};

struct kb_conn {
    struct list link; /* in b->conns until closed */
    struct broker *b;
    struct io io;
    struct timer timer;
    struct task reap;
    enum kb_state state;
    char *in; /* max_message bytes */
    size_t in_len;
    struct strbuf out;
    size_t out_off;
    struct kb_secret *secret; /* the one REQUESTed */
    uint8_t nonce[NONCE_LEN];
    uint64_t nonce_at;         /* loop_now() when the challenge went out */
    struct timespec attest_at; /* when ATTEST arrived: the release latency */
    char peer[TRANSPORT_DESC_MAX];
    char who[TRANSPORT_CLIENT_MAX]; /* whom it counts against for max_per_peer */
    uint64_t deadline;              /* loop_now() by which the whole exchange must end */
    bool closed;
};

struct broker {
    struct broker_conf conf; /* secrets point at kb_secret confs below */
    /* what a reload swaps (broker_adopt()): changed on the broker's thread
     * only, and under lock, which other threads take to read them */
    pthread_mutex_t lock;
    struct kb_secret *secrets;
    size_t n_secrets;
    struct kb_counts anon; /* secret="-": before a known secret is named */
    uint8_t key[SEAL_KEY_LEN];
    EVP_PKEY *sign_key;          /* seal_sign_key(key): signs each SECRET */
    struct file_stamp key_stamp; /* key_file's, taken before it was read */
    struct loop *loop;
    pthread_t thread;
    bool started;
    int listen_fd; /* -1 when not listening */
    struct acceptor acceptor;
    struct list conns; /* open exchanges, oldest first */
    unsigned n_conns;
    unsigned per_peer;      /* broker_conf_per_peer() */
    uint64_t busy_log_at;   /* loop_now() of the last busy line logged */
    uint64_t busy_unlogged; /* busy refusals since, not logged */
};

/* ---- peers */

/* ---- connections */

static void
conn_reap(struct task *t)
{
    struct kb_conn *c = t->data;

    strbuf_free(&c->out);
    free(c->in);
    free(c);
}

static void
conn_close(struct kb_conn *c)
{
    if (c->closed)
        return;
    c->closed = true;
    io_stop(c->b->loop, &c->io);
    close(c->io.fd);
    c->io.fd = -1;
    timer_stop(c->b->loop, &c->timer);
    list_del(&c->link);
    c->b->n_conns--;
    loop_defer(c->b->loop, &c->reap, conn_reap, c);
}

static struct kb_counts *
counts_of(struct kb_conn *c)
{
    return c->secret != NULL ? &c->secret->counts : &c->b->anon;
}

/* Writes what is queued; closes once the answer is out. Returns false when
 * the connection is closed. */
static bool
conn_flush(struct kb_conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->io.fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN)
            return true;
        if (n <= 0) {
            conn_close(c);
            return false;
        }
        c->out_off += (size_t)n;
    }
    if (c->state == KB_ST_DONE) {
        conn_close(c);
        return false;
    }
    return true;
}

/* Busy refusals come in floods: at most one log line a second says so,
 * with how many went unlogged since (the counter has them all). Returns
 * whether to log this one. */
static bool
busy_log(struct broker *b)
{
    uint64_t now = loop_now(b->loop);

    if (b->busy_log_at != 0 && now - b->busy_log_at < 1000) {
        b->busy_unlogged++;
        return false;
    }
    if (b->busy_unlogged > 0)
        log_info("broker: %llu busy refusals not logged in the last second",
                 (unsigned long long)b->busy_unlogged);
    b->busy_log_at = now;
    b->busy_unlogged = 0;
    return true;
}

/* Refuses the exchange: counted, one log line, REFUSED to the requester.
 * Never after part of an answer went out (c->out_off > 0 in DONE): the
 * answer is written whole or the connection closed. */
static void refuse(struct kb_conn *c, enum kb_reason r, const char *claims, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
refuse(struct kb_conn *c, enum kb_reason r, const char *claims, const char *fmt, ...)
{
    char why[ATTEST_ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    log_quotable(why); /* it may quote the evidence; REFUSED carries it too */
    atomic_fetch_add(&counts_of(c)->refusals[r], 1);
    if (r != KB_BUSY || busy_log(c->b))
        log_info("broker: refused secret=%s reason=%s peer=%s%s%s why=\"%s\"",
                 c->secret != NULL ? c->secret->conf.name : "-", reason_names[r], c->peer,
                 claims != NULL ? " " : "", claims != NULL ? claims : "", why);
    c->state = KB_ST_DONE;
    strbuf_truncate(&c->out, 0);
    c->out_off = 0;
    strbuf_printf(&c->out, "REFUSED %s %s\n", reason_names[r], why);
}

static void
hex_prefix(char *out, const uint8_t *b, size_t n)
{
    kb_hex(out, b, n);
    out[2 * n] = '\0';
}

/* What the log says of an authentic requester: its kind and what a policy
 * would pin (a prefix: enough to tell builds apart). */
static void
claims_summary(const struct attest_claims *cl, char *out, size_t len)
{
    char h[2 * 8 + 1], id[64];

    switch (cl->kind) {
    case ATTEST_KIND_NITRO:
        hex_prefix(h, cl->npcrs > 0 ? cl->pcrs[0].value : (const uint8_t *)"",
                   cl->npcrs > 0 ? 8 : 0);
        /* a prefix of module_id, quoted: it comes from the evidence */
        snprintf(out, len, "type=nitro sim=%s module_id=\"%s\" pcr0=%s", cl->sim ? "yes" : "no",
                 log_quoted(id, sizeof(id), cl->module_id), h);
        break;
    case ATTEST_KIND_SNP:
    case ATTEST_KIND_TDX:
        hex_prefix(h, cl->measurement, 8);
        snprintf(out, len, "type=%s debug=%s measurement=%s", attest_kind_name(cl->kind),
                 cl->debug ? "yes" : "no", h);
        break;
    }
}

static enum kb_reason
result_reason(enum attest_result r)
{
    return r == ATTEST_POLICY ? KB_POLICY : r == ATTEST_UNTRUSTED ? KB_UNTRUSTED : KB_MALFORMED;
}

/* The evidence must carry this exchange's nonce and the key the secret is
 * wrapped to: Nitro (and sim) in its nonce and public_key fields, SNP and
 * TDX in REPORT_DATA = nonce (32 bytes) || SHA-256(public key DER). */
static enum kb_reason
binding(const struct kb_conn *c, const struct attest_claims *cl, const uint8_t *spki, size_t len)
{
    uint8_t h[SHA256_DIGEST_LENGTH];

    if (cl->kind == ATTEST_KIND_NITRO) {
        if (!attest_blob_equal(&cl->nonce, c->nonce, NONCE_LEN))
            return KB_NONCE;
        return attest_blob_equal(&cl->public_key, spki, len) ? KB_REASONS : KB_KEY;
    }
    if (CRYPTO_memcmp(cl->report_data, c->nonce, NONCE_LEN) != 0)
        return KB_NONCE;
    SHA256(spki, len, h);
    return CRYPTO_memcmp(cl->report_data + NONCE_LEN, h, sizeof(h)) == 0 ? KB_REASONS : KB_KEY;
}

/* Verified and bound: unseal, wrap to the key (pub, spki in DER), sign,
 * answer SECRET. */
static void
release(struct kb_conn *c, EVP_PKEY *pub, const uint8_t *spki, size_t spki_len, const char *claims)
{
    struct kb_secret *s = c->secret;
    char err[ATTEST_ERR_MAX] = "", sig_hex[2 * WRAP_SIG_LEN];
    uint8_t *pt = NULL, *der = NULL, sig[WRAP_SIG_LEN];
    size_t pt_len = 0, der_len = 0;

    if (seal_read(c->b->conf.dir, s->conf.name, c->b->key, &pt, &pt_len, err) != 0) {
        log_warnx("broker: secret=%s: %s", s->conf.name, err);
        refuse(c, KB_SEALED, claims, "the secret cannot be opened");
        return;
    }
    int rc = wrap_secret(pub, pt, pt_len, &der, &der_len);
    seal_clear_free(pt, pt_len);
    /* the requester's key went out in the clear: the signature tells this
     * answer from one that whoever relays the connection wrapped to it */
    struct wrap_answer a = {.name = s->conf.name,
                            .nonce = c->nonce,
                            .nonce_len = NONCE_LEN,
                            .spki = spki,
                            .spki_len = spki_len,
                            .cms = der,
                            .cms_len = der_len};
    if (rc == 0)
        rc = wrap_sign(c->b->sign_key, &a, sig);
    char *hex = rc == 0 ? malloc(2 * der_len) : NULL;
    if (hex == NULL) {
        OPENSSL_free(der);
        refuse(c, KB_INTERNAL, claims, "cannot wrap or sign the secret");
        return;
    }
    kb_hex(hex, der, der_len);
    kb_hex(sig_hex, sig, sizeof(sig));
    OPENSSL_free(der);
    c->state = KB_ST_DONE;
    strbuf_printf(&c->out, "SECRET %.*s %.*s\n", (int)(2 * der_len), hex, (int)sizeof(sig_hex),
                  sig_hex);
    free(hex);
    if (c->out.failed) {
        refuse(c, KB_INTERNAL, claims, "out of memory");
        return;
    }
    atomic_fetch_add(&s->counts.releases, 1);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long us = (now.tv_sec - c->attest_at.tv_sec) * 1000000LL +
                   (now.tv_nsec - c->attest_at.tv_nsec) / 1000;
    log_info("broker: released secret=%s peer=%s %s us=%lld", s->conf.name, c->peer, claims, us);
}

static void
on_attest(struct kb_conn *c, const struct kb_msg *m)
{
    struct kb_secret *s = c->secret;
    struct broker *b = c->b;
    char err[ATTEST_ERR_MAX] = "", claims[CLAIMS_MAX];
    uint8_t spki[SPKI_MAX], vder[VCEK_MAX];
    size_t spki_len = kb_unhex(m->hex[1], spki, sizeof(spki)), vlen = 0;
    size_t ev_len = m->hex[0].len / 2;
    uint8_t *ev = malloc(ev_len);
    struct attest_claims *cl = calloc(1, sizeof(*cl));
    struct attest_policy pol;
    EVP_PKEY *pub = NULL;
    X509 *vcek = NULL;
    enum attest_result r;
    enum kb_reason why;

    clock_gettime(CLOCK_MONOTONIC, &c->attest_at);
    if (ev == NULL || cl == NULL) {
        refuse(c, KB_INTERNAL, NULL, "out of memory");
        goto done;
    }
    /* a challenge is answered once, within nonce_ttl of being sent */
    if (loop_now(b->loop) - c->nonce_at > b->conf.nonce_ttl_ms) {
        refuse(c, KB_EXPIRED, NULL, "the challenge expired");
        goto done;
    }
    kb_unhex(m->hex[0], ev, ev_len);
    if (spki_len == 0 || (pub = wrap_public_key(spki, spki_len)) == NULL) {
        refuse(c, KB_MALFORMED, NULL,
               "expected an RSA public key of at least 2048 bits (DER SubjectPublicKeyInfo)");
        goto done;
    }
    if (m->nhex == 3 && ((vlen = kb_unhex(m->hex[2], vder, sizeof(vder))) == 0 ||
                         (vcek = attest_x509_der(vder, vlen)) == NULL)) {
        refuse(c, KB_MALFORMED, NULL, "expected the VCEK certificate in DER");
        goto done;
    }
    attest_policy_conf_fill(&s->conf.policy, time(NULL), &pol);
    r = attest_policy_verify(&s->conf.policy, &pol, ev, ev_len, vcek, cl, err);
    if (r == ATTEST_OK || r == ATTEST_POLICY)
        claims_summary(cl, claims, sizeof(claims));
    if (r != ATTEST_OK) {
        refuse(c, result_reason(r), r == ATTEST_POLICY ? claims : NULL, "%s", err);
        goto done;
    }
    if ((why = binding(c, cl, spki, spki_len)) != KB_REASONS) {
        refuse(c, why, claims, "%s",
               why == KB_NONCE ? "the evidence answers another challenge"
                               : "the evidence is bound to another public key");
        goto done;
    }
    release(c, pub, spki, spki_len, claims);
done:
    X509_free(vcek);
    EVP_PKEY_free(pub);
    free(cl);
    free(ev);
}

static void conn_timeout(struct timer *t);

/* The exchanges under way (challenged, or answering) of who: what
 * max_per_peer bounds. */
static unsigned
peer_exchanges(const struct broker *b, const char *who)
{
    unsigned n = 0;

    for (const struct list *p = b->conns.next; p != &b->conns; p = p->next) {
        const struct kb_conn *c = list_entry(p, const struct kb_conn, link);
        n += c->state != KB_ST_REQUEST && strcmp(c->who, who) == 0;
    }
    return n;
}

/* The secret of secrets[0..n) named name[0..len), or NULL. */
static struct kb_secret *
secret_named(struct kb_secret *secrets, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(secrets[i].conf.name) == len && memcmp(secrets[i].conf.name, name, len) == 0)
            return &secrets[i];
    return NULL;
}

static void
on_request(struct kb_conn *c, const struct kb_msg *m)
{
    struct broker *b = c->b;
    char nonce_hex[2 * NONCE_LEN];

    c->secret = secret_named(b->secrets, b->n_secrets, m->name.p, m->name.len);
    if (c->secret == NULL) {
        refuse(c, KB_UNKNOWN_SECRET, NULL, "no secret '%.*s'", (int)m->name.len, m->name.p);
        return;
    }
    /* exchanges under way are never evicted: one peer may hold only its
     * share of them, so that requests it leaves unanswered cannot take
     * every slot from the others */
    unsigned mine = peer_exchanges(b, c->who);
    if (mine >= b->per_peer) {
        refuse(c, KB_BUSY, NULL, "%u exchanges of this peer under way (max_per_peer)", mine);
        return;
    }
    if (RAND_bytes(c->nonce, NONCE_LEN) != 1) {
        refuse(c, KB_INTERNAL, NULL, "no randomness");
        return;
    }
    kb_hex(nonce_hex, c->nonce, NONCE_LEN);
    c->nonce_at = loop_now(b->loop);
    c->state = KB_ST_ATTEST;
    /* past its first line, the exchange has what is left of timeout */
    timer_start(b->loop, &c->timer, c->deadline > c->nonce_at ? c->deadline - c->nonce_at : 0,
                conn_timeout, c);
    strbuf_printf(&c->out, "CHALLENGE %.*s\n", (int)sizeof(nonce_hex), nonce_hex);
}

/* Handles the message at the start of c->in, if complete. Returns false
 * when more bytes are needed. */
static bool
conn_message(struct kb_conn *c)
{
    struct kb_msg m;
    const char *why = NULL;
    size_t used = 0;
    enum parse_result pr = kb_parse(c->in, c->in_len, c->b->conf.max_message, &m, &used, &why);

    if (pr == PARSE_AGAIN)
        return false;
    if (pr == PARSE_INVALID && used == 0 && c->in_len >= c->b->conf.max_message)
        refuse(c, KB_TOO_LARGE, NULL, "a message is at most %zu bytes", c->b->conf.max_message);
    else if (pr == PARSE_INVALID)
        refuse(c, KB_MALFORMED, NULL, "%s", why);
    else if (c->state == KB_ST_REQUEST && m.verb == KB_REQUEST)
        on_request(c, &m);
    else if (c->state == KB_ST_ATTEST && m.verb == KB_ATTEST)
        on_attest(c, &m);
    else
        refuse(c, KB_MALFORMED, NULL, "expected %s",
               c->state == KB_ST_REQUEST ? "REQUEST NAME" : "ATTEST EVIDENCE PUBKEY [VCEK]");
    if (used > 0 && c->state != KB_ST_DONE) {
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
    }
    return true;
}

static void
conn_event(struct io *io, uint32_t events)
{
    struct kb_conn *c = io->data;

    (void)events;
    if (!conn_flush(c))
        return;
    /* each turn of the loop either completes a message (the state moves
     * on, at most twice before DONE) or fills the buffer, so a connection's
     * work per wakeup is bounded by max_message */
    while (c->state != KB_ST_DONE) {
        if (conn_message(c)) {
            if (!conn_flush(c))
                return;
            continue;
        }
        ssize_t n = read(io->fd, c->in + c->in_len, c->b->conf.max_message - c->in_len);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            conn_close(c);
            return;
        }
        c->in_len += (size_t)n;
    }
}

/* The first line's deadline (request_timeout) or the exchange's (timeout):
 * REFUSED timeout, as much of it as the socket takes at once, and the end.
 * An answer being written has until the exchange's deadline; then it is
 * cut off, never followed by a REFUSED. */
static void
conn_timeout(struct timer *t)
{
    struct kb_conn *c = t->data;
    struct broker *b = c->b;
    uint64_t now = loop_now(b->loop);

    if (c->state == KB_ST_DONE && now < c->deadline) {
        timer_start(b->loop, &c->timer, c->deadline - now, conn_timeout, c);
        return;
    }
    if (c->state == KB_ST_REQUEST)
        refuse(c, KB_TIMEOUT, NULL, "no request within %u ms", b->conf.request_timeout_ms);
    else if (c->state == KB_ST_ATTEST)
        refuse(c, KB_TIMEOUT, NULL, "the exchange took longer than %u ms", b->conf.timeout_ms);
    if (conn_flush(c))
        conn_close(c);
}

/* A newcomer the broker has no room for: REFUSED busy (if the socket takes
 * it at once), counted, and closed. What it already sent (its REQUEST) is
 * read first, once: closing over unread bytes would reset the connection,
 * and the requester would not read why. */
static void
turn_away(struct broker *b, int fd, const char *peer, const char *why)
{
    char line[160], junk[4096];
    int n = snprintf(line, sizeof(line), "REFUSED %s %s\n", reason_names[KB_BUSY], why);

    if (send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 ||
        recv(fd, junk, sizeof(junk), MSG_DONTWAIT) < 0) {
        /* nothing more to do: it is closed below either way */
    }
    close(fd);
    atomic_fetch_add(&b->anon.refusals[KB_BUSY], 1);
    if (busy_log(b))
        log_info("broker: refused secret=- reason=%s peer=%s why=\"%s\"", reason_names[KB_BUSY],
                 peer, why);
}

/* Room for a newcomer, or why not. Only a connection still waiting for
 * its REQUEST line is ever evicted, the oldest first (the one silent the
 * longest; a requester sends its line with its first segment): one that
 * was challenged is waiting for evidence (hundreds of milliseconds from an
 * NSM or a TDX module) and one in DONE is writing its answer. Returns NULL
 * with room made, else why not. */
static const char *
make_room(struct broker *b)
{
    if (b->n_conns < b->conf.max_connections)
        return NULL;
    for (struct list *p = b->conns.next; p != &b->conns; p = p->next) {
        struct kb_conn *c = list_entry(p, struct kb_conn, link);
        if (c->state != KB_ST_REQUEST)
            continue;
        refuse(c, KB_BUSY, NULL, "%u connections open: the oldest without a request makes room",
               b->n_conns);
        if (conn_flush(c))
            conn_close(c);
        return NULL;
    }
    return "every connection is an exchange under way";
}

static void
broker_admit(struct acceptor *a, int fd, const struct sockaddr *sa, socklen_t len)
{
    struct broker *b = a->data;
    char peer[TRANSPORT_DESC_MAX];
    const char *full;

    transport_describe(sa, len, peer, sizeof(peer));
    if ((full = make_room(b)) != NULL) {
        turn_away(b, fd, peer, full);
        return;
    }
    struct kb_conn *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->in = malloc(b->conf.max_message)) == NULL ||
        io_start(b->loop, &c->io, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, conn_event, c) != 0) {
        if (c != NULL)
            free(c->in);
        free(c);
        close(fd);
        return;
    }
    c->b = b;
    memcpy(c->peer, peer, sizeof(peer));
    transport_client_key(fd, sa, c->who, sizeof(c->who));
    c->deadline = loop_now(b->loop) + b->conf.timeout_ms;
    list_add_tail(&b->conns, &c->link); /* oldest first */
    b->n_conns++;
    /* the first line comes at once from a requester that means it: a
     * silent newcomer holds a slot for request_timeout at most */
    timer_start(b->loop, &c->timer, b->conf.request_timeout_ms, conn_timeout, c);
    /* the REQUEST line often came with the connection: handled now, the
     * exchange is no longer one a newcomer of this same batch may evict */
    conn_event(&c->io, EPOLLIN);
}

/* ---- the role */

struct broker *
broker_load(const struct broker_conf *conf, char *err, size_t errlen)
{
    struct broker *b = calloc(1, sizeof(*b));
    char why[ATTEST_ERR_MAX] = "out of memory";

    if (b == NULL)
        goto fail;
    b->conf = *conf;
    b->per_peer = broker_conf_per_peer(conf);
    b->listen_fd = -1;
    pthread_mutex_init(&b->lock, NULL);
    list_init(&b->conns);
    if ((b->secrets = calloc(conf->n_secrets, sizeof(*b->secrets))) == NULL)
        goto fail;
    for (; b->n_secrets < conf->n_secrets; b->n_secrets++) {
        struct kb_secret *s = &b->secrets[b->n_secrets];
        s->conf = conf->secrets[b->n_secrets];
        /* the config's copy owns nothing loaded; this one does */
        s->conf.policy.root_certs = NULL;
        s->conf.policy.intermediates = NULL;
        s->conf.policy.sim_cert = NULL;
        if (attest_policy_conf_load(&s->conf.policy, why) != 0) {
            snprintf(err, errlen, "broker: secret '%s': policy: %s", s->conf.name, why);
            broker_stop(b);
            return NULL;
        }
    }
    b->conf.secrets = NULL; /* the config's array is not ours */
    (void)file_stamp(conf->key_file, &b->key_stamp);
    if (seal_key_load(conf->key_file, false, b->key, why) != 0) {
        snprintf(err, errlen, "broker: key_file: %s", why);
        broker_stop(b);
        return NULL;
    }
    if ((b->sign_key = seal_sign_key(b->key)) == NULL) {
        snprintf(err, errlen, "broker: key_file: cannot derive the signing key");
        broker_stop(b);
        return NULL;
    }
    return b;
fail:
    snprintf(err, errlen, "broker: %s", why);
    broker_stop(b);
    return NULL;
}

bool
broker_files_changed(struct broker *b)
{
    bool changed = false;

    pthread_mutex_lock(&b->lock);
    changed = !file_stamp_same(b->conf.key_file, &b->key_stamp);
    for (size_t i = 0; i < b->n_secrets && !changed; i++)
        changed = attest_policy_files_changed(&b->secrets[i].conf.policy);
    pthread_mutex_unlock(&b->lock);
    return changed;
}

/* ---- a reload */

struct kb_adopt {
    struct broker *b, *fresh;
    pthread_mutex_t m;
    pthread_cond_t done_cv;
    bool done;
};

static void
swap_bytes(void *a, void *b, void *tmp, size_t n)
{
    memcpy(tmp, a, n);
    memcpy(a, b, n);
    memcpy(b, tmp, n);
}

#define SWAP(a, b)                                                                                 \
    do {                                                                                           \
        __typeof__(a) tmp_;                                                                        \
        swap_bytes(&(a), &(b), &tmp_, sizeof(a));                                                  \
    } while (0)

/* On b's thread: fresh's secrets and settings into b, b's old ones into
 * fresh (freed by the caller). */
static void
adopt_now(void *arg)
{
    struct kb_adopt *a = arg;
    struct broker *b = a->b, *fresh = a->fresh;

    for (size_t i = 0; i < fresh->n_secrets; i++) {
        const char *name = fresh->secrets[i].conf.name;
        const struct kb_secret *old = secret_named(b->secrets, b->n_secrets, name, strlen(name));
        if (old == NULL)
            continue;
        atomic_store(&fresh->secrets[i].counts.releases, atomic_load(&old->counts.releases));
        for (int r = 0; r < KB_REASONS; r++)
            atomic_store(&fresh->secrets[i].counts.refusals[r],
                         atomic_load(&old->counts.refusals[r]));
    }
    for (struct list *p = b->conns.next, *next; p != &b->conns; p = next) {
        struct kb_conn *c = list_entry(p, struct kb_conn, link);
        next = p->next;
        if (c->secret == NULL)
            continue;
        const char *name = c->secret->conf.name;
        struct kb_secret *now = secret_named(fresh->secrets, fresh->n_secrets, name, strlen(name));
        if (now == NULL && c->state == KB_ST_ATTEST) {
            c->secret = NULL;
            refuse(c, KB_UNKNOWN_SECRET, NULL, "no secret '%s' since the reload", name);
            conn_flush(c); /* closes it once the answer is out */
            continue;
        }
        c->secret = now;
    }
    pthread_mutex_lock(&b->lock);
    SWAP(b->secrets, fresh->secrets);
    SWAP(b->n_secrets, fresh->n_secrets);
    SWAP(b->key, fresh->key);
    SWAP(b->sign_key, fresh->sign_key);
    SWAP(b->key_stamp, fresh->key_stamp);
    SWAP(b->conf.dir, fresh->conf.dir);
    SWAP(b->conf.key_file, fresh->conf.key_file);
    b->conf.timeout_ms = fresh->conf.timeout_ms;
    b->conf.request_timeout_ms = fresh->conf.request_timeout_ms;
    b->conf.nonce_ttl_ms = fresh->conf.nonce_ttl_ms;
    b->conf.max_per_peer = fresh->conf.max_per_peer;
    b->per_peer = broker_conf_per_peer(&b->conf);
    pthread_mutex_unlock(&b->lock);
    pthread_mutex_lock(&a->m);
    a->done = true;
    pthread_cond_signal(&a->done_cv);
    pthread_mutex_unlock(&a->m);
}

void
broker_adopt(struct broker *b, struct broker *fresh)
{
    struct kb_adopt a = {.b = b, .fresh = fresh};

    pthread_mutex_init(&a.m, NULL);
    pthread_cond_init(&a.done_cv, NULL);
    if (loop_post(b->loop, adopt_now, &a) == 0) {
        pthread_mutex_lock(&a.m);
        while (!a.done)
            pthread_cond_wait(&a.done_cv, &a.m);
        pthread_mutex_unlock(&a.m);
        log_info("broker: reloaded, %zu secrets", b->n_secrets);
    } else {
        log_warnx("broker: out of memory: the running secrets kept");
    }
    pthread_cond_destroy(&a.done_cv);
    pthread_mutex_destroy(&a.m);
    broker_stop(fresh);
}

static void *
broker_thread(void *arg)
{
    struct broker *b = arg;
    int rc = loop_run(b->loop);

    if (rc != 0)
        log_warnx("broker: loop: %s", strerror(-rc));
    return NULL;
}

int
broker_start(struct broker *b, char *err, size_t errlen)
{
    char ep[ENDPOINT_TEXT_MAX];
    int fd, rc;

    endpoint_format(&b->conf.listen, ep, sizeof(ep));
    if ((b->loop = loop_new()) == NULL) {
        rc = -errno;
        snprintf(err, errlen, "broker: %s", strerror(errno));
        return rc;
    }
    if ((fd = transport_listen(&b->conf.listen)) < 0) {
        snprintf(err, errlen, "broker: listen %s: %s", ep, strerror(-fd));
        return fd;
    }
    if ((rc = acceptor_start(&b->acceptor, b->loop, fd, "broker", broker_admit, NULL, b)) != 0 ||
        (rc = -pthread_create(&b->thread, NULL, broker_thread, b)) != 0) {
        acceptor_stop(&b->acceptor);
        close(fd);
        transport_unlisten(&b->conf.listen);
        snprintf(err, errlen, "broker: %s", strerror(-rc));
        return rc;
    }
    b->listen_fd = fd;
    b->started = true;
    log_info("broker: listening on %s, %zu secrets", ep, b->n_secrets);
    return 0;
}

void
broker_stop(struct broker *b)
{
    if (b == NULL)
        return;
    if (b->started) {
        loop_stop(b->loop);
        pthread_join(b->thread, NULL);
        b->started = false;
    }
    while (!list_empty(&b->conns))
        conn_close(list_entry(b->conns.next, struct kb_conn, link));
    if (b->listen_fd >= 0) {
        acceptor_stop(&b->acceptor);
        close(b->listen_fd);
        b->listen_fd = -1;
        transport_unlisten(&b->conf.listen);
    }
    if (b->loop != NULL) {
        loop_stop(b->loop);
        loop_run(b->loop); /* one turn: the closed connections' reaps */
        loop_free(b->loop);
        b->loop = NULL;
    }
    for (size_t i = 0; i < b->n_secrets; i++)
        attest_policy_conf_free(&b->secrets[i].conf.policy);
    free(b->secrets);
    OPENSSL_cleanse(b->key, sizeof(b->key));
    EVP_PKEY_free(b->sign_key);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

static void
refusal_lines(struct strbuf *out, const char *secret, const struct kb_counts *k)
{
    for (int r = 0; r < KB_REASONS; r++) {
        unsigned long long v = atomic_load(&k->refusals[r]);
        if (v > 0)
            strbuf_printf(out, "airlock_broker_refusals_total{secret=\"%s\",reason=\"%s\"} %llu\n",
                          secret, reason_names[r], v);
    }
}

void
broker_metrics(struct broker *b, struct strbuf *out)
{
    pthread_mutex_lock(&b->lock);
    strbuf_printf(out, "# HELP airlock_broker_releases_total Secrets the key broker released.\n"
                       "# TYPE airlock_broker_releases_total counter\n");
    for (size_t i = 0; i < b->n_secrets; i++)
        strbuf_printf(out, "airlock_broker_releases_total{secret=\"%s\"} %llu\n",
                      b->secrets[i].conf.name,
                      (unsigned long long)atomic_load(&b->secrets[i].counts.releases));
    strbuf_printf(out, "# HELP airlock_broker_refusals_total Requests the key broker refused, by "
                       "reason (secret \"-\": before a known secret was named).\n"
                       "# TYPE airlock_broker_refusals_total counter\n");
    for (size_t i = 0; i < b->n_secrets; i++)
        refusal_lines(out, b->secrets[i].conf.name, &b->secrets[i].counts);
    refusal_lines(out, "-", &b->anon);
    pthread_mutex_unlock(&b->lock);
}
